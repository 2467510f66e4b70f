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
parts, keyword flags, ...).

A record may repeat its number or body in other fields (an error quoting the sender, a
status holding the body). In a private batch (a key, or bodies redacted), each row's
other columns are cleared of what that row's tokens and redaction hide:

* Text columns that may hold what the record said (``_SCANNED``: sid, error, network,
  the number type/country/location columns, a recipient or body that is kept): each
  occurrence of the row's pseudonymised numbers, in any common notation (the digits
  after the country code or trunk 0, at least :data:`MIN_NUMBER_DIGITS`, with
  separators between them, and the code or 0 before them), becomes the number's token;
  each occurrence of the redacted body becomes :data:`WITHHELD`. Secrets shorter than
  :data:`MIN_SECRET_CHARS` replace only a whole value. Overlapping matches of two
  secrets become :data:`WITHHELD` together. DuckDB finds the candidate cells in one
  vectorised pass; only those are rewritten one by one.
* Enumerated columns, and the statuses of ``status_history``: a value Callr does not
  document becomes :data:`WITHHELD`.
* ``cost_cents``, ``parts``, ``event_try``: a value whose digits hold the row's
  pseudonymised number becomes null.
* ``source_file``: a ``+`` number in a file name becomes its token (:func:`label_files`).

The rule is per row: another row's number or body is not looked for. Every other column
is kept as it is: country, type, location and network of the numbers, times, costs.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path
from typing import Any, cast, overload

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import dataset as ds
from .errors import DatasetError, InputError, KeyFileError, PrivacyOptionsError
from .paths import check_output_path, read_regular_file
from .schema import ENUM_VALUES, MESSAGE_SCHEMA, PARTITION_COLUMN

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
    "label_files",
    "WITHHELD",
    "MIN_SECRET_CHARS",
    "MIN_NUMBER_DIGITS",
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


def _read_key_file(path: str | Path) -> bytes:
    """The first bytes of the key file `path` (at most a little more than a key).

    Only a regular file is read (:func:`smsanalytics.paths.read_regular_file`): a named
    pipe would block forever, a device such as ``/dev/zero`` is no key either.
    """
    try:
        return read_regular_file(path, MAX_KEY_FILE_BYTES)
    except InputError as exc:
        hint = "; a key file is a file (make one with `smsanalytics keygen FILE`)"
        reason = exc.reason.replace("cannot be read", "cannot read the key file", 1)
        raise KeyFileError(str(path), reason + (hint if "regular" in reason else "")) from exc


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


def _tokeniser(key: bytes) -> Callable[[str], str]:
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


