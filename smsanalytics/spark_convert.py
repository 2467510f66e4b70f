"""Conversion on Spark: the dataset ``smsanalytics convert`` makes, built by a Spark job.

This module owns the distributed conversion (:func:`convert`, also
``smsanalytics.spark.convert`` and ``smsanalytics convert --engine spark``). The steps:

1. The driver lists the inputs (:func:`~smsanalytics.readers.find_inputs`) and cuts them
   into *pieces*: whole files, or, for an uncompressed JSON Lines file larger than
   `split_bytes`, byte ranges at line boundaries (:func:`~smsanalytics.readers.line_boundaries`).
   A first small job counts the lines of each range, so every range knows the number of
   its first line.
2. Tasks (``mapInArrow``) read their pieces with the project's reader and parse and
   enrich them with :func:`~smsanalytics.ingest.parse_candidates`, in groups of about
   50,000 records (a parse per group amortises its planning); they hand back the good
   rows, the rejects and the count of records.
3. Duplicates are decided by the rule of the local conversion: per sid, the latest
   ``updated_at``, then ``event_at``, then ``event_try``, then the record read last (a
   window over that ordering; pieces are numbered in reading order). A row already in the
   dataset is replaced only by a strictly newer record.
4. Tasks write the winning rows with the project's writer
   (:class:`~smsanalytics.dataset.PartitionWriter`) into a new version of the dataset; the
   driver links or filters the existing files into it, writes the rejects file and the
   manifest, and swaps the version in atomically, under the dataset's lock, as the local
   conversion does.

The output directory must be a path that the driver and every executor see (a local path
in ``local[N]`` mode, a shared mount on a cluster); inputs too, since tasks open them by
name. Privacy options (``pseudonymize_key``, ``redact_bodies``) are applied in the tasks
by the local conversion's own code (:func:`~smsanalytics.ingest.parse_candidates`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import duckdb
import numpy as np
import pyarrow as pa

from . import dataset as ds
from . import privacy
from .errors import ArgumentError, SmsAnalyticsError, StrictModeError
from .ingest import PARTITIONINGS, ConversionSummary, default_rejects_path
from .readers import InputFile, find_inputs, line_boundaries
from .schema import MESSAGE_SCHEMA
from .spark import is_spark_error, spark_error_reason

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["check_arguments", "convert", "DEFAULT_SPLIT_BYTES", "GROUP_RECORDS"]

#: A JSON Lines file larger than this is read by several tasks, one range each [bytes].
DEFAULT_SPLIT_BYTES = 128 << 20
#: Records per parse inside a task: enough to amortise the parse's planning.
GROUP_RECORDS = 50_000
# Earlier than any instant a dataset holds (1678 and later): stands for a missing one.
_NEVER = "TIMESTAMP '1000-01-01 00:00:00'"
_PIECE_SCHEMA = pa.schema([
    ("piece", pa.int64()), ("name", pa.string()), ("kind", pa.string()),
    ("compression", pa.string()), ("size", pa.int64()), ("start", pa.int64()),
    ("end", pa.int64()), ("first_line", pa.int64()),
])
_REJECT_FIELDS = [("reason", pa.string()), ("raw", pa.string())]
_ROW_FIELDS = [("piece", pa.int64()), ("record_no", pa.int64()), ("row_kind", pa.string()),
               ("records", pa.int64())]


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
        Files or directories (walked recursively); not standard input.
    out : str or Path
        Dataset directory, seen by the driver and every executor.
    rejects, partition_by, overwrite, strict, enrich_rows, lock_timeout
        As for :func:`smsanalytics.convert`.
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
    out = _local(out).absolute()
    rejects_path = _local(rejects).absolute() if rejects else default_rejects_path(out)
    files = find_inputs([_local(p) for p in inputs])
    out.parent.mkdir(parents=True, exist_ok=True)
    with ds.locked(out, timeout=lock_timeout):
        ds.clean_leftovers(out)
        manifest = ds.check_writable(out, partition_by=partition_by, overwrite=overwrite)
        if not overwrite:
            privacy.check_compatible(manifest, out, pseudonymize_key,
                                     redact_bodies=redact_bodies,
                                     pseudonymize_recipients=pseudonymize_recipients)
        existing = [] if overwrite else ds.dataset_files(out) if manifest else []
        version = ds.new_version_dir(out)
        try:
            summary = _run(spark, files, out, version, rejects_path, existing,
                           partition_by=partition_by, overwrite=overwrite, strict=strict,
                           enrich_rows=enrich_rows, split_bytes=split_bytes,
                           privacy_options=privacy_options)
        except Exception as exc:
            if is_spark_error(exc):
                raise SmsAnalyticsError(
                    f"the Spark job failed: {spark_error_reason(exc)}; "
                    "the dataset was not changed"
                ) from exc
            raise
        finally:
            shutil.rmtree(version, ignore_errors=True)
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
        If `inputs` hold standard input (``-``: Spark tasks cannot read it), a path has a
        scheme other than ``file://``, or `partition_by` or `split_bytes` is not valid.
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
    for location in [*inputs, out, *([rejects] if rejects else [])]:
        _local(location)


def _local(location: str | Path) -> Path:
    """A path, or a ``file://`` URI as a path; other schemes are refused (see the module)."""
    text = str(location)
    if text.startswith("file:"):
        return Path(unquote(urlparse(text).path))
    if "://" in text:
        raise ArgumentError("path", text, "the Spark conversion reads and writes paths that "
                            "every node sees (a shared mount), or file:// URIs")
    return Path(text)


