"""`smsanalytics sql` and :func:`queries.run_sql`: nested cells, empty queries, --read-only."""

from __future__ import annotations

import _thread
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import queries
from smsanalytics.errors import ArgumentError, DatasetError

from .conftest import DATA, run

HISTORY = "SELECT sid, status_history FROM messages WHERE len(status_history) >= 2 LIMIT 3"


@pytest.mark.parametrize("fmt", [[], ["--csv"], ["--json"]])
def test_status_history_with_several_entries_prints_in_every_format(sample_dataset: Path,
                                                                    fmt: list[str]) -> None:
    r = run("sql", str(sample_dataset), HISTORY, *fmt)
    assert r.exit_code == 0, r.output
    assert "before" in r.stdout and "after" in r.stdout


def test_nested_values_of_any_shape_print_as_a_table(sample_dataset: Path) -> None:
    q = ("SELECT [1, 2, 3] AS l, {'a': 1, 'b': [2, 3]} AS s, [] AS e, "
         "[{'x': NULL}, {'x': 'y'}] AS h, NULL AS n")
    r = run("sql", str(sample_dataset), q)
    assert r.exit_code == 0, r.output
    assert "[1, 2, 3]" in r.stdout and '{"x": null}' in r.stdout


def test_sql_csv_writes_nested_cells_as_json(sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset), "SELECT [{'status': 'a'}, {'status': 'b'}] AS h", "--csv")
    cell = next(csv.DictReader(io.StringIO(r.stdout)))["h"]
    assert json.loads(cell) == [{"status": "a"}, {"status": "b"}]


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_an_empty_query_is_one_line(sample_dataset: Path, query: str) -> None:
    r = run("sql", str(sample_dataset), query)
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    with pytest.raises(ArgumentError):
        queries.run_sql(sample_dataset, query)


def test_a_statement_without_result_gives_an_empty_frame(sample_dataset: Path) -> None:
    assert queries.run_sql(sample_dataset, "SET threads = 1").empty
    assert queries.run_sql(sample_dataset, "-- only a comment").empty


@pytest.mark.parametrize("fmt", [[], ["--csv"], ["--json"]])
def test_a_comment_only_query_prints_no_rows(sample_dataset: Path, fmt: list[str]) -> None:
    # "--" ends the options: a query starting with "-" goes after it, as in any shell tool.
    r = run("sql", str(sample_dataset), *fmt, "--", "-- only a comment")
    assert r.exit_code == 0 and r.stderr == "" and not r.stdout.strip(), r.output


def test_a_query_starting_with_a_dash_without_the_end_of_options_is_one_line(
        sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset), "-- only a comment")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert "No such option" in r.stderr and not r.stdout


def test_sql_csv_cr_cannot_start_a_row(sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset), "SELECT 'x' || chr(13) || '=1+2' AS a, 'ok' AS b", "--csv")
    raw = r.stdout
    # The CR sits inside a quoted cell, so no reader sees a row starting with "=".
    assert raw.count("\n") == 2 and '"x\r=1+2"' in raw


# -- --read-only --------------------------------------------------------------------------


def escapes(tmp_path: Path) -> dict[str, str]:
    target = tmp_path / "written.csv"
    db = tmp_path / "attached.duckdb"
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n1\n")
    return {
        "copy to": f"COPY (SELECT 1) TO '{target}'",
        "attach": f"ATTACH '{db}' AS x",
        "read_text": "SELECT * FROM read_text('/etc/passwd')",
        "read_csv": f"SELECT * FROM read_csv('{outside}')",
        "read_blob": "SELECT * FROM read_blob('/etc/hostname')",
        "glob": "SELECT * FROM glob('/etc/*')",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "unlock": "SET lock_configuration = false",
        "reopen": "SET enable_external_access = true",
        "widen": "SET allowed_directories = ['/']",
        "export": f"EXPORT DATABASE '{tmp_path / 'exported'}'",
        "two statements": f"SELECT 1; COPY (SELECT 2) TO '{target}'",
    }


