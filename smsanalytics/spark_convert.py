"""Conversion on Spark: the dataset ``smsanalytics convert`` makes, built by a Spark job.

This module owns the distributed conversion (:func:`convert`, also
``smsanalytics.spark.convert`` and ``smsanalytics convert --engine spark``). The steps:

1. The driver lists the inputs (local paths with :func:`~smsanalytics.readers.find_inputs`,
   URIs through Hadoop's FileSystem API, :class:`~smsanalytics.spark_storage.HadoopStore`)
   and cuts them into *pieces*: whole files, or, for an uncompressed JSON Lines file
   larger than `split_bytes`, byte ranges at line boundaries. A first small job counts
   the lines of each range (and, for a URI, finds its line boundaries), so every range
   knows the number of its first line.
2. Tasks (``mapInArrow``) read their pieces with the project's reader and parse and
   enrich them with :func:`~smsanalytics.ingest.parse_candidates`, in groups of about
   50,000 records (a parse per group amortises its planning); they hand back the good
   rows, the rejects and the count of records. A piece behind a URI is first copied
   (its byte range only) to the task's local disk with pyarrow.fs.
3. Duplicates are decided by the rule of the local conversion: per sid, the latest
   ``updated_at``, then ``event_at``, then ``event_try``, then the record read last (a
   window over that ordering; pieces are numbered in reading order). A row already in the
   dataset is replaced only by a strictly newer record.
4. Tasks write the winning rows with the project's writer
   (:class:`~smsanalytics.dataset.PartitionWriter`), and the dataset is committed:

   * **a local path** (or ``file://``): as the local conversion does, under the
     dataset's lock, into a new version directory that the driver completes (existing
     files linked or filtered) and swaps in with one atomic rename;
   * **any other URI** (object stores cannot rename atomically): rename-free. Tasks
     upload new files under unique names (``part-<uuid>.parquet``) beside the current
     ones; files holding replaced rows are rewritten under new names; then the manifest,
     which lists the dataset's files, is written in one ``create`` beside the folder
     (``.DIR.smsanalytics.json``, as a local dataset's): that is the commit. Readers
     (``connect(..., engine="spark")``) and the next conversion read only the files the
     manifest lists, so a crash at any point leaves the previous version whole (its
     manifest, its files). Files the new manifest no longer lists are deleted after it
     is written, and so is a manifest inside the folder (``DIR/_smsanalytics.json``,
     where conversions wrote it before), which is read while there is none beside.

Inputs and outputs must be seen by the driver and every executor: local paths on a
shared mount, or URIs of :data:`~smsanalytics.spark_storage.TASK_SCHEMES`. Privacy
options (``pseudonymize_key``, ``redact_bodies``) are applied in the tasks by the local
conversion's own code (:func:`~smsanalytics.ingest.parse_candidates`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import duckdb
import numpy as np
import pyarrow as pa

from . import dataset as ds
from . import privacy
from .errors import ArgumentError, DatasetError, InputError, SmsAnalyticsError, StrictModeError
from .ingest import PARTITIONINGS, ConversionSummary, default_rejects_path
from .readers import InputFile, find_inputs, line_boundaries
from .schema import MESSAGE_SCHEMA, RAW_SCHEMA
from .spark import is_spark_error, spark_error_reason
from .spark_storage import (
    HadoopStore,
    TaskSettings,
    arrow_filesystem,
    check_location,
    display_name,
    download,
    is_local,
    join,
    local_path,
    manifest_uris,
    scheme_of,
    scratch_dir,
    spark_string,
    upload,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["check_arguments", "convert", "DEFAULT_SPLIT_BYTES", "GROUP_RECORDS"]

#: A JSON Lines file larger than this is read by several tasks, one range each [bytes].
DEFAULT_SPLIT_BYTES = 128 << 20
#: Records per parse inside a task: enough to amortise the parse's planning.
GROUP_RECORDS = 50_000
# Earlier than any instant a dataset holds (1678 and later): stands for a missing one.
_NEVER = "TIMESTAMP '1000-01-01 00:00:00'"
_PIECE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("piece", pa.int64()), ("name", pa.string()), ("location", pa.string()),
    ("kind", pa.string()), ("compression", pa.string()), ("size", pa.int64()),
    ("start", pa.int64()), ("end", pa.int64()), ("first_line", pa.int64()),
]
_PIECE_SCHEMA = pa.schema(_PIECE_FIELDS)
#: A piece of input read by one task: a row of _PIECE_SCHEMA, as a dict (it crosses to
#: the tasks as Arrow and comes back from ``to_pylist``).
_Piece = dict[str, Any]
_REJECT_FIELDS = [("reason", pa.string()), ("raw", pa.string())]
_ROW_FIELDS = [("piece", pa.int64()), ("record_no", pa.int64()), ("row_kind", pa.string()),
               ("records", pa.int64())]


@dataclass(frozen=True)
class _Input:
    """An input file and where tasks open it: ``location`` is its URI, or "" for a local
    path (opened by ``file.name``)."""

    file: InputFile
    location: str = ""


def convert(
    spark: SparkSession,
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    rejects: str | Path | None = None,
    partition_by: str = "month",
    overwrite: bool = False,
    strict: bool = False,
    enrich_rows: bool = True,
    lock_timeout: float = 60.0,
    split_bytes: int = DEFAULT_SPLIT_BYTES,
    pseudonymize_key: bytes | None = None,
    redact_bodies: bool = False,
    pseudonymize_recipients: bool = False,
) -> ConversionSummary:
    """Convert Callr archives into a Parquet dataset with a Spark job.

    The dataset, rejects file and summary are those :func:`smsanalytics.convert` makes
    from the same inputs (same rows, values, types and partitions; file names differ).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session the job runs on.
    inputs : iterable of str or Path
        Files or directories (walked recursively): paths, or URIs (``hdfs://``,
        ``s3a://``, ``abfss://``, ``gs://``, ``file://``); not standard input.
    out : str or Path
        Dataset directory, seen by the driver and every executor: a path, or a URI
        (committed without renames, see the module).
    rejects : str or Path, optional
        Rejects file (path or URI); default ``<out>.rejects.jsonl`` beside the dataset.
    partition_by, overwrite, strict, enrich_rows
        As for :func:`smsanalytics.convert`.
    lock_timeout : float
        As for :func:`smsanalytics.convert`, for a local dataset. A dataset behind another
        URI has no lock: run one conversion into it at a time (a second one that commits
        first makes the other fail, without changing the dataset).
    split_bytes : int
        Uncompressed JSON Lines files larger than this are split into ranges of about
        this size, each read by one task [bytes].
    pseudonymize_key, redact_bodies, pseudonymize_recipients
        As for :func:`smsanalytics.convert`: the tasks protect rows and rejects with the
        local conversion's code, so tokens and redactions are the same. The key reaches
        the tasks inside the job's closure, as bytes; it is never logged or written.

    Returns
    -------
    ConversionSummary
    """
    inputs = list(inputs)
    privacy_options = _Privacy(pseudonymize_key, redact_bodies, pseudonymize_recipients)
    check_arguments(inputs, out, rejects, partition_by=partition_by, split_bytes=split_bytes,
                    **privacy_options.parse_options())
    started = time.perf_counter()
    locations = [str(p) for p in [*inputs, out, *([rejects] if rejects else [])]]
    store = None if all(is_local(p) for p in locations) else HadoopStore(spark)
    job = _Job(spark, store, store.settings_for(*locations) if store else TaskSettings(),
               partition_by=partition_by, overwrite=overwrite, strict=strict,
               enrich_rows=enrich_rows, split_bytes=split_bytes,
               privacy_options=privacy_options)
    try:
        # Each URI the user gave is made a percent-encoded one once, by Hadoop (which
        # takes it as Spark does); local paths stay paths.
        # Without a store every location is local, and kept as given.
        qualify: Callable[[str], str] = store.qualify if store is not None else str
        where = str(out) if is_local(out) else qualify(str(out)).rstrip("/")
        rejects_location = (str(rejects) if rejects and is_local(rejects) else
                            qualify(str(rejects)) if rejects else None)
        if not rejects_location:
            rejects_location = (str(default_rejects_path(local_path(out).absolute()))
                                if is_local(out) else where + ".rejects.jsonl")
        files = _list_inputs(inputs, store, where, rejects_location)
        if is_local(out):
            summary = _into_directory(job, files, local_path(out).absolute(),
                                      rejects_location, lock_timeout)
        else:
            summary = _into_store(job, files, where, rejects_location)
    except Exception as exc:
        if is_spark_error(exc):
            raise SmsAnalyticsError(
                f"the Spark job failed: {spark_error_reason(exc)}; "
                "the dataset was not changed"
            ) from exc
        raise
    summary.elapsed = time.perf_counter() - started
    return summary


def check_arguments(
    inputs: Iterable[str | Path],
    out: str | Path,
    rejects: str | Path | None = None,
    *,
    partition_by: str = "month",
    split_bytes: int = DEFAULT_SPLIT_BYTES,
    pseudonymize_key: bytes | None = None,
    redact_bodies: bool = False,
    pseudonymize_recipients: bool = False,
) -> None:
    """Refuse what :func:`convert` cannot do, before a Spark session is started for it.

    Raises
    ------
    ArgumentError
        If `inputs` hold standard input (``-``: Spark tasks cannot read it), a URI has a
        scheme the tasks cannot open, `out` is the root of a bucket, or `partition_by` or
        `split_bytes` is not valid.
    PrivacyOptionsError
        If recipients are to be pseudonymised without a key, or the key is weak.
    """
    _Privacy(pseudonymize_key, redact_bodies, pseudonymize_recipients).check()
    if partition_by not in PARTITIONINGS:
        raise ArgumentError("partition_by", partition_by, f"choose from {PARTITIONINGS}")
    if not isinstance(split_bytes, int) or split_bytes < 1:
        raise ArgumentError("split_bytes", split_bytes, "must be a positive number of bytes")
    if any(str(p) == "-" for p in inputs):
        raise ArgumentError(
            "inputs", "-", "standard input cannot be read by Spark tasks; save it to a file "
            "every node sees, or convert with the default engine")
    for name, location in [*(("inputs", p) for p in inputs), ("out", out),
                           *([("rejects", rejects)] if rejects else [])]:
        check_location(location, name)
    if not is_local(out) and not urlsplit(str(out)).path.strip("/"):
        raise ArgumentError("out", str(out), "the root of a bucket or file system has no "
                            "place beside it for the dataset's manifest; name a folder in it")


# ---------------------------------------------------------------------------------------
# The two ways to commit: a local directory, or a store without renames
# ---------------------------------------------------------------------------------------


@dataclass
class _Job:
    """What every step of one conversion needs."""

    spark: SparkSession
    store: HadoopStore | None
    settings: TaskSettings
    partition_by: str
    overwrite: bool
    strict: bool
    enrich_rows: bool
    split_bytes: int
    privacy_options: _Privacy


def _list_inputs(inputs: list[str | Path], store: HadoopStore | None, out: str,
                 rejects: str) -> list[_Input]:
    """The input files in reading order: local paths as :func:`find_inputs` finds them,
    URIs through Hadoop's FileSystem API with the same rules (known suffixes, no hidden
    names, sorted; a file named explicitly is read whatever its name).

    What a folder's walk finds inside the dataset or as its rejects file is output, not
    input (``convert arch --out arch/ds``: the next run would read the rejects), as the
    local conversion decides.
    """
    from .readers import classify, is_input_name  # the reader's own rules for a name

    dataset_key, rejects_key = _where(out), _where(rejects)

    def is_output(location: str) -> bool:
        key = _where(location)
        return key == rejects_key or (key[:2] == dataset_key[:2]
                                      and key[2].startswith(dataset_key[2].rstrip("/") + "/"))

    found: list[_Input] = []
    for given in inputs:
        if is_local(given):
            files = find_inputs([local_path(given)])
            if local_path(given).is_dir():
                files = [f for f in files if not is_output(f.name)]
            found.extend(_Input(f) for f in files)
            continue
        assert store is not None
        uri = store.qualify(str(given))
        kind = store.kind(uri)
        if kind is None:
            raise InputError(uri, "no such file or directory")
        if kind == "file":  # named explicitly: read whatever its name
            entries = [(e.uri, e.size) for e in store.list_files(uri)]
        else:
            entries = [(e.uri, e.size) for e in store.list_files(uri)
                       if is_input_name(_uri_path(e.relative)) and not is_output(e.uri)]
        for entry_uri, size in entries:
            what, compression = classify(_uri_path(urlsplit(entry_uri).path))
            found.append(_Input(InputFile(display_name(entry_uri), what, compression, size),
                                entry_uri))
    return found


def _uri_path(path: str) -> PurePosixPath:
    """The path part of a URI, POSIX-parsed whatever the driver's system, for the reader's
    rules for a file's name (:func:`~smsanalytics.readers.classify`)."""
    return PurePosixPath(path)


