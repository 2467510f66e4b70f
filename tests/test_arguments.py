"""Arguments checked at the door: every command and library entry point, each bad value."""

from __future__ import annotations

import inspect
import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import arguments, errors, queries
from smsanalytics.audit import audit
from smsanalytics.errors import ArgumentError, DatasetError, SmsAnalyticsError
from smsanalytics.report import cost_report

from ._fixtures_queries import table
from .conftest import run


@pytest.fixture(scope="module")
def undated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("undated")
    src = folder / "in.jsonl"
    src.write_text('{"sid":"u1","from":"+33612345678","to":"+33639980044",'
                   '"body":{"text":"hi"}}\n')
    smsanalytics.convert([src], folder / "ds", quiet=True)
    return folder / "ds"


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("empty")
    (folder / "in.jsonl").write_text("")
    smsanalytics.convert([folder / "in.jsonl"], folder / "ds", quiet=True)
    return folder / "ds"


# -- the parsers ------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC+1", "GMT+01:00", "../../etc", "/etc/localtime",
                                "Mars/Olympus", "", " UTC", "UTC\x00", "Europe/../UTC",
                                "localtime", "europe/paris\n"])
def test_a_bad_time_zone_is_an_argument_error(tz: str) -> None:
    with pytest.raises(ArgumentError) as err:
        arguments.time_zone(tz, "--tz")
    assert err.value.name == "--tz" and err.value.value == tz
    assert isinstance(err.value, ValueError) and isinstance(err.value, SmsAnalyticsError)
    assert "IANA" in str(err.value)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "Etc/GMT+1", "America/Argentina/Salta",
                                ZoneInfo("Asia/Kolkata"), UTC])
def test_real_time_zones_are_accepted(tz: object) -> None:
    assert isinstance(arguments.time_zone(tz), ZoneInfo)  # type: ignore[arg-type]


def test_etc_gmt_plus_one_is_utc_minus_one() -> None:
    # POSIX's inverted sign: documented, not "fixed".
    moment = arguments.instant("2025-01-01T00:00", arguments.time_zone("Etc/GMT+1"))
    assert moment == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2025-02-30", "2025-13-01", "2025-04-31", "yesterday",
                                   "2025/05/01", "", "0000-01-01", "0001-01-01",
                                   "9999-12-31", "2025-05-01T25:00", "2025-05-01T08:00+25:00"])
def test_a_bad_bound_is_an_argument_error(value: str) -> None:
    with pytest.raises(ArgumentError) as err:
        arguments.instant(value, ZoneInfo("Asia/Tokyo"), "--start")
    assert err.value.name == "--start"


@pytest.mark.parametrize("value, expected", [
    ("2025-05-01", datetime(2025, 4, 30, 22, tzinfo=UTC)),
    ("2025-05-01T08:00", datetime(2025, 5, 1, 6, tzinfo=UTC)),
    ("2025-05-01T08:00:00Z", datetime(2025, 5, 1, 8, tzinfo=UTC)),
    ("2025-05-01T08:00+01:00", datetime(2025, 5, 1, 7, tzinfo=UTC)),
    (date(2025, 5, 1), datetime(2025, 4, 30, 22, tzinfo=UTC)),
    ("2024-02-29", datetime(2024, 2, 28, 23, tzinfo=UTC)),
])
def test_bounds_are_read_in_the_time_zone(value: object, expected: datetime) -> None:
    assert arguments.instant(value, ZoneInfo("Europe/Paris")) == expected


@pytest.mark.parametrize("start, end", [("2025-06-01", "2025-05-01"),
                                        ("2025-05-01", "2025-05-01"),
                                        ("2025-05-01T10:00+02:00", "2025-05-01T08:00Z")])
def test_end_must_be_after_start(start: str, end: str) -> None:
    with pytest.raises(ArgumentError, match="must be after") as err:
        arguments.period_bounds(start, end, ZoneInfo("UTC"), ("--start", "--end"))
    assert err.value.name == "--end"


@pytest.mark.parametrize("value", [0, -1, 10**20, True, "ten", 1.5, None])
def test_a_bad_count_is_an_argument_error(value: object) -> None:
    with pytest.raises(ArgumentError, match="whole number from 1"):
        arguments.positive_int(value, "--top")


