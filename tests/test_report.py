"""Tests of smsanalytics.report: totals against hand-computed answers, periods, escaping."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest

from smsanalytics import dataset, queries
from smsanalytics.ingest import ConversionSummary
from smsanalytics.report import CostReport, Period, cost_report, default_period
from smsanalytics.schema import MESSAGE_SCHEMA

PARIS = "Europe/Paris"
TO1, TO2 = "+33639980042", "+33639983040"
XSS = "<script>alert(1)</script>"


def _t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (sid, created_at UTC, from, to, country, network, parts, cost [cents], body, computed)
# Known answers, worked out by hand:
# * m00 is February in UTC, March in Paris; m07 is March in UTC, April in Paris.
# * March, UTC:   4 x 0.8925 + 1.785 + 1226.645 + 2.5 = 1234.5000 cents = 12.345 EUR,
#   shown 12.34 (half-even). Three 0.8925 alone make 2.6775, which floats miss.
# * March, Paris: 1.0 + 3 x 0.8925 + 1.785 + 1226.645 + 2.5 = 1234.6075 cents.
# * February: UTC 1.0 + 1.5 + 2.0 = 4.5 cents; Paris 3.5 cents.
# * m10 (2.5 cents, 1 part) is above FR's usual 0.8925 per part by 1.6075 cents.
# * m09 was billed 3 parts for a body needing 2: a third of 1226.645 cents is extra.
_ROWS: list[tuple[Any, ...]] = [
    ("m00", _t(2025, 2, 28, 23, 30), "+33600000000", TO1, "FR", "20801", 1, "1.0", "hi", None),
    ("m01", _t(2025, 2, 10, 10), "+33600000001", TO1, "FR", "20801", 1, "1.5", "a", None),
    ("m02", _t(2025, 2, 20, 10), "+32470000002", TO1, "BE", "20601", 2, "2.0", "b", None),
    ("m03", _t(2025, 3, 3, 9), "+33600000003", TO1, "FR", "20801", 1, "0.8925", "c", None),
    ("m04", _t(2025, 3, 4, 9), "+33600000003", TO1, "FR", "20801", 1, "0.8925", "d", None),
    ("m05", _t(2025, 3, 5, 9), "+33600000003", TO1, "FR", "208|01", 1, "0.8925", "e", None),
    ("m06", _t(2025, 3, 15, 9), "+32470000002", TO1, "BE", "20601", 2, "1.785", "f", 2),
    ("m07", _t(2025, 3, 31, 22, 30), "+33600000004", TO1, "FR", "20801", 1, "0.8925", "g",
     None),
    ("m09", _t(2025, 3, 16, 12), "+41790000009", TO2, "CH", "22801", 3, "1226.645",
     "long", 2),
    ("m10", _t(2025, 3, 20, 8), "=1+2", TO1, "FR", "20801", 1, "2.5", XSS, None),
    ("m08", _t(2025, 4, 10, 12), "+33600000001", TO1, "FR", "20801", 1, "0.8925", "h", None),
    ("m11", None, "+33600000001", TO1, "FR", "20801", 1, "0.1", "no date", None),
]


def rows() -> list[dict[str, Any]]:
    """The fixture's messages as plain dicts."""
    out = []
    for sid, at, frm, to, country, network, parts, cost, body, computed in _ROWS:
        out.append({
            "sid": sid, "direction": "inbound", "created_at": at, "from_number": frm,
            "to_number": to, "from_country": country, "network": network, "parts": parts,
            "cost_cents": Decimal(cost), "body_text": body, "encoding": "gsm",
            "computed_parts": computed, "computed_encoding": None if computed is None else
            ("gsm" if sid != "m06" else "unicode"),
            "traffic_type": "alerting" if sid == "m09" else "marketing",
            "payment_type": "prepaid" if country == "BE" else "postpaid",
            "network_operator": {"20801": "Orange"}.get(network), "source": "webhook",
        })
    return out


def table() -> pa.Table:
    """The fixture as an Arrow table with MESSAGE_SCHEMA."""
    return pa.Table.from_pylist(rows(), schema=MESSAGE_SCHEMA)


