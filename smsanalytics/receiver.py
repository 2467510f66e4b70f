"""A durable receiver for Callr's webhooks: every event archived before it is acknowledged.

This module owns HTTP: routes, authentication, limits, metrics, access logs, and the
periodic conversion of closed archive files into a dataset. The files themselves are
:mod:`smsanalytics.receiver_archive`'s.

Endpoints (under an optional prefix):

* ``POST /``: an event signed with ``X-CALLR-HmacSignature`` (base64 of the HMAC of the raw
  body keyed with the webhook's secret); ``POST /<token>`` for pushes that cannot sign
  (Callr Actions' ``fetch@v2``). 200 once the event is on disk; 401 (nothing stored) when
  authentication fails; 413 over the body limit; 408 when the body is too slow to arrive;
  503 when it could not be written (the sender retries).
* ``GET /healthz`` (the process serves), ``GET /readyz`` (the archive is writable and its
  disk has room), ``GET /metrics`` (Prometheus text format).

Anything authenticated is stored, JSON or not, SMS or not: ``convert`` reports what it
cannot read as a reject with its reason. The access log names the route, never the token,
a body or a phone number.

Needs the ``serve`` extra: ``pip install 'smsanalytics[serve]'``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError, SmsAnalyticsError
from .receiver_archive import (
    ArchiveWriteError,
    ArchiveWriter,
    format_line,
    iter_archive_files,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "ReceiverConfig",
    "create_app",
    "serve",
    "read_secret_file",
    "parse_duration",
    "SIGNATURE_HEADER",
    "EVENT_ID_HEADER",
]

log = logging.getLogger("smsanalytics.receiver")
access_log = logging.getLogger("smsanalytics.receiver.access")

#: Header holding the base64 HMAC of the body.
SIGNATURE_HEADER = "x-callr-hmacsignature"
#: Header holding the event id (the same on every retry of an event).
EVENT_ID_HEADER = "x-callr-eventid"
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]{16,256}")
_HASHES = ("sha256", "sha512", "sha1")
_OUTCOMES = (
    "stored",
    "unauthorized",
    "too_large",
    "timeout",
    "unavailable",
    "method_not_allowed",
    "not_found",
    "disconnected",
)


def parse_duration(text: str, name: str = "duration") -> float:
    """Seconds in a duration such as ``90``, ``90s``, ``5m`` or ``1h``.

    Raises
    ------
    ArgumentError
        If `text` is not a positive duration.

    Examples
    --------
    >>> parse_duration("5m")
    300.0
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if m is None or float(m[1]) <= 0:
        raise ArgumentError(name, text, "not a positive duration such as 90s, 5m or 1h")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


#: A secret or token file is one line; anything larger is not one.
MAX_SECRET_FILE_BYTES = 4096


def read_secret_file(path: str | Path, what: str = "secret") -> bytes:
    """The secret in `path`, without surrounding white space (as pasted from the portal).

    Only a regular file of at most :data:`MAX_SECRET_FILE_BYTES` is read: a named pipe
    or a device (``/dev/zero``) is refused by its kind, never read.

    Raises
    ------
    ArgumentError
        If the file is not a regular file, cannot be read, is too large or holds only
        white space.
    """
    from .errors import InputError
    from .paths import read_regular_file

    try:
        data = read_regular_file(path, MAX_SECRET_FILE_BYTES)
    except InputError as exc:
        raise ArgumentError(f"{what} file", str(path), exc.reason) from exc
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ArgumentError(f"{what} file", str(path),
                            f"is larger than {MAX_SECRET_FILE_BYTES:,} bytes; a secret is a line")
    data = data.strip()
    if not data:
        raise ArgumentError(f"{what} file", str(path), "is empty")
    return data


