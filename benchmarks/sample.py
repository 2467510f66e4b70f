"""Speed and memory of the sample generator (``smsanalytics sample``) as `n` grows.

Writes a sample archive of N messages and, as the baseline, one of N/10, each in a fresh
subprocess so that peak memory is its own, and prints wall time, CPU seconds (user +
system: steadier than wall time on a shared machine), the time after the last chunk (the
merge of the line files), the size written and the peak RSS of each, with the ratios to the
baseline. Time grows linearly when the CPU ratio is about 10; memory is bounded when the
peak RSS ratio stays near 1.

Usage: python benchmarks/sample.py [--n N] [--workdir DIR] [--keep]

Measured on the 2-core shared machine of this project (December 2026; other jobs running,
so wall times vary; CPU seconds are the steadier figure). Before: the generator held every
message and every file in memory and wrote at the end. After: chunks of 50,000 messages
streamed to the files, line files merged in time order at the end (the shipped
``sample_data`` keeps its bytes).

========== ================================= ======================================
n          before: wall / CPU / peak RSS     after: wall / CPU / peak RSS
========== ================================= ======================================
100,000    21.7 s / 13.9 s / 353 MiB         28.7 s / 10.6 s / 273 MiB
1,000,000  440 s / 146 s / 2.32 GiB          332 s / 124 s / 280 MiB
========== ================================= ======================================

10,000,000 and how these were measured: the README's Performance section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
from smsanalytics.sample import write_sample
n, out = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
c = os.times()
last = [t]
m = write_sample(out, n=n, seed=7, progress=lambda k: last.__setitem__(0, time.perf_counter()))
end = time.perf_counter()
d = os.times()
print(json.dumps({
    "elapsed": end - t,
    "merge": end - last[0],
    "cpu": d.user - c.user + d.system - c.system,
    "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "bytes": sum(p.stat().st_size for p in m.files),
    "records": m.records,
    "balanced": m.records == m.messages + m.duplicates + m.rejects,
}))
"""


def run(n: int, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(out)], capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="messages (default 1,000,000)")
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the archives written")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sample-bench-", dir=args.workdir))
    try:
        rows = []
        for n in (max(200, args.n // 10), args.n):
            r = run(n, work / f"n{n}")
            rows.append((n, r))
            if not args.keep:
                shutil.rmtree(work / f"n{n}")
        (n0, base), (n1, big) = rows
        print(f"{'n':>12} {'wall s':>9} {'CPU s':>9} {'merge s':>8} {'MB out':>8} {'peak MiB':>9}")
        for n, r in rows:
            print(
                f"{n:>12,} {r['elapsed']:>9.1f} {r['cpu']:>9.1f} {r['merge']:>8.1f} "
                f"{r['bytes'] / 1e6:>8.0f} {r['peak'] / 2**20:>9.0f}"
                + ("" if r["balanced"] else "  COUNTS DO NOT BALANCE")
            )
        wall, cpu = big["elapsed"] / base["elapsed"], big["cpu"] / base["cpu"]
        print(
            f"ratios for {n1 / n0:.0f}x the messages: wall {wall:.1f}x, CPU {cpu:.1f}x, "
            f"peak RSS {big['peak'] / base['peak']:.2f}x"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