@pytest.mark.parametrize("value", ["", "  ", "EUR\x1b[2J", "EU\u202eR", "x" * 65, 5])
def test_a_bad_currency_is_an_argument_error(value: object) -> None:
    with pytest.raises(ArgumentError):
        arguments.currency_label(value, "--currency")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["x", "-0.1", "NaN", "Infinity", "-inf", "", True, "1,5"])
def test_a_bad_margin_is_an_argument_error(value: object) -> None:
    with pytest.raises(ArgumentError):
        arguments.margin(value, "--margin")  # type: ignore[arg-type]


def test_argument_errors_pickle_with_their_context() -> None:
    with pytest.raises(ArgumentError) as err:
        arguments.time_zone("UTC+1", "--tz")
    back = pickle.loads(pickle.dumps(err.value))
    assert (back.name, back.value, back.reason) == ("--tz", "UTC+1", err.value.reason)


#: Every exception the package exports, each to be rebuilt from however it was made.
ERRORS: list[type[SmsAnalyticsError]] = [getattr(errors, name) for name in errors.__all__]


def _values(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of a constructor parameter: of its type, or a few kinds for ``object``."""
    if annotation in (object, inspect.Parameter.empty):
        return st.one_of(st.none(), st.integers(), st.text(max_size=10))
    return st.from_type(annotation)


@st.composite
def constructions(draw: st.DrawFn) -> tuple[type[SmsAnalyticsError], tuple[Any, ...],
                                            dict[str, Any]]:
    """An error class and arguments passed any way its signature allows: a first few by
    position, the others by keyword in any order, optional ones given or left out."""
    cls = draw(st.sampled_from(ERRORS))
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    by_keyword = False
    for p in list(inspect.signature(cls.__init__, eval_str=True).parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            args += draw(st.lists(_values(p.annotation), max_size=3)) if not by_keyword else []
        elif p.kind is not p.VAR_KEYWORD:
            if p.default is not p.empty and draw(st.booleans()):
                by_keyword = True  # left out: what follows must be named
                continue
            by_keyword = by_keyword or draw(st.booleans())
            value = draw(_values(p.annotation))
            if by_keyword:
                kwargs[p.name] = value
            else:
                args.append(value)
    order = draw(st.permutations(list(kwargs)))
    return cls, tuple(args), {name: kwargs[name] for name in order}


@settings(max_examples=300, deadline=None)
@given(constructions())
@example((errors.InputError, ("in.jsonl",), {"line": 2, "reason": "x"}))
@example((errors.ArgumentError, (), {"reason": "r", "value": 1, "name": "--top"}))
def test_every_error_pickles_as_it_was_made_however_its_arguments_were_passed(
        made: tuple[type[SmsAnalyticsError], tuple[Any, ...], dict[str, Any]]) -> None:
    cls, args, kwargs = made
    err = cls(*args, **kwargs)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (str(back), back.args) == (str(err), err.args)
    assert vars(back) == vars(err)
    given_ = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    given_.apply_defaults()
    for name, value in list(given_.arguments.items())[1:]:
        if hasattr(back, name):  # the context an error keeps: its arguments, by name
            assert getattr(back, name) == value, name


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_any_text_as_zone_or_bound_is_a_zone_or_an_argument_error(text: str) -> None:
    for check in (lambda: arguments.time_zone(text),
                  lambda: arguments.instant(text, ZoneInfo("Pacific/Kiritimati")),
                  lambda: arguments.period_bounds(text, "2025-01-01", ZoneInfo("UTC"))):
        try:
            check()
        except ArgumentError:
            pass


# -- the library entry points raise before reading anything ----------------------------


LIBRARY_CALLS = {
    "cost_report": lambda src, **kw: cost_report(src, **kw),
    "audit": lambda src, **kw: audit(src, **kw),
    "volume": lambda src, **kw: queries.volume(src, **{k: v for k, v in kw.items()
                                                       if k in ("tz", "start", "end")}),
    "costs": lambda src, **kw: queries.costs(src, **{k: v for k, v in kw.items()
                                                     if k in ("tz", "start", "end")}),
}
BAD_LIBRARY_ARGUMENTS = {
    "tz": {"tz": "UTC+1"},
    "start": {"start": "2025-02-30"},
    "end": {"start": "2025-04-01", "end": "2025-03-01"},
}


@pytest.mark.parametrize("call", LIBRARY_CALLS)
@pytest.mark.parametrize("bad", BAD_LIBRARY_ARGUMENTS)
def test_library_functions_raise_argument_errors(call: str, bad: str) -> None:
    with pytest.raises(ArgumentError) as err:
        LIBRARY_CALLS[call](table(), **BAD_LIBRARY_ARGUMENTS[bad])
    assert err.value.name == bad


@pytest.mark.parametrize("kw", [{"top": 0}, {"currency": ""}])
def test_cost_report_checks_top_and_currency(kw: dict[str, object]) -> None:
    with pytest.raises(ArgumentError) as err:
        cost_report(table(), **kw)  # type: ignore[arg-type]
    assert err.value.name == next(iter(kw))


def test_audit_checks_its_margin() -> None:
    with pytest.raises(ArgumentError) as err:
        audit(table(), rate_margin="-1")
    assert err.value.name == "rate_margin"


def test_audit_with_end_before_start_is_refused_not_zero() -> None:
    with pytest.raises(ArgumentError, match="must be after"):
        audit(table(), start="2025-11-01", end="2025-03-01")


def test_report_with_one_bound_past_the_data_says_why() -> None:
    with pytest.raises(ArgumentError, match="no message lies after it"):
        cost_report(table(), start="2030-01-01")


def test_typed_values_pass_through_the_library() -> None:
    zone = ZoneInfo("Europe/Paris")
    lo, hi = arguments.period_bounds("2025-03-01", "2025-04-01", zone)
    r = cost_report(table(), start=lo, end=hi, tz=zone)
    assert r.tz == "Europe/Paris" and r.period.label == "March 2025"
    a = audit(table(), start=lo, end=hi, tz=zone, rate_margin=Decimal("0.5"))
    assert a.tz == "Europe/Paris" and a.start == lo


# -- every command: one line, exit 2 ----------------------------------------------------


BAD = {
    "report": [["--tz", "UTC+1"], ["--tz", "../../etc"], ["--tz", "Mars/Olympus"],
               ["--start", "2025-02-30"], ["--end", "soon"],
               ["--start", "2025-06-01", "--end", "2025-05-01"],
               ["--start", "2025-05-01", "--end", "2025-05-01"],
               ["--top", "0"], ["--top", "-3"], ["--top", str(10**30)], ["--top", "ten"],
               ["--top", "²"],
               ["--currency", ""], ["--currency", "EUR\x1b[2J"]],
    "audit": [["--tz", "UTC+1"], ["--tz", "/etc/localtime"], ["--start", "2025-02-30"],
              ["--start", "2025-06-01", "--end", "2025-05-01"], ["--margin", "lots"],
              ["--margin", "-0.5"], ["--margin", "NaN"], ["--max-rows", "0"],
              ["--max-rows", "many"], ["--currency", " "]],
    "sql": [["", ], ["   \n"], ["SELECT 1", "--max-rows", "0"], ["SELECT 1", "--max-rows", ""]],
    "info": [],
}


def _cases() -> list[tuple[str, list[str]]]:
    return [(command, args) for command, many in BAD.items() for args in many]


@pytest.mark.parametrize("command, args", _cases(),
                         ids=[f"{c}:{' '.join(a)!r}" for c, a in _cases()])
def test_every_command_answers_a_bad_argument_in_one_line(callr_dataset: Path, tmp_path: Path,
                                                           command: str,
                                                           args: list[str]) -> None:
    head = {"report": [str(callr_dataset), "-o", str(tmp_path / "r.html")],
            "audit": [str(callr_dataset)], "sql": [str(callr_dataset)]}[command]
    r = run(command, *head, *args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smsanalytics: error: "), r.stderr
    assert "Traceback" not in r.output
    assert not (tmp_path / "r.html").exists()  # refused before anything is written


@pytest.mark.parametrize("command", ["report", "audit", "sql", "info"])
def test_a_missing_dataset_is_one_line(tmp_path: Path, command: str) -> None:
    args = {"report": ["-o", str(tmp_path / "r.html")], "sql": ["SELECT 1"]}.get(command, [])
    r = run(command, str(tmp_path / "nothing"), *args)
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output


def test_keygen_refuses_an_existing_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("mine")
    r = run("keygen", str(tmp_path / "k"))
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1
    assert (tmp_path / "k").read_text() == "mine"


@pytest.mark.parametrize("which", ["undated", "empty"])
def test_report_of_a_dataset_without_dates_is_one_line(request: pytest.FixtureRequest,
                                                        tmp_path: Path, which: str) -> None:
    ds = request.getfixturevalue(which)
    r = run("report", str(ds), "-o", str(tmp_path / "r.html"))
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert "no dated messages" in r.stderr and "--start" not in r.stdout
    with pytest.raises(DatasetError):
        cost_report(ds)
    # With a period it is a report of nothing, not an error.
    ok = run("report", str(ds), "-o", str(tmp_path / "r.html"), "--start", "2025-01-01",
             "--end", "2025-02-01")
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("which", ["undated", "empty"])
def test_audit_and_info_of_a_dataset_without_dates_work(request: pytest.FixtureRequest,
                                                        which: str) -> None:
    ds = request.getfixturevalue(which)
    assert run("audit", str(ds)).exit_code == 0
    assert run("info", str(ds)).exit_code == 0


def test_the_report_accepts_odd_but_valid_arguments(callr_dataset: Path, tmp_path: Path) -> None:
    r = run("report", str(callr_dataset), "-o", str(tmp_path / "r.html"), "--tz", "Etc/GMT+1",
            "--top", "1000000", "--currency", "US$", "--start", "2024-02-29")
    assert r.exit_code == 0, r.output
    assert "US$" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_a_zone_in_the_wrong_case_gets_its_name() -> None:
    with pytest.raises(ArgumentError, match="case-sensitive: Europe/Paris"):
        arguments.time_zone("europe/paris")


option_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=25)


@settings(max_examples=40, deadline=None)
@given(option=st.sampled_from(["--tz", "--start", "--end", "--currency", "--margin",
                               "--max-rows"]), value=option_text)
def test_no_option_value_makes_audit_print_a_traceback(callr_dataset: Path, option: str,
                                                      value: str) -> None:
    if value.startswith("-"):
        value = " " + value  # click would read it as an option: not what is tested here
    r = run("audit", callr_dataset, option, value)  # an exception fails the test
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 2:
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.output


def test_keygen_onto_a_directory_is_one_line(tmp_path: Path) -> None:
    r = run("keygen", str(tmp_path))
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output


def _questions() -> list[str]:
    import inspect

    # run_sql takes a session time zone but no period: not a question (tested on its own).
    return [n for n in queries.__all__ if inspect.isfunction(getattr(queries, n))
            and n != "run_sql"
            and "tz" in inspect.signature(getattr(queries, n)).parameters]


@pytest.mark.parametrize("question", _questions())
@pytest.mark.parametrize("bad", BAD_LIBRARY_ARGUMENTS)
def test_every_question_checks_its_tz_and_period(question: str, bad: str) -> None:
    with pytest.raises(ArgumentError) as err:
        getattr(queries, question)(table(), **BAD_LIBRARY_ARGUMENTS[bad])
    assert err.value.name == bad


@pytest.mark.parametrize("start, end, tz", [("1000-01-01", "9998-12-31", "UTC"),
                                            ("1000-01-01", "1001-01-01", "Asia/Tokyo"),
                                            ("1001-01-01", "9998-12-01", "Pacific/Kiritimati")])
def test_a_period_whose_comparison_would_start_before_the_years_is_refused(
        start: str, end: str, tz: str) -> None:
    with pytest.raises(ArgumentError, match="it is compared with"):
        cost_report(table(), start=start, end=end, tz=tz)


@pytest.mark.parametrize("tz", ["Etc/GMT-14", "Etc/GMT+12", "Pacific/Kiritimati"])
def test_the_widest_bounds_pass_the_door_and_the_library(callr_dataset: Path, tz: str) -> None:
    # The CLI turns them into UTC instants a day outside the years; the library takes them.
    r = run("audit", str(callr_dataset), "--start", "1000-01-01", "--end", "9998-12-31", "--tz", tz,
            "--json")
    assert r.exit_code == 0, r.output
    lo, hi = arguments.period_bounds("1000-01-01", "9998-12-31", arguments.time_zone(tz))
    assert arguments.period_bounds(lo, hi, arguments.time_zone("UTC")) == (lo, hi)


def test_a_long_period_with_room_before_it_is_reported() -> None:
    r = cost_report(table(), start="1960-01-01", end="2030-01-01")
    assert r.previous.start.year == 1890 and r.reconciled
