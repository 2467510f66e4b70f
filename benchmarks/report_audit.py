"""Benchmark: ``report`` and ``audit`` vs one DuckDB scan of the same dataset.

Generates (or reuses) the synthetic dataset that ``benchmarks/queries.py`` also times
(``benchmarks/_common.py``: every message has random parts, encoding and cost, so the
audit finds millions of discrepancies), then runs, each in a fresh process so that its
peak memory is its own:

* the baseline: one DuckDB scan that aggregates the dataset by month and country
  (count, parts, cost);
* :func:`smsanalytics.report.cost_report` and :func:`smsanalytics.audit.audit`.

It prints the seconds and the peak resident memory of each, and the ratios to the
baseline. The bars (issue 15): peak <= 1 GiB each; report <= 10x, audit <= 20x the scan.

Usage::

    nice .venv/bin/python benchmarks/report_audit.py --rows 1000000
    nice .venv/bin/python benchmarks/report_audit.py --dir /tmp/ds10m --reuse  # 10M rows
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import add_dataset_options, synthetic_dataset  # noqa: E402

__all__ = ["main"]

# Each job runs in its own interpreter and prints {"seconds": ..., "peak_mib": ...}.
_JOB = """
import json, sys, time
path, job = sys.argv[1], sys.argv[2]
if job == "scan":
    import duckdb
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.sql(f"SELECT strftime(created_at, '%Y-%m') AS month, from_country, count(*), "
            f"sum(parts), sum(cost_cents) FROM read_parquet('{path}/**/*.parquet', "
            f"hive_partitioning = true) GROUP BY ALL").fetchall()
elif job == "report":
    from smsanalytics.report import cost_report
    t0 = time.perf_counter()
    r = cost_report(path, currency="EUR")
    r.to_html()
elif job == "audit":
    from smsanalytics.audit import audit
    t0 = time.perf_counter()
    a = audit(path, currency="EUR")
    a.to_html(max_rows=20)
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: getrusage keeps the peak of the process before exec (the parent's).
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak}))
"""


def _run(path: Path, job: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _JOB, str(path), job], check=True,
                         capture_output=True, text=True)
    measured: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return measured


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 when a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_options(parser)
    parser.add_argument("--only", choices=["report", "audit"], default=None,
                        help="time only this one (and the scan)")
    args = parser.parse_args(argv)
    with synthetic_dataset(args) as path:
        _run(path, "scan")  # warm the file cache
        scan = _run(path, "scan")
        print(f"{'scan (baseline)':16s} {scan['seconds']:8.2f} s {scan['peak_mib']:8.0f} MiB")
        bars = {"report": 10, "audit": 20}
        ok = True
        for job, bar in bars.items():
            if args.only and job != args.only:
                continue
            got = _run(path, job)
            ratio = got["seconds"] / scan["seconds"]
            fine = ratio <= bar and got["peak_mib"] <= 1024
            ok &= fine
            print(f"{job:16s} {got['seconds']:8.2f} s {got['peak_mib']:8.0f} MiB "
                  f"{ratio:6.1f}x (bars: {bar}x, 1024 MiB) {'ok' if fine else 'MISSED'}",
                  flush=True)
        return 0 if ok else 1

if __name__ == "__main__":
    raise SystemExit(main())
