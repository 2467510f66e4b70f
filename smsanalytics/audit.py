"""The billing audit: what Callr billed, checked against the messages themselves.

This module owns the audit. :func:`audit` runs every check over a period and returns an
:class:`AuditResult` of pandas DataFrames; :func:`billing_mismatches` and :func:`above_rate`
are two of those checks on their own. The cost report runs some of the checks on its
period through the package's seam into the audit: :func:`audit_view` (the rows as the
audit sees them), :func:`usual_rates`, :func:`above_rate_findings` and
:func:`mismatch_findings` (public to the package, not in ``__all__``). The checks:

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
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import amounts, arguments, render
from ._analysis import (
    MONEY_TYPE,
    RATIO_TYPE,
    Selection,
    Source,
    TimeBound,
    currency_of,
    dsum,
    is_na,
    isum,
    opened,
    quantize,
    to_frame,
    used_params,
)
from .escape import to_json, write_csv_tables
from .networks import lookup_networks
from .numbers import describe_numbers
from .privacy import TOKEN_PREFIX
from .segments import analyze_array, gsm_lookalike

__all__ = [
    "RATE_MARGIN",
    "MAX_ROWS",
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

#: Rows kept by default in each finding table of :func:`audit` (the summary counts all).
MAX_ROWS = 10_000

_MONTH = "strftime(timezone($tz, created_at), '%Y-%m')"
# The checks that read a sender number, and the rows where it is a token instead.
_NUMBER_CHECKS = ("invalid_number", "country_mismatch")
_TOKEN_CONDITION = f"starts_with(r.from_number, '{TOKEN_PREFIX}')"

# ---------------------------------------------------------------------------------------
# SQL. {rows} is the audit view (the messages with enrichment filled in, see audit_view);
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
# lookups ({fill}, {networks}, {computed}) hold one row per distinct number, network
# code and body; {fill} only the senders whose rows lack a country, {computed} only the
# bodies of rows whose computed columns are null.
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
LEFT JOIN {fill} AS n ON n.number = m.from_number
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
ORDER BY {order}
"""

# The usual rate of each (month, country): the lower median of its messages' per-part
# rates (each message weighs one), found by DuckDB so that no price point travels to
# Python. The median is taken of cost_cents / parts as a double (8 bytes a message: half
# the memory of carrying the exact values along); two different exact rates of 6-decimal
# costs and small part counts never share a double, so the cost and parts of any message
# at that double (USUAL_EXACT_SQL) give the usual rate exactly.
USUAL_RATE_SQL = """
SELECT {month} AS month, from_country AS country,
       quantile_disc(CAST(cost_cents AS DOUBLE) / parts, 0.5) AS rate
FROM {rows}
{where}
GROUP BY ALL
"""

USUAL_EXACT_SQL = """
SELECT u.month, u.country, min({{'cost_cents': r.cost_cents, 'parts': r.parts}}) AS usual
FROM {rows} AS r
JOIN {usual} AS u
  ON {month} IS NOT DISTINCT FROM u.month AND r.from_country IS NOT DISTINCT FROM u.country
 AND CAST(r.cost_cents AS DOUBLE) / r.parts = u.rate
{where}
GROUP BY ALL
"""

#: A row with a per-part rate: a country, a cost and parts.
RATED_CONDITION = "from_country IS NOT NULL AND cost_cents IS NOT NULL AND parts > 0"

# Above-rate messages: {flagged} holds, per (month, country), the threshold a/b above which
# a cost per part is flagged, as whole numbers (exact: cost_cents has 6 decimals).
ABOVE_RATE_CONDITION = (
    "CAST(r.cost_cents * 1000000 AS HUGEINT) * CAST(f.b AS HUGEINT)"
    " > CAST(f.a AS HUGEINT) * r.parts")

# The sort keys of the first above-rate messages: a narrow top-N, whose last key bounds the
# detail query (ABOVE_RATE_SQL) so that it reads and sorts those few messages only (with
# every column, DuckDB held millions of flagged rows to sort them: 1.1 GB at 10 million).
ABOVE_RATE_KEYS_SQL = """
SELECT r.created_at, r.cost_cents
FROM {rows} AS r
JOIN {flagged} AS f
  ON {month} IS NOT DISTINCT FROM f.month AND r.from_country = f.country
{where}
ORDER BY {order}
LIMIT {limit}
"""

