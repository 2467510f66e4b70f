"""Tests of the synthetic archive generator, checked by an independent reader.

The reader here is deliberately small and separate from the package's loader: it applies
the manifest's definition of a record and of a valid SMS, so the counts the generator
claims are checked against what is really in the files.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import phonenumbers
import pytest
import yaml
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import carrier, geocoder

from smsanalytics import sample
from smsanalytics.sample import (
    NETWORKS,
    RATE_CARD,
    REJECT_KINDS,
    SampleManifest,
    rate_for,
    write_manifest,
    write_sample,
    write_webhook_jsonl,
)

from .conftest import SAMPLE, run

LINE_SUFFIXES = (".jsonl", ".ndjson", ".log", ".txt")
# Written out independently of the module: MCC -> ISO country.
MCC_COUNTRY = {
    "208": "FR",
    "262": "DE",
    "234": "GB",
    "214": "ES",
    "222": "IT",
    "206": "BE",
    "310": "US",
    "311": "US",
    "724": "BR",
    "604": "MA",
    "608": "SN",
    "250": "RU",
    "420": "SA",
}
GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = set("\f^{}\\[~]|€")


def segments(text: str) -> tuple[str, int]:
    """GSM 03.38 / UCS-2 encoding and parts of `text`, simple division."""
    if set(text) <= GSM | GSM_EXT:
        n = sum(2 if c in GSM_EXT else 1 for c in text)
        return "gsm", 1 if n <= 160 else math.ceil(n / 153)
    n = len(text.encode("utf-16-le")) // 2
    return "unicode", 1 if n <= 70 else math.ceil(n / 67)


# --- an independent reader ----------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return data


def iter_candidates(root: Path) -> Iterator[tuple[Path, Any]]:
    """Yield (file, record) for every record candidate, by the manifest's definition."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.name.removesuffix(".gz").removesuffix(".zst")
        data = read_bytes(path)
        if name.endswith(LINE_SUFFIXES):
            data = data.removeprefix("\ufeff".encode())
            for line in data.split(b"\n"):
                if line.strip():
                    yield path, line
        elif name.endswith(".json"):
            obj = json.loads(data.decode("utf-8-sig"))
            yield from ((path, x) for x in (obj if isinstance(obj, list) else [obj]))
        elif name.endswith(".yaml"):
            for doc in yaml.safe_load_all(data.decode("utf-8-sig")):
                yield from ((path, x) for x in (doc if isinstance(doc, list) else [doc]))
        else:
            raise AssertionError(f"unexpected file {path}")


def when(value: Any) -> datetime | None:
    if value is None:
        return None
    assert isinstance(value, str), f"timestamp {value!r} is not a string"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError("naive")
    return dt