def pseudonymize_numbers(
    numbers: pa.Array[Any] | pa.ChunkedArray[Any], key: bytes
) -> pa.StringArray:
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
    if not isinstance(numbers, pa.DictionaryArray):
        numbers = numbers.cast(pa.string()).dictionary_encode()
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

    Besides the tokens and the redacted body, the other columns are cleared of what the
    tokens and the redaction hide (the module's docstring has the rules): occurrences of
    each row's own numbers and body in its text columns, unknown enumerated values,
    amounts holding a number, and numbers in file names.

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
        The batch with the same schema.

    Raises
    ------
    PrivacyOptionsError
        If recipients are to be pseudonymised without a key, or the key is too short.
    """
    if pseudonymize_recipients and key is None:
        raise PrivacyOptionsError("pseudonymising recipients needs a key (--key-file)")
    if key is None and not redact_bodies:
        return batch
    names = batch.schema.names
    columns = dict(zip(names, batch.columns, strict=True))
    secrets = []
    tokenised = []
    if key is not None:
        tokenised = ["from_number", "to_number"] if pseudonymize_recipients else ["from_number"]
        for name in tokenised:
            if name in columns:
                tokens = pseudonymize_numbers(columns[name], key)
                secrets.append(_Secret(columns[name], tokens))
                columns[name] = tokens
    if redact_bodies and "body_text" in columns:
        secrets.append(_Secret(columns["body_text"], None))
        columns["body_text"] = pa.nulls(batch.num_rows, pa.string())
    text = [
        n
        for n in names
        if n in _SCANNED
        and n not in tokenised
        and not (redact_bodies and n == "body_text")
        and columns[n].null_count < batch.num_rows  # (columns a shape lacks: nothing to scan)
    ]
    amounts = [n for n in _AMOUNTS if n in columns] if key is not None else []
    flags = _secret_flags(columns, text, amounts, secrets)
    for name in text:
        columns[name] = _scrub_column(columns[name], flags[name], secrets)
    for name in amounts:
        columns[name] = pc.if_else(flags[name], pa.scalar(None, columns[name].type),
                                   columns[name])  # fmt: skip
    for name in ENUM_VALUES:
        if name in columns:
            columns[name] = _known_or_withheld(columns[name], ENUM_VALUES[name])
    if "status_history" in columns:
        columns["status_history"] = _history_known_or_withheld(columns["status_history"])
    if key is not None and "source_file" in columns:
        columns["source_file"] = label_files(columns["source_file"], key)
    return pa.RecordBatch.from_arrays(
        [columns[n].cast(batch.schema.field(n).type) for n in names], schema=batch.schema
    )


#: What replaces, in a private dataset, a redacted body found in another column, an
#: enumerated value Callr does not document, and a match of several secrets at once.
WITHHELD = "\u2026"
#: A secret this long or longer is replaced wherever it occurs; a shorter one only where
#: it is a column's whole value (blanks aside): "ok" or "1" is in too much other text.
MIN_SECRET_CHARS = 4
#: A number's digits after its country code (or trunk 0) are looked for when at least
#: this many: fewer would match unrelated digits.
MIN_NUMBER_DIGITS = 6
# What may stand between the digits of a number as people write it. The same characters
# in the SQL that finds candidates (translate) and in the patterns that replace them.
_NUMBER_SEPARATORS = " \t\n\r\f\v-.()/\u00a0\u2009\u202f"
_SEP = "[" + re.escape(_NUMBER_SEPARATORS) + "]*"
_BLANKS = " \t\n\r\f\v"
# Text columns that may hold what a record said, so may repeat its numbers or body.
# Left out: the tokens, the file name (labelled on its own, see label_files), and the
# columns this package computes (from the body: keyword, unicode_chars; from the
# numbers' metadata: from_carrier, network_country, network_operator).
_SCANNED = (
    "sid", "from_number", "to_number", "body_text", "error", "network", "from_type",
    "from_country", "from_location", "to_type", "to_country", "to_location", "event_id",
)  # fmt: skip
# Amounts and counts whose digits can hold a number (a `cost` of "+33612345678" is a
# valid amount).
_AMOUNTS = ("cost_cents", "parts", "event_try")
# In file names: a + and at least 7 digits (separators between them allowed). Bare runs
# of digits are left: names hold dates, times and ids (the receiver's archives have runs
# of 12 digits), which would be tokenised past recognition.
_NUMBER_IN_NAME = re.compile(rf"\+{_SEP}[0-9](?:{_SEP}[0-9]){{6,}}")


def _strings(values: pa.Array[Any]) -> pa.StringArray:
    """`values` cast to strings (the stubs call the result an array of string scalars)."""
    return cast(pa.StringArray, values.cast(pa.string()))


class _Secret:
    """A column each row of which must not show up in the row's other columns.

    `tokens` replace a number's occurrences (so that text keeps pointing at the sender,
    as its token does); without them (a body), :data:`WITHHELD` does.
    """

    def __init__(self, values: pa.Array[Any], tokens: pa.StringArray | None) -> None:
        self.values = _strings(values)
        self.tokens = tokens
        self.core: pa.StringArray | None
        if tokens is None:
            literal = pc.utf8_trim(self.values, _BLANKS)
            self.core = None
        else:
            encoded = self.values.dictionary_encode()
            found = [_number_secret(v) for v in encoded.dictionary.to_pylist()]
            literal = pa.array([f[0] for f in found], pa.string()).take(encoded.indices)
            self.core = pa.array([f[1] for f in found], pa.string()).take(encoded.indices)
        empty = pc.equal(pc.utf8_length(literal), pa.scalar(0))
        # the stubs type if_else for scalars or arrays alike: arrays in, an array out
        self.literal = cast(
            pa.StringArray, pc.if_else(empty, pa.scalar(None, pa.string()), literal)
        )

    def spans(self, text: str, row: int) -> list[tuple[int, int, str]]:
        """Where row `row`'s secret occurs in `text`, and what replaces it."""
        value = self.values[row].as_py()
        if value is None:
            return []
        if self.tokens is None:
            literal, pattern, replacement = value.strip(_BLANKS), None, WITHHELD
        else:
            literal, core, code = _number_secret(value)
            pattern = None if core is None else _number_pattern(core, code)
            replacement = self.tokens[row].as_py()
        found = []
        if pattern is not None:
            found += [(m.start(), m.end(), replacement) for m in pattern.finditer(text)]
        if len(literal) >= MIN_SECRET_CHARS:
            at = text.find(literal)
            while at >= 0:
                found.append((at, at + len(literal), replacement))
                at = text.find(literal, at + 1)
        elif literal and text.strip(_BLANKS) == literal:
            found.append((0, len(text), replacement))
        return found