MARCH = {"start": "2025-03-01", "end": "2025-04-01"}


@pytest.fixture(scope="module")
def utc() -> CostReport:
    return cost_report(table(), **MARCH, tz="UTC", currency="EUR")


@pytest.fixture(scope="module")
def paris() -> CostReport:
    return cost_report(table(), **MARCH, tz=PARIS, currency="EUR")


def _expected(start: datetime, end: datetime) -> tuple[int, int, Decimal]:
    """Messages, parts and cost of [start, end), straight from the rows (no SQL)."""
    picked = [r for r in rows() if r["created_at"] is not None
              and start <= r["created_at"] < end]
    return (len(picked), sum(r["parts"] for r in picked),
            sum((r["cost_cents"] for r in picked), Decimal(0)))


# -- totals ------------------------------------------------------------------------------


def test_headline_totals_are_exact_in_utc(utc: CostReport) -> None:
    h = utc.headline.set_index("metric")
    assert utc.total_cents() == Decimal("1234.5")
    assert h.loc["cost", "current"] == Decimal("12.345")
    assert h.loc["messages", "current"] == 7
    assert h.loc["parts", "current"] == 10
    assert _expected(_t(2025, 3, 1), _t(2025, 4, 1)) == (7, 10, Decimal("1234.5"))
    assert h.loc["cost", "previous"] == Decimal("0.045")
    assert h.loc["cost", "change"] == Decimal("12.3")
    assert h.loc["cost_per_part", "current"] == Decimal("1.2345")
    # Ratios are exact to 1e-10 cent: 1234.5 / 7 = 176.3571428571(428...) cents.
    assert h.loc["cost_per_message", "current"] == Decimal("1.763571428571")


def test_three_times_0_8925_cents_adds_up_exactly() -> None:
    t = table().filter(pa.compute.is_in(pa.compute.field("sid"), pa.array(["m03", "m04",
                                                                          "m05"])))
    r = cost_report(t, start="2025-03-01", end="2025-04-01")
    assert r.total_cents() == Decimal("2.6775")


def test_time_zone_moves_the_month_boundary(utc: CostReport, paris: CostReport) -> None:
    assert paris.total_cents() == Decimal("1234.6075")
    assert paris.total_cents("previous") == Decimal("3.5")
    assert utc.total_cents("previous") == Decimal("4.5")
    assert int(paris.headline.set_index("metric").loc["messages", "current"]) == 7
    assert _expected(datetime(2025, 3, 1, tzinfo=ZoneInfo(PARIS)),
                     datetime(2025, 4, 1, tzinfo=ZoneInfo(PARIS)))[2] == Decimal("1234.6075")
    months = {m.strftime("%Y-%m"): c
              for m, c in zip(paris.by_month["month"], paris.by_month["cost_cents"], strict=True)
              if not pd.isna(m)}
    assert months["2025-04"] == Decimal("0.8925") * 2  # m07 and m08


def test_rounding_is_half_even_for_display_only(utc: CostReport, paris: CostReport) -> None:
    assert "12.34 <small>EUR</small>" in utc.to_html()  # 12.345 -> 12.34 (half-even)
    assert "12.35 <small>EUR</small>" in paris.to_html()  # 12.346075 -> 12.35
    assert "12.345" in utc.to_markdown()  # the reconciliation keeps every decimal


def test_every_breakdown_sums_to_the_headline(utc: CostReport) -> None:
    total = utc.total_cents()
    for name in ("by_country", "by_operator", "by_traffic_type", "by_payment_type",
                 "by_recipient", "rates"):
        df = getattr(utc, name)
        assert sum(df["cost_cents"].dropna(), Decimal(0)) == total, name
    assert utc.reconciled
    assert utc.reconciliation["ok"].all() and len(utc.reconciliation) == 7
    by_country = utc.by_country.set_index("country")
    assert by_country.loc["FR", "cost_cents"] == Decimal("0.8925") * 4 + Decimal("2.5")
    assert by_country.loc["BE", "previous_cost_cents"] == Decimal("2.0")
    assert by_country.loc["BE", "change_cents"] == Decimal("-0.215")


