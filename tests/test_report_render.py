"""The renderer of the report and the audit: escaping by default, one list of sections."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import smsanalytics.amounts
from smsanalytics import render
from smsanalytics.escape import for_html
from smsanalytics.render import Card, Cards, Column, Page, Paragraph, Section, Table

from . import test_report as fixture


def _page(text: str) -> Page:
    """A page carrying `text` in every place a template prints a value."""
    table = Table([Column(text), Column("n", "count"), Column("Message", "message")],
                  [[text, 1, text]], classes=[text], bars=[0.5], footer=[text, 1, None],
                  note=text)
    card = Card(text, "money", text, Decimal(1), Decimal(2), Decimal("-50"), text)
    return Page(text, [(text, True), (text, False)], [
        Section(text, [Cards([card], text, text), Paragraph(text, "note"), table,
                       Section(text, [Paragraph(text)], 3)])], footer=text)


@given(st.text(st.characters(blacklist_characters="⟦⟧")))
def test_every_value_a_template_prints_is_escaped(text: str) -> None:
    # The value, between markers that escaping leaves alone, wherever the page shows it:
    # every place it appears holds it escaped as escape.for_html escapes it.
    html = render.to_html(_page(f"⟦{text}⟧"), document=True)
    found = re.findall("⟦(.*?)⟧", html, re.S)
    assert len(found) >= 15
    assert set(found) == {for_html(text)}


def test_a_hostile_value_is_shown_as_text() -> None:
    html = render.to_html(_page(fixture.XSS + "\u202e"), document=False)
    assert "<script" not in html
    assert for_html(fixture.XSS) in html and "\\u202e" in html


def test_html_and_markdown_walk_the_same_sections() -> None:
    r = fixture.cost_report(fixture.table(), **fixture.MARCH, currency="EUR")
    html, md = r.to_html(), r.to_markdown()
    titles = re.findall(r"<h[23]>(.*?)</h[23]>", html)
    md_titles = re.findall(r"^#{2,3} (.*)$", md, re.M)
    assert titles and [for_html(t) for t in md_titles] == titles
    # Both show the examples of above-rate messages (the Markdown used to leave them out).
    assert "Message" in md.split("## Billed parts")[0].split("usual rate")[-1]


def test_one_number_of_decimals_per_kind_of_amount() -> None:
    assert [render.rate(c) for c in ("2.9", "3.125", "0.8925")] == [
        "0.029000", "0.031250", "0.008925"]
    assert render.money("1234.5") == "12.34" and render.money("-100") == "−1.00"
    assert render.cents(Decimal("0E-10")) == "0.0000"
    assert render.rate("-0.5", signed=True) == "−0.005000"


# -- money as money (issue 14) -------------------------------------------------------------


def test_repr_of_a_report_is_money() -> None:
    r = fixture.cost_report(fixture.table(), **fixture.MARCH, currency="EUR")
    assert repr(r) == "<CostReport March 2025 (UTC): 12.34 EUR>"
    assert r.total_cents() == Decimal("1234.5")  # exact underneath


def test_headline_is_shown_as_money_and_stays_exact() -> None:
    r = fixture.cost_report(fixture.table(), **fixture.MARCH, currency="EUR")
    for text in (repr(r.headline), r.headline._repr_html_(),
                 repr(r.headline.set_index("metric"))):
        assert "1.763571428571" not in text and "12.345" not in text
        assert "1.763571" in text and "12.34" in text
    h = r.headline.set_index("metric")
    assert h.loc["cost_per_message", "current"] == Decimal("1.763571428571")
    assert h.loc["cost", "current"] == Decimal("12.345")
    costs = r.by_country[["country", "cost"]]  # each question's cost, major units
    assert "12.27" in repr(costs) and "12.26645" not in repr(costs)
    assert "12.27" in costs._repr_html_() and "12.26645" not in costs._repr_html_()
    assert costs["cost"].iloc[0] == Decimal("12.26645")


def test_audit_never_shows_zero_as_an_exponent() -> None:
    from smsanalytics.audit import audit

    a = audit(fixture.table(), currency="EUR")
    zero = a.summary.set_index("check").loc["parts_under_billed", "at_stake_cents"]
    assert zero == 0 and "E" in str(zero)  # what pandas would print: 0E-10
    for df in a.tables().values():
        for text in (repr(df), df._repr_html_(), repr(df.head(3))):
            assert "0E-10" not in text and "E-" not in text


def test_every_cell_of_a_rate_column_has_the_same_decimals() -> None:
    r = fixture.cost_report(fixture.table(), **fixture.MARCH, currency="EUR")
    md = r.to_markdown()
    rates = md.split("## Rates")[1].split("##")[0]
    amounts = re.findall(r"\d+\.(\d+)", rates)
    assert amounts and {len(a) for a in amounts} == {smsanalytics.amounts.RATE_DECIMALS}


def test_the_page_names_files_relative_to_itself(
        tmp_path: Path, full_sample_dataset: Path) -> None:
    from smsanalytics.report import cost_report

    folder = full_sample_dataset
    r = cost_report(folder, currency="EUR")
    out = tmp_path / "pages" / "report.html"
    out.parent.mkdir()
    page = r.write_html(out).read_text(encoding="utf-8")
    for shown in (page, r.to_html(), r.to_markdown()):
        assert str(folder) not in shown and str(folder.parent) not in shown
    assert for_html(_relative(folder, out.parent)) in page


def _relative(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve()).replace(os.sep, "/")


def test_reject_reasons_are_words() -> None:
    from smsanalytics.report import _reject_reason

    assert _reject_reason("created_at") == "created time missing or invalid"
    assert _reject_reason("delivered_at") == "delivery time invalid"
    assert _reject_reason("some_new_field") == "some new field invalid"
    assert _reject_reason("invalid JSON") == "invalid JSON"


def test_a_sender_without_a_country_keeps_its_usual_rate() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = fixture.table()
    unknown = pc.equal(t.column("sid"), "m03")
    t = t.set_column(t.schema.get_field_index("from_country"), "from_country",
                     pc.if_else(unknown, pa.scalar(None, pa.string()),
                                t.column("from_country")))
    r = fixture.cost_report(t, **fixture.MARCH, currency="EUR")
    row = r.rates[r.rates["country"].isna()].iloc[0]
    assert row["usual_rate_cents"] == Decimal("0.8925")  # m03: 0.8925 for 1 part
    assert row["messages"] == 1