def _run(spark: SparkSession, files: list[InputFile], out: Path, version: Path,
         rejects_path: Path, existing: list[Path], *, partition_by: str, overwrite: bool,
         strict: bool, enrich_rows: bool, split_bytes: int,
         privacy_options: _Privacy) -> ConversionSummary:
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    pieces = _pieces(spark, files, split_bytes)
    parsed = _parse(spark, pieces, enrich_rows, privacy_options).persist()
    try:
        counts = parsed.filter("row_kind = 'count'").agg(F.sum("records")).first()[0] or 0
        rejected_rows = (parsed.filter("row_kind = 'reject'")
                         .select("source_file", "source_line", "reason", "raw").toArrow())
        records, rejected = int(counts), rejected_rows.num_rows
        summary = ConversionSummary(
            records=records, rejected=rejected, files=len(files),
            bytes=sum(f.size for f in files), out=str(out), rejects_path=str(rejects_path),
        )
        _write_rejects(rejected_rows, rejects_path, summary)
        if strict and rejected:
            raise StrictModeError(
                f"{rejected:,} of {records:,} records rejected (strict mode); "
                f"see {rejects_path}; the dataset was not changed")
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
        replace: dict[Path, list[str]] = {}
        old_rows = 0
        if existing:
            stale, replace, old_rows = _against_dataset(spark, ranked.filter("_rn = 1"),
                                                        existing)
            losers = losers.unionByName(stale)
        winners = rows.join(losers, ["piece", "record_no"], "left_anti")
        written_parts = _write(winners.select(*MESSAGE_SCHEMA.names), version, partition_by)
        ranked.unpersist()
    finally:
        parsed.unpersist()
    written = sum(n for _, _, n in written_parts)
    replaced = sum(len(s) for s in replace.values())
    summary.written, summary.replaced = written, replaced
    summary.duplicates = records - rejected - written
    summary.rows_total = old_rows + written - replaced
    if written or overwrite or not existing:
        _commit(version, out, written_parts, existing, replace, partition_by, summary,
                privacy_options)
    return summary


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

    def manifest_entry(self) -> dict[str, Any]:
        record = privacy.manifest_record(self.key, redact_bodies=self.redact_bodies,
                                         pseudonymize_recipients=self.recipients)
        return {privacy.MANIFEST_KEY: record} if record else {}


