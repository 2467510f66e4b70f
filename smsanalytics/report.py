"""The monthly cost report: what inbound SMS cost, where it came from, and what changed.

This module owns the report. :func:`cost_report` asks the questions of
:mod:`smsanalytics.queries` for one period and the period before it, adds what those
questions do not cover (the excluded rows and per-part rates: a few lines of SQL here; the
billing audit comes from :mod:`smsanalytics.audit`), and returns a :class:`CostReport`:
pandas DataFrames as attributes, and ``to_html()`` (one self-contained page, printable on
A4), ``to_csv(dir)`` and ``to_markdown()``.

Decisions:

* Money is summed exactly, in decimal, from ``cost_cents``; major units are
  ``cost_cents / 100``. Display rounds half-even (2 decimals for totals, 4 to 6 for
  per-message and per-part costs); the DataFrames and the CSV files keep exact values.
  Ratios (cost per message, per part) are exact to 10 decimals of a cent.
* The currency is a label the user gives; without one, amounts say "currency not set".
* The period is ``[start, end)`` in the time zone `tz`, which also decides the month a
  message belongs to. By default it is the last full calendar month of the data: the month
  of the latest message if that message is on the month's last day, else the month before
  (or the latest month, marked partial, when the data holds no full month). The comparison
  period is the one before, of the same number of months (or the same length).
* Everything that came from the data is escaped in HTML (:func:`~smsanalytics.escape.for_html`)
  and neutralised in CSV (:func:`~smsanalytics.escape.for_csv_cell`): an E.164 number such
  as ``+33612345678`` is written ``'+33612345678`` so a spreadsheet shows it as text.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from . import arguments, dataset, queries
from . import audit as billing_audit
from ._analysis import (
    MONEY_TYPE,
    RATIO_TYPE,
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
from .escape import for_html, for_markdown, for_terminal, write_csv_tables
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


_zone = arguments.time_zone


def _month_start(year: int, month: int, tz: str) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=_zone(tz))


def _add_months(d: datetime, n: int, tz: str) -> datetime:
    return _month_start(d.year, d.month + n, tz)


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
    last = (end - timedelta(days=1)).date() if midnight else end
    return f"{start.date().isoformat()} to {last.isoformat()}"


def default_period(first: datetime, last: datetime, tz: str) -> Period:
    """Return the last full calendar month between two instants, in `tz`.

    Parameters
    ----------
    first, last : datetime
        The earliest and latest message (aware).
    tz : str
        Time zone of the calendar.

    Returns
    -------
    Period
        The month of `last` if `last` falls on that month's last day, else the month
        before; if that month starts before the month of `first` (the data holds no full
        month), the month of `last`, marked ``partial``.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> default_period(datetime(2025, 1, 3, tzinfo=UTC), datetime(2025, 6, 29, tzinfo=UTC),
    ...                "UTC").label
    'May 2025'
    """
    lo, hi = first.astimezone(_zone(tz)), last.astimezone(_zone(tz))
    last_month = _month_start(hi.year, hi.month, tz)
    complete = (hi + timedelta(days=1)).month != hi.month
    start = last_month if complete else _add_months(last_month, -1, tz)
    partial = False
    if start < _month_start(lo.year, lo.month, tz):
        start, partial = last_month, not complete
    end = _add_months(start, 1, tz)
    return Period(start, end, _label(start, end), partial)


def _previous(period: Period, tz: str) -> Period:
    start, end = period.start, period.end
    try:
        if _is_month_start(start) and _is_month_start(end):
            prev_start = _add_months(start, -_months_between(start, end), tz)
        else:
            # Same wall-clock length, so a period of whole days stays whole days across DST.
            length = end.replace(tzinfo=None) - start.replace(tzinfo=None)
            prev_start = (start.replace(tzinfo=None) - length).replace(tzinfo=_zone(tz))
    except (OverflowError, ValueError):  # before year 1
        prev_start = None
    if prev_start is None or prev_start.year < arguments.MIN_YEAR:
        raise ArgumentError("start", start.isoformat(), "the period it is compared with (as "
                            "long, just before it) would begin before the year "
                            f"{arguments.MIN_YEAR}")
    return Period(prev_start, start, _label(prev_start, start))


def _choose_period(start: datetime | None, end: datetime | None, tz: str,
                   bounds: tuple[datetime | None, datetime | None], source: str) -> Period:
    """The period of `start` and `end` (checked instants, or None: taken from the data)."""
    zone = _zone(tz)
    lo = None if start is None else start.astimezone(zone)
    hi = None if end is None else end.astimezone(zone)
    first, last = bounds
    undated = DatasetError(source, "no dated messages: give start and end to report on a "
                                   "period")
    if lo is None and hi is None:
        if first is None or last is None:
            raise undated
        return default_period(first, last, tz)
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
        name = "start" if start is not None else "end"
        raise ArgumentError(name, (start or end).astimezone(zone).isoformat(),
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

# Distinct (country, cost, parts) with their counts: few rows (one per price point), from
# which per-part rates, their median and the above-rate messages are computed exactly.
RATE_POINTS_SQL = """
SELECT from_country AS country, cost_cents, parts, count(*) AS messages
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

    # -- values -----------------------------------------------------------------------

    def total_cents(self, which: str = "current") -> Decimal:
        """Return the exact total cost [cents] of the period (or ``"previous"``)."""
        row = self.headline.set_index("metric").loc["cost"]
        return Decimal(row[which]) * 100

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
        return _render_markdown(self)

    def to_html(self) -> str:
        """Return the report as one self-contained HTML page (inline CSS and SVG charts)."""
        title = f"Inbound SMS cost report: {self.period.label}"
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"{PAGE_MARKER}\n"
            f"<title>{for_html(title)}</title>\n"
            f"<style>{_PAGE_CSS}{_CSS}</style>\n</head>\n<body>\n"
            f"{_render_body(self)}\n</body>\n</html>\n"
        )

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to `path` (UTF-8), atomically, and return the path.

        An existing `path` is replaced only if it is a report page written earlier
        (:func:`is_report_page`); a link, a device, a FIFO or another file is refused with
        :class:`~smsanalytics.errors.OutputPathError`. The page is written beside `path`
        and renamed over it, so an error or Ctrl-C leaves the previous page whole.
        """
        page = self.to_html()
        return write_atomically(path, lambda fh: fh.write(page), ours=is_report_page)

    def _repr_html_(self) -> str:
        return f"<style>{_CSS}</style>{_render_body(self)}"

    def __repr__(self) -> str:
        return (
            f"<CostReport {self.period.label} ({self.tz}): "
            f"{self.total_cents()} cents of {self.currency or 'currency not set'}>"
        )

    def __str__(self) -> str:
        return self.to_markdown()


def cost_report(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
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
    >>> import smsanalytics
    >>> _ = smsanalytics.convert(["sample_data"], "/tmp/doc_report", overwrite=True, quiet=True)
    >>> r = cost_report("/tmp/doc_report", tz="Europe/Paris", currency="EUR")
    >>> r.period.label, r.reconciled
    ('May 2025', True)
    """
    tz = arguments.time_zone_name(tz)
    lo, hi = arguments.period_bounds(start, end, _zone(tz))
    top = arguments.positive_int(top, "top")
    currency = arguments.currency_label(currency)
    with opened(source, currency=currency) as con:
        return _build(con, source, start=lo, end=hi, tz=tz, currency=currency, top=top)


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


