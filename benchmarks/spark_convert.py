"""Spark conversion against the local one, and local[1] against local[2].

Generates N bare webhook payloads as JSON Lines (default 1,000,000, about 450 MB) with
:func:`smsanalytics.sample.write_webhook_jsonl`, then converts them, each run in a fresh
subprocess:

* ``local``: :func:`smsanalytics.convert` (the embedded engine, the baseline);
* ``spark local[1]`` and ``spark local[2]``: :func:`smsanalytics.spark.convert` on a new
  session with one or two task slots (the file split into ranges of ``--split-mb``).

Prints the wall time of each (Spark: session start-up apart), its ratio to the baseline
run in the same invocation, the peak RSS of the driver process, and what the Spark runs
suggest for a cluster: records and MB per task-second, and the peak resident memory of
one Python worker (one running task, whose range is ``--split-mb``) and of the JVM,
sampled from ``/proc`` (Linux). The machine is shared; compare
ratios, not seconds.

Usage: python benchmarks/spark_convert.py [--n N] [--split-mb MB] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, threading, time
mode, src, out, split = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
peaks = {"worker": 0.0, "jvm": 0.0}

def watch():
    # Peak resident memory of one Python worker (pyspark.daemon and its forks: one per
    # running task) and of the JVM, sampled from /proc every 0.2 s.
    while True:
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
                with open(f"/proc/{pid}/status") as f:
                    rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
            except (OSError, StopIteration, ValueError):
                continue
            kind = ("worker" if b"pyspark.daemon" in cmd or b"pyspark.worker" in cmd
                    else "jvm" if b"org.apache.spark.deploy.SparkSubmit" in cmd else None)
            if kind:
                peaks[kind] = max(peaks[kind], rss)
        time.sleep(0.2)

threading.Thread(target=watch, daemon=True).start()
started = time.perf_counter()
result = {}
if mode == "local":
    import smsanalytics as sa
    s = sa.convert([src], out, quiet=True)
else:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from smsanalytics import spark as sp
    spark = (SparkSession.builder.master(mode).config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    result["startup"] = time.perf_counter() - started
    started = time.perf_counter()
    s = sp.convert(spark, [src], out, split_bytes=split)
    result["tasks"] = spark.sparkContext.defaultParallelism
result["seconds"] = time.perf_counter() - started
result["written"] = s.written
result["records"] = s.records
result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result["worker_mb"], result["jvm_mb"] = peaks["worker"], peaks["jvm"]
print(json.dumps(result))
"""


def _run(mode: str, src: Path, out: Path, split: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(out), str(split)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="payloads to convert")
    parser.add_argument("--split-mb", type=int, default=64, help="range size for Spark [MB]")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="smsanalytics-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "payloads.jsonl"
    try:
        from smsanalytics.sample import write_webhook_jsonl

        t = time.perf_counter()
        write_webhook_jsonl(src, n=args.n)
        size_mb = src.stat().st_size / 2**20
        print(f"{args.n:,} payloads, {size_mb:,.0f} MB, written in "
              f"{time.perf_counter() - t:.1f} s")
        base = _run("local", src, work / "local", args.split_mb << 20)
        print(f"local convert          {base['seconds']:7.1f} s   1.00x   "
              f"peak RSS {base['rss_mb']:.0f} MB")
        for master in ("local[1]", "local[2]"):
            r = _run(master, src, work / "spark", args.split_mb << 20)
            assert r["written"] == base["written"], (r, base)
            slots = r["tasks"]
            print(f"spark {master:<10}       {r['seconds']:7.1f} s   "
                  f"{r['seconds'] / base['seconds']:.2f}x   (start-up {r['startup']:.1f} s, "
                  f"driver RSS {r['rss_mb']:.0f} MB; {size_mb / r['seconds'] / slots:.1f} MB "
                  f"and {r['records'] / r['seconds'] / slots:,.0f} records per task-second; "
                  f"peak RSS of one Python worker {r['worker_mb']:.0f} MB, of the JVM "
                  f"{r['jvm_mb']:.0f} MB)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