@dataclass(frozen=True)
class ReceiverConfig:
    """What a receiver does; validated when made, so the app only gets valid values.

    Attributes
    ----------
    archive : Path
        Archive directory.
    secrets : tuple of bytes
        HMAC secrets; a signature made with any of them is accepted (two during a
        rotation).
    token : str, optional
        Path token: ``POST <prefix>/<token>`` is accepted without a signature.
    insecure_no_auth : bool
        Accept unauthenticated events (needed when neither secrets nor token are given).
    hash_name : str
        HMAC hash: ``sha256`` (Callr's default), ``sha512`` or ``sha1``.
    prefix : str
        Path prefix of every route ('' or like ``/callr``).
    max_body : int
        Largest body accepted [bytes].
    body_timeout : float
        Time allowed to receive a body, and (with :func:`serve`) a request's headers [s].
    min_free_bytes : int
        ``/readyz`` fails below this much free disk space [bytes].
    max_file_bytes : int
        Archive files are closed at this size [bytes].
    max_file_age : float
        Archive files are closed at this age even within their hour [s].
    dataset : Path, optional
        Dataset kept current from the closed archive files.
    convert_every : float
        Seconds between conversions into `dataset` [s].
    access_log : bool
        Log one line per request (route, status, size, duration; no body, no token).
    """

    archive: Path
    secrets: tuple[bytes, ...] = ()
    token: str | None = None
    insecure_no_auth: bool = False
    hash_name: str = "sha256"
    prefix: str = ""
    max_body: int = 1 << 20
    body_timeout: float = 10.0
    min_free_bytes: int = 100 << 20
    max_file_bytes: int = 64 << 20
    max_file_age: float = 3600.0
    dataset: Path | None = None
    convert_every: float = 300.0
    access_log: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "archive", Path(self.archive))
        if self.dataset is not None:
            object.__setattr__(self, "dataset", Path(self.dataset))
            # Files close at least as often as they are converted: events reach the
            # dataset within about two periods.
            object.__setattr__(self, "max_file_age", min(self.max_file_age, self.convert_every))
        if not self.secrets and self.token is None and not self.insecure_no_auth:
            raise ArgumentError(
                "authentication",
                "none",
                "give --secret-file or --token-file (or --insecure-no-auth to accept anyone)",
            )
        if any(not s for s in self.secrets):
            raise ArgumentError("secret", "", "is empty")
        if self.token is not None and not _TOKEN_CHARS.fullmatch(self.token):
            raise ArgumentError(
                "token", "(hidden)", "needs 16 to 256 of the characters A-Z a-z 0-9 . _ ~ -"
            )
        if self.hash_name not in _HASHES:
            raise ArgumentError("hash", self.hash_name, f"not one of {', '.join(_HASHES)}")
        if self.prefix and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", self.prefix):
            raise ArgumentError("prefix", self.prefix, "must look like /callr or /hooks/callr")
        for name in ("max_body", "max_file_bytes"):
            if getattr(self, name) <= 0:
                raise ArgumentError(name, getattr(self, name), "must be positive")
        for name in ("body_timeout", "max_file_age", "convert_every"):
            if getattr(self, name) <= 0:
                raise ArgumentError(name, getattr(self, name), "must be positive")

    def signature_ok(self, body: bytes, header: str | None) -> bool:
        """Whether `header` is the base64 HMAC of `body` under one of the secrets."""
        if header is None:
            return False
        try:
            given = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        ok = False
        for secret in self.secrets:  # every secret is tried: no timing hint of which
            ok |= hmac.compare_digest(hmac.new(secret, body, self.hash_name).digest(), given)
        return ok


