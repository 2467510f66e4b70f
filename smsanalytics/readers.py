"""Find input files and cut them into record candidates.

This module owns containers: which files a path or directory stands for, decompression
(``.gz``, ``.zst``), and splitting a file into *records* with their line numbers. It does
not interpret a record; :mod:`smsanalytics.sources` does.

What one record is, by container:

* ``.jsonl``, ``.ndjson``, ``.log``, ``.txt`` (and any other name given explicitly, and
  standard input ``-``): every non-blank line. The JSON may follow free text.
* ``.json``: the single object, or each element of a top-level array, as its own text
  in the file (so that the parse reads it as it reads a line). A ``.json`` file whose
  first line is a complete JSON value is read as JSON Lines instead.
* ``.yaml``, ``.yml``: each document, or each item of a document that is a list, as JSON
  text; scalars are the text that was written (see :class:`_YamlLoader`).

Nothing is lost silently: an element, document or list item that does not parse is one
candidate with a ``pre_error``, and reading goes on at the next one (a YAML list that does
not parse is cut into its items, see :func:`_yaml_recovered`); a record above
:data:`RECORD_LIMIT` is one too. A UTF-8 byte order mark and LF, CRLF or lone-CR line
endings are accepted. Line files are read in chunks with NumPy, so memory stays flat
whatever the file size; ``.json`` and YAML files are read whole (they are small, one event
per file or a day's array).
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import yaml

from .errors import InputError
from .schema import RAW_SCHEMA

__all__ = [
    "InputFile",
    "LINE_SUFFIXES",
    "JSON_SUFFIXES",
    "YAML_SUFFIXES",
    "COMPRESSION_SUFFIXES",
    "find_inputs",
    "classify",
    "is_input_name",
    "iter_raw_batches",
    "arrow_ints",
    "BATCH_ROWS",
    "DIRECT_MIN_BYTES",
    "lines_sql",
    "lines_cover_file",
    "RECORD_LIMIT",
    "VALUE_LIMIT",
]

LINE_SUFFIXES = (".jsonl", ".ndjson", ".log", ".txt")
JSON_SUFFIXES = (".json",)
YAML_SUFFIXES = (".yaml", ".yml")
COMPRESSION_SUFFIXES = (".gz", ".zst")
#: Rows per Arrow batch handed to DuckDB (it scans batches in parallel).
BATCH_ROWS = 4_096
_CHUNK_BYTES = 16 << 20
_COMPRESSED_CHUNK_BYTES = 256 << 10
_BOM = b"\xef\xbb\xbf"
_RAW_TEXT_LIMIT = 10_000
#: Largest record read [bytes]; a larger one is rejected, with its size as the reason.
#: Callr's records are a few kilobytes; a record of this size still parses alone.
RECORD_LIMIT = 64 << 20
#: Most JSON values one record may hold (about: ``,``, ``:``, ``[`` and ``{`` are counted,
#: also inside strings). What the parse needs grows with the values, not the bytes: 60 MB
#: of ``[0,0,0,...`` took DuckDB past its memory. A Callr record holds about fifty.
VALUE_LIMIT = 1_000_000
# Records up to this size cannot hold VALUE_LIMIT values: only larger ones are counted.
_COUNTED_BYTES = 2 * VALUE_LIMIT


@dataclass(frozen=True)
class InputFile:
    """One input: a file, or standard input.

    Attributes
    ----------
    name : str
        Path as given or found (``-`` for standard input); becomes ``source_file``.
    kind : str
        ``lines``, ``json``, ``yaml`` or ``auto`` (sniffed from the content).
    compression : str or None
        ``gz``, ``zst`` or None.
    size : int
        Size on disk [bytes] (0 for standard input).
    """

    name: str
    kind: str
    compression: str | None
    size: int

    @property
    def is_stdin(self) -> bool:
        """Whether this input is standard input."""
        return self.name == "-"


def classify(path: PurePath) -> tuple[str, str | None]:
    """The kind of input a file's name says it is, and its compression.

    Only the name is read (a local path or the path of a URI alike). Kinds: ``lines``
    (:data:`LINE_SUFFIXES`), ``json``, ``yaml``, or ``auto`` (decided from the content);
    compression: ``gz``, ``zst`` or None.

    Examples
    --------
    >>> classify(PurePath("2025/05/inbound.NDJSON.gz")), classify(PurePath("notes"))
    (('lines', 'gz'), ('auto', None))
    """
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        compression = suffixes.pop()[1:]
    last = suffixes[-1] if suffixes else ""
    if last in LINE_SUFFIXES:
        return "lines", compression
    if last in JSON_SUFFIXES:
        return "json", compression
    if last in YAML_SUFFIXES:
        return "yaml", compression
    return "auto", compression


def is_input_name(path: PurePath) -> bool:
    """Whether a folder's walk reads a file of this name: a known suffix, not hidden.

    Examples
    --------
    >>> [is_input_name(PurePath(n)) for n in ("a.jsonl", ".a.jsonl", "_a.json", "a.csv")]
    [True, False, False, False]
    """
    kind, _ = classify(path)
    return kind != "auto" and not path.name.startswith((".", "_"))


def find_inputs(paths: Iterable[str | Path]) -> list[InputFile]:
    """Expand `paths` into the input files to read, in a stable order.

    A directory is walked recursively for files with a known suffix (hidden files and
    names starting with ``_`` are skipped); a file named explicitly is read whatever its
    name; ``-`` is standard input.

    Raises
    ------
    InputError
        If a path does not exist or cannot be read.
    """
    found: list[InputFile] = []
    for given in paths:
        text = str(given)
        if text == "-":
            found.append(InputFile("-", "auto", None, 0))
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_input_name(p))
        elif path.is_file():
            files = [path]
        elif path.exists():
            raise InputError(text, "not a regular file or directory")
        else:
            raise InputError(text, "no such file or directory")
        for f in files:
            kind, compression = classify(f)
            try:
                size = f.stat().st_size
                with open(f, "rb"):
                    pass
            except OSError as exc:
                raise InputError(str(f), f"cannot be read: {exc.strerror or exc}") from exc
            found.append(InputFile(str(f), kind, compression, size))
    return found


class _Counted:
    """A file that reports how many bytes were read from it (for a progress bar).

    Only ``read`` and ``close`` are used on an input, by the line reader and by
    :class:`_Decompressed`.
    """

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._on_bytes(len(data))
        return data

    def close(self) -> None:
        self._raw.close()


def _open(inp: InputFile, on_bytes: Callable[[int], None] | None = None) -> IO[bytes]:
    raw: IO[bytes] = sys.stdin.buffer if inp.is_stdin else open(inp.name, "rb")  # noqa: SIM115
    if on_bytes is not None:  # standard input too: its size is only known once it is read
        raw = _Counted(raw, on_bytes)  # type: ignore[assignment]
    if inp.compression in ("gz", "zst"):
        return _Decompressed(raw, inp.compression)  # type: ignore[return-value]
    return raw


_GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSED_READ = 64 << 10


class _Decompressed(io.RawIOBase):
    """A gzip or zstd stream read incrementally, which says when it is damaged.

    Why not :class:`gzip.GzipFile` or ``zstandard``'s ``stream_reader``: a ``read(n)`` of
    ``GzipFile`` that meets the damage raises and drops the data it had already
    decompressed, so a small truncated file lost every record; ``stream_reader`` ends
    silently at a truncated zstd frame (the damage was never reported) and stops after
    the first of several concatenated frames. Here ``read(n)`` returns what was
    decompressed before the damage and raises on the next call; a stream that ends
    inside a gzip member or a zstd frame raises :class:`EOFError`. Concatenated gzip
    members (and zero padding after them) and zstd frames are read in turn. Output per
    step is bounded, so a small "bomb" cannot fill memory in one call.
    """

    def __init__(self, raw: IO[bytes], kind: str) -> None:
        super().__init__()
        self._raw = raw
        self._kind = kind
        self._dec: Any = self._new_decompressor()
        self._in = b""  # compressed bytes not yet given to the decompressor
        self._out = bytearray()  # decompressed bytes not yet returned
        self._error: BaseException | None = None
        self._started = False  # a member or frame has begun
        self._done = False

    def _new_decompressor(self) -> Any:
        if self._kind == "gz":
            return zlib.decompressobj(wbits=31)
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def _feed(self) -> bytes:
        if self._dec.eof:
            self._next_member()
            if self._done:
                return b""
        if not self._in:
            # zstd has no output limit per call: small reads bound what one call makes.
            self._in = self._raw.read(_COMPRESSED_READ if self._kind == "gz" else 1024)
            if not self._in:
                if self._started:
                    raise EOFError(
                        "the compressed stream ends before its end marker (file truncated?)"
                    )
                self._done = True
                return b""
        self._started = True
        out: bytes
        if self._kind == "gz":
            out = self._dec.decompress(self._in, _COMPRESSED_READ * 16)
            self._in = self._dec.unconsumed_tail
        else:
            out, self._in = self._dec.decompress(self._in), b""
        return out

    def _next_member(self) -> None:
        rest = self._dec.unused_data + self._in
        self._in = b""
        self._started = False
        if self._kind == "gz":
            # gzip allows zero padding after a member; anything else must be a member.
            rest = rest.lstrip(b"\0")
            while not rest:
                more = self._raw.read(_COMPRESSED_READ)
                if not more:
                    self._done = True
                    return
                rest = more.lstrip(b"\0")
            while len(rest) < 2:
                more = self._raw.read(_COMPRESSED_READ)
                if not more:
                    break
                rest += more
            if not rest.startswith(_GZIP_MAGIC):
                raise gzip.BadGzipFile("data after the end of the compressed stream")
        self._dec = self._new_decompressor()
        self._in = rest

    def read(self, size: int | None = -1) -> bytes:
        """Return up to `size` decompressed bytes (all that is left if negative)."""
        want = -1 if size is None or size < 0 else size
        while (want < 0 or len(self._out) < want) and not self._done:
            if self._error is not None:
                break
            try:
                self._out += self._feed()
            except Exception as exc:
                if want < 0 or not self._out:
                    self._done = True
                    raise
                self._error = exc  # returned data first, the damage on the next call
        if not self._out and self._error is not None:
            error, self._error, self._done = self._error, None, True
            raise error
        n = len(self._out) if want < 0 else min(want, len(self._out))
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and self._raw is not sys.stdin.buffer:
            self._raw.close()
        super().close()


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
)


def _decompress_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard

        return (*_DECOMPRESS_ERRORS, zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        return _DECOMPRESS_ERRORS


def arrow_ints(values: np.ndarray) -> pa.Array[Any]:
    """A zero-copy Arrow array over a NumPy array of integers (no nulls).

    The same as ``pa.array(values)``, whose first call imports pandas (pyarrow checks
    whether it was given a pandas object): a quarter of a second that would hold up the
    first batch. Conversions import pandas in the background instead.
    """
    values = np.ascontiguousarray(values)
    # (``values.data``, its memoryview: NumPy types an array as a buffer from Python 3.12)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values.data)]
    )


def _one_string(text: str) -> pa.StringArray:
    """``pa.array([text], pa.string())``, without importing pandas (see :func:`arrow_ints`)."""
    data = text.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    return pa.StringArray.from_buffers(1, pa.py_buffer(offsets.data), pa.py_buffer(data))


def _batch(
    name: str, lines: np.ndarray, texts: pa.Array[Any], errors: pa.Array[Any] | None = None
) -> pa.Table:
    n = len(texts)
    table = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(
                arrow_ints(np.zeros(n, dtype=np.int32)), _one_string(name)
            ),
            arrow_ints(np.asarray(lines, dtype=np.int64)),
            texts,
            errors if errors is not None else pa.nulls(n, pa.string()),
        ],
        schema=RAW_SCHEMA,
    )
    return table


def _too_large(size: int) -> str:
    """The reject reason for a record of `size` bytes above :data:`RECORD_LIMIT`."""
    return f"record too large: {size:,} bytes (a record may have at most {RECORD_LIMIT:,})"


def _too_many_values(record: bytes | memoryview | str) -> str | None:
    """The reject reason for a record with more than :data:`VALUE_LIMIT` JSON values."""
    if isinstance(record, str):
        values = sum(record.count(c) for c in ",:[{")
    else:
        data = np.frombuffer(record, dtype=np.uint8)
        values = sum(int(np.count_nonzero(data == ord(c))) for c in ",:[{")
    if values <= VALUE_LIMIT:
        return None
    return (
        f"record too large: about {values:,} JSON values "
        f"(a record may have at most {VALUE_LIMIT:,})"
    )


def _checked_size() -> int:
    """Records up to this size [bytes] are never too large (the limits are read at call
    time: tests lower them)."""
    return min(RECORD_LIMIT, _COUNTED_BYTES)


def _size_problem(record: bytes | memoryview, size: int) -> str | None:
    """Why a record of `size` bytes (its text `record`) is too large to parse, if it is."""
    if size > RECORD_LIMIT:
        return _too_large(size)
    if size > _COUNTED_BYTES:
        return _too_many_values(record)
    return None


def _split_lines(buf: bytes | memoryview, first_line: int, name: str) -> tuple[pa.Table, int]:
    """Cut a buffer of whole lines (ending with ``\\n``) into record candidates.

    Returns the candidates and the number of lines in `buf`.
    """
    data = np.frombuffer(buf, dtype=np.uint8)
    ends = np.flatnonzero(data == 10) + 1
    starts = np.concatenate(([0], ends[:-1]))
    line_no = np.arange(first_line, first_line + len(ends), dtype=np.int64)
    # Blank lines (only white space) are not records. Only a line whose first byte is
    # white space can be blank, and those are rare: check them one by one.
    keep = np.ones(len(ends), dtype=bool)
    first = data[starts]
    for i in np.flatnonzero((first == 32) | (first == 9) | (first == 13) | (first == 10)):
        if not bytes(buf[starts[i] : ends[i]]).strip():
            keep[i] = False
    offsets = np.concatenate(([0], ends)).astype(np.int32)
    texts = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets.data), pa.py_buffer(buf))
    checked = _checked_size()
    try:
        texts.validate(full=True)  # Arrow's UTF-8 check: much faster than bytes.decode
        # (a line too large to parse takes the slow path below, which rejects it)
        valid = not len(ends) or int((ends - starts).max()) <= checked or not any(
            _size_problem(buf[s:e], e - s - 1)
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
            if e - s > checked
        )
    except pa.ArrowInvalid:
        valid = False
    if valid:
        idx = np.flatnonzero(keep)
        if len(idx) != len(ends):
            texts = texts.take(arrow_ints(idx))
            line_no = line_no[idx]
        return _batch(name, line_no, texts), len(ends)
    out_text: list[str] = []
    out_err: list[str | None] = []
    out_line: list[int] = []
    rows = zip(starts.tolist(), ends.tolist(), line_no.tolist(), keep.tolist(), strict=True)
    for s, e, ln, k in rows:
        if not k:
            continue
        problem = _size_problem(buf[s:e], e - s - 1) if e - s > checked else None
        if problem is not None:
            raw = bytes(buf[s : s + _RAW_TEXT_LIMIT])
            out_text.append(raw.decode("utf-8", errors="backslashreplace")[:_RAW_TEXT_LIMIT])
            out_err.append(problem)
            out_line.append(ln)
            continue
        raw = bytes(buf[s:e])
        try:
            out_text.append(raw.decode("utf-8"))
            out_err.append(None)
        except UnicodeDecodeError as exc:
            out_text.append(raw.decode("utf-8", errors="backslashreplace")[:_RAW_TEXT_LIMIT])
            out_err.append(
                f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
            )
        out_line.append(ln)
    table = _batch(
        name,
        np.array(out_line, dtype=np.int64),
        pa.array(out_text, pa.string()),
        pa.array(out_err, pa.string()),
    )
    return table, len(ends)


def _unix_newlines(chunk: bytes) -> bytes:
    """`chunk` with every CRLF and lone CR made a LF (a CR at its very end is kept)."""
    if b"\r" not in chunk:
        return chunk
    tail = b"\r" if chunk.endswith(b"\r") else b""
    body = chunk[: len(chunk) - len(tail)]
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail


class _LongLine:
    """The start of a line that chunk boundaries cut, gathered until its end.

    The pieces are joined once, when the line ends (joining as they come took time
    quadratic in the line's length). Beyond :data:`RECORD_LIMIT` only the line's first
    bytes are kept, for the reject, and its length is counted.
    """

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, piece: bytes) -> None:
        if self.size <= RECORD_LIMIT:
            self.parts.append(piece)
        self.size += len(piece)

    def end(self, piece: bytes, line: int, name: str) -> tuple[pa.Table, int]:
        """The candidate for the line ending with `piece` (which ends with a newline)."""
        size, parts = self.size + len(piece), self.parts
        self.parts, self.size = [], 0
        if size - 1 > RECORD_LIMIT:
            head = bytearray()
            for part in parts:  # only the first bytes are kept for the reject
                head += part[: _RAW_TEXT_LIMIT - len(head)]
                if len(head) >= _RAW_TEXT_LIMIT:
                    break
            raw = bytes(head).decode("utf-8", errors="backslashreplace")
            return _reject(name, line, _too_large(size - 1), raw), 1
        return _split_lines(b"".join([*parts, piece]), line, name)

    def __bool__(self) -> bool:
        return self.size > 0


def _iter_lines(
    stream: IO[bytes], name: str, head: bytes = b"", chunk_bytes: int | None = None
) -> Iterator[pa.Table]:
    """Cut a stream into record candidates, one per line, a chunk at a time.

    A line ends with LF, CRLF or a lone CR (as in Python's universal newlines: files
    saved by old Mac software use CR alone). The lines of a chunk are cut out of it
    without copying; only a line that chunk boundaries split is pieced together.
    """
    chunk_bytes = chunk_bytes or _CHUNK_BYTES
    chunk = head + stream.read(chunk_bytes)
    while len(chunk) < len(_BOM) and (more := stream.read(chunk_bytes)):
        chunk += more
    if chunk.startswith(_BOM):
        chunk = chunk[len(_BOM) :] or stream.read(chunk_bytes)
    carry = _LongLine()  # the start of a line that the previous chunks cut
    line = 1
    while chunk:
        chunk = _unix_newlines(chunk)
        while chunk.endswith(b"\r"):  # a CRLF may be cut between two chunks
            more = stream.read(chunk_bytes)
            chunk = _unix_newlines(chunk + more) if more else chunk[:-1] + b"\n"
        first_end = chunk.find(b"\n") + 1
        if first_end == 0:  # no line ends in this chunk: a long line goes on
            carry.add(chunk)
        else:
            start = 0
            if carry:
                table, lines = carry.end(chunk[:first_end], line, name)
                line += lines
                start = first_end
                if len(table):
                    yield table
            cut = chunk.rfind(b"\n") + 1
            if cut > start:
                table, lines = _split_lines(memoryview(chunk)[start:cut], line, name)
                line += lines
                if len(table):
                    yield table
            if cut < len(chunk):
                carry.add(chunk[cut:])
        chunk = stream.read(chunk_bytes)
    if carry:
        table, _ = carry.end(b"\n", line, name)
        if len(table):
            yield table


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _to_text(obj: dict[Any, Any]) -> tuple[str, str | None]:
    """A YAML document's mapping as JSON text, and a reason if it cannot be one."""
    # (no ``default``: a value JSON cannot write is a reject, never its Python repr)
    try:
        text = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return repr(obj)[:_RAW_TEXT_LIMIT], f"cannot be represented as JSON: {exc}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud83d": half of an emoji), which only an escape can write:
        # handed over escaped, as a JSON file writes it, so that the parse judges it alike.
        text = json.dumps(obj)
    return text, None