def _where(location: str | Path) -> tuple[str, str, str]:
    """A location as (scheme, host, path), local paths resolved: to compare two."""
    if scheme_of(location) in ("", "file"):
        return "file", "", str(local_path(location).resolve())
    parts = urlsplit(str(location))
    return parts.scheme.lower(), parts.netloc, unquote(parts.path)


def _into_directory(job: _Job, files: list[_Input], out: Path, rejects_location: str,
                    lock_timeout: float) -> ConversionSummary:
    """The local commit: a new version directory, swapped in under the dataset's lock."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with ds.locked(out, timeout=lock_timeout):
        ds.clean_leftovers(out)
        manifest = ds.check_writable(out, partition_by=job.partition_by,
                                     overwrite=job.overwrite)
        job.privacy_options.check_compatible(manifest, out, job.overwrite)
        existing = [] if job.overwrite else ds.dataset_files(out) if manifest else []
        version = ds.new_version_dir(out)
        try:
            target = _DirectoryTarget(out, version, existing)
            return _run(job, files, target, rejects_location)
        finally:
            shutil.rmtree(version, ignore_errors=True)


def _into_store(job: _Job, files: list[_Input], out: str,
                rejects_location: str) -> ConversionSummary:
    """The rename-free commit: new files under new names, then the manifest beside."""
    assert job.store is not None
    store = job.store
    beside, inside = manifest_uris(out)
    kind = store.kind(out)
    if kind == "file":
        raise DatasetError(out, "exists and is not a directory")
    if store.kind(beside) == "dir":  # the commit would fail after the files are uploaded
        raise DatasetError(out, f"where its manifest goes, {beside}, is a directory; "
                           "remove it")
    before = store.read_bytes(beside)
    legacy = store.read_bytes(inside) if kind == "dir" else None
    source, current = (beside, before) if before is not None else (inside, legacy)
    # Without its folder (removed, or on an object store never given a file) a dataset is
    # empty whatever a manifest left beside says: as a local one, it starts anew.
    manifest = (ds.parse_manifest(out, source, current)
                if current is not None and kind == "dir" else {})
    present = store.list_files(out) if kind == "dir" else []
    ds.check_manifest(out, manifest, partition_by=job.partition_by, overwrite=job.overwrite,
                      empty=not present)
    job.privacy_options.check_compatible(manifest, out, job.overwrite)
    if "files" in manifest:  # written here: exactly its files
        listed = [str(f) for f in manifest["files"]]
    else:  # made elsewhere (copied from a local conversion): its Parquet files
        listed = [e.relative for e in present if _is_data_file(e.relative)]
    target = _StoreTarget(store, job.settings, out, beside, before, listed,
                          [] if job.overwrite else listed,
                          legacy_uri=inside if legacy is not None else None)
    return _run(job, files, target, rejects_location)


def _is_data_file(relative: str) -> bool:
    """A dataset file as :func:`smsanalytics.dataset.dataset_files` takes one."""
    name = PurePosixPath(relative).name
    return name.endswith(".parquet") and not name.startswith((".", "_"))


class _DirectoryTarget:
    """A local dataset directory: files written into a new version, swapped in whole."""

    def __init__(self, out: Path, version: Path, existing: list[Path]) -> None:
        self.out = out
        self.version = version
        self.existing = existing
        self.name = str(out)

    def existing_files(self) -> dict[str, Path]:
        """The dataset's files by the path Spark reports for them, and their URIs."""
        return {str(f): f for f in self.existing}

    def uri(self, key: Path) -> str:
        # Hadoop takes the path as it is: percent-encoding (month%3D...) would not be undone.
        return f"file://{key}"

    def write(self, job: _Job, rows: DataFrame) -> list[tuple[str, str, int]]:
        return _write_rows(rows, str(self.version), "", job.settings, job.partition_by)

    def commit(self, job: _Job, written: list[tuple[str, str, int]],
               replace: dict[Path, list[str]], summary: ConversionSummary) -> None:
        """Link or filter the existing files into the new version, write its manifest, swap."""
        touched = {key for path, key, rows in written if rows}
        for f in self.existing:
            target = self.version / f.relative_to(self.out)
            target.parent.mkdir(parents=True, exist_ok=True)
            sids = replace.get(f)
            if sids is not None:
                ds.rewrite_file(f, target, drop_sids=pa.array(sids, pa.string()))
                touched.add(ds.partition_of(f, self.out))
                continue
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
        for folder in self.version.iterdir():  # partitions all of whose rows were replaced
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        summary.partitions_written = sorted(t for t in touched if t)
        ds.write_manifest(self.version, _manifest(job, summary))
        ds.commit_version(self.version, self.out)