def classify(raw: Any) -> dict[str, Any] | str:
    """Return a flat SMS dict, or the reason the record is rejected."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return "invalid_utf8"
        start = text.find("{")
        if start < 0:
            return "no_json"
        try:
            raw = json.loads(text[start:])
        except json.JSONDecodeError:
            return "invalid_json"
    if not isinstance(raw, dict):
        return "not_an_object"
    event: dict[str, Any] = {}
    if "type" in raw and "payload" in raw:
        if raw["type"] != "v2.sms.inbound.received":
            return "other_event_type"
        event, raw = raw, raw["payload"]
    elif isinstance(raw.get("sms"), dict):
        raw = raw["sms"]
    actions = "bodyText" in raw or "fromNumber" in raw
    sid = raw.get("sid")
    sender = raw.get("fromNumber" if actions else "from")
    if not sid:
        return "missing_sid"
    if not sender:
        return "missing_sender"
    try:
        parts = int(raw["parts"])
    except ValueError:
        return "bad_parts"
    try:
        created = when(raw["createdAt" if actions else "created"])
        updated = when(raw["updatedAt" if actions else "updated"])
        for key in ("sent", "delivered", "sentAt", "deliveredAt"):
            when(raw.get(key))
    except ValueError:
        return "bad_timestamp"
    return {
        "sid": sid,
        "from": sender,
        "country": raw.get("fromCountry"),
        "network": str(raw["network"]),
        "text": raw["bodyText"] if actions else raw["body"]["text"],
        "encoding": raw["encoding"],
        "parts": parts,
        "cost": Decimal(str(raw["billingDebit"] if actions else raw["cost"])),
        "created": created,
        "updated": updated,
        "status": raw["status"],
        "try": event.get("try"),
        "event_id": event.get("id"),
        "actions": actions,
    }


class Read:
    """What the independent reader finds in an archive."""

    def __init__(self, root: Path) -> None:
        self.records = 0
        self.valid: list[dict[str, Any]] = []
        self.files_of: dict[str, set[Path]] = {}
        self.rejects: Counter[str] = Counter()
        for path, raw in iter_candidates(root):
            self.records += 1
            row = classify(raw)
            if isinstance(row, str):
                self.rejects[row] += 1
            else:
                self.valid.append(row)
                self.files_of.setdefault(row["sid"], set()).add(path)
        self.final: dict[str, dict[str, Any]] = {}
        for row in self.valid:  # the latest `updated` wins
            kept = self.final.get(row["sid"])
            if kept is None or row["updated"] > kept["updated"]:
                self.final[row["sid"]] = row


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleManifest, Read]:
    manifest = write_sample(tmp_path_factory.mktemp("sample") / "out", n=1200, seed=3)
    return manifest, Read(manifest.root)


# --- the manifest -------------------------------------------------------------------------


def test_manifest_counts_match_the_files(archive: tuple[SampleManifest, Read]) -> None:
    m, read = archive
    assert m.records == m.messages + m.duplicates + m.rejects
    assert m.messages == 1200 == len(read.final)
    assert m.records == read.records
    assert m.duplicates == len(read.valid) - len(read.final)
    assert m.rejects == sum(read.rejects.values())
    assert m.senders == len({r["from"] for r in read.final.values()})
    assert list(m.files) == sorted(p for p in m.root.rglob("*") if p.is_file())


def test_every_reject_kind_occurs(archive: tuple[SampleManifest, Read]) -> None:
    m, read = archive
    assert set(m.reject_kinds) == set(REJECT_KINDS)
    assert all(v >= 1 for v in m.reject_kinds.values()), m.reject_kinds
    assert sum(m.reject_kinds.values()) == m.rejects
    # The reader sees the kinds a loader can tell apart by syntax alone.
    for kind in (
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "other_event_type",
        "missing_sender",
        "bad_parts",
        "bad_timestamp",
        "no_json",
    ):
        assert read.rejects[kind] >= m.reject_kinds[kind], kind
    assert 15 <= m.rejects - m.reject_kinds["non_sms_log"] <= 60


def test_manifest_round_trips_as_json(archive: tuple[SampleManifest, Read], tmp_path: Path) -> None:
    m, _ = archive
    data = json.loads(write_manifest(m, tmp_path / "manifest.json").read_text())
    assert data["messages"] == m.messages and data["records"] == m.records
    assert "webhooks/2025-01.jsonl" in data["files"]


def test_refuses_a_folder_in_use_and_tiny_n(tmp_path: Path) -> None:
    (tmp_path / "old.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError):
        write_sample(tmp_path, n=300)
    with pytest.raises(ValueError, match="at least 200"):
        write_sample(tmp_path / "new", n=10)


# --- determinism --------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = tree(write_sample(tmp_path / "a", n=300, seed=11).root)
    b = tree(write_sample(tmp_path / "b", n=300, seed=11).root)
    c = tree(write_sample(tmp_path / "c", n=300, seed=12).root)
    assert a == b
    assert a != c


def test_shipped_sample_is_what_the_generator_writes(sample_manifest: SampleManifest) -> None:
    if not any(SAMPLE.glob("*")):
        pytest.skip("no sample_data")
    assert tree(SAMPLE) == tree(sample_manifest.root), (
        "sample_data is stale: regenerate it with `python -m smsanalytics.sample sample "
        "sample_data` (after emptying the folder)"
    )
    assert sum(len(b) for b in tree(SAMPLE).values()) < 5_000_000


# --- containers, shapes and nasty details -------------------------------------------------


def test_every_container_is_present(archive: tuple[SampleManifest, Read]) -> None:
    m, _ = archive
    names = [p.relative_to(m.root).as_posix() for p in m.files]
    for suffix in (
        ".jsonl",
        ".jsonl.gz",
        ".jsonl.zst",
        ".ndjson",
        ".log",
        ".log.gz",
        ".yaml",
        ".txt",
    ):
        assert any(n.endswith(suffix) for n in names), suffix
    assert any(n.startswith("exports/") and n.endswith(".json") for n in names)
    events = [n for n in names if n.startswith("events/")]
    assert 10 <= len(events) <= 60
    array = json.loads((m.root / "exports/payloads-export.json").read_text("utf-8"))
    assert isinstance(array, list) and len(array) > 10
    docs = list(yaml.safe_load_all((m.root / "actions/inbound-sms.yaml").read_text("utf-8")))
    assert len(docs) > 5 and any(isinstance(d, list) for d in docs)


def test_every_shape_is_present(archive: tuple[SampleManifest, Read]) -> None:
    m, _ = archive
    shapes: Counter[str] = Counter()
    for _, raw in iter_candidates(m.root):
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "replace").strip()
            if text.startswith("SMS received {"):
                shapes["log line, no timestamp"] += 1
            elif " log@v1 SMS received {" in text and text[:4] == "2025":
                shapes["log line"] += 1
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                continue
        if not isinstance(raw, dict):
            continue
        if raw.get("type") == "v2.sms.inbound.received":
            shapes["envelope"] += 1
            shapes["retry"] += raw["try"] > 0
        elif "sms" in raw:
            shapes["actions under sms"] += 1
        elif "fromNumber" in raw:
            shapes["actions bare"] += 1
        elif "body" in raw:
            shapes["bare payload"] += 1
    for shape in (
        "log line, no timestamp",
        "log line",
        "envelope",
        "retry",
        "actions under sms",
        "actions bare",
        "bare payload",
    ):
        assert shapes[shape] >= 3, (shape, shapes)


def test_nasty_details_are_present(archive: tuple[SampleManifest, Read]) -> None:
    m, read = archive
    raw = {p.relative_to(m.root).as_posix(): read_bytes(p) for p in m.files}
    assert sum(b.startswith("\ufeff".encode()) for b in raw.values()) == 1
    assert sum(b"\r\n" in b for b in raw.values()) == 1
    assert any(b"\n\n" in b or b"\n   \n" in b for b in raw.values())
    assert b"+02:00" in raw["webhooks/relay-paris.ndjson"]
    everything = b"\n".join(raw.values())
    assert b'"parts":"' in everything and b"parts: '" in raw["actions/inbound-sms.yaml"]
    assert b'"cost":2' in everything or b'"cost":1' in everything or b'"cost":0' in everything
    assert b'"network":""' in everything and b'"network":2' in everything
    assert b'"receivedBy"' in everything or b'"tags"' in everything
    assert any(b'"at":"' in b and b"." in b for b in raw.values())  # with milliseconds
    assert b'"created":"2025-01-0' in raw["webhooks/2025-01.jsonl"]
    assert b'Z"' in raw["webhooks/2025-01.jsonl"]
    # Retries with a later state, and copies of a message in two files.
    by_event = Counter(r["event_id"] for r in read.valid if r["event_id"])
    assert max(by_event.values()) >= 3
    statuses: dict[str, set[str]] = {}
    for r in read.valid:
        statuses.setdefault(r["sid"], set()).add(r["status"])
    assert any(len(s) > 1 for s in statuses.values())
    assert sum(len(f) > 1 for f in read.files_of.values()) >= 3


def test_bodies_cover_the_hard_cases(archive: tuple[SampleManifest, Read]) -> None:
    _, read = archive
    texts = [r["text"] for r in read.final.values()]
    joined = "".join(texts)
    for needle in ("’", "€", "ç", "é"):
        assert needle in joined, needle
    assert any(ord(c) > 0xFFFF for c in joined)  # emoji outside the BMP
    assert any("\u0400" <= c <= "\u04ff" for c in joined)  # Cyrillic
    assert any("\u0600" <= c <= "\u06ff" for c in joined)  # Arabic
    assert (
        sum(
            t.strip().upper() in ("STOP", "STOP SMS", "ARRET", "ARRÊT", "UNSUBSCRIBE")
            for t in texts
        )
        >= 20
    )
    parts = Counter(r["parts"] for r in read.final.values())
    assert 0.01 < sum(v for k, v in parts.items() if k > 1) / len(texts) < 0.15


# --- content ------------------------------------------------------------------------------


def test_senders_are_valid_and_networks_match(archive: tuple[SampleManifest, Read]) -> None:
    _, read = archive
    empty = 0
    for row in read.final.values():
        num = phonenumbers.parse(row["from"])
        assert phonenumbers.is_valid_number(num), row["from"]
        region = phonenumbers.region_code_for_number(num)
        if row["country"] is not None:
            assert row["country"] == region
        if row["network"] in ("", "None"):
            empty += 1
            continue
        assert MCC_COUNTRY[row["network"][:3]] == region, row
        assert row["network"] in NETWORKS[region]
    assert 0 < empty < len(read.final) * 0.1
    senders = Counter(r["from"] for r in read.final.values())
    counts = sorted(senders.values(), reverse=True)
    assert counts[0] >= 15  # some frequent senders
    assert sum(c == 1 for c in counts) > len(counts) / 3  # many one-offs
    assert len({phonenumbers.region_code_for_number(phonenumbers.parse(s)) for s in senders}) == 12


def test_costs_are_exact_parts_times_rate(archive: tuple[SampleManifest, Read]) -> None:
    _, read = archive
    fr_rates = set()
    for row in read.final.values():
        region = phonenumbers.region_code_for_number(phonenumbers.parse(row["from"]))
        assert row["cost"] == row["parts"] * rate_for(region, row["created"]), row
        if region == "FR":
            fr_rates.add(row["cost"] / row["parts"])
    assert fr_rates == {Decimal("0.8925"), Decimal("0.9450")}
    assert all(len(card) == 1 for r, card in RATE_CARD.items() if r != "FR")


def test_discrepancies_are_about_one_percent(archive: tuple[SampleManifest, Read]) -> None:
    m, read = archive
    wrong = {
        sid for sid, r in read.final.items() if segments(r["text"]) != (r["encoding"], r["parts"])
    }
    assert wrong == set(m.discrepancies)
    assert 0.005 <= len(wrong) / m.messages <= 0.02


# --- the benchmark file -------------------------------------------------------------------


def test_webhook_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    size = write_webhook_jsonl(path, n=5000, senders=400, seed=1)
    assert size == path.stat().st_size
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert len(rows) == 5000
    assert len({r["sid"] for r in rows}) == 5000
    assert all(len(r["sid"]) == 8 and r["sid"].isalnum() for r in rows)
    senders = {r["from"] for r in rows}
    assert 100 < len(senders) <= 400
    for s in senders:
        assert phonenumbers.is_valid_number(phonenumbers.parse(s)), s
    for r in rows:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(r["from"]))
        assert MCC_COUNTRY[r["network"][:3]] == region
        assert segments(r["body"]["text"]) == (r["encoding"], r["parts"])
        created = datetime.fromisoformat(r["created"])
        assert Decimal(r["cost"]) == r["parts"] * rate_for(region, created)
    assert write_webhook_jsonl(tmp_path / "again.jsonl", n=5000, senders=400, seed=1) == size
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


@pytest.mark.slow
def test_webhook_jsonl_million_rows_under_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    start = time.perf_counter()
    size = write_webhook_jsonl(path, n=1_000_000)
    elapsed = time.perf_counter() - start
    path.unlink()  # 450 MB: do not leave it in pytest's kept temporary folders
    assert elapsed < 60
    assert 350e6 < size < 550e6


# --- streaming: chunks, merged line files, the folder appears whole ---------------------


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleManifest, Read]:
    """An archive made of three chunks: what n above 50,000 does, at a size a test can read."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sample, "_CHUNK", 400)
        manifest = write_sample(tmp_path_factory.mktemp("chunked") / "out", n=1100, seed=4)
    return manifest, Read(manifest.root)