def test_excluded_rows_are_counted(utc: CostReport) -> None:
    ex = utc.excluded.set_index("excluded")
    assert ex.loc["before the period", "messages"] == 3
    assert ex.loc["before the period", "cost_cents"] == Decimal("4.5")
    assert ex.loc["after the period", "messages"] == 1
    assert ex.loc["no created_at", "messages"] == 1
    assert ex.loc["no created_at", "cost_cents"] == Decimal("0.1")
    everything = sum((r["cost_cents"] for r in rows()), Decimal(0))
    assert sum(utc.by_month["cost_cents"].dropna(), Decimal(0)) == everything


def test_rates_and_above_rate_messages(utc: CostReport) -> None:
    rates = utc.rates.set_index("country")
    assert rates.loc["FR", "usual_rate_cents"] == Decimal("0.8925")
    assert rates.loc["FR", "previous_usual_rate_cents"] == Decimal("1.0")  # median of 1.0, 1.5
    assert rates.loc["FR", "usual_rate_change_cents"] == Decimal("-0.1075")
    assert rates.loc["BE", "usual_rate_cents"] == Decimal("0.8925")
    above = utc.above_rate.set_index("country")
    assert list(above.index) == ["FR"]
    assert above.loc["FR", "messages"] == 1
    assert above.loc["FR", "excess_cents"] == Decimal("1.6075")
    assert list(utc.above_rate_examples["sid"]) == ["m10"]


def test_billing_audit_when_computed_columns_exist(utc: CostReport) -> None:
    assert utc.audit is not None
    audit = utc.audit.set_index("finding")
    above = audit.loc["parts billed above those needed"]
    assert above["messages"] == 1 and above["cost_cents"] == Decimal("1226.645")
    assert above["excess_cents"] == (Decimal("1226.645") / 3).quantize(Decimal("1e-10"))
    assert audit.loc["encoding differs from the one needed", "messages"] == 1
    assert set(utc.audit_examples["sid"]) == {"m06", "m09"}


def test_no_audit_without_computed_columns() -> None:
    t = table().drop_columns(["computed_parts", "computed_encoding"])
    r = cost_report(t, **MARCH)
    assert r.audit is None and r.audit_examples is None
    assert "Not available" in r.to_html()


def test_top_senders_by_cost(utc: CostReport) -> None:
    assert utc.top_senders["from_number"].iloc[0] == "+41790000009"
    r = cost_report(table(), **MARCH, top=2)
    assert len(r.top_senders) == 2


# -- periods -----------------------------------------------------------------------------


def test_default_period_is_the_last_full_month() -> None:
    r = cost_report(table())  # latest message 2025-04-10: April is not complete
    assert r.period.label == "March 2025" and r.previous.label == "February 2025"
    assert r.period.start == datetime(2025, 3, 1, tzinfo=UTC)


def test_default_period_tz_changes_the_month() -> None:
    last = _t(2025, 3, 31, 22, 30)  # 31 March in UTC, 1 April in Paris
    assert default_period(_t(2025, 1, 5), last, "UTC").label == "March 2025"
    assert default_period(_t(2025, 1, 5), last, PARIS).label == "March 2025"
    last = _t(2025, 3, 30, 22, 30)  # 30 March in UTC (March incomplete), 31 March in Paris
    assert default_period(_t(2025, 1, 5), last, "UTC").label == "February 2025"
    assert default_period(_t(2025, 1, 5), last, PARIS).label == "March 2025"


def test_default_period_partial_when_no_full_month() -> None:
    p = default_period(_t(2025, 3, 3), _t(2025, 3, 10), "UTC")
    assert p == Period(p.start, p.end, "March 2025", partial=True)


def test_explicit_periods_and_their_comparison() -> None:
    r = cost_report(table(), start="2025-03-01", end="2025-05-01", tz=PARIS)
    assert r.period.label == "March 2025 to April 2025"
    assert r.previous.label == "January 2025 to February 2025"
    r = cost_report(table(), start="2025-03-10", end="2025-03-20", tz=PARIS)
    assert r.previous.start.isoformat() == "2025-02-28T00:00:00+01:00"
    assert r.previous.label == "2025-02-28 to 2025-03-09"
    with pytest.raises(ValueError, match="after start"):
        cost_report(table(), start="2025-03-10", end="2025-03-01")
    with pytest.raises(ValueError, match="time zone"):
        cost_report(table(), tz="Mars/Olympus")