class _StoreTarget:
    """A dataset behind a URI, committed by writing its manifest beside it (no rename
    anywhere)."""

    def __init__(self, store: HadoopStore, settings: TaskSettings, out: str,
                 manifest_uri: str, before: bytes | None, listed: list[str],
                 existing: list[str], *, legacy_uri: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.out = out
        self.manifest_uri = manifest_uri
        self.before = before
        self.listed = listed
        self.existing = existing
        self.legacy_uri = legacy_uri
        self.name = out

    def existing_files(self) -> dict[str, str]:
        return {_path_of(join(self.out, rel)): rel for rel in self.existing}

    def uri(self, key: str) -> str:
        return spark_string(join(self.out, key))

    def write(self, job: _Job, rows: DataFrame) -> list[tuple[str, str, int]]:
        return _write_rows(rows, "", self.out, self.settings, job.partition_by)

    def commit(self, job: _Job, written: list[tuple[str, str, int]],
               replace: dict[str, list[str]], summary: ConversionSummary) -> None:
        """Rewrite the files holding replaced rows under new names, then write the
        manifest listing the new version's files beside the dataset: the commit. Then
        delete what it no longer lists, and a legacy manifest inside the dataset."""
        touched = {key for path, key, rows in written if rows}
        files = [rel for rel, _, rows in written if rows]
        rewritten = _rewrite_remote(job, self.out, replace) if replace else {}
        for rel in self.existing:
            if rel not in replace:
                files.append(rel)
                continue
            touched.add(_partition_of(rel))
            new = rewritten[rel]
            if new is not None:
                files.append(new)
        summary.partitions_written = sorted(t for t in touched if t)
        if self.store.read_bytes(self.manifest_uri) != self.before:
            for rel in {*files} - {*self.listed}:
                self.store.delete(join(self.out, rel))
            raise DatasetError(self.out, "was changed by another conversion while this one "
                               "ran; this one's files were removed, the other's kept; run it "
                               "again")
        manifest = {**_manifest(job, summary), "files": sorted(files)}
        self.store.write_bytes(self.manifest_uri, ds.manifest_text(manifest).encode("utf-8"))
        # Committed: what follows only tidies up (an unlisted file is inert, and a legacy
        # manifest loses to the one beside), so a failure here is not the run's.
        stale = [join(self.out, rel) for rel in {*self.listed} - {*files}]
        for uri in [*([self.legacy_uri] if self.legacy_uri else []), *stale]:
            try:
                self.store.delete(uri)
            except Exception:  # noqa: BLE001
                pass



def _partition_of(relative: str) -> str:
    parts = PurePosixPath(relative).parts
    return parts[0].removeprefix(ds.PARTITION_DIR_PREFIX) if len(parts) > 1 else ""


def _path_of(uri: str) -> str:
    """The path part of a URI, decoded: how a file Spark read is matched to ours."""
    return unquote(urlsplit(uri).path)


def _manifest(job: _Job, summary: ConversionSummary) -> dict[str, Any]:
    return {
        "version": 1,
        "partition_by": job.partition_by,
        "rows": summary.rows_total,
        **job.privacy_options.manifest_entry(),
        "last_conversion": {k: v for k, v in summary.to_dict().items()
                            if k not in ("out", "elapsed", "partitions_written")},
    }


def _put_file(job: _Job, local: Path, location: str, dataset: Path | None = None) -> None:
    """Put the finished local file `local` at `location`: a local path is replaced
    atomically (made private, then given the mode :func:`dataset.guard_beside` decides
    beside the local `dataset` folder), a URI written in one ``create``."""
    if is_local(location):
        path = local_path(location).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            shutil.copyfile(local, tmp)  # into the private file: its mode stays
            if dataset is not None:
                ds.guard_beside(tmp, path, dataset)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    assert job.store is not None
    job.store.write_file(location, local)


def _run(job: _Job, files: list[_Input], target: Any,
         rejects_location: str) -> ConversionSummary:
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    spark = job.spark
    pieces = _pieces(job, files)
    parsed = _parse(job, pieces).persist()
    try:
        # An aggregate without groups has one row.
        counts = parsed.filter("row_kind = 'count'").agg(F.sum("records")).collect()[0][0] or 0
        rejected_rows = (parsed.filter("row_kind = 'reject'")
                         .select("source_file", "source_line", "reason", "raw").toArrow())
        records, rejected = int(counts), rejected_rows.num_rows
        summary = ConversionSummary(
            records=records, rejected=rejected, files=len(files),
            bytes=sum(f.file.size for f in files), out=target.name,
            rejects_path=_shown(rejects_location),
        )
        _write_rejects(job, rejected_rows, rejects_location, summary,
                       target.out if isinstance(target, _DirectoryTarget) else None)
        if job.strict and rejected:
            raise StrictModeError(
                f"{rejected:,} of {records:,} records rejected (strict mode); "
                f"see {summary.rejects_path}; the dataset was not changed")
        rows = parsed.filter("row_kind = 'row'")
        # Duplicates are decided on the keys alone; the rows are not moved (no shuffle of
        # whole rows): the losers, usually few, are taken out where the rows are.
        best_first = Window.partitionBy("sid").orderBy(
            F.col("updated_at").desc_nulls_last(), F.col("event_at").desc_nulls_last(),
            F.col("event_try").desc_nulls_last(), F.col("piece").desc(),
            F.col("record_no").desc())
        ranked = (rows.select("sid", "updated_at", "event_at", "event_try", "piece",
                              "record_no")
                  .withColumn("_rn", F.row_number().over(best_first)).persist())
        losers = ranked.filter("_rn > 1").select("piece", "record_no")
        replace: dict[Any, list[str]] = {}
        old_rows = 0
        existing = target.existing_files()
        if existing:
            stale, replace, old_rows = _against_dataset(
                spark, ranked.filter("_rn = 1"), existing, target.uri)
            losers = losers.unionByName(stale)
        winners = rows.join(losers, ["piece", "record_no"], "left_anti")
        written_parts = target.write(job, winners.select(*MESSAGE_SCHEMA.names))
        ranked.unpersist()
    finally:
        parsed.unpersist()
    written = sum(n for _, _, n in written_parts)
    replaced = sum(len(s) for s in replace.values())
    summary.written, summary.replaced = written, replaced
    summary.duplicates = records - rejected - written
    summary.rows_total = old_rows + written - replaced
    if written or job.overwrite or not existing:
        target.commit(job, written_parts, replace, summary)
    return summary


def _shown(location: str) -> str:
    """A rejects location as the summary shows it: a path absolute, a URI as given."""
    return str(local_path(location).absolute()) if is_local(location) else location


# ---------------------------------------------------------------------------------------
# Pieces: whole files, or line-aligned ranges of large JSON Lines files
# ---------------------------------------------------------------------------------------


class _Privacy:
    """The privacy options of one conversion; the key travels to the tasks in it.

    Its ``repr`` never shows the key (a closure's objects can end up in a log).
    """

    def __init__(self, key: bytes | None, redact_bodies: bool,
                 recipients: bool) -> None:
        self.key = bytes(key) if key is not None else None
        self.redact_bodies = bool(redact_bodies)
        self.recipients = bool(recipients)

    def __repr__(self) -> str:
        return (f"<privacy options: key {'given' if self.key else 'none'}, "
                f"redact_bodies={self.redact_bodies}, recipients={self.recipients}>")

    def check(self) -> None:
        """Refuse, before any job runs, what the local conversion refuses on its first rows
        (recipients without a key, a short or non-random key)."""
        privacy.transform_batch(pa.RecordBatch.from_pylist([], schema=MESSAGE_SCHEMA),
                                **self._transform_options())

    def _transform_options(self) -> dict[str, Any]:
        return {"key": self.key, "redact_bodies": self.redact_bodies,
                "pseudonymize_recipients": self.recipients}

    def parse_options(self) -> dict[str, Any]:
        return {"pseudonymize_key": self.key, "redact_bodies": self.redact_bodies,
                "pseudonymize_recipients": self.recipients}

    def check_compatible(self, manifest: dict[str, Any], out: str | Path,
                         overwrite: bool) -> None:
        """Refuse adding rows protected otherwise than the dataset's (as locally)."""
        if not overwrite:
            privacy.check_compatible(manifest, out, self.key, redact_bodies=self.redact_bodies,
                                     pseudonymize_recipients=self.recipients)

    def manifest_entry(self) -> dict[str, Any]:
        record = privacy.manifest_record(self.key, redact_bodies=self.redact_bodies,
                                         pseudonymize_recipients=self.recipients)
        return {privacy.MANIFEST_KEY: record} if record else {}


def _splittable(f: InputFile, split_bytes: int) -> bool:
    return f.kind == "lines" and f.compression is None and f.size > split_bytes


def _pieces(job: _Job, files: list[_Input]) -> list[_Piece]:
    """The pieces in reading order; ranges know their first line (a job counts lines).

    A local file is cut at line starts by the driver (a line's worth of bytes read per
    cut); a file behind a URI at every `split_bytes`, each task moving its cuts to the
    next line start itself (the driver reads nothing of it).
    """
    pieces: list[_Piece] = []
    ranges: list[int] = []  # indices of ranged pieces, whose first_line is still unknown
    for given in files:
        f = given.file
        base = {"name": f.name, "location": given.location, "kind": f.kind,
                "compression": f.compression, "size": f.size, "first_line": 1}
        if not _splittable(f, job.split_bytes):
            pieces.append({**base, "start": -1, "end": -1})
            continue
        if given.location:
            cuts = [*range(0, f.size, job.split_bytes), f.size]
        else:
            cuts = line_boundaries(f, job.split_bytes)
        for start, end in zip(cuts[:-1], cuts[1:], strict=True):
            ranges.append(len(pieces))
            pieces.append({**base, "start": start, "end": end})
    if ranges:
        spans = [(pieces[i]["name"], pieces[i]["location"], pieces[i]["start"],
                  pieces[i]["end"], pieces[i]["size"]) for i in ranges]
        settings = job.settings
        measured = (job.spark.sparkContext.parallelize(spans, len(spans))
                    .map(lambda span: _measure_span(span, settings)).collect())
        line: dict[str, int] = {}
        for i, (start, end, newlines) in zip(ranges, measured, strict=True):
            name = pieces[i]["name"]
            pieces[i].update(start=start, end=end, first_line=line.get(name, 1))
            line[name] = pieces[i]["first_line"] + newlines
        # A range inside one long line (a URI's fixed cut) holds nothing.
        pieces = [p for p in pieces if p["start"] < 0 or p["start"] < p["end"]]
    for i, p in enumerate(pieces):
        p["piece"] = i
    return pieces


_COUNT_BLOCK = 16 << 20  # bytes read at a time when counting lines
_SEEK_BLOCK = 64 << 10  # bytes read at a time when looking for a line's end


def _measure_span(span: tuple[str, str, int, int, int],
                  settings: TaskSettings) -> tuple[int, int, int]:
    """A range's real bounds and its line ends: (start, end, newlines).

    A local range's bounds are line starts already; a URI's are moved to the first line
    start at or after each, as :func:`~smsanalytics.readers.line_boundaries` cuts (the
    byte after the first line feed from the byte before the cut).
    """
    name, location, start, end, size = span
    if not location:
        with open(name, "rb") as stream:
            return start, end, _count_newlines(stream, start, end)
    fs, path = arrow_filesystem(location, settings)
    with fs.open_input_file(path) as stream:
        start, end = _line_start(stream, start, size), _line_start(stream, end, size)
        return start, end, _count_newlines(stream, start, end) if start < end else 0


def _line_start(stream: pa.NativeFile, at: int, size: int) -> int:
    """The first line start at or after byte `at` of a file of `size` bytes."""
    if at <= 0 or at >= size:
        return max(0, min(at, size))
    stream.seek(at - 1)
    position = at - 1
    while block := stream.read(_SEEK_BLOCK):
        found = block.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(block)
    return size


def _count_newlines(stream: Any, start: int, end: int) -> int:
    """Line ends in bytes [start, end) of an open file, counted as the reader counts them.

    LF, CRLF and a lone CR each end one line (:func:`smsanalytics.readers.iter_raw_batches`
    reads CR-only files line by line), so a CRLF split between two blocks counts once.
    """
    count = 0
    cr_before = False  # the previous block ended with CR
    stream.seek(start)
    left = end - start
    while left > 0:
        block = stream.read(min(left, _COUNT_BLOCK))
        if not block:
            break
        count += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
        if cr_before and block.startswith(b"\n"):
            count -= 1
        cr_before = block.endswith(b"\r")
        left -= len(block)
    return count


# ---------------------------------------------------------------------------------------
# Parse: the project's reader, parse and enrichment, in tasks
# ---------------------------------------------------------------------------------------


def _spark_schema(fields: list[pa.Field[Any]]) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    from .spark import _plain_type

    return from_arrow_schema(pa.schema([pa.field(f.name, _plain_type(f.type)) for f in fields]))


def _parsed_fields() -> list[pa.Field[Any]]:
    return [*MESSAGE_SCHEMA, *(pa.field(n, t) for n, t in _REJECT_FIELDS),
            *(pa.field(n, t) for n, t in _ROW_FIELDS)]


def _parse(job: _Job, pieces: list[_Piece]) -> DataFrame:
    spark = job.spark
    table = pa.Table.from_pylist(pieces, schema=_PIECE_SCHEMA)
    # About as many tasks as pieces; consecutive pieces (small files) share a task.
    frame = spark.createDataFrame(table).repartitionByRange(
        max(1, min(len(pieces), spark.sparkContext.defaultParallelism * 4)), "piece")
    fields = _parsed_fields()
    enrich_rows, privacy_options, settings = job.enrich_rows, job.privacy_options, job.settings

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = [r for b in batches for r in b.to_pylist()]
        rows.sort(key=lambda r: r["piece"])
        yield from _parse_pieces(rows, enrich_rows, fields, privacy_options, settings)

    return frame.mapInArrow(task, _spark_schema(fields))


def _piece_candidates(p: _Piece, settings: TaskSettings) -> Iterator[pa.Table]:
    """The record candidates of one piece, read with the project's reader.

    A piece behind a URI is copied to local disk first (its range only, with the byte
    before it, so the reader sees a range as it sees one of a local file), and its
    ``source_file`` is the input's name, not the copy's.
    """
    from .readers import iter_line_range, iter_raw_batches

    inp = InputFile(p["name"], p["kind"], p["compression"], p["size"])
    ranged = p["start"] >= 0
    if not p["location"]:
        if ranged:
            yield from iter_line_range(inp, p["start"], p["end"], p["first_line"])
        else:
            yield from iter_raw_batches(inp)
        return
    fs, path = arrow_filesystem(p["location"], settings)
    with scratch_dir() as scratch:
        copy = scratch / "piece"
        if ranged:
            before = 1 if p["start"] > 0 else 0
            download(fs, path, copy, p["start"] - before, p["end"])
            size = p["end"] - p["start"] + before
            local = InputFile(str(copy), "lines", None, size)
            tables = iter_line_range(local, before, size, p["first_line"])
        else:
            download(fs, path, copy)
            tables = iter_raw_batches(InputFile(str(copy), p["kind"], p["compression"],
                                                copy.stat().st_size))
        field = RAW_SCHEMA.field("source_file")
        for t in tables:
            names = pa.DictionaryArray.from_arrays(
                np.zeros(t.num_rows, dtype=np.int32), pa.array([p["name"]]))
            yield t.set_column(t.schema.get_field_index("source_file"), field,
                               names.cast(field.type))


def _parse_pieces(pieces: list[_Piece], enrich_rows: bool, fields: list[pa.Field[Any]],
                  privacy_options: _Privacy,
                  settings: TaskSettings) -> Iterator[pa.RecordBatch]:
    """Parse one task's pieces (in order) in groups of about GROUP_RECORDS records."""
    from .ingest import parse_candidates

    schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in fields])
    ends: list[tuple[int, int]] = []  # (records so far, piece) at the end of each piece
    read = 0

    def candidates() -> Iterator[pa.Table]:
        nonlocal read
        group: list[pa.Table] = []
        size = 0
        for p in pieces:
            for t in _piece_candidates(p, settings):
                group.append(t)
                size += t.num_rows
                read += t.num_rows
                if size >= GROUP_RECORDS:
                    yield pa.concat_tables(group)
                    group, size = [], 0
            ends.append((read, p["piece"]))
        if group:
            yield pa.concat_tables(group)

    rows, rejects, records = parse_candidates(candidates(), enrich_rows=enrich_rows,
                                              **privacy_options.parse_options())
    limits = np.array([e for e, _ in ends], dtype=np.int64)
    piece_ids = np.array([p for _, p in ends], dtype=np.int64)
    record_no = rows.column("record_no").to_numpy()
    piece = piece_ids[np.searchsorted(limits, record_no, side="right")] if len(rows) else \
        np.zeros(0, dtype=np.int64)
    good = rows.select(MESSAGE_SCHEMA.names)
    n = good.num_rows
    good = (good.append_column("reason", pa.nulls(n, pa.string()))
            .append_column("raw", pa.nulls(n, pa.string()))
            .append_column("piece", pa.array(piece, pa.int64()))
            .append_column("record_no", rows.column("record_no"))
            .append_column("row_kind", pa.array(["row"] * n, pa.string()))
            .append_column("records", pa.nulls(n, pa.int64())))
    yield from _cast(good, schema).to_batches(max_chunksize=GROUP_RECORDS)
    bad = _like(schema, {"source_file": rejects.column("source_file"),
                         "source_line": rejects.column("source_line"),
                         "reason": rejects.column("reason"), "raw": rejects.column("raw"),
                         "row_kind": pa.array(["reject"] * rejects.num_rows, pa.string())},
                rejects.num_rows)
    yield from bad.to_batches(max_chunksize=GROUP_RECORDS)
    yield from _like(schema, {"row_kind": pa.array(["count"], pa.string()),
                              "records": pa.array([records], pa.int64())}, 1).to_batches()


