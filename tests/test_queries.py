"""Tests of smsanalytics.queries against answers counted independently in plain Python."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsanalytics import _analysis, dataset, queries

from ._fixtures_queries import PARIS, TO1, A, B, C, D, E, rows, table

DATA = Path(__file__).parent / "data"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = queries.connect(table(), currency="EUR")
    yield c
    c.close()


def local_day(ts: datetime, tz: str) -> date:
    return ts.astimezone(ZoneInfo(tz)).date()


def midnight(d: date, tz: str) -> pd.Timestamp:
    return pd.Timestamp(datetime(d.year, d.month, d.day), tz=tz)


def day_counts(df: pd.DataFrame) -> dict[date, int]:
    return {p.date(): int(m) for p, m in zip(df["period"], df["messages"], strict=True)}


# ---------------------------------------------------------------- connect


def test_connect_view_has_exactly_the_schema_columns(con):
    """The stored columns, then the computed ones (month, cost), nothing else."""
    names = [r[0] for r in con.execute("DESCRIBE messages").fetchall()]
    assert names == [f.name for f in table().schema] + ["month", "cost"]
    assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


def test_connect_accepts_dataframe_with_missing_columns():
    df = pd.DataFrame({"sid": ["a", "b"], "from_country": ["FR", None]})
    c = queries.connect(df)
    assert c.execute("SELECT count(*), count(cost_cents) FROM messages").fetchall() == [(2, 0)]


def test_connect_accepts_typed_pandas_and_dataset_dir(tmp_path):
    typed = dataset.to_pandas(table())
    assert len(queries.volume(typed)) > 0
    part = tmp_path / "ds" / "month=2025-03"
    part.mkdir(parents=True)
    pq.write_table(table(), part / "part-0.parquet")
    c = queries.connect(tmp_path / "ds", currency="USD")
    total = queries.costs(c)
    assert total["messages"].tolist() == [len(rows())]
    assert total.attrs["currency"] == "USD"


def test_connect_returns_a_connection_as_is(con):
    assert queries.connect(con) is con


def test_connect_rejects_unknown_source():
    with pytest.raises(TypeError):
        queries.connect(42)


def test_connect_archive_files():
    ingest = pytest.importorskip("smsanalytics.ingest")
    if not hasattr(ingest, "read_messages"):
        pytest.skip("ingest.read_messages not there yet")
    files = [DATA / "webhook-payload.json", DATA / "webhook-envelope.json"]
    expected = ingest.read_messages(*files)
    c = queries.connect(files)
    assert c.execute("SELECT count(*) FROM messages").fetchall() == [(len(expected),)]


def test_run_sql_keeps_decimals(con):
    df = queries.run_sql(con, "SELECT sum(cost_cents) AS c FROM messages WHERE sid = ?", ["s01"])
    assert df["c"].iloc[0] == Decimal("0.8925")


# ---------------------------------------------------------------- volume and time zones


def test_volume_per_day_in_paris_across_dst(con):
    got = day_counts(queries.volume(con, freq="day", tz=PARIS))
    expected = Counter(local_day(r["created_at"], PARIS) for r in rows())
    assert got == dict(expected)
    # the two DST days, counted by hand
    assert got[date(2025, 3, 30)] == 2  # s02 (00:30 CET), s03 (23:30 CEST)
    assert got[date(2025, 10, 26)] == 4  # s06, s07, s08 (02:30 twice), s09 (23:30 CET)


def test_volume_period_is_local_midnight(con):
    df = queries.volume(con, freq="day", tz=PARIS)
    assert str(df["period"].dt.tz) == PARIS
    for p in df["period"]:
        assert (p.hour, p.minute) == (0, 0)
    assert midnight(date(2025, 3, 30), PARIS) in set(df["period"])


def test_volume_per_day_in_utc_differs(con):
    got = day_counts(queries.volume(con, freq="day", tz="UTC"))
    assert got == dict(Counter(r["created_at"].date() for r in rows()))


def test_volume_hourly_keeps_the_repeated_dst_hour(con):
    df = queries.volume(con, freq="hour", tz=PARIS)
    # s07 at 00:30 UTC and s08 at 01:30 UTC are both 02:30 wall clock on 2025-10-26
    repeated = df[(df["period"].dt.day == 26) & (df["period"].dt.hour == 2)
                  & (df["period"].dt.month == 10)]
    assert len(repeated) == 2
    assert repeated["messages"].tolist() == [1, 1]
    assert len(df) == len({r["created_at"].replace(minute=0) for r in rows()})


def test_volume_weekly_and_monthly(con):
    weeks = queries.volume(con, freq="week", tz=PARIS)
    assert all(p.weekday() == 0 for p in weeks["period"])
    expected = Counter(
        local_day(r["created_at"], PARIS) - timedelta(days=local_day(r["created_at"],
                                                                     PARIS).weekday())
        for r in rows()
    )
    assert day_counts(weeks) == dict(expected)
    months = queries.volume(con, freq="month", tz=PARIS)
    exp_m = Counter(local_day(r["created_at"], PARIS).replace(day=1) for r in rows())
    assert day_counts(months) == dict(exp_m)


def test_volume_parts_and_exact_costs(con):
    df = queries.volume(con, freq="month", tz="UTC")
    by_month: dict[date, list] = defaultdict(lambda: [0, Decimal(0)])
    for r in rows():
        m = r["created_at"].date().replace(day=1)
        by_month[m][0] += r["parts"]
        by_month[m][1] += r["cost_cents"]
    for _, row in df.iterrows():
        parts, cents = by_month[row["period"].date()]
        assert row["parts"] == parts
        assert isinstance(row["cost_cents"], Decimal)
        assert row["cost_cents"] == cents
        assert row["cost"] == cents / 100
    assert pd.api.types.is_float_dtype(df["cost"]) is False
    assert pa.types.is_decimal(df["cost"].dtype.pyarrow_dtype)
    assert df.attrs["currency"] == "EUR"


def test_start_end_in_time_zone(con):
    df = queries.volume(con, freq="day", tz=PARIS, start=date(2025, 3, 30),
                        end="2025-03-31")
    assert day_counts(df) == {date(2025, 3, 30): 2}
    aware = queries.volume(con, start=datetime(2025, 10, 26, 0, 0, tzinfo=UTC),
                           end=datetime(2025, 10, 26, 1, 0, tzinfo=UTC))
    assert aware["messages"].sum() == 1  # s07 only


def test_unknown_freq_and_time_zone_are_refused(con):
    with pytest.raises(ValueError, match="freq"):
        queries.volume(con, freq="fortnight")
    with pytest.raises(ValueError, match="time zone"):
        queries.volume(con, start="2025-01-01", tz="Mars/Olympus")


# ---------------------------------------------------------------- filters are parameters


def test_filter_values_are_bound_not_pasted():
    selection = _analysis.select("UTC", {"country": "FR' OR '1'='1", "to_number": ["a'b", "c"]})
    where, params = selection.where()
    assert "FR" not in where and "a'b" not in where
    assert sorted(params.values()) == sorted(["FR' OR '1'='1", "a'b", "c"])


@pytest.mark.parametrize("value", ["F'R", "FR' OR '1'='1", "'; DROP VIEW messages; --"])
def test_country_with_a_quote_neither_breaks_nor_injects(con, value):
    assert queries.volume(con, country=value).empty
    assert queries.costs(con, country=value)["messages"].tolist() == [0]
    assert con.execute("SELECT count(*) FROM messages").fetchall() == [(len(rows()),)]


def test_country_with_a_quote_matches_exactly(con):
    df = queries.costs(con, country="X'Y")
    assert df["messages"].tolist() == [1]
    assert df["cost_cents"].iloc[0] == Decimal("0.0001")


def test_list_filters_and_combination(con):
    df = queries.costs(con, country=["FR", "BE"], status="delivered",
                       traffic_type="marketing", to_number=TO1)
    expected = [r for r in rows() if r["from_country"] in ("FR", "BE")
                and r["status"] == "delivered" and r["traffic_type"] == "marketing"
                and r["to_number"] == TO1]
    assert df["messages"].tolist() == [len(expected)]
    assert df["cost_cents"].iloc[0] == sum(r["cost_cents"] for r in expected)
    assert queries.costs(con, country=[])["messages"].tolist() == [0]


# ---------------------------------------------------------------- senders


def test_top_senders_by_messages(con):
    df = queries.top_senders(con, n=3, tz=PARIS)
    counts = Counter(r["from_number"] for r in rows())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert list(zip(df["from_number"], df["messages"], strict=True)) == ranked
    top = df.iloc[0]
    mine = [r for r in rows() if r["from_number"] == top["from_number"]]
    assert top["cost_cents"] == sum(r["cost_cents"] for r in mine)
    assert top["first_seen"] == min(r["created_at"] for r in mine)
    assert top["last_seen"] == max(r["created_at"] for r in mine)
    assert str(top["first_seen"].tz) == PARIS
    assert top["active_days"] == len({local_day(r["created_at"], PARIS) for r in mine})


def test_top_senders_by_cost_and_all(con):
    df = queries.top_senders(con, by="cost", n=None)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows():
        cost[r["from_number"]] += r["cost_cents"]
    assert list(df["from_number"]) == sorted(cost, key=lambda k: (-cost[k], k))
    assert [Decimal(v) for v in df["cost_cents"]] == sorted(cost.values(), reverse=True)
    with pytest.raises(ValueError):
        queries.top_senders(con, by="senders")


def test_active_days_differ_by_time_zone(con):
    # A: s01 03-29 22:30 UTC and s02 03-29 23:30 UTC: one UTC day, two Paris days
    utc = queries.top_senders(con, n=None, tz="UTC", end="2025-04-01")
    paris = queries.top_senders(con, n=None, tz=PARIS, end="2025-04-01")
    assert utc.set_index("from_number").loc[A, "active_days"] == 1
    assert paris.set_index("from_number").loc[A, "active_days"] == 2


def test_sender_activity(con):
    df = queries.sender_activity(con, freq="month", tz="UTC")
    msgs = rows()
    first = {}
    total = Counter(r["from_number"] for r in msgs)
    for r in sorted(msgs, key=lambda r: r["created_at"]):
        first.setdefault(r["from_number"], r["created_at"].date().replace(day=1))
    active: dict[date, set] = defaultdict(set)
    for r in msgs:
        active[r["created_at"].date().replace(day=1)].add(r["from_number"])
    assert [p.date() for p in df["period"]] == sorted(active)
    for _, row in df.iterrows():
        m = row["period"].date()
        who = active[m]
        assert row["senders"] == len(who)
        assert row["new_senders"] == sum(first[s] == m for s in who)
        assert row["returning_senders"] == sum(first[s] < m for s in who)
        assert row["one_off_senders"] == sum(total[s] == 1 for s in who)
        assert row["repeat_senders"] == sum(total[s] > 1 for s in who)


def test_sender_activity_first_seen_ignores_start(con):
    # In October alone, A, B and C had written in March already: returning, not new.
    df = queries.sender_activity(con, freq="month", start="2025-10-01")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["senders"], row["new_senders"], row["returning_senders"]) == (5, 2, 3)
    assert {D, E} == {r["from_number"] for r in rows() if r["created_at"].month == 10} - {
        r["from_number"] for r in rows() if r["created_at"].month == 3}
    assert (row["one_off_senders"], row["repeat_senders"]) == (2, 3)
    assert B in {r["from_number"] for r in rows()}


# ---------------------------------------------------------------- locations, encodings


def test_locations_by_country(con):
    df = queries.locations(con)
    counts = Counter(r["from_country"] for r in rows())
    assert dict(zip(df["country"], df["messages"], strict=True)) == dict(counts)
    assert df["messages"].tolist() == sorted(counts.values(), reverse=True)
    for c, share in zip(df["country"], df["share"], strict=True):
        assert share == pytest.approx(counts[c] / len(rows()))
    fr = df.set_index("country").loc["FR"]
    assert fr["senders"] == len({r["from_number"] for r in rows() if r["from_country"] == "FR"})
    assert df["share"].sum() == pytest.approx(1.0)


def test_locations_by_location_and_top_n(con):
    df = queries.locations(con, by="location")
    counts = Counter((r["from_country"], r["from_location"]) for r in rows())
    got = {(c, None if pd.isna(loc) else loc): m
           for c, loc, m in zip(df["country"], df["location"], df["messages"], strict=True)}
    assert got == dict(counts)
    assert len(queries.locations(con, n=2)) == 2


def test_encodings_overall(con):
    df = queries.encodings(con).set_index("encoding")
    for enc in ("gsm", "unicode"):
        mine = [r for r in rows() if r["encoding"] == enc]
        assert df.loc[enc, "messages"] == len(mine)
        assert df.loc[enc, "share"] == pytest.approx(len(mine) / len(rows()))
        assert df.loc[enc, "parts"] == sum(r["parts"] for r in mine)
        multi = sum(r["parts"] > 1 for r in mine)
        assert df.loc[enc, "multipart_messages"] == multi
        assert df.loc[enc, "multipart_share"] == pytest.approx(multi / len(mine))


def test_encodings_by_country(con):
    df = queries.encodings(con, by="country")
    counts = Counter((r["from_country"], r["encoding"]) for r in rows())
    per_country = Counter(r["from_country"] for r in rows())
    for c, e, m, s in zip(df["country"], df["encoding"], df["messages"], df["share"],
                          strict=True):
        assert m == counts[(c, e)]
        assert s == pytest.approx(m / per_country[c])


def test_parts_distribution(con):
    df = queries.parts_distribution(con)
    counts = Counter((r["parts"], r["encoding"]) for r in rows())
    got = {(int(p), e): m for p, e, m in zip(df["parts"], df["encoding"], df["messages"],
                                             strict=True)}
    assert got == dict(counts)
    assert df["share"].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- costs


def test_costs_total_is_exact(con):
    df = queries.costs(con)
    total = sum(r["cost_cents"] for r in rows())
    assert total == Decimal("16.546")
    assert df["cost_cents"].iloc[0] == total
    assert df["cost"].iloc[0] == Decimal("0.16546")
    assert df.attrs["currency"] == "EUR"
    assert queries.costs(con, currency="CHF").attrs["currency"] == "CHF"


@pytest.mark.parametrize(
    ("by", "key"),
    [
        ("country", lambda r: (r["from_country"],)),
        ("network", lambda r: (r["network"],)),
        ("traffic_type", lambda r: (r["traffic_type"],)),
        ("payment_type", lambda r: (r["payment_type"],)),
        ("to_number", lambda r: (r["to_number"],)),
        (["month", "country"],
         lambda r: (local_day(r["created_at"], PARIS).replace(day=1), r["from_country"])),
    ],
)
def test_costs_by(con, by, key):
    df = queries.costs(con, by=by, tz=PARIS)
    expected: dict[tuple, Decimal] = defaultdict(Decimal)
    for r in rows():
        expected[key(r)] += r["cost_cents"]
    cols = [by] if isinstance(by, str) else by
    got = {}
    for _, row in df.iterrows():
        k = tuple(row[c].date() if c == "month" else (None if pd.isna(row[c]) else row[c])
                  for c in cols)
        got[k] = row["cost_cents"]
    assert got == dict(expected)
    assert all(isinstance(v, Decimal) for v in df["cost"])
    assert df["share"].sum() == pytest.approx(1.0)


def test_costs_rejects_unknown_groupings(con):
    with pytest.raises(ValueError, match="cannot group"):
        queries.costs(con, by="from_country; DROP VIEW messages")
    with pytest.raises(ValueError, match="one period"):
        queries.costs(con, by=["day", "month"])


# ---------------------------------------------------------------- traffic, statuses


def test_traffic_per_day(con):
    df = queries.traffic(con, freq="day", tz=PARIS)
    expected = Counter((local_day(r["created_at"], PARIS), r["traffic_type"]) for r in rows())
    got = {(p.date(), t): m for p, t, m in zip(df["period"], df["traffic_type"],
                                               df["messages"], strict=True)}
    assert got == dict(expected)
    for p, share in df.groupby("period")["share"].sum().items():
        assert share == pytest.approx(1.0), p


def test_statuses_totals(con):
    df = queries.statuses(con, freq=None)
    assert "period" not in df.columns
    counts = Counter(r["status"] for r in rows())
    assert dict(zip(df["status"], df["messages"], strict=True)) == dict(counts)
    assert df.iloc[0]["share"] == pytest.approx(counts["delivered"] / len(rows()))


# ---------------------------------------------------------------- activity pattern


def test_activity_pattern_in_paris(con):
    df = queries.activity_pattern(con, tz=PARIS)
    assert len(df) == 7 * 24
    expected = Counter()
    for r in rows():
        local = r["created_at"].astimezone(ZoneInfo(PARIS))
        expected[(local.weekday(), local.hour)] += 1
    got = {(int(w), int(h)): int(m) for w, h, m in
           zip(df["weekday"], df["hour"], df["messages"], strict=True) if m}
    assert got == dict(expected)
    assert got[(6, 2)] == 2  # Sunday 2025-10-26, 02:30 twice
    assert df.loc[df["weekday"] == 6, "day"].iloc[0] == "Sunday"


# ---------------------------------------------------------------- keywords


def test_normalise_keyword():
    assert queries.normalise_keyword("  Arrêt ! ") == "ARRET"
    assert queries.normalise_keyword("stop   sms.") == "STOP SMS"


def test_keywords_default_list(con):
    df = queries.keywords(con, freq=None)
    wanted = {queries.normalise_keyword(k) for k in queries.DEFAULT_KEYWORDS}
    expected = Counter()
    for r in rows():
        norm = queries.normalise_keyword(r["body_text"])
        if norm in wanted:
            expected[norm] += 1
    got = dict(zip(df["keyword"], df["messages"], strict=True))
    assert got == dict(expected)
    # by hand: STOP (s01, s06 "Stop."), ARRET, START, UNSUBSCRIBE, DESABONNER, STOP SMS
    assert got == {"STOP": 2, "ARRET": 1, "START": 1, "UNSUBSCRIBE": 1, "DESABONNER": 1,
                   "STOP SMS": 1}
    kinds = dict(zip(df["keyword"], df["kind"], strict=True))
    assert kinds["START"] == "opt-in" and kinds["ARRET"] == "opt-out"


def test_keywords_custom_list_per_day(con):
    df = queries.keywords(con, keywords={"stop": "opt-out", "Hello": "greeting"},
                          freq="day", tz=PARIS)
    got = {(p.date(), k): m for p, k, m in zip(df["period"], df["keyword"], df["messages"],
                                               strict=True)}
    assert got == {(date(2025, 3, 29), "STOP"): 1, (date(2025, 10, 26), "STOP"): 1,
                   (date(2025, 10, 26), "HELLO"): 1}
    plain = queries.keywords(con, keywords=["arrêt"], freq=None)
    assert plain[["keyword", "kind", "messages"]].values.tolist() == [["ARRET", "opt-out", 1]]


def test_questions_accept_a_source_not_a_connection():
    df = queries.volume(table(), freq="month")
    assert df["messages"].sum() == len(rows())
    assert {C} <= set(queries.top_senders(rows_frame())["from_number"])


def rows_frame() -> pd.DataFrame:
    return pd.DataFrame(rows())


def test_empty_table():
    empty = queries.connect(pa.Table.from_pylist([], schema=table().schema))
    assert queries.volume(empty).empty
    assert queries.costs(empty)["messages"].tolist() == [0]
    assert queries.activity_pattern(empty)["messages"].sum() == 0
    assert B not in set(queries.top_senders(empty)["from_number"])


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_hourly_buckets_in_zones_with_partial_hour_offsets(tz):
    # minutes chosen on both sides of the local hour boundary
    times = [datetime(2025, 6, 1, 0, m, tzinfo=UTC) for m in (5, 14, 16, 29, 31, 44, 46, 59)]
    c = queries.connect(pa.Table.from_pylist(
        [{"sid": str(i), "created_at": t} for i, t in enumerate(times)], schema=table().schema))
    df = queries.volume(c, freq="hour", tz=tz)
    expected = Counter(t.astimezone(ZoneInfo(tz)).replace(minute=0) for t in times)
    got = {p.to_pydatetime(): m for p, m in zip(df["period"], df["messages"], strict=True)}
    assert got == dict(expected)
    pattern = queries.activity_pattern(c, tz=tz)
    hours = Counter(t.astimezone(ZoneInfo(tz)).hour for t in times)
    assert dict(pattern.loc[pattern["messages"] > 0, ["hour", "messages"]].values.tolist()) \
        == dict(hours)


# ---------------------------------------------------------------- operators, filters, dtypes


def _orange_everywhere() -> pd.DataFrame:
    return pd.DataFrame({
        "sid": ["fr1", "fr2", "es", "sn"],
        "network": ["20801", "20801", "21403", "60801"],
        "network_country": ["FR", "FR", "ES", "SN"],
        "network_operator": ["Orange", "Orange", "Orange", "Orange"],
        "cost_cents": [Decimal("1"), Decimal("2"), Decimal("4"), Decimal("8")],
        "parts": [1, 1, 1, 1],
    })


def test_an_operator_is_a_name_in_a_country():
    # Orange France, Orange Spain and Orange Senegal are three operators, not one bar.
    df = queries.costs(_orange_everywhere(), by="operator")
    got = {(r.network_country, r.operator): r.cost_cents for r in df.itertuples()}
    assert got == {("FR", "Orange"): Decimal("3"), ("ES", "Orange"): Decimal("4"),
                   ("SN", "Orange"): Decimal("8")}
    assert list(df.columns[:2]) == ["network_country", "operator"]
    assert df.attrs["by"] == ("network_country", "operator")


def test_an_operator_beside_its_network_code_needs_no_country():
    df = queries.costs(_orange_everywhere(), by=["network", "operator"])
    assert "network_country" not in df.columns and len(df) == 3


def test_an_unknown_filter_is_a_type_error_not_a_silent_no_op(con):
    with pytest.raises(TypeError, match="'contry'"):
        queries.volume(con, contry="FR")


def test_a_question_takes_a_zoneinfo_and_says_its_name(con):
    df = queries.volume(con, tz=ZoneInfo(PARIS), start="2025-03-30")
    assert df.attrs["tz"] == PARIS
    assert str(df["period"].dt.tz) == PARIS


def test_counts_are_one_integer_type_in_every_table(con):
    # One converter: a count is Int64 in a question and in the audit, never float or int64.
    from smsanalytics import audit

    tables = [queries.costs(con), queries.volume(con), queries.parts_distribution(con),
              audit.audit(con).rates, audit.audit(con).summary]
    for df in tables:
        assert str(df["messages"].dtype) == "Int64", df.attrs


# ---------------------------------------------------------------- polars and Arrow capsules


def test_connect_takes_polars_frames_and_lazy_frames():
    pl = pytest.importorskip("polars")
    frame = pl.from_arrow(table())
    want = queries.costs(table(), by="country")
    for source in (frame, frame.lazy()):
        got = queries.costs(source, by="country")
        pd.testing.assert_frame_equal(got, want)


def test_connect_takes_any_arrow_pycapsule_exporter():
    class Capsule:  # only the interface: no pandas, no polars, no pyarrow Table type
        def __init__(self, t: pa.Table) -> None:
            self._t = t

        def __arrow_c_stream__(self, requested_schema=None):
            return self._t.__arrow_c_stream__(requested_schema)

    df = queries.volume(Capsule(table()), tz=PARIS)
    pd.testing.assert_frame_equal(df, queries.volume(table(), tz=PARIS))


def test_the_core_never_imports_polars():
    import subprocess
    import sys

    code = ("import sys, smsanalytics, pandas as pd\n"
            "from smsanalytics import queries, audit, report\n"
            "queries.costs(pd.DataFrame({'sid': ['a']}))\n"
            "print('polars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_an_object_without_the_interface_is_refused_by_name():
    with pytest.raises(TypeError, match="__arrow_c_stream__.*not object"):
        queries.connect(object())