def test_chunked_counts_match_the_files(chunked: tuple[SampleManifest, Read]) -> None:
    m, read = chunked
    assert m.records == m.messages + m.duplicates + m.rejects == read.records
    assert m.messages == 1100 == len(read.final)
    assert m.duplicates == len(read.valid) - len(read.final)
    assert m.rejects == sum(read.rejects.values())
    assert m.senders == len({r["from"] for r in read.final.values()})
    assert list(m.files) == sorted(p for p in m.root.rglob("*") if p.is_file())
    wrong = {
        sid for sid, r in read.final.items() if segments(r["text"]) != (r["encoding"], r["parts"])
    }
    assert wrong == set(m.discrepancies)
    # Each chunk ends the scenario's log once only: one "stopped" line in the archive.
    june = read_bytes(m.root / "actions/scenario-2025-06.log.gz")
    assert june.count(b"scenario inbound-sms stopped") == 1


def line_times(path: Path) -> list[datetime]:
    """The time each record of a monthly webhook file is filed under."""
    times = []
    for raw in read_bytes(path).removeprefix("\ufeff".encode()).splitlines():
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # broken records, cut or not UTF-8: filed under a time we cannot read
        if "payload" in obj:
            times.append(datetime.fromisoformat(obj["at"]))
        elif isinstance(obj.get("updated"), str) and obj["updated"] != "yesterday":
            times.append(datetime.fromisoformat(obj["updated"]))
    return times