def _plain(t: pa.DataType) -> pa.DataType:
    from .spark import _plain_type

    return _plain_type(t)


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table.select(schema.names).cast(schema)


def _like(schema: pa.Schema, columns: dict[str, Any], n: int) -> pa.Table:
    arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type)
              for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------------------------
# Duplicates against the dataset, writing
# ---------------------------------------------------------------------------------------


def _against_dataset(spark: SparkSession, best: DataFrame, existing: dict[str, Any],
                     uri_of: Any) -> tuple[DataFrame, dict[Any, list[str]], int]:
    """The new rows not strictly newer than the dataset's (``piece``, ``record_no``), the
    old rows the others replace (file key -> sids), and the dataset's row count.

    `existing` maps the path part of each dataset file's URI to its key; `uri_of` gives
    the URI Spark reads for a key.
    """
    from pyspark.sql import functions as F

    old = (spark.read.parquet(*[uri_of(k) for k in existing.values()])
           .select("sid", "updated_at", "event_at", "event_try",
                   F.col("_metadata.file_path").alias("old_file")))
    old_rows = old.count()

    def rank(alias: str) -> Any:
        return F.struct(
            F.coalesce(F.col(f"{alias}.updated_at"), F.expr(_NEVER)),
            F.coalesce(F.col(f"{alias}.event_at"), F.expr(_NEVER)),
            F.coalesce(F.col(f"{alias}.event_try"), F.lit(-1)))

    clash = (best.alias("b").join(old.alias("o"), "sid")
             .select("b.piece", "b.record_no", "sid", "o.old_file",
                     (rank("b") > rank("o")).alias("newer")))
    # Only the replaced rows come to the driver (the files to filter); the stale new rows
    # stay a distributed set, taken out of the rows by the caller.
    replaced = clash.filter("newer").select("old_file", "sid").toArrow()
    replace: dict[Any, list[str]] = {}
    # Never null: the file a row was read from, and the key of the join.
    old_files = cast(list[str], replaced.column("old_file").to_pylist())
    sids = cast(list[str], replaced.column("sid").to_pylist())
    for file, sid in zip(old_files, sids, strict=True):
        replace.setdefault(existing[_path_of(file)], []).append(sid)
    stale = clash.filter("NOT newer").select("piece", "record_no")
    return stale, replace, old_rows