def _build(con: duckdb.DuckDBPyConnection, source: Any, *, start: datetime | None,
           end: datetime | None,
           tz: str, currency: str | None, top: int) -> CostReport:
    # fetchall: DuckDB 2 keeps a connection busy until its result is read to the end.
    first, last = con.execute(BOUNDS_SQL).fetchall()[0]
    period = _choose_period(start, end, tz, (first, last), _source_label(source) or "messages")
    previous = _previous(period, tz)
    cur = {"start": period.start, "end": period.end, "tz": tz}
    prev = {"start": previous.start, "end": previous.end, "tz": tz}

    total_now = queries.costs(con, **cur)
    label = currency if currency is not None else total_now.attrs.get("currency")
    total_prev = queries.costs(con, **prev)
    params_now = {"start": period.start.astimezone(UTC), "end": period.end.astimezone(UTC)}
    params_prev = {"start": previous.start.astimezone(UTC), "end": previous.end.astimezone(UTC)}
    priced_now = con.execute(PRICED_SQL, params_now).fetchall()[0]
    headline = _headline(total_now, total_prev, label, priced_now,
                         con.execute(PRICED_SQL, params_prev).fetchall()[0])
    unpriced = int(total_now["messages"].iloc[0]) - int(priced_now[0])

    by_month = queries.costs(con, by="month", tz=tz)
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
        breakdowns[name] = _compare(queries.costs(con, by=by, **cur),
                                    queries.costs(con, by=by, **prev), by)

    senders = queries.top_senders(con, by="cost", n=top, **cur)

    points_now = _sql(con, RATE_POINTS_SQL, params_now, tz)
    points_prev = _sql(con, RATE_POINTS_SQL, params_prev, tz)
    rates, usual = _rates(points_now, points_prev)
    # The usual rate of the report is the country's over the whole period (by_month=False),
    # the one the rates table shows.
    flagged = billing_audit.above_rate(con, start=period.start, end=period.end, tz=tz,
                                       rate_margin=ABOVE_RATE_MARGIN, by_month=False)
    above_rate = _above_rate(flagged, usual)
    examples = _examples(flagged.rename(columns={"from_country": "country"}),
                         ["sid", "created_at", "from_number", "country", "parts",
                          "cost_cents", "body_text"])

    audit = audit_examples = None
    present = con.execute(AUDIT_PRESENT_SQL, params_now).fetchall()[0]
    if any(present):
        # Rows of the period whose computed columns are null are computed on the fly.
        mismatches = billing_audit.billing_mismatches(con, start=period.start,
                                                      end=period.end, tz=tz)
        audit = _audit(mismatches)
        audit_examples = _examples(
            mismatches.rename(columns={"from_country": "country"}),
            ["sid", "created_at", "from_number", "country", "encoding", "computed_encoding",
             "parts", "computed_parts", "cost_cents", "body_text"])

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
        data_first=None if first is None else first.astimezone(_zone(tz)),
        data_last=None if last is None else last.astimezone(_zone(tz)),
        headline=headline, by_month=by_month, **breakdowns, top_senders=senders,
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
    for row in prev.itertuples(index=False):
        before[tuple(_key(getattr(row, k)) for k in keys)] = dec(row.cost_cents)
    rows = []
    seen = set()
    for row in now.itertuples(index=False):
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
    types = {k: pa.string() for k in keys}
    types.update({"messages": pa.int64(), "parts": pa.int64(), "cost_cents": MONEY_TYPE,
                  "cost": pa.decimal128(38, 8), "share": pa.float64(),
                  "previous_cost_cents": MONEY_TYPE, "change_cents": MONEY_TYPE})
    df = _arrow_frame([{**r, **{k: None if r[k] is None else str(r[k]) for k in keys}}
                       for r in rows], types)
    df.attrs.update(now.attrs)
    return df


