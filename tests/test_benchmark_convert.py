"""``benchmarks/convert.py`` runs every mode it offers, on a small file (a smoke test).

The figures themselves are not checked (timed assertions have no place in tests); what
is checked is that each run ends, prints its row and converts what it was given.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "convert.py"


@pytest.mark.slow
def test_every_mode_runs_and_prints_its_row(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "3000", "--floor", "--direct",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*3,000\s+(.+?)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+"
                     r"(\d+\.\d\d)\s+(\d[\d,]*)$", line)
        if m:
            rows[m.group(1)] = float(m.group(3))
    assert set(rows) == {
        "duckdb COPY (baseline)", "convert --no-enrich", "convert (enriched)",
        "--no-enrich, DuckDB lines", "enriched, DuckDB lines",
        "bare parse, no checks", "parse only (DuckDB)", "parse + DuckDB write",
    }, proc.stdout
    assert rows["duckdb COPY (baseline)"] == 1.0
    assert all(ratio > 0 for ratio in rows.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # outputs removed, input too


def _benchmark_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_convert", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["baseline", "floor-parse", "floor-write"])
def test_a_workdir_with_a_quote_and_a_space_does_not_break_the_sql(tmp_path, mode):
    # The paths were put into DuckDB's SQL between quotes as they were: a --workdir such
    # as "it's here" was a syntax error.
    bench = _benchmark_module()
    work = tmp_path / "it's here"
    work.mkdir()
    src, out = work / "payloads.jsonl", work / "baseline.parquet"
    bench.generate(src, 200)
    got = bench.run(mode, src, out)
    assert got["elapsed"] > 0
    if mode == "floor-write":
        import pyarrow.parquet as pq

        assert pq.read_metadata(out).num_rows == 200  # every parsed row written
    bench.remove_output(out)
    src.unlink()
    assert list(work.iterdir()) == []


@pytest.mark.slow
def test_a_failing_run_leaves_no_output_and_no_input(tmp_path, monkeypatch):
    # A run that failed (a child's error, Ctrl-C) left its output and the generated input
    # (450 MB at the default size) in the workdir.
    bench = _benchmark_module()

    def fail(mode, src, out):
        out.write_bytes(b"half")
        raise subprocess.CalledProcessError(1, "child")

    monkeypatch.setattr(bench, "run", fail)
    monkeypatch.setattr(sys, "argv", ["convert.py", "--rows", "200", "--workdir", str(tmp_path)])
    with pytest.raises(subprocess.CalledProcessError):
        bench.main()
    assert list(tmp_path.iterdir()) == []
