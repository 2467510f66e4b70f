"""The webhook receiver: archive lines, the archive writer, the app in process, a real server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # starlette would rather have httpx2: not on this machine
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import smsanalytics
from smsanalytics.errors import ArgumentError
from smsanalytics.receiver import ReceiverConfig, create_app, parse_duration
from smsanalytics.receiver_archive import (
    CLOSED_SUFFIX,
    OPEN_SUFFIX,
    ArchiveWriter,
    finish_leftovers,
    format_line,
    iter_archive_files,
    parse_line,
)

from .conftest import DATA, command, run, run_process

ENVELOPE = (DATA / "webhook-envelope.json").read_bytes()
PAYLOAD = (DATA / "webhook-payload.json").read_bytes()
ACTIONS_LINE = (DATA / "actions-log-line.txt").read_bytes().strip()
SECRET = b"0123456789abcdef-secret"
T0 = dt.datetime(2026, 12, 2, 6, 11, 56, 123456, tzinfo=dt.UTC)


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def archived(root: Path) -> list[bytes]:
    """Every line of the archive's closed files."""
    lines = []
    for path in iter_archive_files(root):
        with open(path, "rb") as fh:
            lines += zstandard.ZstdDecompressor().stream_reader(fh).read().splitlines()
    return lines


# -- archive lines ------------------------------------------------------------------------


def test_line_keeps_the_json_body_and_says_when_and_which_event():
    line = format_line(T0, "ev-1", ENVELOPE)
    assert line.startswith(b'2026-12-02T06:11:56.123456Z callr-webhook event_id="ev-1" {')
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    event = parse_line(line)
    assert (event.received_at, event.event_id, event.stored_as) == (T0, "ev-1", "json")
    assert json.loads(event.body) == json.loads(ENVELOPE)  # same content, one line
    assert event.body == ENVELOPE.replace(b"\n", b" ")


def test_a_one_line_json_body_is_stored_byte_for_byte():
    body = b'{"cost": 1.000, "n": 1e400, "s": "a\\u00e9\xc3\xa9"}'  # floats kept as written
    assert parse_line(format_line(T0, None, body)).body == body


@pytest.mark.parametrize(
    "body, stored_as",
    [
        (b"hello {not json}", "text"),
        (b'[{"sid": "x", "from": "+33600000000", "to": "+33600000001"}]', "text"),
        (b'"a JSON string {}"', "text"),
        (b'{"truncated": ', "text"),
        (b"\xff\xfe{bad utf-8}", "base64"),
        (b"", "text"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "text"),  # deeper than Python reads
    ],
)
def test_other_bodies_are_stored_exactly_with_no_json_object_on_the_line(body, stored_as):
    line = format_line(T0, "e{1}", body)
    assert b"{" not in line and b"}" not in line
    event = parse_line(line)
    assert (event.body, event.stored_as, event.event_id) == (body, stored_as, "e{1}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4).map(
            lambda d: json.dumps(d, indent=1, ensure_ascii=False).encode("utf-8")
        ),
    ),
    event_id=st.none() | st.text(max_size=40),
)
def test_any_body_makes_one_line_that_reads_back(body, event_id):
    line = format_line(T0, event_id, body)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    event = parse_line(line)
    assert event.event_id == event_id
    if event.stored_as == "json":
        assert isinstance(json.loads(event.body), dict)
        assert event.body == body.replace(b"\r", b" ").replace(b"\n", b" ")
    else:
        assert event.body == body
        assert b"{" not in line  # convert can never read part of it as a record


def test_parse_line_refuses_other_text():
    with pytest.raises(ValueError):
        parse_line(ACTIONS_LINE)