class _Metrics:
    """The receiver's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "smsanalytics_receiver_requests",
            "Webhook requests by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in _OUTCOMES:
            self.requests.labels(outcome)
        self.bytes = Counter(
            "smsanalytics_receiver_stored_bytes",
            "Bytes of request bodies stored.",
            registry=self.registry,
        )
        self.fsync = Histogram(
            "smsanalytics_receiver_fsync_seconds",
            "Duration of one group commit (write and fdatasync).",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.lag = Gauge(
            "smsanalytics_receiver_conversion_lag_seconds",
            "Age of the oldest closed archive file not yet in the dataset (0: none).",
            registry=self.registry,
        )
        self.conversions = Counter(
            "smsanalytics_receiver_conversions",
            "Conversions of closed archive files into the dataset, by outcome.",
            ["outcome"],
            registry=self.registry,
        )


class _Feeder:
    """Convert closed archive files into the dataset, a batch every period.

    Each conversion runs ``smsanalytics convert`` in a child process (the library's
    convert, which holds the dataset's one-writer lock and swaps versions atomically), so
    that its CPU and memory stay out of the serving process. Converted files are listed
    in ``<archive>/_converted.txt``; a file converted twice (a crash between the
    conversion and that note) adds nothing, as a conversion is idempotent.
    """

    def __init__(self, archive: Path, dataset: Path, metrics: _Metrics) -> None:
        self.archive = archive
        self.dataset = dataset
        self.metrics = metrics
        self.state = archive / "_converted.txt"
        self.rejects = dataset.parent / f"{dataset.name}.rejects"
        self.pending: dict[Path, float] = {}  # closed file -> time.time() it was seen
        done = set(self._converted())
        for path in iter_archive_files(archive):
            if str(path.relative_to(archive)) not in done:
                self.pending[path] = path.stat().st_mtime
        self.proc: asyncio.subprocess.Process | None = None
        metrics.lag.set_function(self.lag)

    def _converted(self) -> list[str]:
        try:
            return self.state.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []

    def closed(self, path: Path) -> None:
        self.pending.setdefault(path, time.time())

    def lag(self) -> float:
        return max(0.0, time.time() - min(self.pending.values())) if self.pending else 0.0

    async def run_once(self) -> None:
        files = sorted(p for p in self.pending if p.exists())
        if not files:
            return
        self.rejects.mkdir(parents=True, exist_ok=True)
        rejects = self.rejects / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}.jsonl"
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smsanalytics", "convert", *map(str, files),
            "--out", str(self.dataset), "--rejects", str(rejects), "--json", "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await self.proc.communicate()
        code, self.proc = self.proc.returncode, None
        if code != 0:
            self.metrics.conversions.labels("failed").inc()
            first = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            log.error("conversion into %s failed (exit %s): %s", self.dataset, code, first[0])
            return
        summary = json.loads(out)
        with open(self.state, "a", encoding="utf-8") as fh:
            fh.writelines(f"{p.relative_to(self.archive)}\n" for p in files)
            fh.flush()
            os.fsync(fh.fileno())
        for p in files:
            self.pending.pop(p, None)
        self.metrics.conversions.labels("ok").inc()
        log.info(
            "converted %d files: %s records, %s written, %s rejected",
            len(files), summary.get("records"), summary.get("written"), summary.get("rejected"),
        )  # fmt: skip

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            # The conversion swaps the dataset atomically: stopping it leaves the old one.
            proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()


class _Receiver:
    """The request handling of one app (state shared by its requests)."""

    def __init__(self, config: ReceiverConfig, writer: ArchiveWriter | None) -> None:
        self.config = config
        self.metrics = _Metrics()
        self.feeder: _Feeder | None = None
        self.writer = writer or ArchiveWriter(
            config.archive,
            max_bytes=config.max_file_bytes,
            max_age=config.max_file_age,
        )
        self.writer.on_sync = self.metrics.fsync.observe
        self.writer.on_closed = self._closed
        self.token_path = f"{config.prefix}/{config.token}" if config.token else None
        self.tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def _closed(self, path: Path) -> None:
        # Called from the compressing thread: the feeder's state belongs to the loop.
        if self.feeder is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self.feeder.closed, path)

    # -- lifecycle ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.loop = asyncio.get_running_loop()
        await self.writer.start()
        if self.config.dataset is not None:
            self.feeder = _Feeder(self.config.archive, self.config.dataset, self.metrics)
            self.tasks.append(asyncio.create_task(self._feed()))
        self.tasks.append(asyncio.create_task(self._tick()))
        log.info("receiving into %s", self.config.archive)
        try:
            yield
        finally:
            for task in self.tasks:
                task.cancel()
            for task in self.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.feeder is not None:
                await self.feeder.stop()
            await self.writer.close()
            log.info("archive closed")

    async def _tick(self) -> None:
        """Close files whose hour or age is over, also when no event comes."""
        period = min(60.0, self.writer.max_age / 4)
        while True:
            await asyncio.sleep(period)
            try:
                await self.writer.rotate_if_due()
            except Exception:  # a long-running service logs and goes on
                log.exception("could not close an archive file")

    async def _feed(self) -> None:
        assert self.feeder is not None
        while True:
            await asyncio.sleep(self.config.convert_every)
            try:
                await self.writer.rotate_if_due()
                await self.feeder.run_once()
            except Exception:  # a long-running service logs and goes on
                self.metrics.conversions.labels("failed").inc()
                log.exception("conversion failed")

    # -- requests -------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        started = time.perf_counter()
        path = request.url.path
        prefix = self.config.prefix
        route = "other"
        if path in (f"{prefix}/", prefix or "/"):
            route = "/"
        elif self.token_path is not None and hmac.compare_digest(
            path.encode("utf-8", "surrogatepass"), self.token_path.encode("utf-8")
        ):
            route = "/<token>"
        elif path in ("/healthz", "/readyz", "/metrics"):
            route = path
        elif self.token_path is not None and path.startswith(f"{prefix}/"):
            route = "/<token>?"  # a wrong token: refused like a wrong signature
        status, text, headers, outcome, size = 200, "ok\n", {}, None, 0
        if route in ("/healthz", "/readyz", "/metrics"):
            if request.method not in ("GET", "HEAD"):
                status, text, headers = 405, "method not allowed\n", {"Allow": "GET, HEAD"}
                outcome = "method_not_allowed"
            elif route == "/readyz":
                status, text = self.readiness()
            elif route == "/metrics":
                return self.metrics_response()
        elif route == "other":
            status, text, outcome = 404, "not found\n", "not_found"
        elif request.method != "POST":
            status, text, headers = 405, "method not allowed\n", {"Allow": "POST"}
            outcome = "method_not_allowed"
        else:
            status, text, outcome, size = await self.receive(request, route)
        if outcome is not None:
            self.metrics.requests.labels(outcome).inc()
        if self.config.access_log:
            client = request.client.host if request.client else "-"
            event_id = request.headers.get(EVENT_ID_HEADER)
            access_log.info(
                "%s %s %s %d %d %.1fms %s",
                client, request.method, route, status, size,
                (time.perf_counter() - started) * 1000,
                json.dumps(event_id[:100]) if event_id is not None else "-",
            )  # fmt: skip
        return PlainTextResponse(text, status_code=status, headers=headers)

    async def receive(self, request: Request, route: str) -> tuple[int, str, str, int]:
        """Read, authenticate and store one event: (status, text, outcome, body size)."""
        from starlette.requests import ClientDisconnect

        config = self.config
        if route == "/<token>?":
            return 401, "unauthorized\n", "unauthorized", 0
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_body):
            return 413, "body too large\n", "too_large", 0
        try:
            body = await _read_body(request, config.max_body, config.body_timeout)
        except _TooLarge:
            return 413, "body too large\n", "too_large", 0
        except TimeoutError:
            return 408, "body too slow\n", "timeout", 0
        except ClientDisconnect:  # gone before the whole body came: nothing to store
            return 400, "incomplete body\n", "disconnected", 0
        if route == "/" and not (
            config.signature_ok(body, request.headers.get(SIGNATURE_HEADER))
            if config.secrets
            else config.insecure_no_auth and config.token is None
        ):
            return 401, "unauthorized\n", "unauthorized", len(body)
        # The time of receipt is taken and the line queued with no await between them:
        # lines reach the writer in order of receipt.
        line = format_line(
            dt.datetime.now(dt.UTC), request.headers.get(EVENT_ID_HEADER), body
        )
        try:
            await self.writer.append(line)
        except ArchiveWriteError:
            return 503, "not stored, retry later\n", "unavailable", len(body)
        self.metrics.bytes.inc(len(body))
        return 200, "ok\n", "stored", len(body)

    def readiness(self) -> tuple[int, str]:
        """(status, text) of ``/readyz``."""
        root = self.config.archive
        problems = []
        if not self.writer.healthy:
            problems.append(f"last write failed: {self.writer.last_error}")
        if not os.access(root, os.W_OK):
            problems.append("archive not writable")
        try:
            free = self.writer.free_bytes()
            if free < self.config.min_free_bytes:
                problems.append(f"{free / 1e6:.0f} MB free on the archive's disk")
        except OSError as exc:
            problems.append(f"archive: {exc.strerror}")
        if problems:
            return 503, "not ready: " + "; ".join(problems) + "\n"
        return 200, "ready\n"

    def metrics_response(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response

        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request's body, at most `limit` bytes, within `timeout` seconds."""
    chunks = []
    size = 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    archive: str | Path | ReceiverConfig,
    *,
    writer: ArchiveWriter | None = None,
    **options: Any,
) -> Starlette:
    """The receiver as an ASGI application, for any ASGI server.

    Parameters
    ----------
    archive : str, Path or ReceiverConfig
        Archive directory, or a whole configuration.
    writer : ArchiveWriter, optional
        Writer to use instead of one made from the configuration.
    **options
        Other :class:`ReceiverConfig` fields (``secrets``, ``token``, ``dataset``, ...).

    Returns
    -------
    starlette.applications.Starlette
        Run it in a single process (one worker): the archive's group commit and the
        periodic conversion belong to one process. Its lifespan must run (it opens and
        closes the archive).

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> app = create_app(f"{tmp.name}/archive", secrets=(b"s3cret",))
    >>> tmp.cleanup()
    """
    try:
        from starlette.applications import Starlette
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SmsAnalyticsError(
            "the receiver needs the serve extra: pip install 'smsanalytics[serve]'"
        ) from exc
    config = archive if isinstance(archive, ReceiverConfig) else ReceiverConfig(
        Path(archive), **options
    )
    receiver = _Receiver(config, writer)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(
        routes=[Route("/{path:path}", receiver.handle, methods=methods)],
        lifespan=receiver.lifespan,
    )
    app.state.receiver = receiver
    return app


