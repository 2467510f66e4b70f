"""Conversion speed and memory against DuckDB's own JSON-to-Parquet COPY.

Generates N bare webhook payloads as JSON Lines (default 1,000,000, about 450 MB, ~50,000
distinct senders), then runs, each in a fresh subprocess so that peak memory is its own:

* the baseline: ``COPY (SELECT * FROM read_json(IN, format='newline_delimited')) TO x.parquet``
* ``smsanalytics.convert([IN], OUT)``: parsing, typing, de-duplication, rejects,
  partitioned zstd Parquet, atomic commit.

Prints wall times, the ratio to the baseline, and the peak RSS of each, for the core
conversion (``enrich_rows=False``: the issue's 2x bar) and the enriched one (3x bar).
``--scale 5`` also converts a file five times larger to show that peak memory does not
grow with the input.

Usage: python benchmarks/convert.py [--rows N] [--scale K] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
mode, src, out = sys.argv[1:4]
t = time.perf_counter()
if mode == "baseline":
    import duckdb
    duckdb.execute(
        f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited')) "
        f"TO '{out}' (FORMAT parquet)"
    )
    extra = {}
else:
    import smsanalytics
    s = smsanalytics.convert([src], out, overwrite=True, quiet=True, enrich_rows=mode == "ours")
    extra = {"records": s.records, "written": s.written, "rejected": s.rejected}
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"elapsed": elapsed, "peak": peak, **extra}))
"""


def run(mode: str, src: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def generate(path: Path, rows: int) -> None:
    from smsanalytics.sample import write_webhook_jsonl

    if path.exists():
        return
    t = time.perf_counter()
    size = write_webhook_jsonl(path, n=rows, senders=50_000, seed=1)
    print(f"generated {rows:,} payloads, {size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--scale", type=int, default=0, help="also run on a file K times larger")
    ap.add_argument("--workdir", type=Path, default=HERE / "_work")
    ap.add_argument("--keep", action="store_true", help="keep the generated inputs")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [args.rows] + ([args.rows * args.scale] if args.scale > 1 else [])
    print(f"{'rows':>12} {'run':>22} {'seconds':>8} {'ratio':>6} {'peak MB':>8}")
    for rows in sizes:
        src = args.workdir / f"payloads-{rows}.jsonl"
        generate(src, rows)
        base = run("baseline", src, args.workdir / "baseline.parquet")
        print(
            f"{rows:>12,} {'duckdb COPY (baseline)':>22} {base['elapsed']:>8.2f} {1:>6.2f} "
            f"{base['peak'] / 2**20:>8,.0f}",
            flush=True,
        )
        for mode, label in (("core", "convert --no-enrich"), ("ours", "convert (enriched)")):
            got = run(mode, src, args.workdir / "dataset")
            assert got["written"] + got["rejected"] <= rows
            print(
                f"{rows:>12,} {label:>22} {got['elapsed']:>8.2f} "
                f"{got['elapsed'] / base['elapsed']:>6.2f} {got['peak'] / 2**20:>8,.0f}",
                flush=True,
            )
            shutil.rmtree(args.workdir / "dataset", ignore_errors=True)
        (args.workdir / "baseline.parquet").unlink(missing_ok=True)
        if not args.keep:
            src.unlink()


if __name__ == "__main__":
    main()
