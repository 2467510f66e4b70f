"""The monthly cost report: what inbound SMS cost, where it came from, and what changed.

This module owns the report. :func:`cost_report` asks the questions of
:mod:`smsanalytics.queries` for one period and the period before it, adds what those
questions do not cover (the excluded rows and per-part rates: a few lines of SQL here; the
billing audit comes from :mod:`smsanalytics.audit`), and returns a :class:`CostReport`:
pandas DataFrames as attributes, and ``to_html()`` (one self-contained page, printable on
A4), ``to_csv(dir)`` and ``to_markdown()``. The page is a list of sections of plain data
(:func:`_page`) that :mod:`smsanalytics.render` turns into HTML or Markdown.

Decisions:

* Money is summed exactly, in decimal, from ``cost_cents``; major units are
  ``cost_cents / 100``. Display rounds half-even, one rule per kind (2 decimals for
  totals, 6 for every per-message and per-part cost: see :mod:`smsanalytics.render`); the
  DataFrames and the CSV files keep exact values, and a notebook shows the DataFrames as
  money (:class:`~smsanalytics.amounts.ExactFrame`). Ratios (cost per message, per part)
  are exact to 10 decimals of a cent.
* The currency is a label the user gives; without one, amounts say "currency not set".
* Paths on the page (the source, the rejects file) are relative to the page when it is
  written with :meth:`CostReport.write_html`, else file names: never an absolute path of
  the machine that made it.
* The period is ``[start, end)`` in the time zone `tz`, which also decides the month a
  message belongs to. By default it is the last full calendar month of the data: the month
  of the latest message if that message is on the month's last day, else the month before
  (or the latest month, marked partial, when the data holds no full month). The comparison
  period is the one before, of the same number of months (or the same length).
* Everything that came from the data is escaped in HTML (a Jinja2 template with autoescape
  on and :func:`~smsanalytics.escape.for_html` as its finalize) and neutralised in CSV
  (:func:`~smsanalytics.escape.for_csv_cell`): an E.164 number such as ``+33612345678`` is
  written ``'+33612345678`` so a spreadsheet shows it as text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa

from . import amounts, arguments, dataset, queries, render
from . import audit as billing_audit
from ._analysis import (
    MONEY_TYPE,
    RATIO_TYPE,
    Filters,
    Selection,
    Source,
    TimeBound,
    dec,
    dsum,
    is_na,
    opened,
    ratio,
    to_frame,
    used_params,
)
from .errors import ArgumentError, DatasetError
from .escape import for_html, for_terminal, write_csv_tables
from .paths import PAGE_MARKER, is_report_page, write_atomically

__all__ = [
    "ABOVE_RATE_MARGIN",
    "Period",
    "CostReport",
    "cost_report",
    "default_period",
]

#: A message is "above rate" when its cost per part exceeds its country's usual rate (the
#: median per-part cost of the period) by more than this fraction.
ABOVE_RATE_MARGIN = billing_audit.RATE_MARGIN

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_NO_CURRENCY = "currency not set"
_UNKNOWN = "(unknown)"
_EXAMPLES = 10


# ---------------------------------------------------------------------------------------
# Periods
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A reporting period: ``start`` inclusive, ``end`` exclusive, tz-aware.

    Attributes
    ----------
    start, end : datetime
        Bounds, in the report's time zone.
    label : str
        How the report names it (``May 2025``, or ``2025-05-03 to 2025-05-19``).
    partial : bool
        True when the data does not cover the whole period (a default period chosen
        because no full month exists).
    """

    start: datetime
    end: datetime
    label: str
    partial: bool = False


def _month_start(year: int, month: int, zone: ZoneInfo) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=zone)


def _add_months(d: datetime, n: int, zone: ZoneInfo) -> datetime:
    return _month_start(d.year, d.month + n, zone)


def _is_month_start(d: datetime) -> bool:
    return d.day == 1 and (d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0)


def _months_between(a: datetime, b: datetime) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _label(start: datetime, end: datetime) -> str:
    if _is_month_start(start) and _is_month_start(end):
        n = _months_between(start, end)
        first = f"{_MONTHS[start.month - 1]} {start.year}"
        if n == 1:
            return first
        last = end - timedelta(days=1)
        return f"{first} to {_MONTHS[last.month - 1]} {last.year}"
    midnight = (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0)
    last_day: date = (end - timedelta(days=1)).date() if midnight else end
    return f"{start.date().isoformat()} to {last_day.isoformat()}"


def default_period(first: datetime, last: datetime, tz: str | tzinfo) -> Period:
    """Return the last full calendar month between two instants, in `tz`.

    Parameters
    ----------
    first, last : datetime
        The earliest and latest message (aware).
    tz : str or ZoneInfo
        Time zone of the calendar (as :func:`~smsanalytics.arguments.time_zone` takes it).

    Returns
    -------
    Period
        The month of `last` if `last` falls on that month's last day, else the month
        before; if that month starts before the month of `first` (the data holds no full
        month), the month of `last`, marked ``partial``.

    Raises
    ------
    ArgumentError
        For a bad time zone.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> default_period(datetime(2025, 1, 3, tzinfo=UTC), datetime(2025, 6, 29, tzinfo=UTC),
    ...                "UTC").label
    'May 2025'
    """
    return _default_period(first, last, arguments.time_zone(tz))


def _default_period(first: datetime, last: datetime, zone: ZoneInfo) -> Period:
    lo, hi = first.astimezone(zone), last.astimezone(zone)
    last_month = _month_start(hi.year, hi.month, zone)
    complete = (hi + timedelta(days=1)).month != hi.month
    start = last_month if complete else _add_months(last_month, -1, zone)
    partial = False
    if start < _month_start(lo.year, lo.month, zone):
        start, partial = last_month, not complete
    end = _add_months(start, 1, zone)
    return Period(start, end, _label(start, end), partial)


def _previous(period: Period, zone: ZoneInfo) -> Period:
    start, end = period.start, period.end
    try:
        if _is_month_start(start) and _is_month_start(end):
            prev_start = _add_months(start, -_months_between(start, end), zone)
        else:
            # Same wall-clock length, so a period of whole days stays whole days across DST.
            length = end.replace(tzinfo=None) - start.replace(tzinfo=None)
            prev_start = (start.replace(tzinfo=None) - length).replace(tzinfo=zone)
    except (OverflowError, ValueError):  # before year 1
        prev_start = None
    if prev_start is None or prev_start.year < arguments.MIN_YEAR:
        raise ArgumentError("start", start.isoformat(), "the period it is compared with (as "
                            "long, just before it) would begin before the year "
                            f"{arguments.MIN_YEAR}")
    return Period(prev_start, start, _label(prev_start, start))