def _http_protocol(header_timeout: float) -> Any:
    """uvicorn's httptools protocol, closing connections whose request headers are slow.

    uvicorn times out idle keep-alive connections but not a client that connects and then
    sends its headers slowly or never (a "slowloris"): each such connection would be held
    open for good. Here a request's headers must be complete within `header_timeout`
    seconds of the connection or of the request's first byte. (The body has its own limit,
    in the app.) Falls back to uvicorn's choice if httptools is not installed.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is in the serve extra
        return "auto"

    class Protocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Protocol


def _check_dataset(archive: Path, dataset: Path) -> None:
    """Refuse a dataset the periodic conversions could never write, before listening.

    What ``convert`` would refuse at each period (a file, a folder that is not a dataset,
    a link, a dataset partitioned otherwise; see :func:`smsanalytics.paths.check_output_path`
    and :func:`smsanalytics.dataset.check_writable`) is refused once, at start-up; so are
    the archive itself, a folder inside it or holding it (the archive's files and the
    dataset's versions would mix), and a rejects folder beside it that is not a folder.
    """
    from . import dataset as ds
    from .errors import OutputPathError
    from .paths import check_output_path

    real, real_archive = dataset.absolute().resolve(), archive.absolute().resolve()
    if real == real_archive:
        raise OutputPathError(
            str(dataset), "is the archive folder; put the dataset beside it")
    out = check_output_path(dataset, inputs=[archive], kind="dataset")
    if real_archive in real.parents:
        raise OutputPathError(
            str(dataset), f"is inside the archive ({archive}); put the dataset beside it")
    if real in real_archive.parents:
        raise OutputPathError(
            str(dataset), f"holds the archive ({archive}); put the dataset beside it")
    ds.check_writable(out, partition_by="month", overwrite=False)
    check_output_path(out.parent / f"{out.name}.rejects", kind="directory")


def serve(
    config: ReceiverConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    graceful_timeout: float = 30.0,
    max_connections: int = 2048,
    writer: ArchiveWriter | None = None,
) -> None:
    """Run the receiver under uvicorn until SIGINT or SIGTERM.

    On SIGTERM the server stops accepting connections, lets in-flight requests finish
    (up to `graceful_timeout` seconds), writes what is pending and closes the archive.
    `writer` replaces the archive writer (for tests and benchmarks).

    Raises
    ------
    ArgumentError
        If the archive directory cannot be written or only one of certfile/keyfile is set.
    OutputPathError, DatasetError
        If the dataset could never be converted into (see :func:`_check_dataset`).
    """
    import uvicorn

    if (certfile is None) != (keyfile is None):
        given = "--certfile" if certfile is not None else "--keyfile"
        raise ArgumentError(given, str(certfile or keyfile), "give --certfile and --keyfile both")
    if config.dataset is not None:
        _check_dataset(config.archive, config.dataset)
    try:
        config.archive.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError("archive", str(config.archive), exc.strerror or str(exc)) from exc
    if not os.access(config.archive, os.W_OK):
        raise ArgumentError("archive", str(config.archive), "not writable")
    if config.access_log and not access_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    uv = uvicorn.Config(
        create_app(config, writer=writer),
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        access_log=False,  # ours never shows the token in the path
        log_level="info",
        lifespan="on",
        timeout_graceful_shutdown=int(graceful_timeout),
        timeout_keep_alive=15,
        http=_http_protocol(config.body_timeout),
        limit_concurrency=max_connections,
        server_header=False,
        workers=1,
    )
    uvicorn.Server(uv).run()

