"""Load archives into messages: staging, de-duplication, rejects, and writing datasets.

This module joins the pure layers (:mod:`~smsanalytics.sources` parses records) to the
files (:mod:`~smsanalytics.readers` cuts inputs into records, :mod:`~smsanalytics.dataset`
owns the layout on disk). The work is done by an embedded DuckDB with a memory limit and
an on-disk staging database, so memory stays flat however large the input; Python only
moves Arrow batches.

Accounting, kept for every run: ``records == written + duplicates + rejected``.

* a *record* is one candidate the readers found (a non-blank line, an array element, a
  YAML document), good or bad;
* *rejected* records go to the rejects file with file, line, reason and raw text;
* *duplicates* are records of an sid that lost to another record of the same sid, in this
  run or already in the dataset: the record with the latest ``updated_at`` wins, then the
  latest ``event_at``, then the highest ``event_try``, then the later file and line;
* *written* rows are new sids plus newer versions of sids already in the dataset
  (``replaced`` counts the latter).
"""

from __future__ import annotations

import errno
import html
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import dataset as ds
from . import enrich, privacy
from .errors import DatasetError, StrictModeError
from .readers import InputFile, find_inputs, iter_raw_batches
from .schema import COLUMNS, MESSAGE_SCHEMA, PARTITION_COLUMN, RAW_SCHEMA
from .sources import parse_sql

__all__ = [
    "ConversionSummary",
    "convert",
    "read_messages",
    "load_messages",
    "LoadResult",
    "PARTITIONINGS",
]

#: Ways a dataset can be laid out.
PARTITIONINGS = ("month", "none")
_FLUSH_ROWS = 100_000
_STREAM_ROWS = 65_536  # rows per Arrow batch when writing the dataset
_IS_NEW = "_is_new"  # marks this run's rows in the write stream (old rows are not re-hashed)
_MEMORY_LIMIT = os.environ.get("SMSANALYTICS_MEMORY_LIMIT", "500MB")
_LATER_MEMORY_LIMIT = "300MB"
_NAMES = ", ".join(f'"{c.name}"' for c in COLUMNS)
# A message's month: created_at, else the first instant the record has. Hive partitions
# need a value; records with no time at all go to month=unknown.
_MONTH = (
    "coalesce(strftime(coalesce(created_at, updated_at, delivered_at, sent_at, event_at), "
    "'%Y-%m'), 'unknown')"
)
# Order in which a record beats another of the same sid (the winner is the maximum).
_RANK = (
    "(coalesce(updated_at, '-infinity'::TIMESTAMPTZ), "
    "coalesce(event_at, '-infinity'::TIMESTAMPTZ), coalesce(event_try, -1))"
)


