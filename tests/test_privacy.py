"""Pseudonymisation: keyed tokens for numbers, redacted bodies, pseudonymised datasets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics import privacy as pv
from smsanalytics.errors import DatasetError, SmsAnalyticsError
from smsanalytics.schema import MESSAGE_SCHEMA

from .conftest import DATA, SAMPLE, run, run_process

KEY = bytes.fromhex("9e41c7d02b8f5a63e1d04c97b2a8f3150c6de27a94b1f85d3e6a0c29b7f41d88")
OTHER_KEY = bytes.fromhex("27b9e04d6a13fc85d2470e9bc31a5f6e84d0b72c19ea6f35087c4be2d9a1360f")
NUMBER = "+33639980042"


def test_same_number_and_key_give_the_same_token():
    assert pv.pseudonymize_number(NUMBER, KEY) == pv.pseudonymize_number(NUMBER, KEY)
    # formatting does not change the number
    assert pv.pseudonymize_number(NUMBER, KEY) == pv.pseudonymize_number(" +33 6 39-98.00.42", KEY)


def test_a_token_is_the_documented_keyed_hash_of_the_number():
    # Written out from the recipe, not taken from the module: a change of the recipe would
    # give the numbers of an existing dataset other tokens than its rows already hold.
    for typed in (NUMBER, " +33 6 39-98.00.42"):
        digest = hmac.new(KEY, b"smsanalytics/number/v1\0" + NUMBER.encode(), "sha256").digest()
        want = "anon:" + base64.b32encode(digest[:10]).decode().lower()
        assert pv.pseudonymize_number(typed, KEY) == want


def test_another_key_gives_another_token():
    assert pv.pseudonymize_number(NUMBER, KEY) != pv.pseudonymize_number(NUMBER, OTHER_KEY)


def test_token_shape_and_no_trace_of_the_number():
    token = pv.pseudonymize_number(NUMBER, KEY)
    assert token.startswith(pv.TOKEN_PREFIX)
    body = token.removeprefix(pv.TOKEN_PREFIX)
    assert len(body) == 16 and set(body) <= set("abcdefghijklmnopqrstuvwxyz234567")
    digits = NUMBER.lstrip("+")
    assert not any(digits[i : i + 4] in token for i in range(len(digits) - 3))


def test_enumerating_the_number_space_finds_a_plain_hash_but_not_the_token():
    # An attacker knows the number is a French mobile in +3363998xxxx (10^4 candidates;
    # the whole +336/+337 space, 2 * 10^8, is as easy for a plain hash, only longer).
    candidates = [f"+3363998{i:04d}" for i in range(10_000)]
    plain = hashlib.sha256(NUMBER.encode()).hexdigest()
    found = [c for c in candidates if hashlib.sha256(c.encode()).hexdigest() == plain]
    assert found == [NUMBER]  # an unkeyed hash of a phone number is reversed

    token = pv.pseudonymize_number(NUMBER, KEY)
    guessed_key = os.urandom(32)  # without the key, the best an attacker can do
    attempts = {pv.pseudonymize_number(c, guessed_key) for c in candidates} | {
        "anon:" + hashlib.sha256(c.encode()).hexdigest()[:16] for c in candidates
    }
    assert token not in attempts
    # with the key, the owner can still look a number up
    assert token in {pv.pseudonymize_number(c, KEY) for c in candidates}


def test_pseudonymize_numbers_keeps_nulls_and_hashes_each_value_once(monkeypatch):
    calls = []
    real = pv._tokeniser

    def counting(key):
        token = real(key)

        def wrapped(number):
            calls.append(number)
            return token(number)

        return wrapped

    monkeypatch.setattr(pv, "_tokeniser", counting)
    arr = pa.chunked_array([[NUMBER, None, "+33612345678"], [NUMBER, NUMBER, None]])
    out = pv.pseudonymize_numbers(arr, KEY)
    assert sorted(calls) == sorted([NUMBER, "+33612345678"])
    assert out.null_count == 2
    got = out.to_pylist()
    assert got[0] == got[3] == got[4] == pv.pseudonymize_number(NUMBER, KEY)
    assert got[2] != got[0]


def test_pseudonymize_numbers_accepts_dictionary_arrays():
    arr = pa.array([NUMBER, None, NUMBER]).dictionary_encode()
    assert pv.pseudonymize_numbers(arr, KEY).to_pylist() == [
        pv.pseudonymize_number(NUMBER, KEY),
        None,
        pv.pseudonymize_number(NUMBER, KEY),
    ]


def test_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        pv.pseudonymize_numbers(pa.array([NUMBER]), b"short")


def _batch(**extra) -> pa.RecordBatch:
    rows = {
        "sid": ["a", "b"],
        "from_number": [NUMBER, None],
        "to_number": ["+33639980044", "+33639980044"],
        "body_text": ["STOP", "Bonjour Marie, c'est Paul"],
        "from_country": ["FR", None],
        "from_type": ["MOBILE", None],
        "from_location": ["France", None],
        "network": ["20801", None],
        "computed_encoding": ["gsm", "gsm"],
        "computed_parts": [1, 1],
        "unicode_chars": [None, None],
        **extra,
    }
    fields = [MESSAGE_SCHEMA.field(k) for k in rows]
    return pa.RecordBatch.from_pydict(rows, schema=pa.schema(fields))


def test_transform_keeps_recipients_by_default_and_every_other_column():
    batch = _batch()
    out = pv.transform_batch(batch, key=KEY, redact_bodies=False)
    assert out.schema == batch.schema
    assert out.column("from_number").to_pylist() == [pv.pseudonymize_number(NUMBER, KEY), None]
    for name in batch.schema.names:
        if name != "from_number":
            assert out.column(name).equals(batch.column(name)), name


def test_transform_recipients_when_asked():
    out = pv.transform_batch(_batch(), key=KEY, redact_bodies=False, pseudonymize_recipients=True)
    assert out.column("to_number").to_pylist() == [pv.pseudonymize_number("+33639980044", KEY)] * 2


def test_body_redaction_keeps_the_columns_computed_from_the_body():
    batch = _batch()
    out = pv.transform_batch(batch, key=None, redact_bodies=True)
    assert out.column("body_text").null_count == 2
    for name in ("from_number", "computed_encoding", "computed_parts", "from_country", "network"):
        assert out.column(name).equals(batch.column(name)), name


def test_extra_columns_such_as_the_partition_are_kept():
    batch = _batch()
    batch = batch.append_column("month", pa.array(["2025-01", "2025-02"]))
    out = pv.transform_batch(batch, key=KEY, redact_bodies=True)
    assert out.column("month").to_pylist() == ["2025-01", "2025-02"]


def test_generate_and_load_key(tmp_path):
    path = tmp_path / "key"
    pv.generate_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = pv.load_key(path)
    assert len(key) == 32 and key == bytes.fromhex(path.read_text())
    with pytest.raises(pv.KeyFileError, match="never overwritten"):
        pv.generate_key(path)


@pytest.mark.parametrize(
    "content",
    [
        KEY.hex(),
        KEY.hex().upper() + "\n",
        base64.b64encode(KEY).decode() + "\n",
        KEY,  # raw bytes
    ],
    ids=["hex", "HEX+newline", "base64", "raw"],
)
def test_key_file_formats(tmp_path, content):
    path = tmp_path / "key"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert pv.load_key(path) == KEY


def test_a_passphrase_is_refused(tmp_path):
    path = tmp_path / "key"
    path.write_text("correct horse battery staple\n")
    with pytest.raises(pv.KeyFileError, match="passphrase"):
        pv.load_key(path)


@pytest.mark.parametrize("content", [b"", b"abcd", b"00" * 15], ids=["empty", "short", "15 bytes"])
def test_short_or_missing_key_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(pv.KeyFileError, match="at least 16 are needed") as err:
        pv.load_key(path)
    assert isinstance(err.value, SmsAnalyticsError) and str(path) in str(err.value)
    with pytest.raises(pv.KeyFileError, match="cannot read"):
        pv.load_key(tmp_path / "missing")


def test_pseudonymize_dataset_round_trip(full_sample_dataset, tmp_path):
    out = tmp_path / "anon"
    rows = pv.pseudonymize_dataset(full_sample_dataset, out, key=KEY, redact_bodies=True)
    before = smsanalytics.read_dataset(full_sample_dataset)
    after = smsanalytics.read_dataset(out)
    assert rows == len(before) == len(after)
    assert list(after.columns) == list(before.columns)
    assert sorted(after["sid"]) == sorted(before["sid"])
    assert after["from_number"].str.startswith("anon:").all()
    assert after["body_text"].isna().all()
    # per-sender questions keep their answers: same counts per sender, through the tokens
    expect = before.groupby("from_number").size()
    expect.index = [pv.pseudonymize_number(n, KEY) for n in expect.index]
    got = after.groupby("from_number").size()
    assert got.sort_index().to_dict() == expect.sort_index().to_dict()
    # everything but the pseudonymised columns is unchanged, row for row
    keep = [c for c in before.columns if c not in ("from_number", "body_text")]
    a = after.sort_values("sid")[keep].reset_index(drop=True)
    b = before.sort_values("sid")[keep].reset_index(drop=True)
    assert a.equals(b)
    # the same partitions, and a manifest that records what was done but not the key
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        p.name for p in full_sample_dataset.iterdir() if p.is_dir()
    )
    manifest = ds.read_manifest(out)
    record = manifest[pv.MANIFEST_KEY]
    assert record["numbers"] and record["bodies_redacted"] and not record["recipients"]
    assert record["key_check"] == pv.key_check(KEY)
    text = ds.manifest_path(out).read_text()
    assert KEY.hex() not in text and KEY.hex()[:16] not in text
    assert manifest["partition_by"] == ds.read_manifest(full_sample_dataset)["partition_by"]
    # no scratch directories left beside it
    assert not [
        p for p in tmp_path.iterdir()
        if p.name.startswith(".anon.") and p.suffix not in (".lock", ".json")
    ]


def test_no_number_of_the_source_is_left(full_sample_dataset, tmp_path):
    out = tmp_path / "anon"
    pv.pseudonymize_dataset(
        full_sample_dataset, out, key=KEY, redact_bodies=True, pseudonymize_recipients=True
    )
    numbers = set(smsanalytics.read_dataset(full_sample_dataset, ["from_number"])["from_number"])
    numbers |= set(smsanalytics.read_dataset(full_sample_dataset, ["to_number"])["to_number"])
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert not [n for n in numbers if n and n.encode() in blob]


def test_refuses_the_source_itself_or_a_folder_inside_it(full_sample_dataset):
    with pytest.raises(DatasetError, match="source dataset"):
        pv.pseudonymize_dataset(full_sample_dataset, full_sample_dataset, key=KEY)
    with pytest.raises(DatasetError, match="source dataset"):
        pv.pseudonymize_dataset(full_sample_dataset, full_sample_dataset / "anon", key=KEY)
    assert not (full_sample_dataset / "anon").exists()


def test_refuses_a_non_empty_output(full_sample_dataset, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        pv.pseudonymize_dataset(full_sample_dataset, tmp_path / "busy", key=KEY)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_refuses_to_pseudonymise_tokens_again(full_sample_dataset, tmp_path):
    pv.pseudonymize_dataset(full_sample_dataset, tmp_path / "a", key=KEY)
    with pytest.raises(DatasetError, match="already pseudonymised"):
        pv.pseudonymize_dataset(tmp_path / "a", tmp_path / "b", key=OTHER_KEY)
    # redacting the bodies of a pseudonymised dataset is fine, and keeps the record
    pv.pseudonymize_dataset(tmp_path / "a", tmp_path / "c", key=None, redact_bodies=True)
    record = ds.read_manifest(tmp_path / "c")[pv.MANIFEST_KEY]
    assert record["numbers"] and record["bodies_redacted"]
    assert record["key_check"] == pv.key_check(KEY)


def test_missing_source_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no dataset"):
        pv.pseudonymize_dataset(tmp_path / "nope", tmp_path / "out", key=KEY)


def test_check_compatible():
    record = pv.manifest_record(KEY, redact_bodies=True)
    manifest = {"format": "smsanalytics-dataset", pv.MANIFEST_KEY: record}
    pv.check_compatible(manifest, "ds", KEY, redact_bodies=True)  # same: fine
    pv.check_compatible({}, "ds", None, redact_bodies=False)  # a new dataset: anything
    with pytest.raises(DatasetError, match="another key"):
        pv.check_compatible(manifest, "ds", OTHER_KEY, redact_bodies=True)
    with pytest.raises(DatasetError, match="plain numbers"):
        pv.check_compatible(manifest, "ds", None, redact_bodies=False)
    with pytest.raises(DatasetError, match="bodies redacted"):
        pv.check_compatible(manifest, "ds", KEY, redact_bodies=False)
    plain = {"format": "smsanalytics-dataset", "partition_by": "month"}
    with pytest.raises(DatasetError, match="holds plain numbers and bodies"):
        pv.check_compatible(plain, "ds", KEY, redact_bodies=False)
    assert pv.manifest_record(None, redact_bodies=False) is None
    assert json.dumps(record)  # JSON-ready


def test_convert_pseudonymizes(tmp_path):
    out = tmp_path / "ds"
    smsanalytics.convert(
        [DATA / "webhook-payload.json"], out, quiet=True, pseudonymize_key=KEY, redact_bodies=True
    )
    df = smsanalytics.read_dataset(out)
    assert df["from_number"].iloc[0] == pv.pseudonymize_number("+33639980042", KEY)
    assert df["body_text"].isna().all()
    assert ds.read_manifest(out)[pv.MANIFEST_KEY]["key_check"] == pv.key_check(KEY)
    with pytest.raises(DatasetError, match="another key"):
        smsanalytics.convert(
            [DATA / "webhook-envelope.json"],
            out,
            quiet=True,
            pseudonymize_key=OTHER_KEY,
            redact_bodies=True,
        )
    with pytest.raises(DatasetError, match="plain numbers"):
        smsanalytics.convert([DATA / "webhook-envelope.json"], out, quiet=True)


def test_cli_keygen_convert_and_pseudonymize(tmp_path):
    key = tmp_path / "key"
    assert run("keygen", key).exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    r = run("convert", DATA / "webhook-payload.json", "--out", tmp_path / "a",
            "--pseudonymize", "--key-file", key, "--redact-bodies")
    assert r.exit_code == 0, r.output
    df = smsanalytics.read_dataset(tmp_path / "a")
    assert df["from_number"].iloc[0] == pv.pseudonymize_number("+33639980042", pv.load_key(key))
    # another key into the same dataset: refused, one line, exit 2
    other = tmp_path / "other"
    pv.generate_key(other)
    r = run("convert", DATA / "webhook-envelope.json", "--out", tmp_path / "a",
            "--pseudonymize", "--key-file", other, "--redact-bodies")
    assert r.exit_code == 2 and "another key" in r.stderr
    # --pseudonymize without a key is a usage error
    r = run("convert", DATA / "webhook-payload.json", "--out", tmp_path / "b", "--pseudonymize")
    assert r.exit_code == 2 and "--key-file" in r.output
    # an existing plain dataset, pseudonymised into a new one
    smsanalytics.convert([DATA / "webhook-payload.json"], tmp_path / "plain", quiet=True)
    r = run("pseudonymize", tmp_path / "plain", "--out", tmp_path / "c", "--key-file", key)
    assert r.exit_code == 0, r.output
    assert smsanalytics.read_dataset(tmp_path / "c")["from_number"].iloc[0].startswith("anon:")


def test_keyword_question_survives_body_redaction(full_sample_dataset, tmp_path):
    from smsanalytics import queries

    plain = full_sample_dataset
    redacted = tmp_path / "redacted"
    smsanalytics.convert([SAMPLE], redacted, quiet=True, redact_bodies=True)
    assert smsanalytics.read_dataset(redacted)["body_text"].isna().all()
    want = queries.keywords(plain, freq=None).set_index("keyword")["messages"]
    got = queries.keywords(redacted, freq=None).set_index("keyword")["messages"]
    assert len(want) > 0
    assert got.to_dict() == want.to_dict()


# -- keys that are not plausibly random ---------------------------------------------------


WEAK_KEY_FILES = {
    "word as base64": b"passwordpasswordpasswordpassword\n",
    "zeros as hex": b"00000000000000000000000000000000\n",
    "ff as hex": b"ff" * 32,
    "counting hex": bytes(range(32)).hex().encode(),
    "pattern as hex": (b"0123456789abcdef" * 4),
    "lowercase base64": b"correcthorsebatterystaplewithmor",
    "printable text as hex": b"hunter2hunter3hunter4hunter5!!xy".hex().encode(),
    "printable text as base64": base64.b64encode(b"my secret pseudonymisation key!!"),
    "raw repeated bytes": b"\x01\x02\x03\xfe" * 8,
    "raw few values": bytes([0x80, 0x81, 0x82] * 5 + [0x83]) * 2,
}


@pytest.mark.parametrize("content", WEAK_KEY_FILES.values(), ids=WEAK_KEY_FILES.keys())
def test_a_key_that_is_not_random_is_refused_with_a_reason(tmp_path, content):
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(pv.KeyFileError, match="does not hold a random key: ") as err:
        pv.load_key(path)
    assert str(path) in str(err.value) and "keygen" in str(err.value)


def test_the_cli_refuses_a_weak_key_in_one_line(tmp_path):
    key = tmp_path / "key"
    key.write_text("passwordpasswordpasswordpassword\n")
    r = run("convert", DATA, "--out", tmp_path / "ds", "--pseudonymize", "--key-file", key)
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1
    assert "random" in r.stderr and not (tmp_path / "ds").exists()


def test_library_functions_refuse_a_weak_key_too():
    with pytest.raises(pv.PrivacyOptionsError, match="not random"):
        pv.pseudonymize_number(NUMBER, bytes(32))


def test_keygen_output_always_passes(tmp_path):
    for i in range(200):
        path = tmp_path / f"k{i}"
        pv.generate_key(path)
        assert len(pv.load_key(path)) == 32


def test_random_keys_of_every_accepted_size_and_encoding_pass(tmp_path):
    import random

    rng = random.Random(11)  # fixed: the test cannot flake on a one-in-a-million key
    path = tmp_path / "key"
    for size in (16, 24, 32, 64):
        for encode in (bytes.hex, lambda b: base64.b64encode(b).decode()):
            for _ in range(50):
                key = rng.randbytes(size)
                path.write_text(encode(key) + "\n")
                assert pv.load_key(path) == key


def test_an_endless_or_huge_key_file_is_refused_without_reading_it_all(tmp_path):
    with pytest.raises(pv.KeyFileError, match="is a device, not a regular file"):
        pv.load_key("/dev/zero")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(pv.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(pv.KeyFileError, match="larger than"):
        pv.load_key(big)
    big.write_bytes(os.urandom(pv.MAX_KEY_FILE_BYTES))
    assert len(pv.load_key(big)) == pv.MAX_KEY_FILE_BYTES


@given(st.binary(max_size=64) | st.lists(st.sampled_from([b"a", b"b", b"ab"]),
                                         max_size=20).map(b"".join))
def test_weak_key_patterns_are_the_brute_force_ones(data):
    brute = next((p for p in range(1, len(data) // 2 + 1) if data[p:] == data[:-p]), None)
    reason = pv.weak_key_reason(data) if data else None
    if brute is not None:
        assert reason == f"its bytes repeat a pattern of {brute} byte{'s' if brute > 1 else ''}"
    else:  # no pattern: any other reason may hold, never a pattern
        assert reason is None or "repeat a pattern" not in reason, reason


# -- a key file is a regular file: a named pipe used to hang the command forever -----------


def _load_key_within(path, unblock=None, seconds: float = 10.0):
    """load_key(path) in a thread: its outcome, or a failure if it is still blocked.

    A blocked thread is freed by `unblock` (default: a writer opening and closing the
    pipe, which ends a blocked open and then the read) so that the test run goes on.
    """
    import threading

    outcome: list[BaseException | bytes] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_outcome_of(pv.load_key, path)), daemon=True
    )
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if unblock is None:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        else:
            unblock()
        worker.join(seconds)
        pytest.fail(f"load_key({path}) still blocked after {seconds} s")
    return outcome[0]


def _outcome_of(function, *args):
    try:
        return function(*args)
    except BaseException as exc:  # noqa: BLE001 - handed back to the test
        return exc


def test_a_named_pipe_as_key_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "kf"
    os.mkfifo(fifo)
    got = _load_key_within(fifo)
    assert isinstance(got, pv.KeyFileError), got
    assert str(got) == (f"{fifo}: is a named pipe (FIFO), not a regular file; a key file is a "
                        "file (make one with `smsanalytics keygen FILE`)")  # fmt: skip


def test_a_named_pipe_with_a_writer_is_refused_too_and_its_data_left_unread(tmp_path):
    fifo = tmp_path / "kf"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer open it
    writer = os.open(fifo, os.O_WRONLY)
    closed = []

    def close_writer():
        closed.append(writer)
        os.close(writer)

    try:
        os.write(writer, KEY.hex().encode())
        got = _load_key_within(fifo, close_writer)
        assert isinstance(got, pv.KeyFileError) and "named pipe" in str(got), got
        assert os.read(reader, 100) == KEY.hex().encode()  # nothing was taken from it
    finally:
        if not closed:
            os.close(writer)
        os.close(reader)


@pytest.mark.parametrize("kind", ["directory", "device", "socket"])
def test_a_key_file_that_is_not_a_regular_file_is_refused_by_its_kind(tmp_path, kind):
    import socket

    path = tmp_path / "kf"
    if kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = "/dev/null"
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    with pytest.raises(pv.KeyFileError, match=f"is a {kind}, not a regular file"):
        pv.load_key(path)


def test_a_link_to_a_key_file_is_read(tmp_path):
    (tmp_path / "real").write_text(KEY.hex())
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert pv.load_key(tmp_path / "link") == KEY


def test_the_cli_refuses_a_named_pipe_key_file_in_one_line(tmp_path):
    import subprocess

    fifo = tmp_path / "kf"
    os.mkfifo(fifo)
    r = run_process("convert", DATA / "webhook-payload.json", "--out", tmp_path / "d",
                    "--pseudonymize", "--key-file", fifo, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.endswith(f"{fifo}: is a named pipe (FIFO), not a regular file; a key file is a "
                         "file (make one with `smsanalytics keygen FILE`)")  # fmt: skip
    assert not (tmp_path / "d").exists()
