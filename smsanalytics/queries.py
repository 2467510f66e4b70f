"""The questions asked of a message table, as DuckDB SQL: one place an analyst can copy from.

This module owns the SQL. :func:`connect` opens an embedded DuckDB connection with a
``messages`` view (the columns of :data:`~smsanalytics.schema.MESSAGE_SCHEMA`, then the
computed ``month`` and ``cost`` of :data:`~smsanalytics.schema.VIEW_COLUMNS`) over a
dataset directory, archive files, or a table already in memory. Each named question
(:func:`volume`, :func:`top_senders`, :func:`costs`, ...) runs one SQL statement over that
view and returns a small pandas DataFrame; no question loads the whole table into pandas.

Conventions shared by every question:

* ``source`` is a connection from :func:`connect` or anything :func:`connect` accepts.
* Filters (``start``, ``end``, ``to_number``, ``country``, ``traffic_type``, ``status``:
  the keyword arguments :class:`Filters` describes, once for every question) are parsed
  with ``tz`` before anything is read (a bad zone or bound is an
  :class:`~smsanalytics.errors.ArgumentError`, an unknown filter a ``TypeError``), and
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

from collections.abc import Iterable, Mapping, Sequence
from datetime import tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, Unpack

import duckdb
import pandas as pd
import pyarrow as pa

from . import arguments
from ._analysis import (
    Filters,
    Selection,
    Source,
    TextFilter,
    TimeBound,
    connect,
    currency_of,
    interrupt_all,
    is_locked_down,
    is_na,
    lock_down,
    opened,
    pin_dataset,
    select,
    to_frame,
    used_params,
)
from .amounts import exact_frame
from .errors import ArgumentError
from .keywords import DEFAULT_KEYWORDS, NORMALISED_BODY_SQL, normalise_keyword
from .privacy import TOKEN_PREFIX

__all__ = [
    "FREQS",
    "COST_DIMENSIONS",
    "UNIT_COST_QUANTUM",
    "DEFAULT_KEYWORDS",
    "Source",
    "Filters",
    "TimeBound",
    "TextFilter",
    "connect",
    "interrupt_all",
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

#: ``costs(by=...)`` dimensions: output column -> SQL expression. Time periods come from FREQS.
COST_DIMENSIONS: dict[str, str] = {
    "country": "from_country",
    "network": "network",
    "operator": "network_operator",
    "network_country": "network_country",
    "traffic_type": "traffic_type",
    "payment_type": "payment_type",
    "to_number": "to_number",
    "encoding": "encoding",
    "status": "status",
}

_SLOT = "epoch_us(created_at) // 900000000"
_SLOT_START = "to_timestamp(slot * 900)"

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
# Free SQL
# ---------------------------------------------------------------------------------------


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
        Lock the connection down first (see :func:`smsanalytics._analysis.lock_down`):
        the SQL can read the ``messages`` view and nothing else on disk, write no file,
        load no extension and change no setting. For SQL from someone other than the
        user running it. With a dataset directory as `source` (or a connection
        :func:`connect` opened over one), the dataset's Parquet files as they are when the
        call starts are the only files readable; with another source, none are. A
        connection given stays locked, its ``messages`` view pinned to those files: open
        a new one to see a later conversion.
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
        If `sql` is blank (a query of comments only gives an empty frame), or `tz` is
        not a time zone (checked before anything is read).
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
    with opened(source) as con:
        owned = con is not source
        restore = None
        try:
            if zone is not None:
                if not isinstance(con, duckdb.DuckDBPyConnection):
                    raise ArgumentError("tz", zone, "a session time zone is for DuckDB "
                                        "connections; on Spark, set spark.sql.session.timeZone")
                if not owned and not read_only:  # a locked connection cannot be set back
                    restore = con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0]
                con.execute("SET TimeZone = ?", [zone])
            if read_only and not is_locked_down(con):
                lock_down(con, pin_dataset(con))
            result = con.sql(sql, params=params)
            table = result.to_arrow_table() if result is not None else pa.table({})
        finally:
            if restore is not None:  # the caller's connection keeps its own zone
                con.execute("SET TimeZone = ?", [restore])
    return _frame(table, zone or "UTC", question="sql", currency=None)


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


def _frame(table: pa.Table, tz: str, *, question: str, currency: str | None,
           **attrs: Any) -> pd.DataFrame:
    """A question's result in pandas (see :func:`smsanalytics._analysis.to_frame`), with
    what it answered in ``attrs``: ``question``, ``tz``, ``currency`` and its arguments."""
    df = to_frame(table, tz)
    df.attrs.update({"question": question, "tz": tz, "currency": currency, **attrs})
    return exact_frame(df)  # shown as money in a notebook, exact underneath


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
    with opened(source) as con:
        table = con.sql(sql, params=used_params(sql, params)).to_arrow_table()
        label = currency_of(con, currency) if money else None
    return _frame(table, tz, question=question, currency=label, **attrs)


# ---------------------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------------------


def volume(
    source: Source,
    *,
    freq: Freq = "day",
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """Messages, parts and cost per period.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'}
        Period length; periods are buckets of ``created_at`` in `tz`.
    tz : str or ZoneInfo
        IANA time zone of the periods and of naive `start` / `end` (e.g. "Europe/Paris").
    **filters : Filters
        ``start``, ``end``, ``to_number``, ``country``, ``traffic_type``, ``status``: only
        the messages they select (see :class:`Filters`).
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
    sel = select(tz, filters)
    where, params = sel.where()
    sql = VOLUME_SQL.format(key=key, period=period.format(k="k"), where=where, slot=_SLOT,
                            slot_start=_SLOT_START)
    return _run(source, sql, {**params, "tz": sel.tz}, question="volume", tz=sel.tz, money=True,
                currency=currency, freq=freq)


