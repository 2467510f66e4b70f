"""The billing audit: what Callr billed, checked against the messages themselves.

This module owns the audit. :func:`audit` runs every check over a period and returns an
:class:`AuditResult` of pandas DataFrames; :func:`billing_mismatches` and :func:`above_rate`
are two of those checks on their own (the cost report uses them). The checks:

* **Billed parts or encoding vs the body.** ``parts`` and ``encoding`` (what Callr billed)
  against ``computed_parts`` and ``computed_encoding`` (what the body needs, GSM 03.38 /
  UCS-2 segmentation, :mod:`smsanalytics.segments`). Over-billed parts put money at stake:
  ``cost_cents * (parts - computed_parts) / parts``.
* **Cost per part** by month, sender country and network, and the messages whose cost per
  part is more than ``rate_margin`` above their country's *usual rate* that month (the
  median per-part cost of the country's messages, each message weighing one): a price
  change, or a billing error.
* **Reference data**: network codes with no known country or operator, sender numbers
  libphonenumber does not call valid (or that Callr typed ``UNKNOWN``), and Actions senders
  whose declared ``fromCountry`` differs from the country of their number.
* **Smart punctuation**: unicode messages that would be GSM had their curly quotes, dashes,
  ellipses and no-break spaces been typed as their GSM look-alikes
  (:func:`~smsanalytics.segments.gsm_lookalike`), and the parts that would save.

Decisions:

* Rows are those of :func:`~smsanalytics.queries.connect`'s ``messages`` view, filtered by
  ``start`` / ``end`` (naive values are wall-clock times in ``tz``); months are months in
  ``tz``.
* Columns the conversion fills (``computed_*``, ``network_*``, ``from_country``) are used as
  stored; where they are null (a dataset converted before enrichment existed, a DataFrame
  without them) they are computed on the fly, once per distinct body, code or number, and
  nothing is written back.
* Billed and computed values are compared only where both are known: a message without a
  billed ``parts`` is not a billing discrepancy.
* Money is exact. Sums are decimal; ratios (rates, the share of a cost at stake) are
  :class:`~fractions.Fraction` rounded once, half-even, to 10 decimals of a cent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandas as pd
import pyarrow as pa

from . import arguments, queries, render
from .escape import to_json, write_csv_tables
from .networks import lookup_networks
from .numbers import describe_numbers
from .privacy import TOKEN_PREFIX
from .schema import COST_TYPE
from .segments import analyze_array, gsm_lookalike

__all__ = [
    "RATE_MARGIN",
    "CHECKS",
    "AuditResult",
    "audit",
    "billing_mismatches",
    "above_rate",
    "usual_rate",
]

#: Default margin: a message is "above rate" when its cost per part exceeds its country's
#: usual rate by more than this fraction (0.25: more than 125 % of the usual rate).
RATE_MARGIN = Decimal("0.25")

#: Each check of the summary and what a finding means.
CHECKS: dict[str, str] = {
    "parts_over_billed": "billed more parts than the body needs; at stake: the cost of the "
    "extra parts",
    "parts_under_billed": "billed fewer parts than the body needs (in your favour; a "
    "counting difference to understand)",
    "encoding_mismatch": "billed encoding (gsm/unicode) differs from the one the body needs",
    "above_rate": "cost per part above the country's usual rate that month by more than the "
    "margin (a price change or an error); at stake: the cost above the usual rate",
    "unknown_network": "network code with no known country or operator (the MCC-MNC table "
    "lacks it, or the code is wrong)",
    "invalid_number": "sender number libphonenumber does not call valid, or typed UNKNOWN "
    "(spoofed, mistyped or new ranges)",
    "country_mismatch": "Actions sender whose declared fromCountry differs from its "
    "number's country",
    "smart_punctuation": "unicode message that would be GSM with its smart punctuation "
    "typed plainly; at stake: the cost of the parts that would save",
}

TimeBound = date | datetime | str | pd.Timestamp | None

_Q = Decimal("1e-10")  # precision of ratios [cents]
_RATIO = pa.decimal128(38, 10)
_MONEY = pa.decimal128(38, 6)
_MONTH = "strftime(timezone($tz, created_at), '%Y-%m')"
# The checks that read a sender number, and the rows where it is a token instead.
_NUMBER_CHECKS = ("invalid_number", "country_mismatch")
_TOKEN_CONDITION = f"starts_with(r.from_number, '{TOKEN_PREFIX}')"

# ---------------------------------------------------------------------------------------
# SQL. {rows} is the audit view (the messages with enrichment filled in, see _prepared);
# {where} the period filter; {lookalike} the table of bodies after gsm_lookalike.
# ---------------------------------------------------------------------------------------

#: A row whose billed parts or encoding differ from the computed ones (both known).
MISMATCH_CONDITION = """(
    (parts IS NOT NULL AND computed_parts IS NOT NULL AND parts <> computed_parts)
 OR (encoding IS NOT NULL AND computed_encoding IS NOT NULL
     AND encoding <> computed_encoding))"""

DISTINCT_SQL = """
SELECT DISTINCT {column} FROM {table}
{where}
"""

# The audit view: the messages with what enrichment would fill in, where it is null. The
# lookups ({numbers}, {networks}, {computed}) hold one row per distinct number, network
# code and body; {computed} only the bodies of rows whose computed columns are null.
ROWS_VIEW_SQL = """
CREATE TEMP VIEW {rows} AS
SELECT m.* REPLACE (
    coalesce(m.from_country, n.country) AS from_country,
    coalesce(m.network_country, w.network_country) AS network_country,
    coalesce(m.network_operator, w.network_operator) AS network_operator,
    CASE WHEN c.body_text IS NULL THEN m.computed_encoding ELSE c.computed_encoding END
        AS computed_encoding,
    CASE WHEN c.body_text IS NULL THEN m.computed_parts ELSE c.computed_parts END
        AS computed_parts,
    CASE WHEN c.body_text IS NULL THEN m.unicode_chars ELSE c.unicode_chars END
        AS unicode_chars
)
FROM messages AS m
LEFT JOIN {numbers} AS n ON n.number = m.from_number
LEFT JOIN {networks} AS w ON w.network = m.network
LEFT JOIN {computed} AS c
  ON c.body_text = m.body_text
 AND (m.computed_parts IS NULL OR m.computed_encoding IS NULL)
