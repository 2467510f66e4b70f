"""``costs()``'s cost_per_message and cost_per_part: exact decimals, defined edge cases.

The expected rates are computed from the rows in plain Python with ``Fraction``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from smsanalytics import queries
from smsanalytics.schema import MESSAGE_SCHEMA

from ._fixtures_queries import PARIS, rows, table


def _connect(rows_: list[dict]):
    return queries.connect(pa.Table.from_pylist(rows_, schema=MESSAGE_SCHEMA), currency="EUR")


def _half_even_12(f: Fraction) -> Decimal:
    """`f` to 12 decimals, half to even, by integer arithmetic (independent of the code)."""
    scaled = f * 10**12
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q % 2 == 1):
        q += 1
    return Decimal(q) / Decimal(10**12)


def _expected(rows_: list[dict], key) -> dict:
    sums: dict = defaultdict(lambda: [Fraction(0), 0, Fraction(0), 0, False])
    for r in rows_:
        s = sums[key(r)]
        cents, parts = r.get("cost_cents"), r.get("parts")
        if cents is not None:
            s[4] = True
            s[0] += Fraction(cents)
            s[1] += 1
            if parts is not None:
                s[2] += Fraction(cents)
                s[3] += parts
    out = {}
    for k, (cents, priced, part_cents, parts, any_cost) in sums.items():
        out[k] = (_half_even_12(cents / 100 / priced) if any_cost and priced else None,
                  _half_even_12(part_cents / 100 / parts) if any_cost and parts else None)
    return out


def _got(df: pd.DataFrame, cols: list[str]) -> dict:
    out = {}
    for _, row in df.iterrows():
        k = tuple(None if pd.isna(row[c]) else row[c] for c in cols)
        pm, pp = row["cost_per_message"], row["cost_per_part"]
        out[k] = (None if pd.isna(pm) else pm, None if pd.isna(pp) else pp)
    return out


def test_columns_are_exact_decimals_after_cost():
    df = queries.costs(table(), by="country")
    cols = list(df.columns)
    assert cols[cols.index("cost") + 1: cols.index("cost") + 3] == ["cost_per_message",
                                                                   "cost_per_part"]
    for c in ("cost_per_message", "cost_per_part"):
        assert pa.types.is_decimal(df[c].dtype.pyarrow_dtype)
        assert all(isinstance(v, Decimal) for v in df[c])
    assert "priced_messages" not in cols


def test_fixture_rates_by_country_and_month():
    got = _got(queries.costs(table(), by="country"), ["country"])
    assert got == {(k[0],): v for k, v in
                   _expected(rows(), lambda r: (r["from_country"],)).items()}
    # FR: 11.7958 cents over 6 messages, 12 parts
    assert got[("FR",)] == (Decimal("0.019659666667"), Decimal("0.009829833333"))
    months = queries.costs(table(), by=["month", "country"], tz=PARIS)
    assert months["cost_per_part"].notna().all()


def test_unpriced_messages_and_missing_parts_do_not_dilute():
    t = datetime(2025, 5, 1, tzinfo=UTC)
    data = [
        {"sid": "a", "created_at": t, "from_country": "FR", "parts": 1,
         "cost_cents": Decimal("1")},
        {"sid": "b", "created_at": t, "from_country": "FR", "parts": 2, "cost_cents": None},
        {"sid": "c", "created_at": t, "from_country": "FR", "parts": None,
         "cost_cents": Decimal("5")},
        # every cost null: no rate, though there are messages and parts
        {"sid": "d", "created_at": t, "from_country": "BE", "parts": 3, "cost_cents": None},
        # a cost but no part count: a rate per message, none per part
        {"sid": "e", "created_at": t, "from_country": "CH", "parts": None,
         "cost_cents": Decimal("2")},
        # zero parts (odd but valid): no rate per part
        {"sid": "f", "created_at": t, "from_country": "DE", "parts": 0,
         "cost_cents": Decimal("2")},
    ]
    got = _got(queries.costs(_connect(data), by="country"), ["country"])
    assert got[("FR",)] == (Decimal("0.03"), Decimal("0.01"))  # 6c / 2; 1c / 1 part
    assert got[("BE",)] == (None, None)
    assert got[("CH",)] == (Decimal("0.02"), None)
    assert got[("DE",)] == (Decimal("0.02"), None)


def test_no_messages_gives_null_rates_not_an_error():
    total = queries.costs(_connect([]))
    assert total["messages"].tolist() == [0]
    assert total["cost_per_message"].isna().all() and total["cost_per_part"].isna().all()


def test_a_third_is_rounded_half_even_once():
    t = datetime(2025, 5, 1, tzinfo=UTC)
    data = [{"sid": str(i), "created_at": t, "parts": 1, "cost_cents": Decimal(c)}
            for i, c in enumerate(["1", "0", "0"])]
    row = queries.costs(_connect(data)).iloc[0]
    assert row["cost_per_message"] == Decimal("0.003333333333")
    # 1e-6 cent over 20,000 messages is 0.5e-12 exactly: a tie, to the even neighbour 0;
    # 3e-6 cent over 20,000 is 1.5e-12: a tie above an odd digit, up to 2e-12.
    for cents, expected in (("0.000001", Decimal(0)), ("0.000003", Decimal("2E-12"))):
        tie = [{"sid": str(i), "created_at": t, "parts": 1,
                "cost_cents": Decimal(cents) if i == 0 else Decimal(0)} for i in range(20_000)]
        assert queries.costs(_connect(tie)).iloc[0]["cost_per_message"] == expected


_cents = st.none() | st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False,
                                 allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["FR", "BE", None]), st.none() | st.integers(0, 9),
                          _cents), max_size=15))
def test_rates_match_fractions_for_any_rows(data):
    t = datetime(2025, 5, 1, tzinfo=UTC)
    rows_ = [{"sid": str(i), "created_at": t, "from_country": c, "parts": p, "cost_cents": m}
             for i, (c, p, m) in enumerate(data)]
    got = _got(queries.costs(_connect(rows_), by="country"), ["country"])
    assert got == {k: v for k, v in _expected(rows_, lambda r: (r["from_country"],)).items()}