def top_senders(
    source: Source,
    *,
    by: Literal["messages", "parts", "cost"] = "messages",
    n: int | None = 10,
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    keyword: str | Iterable[str] | None = None,
    **filters: Unpack[Filters],
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
    tz : str or ZoneInfo
        Time zone of `start` / `end`, of ``active_days`` and of the returned timestamps.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.
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
    extra = ["from_number IS NOT NULL"]
    keyword_params: dict[str, Any] = {}
    if keyword is not None:
        condition, keyword_params = _keyword_condition(keyword)
        extra.append(condition)
    sel = select(tz, filters)
    where, params = sel.where(extra=extra)
    params.update(keyword_params)
    sql = TOP_SENDERS_SQL.format(where=where, order=orders[by])
    if n is None:
        sql = sql.replace("LIMIT $n", "")
    return _run(source, sql, {**params, "tz": sel.tz, "n": n}, question="top_senders", tz=sel.tz,
                money=True, currency=currency, by=by)


def sender_activity(
    source: Source,
    *,
    freq: Freq = "month",
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
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
    tz : str or ZoneInfo
        Time zone of the periods.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``senders`` [senders with a message in the period], ``new_senders``,
        ``returning_senders`` (the two sum to ``senders``), ``one_off_senders``,
        ``repeat_senders`` (idem).
    """
    key, period = bucket_sql(freq)
    first_key, _ = bucket_sql(freq, "s.first_at")
    sel = select(tz, filters)
    not_null = ["from_number IS NOT NULL"]
    where, params = sel.where(extra=not_null)
    where_any_time, params_any = sel.where(extra=not_null, period=False)
    sql = SENDER_ACTIVITY_SQL.format(
        key=key, period_of_a=period.format(k="a.k"), first_key=first_key, where=where,
        where_any_time=where_any_time,
    )
    return _run(source, sql, {**params_any, **params, "tz": sel.tz}, question="sender_activity",
                tz=sel.tz, freq=freq)


def locations(
    source: Source,
    *,
    by: Literal["country", "location"] = "country",
    n: int | None = None,
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    **filters: Unpack[Filters],
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
    tz : str or ZoneInfo
        Time zone of naive `start` / `end`.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.
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
    sel = select(tz, filters)
    where, params = sel.where()
    order = "country, location" if by == "location" else "country"
    sql = LOCATIONS_SQL.format(keys=keys[by], order=order, where=where)
    df = _run(source, sql, params, question="locations", tz=sel.tz, money=True,
              currency=currency, by=by)
    return df.head(n).reset_index(drop=True) if n is not None else df


def encodings(
    source: Source,
    *,
    by: Literal["country"] | None = None,
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """GSM vs unicode: share of messages and of multi-part messages, overall or by country.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    by : {None, 'country'}
        ``country`` splits by sender country; shares are then within each country.
    tz : str or ZoneInfo
        Time zone of naive `start` / `end`.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        (``country``), ``encoding`` (as Callr billed it), ``messages``, ``share``
        [fraction], ``parts`` [segments], ``multipart_messages`` [messages of 2 parts or
        more], ``multipart_share`` [fraction of the encoding's messages].
    """
    if by not in (None, "country"):
        raise ValueError(f"by must be None or 'country', not {by!r}")
    sel = select(tz, filters)
    where, params = sel.where()
    if by == "country":
        sql = ENCODINGS_SQL.format(keys="from_country AS country,", order="country,",
                                   group="from_country, ",
                                   partition="PARTITION BY from_country", where=where)
    else:
        sql = ENCODINGS_SQL.format(keys="", order="", group="", partition="", where=where)
    return _run(source, sql, params, question="encodings", tz=sel.tz, by=by)


def parts_distribution(
    source: Source,
    *,
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """How many messages have 1, 2, 3, ... parts, by encoding.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    tz : str or ZoneInfo
        Time zone of naive `start` / `end`.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``parts`` [segments], ``encoding``, ``messages``, ``share`` [fraction of all
        filtered messages].
    """
    sel = select(tz, filters)
    where, params = sel.where()
    sql = PARTS_DISTRIBUTION_SQL.format(where=where)
    return _run(source, sql, params, question="parts_distribution", tz=sel.tz)


def costs(
    source: Source,
    *,
    by: str | Sequence[str] = (),
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    **filters: Unpack[Filters],
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
        ``encoding``, ``status``, ``network_country``). ``operator`` (a name) comes with
        ``network_country`` before it, unless ``network`` (the MCC-MNC code, which names
        one operator of one country) is grouped too: Orange France and Orange Spain are
        two rows. Empty: one row, the total.
    tz : str or ZoneInfo
        Time zone of the periods and of naive `start` / `end`.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.
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
    if "operator" in dims and "network" not in dims and "network_country" not in dims:
        # An operator is a name in a country: Orange France, Orange Spain and Orange Senegal
        # are three. A network code names one already; without it, add the country.
        dims.insert(dims.index("operator"), "network_country")
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
    sel = select(tz, filters)
    where, params = sel.where()
    sql = COSTS_SQL.format(
        slot=_SLOT if periods else "NULL",
        slot_start=_SLOT_START,
        dims="".join(f"{k},\n           " for k in first),
        keys="".join(f"{k},\n           " for k in inner),
        outer_keys="".join(f"{k},\n       " for k in outer),
        where=where,
        order=", ".join(order),
    )
    df = _run(source, sql, {**params, "tz": sel.tz}, question="costs", tz=sel.tz, money=True,
              currency=currency, by=tuple(dims))
    return _with_unit_costs(df)


#: Resolution of ``cost_per_message`` and ``cost_per_part`` [currency units]: 1e-10 cent,
#: the report's (a quotient such as 1/3 has no finite decimal; this is its one rounding).
UNIT_COST_QUANTUM = Decimal("1e-12")
_UNIT_COST_TYPE = pa.decimal128(38, 12)
_UNIT_COST_EXPONENT = -12
_PRICED = ("priced_messages", "priced_part_cost_cents", "priced_parts")


def _unit_cost(cents: Any, count: Any) -> Decimal | None:
    """``cents / count`` in currency units, rounded half-even to UNIT_COST_QUANTUM."""
    if cents is None or pd.isna(cents) or not count:
        return None
    exact = Fraction(Decimal(cents)) / (100 * int(count))
    # round() of a Fraction rounds half to even, exactly: one rounding, no float, no context.
    return Decimal(round(exact / Fraction(UNIT_COST_QUANTUM))).scaleb(_UNIT_COST_EXPONENT)


def _with_unit_costs(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``cost_per_message`` and ``cost_per_part`` (after ``cost``); drop the sums used."""
    per_message = [_unit_cost(c, n) for c, n in
                   zip(df["cost_cents"], df["priced_messages"], strict=True)]
    per_part = [_unit_cost(c, n) for c, n in
                zip(df["priced_part_cost_cents"], df["priced_parts"], strict=True)]
    at = list(df.columns).index("cost") + 1
    df = df.drop(columns=list(_PRICED))
    dtype = pd.ArrowDtype(_UNIT_COST_TYPE)
    df.insert(at, "cost_per_message", pd.Series(per_message, index=df.index, dtype=dtype))
    df.insert(at + 1, "cost_per_part", pd.Series(per_part, index=df.index, dtype=dtype))
    return df


def _breakdown(
    source: Source, column: str, name: str, question: str, freq: Freq | None,
    sel: Selection,
) -> pd.DataFrame:
    where, params = sel.where()
    if freq is None:
        key, period = "NULL", "CAST(NULL AS TIMESTAMPTZ)"
    else:
        key, period = bucket_sql(freq)
        period = period.format(k="k")
    sql = BREAKDOWN_SQL.format(key=key, period=period, column=column, name=name, where=where,
                               slot=_SLOT if freq else "NULL", slot_start=_SLOT_START)
    df = _run(source, sql, {**params, "tz": sel.tz}, question=question, tz=sel.tz, freq=freq)
    return df.drop(columns="period") if freq is None else df


def traffic(
    source: Source,
    *,
    freq: Freq | None = "day",
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """Messages per traffic type (marketing, alerting) per period, with shares.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'} or None
        Period length; None for totals over the whole range (no ``period`` column).
    tz : str or ZoneInfo
        Time zone of the periods.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``traffic_type``, ``messages``, ``share`` [fraction of the period's
        messages].
    """
    return _breakdown(source, "traffic_type", "traffic_type", "traffic", freq,
                      select(tz, filters))


def statuses(
    source: Source,
    *,
    freq: Freq | None = "day",
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """Messages per Callr status per period, with shares.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    freq : {'hour', 'day', 'week', 'month', 'quarter', 'year'} or None
        Period length; None for totals over the whole range (no ``period`` column).
    tz : str or ZoneInfo
        Time zone of the periods.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``status``, ``messages``, ``share`` [fraction of the period's
        messages].
    """
    return _breakdown(source, "status", "status", "statuses", freq, select(tz, filters))


def activity_pattern(
    source: Source,
    *,
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
) -> pd.DataFrame:
    """Messages by hour of day and day of week, in a time zone.

    Parameters
    ----------
    source : connection or anything :func:`connect` accepts
        The messages.
    tz : str or ZoneInfo
        Time zone of the wall clock.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        168 rows, every (``weekday``, ``hour``) pair: ``weekday`` (0 = Monday),
        ``day`` (its name), ``hour`` [0-23, local], ``messages`` (0 where none).
    """
    sel = select(tz, filters)
    where, params = sel.where()
    sql = ACTIVITY_PATTERN_SQL.format(where=where, slot=_SLOT, slot_start=_SLOT_START)
    return _run(source, sql, {**params, "tz": sel.tz}, question="activity_pattern", tz=sel.tz)


def keywords(
    source: Source,
    *,
    keywords: Mapping[str, str] | Iterable[str] = DEFAULT_KEYWORDS,
    freq: Freq | None = "day",
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
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
    tz : str or ZoneInfo
        Time zone of the periods.
    **filters : Filters
        Only the messages they select, as in :func:`volume`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``keyword`` (normalised), ``kind``, ``messages``.
    """
    wanted = _wanted_keywords(keywords)
    sel = select(tz, filters)
    where, params = sel.where()
    if freq is None:
        key, period = "NULL", "CAST(NULL AS TIMESTAMPTZ)"
    else:
        key, period = bucket_sql(freq)
        period = period.format(k="k")
    sql = KEYWORDS_SQL.format(key=key, period=period, normalised=NORMALISED_BODY_SQL,
                              where=where, slot=_SLOT if freq else "NULL",
                              slot_start=_SLOT_START)
    params = {**params, "tz": sel.tz, "keywords": list(wanted), "kinds": list(wanted.values())}
    df = _run(source, sql, params, question="keywords", tz=sel.tz, freq=freq)
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
    tz: str | tzinfo = "UTC",
    **filters: Unpack[Filters],
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
    tz : str or ZoneInfo
        Time zone of naive `start` / `end` only: the times returned are UTC.
    to_number, country, traffic_type, status
        The other :class:`Filters`, as in :func:`volume` (applied to opt-outs and
        opt-ins).

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
    sel = select(tz, filters)
    where_any_time, params = sel.where(extra=["from_number IS NOT NULL"], period=False)
    period_params = sel.period_params()
    period = [f"s.created_at {op} ${name}" for name, op in (("start", ">="), ("end", "<"))
              if name in period_params]
    sql = OPT_OUTS_SQL.format(
        normalised=NORMALISED_BODY_SQL, where_any_time=where_any_time,
        and_period="".join(f"AND {c} " for c in period).rstrip(),
    )
    params = {**params, **period_params, "keywords": list(wanted),
              "kinds": list(wanted.values())}
    df = _run(source, sql, params, question="opt_outs", tz="UTC")
    df["to_numbers"] = pd.Series([[] if is_na(v) else list(v) for v in df["to_numbers"]],
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
