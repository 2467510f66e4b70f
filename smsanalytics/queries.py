"""The questions asked of a message table, as DuckDB SQL: one place an analyst can copy from.

This module owns the SQL. :func:`connect` opens an embedded DuckDB connection with a
``messages`` view (the columns of :data:`~smsanalytics.schema.MESSAGE_SCHEMA`, then the
computed ``month`` and ``cost`` of :data:`~smsanalytics.schema.VIEW_COLUMNS`) over a
dataset directory, archive files, or a table already in memory. Each named question
(:func:`volume`, :func:`top_senders`, :func:`costs`, ...) runs one SQL statement over that
view and returns a small pandas DataFrame; no question loads the whole table into pandas.

Conventions shared by every question:

* ``source`` is a connection from :func:`connect` or anything :func:`connect` accepts.
* Filters (``start``, ``end``, ``to_number``, ``country``, ``traffic_type``, ``status``) are
  bound as SQL parameters (``$start``, ``$country_0``, ...), never pasted into the SQL text.
  Only identifiers chosen from an allow-list (``freq``, ``by``) are written into SQL.
* ``start`` (inclusive) and ``end`` (exclusive) are dates or datetimes; naive ones are
  wall-clock times in ``tz``, so ``start="2025-03-30", tz="Europe/Paris"`` means Paris
  midnight. ``country`` matches ``from_country`` (the sender's country).
* Periods are buckets of ``created_at`` in the time zone ``tz`` (the user's days, so a DST
  day has 23 or 25 hours). ``period`` is the bucket's first instant, a tz-aware timestamp in
  ``tz``. Periods without messages are absent.
* Money is exact: ``cost_cents`` (cents of the account currency) and ``cost`` (major units,
  ``cost_cents / 100``) are Arrow decimals, never floats. The currency is a label, kept in
  ``DataFrame.attrs["currency"]`` (set it with ``connect(..., currency="EUR")``).
* Counts are ``int64``, shares are floats in [0, 1].

The SQL templates are the ``*_SQL`` constants below. ``{where}`` is the filter clause,
``{key}`` the bucket key of a row (see :func:`bucket_sql`), ``{period}`` turns a key back
into an instant; ``{slot}`` and ``{slot_start}`` are the 15-minute UTC slot of a row and
its first instant: counting questions aggregate by slot first, then convert each slot to
local time once, instead of converting every row (about ten times faster, and exact since
UTC offsets are whole quarter hours).
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa

from . import arguments, dataset
from .errors import ArgumentError, DatasetError
from .keywords import DEFAULT_KEYWORDS, NORMALISED_BODY_SQL, normalise_keyword
from .privacy import TOKEN_PREFIX
from .schema import COLUMNS, VIEW_COLUMNS, duckdb_type

__all__ = [
    "FREQS",
    "COST_DIMENSIONS",
    "UNIT_COST_QUANTUM",
    "DEFAULT_KEYWORDS",
    "Source",
    "connect",
    "run_sql",
    "bucket_sql",
    "normalise_keyword",
    "volume",
    "top_senders",
    "sender_activity",
    "locations",
    "encodings",
    "parts_distribution",
    "costs",
    "traffic",
    "statuses",
    "activity_pattern",
    "keywords",
    "opt_outs",
    "VOLUME_SQL",
    "TOP_SENDERS_SQL",
    "SENDER_ACTIVITY_SQL",
    "LOCATIONS_SQL",
    "ENCODINGS_SQL",
    "PARTS_DISTRIBUTION_SQL",
    "COSTS_SQL",
    "BREAKDOWN_SQL",
    "ACTIVITY_PATTERN_SQL",
    "NORMALISED_BODY_SQL",
    "KEYWORDS_SQL",
    "OPT_OUTS_SQL",
]

#: Period lengths a question can bucket by.
FREQS: tuple[str, ...] = ("hour", "day", "week", "month", "quarter", "year")

Freq = Literal["hour", "day", "week", "month", "quarter", "year"]
TextFilter = str | Iterable[str] | None
TimeBound = date | datetime | str | pd.Timestamp | None
#: Whatever :func:`connect` accepts, or a connection it returned.
Source = Any

#: ``costs(by=...)`` dimensions: output column -> SQL expression. Time periods come from FREQS.
COST_DIMENSIONS: dict[str, str] = {
    "country": "from_country",
    "network": "network",
    "operator": "network_operator",
    "traffic_type": "traffic_type",
    "payment_type": "payment_type",
    "to_number": "to_number",
    "encoding": "encoding",
    "status": "status",
}

# Connections connect() opened, while they live: interrupt_all() stops their queries.
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
# The dataset directory each of those connections' messages view scans, if it scans one:
# locking a connection down pins the view to that dataset's files (see _pin_dataset).
_DATASETS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Path] = (
    weakref.WeakKeyDictionary()
)

_VIEW = "messages"
# SQL of the view's computed columns (schema.VIEW_COLUMNS). Both are independent of the
# session time zone, which `smsanalytics sql --tz` changes. The month is the partition's
# (smsanalytics.dataset.month_groups).
_VIEW_COLUMN_SQL = {
    "month": (f"coalesce(strftime(timezone('UTC', coalesce({', '.join(dataset.MONTH_SOURCES)})),"
              f" '%Y-%m'), '{dataset.UNKNOWN_MONTH}')"),
    "cost": "cost_cents * 0.01",
}
_SLOT = "epoch_us(created_at) // 900000000"
_SLOT_START = "to_timestamp(slot * 900)"
_SOURCE_TABLE = "_smsanalytics_source"
_CURRENCY_VARIABLE = "smsanalytics_currency"
_FILTER_COLUMNS = {
    "to_number": "to_number",
    "country": "from_country",
    "traffic_type": "traffic_type",
    "status": "status",
}

# ---------------------------------------------------------------------------------------
# SQL templates. Placeholders: {where} filter clause; {key} a row's bucket key (on
# created_at); {period} the key back as an instant; $tz and $... are bound parameters.
#
# Time-zone conversion is the costly part of a period question (about 1 us a row), so the
# questions that count first aggregate by 15-minute UTC slot ({slot}: integer arithmetic),
# then convert each slot's start ({slot_start}) once. This is exact: every UTC offset in
# use is a multiple of 15 minutes and offsets change on slot boundaries, so a whole slot
# falls in one local hour, day, week, month, quarter and year.
# ---------------------------------------------------------------------------------------

VOLUME_SQL = """
WITH slots AS (
    SELECT {slot} AS slot,
           count(*) AS messages,
           sum(parts) AS parts,
           sum(cost_cents) AS cost_cents
    FROM messages
    {where}
    GROUP BY slot
),
buckets AS (
    SELECT {key} AS k,
           CAST(sum(messages) AS BIGINT) AS messages,
           CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
           sum(cost_cents) AS cost_cents
    FROM (SELECT *, {slot_start} AS created_at FROM slots)
    GROUP BY k
)
SELECT {period} AS period, messages, parts, cost_cents, cost_cents * 0.01 AS cost
FROM buckets
ORDER BY period
"""

TOP_SENDERS_SQL = """
SELECT from_number,
       any_value(from_country) AS country,
       count(*) AS messages,
       CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
       sum(cost_cents) AS cost_cents,
       sum(cost_cents) * 0.01 AS cost,
       min(created_at) AS first_seen,
       max(created_at) AS last_seen,
       count(DISTINCT CAST(timezone($tz, created_at) AS DATE)) AS active_days