def _splittable(f: InputFile, split_bytes: int) -> bool:
    return f.kind == "lines" and f.compression is None and f.size > split_bytes


def _pieces(spark: SparkSession, files: list[InputFile], split_bytes: int) -> list[dict]:
    """The pieces in reading order; ranges know their first line (a job counts lines)."""
    pieces: list[dict[str, Any]] = []
    ranges: list[int] = []  # indices of ranged pieces, whose first_line is still unknown
    for f in files:
        base = {"name": f.name, "kind": f.kind, "compression": f.compression, "size": f.size}
        if not _splittable(f, split_bytes):
            pieces.append({**base, "start": -1, "end": -1, "first_line": 1})
            continue
        cuts = line_boundaries(f, split_bytes)
        for start, end in zip(cuts[:-1], cuts[1:], strict=True):
            ranges.append(len(pieces))
            pieces.append({**base, "start": start, "end": end, "first_line": 1})
    for i, p in enumerate(pieces):
        p["piece"] = i
    if ranges:
        spans = [(pieces[i]["name"], pieces[i]["start"], pieces[i]["end"]) for i in ranges]
        newlines = (spark.sparkContext.parallelize(spans, len(spans))
                    .map(_count_newlines).collect())
        line = {}
        for i, n in zip(ranges, newlines, strict=True):
            name = pieces[i]["name"]
            pieces[i]["first_line"] = line.get(name, 1)
            line[name] = pieces[i]["first_line"] + n
    return pieces


_COUNT_BLOCK = 16 << 20  # bytes read at a time when counting lines


def _count_newlines(span: tuple[str, int, int]) -> int:
    """Line ends in bytes [start, end) of a file, counted as the reader counts them.

    LF, CRLF and a lone CR each end one line (:func:`smsanalytics.readers.iter_raw_batches`
    reads CR-only files line by line), so a CRLF split between two blocks counts once.
    """
    name, start, end = span
    count = 0
    cr_before = False  # the previous block ended with CR
    with open(name, "rb") as stream:
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


def _spark_schema(fields: list[pa.Field]) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    from .spark import _plain_type

    return from_arrow_schema(pa.schema([pa.field(f.name, _plain_type(f.type)) for f in fields]))


def _parsed_fields() -> list[pa.Field]:
    return [*MESSAGE_SCHEMA, *(pa.field(n, t) for n, t in _REJECT_FIELDS),
            *(pa.field(n, t) for n, t in _ROW_FIELDS)]


def _parse(spark: SparkSession, pieces: list[dict], enrich_rows: bool,
           privacy_options: _Privacy) -> DataFrame:
    table = pa.Table.from_pylist(pieces, schema=_PIECE_SCHEMA)
    # About as many tasks as pieces; consecutive pieces (small files) share a task.
    frame = spark.createDataFrame(table).repartitionByRange(
        max(1, min(len(pieces), spark.sparkContext.defaultParallelism * 4)), "piece")
    fields = _parsed_fields()

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = [r for b in batches for r in b.to_pylist()]
        rows.sort(key=lambda r: r["piece"])
        yield from _parse_pieces(rows, enrich_rows, fields, privacy_options)

    return frame.mapInArrow(task, _spark_schema(fields))


def _parse_pieces(pieces: list[dict], enrich_rows: bool, fields: list[pa.Field],
                  privacy_options: _Privacy) -> Iterator[pa.RecordBatch]:
    """Parse one task's pieces (in order) in groups of about GROUP_RECORDS records."""
    from .ingest import parse_candidates
    from .readers import iter_line_range, iter_raw_batches

    schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in fields])
    ends: list[tuple[int, int]] = []  # (records so far, piece) at the end of each piece
    read = 0

    def candidates() -> Iterator[pa.Table]:
        nonlocal read
        group: list[pa.Table] = []
        size = 0
        for p in pieces:
            inp = InputFile(p["name"], p["kind"], p["compression"], p["size"])
            if p["start"] < 0:
                tables = iter_raw_batches(inp)
            else:
                tables = iter_line_range(inp, p["start"], p["end"], p["first_line"])
            for t in tables:
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
# Duplicates against the dataset, writing, committing
# ---------------------------------------------------------------------------------------