def _write_rows(rows: DataFrame, root: str, out_uri: str, settings: TaskSettings,
                partition_by: str) -> list[tuple[str, str, int]]:
    """Tasks write their rows with the project's writer; returns (path, partition, rows).

    With `root`, into that local directory (paths returned as written). With `out_uri`,
    into a local scratch directory, each file then uploaded under the same name (unique:
    ``part-<uuid>``) below `out_uri`, in one output stream (relative paths returned).
    """
    plain = pa.schema([pa.field(f.name, _plain(f.type)) for f in MESSAGE_SCHEMA])

    def write(folder: Path, batches: Iterator[pa.RecordBatch]) -> ds.PartitionWriter:
        with ds.PartitionWriter(folder, partition_by=partition_by) as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write(_cast(pa.Table.from_batches([batch]), plain))
        return writer

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        paths, keys, counts = [], [], []
        with scratch_dir() as scratch:
            folder = Path(root) if root else scratch
            writer = write(folder, batches)
            by_number = writer.keys()
            for number, path in enumerate(writer.paths):
                key = by_number[number]
                name = str(path)
                if not root:
                    name = path.relative_to(scratch).as_posix()
                    _upload_to(path, out_uri, name, settings)
                paths.append(name)
                keys.append(key)
                counts.append(writer.counts[key])
        yield pa.RecordBatch.from_arrays(
            [pa.array(paths, pa.string()), pa.array(keys, pa.string()),
             pa.array(counts, pa.int64())], names=["path", "partition", "rows"])

    result = rows.mapInArrow(task, "path string, partition string, rows long").toArrow()
    return [(r["path"], r["partition"], r["rows"]) for r in result.to_pylist()]