ABOVE_RATE_TOTALS_SQL = """
SELECT f.month, f.country, count(*) AS messages, CAST(sum(r.parts) AS BIGINT) AS parts,
       sum(r.cost_cents) AS cost_cents
FROM {rows} AS r
JOIN {flagged} AS f
  ON {month} IS NOT DISTINCT FROM f.month AND r.from_country = f.country
{where}
GROUP BY ALL
"""

# Totals of the billed-vs-computed findings: one row per (billed, computed) pair.
MISMATCH_TOTALS_SQL = """
SELECT parts, computed_parts,
       coalesce(encoding IS NOT NULL AND computed_encoding IS NOT NULL
                AND encoding <> computed_encoding, false) AS encoding_differs,
       count(*) AS messages, sum(cost_cents) AS cost_cents
FROM {rows}
{where}
GROUP BY ALL
"""

SMART_TOTALS_SQL = """
SELECT r.parts, r.computed_parts, l.lookalike_parts, count(*) AS messages,
       sum(r.cost_cents) AS cost_cents
FROM {rows} AS r
JOIN {lookalike} AS l USING (body_text)
{where}
GROUP BY ALL
"""

# Totals of a grouped check (networks, numbers): its rows, messages and cost.
GROUPED_TOTALS_SQL = """
SELECT count(*) AS rows, CAST(coalesce(sum(messages), 0) AS BIGINT) AS messages,
       sum(cost_cents) AS cost_cents
FROM ({query})
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
{where}
ORDER BY {order}
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
    found : dict of str to int
        Rows each finding table had before the `max_rows` cap (a table missing here was
        not capped).
    max_rows : int or None
        The cap on the rows of each finding table (None: every row kept).
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
    found: dict[str, int] = field(default_factory=dict)
    max_rows: int | None = None

    _TABLES: ClassVar[tuple[str, ...]] = (
        "summary", "mismatches", "rates", "above_rate", "unknown_networks", "invalid_numbers",
        "country_mismatch", "smart_punctuation")

    def __post_init__(self) -> None:
        # Shown as money in a notebook (never 0E-10); the values underneath stay exact.
        for name in self._TABLES:
            setattr(self, name, amounts.exact_frame(getattr(self, name)))

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
            total = self.found.get(name, len(df))
            blocks: list[render.Block | render.Section] = [
                render.frame_table(df, tz=self.tz, limit=max_rows)]
            if max_rows is not None and len(df) > max_rows:
                blocks.append(render.Paragraph(
                    f"… {len(df) - max_rows:,} more rows (result.{name})"))
            if total > len(df):
                blocks.append(render.Paragraph(
                    f"The audit kept the first {len(df):,} of these {total:,} rows "
                    f"(max_rows); the summary counts and sums all of them.", "note"))
            sections.append(render.Section(f"{name.replace('_', ' ')} ({total:,})",
                                           blocks, 3))
        return render.Page("Billing audit", subtitle, sections, css_class="smsa-audit")

    def _repr_html_(self) -> str:
        return self.to_html(max_rows=10)

    def __repr__(self) -> str:
        found = ", ".join(
            f"{check}={n}"
            for check, n in zip(self.summary["check"], self.summary["messages"], strict=True)
            if n
        )
        return f"<AuditResult {found or 'clean'}>"


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------


def audit(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | tzinfo = "UTC",
    currency: str | None = None,
    rate_margin: Decimal | str | float = RATE_MARGIN,
    max_rows: int | None = MAX_ROWS,
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
    tz : str or ZoneInfo
        IANA time zone of the months (rates and usual rates are per month in `tz`).
    currency : str, optional
        Label of the account currency (``"EUR"``), kept in the result; never guessed.
    rate_margin : Decimal or str
        A message is above rate when its cost per part exceeds its country's usual rate
        that month times ``1 + rate_margin``.
    max_rows : int or None
        Rows kept in each finding table (the first by time, or by the order the table
        states); None keeps them all. The summary counts and sums every finding whatever
        this cap, and :attr:`AuditResult.found` says how many rows each table had.

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
    >>> import tempfile, smsanalytics
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = smsanalytics.convert(["sample_data"], f"{tmp.name}/ds", quiet=True)
    >>> a = audit(f"{tmp.name}/ds", currency="EUR")
    >>> over = a.summary.set_index("check").loc["parts_over_billed"]
    >>> int(over["messages"]), str(over["at_stake_cents"])
    (10, '16.3175000000')
    >>> tmp.cleanup()
    """
    margin = arguments.margin(rate_margin)
    bounds = arguments.bounds(start, end, tz)
    currency = arguments.currency_label(currency)
    if max_rows is not None:
        max_rows = arguments.positive_int(max_rows, "max_rows")
    with opened(source, currency=currency) as con:
        label = currency_of(con, currency)
        selection = Selection(bounds)
        where, params = selection.where()
        # A pseudonymised sender is a token, not a number: the number checks skip it.
        sql = TOKENS_SQL.format(where=_and(where, _TOKEN_CONDITION))
        tokens = int(_arrow(con, sql, params).column(0)[0].as_py())
        with audit_view(con, selection, numbers=True) as view:
            mismatches, found, rows = mismatch_findings(view, max_rows)
            counts = {"mismatches": rows}
            usual = usual_rates(con, view.names["rows"], selection, by_month=True)
            rates = _rates(view, usual)
            above, groups = above_rate_findings(view, margin, by_month=True, limit=max_rows,
                                                usual=usual)
            found["above_rate"] = Found(
                messages=sum(g.messages for g in groups),
                parts=sum(g.parts or 0 for g in groups),
                cost=dsum(g.cost_cents for g in groups),
                stake=sum((g.excess for g in groups), Fraction(0)))
            counts["above_rate"] = found["above_rate"].messages
            grouped = {}
            for check, table, template, condition in (
                ("unknown_network", "unknown_networks", UNKNOWN_NETWORKS_SQL,
                 "network IS NOT NULL AND (network_country IS NULL "
                 "OR network_operator IS NULL)"),
                ("invalid_number", "invalid_numbers", INVALID_NUMBERS_SQL,
                 f"r.from_number IS NOT NULL AND NOT {_TOKEN_CONDITION} "
                 "AND (r.from_type = 'UNKNOWN' OR n.valid IS NOT TRUE)"),
                ("country_mismatch", "country_mismatch", COUNTRY_MISMATCH_SQL,
                 f"r.source = 'actions' AND r.from_country IS NOT NULL "
                 f"AND NOT {_TOKEN_CONDITION} "
                 "AND n.country IS NOT NULL AND r.from_country <> n.country"),
            ):
                grouped[table], found[check], counts[table] = _grouped(
                    view, template, condition, max_rows)
            smart, found["smart_punctuation"] = _smart_punctuation(view, max_rows)
            counts["smart_punctuation"] = found["smart_punctuation"].messages
    result = AuditResult(
        summary=_summary(found, tokens), mismatches=mismatches, rates=rates, above_rate=above,
        unknown_networks=grouped["unknown_networks"],
        invalid_numbers=grouped["invalid_numbers"],
        country_mismatch=grouped["country_mismatch"], smart_punctuation=smart,
        start=bounds.start, end=bounds.end, tz=bounds.tz, currency=label, rate_margin=margin,
        pseudonymised_senders=tokens, found=counts, max_rows=max_rows,
    )
    for df in result.tables().values():
        df.attrs.update({"question": "audit", "tz": bounds.tz, "currency": label})
    return result