"""

MISMATCHES_SQL = """
SELECT r.sid, r.created_at, r.from_number, r.from_country, r.body_text,
       r.encoding, r.parts, r.computed_encoding, r.computed_parts, r.unicode_chars,
       l.lookalike_encoding, l.lookalike_parts, r.cost_cents
FROM {rows} AS r
LEFT JOIN {lookalike} AS l USING (body_text)
{where}
ORDER BY r.created_at, r.sid
"""

RATE_POINTS_SQL = """
SELECT {month} AS month, from_country AS country, cost_cents, parts, count(*) AS messages
FROM {rows}
{where}
GROUP BY ALL
"""

RATES_SQL = """
SELECT {month} AS month, from_country AS country, network, network_operator,
       count(*) AS messages,
       CAST(coalesce(sum(parts), 0) AS BIGINT) AS parts,
       sum(cost_cents) AS cost_cents,
       sum(cost_cents) FILTER (WHERE parts > 0) AS rated_cost_cents,
       CAST(sum(parts) FILTER (WHERE parts > 0 AND cost_cents IS NOT NULL) AS BIGINT)
           AS rated_parts
FROM {rows}
{where}
GROUP BY ALL
ORDER BY month NULLS LAST, country NULLS LAST, cost_cents DESC NULLS LAST, network
"""

ABOVE_RATE_SQL = """
SELECT r.sid, r.created_at, {month} AS month, r.from_number, r.from_country AS country,
       r.network, r.network_operator, r.parts, r.cost_cents, r.body_text
FROM {rows} AS r
JOIN {flagged} AS f
  ON {month} IS NOT DISTINCT FROM f.month AND r.from_country = f.country
 AND r.cost_cents = f.cost_cents AND r.parts = f.parts
{where}
ORDER BY r.created_at, r.sid
"""

UNKNOWN_NETWORKS_SQL = """
SELECT network, network_country, network_operator,
       count(*) AS messages,
       sum(cost_cents) AS cost_cents,
       min(created_at) AS first_seen,
       max(created_at) AS last_seen
FROM {rows}
{where}
GROUP BY ALL
ORDER BY messages DESC, network
"""

INVALID_NUMBERS_SQL = """
SELECT r.from_number,
       any_value(r.from_type) AS declared_type,
       any_value(n.type) AS type,
       any_value(n.country) AS country,
       any_value(n.valid) AS valid,
       count(*) AS messages,
       sum(r.cost_cents) AS cost_cents,
       min(r.created_at) AS first_seen,
       max(r.created_at) AS last_seen
FROM {rows} AS r
LEFT JOIN {numbers} AS n ON n.number = r.from_number
{where}
GROUP BY r.from_number
ORDER BY messages DESC, r.from_number
"""

COUNTRY_MISMATCH_SQL = """
SELECT r.from_number, r.from_country AS declared_country, n.country AS number_country,
       count(*) AS messages,
       sum(r.cost_cents) AS cost_cents,
       min(r.created_at) AS first_seen,
       max(r.created_at) AS last_seen
FROM {rows} AS r
JOIN {numbers} AS n ON n.number = r.from_number
{where}
GROUP BY ALL
ORDER BY messages DESC, r.from_number
"""

TOKENS_SQL = """
SELECT count(*) FROM messages AS r
{where}
"""

SMART_PUNCTUATION_SQL = """
SELECT r.sid, r.created_at, r.from_number, r.from_country, r.body_text, r.unicode_chars,
       r.encoding, r.parts, r.computed_parts, l.lookalike_parts, r.cost_cents