@dataclass
class ConversionSummary:
    """What a conversion did. ``records == written + duplicates + rejected``.

    Attributes
    ----------
    records : int
        Record candidates read (good and bad).
    written : int
        Rows written: new sids plus newer versions of existing ones.
    duplicates : int
        Records that lost to another record of the same sid.
    rejected : int
        Records written to the rejects file.
    replaced : int
        Rows of the existing dataset replaced by a newer version (included in written).
    files : int
        Input files read.
    bytes : int
        Input size on disk [bytes].
    elapsed : float
        Wall time [s].
    out : str or None
        Dataset directory (None when only reading).
    rejects_path : str or None
        Rejects file (JSON Lines).
    rows_total : int
        Rows in the dataset after the run.
    partitions_written : list of str
        Partitions rewritten by this run.
    reject_reasons : dict
        Count of rejected records per reason (reasons cut at the first colon).
    damaged_files : dict
        Input files whose compressed data is truncated or corrupt -> the reason; the
        records before the damage were read, the rest of the file was not.
    """

    records: int = 0
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    replaced: int = 0
    files: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    out: str | None = None
    rejects_path: str | None = None
    rows_total: int = 0
    partitions_written: list[str] = field(default_factory=list)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    damaged_files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a plain dict (what ``convert --json`` prints)."""
        return asdict(self)

    @property
    def balanced(self) -> bool:
        """Whether every record is accounted for."""
        return self.records == self.written + self.duplicates + self.rejected

    def __str__(self) -> str:
        rate = self.bytes / self.elapsed / 1e6 if self.elapsed else 0.0
        lines = [
            f"{self.records:,} records from {self.files:,} files "
            f"({self.bytes / 1e6:,.1f} MB in {self.elapsed:,.1f} s, {rate:,.1f} MB/s)",
            f"  written    {self.written:>12,}"
            + (f"  ({self.replaced:,} newer versions of existing rows)" if self.replaced else ""),
            f"  duplicates {self.duplicates:>12,}",
            f"  rejected   {self.rejected:>12,}"
            + (f"  -> {self.rejects_path}" if self.rejected and self.rejects_path else ""),
        ]
        for reason, n in sorted(self.reject_reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"      {n:>8,}  {reason}")
        for name, why in self.damaged_files.items():
            lines.append(f"  damaged    {name}: {why}")
        if self.out:
            lines.append(f"  dataset    {self.out}: {self.rows_total:,} rows")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            ("records read", self.records),
            ("written", self.written),
            ("of which newer versions", self.replaced),
            ("duplicates", self.duplicates),
            ("rejected", self.rejected),
            ("files", self.files),
            ("rows in dataset", self.rows_total),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:right'>{v:,}</td></tr>"
            for k, v in rows
        )
        reasons = "".join(
            f"<li>{n:,} × {html.escape(r)}</li>" for r, n in self.reject_reasons.items()
        )
        where = html.escape(self.out or "(in memory)")
        return (
            f"<div><b>Conversion</b> into <code>{where}</code> "
            f"in {self.elapsed:,.2f} s<table>{body}</table>"
            + (f"<p>Reject reasons:</p><ul>{reasons}</ul>" if reasons else "")
            + "</div>"
        )


@dataclass
class LoadResult:
    """Messages loaded in memory, with the records that were rejected.

    Attributes
    ----------
    messages : pandas.DataFrame
        One row per sid, :data:`MESSAGE_SCHEMA` columns, Arrow-backed dtypes.
    rejects : pandas.DataFrame
        ``source_file``, ``source_line``, ``reason``, ``raw``.
    summary : ConversionSummary
        The counts.
    """

    messages: pd.DataFrame
    rejects: pd.DataFrame
    summary: ConversionSummary


Progress = Callable[[int], None]


class _Stage:
    """The parsed records of one run, as Parquet files in a scratch directory.

    Each batch of record candidates is parsed by DuckDB and written straight to a file,
    so memory stays flat whatever the size of the input; the later steps read only the
    columns they need.
    """

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "parsed"
        self.dir.mkdir()
        self.con = duckdb.connect(":memory:")
        for setting in (
            "SET TimeZone='UTC'",
            f"SET memory_limit='{_MEMORY_LIMIT}'",
            f"SET temp_directory='{_sql_path(workdir / 'spill')}'",
            "SET preserve_insertion_order=false",
        ):
            self.con.execute(setting)
        self.batches = 0
        self.records = 0
        self.files = 0
        self.bytes = 0

    def add(self, raw: pa.Table) -> None:
        """Parse a table of record candidates into the next staged file."""
        numbered = raw.append_column(
            "record_no", pa.array(np.arange(self.records, self.records + len(raw)))
        )
        self.records += len(raw)
        target = self.dir / f"b{self.batches:06d}"  # a folder: one file per thread
        self.batches += 1
        # Threads writing their own files are faster, but each needs its own buffers: a
        # batch of a few huge records (a 50 MB line) is parsed by one thread.
        per_thread = len(raw) >= 10_000
        if not per_thread:
            target.mkdir()
            target = target / "data_0.parquet"
        threads = "true" if per_thread else "false"
        self.con.register("_raw", numbered)
        try:
            self.con.execute(
                f"""COPY (SELECT *, {_MONTH} AS {PARTITION_COLUMN}
                          FROM ({parse_sql("_raw", keep=("record_no",))}))
                    TO '{_sql_path(target)}'
                    (FORMAT parquet, COMPRESSION uncompressed, PER_THREAD_OUTPUT {threads})"""
            )
        finally:
            self.con.unregister("_raw")

    def finish(self) -> None:
        """Expose the staged files as ``parsed``; pick the winner of each sid."""
        # Parsing needed room for huge records; what follows works on columns and
        # streams, and shares the process with the Arrow batches being written.
        self.con.execute(f"SET memory_limit='{_LATER_MEMORY_LIMIT}'")
        if self.batches == 0:
            self.add(RAW_SCHEMA.empty_table())
        self.con.execute(
            f"""CREATE VIEW parsed AS
                SELECT * FROM read_parquet('{_sql_path(self.dir)}/*/*.parquet')"""
        )
        self.con.execute(
            f"""CREATE TABLE winners AS
            SELECT sid, record_no, {_RANK} AS rank
            FROM parsed WHERE reject_reason IS NULL
            QUALIFY row_number() OVER (
                PARTITION BY sid
                ORDER BY updated_at DESC NULLS LAST, event_at DESC NULLS LAST,
                         event_try DESC NULLS LAST, source_file DESC, source_line DESC) = 1"""
        )

    def counts(self) -> tuple[int, int]:
        n, bad = _row(self.con, "SELECT count(*), count(reject_reason) FROM parsed")
        return int(n), int(bad)

    def damaged_files(self) -> dict[str, str]:
        rows = self.con.execute(
            """SELECT source_file, min(reject_reason) FROM parsed
               WHERE starts_with(reject_reason, 'compressed data is truncated or corrupt')
               GROUP BY source_file ORDER BY source_file"""
        ).fetchall()
        return {str(f): str(r) for f, r in rows}

    def reject_reasons(self) -> dict[str, int]:
        rows = self.con.execute(
            r"""SELECT regexp_replace(split_part(reject_reason, ':', 1), ' \(.*', '') AS r,
                      count(*) FROM parsed
               WHERE reject_reason IS NOT NULL GROUP BY r ORDER BY count(*) DESC, r"""
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    def write_rejects(self, path: Path, *, keep_raw: bool = True) -> None:
        """Write the rejects file atomically (an empty file when nothing was rejected).

        Without `keep_raw`, the ``raw`` text is null: file, line and reason still say
        where the record is in the archive.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        raw = "left(rtrim(text, E'\\r\\n'), 10000)" if keep_raw else "NULL::VARCHAR"
        try:
            self.con.execute(
                f"""COPY (SELECT source_file, source_line, reject_reason AS reason,
                          {raw} AS raw
                   FROM parsed WHERE reject_reason IS NOT NULL
                   ORDER BY source_file, source_line)
                   TO '{_sql_path(tmp)}' (FORMAT json)"""
            )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def rejects_table(self) -> pa.Table:
        return self.con.sql(
            """SELECT source_file, source_line, reject_reason AS reason,
                      left(rtrim(text, E'\\r\\n'), 10000) AS raw
               FROM parsed WHERE reject_reason IS NOT NULL ORDER BY source_file, source_line"""
        ).to_arrow_table()

    def close(self) -> None:
        self.con.close()