def _records(name: str, items: list[tuple[int, str, str | None]]) -> pa.Table:
    """Candidates from (line, text, reason or None); texts above the size limit rejected."""
    lines, texts, errors = [], [], []
    for line, text, error in items:
        if error is None and len(text) * 4 > _checked_size():
            size = len(text.encode("utf-8", errors="surrogatepass"))
            if size > _checked_size():
                error = _too_large(size) if size > RECORD_LIMIT else _too_many_values(text)
        lines.append(line)
        texts.append(text if error is None else text[:_RAW_TEXT_LIMIT])
        errors.append(error)
    return _batch(
        name,
        np.array(lines, dtype=np.int64),
        pa.array(texts, pa.string()),
        pa.array(errors, pa.string()),
    )


def _reject(name: str, line: int, reason: str, raw: str) -> pa.Table:
    return _batch(
        name,
        np.array([line], dtype=np.int64),
        pa.array([raw[:_RAW_TEXT_LIMIT]], pa.string()),
        pa.array([reason], pa.string()),
    )


def _decode_document(name: str, data: bytes) -> str | pa.Table:
    """`data` as text with LF line ends (CRLF and lone CR made LF), or its reject."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raw = data.decode("utf-8", errors="backslashreplace")
        return _reject(name, line, "not valid UTF-8", raw)
    if "\r" in text:
        # Outside strings a line end is white space to JSON and a line break to YAML;
        # inside a JSON string a raw CR is invalid either way.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _kind_of(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# The start of a line that opens an object: where an element of a pretty array starts.
_LINE_OBJECT = re.compile(r"\n([ \t]*),?[ \t]*\{")


def _value_end(text: str, pos: int) -> int:
    """Where the array element starting at `pos`, which does not parse, ends.

    Skips to the comma or bracket that closes the element, counting brackets outside
    strings. A JSON string cannot hold a line break, so an unclosed string ends at the
    line's end. Should the brackets not balance before the next line that opens an
    object no further right than the element did (an element cut short), the element
    ends there. (That line is found first, so that the scan, in Python, stays short.)
    """
    column = pos - text.rfind("\n", 0, pos) - 1
    limit = len(text)
    for m in _LINE_OBJECT.finditer(text, pos):
        if len(m.group(1)) <= column:
            limit = m.start() + 1
            break
    depth = 0
    in_string = False
    i = pos
    while i < limit:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"' or c == "\n":
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth < 0:
                return i
        elif c == "," and depth == 0:
            return i
        i += 1
    return limit


def _iter_json_document(name: str, data: bytes) -> Iterator[pa.Table]:
    """Candidates of a JSON document: its object, or each element of its array.

    Each object's candidate is its own text from the file, as a JSON Lines file would
    give it, so that the parse judges it alike (duplicate keys, numbers, escapes). An
    element that does not parse is rejected and reading goes on at the next one.
    """
    text = _decode_document(name, data)
    if isinstance(text, pa.Table):
        yield text
        return
    stripped = text.lstrip()
    if not stripped:
        return
    start = len(text) - len(stripped)
    # The decoder only finds where each value ends (the parse judges it): lenient.
    decoder = json.JSONDecoder(strict=False)
    if stripped[0] != "[":
        try:
            obj, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            yield _reject(name, _line_of(text, start), f"invalid JSON: {_json_msg(exc)}", text)
            return
        line = _line_of(text, start)
        reason = None if isinstance(obj, dict) else f"not an object ({_kind_of(obj)})"
        yield _records(name, [(line, text[start:end], reason)])
        rest = text[end:].strip()
        if rest:
            yield _reject(name, _line_of(text, end), "extra data after the JSON value", rest)
        return
    # A top-level array: decode element by element to know each one's line.
    items: list[tuple[int, str, str | None]] = []
    pos = start + 1
    line = _line_of(text, start)
    counted = start
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", counted, pos)
        counted = pos
        if pos >= n:
            if not items or items[-1][2] is None or "invalid JSON" not in items[-1][2]:
                items.append((line, text[-200:], "invalid JSON: the array is not closed"))
            break
        if text[pos] == "]":
            if text[pos + 1 :].strip():
                items.append(
                    (line, text[pos + 1 :].strip(), "extra data after the JSON value")
                )
            break
        try:
            obj, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            end = _value_end(text, pos)
            items.append((line, text[pos:end], f"invalid JSON: {_json_msg(exc)}"))
        else:
            reason = None if isinstance(obj, dict) else f"not an object ({_kind_of(obj)})"
            items.append((line, text[pos:end], reason))
        pos = max(end, pos + 1)
        if len(items) >= BATCH_ROWS:  # a long array: hold one batch of objects, not all
            yield _records(name, items)
            items = []
    yield _records(name, items)


def _json_msg(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return str(exc)


_YAML_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_YAML_MERGE = re.compile(r"^<<$")


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML whose scalars are the text that was written (YAML 1.2 core for nulls).

    Callr's fields are text or decimal strings, and the parse reads every value from
    its text: so a plain scalar is never turned into a boolean, a number or a date
    (YAML 1.1 made Norway's ``NO`` false, ``10:30`` the number 630 and a sid
    ``01234567`` an octal number). Only the YAML 1.2 core nulls (``~``, ``null``, an
    empty value) are null, and ``<<`` merges. Explicit standard tags (``!!int 010``)
    keep their text too. Within one mapping the first of duplicate keys wins, as in a
    JSON record (see :mod:`smsanalytics.sources`).
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            # (a scalar or a sequence: the other nodes; each class names its kind in `id`)
            kind = node.id if isinstance(node, (yaml.ScalarNode, yaml.SequenceNode)) else "node"
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {kind}", node.start_mark
            )
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        self.flatten_mapping(node)
        merged = node.value[: len(node.value) - len(own)]
        mapping: dict[Any, Any] = {}
        for key_node, value_node in merged:
            mapping[self._key(key_node, deep)] = self.construct_object(value_node, deep=deep)
        seen: set[Any] = set()
        for key_node, value_node in own:
            key = self._key(key_node, deep)
            if key not in seen:
                seen.add(key)
                mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def _key(self, node: yaml.Node, deep: bool) -> Any:
        key = self.construct_object(node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", node.start_mark,
            ) from None  # fmt: skip
        return key


_YamlLoader.yaml_implicit_resolvers = {}
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:null", _YAML_NULL, ["~", "n", "N", ""])
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:merge", _YAML_MERGE, ["<"])
# Every standard tag gives text, a mapping, a list or null, never a Python object (whose
# repr would have been stored: ``!!binary aGVsbG8=`` became ``b'hello'``). A binary keeps
# its base64 text as written; a set is the mapping it is written as (keys to nulls); an
# ordered map or pairs, the list of one-key mappings it is written as; ``!!null`` is null.
# (Each constructor typed as taking a loader: the stubs declare them on a base class that
# add_constructor does not accept.)
_as_text: Callable[[yaml.SafeLoader, yaml.ScalarNode], str] = yaml.SafeLoader.construct_scalar
_as_mapping: Callable[[yaml.SafeLoader, yaml.Node], Iterator[dict[Any, Any]]] = (
    yaml.SafeLoader.construct_yaml_map
)
_as_list: Callable[[yaml.SafeLoader, yaml.Node], Iterator[list[Any]]] = (
    yaml.SafeLoader.construct_yaml_seq
)
for _tag in ("bool", "int", "float", "timestamp", "binary"):
    _YamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _as_text)
_YamlLoader.add_constructor("tag:yaml.org,2002:set", _as_mapping)
for _tag in ("omap", "pairs"):
    _YamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _as_list)


#: Most values one YAML document may construct, aliases expanded.
_YAML_EXPANDED_LIMIT = 1_000_000
# A document starts at a line "---" (alone or followed by a blank); no content line
# can start so (YAML 1.2, "c-forbidden"). Directives ("%YAML") go with the next one.
_YAML_DOCUMENT_START = re.compile(r"^(?:%[^\n]*\n)*---(?=[ \t\n]|$)", re.MULTILINE)


def _expanded_size(root: yaml.Node) -> int:
    """Number of values `root` constructs, counting an aliased node at every use.

    Iterative (documents can be deep) and memoised (a shared node is sized once), so it
    costs one pass over the composed nodes, whatever they expand to. A node that contains
    itself counts once there; constructing it fails later, with its own reason.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children(node))
            sizes[key] = min(total, _YAML_EXPANDED_LIMIT + 1)
            visiting.discard(key)
            continue
        if key in sizes or key in visiting:
            continue
        visiting.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _yaml_documents(text: str) -> Iterator[tuple[int, str]]:
    """Cut a YAML stream into its documents: (line of the first, text)."""
    cuts = [m.start() for m in _YAML_DOCUMENT_START.finditer(text)]
    if not cuts or cuts[0] != 0:
        cuts.insert(0, 0)
    cuts.append(len(text))
    line = 1
    for start, end in itertools.pairwise(cuts):
        yield line, text[start:end]
        line += text.count("\n", start, end)


