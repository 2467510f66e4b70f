"""Load archives into messages: one pass of parsing, rejects, de-duplication and writing.

This module joins the pure layers (:mod:`~smsanalytics.sources` parses records,
:mod:`~smsanalytics.enrich` fills columns) to the files (:mod:`~smsanalytics.readers` cuts
inputs into records, :mod:`~smsanalytics.dataset` owns the layout on disk). The inputs are
read once, in batches: a thread cuts records, an embedded DuckDB parses each batch, a
thread writes it, so memory stays flat however large the input; de-duplication is decided
at the end on the rows' keys, in DuckDB with a memory limit, spilling to disk.

Accounting, kept for every run: ``records == written + duplicates + rejected``.

* a *record* is one candidate the readers found (a non-blank line, an array element, a
  YAML document), good or bad;
* *rejected* records go to the rejects file with file, line, reason and raw text;
* *duplicates* are records of an sid that lost to another record of the same sid, in this
  run or already in the dataset: the record with the latest ``updated_at`` wins, then the
  latest ``event_at``, then the highest ``event_try``, then the record read last (files in the
  order given, a directory's files in name order);
* *written* rows are new sids plus newer versions of sids already in the dataset
  (``replaced`` counts the latter).
"""

from __future__ import annotations

import errno
import gc
import html
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import dataset as ds
from . import privacy
from .errors import DatasetError, InputError, OutputPathError, StrictModeError
from .paths import check_output_path, same_file
from .readers import (
    InputFile,
    arrow_ints,
    find_inputs,
    iter_raw_batches,
    lines_cover_file,
    lines_sql,
)
from .schema import MESSAGE_SCHEMA, RAW_SCHEMA
from .sources import UNPARSED_COLUMNS, parse_sql

if TYPE_CHECKING:  # pandas and the enrichment (phonenumbers' data) take a second to import
    import pandas as pd

    from . import enrich

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
# Records per batch: memory in flight is a few batches. 25,000 rather than 50,000: 5-8 %
# less time and a tenth less memory (benchmarks/convert.py, interleaved); 12,500 no faster.
_FLUSH_ROWS = 25_000
_ALONE_BYTES = 8 << 20  # a table of candidates this large is parsed on its own
# DuckDB's cap while parsing. Ordinary records need little; a record of tens of MB is
# held several times over (its text, its parsed fields, results not yet taken) by each
# of the two threads: 500MB let a 50 MB line fail about one run in eight.
_MEMORY_LIMIT = os.environ.get("SMSANALYTICS_MEMORY_LIMIT", "800MB")
_LATER_MEMORY_LIMIT = "300MB"
# Record candidates as the parse reads them: numbered, and their file as a number (the
# file names are kept aside, see _Run._file_of).
_CANDIDATES = RAW_SCHEMA.append(pa.field("record_no", pa.int64())).append(
    pa.field("file_no", pa.int32())
)
# What de-duplication needs of each row written, and where the row was written.
_KEY_FIELDS: list[tuple[str, pa.DataType]] = [
    ("sid", pa.string()),
    ("updated_at", pa.timestamp("us", tz="UTC")),
    ("event_at", pa.timestamp("us", tz="UTC")),
    ("event_try", pa.int32()),
    ("record_no", pa.int64()),
    ("sid_hash", pa.uint64()),  # telling sids apart by a number is cheaper: see decide
    ("file", pa.int32()),
    ("pos", pa.int64()),
]
_KEYS = pa.schema(_KEY_FIELDS)
_KEY_COLUMNS = _KEYS.names[:6]
# Records of one sid, best first: the winner is row 1.
_WINNER_FIRST = (
    "(PARTITION BY sid ORDER BY updated_at DESC NULLS LAST, event_at DESC NULLS LAST, "
    "event_try DESC NULLS LAST, record_no DESC)"
)


# A reason quotes the value it is about between single quotes (``parts: 'two' is not a
# whole number``); a private run keeps the reason and withholds everything from its first
# quote to its last, whatever the value or the reason. A lone apostrophe stays.
_WITHHELD_REASON = "regexp_replace(reject_reason, '(?s)''.*''', '''…''')"


