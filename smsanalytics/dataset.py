"""A converted dataset on disk: its layout, how to scan it, and how to read it back.

A dataset is a directory of zstd-compressed Parquet files, hive-partitioned by the month
of ``created_at`` in UTC (``DIR/month=2025-03/part-<id>.parquet``), or unpartitioned
(``DIR/part-<id>.parquet``). It is readable as it is by polars
(``pl.scan_parquet("DIR/")``), pyarrow.dataset, DuckDB
(``read_parquet('DIR/**/*.parquet', hive_partitioning=true)``), pandas, Spark and Trino.

Nothing else is written into the folder: polars reads every file under a folder it is
given, whatever its name (a hidden ``.x`` or ``_x`` too), and fails on one that is not
Parquet. So the manifest, which records how the dataset was made and the last
conversion's counts, lives beside the folder (``.DIR.smsanalytics.json``), with the lock
(``.DIR.lock``) and the scratch folders of a conversion (``.DIR.stage-<id>``,
``.DIR.version-<id>``). A dataset written before that holds its manifest inside, as
``DIR/_smsanalytics.json``: it is read there, and the next conversion moves it out.

A dataset the Spark conversion writes behind a URI (``s3a://b/DIR``) follows the same
rule, without renames (:mod:`smsanalytics.spark_convert`): its manifest, which there also
lists the dataset's files, is written beside the folder in one ``create`` (the commit),
then a legacy ``DIR/_smsanalytics.json`` is deleted. So where both exist, the one beside
is the newer there, while locally the one inside is (:func:`commit_version` swaps the
folder in before it moves the manifest out).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ArgumentError, DatasetError, DatasetLockedError
from .schema import MESSAGE_SCHEMA, PARTITION_COLUMN

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "MANIFEST_NAME",
    "manifest_name",
    "manifest_path",
    "has_manifest",
    "DatasetInfo",
    "describe",
    "locked",
    "commit_version",
    "guard_beside",
    "check_manifest",
    "manifest_text",
    "parse_manifest",
    "foreign_files",
    "PartitionWriter",
    "write_partitioned",
    "rewrite_file",
    "partition_of",
    "dataset_files",
    "scan_sql",
    "glob_literal",
    "BACKENDS",
    "read_dataset_table",
    "read_dataset",
    "read_manifest",
    "to_pandas",
    "month_groups",
]

#: The manifest's name inside a version while it is being built, and inside a dataset
#: written before the manifest moved beside the folder (:func:`manifest_path`).
MANIFEST_NAME = "_smsanalytics.json"
_MANIFEST_SUFFIX = ".smsanalytics.json"


def manifest_name(name: str) -> str:
    """The file name of the manifest of a dataset folder called `name`, which lives beside
    the folder: ``.NAME.smsanalytics.json``.

    The one naming rule for every file system: :func:`manifest_path` builds a local
    dataset's manifest with it, :func:`smsanalytics.spark_storage.manifest_uris` one
    behind a URI.
    """
    return f".{name}{_MANIFEST_SUFFIX}"


def manifest_path(path: str | Path) -> Path:
    """Where the manifest of the dataset at `path` lives: ``.DIR.smsanalytics.json`` beside it.

    Links in `path` are resolved: the manifest is that of the folder itself.
    """
    real = Path(os.path.realpath(path))
    return real.parent / manifest_name(real.name)


def _manifest_file(path: str | Path) -> Path | None:
    """The manifest file of the dataset at `path`, None if it has none.

    One inside the folder wins: it is either a dataset's from before the manifest moved
    out, or a new version's that a conversion cut short had swapped in but not yet moved
    out (:func:`commit_version`); either way it describes the files beside it.
    """
    for candidate in (Path(path) / MANIFEST_NAME, manifest_path(path)):
        if os.path.lexists(candidate):
            return candidate
    return None


def has_manifest(path: str | Path) -> bool:
    """Whether the dataset at `path` has a manifest (beside it, or inside from before)."""
    return _manifest_file(path) is not None


def dataset_files(path: str | Path) -> list[Path]:
    """Return the Parquet files of the dataset at `path`, sorted.

    Raises
    ------
    DatasetError
        If `path` is not a directory.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(str(path), "no dataset here (not a directory)")
    return sorted(p for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def glob_literal(path: Path) -> str:
    """`path` as a DuckDB glob pattern matching itself only (``ds[1]``, ``*``...).

    DuckDB globs every path it is given to read, so ``ds[1]`` would read ``ds1``.
    """
    return re.sub(r"([\[\]*?{}])", r"[\1]", str(path))


def scan_sql(path: str | Path, files: Sequence[Path] | None = None) -> str:
    """Return a DuckDB table expression reading every message of the dataset at `path`.

    The files are looked up each time a query using the expression is run, not when it is
    written: a view over it (the ``messages`` view of :func:`smsanalytics.queries.connect`)
    sees the dataset's current version after any later conversion. The files are those of
    :func:`dataset_files`. The partition column (``month``) is not included; the message
    columns are exactly those of :data:`~smsanalytics.schema.MESSAGE_SCHEMA`. A dataset
    without files scans as an empty table with that schema.

    With `files` (absolute paths), exactly those files are read, each matched literally,
    and nothing is looked up: DuckDB then needs to open only ``str(f)`` and
    :func:`glob_literal` of each (what a connection locked with ``allowed_paths`` must
    allow).
    """
    from .schema import COLUMNS, duckdb_type

    root = Path(path).absolute()
    if not root.is_dir():
        raise DatasetError(str(path), "no dataset here (not a directory)")
    if files is None:
        patterns = _sql_string(f"{glob_literal(root)}/**/[!._]*.parquet")
    else:
        patterns = "[" + ", ".join(_sql_string(glob_literal(f)) for f in files) + "]"
    names = ", ".join(f'"{f.name}"' for f in MESSAGE_SCHEMA)
    # With no file, read_parquet gives one column named "empty": the typed empty select,
    # joined by name, gives every column its type.
    typed = ", ".join(f'CAST(NULL AS {duckdb_type(c.type)}) AS "{c.name}"' for c in COLUMNS)
    if files is not None and not files:  # read_parquet refuses an empty list
        return f"(SELECT {names} FROM (SELECT {typed} WHERE false))"
    return (
        f"(SELECT {names} FROM (SELECT * FROM read_parquet({patterns}, hive_partitioning=false, "
        f"union_by_name=true, allow_empty=true) UNION ALL BY NAME SELECT {typed} WHERE false))"
    )


def read_dataset_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read the dataset at `path` into an Arrow table with :data:`MESSAGE_SCHEMA` types.

    The reader under :func:`read_dataset`, for tools that take Arrow (polars, DuckDB,
    Spark's ``createDataFrame``, ``pyarrow.compute``): nothing is converted.

    Parameters
    ----------
    path : str or Path
        Dataset directory.
    columns : list of str, optional
        Only these columns, in this order (all by default).

    Returns
    -------
    pyarrow.Table
        One row per message: decimal costs (``decimal128(18, 6)``), UTC timestamps,
        dictionary-encoded enumerations, each field's description and unit in its
        metadata. Columns a file lacks (written by an older version) are null. The
        ``month`` partition is not a column (see :func:`month_groups` for what it is).

    Raises
    ------
    DatasetError
        If `path` is not a directory or its Parquet files cannot be read.

    Examples
    --------
    >>> import tempfile, smsanalytics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> s = smsanalytics.convert(["sample_data/events"], f"{tmp.name}/ds", quiet=True)
    >>> table = smsanalytics.read_dataset_table(f"{tmp.name}/ds", ["sid", "cost_cents"])
    >>> table.num_rows == s.written, table.schema.field("cost_cents").type
    (True, Decimal128Type(decimal128(18, 6)))
    >>> tmp.cleanup()
    """
    files = dataset_files(path)
    schema = MESSAGE_SCHEMA
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    if not files:
        return schema.empty_table()
    import pyarrow.dataset as pads  # imports pandas: only when reading

    try:
        ds = pads.dataset([str(f) for f in files], format="parquet")
        table = ds.to_table(columns=[c for c in schema.names if c in ds.schema.names])
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(str(path), f"cannot read the Parquet files: {exc}") from exc
    missing = [f for f in schema if f.name not in table.column_names]
    for f in missing:
        table = table.append_column(f.name, pa.nulls(len(table), f.type))
    return table.select(schema.names).cast(schema)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert an Arrow table of messages to pandas with Arrow-backed dtypes.

    Decimal costs stay exact (``decimal128(18, 6)[pyarrow]``), timestamps stay tz-aware
    UTC, enumerated columns stay dictionary-encoded.

    Notes
    -----
    The converter of stored messages (:func:`read_dataset`,
    :func:`smsanalytics.load_messages`). The answers of the questions, on DuckDB and Spark
    alike, go through the other one, :func:`smsanalytics._analysis.to_frame`, where a
    column may have another dtype
    (``Int32`` for ``int32[pyarrow]``, text for a dictionary). The difference is on
    purpose: a messages table can hold millions of rows, so every column here stays
    Arrow (no Python object per text value, enumerations dictionary-encoded, ``<NA>`` in
    every type), and ``pyarrow.Table.from_pandas`` of the frame gives back the stored
    schema exactly (``tests/test_ingest.py`` holds this converter to Arrow dtypes only).
    An answer is small and made for showing and plotting: NumPy-backed instants in the
    question's zone, pandas' default text, nullable integers. Both are exact: no integer
    becomes a float, no decimal a float.
    """
    import pandas as pd  # imported when first needed: it takes a third of a second

    return table.to_pandas(types_mapper=pd.ArrowDtype)


#: What :func:`read_dataset` can return.
BACKENDS = ("pandas", "polars", "arrow")


@overload
def read_dataset(
    path: str | Path, columns: list[str] | None = None, *, backend: Literal["pandas"] = ...
) -> pd.DataFrame: ...
@overload
def read_dataset(
    path: str | Path, columns: list[str] | None = None, *, backend: Literal["polars"]
) -> pl.DataFrame: ...
@overload
def read_dataset(
    path: str | Path, columns: list[str] | None = None, *, backend: Literal["arrow"]
) -> pa.Table: ...
def read_dataset(
    path: str | Path,
    columns: list[str] | None = None,
    *,
    backend: Literal["pandas", "polars", "arrow"] = "pandas",
) -> pd.DataFrame | pl.DataFrame | pa.Table:
    """Read a converted dataset into a typed DataFrame.

    Parameters
    ----------
    path : str or Path
        Dataset directory written by :func:`smsanalytics.convert`.
    columns : list of str, optional
        Only these columns, in this order (all by default).
    backend : {'pandas', 'polars', 'arrow'}
        What to return. Polars is imported only for ``"polars"`` (it is not a dependency
        of smsanalytics: install it yourself).

    Returns
    -------
    pandas.DataFrame, polars.DataFrame or pyarrow.Table
        One row per message, with the same logical types in each: exact decimal costs
        (``decimal128(18, 6)[pyarrow]`` in pandas, ``Decimal(18, 6)`` in polars), UTC
        instants, enumerations as dictionary (pandas) or ``Categorical`` (polars) columns.
        See :func:`read_dataset_table` for the Arrow table.

    Raises
    ------
    ArgumentError
        If `backend` is not one of :data:`BACKENDS`, or is ``"polars"`` and polars is
        not installed.
    DatasetError
        If `path` is not a readable dataset.

    Examples
    --------
    >>> import tempfile, smsanalytics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> s = smsanalytics.convert(["sample_data/events"], f"{tmp.name}/ds", quiet=True)
    >>> df = smsanalytics.read_dataset(f"{tmp.name}/ds")
    >>> len(df) == s.written
    True
    >>> str(df["cost_cents"].dtype), str(df["created_at"].dtype)
    ('decimal128(18, 6)[pyarrow]', 'timestamp[us, tz=UTC][pyarrow]')
    >>> tmp.cleanup()
    """
    if backend not in BACKENDS:
        raise ArgumentError("backend", backend, f"must be one of {', '.join(BACKENDS)}")
    if backend == "polars":
        try:
            import polars
        except ImportError:
            raise ArgumentError(
                "backend", backend, "polars is not installed (pip install polars)"
            ) from None
        table = read_dataset_table(path, columns)
        return polars.from_arrow(table)  # type: ignore[return-value]  # a table: a DataFrame
    table = read_dataset_table(path, columns)
    return table if backend == "arrow" else to_pandas(table)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Return the dataset's manifest record ({} if it has none).

    Raises
    ------
    DatasetError
        If the manifest is there but cannot be read as a JSON object.
    """
    error: Exception | None = None
    name = ""
    for _ in range(2):  # twice: a conversion may move it out between look-up and read
        p = _manifest_file(path)
        if p is None:
            return {}
        name = p.name
        try:
            data = p.read_bytes()
        except FileNotFoundError as exc:
            error = exc
            continue
        except OSError as exc:
            error = exc
            break
        return parse_manifest(path, name, data)
    raise DatasetError(str(path), f"unreadable manifest {name}: {error}") from error


PARTITION_DIR_PREFIX = f"{PARTITION_COLUMN}="
_FORMAT = "smsanalytics-dataset"


def _sibling(out: Path, kind: str) -> str:
    return f".{out.name}.{kind}-"


def _new_sibling_dir(out: Path, kind: str, mode: int) -> Path:
    # mkdir is exclusive and never follows a link someone put in the way.
    path = out.parent / f"{_sibling(out, kind)}{uuid.uuid4().hex}"
    path.mkdir(mode=mode)
    return path


def new_stage_dir(out: Path) -> Path:
    """Create and return an empty scratch directory beside `out` for one conversion
    (readable by its owner only: it holds copies of the input)."""
    return _new_sibling_dir(out, "stage", 0o700)


def new_version_dir(out: Path) -> Path:
    """Create and return an empty directory beside `out` to build its next version in.

    It becomes the dataset's folder. Where there is none yet, it is created as any
    folder of the user's is (mode 0777 less the umask), like the folders and files
    written into it; where it replaces one, it is private until :func:`commit_version`
    gives it that folder's mode (never, even for a moment, more open), but has its group
    and setgid bit from the start, so that the folders and files written into it take
    that group as they would in the old one.
    """
    if not out.is_dir():
        return _new_sibling_dir(out, "version", 0o777)
    path = _new_sibling_dir(out, "version", 0o700)
    _give_access(path, os.lstat(out), stat.S_IRWXU | stat.S_ISGID)
    return path


def _give_access(path: Path, was: os.stat_result, bits: int) -> None:
    """Give the folder `path` the group of the folder whose status is `was` (where the
    user may) and its mode's `bits`, with the owner's read, write and search kept."""
    with suppress(OSError):  # not a member of that group: the user's own group stays
        os.chown(path, -1, was.st_gid)
    os.chmod(path, stat.S_IMODE(was.st_mode) & bits | stat.S_IRWXU)


def guard_beside(new: Path, path: Path, dataset: Path) -> None:
    """Give `new`, the file about to replace `path` beside the folder `dataset` (its
    rejects file: raw message text), the mode of the file it replaces (a new one keeps
    the umask's), never more open than the folder: whom it keeps out (no read or search)
    may not read the file either; and the folder's group (where the user may set it), so
    that the group let into the folder reads it too.

    A dataset made private (``chmod 700``) keeps its rejects private too, though they
    lie beside it, not inside it.
    """
    mode, group = stat.S_IMODE(os.stat(new).st_mode), None
    with suppress(OSError):
        old = os.lstat(path)
        if stat.S_ISREG(old.st_mode):
            mode, group = stat.S_IMODE(old.st_mode) & 0o666, old.st_gid
    with suppress(OSError):
        folder = os.lstat(dataset)
        if stat.S_ISDIR(folder.st_mode):
            for shift in (3, 0):  # the group, the others (the owner may chmod anyway)
                if (folder.st_mode >> shift) & 0o5 != 0o5:
                    mode &= ~(0o7 << shift)
            group = folder.st_gid
    if group is not None:
        with suppress(OSError):  # not a member of that group: the user's own group stays
            os.chown(new, -1, group)
    os.chmod(new, mode)


def _remove_tree(path: Path) -> None:
    """Remove the folder `path` and all it holds, as far as possible (errors ignored).

    A folder the user made read-only (``chmod 555``) refuses the removal of what it
    holds, even to its owner: each folder is first given its owner's write (which opens
    nothing to anyone else). Links are not followed.
    """
    for folder, _dirs, _files in os.walk(path):
        with suppress(OSError):
            os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def _leftover_names(out: Path) -> re.Pattern[str]:
    """The exact names of `out`'s scratch and version directories (names are matched
    literally: a dataset called ``*`` or ``ds[1]`` means no other dataset's)."""
    kinds = "|".join(re.escape(_sibling(out, k)) for k in ("stage", "version"))
    return re.compile(f"(?:{kinds})(?:old-)?[0-9a-f]{{32}}")


def clean_leftovers(out: Path) -> list[Path]:
    """Remove what an interrupted conversion into `out` left beside it; return it.

    Call with the dataset's lock held: then no other run is using these directories.
    Only real directories with exactly these names are removed, never a link. A manifest
    inside `out` (a dataset from before the manifest moved out, or a conversion cut just
    after its swap) is moved beside it: every conversion migrates, even one adding nothing.
    """
    names = _leftover_names(out)
    removed: list[Path] = []
    if out.is_dir() and not out.is_symlink():
        _publish_manifest(out)
    try:
        entries = list(os.scandir(out.parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if names.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            _remove_tree(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def check_writable(out: Path, *, partition_by: str, overwrite: bool) -> dict[str, Any]:
    """Check that `out` can receive a conversion; return its manifest ({} if new).

    Raises
    ------
    DatasetError
        If `out` is a file, a directory that is not a smsanalytics dataset (it is never
        deleted, even with `overwrite`), or a dataset partitioned another way; or if where
        its manifest goes (:func:`manifest_path`) is something else than a file.
    """
    beside = manifest_path(out)
    if os.path.lexists(beside) and (beside.is_symlink() or not beside.is_file()):
        # The manifest is renamed there after the swap: failing then would leave a
        # committed version and an error; refuse now, before anything is written.
        raise DatasetError(
            str(out), f"where its manifest goes, {beside}, is not a regular file; remove it"
        )
    if not out.exists():
        return {}
    if not out.is_dir():
        raise DatasetError(str(out), "exists and is not a directory")
    return check_manifest(
        out, read_manifest(out), partition_by=partition_by, overwrite=overwrite,
        empty=not any(out.iterdir()),
    )


def check_manifest(
    out: str | Path, manifest: dict[str, Any], *, partition_by: str, overwrite: bool, empty: bool
) -> dict[str, Any]:
    """The checks of :func:`check_writable` on a directory's manifest ({} if it has none)
    and whether the directory is `empty`: for datasets on other file systems too.

    Raises
    ------
    DatasetError
        As :func:`check_writable`.
    """
    if not manifest:
        if not empty:
            raise DatasetError(
                str(out),
                "exists and is not a smsanalytics dataset (no manifest "
                f"{manifest_path(out).name} beside it); choose another output directory",
            )
        return {}
    if manifest.get("format") != _FORMAT:
        raise DatasetError(str(out), "its manifest is not a smsanalytics manifest")
    if not overwrite and manifest.get("partition_by") != partition_by:
        raise DatasetError(
            str(out),
            f"is partitioned by {manifest.get('partition_by')!r}, not {partition_by!r}; "
            "pass the same partitioning or overwrite",
        )
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest of the version being built in `directory`, inside it.

    :func:`commit_version` moves it beside the dataset once the version is swapped in.
    """
    (directory / MANIFEST_NAME).write_text(manifest_text(manifest), encoding="utf-8")


def manifest_text(manifest: dict[str, Any]) -> str:
    """The text of a manifest file holding `manifest`."""
    return json.dumps({"format": _FORMAT, **manifest}, indent=2, default=str) + "\n"


def parse_manifest(path: str | Path, source: str, data: bytes) -> dict[str, Any]:
    """The manifest in `data`, the bytes of the dataset at `path`'s manifest file `source`
    (its name or URI, for the error).

    Raises
    ------
    DatasetError
        If it is not a JSON object.
    """
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise DatasetError(str(path), f"unreadable manifest {source}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(str(path), f"unreadable manifest {source}: not a JSON object")
    return manifest


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc: int = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def foreign_files(path: Path) -> list[Path]:
    """What the dataset directory `path` holds that the dataset did not write.

    The dataset writes its Parquet files (:func:`dataset_files`: every reader takes any
    such file for data) and the ``month=`` folders holding them; a dataset from before the
    manifest moved out also holds its manifest (:data:`MANIFEST_NAME`), which is not
    carried over: the new version has its own.
    Anything else (notes, a copied archive, a rejects file, a folder, a link) is the
    user's. Returned relative to `path`, folders before what they hold; links are not
    followed.

    Raises
    ------
    OSError
        If a folder in it cannot be read (``chmod 000``): what it holds is not known, so
        it cannot be carried into a new version.
    """
    ours = {path / MANIFEST_NAME, *dataset_files(path)}
    found: list[Path] = []
    for folder, dirs, files in os.walk(path, onerror=_raise):
        here = Path(folder)
        for name in sorted(dirs):
            entry = here / name
            if entry.is_symlink() or not name.startswith(PARTITION_DIR_PREFIX) or here != path:
                found.append(entry.relative_to(path))
        found.extend((here / f).relative_to(path) for f in sorted(files) if here / f not in ours)
    return found


def _raise(exc: OSError) -> None:
    raise exc


def _carry_foreign(src: Path, dst: Path, *, move: bool) -> None:
    """Give the new version `dst` the user's files of `src`: hard links (or copies), or
    moved when `src` is about to be removed. What `dst` has already is left. A folder is
    made private, then given the mode and group of the user's once it holds all it
    should (a private folder is never recreated open)."""
    folders: list[tuple[Path, Path]] = []
    try:
        foreign = foreign_files(src)
    except OSError as exc:
        raise DatasetError(
            str(src), f"cannot read {exc.filename}: {exc.strerror}; make it readable or "
            "move it out of the dataset (which was not changed)"
        ) from None
    for rel in foreign:
        a, b = src / rel, dst / rel
        if os.path.lexists(b):
            continue
        b.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.rename(a, b)
        elif a.is_dir() and not a.is_symlink():
            b.mkdir(mode=0o700)
            folders.append((a, b))
        else:
            try:
                os.link(a, b, follow_symlinks=False)
            except OSError:
                shutil.copy2(a, b, follow_symlinks=False)
    for a, b in reversed(folders):  # the deepest first: a read-only one is filled already
        was = os.lstat(a)
        _give_access(b, was, 0o7777)
        os.chmod(b, stat.S_IMODE(was.st_mode))


def commit_version(staging: Path, out: Path) -> None:
    """Make the directory `staging` the dataset `out`, in one atomic step where possible.

    On Linux the two directories are exchanged atomically, so a reader or a crash sees
    either the old version or the new one, whole. Elsewhere there is a short moment
    between two renames when `out` does not exist. What the user keeps in `out` that the
    dataset did not write (:func:`foreign_files`) goes into the new version: linked
    before the swap, and anything that appeared since moved after it. The manifest
    `staging` holds (:func:`write_manifest`) is moved beside `out` right after the swap.
    The new version ends with the mode and, where the user may set it, the group of the
    folder it replaced (a group let in, a setgid bit): what was given to the dataset
    outlives each conversion.
    """
    was = os.lstat(out) if out.is_dir() else None
    if was is not None:
        _carry_foreign(out, staging, move=False)
        # The old folder's group and mode before the swap (a cut after it keeps them),
        # with the owner's write kept until the end: the manifest is moved out after it.
        _give_access(staging, was, 0o7777)
    for f in staging.rglob("*"):
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    if not out.exists():
        os.rename(staging, out)
    elif _exchange(staging, out):
        pass
    else:  # pragma: no cover - non-Linux fallback
        old = out.parent / f"{_sibling(out, 'version')}old-{uuid.uuid4().hex}"
        os.rename(out, old)
        os.rename(staging, out)
        staging = old
    _publish_manifest(out)
    if staging.exists():  # the previous version
        _carry_foreign(staging, out, move=True)
        _remove_tree(staging)
    if was is not None:  # last: a mode without the owner's write would stop the above
        os.chmod(out, stat.S_IMODE(was.st_mode))
    _fsync_dir(out.parent)


def _publish_manifest(out: Path) -> None:
    """Move the manifest of the version just swapped in out of the folder, beside it.

    Until this rename the manifest inside is the one read (:func:`read_manifest`), so the
    record read always matches the files: a crash in between leaves the manifest inside
    until the next conversion, when it is moved out.
    """
    inside = out / MANIFEST_NAME
    if inside.exists():
        os.replace(inside, manifest_path(out))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _open_lock(out: Path) -> Any:
    """Open (or create) the lock file of `out`, never through a link to another file.

    A symbolic link there, or a file with other names (a hard link), could make the
    lock's ``pid`` line overwrite someone else's file: refused.
    """
    path = out.parent / f".{out.name}.lock"
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_NONBLOCK, 0o644)  # O_NONBLOCK: a FIFO cannot hang us
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DatasetError(
                str(out), f"its lock file {path} is a symbolic link; remove the link"
            ) from None
        raise
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_nlink != 1:
        problem = "has other names (hard links)"
    if problem:
        os.close(fd)
        raise DatasetError(str(out), f"its lock file {path} {problem}; remove it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "r+")


@contextmanager
def locked(out: Path, *, timeout: float = 60.0) -> Iterator[None]:
    """Hold the exclusive write lock of dataset `out` (a file beside it).

    Raises
    ------
    DatasetLockedError
        If another process still holds it after `timeout` seconds.
    """
    fh = _open_lock(out)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise DatasetLockedError(
                        str(out),
                        f"another conversion ({holder}) is writing this dataset; "
                        f"waited {timeout:g} s",
                    ) from None
                time.sleep(0.1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


@dataclass
class DatasetInfo:
    """What a dataset holds (``smsanalytics info``).

    Attributes
    ----------
    path : str
        Dataset directory.
    rows : int
        Messages in the dataset.
    first, last : datetime or None
        Earliest and latest ``created_at`` (UTC).
    partitions : dict
        Rows per partition (``month`` value, or ``""`` when unpartitioned).
    files : int
        Parquet files.
    size : int
        Bytes on disk.
    manifest : dict
        The manifest's record (:func:`read_manifest`).
    """

    path: str
    rows: int
    first: datetime | None
    last: datetime | None
    partitions: dict[str, int]
    files: int
    size: int
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the information as JSON-ready values."""
        d = asdict(self)
        d["first"] = self.first.isoformat() if self.first else None
        d["last"] = self.last.isoformat() if self.last else None
        return d


def describe(path: str | Path) -> DatasetInfo:
    """Describe the dataset at `path` from its Parquet metadata and a small scan.

    Raises
    ------
    DatasetError
        If `path` is not a readable dataset.
    """
    files = dataset_files(path)
    if not files and not has_manifest(path):
        raise DatasetError(str(path), "no dataset here (no Parquet files, no manifest)")
    import pyarrow.dataset as pads  # imports pandas: only when reading

    root = Path(path)
    partitions: dict[str, int] = {}
    first = last = None
    try:
        for f in files:
            key = partition_of(f, root)
            meta = pq.ParquetFile(f).metadata
            partitions[key] = partitions.get(key, 0) + meta.num_rows
        if files:
            col = pads.dataset([str(f) for f in files], format="parquet").to_table(
                columns=["created_at"]
            )["created_at"]
            lo, hi = pc.min_max(col).values()
            first, last = lo.as_py(), hi.as_py()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(str(path), f"cannot read the Parquet files: {exc}") from exc
    return DatasetInfo(
        path=str(path),
        rows=sum(partitions.values()),
        first=first,
        last=last,
        partitions=dict(sorted(partitions.items())),
        files=len(files),
        size=sum(f.stat().st_size for f in files),
        manifest=read_manifest(path),
    )


_ROW_GROUP_ROWS = 65_536
_BUFFERED_ROWS = 65_536
# Parquet dictionary pages pay off for repeated values (enums, numbers, countries, costs);
# for the nearly unique columns they are built and then abandoned: wasted time and space.
_NEARLY_UNIQUE = ("sid", "event_id", "body_text", "source_line", "status_history")
_DICTIONARY_COLUMNS = [
    f.name
    for f in MESSAGE_SCHEMA
    if f.name not in _NEARLY_UNIQUE and not pa.types.is_timestamp(f.type)
]


# Min/max statistics let readers skip row groups on a range filter (times, costs, codes,
# countries); for free text and random ids they skip nothing and cost 5% of the write.
_NO_STATISTICS = ("sid", "event_id", "from_number", "to_number", "body_text", "error",
                  "unicode_chars", "from_location", "to_location", "status_history")  # fmt: skip
_STATISTICS_COLUMNS = [name for name in MESSAGE_SCHEMA.names if name not in _NO_STATISTICS]


def _parquet_writer(path: Path) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        MESSAGE_SCHEMA,
        compression="zstd",
        # pyarrow takes a list of columns (documented); pyarrow-stubs 20 says bool only.
        use_dictionary=_DICTIONARY_COLUMNS,  # type: ignore[arg-type]
        write_statistics=_STATISTICS_COLUMNS,
        write_batch_size=_ROW_GROUP_ROWS,  # encode a row group in one go: 8% faster
    )


def partition_of(path: Path, root: Path) -> str:
    """The partition key (``month`` value) of the dataset file `path`; ``""`` if none."""
    rel = path.relative_to(root)
    return rel.parts[0].removeprefix(PARTITION_DIR_PREFIX) if len(rel.parts) > 1 else ""


def _partition_dir(root: Path, key: str) -> Path:
    return root / f"{PARTITION_DIR_PREFIX}{key}" if key else root


def _new_file_writer(folder: Path) -> tuple[Path, pq.ParquetWriter]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{uuid.uuid4().hex}.parquet"
    return path, _parquet_writer(path)


#: Where a message's month comes from: its creation, else the first instant it has.
MONTH_SOURCES = ("created_at", "updated_at", "delivered_at", "sent_at", "event_at")
#: Partition of the messages with none of those instants.
UNKNOWN_MONTH = "unknown"


def month_groups(table: pa.Table) -> tuple[list[str], np.ndarray]:
    """The month partition of each message: the distinct keys and each row's index.

    The month (``YYYY-MM``, UTC) is that of ``created_at``, else of the first of
    :data:`MONTH_SOURCES` the message has; :data:`UNKNOWN_MONTH` if it has none. Computed
    on the integer timestamps with NumPy's calendar months: formatting a text per row, or
    extracting year and month in SQL, costs ten times more.

    Returns
    -------
    keys : list of str
        The distinct partition keys, in order of time (``unknown`` last).
    indices : numpy.ndarray
        For each row, the index of its key in `keys`.

    Examples
    --------
    >>> import datetime as dt
    >>> t = pa.table({"created_at": pa.array([dt.datetime(2025, 3, 31, 23, 59), None,
    ...                                       dt.datetime(1969, 12, 31)], MESSAGE_SCHEMA.field(
    ...     "created_at").type)})
    >>> month_groups(t)
    (['1969-12', '2025-03', 'unknown'], array([1, 2, 0]))
    """
    present = [c for c in MONTH_SOURCES if c in table.column_names]
    when = pc.coalesce(*[table.column(c) for c in present]) if present else None
    if when is None or when.null_count == len(when):
        return [UNKNOWN_MONTH], np.zeros(table.num_rows, dtype=np.int64)
    micros = when.cast(pa.int64()).fill_null(pa.scalar(0, pa.int64())).to_numpy()
    months = micros.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    if when.null_count:
        months[pc.is_null(when).to_numpy(zero_copy_only=False)] = np.iinfo(np.int64).max
    values, indices = np.unique(months, return_inverse=True)
    keys = [
        UNKNOWN_MONTH if v == np.iinfo(np.int64).max else str(np.datetime64(int(v), "M"))
        for v in values.tolist()
    ]
    return keys, indices.reshape(-1)


class PartitionWriter:
    """Write batches of messages into a dataset directory: one new file per partition.

    Parameters
    ----------
    root : Path
        Directory to write into (a new version's directory).
    partition_by : {'month', 'none'}
        One file per month directory (``month=YYYY-MM/part-<id>.parquet``) or one file in
        `root`. A row's month is its batch's ``month`` column if there is one (``YYYY-MM``),
        else worked out from its times by :func:`month_groups`.

    Notes
    -----
    Files are zstd-compressed with the full :data:`MESSAGE_SCHEMA`, so a reader gets the
    dictionary-encoded columns and every field's description and unit from the file.
    Rows are buffered per partition up to one row group, and at most ``_BUFFERED_ROWS``
    in all, so memory stays bounded however the months interleave. Writing releases the
    GIL: a thread can write while another parses the next batch.

    Examples
    --------
    >>> import tempfile
    >>> from smsanalytics.schema import MESSAGE_SCHEMA
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name)
    >>> rows = pa.Table.from_pylist([{"sid": "a"}, {"sid": "b"}], schema=MESSAGE_SCHEMA)
    >>> with PartitionWriter(root, partition_by="none") as w:
    ...     file_no, pos = w.write(rows)
    ...     _ = w.write(MESSAGE_SCHEMA.empty_table())
    >>> w.counts, pos.tolist()
    ({'': 2}, [0, 1])
    >>> tmp.cleanup()
    """

    def __init__(self, root: Path, *, partition_by: str) -> None:
        self.root = root
        self.partition_by = partition_by
        #: Files written, in the order they were opened; a file's number is its index.
        self.paths: list[Path] = []
        #: Rows written per partition key (``""`` when unpartitioned).
        self.counts: dict[str, int] = {}
        self._numbers: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self) -> dict[int, str]:
        """Partition key of each file number."""
        return {n: k for k, n in self._numbers.items()}

    def write(self, batch: pa.Table | pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """Add rows; return the file number and the row position in that file of each row.

        Parameters
        ----------
        batch : pyarrow.Table or pyarrow.RecordBatch
            The message columns (others, such as ``month``, are dropped from the files).

        Returns
        -------
        file_no, position : numpy.ndarray
            Aligned with the rows of `batch` (int32 and int64).
        """
        n = batch.num_rows
        file_no = np.zeros(n, dtype=np.int32)
        position = np.zeros(n, dtype=np.int64)
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        indices: np.ndarray | None  # None with one group or none: every row is in it
        if self.partition_by == "month" and n and PARTITION_COLUMN in table.column_names:
            # The stub of dictionary_encode returns its argument's type, not a dictionary;
            # and the dictionary of an encoding that masks nulls holds no null.
            codes = cast(
                "pa.DictionaryArray[Any, Any]",  # quoted: not subscriptable at run time
                pc.dictionary_encode(table.column(PARTITION_COLUMN)).combine_chunks(),
            )
            groups = cast(list[str], codes.dictionary.to_pylist())
            indices = codes.indices.to_numpy(zero_copy_only=False)
        elif self.partition_by == "month" and n:
            groups, indices = month_groups(table)
        else:
            groups, indices = [""] if n else [], None
        # Enumerated columns become dictionaries before the reordering: cheaper to move.
        table = table.select(MESSAGE_SCHEMA.names).cast(MESSAGE_SCHEMA)
        if indices is not None and len(groups) > 1:  # one reordering, then each month a slice
            order = None
            if np.any(indices[1:] < indices[:-1]):  # not already in month order
                order = np.argsort(indices, kind="stable")
                table = table.take(order)
            sizes = np.bincount(indices, minlength=len(groups))
        else:
            order, sizes = None, np.array([n] if groups else [], dtype=np.int64)
        start_row = 0
        for key, size in zip(groups, sizes.tolist(), strict=True):
            rows = slice(start_row, start_row + size) if order is None else order[
                start_row : start_row + size
            ]
            part = table.slice(start_row, size)
            start_row += size
            start = self.counts.get(key, 0)
            file_no[rows] = self._number(key)
            position[rows] = np.arange(start, start + size)
            self.counts[key] = start + size
            self._buffers.setdefault(key, []).append(part)
            self._buffered[key] = self._buffered.get(key, 0) + size
            if self._buffered[key] >= _ROW_GROUP_ROWS:
                self._flush(key)
        if sum(self._buffered.values()) >= _BUFFERED_ROWS:  # months interleave: bound memory
            for key in list(self._buffers):
                self._flush(key)
        return file_no, position

    def _number(self, key: str) -> int:
        if key not in self._numbers:
            path, writer = _new_file_writer(_partition_dir(self.root, key))
            self._numbers[key] = len(self.paths)
            self.paths.append(path)
            self._writers[key] = writer
        return self._numbers[key]

    def _flush(self, key: str) -> None:
        tables = self._buffers.pop(key, [])
        self._buffered[key] = 0
        if tables:
            table = pa.concat_tables(tables)
            self._writers[key].write_table(table, row_group_size=_ROW_GROUP_ROWS)

    def close(self, *, flush: bool = True) -> None:
        """Flush the buffers (unless told not to: the files are being abandoned) and close
        every file."""
        try:
            if flush and self._buffers:  # the months' last rows, written side by side
                with ThreadPoolExecutor(max_workers=2) as pool:
                    list(pool.map(self._flush, list(self._buffers)))
        finally:
            for w in self._writers.values():
                w.close()
            self._writers.clear()


def write_partitioned(
    batches: Iterable[pa.RecordBatch], root: Path, *, partition_by: str
) -> dict[str, int]:
    """Write message batches as the dataset's Parquet files under `root`.

    Parameters
    ----------
    batches : iterable of pyarrow.RecordBatch
        The message columns plus a ``month`` column (``YYYY-MM``) when `partition_by` is
        ``"month"``.
    root : Path
        Directory to write into (a new version's directory).
    partition_by : {'month', 'none'}
        See :class:`PartitionWriter`.

    Returns
    -------
    dict
        Rows written per partition (``""`` when unpartitioned).
    """
    with PartitionWriter(root, partition_by=partition_by) as writer:
        for batch in batches:
            writer.write(batch)
    return writer.counts


def rewrite_file(
    src: Path,
    dst: Path,
    *,
    drop_positions: np.ndarray | None = None,
    drop_sids: pa.Array[Any] | None = None,
) -> int:
    """Copy the Parquet file `src` to `dst` without some of its rows, a row group at a time.

    Parameters
    ----------
    src, dst : Path
        A dataset file and where its filtered copy goes (may be `src` itself: the copy is
        written beside it and renamed over it).
    drop_positions : numpy.ndarray, optional
        Row positions (0-based, in file order) to leave out.
    drop_sids : pyarrow.Array, optional
        ``sid`` values whose rows to leave out.

    Returns
    -------
    int
        Rows kept. When none are, `dst` is not created (and `src` is removed if it is `dst`).
    """
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    drop = np.sort(drop_positions) if drop_positions is not None else None
    kept = 0
    source = pq.ParquetFile(src)
    try:
        with _parquet_writer(tmp) as writer:
            offset = 0
            for batch in source.iter_batches(batch_size=_ROW_GROUP_ROWS):
                mask = np.ones(batch.num_rows, dtype=bool)
                if drop is not None:
                    lo, hi = np.searchsorted(drop, [offset, offset + batch.num_rows])
                    mask[drop[lo:hi] - offset] = False
                offset += batch.num_rows
                if drop_sids is not None:
                    mask &= ~pc.is_in(batch.column("sid"), value_set=drop_sids).to_numpy(
                        zero_copy_only=False
                    )
                if mask.any():
                    part = pa.Table.from_batches([batch.filter(pa.array(mask))])
                    writer.write_table(part.cast(MESSAGE_SCHEMA), row_group_size=_ROW_GROUP_ROWS)
                    kept += int(mask.sum())
        source.close()
        if kept:
            os.replace(tmp, dst)
        elif dst == src:
            src.unlink()
    finally:
        tmp.unlink(missing_ok=True)
    return kept