def _row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row of `sql` (read to the end: DuckDB keeps no half-read result)."""
    (row,) = con.execute(sql).fetchall()
    return tuple(row)


def _sql_path(p: Path | str) -> str:
    return str(p).replace("'", "''")


@contextmanager
def _workdir(out: Path | None) -> Iterator[Path]:
    """A scratch directory: beside the dataset (same disk, cleaned by the next run if a
    crash leaves it), or in the system's temporary directory."""
    if out is None:
        path = Path(tempfile.mkdtemp(prefix="smsanalytics-stage-"))
    else:
        path = Path(tempfile.mkdtemp(prefix=ds.stage_prefix(out), dir=out.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _progress_bar(inputs: Sequence[InputFile], quiet: bool) -> tuple[Progress | None, Any]:
    total = sum(i.size for i in inputs)
    if quiet or total < 32 << 20:
        return None, None
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"0/{len(inputs)} files",
        leave=False,
        dynamic_ncols=True,
    )
    return bar.update, bar


def _produce(
    inputs: Sequence[InputFile],
    out: queue.Queue[Any],
    stop: threading.Event,
    progress: Progress | None = None,
) -> None:
    """Read the inputs into batches of about ``_FLUSH_ROWS`` record candidates.

    Runs in a thread, so that reading and cutting files overlaps with DuckDB parsing.
    Many small files (one event per file) are parsed together: a query per file would
    cost more in planning than in parsing.
    """
    pending: list[pa.Table] = []
    rows = 0
    try:
        for inp in inputs:
            for raw in iter_raw_batches(inp, progress):
                if stop.is_set():
                    return
                pending.append(raw)
                rows += len(raw)
                if rows >= _FLUSH_ROWS:
                    out.put(pa.concat_tables(pending))
                    pending, rows = [], 0
            out.put(inp)
        if pending:
            out.put(pa.concat_tables(pending))
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which raises it
        out.put(exc)


def _stage_inputs(stage: _Stage, inputs: Sequence[InputFile], quiet: bool) -> None:
    progress, bar = _progress_bar(inputs, quiet)
    batches: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    reader = threading.Thread(
        target=_produce, args=(inputs, batches, stop, progress), daemon=True
    )
    reader.start()
    try:
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, InputFile):
                stage.files += 1
                stage.bytes += item.size
                if bar is not None:
                    bar.set_description(f"{stage.files}/{len(inputs)} files", refresh=False)
                continue
            stage.add(item)
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                batches.get(timeout=0.05)
            except queue.Empty:
                pass
        if bar is not None:
            bar.close()
    stage.finish()