def _rates(now: pd.DataFrame, prev: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, Fraction]]:
    def per_country(df: pd.DataFrame) -> dict[Any, dict[str, Any]]:
        out: dict[Any, dict[str, Any]] = defaultdict(
            lambda: {"messages": 0, "parts": 0, "cost": Decimal(0), "rated_cost": Decimal(0),
                     "rated_parts": 0, "points": []})
        for row in df.itertuples(index=False):
            c = out[_key(row.country)]
            n, parts, cost = int(row.messages), row.parts, row.cost_cents
            c["messages"] += n
            c["parts"] += 0 if is_na(parts) else int(parts) * n
            c["cost"] += dec(cost) * n if not is_na(cost) else Decimal(0)
            if not is_na(parts) and int(parts) > 0 and not is_na(cost):
                c["rated_cost"] += Decimal(cost) * n
                c["rated_parts"] += int(parts) * n
                c["points"].append((Fraction(Decimal(cost)) / int(parts), n))
        return out

    a, b = per_country(now), per_country(prev)
    usual = {k: billing_audit.usual_rate(v["points"]) for k, v in a.items() if v["points"]}
    usual_prev = {k: billing_audit.usual_rate(v["points"]) for k, v in b.items()
                  if v["points"]}
    rows = []
    for k in sorted(set(a) | set(b), key=lambda k: (-(a[k]["cost"] if k in a else 0),
                                                    k is None, k or "")):
        c = a.get(k)
        rate = ratio(usual[k], 1) if k in usual else None
        was = ratio(usual_prev[k], 1) if k in usual_prev else None
        rows.append({
            "country": k,
            "messages": c["messages"] if c else 0,
            "parts": c["parts"] if c else 0,
            "cost_cents": c["cost"] if c else Decimal(0),
            "usual_rate_cents": rate,
            "average_rate_cents": ratio(c["rated_cost"], c["rated_parts"]) if c else None,
            "previous_usual_rate_cents": was,
            "usual_rate_change_cents": None if rate is None or was is None else rate - was,
        })
    types = {"country": pa.string(), "messages": pa.int64(), "parts": pa.int64(),
             "cost_cents": MONEY_TYPE, "usual_rate_cents": RATIO_TYPE,
             "average_rate_cents": RATIO_TYPE, "previous_usual_rate_cents": RATIO_TYPE,
             "usual_rate_change_cents": RATIO_TYPE}
    return _arrow_frame(rows, types), usual


def _above_rate(flagged: pd.DataFrame, usual: dict[Any, Fraction]) -> pd.DataFrame:
    """Above-rate messages by country, with the cost above the usual rate, exactly."""
    acc: dict[Any, dict[str, Any]] = {}
    usual = dict(usual)
    for row in flagged.itertuples(index=False):
        k = _key(row.country)
        # A country the audit filled in from the number (none was stored) has its rate there.
        usual.setdefault(k, Fraction(Decimal(row.usual_rate_cents)))
        c = acc.setdefault(k, {"messages": 0, "parts": 0, "cost": Decimal(0)})
        c["messages"] += 1
        c["parts"] += int(row.parts)
        c["cost"] += Decimal(row.cost_cents)
    excess = {k: Fraction(v["cost"]) - usual[k] * v["parts"] for k, v in acc.items()}
    rows = [{"country": k, "usual_rate_cents": ratio(usual[k], 1), "messages": v["messages"],
             "parts": v["parts"], "cost_cents": v["cost"], "excess_cents": ratio(excess[k], 1)}
            for k, v in sorted(acc.items(), key=lambda kv: -excess[kv[0]])]
    types = {"country": pa.string(), "usual_rate_cents": RATIO_TYPE, "messages": pa.int64(),
             "parts": pa.int64(), "cost_cents": MONEY_TYPE, "excess_cents": RATIO_TYPE}
    return _arrow_frame(rows, types)


