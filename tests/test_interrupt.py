"""Ctrl-C during a conversion: it stops, says so in one line, exits 130, and the dataset
is either the previous version, whole, or (Ctrl-C during the swap) the new one, whole.

Before, Ctrl-C was sometimes lost inside the stream DuckDB pulls the records from (the run
finished and exited 0) and sometimes printed a traceback.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics.sample import write_webhook_jsonl

from .conftest import DATA, ROOT, beside, convert_command, dataset_state, signal_when


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("archives")
    first, big = folder / "first.jsonl", folder / "big.jsonl"
    write_webhook_jsonl(first, n=1_000, senders=100, seed=1)
    write_webhook_jsonl(big, n=8_000, senders=1_000, seed=2)  # about 3.6 MB
    return first, big


def _check_outcome(
    code: int, err: str, sent: bool, out: Path, before: pa.Table, when: str = ""
) -> pa.Table:
    """Exit 130 and one line; the dataset the previous version or the new one, whole."""
    assert "Traceback" not in err, (when, err)
    state = dataset_state(out)
    if code == 0:  # finished before the signal could be sent; never a lost Ctrl-C
        assert not sent, (when, err)
        return state
    assert code == 130, (when, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("smsanalytics: interrupted;")
    if "not changed" in err:
        assert state.equals(before)
    else:
        assert "completed" in err and not state.equals(before)
    return state


def test_ctrl_c_at_several_moments_stops_cleanly(tmp_path, inputs):
    first, big = inputs
    out = tmp_path / "ds"
    smsanalytics.convert([first], out, quiet=True)
    before = dataset_state(out)

    def after_stage(seconds: float) -> Callable[[float], bool]:
        seen: list[float] = []

        def ready(elapsed: float) -> bool:
            if not seen and beside(out, "stage"):
                seen.append(elapsed)
            return bool(seen) and elapsed - seen[0] >= seconds

        return ready

    def writing(_: float) -> bool:
        return any(any(v.rglob("*.parquet")) for v in beside(out, "version"))

    moments = {"as it starts reading": after_stage(0.0), "while writing": writing}
    interrupted = 0
    for name, ready in moments.items():
        code, err, sent = signal_when(convert_command([big], out), ready)
        before = _check_outcome(code, err, sent, out, before, name)
        interrupted += code == 130
    assert interrupted >= 1
    s = smsanalytics.convert([big], out, quiet=True)  # the next run cleans up and completes
    assert s.balanced
    assert not beside(out, "stage") and not beside(out, "version")


def test_ctrl_c_during_the_swap_finishes_it_and_says_so(tmp_path, inputs, monkeypatch):
    first, _ = inputs
    out = tmp_path / "ds"
    smsanalytics.convert([DATA / "webhook-payload.json"], out, quiet=True)
    real_commit = ds.commit_version

    def commit_with_ctrl_c(staging: Path, target: Path) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        real_commit(staging, target)

    monkeypatch.setattr(ds, "commit_version", commit_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="completed"):
        smsanalytics.convert([first], out, quiet=True)
    sids = set(dataset_state(out).column("sid").to_pylist())
    with open(first, encoding="utf-8") as fh:
        assert sids == {"callrsid"} | {json.loads(line)["sid"] for line in fh}


def test_ctrl_c_while_reading_in_process_raises_keyboard_interrupt_once(tmp_path, inputs,
                                                                        monkeypatch):  # fmt: skip
    """In a notebook: KeyboardInterrupt, never a DuckDB error; SIGINT handling restored."""
    _, big = inputs
    out = tmp_path / "ds"
    from smsanalytics import readers

    real = readers.iter_raw_batches
    seen = []

    def ctrl_c_while_reading(inp, on_bytes=None):
        for table in real(inp, on_bytes):
            seen.append(len(table))
            os.kill(os.getpid(), signal.SIGINT)
            yield table

    monkeypatch.setattr("smsanalytics.ingest.iter_raw_batches", ctrl_c_while_reading)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="not changed"):
        smsanalytics.convert([big], out, quiet=True)
    assert seen and signal.getsignal(signal.SIGINT) is previous
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_at_random_moments(tmp_path, inputs):
    first, big = inputs
    out = tmp_path / "ds"
    smsanalytics.convert([first], out, quiet=True)
    before = dataset_state(out)
    rng = random.Random()
    def converting_after(at: float) -> Callable[[float], bool]:
        # Only while the conversion runs (its scratch folder exists): a signal that
        # reaches a process already exiting after success is not a lost Ctrl-C.
        return lambda t: t >= at and bool(beside(out, "stage"))

    for _ in range(25):
        ready = converting_after(rng.uniform(0, 4))
        code, err, sent = signal_when(convert_command([big], out), ready)
        before = _check_outcome(code, err, sent, out, before)
        if code == 0 or "completed" in err:  # start again from the first version
            smsanalytics.convert([first], out, quiet=True, overwrite=True)
            before = dataset_state(out)
    smsanalytics.convert([big], out, quiet=True)
    assert not beside(out, "stage") and not beside(out, "version")


def test_kill_9_then_a_rerun_keeps_the_users_files(tmp_path, inputs):
    first, big = inputs
    out = tmp_path / "ds"
    smsanalytics.convert([first], out, quiet=True)
    (out / "NOTES.txt").write_text("mine")
    proc = subprocess.Popen(convert_command([big], out), cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not any(
            (v / ds.MANIFEST_NAME).exists() for v in beside(out, "version")
        ):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert (out / "NOTES.txt").read_text() == "mine"
    smsanalytics.convert([big], out, quiet=True)
    assert (out / "NOTES.txt").read_text() == "mine"
    assert not beside(out, "stage") and not beside(out, "version")