FROM {rows} AS r
JOIN {lookalike} AS l USING (body_text)
{where}
ORDER BY r.created_at, r.sid
"""


# ---------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------


@dataclass
class AuditResult:
    """What the audit found, as DataFrames (exact decimals as Arrow dtypes).

    Amounts are in cents of the account currency (``*_cents``); rates in cents per part,
    exact to 10 decimals of a cent. ``body_text`` and numbers are untrusted text: escape
    them where they are shown (:meth:`to_html` and :meth:`to_csv` do).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per check of :data:`CHECKS`: ``check``, ``messages`` (messages found),
        ``parts`` [segments at stake: over-billed, under-billed or saveable; null where
        parts are not the question], ``cost_cents`` (what those messages cost),
        ``at_stake_cents`` (what may have been charged too much; null where the check is
        not about an amount), ``meaning``.
    mismatches : pandas.DataFrame
        Messages whose billed ``parts`` or ``encoding`` differ from the computed ones:
        ``sid``, ``created_at``, ``from_number``, ``from_country``, ``body_text``,
        ``encoding``, ``parts`` (billed), ``computed_encoding``, ``computed_parts``,
        ``unicode_chars``, ``lookalike_encoding`` and ``lookalike_parts`` (after
        :func:`~smsanalytics.segments.gsm_lookalike`), ``cost_cents``,
        ``parts_difference`` (billed - computed), ``cost_at_stake_cents`` (the cost of the
        over-billed parts, else 0), ``finding`` (the checks it fails, ``;``-separated).
    rates : pandas.DataFrame
        Cost per part by ``month`` [YYYY-MM in tz], ``country``, ``network``,
        ``network_operator``: ``messages``, ``parts``, ``cost_cents``, ``rate_cents``
        [cents per part, over the messages with parts and a cost], ``usual_rate_cents``
        (the country's usual rate that month).
    above_rate : pandas.DataFrame
        Messages whose cost per part exceeds their country's usual rate that month by
        more than ``rate_margin``: ``sid``, ``created_at``, ``month``, ``from_number``,
        ``country``, ``network``, ``network_operator``, ``parts``, ``cost_cents``,
        ``body_text``, ``rate_cents``, ``usual_rate_cents``, ``excess_cents`` (cost minus
        the usual rate times the parts).
    unknown_networks : pandas.DataFrame
        Network codes lacking a country or an operator: ``network``, ``network_country``,
        ``network_operator``, ``messages``, ``cost_cents``, ``first_seen``, ``last_seen``.
    invalid_numbers : pandas.DataFrame
        Sender numbers typed ``UNKNOWN`` or not valid: ``from_number``, ``declared_type``
        (stored ``from_type``), ``type`` / ``country`` / ``valid`` (libphonenumber),
        ``messages``, ``cost_cents``, ``first_seen``, ``last_seen``.
    country_mismatch : pandas.DataFrame
        Actions senders whose declared country is not their number's: ``from_number``,
        ``declared_country``, ``number_country``, ``messages``, ``cost_cents``,
        ``first_seen``, ``last_seen``.
    smart_punctuation : pandas.DataFrame
        Unicode messages that would be GSM after
        :func:`~smsanalytics.segments.gsm_lookalike`: ``sid``, ``created_at``,
        ``from_number``, ``from_country``, ``body_text``, ``unicode_chars``, ``encoding``,
        ``parts`` (billed), ``computed_parts``, ``lookalike_parts``, ``cost_cents``,
        ``parts_saved`` (computed - look-alike), ``cost_saved_cents`` (the billed cost of
        that many parts).
    start, end : datetime or None
        The period audited (UTC), as given.
    tz : str
        Time zone of the months.
    currency : str or None
        Label of the account currency.
    rate_margin : Decimal
        Margin of the above-rate check.
    pseudonymised_senders : int
        Messages whose sender is a pseudonymised token (``anon:...``): the number checks
        (``invalid_number``, ``country_mismatch``) skip them, and the summary says so.
    """

    summary: pd.DataFrame
    mismatches: pd.DataFrame
    rates: pd.DataFrame
    above_rate: pd.DataFrame
    unknown_networks: pd.DataFrame
    invalid_numbers: pd.DataFrame
    country_mismatch: pd.DataFrame
    smart_punctuation: pd.DataFrame
    start: datetime | None = None
    end: datetime | None = None
    tz: str = "UTC"
    currency: str | None = None
    rate_margin: Decimal = RATE_MARGIN
    pseudonymised_senders: int = 0

    _TABLES: ClassVar[tuple[str, ...]] = (
        "summary", "mismatches", "rates", "above_rate", "unknown_networks", "invalid_numbers",
        "country_mismatch", "smart_punctuation")

    def __post_init__(self) -> None:
        # Shown as money in a notebook (never 0E-10); the values underneath stay exact.
        for name in self._TABLES:
            setattr(self, name, render.exact_frame(getattr(self, name)))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return every table by name (the CSV file names without ``.csv``)."""
        return {name: getattr(self, name) for name in self._TABLES}

    @property
    def clean(self) -> bool:
        """Whether no check found anything (smart punctuation is advice, not a finding)."""
        found = self.summary[self.summary["check"] != "smart_punctuation"]["messages"]
        return int(found.sum()) == 0

    def readable_tables(self) -> dict[str, pd.DataFrame]:
        """Return every table with column names and values a spreadsheet user can read.

        Columns are named in words with their unit (``Cost (EUR)``, ``Usual rate (EUR per
        part)``, ``Created (Europe/Paris)``); amounts are in major units of the currency,
        exact and unrounded; checks and findings are words (``parts over-billed``), and a
        number's validity is ``yes`` or ``no``. Parts columns say which parts they count
        (``Parts billed``, ``Parts saved``...).

        Returns
        -------
        dict of str to pandas.DataFrame
            By table name, as :meth:`tables`.
        """
        return {name: _readable(name, df, self.currency or "currency not set", self.tz)
                for name, df in self.tables().items()}

    def to_dict(self, readable: bool = False) -> dict[str, Any]:
        """Return the audit as JSON-ready data: amounts as exact decimal strings.

        Parameters
        ----------
        readable : bool
            Tables of :meth:`readable_tables` (what ``smsanalytics audit --json``
            prints) instead of the DataFrames' own columns.

        Returns
        -------
        dict
            ``period`` (``start``, ``end``, ``tz``), ``currency``, ``rate_margin`` and
            ``tables``: each table as a list of records.
        """
        tables = self.readable_tables() if readable else self.tables()
        return {
            "period": {"start": _json_value(self.start), "end": _json_value(self.end),
                       "tz": self.tz},
            "currency": self.currency,
            "rate_margin": str(self.rate_margin),
            "pseudonymised_senders": self.pseudonymised_senders,
            "tables": {name: [{str(k): _json_value(v) for k, v in row.items()}
                              for row in df.astype(object).to_dict(orient="records")]
                       for name, df in tables.items()},
        }

    def to_json(self, readable: bool = False) -> str:
        """Return :meth:`to_dict` as a JSON string (`readable` as there)."""
        return to_json(self.to_dict(readable))

    def to_csv(self, directory: str | Path, readable: bool = False) -> list[Path]:
        """Write one CSV file per table into `directory` (created if needed).

        Amounts are exact and unrounded; text a spreadsheet would run as a formula gets a
        leading apostrophe (:func:`~smsanalytics.escape.for_csv_cell`).

        Parameters
        ----------
        directory : str or Path
            Where to write ``summary.csv``, ``mismatches.csv``, ...
        readable : bool
            Write :meth:`readable_tables` (what ``smsanalytics audit --csv`` writes)
            instead of the DataFrames' own columns.

        Returns
        -------
        list of Path
            The files written.
        """
        return write_csv_tables(self.readable_tables() if readable else self.tables(),
                                directory)

    def to_html(self, max_rows: int | None = None) -> str:
        """Return the audit as an HTML fragment: the summary, then each non-empty table.

        Rendered by a template with autoescape on: every value is escaped with
        :func:`~smsanalytics.escape.for_html`.

        Parameters
        ----------
        max_rows : int, optional
            Show at most this many rows of each finding table (all by default).
        """
        return render.to_html(self._page(max_rows), document=False,
                              template="audit.html.j2")

    def _page(self, max_rows: int | None) -> render.Page:
        label = self.currency or "currency not set"
        subtitle = [("Amounts in cents of ", False), (label, False),
                    (" · months in ", False), (self.tz, False),
                    (" · above-rate margin ", False),
                    (f"{(self.rate_margin * 100).normalize():f} %", False)]
        sections = [render.Section("", [render.frame_table(self.summary)], 0)]
        for name, df in self.tables().items():
            if name == "summary" or df.empty:
                continue
            blocks: list[render.Block | render.Section] = [
                render.frame_table(df, tz=self.tz, limit=max_rows)]
            if max_rows is not None and len(df) > max_rows:
                blocks.append(render.Paragraph(
                    f"… {len(df) - max_rows:,} more rows (result.{name})"))
            sections.append(render.Section(f"{name.replace('_', ' ')} ({len(df):,})",
                                           blocks, 3))
        return render.Page("Billing audit", subtitle, sections, css_class="smsa-audit")

    def _repr_html_(self) -> str:
        return self.to_html(max_rows=10)

    def __repr__(self) -> str:
        found = ", ".join(
            f"{r.check}={r.messages}" for r in self.summary.itertuples() if r.messages
        )
        return f"<AuditResult {found or 'clean'}>"


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------


def audit(
    source: queries.Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    currency: str | None = None,
    rate_margin: Decimal | str | float = RATE_MARGIN,
) -> AuditResult:
    """Audit the billing of the messages of a period.

    Computed columns (``computed_encoding``, ``computed_parts``, ``unicode_chars``),
    network columns and the sender country are used as stored; where they are null (a
    dataset converted before enrichment existed, or a DataFrame without them) they are
    computed on the fly from ``body_text`` with
    :func:`~smsanalytics.segments.analyze_array`, from ``network`` with
    :func:`~smsanalytics.networks.lookup_networks`, and from ``from_number`` with
    :func:`~smsanalytics.numbers.describe_numbers`. Nothing is written back.

    Parameters
    ----------
    source : connection or anything :func:`~smsanalytics.queries.connect` accepts
        The messages: a dataset directory, archive paths, a DataFrame or Arrow table.
    start, end : date, datetime or str, optional
        Only messages created at or after `start` and before `end`; naive values are
        wall-clock times in `tz`. Default: all the messages.
    tz : str
        IANA time zone of the months (rates and usual rates are per month in `tz`).
    currency : str, optional
        Label of the account currency (``"EUR"``), kept in the result; never guessed.
    rate_margin : Decimal or str
        A message is above rate when its cost per part exceeds its country's usual rate
        that month times ``1 + rate_margin``.

    Returns
    -------
    AuditResult
        The summary and one table per check.

    Raises
    ------
    ArgumentError
        Before any data is read, for a bad time zone, bound (or `end` not after `start`),
        currency or margin (see :mod:`smsanalytics.arguments`).

    Examples
    --------
    >>> import smsanalytics
    >>> _ = smsanalytics.convert(["sample_data"], "/tmp/doc_audit", overwrite=True, quiet=True)
    >>> a = audit("/tmp/doc_audit", currency="EUR")
    >>> over = a.summary.set_index("check").loc["parts_over_billed"]
    >>> int(over["messages"]), str(over["at_stake_cents"])
    (10, '16.3175000000')
    """
    margin = arguments.margin(rate_margin)
    tz = arguments.time_zone_name(tz)
    lo, hi = arguments.period_bounds(start, end, arguments.time_zone(tz))
    currency = arguments.currency_label(currency)
    owned = not isinstance(source, duckdb.DuckDBPyConnection)
    con = queries.connect(source, currency=currency)
    try:
        label = queries._currency(con, currency)
        where, params = queries._where(tz=tz, start=lo, end=hi)
        # A pseudonymised sender is a token, not a number: the number checks skip it.
        sql = TOKENS_SQL.format(where=_and(where, _TOKEN_CONDITION))
        tokens = int(_arrow(con, sql, params).column(0)[0].as_py())
        with _prepared(con, where, params, numbers=True) as names:
            mismatches, over_billed = _mismatches(con, names, where, params, tz)
            points = _points(con, names, where, params, tz, by_month=True)
            rates = _rates(con, names, where, params, tz, _usual_rates(points))
            above, excess = _above_rate(con, names, where, params, tz, margin, by_month=True,
                                        points=points)
            networks = _run(con, UNKNOWN_NETWORKS_SQL, names, _and(
                where, "network IS NOT NULL AND (network_country IS NULL "
                "OR network_operator IS NULL)"), params, tz)
            invalid = _run(con, INVALID_NUMBERS_SQL, names, _and(
                where, f"r.from_number IS NOT NULL AND NOT {_TOKEN_CONDITION} "
                "AND (r.from_type = 'UNKNOWN' OR n.valid IS NOT TRUE)"), params, tz)
            country = _run(con, COUNTRY_MISMATCH_SQL, names, _and(
                where, f"r.source = 'actions' AND r.from_country IS NOT NULL "
                f"AND NOT {_TOKEN_CONDITION} "
                "AND n.country IS NOT NULL AND r.from_country <> n.country"), params, tz)
            smart, saving = _smart_punctuation(con, names, where, params, tz)
    finally:
        if owned:
            con.close()
    summary = _summary(mismatches, over_billed, above, excess, networks, invalid, country,
                       smart, saving, tokens)
    result = AuditResult(
        summary=summary, mismatches=mismatches, rates=rates, above_rate=above,
        unknown_networks=networks, invalid_numbers=invalid, country_mismatch=country,
        smart_punctuation=smart, start=lo, end=hi, tz=tz, currency=label,
        rate_margin=margin, pseudonymised_senders=tokens,
    )
    for df in result.tables().values():
        df.attrs.update({"question": "audit", "tz": tz, "currency": label})
    return result


def billing_mismatches(
    source: queries.Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Messages whose billed parts or encoding differ from what their body needs.

    Computed columns that are null are computed on the fly from ``body_text`` (see
    :func:`audit`).

    Parameters
    ----------
    source : connection or anything :func:`~smsanalytics.queries.connect` accepts
        The messages.
    start, end, tz
        The period, as in :func:`audit`.

    Returns
    -------
    pandas.DataFrame
        :attr:`AuditResult.mismatches`.
    """
    tz = arguments.time_zone_name(tz)
    lo, hi = arguments.period_bounds(start, end, arguments.time_zone(tz))
    owned = not isinstance(source, duckdb.DuckDBPyConnection)
    con = queries.connect(source)
    try:
        where, params = queries._where(tz=tz, start=lo, end=hi)
        with _prepared(con, where, params, numbers=False) as names:
            return _mismatches(con, names, where, params, tz)[0]
    finally:
        if owned:
            con.close()


def above_rate(
    source: queries.Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str = "UTC",
    rate_margin: Decimal | str | float = RATE_MARGIN,
    by_month: bool = True,
) -> pd.DataFrame:
    """Messages whose cost per part is above their country's usual rate.

    Parameters
    ----------
    source : connection or anything :func:`~smsanalytics.queries.connect` accepts
        The messages.
    start, end, tz
        The period, as in :func:`audit`.
    rate_margin : Decimal or str
        Flag a message when its cost per part exceeds the usual rate times
        ``1 + rate_margin``.
    by_month : bool
        True: the usual rate is the country's in the message's month (in `tz`). False: over
        the whole period (``month`` is then null).

    Returns
    -------
    pandas.DataFrame
        :attr:`AuditResult.above_rate`. Messages without a country, parts or cost have no
        usual rate to compare with and are never flagged.
    """
    margin = arguments.margin(rate_margin)
    tz = arguments.time_zone_name(tz)
    lo, hi = arguments.period_bounds(start, end, arguments.time_zone(tz))
    owned = not isinstance(source, duckdb.DuckDBPyConnection)
    con = queries.connect(source)
    try:
        where, params = queries._where(tz=tz, start=lo, end=hi)
        with _prepared(con, where, params, numbers=False) as names:
            return _above_rate(con, names, where, params, tz, margin, by_month=by_month)[0]
    finally:
        if owned:
            con.close()


def usual_rate(points: Sequence[tuple[Fraction, int]]) -> Fraction:
    """Return the usual per-part rate: the lower weighted median of the rates.

    Parameters
    ----------
    points : sequence of (Fraction, int)
        ``(rate, messages)``: a per-part rate [cents] and how many messages paid it.

    Returns
    -------
    Fraction
        The rate at or below which half the messages (or more) were billed.

    Examples
    --------
    >>> from fractions import Fraction
    >>> usual_rate([(Fraction("1.5"), 1), (Fraction("1.0"), 1)])
    Fraction(1, 1)
    """
    if not points:
        raise ValueError("no rates to take the median of")
    ordered = sorted(points)
    half = Fraction(sum(n for _, n in ordered), 2)
    seen = 0
    for rate, n in ordered:
        seen += n
        if seen >= half:
            return rate
    return ordered[-1][0]


# ---------------------------------------------------------------------------------------
# The audit view: messages with enrichment filled in where it is missing
# ---------------------------------------------------------------------------------------


@contextmanager
def _prepared(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], *,
              numbers: bool) -> Iterator[dict[str, str]]:
    """Create the audit's lookup tables and view on `con`; drop them on exit.

    Yields the names to put in the SQL templates: ``rows`` (the view), ``numbers``,
    ``lookalike``. Lookups are computed once per distinct body, network code and number.
    """
    tag = uuid.uuid4().hex[:12]
    names = {k: f"_smsanalytics_audit_{k}_{tag}"
             for k in ("rows", "computed", "networks", "numbers", "lookalike")}
    registered: list[str] = []

    def register(key: str, table: pa.Table) -> None:
        con.register(names[key], table)
        registered.append(names[key])

    def distinct(column: str, condition: str, table: str = "messages") -> list[Any]:
        sql = DISTINCT_SQL.format(column=column, table=table, where=_and(where, condition))
        return _arrow(con, sql, params).column(0).to_pylist()

    try:
        bodies = distinct("body_text", "(computed_parts IS NULL OR computed_encoding IS NULL) "
                          "AND body_text IS NOT NULL")
        computed = analyze_array(pa.array(bodies, pa.string()))
        register("computed", pa.table({"body_text": pa.array(bodies, pa.string()),
                                       **dict(zip(computed.column_names, computed.columns,
                                                  strict=True))}))
        register("networks", lookup_networks(distinct("network", "network IS NOT NULL")))
        # Every sender is described when the number checks run; otherwise only those whose
        # country the rates need.
        needed = (f"from_number IS NOT NULL AND NOT {_TOKEN_CONDITION.replace('r.', '')}"
                  + ("" if numbers else " AND from_country IS NULL"))
        register("numbers", describe_numbers(distinct("from_number", needed)))
        con.execute(ROWS_VIEW_SQL.format(**names))
        # Look-alikes only for the bodies that can change: unicode ones (the substituted
        # characters are all outside GSM) and the mismatching ones, to show them.
        wanted = (f"(computed_encoding = 'unicode' OR {MISMATCH_CONDITION}) "
                  "AND body_text IS NOT NULL")
        texts = distinct("body_text", wanted, names["rows"])
        after = analyze_array(pa.array([gsm_lookalike(t) for t in texts], pa.string()))
        register("lookalike", pa.table({
            "body_text": pa.array(texts, pa.string()),
            "lookalike_encoding": after.column("computed_encoding"),
            "lookalike_parts": after.column("computed_parts"),
        }))
        yield names
    finally:
        con.execute(f"DROP VIEW IF EXISTS {names['rows']}")
        for name in registered:
            con.unregister(name)


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


def _mismatches(con: duckdb.DuckDBPyConnection, names: dict[str, str], where: str,
                params: dict[str, Any], tz: str) -> tuple[pd.DataFrame, Fraction]:
    table = _arrow(con, MISMATCHES_SQL.format(**names, where=_and(where, MISMATCH_CONDITION)),
                   params)
    rows = table.select(["encoding", "parts", "computed_encoding", "computed_parts",
                         "cost_cents"]).to_pylist()
    differences, stakes, findings = [], [], []
    total = Fraction(0)
    for r in rows:
        billed, needed, cost = r["parts"], r["computed_parts"], r["cost_cents"]
        found = []
        difference = None
        stake = Fraction(0)
        if billed is not None and needed is not None:
            difference = billed - needed
            if difference > 0:
                found.append("parts_over_billed")
                if billed > 0 and cost is not None:
                    # The cost of the parts billed beyond those the body needs.
                    stake = Fraction(cost) * difference / billed
            elif difference < 0:
                found.append("parts_under_billed")
        enc, enc_needed = r["encoding"], r["computed_encoding"]
        if enc is not None and enc_needed is not None and str(enc) != str(enc_needed):
            found.append("encoding_mismatch")
        differences.append(difference)
        stakes.append(_ratio(stake))
        findings.append("; ".join(found))
        total += stake
    table = (table.append_column("parts_difference", pa.array(differences, pa.int32()))
                  .append_column("cost_at_stake_cents", pa.array(stakes, _RATIO))
                  .append_column("finding", pa.array(findings, pa.string())))
    return _frame(table, tz), total


def _points(con: duckdb.DuckDBPyConnection, names: dict[str, str], where: str,
            params: dict[str, Any], tz: str, *, by_month: bool) -> list[dict[str, Any]]:
    sql = RATE_POINTS_SQL.format(**names, month=_MONTH if by_month else "NULL", where=where)
    return _arrow(con, sql, {**params, "tz": tz}).to_pylist()


def _rated(point: dict[str, Any]) -> bool:
    """Whether a price point has a per-part rate (a country, parts and a cost)."""
    return (point["country"] is not None and point["cost_cents"] is not None
            and point["parts"] is not None and point["parts"] > 0)


def _usual_rates(points: list[dict[str, Any]]) -> dict[tuple[Any, str], Fraction]:
    """The usual rate of each (month, country), from its price points."""
    by_key: dict[tuple[Any, str], list[tuple[Fraction, int]]] = {}
    for p in points:
        if _rated(p):
            by_key.setdefault((p["month"], p["country"]), []).append(
                (Fraction(p["cost_cents"]) / p["parts"], p["messages"]))
    return {k: usual_rate(v) for k, v in by_key.items()}


def _rates(con: duckdb.DuckDBPyConnection, names: dict[str, str], where: str,
           params: dict[str, Any], tz: str, usual: dict[tuple[Any, str], Fraction]
           ) -> pd.DataFrame:
    table = _arrow(con, RATES_SQL.format(**names, month=_MONTH, where=where),
                   {**params, "tz": tz})
    rates, usuals = [], []
    for r in table.select(["month", "country", "rated_cost_cents", "rated_parts"]).to_pylist():
        cost, parts = r["rated_cost_cents"], r["rated_parts"]
        rates.append(_ratio(Fraction(cost) / parts) if cost is not None and parts else None)
        found = usual.get((r["month"], r["country"]))
        usuals.append(None if found is None else _ratio(found))
    table = (table.drop_columns(["rated_cost_cents", "rated_parts"])
                  .append_column("rate_cents", pa.array(rates, _RATIO))
                  .append_column("usual_rate_cents", pa.array(usuals, _RATIO)))
    return _frame(table, tz)


def _above_rate(
    con: duckdb.DuckDBPyConnection, names: dict[str, str], where: str, params: dict[str, Any],
    tz: str, margin: Decimal, *, by_month: bool, points: list[dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, Fraction]:
    if points is None:
        points = _points(con, names, where, params, tz, by_month=by_month)
    usual = _usual_rates(points)
    factor = 1 + Fraction(margin)
    flagged = [p for p in points
               if _rated(p) and Fraction(p["cost_cents"]) / p["parts"]
               > usual[(p["month"], p["country"])] * factor]
    name = names["rows"].replace("_rows_", "_flagged_")
    con.register(name, pa.table({
        "month": pa.array([p["month"] for p in flagged], pa.string()),
        "country": pa.array([p["country"] for p in flagged], pa.string()),
        "cost_cents": pa.array([p["cost_cents"] for p in flagged], COST_TYPE),
        "parts": pa.array([p["parts"] for p in flagged], pa.int32()),
    }))
    try:
        sql = ABOVE_RATE_SQL.format(**names, flagged=name,
                                    month=_MONTH.replace("created_at", "r.created_at")
                                    if by_month else "CAST(NULL AS VARCHAR)", where=where)
        table = _arrow(con, sql, {**params, "tz": tz})
    finally:
        con.unregister(name)
    rates, usuals, excesses = [], [], []
    total = Fraction(0)
    for r in table.select(["month", "country", "parts", "cost_cents"]).to_pylist():
        rate = usual[(r["month"], r["country"])]
        excess = Fraction(r["cost_cents"]) - rate * r["parts"]
        total += excess
        rates.append(_ratio(Fraction(r["cost_cents"]) / r["parts"]))
        usuals.append(_ratio(rate))
        excesses.append(_ratio(excess))
    table = (table.append_column("rate_cents", pa.array(rates, _RATIO))
                  .append_column("usual_rate_cents", pa.array(usuals, _RATIO))
                  .append_column("excess_cents", pa.array(excesses, _RATIO)))
    return _frame(table, tz), total


def _smart_punctuation(con: duckdb.DuckDBPyConnection, names: dict[str, str], where: str,
                       params: dict[str, Any], tz: str) -> tuple[pd.DataFrame, Fraction]:
    cond = "r.computed_encoding = 'unicode' AND l.lookalike_encoding = 'gsm'"
    table = _arrow(con, SMART_PUNCTUATION_SQL.format(**names, where=_and(where, cond)), params)
    saved_parts, saved_cost = [], []
    total = Fraction(0)
    for r in table.select(["parts", "computed_parts", "lookalike_parts",
                           "cost_cents"]).to_pylist():
        # Saved against what was billed (the computed parts when the billed ones are missing).
        base = r["parts"] if r["parts"] is not None else r["computed_parts"]
        saved = None if base is None else max(0, base - r["lookalike_parts"])
        cost = None
        if saved is not None and base and r["cost_cents"] is not None:
            exact = Fraction(r["cost_cents"]) * saved / base
            total += exact
            cost = _ratio(exact)
        saved_parts.append(saved)
        saved_cost.append(cost)
    table = (table.append_column("parts_saved", pa.array(saved_parts, pa.int32()))
                  .append_column("cost_saved_cents", pa.array(saved_cost, _RATIO)))
    return _frame(table, tz), total



def _summary(mismatches: pd.DataFrame, over_billed: Fraction, above: pd.DataFrame,
             excess: Fraction, networks: pd.DataFrame, invalid: pd.DataFrame,
             country: pd.DataFrame, smart: pd.DataFrame, saving: Fraction,
             tokens: int = 0) -> pd.DataFrame:
    """One row per check: messages, parts and cost found, and the amount at stake."""
    finding = mismatches["finding"].astype(str)
    difference = mismatches["parts_difference"]
    over = mismatches[finding.str.contains("parts_over_billed")]
    under = mismatches[finding.str.contains("parts_under_billed")]
    encoding = mismatches[finding.str.contains("encoding_mismatch")]
    rows = [
        ("parts_over_billed", len(over), _isum(difference[over.index]), over, over_billed),
        ("parts_under_billed", len(under), -_isum(difference[under.index]), under,
         Fraction(0)),
        ("encoding_mismatch", len(encoding), None, encoding, None),
        ("above_rate", len(above), _isum(above["parts"]), above, excess),
        ("unknown_network", _isum(networks["messages"]), None, networks, None),
        ("invalid_number", _isum(invalid["messages"]), None, invalid, None),
        ("country_mismatch", _isum(country["messages"]), None, country, None),
        ("smart_punctuation", len(smart), _isum(smart["parts_saved"]), smart, saving),
    ]
    skipped = (f" (not checked for the {tokens:,} messages whose sender is a pseudonymised "
               "token, not a number)") if tokens else ""
    records = [{"check": check, "messages": messages, "parts": parts,
                "cost_cents": _dsum(df["cost_cents"]),
                "at_stake_cents": None if stake is None else _ratio(stake),
                "meaning": CHECKS[check] + (skipped if check in _NUMBER_CHECKS else "")}
               for check, messages, parts, df, stake in rows]
    schema = pa.schema([("check", pa.string()), ("messages", pa.int64()),
                        ("parts", pa.int64()), ("cost_cents", _MONEY),
                        ("at_stake_cents", _RATIO), ("meaning", pa.string())])
    return _frame(pa.Table.from_pylist(records, schema=schema), "UTC")


# ---------------------------------------------------------------------------------------
# Helpers: SQL, exact numbers, output
# ---------------------------------------------------------------------------------------


def _and(where: str, condition: str) -> str:
    """Add `condition` to a WHERE clause (or start one)."""
    return f"{where}\n  AND {condition}" if where else f"WHERE {condition}"


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return queries._used(sql, params)


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    # to_arrow_table reads the result to the end, so the connection is free afterwards.
    return con.sql(sql, params=_used(sql, params)).to_arrow_table()


def _run(con: duckdb.DuckDBPyConnection, template: str, names: dict[str, str], where: str,
         params: dict[str, Any], tz: str) -> pd.DataFrame:
    return _frame(_arrow(con, template.format(**names, where=where), params), tz)


def _frame(table: pa.Table, tz: str) -> pd.DataFrame:
    """Arrow -> pandas: decimals exact (Arrow dtype), dictionaries as text, instants in tz."""
    columns = []
    for f, col in zip(table.schema, table.columns, strict=True):
        columns.append(col.cast(f.type.value_type) if pa.types.is_dictionary(f.type) else col)
    table = pa.Table.from_arrays(columns, names=table.column_names)
    df = table.to_pandas(types_mapper=_dtype)
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            df[f.name] = df[f.name].dt.tz_convert(tz)
    return df


def _dtype(t: pa.DataType) -> Any:
    """Decimals stay exact (Arrow dtype); integers stay integers when some are null."""
    if pa.types.is_decimal(t):
        return pd.ArrowDtype(t)
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    return None


def _ratio(value: Fraction) -> Decimal:
    """An exact ratio as a Decimal, rounded once, half-even, to 10 decimals of a cent."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        _Q, ROUND_HALF_EVEN)


def _is_na(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def _dsum(values: Any) -> Decimal:
    return sum((Decimal(v) for v in values if not _is_na(v)), Decimal(0))


def _isum(values: Any) -> int:
    return int(sum(int(v) for v in values if not _is_na(v)))


# ---------------------------------------------------------------------------------------
# Readable tables: names in words with units, amounts in major units, checks in words
# ---------------------------------------------------------------------------------------

#: Column names in words; ``{cur}`` is the currency label, ``{tz}`` the time zone.
_READABLE_COLUMNS: dict[str, str] = {
    "check": "Check",
    "messages": "Messages",
    "cost_cents": "Cost ({cur})",
    "at_stake_cents": "At stake ({cur})",
    "meaning": "Meaning",
    "sid": "Message id",
    "created_at": "Created ({tz})",
    "from_number": "Sender",
    "from_country": "Sender country",
    "country": "Sender country",
    "body_text": "Message",
    "encoding": "Encoding billed",
    "computed_encoding": "Encoding needed",
    "computed_parts": "Parts needed",
    "unicode_chars": "Characters outside GSM",
    "lookalike_encoding": "Encoding with plain punctuation",
    "lookalike_parts": "Parts with plain punctuation",
    "parts_difference": "Parts billed minus needed",
    "cost_at_stake_cents": "Cost of the extra parts ({cur})",
    "finding": "Finding",
    "month": "Month ({tz})",
    "network": "Network (MCC-MNC)",
    "network_country": "Network country",
    "network_operator": "Network operator",
    "rate_cents": "Cost per part ({cur})",
    "usual_rate_cents": "Usual cost per part ({cur})",
    "excess_cents": "Above the usual rate ({cur})",
    "first_seen": "First seen ({tz})",
    "last_seen": "Last seen ({tz})",
    "declared_type": "Declared type",
    "type": "Number type",
    "valid": "Valid number",
    "declared_country": "Declared country",
    "number_country": "Number's country",
    "parts_saved": "Parts saved",
    "cost_saved_cents": "Cost saved ({cur})",
}

#: What ``parts`` counts in each table.
_PARTS = {"summary": "Parts (over-billed, under-billed, above rate, or saved)"}

#: Checks and findings in words.
_CHECK_WORDS = {
    "parts_over_billed": "parts over-billed",
    "parts_under_billed": "parts under-billed",
    "encoding_mismatch": "encoding differs",
    "above_rate": "above the usual rate",
    "unknown_network": "unknown network",
    "invalid_number": "invalid sender number",
    "country_mismatch": "declared country differs",
    "smart_punctuation": "smart punctuation",
}


def _words(value: Any) -> Any:
    if _is_na(value):
        return value
    return "; ".join(_CHECK_WORDS.get(v, v) for v in str(value).split("; ") if v)


def _major(value: Any) -> Any:
    """Cents -> major units, exact (Decimal; ``scaleb`` keeps every digit)."""
    return None if _is_na(value) else Decimal(value).scaleb(-2)


def _readable(name: str, df: pd.DataFrame, currency: str, tz: str) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for column in df.columns:
        values = df[column]
        if column == "parts":
            header = _PARTS.get(name, "Parts billed")
        else:
            header = _READABLE_COLUMNS.get(column, column.replace("_", " ").capitalize())
        header = header.format(cur=currency, tz=tz)
        if column.endswith("_cents"):
            values = pd.Series([_major(v) for v in values.astype(object)], index=df.index,
                               dtype=object)
        elif column in ("check", "finding"):
            values = values.map(_words)
        elif column == "valid":
            values = values.map(lambda v: v if _is_na(v) else "yes" if v else "no")
        out[header] = values
    out.attrs.update(df.attrs)
    return render.exact_frame(out)


def _json_value(value: Any) -> Any:
    if _is_na(value):
        return None
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value != 0 else "0"
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    return value
