"""Pseudonymised datasets: keyed tokens for phone numbers, and redacted message bodies.

This module owns what "pseudonymised" means here. Sender numbers (and, when asked,
recipient numbers) are replaced by a *token*, a keyed hash::

    token = "anon:" + base32(HMAC-SHA256(key, "smsanalytics/number/v1\\0" + number)[:10])

* **Stable**: the same number and key always give the same token, so per-sender questions
  (messages per sender, repeat senders, opt-outs per sender) still have their answers.
* **Not reversible without the key**: a phone-number space is small (a country's mobile
  range is about 10^8 to 10^9 numbers), so a plain ``sha256(number)`` is reversed by
  hashing every candidate. With a secret 256-bit key the candidates cannot be hashed.
* **Short**: 80 bits (16 base32 characters). For 10 million distinct senders the chance
  that any two share a token is about 4e-11.

Numbers are normalised before hashing: surrounding white space and the separators
``space - . ( )`` are removed, so ``+33 6 39 98 00 42`` and ``+33639980042`` share a
token; nothing else is changed (no ``+`` is guessed). Nulls stay null.

Redacting bodies nulls ``body_text`` and keeps every column computed from it (encoding,
parts, keyword flags, ...). Every other column is kept as it is: country, type, location
and network of the numbers, times, costs, sids.

The key never enters a dataset. Its *check value*, ``HMAC(key, "smsanalytics/key-check/v1")``
cut to 64 bits, is recorded in the manifest so that a later conversion with another key
(or without one) is refused instead of mixing tokens that cannot be compared.

Key files hold the key as text, 64 hex digits (what :func:`generate_key` writes), or as
base64 text, or as raw random bytes; at least 16 bytes of key material are required.
Other text (a passphrase) is refused: it could be guessed, and then every token reversed.
So is key material that is not plausibly random, whatever its encoding (a word typed as
base64, ``00...00`` as hex): bytes that repeat a shorter pattern, count up or down by a
fixed step, use few distinct values (fewer than half of what random bytes of that length
almost surely show) or are all printable text, and key text of a single kind of
character (only lower-case letters, only digits). Random keys fail these checks with a
probability below one in a million (16 bytes) and one in 10^12 (32 bytes, as
:func:`generate_key` writes).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import dataset as ds
from .errors import DatasetError, KeyFileError, PrivacyOptionsError
from .schema import MESSAGE_SCHEMA, PARTITION_COLUMN

__all__ = [
    "KeyFileError",
    "PrivacyOptionsError",
    "MANIFEST_KEY",
    "TOKEN_PREFIX",
    "MIN_KEY_BYTES",
    "load_key",
    "generate_key",
    "key_check",
    "weak_key_reason",
    "normalise_number",
    "pseudonymize_number",
    "pseudonymize_numbers",
    "transform_batch",
    "transform_table",
    "manifest_record",
    "check_compatible",
    "pseudonymize_dataset",
]

#: Prefix of every token; a phone number never starts with it.
TOKEN_PREFIX = "anon:"
#: Least key material accepted [bytes]; :func:`generate_key` writes 32.
MIN_KEY_BYTES = 16
#: Largest key file read [bytes].
MAX_KEY_FILE_BYTES = 4096
#: Manifest entry recording what a dataset's pseudonymisation did (never the key).
MANIFEST_KEY = "pseudonymized"
_TOKEN_BYTES = 10  # 80 bits: 16 base32 characters
_NUMBER_CONTEXT = b"smsanalytics/number/v1\0"
_CHECK_CONTEXT = b"smsanalytics/key-check/v1"
_SEPARATORS = re.compile(r"[\s\-.()]")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_BATCH_ROWS = 65_536


_ONE_KIND = (re.compile(rb"[a-z]+=*"), re.compile(rb"[A-Z]+=*"), re.compile(rb"[0-9]+=*"))


def weak_key_reason(key: bytes) -> str | None:
    """Say why `key` is not plausibly random key material, or return None.

    Examples
    --------
    >>> weak_key_reason(bytes(16))
    'its bytes repeat a pattern of 1 byte'
    >>> weak_key_reason(bytes.fromhex("8c1f03a2e7b45d96f0c27a4b1e93d568")) is None
    True
    """
    n = len(key)
    period = _shortest_period(key)
    if period <= n // 2:
        return f"its bytes repeat a pattern of {period} byte{'s' if period > 1 else ''}"
    steps = {(key[i + 1] - key[i]) % 256 for i in range(n - 1)}
    if len(steps) == 1:
        return "its bytes count up or down by a fixed step"
    distinct = len(set(key))
    if distinct < min(n, 256) // 2:
        return f"it uses only {distinct} distinct byte values in {n} bytes"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in key):
        return "its bytes are all printable text"
    return None


def _shortest_period(data: bytes) -> int:
    """The least p with ``data[i] == data[i + p]`` for every i (Knuth-Morris-Pratt), O(n)."""
    border = [0] * len(data)  # border[i]: longest proper prefix of data[:i+1] that ends it
    k = 0
    for i in range(1, len(data)):
        while k and data[i] != data[k]:
            k = border[k - 1]
        if data[i] == data[k]:
            k += 1
        border[i] = k
    return len(data) - (border[-1] if data else 0)


def _decode_key(data: bytes) -> bytes | None:
    """The key in a key file's bytes; None for text that is neither hex nor base64."""
    text = data.strip()
    if text and len(text) % 2 == 0 and _HEX.fullmatch(text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        decoded = base64.b64decode(text, validate=True)
        if decoded:
            return decoded
    except (binascii.Error, ValueError):
        pass
    # Random raw bytes are almost never printable text; a passphrase is, and a
    # passphrase can be guessed, which is what the key is there to prevent.
    if text and all(32 <= b < 127 or b in b"\t\r\n" for b in text):
        return None
    return data


def _not_a_file(mode: int) -> str | None:
    """What a file of `mode` is, when it is not a regular file (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_key_file(path: str | Path) -> bytes:
    """The first bytes of the key file `path` (at most a little more than a key).

    Only a regular file is read. A named pipe would block the open or the read until
    something writes to it, forever if nothing does; a device such as ``/dev/zero`` or a
    terminal is no key either. It is refused by its kind before it is opened, and opened
    without blocking and checked again, in case it was swapped in between.
    """
    def refuse(kind: str) -> KeyFileError:
        return KeyFileError(
            str(path),
            f"is {kind}, not a regular file; a key file is a file "
            "(make one with `smsanalytics keygen FILE`)",
        )

    try:
        kind = _not_a_file(os.stat(path).st_mode)
        if kind is not None:
            raise refuse(kind)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot read the key file: {exc.strerror or exc}") from exc
    try:
        kind = _not_a_file(os.fstat(fd).st_mode)
        if kind is not None:
            raise refuse(kind)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot read the key file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def load_key(path: str | Path) -> bytes:
    """Read a pseudonymisation key from file `path`.

    Parameters
    ----------
    path : str or Path
        A file holding the key: hex text (as :func:`generate_key` writes it), base64
        text, or raw bytes.

    Returns
    -------
    bytes
        The key material.

    Raises
    ------
    KeyFileError
        If the file cannot be read, is not a regular file (a named pipe, a device, a
        directory), or holds fewer than :data:`MIN_KEY_BYTES` bytes of key, or key
        material that is not plausibly random.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "key")
    >>> generate_key(p)
    >>> len(load_key(p))
    32
    """
    data = _read_key_file(path)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(str(path), f"is larger than {MAX_KEY_FILE_BYTES:,} bytes: not a key "
                           "file (make one with `smsanalytics keygen FILE`)")
    key = _decode_key(data)
    if key is None:
        raise KeyFileError(
            str(path),
            "holds text that is neither hex nor base64; a passphrase can be guessed, "
            "use a random key (make one with `smsanalytics keygen FILE`)",
        )
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            str(path),
            f"holds {len(key)} bytes of key; at least {MIN_KEY_BYTES} are needed "
            "(make one with `smsanalytics keygen FILE`)",
        )
    text = data.strip()
    weak = weak_key_reason(key)
    if weak is None and key != data and any(k.fullmatch(text) for k in _ONE_KIND):
        weak = "its text uses a single kind of character (a word, not random base64)"
    if weak is not None:
        raise KeyFileError(
            str(path),
            f"does not hold a random key: {weak}; a guessable key lets anyone reverse the "
            "tokens (make one with `smsanalytics keygen FILE`)",
        )
    return key


def generate_key(path: str | Path) -> None:
    """Write a new random 256-bit key to `path` as hex text, readable by its owner only.

    Raises
    ------
    KeyFileError
        If `path` already exists (a key is never overwritten: the tokens made with it
        would lose their meaning) or cannot be written.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(str(path), "exists; a key file is never overwritten") from None
    except OSError as exc:
        raise KeyFileError(str(path), f"cannot be written: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(os.urandom(32).hex() + "\n")


def key_check(key: bytes) -> str:
    """Return the check value of `key` (16 hex digits): it identifies, never reveals it."""
    return hmac.new(key, _CHECK_CONTEXT, hashlib.sha256).hexdigest()[:16]


def normalise_number(number: str) -> str:
    """Return `number` without white space or the separators ``- . ( )``."""
    return _SEPARATORS.sub("", number)


def _tokeniser(key: bytes) -> Any:
    base = hmac.new(key, _NUMBER_CONTEXT, hashlib.sha256)

    def token(number: str) -> str:
        h = base.copy()
        h.update(normalise_number(number).encode("utf-8", "surrogatepass"))
        digest = h.digest()[:_TOKEN_BYTES]
        return TOKEN_PREFIX + base64.b32encode(digest).decode("ascii").lower()

    return token


def pseudonymize_number(number: str, key: bytes) -> str:
    """Return the token of one phone number.

    Examples
    --------
    >>> key = bytes.fromhex("5f0e9b27c4d1a86e3b72f90d4ac6158e27d3b0694fa8e1c5329d7b06e84af13c")
    >>> pseudonymize_number("+33639980042", key) == pseudonymize_number("+33 6 39 98 00 42", key)
    True
    >>> pseudonymize_number("+33639980042", key).startswith("anon:")
    True
    """
    _check_key(key)
    return _tokeniser(key)(number)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise PrivacyOptionsError(f"a pseudonymisation key is at least {MIN_KEY_BYTES} bytes")
    weak = weak_key_reason(bytes(key))
    if weak is not None:
        raise PrivacyOptionsError(f"the pseudonymisation key is not random: {weak}")


def pseudonymize_numbers(numbers: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Replace every number of `numbers` by its token; nulls stay null.

    Each distinct number is hashed once (the array is dictionary-encoded, the dictionary
    hashed, and the tokens taken back by index), so a long-tailed column of millions of
    rows costs one HMAC per sender.

    Parameters
    ----------
    numbers : pyarrow.Array or pyarrow.ChunkedArray
        Strings (plain or dictionary-encoded).
    key : bytes
        The secret key (at least :data:`MIN_KEY_BYTES` bytes).

    Returns
    -------
    pyarrow.Array
        Strings, ``anon:`` followed by 16 base32 characters.

    Raises
    ------
    PrivacyOptionsError
        If `key` is shorter than :data:`MIN_KEY_BYTES`.
    """
    _check_key(key)
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks() if numbers.num_chunks else pa.array([], pa.string())
    if not pa.types.is_dictionary(numbers.type):
        numbers = pc.dictionary_encode(numbers.cast(pa.string()))
    token = _tokeniser(key)
    values = numbers.dictionary.cast(pa.string()).to_pylist()
    tokens = pa.array([None if v is None else token(v) for v in values], pa.string())
    return tokens.take(numbers.indices)


def transform_batch(
    batch: pa.RecordBatch,
    *,
    key: bytes | None,
    redact_bodies: bool,
    pseudonymize_recipients: bool = False,
) -> pa.RecordBatch:
    """Pseudonymise one batch of messages.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Message columns (any subset of :data:`MESSAGE_SCHEMA`, plus others such as the
        ``month`` partition, which are kept).
    key : bytes or None
        Key for the number tokens; None leaves numbers as they are.
    redact_bodies : bool
        Null ``body_text``. Columns computed from the body are kept.
    pseudonymize_recipients : bool, default False
        Also replace ``to_number`` (the customer's own numbers) by tokens.

    Returns
    -------
    pyarrow.RecordBatch
        The batch with the same schema; only those columns changed.

    Raises
    ------
    PrivacyOptionsError
        If recipients are to be pseudonymised without a key, or the key is too short.
    """
    if pseudonymize_recipients and key is None:
        raise PrivacyOptionsError("pseudonymising recipients needs a key (--key-file)")
    columns = list(batch.columns)
    names = batch.schema.names
    targets = []
    if key is not None:
        targets.append("from_number")
        if pseudonymize_recipients:
            targets.append("to_number")
    for name in targets:
        if name in names:
            i = names.index(name)
            tokens = pseudonymize_numbers(columns[i], key)  # type: ignore[arg-type]
            columns[i] = tokens.cast(batch.schema.field(i).type)
    if redact_bodies and "body_text" in names:
        i = names.index("body_text")
        columns[i] = pa.nulls(batch.num_rows, batch.schema.field(i).type)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def transform_table(
    table: pa.Table,
    *,
    key: bytes | None,
    redact_bodies: bool,
    pseudonymize_recipients: bool = False,
) -> pa.Table:
    """:func:`transform_batch` over every batch of `table`."""
    batches = [
        transform_batch(
            b, key=key, redact_bodies=redact_bodies, pseudonymize_recipients=pseudonymize_recipients
        )
        for b in table.to_batches()
    ]
    return pa.Table.from_batches(batches, schema=table.schema)


def manifest_record(
    key: bytes | None, *, redact_bodies: bool, pseudonymize_recipients: bool = False
) -> dict[str, Any] | None:
    """What to record under :data:`MANIFEST_KEY` in a dataset's manifest.

    Returns None when nothing is pseudonymised (the manifest then has no such entry).
    The key itself is never recorded; its :func:`key_check` is.
    """
    if key is None and not redact_bodies:
        return None
    return {
        "numbers": key is not None,
        "recipients": bool(pseudonymize_recipients and key is not None),
        "bodies_redacted": bool(redact_bodies),
        "key_check": key_check(key) if key is not None else None,
        "token": f"{TOKEN_PREFIX}base32(HMAC-SHA256)[:80 bits], v1" if key is not None else None,
    }


def _describe(record: dict[str, Any] | None) -> str:
    if not record:
        return "plain numbers and bodies"
    parts = []
    if record.get("numbers"):
        parts.append(
            "senders" + (" and recipients" if record.get("recipients") else "") + " pseudonymised"
        )
    if record.get("bodies_redacted"):
        parts.append("bodies redacted")
    return ", ".join(parts) or "plain numbers and bodies"


def check_compatible(
    manifest: dict[str, Any],
    out: str | Path,
    key: bytes | None,
    *,
    redact_bodies: bool,
    pseudonymize_recipients: bool = False,
) -> None:
    """Refuse adding rows to the dataset `out` that would not match its rows.

    A dataset holds plain numbers, or tokens of one key, never a mix; bodies are kept in
    all its rows or in none. Call it before an incremental conversion (not with
    overwrite, which replaces everything).

    Parameters
    ----------
    manifest : dict
        The dataset's manifest ({} for a new dataset: then anything goes).
    out : str or Path
        The dataset (for the message).
    key, redact_bodies, pseudonymize_recipients
        What the conversion would do.

    Raises
    ------
    DatasetError
        If the conversion's pseudonymisation differs from the dataset's.
    """
    if not manifest:
        return
    have = manifest.get(MANIFEST_KEY) or None
    want = manifest_record(
        key, redact_bodies=redact_bodies, pseudonymize_recipients=pseudonymize_recipients
    )
    fields = ("numbers", "recipients", "bodies_redacted")
    same_kind = {f: bool((have or {}).get(f)) for f in fields} == {
        f: bool((want or {}).get(f)) for f in fields
    }
    if not same_kind:
        raise DatasetError(
            str(out),
            f"holds {_describe(have)}; this conversion would add "
            f"{_describe(want)}; convert with the same privacy options, or into a new "
            "dataset (or --overwrite)",
        )
    if have and have.get("numbers") and have.get("key_check") != (want or {}).get("key_check"):
        raise DatasetError(
            str(out),
            "was pseudonymised with another key; its tokens and this key's would not "
            "match; use the same key file, or convert into a new dataset",
        )


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with exactly the columns and types of :data:`MESSAGE_SCHEMA`."""
    n = batch.num_rows
    cols = []
    for f in MESSAGE_SCHEMA:
        if f.name in batch.schema.names:
            cols.append(batch.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(cols, schema=MESSAGE_SCHEMA)


def _iter_source(src: Path, files: list[Path]) -> Iterator[tuple[str | None, pa.RecordBatch]]:
    """Yield (partition value of the file, or None, batch) for every file of `src`."""
    for f in files:
        folder = f.parent.name
        month = folder.removeprefix(ds.PARTITION_DIR_PREFIX) if f.parent != src else None
        if month == folder:  # not a month=... folder
            month = None
        try:
            reader = pq.ParquetFile(f)
            for batch in reader.iter_batches(batch_size=_BATCH_ROWS):
                yield month, _conform(batch)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(str(src), f"cannot read {f.name}: {exc}") from exc


def _with_month(batch: pa.RecordBatch, month: str | None) -> pa.RecordBatch:
    """`batch` plus the ``month`` partition column of the file it comes from, if known.

    Without one, the writer works the month out from the times, as conversion does
    (:func:`smsanalytics.dataset.month_groups`).
    """
    if month is None:
        return batch
    col = pa.array([month] * batch.num_rows, pa.string())
    return pa.RecordBatch.from_arrays(
        [*batch.columns, col], names=[*batch.schema.names, PARTITION_COLUMN]
    )


def _same_or_nested(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def pseudonymize_dataset(
    src: str | Path,
    out: str | Path,
    *,
    key: bytes | None,
    redact_bodies: bool = False,
    pseudonymize_recipients: bool = False,
    lock_timeout: float = 60.0,
) -> int:
    """Write a pseudonymised copy of the dataset `src` as a new dataset `out`.

    Parameters
    ----------
    src : str or Path
        A dataset written by :func:`smsanalytics.convert`. It is only read.
    out : str or Path
        A new dataset directory: it must not exist or be empty, and must not be `src`,
        inside it, or contain it.
    key : bytes or None
        Key for the sender tokens (see :func:`load_key`); None keeps numbers (redaction
        only).
    redact_bodies : bool
        Null ``body_text``, keeping the columns computed from it.
    pseudonymize_recipients : bool
        Also replace recipient numbers by tokens.
    lock_timeout : float
        Seconds to wait for a conversion holding either dataset's lock [s].

    Returns
    -------
    int
        Rows written (the rows of `src`: sids are untouched, so none merge).

    Raises
    ------
    DatasetError
        If `src` is not a readable dataset, `out` is not a new directory, or `src` is
        already pseudonymised with numbers (tokens of tokens would match nothing).
    PrivacyOptionsError
        If there is nothing to do (no key, no redaction) or recipients without a key.
    """
    if key is None and not redact_bodies:
        raise PrivacyOptionsError("nothing to do: give a key, or redact bodies")
    if pseudonymize_recipients and key is None:
        raise PrivacyOptionsError("pseudonymising recipients needs a key (--key-file)")
    if key is not None:
        _check_key(key)
    src_path = Path(src).absolute()
    out_path = Path(out).absolute()
    if _same_or_nested(src_path.resolve(), out_path.resolve()):
        raise DatasetError(
            str(out), "is the source dataset or inside it; write the copy to another directory"
        )
    if not src_path.is_dir():
        raise DatasetError(str(src), "no dataset here (not a directory)")
    manifest = ds.read_manifest(src_path)
    files = ds.dataset_files(src_path)
    if not manifest and not files:
        raise DatasetError(str(src), "no dataset here (no Parquet files, no manifest)")
    have = manifest.get(MANIFEST_KEY) or {}
    if key is not None and have.get("numbers"):
        raise DatasetError(str(src), "is already pseudonymised; its numbers are tokens")
    partition_by = manifest.get("partition_by") or (
        "month" if any(f.parent != src_path for f in files) else "none"
    )
    if out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())):
        raise DatasetError(str(out), "exists and is not empty; choose a new directory")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            # Hold the source still: a conversion committing into it would swap its files.
            stack.enter_context(ds.locked(src_path, timeout=lock_timeout))
        except PermissionError:
            pass  # a read-only source cannot be converted into either
        except OSError as exc:
            if exc.errno != errno.EROFS:  # read-only: same as above
                raise
        stack.enter_context(ds.locked(out_path, timeout=lock_timeout))
        ds.clean_leftovers(out_path)
        files = ds.dataset_files(src_path)
        staging = ds.new_version_dir(out_path)
        try:
            rows = 0

            def batches() -> Iterable[pa.RecordBatch]:
                nonlocal rows
                for month, batch in _iter_source(src_path, files):
                    rows += batch.num_rows
                    batch = transform_batch(
                        batch,
                        key=key,
                        redact_bodies=redact_bodies,
                        pseudonymize_recipients=pseudonymize_recipients,
                    )
                    yield _with_month(batch, month) if partition_by == "month" else batch

            ds.write_partitioned(batches(), staging, partition_by=partition_by)
            record = (
                manifest_record(
                    key,
                    redact_bodies=redact_bodies,
                    pseudonymize_recipients=pseudonymize_recipients,
                )
                or {}
            )
            if have:  # e.g. redacting bodies of a dataset whose numbers are tokens already
                record = {k: record.get(k) or have.get(k) for k in {*record, *have}}
            ds.write_manifest(
                staging,
                {
                    "version": manifest.get("version", 1),
                    "partition_by": partition_by,
                    "rows": rows,
                    MANIFEST_KEY: record,
                },
            )
            ds.commit_version(staging, out_path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return rows