FROM messages
{where}
GROUP BY from_number
ORDER BY {order} DESC NULLS LAST, from_number
LIMIT $n
"""

# "Ever" (first message, total count) ignores start/end but honours the other filters, so
# a sender first seen before `start` is returning, not new.
SENDER_ACTIVITY_SQL = """
WITH senders AS (
    SELECT from_number, min(created_at) AS first_at, count(*) AS total
    FROM messages
    {where_any_time}
    GROUP BY from_number
),
active AS (
    SELECT DISTINCT {key} AS k, from_number
    FROM messages
    {where}
)
SELECT {period_of_a} AS period,
       count(*) AS senders,
       count(*) FILTER (WHERE {first_key} = a.k) AS new_senders,
       count(*) FILTER (WHERE {first_key} < a.k) AS returning_senders,
       count(*) FILTER (WHERE s.total = 1) AS one_off_senders,
       count(*) FILTER (WHERE s.total > 1) AS repeat_senders
FROM active AS a JOIN senders AS s USING (from_number)
GROUP BY a.k
ORDER BY period
"""

LOCATIONS_SQL = """
SELECT {keys},
       count(*) AS messages,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share,
       count(DISTINCT from_number) AS senders,
       CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
       sum(cost_cents) AS cost_cents,
       sum(cost_cents) * 0.01 AS cost
FROM messages
{where}
GROUP BY {order}
ORDER BY messages DESC, {order}
"""

ENCODINGS_SQL = """
SELECT {keys}
       encoding,
       count(*) AS messages,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER ({partition}) AS share,
       CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
       count(*) FILTER (WHERE parts > 1) AS multipart_messages,
       CAST(count(*) FILTER (WHERE parts > 1) AS DOUBLE) / count(*) AS multipart_share
FROM messages
{where}
GROUP BY {group}encoding
ORDER BY {order} messages DESC, encoding
"""

PARTS_DISTRIBUTION_SQL = """
SELECT parts,
       encoding,
       count(*) AS messages,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share
FROM messages
{where}
GROUP BY parts, encoding
ORDER BY parts NULLS LAST, encoding
"""

# The priced_* sums are what cost_per_message and cost_per_part divide (in Python, exactly:
# DuckDB divides decimals as doubles); costs() does not return them.
COSTS_SQL = """
WITH slots AS (
    SELECT {slot} AS slot,
           {dims}
           count(*) AS messages,
           sum(parts) AS parts,
           sum(cost_cents) AS cost_cents,
           count(cost_cents) AS priced_messages,
           sum(cost_cents) FILTER (WHERE parts IS NOT NULL) AS priced_part_cost_cents,
           sum(parts) FILTER (WHERE cost_cents IS NOT NULL) AS priced_parts
    FROM messages
    {where}
    GROUP BY ALL
),
groups AS (
    SELECT {keys}
           CAST(coalesce(sum(messages), 0) AS BIGINT) AS messages,
           CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
           sum(cost_cents) AS cost_cents,
           CAST(coalesce(sum(priced_messages), 0) AS BIGINT) AS priced_messages,
           sum(priced_part_cost_cents) AS priced_part_cost_cents,
           CAST(coalesce(sum(priced_parts), 0) AS BIGINT) AS priced_parts
    FROM (SELECT *, {slot_start} AS created_at FROM slots)
    GROUP BY ALL
)
SELECT {outer_keys}
       messages,
       parts,
       cost_cents,
       cost_cents * 0.01 AS cost,
       CAST(cost_cents AS DOUBLE) / sum(cost_cents) OVER () AS share,
       priced_messages,
       priced_part_cost_cents,
       priced_parts
FROM groups
ORDER BY {order}
"""

BREAKDOWN_SQL = """
WITH slots AS (
    SELECT {slot} AS slot, {column} AS {name}, count(*) AS messages
    FROM messages
    {where}
    GROUP BY ALL
),
groups AS (
    SELECT {key} AS k, {name}, CAST(sum(messages) AS BIGINT) AS messages
    FROM (SELECT *, {slot_start} AS created_at FROM slots)
    GROUP BY ALL
)
SELECT {period} AS period, {name}, messages,
       CAST(messages AS DOUBLE) / sum(messages) OVER (PARTITION BY k) AS share
FROM groups
ORDER BY period, messages DESC, {name}
"""

ACTIVITY_PATTERN_SQL = """
WITH slots AS (
    SELECT {slot} AS slot, count(*) AS messages
    FROM messages
    {where}
    GROUP BY slot
),
counts AS (
    SELECT isodow(local) - 1 AS weekday, hour(local) AS hour,
           CAST(sum(messages) AS BIGINT) AS messages
    FROM (SELECT timezone($tz, CAST({slot_start} AS TIMESTAMPTZ)) AS local, messages FROM slots)
    GROUP BY ALL
),
days AS (
    SELECT CAST(weekday AS BIGINT) AS weekday, day
    FROM (VALUES (0, 'Monday'), (1, 'Tuesday'), (2, 'Wednesday'), (3, 'Thursday'),
                 (4, 'Friday'), (5, 'Saturday'), (6, 'Sunday')) AS d(weekday, day)
),
hours AS (
    SELECT unnest(generate_series(0, 23)) AS hour
)
SELECT d.weekday, d.day, h.hour, coalesce(c.messages, 0) AS messages
FROM days AS d
CROSS JOIN hours AS h
LEFT JOIN counts AS c ON c.weekday = d.weekday AND c.hour = h.hour
ORDER BY d.weekday, h.hour
"""

# {normalised}: the body without accents (ARRÊT -> ARRET), punctuation or case (see
# smsanalytics.keywords). A redacted body falls back to the keyword stored at conversion.
KEYWORDS_SQL = """
WITH wanted AS (
    SELECT unnest($keywords::VARCHAR[]) AS keyword, unnest($kinds::VARCHAR[]) AS kind
),
bodies AS (
    SELECT created_at, coalesce({normalised}, messages."keyword") AS keyword
    FROM messages
    {where}
),
slots AS (
    SELECT {slot} AS slot, keyword, kind, count(*) AS messages
    FROM bodies JOIN wanted USING (keyword)
    GROUP BY ALL
),
groups AS (
    SELECT {key} AS k, keyword, kind, CAST(sum(messages) AS BIGINT) AS messages
    FROM (SELECT *, {slot_start} AS created_at FROM slots)
    GROUP BY ALL
)
SELECT {period} AS period, keyword, kind, messages
FROM groups
ORDER BY period, messages DESC, keyword
"""


# Opt-outs in the period ({where}); opt-ins at any time after ({where_any_time}: the other
# filters, no start/end), so a sender who wrote START after `end` is not listed as opted out.
OPT_OUTS_SQL = """
WITH wanted AS (
    SELECT unnest($keywords::VARCHAR[]) AS keyword, unnest($kinds::VARCHAR[]) AS kind
),
said AS (
    SELECT from_number, to_number, from_country, created_at,
           coalesce({normalised}, messages."keyword") AS keyword
    FROM messages
    {where_any_time}
),
outs AS (
    SELECT s.*,
           row_number() OVER (PARTITION BY s.from_number
                              ORDER BY s.created_at DESC NULLS LAST, s.keyword DESC) AS latest
    FROM said AS s JOIN wanted AS w USING (keyword)
    WHERE w.kind = 'opt-out' {and_period}
),
ins AS (
    SELECT s.from_number, s.created_at
    FROM said AS s JOIN wanted AS w USING (keyword)
    WHERE w.kind = 'opt-in'
),
senders AS (
    SELECT from_number,
           max(CASE WHEN latest = 1 THEN from_country END) AS country,
           max(CASE WHEN latest = 1 THEN keyword END) AS keyword,
           count(*) AS opt_outs,
           min(created_at) AS first_opt_out_at,
           max(created_at) AS last_opt_out_at,
           CASE WHEN count(to_number) > 0 THEN
               array_sort(array_agg(DISTINCT to_number) FILTER (WHERE to_number IS NOT NULL))
           END AS to_numbers
    FROM outs
    GROUP BY from_number
)
SELECT s.from_number, s.country, s.keyword, s.opt_outs, s.first_opt_out_at,
       s.last_opt_out_at, s.to_numbers,
       min(i.created_at) AS opted_back_in_at