def test_chunked_line_files_stay_in_time_order(chunked: tuple[SampleManifest, Read]) -> None:
    m, _ = chunked
    # A broken envelope shows a time a second after the one it is filed under.
    for month in ("01", "04", "06"):
        path = next(p for p in m.files if p.name.startswith(f"2025-{month}.jsonl"))
        times = line_times(path)
        assert len(times) > 50
        pairs = zip(times, times[1:], strict=False)
        assert [(a, b) for a, b in pairs if b < a - timedelta(seconds=1)] == [], path.name


def test_chunked_same_seed_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "_CHUNK", 250)
    a = tree(write_sample(tmp_path / "a", n=600, seed=2).root)
    b = tree(write_sample(tmp_path / "b", n=600, seed=2).root)
    assert a == b


def test_a_sid_drawn_again_in_a_later_chunk_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks draw their sids independently: force the second chunk to draw the first
    # chunk's sids, as chance would once in a while at 10 million messages.
    monkeypatch.setattr(sample, "_CHUNK", 300)
    made = sample._messages
    first: list[str] = []

    def messages(rng: Any, n: int, taken: set[str]) -> list[Any]:
        msgs = made(rng, n, taken)
        if n >= 200 and not first:
            first.extend(m.sid for m in msgs)
        elif n >= 200:
            for m, sid in zip(msgs[:5], first, strict=False):
                m.sid = sid
        return msgs

    monkeypatch.setattr(sample, "_messages", messages)
    m = write_sample(tmp_path / "out", n=600, seed=9)
    read = Read(m.root)
    assert len(read.final) == m.messages == 600
    assert m.records == read.records == m.messages + m.duplicates + m.rejects


