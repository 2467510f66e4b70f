"""Where report, audit and pseudonymize write, and how (issue 11, follow-up).

Their outputs are checked before anything is computed (one line, exit 2); the report page
and the CSV tables are replaced atomically; Ctrl-C says the truth about what was changed,
from the first import of the console script to after a command returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smsanalytics
import smsanalytics.privacy
from smsanalytics import __main__ as entry_point
from smsanalytics import escape
from smsanalytics.errors import OutputPathError
from smsanalytics.escape import write_csv_tables
from smsanalytics.paths import PAGE_MARKER, is_report_page

from .conftest import DATA, ROOT, assert_one_line_error, run, run_process


def _record(sid: str) -> str:
    return json.dumps({
        "sid": sid, "from": "+33639980042", "to": "+33639980044", "body": {"text": "Hi"},
        "created": "2025-03-01T10:00:00Z", "updated": "2025-03-01T10:00:00Z",
        "cost": "0.050000", "parts": 1,
    })


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small dataset (read only by the tests)."""
    where = tmp_path_factory.mktemp("data")
    (where / "in.jsonl").write_text(f"{_record('a')}\n{_record('b')}\n")
    smsanalytics.convert([where / "in.jsonl", DATA / "webhook-payload.json"], where / "ds",
                         quiet=True)
    return where / "ds"


@pytest.fixture
def nothing_computed(monkeypatch):
    """Fail the test if a report or an audit is computed."""

    def computed(*args, **kwargs):
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr("smsanalytics.report.cost_report", computed)
    monkeypatch.setattr("smsanalytics.audit.audit", computed)


def _device(path: Path) -> Path:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device here (not root)")
    return path


def _bad_output(kind: str, tmp_path: Path, dataset: Path) -> tuple[Path, str]:
    """An output path of `kind` nobody may write, and the words of its refusal."""
    if kind == "device":
        return _device(tmp_path / "null"), "is a device"
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return tmp_path / "pipe", "named pipe"
    if kind == "symlink":
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "r.html").write_text(f"<!DOCTYPE html>{PAGE_MARKER}")
        (tmp_path / "link").symlink_to(tmp_path / "real" / "r.html")
        return tmp_path / "link", "symbolic link"
    if kind == "dataset":
        return dataset, "one of the inputs"
    assert kind == "inside"
    return dataset / "report.html", "is inside"


# -- report --out, report --csv, audit --csv --------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink", "dataset", "inside"])
def test_report_out_is_refused_before_computing(kind, tmp_path, dataset, nothing_computed):
    before = sorted(p.name for p in dataset.rglob("*"))
    out, words = _bad_output(kind, tmp_path, dataset)
    r = run("report", dataset, "-o", out)
    assert_one_line_error(r, words if kind != "dataset" else "is a directory")
    assert sorted(p.name for p in dataset.rglob("*")) == before
    assert not out.exists() or not out.is_file() or out.is_symlink() or kind == "inside"
    if kind == "symlink":  # a page of ours behind the link, kept as it was (not rewritten)
        assert is_report_page(tmp_path / "real" / "r.html")
        assert (tmp_path / "real" / "r.html").read_text() == f"<!DOCTYPE html>{PAGE_MARKER}"


def test_report_out_a_folder_is_one_line_not_a_usage_error(tmp_path, dataset, nothing_computed):
    assert_one_line_error(run("report", dataset, "-o", tmp_path), "is a directory")


def test_report_out_a_page_we_did_not_write_is_refused_and_kept(
    tmp_path, dataset, nothing_computed
):
    notes = tmp_path / "notes.html"
    notes.write_text("<!DOCTYPE html><title>My notes</title>")
    assert_one_line_error(run("report", dataset, "-o", notes), "not written by smsanalytics")
    assert notes.read_text() == "<!DOCTYPE html><title>My notes</title>"


