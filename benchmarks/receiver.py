"""Load, faults and speed of the webhook receiver (``smsanalytics serve``), from outside.

A load generator (asyncio, raw sockets, HTTP/1.1 keep-alive) sends signed Callr events to a
real server process on 127.0.0.1 at C concurrent connections. Two runs:

* ``faults``: N events, with Callr-style retries mixed in (the same event id sent again with
  ``try`` 1 and 2), malformed bodies (not JSON, truncated JSON, another event type, a JSON
  array; all signed, so they must be archived and rejected by ``convert``), and requests
  with a wrong signature (401, never stored). The server is SIGKILLed after a share of the
  events and restarted; a request cut by the kill, or answered 503, is sent again (next
  ``try``). At the end: every acknowledged (2xx) delivery is in the archive, no
  unauthenticated one is, and ``convert`` of the archive accounts for every line.
* ``speed``: the same server side by side with a server that answers 200 without storing
  (its archive writer replaced by one that does nothing), at C connections: first as fast
  as they go (events/s, and the ratio), then both at one offered rate (half the baseline's
  maximum, or ``--rate``; open loop, latency counted from when each event was due): p50 and
  p99 latency. The issue's bar: durable >= 50% of the baseline throughput, p99 < 50 ms.

Usage: python benchmarks/receiver.py [faults|speed|both] [--events N] [--connections C]
       [--kills K] [--rate R] [--workdir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SECRET = b"benchmark-secret"

SERVER = r"""
import sys
from pathlib import Path
from smsanalytics.receiver import ReceiverConfig, serve
from smsanalytics.receiver_archive import ArchiveWriter

class NullWriter(ArchiveWriter):
    # Answers at once: the baseline 'same server, nothing stored'.
    async def start(self): pass
    async def close(self): pass
    async def append(self, line): pass

archive, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = ReceiverConfig(Path(archive), secrets=(sys.argv[4].encode(),), access_log=False,
                        min_free_bytes=0)
