"""One meaning per column name, across the questions, the audit and the cost report.

A name that appears in two tables must hold the same quantity: ``usual_rate_cents`` is the
lower weighted median cost of one part wherever it appears, ``average_rate_cents`` and the
audit's ``rate_cents`` a cost divided by parts, never a median.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from smsanalytics import audit, report


def _messages() -> pd.DataFrame:
    # Four French messages of one part in May 2025: three at 1 cent, one at 5 (above rate).
    return pd.DataFrame({
        "sid": ["a", "b", "c", "d"],
        "from_number": ["+33600000001", "+33600000002", "+33600000003", "+33600000004"],
        "from_country": ["FR"] * 4,
        "created_at": pd.to_datetime(["2025-05-02", "2025-05-03", "2025-05-04", "2025-05-05"],
                                     utc=True),
        "parts": [1, 1, 1, 1],
        "cost_cents": [Decimal("1"), Decimal("1"), Decimal("1"), Decimal("5")],
    })


def test_usual_rate_is_the_median_everywhere_and_rate_a_mean():
    r = report.cost_report(_messages(), start="2025-05-01", end="2025-06-01")
    a = audit.audit(_messages(), start="2025-05-01", end="2025-06-01")
    median, mean = Decimal(1), Decimal(2)  # (1 + 1 + 1 + 5) / 4 parts
    assert r.rates.set_index("country").loc["FR", "usual_rate_cents"] == median
    assert r.above_rate.set_index("country").loc["FR", "usual_rate_cents"] == median
    assert set(a.above_rate["usual_rate_cents"]) == {median}
    assert set(a.rates["usual_rate_cents"]) == {median}
    assert r.rates.set_index("country").loc["FR", "average_rate_cents"] == mean
    assert set(a.rates["rate_cents"]) == {mean}
    # The name of the mean is never the name of the median, in any table of either.
    for tables in (r.tables(), a.tables()):
        for name, df in tables.items():
            if "rate_cents" in df.columns and "usual_rate_cents" in df.columns:
                assert not df["rate_cents"].equals(df["usual_rate_cents"]) or df.empty, name