def _rank(alias: str) -> str:
    """SQL for the order in which a record beats another of the same sid (greater wins)."""
    return (
        f"({{'u': coalesce({alias}.updated_at, '-infinity'::TIMESTAMPTZ), "
        f"'e': coalesce({alias}.event_at, '-infinity'::TIMESTAMPTZ), "
        f"'t': coalesce({alias}.event_try, -1)}})"
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
            f"{self.records:,} records from {self.files:,} file{'' if self.files == 1 else 's'} "
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


class _Sink(Protocol):
    """Where a run's rows go: a dataset's new files, or memory."""

    def write(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]: ...

    def close(self, *, flush: bool = True) -> None: ...


class _InMemory:
    """Rows kept in memory (for :func:`load_messages`); one "file", numbered 0."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.rows = 0

    def write(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        n = table.num_rows
        self.tables.append(table)
        self.rows += n
        return np.zeros(n, dtype=np.int32), np.arange(self.rows - n, self.rows)

    def close(self, *, flush: bool = True) -> None:
        pass


class _Interrupt:
    """Ctrl-C during a conversion, raised as :class:`KeyboardInterrupt` where it is safe.

    Python raises ``KeyboardInterrupt`` wherever the main thread is. Inside code DuckDB
    or Arrow called back (the stream of record candidates), it became a DuckDB error, or
    was lost and the run went on to exit 0. While this is entered (in the main thread),
    Ctrl-C only records the request and interrupts the DuckDB query; the run checks
    between batches and steps (:meth:`check`) and leaves with ``KeyboardInterrupt``,
    whose text says what became of the dataset. A second Ctrl-C raises at once. The swap
    of the new version is never cut: Ctrl-C during it is raised after it.
    """

    def __init__(
        self,
        unchanged: str = "the dataset was not changed",
        completed: str = "the conversion had completed: the dataset holds the new version",
    ) -> None:
        self._unchanged = unchanged  # what to say when stopped before any change
        self._completed = completed  # ... and after the swap
        self._requested = threading.Event()
        self.con: duckdb.DuckDBPyConnection | None = None
        self._deferred = False
        self._committed = False
        self._previous: Any = None
        self._installed = False

    @property
    def requested(self) -> bool:
        """Whether Ctrl-C was pressed."""
        return self._requested.is_set()

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
        if self.requested or (kind is not None and issubclass(kind, KeyboardInterrupt)):
            what = self._completed if self._committed else self._unchanged
            raise KeyboardInterrupt(what) from None

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and not self._deferred:
            raise KeyboardInterrupt  # pressed again: stop now
        self._requested.set()
        if self.con is not None and not self._deferred:
            try:
                self.con.interrupt()
            except duckdb.Error:  # closed already
                pass

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Let the block finish whatever Ctrl-C does; it is raised after."""
        self.check()
        self._deferred = True
        try:
            yield
            self._committed = True
        finally:
            self._deferred = False


class _Rejects:
    """The rejected records of a run: file, line, reason and text, in a DuckDB table.

    The table lives in the run's connection (spilled to disk when large). A private run
    (:attr:`_WriteOptions.private`) keeps no record text and no value quoted in a reason,
    and labels pseudonymised runs' files without their names.
    """

    _SQL = """SELECT source_file, source_line, reason,
                     left(rtrim(text, E'\\r\\n'), 10000) AS raw
              FROM rejects ORDER BY source_file, source_line"""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: _WriteOptions | None) -> None:
        self.con = con
        self.options = options
        con.execute(
            "CREATE TABLE rejects (source_file VARCHAR, source_line BIGINT, reason VARCHAR, "
            "text VARCHAR)"
        )

    def file(self, parsed: pa.Table, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
        """File the rejected rows of `parsed` (through `cursor`); return the others."""
        reasons = parsed.column("reject_reason")
        if reasons.null_count < len(reasons):
            bad = pc.is_valid(reasons)
            rejected = parsed.filter(bad)
            private = self.options is not None and self.options.private
            if private:
                assert self.options is not None  # private says so
                rejected = self.options.protect_rejects(rejected)
            cursor.register("_bad", rejected)
            reason, text = (_WITHHELD_REASON, "NULL") if private else ("reject_reason", "text")
            try:
                cursor.execute(
                    f"INSERT INTO rejects SELECT source_file, source_line, {reason}, {text} "
                    "FROM _bad"
                )
            finally:
                cursor.unregister("_bad")
            parsed = parsed.filter(pc.invert(bad))
        return parsed.drop_columns(["reject_reason", "text"])

    def count(self) -> int:
        (bad,) = _row(self.con, "SELECT count(*) FROM rejects")
        return int(bad)

    def damaged_files(self) -> dict[str, str]:
        rows = self.con.execute(
            """SELECT source_file, min(reason) FROM rejects
               WHERE starts_with(reason, 'compressed data is truncated or corrupt')
               GROUP BY source_file ORDER BY source_file"""
        ).fetchall()
        return {str(f): str(r) for f, r in rows}

    def reasons(self) -> dict[str, int]:
        """Rejected records per reason, the reason cut at its first colon."""
        rows = self.con.execute(
            r"""SELECT regexp_replace(split_part(reason, ':', 1), ' \(.*', '') AS r,
                      count(*) FROM rejects GROUP BY r ORDER BY count(*) DESC, r"""
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    def write(self, path: Path, dataset: Path | None = None) -> None:
        """Write the rejects file atomically (an empty file when nothing was rejected).

        In a private run, ``raw`` is null and values quoted in reasons are withheld:
        file, line and reason still say where the record is in the archive and why.
        It is written in a private folder beside `path`, then given the mode the file it
        replaces had, never more open than the `dataset` folder
        (:func:`smsanalytics.dataset.guard_beside`), before it is renamed into place.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        folder.mkdir(mode=0o700)
        tmp = folder / path.name
        try:
            self.con.execute(f"COPY ({self._SQL}) TO '{_sql_path(tmp)}' (FORMAT json)")
            if dataset is not None:
                ds.guard_beside(tmp, path, dataset)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def table(self) -> pa.Table:
        table: pa.Table = self.con.sql(self._SQL).to_arrow_table()  # stubs: Any
        return table


class _KeyLedger:
    """The key of every row written (sid, its rank, where it was written): it decides
    which record of each sid wins.

    Within a batch at once (:meth:`drop_duplicates`: most duplicates are near); across
    batches and against the dataset at the end, on the keys only (:meth:`decide`). The
    keys go to a scratch Parquet file, not to DuckDB's memory: millions of sids would
    crowd out the parsing, which needs the room for huge records.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, workdir: Path) -> None:
        self.con = con
        self._path = workdir / "keys.parquet"
        # Written plain (no compression, dictionary or statistics): it is read once, and
        # encoding it cost the main thread 0.5 s per million rows.
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._path,
            _KEYS,
            compression="none",
            use_dictionary=False,
            write_statistics=False,
        )

    def drop_duplicates(self, good: pa.Table, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
        """Keep the winner of each sid within the batch `good` (ranked through `cursor`)."""
        if pc.count_distinct(good.column("sid_hash")).as_py() == good.num_rows:
            return good  # as many hashes as rows: no sid twice
        cursor.register("_batch", good.select(_KEY_COLUMNS))
        try:
            losers = cursor.sql(
                f"SELECT record_no FROM _batch QUALIFY row_number() OVER {_WINNER_FIRST} > 1"
            ).to_arrow_table().column(0)
        finally:
            cursor.unregister("_batch")
        return good.filter(pc.invert(pc.is_in(good.column("record_no"), value_set=losers)))

    def add(self, keys: pa.Table, file_no: np.ndarray, position: np.ndarray) -> None:
        """Record the keys of rows written at `position` of sink file `file_no`."""
        assert self._writer is not None
        keys = keys.append_column("file", pa.array(file_no)).append_column(
            "pos", pa.array(position)
        )
        self._writer.write_table(keys.cast(_KEYS))

    def close(self) -> None:
        """Close the keys file; :meth:`decide` may follow."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.con.execute(f"CREATE VIEW keys AS SELECT * FROM '{_sql_path(self._path)}'")

    def decide(self, existing: Sequence[Path]) -> _Outcome:
        """Pick the winner of each sid among this run's rows and the dataset's.

        The winner has the latest ``updated_at``, then ``event_at``, then ``event_try``,
        then is the record read last; a dataset row is replaced only by a strictly newer
        record.
        """
        con = self.con
        # As many distinct hashes as keys proves every sid distinct. Fewer means a sid in
        # two batches, or (once in billions of runs) two sids with one hash: either way
        # the exact ranking below, by sid, decides.
        n_keys, n_hashes = _row(con, "SELECT count(*), count(DISTINCT sid_hash) FROM keys")
        if n_keys > n_hashes:
            con.execute(
                f"""CREATE TABLE ranked AS SELECT *, row_number() OVER {_WINNER_FIRST} AS rn
                    FROM keys"""
            )
            con.execute("CREATE VIEW best AS SELECT * FROM ranked WHERE rn = 1")
            con.execute("CREATE TABLE losers AS SELECT file, pos FROM ranked WHERE rn > 1")
        else:
            con.execute("CREATE VIEW best AS SELECT * FROM keys")
            con.execute("CREATE TABLE losers AS SELECT file, pos FROM keys WHERE false")
        old_rows, replaced = 0, []
        if existing:
            listing = "[" + ", ".join(f"'{_sql_path(f)}'" for f in existing) + "]"
            con.execute(
                f"""CREATE TABLE old AS
                    SELECT sid, updated_at, event_at, event_try, filename AS file
                    FROM read_parquet({listing}, filename=true, hive_partitioning=false)"""
            )
            con.execute(
                f"""CREATE TABLE clash AS
                    SELECT b.file AS new_file, b.pos, o.file AS old_file, sid,
                           {_rank("b")} > {_rank("o")} AS newer
                    FROM best b JOIN old o USING (sid)"""
            )
            con.execute(
                "INSERT INTO losers SELECT new_file, pos FROM clash WHERE NOT newer"
            )
            (old_rows,) = _row(con, "SELECT count(*) FROM old")
            replaced = con.execute(
                "SELECT old_file, list(sid) FROM clash WHERE newer GROUP BY old_file"
            ).fetchall()
        (n_losers,) = _row(con, "SELECT count(*) FROM losers")
        drop = {
            int(f): np.asarray(p, dtype=np.int64)
            for f, p in con.execute(
                "SELECT file, list(pos) FROM losers GROUP BY file"
            ).fetchall()
        }
        return _Outcome(
            written=int(n_keys) - int(n_losers),
            old_rows=int(old_rows),
            drop_positions=drop,
            replace={Path(f): pa.array(sids, pa.string()) for f, sids in replaced},
        )


@dataclass
class _Outcome:
    """What :meth:`_KeyLedger.decide` found."""

    written: int
    old_rows: int
    #: file number of this run's sink -> row positions that lost to another record
    drop_positions: dict[int, np.ndarray]
    #: dataset file -> sids whose row there is replaced by a newer record
    replace: dict[Path, pa.Array[Any]]

    @property
    def replaced(self) -> int:
        return sum(len(s) for s in self.replace.values())


class _Run:
    """The batch pipeline: parse, reject, enrich and write each batch as it comes.

    DuckDB parses the record candidates into Arrow batches (:meth:`parse_stream` for
    records cut in Python, :meth:`parse_file` for a file DuckDB reads itself); of each,
    the rejects go to the :class:`_Rejects` store, and the good rows are de-duplicated
    within the batch by the :class:`_KeyLedger`, enriched, optionally pseudonymised and
    handed to the sink, which a second thread writes while DuckDB parses on. The ledger
    keeps each written row's key, so that :meth:`decide` settles duplicates across
    batches and against the dataset at the end.
    """

    def __init__(
        self,
        workdir: Path,
        sink: _Sink,
        *,
        enricher: Future[enrich.Enricher] | None = None,
        options: _WriteOptions | None = None,
        interrupt: _Interrupt | None = None,
    ) -> None:
        self.con = duckdb.connect(":memory:")
        self.interrupt = interrupt or _Interrupt()
        self.interrupt.con = self.con
        for setting in (
            "SET TimeZone='UTC'",
            f"SET memory_limit='{_MEMORY_LIMIT}'",
            f"SET temp_directory='{_sql_path(workdir / 'spill')}'",
            "SET preserve_insertion_order=false",
            # The parse repeats costly expressions in CASE branches taken by rare rows (a
            # second JSON read, a regular expression over the record); DuckDB's common
            # subexpression rule hoists such a repeat into a projection of its own,
            # evaluated on every row: 5% of the parse's instructions.
            "SET disabled_optimizers='common_subexpressions'",
        ):
            self.con.execute(setting)
        try:  # the progress bar is ours (stderr, unless quiet), not DuckDB's (stdout)
            self.con.execute("SET enable_progress_bar=false")
        except duckdb.Error:  # in Jupyter, DuckDB wants ipywidgets to change it
            pass
        self.rejects = _Rejects(self.con, options)
        self.ledger = _KeyLedger(self.con, workdir)
        self.aux = self.con.cursor()  # for the batches' small queries while the parse streams
        self.sink = sink
        self.enricher = enricher
        # Pseudonymise new rows (rows already in the dataset were, when written).
        self.protect = options.protect if options is not None and options.private else None
        self.records = 0
        self.files = 0
        self.bytes = 0
        self._file_nos: dict[str, int] = {}  # source_file -> its number (in order)
        self._finished = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smsanalytics-write")
        self._pending: deque[tuple[pa.Table, Future[tuple[np.ndarray, np.ndarray]]]] = deque()

    def parse(self, candidates: Iterator[pa.Table]) -> None:
        """Parse record candidates (see :meth:`parse_stream`), then :meth:`finish`."""
        self.parse_stream(candidates)
        self.finish()

    def parse_stream(self, candidates: Iterator[pa.Table]) -> None:
        """Parse the record candidates with one streaming query; take each batch it yields.

        DuckDB pulls the candidates (numbered here) from the iterator, parses them on all
        cores and hands back Arrow batches, which are filed while it parses ahead.
        """

        def numbered() -> Iterator[pa.RecordBatch]:
            for raw in candidates:
                if self.interrupt.requested:  # end the stream: the parse then ends
                    return
                first = self.records
                self.records += raw.num_rows
                table = raw.append_column(
                    "record_no", arrow_ints(np.arange(first, self.records, dtype=np.int64))
                ).append_column("file_no", self._file_numbers(raw.column("source_file")))
                yield from table.cast(_CANDIDATES).to_batches()

        stream = pa.RecordBatchReader.from_batches(_CANDIDATES, numbered())
        self.con.register("_candidates", stream)
        # The parse hands back each record's file as its number, not its name: a million
        # copies of a path cost DuckDB and the writer a tenth of the conversion. (The sink
        # works out each row's month partition, see dataset.month_groups.)
        try:
            with closing(self._parsed("_candidates", ("record_no", "file_no"))) as batches:
                for batch in batches:
                    self._take(pa.Table.from_batches([batch]))
        finally:
            self.con.unregister("_candidates")
        self.interrupt.check()  # before the last writes: they would be abandoned

    def parse_file(self, inp: InputFile) -> bool:
        """Parse a whole JSON Lines file read by DuckDB's own (parallel) reader.

        For a clean file (:func:`~smsanalytics.readers.lines_sql`), nothing is cut or
        copied in Python: DuckDB reads the lines and parses them in one query, in file
        order, and the lines are numbered here as the batches come. A first pass over
        the lines proves that DuckDB reads every line as :mod:`~smsanalytics.readers`
        would; if it does not, nothing was taken and False is returned: the caller then
        reads the file the careful way.
        """
        lines = lines_sql(inp)
        if lines is None:
            return False
        try:
            rows, text_bytes = _row(
                self.con, f"SELECT count(*), coalesce(sum(strlen(text)), 0) FROM {lines}"
            )
        except duckdb.Error:
            return False
        if not lines_cover_file(inp, rows, text_bytes):
            return False
        file_no = self._file_nos.setdefault(inp.name, len(self._file_nos))
        raw = (
            f"(SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, text, "
            f"NULL::VARCHAR AS pre_error, NULL::BIGINT AS record_no, {file_no} AS file_no, "
            f"blank FROM {lines}) AS _lines"
        )
        line = 1
        self.con.execute("SET preserve_insertion_order=true")  # the lines come in order
        try:
            batches = closing(self._parsed(raw, ("record_no", "file_no", "blank")))
            with batches as parsed:
                for batch in parsed:
                    self._take_lines(batch, line)
                    line += batch.num_rows
        except duckdb.InvalidInputException as exc:  # read once cleanly, then not
            raise InputError(inp.name, f"changed while it was read ({exc})") from exc
        finally:
            self.con.execute("SET preserve_insertion_order=false")
        self.interrupt.check()
        self.files += 1
        self.bytes += inp.size
        return True

    def _take_lines(self, batch: pa.RecordBatch, line: int) -> None:
        """Number a parsed batch of lines (the first is line `line`), drop the blank ones
        (no records) and take the rest."""
        numbers = np.arange(line, line + batch.num_rows, dtype=np.int64)
        table = pa.Table.from_batches([batch])
        blank = table.column("blank")
        table = table.drop_columns(["blank"])
        if pc.any(blank).as_py():
            keep = pc.invert(blank)
            table = table.filter(keep)
            numbers = numbers[keep.to_numpy(zero_copy_only=False)]
        first = self.records
        self.records += len(numbers)
        table = table.set_column(
            table.schema.get_field_index("source_line"), "source_line", arrow_ints(numbers)
        ).set_column(
            table.schema.get_field_index("record_no"),
            "record_no",
            arrow_ints(np.arange(first, self.records, dtype=np.int64)),
        )
        if table.num_rows:
            self._take(table)

    def _parsed(self, raw: str, keep: tuple[str, ...]) -> Generator[pa.RecordBatch, None, None]:
        """The parse of the candidates in `raw` (SQL), as Arrow batches as they come."""
        query = parse_sql(raw, keep=keep)
        # (nor the columns no record supplies: they are added as nulls, see _take)
        left_out = ", ".join(("source_file", *UNPARSED_COLUMNS))
        parsed = self.con.sql(
            f"SELECT * EXCLUDE ({left_out}), hash(sid) AS sid_hash FROM ({query})"
        ).to_arrow_reader(_FLUSH_ROWS)
        try:
            for batch in parsed:
                self.interrupt.check()
                yield batch
        finally:
            parsed.close()  # the connection takes no other query while a result is open

    def _file_numbers(self, files: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
        """The number of each record's file (dictionary-encoded names) in this run."""
        chunks = []
        for chunk in cast("list[pa.DictionaryArray[Any, Any]]", files.chunks):  # RAW_SCHEMA
            names = cast("list[str]", chunk.dictionary.to_pylist())  # readers name each file
            for name in names:
                self._file_nos.setdefault(name, len(self._file_nos))
            numbers = np.array([self._file_nos[name] for name in names], dtype=np.int32)
            chunks.append(arrow_ints(numbers[chunk.indices.to_numpy(zero_copy_only=False)]))
        return pa.chunked_array(chunks, pa.int32())

    def _file_of(self, file_no: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
        """``source_file`` from the files' numbers: dictionary-encoded, no copies."""
        names = pa.array(list(self._file_nos), pa.string())
        # pyarrow-stubs: chunked_array has no overload taking a dictionary type
        files: pa.ChunkedArray[Any] = pa.chunked_array(  # type: ignore[call-overload]
            [pa.DictionaryArray.from_arrays(c, names) for c in file_no.chunks],
            pa.dictionary(pa.int32(), pa.string()),
        )
        return files

    def _take(self, parsed: pa.Table) -> None:
        """File the rejects of a parsed batch and send its good rows to the sink."""
        parsed = parsed.append_column(
            "source_file", self._file_of(parsed.column("file_no"))
        ).drop_columns(["file_no"])
        for name in UNPARSED_COLUMNS:
            field = MESSAGE_SCHEMA.field(name)
            parsed = parsed.append_column(field, pa.nulls(parsed.num_rows, field.type))
        good = self.ledger.drop_duplicates(self.rejects.file(parsed, self.aux), self.aux)
        if not good.num_rows:
            return
        if self.enricher is not None:
            good = self.enricher.result()(good)
        if self.protect is not None:
            good = self.protect(good)
        keys = good.select(_KEY_COLUMNS)
        self._pending.append((keys, self._writer.submit(self.sink.write, good)))
        while len(self._pending) > 1:  # one batch being written while the next is taken
            self._settle()

    def _settle(self) -> None:
        keys, written = self._pending.popleft()
        self.ledger.add(keys, *written.result())

    def finish(self) -> None:
        """Wait for the writes, close the sink; what follows works on keys and rejects."""
        while self._pending:
            self._settle()
        self._writer.shutdown(wait=True)
        self.sink.close()
        self.ledger.close()
        self._finished = True
        self.con.execute(f"SET memory_limit='{_LATER_MEMORY_LIMIT}'")

    def decide(self, existing: Sequence[Path]) -> _Outcome:
        """Settle duplicates across batches and against `existing` (the dataset's files)."""
        return self.ledger.decide(existing)

    def summary(self, outcome: _Outcome, **where: Any) -> ConversionSummary:
        """The counts of the run once `outcome` is decided (`where`: out, rejects_path)."""
        rejected = self.rejects.count()
        return ConversionSummary(
            records=self.records,
            written=outcome.written,
            duplicates=self.records - rejected - outcome.written,
            rejected=rejected,
            replaced=outcome.replaced,
            rows_total=outcome.old_rows + outcome.written - outcome.replaced,
            files=self.files,
            bytes=self.bytes,
            reject_reasons=self.rejects.reasons(),
            damaged_files=self.rejects.damaged_files(),
            **where,
        )

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release everything; after a failure, the sink is closed without writing more."""
        self._writer.shutdown(wait=True, cancel_futures=True)
        if not self._finished:
            try:
                self.sink.close(flush=False)
                self.ledger.close()
            except Exception:  # noqa: BLE001 - the error that stopped the run matters
                pass
        self.aux.close()
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
        path = ds.new_stage_dir(out)
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


class _BytesRead:
    """Counts the bytes read from one input, passing them on to a progress bar."""

    def __init__(self, progress: Progress | None) -> None:
        self.total = 0
        self._progress = progress

    def __call__(self, n: int) -> None:
        self.total += n
        if self._progress is not None:
            self._progress(n)


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
    first = True  # the first batch goes at once: the parse starts sooner
    try:
        for inp in inputs:
            read = _BytesRead(progress)
            for raw in iter_raw_batches(inp, read):
                if stop.is_set():
                    return
                if raw.nbytes > _ALONE_BYTES:
                    # A huge record (a long line is a table of its own) is parsed alone:
                    # with 25,000 others around it, it could take DuckDB past its memory.
                    if pending:
                        out.put(pa.concat_tables(pending))
                    out.put(raw)
                    pending, rows, first = [], 0, False
                    continue
                pending.append(raw)
                rows += len(raw)
                if rows >= _FLUSH_ROWS or first:
                    if not _put(out, pa.concat_tables(pending), stop):
                        return
                    pending, rows, first = [], 0, False
            # Standard input has no size on disk: the summary counts what was read.
            done = replace(inp, size=read.total) if inp.is_stdin else inp
            if not _put(out, done, stop):
                return
        if pending and not _put(out, pa.concat_tables(pending), stop):
            return
        _put(out, None, stop)
    except BaseException as exc:  # handed to the consumer, which raises it
        _put(out, exc, stop)


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item`, waiting for room until the consumer stops; False if it did."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            pass
    return False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (its state is restored).

    A conversion creates many objects but hardly any reference cycles; collections
    triggered by the allocation count cost 0.1-0.2 s per million records, holding the
    GIL that the reader and writer threads need.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_inputs(run: _Run, inputs: Sequence[InputFile], quiet: bool) -> None:
    """Run `run` over the inputs, read and cut into records by a thread of their own."""
    # pyarrow imports pandas the first time it converts NumPy or Python values, which the
    # steps after the parse do; a thread imports it while the first batch is read and
    # parsed (the reader and the parse avoid those conversions).
    warm_up = threading.Thread(target=_import_pandas, name="smsanalytics-import", daemon=True)
    warm_up.start()
    try:
        with _gc_paused():
            _read_all(run, inputs, quiet)
    finally:
        if not run.interrupt.requested:
            warm_up.join()


def _import_pandas() -> None:
    try:
        import pandas  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; pyarrow works without it
        pass


def _read_all(run: _Run, inputs: Sequence[InputFile], quiet: bool) -> None:
    """Parse every input, in order: cut into records in Python and parsed in streams
    (:func:`_stream`), or, when offered (opt-in: readers.DIRECT_MIN_BYTES), a large clean
    JSON Lines file read by DuckDB itself (:meth:`_Run.parse_file`)."""
    progress, bar = _progress_bar(inputs, quiet)
    careful: list[InputFile] = []
    try:
        for inp in inputs:
            if lines_sql(inp) is None:
                careful.append(inp)
                continue
            if careful:
                _stream(run, careful, progress, bar, len(inputs))
                careful = []
            if run.parse_file(inp):
                if progress is not None:
                    progress(inp.size)
            else:
                _stream(run, [inp], progress, bar, len(inputs))
        if careful:
            _stream(run, careful, progress, bar, len(inputs))
        run.finish()
    finally:
        if bar is not None:
            bar.close()


def _stream(
    run: _Run, inputs: Sequence[InputFile], progress: Progress | None, bar: Any, total: int
) -> None:
    """Parse `inputs` in one streaming query, read and cut into records by a thread."""
    batches: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    reader = threading.Thread(
        target=_produce, args=(inputs, batches, stop, progress), daemon=True
    )
    failure: list[BaseException] = []

    def candidates() -> Iterator[pa.Table]:
        # DuckDB pulls this, in the main thread or its own: Ctrl-C ends the stream here,
        # and is raised once the parse has returned.
        while not run.interrupt.requested:
            try:
                item = batches.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                failure.append(item)  # DuckDB, which pulls this, would only see its text
                raise item
            if isinstance(item, InputFile):
                run.files += 1
                run.bytes += item.size
                if bar is not None:
                    bar.set_description(f"{run.files}/{total} files", refresh=False)
                continue
            yield item

    reader.start()
    try:
        run.parse_stream(candidates())
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    finally:
        stop.set()  # the reader ends at its next batch; after Ctrl-C, nobody waits for it
        if not run.interrupt.requested:
            reader.join()


def _new_enricher() -> Future[enrich.Enricher]:
    """The enrichment step, set up in a thread of its own.

    Importing phonenumbers' data takes about half a second; done in the background, it
    overlaps with reading and parsing the first batch, which is when it is first needed.
    """
    future: Future[enrich.Enricher] = Future()

    def set_up() -> None:
        try:
            from . import enrich

            future.set_result(enrich.Enricher())
        except BaseException as exc:  # raised where the enricher is used
            future.set_exception(exc)

    threading.Thread(target=set_up, name="smsanalytics-enrich-setup", daemon=True).start()
    return future


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
        Messages sorted by ``created_at`` then ``sid``, enriched as :func:`convert` does.
    """
    started = time.perf_counter()
    inputs = find_inputs(paths)
    memory = _InMemory()
    with (
        _workdir(None) as work,
        _Interrupt("nothing was read") as interrupt,
        _Run(work, memory, enricher=_new_enricher(), interrupt=interrupt) as run,
    ):
        _read_inputs(run, inputs, quiet)
        outcome = run.decide([])
        rejects = run.rejects.table()
        summary = run.summary(outcome)
    if memory.tables:
        table = pa.concat_tables(memory.tables)
        if 0 in outcome.drop_positions:
            keep = np.ones(table.num_rows, dtype=bool)
            keep[outcome.drop_positions[0]] = False
            table = table.filter(pa.array(keep))
        table = table.sort_by([("created_at", "ascending"), ("sid", "ascending")])
    else:
        table = MESSAGE_SCHEMA.empty_table()
    messages = ds.to_pandas(_conform(table))
    summary.elapsed = time.perf_counter() - started
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
        Hive partitions by UTC month of ``created_at`` (``month=2025-03``), or no folders.
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

    Raises
    ------
    OutputPathError
        Before anything is read, if `out` or `rejects` is an input, a link, a device, a
        FIFO, or a file that is not ours (:func:`smsanalytics.paths.check_output_path`).
    DatasetError
        If `out` is not a dataset, is locked by another run, or cannot be written.
    StrictModeError
        With `strict`, if anything was rejected.
    KeyboardInterrupt
        On Ctrl-C (in the main thread): the run stops at the next batch or step; the
        text says whether the dataset was left as it was (always, unless the swap of
        the new version had begun, which is finished first).

    Notes
    -----
    Files in `out` that the dataset did not write (anything but its Parquet files: its
    manifest is beside) are kept in every new version. The inputs are read once. Each run adds one
    file per partition it has rows for (``part-<id>.parquet``); the dataset's other files
    are hard-linked into the new version unchanged, except a file holding a row that a newer
    record replaces, which is copied without that row. A record that loses to another record
    of the same run read in a later batch (batches are about 25,000 records) is taken out of
    the new file the same way. The new version is built beside the dataset and swapped in
    with one atomic rename, so a crash or Ctrl-C leaves the previous version whole, and
    readers never see a half-written dataset.

    Examples
    --------
    >>> import tempfile, smsanalytics
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     s = smsanalytics.convert(["sample_data"], f"{tmp}/ds", quiet=True)
    >>> s.records == s.written + s.duplicates + s.rejected
    True
    """
    if partition_by not in PARTITIONINGS:
        raise ValueError(f"partition_by must be one of {PARTITIONINGS}")
    started = time.perf_counter()
    given = list(paths)
    out, rejects_path = _check_outputs(given, out, rejects)
    # Checked again under the lock; first here, so that a folder that is not a dataset is
    # refused without a lock file left beside it.
    ds.check_writable(out, partition_by=partition_by, overwrite=overwrite)
    inputs = _find_inputs(given, out, rejects_path)
    enricher = _new_enricher() if enrich_rows else None
    out.parent.mkdir(parents=True, exist_ok=True)
    options = _WriteOptions(
        partition_by, overwrite, pseudonymize_key, redact_bodies, pseudonymize_recipients
    )
    with _write_errors(out), ds.locked(out, timeout=lock_timeout), _Interrupt() as interrupt:
        summary = _convert_locked(
            inputs, out, rejects_path, options, strict, quiet, enricher, interrupt
        )
    summary.elapsed = time.perf_counter() - started
    return summary


def _convert_locked(
    inputs: Sequence[InputFile],
    out: Path,
    rejects_path: Path,
    options: _WriteOptions,
    strict: bool,
    quiet: bool,
    enricher: Future[enrich.Enricher] | None,
    interrupt: _Interrupt,
) -> ConversionSummary:
    """The conversion into `out`, locked: read the inputs once, decide, commit."""
    ds.clean_leftovers(out)
    manifest = ds.check_writable(
        out, partition_by=options.partition_by, overwrite=options.overwrite
    )
    if not options.overwrite:
        options.check_compatible(manifest, out)
    existing = ds.dataset_files(out) if manifest and not options.overwrite else []
    with _workdir(out) as work, _version_dir(out) as version:
        writer = ds.PartitionWriter(version, partition_by=options.partition_by)
        with _Run(work, writer, enricher=enricher, options=options, interrupt=interrupt) as run:
            _read_inputs(run, inputs, quiet)
            run.rejects.write(rejects_path, out)
            rejected = run.rejects.count()
            if strict and rejected:
                raise StrictModeError(
                    f"{rejected:,} of {run.records:,} records rejected (strict mode); "
                    f"see {rejects_path}; the dataset was not changed"
                )
            outcome = run.decide(existing)
            summary = run.summary(outcome, out=str(out), rejects_path=str(rejects_path))
        if summary.written or options.overwrite or not existing:
            _commit(version, out, writer, existing, outcome, options, summary, interrupt)
        # else nothing new: the dataset is left as it is, byte for byte
    return summary


@contextmanager
def _version_dir(out: Path) -> Iterator[Path]:
    """The folder of the dataset's next version (removed after, unless swapped in)."""
    version = ds.new_version_dir(out)
    try:
        yield version
    finally:
        shutil.rmtree(version, ignore_errors=True)


def _check_outputs(
    given: Sequence[str | Path], out: str | Path, rejects: str | Path | None
) -> tuple[Path, Path]:
    """The dataset and rejects paths, absolute, once they are known safe to write.

    Checked before anything is read: neither may be an input, a link, a device or
    something we did not write (:func:`smsanalytics.paths.check_output_path`); the
    rejects file may not be inside the dataset, whose directory is replaced by each run.
    """
    out = check_output_path(out, inputs=given, kind="dataset")
    rejects_path = check_output_path(
        rejects if rejects else default_rejects_path(out), inputs=given, kind="rejects"
    )
    if out.resolve() in rejects_path.resolve().parents:
        raise OutputPathError(
            str(rejects_path),
            "is inside the dataset directory; put the rejects file beside it",
        )
    return out, rejects_path


def _find_inputs(given: Sequence[str | Path], out: Path, rejects: Path) -> list[InputFile]:
    """The input files of `given`, without what this conversion writes.

    A folder of archives may hold the dataset and its rejects file (``convert arch --out
    arch/ds``): what its walk finds inside the dataset, in the scratch folders beside it,
    or as the rejects file is output, not input. (A file named explicitly is read.)
    """
    real_out = out.resolve()
    scratch = f".{out.name}."  # the lock, stage and version folders beside the dataset

    def is_output(name: str) -> bool:
        path = Path(name).resolve()
        if out in path.parents or real_out in path.parents:
            return True
        if real_out.parent in path.parents:
            if path.relative_to(real_out.parent).parts[0].startswith(scratch):
                return True
        return same_file(path, rejects)

    found = []
    for path in given:
        files = find_inputs([path])
        if str(path) != "-" and Path(path).is_dir():
            files = [f for f in files if not is_output(f.name)]
        found.extend(files)
    return found


@dataclass(frozen=True)
class _WriteOptions:
    """How a conversion writes: the layout, and the privacy options (see privacy)."""

    partition_by: str
    overwrite: bool
    key: bytes | None = None
    redact_bodies: bool = False
    pseudonymize_recipients: bool = False

    @property
    def private(self) -> bool:
        return self.key is not None or self.redact_bodies

    def check_compatible(self, manifest: dict[str, Any], out: Path) -> None:
        """Refuse to add to a dataset written with other privacy options."""
        privacy.check_compatible(
            manifest,
            out,
            self.key,
            redact_bodies=self.redact_bodies,
            pseudonymize_recipients=self.pseudonymize_recipients,
        )

    def protect(self, table: pa.Table) -> pa.Table:
        """Pseudonymise new rows (rows already in the dataset were, when written)."""
        return privacy.transform_table(
            table,
            key=self.key,
            redact_bodies=self.redact_bodies,
            pseudonymize_recipients=self.pseudonymize_recipients,
        )

    def protect_rejects(self, table: pa.Table) -> pa.Table:
        """Label the files of rejected records without numbers (see privacy.label_files).

        Their raw text and the values their reasons quote are withheld by the run.
        """
        if self.key is None:
            return table
        i = table.schema.get_field_index("source_file")
        return table.set_column(
            i, "source_file", privacy.label_files(table.column(i), self.key)
        )

    def manifest_record(self) -> dict[str, Any]:
        record = privacy.manifest_record(
            self.key,
            redact_bodies=self.redact_bodies,
            pseudonymize_recipients=self.pseudonymize_recipients,
        )
        return {privacy.MANIFEST_KEY: record} if record else {}


def _commit(
    version: Path,
    out: Path,
    writer: ds.PartitionWriter,
    existing: Sequence[Path],
    outcome: _Outcome,
    options: _WriteOptions,
    summary: ConversionSummary,
    interrupt: _Interrupt,
) -> None:
    """Complete the new version (losers out, old files linked or filtered) and swap it in."""
    touched = set()
    partitions = writer.keys()
    for number, path in enumerate(writer.paths):
        interrupt.check()
        drop = outcome.drop_positions.get(number)
        if drop is not None:
            ds.rewrite_file(path, path, drop_positions=drop)
        if path.exists():
            touched.add(partitions[number])
    for f in existing:
        interrupt.check()
        target = version / f.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        sids = outcome.replace.get(f)
        if sids is not None:
            ds.rewrite_file(f, target, drop_sids=sids)
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
    ds.write_manifest(
        version,
        {
            "version": 1,
            "partition_by": options.partition_by,
            "rows": summary.rows_total,
            **options.manifest_record(),
            "last_conversion": {
                k: v
                for k, v in summary.to_dict().items()
                if k not in ("out", "elapsed", "partitions_written")
            },
        },
    )
    with interrupt.deferred():
        ds.commit_version(version, out)


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


def parse_candidates(
    candidates: Iterable[pa.Table],
    *,
    enrich_rows: bool = True,
    pseudonymize_key: bytes | None = None,
    redact_bodies: bool = False,
    pseudonymize_recipients: bool = False,
) -> tuple[pa.Table, pa.Table, int]:
    """Parse record candidates in memory exactly as :func:`convert` does; no dataset.

    A hook for engines that run the conversion elsewhere (the Spark tasks of
    :func:`smsanalytics.spark.convert`): they read, parse and enrich groups of records
    with this and decide duplicates and write the rows themselves.

    Parameters
    ----------
    candidates : iterable of pyarrow.Table
        Record candidates (:data:`~smsanalytics.schema.RAW_SCHEMA`), as
        :func:`~smsanalytics.readers.iter_raw_batches` yields them; groups of about
        50,000 amortise the parse's planning.
    enrich_rows : bool, default True
        Fill the enrichment columns.
    pseudonymize_key, redact_bodies, pseudonymize_recipients
        As for :func:`convert`: the rows and rejects are protected as a private
        conversion protects them.

    Returns
    -------
    rows : pyarrow.Table
        The good rows, each sid's duplicates within a parse batch already dropped:
        :data:`MESSAGE_SCHEMA` columns plus ``record_no`` (the order records were given
        in, from 0: the last read wins a tie) and ``sid_hash``.
    rejects : pyarrow.Table
        ``source_file``, ``source_line``, ``reason``, ``raw``, in file and line order.
    records : int
        Record candidates read.
    """
    memory = _InMemory()
    enricher = _new_enricher() if enrich_rows else None
    options = _WriteOptions("none", False, pseudonymize_key, redact_bodies,
                            pseudonymize_recipients)
    with _workdir(None) as work, _Run(work, memory, enricher=enricher, options=options) as run:
        run.parse(iter(candidates))
        rejects = run.rejects.table()
        records = run.records
    if memory.tables:
        rows = pa.concat_tables(memory.tables, promote_options="permissive")
    else:
        extra = [pa.field("record_no", pa.int64()), pa.field("sid_hash", pa.uint64())]
        rows = pa.schema([*MESSAGE_SCHEMA, *extra]).empty_table()
    return rows, rejects, records
