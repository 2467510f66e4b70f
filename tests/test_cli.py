"""The command line, run as a user runs it, results read back through the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics.cli import main

from .conftest import DATA, ROOT, run, run_process


def test_convert_json_summary_and_read_back(tmp_path):
    out = tmp_path / "ds"
    r = run("convert", str(DATA), "--out", str(out), "--json")
    assert r.exit_code == 0
    summary = json.loads(r.stdout)
    assert {"records", "written", "duplicates", "rejected"} <= set(summary)
    assert summary["records"] == summary["written"] + summary["duplicates"] + summary["rejected"]
    assert len(smsanalytics.read_dataset(out)) == summary["written"]


def test_convert_stdin(tmp_path):
    text = (DATA / "actions-log-line.txt").read_text()
    r = run("convert", "-", "--out", str(tmp_path / "ds"), "--json", input=text)
    assert r.exit_code == 0, r.output
    df = smsanalytics.read_dataset(tmp_path / "ds")
    assert list(df["source_file"]) == ["-"]


def test_missing_input_is_one_line_exit_2(tmp_path):
    r = run("convert", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "ds"))
    assert r.exit_code == 2
    assert "nope.jsonl" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_strict_exits_1(tmp_path):
    r = run("convert", str(DATA / "actions-scenario.yaml"), "--out", str(tmp_path / "ds"),
            "--strict", "-q")
    assert r.exit_code == 1
    assert "rejected" in r.stderr


def test_info_and_unreadable_dataset(tmp_path):
    out = tmp_path / "ds"
    run("convert", str(DATA / "webhook-envelope.json"), "--out", str(out), "-q")
    r = run("info", str(out), "--json")
    assert json.loads(r.stdout)["rows"] == 1
    text = run("info", str(out)).stdout
    assert "cost_cents" in text and "2024-04" in text
    bad = run("info", str(tmp_path / "nothing"))
    assert bad.exit_code == 2 and "no dataset" in bad.stderr


def test_sql_table_csv_json_and_errors(tmp_path, write):
    out = tmp_path / "ds"
    body = '=HYPERLINK(\\"http://evil\\") \\u001b[31mred'
    line = (
        '{"sid":"x1","from":"+33612345678","to":"+33639980044","body":{"text":"'
        + body + '"},"created":"2025-01-01T00:00:00Z"}\n'
    )
    run("convert", str(write("evil.jsonl", line)), "--out", str(out), "-q")
    q = "SELECT sid, body_text FROM messages"
    table = run("sql", str(out), q)
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "\\x1b" in table.stdout
    csv = run("sql", str(out), q, "--csv").stdout
    assert "'=HYPERLINK" in csv
    js = json.loads(run("sql", str(out), q, "--json").stdout.splitlines()[0])
    assert js["sid"] == "x1"
    err = run("sql", str(out), "SELECT nope FROM messages")
    assert err.exit_code == 2 and "SQL error" in err.stderr


def test_sample_command_writes_an_archive_that_converts(tmp_path):
    r = run("sample", "--out", str(tmp_path / "arc"), "--n", "300", "--seed", "3")
    assert r.exit_code == 0, r.output
    s = smsanalytics.convert([tmp_path / "arc"], tmp_path / "ds", quiet=True)
    assert s.written == 300 and s.balanced


def test_python_dash_m_entry_point(tmp_path):
    r = run_process("--help")
    assert r.returncode == 0 and "convert" in r.stdout


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_readme(command):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"smsanalytics {command}" in readme


# Every command, and a usage error of each kind click finds before the command runs. The
# command list comes from the group, so that a new command is covered without a new line.
COMMANDS = sorted(main.commands)
USAGE_ERRORS = {
    "unknown option": ("convert", "P", "--out", "x", "--no-such-option"),
    "bad choice": ("convert", "P", "--out", "x", "--partition-by", "weekly"),
    "missing option": ("convert", "P"),
    "missing argument": ("sql",),
    "directory given for a file": ("convert", "P", "--out", "x", "--rejects", "DIR"),
    "file given for a directory": ("convert", "P", "--out", "FILE"),
    "not a number": ("sample", "--out", "x", "--n", "many"),
    "out of range": ("serve", "--archive", "x", "--port", "99999"),
    "unknown command": ("no-such-command",),
    "unknown group option": ("--no-such-option",),
}


def _assert_one_usage_line(r, command: str) -> None:
    assert r.exit_code == 2, r.output
    lines = r.stderr.rstrip("\n").split("\n")  # what a terminal shows as lines
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("smsanalytics: error: "), lines[0]
    assert f"{command} --help" in lines[0]
    assert "Usage:" not in r.output and "Traceback" not in r.output
    assert r.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("error", ["unknown option", "nothing given"])
def test_every_command_shows_usage_errors_in_one_line(command, error):
    args = [command, "--no-such-option"] if error == "unknown option" else [command]
    r = run(*args)  # every command needs an argument or an option: none is a usage error
    _assert_one_usage_line(r, f"smsanalytics {command}")


@pytest.mark.parametrize("kind", sorted(USAGE_ERRORS))
def test_each_kind_of_usage_error_is_one_line_exit_2(kind, tmp_path):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "P").write_text((DATA / "webhook-envelope.json").read_text())
    args = [str(tmp_path / a) if a in ("P", "FILE", "DIR") else a for a in USAGE_ERRORS[kind]]
    r = run(*args)
    where = "smsanalytics" if kind.startswith("unknown g") or "command" in kind else (
        f"smsanalytics {args[0]}")
    _assert_one_usage_line(r, where)
    assert not (tmp_path / "x").exists()


def test_usage_error_escapes_what_the_user_typed(tmp_path):
    r = run("convert", str(DATA), "--out", str(tmp_path / "x"), "--partition-by",
            "a\nb\x1b[2J")
    _assert_one_usage_line(r, "smsanalytics convert")
    assert "\x1b" not in r.stderr and "a\\nb\\x1b[2J" in r.stderr


def test_help_is_unchanged_by_the_one_line_errors():
    for args in (["--help"], ["convert", "--help"], ["serve", "-h"]):
        r = run(*args)
        assert r.exit_code == 0 and r.stdout.startswith("Usage: smsanalytics")
        assert "Options:" in r.stdout and r.stderr == ""
    bare = run()  # the group alone shows its help, as click does
    assert "Usage: smsanalytics" in bare.output and "Commands:" in bare.output


def test_usage_error_from_the_installed_command_is_one_line(tmp_path):
    r = subprocess.run(
        [str(Path(sys.executable).parent / "smsanalytics"), "convert", str(DATA),
         "--partition-by", "weekly",
         "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "smsanalytics: error: Invalid value for '--partition-by': 'weekly' is not one of "
        "'month', 'none'. (see: smsanalytics convert --help)"
    ]


@settings(max_examples=40, deadline=None)
@given(value=st.text(min_size=1, max_size=40).filter(lambda v: v not in ("month", "none")
                                                        and not v.startswith("-")),
       command=st.sampled_from(COMMANDS))
def test_any_bad_value_or_option_is_one_escaped_line(value, command):
    """Whatever text the user typed, the usage error stays one line with no control
    character reaching the terminal."""
    r = run("convert", str(DATA), "--out", "never-written", "--partition-by", value)
    _assert_one_usage_line(r, "smsanalytics convert")
    r = run(command, f"--{value}")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("smsanalytics: error: ")
    for line in (r.stderr, run("convert", str(DATA), "--out", "x", "--partition-by",
                               value).stderr):
        assert not any(ord(c) < 32 for c in line.rstrip("\n")), line


# ---------------------------------------------------------------- help texts


def _commands() -> list[str]:
    return sorted(main.commands)


@pytest.mark.parametrize("command", _commands())
def test_help_names_each_value_and_marks_what_is_required(command: str) -> None:
    import click

    r = run(command, "--help")
    assert r.exit_code == 0, r.output
    # click's generic metavars say nothing about the value: each option names its own.
    for generic in (" TEXT", " INTEGER", " FLOAT"):
        assert generic not in r.stdout, (command, r.stdout)
    for param in main.commands[command].params:
        if not isinstance(param, click.Option):
            continue
        name = max(param.opts, key=len)
        entry = r.stdout[r.stdout.index(name + " "):].split("\n  -")[0]  # to the next option
        if not param.is_flag:
            shown = entry.split()[1]  # its metavar: FILE, ZONE, N..., or [a|b] for choices
            assert shown.isupper() or shown.startswith("["), entry
        assert ("[required]" in entry) == param.required, entry


def test_ctrl_c_stops_the_queries_of_a_command_that_never_imports_queries(monkeypatch):
    # audit opens its connections through smsanalytics._analysis, not queries: Ctrl-C must
    # reach them there (DuckDB does not see SIGINT while a query runs).
    import _thread
    import sys
    import threading

    from smsanalytics import _analysis, cli

    stopped = threading.Event()
    monkeypatch.setattr(_analysis, "interrupt_all", stopped.set)
    monkeypatch.delitem(sys.modules, "smsanalytics.queries", raising=False)

    def query() -> None:  # a query that runs until interrupted
        assert stopped.wait(30)

    threading.Timer(0.2, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        cli._interruptible(query)
    assert stopped.is_set()
