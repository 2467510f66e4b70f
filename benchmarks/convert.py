"""Conversion speed and memory against DuckDB's own JSON-to-Parquet COPY.

Generates N bare webhook payloads as JSON Lines (default 1,000,000, about 450 MB, ~50,000
distinct senders), then runs, each in a fresh subprocess so that peak memory is its own:

* the baseline: ``COPY (SELECT * FROM read_json(IN, format='newline_delimited')) TO x.parquet``
* ``smsanalytics.convert([IN], OUT)``: parsing, typing, de-duplication, rejects,
  partitioned zstd Parquet, atomic commit.

Prints wall times, the ratio to the baseline, CPU seconds (user + system: steadier than
wall time on a shared machine) and their ratio, and the peak RSS of each, for the core
conversion (``enrich_rows=False``: the issue's 2x bar) and the enriched one (3x bar).
``--scale 5`` also converts a file five times larger to show that peak memory does not
grow with the input.

``--floor`` adds three runs that are DuckDB alone, with nothing of ours around it: a bare
parse of the payloads into our typed columns with no check at all (the JSON read, then
plain casts: the least any parse costs), our parse (``sources.parse_sql``, the query
that types, checks and gives each bad record its reason) over the file's lines, both
handed to Arrow and dropped (``parse only``), and our parse
written by DuckDB into one zstd Parquet file (``parse + DuckDB write``): the conversion the
issue's architecture would reach at best (no partitions, no de-duplication, no rejects
file). If that is over a bar, no arrangement of the steps around the parse meets it.

``--direct`` adds both conversions with the file's lines read by DuckDB's own reader (the
opt-in ``readers.DIRECT_MIN_BYTES``) instead of cut in Python, side by side in one invocation.

Usage: python benchmarks/convert.py [--rows N] [--scale K] [--repeat K] [--workdir DIR] [--keep]
       [--direct] [--floor]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, resource, sys, time
mode, src, out = sys.argv[1:4]
src_sql, out_sql = ("'" + p.replace("'", "''") + "'" for p in (src, out))  # SQL literals
t = time.perf_counter()
c = os.times()
if mode == "baseline":
    import duckdb
    duckdb.execute(
        f"COPY (SELECT * FROM read_json({src_sql}, format='newline_delimited')) "
        f"TO {out_sql} (FORMAT parquet)"
    )
    extra = {}
elif mode.startswith("floor"):  # DuckDB alone runs our parse over the file's lines
    BARE = ('{"sid": "VARCHAR", "direction": "VARCHAR", "from": "VARCHAR", "to": "VARCHAR", '
            '"body": {"text": "VARCHAR"}, "trafficType": "VARCHAR", "status": "VARCHAR", '
            '"error": "VARCHAR", "encoding": "VARCHAR", "parts": "VARCHAR", '
            '"network": "VARCHAR", "cost": "VARCHAR", "paymentType": "VARCHAR", '
            '"created": "VARCHAR", "sent": "VARCHAR", "delivered": "VARCHAR", '
            '"updated": "VARCHAR", "statusHistory": '
            '[{"before": "VARCHAR", "after": "VARCHAR", "at": "VARCHAR"}]}')
    import duckdb
    from smsanalytics.sources import parse_sql
    con = duckdb.connect()
    for setting in ("SET TimeZone='UTC'", "SET enable_progress_bar=false",
                    "SET disabled_optimizers='common_subexpressions'"):  # as ingest._Run
        con.execute(setting)
    lines = (
        "(SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, text, "
        "NULL::VARCHAR AS pre_error FROM read_csv(" + src_sql + ", columns = {'text': 'VARCHAR'}, "
        "header = false, auto_detect = false, delim = chr(1), quote = '', escape = '', "
        "new_line = '\\n')) AS lines"
    )
    query = parse_sql(lines)
    if mode == "floor-bare":  # no checks at all: the JSON read, then plain casts
        query = (
            'SELECT p.sid, p.direction, p."from" AS from_number, p."to" AS to_number, '
            "p.body.text AS body_text, p.trafficType AS traffic_type, p.status, p.error, "
            "p.encoding, TRY_CAST(p.parts AS INTEGER) AS parts, p.network, "
            "TRY_CAST(p.cost AS DECIMAL(18,6)) AS cost_cents, p.paymentType AS payment_type, "
            + ", ".join(f"TRY_CAST(p.{k} AS TIMESTAMPTZ) AS {k}_at"
                        for k in ("created", "sent", "delivered", "updated"))
            + ', TRY_CAST(p.statusHistory AS STRUCT("before" VARCHAR, "after" VARCHAR, '
            '"at" TIMESTAMPTZ)[]) AS status_history '
            f"FROM (SELECT from_json(text, '{BARE}') AS p FROM {lines})"
        )
    if mode == "floor-write":
        con.execute(f"COPY ({query}) TO {out_sql} (FORMAT parquet, COMPRESSION zstd)")
    else:
        for _batch in con.sql(query).to_arrow_reader(25_000):
            pass
    extra = {}
else:
    import smsanalytics
    if mode.endswith("-direct"):  # DuckDB's own reading of the file (opt-in)
        import smsanalytics.readers
        smsanalytics.readers.DIRECT_MIN_BYTES = 16 << 20
    enrich = mode.startswith("ours")
    s = smsanalytics.convert([src], out, overwrite=True, quiet=True, enrich_rows=enrich)
    extra = {"records": s.records, "written": s.written, "rejected": s.rejected}
elapsed = time.perf_counter() - t
d = os.times()
cpu = d.user - c.user + d.system - c.system
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"elapsed": elapsed, "cpu": cpu, "peak": peak, **extra}))
"""


