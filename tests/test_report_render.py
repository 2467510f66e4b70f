"""The renderer of the report and the audit: escaping by default, one list of sections."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

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