FROM senders AS s
LEFT JOIN ins AS i ON i.from_number = s.from_number AND i.created_at > s.last_opt_out_at
GROUP BY s.from_number, s.country, s.keyword, s.opt_outs, s.first_opt_out_at,
         s.last_opt_out_at, s.to_numbers
ORDER BY s.last_opt_out_at DESC NULLS LAST, s.from_number
"""


# ---------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------


def connect(
    source: Source,
    *,
    currency: str | None = None,
    engine: Literal["duckdb", "spark"] = "duckdb",
    spark: Any = None,
) -> Any:
    """Open a connection with a ``messages`` view over `source`: DuckDB, or Spark.

    Parameters
    ----------
    source : str, Path, sequence of paths, pandas.DataFrame, pyarrow.Table or connection
        * a dataset directory (one holding Parquet files, or with a manifest),
          scanned in place; its files are looked up by every query, so the connection
          sees the dataset's current version after a later conversion;
        * any other path, or a list of paths: Callr archive files, read with
          :func:`smsanalytics.ingest.read_messages`;
        * a DataFrame or Arrow table of messages (columns of ``MESSAGE_SCHEMA``; missing
          ones are null, extra ones ignored);
        * a connection: returned as it is (its currency label is only set if given).
    currency : str, optional
        Label of the account currency (e.g. ``"EUR"``); costs are reported with it.
    engine : {'duckdb', 'spark'}
        ``duckdb`` (embedded, the default) or ``spark``: a
        :class:`~smsanalytics.spark.SparkConnection` that every question and the cost
        report accept, with the same answers (see :func:`smsanalytics.spark.connect`; the
        source may then also be a URI or a Spark DataFrame).
    spark : pyspark.sql.SparkSession, optional
        With ``engine="spark"``: the session (default: the active one, or a new local one).

    Returns
    -------
    duckdb.DuckDBPyConnection or smsanalytics.spark.SparkConnection
        Session time zone UTC; the ``messages`` view has the schema's columns, then the
        computed :data:`~smsanalytics.schema.VIEW_COLUMNS`: ``month`` (``YYYY-MM`` in UTC,
        the dataset's partition) and ``cost`` (``cost_cents / 100``, an exact decimal).

    Examples
    --------
    >>> import pandas as pd
    >>> con = connect(pd.DataFrame({"sid": ["a"], "from_country": ["FR"]}), currency="EUR")
    >>> con.execute("SELECT sid, from_country, cost_cents FROM messages").fetchall()
    [('a', 'FR', None)]
    """
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"engine must be 'duckdb' or 'spark', not {engine!r}")
    if engine == "spark":
        from . import spark as spark_engine

        return spark_engine.connect(source, spark=spark, currency=currency)
    if _is_connection(source):
        if currency is not None:
            _set_currency(source, currency)
        return source
    con = duckdb.connect()
    _OPEN.add(con)
    con.execute("SET TimeZone = 'UTC'")
    if isinstance(source, str | Path) and _is_dataset(Path(source)):
        con.execute(f"CREATE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                    f"FROM {dataset.scan_sql(source)}")
        _DATASETS[con] = Path(source)
    else:
        if isinstance(source, str | Path) or _is_path_list(source):
            from .ingest import read_messages

            paths = [source] if isinstance(source, str | Path) else list(source)
            source = read_messages(*paths)
        _register_table(con, _as_arrow(source))
    if currency is not None:
        _set_currency(con, currency)
    return con


def interrupt_all() -> None:
    """Stop the queries running on every connection :func:`connect` opened.

    DuckDB does not notice Ctrl-C while it runs a query; the command line calls this from
    the main thread when the user interrupts a query running in another one.
    """
    for con in list(_OPEN):
        try:
            con.interrupt()
        except duckdb.Error:  # closed meanwhile
            pass


def run_sql(
    source: Source,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    read_only: bool = False,
    tz: str | None = None,
) -> pd.DataFrame:
    """Run `sql` (which may read the ``messages`` view) and return the result.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        Where ``messages`` lives.
    sql : str
        One SQL statement; use ``?`` or ``$name`` placeholders for values.
    params : sequence or mapping, optional
        Values of the placeholders.
    read_only : bool, default False
        Lock the connection down first (see :func:`_lock_down`): the SQL can read the
        ``messages`` view and nothing else on disk, write no file, load no extension and
        change no setting. For SQL from someone other than the user running it. With a
        dataset directory as `source` (or a connection :func:`connect` opened over one),
        the dataset's Parquet files as they are when the call starts are the only files
        readable; with another source, none are. A connection given stays locked, its
        ``messages`` view pinned to those files: open a new one to see a later conversion.
    tz : str, optional
        IANA time zone to make the session's (DuckDB's ``SET TimeZone``) before running
        `sql`: what ``CAST(created_at AS DATE)``, ``date_trunc`` and ``hour()`` of an
        instant use, and the zone of the returned timestamps. The stored data and the
        view's ``month`` stay UTC. A connection passed in gets its own zone back
        afterwards (unless `read_only` locked it). Default: the connection's (UTC for
        one from :func:`connect`). DuckDB connections only.

    Returns
    -------
    pandas.DataFrame
        Values stay exact: integers have a nullable pandas dtype (``Int64``, ``UInt64``...:
        a missing value is ``pd.NA``, never a float ``NaN`` that would round integers above
        2**53), decimals, lists and structs an Arrow dtype; timestamps are tz-aware, in `tz`
        (UTC by default). A statement that returns nothing (``SET``, ``CREATE``) gives an
        empty DataFrame.

    Raises
    ------
    ArgumentError
        If `sql` holds no statement, or `tz` is not a time zone (checked before anything
        is read).
    DatasetError
        With `read_only`, if a file of the dataset is a link to a file outside it.

    Examples
    --------
    >>> import pandas as pd
    >>> con = connect(pd.DataFrame({"created_at": [pd.Timestamp("2025-03-31 22:30", tz="UTC")]}))
    >>> run_sql(con, "SELECT CAST(created_at AS DATE) AS day, month FROM messages",
    ...         tz="Europe/Paris").astype(str).values.tolist()
    [['2025-04-01', '2025-03']]
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ArgumentError("query", sql, "empty: give one SQL statement")
    zone = None if tz is None else arguments.time_zone_name(tz)
    con, owned = _open(source)
    restore = None
    try:
        if zone is not None:
            if not isinstance(con, duckdb.DuckDBPyConnection):
                raise ArgumentError("tz", zone, "a session time zone is for DuckDB connections; "
                                    "on Spark, set spark.sql.session.timeZone")
            if not owned and not read_only:  # a locked connection cannot be set back
                restore = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
            con.execute("SET TimeZone = ?", [zone])
        if read_only and not _is_locked_down(con):
            _lock_down(con, _pin_dataset(con))
        result = con.sql(sql, params=params)
        table = result.to_arrow_table() if result is not None else pa.table({})
    finally:
        if owned:
            con.close()
        elif restore is not None:  # the caller's connection keeps its own zone
            con.execute("SET TimeZone = ?", [restore])
    return _frame(table, zone or "UTC", question="sql", currency=None, types=_exact_dtype)


