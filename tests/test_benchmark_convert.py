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