def load_messages(paths: Iterable[str | Path], *, quiet: bool = True) -> LoadResult:
    """Read archives into memory: de-duplicated messages, rejects and counts.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, directories (walked recursively) or ``-`` for standard input.
    quiet : bool, default True
        No progress bar.

    Returns
    -------
    LoadResult
    """
    started = time.perf_counter()
    inputs = find_inputs(paths)
    with _workdir(None) as work:
        stage = _Stage(work)
        try:
            _stage_inputs(stage, inputs, quiet)
            rows = f"""SELECT {_NAMES} FROM parsed
                       WHERE record_no IN (SELECT record_no FROM winners)"""
            enrich.register_lookups(stage.con, rows)
            reader = stage.con.sql(
                f"SELECT * FROM ({enrich.enrich_sql(rows)}) ORDER BY created_at, sid"
            ).to_arrow_reader(_STREAM_ROWS)
            table = pa.Table.from_batches(list(enrich.add_computed(reader)), reader.schema)
            rejects = stage.rejects_table()
            records, rejected = stage.counts()
            summary = ConversionSummary(
                records=records,
                written=len(table),
                rejected=rejected,
                duplicates=records - rejected - len(table),
                files=stage.files,
                bytes=stage.bytes,
                reject_reasons=stage.reject_reasons(),
                damaged_files=stage.damaged_files(),
            )
        finally:
            stage.close()
    messages = ds.to_pandas(_conform(table))
    summary.elapsed = time.perf_counter() - started
    summary.rows_total = len(messages)
    return LoadResult(messages, rejects.to_pandas(), summary)


def _conform(table: pa.Table) -> pa.Table:
    return table.select(MESSAGE_SCHEMA.names).cast(MESSAGE_SCHEMA)