def test_convert_reads_archive_lines_with_no_option(tmp_path):
    lines = [
        format_line(T0, "a", ENVELOPE),
        format_line(T0, "a", ENVELOPE.replace(b'"try": 0', b'"try": 1')),  # a retry
        format_line(T0, None, PAYLOAD),
        format_line(T0, None, ACTIONS_LINE[ACTIONS_LINE.index(b"{") :]),
        format_line(T0, None, b'{"sms": ' + ACTIONS_LINE[ACTIONS_LINE.index(b"{") :] + b"}"),
        format_line(T0, "b", b"not json"),
        format_line(T0, "c", b'{"id": "x", "type": "v2.call.ended", "payload": {}}'),
    ]
    path = tmp_path / "archive" / "x.log"
    path.parent.mkdir()
    path.write_bytes(b"".join(lines))
    s = smsanalytics.convert([tmp_path / "archive"], tmp_path / "ds", quiet=True)
    assert s.records == 7
    assert s.rejected == 2
    assert s.reject_reasons.keys() == {"no JSON object on the line", "not an inbound SMS"}
    assert s.written + s.duplicates == 5
    assert s.written == len({b"callrsid"})  # every good record here is the sid callrsid



def test_convert_takes_the_time_of_receipt_when_a_record_has_no_time_of_its_own(tmp_path):
    sms = json.loads(ACTIONS_LINE[ACTIONS_LINE.index(b"{") :])
    for key in ("deliveredAt", "createdAt", "updatedAt", "sentAt"):
        sms[key] = None
    timeless = json.dumps(sms).encode()
    envelope = json.loads(ENVELOPE)
    envelope["payload"]["sid"] = "other"
    lines = [
        format_line(T0, None, timeless),  # no time at all: the receipt's
        format_line(T0, "e", json.dumps(envelope).encode()),  # keeps its own `at`
    ]
    plain_log = b"2026-12-02T06:11:56.123456Z SMS received " + timeless.replace(
        b"callrsid", b"fromlog"
    )  # not a receiver line: no time taken from the text
    (tmp_path / "a.log").write_bytes(b"".join(lines) + plain_log + b"\n")
    s = smsanalytics.convert([tmp_path / "a.log"], tmp_path / "ds", quiet=True)
    assert (s.written, s.rejected) == (3, 0)
    df = smsanalytics.read_dataset(tmp_path / "ds").set_index("sid")
    assert str(df.loc["callrsid", "event_at"]) == "2026-12-02 06:11:56.123456+00:00"
    assert str(df.loc["other", "event_at"]) == "2025-04-07 13:29:30.765000+00:00"
    assert str(df.loc["fromlog", "event_at"]) in ("NaT", "None", "<NA>")
    months = sorted(p.name for p in (tmp_path / "ds").glob("**/month=*"))
    assert "month=2026-12" in months and "month=unknown" in months

# -- the archive writer ---------------------------------------------------------------------


def write_lines(writer: ArchiveWriter, lines: list[bytes], close: bool = True) -> None:
    async def go() -> None:
        await writer.start()
        await asyncio.gather(*(writer.append(line) for line in lines))
        if close:
            await writer.close()

    asyncio.run(go())


def now_line(i: int) -> bytes:
    return format_line(dt.datetime.now(dt.UTC), f"e{i}", b'{"i": %d}' % i)


def test_concurrent_appends_share_syncs_and_all_land(tmp_path):
    syncs = []
    writer = ArchiveWriter(tmp_path, on_sync=syncs.append)
    lines = [now_line(i) for i in range(500)]
    write_lines(writer, lines)
    assert sorted(archived(tmp_path)) == sorted(x.rstrip(b"\n") for x in lines)
    assert len(syncs) < len(lines)  # group commit
    assert not list(iter_archive_files(tmp_path, OPEN_SUFFIX))


def test_files_rotate_by_size_into_parts_in_order(tmp_path):
    writer = ArchiveWriter(tmp_path, max_bytes=200)

    async def go() -> None:
        await writer.start()
        for i in range(20):  # one at a time: each append may rotate
            await writer.append(now_line(i))
        await writer.close()

    asyncio.run(go())
    files = list(iter_archive_files(tmp_path))
    assert len(files) > 3
    assert all(f.name.endswith(CLOSED_SUFFIX) for f in files)
    got = [json.loads(parse_line(x).body)["i"] for x in archived(tmp_path)]
    assert got == list(range(20))  # names sort in the order of writing