@lru_cache(maxsize=1 << 16)
def _number_secret(number: str) -> tuple[str, str | None, str | None]:
    """A number's literal text, its significant digits, and its country code.

    The digits are those after the country code (``+33 6 87 65 43 21`` -> ``687654321``)
    or after a trunk 0 (``06 87 65 43 21``): every notation of the number holds them.
    None for what is not a number (``INFO``) or has fewer than
    :data:`MIN_NUMBER_DIGITS` such digits.
    """
    literal = number.strip(_BLANKS)
    plain = re.fullmatch(r"(\+|00)?([0-9]+)", normalise_number(literal))
    if plain is None:
        return literal, None, None
    international, digits = plain.groups()
    code = None
    if international or not digits.startswith("0"):
        code = next(
            (digits[:n] for n in (1, 2, 3) if digits[:n] in _calling_codes()), None
        )
    core = digits[len(code):] if code else digits.lstrip("0")
    if len(core) < MIN_NUMBER_DIGITS:
        return literal, None, None
    return literal, core, code


@lru_cache(maxsize=1 << 12)
def _number_pattern(core: str, code: str | None) -> re.Pattern[str]:
    """The digits `core` with separators between them, and the country code or trunk 0
    before them if there is one. Compiled only for rows where a number was found (a
    pattern takes a millisecond or two)."""
    if code:
        before = rf"(?:(?:\+|00){_SEP})?{code}{_SEP}"
    else:
        before = rf"(?:\+|00){_SEP}[0-9]{{1,3}}{_SEP}"
    return re.compile(rf"(?:{before})?(?:0{_SEP})?" + _SEP.join(core))