serve(config, port=port, writer=NullWriter(archive) if mode == "null" else None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()


def event_body(i: int, attempt: int) -> bytes:
    """A v2 inbound-SMS envelope; event i, delivery `attempt` (``try``)."""
    event = {
        "id": f"ev-{i:07d}",
        "at": "2026-11-30T10:00:00.000Z",
        "sid": "hook0001",
        "type": "v2.sms.inbound.received",
        "try": attempt,
        "payload": {
            "direction": "inbound",
            "sid": f"s{i:07d}",
            "from": f"+336{39980000 + i % 9000:08d}",
            "to": "+33639980010",
            "body": {"text": f"Hello number {i} \u00e9"},
            "trafficType": "alerting",
            "status": "delivered",
            "error": "",
            "created": "2026-11-30T10:00:00Z",
            "delivered": "2026-11-30T10:00:01Z",
            "updated": "2026-11-30T10:00:01Z",
            "sent": "2026-11-30T10:00:00Z",
            "parts": 1,
            "network": "20801",
            "encoding": "gsm",
            "cost": "2.0",
            "paymentType": "prepaid",
        },
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


MALFORMED = [
    b"this is not JSON at all {",
    b'{"id":"x","type":"v2.sms.inbound.received","payload":{"sid":"trunc',
    b'{"id":"y","type":"v2.call.ended","try":0,"payload":{}}',
    b'[{"sid":"in-an-array","from":"+33600000000","to":"+33600000001"}]',
]


@dataclass
class Job:
    """One event to deliver until acknowledged (its event id, body per attempt)."""

    event_id: str
    kind: str  # good, malformed, unauth
    index: int
    attempt: int = 0
    extra: int = 0  # Callr-style redeliveries still to send after the first success
    released: float = 0.0  # paced runs: when the event was due (latency counts from then)


@dataclass
class Stats:
    acked: list[tuple[str, str]] = field(default_factory=list)  # (event id, body sha256)
    unauth: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    failures: int = 0  # connection errors (the kill)


def request_bytes(job: Job) -> tuple[bytes, bytes]:
    if job.kind == "good":
        body = event_body(job.index, job.attempt)
    else:
        body = MALFORMED[job.index % len(MALFORMED)]
    sig = sign(body) if job.kind != "unauth" else sign(body + b"x")
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"User-Agent: CALLR/API bench\r\nContent-Length: {len(body)}\r\n"
        f"X-CALLR-EventId: {job.event_id}\r\nX-CALLR-HmacSignature: {sig}\r\n\r\n"
    ).encode()
    return head + body, body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def client(port: int, queue: asyncio.Queue[Job], stats: Stats) -> None:
    conn = None
    while True:
        job = await queue.get()
        if job is None:
            break
        while True:
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                req, body = request_bytes(job)
                t = time.perf_counter()
                status = await asyncio.wait_for(exchange(*conn, req), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                stats.failures += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                job.attempt += 1  # Callr would retry: same event id, next try
                await asyncio.sleep(0.05)
                continue
            stats.latencies.append(time.perf_counter() - (job.released or t))
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if job.kind == "unauth":
                stats.unauth.append(job.event_id)
                break
            if 200 <= status < 300:
                stats.acked.append((job.event_id, hashlib.sha256(body).hexdigest()))
                if job.extra:
                    job.extra -= 1
                    job.attempt += 1
                    continue
                break
            job.attempt += 1
            await asyncio.sleep(0.02)
    if conn is not None:
        conn[1].close()


def plan(n: int, seed: int = 1, faults: bool = True) -> list[Job]:
    rnd = random.Random(seed)
    jobs = []
    for i in range(n):
        r = rnd.random() if faults else 1.0
        if r < 0.02:
            jobs.append(Job(f"bad-{i:07d}", "malformed", i))
        elif r < 0.03:
            jobs.append(Job(f"unauth-{i:07d}", "unauth", i))
        else:
            extra = 0
            if faults and r < 0.08:
                extra = 1 if r < 0.065 else 2  # redelivered with try 1 (and 2)
            jobs.append(Job(f"ev-{i:07d}", "good", i, extra=extra))
    return jobs


class Server:
    def __init__(self, archive: Path, port: int, mode: str, log: Path) -> None:
        self.archive, self.port, self.mode, self.log = archive, port, mode, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.archive), str(self.port), self.mode,
                 SECRET.decode()],
                stdout=log, stderr=log, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start; see {self.log}")

    def metrics(self) -> dict[str, float]:
        """The server's unlabelled metrics (name -> value)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        out = {}
        for line in data.partition(b"\r\n\r\n")[2].decode().splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                out[name] = float(value)
        return out

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


async def pace(queue: asyncio.Queue[Job | None], jobs: list[Job], rate: float, ends: int) -> None:
    """Release `jobs` at `rate` per second (an open loop: a slow server makes them wait)."""
    started = time.perf_counter()
    for i, job in enumerate(jobs):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        job.released = due
        queue.put_nowait(job)
    for _ in range(ends):
        queue.put_nowait(None)


async def drive(
    server: Server, jobs: list[Job], connections: int, kill_at: list[int], rate: float = 0
) -> tuple[Stats, float]:
    """Deliver `jobs` over `connections`, as fast as they go (or at `rate` per second)."""
    stats = Stats()
    queue: asyncio.Queue[Job | None] = asyncio.Queue()
    if rate:
        pacer = asyncio.create_task(pace(queue, jobs, rate, connections))
    else:
        for job in jobs:
            queue.put_nowait(job)
        for _ in range(connections):
            queue.put_nowait(None)
    started = time.perf_counter()
    tasks = [asyncio.create_task(client(server.port, queue, stats)) for _ in range(connections)]
    for at in kill_at:
        while len(stats.acked) < at and not all(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        server.kill()
        await asyncio.to_thread(server.start)
    await asyncio.gather(*tasks)
    if rate:
        await pacer
    return stats, time.perf_counter() - started


def read_archive(root: Path) -> list[tuple[str | None, bytes]]:
    """(event id, body) of every line of the archive's closed files."""
    import zstandard

    from smsanalytics.receiver_archive import iter_archive_files, parse_line

    out = []
    for path in iter_archive_files(root):
        with open(path, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        for line in data.splitlines():
            e = parse_line(line)
            out.append((e.event_id, e.body))
    return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def run_faults(args: argparse.Namespace, work: Path) -> dict:
    import smsanalytics

    archive = work / "faults-archive"
    server = Server(archive, free_port(), "durable", work / "faults-server.log")
    server.start()
    jobs = plan(args.events)
    kill_at = [int(args.events * (k + 1) / (args.kills + 1)) for k in range(args.kills)]
    stats, elapsed = asyncio.run(drive(server, jobs, args.connections, kill_at))
    code = server.stop()
    leftovers = sorted(str(p) for p in archive.rglob("*.open"))
    lines = read_archive(archive)
    archived = {(eid, hashlib.sha256(body).hexdigest()) for eid, body in lines}
    lost = [a for a in stats.acked if a not in archived]
    unauth_ids = set(stats.unauth)
    unauth_stored = sum(1 for eid, _ in lines if eid in unauth_ids)
    s = smsanalytics.convert([archive], work / "faults-dataset", overwrite=True, quiet=True)
    good_sids = {
        json.loads(body)["payload"]["sid"]
        for eid, body in lines
        if eid and eid.startswith("ev-")
    }
    malformed_lines = sum(1 for eid, _ in lines if eid and eid.startswith("bad-"))
    if args.acked_file:
        Path(args.acked_file).write_text(
            "".join(f"{eid} {digest}\n" for eid, digest in stats.acked), "utf-8"
        )
    return {
        "events": args.events,
        "connections": args.connections,
        "kills": args.kills,
        "requests": sum(stats.statuses.values()) + stats.failures,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "connection_failures": stats.failures,
        "acknowledged": len(stats.acked),
        "acknowledged_lost": len(lost),
        "unauthenticated_stored": unauth_stored,
        "archive_lines": len(lines),
        "open_files_left": leftovers,
        "server_exit": code,
        "convert": {
            "records": s.records,
            "written": s.written,
            "duplicates": s.duplicates,
            "rejected": s.rejected,
            "reject_reasons": s.reject_reasons,
        },
        "expected_written": len(good_sids),
        "expected_rejected": malformed_lines,
        "accounted": s.records == len(lines)
        and s.written + s.duplicates + s.rejected == s.records
        and s.written == len(good_sids)
        and s.rejected == malformed_lines,
        "elapsed": elapsed,
    }


def measure(work: Path, mode: str, events: int, connections: int, rate: float = 0) -> dict:
    archive = work / f"speed-{mode}"
    server = Server(archive, free_port(), mode, work / f"speed-{mode}.log")
    server.start()
    try:
        jobs = plan(events, faults=False)
        stats, elapsed = asyncio.run(drive(server, jobs, connections, [], rate))
        metrics = server.metrics()
    finally:
        server.stop()
    commits = metrics.get("smsanalytics_receiver_fsync_seconds_count", 0)
    commit_s = metrics.get("smsanalytics_receiver_fsync_seconds_sum", 0)
    return {
        "events_per_s": len(stats.acked) / elapsed,
        "p50_ms": percentile(stats.latencies, 0.5) * 1000,
        "p99_ms": percentile(stats.latencies, 0.99) * 1000,
        "acked": len(stats.acked),
        "commits": int(commits),
        "commit_ms": commit_s / commits * 1000 if commits else 0.0,
    }


def run_speed(args: argparse.Namespace, work: Path) -> dict:
    """Saturated throughput of both servers, then latency of both at one offered rate."""
    results: dict = {"saturated": {}, "paced": {}}
    for mode in ("null", "durable", "null", "durable"):  # alternated: a shared machine drifts
        run = measure(work, mode, args.events, args.connections)
        best = results["saturated"].get(mode)
        if best is None or run["events_per_s"] > best["events_per_s"]:
            results["saturated"][mode] = run
    sat = results["saturated"]
    results["ratio"] = sat["durable"]["events_per_s"] / sat["null"]["events_per_s"]
    # Latency means something below saturation (at saturation it is connections divided by
    # throughput): both servers get the same offered rate, half of the baseline's maximum.
    rate = args.rate or round(sat["null"]["events_per_s"] / 2, -1)
    results["rate"] = rate
    for mode in ("null", "durable"):
        results["paced"][mode] = measure(work, mode, int(rate * 8), args.connections, rate)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="both", choices=["faults", "speed", "both"])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0, help="speed: offered rate [events/s].")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="Also write the results to this file.")
    parser.add_argument("--acked-file", help="faults: write the acknowledged deliveries here.")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="receiver-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    if args.what in ("faults", "both"):
        args.events = args.events or 100_000
        out["faults"] = f = run_faults(args, work)
        print(
            f"faults: {f['events']:,} events, {f['connections']} connections, "
            f"{f['kills']} SIGKILL: {f['acknowledged']:,} acknowledged, "
            f"{f['acknowledged_lost']} acknowledged lost, "
            f"{f['unauthenticated_stored']} unauthenticated stored, "
            f"{f['archive_lines']:,} archive lines; convert: {f['convert']['records']:,} "
            f"records = {f['convert']['written']:,} written + "
            f"{f['convert']['duplicates']:,} duplicates + {f['convert']['rejected']:,} "
            f"rejected; accounted: {f['accounted']} ({f['elapsed']:.1f} s)"
        )
    if args.what in ("speed", "both"):
        args.events = 20_000 if args.what == "both" else args.events or 20_000
        out["speed"] = r = run_speed(args, work)
        parts = (("as fast as it goes", "saturated"), (f"at {r['rate']:,.0f}/s", "paced"))
        for title, part in parts:
            print(f"{args.connections} connections, {title}:")
            for mode in ("null", "durable"):
                m = r[part][mode]
                commits = (
                    f"  {m['commits']:,} group commits, mean {m['commit_ms']:.1f} ms"
                    if m.get("commits")
                    else ""
                )
                print(
                    f"  {mode:8} {m['events_per_s']:8,.0f} events/s  p50 {m['p50_ms']:6.1f} ms  "
                    f"p99 {m['p99_ms']:6.1f} ms{commits}"
                )
        print(f"durable / not stored (throughput): {r['ratio']:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str), "utf-8")


if __name__ == "__main__":
    main()