def test_a_bad_zone_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    from smsanalytics.errors import ArgumentError

    # The source does not exist: the zone is checked first, at the door.
    with pytest.raises(ArgumentError, match="tz 'Mars/Olympus': unknown time zone"):
        cost_report(tmp_path / "missing", tz="Mars/Olympus")


def test_the_zone_is_parsed_once_at_the_door(monkeypatch: pytest.MonkeyPatch) -> None:
    from smsanalytics import arguments

    seen: list[Any] = []
    real = arguments.time_zone

    def spy(value: Any, name: str = "tz") -> ZoneInfo:
        seen.append(value)
        return real(value, name)

    monkeypatch.setattr(arguments, "time_zone", spy)
    r = cost_report(table(), tz=PARIS)
    # The name is read once; below the door the zone travels as a ZoneInfo.
    assert [v for v in seen if not isinstance(v, ZoneInfo)] == [PARIS]
    seen.clear()
    again = cost_report(table(), tz=ZoneInfo(PARIS))
    assert all(isinstance(v, ZoneInfo) for v in seen)
    assert r.tz == again.tz == PARIS and r.headline.equals(again.headline)


def test_empty_data_needs_a_period() -> None:
    empty = table().slice(0, 0)
    with pytest.raises(ValueError, match="no dated messages"):
        cost_report(empty)
    r = cost_report(empty, **MARCH)
    assert r.total_cents() == 0 and r.reconciled
    assert "Nothing in this period" in r.to_html()


# -- sources -----------------------------------------------------------------------------


def test_connection_source_is_left_open_and_currency_label() -> None:
    con = queries.connect(table(), currency="CHF")
    r = cost_report(con, **MARCH)
    assert r.currency == "CHF"
    assert con.execute("SELECT count(*) FROM messages").fetchall() == [(12,)]
    r = cost_report(table().to_pandas(), **MARCH)
    assert r.currency is None
    assert "currency not set" in r.to_html()
    assert "currency not set" in r.headline["unit"].iloc[2]


def test_dataset_source_shows_last_conversion(full_sample_conversion: ConversionSummary,
                                             full_sample_dataset: Path) -> None:
    path, summary = full_sample_dataset, full_sample_conversion
    r = cost_report(path, tz=PARIS, currency="EUR")
    assert r.conversion is not None
    assert r.conversion == dataset.read_manifest(path)["last_conversion"]
    assert r.conversion["rejected"] == summary.rejected
    assert r.reconciled
    html = r.to_html()
    assert f"{summary.rejected:,}" in html and "Last conversion" in html
    expected = sum(queries.costs(path, **{"start": r.period.start, "end": r.period.end})
                   ["cost_cents"].dropna(), Decimal(0))
    assert r.total_cents() == expected


# -- output and escaping -----------------------------------------------------------------


def test_html_escapes_everything_from_the_data(utc: CostReport) -> None:
    html = utc.to_html()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=1+2" in html  # the sender, as text
    assert "208|01" in html


def test_html_is_self_contained_and_printable(utc: CostReport) -> None:
    html = utc.to_html()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", html, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:|//)""", html, re.I)
    assert "@import" not in html and "<link" not in html.lower()
    assert "@page { size: A4" in html and "break-inside: avoid" in html
    assert 'name="viewport"' in html and "overflow-x: auto" in html
    assert html.count("<svg") == 1  # the chart, inline


def test_repr_html_is_a_fragment(utc: CostReport) -> None:
    frag = utc._repr_html_()
    assert "<html" not in frag and 'class="smsa-report"' in frag


def test_chart_labels_from_data_are_not_mathtext() -> None:
    label = "$\\frac{$ --><script>x</script>"  # a mathtext error, if parsed as math
    r = cost_report(table(), **MARCH, currency=label)
    svg = r.to_html().split("<svg")[1].split("</svg>")[0]
    assert "script" not in svg and "frac" not in svg  # text drawn as paths, no comments
    assert "<script" not in r.to_html()


