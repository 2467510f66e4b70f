"""The webhook receiver's archive: one line per event, written durably with group commit.

This module owns the receiver's files; :mod:`smsanalytics.receiver` owns HTTP. It knows
nothing of Callr's fields: an event is a request body, the time it was received and the
event id header, if any.

**Line format.** One event per line, in files :func:`smsanalytics.convert` reads with no
option (a JSON object behind free log text, as Callr Actions log lines are)::

    2026-12-02T06:11:56.123456Z callr-webhook event_id="ev-1" {"id":"ev-1",...}

* the UTC time of receipt (always microseconds, always ``Z``), then ``callr-webhook``;
* ``event_id=`` and the ``X-CALLR-EventId`` header as a JSON string, when the request had one;
* the body. A body that is a JSON object in UTF-8 is stored as it was received, except that
  its line breaks (which JSON allows only between tokens) are stored as spaces. Any other
  body (not JSON, a JSON array or string, not UTF-8) is stored as ``body=`` and a JSON string,
  or ``body_base64=`` and its base64 when it is not UTF-8: nothing on such a line is a JSON
  object (its ``{`` and ``}`` are escaped), so ``convert`` rejects it with the reason *no JSON
  object on the line* and nothing is silently dropped.

**Files.** ``ROOT/YYYY/MM/DD/YYYY-MM-DDTHH.<run>.<part>.log.open`` while being written,
where the hour is the UTC hour of receipt of its first event and ``<run>`` the start time and
process id of the server that wrote it (so names sort in order of time and two servers never
share a file). A file is closed at the end of its hour, when it reaches a size, after a
maximum age, or at shutdown; it is then compressed to ``....log.zst`` atomically (written
beside as ``.tmp``, fsynced, renamed, directory fsynced) and the ``.open`` file removed.
``convert`` skips ``.open`` and ``.tmp`` files when it walks the folder. A closed file is
never written again: a restarted server opens new parts, and finishes the ``.open`` files a
crashed one left (without the torn line a crash may leave at the end, which was never
acknowledged). Each ``.open`` file is locked (``flock``) by the process writing it, so a
second server on the same folder leaves it alone.

**Durability.** :meth:`ArchiveWriter.append` returns once the event's line is written and
``fdatasync`` has returned (the new file and its directories are fsynced when created).
Concurrent appends share one write and one ``fdatasync`` (group commit): while one batch is
being synced the next one gathers. A failed write or sync (disk full, read-only file system)
raises :class:`ArchiveWriteError` for every event of the batch; the file is cut back to its
last synced length and closed, and the next batch opens a new part.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ArchiveWriteError",
    "ArchivedEvent",
    "ArchiveWriter",
    "OPEN_SUFFIX",
    "CLOSED_SUFFIX",
    "format_line",
    "parse_line",
    "iter_archive_files",
    "finish_leftovers",
]

log = logging.getLogger("smsanalytics.receiver")

#: Suffix of a file being written (``convert`` does not read it).
OPEN_SUFFIX = ".log.open"
#: Suffix of a closed, compressed file (``convert`` reads it).
CLOSED_SUFFIX = ".log.zst"
_TMP_SUFFIX = ".tmp"
_MARK = b"callr-webhook"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ArchiveWriteError(OSError):
    """An event could not be stored (the caller must not acknowledge it)."""


@dataclass(frozen=True)
class ArchivedEvent:
    """One event read back from an archive line.

    Attributes
    ----------
    received_at : datetime.datetime
        Time of receipt (UTC).
    event_id : str or None
        The ``X-CALLR-EventId`` header, if the request had one.
    body : bytes
        The body: as received for a JSON object (line breaks as spaces), else exactly.
    stored_as : str
        ``json`` (a JSON object), ``text`` (another UTF-8 body) or ``base64`` (not UTF-8).
    """

    received_at: dt.datetime
    event_id: str | None
    body: bytes
    stored_as: str


def _json_string(text: str) -> bytes:
    """A JSON string for `text`, one line, with no ``{`` or ``}`` (escaped instead).

    Without a brace the line holds no JSON object, so the parser can never read part of
    a stored text as a record.
    """
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("{", "\\u007b").replace("}", "\\u007d").encode("utf-8")


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body.decode("utf-8")), dict)
    except (ValueError, RecursionError):  # ValueError: also not UTF-8; Recursion: too deep
        return False


def format_line(received_at: dt.datetime, event_id: str | None, body: bytes) -> bytes:
    """The archive line (ending with ``\\n``) for one received event.

    Parameters
    ----------
    received_at : datetime.datetime
        Time of receipt, timezone-aware.
    event_id : str, optional
        The event id header.
    body : bytes
        The raw request body.

    Examples
    --------
    >>> import datetime as dt
    >>> t = dt.datetime(2026, 12, 2, 6, 11, 56, tzinfo=dt.UTC)
    >>> format_line(t, "ev-1", b'{"id": "ev-1",\\n "try": 0}')
    b'2026-12-02T06:11:56.000000Z callr-webhook event_id="ev-1" {"id": "ev-1",  "try": 0}\\n'
    >>> format_line(t, None, b"hello {world}")
    b'2026-12-02T06:11:56.000000Z callr-webhook body="hello \\\\u007bworld\\\\u007d"\\n'
    """
    parts = [received_at.astimezone(dt.UTC).strftime(_TIME_FORMAT).encode("ascii"), _MARK]
    if event_id is not None:
        parts.append(b"event_id=" + _json_string(event_id))
    if _is_json_object(body):
        # JSON allows CR and LF only between tokens: as spaces, the content is the same.
        parts.append(body.replace(b"\r", b" ").replace(b"\n", b" "))
    else:
        try:
            parts.append(b"body=" + _json_string(body.decode("utf-8")))
        except UnicodeDecodeError:
            parts.append(b"body_base64=" + base64.b64encode(body))
    return b" ".join(parts) + b"\n"


_LINE = re.compile(
    rb"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) callr-webhook"
    rb'(?: event_id=(?P<id>"(?:[^"\\]|\\.)*"))?'
    rb" (?:(?P<json>\{.*)|body=(?P<text>\".*\")|body_base64=(?P<b64>[A-Za-z0-9+/=]*))",
    re.DOTALL,
)


def parse_line(line: bytes) -> ArchivedEvent:
    """Read back a line written by :func:`format_line`.

    Raises
    ------
    ValueError
        If `line` is not an archive line.

    Examples
    --------
    >>> import datetime as dt
    >>> t = dt.datetime(2026, 12, 2, 6, 11, 56, tzinfo=dt.UTC)
    >>> parse_line(format_line(t, None, b"hello {world}")).body
    b'hello {world}'
    """
    m = _LINE.fullmatch(line.rstrip(b"\n"))
    if m is None:
        raise ValueError("not a receiver archive line")
    at = dt.datetime.strptime(m["at"].decode("ascii"), _TIME_FORMAT).replace(tzinfo=dt.UTC)
    event_id = json.loads(m["id"]) if m["id"] is not None else None
    if m["json"] is not None:
        return ArchivedEvent(at, event_id, m["json"], "json")
    if m["text"] is not None:
        return ArchivedEvent(at, event_id, json.loads(m["text"]).encode("utf-8"), "text")
    try:
        body = base64.b64decode(m["b64"], validate=True)
    except binascii.Error as exc:
        raise ValueError("not a receiver archive line (bad base64)") from exc
    return ArchivedEvent(at, event_id, body, "base64")


def iter_archive_files(root: Path, suffix: str = CLOSED_SUFFIX) -> Iterator[Path]:
    """The archive's files with `suffix` under `root`, in order of name (of time)."""
    yield from sorted(p for p in Path(root).rglob(f"*{suffix}") if p.is_file())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs_durably(path: Path) -> None:
    """Create `path` and its missing parents, each entry fsynced in its parent."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            pass
        _fsync_dir(d.parent)


def _closed_path(open_path: Path) -> Path:
    return open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX)


def _compress_file(open_path: Path, length: int, level: int = 3) -> Path:
    """Compress the first `length` bytes of `open_path` to its closed name, atomically.

    The ``.open`` file is removed only once the compressed file is durable under its name.
    """
    import zstandard

    final = _closed_path(open_path)
    if length > 0:
        tmp = final.with_name(final.name + _TMP_SUFFIX)
        with open(open_path, "rb") as src, open(tmp, "wb") as dst:
            cctx = zstandard.ZstdCompressor(level=level)
            with cctx.stream_writer(dst, closefd=False) as zw:
                left = length
                while left > 0:
                    chunk = src.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    zw.write(chunk)
                    left -= len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    open_path.unlink()
    _fsync_dir(open_path.parent)
    return final


def _complete_length(path: Path) -> int:
    """Length of `path` up to and including its last line break (a torn line is left out)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = size
        while pos > 0:
            step = min(pos, 1 << 16)
            fh.seek(pos - step)
            block = fh.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
    return 0