@lru_cache(maxsize=1)
def _calling_codes() -> frozenset[str]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE  # prefix-free: one reading

    return frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def _secret_flags(
    columns: dict[str, pa.Array[Any]],
    text: list[str],
    amounts: list[str],
    secrets: list[_Secret],
) -> dict[str, pa.BooleanArray]:
    """For each column, the rows where a secret of the row may occur (DuckDB, vectorised).

    A superset of where :meth:`_Secret.spans` finds one: the literal text anywhere, and a
    number's significant digits once separators are taken out. True rows are few in real
    data; only they are looked at one by one.
    """
    if not secrets or not (text or amounts):
        return {c: pa.repeat(False, len(columns[c])) for c in [*text, *amounts]}
    inputs = {f"c{i}": columns[c] for i, c in enumerate([*text, *amounts])}
    for k, secret in enumerate(secrets):
        inputs[f"lit{k}"] = secret.literal
        if secret.core is not None:
            inputs[f"core{k}"] = secret.core
    seps = _NUMBER_SEPARATORS.replace("'", "''")
    blanks = _BLANKS.replace("'", "''")
    # (RE2 reads \t and \u00a0 as Python does; the class holds no quote)
    digits = f"[0-9](?:{_SEP}[0-9]){{{MIN_NUMBER_DIGITS - 1}}}"
    selects = []
    for i, _ in enumerate(text):
        x = f"CAST(c{i} AS VARCHAR)"
        tests = []
        for k, secret in enumerate(secrets):
            tests.append(f"contains({x}, lit{k}) OR trim({x}, '{blanks}') = lit{k}")
            if secret.core is not None:  # (the pattern first: translating every cell is slow)
                tests.append(f"(regexp_matches({x}, '{digits}') "
                             f"AND contains(translate({x}, '{seps}', ''), core{k}))")
        selects.append(f"coalesce({' OR '.join(tests)}, false) AS c{i}")
    for i in range(len(text), len(text) + len(amounts)):
        x = f"CAST(c{i} AS VARCHAR)"
        tests = [f"contains({x}, core{k})" for k, s in enumerate(secrets) if s.core is not None]
        selects.append(f"coalesce({' OR '.join(tests) or 'false'}, false) AS c{i}")
    con = duckdb.connect(":memory:")
    try:
        con.register("_rows", pa.table(inputs))
        flags = con.sql(f"SELECT {', '.join(selects)} FROM _rows").to_arrow_table()
    finally:
        con.close()
    # (every column the SELECT gives is a boolean)
    return {
        c: cast(pa.BooleanArray, flags.column(i).combine_chunks())
        for i, c in enumerate([*text, *amounts])
    }


def _scrub_column(
    values: pa.Array[Any], flags: pa.BooleanArray, secrets: list[_Secret]
) -> pa.Array[Any]:
    """`values` with each row's secrets replaced, in the rows `flags` marks."""
    rows: list[int] = pc.indices_nonzero(flags).to_numpy().tolist()
    if not rows:
        return values
    plain = _strings(values)
    new = []
    for row in rows:
        text = plain[row].as_py()
        spans = [span for secret in secrets for span in secret.spans(text, row)]
        new.append(_replace_spans(text, spans))
    scrubbed: pa.StringArray = pc.replace_with_mask(plain, flags, pa.array(new, pa.string()))
    return scrubbed