def _choose_period(asked: arguments.Bounds, data: tuple[datetime | None, datetime | None],
                   source: str) -> Period:
    """The period `asked` for (either side None: taken from the `data`'s first and last
    message), in its zone."""
    start, end, zone = asked.start, asked.end, asked.zone
    lo = None if start is None else start.astimezone(zone)
    hi = None if end is None else end.astimezone(zone)
    first, last = data
    undated = DatasetError(source, "no dated messages: give start and end to report on a "
                                   "period")
    if lo is None and hi is None:
        if first is None or last is None:
            raise undated
        return _default_period(first, last, zone)
    if lo is None:
        if first is None:
            raise undated
        f = first.astimezone(zone)
        lo = datetime(f.year, f.month, f.day, tzinfo=zone)
    if hi is None:
        if last is None:
            raise undated
        day = last.astimezone(zone).date() + timedelta(days=1)
        hi = datetime(day.year, day.month, day.day, tzinfo=zone)
    if hi <= lo:
        # Only one bound was given, and the data lies entirely on the wrong side of it.
        given = start if start is not None else end
        assert given is not None  # a side without a bound was filled from the data
        name = "start" if start is not None else "end"
        raise ArgumentError(name, given.astimezone(zone).isoformat(),
                            f"no message lies {'after' if name == 'start' else 'before'} it "
                            "(give both start and end to report on an empty period)")
    return Period(lo, hi, _label(lo, hi))


# ---------------------------------------------------------------------------------------
# SQL this module adds to queries.py: excluded rows, rate distribution, billing audit
# ---------------------------------------------------------------------------------------

BOUNDS_SQL = "SELECT min(created_at), max(created_at) FROM messages"

EXCLUDED_SQL = """
SELECT CASE WHEN created_at IS NULL THEN 'no created_at'
            WHEN created_at < $start THEN 'before the period'
            ELSE 'after the period' END AS excluded,
       count(*) AS messages,
       sum(cost_cents) AS cost_cents
FROM messages
WHERE created_at IS NULL OR created_at < $start OR created_at >= $end
GROUP BY ALL
"""

# Per sender country: what the rates table sums (the usual rate comes from the audit's
# USUAL_RATE_SQL). "rated" sums count the messages with parts and a cost, which have a
# per-part rate.
COUNTRY_RATES_SQL = """
SELECT from_country AS country, count(*) AS messages,
       CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
       coalesce(sum(cost_cents), 0) AS cost_cents,
       sum(cost_cents) FILTER (WHERE parts > 0) AS rated_cost_cents,
       CAST(sum(parts) FILTER (WHERE parts > 0 AND cost_cents IS NOT NULL) AS BIGINT)
           AS rated_parts
FROM messages
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""

# What the per-message and per-part costs divide by: only messages with a cost (and, per
# part, with parts too). A message without a cost adds nothing to the total, so counting
# it would make every message look cheaper.
PRICED_SQL = """
SELECT count(cost_cents) AS priced_messages,
       sum(cost_cents) FILTER (WHERE parts IS NOT NULL) AS part_cost_cents,
       sum(parts) FILTER (WHERE cost_cents IS NOT NULL) AS priced_parts