def finish_leftovers(root: Path) -> list[Path]:
    """Close the ``.open`` files no live process holds (left by a crash); return them.

    A file whose compressed twin exists was already closed (the crash came between the
    rename and the removal): only the ``.open`` copy is removed.
    """
    finished = []
    for open_path in iter_archive_files(root, OPEN_SUFFIX):
        try:
            fd = os.open(open_path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another server is writing it
            final = _closed_path(open_path)
            final.with_name(final.name + _TMP_SUFFIX).unlink(missing_ok=True)
            if final.exists():
                open_path.unlink()
                _fsync_dir(open_path.parent)
            else:
                _compress_file(open_path, _complete_length(open_path))
            finished.append(final)
            log.info("closed %s left by an earlier run", final.name)
        finally:
            os.close(fd)
    return finished


@dataclass
class _OpenFile:
    path: Path
    fd: int
    hour: str
    opened: float  # time.monotonic()
    size: int = 0  # bytes written and synced


def _hour_of(line: bytes) -> str:
    """``YYYY-MM-DDTHH`` of an archive line's time of receipt."""
    return line[:13].decode("ascii")


class ArchiveWriter:
    """Append archive lines durably, batching concurrent appends into one write and sync.

    Parameters
    ----------
    root : Path
        Archive directory (created if missing).
    max_bytes : int
        Close a file once it holds this many bytes [bytes].
    max_age : float
        Close a file this long after it was opened, even within its hour [s].
    on_sync : callable, optional
        Called with the duration of each ``write`` + ``fdatasync`` [s] (for metrics).
    on_closed : callable, optional
        Called with the path of each compressed file (from a worker thread).

    Notes
    -----
    :meth:`start` and :meth:`append` must run on one event loop; the blocking work runs
    in worker threads (one for writing, one for compressing), so the loop keeps serving.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        max_bytes: int = 64 << 20,
        max_age: float = 3600.0,
        on_sync: Callable[[float], None] | None = None,
        on_closed: Callable[[Path], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.on_sync = on_sync
        self.on_closed = on_closed
        now = dt.datetime.now(dt.UTC)
        self._run = f"{now:%Y%m%dT%H%M%S%fZ}-{os.getpid()}"
        self._part = 0
        self._file: _OpenFile | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._io = ThreadPoolExecutor(1, thread_name_prefix="archive-write")
        self._compressor = ThreadPoolExecutor(1, thread_name_prefix="archive-close")
        self._unclosed: list[tuple[_OpenFile, int]] = []  # compression failed: retried
        #: Whether the last write succeeded (for readiness).
        self.healthy = True
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Finish what an earlier run left, then start the writing task."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._prepare)
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="archive-writer")

    def _prepare(self) -> None:
        _makedirs_durably(self.root)
        for final in finish_leftovers(self.root):
            if self.on_closed is not None:
                self.on_closed(final)

    async def close(self) -> None:
        """Write what is pending, close and compress the open file, stop the threads."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._retire, "shutdown")
        await loop.run_in_executor(self._compressor, self._retry_unclosed)
        self._io.shutdown()
        self._compressor.shutdown()

    # -- appending -------------------------------------------------------------------

    async def append(self, line: bytes) -> None:
        """Store `line` (from :func:`format_line`); return once it is on disk.

        Raises
        ------
        ArchiveWriteError
            If it could not be stored, or the writer is closing.
        """
        if self._closing or self._wakeup is None:
            raise ArchiveWriteError(errno.ESHUTDOWN, "the archive is closing")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, fut))
        self._wakeup.set()
        await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await loop.run_in_executor(self._io, self._write_batch, [b for b, _ in batch])
                except Exception as exc:  # any failure: not stored, and the writer goes on
                    code = exc.errno if isinstance(exc, OSError) else errno.EIO
                    why = exc.strerror if isinstance(exc, OSError) else repr(exc)
                    error = ArchiveWriteError(code, f"archive write failed: {why}")
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(error)
                else:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
            if self._pending:
                self._wakeup.set()
            elif self._closing:
                return

    async def rotate_if_due(self) -> None:
        """Close the open file if its hour is over or it is older than ``max_age``."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._rotate_if_due)

    def _rotate_if_due(self) -> None:
        f = self._file
        if f is None:
            return
        hour = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H")
        if hour > f.hour or time.monotonic() - f.opened >= self.max_age:
            self._retire("age")
        if self._unclosed:
            self._compressor.submit(self._retry_unclosed)

    # -- in the writing thread ----------------------------------------------------------

    def _open_new(self, hour: str) -> _OpenFile:
        day = self.root / hour[:4] / hour[5:7] / hour[8:10]
        _makedirs_durably(day)
        self._part += 1
        path = day / f"{hour}.{self._run}.{self._part:06d}{OPEN_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_dir(day)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _OpenFile(path, fd, hour, time.monotonic())

    def _write_batch(self, lines: list[bytes]) -> None:
        started = time.perf_counter()
        try:
            # Lines come in order of receipt: a later hour closes the file, and the
            # batch is split where the hour changes.
            start = 0
            while start < len(lines):
                hour = _hour_of(lines[start])
                f = self._file
                if f is not None and (
                    hour > f.hour
                    or f.size >= self.max_bytes
                    or time.monotonic() - f.opened >= self.max_age
                ):
                    self._retire("rotation")
                    f = None
                if f is None:
                    f = self._file = self._open_new(hour)
                end = start + 1
                while end < len(lines) and _hour_of(lines[end]) <= f.hour:
                    end += 1
                self._write_synced(f, b"".join(lines[start:end]))
                start = end
        except OSError as exc:
            self.healthy = False
            self.last_error = exc.strerror or str(exc)
            log.error("archive write failed: %s", self.last_error)
            raise
        self.healthy = True
        self.last_error = None
        if self.on_sync is not None:
            self.on_sync(time.perf_counter() - started)

    def _write_synced(self, f: _OpenFile, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                n = os.write(f.fd, view)
                view = view[n:]
            os.fdatasync(f.fd)
        except OSError:
            # What reached the file after its last sync is not acknowledged and may be
            # torn, and after a failed sync the page cache cannot be trusted: cut the
            # file back and never write it again.
            try:
                os.ftruncate(f.fd, f.size)
                os.fdatasync(f.fd)
            except OSError:
                pass
            self._retire("write failure")
            raise
        f.size += len(data)

    def _retire(self, why: str) -> None:
        """Stop writing the open file and have it compressed (in the other thread)."""
        f, self._file = self._file, None
        if f is None:
            return
        log.debug("closing %s (%s)", f.path.name, why)
        if self._closing and why == "shutdown":
            self._close_file(f, f.size)
        else:
            self._compressor.submit(self._close_file, f, f.size)

    def _close_file(self, f: _OpenFile, length: int) -> None:
        try:
            final = _compress_file(f.path, length)
        except OSError as exc:
            log.error("could not close %s (kept, retried later): %s", f.path.name, exc)
            self._unclosed.append((f, length))
            return
        os.close(f.fd)  # the lock goes with it, after the .open file is gone
        if self.on_closed is not None and length > 0:
            self.on_closed(final)

    def _retry_unclosed(self) -> None:
        todo, self._unclosed = self._unclosed, []
        for f, length in todo:
            self._close_file(f, length)

    # -- state ------------------------------------------------------------------------

    @property
    def open_since(self) -> float | None:
        """``time.monotonic()`` when the open file was opened (None if none is open)."""
        f = self._file
        return f.opened if f is not None else None

    def free_bytes(self) -> int:
        """Free space on the archive's file system, for an unprivileged user [bytes]."""
        return shutil.disk_usage(self.root).free