def _upload_to(local: Path, out_uri: str, relative: str, settings: TaskSettings) -> None:
    import pyarrow.fs as pafs

    fs, base = arrow_filesystem(out_uri, settings)
    target = base.rstrip("/") + "/" + relative
    if isinstance(fs, pafs.LocalFileSystem):  # object stores have no folders to make
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    upload(local, fs, target)


def _rewrite_remote(job: _Job, out_uri: str,
                    replace: dict[str, list[str]]) -> dict[str, str | None]:
    """Tasks copy each dataset file holding replaced rows without them, under a new name;
    returns old name -> new name (None when no row is left)."""
    settings = job.settings
    items = sorted(replace.items())

    def rewrite(item: tuple[str, list[str]]) -> tuple[str, str | None]:
        relative, sids = item
        fs, base = arrow_filesystem(out_uri, settings)
        with scratch_dir() as scratch:
            download(fs, base.rstrip("/") + "/" + relative, scratch / "old.parquet")
            kept = ds.rewrite_file(scratch / "old.parquet", scratch / "new.parquet",
                                   drop_sids=pa.array(sids, pa.string()))
            if not kept:
                return relative, None
            folder = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
            new = f"{folder}part-{uuid.uuid4().hex}.parquet"
            _upload_to(scratch / "new.parquet", out_uri, new, settings)
            return relative, new

    done = job.spark.sparkContext.parallelize(items, len(items)).map(rewrite).collect()
    return dict(done)