def _yaml_problem(exc: BaseException) -> tuple[int, str]:
    """(0-based line in the document, reason) for a YAML error."""
    if isinstance(exc, RecursionError):
        return 0, "invalid YAML: nested too deeply"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (mark.line if mark is not None else 0), f"invalid YAML: {problem}"


_YamlItem = tuple[int, str, str | None]
# An item of a top-level block sequence starts with "-" at column 0, then a blank or the
# line's end. No line inside an item can (its content is indented), except the
# continuation of a quoted or plain scalar, which a document that parses never has here.
_YAML_ITEM_START = re.compile(r"-(?:[ \t]|$)")
# Lines before a document's content: directives, a bare "---", blanks and comments.
_YAML_PREAMBLE = re.compile(r"%.*|---[ \t]*(?:#.*)?|[ \t]*(?:#.*)?")


def _yaml_items(doc: str, first: int) -> list[_YamlItem]:
    """The candidates of one YAML document that starts at line `first`.

    In a document that is a list, an item that cannot be built (an unknown tag) is one
    reject and the others are read. A document that does not parse as a whole is
    recovered as far as it can be (see :func:`_yaml_recovered`).
    """
    try:
        return _yaml_parsed(doc, first)
    except (yaml.YAMLError, RecursionError) as exc:
        return _yaml_recovered(doc, first, exc)


