"""The filters every question takes: parsed once at the door, every value bound, never pasted."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsanalytics import _analysis, queries
from smsanalytics.errors import ArgumentError

from ._fixtures_queries import table

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
values = st.one_of(texts, st.lists(texts, max_size=4))


@settings(max_examples=200, deadline=None)
@given(to_number=values, country=values, traffic_type=values, status=values)
def test_any_text_is_a_bound_parameter_never_sql(to_number, country, traffic_type, status):
    given_ = {"to_number": to_number, "country": country, "traffic_type": traffic_type,
              "status": status}
    where, params = _analysis.select("UTC", given_).where()
    as_lists = {k: [v] if isinstance(v, str) else v for k, v in given_.items()}
    # Each value is a parameter, in order; the SQL is made of placeholders and names only.
    for name, items in as_lists.items():
        assert [params[f"{name}_{i}"] for i in range(len(items))] == items
    skeleton = where
    for key in sorted(params, key=len, reverse=True):
        skeleton = skeleton.replace(f"${key}", "?")
    allowed = set("WHERE AND IN ? ( ) , false\n") | set("abcdefghijklmnopqrstuvwxyz_")
    assert set(skeleton) <= allowed, skeleton


@settings(max_examples=50, deadline=None)
@given(country=st.lists(texts, max_size=3))
def test_the_question_counts_exactly_the_rows_its_filter_names(country):
    con = queries.connect(table())
    got = int(queries.costs(con, country=country)["messages"].iloc[0])
    want = sum(1 for c in table().column("from_country").to_pylist() if c in country)
    assert got == want


def test_bounds_are_parsed_once_into_utc_instants():
    s = _analysis.select(ZoneInfo("Europe/Paris"), {"start": "2025-03-30", "end": "2025-03-31"})
    assert s.tz == "Europe/Paris"
    assert [v.isoformat() for v in s.period_params().values()] == [
        "2025-03-29T23:00:00+00:00", "2025-03-30T22:00:00+00:00"]  # a 23-hour day


@pytest.mark.parametrize("bad, name", [({"start": "2025-02-30"}, "start"),
                                        ({"end": "yesterday"}, "end")])
def test_a_bad_bound_is_an_argument_error_naming_it(bad, name):
    with pytest.raises(ArgumentError) as err:
        _analysis.select("UTC", bad)
    assert err.value.name == name


def test_a_bad_zone_is_refused_before_the_bounds():
    with pytest.raises(ArgumentError) as err:
        _analysis.select("Mars/Olympus", {"start": "nonsense"})
    assert err.value.name == "tz"


def test_a_value_that_is_not_text_is_a_type_error():
    with pytest.raises(TypeError, match="country values must be strings, not int"):
        _analysis.select("UTC", {"country": ["FR", 33]})