def _lock_down(con: duckdb.DuckDBPyConnection, allowed: Iterable[str | Path] = ()) -> None:
    """Forbid `con` every file access but reading `allowed`, and every setting change.

    Disables DuckDB's external access (files, ``COPY ... TO``, ``ATTACH``, ``read_*`` of
    other files, extension ``INSTALL``/``LOAD``, Python replacement scans) except reading
    the files in `allowed`; no spill files are written (``temp_directory`` unset), and the
    configuration is locked so the SQL cannot undo any of it. Views created before still
    read their files, if those are in `allowed`.
    """
    con.execute("SET allowed_paths = ?", [[str(p) for p in allowed]])
    con.execute("SET temp_directory = ''")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _is_locked_down(con: Any) -> bool:
    """Whether `con` is a DuckDB connection :func:`_lock_down` locked already.

    Its settings are then final. A connection locked some other way, with external access
    still on, is not: locking it down again fails (a DuckDB error), never runs the SQL.
    """
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return False
    locked, external = con.execute("SELECT current_setting('lock_configuration'), "
                                    "current_setting('enable_external_access')").fetchall()[0]
    return bool(locked) and not external


def _pin_dataset(con: Any) -> list[str]:
    """Point the ``messages`` view of `con` at its dataset's files as they are now.

    A locked connection may open only the paths it allows and may not list a directory, so
    the view cannot look its files up at each query (:func:`dataset.scan_sql`): it reads the
    current files, by their real paths, listed once here. Returns the paths DuckDB opens to
    read them (each file and its literal glob pattern), for ``allowed_paths``; none for a
    connection without a dataset. A file linking outside the dataset is refused: read-only
    SQL reads the dataset and nothing else.
    """
    root = _DATASETS.get(con) if isinstance(con, duckdb.DuckDBPyConnection) else None
    if root is None:
        return []
    real_root = root.resolve()
    files = []
    for f in dataset.dataset_files(root):
        real = f.resolve()
        if not real.is_relative_to(real_root):
            raise DatasetError(str(root), f"{f.relative_to(root)} links outside the dataset; "
                                          "read-only SQL reads only the dataset's own files")
        files.append(real)
    con.execute(f"CREATE OR REPLACE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                f"FROM {dataset.scan_sql(real_root, files)}")
    return [p for f in files for p in (str(f), dataset.glob_literal(f))]


def _is_dataset(path: Path) -> bool:
    if not path.is_dir():
        return False
    return dataset.has_manifest(path) or bool(dataset.dataset_files(path))


def _is_path_list(source: Any) -> bool:
    return (
        isinstance(source, list | tuple)
        and len(source) > 0
        and all(isinstance(p, str | Path) for p in source)
    )


def _as_arrow(source: Any) -> pa.Table:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False)
    raise TypeError(
        "source must be a dataset directory, archive path(s), a pandas DataFrame, a pyarrow "
        f"Table or a DuckDB connection, not {type(source).__name__}"
    )