def _write_rejects(job: _Job, rejects: pa.Table, location: str, summary: ConversionSummary,
                   dataset: Path | None = None) -> None:
    """The rejects file and the summary's reasons, as the local conversion writes them
    (beside a local `dataset` folder: never more open than it)."""
    con = duckdb.connect()
    try:
        con.register("rejects", rejects)
        summary.reject_reasons = {str(r): int(n) for r, n in con.execute(
            r"""SELECT regexp_replace(split_part(reason, ':', 1), ' \(.*', '') AS r,
                      count(*) FROM rejects GROUP BY r ORDER BY count(*) DESC, r"""
        ).fetchall()}
        summary.damaged_files = {str(f): str(r) for f, r in con.execute(
            """SELECT source_file, min(reason) FROM rejects
               WHERE starts_with(reason, 'compressed data is truncated or corrupt')
               GROUP BY source_file ORDER BY source_file""").fetchall()}
        with tempfile.TemporaryDirectory(prefix="smsanalytics-rejects-") as scratch:
            local = Path(scratch) / "rejects.jsonl"
            target_sql = str(local).replace("'", "''")
            con.execute(
                "COPY (SELECT source_file, source_line, reason, raw FROM rejects "
                f"ORDER BY source_file, source_line) TO '{target_sql}' (FORMAT json)")
            _put_file(job, local, location, dataset)
    finally:
        con.close()