def test_read_only_blocks_every_way_out(sample_dataset: Path, tmp_path: Path) -> None:
    for name, query in escapes(tmp_path).items():
        r = run("sql", str(sample_dataset), query, "--read-only")
        assert r.exit_code == 2, (name, r.output)
        assert len(r.stderr.splitlines()) == 1, (name, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside.csv"]


def test_read_only_still_reads_the_dataset(sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset), "SELECT count(*) AS n FROM messages", "--read-only",
            "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == len(smsanalytics.read_dataset(sample_dataset))


def test_read_only_cannot_read_the_datasets_other_files(sample_dataset: Path) -> None:
    manifest = smsanalytics.dataset.manifest_path(sample_dataset)
    r = run("sql", str(sample_dataset), f"SELECT * FROM read_text('{manifest}')", "--read-only")
    assert r.exit_code == 2


def payload(sid: str) -> str:
    """One bare Callr webhook payload, as a JSON Lines line."""
    data = json.loads((DATA / "webhook-payload.json").read_text())
    data = data.get("data", data)
    return json.dumps({**data, "sid": sid}) + "\n"


def count(source: object) -> int:
    return int(queries.run_sql(source, "SELECT count(*) AS n FROM messages",
                               read_only=True)["n"].iloc[0])


def test_read_only_sees_the_version_current_when_it_starts(tmp_path: Path) -> None:
    archive, out = tmp_path / "a.jsonl", tmp_path / "ds"
    archive.write_text(payload("r1"))
    smsanalytics.convert([archive], out, quiet=True)
    con = queries.connect(out)  # opened before the second conversion
    archive.write_text(payload("r1") + payload("r2") + payload("r3"))
    smsanalytics.convert([archive], out, overwrite=True, quiet=True)
    assert count(out) == 3
    assert count(con) == 3  # pinned, when locked, to the files current then
    assert count(con) == 3  # and stays locked
    r = run("sql", str(out), "SELECT count(*) AS n FROM messages", "--read-only", "--json")
    assert json.loads(r.stdout)["n"] == 3


@pytest.mark.parametrize("name", ["ds[1]", "d*s", "d?s", "d{a,b}s", "it's"])
def test_read_only_reads_a_dataset_whose_name_is_a_glob(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "a.jsonl"
    archive.write_text(payload("g1") + payload("g2"))
    smsanalytics.convert([archive], tmp_path / name, quiet=True)
    # A folder the name would match as a pattern, with other data: never read.
    archive.write_text(payload("o1"))
    for decoy in ("ds1", "dXs", "das"):
        smsanalytics.convert([archive], tmp_path / decoy, quiet=True)
    assert count(tmp_path / name) == 2


def test_read_only_refuses_a_dataset_file_linking_outside(sample_dataset: Path,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(sample_dataset, copy)
    outside = tmp_path / "outside.parquet"
    shutil.copy(next(copy.rglob("*.parquet")), outside)
    month = next(p for p in copy.iterdir() if p.is_dir())
    (month / "link.parquet").symlink_to(outside)
    with pytest.raises(DatasetError, match="outside"):
        count(copy)
    r = run("sql", str(copy), "SELECT count(*) FROM messages", "--read-only")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output


def test_read_only_refuses_a_connection_locked_with_access_on(sample_dataset: Path,
                                                             tmp_path: Path) -> None:
    con = queries.connect(sample_dataset)
    con.execute("SET lock_configuration = true")  # locked, but files still open
    target = tmp_path / "x.csv"
    with pytest.raises(duckdb.Error):
        queries.run_sql(con, f"COPY (SELECT 1) TO '{target}'", read_only=True)
    assert not target.exists()


def test_read_only_follows_a_link_inside_the_dataset(sample_dataset: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(sample_dataset, real)
    (tmp_path / "link").symlink_to(real)
    assert count(tmp_path / "link") == count(real) == len(smsanalytics.read_dataset(sample_dataset))


def test_read_only_over_an_empty_dataset(tmp_path: Path) -> None:
    empty = tmp_path / "a.jsonl"
    empty.write_text("")
    smsanalytics.convert([empty], tmp_path / "ds", quiet=True)
    df = queries.run_sql(tmp_path / "ds", "SELECT * FROM messages", read_only=True)
    assert df.empty and len(df.columns) > 10


def test_without_read_only_sql_runs_with_the_users_rights(sample_dataset: Path,
                                                          tmp_path: Path) -> None:
    # What the README warns about: the plain command can write files.
    target = tmp_path / "out.csv"
    r = run("sql", str(sample_dataset), f"COPY (SELECT 1 AS one) TO '{target}'")
    assert r.exit_code == 0 and target.exists()


def test_run_sql_read_only_over_a_dataframe(tmp_path: Path) -> None:
    import pandas as pd

    df = queries.run_sql(pd.DataFrame({"sid": ["a", "b"]}), "SELECT count(*) AS n FROM messages",
                         read_only=True)
    assert int(df["n"].iloc[0]) == 2
    with pytest.raises(Exception, match="disabled"):
        queries.run_sql(pd.DataFrame({"sid": ["a"]}),
                        f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'", read_only=True)


# -- Ctrl-C -----------------------------------------------------------------------------


SLOW = ("SELECT count(*) AS n FROM range(1000000000) a "
        "WHERE md5(a.range::VARCHAR) > 'a'")  # about a minute of work


def test_ctrl_c_stops_a_running_query(sample_dataset: Path) -> None:
    from smsanalytics.cli import _interruptible

    seen: dict[str, BaseException] = {}

    def query() -> object:
        try:
            return queries.run_sql(sample_dataset, SLOW)
        except BaseException as exc:
            seen["error"] = exc
            raise

    timer = threading.Timer(1.0, _thread.interrupt_main)  # Ctrl-C, once the query runs
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _interruptible(query)
    assert "interrupt" in str(seen["error"]).lower()  # the query stopped, not abandoned


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sql", "audit", "report"])
def test_ctrl_c_on_the_command_line_is_one_line_and_exit_130(sample_dataset: Path, tmp_path: Path,
                                                             command: str) -> None:
    args = {"sql": [str(sample_dataset), SLOW],
            "audit": [str(sample_dataset), "--start", "2025-01-01"],
            "report": [str(sample_dataset), "-o", str(tmp_path / "r.html")]}[command]
    child = subprocess.Popen([sys.executable, "-m", "smsanalytics", command, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    while child.poll() is None and cpu_seconds() < 2.0:  # started: past the imports
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    if command == "sql":  # the others may have finished before the signal: both are fine
        assert child.returncode == 130, err
    if child.returncode == 130:
        assert err.splitlines() == ["smsanalytics: interrupted; nothing was changed"]
        assert not (tmp_path / "r.html").exists()


# -- exact values in every output ---------------------------------------------------------


BIG = 2**53 + 1  # the first integer a float cannot hold


def output(sample_dataset: Path, query: str,
           fmt: str) -> list[dict[str, str]] | list[dict[str, object]]:
    """Rows `sql` prints for `query`: CSV cells as text, JSON values as parsed."""
    r = run("sql", str(sample_dataset), query, *([f"--{fmt}"] if fmt != "table" else []))
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(r.stdout)))
    if fmt == "json":
        return [json.loads(line) for line in r.stdout.splitlines()]
    header, _, *rows = r.stdout.splitlines()
    names = header.split()
    return [dict(zip(names, row.split(), strict=False)) for row in rows]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_an_integer_column_with_a_null_prints_exactly(sample_dataset: Path, fmt: str) -> None:
    rows = output(sample_dataset, f"SELECT * FROM (VALUES ({BIG}::BIGINT), (NULL)) t(x)", fmt)
    assert str(rows[0]["x"]) == str(BIG)
    assert rows[1].get("x") in (None, "")


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_parts_with_missing_values_print_as_integers(tmp_path: Path, fmt: str) -> None:
    archive = tmp_path / "a.jsonl"
    without_parts = json.loads(payload("n1"))
    del without_parts["parts"]
    archive.write_text(payload("p1") + json.dumps(without_parts) + "\n")
    smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    rows = output(tmp_path / "ds", "SELECT sid, parts FROM messages ORDER BY sid", fmt)
    assert [str(r.get("parts") or "") for r in rows] == ["", "1"]


def test_nested_integers_decimals_and_floats_print_exactly(sample_dataset: Path) -> None:
    q = (f"SELECT [{BIG}, NULL]::BIGINT[] AS l, {{'a': {BIG}::BIGINT}} AS s, "
         "0.1234567890123456::DOUBLE AS f, "
         "123456789012345678901234567890.123::DECIMAL(38, 3) AS d, "
         f"{BIG}::HUGEINT * 1000000000000 AS h")
    js = output(sample_dataset, q, "json")[0]
    assert js == {"l": [BIG, None], "s": {"a": BIG}, "f": 0.1234567890123456,
                  "d": "123456789012345678901234567890.123", "h": BIG * 10**12}
    cells = output(sample_dataset, q, "csv")[0]
    assert json.loads(cells["l"]) == [BIG, None] and json.loads(cells["s"]) == {"a": BIG}
    assert cells["d"] == "123456789012345678901234567890.123"
    assert float(cells["f"]) == 0.1234567890123456 and int(cells["h"]) == BIG * 10**12
    table = run("sql", str(sample_dataset), q).stdout
    assert "123456789012345678901234567890.123" in table and str(BIG * 10**12) in table


def test_times_print_in_utc_to_the_microsecond(sample_dataset: Path) -> None:
    q = "SELECT TIMESTAMPTZ '2025-03-30 03:30:00.123456+02:00' AS t"
    assert output(sample_dataset, q, "json")[0]["t"] == "2025-03-30T01:30:00.123456+00:00"
    assert output(sample_dataset, q, "csv")[0]["t"] == "2025-03-30T01:30:00.123456+00:00"
    assert "2025-03-30 01:30:00.123456+00:00" in run("sql", str(sample_dataset), q).stdout


def test_run_sql_gives_nullable_integers(sample_dataset: Path) -> None:
    df = queries.run_sql(sample_dataset, f"SELECT * FROM (VALUES ({BIG}::BIGINT), (NULL)) t(x)")
    assert str(df["x"].dtype) == "Int64" and df["x"].iloc[0] == BIG and df["x"].isna().iloc[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
                       min_size=1, max_size=8))
@example(values=[-(2**63), None, 2**63 - 1, BIG])
def test_int64_with_nulls_round_trip_through_csv_and_json(sample_dataset: Path,
                                                           values: list[int | None]) -> None:
    rows = ", ".join(f"(({'NULL' if v is None else v})::BIGINT)" for v in values)  # (-2**63)
    q = f"SELECT x FROM (VALUES {rows}) t(x)"
    csv_rows = output(sample_dataset, q, "csv")
    json_rows = output(sample_dataset, q, "json")
    assert [None if r["x"] == "" else int(r["x"]) for r in csv_rows] == values
    assert [r["x"] for r in json_rows] == values


def test_the_table_shows_decimals_exactly_without_an_exponent(sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset),
            "SELECT 0.00000001::DECIMAL(18,8) AS a, 0::DECIMAL(18,8) AS b, "
            "-0.0000001::DECIMAL(18,8) AS c")
    assert r.exit_code == 0, r.output
    values = r.stdout.splitlines()[2].split()
    assert values == ["0.00000001", "0.00000000", "-0.00000010"]
    assert "E-" not in r.stdout


def test_csv_and_json_together_are_refused(sample_dataset: Path) -> None:
    r = run("sql", str(sample_dataset), "SELECT 1 AS x", "--csv", "--json")
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--csv" in r.stderr, r.stderr