def _examples(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The most expensive messages of `df`, most expensive first."""
    ordered = df.sort_values(["cost_cents", "created_at", "sid"],
                             ascending=[False, True, True], na_position="last")
    return ordered[columns].head(_EXAMPLES).reset_index(drop=True)


def _audit(mismatches: pd.DataFrame) -> pd.DataFrame:
    kinds = {"parts billed above those needed": [0, Decimal(0), Fraction(0)],
             "parts billed below those needed": [0, Decimal(0), Fraction(0)],
             "encoding differs from the one needed": [0, Decimal(0), Fraction(0)]}
    for row in mismatches.itertuples(index=False):
        cost = dec(row.cost_cents)
        if "parts_over_billed" in row.finding:
            k = kinds["parts billed above those needed"]
            k[0], k[1] = k[0] + 1, k[1] + cost
            # The cost of the parts billed beyond those the body needs.
            k[2] += Fraction(cost) * int(row.parts_difference) / int(row.parts)
        if "parts_under_billed" in row.finding:
            k = kinds["parts billed below those needed"]
            k[0], k[1] = k[0] + 1, k[1] + cost
        if "encoding_mismatch" in row.finding:
            k = kinds["encoding differs from the one needed"]
            k[0], k[1] = k[0] + 1, k[1] + cost
    rows = [{"finding": kind, "messages": v[0], "cost_cents": v[1],
             "excess_cents": ratio(v[2], 1)} for kind, v in kinds.items()]
    return _arrow_frame(rows, {"finding": pa.string(), "messages": pa.int64(),
                               "cost_cents": MONEY_TYPE, "excess_cents": RATIO_TYPE})


def _excluded(df: pd.DataFrame) -> pd.DataFrame:
    found = {r.excluded: (int(r.messages), dec(r.cost_cents)) for r in df.itertuples()}
    rows = [{"excluded": k, "messages": found.get(k, (0, Decimal(0)))[0],
             "cost_cents": found.get(k, (0, Decimal(0)))[1]}
            for k in ("before the period", "after the period", "no created_at")]
    return _arrow_frame(rows, {"excluded": pa.string(), "messages": pa.int64(),
                               "cost_cents": MONEY_TYPE})


# ---------------------------------------------------------------------------------------
# Display formatting (rounding happens only here)
# ---------------------------------------------------------------------------------------


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)


def _money(cents: Any, *, signed: bool = False) -> str:
    """Cents -> major units, 2 decimals, half-even, thousands separators."""
    if is_na(cents):
        return "–"
    v = _round(Decimal(cents).scaleb(-2), 2)
    text = f"{abs(v):,}" if signed else f"{v:,}"
    if signed:
        return ("+" if v > 0 else "−" if v < 0 else "±") + text
    return text.replace("-", "−")


def _unit_money(cents: Any, *, signed: bool = False) -> str:
    """A per-message or per-part cost: 4 to 6 decimals of major units (Callr bills to 4
    decimals of a cent)."""
    if is_na(cents):
        return "–"
    v = _round(Decimal(cents).scaleb(-2), 6)
    text = f"{abs(v):f}" if signed else f"{v:f}"
    head, _, tail = text.partition(".")
    tail = tail.rstrip("0").ljust(4, "0")
    text = f"{int(head):,}.{tail}" if head.lstrip("-") else text
    if signed:
        return ("+" if v > 0 else "−" if v < 0 else "±") + text
    return text.replace("-", "−")


def _count(n: Any, *, signed: bool = False) -> str:
    if is_na(n):
        return "–"
    n = int(n)
    if signed:
        return ("+" if n > 0 else "−" if n < 0 else "±") + f"{abs(n):,}"
    return f"{n:,}"


def _pct(value: Any, *, signed: bool = False) -> str:
    if is_na(value):
        return "–"
    v = _round(Decimal(value), 1)
    if signed:
        return ("+" if v > 0 else "−" if v < 0 else "±") + f"{abs(v)} %"
    return f"{v} %"


def _share(value: Any) -> str:
    return "–" if is_na(value) else f"{float(value) * 100:.1f} %"


def _text(value: Any) -> str:
    return _UNKNOWN if is_na(value) or value == "" else str(value)


def _when(value: Any) -> str:
    return "–" if is_na(value) else value.strftime("%Y-%m-%d %H:%M")


def _currency_label(report: CostReport) -> str:
    return report.currency or _NO_CURRENCY


# ---------------------------------------------------------------------------------------
# Table models shared by HTML and Markdown: (headers, rows, numeric columns, row classes)
# ---------------------------------------------------------------------------------------


@dataclass
class _Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    classes: list[str] = field(default_factory=list)
    bars: list[float | None] = field(default_factory=list)
    footer: list[str] | None = None
    note: str | None = None


def _breakdown_table(report: CostReport, df: pd.DataFrame, key_headers: list[str],
                     keys: list[str], limit: int | None = None) -> _Table:
    cur = _currency_label(report)
    headers = [*key_headers, "Messages", "Parts", f"Cost ({cur})", "Share",
               f"{report.previous.label} ({cur})", "Change"]
    rows, bars = [], []
    shown = df if limit is None else df.head(limit)
    for r in shown.itertuples(index=False):
        rows.append([*(_text(getattr(r, k)) for k in keys), _count(r.messages),
                     _count(r.parts), _money(r.cost_cents), _share(r.share),
                     _money(r.previous_cost_cents), _money(r.change_cents, signed=True)])
        bars.append(None if is_na(r.share) else float(r.share))
    n = len(keys)
    table = _Table(headers, rows, set(range(n, n + 6)), bars=bars)
    rest = df.iloc[len(shown):]
    if len(rest):
        table.rows.append([f"{len(rest):,} more", *[""] * (n - 1),
                           _count(rest["messages"].sum()), _count(rest["parts"].sum()),
                           _money(dsum(rest["cost_cents"])), _share(rest["share"].sum()),
                           _money(dsum(rest["previous_cost_cents"])),
                           _money(dsum(rest["change_cents"]), signed=True)])
        table.bars.append(None)
        table.classes = [""] * len(shown) + ["muted"]
    table.footer = ["Total", *[""] * (n - 1), _count(df["messages"].sum()),
                    _count(df["parts"].sum()), _money(dsum(df["cost_cents"])),
                    "100.0 %" if len(df) else "–", _money(dsum(df["previous_cost_cents"])),
                    _money(dsum(df["change_cents"]), signed=True)]
    return table


def _month_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    rows, classes = [], []
    for r in report.by_month.itertuples(index=False):
        month = "no date" if is_na(r.month) else r.month.strftime("%Y-%m")
        note = {"period": " (period)", "previous": " (comparison)"}.get(r.role, "")
        rows.append([month + note, _count(r.messages), _count(r.parts), _money(r.cost_cents),
                     _unit_money(ratio(dec(r.cost_cents), int(r.parts)))])
        classes.append("hl" if r.role == "period" else "hl2" if r.role == "previous" else "")
    df = report.by_month
    return _Table(["Month", "Messages", "Parts", f"Cost ({cur})", f"Per part ({cur})"], rows,
                  {1, 2, 3, 4}, classes,
                  footer=["All the data", _count(df["messages"].sum()),
                          _count(df["parts"].sum()), _money(dsum(df["cost_cents"])), ""])


def _senders_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    df = report.top_senders
    total = report.total_cents()
    rows = []
    for i, r in enumerate(df.itertuples(index=False), 1):
        share = ratio(dec(r.cost_cents), total)
        rows.append([str(i), _text(r.from_number), _text(r.country), _count(r.messages),
                     _count(r.parts), _money(r.cost_cents),
                     _pct(None if share is None else share * 100), _count(r.active_days),
                     _when(r.last_seen)])
    top_cost = dsum(df["cost_cents"])
    share = ratio(top_cost, total)
    note = (f"These {len(df):,} senders cost {_money(top_cost)} {cur}, "
            f"{_pct(None if share is None else share * 100)} of the period's total.")
    return _Table(["#", "Sender", "Country", "Messages", "Parts", f"Cost ({cur})", "Share",
                   "Active days", f"Last message ({report.tz})"], rows, {0, 3, 4, 5, 6, 7},
                  note=note)


def _rates_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    rows, classes = [], []
    for r in report.rates.itertuples(index=False):
        changed = not is_na(r.usual_rate_change_cents) and r.usual_rate_change_cents != 0
        rows.append([_text(r.country), _count(r.messages), _count(r.parts),
                     _unit_money(r.usual_rate_cents), _unit_money(r.average_rate_cents),
                     _unit_money(r.previous_usual_rate_cents),
                     _unit_money(r.usual_rate_change_cents, signed=True) if changed else
                     ("no change" if not is_na(r.usual_rate_change_cents) else "–")])
        classes.append("warn" if changed else "")
    return _Table(["Country", "Messages", "Parts", f"Usual rate ({cur}/part)",
                   f"Average ({cur}/part)", f"{report.previous.label}", "Change"], rows,
                  {1, 2, 3, 4, 5, 6}, classes,
                  note="The usual rate is the median cost of one part in the period; a "
                       "changed rate is highlighted.")


def _above_rate_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    rows = [[_text(r.country), _unit_money(r.usual_rate_cents), _count(r.messages),
             _count(r.parts),
             _money(r.cost_cents), _money(r.excess_cents)]
            for r in report.above_rate.itertuples(index=False)]
    return _Table(["Country", f"Usual rate ({cur}/part)", "Messages", "Parts",
                   f"Cost ({cur})", f"Above the usual rate ({cur})"], rows, {1, 2, 3, 4, 5})


def _examples_table(report: CostReport, df: pd.DataFrame, audit: bool) -> _Table:
    cur = _currency_label(report)
    rows = []
    for r in df.itertuples(index=False):
        body = _text(r.body_text)
        body = body if len(body) <= 80 else body[:79] + "…"
        parts = (f"{_count(r.parts)} billed / {_count(r.computed_parts)} needed" if audit
                 else _count(r.parts))
        extra = ([f"{_text(r.encoding)} / {_text(r.computed_encoding)}"] if audit else [])
        rows.append([_when(r.created_at), _text(r.from_number), _text(r.country), *extra,
                     parts, _money(r.cost_cents), body])
    headers = [f"Created ({report.tz})", "Sender", "Country",
               *(["Encoding billed / needed"] if audit else []), "Parts", f"Cost ({cur})",
               "Message"]
    n = 4 if audit else 3
    return _Table(headers, rows, {n + 1}, note=None)


def _audit_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    assert report.audit is not None
    rows = [[str(r.finding), _count(r.messages), _money(r.cost_cents), _money(r.excess_cents)]
            for r in report.audit.itertuples(index=False)]
    return _Table(["Finding", "Messages", f"Cost ({cur})", f"Cost of extra parts ({cur})"],
                  rows, {1, 2, 3})


_CHECK_NAMES = {
    "by_month": "Months, all the data = period total + rows outside the period",
    "by_country": "Sender countries = period total",
    "by_operator": "Network operators = period total",
    "by_traffic_type": "Traffic types = period total",
    "by_payment_type": "Payment types = period total",
    "by_recipient": "Recipient numbers = period total",
    "rates": "Rates by country = period total",
}


def _reconciliation_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    rows, classes = [], []
    for r in report.reconciliation.itertuples(index=False):
        rows.append([_CHECK_NAMES.get(r.table, str(r.table)), _exact(r.sum_cents),
                     _exact(r.expected_cents),
                     "✓ equal" if r.ok else "✗ differs"])
        classes.append("" if r.ok else "bad")
    return _Table(["Table", f"Sum of rows ({cur}, exact)", f"Expected ({cur}, exact)",
                   "Check"], rows, {1, 2}, classes)


def _exact(cents: Any) -> str:
    """Exact major units, every decimal kept (reconciliation shows equality, not rounding)."""
    v = dec(cents).scaleb(-2)
    text = f"{v.normalize():f}" if v != 0 else "0"
    head, dot, tail = text.partition(".")
    tail = tail.ljust(2, "0")
    return f"{int(head):,}.{tail}".replace("-", "−")


def _excluded_table(report: CostReport) -> _Table:
    cur = _currency_label(report)
    rows = [[str(r.excluded), _count(r.messages), _money(r.cost_cents)]
            for r in report.excluded.itertuples(index=False)]
    return _Table(["Rows", "Messages", f"Cost ({cur})"], rows, {1, 2})


def _conversion_table(report: CostReport) -> _Table | None:
    c = report.conversion
    if not c:
        return None
    labels = [("records", "records read"), ("written", "written"),
              ("duplicates", "duplicates (an older copy of a message)"),
              ("rejected", "rejected (see the rejects file)")]
    rows = [[text, _count(c.get(k))] for k, text in labels if k in c]
    classes = [""] * len(rows)
    for reason, n in sorted((c.get("reject_reasons") or {}).items(), key=lambda kv: -kv[1]):
        rows.append([f"rejected: {reason}", _count(n)])
        classes.append("muted")
    table = _Table(["Records", "Count"], rows, {1}, classes)
    keys = ("records", "written", "duplicates", "rejected")
    if all(isinstance(c.get(k), int) for k in keys):
        ok = c["records"] == c["written"] + c["duplicates"] + c["rejected"]
        table.note = ("records = written + duplicates + rejected: "
                      + ("✓ every record is accounted for" if ok else "✗ does not add up"))
    if c.get("rejects_path"):
        where = f"Rejected records are in {c['rejects_path']}."
        table.note = f"{table.note}. {where}" if table.note else where
    return table


# ---------------------------------------------------------------------------------------
# Charts: matplotlib Figure (no pyplot, so a notebook's backend is left alone) -> SVG
# ---------------------------------------------------------------------------------------

_INK, _ACCENT, _ACCENT2, _MUTED = "#1f2933", "#1d4e89", "#7aa6d6", "#cfd8e3"


def _month_chart(report: CostReport) -> str:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    df = report.by_month[~report.by_month["month"].isna()]
    if df.empty:
        return ""
    labels = [m.strftime("%b\n%Y") if i == 0 or m.month == 1 else m.strftime("%b")
              for i, m in enumerate(df["month"])]
    values = [float(dec(v).scaleb(-2)) for v in df["cost_cents"]]  # drawing only
    colors = [{"period": _ACCENT, "previous": _ACCENT2}.get(r, _MUTED) for r in df["role"]]
    with matplotlib.rc_context({"svg.hashsalt": "smsanalytics-report", "font.size": 9,
                                "axes.edgecolor": "#9aa5b1", "text.color": _INK,
                                "xtick.color": "#52606d", "ytick.color": "#52606d"}):
        fig = Figure(figsize=(8, 2.4), layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(values)))
        bars = ax.bar(x, values, color=colors, width=0.72)
        if len(values) <= 24:
            ax.bar_label(bars, labels=[_money(dec(v)) for v in df["cost_cents"]], padding=2,
                         fontsize=7.5, color="#52606d")
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
    return _inline_svg(buf.getvalue(), f"Cost by month, {report.tz}")


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


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------

_PAGE_CSS = """
html { background: #f5f7fa; }
body { margin: 0; }
@page { size: A4; margin: 14mm 12mm; }
"""

_CSS = """
.smsa-report { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #1d4e89;
  color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; max-width: 980px; margin: 0 auto;
  padding: 24px 20px 40px; background: #fff; color-scheme: light; }
.smsa-report h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -0.01em; }
.smsa-report h2 { font-size: 17px; margin: 32px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid var(--accent); }
.smsa-report h3 { font-size: 14px; margin: 20px 0 6px; }
.smsa-report .sub { color: var(--muted); margin: 0 0 16px; }
.smsa-report .sub b { color: var(--ink); font-weight: 600; }
.smsa-report p { margin: 6px 0; }
.smsa-report .note { color: var(--muted); font-size: 12.5px; }
.smsa-report .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(165px, 1fr));
  gap: 10px; margin: 16px 0 4px; }