def _yaml_recovered(doc: str, first: int, exc: BaseException) -> list[_YamlItem]:
    """The candidates of a document that does not parse (`exc` says why).

    The parser stops at the first problem, so it cannot tell the items after it. When
    the document's content is a top-level block sequence (its first content line starts
    with ``- `` at column 0), it is cut before every line that starts so, and each item is
    parsed alone: the items that parse are read, and each one that does not is one
    reject, at its own first line, with its text. (An item that refers to an anchor of
    another item is such a reject too.) Any other document is one reject at the line
    where its content starts, with its whole text. Nothing is dropped.
    """
    lines = doc.split("\n")
    start = 0
    while start < len(lines) - 1 and _YAML_PREAMBLE.fullmatch(lines[start]):
        start += 1
    starts = [i for i in range(start, len(lines)) if _YAML_ITEM_START.match(lines[i])]
    if not starts or starts[0] != start or len(starts) == 1:
        problem_line, reason = _yaml_problem(exc)
        text = "\n".join(lines[start:]).rstrip("\n")
        # (a problem found at the end of the stream is on the last line)
        problem_line = min(problem_line, start + text.count("\n"))
        return [(first + start, text, f"{reason} (line {first + problem_line})")]
    items: list[_YamlItem] = []
    for begin, end in itertools.pairwise([*starts, len(lines)]):
        piece = "\n".join(lines[begin:end])
        try:
            items.extend(_yaml_parsed(piece, first + begin))
        except (yaml.YAMLError, RecursionError) as item_exc:
            problem_line, reason = _yaml_problem(item_exc)
            piece = piece.rstrip("\n")
            at = f"line {first + begin + min(problem_line, piece.count(chr(10)))}"
            items.append((first + begin, piece, f"{reason} ({at})"))
    return items