@pytest.mark.parametrize("command", ["report", "audit"])
@pytest.mark.parametrize("kind", ["device", "fifo", "symlink", "dataset", "inside", "file"])
def test_csv_folder_is_refused_before_computing(
    command, kind, tmp_path, dataset, nothing_computed
):
    if kind == "file":
        out, words = tmp_path / "tables.csv", "not a directory"
        out.write_text("a,b\n")
    elif kind == "symlink":
        (tmp_path / "real").mkdir()
        out, words = tmp_path / "link", "symbolic link"
        out.symlink_to(tmp_path / "real")
    else:
        out, words = _bad_output(kind, tmp_path, dataset)
        if kind == "inside":
            out = dataset / "tables"
    page = ["-o", tmp_path / "r.html"] if command == "report" else []
    r = run(command, dataset, *page, "--csv", out)
    assert_one_line_error(r, words if kind != "device" else "is a device")
    assert not (tmp_path / "r.html").exists()
    assert not (dataset / "tables").exists()
    if kind == "symlink":
        assert list((tmp_path / "real").iterdir()) == []


def test_a_report_replaces_its_own_page_and_csv_tables_keeping_other_files(tmp_path, dataset):
    page, tables = tmp_path / "r.html", tmp_path / "tables"
    assert run("report", dataset, "-o", page, "--csv", tables).exit_code == 0
    assert PAGE_MARKER in page.read_text()
    (tables / "NOTES.txt").write_text("mine")
    first = {p.name: p.read_bytes() for p in tables.iterdir()}
    r = run("report", dataset, "-o", page, "--csv", tables)
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == first
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_page_from_before_the_marker_is_still_ours(tmp_path, dataset):
    page = tmp_path / "r.html"
    page.write_text('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                    "<title>Inbound SMS cost report: March 2025</title>\n</head></html>\n")
    assert run("report", dataset, "-o", page).exit_code == 0
    assert PAGE_MARKER in page.read_text()


def test_a_csv_that_is_not_this_table_is_refused_and_kept(tmp_path, dataset):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "summary.csv").write_text("my,own,sheet\n1,2,3\n")
    r = run("audit", dataset, "--csv", tables)
    assert_one_line_error(r, "summary.csv", "is not this table written earlier")
    assert (tables / "summary.csv").read_text() == "my,own,sheet\n1,2,3\n"
    assert sorted(p.name for p in tables.iterdir()) == ["summary.csv"]  # none written


def test_write_html_never_replaces_a_device(tmp_path, dataset):
    device = _device(tmp_path / "null")
    report = smsanalytics.cost_report(dataset)
    with pytest.raises(OutputPathError, match="is a device"):
        report.write_html(device)
    assert device.is_char_device()


# -- atomic writes ----------------------------------------------------------------------