def _replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each span replaced; overlapping spans of two secrets by WITHHELD."""
    if not spans:
        return text
    merged: list[list[Any]] = []
    for start, end, replacement in sorted(spans):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            if end > last[1] or replacement != last[2]:
                last[2] = WITHHELD if replacement != last[2] else replacement
            last[1] = max(last[1], end)
        else:
            merged.append([start, end, replacement])
    out, at = [], 0
    for start, end, replacement in merged:
        out += [text[at:start], replacement]
        at = end
    return "".join([*out, text[at:]])


def _known_or_withheld(values: pa.Array[Any], known: Sequence[str]) -> pa.Array[Any]:
    """An enumerated column with every value Callr does not document as WITHHELD.

    Letter case and blanks around a value do not make it unknown (``Delivered`` stays).
    """
    encoded = values if isinstance(values, pa.DictionaryArray) else values.dictionary_encode()
    words = _strings(encoded.dictionary)
    is_known = pc.is_in(pc.utf8_lower(pc.utf8_trim(words, _BLANKS)), value_set=pa.array(known))
    if pc.all(is_known).as_py() is not False:
        return values
    # the stubs type if_else for scalars or arrays alike: arrays in, an array out
    shown = cast(pa.StringArray, pc.if_else(is_known, words, pa.scalar(WITHHELD)))
    return shown.take(encoded.indices).cast(values.type)


def _history_known_or_withheld(history: pa.Array[Any]) -> pa.Array[Any]:
    """``status_history`` with its before/after statuses as :func:`_known_or_withheld`."""
    if not isinstance(history, pa.ListArray | pa.LargeListArray):
        raise TypeError(f"status_history is a list column, not {history.type}")
    offsets = history.offsets
    first = offsets[0].as_py()
    # The entries of this slice of the list, in order (null lists included: their entries
    # are kept with them, so the offsets still fit).
    entries = history.values.slice(first, offsets[-1].as_py() - first)
    if not isinstance(entries, pa.StructArray):
        raise TypeError(f"status_history holds structs, not {entries.type}")
    known = ENUM_VALUES["status"]
    fields = list(entries.type)
    arrays = [entries.field(f.name) for f in fields]
    checked = [
        _known_or_withheld(a, known) if f.name in ("before", "after") else a
        for f, a in zip(fields, arrays, strict=True)
    ]
    if all(c is a for c, a in zip(checked, arrays, strict=True)):
        return history
    rebuilt = pa.StructArray.from_arrays(checked, fields=fields, mask=entries.is_null())
    if isinstance(history, pa.LargeListArray):
        large = history.offsets
        return pa.LargeListArray.from_arrays(
            pc.subtract(large, large[0]), rebuilt, type=history.type, mask=history.is_null()
        )
    small = history.offsets
    return pa.ListArray.from_arrays(
        pc.subtract(small, small[0]), rebuilt, type=history.type, mask=history.is_null()
    )


@overload
def label_files(names: pa.Array[Any], key: bytes) -> pa.Array[Any]: ...
@overload
def label_files(names: pa.ChunkedArray[Any], key: bytes) -> pa.ChunkedArray[Any]: ...
def label_files(
    names: pa.Array[Any] | pa.ChunkedArray[Any], key: bytes
) -> pa.Array[Any] | pa.ChunkedArray[Any]:
    """File names with each number in them replaced by its token.

    A file named for a sender (``+33687654321.jsonl``) would show the number in every
    row and reject read from it, whoever sent them. A number here is a ``+`` followed by
    at least 7 digits, separators between them allowed, and its token is the number's
    token. Digits without a ``+`` are left as they are: file names hold dates, times and
    ids, which cannot be told from a number written without its country code. Each
    distinct name is looked at once.
    """
    token = _tokeniser(key)

    def label(name: str | None) -> str | None:
        return None if name is None else _NUMBER_IN_NAME.sub(lambda m: token(m[0]), name)

    if isinstance(names, pa.ChunkedArray):
        return pa.chunked_array([label_files(c, key) for c in names.chunks], names.type)
    encoded = names if isinstance(names, pa.DictionaryArray) else names.dictionary_encode()
    words = encoded.dictionary.cast(pa.string()).to_pylist()
    relabelled = pa.array([label(w) for w in words], pa.string())
    if isinstance(names, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(encoded.indices, relabelled)
    return relabelled.take(encoded.indices).cast(names.type)


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
    OutputPathError
        If `out` is one of the inputs, a symbolic link, a device or not a directory
        (:func:`smsanalytics.paths.check_output_path`), before anything is read.
    KeyboardInterrupt
        On Ctrl-C (in the main thread): the copy stops at the next batch; the text says
        whether the copy had been put in place (the swap is never cut short).
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
    check_output_path(out_path, kind="dataset")  # a link, a device, a file
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
    # Imported here: ingest imports this module.
    from .ingest import _Interrupt

    with ExitStack() as stack:
        stop = stack.enter_context(
            _Interrupt("no copy was written", "the copy had completed: it is in place")
        )
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
                    stop.check()
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
            with stop.deferred():  # Ctrl-C here is raised after the swap, saying so
                ds.commit_version(staging, out_path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return rows