def test_csv_is_exact_and_neutralised(utc: CostReport, tmp_path: Path) -> None:
    files = utc.to_csv(tmp_path)
    names = {p.name for p in files}
    assert {"headline.csv", "by_month.csv", "by_country.csv", "by_operator.csv",
            "by_traffic_type.csv", "by_payment_type.csv", "by_recipient.csv",
            "top_senders.csv", "rates.csv", "reconciliation.csv", "excluded.csv",
            "audit.csv"} <= names

    def read(name: str) -> list[dict[str, str]]:
        with open(tmp_path / name, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    headline = {r["metric"]: r for r in read("headline.csv")}
    assert headline["cost"]["current"] == "12.345"  # unrounded
    senders = {r["from_number"]: r for r in read("top_senders.csv")}
    assert "'=1+2" in senders and "'+41790000009" in senders
    assert senders["'+41790000009"]["cost_cents"] == "1226.645"
    country = {r["country"]: r for r in read("by_country.csv")}
    assert country["BE"]["change_cents"] == "-0.215"  # a number, not neutralised
    examples = read("above_rate_examples.csv")
    assert examples[0]["body_text"] == XSS
    recipients = [r["to_number"] for r in read("by_recipient.csv")]
    assert all(n.startswith("'+") for n in recipients)


def test_markdown_escapes_pipes(utc: CostReport) -> None:
    md = utc.to_markdown()
    assert md.startswith("# Inbound SMS cost report: March 2025")
    assert "208\\|01" in md and "| 208|01" not in md
    assert "12.34" in md


def test_dataframes_keep_exact_decimals(utc: CostReport) -> None:
    for name in ("by_country", "by_month", "rates", "excluded"):
        dtype = getattr(utc, name)["cost_cents"].dtype
        assert isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype)


# -- messages without a cost ---------------------------------------------------------------


def test_messages_without_a_cost_do_not_dilute_the_cost_per_message() -> None:
    t = table()
    costs = t.column("cost_cents").to_pylist()
    march = [i for i, c in enumerate(t.column("created_at").to_pylist())
             if c is not None and c.month == 3 and c.year == 2025]
    gone = march[0]
    costs[gone] = None
    t = t.set_column(t.schema.get_field_index("cost_cents"), "cost_cents",
                     pa.array(costs, t.schema.field("cost_cents").type))
    r = cost_report(t, **MARCH)
    h = r.headline.set_index("metric")
    priced = [(c, p) for i, (c, p) in enumerate(zip(costs, t.column("parts").to_pylist(),
                                                    strict=True))
              if i in march and c is not None]
    total = sum((c for c, _ in priced), Decimal(0))
    assert h.loc["cost_per_message", "current"] * 100 == (total / len(priced)).quantize(
        Decimal("1e-10"))
    assert h.loc["cost_per_part", "current"] * 100 == (
        total / sum(p for _, p in priced)).quantize(Decimal("1e-10"))
    assert r.unpriced == 1 and "1 of the period's messages have no cost" in r.to_markdown()


def test_a_period_whose_costs_are_all_missing_has_no_cost_per_message() -> None:
    t = table()
    t = t.set_column(t.schema.get_field_index("cost_cents"), "cost_cents",
                     pa.nulls(len(t), t.schema.field("cost_cents").type))
    r = cost_report(t, **MARCH, currency="EUR")
    h = r.headline.set_index("metric")
    assert h.loc["cost_per_message", "current"] is None
    assert h.loc["cost_per_part", "current"] is None
    assert r.unpriced == int(h.loc["messages", "current"]) > 0
    assert r.reconciled
    assert "no cost" in r.to_html()


def test_a_dataset_of_one_message() -> None:
    one = table().slice(0, 1)
    r = cost_report(one)
    when = one.column("created_at")[0].as_py()
    assert r.period.start <= when < r.period.end
    assert int(r.headline.set_index("metric").loc["messages", "current"]) == 1
    assert r.reconciled and r.to_html() and r.to_markdown()
