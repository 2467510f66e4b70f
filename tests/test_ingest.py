"""Conversion: accounting, de-duplication, incremental and atomic writes, typed output."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics.errors import DatasetError, DatasetLockedError, StrictModeError
from smsanalytics.sample import write_sample

from .conftest import CALLR_EXAMPLES, DATA

SMS_EXAMPLES = [p for p in CALLR_EXAMPLES if p.name != "actions-scenario.yaml"]


def payload(sid: str, updated: str = "2025-01-10T10:00:00Z", **extra) -> dict:
    return {
        "sid": sid, "from": "+33612345678", "to": "+33639980044", "body": {"text": "hi"},
        "encoding": "gsm", "parts": 1, "cost": "1.00", "created": "2025-01-10T09:00:00Z",
        "updated": updated, **extra,
    }


def jsonl(*objs: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.mark.parametrize("path", SMS_EXAMPLES, ids=lambda p: p.name)
def test_each_callr_example_loads(path):
    r = smsanalytics.load_messages([path])
    assert (r.summary.records, r.summary.written, r.summary.rejected) == (1, 1, 0)
    row = r.messages.iloc[0]
    assert row["sid"] == "callrsid"
    assert row["from_number"].startswith("+336399")
    assert row["created_at"].tzname() == "UTC"


def test_callr_examples_values():
    df = smsanalytics.read_messages(*SMS_EXAMPLES, on_reject="ignore")
    # all four share the sid "callrsid": one row, the latest updated_at wins (Actions)
    assert len(df) == 1 and df.iloc[0]["source"] == "actions"
    env = smsanalytics.read_messages(DATA / "webhook-envelope.json").iloc[0]
    assert env["event_id"] == "a033174403257076580mk8v4KiGgZA32"
    assert env["cost_cents"] == Decimal("2.0")
    assert env["network"] == "20801"
    assert env["traffic_type"] == "alerting"
    assert list(env["status_history"])[0]["after"] == "delivered"


def test_scenario_yaml_is_rejected_as_not_an_sms():
    r = smsanalytics.load_messages([DATA / "actions-scenario.yaml"])
    assert r.summary.rejected == 1
    assert r.rejects.iloc[0]["reason"].startswith("not an SMS record")


def test_dtypes_are_arrow_backed_and_exact():
    df = smsanalytics.read_messages(DATA / "actions-log-line.txt")
    assert str(df["cost_cents"].dtype) == "decimal128(18, 6)[pyarrow]"
    assert str(df["created_at"].dtype) == "timestamp[us, tz=UTC][pyarrow]"
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
    assert list(df.columns) == smsanalytics.MESSAGE_SCHEMA.names


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "archive"
    return out, write_sample(out, n=400, seed=11)


def test_sample_archive_accounting(sample, tmp_path):
    archive, manifest = sample
    s = smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    assert s.records == manifest.records
    assert s.written == manifest.messages
    assert s.duplicates == manifest.duplicates
    assert s.rejected == manifest.rejects
    assert s.balanced
    rejects = [json.loads(line) for line in Path(s.rejects_path).read_text().splitlines()]
    assert len(rejects) == manifest.rejects
    assert all(r["source_file"] and r["source_line"] >= 1 and r["reason"] for r in rejects)
    df = smsanalytics.read_dataset(tmp_path / "ds")
    assert len(df) == df["sid"].nunique() == manifest.messages


def test_second_run_writes_nothing(sample, tmp_path):
    archive, manifest = sample
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in ds.dataset_files(out)}
    again = smsanalytics.convert([archive], out, quiet=True)
    assert again.written == 0
    assert again.duplicates == manifest.records - manifest.rejects
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in ds.dataset_files(out)} == before


def test_incremental_adds_only_new_and_newer(write, tmp_path):
    out = tmp_path / "ds"
    day1 = write("day1.jsonl", jsonl(payload("a"), payload("b"), payload("c")))
    s1 = smsanalytics.convert([day1], out, quiet=True)
    assert s1.written == 3
    day2 = write(
        "day2.jsonl",
        jsonl(
            payload("c"),  # same again: duplicate
            payload("b", updated="2025-01-09T00:00:00Z", status="stale"),  # older: duplicate
            payload("a", updated="2025-01-11T00:00:00Z", status="delivered"),  # newer: replaces
            payload("d"),  # new
        ),
    )
    s2 = smsanalytics.convert([day2], out, quiet=True)
    assert (s2.written, s2.replaced, s2.duplicates) == (2, 1, 2)
    df = smsanalytics.read_dataset(out).set_index("sid")
    assert sorted(df.index) == ["a", "b", "c", "d"]
    assert df.loc["a", "status"] == "delivered"
    assert pd.isna(df.loc["b", "status"])
    assert s2.rows_total == 4


def test_winner_order_updated_then_event_at_then_try(write):
    base = payload("x")
    env = lambda at, t, status: {  # noqa: E731
        "id": "e1", "at": at, "sid": "sub", "type": "v2.sms.inbound.received", "try": t,
        "payload": dict(base, status=status),
    }
    p = write(
        "retries.jsonl",
        jsonl(
            env("2025-01-10T10:00:05Z", 1, "later-event"),
            env("2025-01-10T10:00:01Z", 2, "higher-try-earlier-event"),
            env("2025-01-10T10:00:05Z", 0, "same-event-lower-try"),
        ),
    )
    df = smsanalytics.read_messages(p)
    assert len(df) == 1 and df.iloc[0]["status"] == "later-event"


def test_exact_decimal_totals(write, tmp_path):
    objs = [dict(payload(f"s{i}"), cost="0.8925") for i in range(1000)]
    out = tmp_path / "ds"
    smsanalytics.convert([write("c.jsonl", jsonl(*objs))], out, quiet=True)
    total = duckdb.execute(
        f"SELECT sum(cost_cents) FROM read_parquet('{out}/**/*.parquet')"
    ).fetchone()[0]
    assert total == Decimal("892.5")
    assert smsanalytics.read_dataset(out)["cost_cents"].sum() == Decimal("892.5")


def test_hive_partitions_readable_by_duckdb(sample, tmp_path):
    archive, manifest = sample
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    parts = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert parts and all(p.startswith("month=2025-") for p in parts)
    n, months = duckdb.execute(
        f"SELECT count(*), count(DISTINCT month) FROM "
        f"read_parquet('{out}/**/*.parquet', hive_partitioning=true)"
    ).fetchone()
    assert n == manifest.messages and months == len(parts)


def test_partition_by_none_is_one_file(sample, tmp_path):
    archive, _ = sample
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, partition_by="none", quiet=True)
    assert [p.parent for p in ds.dataset_files(out)] == [out]
    with pytest.raises(DatasetError, match="partitioned by 'none'"):
        smsanalytics.convert([archive], out, quiet=True)


def test_crash_while_writing_leaves_previous_version(write, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    smsanalytics.convert([write("a.jsonl", jsonl(payload("a")))], out, quiet=True)
    before = smsanalytics.read_dataset(out)

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ds, "commit_version", boom)
    with pytest.raises(KeyboardInterrupt):
        smsanalytics.convert([write("b.jsonl", jsonl(payload("b")))], out, quiet=True)
    pd.testing.assert_frame_equal(smsanalytics.read_dataset(out), before)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")
                and not p.name.endswith((".lock", ".smsanalytics.json"))]
    monkeypatch.undo()
    s = smsanalytics.convert([tmp_path / "b.jsonl"], out, quiet=True)
    assert s.written == 1 and len(smsanalytics.read_dataset(out)) == 2


def test_strict_writes_rejects_but_not_the_dataset(write, tmp_path):
    p = write("a.jsonl", jsonl(payload("a")) + "garbage\n")
    with pytest.raises(StrictModeError):
        smsanalytics.convert([p], tmp_path / "ds", strict=True, quiet=True)
    assert not (tmp_path / "ds").exists()
    rejects = (tmp_path / "ds.rejects.jsonl").read_text().splitlines()
    assert json.loads(rejects[0])["source_line"] == 2


def test_refuses_to_write_into_a_foreign_directory(write, tmp_path):
    write("mine/notes.txt", "keep me")
    with pytest.raises(DatasetError, match="not a smsanalytics dataset"):
        smsanalytics.convert([DATA / "webhook-payload.json"], tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_overwrite_replaces(write, tmp_path):
    out = tmp_path / "ds"
    smsanalytics.convert([write("a.jsonl", jsonl(payload("a")))], out, quiet=True)
    smsanalytics.convert([write("b.jsonl", jsonl(payload("b")))], out, overwrite=True, quiet=True)
    assert list(smsanalytics.read_dataset(out)["sid"]) == ["b"]


def test_lock_held_by_another_writer(tmp_path):
    out = tmp_path / "ds"
    with ds.locked(out, timeout=0):
        with pytest.raises(DatasetLockedError, match="another conversion"):
            smsanalytics.convert([DATA / "webhook-payload.json"], out, lock_timeout=0.2)


def test_empty_input_makes_an_empty_dataset(write, tmp_path):
    s = smsanalytics.convert([write("empty.jsonl", "\n\n")], tmp_path / "ds", quiet=True)
    assert (s.records, s.written) == (0, 0)
    df = smsanalytics.read_dataset(tmp_path / "ds")
    assert len(df) == 0 and list(df.columns) == smsanalytics.MESSAGE_SCHEMA.names


def test_rejects_default_path_is_beside_the_dataset(tmp_path):
    s = smsanalytics.convert([DATA / "actions-scenario.yaml"], tmp_path / "ds", quiet=True)
    assert Path(s.rejects_path) == tmp_path / "ds.rejects.jsonl"
    assert os.path.getsize(s.rejects_path) > 0


def test_manifest_records_the_last_conversion(sample, tmp_path):
    archive, manifest = sample
    s = smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    last = ds.read_manifest(tmp_path / "ds")["last_conversion"]
    assert (last["records"], last["written"], last["duplicates"], last["rejected"]) == (
        manifest.records, manifest.messages, manifest.duplicates, manifest.rejects,
    )
    assert last["duplicates"] == s.duplicates


def test_duplicates_across_batches_are_taken_out_of_the_files(write, tmp_path, monkeypatch):
    from smsanalytics import ingest

    monkeypatch.setattr(ingest, "_FLUSH_ROWS", 2)  # every two records a batch
    rewritten = []
    rewrite = ds.rewrite_file
    monkeypatch.setattr(
        ds, "rewrite_file", lambda src, dst, **kw: rewritten.append(kw) or rewrite(src, dst, **kw)
    )
    p = write(
        "spread.jsonl",
        jsonl(
            payload("a", status="first"),
            payload("b"),
            payload("c"),
            payload("a", updated="2025-01-11T00:00:00Z", status="newer"),  # beats line 1
            payload("b"),  # a tie: the record read last wins
            payload("a", updated="2025-01-09T00:00:00Z", status="older"),  # loses
            payload("d"),
        ),
    )
    out = tmp_path / "ds"
    s = smsanalytics.convert([p], out, quiet=True)
    assert (s.records, s.written, s.duplicates) == (7, 4, 3)
    df = smsanalytics.read_dataset(out).set_index("sid")
    assert sorted(df.index) == ["a", "b", "c", "d"]  # each sid once, in the files themselves
    assert df.loc["a", "status"] == "newer"
    assert df.loc["b", "source_line"] == 5
    assert s.rows_total == 4 == ds.describe(out).rows
    assert rewritten and all(len(kw["drop_positions"]) for kw in rewritten)  # losers taken out
    loaded = smsanalytics.load_messages([p])
    assert (loaded.summary.written, loaded.summary.duplicates) == (4, 3)
    assert sorted(loaded.messages["sid"]) == ["a", "b", "c", "d"]


def test_a_run_adds_files_and_filters_only_those_it_must(write, tmp_path):
    out = tmp_path / "ds"
    jan = dict(created="2025-01-10T09:00:00Z")
    feb = dict(created="2025-02-10T09:00:00Z")
    smsanalytics.convert(
        [write("d1.jsonl", jsonl(payload("a", **jan), payload("b", **jan), payload("f", **feb)))],
        out,
        quiet=True,
    )
    before = {p.name: p.stat().st_ino for p in ds.dataset_files(out)}
    newer = payload("a", updated="2025-01-11T00:00:00Z", status="delivered", **jan)
    s = smsanalytics.convert(
        [write("d2.jsonl", jsonl(newer, payload("g", **feb)))], out, quiet=True
    )
    assert (s.written, s.replaced, s.rows_total) == (2, 1, 4)
    assert s.partitions_written == ["2025-01", "2025-02"]
    files = ds.dataset_files(out)
    assert len(files) == 4  # one new file per month with new rows
    untouched = [p for p in files if before.get(p.name) == p.stat().st_ino]
    assert [ds.partition_of(p, out) for p in untouched] == ["2025-02"]  # linked, not copied
    df = smsanalytics.read_dataset(out).set_index("sid")
    assert sorted(df.index) == ["a", "b", "f", "g"]
    assert df.loc["a", "status"] == "delivered"


def test_garbage_collector_paused_during_the_parse_and_restored(tmp_path, monkeypatch):
    import gc

    from smsanalytics import ingest

    seen: list[bool] = []
    take = ingest._Run._take
    monkeypatch.setattr(
        ingest._Run, "_take", lambda self, t: seen.append(gc.isenabled()) or take(self, t)
    )
    src = tmp_path / "in.jsonl"
    src.write_text('{"sid": "a", "from": "+33612345678", "to": "+33798765432"}\nnot json\n')
    smsanalytics.convert([src], tmp_path / "out", quiet=True, enrich_rows=False)
    assert seen == [False] and gc.isenabled()
    monkeypatch.setattr(ingest._Run, "_take", lambda self, t: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        smsanalytics.convert([src], tmp_path / "out3", quiet=True, enrich_rows=False)
    assert gc.isenabled()
    monkeypatch.setattr(ingest._Run, "_take", take)
    gc.disable()
    try:
        smsanalytics.convert([src], tmp_path / "out2", quiet=True, enrich_rows=False)
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_each_row_keeps_the_file_it_came_from(tmp_path, monkeypatch):
    from smsanalytics import ingest

    monkeypatch.setattr(ingest, "_FLUSH_ROWS", 2)  # files spread over several batches
    files = []
    for f in range(3):
        path = tmp_path / f"day{f}.jsonl"
        path.write_text("".join(
            json.dumps({"sid": f"f{f}-{i}", "from": "+33612345678", "to": "+33798765432",
                        "created": f"2025-0{f + 1}-01T00:00:00Z"}) + "\n" for i in range(3)))
        files.append(path)
    smsanalytics.convert(files, tmp_path / "out", quiet=True, enrich_rows=False)
    df = smsanalytics.read_dataset(tmp_path / "out")
    got = dict(zip(df["sid"], df["source_file"], strict=True))
    assert len(got) == 9
    for sid, source in got.items():
        assert source == str(files[int(sid[1])]), (sid, source)
