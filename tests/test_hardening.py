"""Hostile and broken input, crashes, concurrent writers, full and read-only disks.

Archives come from the open internet, so every loader meets garbage. Whatever the input,
loading never crashes or hangs, every record is accounted for
(``records == written + duplicates + rejected``), and every reject has a reason and a
line. A conversion killed at any moment, or one that runs out of disk, leaves the dataset
as it was; two conversions at once never corrupt it.

These tests are bounded (about a minute together on two cores); longer soaks are in
``test_soak.py``, marked slow.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics.readers import find_inputs, iter_raw_batches
from smsanalytics.sample import write_webhook_jsonl

from .conftest import DATA, ROOT, beside, convert_command, dataset_state, run, signal_when

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a red build is reproducible
    database=None,  # nothing written into the repository
)
CALLR_RECORDS = [
    json.loads((DATA / "webhook-payload.json").read_text()),
    json.loads((DATA / "webhook-envelope.json").read_text()),
]
FIELDS = [
    "sid", "from", "to", "body", "cost", "parts", "created", "updated", "delivered", "sent",
    "network", "status", "encoding", "statusHistory", "type", "payload", "try", "at", "id",
    "fromNumber", "toNumber", "bodyText", "billingDebit", "createdAt", "sms",
]  # fmt: skip


def check_load(paths: list[Path]) -> smsanalytics.LoadResult:
    """Load `paths` and check what must hold for any input whatsoever."""
    r = smsanalytics.load_messages(paths)
    s = r.summary
    assert s.balanced, s
    assert s.records == s.written + s.duplicates + s.rejected
    assert len(r.rejects) == s.rejected and len(r.messages) == s.written
    for rej in r.rejects.itertuples():
        assert isinstance(rej.reason, str) and rej.reason.strip(), rej
        assert rej.source_line >= 1, rej
        assert rej.source_file in {str(p) for p in paths}, rej
    m = r.messages
    assert m["sid"].is_unique
    for col in ("sid", "from_number", "to_number"):
        assert m[col].notna().all(), col
        assert not m[col].str.startswith(("{", "[")).any(), col
    for col in ("created_at", "updated_at", "delivered_at", "sent_at", "event_at"):
        years = m[col].dropna().dt.year
        assert ((years >= 1678) & (years <= 2261)).all(), col
    str(m)  # every value can be shown (an out-of-range time could not)
    return r


@contextlib.contextmanager
def files(contents: dict[str, bytes]) -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, data in contents.items():
            p = Path(d) / name
            p.write_bytes(data)
            paths.append(p)
        yield paths


# -- property-based: whatever the bytes ---------------------------------------------------

SUFFIXES = st.sampled_from(["a.jsonl", "b.json", "c.yaml", "d.log", "e.data"])


@SETTINGS
@given(st.dictionaries(SUFFIXES, st.binary(max_size=4000), min_size=1, max_size=5))
def test_arbitrary_bytes_never_crash(contents):
    with files(contents) as paths:
        check_load(paths)


def _nonblank_lines(data: bytes) -> int:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")  # LF, CRLF, CR
    if lines and lines[-1] == b"":
        lines.pop()
    return sum(1 for ln in lines if not (ln[:1] in (b"", b" ", b"\t", b"\r") and not ln.strip()))


@settings(SETTINGS, max_examples=8)
@given(st.lists(st.binary(max_size=300).filter(lambda b: b"\n" not in b), max_size=40))
def test_every_line_of_a_line_file_is_one_record(lines):
    data = b"\n".join(lines) + b"\n"
    with files({"x.jsonl": data}) as paths:
        r = check_load(paths)
        assert r.summary.records == _nonblank_lines(data)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["", " ", "\x00", "+33639980042", "2025-01-10T10:00:00Z", "99999-01-01", "infinity",
         "epoch", "-1", "1e400", "0.8925", "2", "two", "\ud800", "\u202e", "{", "[]"]
    )
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


@settings(SETTINGS, max_examples=10)
@given(
    st.lists(
        st.tuples(JSON, st.sampled_from(["", "2025-03-31T15:42:00Z log@v1 SMS received "]),
                  st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=30,
    )
)  # fmt: skip
def test_arbitrary_json_lines(items):
    out = []
    for value, prefix, cut in items:
        text = prefix + _dump(value)
        if cut == 3:  # truncated in the middle
            text = text[: max(1, len(text) // 2)]
        out.append(text.encode("utf-8", "surrogatepass"))
    with files({"x.jsonl": b"\n".join(out) + b"\n"}) as paths:
        check_load(paths)


def _mutate(record: dict, field: str, value: object, where: list[str]) -> dict:
    record = json.loads(json.dumps(record))
    target = record.get("payload", record) if where == ["payload"] else record
    target[field] = value
    return record


@settings(SETTINGS, max_examples=8)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(CALLR_RECORDS),
            st.sampled_from(FIELDS),
            JSON,
            st.sampled_from([[], ["payload"]]),
            st.sampled_from(["plain", "duplicate key", "nul", "bad utf-8"]),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["x.jsonl", "x.json", "x.yaml"]),
)
def test_mutated_callr_records(mutations, name):
    texts = []
    for i, (base, field, value, where, how) in enumerate(mutations):
        rec = _mutate(base, field, value, where)
        rec.setdefault("payload", {}) if "type" in rec else None
        text = _dump(rec).encode("utf-8", "surrogatepass")
        if how == "duplicate key":  # the JSON text has the key twice
            text = b'{"sid": "dup%d", ' % i + text[1:]
        elif how == "nul":
            text = text.replace(b'"', b'"\x00', 1)
        elif how == "bad utf-8":
            text = text.replace(b'"', b'"\xc3\x28', 1)
        texts.append(text)
    if name.endswith(".json"):
        data = b"[\n" + b",\n".join(texts) + b"\n]\n"
    elif name.endswith(".yaml"):
        data = b"".join(b"---\n" + t + b"\n" for t in texts)
    else:
        data = b"\n".join(texts) + b"\n"
    with files({name: data}) as paths:
        check_load(paths)


# -- explicit nasty inputs ---------------------------------------------------------------

GOOD = json.dumps({"sid": "good1", "from": "+33612345678", "to": "+33639980044"})


def test_deep_nesting_nul_bytes_and_invalid_utf8():
    deep = "[" * 10_000 + "]" * 10_000
    deep_obj = '{"a":' * 10_000 + "1" + "}" * 10_000
    contents = {
        "deep.jsonl": f"{deep}\n{GOOD}\n{deep_obj}\n".encode(),
        "deep.json": deep.encode(),
        "deepobj.json": deep_obj.encode(),
        # PyYAML scans deep flow collections slowly; past ~1,000 it is the same error
        "deep.yaml": ("[" * 3_000 + "]" * 3_000).encode(),
        "deep_in_record.jsonl": (GOOD[:-1] + ', "x": ' + deep + "}\n").replace(
            "good1", "good2"
        ).encode(),
        "nul.jsonl": b'{"sid": "a\x00"}\n\x00\x00\x00\n' + GOOD.replace("good1", "n\\u0000ul")
        .encode() + b"\n",
        "bad.jsonl": b'\xff\xfe{"sid": 1}\n{"sid": "\xc3"}\n',
        "bad.json": b'[{"sid": "\xc3\x28"}]',
        "bad.yaml": b"sms:\n  sid: \xc3\x28\n",
    }  # fmt: skip
    with files(contents) as paths:
        r = check_load(paths)
    assert set(r.messages["sid"]) == {"good1", "good2", "n\x00ul"}
    reasons = set(r.rejects["reason"])
    assert any(x.startswith("invalid JSON") for x in reasons)
    assert any(x.startswith("invalid YAML") for x in reasons)
    assert any(x.startswith("not valid UTF-8") for x in reasons)


def test_wrong_types_and_out_of_range_values_are_rejected_with_the_field():
    base = {"sid": "s", "from": "+33612345678", "to": "+33639980044"}
    cases = [
        ({"sid": {"a": 1}}, "sid: "),
        ({"from": ["+33612345678"]}, "from_number: "),
        ({"to": {"n": 1}}, "to_number: "),
        ({"parts": 10**30}, "parts: "),
        ({"parts": float("nan")}, "parts: "),
        ({"cost": float("inf")}, "cost_cents: "),
        ({"cost": "1e400"}, "cost_cents: "),
        ({"created": "99999-01-01T00:00:00Z"}, "created_at: "),
        ({"updated": "infinity"}, "updated_at: "),
        ({"delivered": "epoch"}, "delivered_at: "),
        ({"sent": "2300-01-01T00:00:00Z"}, "sent_at: "),
        ({"statusHistory": [{"at": "294247-01-01"}]}, "status_history: "),
    ]
    lines = [json.dumps({**base, "sid": f"s{i}", **c}, allow_nan=True) for i, (c, _) in
             enumerate(cases)]  # fmt: skip
    with files({"x.jsonl": "\n".join(lines).encode()}) as paths:
        r = check_load(paths)
    assert r.summary.written == 0
    got = dict(zip(r.rejects["source_line"], r.rejects["reason"], strict=True))
    for line, (_, prefix) in enumerate(cases, start=1):
        assert got[line].startswith(prefix), (line, got[line])


def test_yaml_alias_bomb_is_rejected_quickly():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    bomb = ("\n".join(levels) + "\n").encode()  # 10^9 values when expanded
    started = time.monotonic()
    with files({"bomb.yaml": bomb, "ok.jsonl": GOOD.encode()}) as paths:
        r = check_load(paths)
    assert time.monotonic() - started < 10
    assert r.summary.written == 1
    assert r.rejects["reason"].iloc[0].startswith("invalid YAML: aliases expand")


def test_a_50_mb_line():
    body = "é" * (25 << 20)  # 50 MB of UTF-8 on one line
    big = json.dumps({"sid": "big", "from": "+33612345678", "to": "+1", "body": {"text": body}},
                     ensure_ascii=False)  # fmt: skip
    junk = "x" * (50 << 20)
    data = (GOOD + "\n" + big + "\n" + junk + "\n").encode()
    del body, big, junk
    with files({"huge.jsonl": data}) as paths:
        del data
        r = check_load(paths)
    assert r.summary.written == 2 and r.summary.rejected == 1
    row = r.messages.set_index("sid").loc["big"]
    assert len(row["body_text"]) == 25 << 20
    assert r.rejects["reason"].iloc[0] == "no JSON object on the line"
    assert len(r.rejects["raw"].iloc[0]) <= 10_000


# -- damaged compressed files --------------------------------------------------------------


def _lines(n: int, start: int = 0) -> bytes:
    return b"".join(
        b'{"sid": "c%06d", "from": "+33612345678", "to": "+33639980044"}\n' % i
        for i in range(start, start + n)
    )


@pytest.fixture
def damaged_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl.gz").write_bytes(gzip.compress(_lines(500, 0)))
    (folder / "good.jsonl.zst").write_bytes(zstandard.compress(_lines(500, 500)))
    gz = gzip.compress(_lines(500, 1000))
    (folder / "truncated.jsonl.gz").write_bytes(gz[: len(gz) // 2])
    zs = zstandard.compress(_lines(500, 2000))
    (folder / "truncated.jsonl.zst").write_bytes(zs[: len(zs) // 2])
    corrupt = bytearray(gzip.compress(_lines(500, 3000)))
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"\xff" * 16
    (folder / "corrupt.ndjson.gz").write_bytes(bytes(corrupt))
    (folder / "garbage.json.zst").write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(300))
    return folder


def test_damaged_compressed_files_are_reported_and_the_rest_converts(damaged_inputs, tmp_path):
    out = tmp_path / "ds"
    s = smsanalytics.convert([damaged_inputs], out, quiet=True)
    assert s.balanced
    rejects = [json.loads(x) for x in Path(s.rejects_path).read_text().splitlines()]
    damaged = {
        Path(r["source_file"]).name
        for r in rejects
        if r["reason"].startswith("compressed data is truncated or corrupt")
    }
    assert damaged == {
        "truncated.jsonl.gz", "truncated.jsonl.zst", "corrupt.ndjson.gz", "garbage.json.zst"
    }  # fmt: skip
    sids = set(smsanalytics.read_dataset(out, ["sid"])["sid"])
    assert {f"c{i:06d}" for i in range(1000)} <= sids  # both good files, whole
    # what came before the damage is kept, in order
    trunc = sorted(int(x[1:]) for x in sids if 1000 <= int(x[1:]) < 2000)
    assert trunc == list(range(1000, 1000 + len(trunc)))


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_a_truncated_small_file_keeps_its_first_records(tmp_path, kind):
    data = _lines(5_000)  # 330 kB: zstd decodes whole blocks of up to 128 kB
    blob = gzip.compress(data) if kind == "gz" else zstandard.compress(data)
    p = tmp_path / f"small.jsonl.{kind}"
    p.write_bytes(blob[: int(len(blob) * 0.8)])
    [inp] = find_inputs([p])
    rows = pa.concat_tables(list(iter_raw_batches(inp))).to_pylist()
    assert rows[-1]["pre_error"].startswith("compressed data is truncated or corrupt")
    assert len(rows) > 2_000  # not everything was dropped at the damage


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_concatenated_members_and_frames_are_all_read(tmp_path, kind):
    compress = gzip.compress if kind == "gz" else zstandard.compress
    p = tmp_path / f"cat.jsonl.{kind}"
    p.write_bytes(compress(_lines(10, 0)) + compress(_lines(10, 10)))
    r = check_load([p])
    assert r.summary.written == 20


def test_cli_names_damaged_files_and_strict_fails(damaged_inputs, tmp_path):
    r = run("convert", str(damaged_inputs), "--out", str(tmp_path / "a"))
    assert r.exit_code == 0, r.output
    assert "compressed data is truncated or corrupt" in r.stdout
    strict = run("convert", str(damaged_inputs), "--out", str(tmp_path / "b"), "--strict")
    assert strict.exit_code == 1
    assert "rejected (strict mode)" in strict.stderr
    assert not (tmp_path / "b").exists()


def test_summary_names_the_damaged_files(damaged_inputs, tmp_path):
    r = run("convert", str(damaged_inputs), "--out", str(tmp_path / "a"))
    for name in ("truncated.jsonl.gz", "truncated.jsonl.zst", "corrupt.ndjson.gz"):
        assert name in r.stdout


# -- SIGKILL in the middle of a conversion -----------------------------------------------


def _sids(path: Path) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        return {json.loads(line)["sid"] for line in fh}


def test_sigkill_at_any_point_leaves_the_dataset_whole_and_a_rerun_completes(tmp_path):
    first, big, out = tmp_path / "first.jsonl", tmp_path / "big.jsonl", tmp_path / "ds"
    write_webhook_jsonl(first, n=2_000, senders=300, seed=1)
    write_webhook_jsonl(big, n=25_000, senders=3_000, seed=2)
    smsanalytics.convert([first], out, quiet=True)
    before = dataset_state(out)
    expected = _sids(first) | _sids(big)

    def stage_for(seconds: float) -> Callable[[float], bool]:
        seen: list[float] = []

        def ready(elapsed: float) -> bool:
            if not seen and beside(out, "stage"):
                seen.append(elapsed)
            return bool(seen) and elapsed - seen[0] >= seconds

        return ready

    def manifest_written(_: float) -> bool:
        return any((v / ds.MANIFEST_NAME).exists() for v in beside(out, "version"))

    points = {
        "after 0.3 s": lambda t: t >= 0.3,
        "while parsing": stage_for(0.3),
        "while writing the new version": lambda t: bool(beside(out, "version")),
        "just before the swap": manifest_written,
    }
    killed_before_commit = 0
    for name, ready in points.items():
        killed = signal_when(convert_command([big], out), ready, signal.SIGKILL)[2]
        state = dataset_state(out)  # always readable, whatever happened
        if state.equals(before):
            killed_before_commit += killed
        else:  # the swap happened: then the new version is whole
            assert name == "just before the swap" or not killed, name
            assert set(state.column("sid").to_pylist()) == expected
            before = state
    assert killed_before_commit >= 3

    s = smsanalytics.convert([big], out, quiet=True)  # the rerun cleans up and completes
    assert s.balanced
    after = ds.read_dataset_table(out, ["sid"]).column("sid").to_pylist()
    assert len(after) == len(set(after)) and set(after) == expected
    assert not beside(out, "stage") and not beside(out, "version")


# -- two writers at once ----------------------------------------------------------------


def test_two_conversions_at_once_never_corrupt_the_dataset(tmp_path):
    first, a, b = (tmp_path / f"{n}.jsonl" for n in ("first", "a", "b"))
    write_webhook_jsonl(first, n=1_000, senders=100, seed=1)
    write_webhook_jsonl(a, n=8_000, senders=1_000, seed=3)
    write_webhook_jsonl(b, n=8_000, senders=1_000, seed=4)
    out = tmp_path / "ds"
    smsanalytics.convert([first], out, quiet=True)
    procs = {
        name: subprocess.Popen(
            convert_command([path], out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in (("a", a), ("b", b))
    }  # fmt: skip
    expected = _sids(first)
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            expected |= _sids(a if name == "a" else b)
        else:  # the only acceptable failure: the lock, clearly said
            assert proc.returncode == 2 and "another conversion" in err, err
    got = ds.read_dataset_table(out, ["sid"]).column("sid").to_pylist()
    assert len(got) == len(set(got)) and set(got) == expected
    assert not beside(out, "stage") and not beside(out, "version")


# -- read-only and full disks -------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir()
        if p.name.startswith(".") and not p.name.endswith((".lock", ".smsanalytics.json"))
    )


def test_read_only_output_is_a_clear_error(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        r = run("convert", str(DATA / "webhook-payload.json"),
                                      "--out", str(ro / "ds"))  # fmt: skip
        assert r.exit_code == 2
        assert len(r.stderr.strip().splitlines()) == 1
        assert "Read-only file system" in r.stderr and "Traceback" not in r.stderr
        assert list(ro.iterdir()) == []


def test_dataset_on_a_disk_made_read_only(tmp_path):
    with tmpfs(tmp_path / "disk", "size=4m") as disk:
        out = disk / "ds"
        smsanalytics.convert([DATA / "webhook-payload.json"], out, quiet=True)
        before = dataset_state(out)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        r = run("convert", str(DATA / "actions-log-line.txt"),
                                      "--out", str(out))  # fmt: skip
        assert r.exit_code == 2, r.output
        assert len(r.stderr.strip().splitlines()) == 1 and "Read-only" in r.stderr
        assert dataset_state(out).equals(before)


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    write_webhook_jsonl(path, n=30_000, senders=2_000, seed=5)  # 13 MB
    return path


@pytest.mark.parametrize("size", ["256k", "1m"], ids=["full early", "full while writing"])
def test_disk_full_is_a_clear_error_and_leaves_nothing_behind(tmp_path, big_input, size):
    with tmpfs(tmp_path / "disk", f"size={size}") as disk:
        out = disk / "ds"
        smsanalytics.convert([DATA / "webhook-payload.json"], out, quiet=True)
        before = dataset_state(out)
        r = run("convert", str(big_input), "--out", str(out))
        assert r.exit_code == 2, r.output
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert "No space left on device" in r.stderr
        assert dataset_state(out).equals(before)
        assert _leftovers(disk) == []


def test_disk_full_message_names_the_dataset_not_sql(tmp_path, big_input):
    with tmpfs(tmp_path / "disk", "size=1m") as disk:
        out = disk / "ds"
        r = run("convert", str(big_input), "--out", str(out))
        assert r.exit_code == 2
        assert "SQL error" not in r.stderr
        assert str(out) in r.stderr and "No space left on device" in r.stderr