@given(st.lists(st.sets(st.integers(0, 36**8 - 1), max_size=30), min_size=1, max_size=5))
def test_sid_book_finds_exactly_the_sids_used_before(chunks: list[set[int]]) -> None:
    book = sample._SidBook()
    used: set[str] = set()
    for codes in chunks:
        msgs = [SimpleNamespace(sid=_base36(c)) for c in sorted(codes)]
        assert {x.sid for x in book.clashes(msgs)} == {x.sid for x in msgs} & used
        book.add(msgs)
        used |= {x.sid for x in msgs}


def _base36(code: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(8):
        code, d = divmod(code, 36)
        out = digits[d] + out
    return out


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=12)), max_size=15),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["f.jsonl", "f.jsonl.gz", "f.jsonl.zst"]),
)
@settings(deadline=None, max_examples=60)
def test_runs_merge_into_one_time_ordered_file(
    runs: list[list[tuple[int, bytes]]], name: str
) -> None:
    lines = [[(float(k), line.replace(b"\n", b"")) for k, line in run] for run in runs]
    with tempfile.TemporaryDirectory() as tmp:
        store = sample._Runs(Path(tmp))
        for run in lines:
            lf = sample._LineFile(name)
            for key, line in run:
                lf.add(key, line)
            store.add(lf, random.Random(0))
        store.write(name, Path(tmp) / name)
        text = read_bytes(Path(tmp) / name)
    # Blank lines come and go; the records are every line of every run, stably by time.
    expected = [line for _, line in sorted(sum(lines, []), key=lambda x: x[0])]
    got = [x for x in text.split(b"\n")]
    assert got[-1] == b""
    assert [x for x in got if x.strip()] == [x for x in expected if x.strip()]


