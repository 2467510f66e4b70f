"""Quarterly and yearly periods: local quarters and years, across DST and New Year.

Expected buckets are computed in plain Python (``zoneinfo``), independently of the SQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsanalytics import queries
from smsanalytics.schema import MESSAGE_SCHEMA

PARIS = "Europe/Paris"
ZONES = ["UTC", PARIS, "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati",
         "America/St_Johns", "Australia/Lord_Howe"]


def _source(times: list[datetime]):
    rows = [{"sid": f"s{i}", "created_at": t, "from_number": "+33600000001",
             "from_country": "FR", "parts": 1, "cost_cents": Decimal("1.5")}
            for i, t in enumerate(times)]
    return queries.connect(pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA), currency="EUR")


def _local_start(t: datetime, tz: str, freq: str) -> pd.Timestamp:
    """First instant of `t`'s local quarter or year in `tz`, from zoneinfo."""
    local = pd.Timestamp(t).tz_convert(tz)
    month = 1 if freq == "year" else 3 * ((local.month - 1) // 3) + 1
    return pd.Timestamp(datetime(local.year, month, 1), tz=tz)


def _buckets(df: pd.DataFrame, column: str = "period") -> dict[pd.Timestamp, int]:
    return {p: int(m) for p, m in zip(df[column], df["messages"], strict=True)}


def test_freqs_list_quarter_and_year():
    assert ("quarter", "year") == queries.FREQS[-2:]


def test_a_paris_quarter_starts_at_paris_midnight_not_utc():
    # 31 March 22:30 UTC is 1 April 00:30 in Paris (summer time): Q2 there, Q1 in UTC.
    # 31 December 23:30 UTC is 1 January 00:30 in Paris: next year there.
    times = [datetime(2025, 3, 31, 22, 30, tzinfo=UTC), datetime(2025, 3, 31, 21, 30, tzinfo=UTC),
             datetime(2025, 12, 31, 23, 30, tzinfo=UTC)]
    con = _source(times)
    paris = _buckets(queries.volume(con, freq="quarter", tz=PARIS))
    assert paris == {pd.Timestamp("2025-01-01", tz=PARIS): 1,
                     pd.Timestamp("2025-04-01", tz=PARIS): 1,
                     pd.Timestamp("2026-01-01", tz=PARIS): 1}
    # Q2 starts in summer time (+02:00), Q1 2026 in winter time (+01:00).
    starts = sorted(paris)
    assert [s.utcoffset() for s in starts] == [timedelta(hours=1), timedelta(hours=2),
                                                timedelta(hours=1)]
    utc = _buckets(queries.volume(con, freq="quarter", tz="UTC"))
    assert utc == {pd.Timestamp("2025-01-01", tz="UTC"): 2, pd.Timestamp("2025-10-01", tz="UTC"): 1}
    years = _buckets(queries.volume(con, freq="year", tz=PARIS))
    assert years == {pd.Timestamp("2025-01-01", tz=PARIS): 2,
                     pd.Timestamp("2026-01-01", tz=PARIS): 1}


@pytest.mark.parametrize("freq", ["quarter", "year"])
def test_every_question_with_periods_takes_quarter_and_year(freq):
    times = [datetime(2024, 12, 31, 23, 30, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC),
             datetime(2025, 8, 1, tzinfo=UTC)]
    con = _source(times)
    expected = Counter(_local_start(t, PARIS, freq) for t in times)
    assert _buckets(queries.volume(con, freq=freq, tz=PARIS)) == dict(expected)
    costs = queries.costs(con, by=freq, tz=PARIS)
    assert _buckets(costs, freq) == dict(expected)
    assert costs.attrs["by"] == (freq,)
    for question in (queries.traffic, queries.statuses):
        df = question(con, freq=freq, tz=PARIS)
        assert _buckets(df) == dict(expected)
    active = queries.sender_activity(con, freq=freq, tz=PARIS)
    assert active["senders"].tolist() == [1] * len(expected)
    assert active["new_senders"].tolist() == [1] + [0] * (len(expected) - 1)


def test_keywords_per_quarter():
    rows = [{"sid": "a", "created_at": datetime(2025, 3, 31, 22, 30, tzinfo=UTC),
             "body_text": "STOP"},
            {"sid": "b", "created_at": datetime(2025, 3, 1, tzinfo=UTC), "body_text": "stop"}]
    con = queries.connect(pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA))
    df = queries.keywords(con, freq="quarter", tz=PARIS)
    assert df["period"].tolist() == [pd.Timestamp("2025-01-01", tz=PARIS),
                                     pd.Timestamp("2025-04-01", tz=PARIS)]


@settings(max_examples=40, deadline=None)
@given(
    seconds=st.lists(st.integers(min_value=0, max_value=20 * 365 * 86400), min_size=1,
                     max_size=12),
    tz=st.sampled_from(ZONES),
    freq=st.sampled_from(["quarter", "year"]),
)
def test_quarter_and_year_buckets_match_zoneinfo(seconds, tz, freq):
    """Any instants, any zone (DST, 45-minute and +14:00 offsets): zoneinfo's buckets."""
    base = datetime(2015, 1, 1, tzinfo=UTC)
    times = [base + timedelta(seconds=s) for s in seconds]
    expected = Counter(_local_start(t, tz, freq) for t in times)
    got = _buckets(queries.volume(_source(times), freq=freq, tz=tz))
    assert got == dict(expected)


def test_the_spark_translation_keeps_quarter_and_year():
    pytest.importorskip("sqlglot")
    from smsanalytics.spark_sql import to_spark

    for freq in ("quarter", "year"):
        key, _ = queries.bucket_sql(freq)
        assert f"DATE_TRUNC('{freq.upper()}'" in to_spark(f"SELECT {key} FROM messages")