def billing_mismatches(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | tzinfo = "UTC",
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
    bounds = arguments.bounds(start, end, tz)
    with opened(source) as con, audit_view(con, Selection(bounds), numbers=False) as view:
        return mismatch_findings(view)[0]


def above_rate(
    source: Source,
    *,
    start: TimeBound = None,
    end: TimeBound = None,
    tz: str | tzinfo = "UTC",
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
    bounds = arguments.bounds(start, end, tz)
    with opened(source) as con, audit_view(con, Selection(bounds), numbers=False) as view:
        return above_rate_findings(view, margin, by_month=by_month)[0]


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
# The audit view: messages with enrichment filled in where it is missing. The view and
# the checks below are the package's seam into the audit: the cost report runs them on
# its period (they are not in __all__; their signatures follow the report's needs).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    """The messages of a selection as the audit sees them, on one connection.

    Made by :func:`audit_view`, and usable only inside its ``with`` block (the tables it
    names are dropped on exit).

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        The connection the view and its lookup tables live on.
    selection : Selection
        The rows audited: the period (aware UTC bounds) and the time zone of the months.
    names : dict of str to str
        The names to put in the SQL templates: ``rows`` (the view), ``numbers``,
        ``lookalike``, ``computed``, ``networks``, ``fill``.
    """

    con: duckdb.DuckDBPyConnection
    selection: Selection
    names: dict[str, str]

    @property
    def tz(self) -> str:
        """The IANA name of the time zone of the months (what DuckDB's ``$tz`` is)."""
        return self.selection.tz

    def where(self, condition: str | None = None) -> tuple[str, dict[str, Any]]:
        """Return the selection's WHERE clause, with `condition` added, and its parameters."""
        where, params = self.selection.where()
        return (where if condition is None else _and(where, condition)), params


@contextmanager
def audit_view(con: duckdb.DuckDBPyConnection, selection: Selection, *,
               numbers: bool) -> Iterator[AuditView]:
    """Create the audit's lookup tables and view of `selection` on `con`; drop them on exit.

    Lookups are computed once per distinct body, network code and number, only where the
    stored column is null.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection with the ``messages`` view.
    selection : Selection
        The rows to audit.
    numbers : bool
        Describe every sender number (the number checks need them); False: only the
        senders whose country is missing.

    Yields
    ------
    AuditView
        The view and the names of its tables.
    """
    where, params = selection.where()
    tag = uuid.uuid4().hex[:12]
    names = {k: f"_smsanalytics_audit_{k}_{tag}"
             for k in ("rows", "computed", "networks", "numbers", "fill", "lookalike")}
    registered: list[str] = []

    def register(key: str, table: pa.Table) -> None:
        con.register(names[key], table)
        registered.append(names[key])

    def distinct(column: str, condition: str, table: str = "messages") -> list[Any]:
        sql = DISTINCT_SQL.format(column=column, table=table, where=_and(where, condition))
        values: list[Any] = _arrow(con, sql, params).column(0).to_pylist()
        return values

    try:
        bodies = distinct("body_text", "(computed_parts IS NULL OR computed_encoding IS NULL) "
                          "AND body_text IS NOT NULL")
        computed = analyze_array(pa.array(bodies, pa.string()))
        register("computed", computed.add_column(0, "body_text", pa.array(bodies, pa.string())))
        register("networks", lookup_networks(distinct("network", "network IS NOT NULL")))
        # Every sender is described when the number checks run; otherwise only those whose
        # country the rates need.
        senders = f"from_number IS NOT NULL AND NOT {_TOKEN_CONDITION.replace('r.', '')}"
        unplaced = distinct("from_number", f"{senders} AND from_country IS NULL")
        described = describe_numbers(distinct("from_number", senders) if numbers
                                     else unplaced)
        register("numbers", described)
        # The view joins only the senders it fills a country for: a join of every row
        # with every sender would cost each query over the view a hash join.
        register("fill", described.filter(pc.is_in(described.column("number"),
                                                   pa.array(unplaced, pa.string())))
                 if numbers else described)
        con.execute(ROWS_VIEW_SQL.format(**names))
        # Look-alikes only for the bodies that can change: unicode ones (the substituted
        # characters are all outside GSM) and the mismatching ones, to show them.
        wanted = (f"(computed_encoding = 'unicode' OR {MISMATCH_CONDITION}) "
                  "AND body_text IS NOT NULL")
        texts = distinct("body_text", wanted, names["rows"])
        after = analyze_array(pa.array([gsm_lookalike(t) for t in texts], pa.string()))
        register("lookalike", after.select(["computed_encoding", "computed_parts"])
                 .rename_columns(["lookalike_encoding", "lookalike_parts"])
                 .add_column(0, "body_text", pa.array(texts, pa.string())))
        yield AuditView(con, selection, names)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {names['rows']}")
        for name in registered:
            con.unregister(name)


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


@dataclass
class Found:
    """What one check found, over every row: the figures of its line in the summary.

    Attributes
    ----------
    messages : int
        Messages found.
    parts : int or None
        Parts at stake (over-billed, under-billed, above rate or saveable); None where
        parts are not the check's question.
    cost : Decimal
        What those messages cost [cents].
    stake : Fraction or None
        What may have been charged too much [cents], exact; None where the check is not
        about an amount.
    """

    messages: int = 0
    parts: int | None = None
    cost: Decimal = Decimal(0)
    stake: Fraction | None = None


@dataclass(frozen=True)
class AboveRateGroup:
    """The above-rate messages of one (month, country), all of them, summed.

    Attributes
    ----------
    month : str or None
        ``YYYY-MM`` in the time zone; None when the usual rate is over the whole period.
    country : str or None
        Sender country.
    usual : Fraction
        The usual rate [cents per part], exact.
    messages, parts : int
        Above-rate messages and their parts.
    cost_cents : Decimal
        Their cost [cents].
    excess : Fraction
        Their cost above the usual rate (cost minus usual rate times parts) [cents].
    """

    month: str | None
    country: str | None
    usual: Fraction
    messages: int
    parts: int
    cost_cents: Decimal
    excess: Fraction


#: Usual rates [cents per part] by (month, country); month None: over the whole period.
UsualRates = dict[tuple[str | None, str | None], Fraction]


def _limited(sql: str, limit: int | None) -> str:
    return sql if limit is None else f"{sql}\nLIMIT {int(limit)}"


#: The order of detail rows: by time (SQL ``ORDER BY`` over the view aliased ``r``).
BY_TIME = "r.created_at, r.sid"
#: The order of detail rows: the most expensive first, then by time.
BY_COST = "r.cost_cents DESC NULLS LAST, r.created_at, r.sid"


def mismatch_findings(view: AuditView, limit: int | None = None, order: str = BY_TIME
                      ) -> tuple[pd.DataFrame, dict[str, Found], int]:
    """The billed-vs-computed check (:attr:`AuditResult.mismatches`) on `view`.

    Parameters
    ----------
    view : AuditView
        The rows to check.
    limit : int, optional
        Detail rows kept (all by default).
    order : str
        Order of the detail rows: :data:`BY_TIME` or :data:`BY_COST`.

    Returns
    -------
    pandas.DataFrame
        The first `limit` mismatching messages in `order`, as
        :attr:`AuditResult.mismatches`.
    dict of str to Found
        The totals over all of them of ``parts_over_billed``, ``parts_under_billed`` and
        ``encoding_mismatch``.
    int
        How many messages mismatch.
    """
    condition, params = view.where(MISMATCH_CONDITION)
    found = {"parts_over_billed": Found(parts=0, stake=Fraction(0)),
             "parts_under_billed": Found(parts=0, stake=Fraction(0)),
             "encoding_mismatch": Found()}
    rows = 0
    for g in _arrow(view.con, MISMATCH_TOTALS_SQL.format(**view.names, where=condition),
                    params).to_pylist():
        billed, needed, n, cost = g["parts"], g["computed_parts"], g["messages"], g["cost_cents"]
        rows += n
        if billed is not None and needed is not None and billed != needed:
            f = found["parts_over_billed" if billed > needed else "parts_under_billed"]
            f.messages += n
            f.parts = (f.parts or 0) + abs(billed - needed) * n
            f.cost += cost or 0
            if billed > needed and billed > 0 and cost is not None:
                # The cost of the parts billed beyond those the body needs (a sum of costs
                # of one (billed, needed) pair times the same share).
                f.stake = (f.stake or 0) + Fraction(cost) * (billed - needed) / billed
        if g["encoding_differs"]:
            found["encoding_mismatch"].messages += n
            found["encoding_mismatch"].cost += cost or 0
    sql = _limited(MISMATCHES_SQL.format(**view.names, where=condition, order=order), limit)
    table = _arrow(view.con, sql, params)
    differences: list[int | None] = []
    stakes: list[Decimal] = []
    findings: list[str] = []
    for r in table.select(["encoding", "parts", "computed_encoding", "computed_parts",
                           "cost_cents"]).to_pylist():
        billed, needed, cost = r["parts"], r["computed_parts"], r["cost_cents"]
        kinds = []
        difference = None
        stake = Fraction(0)
        if billed is not None and needed is not None:
            difference = billed - needed
            if difference > 0:
                kinds.append("parts_over_billed")
                if billed > 0 and cost is not None:
                    stake = Fraction(cost) * difference / billed
            elif difference < 0:
                kinds.append("parts_under_billed")
        enc, enc_needed = r["encoding"], r["computed_encoding"]
        if enc is not None and enc_needed is not None and str(enc) != str(enc_needed):
            kinds.append("encoding_mismatch")
        differences.append(difference)
        stakes.append(quantize(stake))
        findings.append("; ".join(kinds))
    table = (table.append_column("parts_difference", pa.array(differences, pa.int32()))
                  .append_column("cost_at_stake_cents", pa.array(stakes, RATIO_TYPE))
                  .append_column("finding", pa.array(findings, pa.string())))
    return to_frame(table, view.tz), found, rows


def _month_of(by_month: bool, alias: str = "") -> str:
    return _MONTH.replace("created_at", f"{alias}created_at") if by_month else \
        "CAST(NULL AS VARCHAR)"


def usual_rates(con: duckdb.DuckDBPyConnection, rows: str, selection: Selection, *,
                by_month: bool, unknown_country: bool = False) -> UsualRates:
    """The usual rate of each (month, country) of the rows `selection` picks in `rows`.

    The usual rate is the lower median of the messages' per-part costs, each message
    weighing one (:func:`usual_rate`), found by DuckDB: no price point travels to Python.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection.
    rows : str
        The table or view to read: the audit view (:attr:`AuditView.names` ``["rows"]``)
        or ``messages``.
    selection : Selection
        The rows to rate, and the time zone of the months.
    by_month : bool
        One rate per month in the time zone; False: one over the whole period (month
        None).
    unknown_country : bool
        Rate the messages without a sender country too (country None): the cost report
        shows their rate.

    Returns
    -------
    dict of (str or None, str or None) to Fraction
        The exact usual rate [cents per part] by (month, country).
    """
    where, params = selection.where()
    params = {**params, "tz": selection.tz}
    rated = RATED_CONDITION.replace("from_country IS NOT NULL AND ", "") \
        if unknown_country else RATED_CONDITION
    sql = USUAL_RATE_SQL.format(rows=rows, month=_month_of(by_month),
                                where=_and(where, rated))
    rates = _arrow(con, sql, params)
    name = f"_smsanalytics_usual_{uuid.uuid4().hex[:12]}"
    con.register(name, rates)
    try:
        sql = USUAL_EXACT_SQL.format(rows=rows, usual=name, month=_month_of(by_month, "r."),
                                     where=_and(where, rated))
        exact = _arrow(con, sql, params).to_pylist()
    finally:
        con.unregister(name)
    return {(p["month"], p["country"]):
            Fraction(p["usual"]["cost_cents"]) / p["usual"]["parts"] for p in exact}


def _rates(view: AuditView, usual: UsualRates) -> pd.DataFrame:
    where, params = view.where()
    table = _arrow(view.con, RATES_SQL.format(**view.names, month=_MONTH, where=where),
                   {**params, "tz": view.tz})
    rates: list[Decimal | None] = []
    usuals: list[Decimal | None] = []
    for r in table.select(["month", "country", "rated_cost_cents", "rated_parts"]).to_pylist():
        cost, parts = r["rated_cost_cents"], r["rated_parts"]
        rates.append(quantize(Fraction(cost) / parts) if cost is not None and parts else None)
        found = usual.get((r["month"], r["country"]))
        usuals.append(None if found is None else quantize(found))
    table = (table.drop_columns(["rated_cost_cents", "rated_parts"])
                  .append_column("rate_cents", pa.array(rates, RATIO_TYPE))
                  .append_column("usual_rate_cents", pa.array(usuals, RATIO_TYPE)))
    return to_frame(table, view.tz)


def above_rate_findings(
    view: AuditView, margin: Decimal, *, by_month: bool, limit: int | None = None,
    most_expensive: bool = False, usual: UsualRates | None = None,
) -> tuple[pd.DataFrame, list[AboveRateGroup]]:
    """The above-rate check (:attr:`AuditResult.above_rate`) on `view`.

    Parameters
    ----------
    view : AuditView
        The rows to check.
    margin : Decimal
        A message is above rate when its cost per part exceeds the usual rate times
        ``1 + margin``.
    by_month : bool
        Usual rates per month in the time zone; False: over the whole period.
    limit : int, optional
        Detail rows kept (all by default).
    most_expensive : bool
        Keep the most expensive first (:data:`BY_COST`) rather than the first by time.
    usual : dict, optional
        The usual rates, if :func:`usual_rates` found them already (with `by_month`).

    Returns
    -------
    pandas.DataFrame
        The first `limit` above-rate messages, as :attr:`AuditResult.above_rate`.
    list of AboveRateGroup
        Per (month, country), the usual rate and the totals of all of them.
    """
    if usual is None:
        usual = usual_rates(view.con, view.names["rows"], view.selection, by_month=by_month)
    con, names = view.con, view.names
    factor = 1 + Fraction(margin)
    name = names["rows"].replace("_rows_", "_flagged_")
    keys = list(usual)
    thresholds = [usual[k] * factor for k in keys]
    con.register(name, pa.table({
        "month": pa.array([k[0] for k in keys], pa.string()),
        "country": pa.array([k[1] for k in keys], pa.string()),
        # cost/parts > n/d  <=>  (cost * 10^6) * d > (n * 10^6) * parts, in whole numbers.
        "a": pa.array([Decimal(t.numerator * 10**6) for t in thresholds],
                      pa.decimal128(38, 0)),
        "b": pa.array([Decimal(t.denominator) for t in thresholds], pa.decimal128(38, 0)),
    }))
    condition, params = view.where(f"r.parts > 0 AND {ABOVE_RATE_CONDITION}")
    params = {**params, "tz": view.tz}
    month = _month_of(by_month, "r.")
    order = BY_COST if most_expensive else BY_TIME
    try:
        totals = _arrow(con, ABOVE_RATE_TOTALS_SQL.format(**names, flagged=name, month=month,
                                                          where=condition),
                        params).to_pylist()
        detail = condition
        if limit is not None:
            first = _arrow(con, ABOVE_RATE_KEYS_SQL.format(
                **names, flagged=name, month=month, where=condition, order=order,
                limit=int(limit)), params)
            # Every one of the first `limit` rows is at or before the last key.
            key = "cost_cents" if most_expensive else "created_at"
            values = first.column(key)
            if len(values) == limit and values.null_count == 0:
                params = {**params, "last_key": values[-1].as_py()}
                detail = _and(condition, f"r.{key} {'>=' if most_expensive else '<='} "
                                         "$last_key")
        sql = _limited(ABOVE_RATE_SQL.format(**names, flagged=name, month=month,
                                             where=detail, order=order), limit)
        table = _arrow(con, sql, params)
    finally:
        con.unregister(name)
    groups = []
    for g in totals:
        rate = usual[(g["month"], g["country"])]
        groups.append(AboveRateGroup(
            month=g["month"], country=g["country"], usual=rate, messages=g["messages"],
            parts=g["parts"], cost_cents=g["cost_cents"],
            excess=Fraction(g["cost_cents"]) - rate * g["parts"]))
    rates, usuals, excesses = [], [], []
    for r in table.select(["month", "country", "parts", "cost_cents"]).to_pylist():
        rate = usual[(r["month"], r["country"])]
        rates.append(quantize(Fraction(r["cost_cents"]) / r["parts"]))
        usuals.append(quantize(rate))
        excesses.append(quantize(Fraction(r["cost_cents"]) - rate * r["parts"]))
    table = (table.append_column("rate_cents", pa.array(rates, RATIO_TYPE))
                  .append_column("usual_rate_cents", pa.array(usuals, RATIO_TYPE))
                  .append_column("excess_cents", pa.array(excesses, RATIO_TYPE)))
    return to_frame(table, view.tz), groups


def _smart_punctuation(view: AuditView, limit: int | None = None
                       ) -> tuple[pd.DataFrame, Found]:
    cond, params = view.where(
        "r.computed_encoding = 'unicode' AND l.lookalike_encoding = 'gsm'")
    found = Found(parts=0, stake=Fraction(0))
    for g in _arrow(view.con, SMART_TOTALS_SQL.format(**view.names, where=cond),
                    params).to_pylist():
        saved, base = _saved(g)
        found.messages += g["messages"]
        found.cost += g["cost_cents"] or 0
        if saved is not None:
            found.parts = (found.parts or 0) + saved * g["messages"]
            if base and g["cost_cents"] is not None:
                found.stake = (found.stake or 0) + Fraction(g["cost_cents"]) * saved / base
    table = _arrow(view.con, _limited(SMART_PUNCTUATION_SQL.format(**view.names, where=cond),
                                      limit), params)
    saved_parts: list[int | None] = []
    saved_cost: list[Decimal | None] = []
    for r in table.select(["parts", "computed_parts", "lookalike_parts",
                           "cost_cents"]).to_pylist():
        saved, base = _saved(r)
        cost = None
        if saved is not None and base and r["cost_cents"] is not None:
            cost = quantize(Fraction(r["cost_cents"]) * saved / base)
        saved_parts.append(saved)
        saved_cost.append(cost)
    table = (table.append_column("parts_saved", pa.array(saved_parts, pa.int32()))
                  .append_column("cost_saved_cents", pa.array(saved_cost, RATIO_TYPE)))
    return to_frame(table, view.tz), found


def _saved(r: dict[str, Any]) -> tuple[int | None, int | None]:
    """Parts a message would save with plain punctuation, and the parts it is measured
    against: those billed (the computed ones when the billed ones are missing)."""
    base: int | None = r["parts"] if r["parts"] is not None else r["computed_parts"]
    return (None if base is None else max(0, base - r["lookalike_parts"])), base


def _grouped(view: AuditView, template: str, condition: str, limit: int | None
             ) -> tuple[pd.DataFrame, Found, int]:
    """A grouped check (networks, numbers): its first `limit` rows, its totals, its rows."""
    where, params = view.where(condition)
    query = template.format(**view.names, where=where)
    df = to_frame(_arrow(view.con, _limited(query, limit), params), view.tz)
    if limit is None or len(df) < limit:  # every row is here: sum them
        return (df, Found(messages=isum(df["messages"]), cost=dsum(df["cost_cents"])),
                len(df))
    totals = _arrow(view.con, GROUPED_TOTALS_SQL.format(query=query), params).to_pylist()[0]
    found = Found(messages=int(totals["messages"]), cost=Decimal(totals["cost_cents"] or 0))
    return df, found, int(totals["rows"])


def _summary(found: dict[str, Found], tokens: int = 0) -> pd.DataFrame:
    """One row per check: messages, parts and cost found, and the amount at stake."""
    skipped = (f" (not checked for the {tokens:,} messages whose sender is a pseudonymised "
               "token, not a number)") if tokens else ""
    records = [{"check": check, "messages": f.messages, "parts": f.parts, "cost_cents": f.cost,
                "at_stake_cents": None if f.stake is None else quantize(f.stake),
                "meaning": CHECKS[check] + (skipped if check in _NUMBER_CHECKS else "")}
               for check, f in ((c, found[c]) for c in CHECKS)]
    columns: list[tuple[str, pa.DataType]] = [
        ("check", pa.string()), ("messages", pa.int64()), ("parts", pa.int64()),
        ("cost_cents", MONEY_TYPE), ("at_stake_cents", RATIO_TYPE), ("meaning", pa.string())]
    schema = pa.schema(columns)
    return to_frame(pa.Table.from_pylist(records, schema=schema), "UTC")


# ---------------------------------------------------------------------------------------
# Helpers: SQL, exact numbers, output
# ---------------------------------------------------------------------------------------


def _and(where: str, condition: str) -> str:
    """Add `condition` to a WHERE clause (or start one)."""
    return f"{where}\n  AND {condition}" if where else f"WHERE {condition}"


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    # to_arrow_table reads the result to the end, so the connection is free afterwards.
    table: pa.Table = con.sql(sql, params=used_params(sql, params)).to_arrow_table()
    return table


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
    if is_na(value):
        return value
    return "; ".join(_CHECK_WORDS.get(v, v) for v in str(value).split("; ") if v)


def _major(value: Any) -> Any:
    """Cents -> major units, exact (Decimal; ``scaleb`` keeps every digit)."""
    return None if is_na(value) else Decimal(value).scaleb(-2)


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
            values = values.map(lambda v: v if is_na(v) else "yes" if v else "no")
        out[header] = values
    out.attrs.update(df.attrs)
    return amounts.exact_frame(out)


def _json_value(value: Any) -> Any:
    if is_na(value):
        return None
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value != 0 else "0"
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    return value