def _against_dataset(spark: SparkSession, best: DataFrame,
                     existing: list[Path]) -> tuple[DataFrame, dict[Path, list[str]], int]:
    """The new rows not strictly newer than the dataset's (``piece``, ``record_no``), the
    old rows the others replace (file -> sids), and the dataset's row count."""
    from pyspark.sql import functions as F

    # Hadoop takes the path as it is: percent-encoding (month%3D...) would not be undone.
    old = (spark.read.parquet(*[f"file://{f}" for f in existing])
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
    replace: dict[Path, list[str]] = {}
    for file, sid in zip(replaced.column("old_file").to_pylist(),
                         replaced.column("sid").to_pylist(), strict=True):
        replace.setdefault(Path(unquote(urlparse(file).path)), []).append(sid)
    stale = clash.filter("NOT newer").select("piece", "record_no")
    return stale, replace, old_rows


def _write(rows: DataFrame, version: Path, partition_by: str) -> list[tuple[str, str, int]]:
    """Tasks write their rows with the project's writer; returns (path, partition, rows)."""
    root = str(version)
    plain = pa.schema([pa.field(f.name, _plain(f.type)) for f in MESSAGE_SCHEMA])

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        paths, keys, counts = [], [], []
        with ds.PartitionWriter(Path(root), partition_by=partition_by) as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write(_cast(pa.Table.from_batches([batch]), plain))
        by_number = writer.keys()
        for number, path in enumerate(writer.paths):
            key = by_number[number]
            paths.append(str(path))
            keys.append(key)
            counts.append(writer.counts[key])
        yield pa.RecordBatch.from_arrays(
            [pa.array(paths, pa.string()), pa.array(keys, pa.string()),
             pa.array(counts, pa.int64())], names=["path", "partition", "rows"])

    result = rows.mapInArrow(task, "path string, partition string, rows long").toArrow()
    return [(r["path"], r["partition"], r["rows"]) for r in result.to_pylist()]


def _write_rejects(rejects: pa.Table, path: Path, summary: ConversionSummary) -> None:
    """The rejects file and the summary's reasons, as the local conversion writes them."""
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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            target = str(tmp).replace("'", "''")
            con.execute(
                "COPY (SELECT source_file, source_line, reason, raw FROM rejects "
                f"ORDER BY source_file, source_line) TO '{target}' (FORMAT json)")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        con.close()


def _commit(version: Path, out: Path, written: list[tuple[str, str, int]],
            existing: list[Path], replace: dict[Path, list[str]], partition_by: str,
            summary: ConversionSummary, privacy_options: _Privacy) -> None:
    """Link or filter the existing files into the new version, write its manifest, swap."""
    touched = {key for path, key, rows in written if rows}
    for f in existing:
        target = version / f.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        sids = replace.get(f)
        if sids is not None:
            ds.rewrite_file(f, target, drop_sids=pa.array(sids, pa.string()))
            touched.add(ds.partition_of(f, out))
            continue
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)
    for folder in version.iterdir():  # partitions all of whose rows were replaced
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    summary.partitions_written = sorted(t for t in touched if t)
    ds.write_manifest(version, {
        "version": 1,
        "partition_by": partition_by,
        "rows": summary.rows_total,
        **privacy_options.manifest_entry(),
        "last_conversion": {k: v for k, v in summary.to_dict().items()
                            if k not in ("out", "elapsed", "partitions_written")},
    })
    ds.commit_version(version, out)
