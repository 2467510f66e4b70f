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