def read_messages(*paths: str | Path, on_reject: str = "warn") -> pd.DataFrame:
    """Read Callr archives into a typed DataFrame, one row per SMS.

    Parameters
    ----------
    *paths : str or Path
        Files (``.json``, ``.jsonl``, ``.ndjson``, ``.log``, ``.txt``, ``.yaml``, each
        optionally ``.gz`` or ``.zst``), directories (walked recursively) or ``-``.
    on_reject : {'warn', 'raise', 'ignore'}
        What to do when records are rejected. Use :func:`load_messages` to get them.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`~smsanalytics.schema.MESSAGE_SCHEMA`, Arrow-backed dtypes;
        ``df.attrs['summary']`` holds the :class:`ConversionSummary` as a dict.

    Examples
    --------
    >>> import smsanalytics
    >>> df = smsanalytics.read_messages("sample_data", on_reject="ignore")
    >>> df["cost_cents"].dtype
    decimal128(18, 6)[pyarrow]
    """
    if on_reject not in ("warn", "raise", "ignore"):
        raise ValueError("on_reject must be 'warn', 'raise' or 'ignore'")
    result = load_messages(paths)
    s = result.summary
    if s.rejected and on_reject != "ignore":
        first = result.rejects.iloc[0]
        msg = (
            f"{s.rejected:,} of {s.records:,} records rejected; first: "
            f"{first['source_file']}:{first['source_line']}: {first['reason']} "
            "(use smsanalytics.load_messages to get them all)"
        )
        if on_reject == "raise":
            raise StrictModeError(msg)
        warnings.warn(msg, stacklevel=2)
    result.messages.attrs["summary"] = s.to_dict()
    return result.messages


def default_rejects_path(out: Path) -> Path:
    """Where rejects go unless told: ``<dataset>.rejects.jsonl`` beside the dataset."""
    return out.parent / f"{out.name}.rejects.jsonl"