def _yaml_parsed(doc: str, first: int) -> list[_YamlItem]:
    """The candidates of one YAML document that starts at line `first`.

    Raises
    ------
    yaml.YAMLError, RecursionError
        If the document does not parse as a whole (a value that cannot be built is one
        reject instead).
    """
    items: list[_YamlItem] = []

    def node_text(node: yaml.Node) -> str:
        return doc[node.start_mark.index : node.end_mark.index]

    loader = _YamlLoader(doc)  # it checks the characters at once: a NUL raises already
    try:
        # (after a "..." line, more than one document: read them all)
        while loader.check_node():
            node = cast(yaml.Node, loader.get_node())  # not None: check_node said so
            at = node.start_mark.line
            if _expanded_size(node) > _YAML_EXPANDED_LIMIT:
                # An alias "bomb": a few lines that construct millions of values.
                reason = (
                    f"invalid YAML: aliases expand to more than {_YAML_EXPANDED_LIMIT:,} values"
                )
                items.append((first + at, node_text(node), reason))
                continue
            children = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for child in children:
                at = child.start_mark.line
                try:
                    obj = loader.construct_document(child)
                except (yaml.YAMLError, RecursionError) as exc:
                    # A value that cannot be built is its record's: the record's line.
                    items.append((first + at, node_text(child), _yaml_problem(exc)[1]))
                    continue
                if isinstance(obj, dict):
                    items.append((first + at, *_to_text(obj)))
                elif obj is not None or child is not node:
                    text = json.dumps(obj)[:_RAW_TEXT_LIMIT]
                    items.append((first + at, text, f"not an object ({_kind_of(obj)})"))
    finally:
        loader.dispose()
    return items