def _register_table(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    con.register(_SOURCE_TABLE, table)
    present = set(table.column_names)
    cols = []
    for c in COLUMNS:
        value = f'"{c.name}"' if c.name in present else "NULL"
        cols.append(f'CAST({value} AS {duckdb_type(c.type)}) AS "{c.name}"')
    con.execute(f"CREATE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                f"FROM (SELECT {', '.join(cols)} FROM {_SOURCE_TABLE})")


def _view_columns() -> str:
    """The select list of the view's computed columns, typed as the schema says."""
    return ", ".join(f'CAST({_VIEW_COLUMN_SQL[c.name]} AS {duckdb_type(c.type)}) AS "{c.name}"'
                     for c in VIEW_COLUMNS)


def _is_connection(source: Any) -> bool:
    """A DuckDB connection, or a Spark one (whose module is loaded if one exists)."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        return True
    spark_engine = sys.modules.get("smsanalytics.spark")
    return spark_engine is not None and isinstance(source, spark_engine.SparkConnection)


def _set_currency(con: Any, currency: str) -> None:
    if not isinstance(con, duckdb.DuckDBPyConnection):
        con.currency = currency
        return
    con.execute(f"SET VARIABLE {_CURRENCY_VARIABLE} = ?", [currency])


def _currency(con: Any, currency: str | None) -> str | None:
    if currency is not None:
        return currency
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.currency
    rows = con.execute(f"SELECT getvariable('{_CURRENCY_VARIABLE}')").fetchall()
    return rows[0][0]


def _open(source: Source) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """Return a connection for `source` and whether this call opened it (and must close it)."""
    if _is_connection(source):
        return source, False
    return connect(source), True


# ---------------------------------------------------------------------------------------
# Filters and buckets
# ---------------------------------------------------------------------------------------


def _where(
    *,
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
    extra: Sequence[str] = (),
) -> tuple[str, dict[str, Any]]:
    """Build the WHERE clause of the filters, with every value a named parameter."""
    conditions: list[str] = list(extra)
    params: dict[str, Any] = {}
    lo, hi = arguments.period_bounds(start, end, arguments.time_zone(tz))
    if lo is not None:
        conditions.append("created_at >= $start")
        params["start"] = lo
    if hi is not None:
        conditions.append("created_at < $end")
        params["end"] = hi
    values = {"to_number": to_number, "country": country, "traffic_type": traffic_type,
              "status": status}
    for name, value in values.items():
        if value is None:
            continue
        items = [value] if isinstance(value, str) else list(value)
        if not items:
            conditions.append("false")
            continue
        names = [f"{name}_{i}" for i in range(len(items))]
        for n, item in zip(names, items, strict=True):
            if not isinstance(item, str):
                raise TypeError(f"{name} values must be strings, not {type(item).__name__}")
            params[n] = item
        placeholders = ", ".join(f"${n}" for n in names)
        conditions.append(f"{_FILTER_COLUMNS[name]} IN ({placeholders})")
    if not conditions:
        return "", params
    return "WHERE " + "\n  AND ".join(conditions), params


def _check_freq(freq: str) -> str:
    if freq not in FREQS:
        raise ValueError(f"freq must be one of {', '.join(FREQS)}, not {freq!r}")
    return freq


def bucket_sql(freq: str, column: str = "created_at") -> tuple[str, str]:
    """Return the SQL of a period bucket in the time zone bound as ``$tz``.

    Parameters
    ----------
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'}
        Period length. Weeks start on Monday; quarters on 1 January, April, July and
        October; years on 1 January (local midnight in ``$tz``).
    column : str
        A ``TIMESTAMPTZ`` column (or expression) to bucket.

    Returns
    -------
    key : str
        Expression grouping rows by period: for days, weeks and months the local
        wall-clock start of the period (``date_trunc`` of ``timezone($tz, column)``); for
        hours the period's first instant, so the repeated hour of a DST change stays two.
    period : str
        Expression of a key (written ``{k}``) turning it back into the period's first
        instant (``TIMESTAMPTZ``).

    Examples
    --------
    >>> key, period = bucket_sql("day")
    >>> key
    "date_trunc('day', timezone($tz, CAST(created_at AS TIMESTAMPTZ)))"
    >>> period.format(k="k")
    'timezone($tz, CAST(k AS TIMESTAMP))'
    """
    _check_freq(freq)
    # The casts are no-ops for DuckDB; they say which way timezone() converts, which the
    # Spark translation needs (see smsanalytics.spark_sql).
    local = f"timezone($tz, CAST({column} AS TIMESTAMPTZ))"
    if freq == "hour":
        return f"{column} - ({local} - date_trunc('hour', {local}))", "{k}"
    return f"date_trunc('{freq}', {local})", "timezone($tz, CAST({k} AS TIMESTAMP))"


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def _used(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the parameters the SQL uses (DuckDB rejects unused named parameters)."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return {k: v for k, v in params.items() if k in used}


def _decimal_or_default(t: pa.DataType) -> pd.ArrowDtype | None:
    return pd.ArrowDtype(t) if pa.types.is_decimal(t) else None


_NULLABLE_INTEGERS: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
}


def _exact_dtype(t: pa.DataType) -> Any:
    """Integers nullable, decimals and nested values (lists, structs) Arrow: none via float."""
    if pa.types.is_nested(t):  # pandas' default makes a list of integers with a null floats
        return pd.ArrowDtype(t)
    return _NULLABLE_INTEGERS.get(t) or _decimal_or_default(t)


def _frame(table: pa.Table, tz: str, *, question: str, currency: str | None,
           types: Any = _decimal_or_default, **attrs: Any) -> pd.DataFrame:
    """Arrow result -> pandas: decimals exact (Arrow dtype), instants in `tz`, rest numpy.

    `types` maps an Arrow type to the pandas dtype to use (None: pandas' default).
    """
    df = table.to_pandas(types_mapper=types)
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            df[f.name] = df[f.name].dt.tz_convert(tz)
    df.attrs.update({"question": question, "tz": tz, "currency": currency, **attrs})
    return df


def _run(
    source: Source,
    sql: str,
    params: Mapping[str, Any],
    *,
    question: str,
    tz: str = "UTC",
    money: bool = False,
    currency: str | None = None,
    **attrs: Any,
) -> pd.DataFrame:
    con, owned = _open(source)
    try:
        table = con.sql(sql, params=_used(sql, params)).to_arrow_table()
        label = _currency(con, currency) if money else None
    finally:
        if owned:
            con.close()
    return _frame(table, tz, question=question, currency=label, **attrs)


# ---------------------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------------------


def volume(
    source: Source,
    *,
    freq: Freq = "day",
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Messages, parts and cost per period.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'}
        Period length; periods are buckets of ``created_at`` in `tz`.
    tz : str
        IANA time zone of the periods and of naive `start` / `end` (e.g. "Europe/Paris").
    start, end : date, datetime or str, optional
        Only messages created at or after `start` and before `end`.
    to_number, country, traffic_type, status : str or list of str, optional
        Only messages with these recipients, sender countries (ISO alpha-2), traffic types,
        statuses.
    currency : str, optional
        Currency label (default: the one given to :func:`connect`).

    Returns
    -------
    pandas.DataFrame
        ``period`` (tz-aware, first instant of the period), ``messages`` [messages],
        ``parts`` [segments], ``cost_cents`` [cents, decimal], ``cost`` [currency units,
        decimal]; ``attrs["currency"]`` is the currency label.
    """
    key, period = bucket_sql(freq)
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    sql = VOLUME_SQL.format(key=key, period=period.format(k="k"), where=where, slot=_SLOT,
                            slot_start=_SLOT_START)
    return _run(source, sql, {**params, "tz": tz}, question="volume", tz=tz, money=True,
                currency=currency, freq=freq)


def top_senders(
    source: Source,
    *,
    by: Literal["messages", "parts", "cost"] = "messages",
    n: int | None = 10,
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
    currency: str | None = None,
    keyword: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """The senders who sent the most messages (or parts, or cost).

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    by : {'messages', 'parts', 'cost'}
        What ranks the senders; ties are broken by number.
    n : int or None
        How many senders (None: all).
    tz : str
        Time zone of `start` / `end`, of ``active_days`` and of the returned timestamps.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.
    currency : str, optional
        Currency label.
    keyword : str or iterable of str, optional
        Only messages that are one of these keywords, matched as in :func:`keywords`
        (``keyword="stop"`` ranks who sent STOP most; ``keyword=["STOP", "ARRET"]``).

    Returns
    -------
    pandas.DataFrame
        ``from_number``, ``country`` (sender country), ``messages``, ``parts`` [segments],
        ``cost_cents`` [cents, decimal], ``cost`` [currency units, decimal],
        ``first_seen`` and ``last_seen`` (tz-aware), ``active_days`` [days with at least
        one message, in `tz`]. Messages without a sender number are left out.
    """
    orders = {"messages": "messages", "parts": "parts", "cost": "cost_cents"}
    if by not in orders:
        raise ValueError(f"by must be one of {', '.join(orders)}, not {by!r}")
    if n is not None and (not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be a non-negative integer or None, not {n!r}")
    extra, keyword_params = ["from_number IS NOT NULL"], {}
    if keyword is not None:
        condition, keyword_params = _keyword_condition(keyword)
        extra.append(condition)
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status, extra=extra)
    params.update(keyword_params)
    sql = TOP_SENDERS_SQL.format(where=where, order=orders[by])
    if n is None:
        sql = sql.replace("LIMIT $n", "")
    return _run(source, sql, {**params, "tz": tz, "n": n}, question="top_senders", tz=tz,
                money=True, currency=currency, by=by)


def sender_activity(
    source: Source,
    *,
    freq: Freq = "month",
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Active, new and returning, one-off and repeat senders per period.

    A sender is *new* in the period of their first message ever and *returning* in later
    periods; *one-off* if they sent exactly one message ever, *repeat* otherwise. "Ever"
    means in the whole data that passes the filters other than `start` / `end`.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'}
        Period length.
    tz : str
        Time zone of the periods.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``senders`` [senders with a message in the period], ``new_senders``,
        ``returning_senders`` (the two sum to ``senders``), ``one_off_senders``,
        ``repeat_senders`` (idem).
    """
    key, period = bucket_sql(freq)
    first_key, _ = bucket_sql(freq, "s.first_at")
    filters = dict(to_number=to_number, country=country, traffic_type=traffic_type,
                   status=status)
    not_null = ["from_number IS NOT NULL"]
    where, params = _where(tz=tz, start=start, end=end, extra=not_null, **filters)
    where_any_time, params_any = _where(tz=tz, extra=not_null, **filters)
    sql = SENDER_ACTIVITY_SQL.format(
        key=key, period_of_a=period.format(k="a.k"), first_key=first_key, where=where,
        where_any_time=where_any_time,
    )
    return _run(source, sql, {**params_any, **params, "tz": tz}, question="sender_activity",
                tz=tz, freq=freq)


def locations(
    source: Source,
    *,
    by: Literal["country", "location"] = "country",
    n: int | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Messages by sender country, or by sender location within each country.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    by : {'country', 'location'}
        ``country`` groups by ``from_country``; ``location`` by ``from_country`` and
        ``from_location``.
    n : int or None
        Keep the `n` largest rows (shares stay shares of the whole).
    start, end, tz, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.
    currency : str, optional
        Currency label.

    Returns
    -------
    pandas.DataFrame
        ``country`` [ISO 3166-1 alpha-2, null if unknown], (``location``), ``messages``,
        ``share`` [fraction of all filtered messages], ``senders`` [distinct numbers],
        ``parts`` [segments], ``cost_cents`` [cents, decimal], ``cost`` [currency units,
        decimal]; largest first.
    """
    keys = {"country": "from_country AS country",
            "location": "from_country AS country, from_location AS location"}
    if by not in keys:
        raise ValueError(f"by must be 'country' or 'location', not {by!r}")
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    order = "country, location" if by == "location" else "country"
    sql = LOCATIONS_SQL.format(keys=keys[by], order=order, where=where)
    df = _run(source, sql, params, question="locations", tz=tz, money=True,
              currency=currency, by=by)
    return df.head(n).reset_index(drop=True) if n is not None else df


def encodings(
    source: Source,
    *,
    by: Literal["country"] | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """GSM vs unicode: share of messages and of multi-part messages, overall or by country.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    by : {None, 'country'}
        ``country`` splits by sender country; shares are then within each country.
    start, end, tz, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        (``country``), ``encoding`` (as Callr billed it), ``messages``, ``share``
        [fraction], ``parts`` [segments], ``multipart_messages`` [messages of 2 parts or
        more], ``multipart_share`` [fraction of the encoding's messages].
    """
    if by not in (None, "country"):
        raise ValueError(f"by must be None or 'country', not {by!r}")
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    if by == "country":
        sql = ENCODINGS_SQL.format(keys="from_country AS country,", order="country,",
                                   group="from_country, ",
                                   partition="PARTITION BY from_country", where=where)
    else:
        sql = ENCODINGS_SQL.format(keys="", order="", group="", partition="", where=where)
    return _run(source, sql, params, question="encodings", tz=tz, by=by)


def parts_distribution(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """How many messages have 1, 2, 3, ... parts, by encoding.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    start, end, tz, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``parts`` [segments], ``encoding``, ``messages``, ``share`` [fraction of all
        filtered messages].
    """
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    sql = PARTS_DISTRIBUTION_SQL.format(where=where)
    return _run(source, sql, params, question="parts_distribution", tz=tz)


def costs(
    source: Source,
    *,
    by: str | Sequence[str] = (),
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Total cost, or cost by any of period, country, network, traffic type, ...

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    by : str or sequence of str
        Grouping, in order: at most one period (``hour``, ``day``, ``week``, ``month``,
        ``quarter``, ``year``, in `tz`) and any of :data:`COST_DIMENSIONS` (``country``,
        ``network``, ``operator``, ``traffic_type``, ``payment_type``, ``to_number``,
        ``encoding``, ``status``).
        Empty: one row, the total.
    tz : str
        Time zone of the periods and of naive `start` / `end`.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.
    currency : str, optional
        Currency label (default: the one given to :func:`connect`).

    Returns
    -------
    pandas.DataFrame
        The `by` columns, ``messages``, ``parts`` [segments], ``cost_cents`` [cents,
        decimal], ``cost`` [currency units, decimal], ``cost_per_message`` and
        ``cost_per_part`` [currency units, decimal(38, 12)], ``share`` [fraction of the
        total cost]. Sorted by period, then by cost (largest first).
        ``attrs["currency"]``.

    Notes
    -----
    ``cost_per_message`` is ``cost`` divided by the messages *that have a cost*, and
    ``cost_per_part`` the cost of the messages that have both a cost and a part count
    divided by their parts: a message Callr did not price does not dilute the rate (the
    cost report's headline divides the same way). Each is null when nothing is left to
    divide by (no priced message, or zero priced parts) or when the group has no cost.
    The quotient is exact, then rounded once, half to even, to
    :data:`UNIT_COST_QUANTUM` (1e-12 currency units, 1e-10 cent).

    Examples
    --------
    >>> import pandas as pd
    >>> from decimal import Decimal
    >>> con = connect(pd.DataFrame({"sid": ["a", "b", "c"], "parts": [1, 2, None],
    ...                             "cost_cents": [Decimal("1"), Decimal("2"), None]}))
    >>> row = costs(con).iloc[0]
    >>> row["messages"], row["cost"], row["cost_per_message"], row["cost_per_part"]
    (np.int64(3), Decimal('0.03000000'), Decimal('0.015000000000'), Decimal('0.010000000000'))
    """
    dims = [by] if isinstance(by, str) else list(by)
    periods = [d for d in dims if d in FREQS]
    unknown = [d for d in dims if d not in FREQS and d not in COST_DIMENSIONS]
    if unknown:
        allowed = ", ".join([*FREQS, *COST_DIMENSIONS])
        raise ValueError(f"cannot group costs by {unknown[0]!r}; choose from {allowed}")
    if len(periods) > 1:
        raise ValueError(f"group by at most one period, not {periods}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"duplicate grouping in {dims}")
    first, inner, outer = [], [], []
    for d in dims:
        if d in FREQS:
            key, period = bucket_sql(d)
            inner.append(f"{key} AS {d}")
            outer.append(f"{period.format(k=d)} AS {d}")
        else:
            first.append(f"{COST_DIMENSIONS[d]} AS {d}")
            inner.append(d)
            outer.append(d)
    order = [*periods, "cost_cents DESC NULLS LAST", *[d for d in dims if d not in FREQS]]
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    sql = COSTS_SQL.format(
        slot=_SLOT if periods else "NULL",
        slot_start=_SLOT_START,
        dims="".join(f"{k},\n           " for k in first),
        keys="".join(f"{k},\n           " for k in inner),
        outer_keys="".join(f"{k},\n       " for k in outer),
        where=where,
        order=", ".join(order),
    )
    df = _run(source, sql, {**params, "tz": tz}, question="costs", tz=tz, money=True,
              currency=currency, by=tuple(dims))
    return _with_unit_costs(df)


#: Resolution of ``cost_per_message`` and ``cost_per_part`` [currency units]: 1e-10 cent,
#: the report's (a quotient such as 1/3 has no finite decimal; this is its one rounding).
UNIT_COST_QUANTUM = Decimal("1e-12")
_UNIT_COST_TYPE = pa.decimal128(38, 12)
_PRICED = ("priced_messages", "priced_part_cost_cents", "priced_parts")


def _unit_cost(cents: Any, count: Any) -> Decimal | None:
    """``cents / count`` in currency units, rounded half-even to UNIT_COST_QUANTUM."""
    if cents is None or pd.isna(cents) or not count:
        return None
    exact = Fraction(Decimal(cents)) / (100 * int(count))
    # round() of a Fraction rounds half to even, exactly: one rounding, no float, no context.
    return Decimal(round(exact / Fraction(UNIT_COST_QUANTUM))).scaleb(
        UNIT_COST_QUANTUM.as_tuple().exponent)


def _with_unit_costs(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``cost_per_message`` and ``cost_per_part`` (after ``cost``); drop the sums used."""
    per_message = [_unit_cost(c, n) for c, n in
                   zip(df["cost_cents"], df["priced_messages"], strict=True)]
    per_part = [_unit_cost(c, n) for c, n in
                zip(df["priced_part_cost_cents"], df["priced_parts"], strict=True)]
    at = df.columns.get_loc("cost") + 1
    df = df.drop(columns=list(_PRICED))
    dtype = pd.ArrowDtype(_UNIT_COST_TYPE)
    df.insert(at, "cost_per_message", pd.array(per_message, dtype=dtype))
    df.insert(at + 1, "cost_per_part", pd.array(per_part, dtype=dtype))
    return df


def _breakdown(
    source: Source, column: str, name: str, question: str, freq: Freq | None, tz: str,
    filters: dict[str, Any],
) -> pd.DataFrame:
    where, params = _where(tz=tz, **filters)
    if freq is None:
        key, period = "NULL", "CAST(NULL AS TIMESTAMPTZ)"
    else:
        key, period = bucket_sql(freq)
        period = period.format(k="k")
    sql = BREAKDOWN_SQL.format(key=key, period=period, column=column, name=name, where=where,
                               slot=_SLOT if freq else "NULL", slot_start=_SLOT_START)
    df = _run(source, sql, {**params, "tz": tz}, question=question, tz=tz, freq=freq)
    return df.drop(columns="period") if freq is None else df


def traffic(
    source: Source,
    *,
    freq: Freq | None = "day",
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Messages per traffic type (marketing, alerting) per period, with shares.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'} or None
        Period length; None for totals over the whole range (no ``period`` column).
    tz : str
        Time zone of the periods.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``traffic_type``, ``messages``, ``share`` [fraction of the period's
        messages].
    """
    filters = dict(start=start, end=end, to_number=to_number, country=country,
                   traffic_type=traffic_type, status=status)
    return _breakdown(source, "traffic_type", "traffic_type", "traffic", freq, tz, filters)


def statuses(
    source: Source,
    *,
    freq: Freq | None = "day",
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Messages per Callr status per period, with shares.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'} or None
        Period length; None for totals over the whole range (no ``period`` column).
    tz : str
        Time zone of the periods.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``status``, ``messages``, ``share`` [fraction of the period's
        messages].
    """
    filters = dict(start=start, end=end, to_number=to_number, country=country,
                   traffic_type=traffic_type, status=status)
    return _breakdown(source, "status", "status", "statuses", freq, tz, filters)


def activity_pattern(
    source: Source,
    *,
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Messages by hour of day and day of week, in a time zone.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    tz : str
        Time zone of the wall clock.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        168 rows, every (``weekday``, ``hour``) pair: ``weekday`` (0 = Monday),
        ``day`` (its name), ``hour`` [0-23, local], ``messages`` (0 where none).
    """
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    sql = ACTIVITY_PATTERN_SQL.format(where=where, slot=_SLOT, slot_start=_SLOT_START)
    return _run(source, sql, {**params, "tz": tz}, question="activity_pattern", tz=tz)


def keywords(
    source: Source,
    *,
    keywords: Mapping[str, str] | Iterable[str] = DEFAULT_KEYWORDS,
    freq: Freq | None = "day",
    tz: str = "UTC",
    start: TimeBound = None,
    end: TimeBound = None,
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Messages whose whole normalised body is an opt-out or opt-in keyword, per period.

    A body matches when, with accents and punctuation removed, spaces collapsed and case
    ignored, it *is* the keyword: "Arrêt !" matches ARRET, "stop please" matches nothing.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    keywords : mapping of str to str, or iterable of str
        Keyword -> kind (e.g. ``{"STOP": "opt-out"}``). Keywords are normalised the same
        way as bodies. A plain list takes kinds from :data:`DEFAULT_KEYWORDS`, else
        ``"keyword"``.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'} or None
        Period length; None for totals (no ``period`` column).
    tz : str
        Time zone of the periods.
    start, end, to_number, country, traffic_type, status
        Filters, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``keyword`` (normalised), ``kind``, ``messages``.
    """
    wanted = _wanted_keywords(keywords)
    where, params = _where(tz=tz, start=start, end=end, to_number=to_number, country=country,
                           traffic_type=traffic_type, status=status)
    if freq is None:
        key, period = "NULL", "CAST(NULL AS TIMESTAMPTZ)"
    else:
        key, period = bucket_sql(freq)
        period = period.format(k="k")
    sql = KEYWORDS_SQL.format(key=key, period=period, normalised=NORMALISED_BODY_SQL,
                              where=where, slot=_SLOT if freq else "NULL",
                              slot_start=_SLOT_START)
    params = {**params, "tz": tz, "keywords": list(wanted), "kinds": list(wanted.values())}
    df = _run(source, sql, params, question="keywords", tz=tz, freq=freq)
    return df.drop(columns="period") if freq is None else df


def _wanted_keywords(keywords: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """Normalised keyword -> kind; a plain list takes kinds from DEFAULT_KEYWORDS."""
    if isinstance(keywords, str):
        keywords = [keywords]
    pairs = keywords.items() if isinstance(keywords, Mapping) else (
        (k, DEFAULT_KEYWORDS.get(normalise_keyword(k), "keyword")) for k in keywords
    )
    wanted: dict[str, str] = {}
    for word, kind in pairs:
        if not isinstance(word, str) or not isinstance(kind, str):
            raise TypeError(f"keywords and kinds must be strings, not {word!r}: {kind!r}")
        wanted.setdefault(normalise_keyword(word), kind)
    wanted.pop("", None)
    return wanted


def _keyword_condition(keyword: str | Iterable[str]) -> tuple[str, dict[str, Any]]:
    """SQL condition "the message is one of these keywords", with bound parameters."""
    words = list(_wanted_keywords(keyword))
    if not words:
        return "false", {}
    names = [f"keyword_{i}" for i in range(len(words))]
    listing = ", ".join(f"${n}" for n in names)
    condition = f'coalesce({NORMALISED_BODY_SQL}, messages."keyword") IN ({listing})'
    return condition, dict(zip(names, words, strict=True))


def opt_outs(
    source: Source,
    *,
    keywords: Mapping[str, str] | Iterable[str] = DEFAULT_KEYWORDS,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    to_number: TextFilter = None,
    country: TextFilter = None,
    traffic_type: TextFilter = None,
    status: TextFilter = None,
) -> pd.DataFrame:
    """Who opted out, when, from which of your numbers, and who opted back in: a CRM list.

    A message is an opt-out (or opt-in) when its whole normalised body is a keyword of
    that kind, as in :func:`keywords` (a redacted body uses the keyword stored at
    conversion). One row per sender with at least one opt-out in the period; messages
    without a sender number are left out.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    keywords : mapping of str to str, or iterable of str
        Keyword -> kind; kinds ``"opt-out"`` and ``"opt-in"`` are used, others ignored.
        A plain list takes kinds from :data:`DEFAULT_KEYWORDS`. Only these keywords
        count, opt-ins too: ``["STOP"]`` finds STOP senders and never an opt-in.
    start, end : date, datetime or str, optional
        Opt-outs sent in this period (naive values are wall-clock times in `tz`). Opt-ins
        count at any time after the sender's last opt-out, even after `end`.
    tz : str
        Time zone of naive `start` / `end` only: the times returned are UTC.
    to_number, country, traffic_type, status
        Filters, as in :func:`volume` (applied to opt-outs and opt-ins).

    Returns
    -------
    pandas.DataFrame
        Latest opt-out first:

        * ``from_number``: the sender (a token ``anon:...`` in a pseudonymised dataset);
        * ``country``: sender country (ISO alpha-2) of the latest opt-out;
        * ``keyword``: the keyword of the latest opt-out, normalised (``ARRET``);
        * ``opt_outs``: how many opt-out messages;
        * ``first_opt_out_at``, ``last_opt_out_at``: tz-aware UTC;
        * ``to_numbers``: the recipient numbers (your campaign numbers) the sender opted
          out from, a sorted list of str (empty if none was recorded; tokens if
          recipients were pseudonymised); ``df.explode("to_numbers")`` gives one row
          per number;
        * ``opted_back_in``: whether the sender sent an opt-in keyword (to any of your
          numbers) after the latest opt-out; ``opted_back_in_at``: the first such, UTC;
        * ``pseudonymized``: whether ``from_number`` is a token, not a phone number.

        ``attrs["pseudonymized"]`` names the columns holding tokens (empty if none).

    Examples
    --------
    >>> import pandas as pd
    >>> con = connect(pd.DataFrame({
    ...     "from_number": ["+33600000001", "+33600000001", "+33600000002"],
    ...     "to_number": ["+33639980042", "+33639980042", "+33639980042"],
    ...     "body_text": ["Stop", "start", "hello"],
    ...     "created_at": pd.to_datetime(["2025-05-01 08:00", "2025-05-02 08:00",
    ...                                   "2025-05-01 09:00"], utc=True)}))
    >>> df = opt_outs(con)
    >>> df[["from_number", "keyword", "to_numbers", "opted_back_in"]].to_dict("records")
    [{'from_number': '+33600000001', 'keyword': 'STOP', 'to_numbers': ['+33639980042'], \
'opted_back_in': True}]
    """
    wanted = _wanted_keywords(keywords)
    wanted = {k: v for k, v in wanted.items() if v in ("opt-out", "opt-in")}
    filters = dict(to_number=to_number, country=country, traffic_type=traffic_type,
                   status=status)
    where_any_time, params = _where(tz=tz, extra=["from_number IS NOT NULL"], **filters)
    _, period_params = _where(tz=tz, start=start, end=end)
    period = [f"s.created_at {op} ${name}" for name, op in (("start", ">="), ("end", "<"))
              if name in period_params]
    sql = OPT_OUTS_SQL.format(
        normalised=NORMALISED_BODY_SQL, where_any_time=where_any_time,
        and_period="".join(f"AND {c} " for c in period).rstrip(),
    )
    params = {**params, **period_params, "keywords": list(wanted),
              "kinds": list(wanted.values())}
    df = _run(source, sql, params, question="opt_outs", tz="UTC")
    df["to_numbers"] = pd.Series([[] if v is None else list(v) for v in df["to_numbers"]],
                                 index=df.index, dtype=object)
    df["opted_back_in"] = df["opted_back_in_at"].notna()
    df["pseudonymized"] = df["from_number"].str.startswith(TOKEN_PREFIX).astype(bool)
    order = ["from_number", "country", "keyword", "opt_outs", "first_opt_out_at",
             "last_opt_out_at", "to_numbers", "opted_back_in", "opted_back_in_at",
             "pseudonymized"]
    df = df[order]
    tokens = []
    if df["pseudonymized"].any():
        tokens.append("from_number")
    if any(n.startswith(TOKEN_PREFIX) for ns in df["to_numbers"] for n in ns):
        tokens.append("to_numbers")
    df.attrs["pseudonymized"] = tuple(tokens)
    return df