def convert(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    rejects: str | Path | None = None,
    partition_by: str = "month",
    overwrite: bool = False,
    strict: bool = False,
    quiet: bool = False,
    lock_timeout: float = 60.0,
    enrich_rows: bool = True,
    pseudonymize_key: bytes | None = None,
    redact_bodies: bool = False,
    pseudonymize_recipients: bool = False,
) -> ConversionSummary:
    """Convert Callr archives into a Parquet dataset, incrementally and atomically.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, directories (walked recursively) or ``-`` for standard input.
    out : str or Path
        Dataset directory. Created if missing; if it holds a dataset, new messages are
        added to it (an sid already there is replaced only by a newer version).
    rejects : str or Path, optional
        Rejects file (JSON Lines); default ``<out>.rejects.jsonl`` beside the dataset.
        Rewritten by every run, empty when nothing was rejected.
    partition_by : {'month', 'none'}
        Hive partitions by UTC month of ``created_at`` (``month=2025-03``), or one file.
    overwrite : bool
        Replace the dataset instead of adding to it.
    strict : bool
        Raise :class:`~smsanalytics.errors.StrictModeError` if anything was rejected
        (after writing the rejects file; the dataset is left unchanged).
    quiet : bool
        No progress bar.
    lock_timeout : float
        Seconds to wait for another conversion into the same dataset to finish [s].
    enrich_rows : bool, default True
        Fill number, network, segment and keyword columns (:mod:`smsanalytics.enrich`).
        Off, those columns stay as the records gave them (mostly null): faster.
    pseudonymize_key : bytes, optional
        Replace sender numbers by keyed tokens (:mod:`smsanalytics.privacy`; load the key
        with :func:`~smsanalytics.privacy.load_key`). Country, type, location and network
        are filled from the real number first.
    redact_bodies : bool
        Drop message bodies, keeping what was computed from them (encoding, parts,
        keyword).
    pseudonymize_recipients : bool
        Also replace recipient numbers (the customer's own) by tokens.

    Returns
    -------
    ConversionSummary

    Notes
    -----
    The new version of the dataset is built beside it (unchanged partitions hard-linked,
    touched ones rewritten) and swapped in with one atomic rename, so a crash or Ctrl-C
    leaves the previous version whole, and readers never see a half-written dataset.

    Examples
    --------
    >>> import smsanalytics
    >>> s = smsanalytics.convert(["sample_data"], "/tmp/doc_ds", overwrite=True, quiet=True)
    >>> s.records == s.written + s.duplicates + s.rejected
    True
    """
    if partition_by not in PARTITIONINGS:
        raise ValueError(f"partition_by must be one of {PARTITIONINGS}")
    started = time.perf_counter()
    out = Path(out).absolute()
    rejects_path = Path(rejects).absolute() if rejects else default_rejects_path(out)
    inputs = find_inputs(paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _write_errors(out), ds.locked(out, timeout=lock_timeout):
        ds.clean_leftovers(out)
        manifest = ds.check_writable(out, partition_by=partition_by, overwrite=overwrite)
        if not overwrite:
            privacy.check_compatible(
                manifest,
                out,
                pseudonymize_key,
                redact_bodies=redact_bodies,
                pseudonymize_recipients=pseudonymize_recipients,
            )
        with _workdir(out) as work:
            stage = _Stage(work)
            try:
                _stage_inputs(stage, inputs, quiet)
                # Rejected records' raw text holds numbers and bodies: not kept when private.
                private = pseudonymize_key is not None or redact_bodies
                stage.write_rejects(rejects_path, keep_raw=not private)
                records, rejected = stage.counts()
                summary = ConversionSummary(
                    records=records,
                    rejected=rejected,
                    files=stage.files,
                    bytes=stage.bytes,
                    out=str(out),
                    rejects_path=str(rejects_path),
                    reject_reasons=stage.reject_reasons(),
                    damaged_files=stage.damaged_files(),
                )
                if strict and rejected:
                    raise StrictModeError(
                        f"{rejected:,} of {records:,} records rejected (strict mode); "
                        f"see {rejects_path}; the dataset was not changed"
                    )
                existing = [] if overwrite else ds.dataset_files(out) if manifest else []
                options = _WriteOptions(
                    partition_by,
                    overwrite,
                    enrich_rows,
                    pseudonymize_key,
                    redact_bodies,
                    pseudonymize_recipients,
                )
                _merge(stage, out, existing, options, summary)
            finally:
                stage.close()
    summary.elapsed = time.perf_counter() - started
    return summary


@dataclass(frozen=True)
class _WriteOptions:
    partition_by: str
    overwrite: bool
    enrich: bool
    key: bytes | None = None
    redact_bodies: bool = False
    pseudonymize_recipients: bool = False

    @property
    def private(self) -> bool:
        return self.key is not None or self.redact_bodies

    def protect(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pseudonymise the new rows of each batch; rows already in the dataset were."""
        for batch in batches:
            is_new = batch.column(_IS_NEW)
            new = batch.filter(is_new)
            if len(new):
                yield privacy.transform_batch(
                    new,
                    key=self.key,
                    redact_bodies=self.redact_bodies,
                    pseudonymize_recipients=self.pseudonymize_recipients,
                )
            if len(new) < len(batch):
                yield batch.filter(pc.invert(is_new))


def _merge(
    stage: _Stage,
    out: Path,
    existing: list[Path],
    options: _WriteOptions,
    summary: ConversionSummary,
) -> None:
    """Decide which winners are new or newer than the dataset's rows, and write them."""
    con = stage.con
    if existing:
        listing = "[" + ", ".join(f"'{_sql_path(f)}'" for f in existing) + "]"
        con.execute(
            f"""CREATE TABLE old AS
                SELECT sid, {_RANK} AS rank, filename AS file
                FROM read_parquet({listing}, filename=true, hive_partitioning=false)"""
        )
    else:
        con.execute(
            "CREATE TABLE old AS SELECT NULL::VARCHAR AS sid, NULL AS rank, "
            "NULL::VARCHAR AS file WHERE false"
        )
    con.execute(
        """CREATE TABLE chosen AS
           SELECT w.record_no, w.sid, o.file AS replaces_file
           FROM winners w LEFT JOIN old o USING (sid)
           WHERE o.sid IS NULL OR w.rank > o.rank"""
    )
    written, replaced = _row(con, "SELECT count(*), count(replaces_file) FROM chosen")
    summary.written, summary.replaced = int(written), int(replaced)
    (old_rows,) = _row(con, "SELECT count(*) FROM old")
    summary.rows_total = int(old_rows) + summary.written - summary.replaced
    summary.duplicates = summary.records - summary.rejected - summary.written
    if summary.written == 0 and not options.overwrite and existing:
        return  # nothing new: the dataset is left as it is, byte for byte
    _write_version(con, out, existing, options, summary)


def _privacy_record(options: _WriteOptions) -> dict[str, Any]:
    record = privacy.manifest_record(
        options.key,
        redact_bodies=options.redact_bodies,
        pseudonymize_recipients=options.pseudonymize_recipients,
    )
    return {privacy.MANIFEST_KEY: record} if record else {}


def _write_version(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    existing: list[Path],
    options: _WriteOptions,
    summary: ConversionSummary,
) -> None:
    """Build the dataset's next version beside it and swap it in."""
    partition_by = options.partition_by
    (good,) = _row(con, "SELECT count(*) FROM parsed WHERE reject_reason IS NULL")
    if good == summary.written:
        chosen_rows = "reject_reason IS NULL"  # no duplicates: no join needed
    else:
        chosen_rows = "record_no IN (SELECT record_no FROM chosen)"
    new_rows = (
        f"SELECT {_NAMES}, {PARTITION_COLUMN}, true AS {_IS_NEW} FROM parsed WHERE {chosen_rows}"
    )
    if options.enrich:
        enrich.register_lookups(con, new_rows)
        new_rows = enrich.enrich_sql(new_rows)
    if partition_by == "month":
        touched = {
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {PARTITION_COLUMN} FROM parsed WHERE {chosen_rows}"
            ).fetchall()
        }
        touched |= {
            Path(r[0]).parent.name.removeprefix(ds.PARTITION_DIR_PREFIX)
            for r in con.execute(
                "SELECT DISTINCT replaces_file FROM chosen WHERE replaces_file IS NOT NULL"
            ).fetchall()
        }
    else:
        touched = {""}

    def partition_of(f: Path) -> str:
        if partition_by == "none":
            return ""
        return f.parent.name.removeprefix(ds.PARTITION_DIR_PREFIX)

    keep = [f for f in existing if partition_of(f) not in touched]
    rewrite = [f for f in existing if partition_of(f) in touched]
    staging = ds.new_version_dir(out)
    try:
        for f in keep:
            target = staging / f.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
        sources = [new_rows]
        if rewrite:
            listing = "[" + ", ".join(f"'{_sql_path(f)}'" for f in rewrite) + "]"
            sources.append(
                f"""SELECT {_NAMES}, {_MONTH} AS {PARTITION_COLUMN}, false AS {_IS_NEW}
                    FROM read_parquet({listing}, hive_partitioning=false)
                    WHERE sid NOT IN (SELECT sid FROM chosen)"""
            )
        reader = con.sql(" UNION ALL ".join(sources)).to_arrow_reader(_STREAM_ROWS)
        batches = enrich.add_computed(reader) if options.enrich else reader
        if options.private:
            batches = options.protect(batches)
        ds.write_partitioned(batches, staging, partition_by=partition_by)
        summary.partitions_written = sorted(t for t in touched if t)
        ds.write_manifest(
            staging,
            {
                "version": 1,
                "partition_by": partition_by,
                "rows": summary.rows_total,
                **_privacy_record(options),
                "last_conversion": {
                    k: v
                    for k, v in summary.to_dict().items()
                    if k not in ("out", "elapsed", "partitions_written")
                },
            },
        )
        ds.commit_version(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# Disk problems, however the writer (Python, Arrow or DuckDB) words them.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


def _disk_problem(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return os.strerror(exc.errno)
    text = str(exc)
    return next((os.strerror(e) for e in _DISK_ERRNOS if os.strerror(e) in text), None)


@contextmanager
def _write_errors(out: Path) -> Iterator[None]:
    """Say "disk full" or "read-only" about the dataset, not as a SQL or Arrow error."""
    try:
        yield
    except (OSError, duckdb.IOException) as exc:
        problem = _disk_problem(exc)
        if problem is None:
            raise
        raise DatasetError(
            str(out), f"cannot write: {problem}; the dataset was not changed"
        ) from exc