FROM messages
WHERE created_at >= $start AND created_at < $end
"""

AUDIT_PRESENT_SQL = """
SELECT count(computed_parts), count(computed_encoding)
FROM messages
WHERE created_at >= $start AND created_at < $end
"""

def _sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any],
         tz: str) -> pd.DataFrame:
    return to_frame(con.sql(sql, params=used_params(sql, params)).to_arrow_table(), tz)


# ---------------------------------------------------------------------------------------
# Exact arithmetic helpers
# ---------------------------------------------------------------------------------------


def _pct_change(current: Decimal | int | None, previous: Decimal | int | None) -> Decimal | None:
    if current is None or previous is None or previous == 0:
        return None
    return ratio(Fraction(Decimal(current)) - Fraction(Decimal(previous)),
                  Fraction(Decimal(previous)) / 100)


def _arrow_frame(rows: list[dict[str, Any]], types: dict[str, pa.DataType]) -> pd.DataFrame:
    """Rows -> DataFrame with exact decimal columns (Arrow dtype), like the queries return."""
    schema = pa.schema([pa.field(k, t) for k, t in types.items()])
    return to_frame(pa.Table.from_pylist(rows, schema=schema))


def _rows(df: pd.DataFrame) -> Iterator[Any]:
    """The rows of `df` as named tuples, a field per column.

    Typed Any on purpose: a field holds its column's values (a Decimal, an int, a str, NA,
    a Timestamp...), which a DataFrame does not type; each use converts or checks it
    (:func:`dec`, ``int``, :func:`is_na`).
    """
    return df.itertuples(index=False)


def _cell(df: pd.DataFrame, row: str, column: str) -> Any:
    """The value of `df` at the index label `row` and `column` (Any, as in :func:`_rows`)."""
    return df.loc[row, column]


def _key(value: Any) -> Any:
    return None if is_na(value) else value


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------


@dataclass
class CostReport:
    """The cost report of one period, compared with the period before.

    Every amount is exact: ``*_cents`` columns in cents, ``cost`` columns in major units of
    the account currency (``cost_cents / 100``), as Arrow decimals (or :class:`Decimal`).

    Attributes
    ----------
    period, previous : Period
        The reported period and the comparison period.
    tz : str
        Time zone of the periods and months.
    currency : str or None
        Currency label (None: not set).
    data_first, data_last : datetime or None
        Earliest and latest message of the whole data, in `tz`.
    headline : pandas.DataFrame
        ``metric`` (messages, parts, cost, cost_per_message, cost_per_part), ``unit``,
        ``current``, ``previous``, ``change``, ``change_pct`` [%]; money in major units.
        Cost per message divides by the messages that have a cost, cost per part by the
        parts of the messages that have both (None when there are none).
    by_month : pandas.DataFrame
        :func:`~smsanalytics.queries.costs` by month over all the data, plus ``role``
        (``period``, ``previous`` or empty).
    by_country, by_operator, by_traffic_type, by_payment_type, by_recipient : pandas.DataFrame
        :func:`~smsanalytics.queries.costs` of the period by sender country, network
        (MCC-MNC and operator), traffic type, payment type and recipient number (the
        customer's numbers), plus ``previous_cost_cents`` and ``change_cents``; a value
        seen only in the previous period has a row with zero messages.
    top_senders : pandas.DataFrame
        :func:`~smsanalytics.queries.top_senders` by cost in the period.
    rates : pandas.DataFrame
        Per sender country: ``messages``, ``parts``, ``cost_cents``, ``usual_rate_cents``
        (the usual cost of a part: the lower weighted median per-part cost, as
        :func:`~smsanalytics.audit.usual_rate` and the audit's column of that name),
        ``average_rate_cents`` (cost over parts, of the messages with both),
        ``previous_usual_rate_cents``, ``usual_rate_change_cents`` [cents per part].
    above_rate : pandas.DataFrame
        Per country, messages whose per-part cost exceeds the usual rate by more than
        :data:`ABOVE_RATE_MARGIN`: ``usual_rate_cents``, ``messages``, ``parts``,
        ``cost_cents``, ``excess_cents`` (cost above the usual rate).
    above_rate_examples : pandas.DataFrame
        The most expensive of those messages (``body_text`` is untrusted text).
    audit : pandas.DataFrame or None
        Messages whose billed parts or encoding differ from the computed ones, by kind:
        ``finding``, ``messages``, ``cost_cents``, ``excess_cents`` (cost of the parts
        billed beyond those needed). None when ``computed_parts`` and
        ``computed_encoding`` are empty in the period.
    audit_examples : pandas.DataFrame or None
        The most expensive of those messages.
    excluded : pandas.DataFrame
        Rows outside the period: ``excluded`` (before, after, no created_at),
        ``messages``, ``cost_cents``.
    reconciliation : pandas.DataFrame
        ``table``, ``sum_cents``, ``expected_cents``, ``ok``: every breakdown sums exactly
        to the headline total, and the whole data to period plus excluded rows.
    conversion : dict or None
        ``last_conversion`` of the dataset's manifest (records, written, duplicates,
        rejected, reject_reasons), when the source is a dataset directory.
    source : str or None
        What the report was made from, for its header.
    top : int
        Senders (and rows of the long tables in the page) shown.
    unpriced : int
        Messages of the period without a cost (``cost_cents`` null), which the summary
        names.
    """

    period: Period
    previous: Period
    tz: str
    currency: str | None
    data_first: datetime | None
    data_last: datetime | None
    headline: pd.DataFrame
    by_month: pd.DataFrame
    by_country: pd.DataFrame
    by_operator: pd.DataFrame
    by_traffic_type: pd.DataFrame
    by_payment_type: pd.DataFrame
    by_recipient: pd.DataFrame
    top_senders: pd.DataFrame
    rates: pd.DataFrame
    above_rate: pd.DataFrame
    above_rate_examples: pd.DataFrame
    audit: pd.DataFrame | None
    audit_examples: pd.DataFrame | None
    excluded: pd.DataFrame
    reconciliation: pd.DataFrame
    conversion: dict[str, Any] | None = None
    source: str | None = None
    top: int = 10
    unpriced: int = 0
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Shown as money in a notebook; the values underneath stay exact.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame) and not f.name.startswith("_"):
                show = _shown_headline if f.name == "headline" else None
                setattr(self, f.name, amounts.exact_frame(value, show))

    # -- values -----------------------------------------------------------------------

    def total_cents(self, which: str = "current") -> Decimal:
        """Return the exact total cost [cents] of the period (or ``"previous"``)."""
        return Decimal(_cell(self.headline.set_index("metric"), "cost", which)) * 100

    @property
    def reconciled(self) -> bool:
        """Whether every reconciliation check holds."""
        return bool(self.reconciliation["ok"].all())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return every table of the report by name (the CSV file names without ``.csv``)."""
        out = {
            "headline": self.headline,
            "by_month": self.by_month,
            "by_country": self.by_country,
            "by_operator": self.by_operator,
            "by_traffic_type": self.by_traffic_type,
            "by_payment_type": self.by_payment_type,
            "by_recipient": self.by_recipient,
            "top_senders": self.top_senders,
            "rates": self.rates,
            "above_rate": self.above_rate,
            "above_rate_examples": self.above_rate_examples,
        }
        if self.audit is not None:
            out["audit"] = self.audit
        if self.audit_examples is not None:
            out["audit_examples"] = self.audit_examples
        out["excluded"] = self.excluded
        out["reconciliation"] = self.reconciliation
        if self.conversion is not None:
            out["last_conversion"] = pd.DataFrame(
                [{"count": k, "value": v} for k, v in self.conversion.items()
                 if isinstance(v, int)])
        return out

    # -- outputs ----------------------------------------------------------------------

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write one CSV file per table into `directory` (created if needed).

        Amounts are exact and unrounded. Text cells a spreadsheet would run as a formula
        (``=``, ``+``, ``-``, ``@``...) get a leading apostrophe, so E.164 numbers read
        ``'+33612345678``.

        Parameters
        ----------
        directory : str or Path
            Where to write ``headline.csv``, ``by_month.csv``, ``by_country.csv``, ...

        Returns
        -------
        list of Path
            The files written.
        """
        return write_csv_tables(self.tables(), directory)

    def to_markdown(self) -> str:
        """Return the headline and the tables as Markdown (amounts rounded for display)."""
        return render.to_markdown(_page(self))

    def to_html(self, place: str | Path | None = None) -> str:
        """Return the report as one self-contained HTML page (inline CSS and SVG charts).

        Parameters
        ----------
        place : str or Path, optional
            Where the page will be written: the files it names (the source, the rejects)
            are then shown relative to it. Without it, by their names alone.
        """
        return render.to_html(_page(self, place), document=True, head=PAGE_MARKER)

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to `path` (UTF-8), atomically, and return the path.

        An existing `path` is replaced only if it is a report page written earlier
        (:func:`is_report_page`); a link, a device, a FIFO or another file is refused with
        :class:`~smsanalytics.errors.OutputPathError`. The page is written beside `path`
        and renamed over it, so an error or Ctrl-C leaves the previous page whole.
        """
        page = self.to_html(place=path)

        def write(fh: IO[str]) -> None:
            fh.write(page)

        return write_atomically(path, write, ours=is_report_page)

    def _repr_html_(self) -> str:
        return render.to_html(_page(self), document=False)

    def __repr__(self) -> str:
        return (f"<CostReport {self.period.label} ({self.tz}): "
                f"{amounts.money(self.total_cents())} {_currency_label(self)}>")

    def __str__(self) -> str:
        return self.to_markdown()


def cost_report(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    top: int = 10,
) -> CostReport:
    """Build the cost report of a period, compared with the period before it.

    Parameters
    ----------
    source : str, Path, connection, or anything :func:`~smsanalytics.queries.connect` accepts
        The messages, usually a dataset directory: the report then also shows the
        duplicates and rejects of its last conversion.
    start, end : date, datetime or str, optional
        The period, `start` inclusive and `end` exclusive; naive values are wall-clock
        times in `tz`, strings are ISO 8601. Default: the last full calendar month of the
        data (see :func:`default_period`). With only `start`, the period runs to the end of
        the latest message's day; with only `end`, from the first message's day.
    tz : str or ZoneInfo
        IANA time zone that decides which day and month a message belongs to.
    currency : str, optional
        Label of the account currency (``"EUR"``). Never guessed: without it amounts are
        labelled "currency not set" (unless the connection has a label).
    top : int
        Senders (and rows of the long tables in the page) to show, 1 to
        :data:`~smsanalytics.arguments.MAX_COUNT`.

    Returns
    -------
    CostReport

    Raises
    ------
    ArgumentError
        Before any data is read, for an argument that cannot be used (see
        :mod:`smsanalytics.arguments`).
    DatasetError
        When no period is given and the data holds no dated message.

    Examples
    --------
    >>> import tempfile, smsanalytics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = smsanalytics.convert(["sample_data"], f"{tmp.name}/ds", quiet=True)
    >>> r = cost_report(f"{tmp.name}/ds", tz="Europe/Paris", currency="EUR")
    >>> r.period.label, r.reconciled
    ('May 2025', True)
    >>> tmp.cleanup()
    """
    asked = arguments.bounds(start, end, tz)
    top = arguments.positive_int(top, "top")
    currency = arguments.currency_label(currency)
    with opened(source, currency=currency) as con:
        return _build(con, source, asked, currency=currency, top=top)


def _source_label(source: Any) -> str | None:
    if isinstance(source, str | Path):
        return str(source)
    if isinstance(source, list | tuple) and all(isinstance(p, str | Path) for p in source):
        return ", ".join(str(p) for p in source)
    return None


def _manifest(source: Any) -> dict[str, Any] | None:
    if not isinstance(source, str | Path) or not Path(source).is_dir():
        return None
    info = dataset.read_manifest(source).get("last_conversion")
    return dict(info) if isinstance(info, dict) else None


def _selection(period: Period, zone: ZoneInfo) -> Selection:
    """The rows of `period` (checked already: no argument is parsed again)."""
    return Selection(arguments.Bounds(period.start.astimezone(UTC),
                                      period.end.astimezone(UTC), zone))


def _build(con: duckdb.DuckDBPyConnection, source: Any, asked: arguments.Bounds, *,
           currency: str | None, top: int) -> CostReport:
    """The report of the period `asked` for; its zone is parsed, and passed down as is."""
    zone, tz = asked.zone, asked.tz  # tz: the zone's name, for DuckDB, pandas and the page
    # fetchall: DuckDB 2 keeps a connection busy until its result is read to the end.
    first, last = con.execute(BOUNDS_SQL).fetchall()[0]
    period = _choose_period(asked, (first, last), _source_label(source) or "messages")
    previous = _previous(period, zone)
    selection_now, selection_prev = _selection(period, zone), _selection(previous, zone)
    cur: Filters = {"start": period.start, "end": period.end}
    prev: Filters = {"start": previous.start, "end": previous.end}

    total_now = queries.costs(con, tz=zone, **cur)
    label = currency if currency is not None else total_now.attrs.get("currency")
    total_prev = queries.costs(con, tz=zone, **prev)
    params_now, params_prev = selection_now.period_params(), selection_prev.period_params()
    priced_now = con.execute(PRICED_SQL, params_now).fetchall()[0]
    headline = _headline(total_now, total_prev, label, priced_now,
                         con.execute(PRICED_SQL, params_prev).fetchall()[0])
    unpriced = int(total_now["messages"].iloc[0]) - int(priced_now[0])

    by_month = queries.costs(con, by="month", tz=zone)
    role = []
    for m in by_month["month"]:
        if is_na(m):
            role.append("")
        else:
            t = m.to_pydatetime()
            role.append("period" if period.start <= t < period.end else
                        "previous" if previous.start <= t < previous.end else "")
    by_month["role"] = role

    breakdowns = {}
    for name, by in (("by_country", ["country"]), ("by_operator", ["network", "operator"]),
                     ("by_traffic_type", ["traffic_type"]),
                     ("by_payment_type", ["payment_type"]), ("by_recipient", ["to_number"])):
        breakdowns[name] = _compare(queries.costs(con, by=by, tz=zone, **cur),
                                    queries.costs(con, by=by, tz=zone, **prev), by)

    senders = queries.top_senders(con, by="cost", n=top, tz=zone, **cur)

    # Rates: per-country sums, and usual rates found by DuckDB (no price point comes to
    # Python: at 10 million messages they are millions).
    rates = _rates(
        *(( _sql(con, COUNTRY_RATES_SQL, p, tz),
            billing_audit.usual_rates(con, "messages", s, by_month=False,
                                      unknown_country=True))
          for p, s in ((params_now, selection_now), (params_prev, selection_prev))))
    # The billing audit of the period, on the audit's view (enrichment filled in where it is
    # null): totals over every message, and the most expensive few as examples. The usual
    # rate is the country's over the whole period (by_month=False), as the rates table's.
    audit = audit_examples = None
    present = con.execute(AUDIT_PRESENT_SQL, params_now).fetchall()[0]
    with billing_audit.audit_view(con, selection_now, numbers=False) as view:
        flagged, groups = billing_audit.above_rate_findings(
            view, ABOVE_RATE_MARGIN, by_month=False, limit=_EXAMPLES, most_expensive=True)
        if any(present):
            mismatches, found, _ = billing_audit.mismatch_findings(
                view, limit=_EXAMPLES, order=billing_audit.BY_COST)
            audit = _audit(found)
            audit_examples = mismatches.rename(columns={"from_country": "country"})[
                ["sid", "created_at", "from_number", "country", "encoding",
                 "computed_encoding", "parts", "computed_parts", "cost_cents", "body_text"]]
    above_rate = _above_rate(groups)
    examples = flagged[["sid", "created_at", "from_number", "country", "parts",
                        "cost_cents", "body_text"]].reset_index(drop=True)

    excluded = _excluded(_sql(con, EXCLUDED_SQL, params_now, tz))
    total = dec(total_now["cost_cents"].iloc[0])
    checks = [("by_month", dsum(by_month["cost_cents"]),
               total + dsum(excluded["cost_cents"]))]
    for name, df in (*breakdowns.items(), ("rates", rates)):
        checks.append((name, dsum(df["cost_cents"]), total))
    reconciliation = pd.DataFrame({
        "table": [c[0] for c in checks],
        "sum_cents": [c[1] for c in checks],
        "expected_cents": [c[2] for c in checks],
        "ok": [c[1] == c[2] for c in checks],
    })

    return CostReport(
        period=period, previous=previous, tz=tz, currency=label,
        data_first=None if first is None else first.astimezone(zone),
        data_last=None if last is None else last.astimezone(zone),
        headline=headline, by_month=by_month, by_country=breakdowns["by_country"],
        by_operator=breakdowns["by_operator"], by_traffic_type=breakdowns["by_traffic_type"],
        by_payment_type=breakdowns["by_payment_type"],
        by_recipient=breakdowns["by_recipient"], top_senders=senders,
        rates=rates, above_rate=above_rate, above_rate_examples=examples,
        audit=audit, audit_examples=audit_examples, excluded=excluded,
        reconciliation=reconciliation, conversion=_manifest(source),
        source=_source_label(source), top=top, unpriced=unpriced,
    )


def _headline(now: pd.DataFrame, prev: pd.DataFrame, currency: str | None,
              priced_now: tuple[Any, ...], priced_prev: tuple[Any, ...]) -> pd.DataFrame:
    def stats(df: pd.DataFrame, priced: tuple[Any, ...]) -> dict[str, Any]:
        messages, parts = int(df["messages"].iloc[0]), int(df["parts"].iloc[0])
        cents = dec(df["cost_cents"].iloc[0])
        priced_messages, part_cents, priced_parts = priced
        per_message = ratio(cents, priced_messages)
        per_part = ratio(dec(part_cents), priced_parts or 0)
        return {
            "messages": messages,
            "parts": parts,
            "cost": cents.scaleb(-2),
            "cost_per_message": None if per_message is None else per_message.scaleb(-2),
            "cost_per_part": None if per_part is None else per_part.scaleb(-2),
        }

    a, b = stats(now, priced_now), stats(prev, priced_prev)
    money = currency or _NO_CURRENCY
    units = {"messages": "messages", "parts": "segments", "cost": money,
             "cost_per_message": f"{money} per message", "cost_per_part": f"{money} per part"}
    rows = []
    for metric, unit in units.items():
        x, y = a[metric], b[metric]
        change = None if x is None or y is None else x - y
        rows.append({"metric": metric, "unit": unit, "current": x, "previous": y,
                     "change": change, "change_pct": _pct_change(x, y)})
    return pd.DataFrame(rows, dtype=object)


def _compare(now: pd.DataFrame, prev: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Cost of each value in the period, with the previous period's beside it."""
    before: dict[tuple[Any, ...], Decimal] = {}
    for row in _rows(prev):
        before[tuple(_key(getattr(row, k)) for k in keys)] = dec(row.cost_cents)
    rows = []
    seen = set()
    for row in _rows(now):
        k = tuple(_key(getattr(row, c)) for c in keys)
        seen.add(k)
        cents = dec(row.cost_cents)
        was = before.get(k, Decimal(0))
        rows.append({**dict(zip(keys, k, strict=True)), "messages": int(row.messages),
                     "parts": int(row.parts), "cost_cents": cents, "cost": cents.scaleb(-2),
                     "share": float(row.share) if not is_na(row.share) else None,
                     "previous_cost_cents": was, "change_cents": cents - was})
    for k, was in before.items():
        if k not in seen:
            rows.append({**dict(zip(keys, k, strict=True)), "messages": 0, "parts": 0,
                         "cost_cents": Decimal(0), "cost": Decimal(0), "share": 0.0,
                         "previous_cost_cents": was, "change_cents": -was})
    types: dict[str, pa.DataType] = {k: pa.string() for k in keys}
    types.update({"messages": pa.int64(), "parts": pa.int64(), "cost_cents": MONEY_TYPE,
                  "cost": pa.decimal128(38, 8), "share": pa.float64(),
                  "previous_cost_cents": MONEY_TYPE, "change_cents": MONEY_TYPE})
    df = _arrow_frame([{**r, **{k: None if r[k] is None else str(r[k]) for k in keys}}
                       for r in rows], types)
    df.attrs.update(now.attrs)
    return df


def _rates(now: tuple[pd.DataFrame, billing_audit.UsualRates],
           prev: tuple[pd.DataFrame, billing_audit.UsualRates]) -> pd.DataFrame:
    """The rates table: per country of the period, its sums and usual rate, beside the
    previous period's usual rate. Each argument is (COUNTRY_RATES_SQL's rows, the usual
    rate by (None, country))."""
    a = {_key(r.country): r for r in _rows(now[0])}
    b = {_key(r.country) for r in _rows(prev[0])}
    usual = {k[1]: v for k, v in now[1].items()}
    usual_prev = {k[1]: v for k, v in prev[1].items()}
    rows = []
    for k in sorted(set(a) | b, key=lambda k: (-(dec(a[k].cost_cents) if k in a else 0),
                                               k is None, k or "")):
        c = a.get(k)
        rate = ratio(usual[k], 1) if k in usual else None
        was = ratio(usual_prev[k], 1) if k in usual_prev else None
        rated = None
        if c is not None and not is_na(c.rated_cost_cents) and not is_na(c.rated_parts):
            rated = ratio(Decimal(c.rated_cost_cents), int(c.rated_parts))
        rows.append({
            "country": k,
            "messages": int(c.messages) if c else 0,
            "parts": int(c.parts) if c else 0,
            "cost_cents": dec(c.cost_cents) if c else Decimal(0),
            "usual_rate_cents": rate,
            "average_rate_cents": rated,
            "previous_usual_rate_cents": was,
            "usual_rate_change_cents": None if rate is None or was is None else rate - was,
        })
    types: dict[str, pa.DataType] = {
        "country": pa.string(), "messages": pa.int64(), "parts": pa.int64(),
        "cost_cents": MONEY_TYPE, "usual_rate_cents": RATIO_TYPE,
        "average_rate_cents": RATIO_TYPE, "previous_usual_rate_cents": RATIO_TYPE,
        "usual_rate_change_cents": RATIO_TYPE}
    return _arrow_frame(rows, types)


def _above_rate(groups: list[billing_audit.AboveRateGroup]) -> pd.DataFrame:
    """Above-rate messages by country, with the cost above the usual rate, exactly."""
    rows = [{"country": g.country, "usual_rate_cents": ratio(g.usual, 1),
             "messages": g.messages, "parts": g.parts, "cost_cents": g.cost_cents,
             "excess_cents": ratio(g.excess, 1)}
            for g in sorted(groups, key=lambda g: -g.excess)]
    types: dict[str, pa.DataType] = {
        "country": pa.string(), "usual_rate_cents": RATIO_TYPE, "messages": pa.int64(),
        "parts": pa.int64(), "cost_cents": MONEY_TYPE, "excess_cents": RATIO_TYPE}
    return _arrow_frame(rows, types)


def _audit(found: dict[str, billing_audit.Found]) -> pd.DataFrame:
    """The billed-vs-computed findings of the period by kind (the audit's totals)."""
    kinds = {"parts billed above those needed": "parts_over_billed",
             "parts billed below those needed": "parts_under_billed",
             "encoding differs from the one needed": "encoding_mismatch"}
    rows = [{"finding": kind, "messages": found[check].messages,
             "cost_cents": found[check].cost,
             "excess_cents": ratio(found[check].stake or 0, 1)}
            for kind, check in kinds.items()]
    return _arrow_frame(rows, {"finding": pa.string(), "messages": pa.int64(),
                               "cost_cents": MONEY_TYPE, "excess_cents": RATIO_TYPE})


def _excluded(df: pd.DataFrame) -> pd.DataFrame:
    found = {r.excluded: (int(r.messages), dec(r.cost_cents)) for r in _rows(df)}
    rows = [{"excluded": k, "messages": found.get(k, (0, Decimal(0)))[0],
             "cost_cents": found.get(k, (0, Decimal(0)))[1]}
            for k in ("before the period", "after the period", "no created_at")]
    return _arrow_frame(rows, {"excluded": pa.string(), "messages": pa.int64(),
                               "cost_cents": MONEY_TYPE})



# ---------------------------------------------------------------------------------------
# The page: sections of plain data, rendered by smsanalytics.render (rounding happens there)
# ---------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return _UNKNOWN if is_na(value) or value == "" else str(value)


def _currency_label(report: CostReport) -> str:
    return report.currency or _NO_CURRENCY


def _page(report: CostReport, place: str | Path | None = None) -> render.Page:
    """The whole report as sections; `place` is where the page will be written, if known
    (paths on the page are then relative to it)."""
    cur = _currency_label(report)
    p = report.period
    first = report.data_first.date().isoformat() if report.data_first else "–"
    last = report.data_last.date().isoformat() if report.data_last else "–"
    subtitle = [("Period ", False), (_span(p), True)]
    if p.partial:
        subtitle.append((" (partial month: the data holds no full month)", False))
    subtitle += [(", compared with ", False), (report.previous.label, True),
                 (" · time zone ", False), (report.tz, True), (" · amounts in ", False),
                 (cur, True), (f" · data from {first} to {last}", False)]
    if report.source:
        subtitle += [(" · source ", False), (_shown_source(report.source, place), True)]
    where = render.Section("Where the cost came from", [
        render.Section(title, [_breakdown_table(report, df, headers, keys, limit)], 3)
        for title, df, headers, keys, limit in (
            ("By sender country", report.by_country, ["Country"], ["country"], report.top),
            ("By network operator", report.by_operator, ["Network", "Operator"],
             ["network", "operator"], report.top),
            ("By traffic type", report.by_traffic_type, ["Traffic"], ["traffic_type"], None),
            ("By payment type", report.by_payment_type, ["Payment"], ["payment_type"], None),
            ("By recipient number (your numbers)", report.by_recipient, ["Recipient"],
             ["to_number"], report.top))])
    reconciliation = render.Section("Reconciliation", [
        render.Paragraph("Every table above is summed again from its unrounded rows and "
                         "compared with the headline total, exactly."),
        _reconciliation_table(report),
        render.Section("Rows outside the period", [_excluded_table(report)], 3)])
    conv = _conversion_table(report, place)
    if conv is not None:
        reconciliation.blocks.append(
            render.Section("Last conversion into the dataset", [conv], 3))
    sections = [
        render.Section("", [_headline_cards(report),
                            render.Paragraph(_summary_sentence(report))], 0),
        render.Section("Cost by month", [_month_chart(report), _month_table(report)]),
        where,
        render.Section(f"Top {report.top} senders by cost", [_senders_table(report)]),
        render.Section("Rates: cost per part by country", [_rates_table(report)]),
        render.Section("Billing audit", _audit_sections(report)),
        reconciliation,
    ]
    footer = (f"Amounts are summed exactly from cost_cents and shown in {cur}, rounded "
              f"half-even: totals to {amounts.MONEY_DECIMALS} decimals, costs per message "
              f"and per part to {amounts.RATE_DECIMALS}; the CSV export holds the unrounded "
              "values. Made by smsanalytics.")
    return render.Page(f"Inbound SMS cost report: {p.label}", subtitle, sections, footer)


def _shown_headline(df: pd.DataFrame) -> pd.DataFrame:
    """The headline for the eye: each row's amounts by its metric's kind."""
    out = df.astype(object).copy()
    metrics = df["metric"] if "metric" in df.columns else df.index
    for i, metric in enumerate(metrics):
        kind: render.Kind = ("count" if metric in ("messages", "parts") else
                             "money" if metric == "cost" else "rate")
        for column in ("current", "previous", "change", "change_pct"):
            if column not in df.columns:
                continue
            v = df[column].iloc[i]
            if column == "change_pct":
                text = amounts.pct(v, signed=True)
            else:
                v = v if kind == "count" or is_na(v) else Decimal(v) * 100
                text = render.format_value(v, kind, signed=column == "change")
            out.iloc[i, list(out.columns).index(column)] = text
    return out


def _shown_source(source: str, place: str | Path | None) -> str:
    # The label joins several paths with ", " (a path may hold ", " itself).
    names = [source] if Path(source).exists() else source.split(", ")
    return ", ".join(render.shown_path(n, place) for n in names)


def _span(p: Period) -> str:
    return f"{p.start.date().isoformat()} to {(p.end - timedelta(microseconds=1)).date()}"


def _headline_cards(report: CostReport) -> render.Cards:
    h = report.headline.set_index("metric")
    cur = _currency_label(report)
    specs: list[tuple[str, str, render.Kind, str, bool]] = [
        # metric, title, kind, unit, main; money in major units -> cents to format
        ("cost", "Total cost", "money", cur, True),
        ("messages", "Messages", "count", "", False),
        ("parts", "Parts", "count", "", False),
        ("cost_per_message", "Cost per message", "rate", cur, False),
        ("cost_per_part", "Cost per part", "rate", cur, False),
    ]
    cards = []
    for metric, title, kind, unit, main in specs:
        scale = 100 if kind != "count" else 1
        now, was = (None if is_na(_cell(h, metric, k)) else Decimal(_cell(h, metric, k)) * scale
                    for k in ("current", "previous"))
        cards.append(render.Card(title, kind, unit, now, was, _cell(h, metric, "change_pct"),
                                 report.previous.label, main=main,
                                 spending=metric.startswith("cost")))
    return render.Cards(cards, report.period.label, report.previous.label)


def _summary_sentence(report: CostReport) -> str:
    h = report.headline.set_index("metric")
    cur, prev = _currency_label(report), report.previous.label
    cost, was = _cell(h, "cost", "current"), _cell(h, "cost", "previous")
    text = (f"In {report.period.label}, {amounts.count(h.loc['messages', 'current'])} inbound "
            f"messages ({amounts.count(h.loc['parts', 'current'])} parts) cost "
            f"{amounts.money(cost * 100)} {cur}")
    pct = _cell(h, "cost", "change_pct")
    if not is_na(pct):
        direction = "more" if pct > 0 else "less"
        text += (f", {amounts.money(abs(cost - was) * 100)} {cur} {direction} than in {prev} "
                 f"({amounts.pct(pct, signed=True)} %)" if pct != 0
                 else f", the same as in {prev}")
    else:
        text += f"; {prev} had no messages to compare with"
    top = report.by_country.head(1)
    if len(top) and dec(top["cost_cents"].iloc[0]) > 0:
        text += (f". The largest share came from {_text(top['country'].iloc[0])} "
                 f"({amounts.share(top['share'].iloc[0])} %)")
    if report.unpriced:
        text += (f". {amounts.count(report.unpriced)} of the period's messages have no cost: "
                 "they add nothing to the totals and are left out of the costs per message "
                 "and per part")
    return text + "."


def _audit_sections(report: CostReport) -> list[render.Block | render.Section]:
    above: list[render.Block | render.Section] = [render.Paragraph(
        "Messages whose cost per part is more than "
        f"{amounts.pct(ABOVE_RATE_MARGIN * 100)} % above the median cost of a part from the "
        "same country in the period.", "note")]
    if report.above_rate.empty:
        above.append(render.Paragraph("✓ None.", "ok"))
    else:
        above += [_above_rate_table(report),
                  _examples_table(report, report.above_rate_examples, False)]
    billed: list[render.Block | render.Section] = []
    if report.audit is None:
        billed.append(render.Paragraph(
            "Not available: computed_parts and computed_encoding are empty for this period "
            "(the data was not enriched).", "note"))
    elif int(report.audit["messages"].sum()) == 0:
        billed.append(render.Paragraph("✓ Every message was billed the parts and encoding "
                                       "its text needs.", "ok"))
    else:
        billed.append(_audit_table(report))
        if report.audit_examples is not None:
            billed.append(_examples_table(report, report.audit_examples, True))
    return [render.Section("Messages above their country's usual rate", above, 3),
            render.Section("Billed parts and encoding vs the message text", billed, 3)]


C = render.Column


def _breakdown_table(report: CostReport, df: pd.DataFrame, key_headers: list[str],
                     keys: list[str], limit: int | None = None) -> render.Table:
    cur = _currency_label(report)
    columns = [*(C(h) for h in key_headers), C("Messages", "count"), C("Parts", "count"),
               C("Cost", "money", cur), C("Share", "share", "%"),
               C(report.previous.label, "money", cur), C("Change", "money", cur, signed=True)]
    rows, bars = [], []
    shown = df if limit is None else df.head(limit)
    for r in _rows(shown):
        rows.append([*(_text(getattr(r, k)) for k in keys), r.messages, r.parts,
                     r.cost_cents, r.share, r.previous_cost_cents, r.change_cents])
        bars.append(None if is_na(r.share) else float(r.share))
    n = len(keys)
    table = render.Table(columns, rows, bars=bars)
    rest = df.iloc[len(shown):]
    if len(rest):
        table.rows.append([f"{len(rest):,} more", *[""] * (n - 1), rest["messages"].sum(),
                           rest["parts"].sum(), dsum(rest["cost_cents"]),
                           rest["share"].sum(), dsum(rest["previous_cost_cents"]),
                           dsum(rest["change_cents"])])
        table.bars.append(None)
        table.classes = [""] * len(shown) + ["muted"]
    table.footer = ["Total", *[None] * (n - 1), df["messages"].sum(), df["parts"].sum(),
                    dsum(df["cost_cents"]), 1.0 if len(df) else None,
                    dsum(df["previous_cost_cents"]), dsum(df["change_cents"])]
    return table


def _month_table(report: CostReport) -> render.Table:
    cur = _currency_label(report)
    rows, classes = [], []
    for r in _rows(report.by_month):
        month = "no date" if is_na(r.month) else r.month.strftime("%Y-%m")
        note = {"period": " (period)", "previous": " (comparison)"}.get(r.role, "")
        rows.append([month + note, r.messages, r.parts, r.cost_cents,
                     ratio(dec(r.cost_cents), int(r.parts))])
        classes.append("hl" if r.role == "period" else "hl2" if r.role == "previous" else "")
    df = report.by_month
    return render.Table(
        [C("Month"), C("Messages", "count"), C("Parts", "count"), C("Cost", "money", cur),
         C("Per part", "rate", f"{cur} per part")], rows, classes,
        footer=["All the data", df["messages"].sum(), df["parts"].sum(),
                dsum(df["cost_cents"]), None])


def _senders_table(report: CostReport) -> render.Table:
    cur = _currency_label(report)
    df = report.top_senders
    total = report.total_cents()
    rows = []
    for i, r in enumerate(_rows(df), 1):
        share = ratio(dec(r.cost_cents), total)
        rows.append([i, _text(r.from_number), _text(r.country), r.messages, r.parts,
                     r.cost_cents, None if share is None else share * 100, r.active_days,
                     r.last_seen])
    top_cost = dsum(df["cost_cents"])
    share = ratio(top_cost, total)
    note = (f"These {len(df):,} senders cost {amounts.money(top_cost)} {cur}, "
            f"{amounts.pct(None if share is None else share * 100)} % of the period's total.")
    return render.Table(
        [C("#", "count"), C("Sender"), C("Country"), C("Messages", "count"),
         C("Parts", "count"), C("Cost", "money", cur), C("Share", "pct", "%"),
         C("Active days", "count"), C("Last message", "when", report.tz)], rows, note=note)


def _rates_table(report: CostReport) -> render.Table:
    unit = f"{_currency_label(report)} per part"
    rows, classes = [], []
    for r in _rows(report.rates):
        changed = not is_na(r.usual_rate_change_cents) and r.usual_rate_change_cents != 0
        rows.append([_text(r.country), r.messages, r.parts, r.usual_rate_cents,
                     r.average_rate_cents, r.previous_usual_rate_cents,
                     r.usual_rate_change_cents if changed else
                     ("no change" if not is_na(r.usual_rate_change_cents) else None)])
        classes.append("warn" if changed else "")
    return render.Table(
        [C("Country"), C("Messages", "count"), C("Parts", "count"),
         C("Usual rate", "rate", unit), C("Average", "rate", unit),
         C(f"Usual rate, {report.previous.label}", "rate", unit),
         C("Change", "rate", unit, signed=True)], rows, classes,
        note="The usual rate is the median cost of one part in the period; a changed rate "
             "is highlighted.")


def _above_rate_table(report: CostReport) -> render.Table:
    cur = _currency_label(report)
    rows = [[_text(r.country), r.usual_rate_cents, r.messages, r.parts, r.cost_cents,
             r.excess_cents] for r in _rows(report.above_rate)]
    return render.Table(
        [C("Country"), C("Usual rate", "rate", f"{cur} per part"), C("Messages", "count"),
         C("Parts", "count"), C("Cost", "money", cur),
         C("Above the usual rate", "money", cur)], rows)


def _examples_table(report: CostReport, df: pd.DataFrame, audit: bool) -> render.Table:
    rows = []
    for r in _rows(df):
        body = _text(r.body_text)
        body = body if len(body) <= 80 else body[:79] + "…"
        parts = (f"{amounts.count(r.parts)} billed / {amounts.count(r.computed_parts)} needed"
                 if audit else r.parts)
        extra = [f"{_text(r.encoding)} / {_text(r.computed_encoding)}"] if audit else []
        rows.append([r.created_at, _text(r.from_number), _text(r.country), *extra, parts,
                     r.cost_cents, body])
    return render.Table(
        [C("Created", "when", report.tz), C("Sender"), C("Country"),
         *([C("Encoding billed / needed")] if audit else []),
         C("Parts", "text" if audit else "count"),
         C("Cost", "money", _currency_label(report)), C("Message", "message")], rows,
        note=f"The {len(rows):,} most expensive of these messages, most expensive first; "
             "the table above counts and sums all of them.")


def _audit_table(report: CostReport) -> render.Table:
    cur = _currency_label(report)
    assert report.audit is not None
    rows = [[str(r.finding), r.messages, r.cost_cents, r.excess_cents]
            for r in _rows(report.audit)]
    return render.Table([C("Finding"), C("Messages", "count"), C("Cost", "money", cur),
                         C("Cost of extra parts", "money", cur)], rows)


_CHECK_NAMES = {
    "by_month": "Months, all the data = period total + rows outside the period",
    "by_country": "Sender countries = period total",
    "by_operator": "Network operators = period total",
    "by_traffic_type": "Traffic types = period total",
    "by_payment_type": "Payment types = period total",
    "by_recipient": "Recipient numbers = period total",
    "rates": "Rates by country = period total",
}


def _reconciliation_table(report: CostReport) -> render.Table:
    unit = f"{_currency_label(report)}, exact"
    rows, classes = [], []
    for r in _rows(report.reconciliation):
        rows.append([_CHECK_NAMES.get(r.table, str(r.table)), r.sum_cents, r.expected_cents,
                     "✓ equal" if r.ok else "✗ differs"])
        classes.append("" if r.ok else "bad")
    return render.Table([C("Table"), C("Sum of rows", "exact", unit),
                         C("Expected", "exact", unit), C("Check")], rows, classes)


def _excluded_table(report: CostReport) -> render.Table:
    rows = [[str(r.excluded), r.messages, r.cost_cents]
            for r in _rows(report.excluded)]
    return render.Table([C("Rows"), C("Messages", "count"),
                         C("Cost", "money", _currency_label(report))], rows)


# A reject reason names the field whose value was wrong (the conversion cuts reasons at
# their first colon: "created_at: '2025-13-01' is not ..." counts as "created_at").
_REJECTED_FIELDS = {
    "created_at": "created time missing or invalid",
    "updated_at": "updated time invalid",
    "sent_at": "sent time invalid",
    "delivered_at": "delivery time invalid",
    "event_at": "event time invalid",
    "event_try": "delivery attempt number invalid",
    "cost_cents": "cost missing or not an amount",
    "parts": "number of parts not a whole number",
    "status_history": "a time in the status history invalid",
}


def _reject_reason(reason: str) -> str:
    """A reject reason in words: a bare field name says what was wrong with it."""
    if reason in _REJECTED_FIELDS:
        return _REJECTED_FIELDS[reason]
    if re.fullmatch(r"[a-z]+(_[a-z]+)+", reason):  # another field, named as stored
        return f"{reason.replace('_', ' ')} invalid"
    return reason


def _conversion_table(report: CostReport, place: str | Path | None) -> render.Table | None:
    c = report.conversion
    if not c:
        return None
    labels = [("records", "records read"), ("written", "written"),
              ("duplicates", "duplicates (an older copy of a message)"),
              ("rejected", "rejected (see the rejects file)")]
    rows: list[list[Any]] = [[text, c.get(k)] for k, text in labels if k in c]
    classes = [""] * len(rows)
    for reason, n in sorted((c.get("reject_reasons") or {}).items(), key=lambda kv: -kv[1]):
        rows.append([f"rejected: {_reject_reason(str(reason))}", n])
        classes.append("muted")
    table = render.Table([C("Records"), C("Count", "count")], rows, classes)
    keys = ("records", "written", "duplicates", "rejected")
    if all(isinstance(c.get(k), int) for k in keys):
        ok = c["records"] == c["written"] + c["duplicates"] + c["rejected"]
        table.note = ("records = written + duplicates + rejected: "
                      + ("✓ every record is accounted for" if ok else "✗ does not add up"))
    if c.get("rejects_path"):
        where = f"Rejected records are in {render.shown_path(c['rejects_path'], place)}."
        table.note = f"{table.note}. {where}" if table.note else where
    return table


# ---------------------------------------------------------------------------------------
# Charts: matplotlib Figure (no pyplot, so a notebook's backend is left alone) -> SVG
# ---------------------------------------------------------------------------------------

_INK, _ACCENT, _ACCENT2, _MUTED = "#1f2933", "#1d4e89", "#7aa6d6", "#cfd8e3"


def _month_chart(report: CostReport) -> render.Chart:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    legend = [(_ACCENT, "period"), (_ACCENT2, "comparison"), (_MUTED, "other months")]
    df = report.by_month[~report.by_month["month"].isna()]
    if df.empty:
        return render.Chart("", legend, f"months in {report.tz}")
    # Fewer labels than months when there are many: at most 12 under a phone-width chart.
    step = -(-len(df) // 12)
    labels = [(m.strftime("%b\n%Y") if i == 0 or m.month == 1 else m.strftime("%b"))
              if i % step == 0 else "" for i, m in enumerate(df["month"])]
    values = [float(dec(v).scaleb(-2)) for v in df["cost_cents"]]  # drawing only
    colors = [{"period": _ACCENT, "previous": _ACCENT2}.get(r, _MUTED) for r in df["role"]]
    # Sized for a phone: 4.6 in (331 pt) wide with 10 pt text, so text stays >= 10 CSS px
    # from a 330 px wide screen up (the page shows it at most 600 px wide: 18 px text).
    with matplotlib.rc_context({"svg.hashsalt": "smsanalytics-report", "font.size": 10,
                                "axes.edgecolor": "#9aa5b1", "text.color": _INK,
                                "xtick.color": "#52606d", "ytick.color": "#52606d"}):
        fig = Figure(figsize=(4.6, 2.4), layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(values)))
        bars = ax.bar(x, values, color=colors, width=0.72)
        if len(values) <= 8:  # more labels than that would run into each other
            ax.bar_label(bars, labels=[amounts.money(dec(v)) for v in df["cost_cents"]],
                         padding=2, fontsize=9, color="#52606d")
        ax.set_xticks(x, labels)
        for t in ax.get_xticklabels():
            t.set_parse_math(False)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.2f}"))
        ax.set_ylabel(for_terminal(_currency_label(report)), parse_math=False)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.margins(x=0.01, y=0.15)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                 "Format": None, "Type": None})
    return render.Chart(_inline_svg(buf.getvalue(), f"Cost by month, {report.tz}"), legend,
                        f"months in {report.tz}")


def _inline_svg(svg: str, title: str) -> str:
    """Strip the XML prologue and fixed size so the SVG scales with the page."""
    svg = svg[svg.index("<svg"):]
    # Matplotlib writes each text as a comment beside its glyph paths (escaped, so "--"
    # cannot occur inside): drop them, data stays out of the markup altogether.
    svg = re.sub(r"<!--.*?-->\n?", "", svg, flags=re.S)
    head, rest = svg.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    head += f' role="img" aria-label="{for_html(title)}" class="chart"'
    return head + ">" + rest