def test_a_report_cut_short_by_a_full_disk_leaves_the_previous_page_whole(tmp_path, dataset):
    page = tmp_path / "r.html"
    assert run("report", dataset, "-o", page).exit_code == 0
    previous = page.read_bytes() + b"<!-- the previous page -->\n"
    page.write_bytes(previous)

    def small_files() -> None:  # a disk that fills up after 4 KiB of the new page
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = run_process("report", dataset, "-o", page, preexec_fn=small_files)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "File too large" in proc.stderr
    assert page.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_csv_tables_cut_short_leave_the_previous_files_whole(tmp_path, monkeypatch, stop):
    tables = {"a": pd.DataFrame({"x": ["1", "2"]}), "b": pd.DataFrame({"y": ["3"]})}
    write_csv_tables(tables, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = escape.write_csv

    def half_then_fail(df, out) -> None:
        real(df.head(1), out)
        raise stop("cut short")

    monkeypatch.setattr(escape, "write_csv", half_then_fail)
    with pytest.raises(stop):
        write_csv_tables({"a": pd.DataFrame({"x": ["9"] * 5}), "b": tables["b"]}, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# -- pseudonymize: the library checks its output too; Ctrl-C tells the truth ------------


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "k.key"
    smsanalytics.privacy.generate_key(path)
    return path


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink"])
def test_pseudonymize_dataset_refuses_links_and_devices_in_the_library(
    kind, tmp_path, dataset, key
):
    if kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        out = tmp_path / "anon"
        out.symlink_to(tmp_path / "elsewhere")
    else:
        out, _ = _bad_output(kind, tmp_path, dataset)
    with pytest.raises(OutputPathError):
        smsanalytics.privacy.pseudonymize_dataset(
            dataset, out, key=smsanalytics.privacy.load_key(key))
    if kind == "symlink":
        assert list((tmp_path / "elsewhere").iterdir()) == []
    else:
        assert not out.is_dir()


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_the_swap_says_the_copy_is_in_place(tmp_path, dataset, key, monkeypatch):
    from smsanalytics import dataset as ds

    real = ds.commit_version

    def swap_then_ctrl_c(staging: Path, out: Path) -> None:
        real(staging, out)
        _ctrl_c()  # lands as the swap ends

    monkeypatch.setattr(ds, "commit_version", swap_then_ctrl_c)
    r = run("pseudonymize", dataset, "--out", tmp_path / "anon", "--key-file", key)
    assert r.exit_code == 130, r.output
    assert len(r.stderr.strip().splitlines()) == 1
    assert "the copy had completed" in r.stderr and "nothing was changed" not in r.stderr
    assert len(smsanalytics.read_dataset(tmp_path / "anon")) == 3


def test_ctrl_c_while_copying_says_no_copy_was_written(tmp_path, dataset, key, monkeypatch):
    real = smsanalytics.privacy.transform_batch

    def ctrl_c_then_transform(*args, **kwargs):
        _ctrl_c()
        return real(*args, **kwargs)

    monkeypatch.setattr(smsanalytics.privacy, "transform_batch", ctrl_c_then_transform)
    r = run("pseudonymize", dataset, "--out", tmp_path / "anon", "--key-file", key)
    assert r.exit_code == 130, r.output
    assert "no copy was written" in r.stderr
    assert not (tmp_path / "anon").exists() or not any((tmp_path / "anon").iterdir())
    assert [p.name for p in tmp_path.iterdir() if "anon" in p.name and p.name != "anon"] == [
        ".anon.lock"]


# -- the console script: Ctrl-C from the first import to after the command ---------------


def test_the_console_script_is_the_interrupt_safe_entry_point():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["smsanalytics"] == "smsanalytics.__main__:run"


def test_ctrl_c_while_the_command_line_imports_is_one_line_and_130(tmp_path):
    # Ctrl-C arriving while click (the first heavy import) is being imported.
    script = textwrap.dedent("""
        import sys

        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "click":
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, CtrlC())
        from smsanalytics.__main__ import run
        run(["info", sys.argv[1]])
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "smsanalytics: interrupted; nothing was changed\n"


def test_ctrl_c_after_the_command_returned_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    import click

    real = click.Context.__exit__
    made = tmp_path / "k.key"

    def exit_then_ctrl_c(self, *exc_info):
        real(self, *exc_info)
        if made.exists():  # the command ran: Ctrl-C lands while click tidies up after it
            raise KeyboardInterrupt

    monkeypatch.setattr(click.Context, "__exit__", exit_then_ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        entry_point.run(["keygen", str(made)])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert "Aborted" not in err
    assert err.strip() == "smsanalytics: interrupted; the command had finished"
    assert made.is_file()


def test_the_entry_point_keeps_usage_errors_and_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        entry_point.run(["report"])
    assert stopped.value.code == 2 and "Missing argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        entry_point.run(["info", str(tmp_path / "missing")])
    assert stopped.value.code == 2
    with pytest.raises(SystemExit) as stopped:
        entry_point.run(["--version"])
    assert stopped.value.code == 0 and "version" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "audit"])
def test_a_bare_ctrl_c_in_a_command_says_nothing_was_changed(
    command, tmp_path, dataset, monkeypatch
):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt  # as the query thread hands it over: no text

    monkeypatch.setattr("smsanalytics.report.cost_report", ctrl_c)
    monkeypatch.setattr("smsanalytics.audit.audit", ctrl_c)
    page = ["-o", tmp_path / "r.html"] if command == "report" else []
    r = run(command, dataset, *page)
    assert r.exit_code == 130
    assert r.stderr == "smsanalytics: interrupted; nothing was changed\n"


# -- serve: the archive and the dataset ---------------------------------------------------


@pytest.fixture
def served(monkeypatch) -> list:
    """Record the receiver's configuration instead of serving."""
    configs: list = []
    monkeypatch.setattr("smsanalytics.receiver.serve",
                        lambda config, **kwargs: configs.append(config))
    return configs


@pytest.mark.parametrize("kind", ["file", "device", "fifo"])
def test_serve_archive_that_is_not_a_folder_is_one_line(kind, tmp_path, served):
    if kind == "file":
        archive, words = tmp_path / "archive", "not a directory"
        archive.write_text("keep me")
    else:
        archive, words = _bad_output(kind, tmp_path, tmp_path)
    r = run("serve", "--archive", archive, "--insecure-no-auth")
    assert_one_line_error(r, words)
    assert served == []


# The dataset's own refusals (the archive, inside it, around it) are the receiver's, before it
# listens: see test_serve_refuses_a_dataset_it_could_never_convert_into_at_start
# in tests/test_receiver.py.


def test_serve_archive_may_be_a_link_to_a_folder(tmp_path, served):
    (tmp_path / "disk").mkdir()
    (tmp_path / "archive").symlink_to(tmp_path / "disk")
    r = run("serve", "--archive", tmp_path / "archive", "--dataset", tmp_path / "ds",
            "--insecure-no-auth")
    assert r.exit_code == 0, r.output
    assert [c.archive for c in served] == [tmp_path / "archive"]


def test_report_page_and_csv_folder_at_one_path_is_refused_before_writing(
    tmp_path, dataset, nothing_computed
):
    r = run("report", dataset, "-o", tmp_path / "out", "--csv", tmp_path / "out")
    assert_one_line_error(r, "is also the report page")
    assert not (tmp_path / "out").exists()


def test_a_replaced_page_keeps_its_permissions(tmp_path, dataset):
    page = tmp_path / "r.html"
    assert run("report", dataset, "-o", page).exit_code == 0
    page.chmod(0o600)
    assert run("report", dataset, "-o", page).exit_code == 0
    assert stat.S_IMODE(page.stat().st_mode) == 0o600


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.lists(st.text(max_size=20), min_size=1, max_size=6),
       new=st.lists(st.text(max_size=20), min_size=1, max_size=6),
       cut=st.integers(0, 6), names=st.integers(1, 3))
def test_csv_tables_are_replaced_whole_or_not_at_all(tmp_path_factory, old, new, cut, names):
    """Whatever the tables and wherever a write fails, each file is the old or the new."""
    folder = tmp_path_factory.mktemp("tables")
    tables = {f"t{i}": pd.DataFrame({"x": old}) for i in range(names)}
    write_csv_tables(tables, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real, calls = escape.write_csv, []

    def failing(df, out) -> None:
        calls.append(df)
        if len(calls) > cut:  # the tables before the cut are written, then a failure
            real(df.head(len(df) // 2), out)
            raise OSError(28, "No space left on device")
        real(df, out)

    escape.write_csv = failing
    try:
        with contextlib.suppress(OSError):
            write_csv_tables({f"t{i}": pd.DataFrame({"x": new}) for i in range(names)}, folder)
    finally:
        escape.write_csv = real
    fresh = tmp_path_factory.mktemp("fresh")
    write_csv_tables({f"t{i}": pd.DataFrame({"x": new}) for i in range(names)}, fresh)
    for p in folder.iterdir():
        assert p.read_bytes() in (before[p.name], (fresh / p.name).read_bytes())
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)


def test_a_page_in_a_missing_folder_is_refused_before_computing(
    tmp_path, dataset, nothing_computed
):
    r = run("report", dataset, "-o", tmp_path / "missing" / "r\x1b[31m.html")
    assert_one_line_error(r, "does not exist", "\\x1b")
    assert "\x1b" not in r.stderr
