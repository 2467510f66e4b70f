"""Questions show money as money in a notebook and a console, exact underneath (#14)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from smsanalytics import amounts, queries


@pytest.fixture(scope="module")
def con():
    frame = pd.DataFrame({
        "sid": ["a", "b", "c"],
        "from_country": ["FR", "FR", "ES"],
        "parts": [1, 2, 3],
        "cost_cents": [Decimal("2.9"), Decimal("3.125"), Decimal("0")],
        "created_at": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True),
    })
    c = queries.connect(frame, currency="EUR")
    yield c
    c.close()


def test_costs_show_totals_and_unit_costs_by_their_rule(con) -> None:
    df = queries.costs(con, by="country")
    assert isinstance(df, amounts.ExactFrame)
    with pd.option_context("display.max_columns", None, "display.width", 1000):
        shown = repr(df)
    html = df._repr_html_()
    fr = df.set_index("country").loc["FR"]
    # Exact underneath: 0.029 + 0.03125 EUR, per message and per part to the last digit.
    assert fr["cost"] == Decimal("0.06025")
    assert fr["cost_per_message"] == Decimal("0.030125")
    # On screen: the total to 2 decimals, the unit costs to RATE_DECIMALS, no exponent.
    assert "0.06 " in shown and "0.06025000" not in shown
    assert "<td>0.06</td>" in html and "<td>0.030125</td>" in html
    assert f"{Decimal('0.030125'):.{amounts.RATE_DECIMALS}f}" in shown
    assert "E-" not in shown and "0E" not in shown


def test_a_filtered_frame_is_still_shown_as_money(con) -> None:
    df = queries.costs(con, by="country")
    part = df[df["country"] == "ES"]
    assert isinstance(part, amounts.ExactFrame)
    assert "0.00" in repr(part) and "0E" not in repr(part)
    assert part.to_dict("records")[0]["cost"] == 0  # exact zero, whatever its scale