def test_a_later_hour_opens_a_new_file(tmp_path):
    writer = ArchiveWriter(tmp_path)
    lines = [format_line(T0, None, b"{}"), format_line(T0 + dt.timedelta(hours=1), None, b"{}")]
    write_lines(writer, lines)
    names = [p.name[:13] for p in iter_archive_files(tmp_path)]
    assert names == ["2026-12-02T06", "2026-12-02T07"]
    assert all(p.parent == tmp_path / "2026" / "12" / "02" for p in iter_archive_files(tmp_path))


def test_an_idle_file_is_closed_when_its_age_is_over(tmp_path):
    writer = ArchiveWriter(tmp_path, max_age=0.05)

    async def go() -> tuple[int, int]:
        await writer.start()
        await writer.append(now_line(0))
        await writer.rotate_if_due()  # too young
        young = len(list(iter_archive_files(tmp_path, OPEN_SUFFIX)))
        await asyncio.sleep(0.1)
        await writer.rotate_if_due()
        await asyncio.get_running_loop().run_in_executor(writer._compressor, lambda: None)
        closed = len(list(iter_archive_files(tmp_path)))
        await writer.close()
        return young, closed

    assert asyncio.run(go()) == (1, 1)
    assert not list(iter_archive_files(tmp_path, OPEN_SUFFIX))


def test_a_restart_finishes_a_crashed_file_without_its_torn_line(tmp_path):
    day = tmp_path / "2026" / "12" / "02"
    day.mkdir(parents=True)
    crashed = day / f"2026-12-02T06.x.000001{OPEN_SUFFIX}"
    crashed.write_bytes(format_line(T0, "a", b"{}") + b'2026-12-02T06:11:57.000000Z callr-we')
    closed = day / f"2026-12-02T05.x.000001{CLOSED_SUFFIX}"
    closed.write_bytes(b"not touched")
    before = closed.stat()
    write_lines(ArchiveWriter(tmp_path), [now_line(1)])
    assert not crashed.exists()
    finished = day / f"2026-12-02T06.x.000001{CLOSED_SUFFIX}"
    with open(finished, "rb") as fh:
        assert zstandard.ZstdDecompressor().stream_reader(fh).read() == format_line(
            T0, "a", b"{}"
        )
    after = closed.stat()
    assert (after.st_ino, after.st_mtime_ns, closed.read_bytes()) == (
        before.st_ino,
        before.st_mtime_ns,
        b"not touched",
    )


def test_a_file_another_live_server_writes_is_left_alone(tmp_path):
    path = tmp_path / f"2026-12-02T06.y.000001{OPEN_SUFFIX}"
    path.write_bytes(b"x\n")
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert finish_leftovers(tmp_path) == []
    assert path.exists()
    assert len(finish_leftovers(tmp_path)) == 1 and not path.exists()