def run(mode: str, src: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def remove_output(out: Path) -> None:
    """Remove a run's output: the Parquet file, or the dataset with its rejects file,
    manifest and lock beside it."""
    from smsanalytics.dataset import manifest_path
    from smsanalytics.ingest import default_rejects_path

    if out.is_dir():
        for beside in (default_rejects_path(out), manifest_path(out),
                       out.parent / f".{out.name}.lock"):
            beside.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    out.unlink(missing_ok=True)


def generate(path: Path, rows: int) -> None:
    from smsanalytics.sample import write_webhook_jsonl

    if path.exists():  # kept from an earlier run (--keep): whole, as written below
        return
    t = time.perf_counter()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        size = write_webhook_jsonl(tmp, n=rows, senders=50_000, seed=1)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"generated {rows:,} payloads, {size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--scale", type=int, default=0, help="also run on a file K times larger")
    ap.add_argument("--workdir", type=Path, default=HERE / "_work")
    ap.add_argument("--keep", action="store_true", help="keep the generated inputs")
    ap.add_argument(
        "--repeat", type=int, default=1, help="run each K times; print medians (peak: max)"
    )
    ap.add_argument(
        "--direct",
        action="store_true",
        help="also convert with the file's lines read by DuckDB's own reader (opt-in, "
        "readers.DIRECT_MIN_BYTES) instead of cut in Python: both in one invocation",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also run our parse in DuckDB alone: handed to Arrow only, and written by "
        "DuckDB into one zstd Parquet file (no partitions, duplicates or rejects)",
    )
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [args.rows] + ([args.rows * args.scale] if args.scale > 1 else [])
    print(
        f"{'rows':>12} {'run':>22} {'seconds':>8} {'ratio':>6} {'cpu s':>7} {'cpu ratio':>9} "
        f"{'peak MB':>8}"
    )
    modes = (
        ("baseline", "duckdb COPY (baseline)"),
        ("core", "convert --no-enrich"),
        ("ours", "convert (enriched)"),
    )
    if args.direct:
        modes += (
            ("core-direct", "--no-enrich, DuckDB lines"),
            ("ours-direct", "enriched, DuckDB lines"),
        )
    if args.floor:
        modes += (
            ("floor-bare", "bare parse, no checks"),
            ("floor-parse", "parse only (DuckDB)"),
            ("floor-write", "parse + DuckDB write"),
        )
    for rows in sizes:
        src = args.workdir / f"payloads-{rows}.jsonl"
        try:  # outputs and (unless --keep) the input removed, whatever stops a run
            measure(src, rows, modes, args.repeat)
        finally:
            if not args.keep:
                src.unlink(missing_ok=True)


def measure(src: Path, rows: int, modes: tuple[tuple[str, str], ...], repeat: int) -> None:
    """Generate `src` (`rows` payloads), run each of `modes` `repeat` times on it and print
    their row; each run's output is removed, even when the run fails."""
    generate(src, rows)
    runs: dict[str, list[dict]] = {mode: [] for mode, _ in modes}
    for _ in range(repeat):  # interleaved, so that a busy moment hits every mode
        for mode, _label in modes:
            one_file = mode == "baseline" or mode.startswith("floor")
            out = src.parent / ("baseline.parquet" if one_file else "dataset")
            try:
                got = run(mode, src, out)
            finally:
                remove_output(out)
            assert one_file or got["written"] + got["rejected"] <= rows
            runs[mode].append(got)
    base = {k: statistics.median(r[k] for r in runs["baseline"]) for k in ("elapsed", "cpu")}
    for mode, label in modes:
        wall = statistics.median(r["elapsed"] for r in runs[mode])
        cpu = statistics.median(r["cpu"] for r in runs[mode])
        peak = max(r["peak"] for r in runs[mode])
        print(
            f"{rows:>12,} {label:>22} {wall:>8.2f} {wall / base['elapsed']:>6.2f} "
            f"{cpu:>7.2f} {cpu / base['cpu']:>9.2f} {peak / 2**20:>8,.0f}",
            flush=True,
        )

if __name__ == "__main__":
    main()
