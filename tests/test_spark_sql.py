"""The rewrite layer from DuckDB SQL to Spark SQL (no JVM: sqlglot only)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlglot", reason="sqlglot is not installed (the [spark] extra)")

from smsanalytics import queries  # noqa: E402
from smsanalytics.spark import strip_accents  # noqa: E402
from smsanalytics.spark_sql import STRIP_ACCENTS_UDF, UnsupportedSql, to_spark  # noqa: E402


def test_epoch_us_and_to_timestamp_become_spark_functions():
    sql = to_spark("SELECT epoch_us(created_at) // 900000000 AS s, to_timestamp(s * 900) AS t")
    assert "UNIX_MICROS(created_at) DIV 900000000" in sql
    assert "TIMESTAMP_SECONDS(s * 900)" in sql
    assert "FROM_UNIXTIME" not in sql  # sqlglot's own version goes through the session clock


def test_quantile_disc_becomes_the_ordered_set_form():
    # sqlglot alone writes PERCENTILE_DISC(x, 0.5), which Spark 4 refuses (one argument).
    sql = to_spark("SELECT quantile_disc(CAST(c AS DOUBLE) / p, 0.5) AS rate FROM t")
    assert "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY CAST(c AS DOUBLE) / p" in sql


def test_hugeint_becomes_a_whole_decimal_of_38_digits():
    sql = to_spark("SELECT CAST(c * 1000000 AS HUGEINT) * CAST(b AS HUGEINT) > 1 FROM t")
    assert "INT128" not in sql and sql.count("DECIMAL(38, 0)") == 2


def test_timezone_direction_comes_from_the_cast():
    to_local = to_spark("SELECT timezone($tz, CAST(x AS TIMESTAMPTZ))")
    to_instant = to_spark("SELECT timezone($tz, CAST(k AS TIMESTAMP))")
    assert "CONVERT_TIMEZONE('UTC', :tz, x)" in to_local
    assert "CAST(CONVERT_TIMEZONE(:tz, 'UTC', k) AS TIMESTAMP)" in to_instant


def test_what_timezone_converts_is_rewritten_too():
    sql = to_spark("SELECT timezone($tz, CAST(to_timestamp(slot * 900) AS TIMESTAMPTZ))")
    assert sql == "SELECT CONVERT_TIMEZONE('UTC', :tz, TIMESTAMP_SECONDS(slot * 900))"


def test_a_bare_instant_column_of_the_schema_is_an_instant():
    assert "CONVERT_TIMEZONE('UTC', :tz, m.created_at)" in to_spark(
        "SELECT timezone($tz, m.created_at) FROM messages AS m")


def test_timezone_of_an_untyped_expression_is_refused():
    with pytest.raises(UnsupportedSql, match="CAST"):
        to_spark("SELECT timezone($tz, k) FROM t")


def test_isodow_is_monday_one():
    # sqlglot alone writes ((DAYOFWEEK(x) % 7) + 1): Monday would be 3.
    assert "(WEEKDAY(l) + 1)" in to_spark("SELECT isodow(l) FROM t")


def test_strip_accents_calls_the_registered_function():
    assert f"{STRIP_ACCENTS_UDF.upper()}(body_text)" in to_spark(
        "SELECT strip_accents(body_text) FROM messages")


def test_two_unnests_are_zipped_into_one_generator():
    sql = to_spark("SELECT unnest($a::VARCHAR[]) AS keyword, unnest($b::VARCHAR[]) AS kind")
    assert sql.startswith("SELECT INLINE(ARRAYS_ZIP(")
    assert sql.endswith("AS (keyword, kind)")


def test_star_replace_is_expanded_in_column_order():
    sql = to_spark("SELECT m.* REPLACE (upper(m.sid) AS sid) FROM messages AS m")
    assert "REPLACE" not in sql
    assert sql.startswith("SELECT UPPER(m.sid) AS sid, `m`.`direction`, ")
    # the 37 columns of the schema, one replaced, then the view's computed month and cost
    assert sql.count("`m`.") == 38
    assert sql.endswith("`m`.`month`, `m`.`cost` FROM messages AS m")


def test_messages_is_renamed_and_keeps_its_name_as_alias():
    sql = to_spark('SELECT messages."keyword" FROM messages', tables={"messages": "v_1"})
    assert sql == "SELECT messages.`keyword` FROM v_1 AS messages"


def test_nulls_last_is_kept_where_spark_differs():
    # DuckDB sorts NULLs last ascending; Spark first, unless told.
    assert "ORDER BY a NULLS LAST" in to_spark("SELECT a FROM t ORDER BY a")


@pytest.mark.parametrize("name", [n for n in queries.__all__ if n.endswith("_SQL")
                                  and n != "NORMALISED_BODY_SQL"])
def test_every_template_translates(name):
    """Every template, filled as its question fills it, translates without error."""
    template = getattr(queries, name)
    key, period = queries.bucket_sql("day")
    first_key, _ = queries.bucket_sql("day", "s.first_at")
    fill = {"where": "WHERE created_at >= $start", "where_any_time": "", "key": key,
            "period": period.format(k="k"), "period_of_a": period.format(k="a.k"),
            "first_key": first_key, "slot": "epoch_us(created_at) // 900000000",
            "slot_start": "to_timestamp(slot * 900)", "order": "country",
            "keys": "from_country AS country", "group": "", "partition": "", "dims": "",
            "outer_keys": "", "column": "status", "name": "status",
            "normalised": queries.NORMALISED_BODY_SQL, "and_period": "AND s.created_at >= $start"}
    if name == "ENCODINGS_SQL":  # the by=None form: its placeholders end in commas
        fill.update(keys="", order="")
    if name == "COSTS_SQL":
        fill.update(dims="from_country AS country,", keys="country,", outer_keys="country,")
    sql = to_spark(template.format(**fill))
    assert "$" not in sql and "TIMEZONE(" not in sql.upper().replace("CONVERT_TIMEZONE(", "")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cn"],
                                     exclude_characters="\x00"), max_size=20))
def test_strip_accents_agrees_with_duckdb(text):
    """The function Spark calls for strip_accents gives DuckDB's answer, on any text.

    Except NUL, where DuckDB 1.x is inconsistent ('\x00\x80' gives '', '\x00' gives
    '\x00'), and characters newer than Python's Unicode database (unassigned for it, Cn:
    U+11F00, a Kawi mark of Unicode 15, is a mark to DuckDB's utf8proc but unknown to
    Python 3.11's Unicode 14). Neither changes a keyword match: the question's regular
    expression then removes whatever is not a letter, digit or space.
    """
    expected = duckdb.execute("SELECT strip_accents(?)", [text]).fetchone()[0]
    assert strip_accents(text) == expected


def test_engine_spark_without_pyspark_says_what_to_install(monkeypatch):
    import importlib.util

    from smsanalytics.errors import ArgumentError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(ArgumentError, match=r"pyspark is not installed.*smsanalytics\[spark\]"):
        queries.connect(".", engine="spark")


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be 'duckdb' or 'spark'"):
        queries.connect(".", engine="sqlite")


# The Spark SQL of every question, kept in the repository so that a change to a template
# or to the rewrite layer shows up as a readable diff (SMSANALYTICS_UPDATE_REFERENCE=1
# rewrites the file).
REFERENCE = Path(__file__).parent / "data" / "spark_questions.sql"


class _Recorded(Exception):
    """Raised by the recording stand-in of queries._run once it has the SQL."""


def _spark_sql_of_every_question(monkeypatch) -> str:
    import inspect


    seen: list[tuple[str, str]] = []

    def record(source, sql, params, *, question, **kwargs):
        seen.append((question, sql))
        raise _Recorded  # the SQL is all we want: stop before the question's own pandas work

    monkeypatch.setattr(queries, "_run", record)
    for name in queries.__all__:
        obj = getattr(queries, name)
        if name in ("connect", "run_sql") or not inspect.isfunction(obj):
            continue
        if list(inspect.signature(obj).parameters)[:1] == ["source"]:
            kwargs = {"tz": "Europe/Paris"} if "tz" in inspect.signature(obj).parameters else {}
            try:
                obj(None, **kwargs)
            except _Recorded:
                pass
    parts = []
    for question, sql in seen:
        parts.append(f"-- {question}\n{to_spark(sql, tables={'messages': 'messages_view'})};\n")
    return "\n".join(parts)


def test_the_spark_sql_of_every_question_is_the_reference_copy(monkeypatch):
    text = _spark_sql_of_every_question(monkeypatch)
    if os.environ.get("SMSANALYTICS_UPDATE_REFERENCE"):
        REFERENCE.write_text(text, encoding="utf-8")
    assert text == REFERENCE.read_text(encoding="utf-8"), (
        "the Spark SQL changed: review it, then rerun with SMSANALYTICS_UPDATE_REFERENCE=1")