def test_an_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sample(tmp_path / "out", n=300, seed=1, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_filled_meanwhile_is_not_mixed_into(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def intrude(_: int) -> None:  # another process writes there while we generate
        (out / "theirs.jsonl").write_text("{}\n")

    with pytest.raises(FileExistsError):
        write_sample(out, n=300, seed=1, progress=intrude)
    assert [p.name for p in out.iterdir()] == ["theirs.jsonl"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_current_folder_can_be_the_output(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path_factory.mktemp("here")
    monkeypatch.chdir(here)
    m = write_sample(".", n=300, seed=1)
    assert sorted(p.name for p in here.iterdir()) == ["actions", "events", "exports", "webhooks"]
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "out"
    assert tree(here) == tree(write_sample(elsewhere, n=300, seed=1).root)
    assert m.records == Read(here).records


@given(
    st.integers(0, 2**64),
    st.sampled_from(["0123456789", "ab", "a", sample._ID_CHARS]),
    st.integers(0, 20),
)
def test_pick_draws_what_random_choice_draws(seed: int, chars: str, count: int) -> None:
    # The shortcut must leave the random stream, hence every byte of the sample, as it was.
    a, b = random.Random(seed), random.Random(seed)
    assert sample._pick(a, chars, count) == "".join(b.choice(chars) for _ in range(count))
    assert a.random() == b.random()


@given(st.integers(0, 10**7))
def test_broken_rounds_stay_in_their_month(r: int) -> None:
    for start in (datetime(2025, 1, 9, 14, 3, 7, 250000), datetime(2025, 3, 2, 11)):
        assert (start + sample._round_shift(r)).month == start.month


@given(st.integers(0, 2**32), st.sampled_from(sorted(sample._COUNTRIES)))
@settings(max_examples=50)
def test_a_sender_is_described_as_phonenumbers_describes_it(seed: int, region: str) -> None:
    # The generator skips lookups phonenumbers would repeat: the results must not change.
    num, kind = sample._random_mobile(random.Random(seed), region)
    assert phonenumbers.is_valid_number_for_region(num, region)
    assert kind == phonenumbers.number_type(num)
    party = sample._party(num, region, kind)
    assert party.location == geocoder.description_for_number(num, "en")
    assert party.number == phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    assert carrier.name_for_valid_number(num, "en") == carrier.name_for_number(num, "en")


# --- the command --------------------------------------------------------------------------


def test_cli_sample_quiet_writes_and_prints_nothing(tmp_path: Path) -> None:
    r = run("sample", "--out", tmp_path / "a", "--n", "300", "-q")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert tree(tmp_path / "a") == tree(write_sample(tmp_path / "b", n=300).root)


def test_cli_sample_reports_and_refuses_cleanly(tmp_path: Path) -> None:
    r = run("sample", "--out", tmp_path / "a", "--n", "300")
    assert r.exit_code == 0 and "300 messages" in r.stdout
    again = run("sample", "--out", tmp_path / "a", "--n", "300")
    assert again.exit_code == 2 and "not an empty folder" in again.stderr
    small = run("sample", "--out", tmp_path / "b", "--n", "199")
    assert small.exit_code == 2 and "--n 199" in small.stderr and "Traceback" not in small.output
    assert not (tmp_path / "b").exists()


# The peak is this process image's own high-water mark (VmHWM): getrusage's ru_maxrss
# counts from the fork, so a child of a large pytest process inherits its parent's size.
MEASURE = r"""
import json, sys
from smsanalytics.sample import write_sample
m = write_sample(sys.argv[1], n=int(sys.argv[2]), seed=5)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) * 1024
print(json.dumps({"peak": peak,
                  "records": m.records, "messages": m.messages, "duplicates": m.duplicates,
                  "rejects": m.rejects, "senders": m.senders}))
"""


@pytest.mark.slow
def test_200k_messages_in_bounded_memory(tmp_path: Path) -> None:
    # Four chunks, 200 rounds of broken records (n >= 23,000 once failed with "day is out
    # of range for month"). Holding everything, as the generator once did, took ~700 MB.
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path / "big"), "200000"],
        capture_output=True, text=True, check=True,
    )
    m = json.loads(proc.stdout)
    assert m["peak"] < 450 * 2**20, m["peak"]
    read = Read(tmp_path / "big")
    assert m["records"] == m["messages"] + m["duplicates"] + m["rejects"] == read.records
    assert m["messages"] == len(read.final) == 200_000
    assert m["duplicates"] == len(read.valid) - len(read.final)
    assert m["senders"] == len({r["from"] for r in read.final.values()})