.smsa-report .card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  background: #fafbfc; }
.smsa-report .card.main { background: #eef4fb; border-color: #c4d7ee; }
.smsa-report .card .k { font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.04em; }
.smsa-report .card .v { font-size: 22px; font-weight: 650; margin: 2px 0;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.smsa-report .card .v small { font-size: 13px; font-weight: 500; color: var(--muted); }
.smsa-report .card .d { font-size: 12.5px; color: var(--muted); }
.smsa-report .up { color: #b42318; } .smsa-report .down { color: #067647; }
.smsa-report .table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch;
  margin: 6px 0 4px; }
.smsa-report table { border-collapse: collapse; width: 100%; font-size: 13px; }
.smsa-report th, .smsa-report td { padding: 5px 8px; border-bottom: 1px solid var(--line);
  text-align: left !important; vertical-align: top; }
.smsa-report thead th { font-size: 12px; color: var(--muted); font-weight: 600;
  border-bottom: 1px solid #cbd2d9; white-space: nowrap; }
.smsa-report td.n, .smsa-report th.n { text-align: right !important; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.smsa-report tbody tr:nth-child(even) { background: #fafbfc; }
.smsa-report tfoot td { font-weight: 600; border-top: 1px solid #9aa5b1; border-bottom: 0; }
.smsa-report tr.hl td { background: #e3edf8; font-weight: 600; }
.smsa-report tr.hl2 td { background: #f1f6fc; }
.smsa-report tr.muted td { color: var(--muted); font-style: italic; }
.smsa-report tr.warn td { background: #fff7e6; }
.smsa-report tr.bad td { background: #fdecea; color: #b42318; font-weight: 600; }
.smsa-report td.msg { white-space: pre-wrap; word-break: break-word; min-width: 14em; }
.smsa-report td.share { min-width: 90px; }
.smsa-report .bar { display: inline-block; height: 8px; background: #9fbfe3;
  border-radius: 2px; margin-right: 6px; vertical-align: middle; }
.smsa-report .chart { width: 100%; height: auto; display: block; }
.smsa-report .legend { font-size: 12px; color: var(--muted); }
.smsa-report .sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin: 0 4px 0 10px; vertical-align: -1px; }
.smsa-report .ok { color: #067647; font-weight: 600; }
.smsa-report .ko { color: #b42318; font-weight: 600; }
.smsa-report footer { margin-top: 32px; padding-top: 8px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12px; }
@media (max-width: 600px) {
  .smsa-report { padding: 14px 10px 28px; font-size: 13px; }
  .smsa-report h1 { font-size: 20px; }
  .smsa-report .card .v { font-size: 19px; }
  .smsa-report th, .smsa-report td { padding: 4px 6px; }
}
@media print {
  html, body { background: #fff; }
  .smsa-report { max-width: none; padding: 0; font-size: 10pt; }
  .smsa-report * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .smsa-report .table-wrap { overflow: visible; }
  .smsa-report table { font-size: 8.5pt; }
  .smsa-report thead { display: table-header-group; }
  .smsa-report tfoot { display: table-footer-group; }
  .smsa-report tr, .smsa-report .card, .smsa-report .chart { break-inside: avoid;
    page-break-inside: avoid; }
  .smsa-report h2, .smsa-report h3 { break-after: avoid; page-break-after: avoid; }
  .smsa-report .cards { grid-template-columns: repeat(5, 1fr); }
}
"""


def _cls(name: str) -> str:
    return f' class="{name}"' if name else ""


def _num(numeric: bool) -> str:
    return _cls("n" if numeric else "")


def _html_table(t: _Table) -> str:
    head = "".join(f'<th{_num(i in t.numeric)} scope="col">'
                   f"{for_html(h)}</th>" for i, h in enumerate(t.headers))
    body = []
    for j, row in enumerate(t.rows):
        cls = t.classes[j] if j < len(t.classes) and t.classes[j] else ""
        cells = []
        for i, cell in enumerate(row):
            if t.bars and t.headers[i] == "Share":
                bar = t.bars[j] if j < len(t.bars) else None
                width = "" if bar is None else (
                    f'<span class="bar" style="width:{max(bar, 0.0) * 60:.1f}px"></span>')
                cells.append(f'<td class="n share">{width}{for_html(cell)}</td>')
            elif t.headers[i] == "Message":
                cells.append(f'<td class="msg">{for_html(cell)}</td>')
            else:
                cells.append(f"<td{_num(i in t.numeric)}>"
                             f"{for_html(cell)}</td>")
        body.append(f"<tr{_cls(cls)}>" + "".join(cells) + "</tr>")
    foot = ""
    if t.footer:
        foot = "<tfoot><tr>" + "".join(
            f"<td{_num(i in t.numeric)}>{for_html(c)}</td>"
            for i, c in enumerate(t.footer)) + "</tr></tfoot>"
    note = f'<p class="note">{for_html(t.note)}</p>' if t.note else ""
    if not t.rows:
        return '<p class="note">Nothing in this period.</p>' + note
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody>{foot}</table></div>{note}')


def _card(title: str, value: str, unit: str, change: str, cls: str = "",
          main: bool = False) -> str:
    return (f'<div class="card{" main" if main else ""}"><div class="k">{for_html(title)}</div>'
            f'<div class="v">{for_html(value)} <small>{for_html(unit)}</small></div>'
            f'<div class="d"><span class="{cls}">{for_html(change)}</span></div></div>')


def _headline_cards(report: CostReport) -> str:
    h = report.headline.set_index("metric")
    cur = _currency_label(report)
    prev = report.previous.label
    specs = [
        ("cost", "Total cost", lambda v: _money(v * 100), cur, True),
        ("messages", "Messages", _count, "", False),
        ("parts", "Parts", _count, "", False),
        ("cost_per_message", "Cost per message", lambda v: _unit_money(v * 100), cur, False),
        ("cost_per_part", "Cost per part", lambda v: _unit_money(v * 100), cur, False),
    ]
    cards = []
    for metric, title, fmt, unit, main in specs:
        row = h.loc[metric]
        value = fmt(row["current"]) if not is_na(row["current"]) else "–"
        pct = row["change_pct"]
        if is_na(row["previous"]) or is_na(pct):
            change, cls = f"{prev}: no messages", ""
        else:
            arrow = "▲" if pct > 0 else "▼" if pct < 0 else "="
            change = f"{arrow} {_pct(pct, signed=True)} vs {prev} ({fmt(row['previous'])})"
            # Colour says whether spending went up (red) or down (green); counts stay grey.
            cls = "" if not metric.startswith("cost") else (
                "up" if pct > 0 else "down" if pct < 0 else "")
        cards.append(_card(title, value, unit, change, cls, main))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _summary_sentence(report: CostReport) -> str:
    h = report.headline.set_index("metric")
    cur, prev = _currency_label(report), report.previous.label
    cost, was = h.loc["cost", "current"], h.loc["cost", "previous"]
    text = (f"In {report.period.label}, {_count(h.loc['messages', 'current'])} inbound "
            f"messages ({_count(h.loc['parts', 'current'])} parts) cost "
            f"{_money(cost * 100)} {cur}")
    pct = h.loc["cost", "change_pct"]
    if not is_na(pct):
        direction = "more" if pct > 0 else "less"
        text += (f", {_money(abs(cost - was) * 100)} {cur} {direction} than in {prev} "
                 f"({_pct(pct, signed=True)})" if pct != 0 else f", the same as in {prev}")
    else:
        text += f"; {prev} had no messages to compare with"
    top = report.by_country.head(1)
    if len(top) and dec(top["cost_cents"].iloc[0]) > 0:
        text += (f". The largest share came from {_text(top['country'].iloc[0])} "
                 f"({_share(top['share'].iloc[0])})")
    if report.unpriced:
        text += (f". {_count(report.unpriced)} of the period's messages have no cost: they "
                 "add nothing to the totals and are left out of the costs per message and "
                 "per part")
    return text + "."


def _render_body(report: CostReport) -> str:
    cur = _currency_label(report)
    p = report.period
    first = report.data_first.date().isoformat() if report.data_first else "–"
    last = report.data_last.date().isoformat() if report.data_last else "–"
    partial = " (partial month: the data holds no full month)" if p.partial else ""
    parts = [
        '<div class="smsa-report">',
        "<header>",
        f"<h1>Inbound SMS cost report: {for_html(p.label)}</h1>",
        f'<p class="sub">Period <b>{for_html(_span(p))}</b>{for_html(partial)}, compared '
        f"with <b>{for_html(report.previous.label)}</b> · time zone "
        f"<b>{for_html(report.tz)}</b> · amounts in <b>{for_html(cur)}</b> · data from "
        f"{for_html(first)} to {for_html(last)}"
        + (f" · source <b>{for_html(report.source)}</b>" if report.source else "")
        + "</p>",
        "</header>",
        _headline_cards(report),
        f"<p>{for_html(_summary_sentence(report))}</p>",
        "<section><h2>Cost by month</h2>",
        _month_chart(report),
        '<p class="legend"><span class="sw" style="background:#1d4e89"></span>period'
        '<span class="sw" style="background:#7aa6d6"></span>comparison'
        '<span class="sw" style="background:#cfd8e3"></span>other months'
        f" · months in {for_html(report.tz)}</p>",
        _html_table(_month_table(report)),
        "</section>",
        "<section><h2>Where the cost came from</h2>",
        "<h3>By sender country</h3>",
        _html_table(_breakdown_table(report, report.by_country, ["Country"], ["country"],
                                     report.top)),
        "<h3>By network operator</h3>",
        _html_table(_breakdown_table(report, report.by_operator, ["Network", "Operator"],
                                     ["network", "operator"], report.top)),
        "<h3>By traffic type</h3>",
        _html_table(_breakdown_table(report, report.by_traffic_type, ["Traffic"],
                                     ["traffic_type"])),
        "<h3>By payment type</h3>",
        _html_table(_breakdown_table(report, report.by_payment_type, ["Payment"],
                                     ["payment_type"])),
        "<h3>By recipient number (your numbers)</h3>",
        _html_table(_breakdown_table(report, report.by_recipient, ["Recipient"],
                                     ["to_number"], report.top)),
        "</section>",
        f"<section><h2>Top {report.top} senders by cost</h2>",
        _html_table(_senders_table(report)),
        "</section>",
        "<section><h2>Rates: cost per part by country</h2>",
        _html_table(_rates_table(report)),
        "</section>",
        "<section><h2>Billing audit</h2>",
        _audit_html(report),
        "</section>",
        "<section><h2>Reconciliation</h2>",
        "<p>Every table above is summed again from its unrounded rows and compared with the "
        "headline total, exactly.</p>",
        _html_table(_reconciliation_table(report)),
        "<h3>Rows outside the period</h3>",
        _html_table(_excluded_table(report)),
    ]
    conv = _conversion_table(report)
    if conv is not None:
        parts += ["<h3>Last conversion into the dataset</h3>", _html_table(conv)]
    parts += [
        "</section>",
        f"<footer>Amounts are summed exactly from cost_cents and shown in {for_html(cur)}, "
        "rounded half-even to 2 decimals (per-message and per-part costs to up to 6); the "
        "CSV export holds the unrounded values. Made by smsanalytics.</footer>",
        "</div>",
    ]
    return "\n".join(parts)


def _span(p: Period) -> str:
    return f"{p.start.date().isoformat()} to {(p.end - timedelta(microseconds=1)).date()}"


def _audit_html(report: CostReport) -> str:
    out = ["<h3>Messages above their country's usual rate</h3>",
           f'<p class="note">Messages whose cost per part is more than '
           f"{for_html(_pct(ABOVE_RATE_MARGIN * 100))} above the median cost of a part from "
           "the same country in the period.</p>"]
    if report.above_rate.empty:
        out.append('<p class="ok">✓ None.</p>')
    else:
        out.append(_html_table(_above_rate_table(report)))
        out.append(_html_table(_examples_table(report, report.above_rate_examples, False)))
    out.append("<h3>Billed parts and encoding vs the message text</h3>")
    if report.audit is None:
        out.append('<p class="note">Not available: computed_parts and computed_encoding '
                   "are empty for this period (the data was not enriched).</p>")
    elif int(report.audit["messages"].sum()) == 0:
        out.append('<p class="ok">✓ Every message was billed the parts and encoding its '
                   "text needs.</p>")
    else:
        out.append(_html_table(_audit_table(report)))
        if report.audit_examples is not None:
            out.append(_html_table(_examples_table(report, report.audit_examples, True)))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Markdown and CSV
# ---------------------------------------------------------------------------------------


def _md_table(t: _Table) -> str:
    if not t.rows:
        return "Nothing in this period.\n"
    lines = ["| " + " | ".join(for_markdown(h) for h in t.headers) + " |",
             "| " + " | ".join("---:" if i in t.numeric else "---"
                               for i in range(len(t.headers))) + " |"]
    for row in t.rows:
        lines.append("| " + " | ".join(for_markdown(c) for c in row) + " |")
    if t.footer:
        lines.append("| " + " | ".join(f"**{for_markdown(c)}**" if c else "" for c in t.footer)
                     + " |")
    if t.note:
        lines += ["", for_markdown(t.note)]
    return "\n".join(lines) + "\n"


def _render_markdown(report: CostReport) -> str:
    cur = _currency_label(report)
    h = report.headline.set_index("metric")
    fmt = {"messages": _count, "parts": _count, "cost": lambda v: _money(v * 100),
           "cost_per_message": lambda v: _unit_money(v * 100),
           "cost_per_part": lambda v: _unit_money(v * 100)}
    headline = _Table(["", report.period.label, report.previous.label, "Change"], [
        [m.replace("_", " ") + (f" ({cur})" if m.startswith("cost") else ""),
         fmt[m](h.loc[m, "current"]) if not is_na(h.loc[m, "current"]) else "–",
         fmt[m](h.loc[m, "previous"]) if not is_na(h.loc[m, "previous"]) else "–",
         _pct(h.loc[m, "change_pct"], signed=True)] for m in fmt], {1, 2, 3})
    sections = [
        f"# Inbound SMS cost report: {for_markdown(report.period.label)}\n",
        f"Period {_span(report.period)} ({for_markdown(report.tz)}), compared with "
        f"{for_markdown(report.previous.label)}; amounts in {for_markdown(cur)}.\n",
        for_markdown(_summary_sentence(report)) + "\n",
        _md_table(headline),
        "## Cost by month\n", _md_table(_month_table(report)),
        "## By sender country\n",
        _md_table(_breakdown_table(report, report.by_country, ["Country"], ["country"])),
        "## By network operator\n",
        _md_table(_breakdown_table(report, report.by_operator, ["Network", "Operator"],
                                   ["network", "operator"])),
        "## By traffic type\n",
        _md_table(_breakdown_table(report, report.by_traffic_type, ["Traffic"],
                                   ["traffic_type"])),
        "## By payment type\n",
        _md_table(_breakdown_table(report, report.by_payment_type, ["Payment"],
                                   ["payment_type"])),
        "## By recipient number\n",
        _md_table(_breakdown_table(report, report.by_recipient, ["Recipient"],
                                   ["to_number"])),
        f"## Top {report.top} senders by cost\n", _md_table(_senders_table(report)),
        "## Rates: cost per part by country\n", _md_table(_rates_table(report)),
        "## Messages above their country's usual rate\n",
        _md_table(_above_rate_table(report)) if not report.above_rate.empty else "None.\n",
    ]
    if report.audit is not None:
        sections += ["## Billed parts and encoding vs the message text\n",
                     _md_table(_audit_table(report))]
    sections += ["## Reconciliation\n", _md_table(_reconciliation_table(report)),
                 _md_table(_excluded_table(report))]
    conv = _conversion_table(report)
    if conv is not None:
        sections.append(_md_table(conv))
    return "\n".join(sections)
