"""The receiver under load with a SIGKILL: no acknowledged event is lost (slow).

Runs ``benchmarks/receiver.py faults`` (a separate load generator against a real server
process, killed once and restarted) on 3,000 events, then checks its acknowledgements
against the archive here, with this test's own reading of the files.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import smsanalytics
from smsanalytics.receiver_archive import OPEN_SUFFIX, iter_archive_files, parse_line

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "receiver.py"


def test_no_acknowledged_event_is_lost_across_a_sigkill(tmp_path):
    work = tmp_path / "work"
    acked_file = tmp_path / "acked.txt"
    r = subprocess.run(
        [sys.executable, str(BENCH), "faults", "--events", "3000", "--connections", "64",
         "--kills", "1", "--workdir", str(work), "--acked-file", str(acked_file),
         "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out.json").read_text())["faults"]
    assert report["connection_failures"] > 0  # the kill did cut requests

    archive = work / "faults-archive"
    assert not list(iter_archive_files(archive, OPEN_SUFFIX))
    stored = set()
    events = []
    for path in iter_archive_files(archive):
        with open(path, "rb") as fh:
            for line in zstandard.ZstdDecompressor().stream_reader(fh).read().splitlines():
                event = parse_line(line)
                events.append(event)
                stored.add((event.event_id, hashlib.sha256(event.body).hexdigest()))
    acked = [tuple(x.split(" ")) for x in acked_file.read_text().splitlines()]
    assert len(acked) >= 3000 * 0.95
    assert [a for a in acked if a not in stored] == []
    assert not any(e.event_id.startswith("unauth-") for e in events)

    s = smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    good = {json.loads(e.body)["payload"]["sid"] for e in events if e.event_id.startswith("ev-")}
    bad = sum(e.event_id.startswith("bad-") for e in events)
    assert s.records == len(events)
    assert (s.written, s.rejected) == (len(good), bad)
    assert s.written + s.duplicates + s.rejected == s.records


def test_sigterm_under_load_answers_what_it_took_and_loses_nothing(tmp_path):
    """SIGTERM in the middle of 64 busy connections: in-flight requests are answered, and
    everything acknowledged is in the closed archive."""
    import asyncio
    import importlib.util
    import signal

    spec = importlib.util.spec_from_file_location("receiver_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    archive = tmp_path / "archive"
    server = bench.Server(archive, bench.free_port(), "durable", tmp_path / "server.log")
    server.start()
    jobs = bench.plan(20_000, faults=False)

    async def go():
        stats = bench.Stats()
        queue = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        for _ in range(64):
            queue.put_nowait(None)
        tasks = [asyncio.create_task(bench.client(server.port, queue, stats)) for _ in range(64)]
        while len(stats.acked) < 2_000:
            await asyncio.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait, 60)
        for t in tasks:  # the clients would retry forever against a stopped server
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return stats

    stats = asyncio.run(go())
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()
    assert not list(iter_archive_files(archive, OPEN_SUFFIX))
    stored = set()
    for path in iter_archive_files(archive):
        with open(path, "rb") as fh:
            for line in zstandard.ZstdDecompressor().stream_reader(fh).read().splitlines():
                event = parse_line(line)
                stored.add((event.event_id, hashlib.sha256(event.body).hexdigest()))
    assert len(stats.acked) >= 2_000
    assert [a for a in stats.acked if a not in stored] == []
