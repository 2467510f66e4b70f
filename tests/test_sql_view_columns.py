"""``smsanalytics sql --tz`` and the ``messages`` view's computed ``month`` and ``cost``."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsanalytics import queries
from smsanalytics.errors import ArgumentError
from smsanalytics.schema import MESSAGE_SCHEMA, VIEW_COLUMNS

from .conftest import run


def _connect(rows: list[dict]):
    return queries.connect(pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA))


# ---------------------------------------------------------------- month


def test_month_is_the_partition_of_every_row(sample_dataset: Path):
    # The partition each file lives in (month=YYYY-MM directories), read by pyarrow.
    stored = pq.read_table(sample_dataset, partitioning="hive",
                           columns=["sid", "month"]).to_pylist()
    expected = Counter((r["sid"], str(r["month"])) for r in stored)
    got = queries.run_sql(sample_dataset, "SELECT sid, month FROM messages")
    assert Counter(zip(got["sid"], got["month"], strict=True)) == expected
    assert len(expected) > 20 and len({m for _, m in expected}) > 3


def test_month_is_utc_whatever_the_session_zone_and_falls_back_like_partitions():
    t = datetime(2025, 3, 31, 23, 30, tzinfo=UTC)  # 1 April in Paris and Kiritimati
    con = _connect([{"sid": "a", "created_at": t},
                    {"sid": "b", "created_at": None, "delivered_at": t},
                    {"sid": "c"}])
    for tz in (None, "Europe/Paris", "Pacific/Kiritimati", "America/St_Johns"):
        df = queries.run_sql(con, "SELECT sid, month FROM messages ORDER BY sid", tz=tz)
        assert df["month"].tolist() == ["2025-03", "2025-03", "unknown"]


# ---------------------------------------------------------------- cost


def test_cost_is_an_exact_decimal_so_sums_print_exactly():
    # 0.1 + 0.2 is the classic float trap: sum(cost_cents)/100 prints 94.19200000000001.
    cents = [Decimal("4709.6"), Decimal("4709.6")]
    con = _connect([{"sid": str(i), "cost_cents": c} for i, c in enumerate(cents)]
                   + [{"sid": "x", "cost_cents": None}])
    row = queries.run_sql(con, "SELECT sum(cost_cents) / 100 AS f, sum(cost) AS c "
                          "FROM messages").iloc[0]
    assert row["f"] != Decimal("94.192")  # DuckDB divides decimals as doubles
    assert row["c"] == Decimal("94.192") and isinstance(row["c"], Decimal)
    per_row = queries.run_sql(con, "SELECT sid, cost, cost_cents FROM messages ORDER BY sid")
    assert per_row["cost"].tolist()[:2] == [c / 100 for c in cents]
    assert per_row["cost"].isna().tolist() == [False, False, True]


def test_cost_on_the_command_line_prints_without_float_noise(sample_dataset: Path):
    r = run("sql", str(sample_dataset),
            "SELECT sum(cost) AS cost, sum(cost_cents) AS cents FROM messages")
    assert r.exit_code == 0, r.output
    cost, cents = r.stdout.splitlines()[2].split()
    assert Decimal(cost) == Decimal(cents) / 100
    assert len(cost.split(".")[1]) == 8  # the column's scale, not 15 float digits


def test_view_columns_follow_the_schema_and_are_typed_as_documented():
    con = _connect([{"sid": "a"}])
    described = con.execute("DESCRIBE messages").fetchall()
    names = [r[0] for r in described]
    assert names[: len(MESSAGE_SCHEMA)] == MESSAGE_SCHEMA.names
    assert names[len(MESSAGE_SCHEMA):] == [c.name for c in VIEW_COLUMNS] == ["month", "cost"]
    assert dict((r[0], r[1]) for r in described)["cost"] == "DECIMAL(18,8)"
    assert all(c.description for c in VIEW_COLUMNS)


# ---------------------------------------------------------------- --tz


def test_tz_is_the_session_zone_of_the_sql(sample_dataset: Path):
    q = ("SELECT count(*) AS n FROM messages "
         "WHERE hour(created_at) <> hour(timezone('UTC', created_at))")
    utc = run("sql", str(sample_dataset), q, "--json")
    paris = run("sql", str(sample_dataset), q, "--json", "--tz", "Europe/Paris")
    assert utc.exit_code == 0 and paris.exit_code == 0, paris.output
    assert json.loads(utc.stdout)["n"] == 0
    assert json.loads(paris.stdout)["n"] > 0


def test_tz_changes_dates_not_the_data():
    t = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)
    con = _connect([{"sid": "a", "created_at": t}])
    q = "SELECT CAST(created_at AS DATE) AS day, created_at FROM messages"
    utc, paris = queries.run_sql(con, q), queries.run_sql(con, q, tz="Europe/Paris")
    assert str(utc["day"].iloc[0]) == "2025-03-31" and str(paris["day"].iloc[0]) == "2025-04-01"
    assert paris["created_at"].iloc[0] == utc["created_at"].iloc[0]  # the same instant
    assert str(paris["created_at"].dt.tz) == "Europe/Paris"


def test_tz_holds_under_read_only_and_cannot_be_changed_back():
    con = _connect([{"sid": "a", "created_at": datetime(2025, 1, 1, tzinfo=UTC)}])
    df = queries.run_sql(con, "SELECT current_setting('TimeZone') AS z", read_only=True,
                         tz="Asia/Kathmandu")
    assert df["z"].tolist() == ["Asia/Kathmandu"]
    with pytest.raises(Exception, match="(?i)lock|configuration"):
        queries.run_sql(con, "SET TimeZone = 'UTC'")


@pytest.mark.parametrize("zone", ["UTC+1", "Mars/Olympus", "../../etc/passwd", "",
                                  "europe/paris", "Europe/Paris\x1b[31m"])
def test_a_bad_zone_is_one_line_and_exit_2_before_reading(zone, tmp_path):
    r = run("sql", str(tmp_path / "no-dataset"), "SELECT 1", "--tz", zone)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tz" in lines[0] and "Traceback" not in r.output
    assert "no dataset" not in r.stderr  # checked before the dataset is looked at
    assert "\x1b" not in r.stderr


def test_run_sql_refuses_a_bad_zone():
    with pytest.raises(ArgumentError, match="tz"):
        queries.run_sql(_connect([]), "SELECT 1", tz="UTC+1")


def test_a_connection_passed_in_gets_its_zone_back():
    con = _connect([{"sid": "a", "created_at": datetime(2025, 3, 31, 22, 30, tzinfo=UTC)}])
    queries.run_sql(con, "SELECT 1", tz="Europe/Paris")
    assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    with pytest.raises(Exception, match="(?i)nope"):
        queries.run_sql(con, "SELECT nope FROM messages", tz="Asia/Tokyo")
    assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


def test_a_connection_never_draws_duckdbs_progress_bar_on_stdout() -> None:
    # Long queries (seconds, on 10M rows) would print DuckDB's bar into `sql --csv > file`.
    con = queries.connect(pd.DataFrame({"sid": ["a"]}))
    setting = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
    con.close()
    assert setting == (False,)
