"""Questions on Spark: every named question and the cost report give DuckDB's answers.

The questions are enumerated from :mod:`smsanalytics.queries` (every public function whose
first parameter is ``source``), so a new question is compared without editing this file.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import smsanalytics as sa
from smsanalytics import queries
from smsanalytics.errors import ArgumentError
from tests import _fixtures_queries as fx
from tests._spark_session import spark  # noqa: F401  (the session fixture)
from tests.conftest import DATA, SAMPLE

pytestmark = pytest.mark.spark

#: Not questions: the connection itself and free SQL (compared on its own below).
_NOT_QUESTIONS = {"connect", "run_sql"}


def _questions() -> list[str]:
    names = []
    for name in queries.__all__:
        obj = getattr(queries, name)
        if name in _NOT_QUESTIONS or not inspect.isfunction(obj):
            continue
        params = list(inspect.signature(obj).parameters)
        if params and params[0] == "source":
            names.append(name)
    return names


QUESTIONS = _questions()

#: Extra calls beyond each question's defaults: every freq and every `by` at least once.
_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "volume": [{"freq": "hour"}, {"freq": "week"}, {"freq": "month"}, {"freq": "quarter"},
               {"freq": "year"}],
    "top_senders": [{"by": "cost", "n": None}, {"by": "parts", "n": 2}],
    "sender_activity": [{"freq": "day"}, {"freq": "hour"}],
    "locations": [{"by": "location", "n": 3}],
    "encodings": [{"by": "country"}],
    "costs": [{"by": "day"}, {"by": ["month", "country"]}, {"by": ["quarter", "country"]},
              {"by": "year"}, {"by": ["week", "network",
                                                                   "operator"]},
              {"by": ["hour", "traffic_type", "payment_type", "to_number", "encoding",
                      "status"]}],
    "traffic": [{"freq": None}, {"freq": "month"}],
    "statuses": [{"freq": "hour"}],
    "keywords": [{"freq": None}, {"freq": "week", "keywords": {"stop": "opt-out",
                                                             "Bonjour 😀": "greeting"}}],
}


def _calls(name: str, *, every: bool) -> list[dict[str, Any]]:
    """Paris time with filters (the DST days); with `every`, also defaults and variants."""
    params = inspect.signature(getattr(queries, name)).parameters
    first = {"tz": fx.PARIS, "start": "2025-03-30", "end": "2025-10-27",
             "country": ["FR", "BE", "X'Y"]} if "tz" in params else {}
    if not every:
        return [first]
    return [first, {}, {"tz": fx.PARIS}] + [{"tz": fx.PARIS, **v} for v in
                                           _VARIANTS.get(name, [])]


def _same(spark_df: pd.DataFrame, duck_df: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(spark_df, duck_df, check_exact=True)
    assert spark_df.attrs == duck_df.attrs


def test_every_question_is_known_here():
    """A question added to queries.py is picked up by the enumeration (11 today)."""
    assert set(QUESTIONS) >= {"volume", "top_senders", "costs", "keywords",
                              "activity_pattern", "sender_activity"}
    assert "connect" not in QUESTIONS


@pytest.fixture(scope="module")
def dst_sources(spark):  # noqa: F811
    table = fx.table()
    return queries.connect(table, currency="EUR"), queries.connect(
        table, engine="spark", spark=spark, currency="EUR")


@pytest.mark.parametrize("name", QUESTIONS)
def test_question_matches_duckdb_on_a_dst_fixture(name, dst_sources):
    duck, on_spark = dst_sources
    question = getattr(queries, name)
    for kwargs in _calls(name, every=False):
        _same(question(on_spark, **kwargs), question(duck, **kwargs))


def test_hours_of_both_dst_changes_match_duckdb(dst_sources):
    duck, on_spark = dst_sources
    kwargs = {"freq": "hour", "tz": fx.PARIS}
    _same(queries.volume(on_spark, **kwargs), queries.volume(duck, **kwargs))


@pytest.mark.slow
@pytest.mark.parametrize("name", QUESTIONS)
def test_every_variant_matches_duckdb_on_a_dst_fixture(name, dst_sources):
    duck, on_spark = dst_sources
    question = getattr(queries, name)
    for kwargs in _calls(name, every=True):
        _same(question(on_spark, **kwargs), question(duck, **kwargs))


@pytest.fixture(scope="module")
def spark_sample_dataset(tmp_path_factory) -> Path:
    """The whole shipped sample and the test data (``tests/data``), converted once for this
    module: more than conftest's ``sample_dataset`` (the sample's events only)."""
    out = tmp_path_factory.mktemp("spark_sample") / "ds"
    sa.convert([SAMPLE, DATA], out, quiet=True)
    return out


@pytest.fixture(scope="module")
def sample_sources(spark_sample_dataset, spark):  # noqa: F811
    return (queries.connect(spark_sample_dataset, currency="EUR"),
            queries.connect(spark_sample_dataset, engine="spark", spark=spark, currency="EUR"))


def test_a_dataset_is_read_from_a_file_uri(spark_sample_dataset, spark):  # noqa: F811
    on_spark = queries.connect(spark_sample_dataset.as_uri(), engine="spark", spark=spark)
    _same(queries.costs(on_spark, by="month", tz=fx.PARIS),
          queries.costs(spark_sample_dataset, by="month", tz=fx.PARIS))


@pytest.mark.slow
def test_questions_match_duckdb_on_the_sample_dataset(sample_sources):
    """Each question once, in Paris time, over the dataset as Spark reads it from disk."""
    duck, on_spark = sample_sources
    for name in QUESTIONS:
        question = getattr(queries, name)
        kwargs = {"tz": fx.PARIS} if "tz" in inspect.signature(question).parameters else {}
        _same(question(on_spark, **kwargs), question(duck, **kwargs))


def test_exact_decimals_survive(dst_sources):
    _, on_spark = dst_sources
    total = queries.costs(on_spark)
    assert total["cost_cents"].iloc[0] == sum(Decimal(r[8]) for r in fx._ROWS)
    assert str(total["cost_cents"].dtype).startswith("decimal128(38, 6)")


def test_a_column_has_the_same_dtype_on_both_engines(dst_sources):
    """One Arrow -> pandas converter (``_analysis.to_frame``) whatever the engine: the same
    question gives the same dtypes, and so does a Spark result read with ``.df()``."""
    duck, on_spark = dst_sources
    kwargs = {"by": ["month", "country"], "tz": fx.PARIS}
    on_spark_df, duck_df = queries.costs(on_spark, **kwargs), queries.costs(duck, **kwargs)
    assert on_spark_df.dtypes.to_dict() == duck_df.dtypes.to_dict()
    assert str(duck_df["messages"].dtype) == "Int64"
    sql = ("SELECT from_country, count(*) AS n, sum(cost_cents) AS c, max(created_at) AS t, "
           "CAST(NULL AS INTEGER) AS none FROM messages GROUP BY ALL ORDER BY n DESC, "
           "from_country")
    read = on_spark.sql(sql).df()
    answer = queries.run_sql(duck, sql)
    assert read.dtypes.to_dict() == answer.dtypes.to_dict()
    assert str(read["c"].dtype).startswith("decimal128(")  # exact: DuckDB's .df() has floats
    pd.testing.assert_frame_equal(read, pd.DataFrame(answer), check_exact=True)


def test_the_session_time_zone_is_restored(dst_sources, spark):  # noqa: F811
    _, on_spark = dst_sources
    queries.volume(on_spark, tz=fx.PARIS)
    assert spark.conf.get("spark.sql.session.timeZone") == "America/New_York"


def test_run_sql_matches_duckdb(dst_sources):
    duck, on_spark = dst_sources
    sql = ("SELECT from_country, count(*) AS n, sum(cost_cents) AS c, max(created_at) AS t "
           "FROM messages WHERE parts >= $p GROUP BY ALL ORDER BY n DESC, from_country")
    _same(queries.run_sql(on_spark, sql, {"p": 2}), queries.run_sql(duck, sql, {"p": 2}))


def test_the_view_columns_month_and_cost_match_duckdb(dst_sources):
    duck, on_spark = dst_sources
    sql = "SELECT sid, month, cost, sum(cost) OVER () AS total FROM messages ORDER BY sid"
    _same(queries.run_sql(on_spark, sql), queries.run_sql(duck, sql))
    star = "SELECT * FROM messages ORDER BY sid"
    _same(queries.run_sql(on_spark, star), queries.run_sql(duck, star))


def test_a_session_time_zone_is_refused_on_spark(dst_sources):
    _, on_spark = dst_sources
    with pytest.raises(ArgumentError, match="DuckDB"):
        queries.run_sql(on_spark, "SELECT 1", tz=fx.PARIS)


@pytest.mark.slow
def test_cost_report_matches_duckdb(spark_sample_dataset, spark):  # noqa: F811
    duck = sa.cost_report(spark_sample_dataset, tz=fx.PARIS, currency="EUR")
    con = queries.connect(spark_sample_dataset, engine="spark", spark=spark, currency="EUR")
    on_spark = sa.cost_report(con, tz=fx.PARIS, currency="EUR")
    assert on_spark.reconciled
    for name in ("headline", "by_month", "by_country", "by_operator", "by_traffic_type",
                 "by_payment_type", "by_recipient", "top_senders", "rates", "above_rate",
                 "above_rate_examples", "audit", "audit_examples", "excluded",
                 "reconciliation"):
        a, b = getattr(on_spark, name), getattr(duck, name)
        if a is None or b is None:
            assert a is None and b is None, name
            continue
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


@pytest.mark.slow
def test_the_billing_audit_matches_duckdb(sample_sources):
    """Every table of the full audit (monthly rates, numbers, networks, look-alikes)."""
    from smsanalytics import audit

    duck, on_spark = sample_sources
    a = audit.audit(on_spark, tz=fx.PARIS, currency="EUR")
    b = audit.audit(duck, tz=fx.PARIS, currency="EUR")
    for name in ("summary", "mismatches", "rates", "above_rate", "unknown_networks",
                 "invalid_numbers", "country_mismatch", "smart_punctuation"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True,
                                      obj=name)