class FailingWriter(ArchiveWriter):
    """Fails the next `fail` writes with ENOSPC after writing half the data (a torn write)."""

    fail = 0

    def _write_synced(self, f, data):
        if self.fail:
            self.fail -= 1
            os.write(f.fd, data[: len(data) // 2])
            self._retire("write failure")
            raise OSError(errno.ENOSPC, "No space left on device")
        return super()._write_synced(f, data)


def test_a_failed_write_fails_its_batch_and_the_next_one_succeeds(tmp_path):
    writer = FailingWriter(tmp_path)

    async def go() -> list[object]:
        await writer.start()
        await writer.append(now_line(0))
        writer.fail = 1
        results = await asyncio.gather(writer.append(now_line(1)), return_exceptions=True)
        healthy_after_failure = writer.healthy
        await writer.append(now_line(2))
        await writer.close()
        return [*results, healthy_after_failure, writer.healthy]

    failed, healthy_after_failure, healthy = asyncio.run(go())
    assert isinstance(failed, OSError) and failed.errno == errno.ENOSPC
    assert (healthy_after_failure, healthy) == (False, True)
    got = [json.loads(parse_line(x).body)["i"] for x in archived(tmp_path)]
    assert 0 in got and 2 in got  # the failed one may be torn, never acknowledged


# -- the app, in process --------------------------------------------------------------------


@pytest.fixture
def app_client(tmp_path):
    def make(**options):
        options.setdefault("secrets", (SECRET,))
        app = create_app(tmp_path / "archive", **options)
        return TestClient(app)

    return make


def post(client, body: bytes, sig: str | None = "auto", path: str = "/", **headers):
    if sig == "auto":
        sig = sign(body)
    if sig is not None:
        headers["X-CALLR-HmacSignature"] = sig
    return client.post(path, content=body, headers=headers)


def test_signed_events_are_stored_and_wrong_ones_refused(app_client, tmp_path):
    with app_client() as c:
        assert post(c, ENVELOPE, **{"X-CALLR-EventId": "ev-1"}).status_code == 200
        assert post(c, ENVELOPE, sig=None).status_code == 401
        assert post(c, ENVELOPE, sig=sign(ENVELOPE, b"other")).status_code == 401
        assert post(c, ENVELOPE, sig="not base64!").status_code == 401
        assert post(c, ENVELOPE + b" ", sig=sign(ENVELOPE)).status_code == 401
        metrics = c.get("/metrics").text
    lines = archived(tmp_path / "archive")
    assert len(lines) == 1 and parse_line(lines[0]).event_id == "ev-1"
    assert 'smsanalytics_receiver_requests_total{outcome="unauthorized"} 4.0' in metrics
    assert 'smsanalytics_receiver_requests_total{outcome="stored"} 1.0' in metrics
    assert "smsanalytics_receiver_fsync_seconds_count 1.0" in metrics


def test_two_secrets_during_a_rotation(app_client, tmp_path):
    with app_client(secrets=(b"old-secret", b"new-secret")) as c:
        assert post(c, PAYLOAD, sig=sign(PAYLOAD, b"old-secret")).status_code == 200
        assert post(c, PAYLOAD, sig=sign(PAYLOAD, b"new-secret")).status_code == 200
        assert post(c, PAYLOAD, sig=sign(PAYLOAD, b"third")).status_code == 401
    assert len(archived(tmp_path / "archive")) == 2


def test_path_token_and_prefix(app_client, tmp_path):
    token = "tok_" + "x" * 20
    with app_client(secrets=(), token=token, prefix="/callr") as c:
        assert post(c, ACTIONS_LINE, sig=None, path=f"/callr/{token}").status_code == 200
        assert post(c, ACTIONS_LINE, sig=None, path="/callr/tok_wrong").status_code == 401
        assert post(c, ACTIONS_LINE, sig=None, path="/callr/").status_code == 401
        assert post(c, ACTIONS_LINE, sig=None, path=f"/{token}").status_code == 404
    assert len(archived(tmp_path / "archive")) == 1


def test_anything_authenticated_is_stored(app_client, tmp_path):
    bodies = [b"plain text", b"\x00\xff binary", b"[1, 2]", b""]
    with app_client() as c:
        for body in bodies:
            assert post(c, body).status_code == 200
    assert [parse_line(x).body for x in archived(tmp_path / "archive")] == bodies


def test_limits_methods_and_unknown_paths(app_client, tmp_path):
    with app_client(max_body=100) as c:
        assert post(c, b"{" + b" " * 200 + b"}").status_code == 413

        def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b"x" * 50

        r = c.post("/", content=chunks(), headers={"X-CALLR-HmacSignature": "x"})
        assert r.status_code == 413
        r = c.get("/")
        assert (r.status_code, r.headers["allow"]) == (405, "POST")
        assert c.put("/", content=b"{}").status_code == 405
        assert c.post("/healthz").status_code == 405
        assert c.post("/elsewhere", content=b"{}").status_code == 404
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").text == "ready\n"
    assert archived(tmp_path / "archive") == []


def test_a_body_too_slow_to_arrive_gets_408_and_nothing_is_stored(tmp_path):
    app = create_app(tmp_path, secrets=(SECRET,), body_timeout=0.2)
    sent = []

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(30)  # the rest never comes
        return {"type": "http.disconnect"}

    async def go():
        messages = []

        async def send(message):
            messages.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/", "raw_path": b"/",
            "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080), "headers": [(b"content-length", b"50")],
        }  # fmt: skip
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(app(scope, receive, send), 10)
        return messages

    messages = asyncio.run(go())
    assert messages[0]["status"] == 408
    assert archived(tmp_path) == []


def test_a_write_failure_answers_503_and_the_server_goes_on(tmp_path):
    writer = FailingWriter(tmp_path / "archive")
    with TestClient(create_app(tmp_path / "archive", secrets=(SECRET,), writer=writer)) as c:
        writer.fail = 1
        assert post(c, ENVELOPE).status_code == 503
        r = c.get("/readyz")
        assert r.status_code == 503 and "No space left" in r.text
        assert post(c, PAYLOAD).status_code == 200
        assert c.get("/readyz").status_code == 200
        assert 'outcome="unavailable"} 1.0' in c.get("/metrics").text
    bodies = [parse_line(x).body for x in archived(tmp_path / "archive")]
    assert PAYLOAD.replace(b"\n", b" ") in bodies


class BrokenWriter(ArchiveWriter):
    def _write_batch(self, lines):
        raise RuntimeError("a bug")


def test_an_unexpected_writer_error_answers_503_and_never_hangs(tmp_path):
    app = create_app(tmp_path, secrets=(SECRET,), writer=BrokenWriter(tmp_path))
    with TestClient(app) as c:
        assert post(c, PAYLOAD).status_code == 503
        assert post(c, PAYLOAD).status_code == 503  # the writer task is still there


def test_closed_files_are_converted_into_the_dataset(app_client, tmp_path):
    dataset = tmp_path / "ds"
    with app_client(dataset=dataset, convert_every=0.3) as c:
        assert post(c, ENVELOPE).status_code == 200
        assert post(c, b"not json").status_code == 200
        deadline = time.monotonic() + 60
        while not (tmp_path / "archive" / "_converted.txt").exists():
            assert time.monotonic() < deadline, "no conversion within 60 s"
            time.sleep(0.1)
        metrics = c.get("/metrics").text
    assert 'smsanalytics_receiver_conversions_total{outcome="ok"}' in metrics
    assert "smsanalytics_receiver_conversion_lag_seconds 0.0" in metrics
    df = smsanalytics.read_dataset(dataset)
    assert list(df["sid"]) == ["callrsid"]
    rejects = [json.loads(x) for f in (tmp_path / "ds.rejects").iterdir()
               for x in f.read_text().splitlines()]  # fmt: skip
    assert [r["reason"] for r in rejects] == ["no JSON object on the line"]


def test_readiness_needs_free_space(app_client):
    with app_client(min_free_bytes=1 << 62) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and "free" in r.text


def test_access_log_shows_no_body_number_or_token(app_client, caplog):
    token = "T" * 24
    with caplog.at_level(logging.INFO, "smsanalytics.receiver.access"), app_client(
        token=token
    ) as c:
        post(c, ENVELOPE, **{"X-CALLR-EventId": "ev-9"})
        post(c, ENVELOPE, sig=None, path=f"/{token}")
        post(c, ENVELOPE, sig=None, path="/wrong-token")
    text = caplog.text
    assert text.count("POST") == 3 and '"ev-9"' in text and "/<token>" in text
    for secret in (token, "+33639983040", "Hello world", "wrong-token"):
        assert secret not in text


def test_configuration_is_checked_at_the_door(tmp_path):
    with pytest.raises(ArgumentError, match="insecure-no-auth"):
        ReceiverConfig(tmp_path)
    with pytest.raises(ArgumentError, match="token"):
        ReceiverConfig(tmp_path, token="short")
    with pytest.raises(ArgumentError, match="prefix"):
        ReceiverConfig(tmp_path, insecure_no_auth=True, prefix="callr")
    assert ReceiverConfig(tmp_path, secrets=(b"s",), dataset=tmp_path / "d",
                          convert_every=60).max_file_age == 60  # fmt: skip
    assert parse_duration("90s") == 90 and parse_duration("1h") == 3600
    with pytest.raises(ArgumentError):
        parse_duration("0m")


# -- a real server process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path: Path, archive: Path, *extra: str, preexec=None):
    port = free_port()
    secret = tmp_path / "secret"
    secret.write_bytes(b"  " + SECRET + b"\n")  # surrounding white space is ignored
    proc = subprocess.Popen(
        command("serve", "--archive", archive, "--port", str(port), "--secret-file", secret,
                *extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(proc.stdout.read().decode()) from None
            time.sleep(0.05)


def test_real_server_stores_signed_events_and_closes_on_sigterm(tmp_path):
    archive = tmp_path / "archive"
    proc, url = start_server(tmp_path, archive, "--max-body", "4096")
    try:
        with httpx.Client(base_url=url) as c:
            ok = c.post("/", content=ENVELOPE, headers={"X-CALLR-HmacSignature": sign(ENVELOPE)})
            bad = c.post("/", content=PAYLOAD, headers={"X-CALLR-HmacSignature": sign(b"x")})
            big = c.post("/", content=b"{" + b" " * 5000 + b"}")
            text = c.post("/", content=b"oops", headers={"X-CALLR-HmacSignature": sign(b"oops")})
        assert [r.status_code for r in (ok, bad, big, text)] == [200, 401, 413, 200]
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as s:  # leaves mid-body
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    # uvicorn ends by raising the signal it caught again, once shut down cleanly
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out
    assert "Hello world" not in out and "+33639983040" not in out
    assert "Traceback" not in out
    assert not list(iter_archive_files(archive, OPEN_SUFFIX))
    s = smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    assert (s.records, s.written, s.rejected) == (2, 1, 1)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--insecure-no-auth"),
        (["--insecure-no-auth", "--keyfile", "k.pem"], "--keyfile 'k.pem': give --certfile"),
        (["--insecure-no-auth", "--convert-every", "soon"], "not a positive duration"),
    ],
)
def test_serve_options_are_checked_before_starting(tmp_path, args, message):
    r = run_process("serve", "--archive", tmp_path / "a", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_real_server_drops_clients_that_send_headers_too_slowly(tmp_path):
    proc, url = start_server(tmp_path, tmp_path / "archive", "--client-timeout", "1s")
    host, port = url.removeprefix("http://").split(":")
    try:
        silent = socket.create_connection((host, int(port)))
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and never the end of headers
        for s in (silent, slow):
            s.settimeout(20)
            assert s.recv(100) == b""  # closed by the server, well before 20 s
            s.close()
        assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_real_server_speaks_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    archive = tmp_path / "archive"
    port = free_port()
    proc = subprocess.Popen(
        command("serve", "--archive", archive, "--port", str(port), "--insecure-no-auth",
                "--certfile", cert, "--keyfile", key),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        trust = ssl.create_default_context(cafile=cert)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert c.post("/", content=PAYLOAD).status_code == 200
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)
        with pytest.raises(httpx.TransportError):  # no plain HTTP on that port
            httpx.post(f"http://127.0.0.1:{port}/", content=PAYLOAD)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(archived(archive)) == 1


def _tmpfs(path: Path, size: str) -> bool:
    """Mount a small tmpfs at `path` (root only); False if this machine does not allow it."""
    path.mkdir()
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)  # fmt: skip
    return r.returncode == 0


def test_real_server_on_a_full_disk_answers_503_and_keeps_running(tmp_path):
    """A tiny tmpfs fills up (where mounting is allowed; else a file size limit)."""
    archive = tmp_path / "archive"
    mounted = _tmpfs(archive, "256k")
    preexec = None
    if not mounted:
        import resource

        def preexec():  # writes past 64 kB fail (EFBIG), as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    proc, url = start_server(tmp_path, archive, "--min-free-mb", "0", preexec=preexec)
    try:
        statuses = []
        with httpx.Client(base_url=url) as c:
            for _ in range(20):
                # Incompressible: closing a file must not free the space it takes.
                body = b'{"filler": "' + base64.b64encode(os.urandom(22_000)) + b'"}'
                statuses.append(
                    c.post("/", content=body, headers={"X-CALLR-HmacSignature": sign(body)})
                    .status_code
                )
            assert 503 in statuses and statuses[0] == 200
            assert c.get("/healthz").status_code == 200
            if mounted:  # still full (a file size limit lets each new part hold a little)
                assert c.get("/readyz").status_code == 503
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        if mounted:
            subprocess.run(["umount", str(archive)], check=False)
    assert statuses.count(200) >= 1


class _Listening(Exception):
    """Raised instead of serving: the receiver got as far as listening."""


def _serve_cli(monkeypatch, tmp_path, archive, dataset):
    """``smsanalytics serve --archive A --dataset D`` in process, stopped where it would
    listen (raising ``_Listening``)."""
    import uvicorn

    def listen(self):
        raise _Listening

    monkeypatch.setattr(uvicorn.Server, "run", listen)
    monkeypatch.chdir(tmp_path)
    return run("serve", "--archive", archive, "--dataset", dataset, "--insecure-no-auth",
               "--port", "0")


def _make(tmp_path, what: str) -> None:
    """Lay out the folders of a start-up case (paths relative to tmp_path)."""
    if what == "archive with a file":
        (tmp_path / "arch").mkdir()
        (tmp_path / "arch" / "x.txt").write_text("x")
    elif what == "a file":
        (tmp_path / "ds").write_text("notes")
    elif what == "a folder of other things":
        (tmp_path / "ds").mkdir()
        (tmp_path / "ds" / "notes.txt").write_text("keep me")
    elif what == "a link to a dataset":
        smsanalytics.convert([DATA / "webhook-envelope.json"], tmp_path / "real", quiet=True)
        (tmp_path / "ds").symlink_to(tmp_path / "real")
    elif what == "partitioned otherwise":
        smsanalytics.convert([DATA / "webhook-envelope.json"], tmp_path / "ds", quiet=True,
                             partition_by="none")
    elif what == "rejects folder is a file":
        (tmp_path / "ds.rejects").write_text("x")
    elif what == "a dataset":
        smsanalytics.convert([DATA / "webhook-envelope.json"], tmp_path / "ds", quiet=True)
    elif what == "an empty folder":
        (tmp_path / "ds").mkdir()


@pytest.mark.parametrize(
    "archive, dataset, layout, message",
    [
        ("arch", "arch", "", "is the archive folder"),
        ("arch", "arch", "archive with a file", "is the archive folder"),
        ("arch", "arch/ds", "", "is inside the archive"),
        ("ds/arch", "ds", "", "holds the archive"),
        ("arch", "ds", "a file", "exists and is not a directory"),
        ("arch", "ds", "a folder of other things", "is not a smsanalytics dataset"),
        ("arch", "ds", "a link to a dataset", "is a symbolic link"),
        ("arch", "ds", "partitioned otherwise", "is partitioned by 'none'"),
        ("arch", "ds", "rejects folder is a file", "ds.rejects: exists and is not a directory"),
    ],
)
def test_serve_refuses_a_dataset_it_could_never_convert_into_at_start(
    monkeypatch, tmp_path, archive, dataset, layout, message
):
    _make(tmp_path, layout)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = _serve_cli(monkeypatch, tmp_path, archive, dataset)
    assert r.exit_code == 2, r.output
    [line] = r.stderr.splitlines()
    assert line.startswith("smsanalytics: error: ") and message in line, line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("layout", ["", "an empty folder", "a dataset"])
def test_serve_starts_with_a_dataset_it_can_convert_into(monkeypatch, tmp_path, layout):
    _make(tmp_path, layout)
    with pytest.raises(_Listening):
        _serve_cli(monkeypatch, tmp_path, "arch", "ds")


@pytest.mark.parametrize("option", ["--secret-file", "--token-file"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_secret_or_token_file_that_is_not_a_regular_file_is_one_line(tmp_path, option, kind):
    # A FIFO used to block serve forever, /dev/zero to eat memory without end.
    if kind == "fifo":
        path = tmp_path / "ff"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    proc = run_process("serve", "--archive", tmp_path / "arc", option, path, "--port", "1")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a regular file" in lines[0], proc.stderr
    assert not (tmp_path / "arc").exists()