def _iter_yaml(name: str, data: bytes) -> Iterator[pa.Table]:
    """Candidates of a YAML stream: each document, or each item of a list document.

    A document that does not parse is rejected and reading goes on at the next one.
    """
    text = _decode_document(name, data)
    if isinstance(text, pa.Table):
        yield text
        return
    items: list[tuple[int, str, str | None]] = []
    for first, doc in _yaml_documents(text):
        items.extend(_yaml_items(doc, first))
        if len(items) >= BATCH_ROWS:
            yield _records(name, items)
            items = []
    if items:
        yield _records(name, items)


def _sniff(head: bytes) -> str:
    body = head[len(_BOM) :] if head.startswith(_BOM) else head
    s = body.lstrip()
    if s.startswith(b"["):
        return "json"
    if s.startswith(b"{"):
        first = s.split(b"\n", 1)[0]
        try:
            json.loads(first)
            return "lines"
        except ValueError:
            return "json"
    if s.startswith(b"---") or s.startswith(b"sms:"):
        return "yaml"
    return "lines"


def _rebatch(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    for t in tables:
        if len(t) > BATCH_ROWS:
            yield pa.Table.from_batches(t.to_batches(max_chunksize=BATCH_ROWS), schema=RAW_SCHEMA)
        elif len(t):
            yield t


def iter_raw_batches(
    inp: InputFile, on_bytes: Callable[[int], None] | None = None
) -> Iterator[pa.Table]:
    """Yield the record candidates of one input as Arrow tables of :data:`RAW_SCHEMA`.

    Records the reader already knows are bad (invalid UTF-8, invalid JSON or YAML, a
    non-object, too large to parse) carry a ``pre_error``; reading goes on after them. A
    compressed stream that turns out truncated or corrupt ends with one candidate whose
    ``pre_error`` says so, after the records read before the damage.

    Parameters
    ----------
    inp : InputFile
        The input.
    on_bytes : callable, optional
        Called with the number of bytes read from the file (on disk, compressed) or
        from standard input as reading goes: a progress bar's ``update``.

    Raises
    ------
    InputError
        If the input cannot be opened.
    """
    try:
        stream = _open(inp, on_bytes)
    except OSError as exc:
        raise InputError(inp.name, f"cannot be read: {exc.strerror or exc}") from exc
    last_line = 0
    try:
        kind = inp.kind
        if kind == "auto":
            head = stream.read(65536)
            kind = _sniff(head)
        else:
            head = b""
        if kind == "lines":
            # Smaller reads from a compressed stream keep the lines before any damage.
            chunk = _COMPRESSED_CHUNK_BYTES if inp.compression else None
            for table in _rebatch(_iter_lines(stream, inp.name, head, chunk)):
                last_line = table.column("source_line")[-1].as_py()
                yield table
            return
        data, damage = _read_whole(stream, head)
        docs = _iter_json_document if kind == "json" else _iter_yaml
        if kind == "json" and _looks_like_json_lines(data):
            docs = _as_lines
        for table in _rebatch(docs(inp.name, data)):
            last_line = table.column("source_line")[-1].as_py()
            yield table
        if damage is not None:
            raise damage
    except _decompress_errors() as exc:
        yield _reject(
            inp.name,
            last_line + 1,
            f"compressed data is truncated or corrupt ({exc}); the rest of the file is unread",
            "",
        )
    finally:
        if not inp.is_stdin:
            stream.close()


def _read_whole(stream: IO[bytes], head: bytes) -> tuple[bytes, BaseException | None]:
    """All of `stream` after `head`, and the damage that ended it early, if any.

    A damaged compressed stream keeps what was decompressed before the damage (a
    single ``read()`` would drop it with the error).
    """
    parts = [head]
    try:
        while piece := stream.read(_CHUNK_BYTES):
            parts.append(piece)
    except _decompress_errors() as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def _looks_like_json_lines(data: bytes) -> bool:
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    body = body.lstrip()
    if not body.startswith(b"{"):
        return False
    ends = [i for i in (body.find(b"\n"), body.find(b"\r")) if i >= 0]  # LF, CRLF or CR
    if not ends:
        return False
    first, rest = body[: min(ends)], body[min(ends) :]
    if not rest.strip():
        return False
    try:
        json.loads(first)
    except ValueError:
        return False
    return True


def _as_lines(name: str, data: bytes) -> Iterator[pa.Table]:
    yield from _iter_lines(io.BytesIO(data), name)


def line_boundaries(inp: InputFile, step: int) -> list[int]:
    """Offsets that cut the uncompressed lines file `inp` into pieces of about `step` bytes.

    Each offset is the start of a line (the byte after a ``\n``); the list starts with 0
    and ends with the file's size. Only a line's worth of bytes is read per cut.
    """
    cuts = [0]
    with open(inp.name, "rb") as stream:
        position = step
        while position < inp.size:
            stream.seek(position - 1)
            stream.readline()  # to the end of the line the cut falls in
            at = stream.tell()
            if at >= inp.size:
                break
            if at > cuts[-1]:
                cuts.append(at)
            position = max(at, position) + step
    cuts.append(inp.size)
    return cuts


def iter_line_range(inp: InputFile, start: int, end: int, first_line: int) -> Iterator[pa.Table]:
    """Yield the record candidates of the lines in bytes [`start`, `end`) of `inp`.

    A hook for splitting one large uncompressed JSON Lines file between workers (see
    :func:`line_boundaries`): the pieces together give exactly the candidates that
    :func:`iter_raw_batches` gives for the whole file.

    Parameters
    ----------
    inp : InputFile
        An uncompressed file of kind ``lines``.
    start, end : int
        Byte offsets, each the start of a line (or the file's size).
    first_line : int
        Number (1-based) of the line starting at `start`: one more than the number of
        line ends (LF, CRLF or a lone CR) before it.
    """
    with open(inp.name, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    offset = first_line - 1
    if start > 0:
        # The reader drops a byte-order mark at the start of what it reads; mid-file, that
        # would be a line's content. A blank line put before it keeps it (and is no record).
        data, offset = b"\n" + data, offset - 1
    for table in _rebatch(_iter_lines(io.BytesIO(data), inp.name)):
        lines = table.column("source_line").to_numpy() + offset
        yield table.set_column(1, "source_line", arrow_ints(lines))


#: Smallest uncompressed JSON Lines file that :func:`lines_sql` offers to DuckDB's own
#: reader [bytes]; None (the default): no file is. Measured on this project's 2-core
#: machine, DuckDB's reading cost about 0.9 CPU-s more per million records than cutting
#: the lines in Python (README, "Performance"), so it is opt-in: set
#: ``SMSANALYTICS_DUCKDB_LINES_MIN_BYTES`` (e.g. ``16777216``) to try it elsewhere.
DIRECT_MIN_BYTES: int | None = (
    int(os.environ["SMSANALYTICS_DUCKDB_LINES_MIN_BYTES"])
    if os.environ.get("SMSANALYTICS_DUCKDB_LINES_MIN_BYTES")
    else None
)
# Characters of a name that DuckDB's readers take as a pattern (glob) or a URL.
_PATTERN_CHARS = frozenset("*?[]{}")


def lines_sql(inp: InputFile) -> str | None:
    """SQL that reads the lines of `inp` with DuckDB's parallel CSV reader, or None.

    Offered (when :data:`DIRECT_MIN_BYTES` is set) for an uncompressed lines file of at
    least that size whose name DuckDB cannot take for a pattern. The query gives one row
    per line, in file order when the connection preserves insertion order: ``text`` (the
    line without its LF; null for an empty line) and ``blank`` (whether the line is no
    record, as :func:`iter_raw_batches` decides). A UTF-8 byte order mark at the start is dropped,
    as here.

    DuckDB reads only what this module would read as it is: the query *fails* on
    anything else (a CR, which this module reads as a line end; invalid UTF-8; a line
    long enough to need the record limits' checks; most uses of the separator byte
    ``\\x01``), and the caller then reads the file with :func:`iter_raw_batches`. What
    the CSV reader drops silently (a separator at the end of a line) is caught by
    counting: see :func:`lines_cover_file`.
    """
    if DIRECT_MIN_BYTES is None or inp.size < DIRECT_MIN_BYTES:
        return None
    if inp.kind != "lines" or inp.compression or inp.is_stdin:
        return None
    path = str(Path(inp.name).resolve())
    if _PATTERN_CHARS & set(path):
        return None
    # Python reads a line of this many bytes (newline included) the careful way.
    longest = _checked_size() - 2
    quoted = path.replace("'", "''")
    space = "(' ', chr(9))"  # a blank line starts with one of these (no CR, no LF here)
    return (
        "(SELECT text, text IS NULL OR (left(text, 1) IN " + space
        + " AND ltrim(text, ' ' || chr(9) || chr(11) || chr(12)) = '') AS blank "
        f"FROM read_csv('{quoted}', columns = {{'text': 'VARCHAR'}}, header = false, "
        "auto_detect = false, delim = chr(1), quote = '', escape = '', new_line = '\\n', "
        f"max_line_size = {longest}, strict_mode = true))"
    )


def lines_cover_file(inp: InputFile, rows: int, text_bytes: int) -> bool:
    """Whether `rows` lines of `text_bytes` bytes in all (:func:`lines_sql`'s ``text``)
    are the whole file `inp`, every byte but the line ends and a byte order mark.

    The proof that DuckDB's reader dropped nothing: a line it skipped, or a byte it
    took for a separator, leaves the sizes unequal. A file holding a CR anywhere is not
    covered: DuckDB's reader takes a CR before a LF as part of the line end (a CRLF
    after an empty line read as a line ``"\r"``), where this module reads CR, CRLF and LF
    as line ends of their own, so the line numbers could differ with equal sizes.
    """
    with open(inp.name, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        while chunk := stream.read(1 << 24):
            if b"\r" in chunk:
                return False
        stream.seek(0)
        head = stream.read(len(_BOM))
        stream.seek(max(size - 1, 0))
        last = stream.read(1)
    ends = rows if last == b"\n" else rows - 1  # the last line may have no LF
    bom = len(_BOM) if head == _BOM else 0
    return rows > 0 and text_bytes + ends + bom == size
