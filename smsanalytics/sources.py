"""Parse Callr's record shapes into canonical rows, vectorised with DuckDB.

This module knows Callr's field names and nothing about files. Its input is a table of
*record candidates*: the text of one record (a JSON object, possibly behind free log
text), where it came from, and an optional reason the reader already has to reject it.
Its output is the canonical columns of :data:`~smsanalytics.schema.MESSAGE_SCHEMA` plus a
``reject_reason`` (null for a good row).

The shape is detected per record, not per file:

* a webhook **event envelope** ``{id, at, sid, type, try, payload}`` (has ``type`` or
  ``payload``); ``type`` must be ``v2.sms.inbound.received``;
* a bare webhook **payload** (``from``, ``to``, ``body.text``, ``cost``, ...);
* a Callr Actions **sms object** (``fromNumber``, ``bodyText``, ``billingDebit``, ...),
  bare or under an ``sms`` key;
* any of these behind free text on a log line: the JSON starts at the line's first ``{``.

Values are read leniently (numbers as strings, strings as numbers, amounts in any JSON
notation, RFC 3339 timestamps in any case, with or without fractions or offset, timestamps
without an offset taken as UTC, empty ``network`` as null, unknown fields ignored) but
never guessed: a value that cannot be read exactly as its type, or a value of the wrong
shape (a ``body`` that is a string), rejects the record with a reason naming the field.
Of duplicate keys in one object the first wins (DuckDB's JSON reader).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from .schema import COLUMNS, MESSAGE_SCHEMA, duckdb_type

__all__ = [
    "UNPARSED_COLUMNS",
    "INBOUND_SMS_EVENT",
    "WEBHOOK_FIELDS",
    "ACTIONS_FIELDS",
    "ENVELOPE_FIELDS",
    "parse_sql",
    "parse_records",
]

#: The only webhook event type that carries an inbound SMS.
INBOUND_SMS_EVENT = "v2.sms.inbound.received"

#: Webhook payload field -> canonical column (``body.text`` is nested).
WEBHOOK_FIELDS: dict[str, str] = {
    "sid": "sid",
    "direction": "direction",
    "from": "from_number",
    "to": "to_number",
    "body.text": "body_text",
    "trafficType": "traffic_type",
    "status": "status",
    "error": "error",
    "encoding": "encoding",
    "parts": "parts",
    "network": "network",
    "cost": "cost_cents",
    "paymentType": "payment_type",
    "created": "created_at",
    "sent": "sent_at",
    "delivered": "delivered_at",
    "updated": "updated_at",
    "statusHistory": "status_history",
}

#: Callr Actions ``sms`` object field -> canonical column.
ACTIONS_FIELDS: dict[str, str] = {
    "sid": "sid",
    "direction": "direction",
    "fromNumber": "from_number",
    "fromType": "from_type",
    "fromCountry": "from_country",
    "fromLocation": "from_location",
    "toNumber": "to_number",
    "toType": "to_type",
    "toCountry": "to_country",
    "toLocation": "to_location",
    "status": "status",
    "encoding": "encoding",
    "bodyText": "body_text",
    "parts": "parts",
    "billingDebit": "cost_cents",
    "billingPaymentType": "payment_type",
    "network": "network",
    "deliveredAt": "delivered_at",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "sentAt": "sent_at",
}

#: Webhook envelope field -> canonical column.
ENVELOPE_FIELDS: dict[str, str] = {"id": "event_id", "at": "event_at", "try": "event_try"}

#: Columns no record shape supplies (filled by the enrichment): :func:`parse_sql` gives
#: them as nulls.
UNPARSED_COLUMNS: tuple[str, ...] = tuple(
    name
    for name in MESSAGE_SCHEMA.names
    if name not in {*WEBHOOK_FIELDS.values(), *ACTIONS_FIELDS.values(),
                    *ENVELOPE_FIELDS.values(), "source", "source_file", "source_line"}
)  # fmt: skip

# Every scalar is extracted as text and cast in SQL, so that "2" and 2 read alike and a
# bad value can be reported rather than turned into null by the JSON reader.
_HISTORY = '[{"before": "VARCHAR", "after": "VARCHAR", "at": "VARCHAR"}]'
_HISTORY_TYPE = duckdb_type(MESSAGE_SCHEMA.field("status_history").type)


def _struct(fields: dict[str, str]) -> str:
    parts = []
    for name in fields:
        if name == "body.text":
            parts.append('"body": {"text": "VARCHAR"}')
        elif name == "statusHistory":
            parts.append(f'"statusHistory": {_HISTORY}')
        else:
            parts.append(f'"{name}": "VARCHAR"')
    return ", ".join(parts)


_WEBHOOK_STRUCT = "{" + _struct(WEBHOOK_FIELDS) + "}"
_ACTIONS_STRUCT = "{" + _struct(ACTIONS_FIELDS) + "}"
# The first parse reads a record as a bare webhook payload, plus the keys that tell the
# other shapes apart; envelopes and Actions objects get a second, smaller parse.
_ENVELOPE_KEYS = ("id", "at", "type", "try")
_PROBE_STRUCT = (
    "{"
    + _struct(WEBHOOK_FIELDS)
    + ", "
    + ", ".join(f'"{k}": "VARCHAR"' for k in _ENVELOPE_KEYS if k not in WEBHOOK_FIELDS)
    + ', "payload": "JSON", "sms": "JSON", "fromNumber": "VARCHAR", "toNumber": "VARCHAR"'
    + ', "bodyText": "VARCHAR"}'
)

#: What follows the time of receipt (27 characters, ``2026-12-02T06:11:56.123456Z``) on a
#: line written by the webhook receiver.
_RECEIVED_MARK = " callr-webhook "
_TS = "TIMESTAMPTZ"
# Instants outside what every consumer can hold (pandas' datetime64[ns]: 1677-09-21 ..
# 2262-04-11) are rejected, not stored: a year-99999 or 'infinity' value would break
# whoever reads the dataset, and a far-future updated_at would win every de-duplication.
_TS_MIN = "1678-01-01 00:00:00+00"
_TS_MAX = "2262-01-01 00:00:00+00"
_TS_KIND = "a timestamp between 1678 and 2261"
_COST = duckdb_type(MESSAGE_SCHEMA.field("cost_cents").type)
_COST_SCALE = MESSAGE_SCHEMA.field("cost_cents").type.scale
_INT = "INTEGER"
# Timestamp column -> an earlier one whose text it often repeats (Callr's `updated` is the
# time of the last status change, most often `delivered`): the same text is not parsed
# twice. Parsing timestamps is a large part of the work.
_SAME_TEXT_AS = {"updated_at": "delivered_at"}


def _raw_value(column: str) -> str:
    """SQL for the text value of canonical `column`, whichever shape the record has.

    A record has at most one of the structs ``w`` (webhook payload) and ``a`` (Actions
    object), and ``a`` only when ``is_actions``: the value is taken from that one (a
    ``CASE`` rather than a ``coalesce``, which would copy every value).
    """
    webhook = [k for k, v in WEBHOOK_FIELDS.items() if v == column]
    actions = [k for k, v in ACTIONS_FIELDS.items() if v == column]
    options = []
    for name in webhook:
        path = "body.text" if name == "body.text" else f'"{name}"'
        options.append(f"w.{path}")
    for name in actions:
        options.append(f'a."{name}"')
    if not options:
        return "NULL"
    if len(options) == 1:
        return options[0]
    webhook_value, actions_value = options
    return f"CASE WHEN is_actions THEN {actions_value} ELSE {webhook_value} END"


def _out_of_range(ts: str) -> str:
    """SQL: instant `ts` (already cast) is not one the dataset stores."""
    return f"NOT ({ts} BETWEEN TIMESTAMPTZ '{_TS_MIN}' AND TIMESTAMPTZ '{_TS_MAX}')"


def _no_blank_ends(expr: str) -> str:
    """SQL: text `expr` is not empty and neither starts nor ends with a blank.

    A cheap, conservative test, true only for ASCII text that neither starts with a
    control character or a space nor ends with a space. ``trim`` removes the Unicode space
    separators (``Zs``: U+0020, U+00A0, U+1680, U+2000..U+200A, U+202F, U+205F, U+3000),
    and the only ASCII one is the space. False or null (null `expr`) otherwise, including
    for some values without blank ends. ``expr >= '!'`` tests the first character only
    (strings compare byte by byte); ``length`` counts characters, ``strlen`` bytes.
    """
    return f"({expr} >= '!' AND NOT suffix({expr}, ' ') AND length({expr}) = strlen({expr}))"


def _blank_null(expr: str) -> str:
    """SQL: text `expr` without blanks at either end, null if nothing is left.

    Same as ``nullif(trim(expr), '')``, but ``trim`` reads every character of the value
    (to find its last non-blank one), so values :func:`_no_blank_ends` clears are taken
    as they are; `expr` should be a column, as it is read several times.
    """
    return (
        f"CASE WHEN {expr} IS NULL OR {_no_blank_ends(expr)} THEN {expr} "
        f"ELSE nullif(trim({expr}), '') END"
    )


def _starts_with(expr: str, char: str) -> str:
    """SQL: text `expr` starts with ASCII character `char` (null if `expr` is null).

    Two comparisons of the whole value: cheaper than ``left(expr, 1) = char``.
    """
    return f"({expr} >= '{char}' AND {expr} < '{chr(ord(char) + 1)}')"


def _starts_with_digit(expr: str) -> str:
    """SQL: text `expr` starts with an ASCII digit (null if `expr` is null)."""
    return f"({expr} >= '0' AND {expr} < ':')"


_PLAIN_AMOUNT = r"regexp_full_match({v}, '[+-]?\d{{1,12}}(\.\d{{0," + str(_COST_SCALE) + r"}})?')"


def _exact_number(v: str, decimals: int, signs: str) -> str:
    """SQL: text `v` is a number (any JSON notation, or ``.5``, ``5.``, a sign from
    `signs`) whose value has at most `decimals` decimals, so that a cast is exact.

    The digits D (integer and fraction parts) with the point moved by the exponent stand
    at position P = len(integer part) + exponent; the value needs
    len(D without trailing zeros) - P decimals (none when every digit is zero).
    """
    number = rf"'[{signs}]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{{1,4}})?'"
    digits = rf"regexp_extract({v}, '^[+-]?(\d*)', 1) || regexp_extract({v}, '\.(\d*)', 1)"
    point = (
        rf"strlen(regexp_extract({v}, '^[+-]?(\d*)', 1)) + "
        rf"coalesce(TRY_CAST(regexp_extract({v}, '[eE]([+-]?\d+)$', 1) AS INTEGER), 0)"
    )
    return (
        f"(regexp_full_match({v}, {number}) AND (ltrim({digits}, '0') = '' "
        f"OR strlen(rtrim({digits}, '0')) - ({point}) <= {decimals}))"
    )


def _exact_amount(v: str) -> str:
    """SQL: text `v` is an amount the cost's type holds exactly (see :func:`_exact_number`)."""
    return _exact_number(v, _COST_SCALE, "+-")


def _whole_number(v: str) -> str:
    """SQL: text `v` is a whole number, in any notation that :func:`_exact_number` reads
    (``100``, ``1E2``, ``100.0``, ``+1e2``, ``.1e3``, ``-0``).

    Wholeness is judged from the text, never through a double (which made
    ``2.00000000000000000001`` the whole number 2). Whether the value fits the column is
    left to the cast; a negative count is a reject, but ``-0`` is 0 (DuckDB hands the
    JSON number ``-0`` over as ``0``: the string ``"-0"`` reads the same).
    """
    return _exact_number(v, 0, "+-")


def _number_text(expr: str, key: str, rare: str) -> str:
    """SQL: the text of a number, `expr`, as the record wrote it after key `key` (a
    regular expression of key names).

    DuckDB's JSON reader hands a JSON *number* over through a double: past 15
    significant digits it is not what was written (``123456789012.123456`` came back as
    ``123456789012.12346``, ``999999999999.999999`` as ``1000000000000.0``,
    ``2.00000000000000000001`` as ``2.0``, ``1E2`` as ``100.0``). For the values that
    SQL condition `rare` (on `expr`) picks out, the text is taken from the record
    instead, where it is the number written after the first such key whose double is the
    same. A string is never re-read (no number follows its key). (Left: for an amount, a
    number of 17 or more digits whose double is short and not whole, such as
    ``0.10000000000000000001``, reads as that double.)
    """
    written = rf"""regexp_extract(text, '"({key})"\s*:\s*(-?\d[0-9.eE+-]*)', 2)"""
    # Nested, not `rare AND same double`: DuckDB evaluated that AND's second term (a
    # regular expression over the whole record) on every row, a ninth of the parse.
    return (
        f"CASE WHEN ({rare.format(v=expr)}) "
        f"THEN CASE WHEN TRY_CAST({written} AS DOUBLE) = TRY_CAST({expr} AS DOUBLE) "
        f"THEN {written} ELSE {expr} END ELSE {expr} END"
    )


# A cost whose double may not be what was written: long, or rounded to a whole number.
_RARE_AMOUNT = "strlen({v}) > 15 OR suffix({v}, '.0')"
# A count that is not plain digits: a JSON number written as 1E2 or 2.0000000000000000001
# comes back as the double 100.0 or 2.0, and only the text tells whether it is whole.
_RARE_INTEGER = r"strlen({v}) > 1 AND NOT regexp_full_match({v}, '\d+')"


def _rfc3339_fixed(v: str) -> str:
    """SQL: timestamp text `v` in the form DuckDB reads: upper case, and a leap second
    (``23:59:60``) read as the last microsecond of its minute (storage has no leap
    seconds; the minute, day and order are kept)."""
    return rf"regexp_replace(upper({v}), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999')"


def _history_at(at: str) -> str:
    """SQL: a status history entry's `at` as an instant (read like the other times)."""
    v = f"nullif(trim({at}), '')"
    return f"coalesce(TRY_CAST({v} AS {_TS}), TRY_CAST({_rfc3339_fixed(v)} AS {_TS}))"


def _bad_offset(v: str) -> str:
    """SQL: timestamp text `v` ends with a UTC offset no place has (hours above 23 or
    minutes above 59), which DuckDB would read as given.

    A ``Z`` and the usual ``+HH:MM`` with hours up to 23 and minutes up to 59 are
    recognised by position first (cheap: five timestamps a record), so the pattern runs
    on the others only: a ``CASE``, as DuckDB may evaluate both sides of an ``AND``.
    False (never null) otherwise.
    """
    usual = (
        f"(substr({v}, -6, 1) IN ('+', '-') AND substr({v}, -3, 1) = ':' "
        f"AND substr({v}, -5, 2) <= '23' AND substr({v}, -2, 2) <= '59')"
    )
    return (
        f"CASE WHEN {v} IS NOT NULL AND NOT suffix({v}, 'Z') AND NOT {usual} THEN "
        rf"regexp_matches({v}, '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-]"
        rf"(2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END"
    )


def _lone_surrogate(text: str) -> str:
    """SQL: the first ``\\uD800``-``\\uDFFF`` escape in `text` that is not half of a
    pair (an emoji cut in two), or ``''``."""
    pair = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    return (
        rf"regexp_extract(regexp_replace({text}, '{pair}', '', 'g'), "
        r"'\\u[dD][89a-fA-F][0-9a-fA-F]{2}')"
    )


def _json_kind(kind: str) -> str:
    """SQL: the words for a JSON type named by ``json_type`` (`kind`)."""
    return (
        f"CASE {kind} WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' "
        f"WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' ELSE 'a number' END"
    )


def _shape_rules() -> list[tuple[str, str]]:
    """Rules (condition, reason) for a body or a status history of the wrong shape.

    The struct the JSON reader fills has nulls where a value had another shape (a
    ``"body": "text"`` gave no text at all), so the rare records whose value came out
    null, or as the text of a list or an object, are looked at again, by JSON type.
    Each is a ``CASE`` so that the second look is taken for those records only.
    """
    json = "substr(text, brace)"
    body = "CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END"
    history = "CASE WHEN is_envelope THEN '$.payload.statusHistory' ELSE '$.statusHistory' END"
    # (a record without the key, say an archive without bodies, is not parsed again)
    has_body = "contains(text, '\"body\"')"
    has_history = "contains(text, '\"statusHistory\"')"
    listish = f"({_starts_with('body_text', '{')} OR {_starts_with('body_text', '[')})"
    body_kind = f"json_type({json}, {body})"
    text_kind = f"json_type({json}, {body} || '.text')"
    actions_kind = f"coalesce(json_type({json}, '$.sms.bodyText'), json_type({json}, '$.bodyText'))"
    history_kind = f"json_type({json}, {history})"
    entries = (
        f"CASE WHEN is_envelope THEN json_extract({json}, '$.payload.statusHistory[*]') "
        f"ELSE json_extract({json}, '$.statusHistory[*]') END"
    )
    odd_entry = (
        "list_bool_or(list_transform(v_history, lambda h: h.before IS NULL AND h.after IS NULL"
        " AND h.at IS NULL))"
    )
    return [
        (
            f"CASE WHEN NOT is_actions AND (body_text IS NULL OR {listish}) AND {has_body} "
            f"THEN coalesce({body_kind}, 'NULL') NOT IN ('OBJECT', 'NULL') END",
            f"'body is ' || {_json_kind(body_kind)} || ', not an object with a text'",
        ),
        (
            f"CASE WHEN NOT is_actions AND {listish} "
            f"THEN {text_kind} IN ('OBJECT', 'ARRAY') END",
            f"'body.text is ' || {_json_kind(text_kind)} || ', not text'",
        ),
        (
            f"CASE WHEN is_actions AND {listish} THEN {actions_kind} IN ('OBJECT', 'ARRAY') END",
            f"'bodyText is ' || {_json_kind(actions_kind)} || ', not text'",
        ),
        (
            f"CASE WHEN NOT is_actions AND v_history IS NULL AND {has_history} "
            f"THEN coalesce({history_kind}, 'NULL') NOT IN ('ARRAY', 'NULL') END",
            f"'statusHistory is ' || {_json_kind(history_kind)} || ', not a list of objects'",
        ),
        (
            f"CASE WHEN NOT is_actions AND NOT plain_history AND {odd_entry} THEN "
            f"list_bool_or(list_transform({entries}, lambda e: json_type(e) <> 'OBJECT')) END",
            "'statusHistory has an entry that is not an object'",
        ),
    ]


def _quoted(expr: str) -> str:
    """SQL text quoting a raw value for a reject reason, cut to 60 characters."""
    return f"'''' || left({expr}, 60) || ''''"


def parse_sql(raw: str, keep: tuple[str, ...] = ()) -> str:
    """Return the DuckDB query that parses the record candidates in relation `raw`.

    Parameters
    ----------
    raw : str
        Name of a relation with the columns of :data:`RAW_SCHEMA`.
    keep : tuple of str
        Other columns of `raw` to carry through unchanged (e.g. a record number).

    Returns
    -------
    str
        A ``SELECT`` yielding every column of :data:`MESSAGE_SCHEMA` (enrichment columns
        null), ``reject_reason`` (null when the row is good) and ``text`` (the record's
        text, kept only on rejected rows). The connection must use ``TimeZone='UTC'`` so
        that timestamps without an offset are read as UTC.
    """
    # One CTE per step: find the JSON (`located`), parse it (`probed`), tell the shape
    # (`detected`), parse an envelope's payload or an Actions object (`shaped`), take one
    # raw text per column from the shape's struct (`picked`), trim blank ends (`valued`),
    # cast (`typed`, `retyped`), give each bad record its reason (`judged`). Parsing the
    # JSON is most of the work; the other steps take shortcuts in the common case (values
    # without blank ends, plain status histories, a repeated timestamp, a one-digit parts)
    # that give exactly what the general reading gives.
    plain = ("direction", "body_text", "traffic_type", "status", "error", "encoding",
             "payment_type")  # fmt: skip
    trimmed = ("sid", "from_number", "to_number", "network", "from_type", "from_country",
               "from_location", "to_type", "to_country", "to_location", "event_id")  # fmt: skip
    picked = {name: _raw_value(name) for name in plain}
    picked |= {f"r_{name}": _raw_value(name) for name in trimmed if name != "event_id"}
    text_cols = {name: _blank_null(f'"r_{name}"') for name in trimmed}
    # (column, raw text, SQL cast, SQL validity test on the raw text)
    casts = [
        ("parts", _raw_value("parts"), _INT, None),
        ("cost_cents", _raw_value("cost_cents"), _COST, _PLAIN_AMOUNT),
        ("created_at", _raw_value("created_at"), _TS, None),
        ("sent_at", _raw_value("sent_at"), _TS, None),
        ("delivered_at", _raw_value("delivered_at"), _TS, None),
        ("updated_at", _raw_value("updated_at"), _TS, None),
        ("event_at", None, _TS, None),  # r_event_at comes from the envelope
        ("event_try", None, _INT, None),
    ]
    picked |= {f"r_{name}": expr for name, expr, _, _ in casts if expr is not None}
    picked["r_cost_cents"] = _number_text(picked["r_cost_cents"], "cost|billingDebit", _RARE_AMOUNT)
    picked["r_parts"] = _number_text(picked["r_parts"], "parts", _RARE_INTEGER)
    # Blank ends trimmed, blank is null: the text every check and cast reads.
    valued = {f"v_{name}": _blank_null(f'"r_{name}"') for name, _, _, _ in casts}
    valued |= text_cols
    typed = {}
    retyped = {}  # casts that may reuse one in `typed`
    checks = []  # (condition on the `typed` columns, reason)
    for name, _, sqltype, test in casts:
        v = f'"v_{name}"'
        cast = f"TRY_CAST({v} AS {sqltype})"
        if sqltype == _INT:
            # A single digit (the usual parts count) needs no other test. A whole
            # number's double is exact (a correctly rounded conversion of a value it can
            # hold), and one out of range casts to null: a reject.
            cast = (
                f"CASE WHEN strlen({v}) = 1 AND {v} BETWEEN '0' AND '9' THEN {cast} "
                f"WHEN {_whole_number(v)} AND TRY_CAST({v} AS DOUBLE) >= 0 "
                f"THEN TRY_CAST(TRY_CAST({v} AS DOUBLE) AS {sqltype}) END"
            )
        elif sqltype == _COST:
            # The usual plain amount at once; other notations (1e-2, .5) when exact.
            assert test is not None  # the cost column's row names its plain-amount test
            cast = (
                f"CASE WHEN {test.format(v=v)} THEN {cast} WHEN {_exact_amount(v)} THEN {cast} END"
            )
        elif sqltype == _TS:
            # Lowercase t and z, and a leap second, are RFC 3339 too (rare: read second).
            cast = f"coalesce({cast}, TRY_CAST({_rfc3339_fixed(v)} AS {_TS}))"
        elif test is not None:
            cast = f"CASE WHEN {test.format(v=v)} THEN {cast} END"
        if name in _SAME_TEXT_AS:
            earlier = _SAME_TEXT_AS[name]
            retyped[name] = f'CASE WHEN {v} = "v_{earlier}" THEN "{earlier}" ELSE {cast} END'
        else:
            typed[name] = cast
        kind = {_TS: _TS_KIND, _INT: "a whole number"}.get(
            sqltype, f"an amount with at most {_COST_SCALE} decimals"
        )
        bad = f'"{name}" IS NULL'
        if sqltype == _TS:
            # Rejected rows are never written, so checking here (not in the cast) is
            # enough, and cheaper. DuckDB also reads the word 'epoch': not from Callr.
            checks.append(
                (
                    f"({v} IS NOT NULL AND ({bad} OR NOT {_starts_with_digit(v)}))",
                    f"'{name}: ' || {_quoted(v)} || ' is not an RFC 3339 timestamp'",
                )
            )
            checks.append(
                (
                    _bad_offset(v),
                    f"'{name}: ' || {_quoted(v)} || ' has an impossible UTC offset'",
                )
            )
            bad = _out_of_range(f'"{name}"')
        checks.append(
            (
                f"({v} IS NOT NULL AND ({bad}))",
                f"'{name}: ' || {_quoted(v)} || ' is not {kind}'",
            )
        )
    # status_history: each entry's `at` is read like the other timestamps (blank ends
    # trimmed, blank is null). One cast reads the whole list (an `at` that fails becomes
    # null; the cast itself skips ASCII white space, and gives what trimming first gives
    # whenever it succeeds). Most histories come out whole (`plain_history`: every entry
    # has an `at` in range) and are kept as cast; the others are read entry by entry, as
    # the general reading.
    picked["v_history"] = "w.statusHistory"
    valued["h_cast"] = f"TRY_CAST(v_history AS {_HISTORY_TYPE})"
    typed["plain_history"] = (
        "list_bool_and(list_transform(h_cast, lambda h: coalesce(h.at BETWEEN "
        f"TIMESTAMPTZ '{_TS_MIN}' AND TIMESTAMPTZ '{_TS_MAX}', false))) IS NOT FALSE"
    )
    retyped["status_history"] = (
        "CASE WHEN plain_history THEN h_cast "
        "ELSE list_transform(v_history, lambda h: {'before': h.before, 'after': h.after, "
        f"'at': {_history_at('h.at')}}}) END"
    )
    checks.append(
        (
            "CASE WHEN plain_history THEN false"
            " ELSE coalesce(list_bool_or(list_transform(status_history, lambda h: h.at IS NULL))"
            " AND list_bool_or(list_transform(v_history, lambda h: nullif(trim(h.at), '')"
            f" IS NOT NULL AND {_history_at('h.at')} IS NULL)), false)"
            " OR coalesce(list_bool_or(list_transform(status_history, lambda h: "
            f"{_out_of_range('h.at')})), false) END",
            f"'status_history: an entry''s at is not {_TS_KIND}'",
        )
    )
    picked["source"] = "CASE WHEN a IS NOT NULL THEN 'actions' ELSE 'webhook' END"
    produced = {*picked, *valued, *typed, *retyped, "source_file", "source_line"}
    select = []
    for col in COLUMNS:
        expr = f'"{col.name}"' if col.name in produced else "NULL"
        select.append(f'CAST({expr} AS {duckdb_type(col.type)}) AS "{col.name}"')
    early = [
        ("pre_error IS NOT NULL", "pre_error"),
        ("brace = 0", "'no JSON object on the line'"),
        (
            "unparsed",
            f"CASE WHEN {_lone_surrogate('text')} <> '' THEN "
            "'invalid JSON: a lone UTF-16 surrogate escape (' || "
            f"{_lone_surrogate('text')} || '), half of a character' "
            "ELSE 'invalid JSON' END",
        ),
        (
            f"is_envelope AND coalesce(e_type, '') <> '{INBOUND_SMS_EVENT}'",
            "'not an inbound SMS: event type ' || " + _quoted("coalesce(e_type, 'missing')"),
        ),
        (
            "sid IS NULL AND from_number IS NULL AND to_number IS NULL",
            "'not an SMS record (no sid, sender or recipient)'",
        ),
        ("sid IS NULL", "'missing sid'"),
        ("from_number IS NULL", "'missing sender (from / fromNumber)'"),
        ("to_number IS NULL", "'missing recipient (to / toNumber)'"),
    ]
    # An object or a list where an identifier belongs (the JSON reader hands it over as
    # its JSON text): never a sid or a phone number, and these are the keys of the data.
    for name in ("sid", "from_number", "to_number"):
        early.append(
            (
                f"({_starts_with(name, '{')} OR {_starts_with(name, '[')})",
                f"'{name}: ' || {_quoted(name)} || ' is an object or a list, not text'",
            )
        )
    rules = early + _shape_rules() + checks
    # A cheap OR of flags finds the bad rows; the reason is worked out for those only.
    # (A null flag counts as false, in this OR as in the reason's CASE.)
    # (One rule, column or check a line: the reference copy, tests/data/parse.sql, then
    # shows a change to the parsing as a readable diff.)
    any_bad = "\n        OR ".join(cond for cond, _ in rules)
    reason = (
        "CASE\n"
        + "".join(f"        WHEN {cond}\n            THEN {why}\n" for cond, why in rules)
        + "    END"
    )
    carry = "".join(f'"{k}", ' for k in keep)
    selected = ",\n       ".join(select)

    def columns(exprs: dict[str, str]) -> str:
        return ",\n    ".join(f'{expr} AS "{name}"' for name, expr in exprs.items())

    # The envelope's own fields, null unless the record is an envelope.
    envelope = {"r_event_id": "id", "r_event_at": "at", "e_type": "type", "r_event_try": "try"}
    envelope = {name: f"CASE WHEN is_envelope THEN p.{key} END" for name, key in envelope.items()}
    envelope["r_event_try"] = _number_text(envelope["r_event_try"], "try", _RARE_INTEGER)
    # A line written by the webhook receiver (smsanalytics.receiver_archive) starts with
    # the time of receipt: a record without an event time of its own takes that one.
    envelope["r_event_at"] = (
        "CASE WHEN is_envelope AND p.at IS NOT NULL THEN p.at "
        f"WHEN brace > {len(_RECEIVED_MARK) + 27} "
        f"AND substr(text, 28, {len(_RECEIVED_MARK)}) = '{_RECEIVED_MARK}' THEN left(text, 27) END"
    )
    return f"""
WITH located AS (
    SELECT source_file, source_line, text, pre_error, {carry}
           CASE WHEN pre_error IS NULL THEN strpos(text, '{{') ELSE 0 END AS brace
    FROM {raw}
), probed AS (
    SELECT *,
           TRY(from_json(CASE WHEN brace = 1 THEN text WHEN brace > 1 THEN substr(text, brace)
                         END, '{_PROBE_STRUCT}')) AS p
    FROM located
), detected AS (
    SELECT *,
           p.type IS NOT NULL OR p.payload IS NOT NULL AS is_envelope,
           p.type IS NULL AND p.payload IS NULL
               AND (p.sms IS NOT NULL OR p.fromNumber IS NOT NULL
                    OR p.toNumber IS NOT NULL OR p.bodyText IS NOT NULL) AS is_actions
    FROM probed
), shaped AS (
    SELECT source_file, source_line, text, pre_error, brace, is_envelope, is_actions, {carry}
           p IS NULL AS unparsed,
           CASE WHEN is_envelope THEN TRY(from_json(p.payload, '{_WEBHOOK_STRUCT}'))
                WHEN NOT is_actions THEN {_pick("p", _webhook_keys())}
           END AS w,
           CASE WHEN is_actions AND p.sms IS NOT NULL
                    THEN TRY(from_json(p.sms, '{_ACTIONS_STRUCT}'))
                WHEN is_actions
                    THEN TRY(from_json(substr(text, brace), '{_ACTIONS_STRUCT}'))
           END AS a,
           {columns(envelope)}
    FROM detected
), picked AS (
    SELECT * EXCLUDE (w, a),
    {columns(picked)}
    FROM shaped
), valued AS (
    SELECT *,
    {columns(valued)}
    FROM picked
), typed AS (
    SELECT *,
    {columns(typed)}
    FROM valued
), retyped AS (
    SELECT *,
    {columns(retyped)}
    FROM typed
), judged AS (
    SELECT *,
    CASE WHEN {any_bad}
    THEN {reason} END AS reject_reason
    FROM retyped
)
SELECT {selected},
       {carry}
       reject_reason,
       CASE WHEN reject_reason IS NOT NULL THEN text END AS text
FROM judged
"""


def _pick(struct: str, keys: list[str]) -> str:
    """SQL struct literal taking `keys` from `struct`."""
    return "{" + ", ".join(f"'{k}': {struct}.\"{k}\"" for k in keys) + "}"


def _webhook_keys() -> list[str]:
    return ["body" if k == "body.text" else k for k in WEBHOOK_FIELDS]


def parse_records(raw: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Parse a table of record candidates in memory.

    Parameters
    ----------
    raw : pyarrow.Table
        Columns of :data:`RAW_SCHEMA`.
    con : duckdb.DuckDBPyConnection, optional
        Connection to run on (a fresh in-memory one by default).

    Returns
    -------
    pyarrow.Table
        The columns of :func:`parse_sql`'s query, one row per candidate.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from smsanalytics.schema import RAW_SCHEMA
    >>> from smsanalytics.sources import parse_records
    >>> line = 'SMS received {"sid":"x1","fromNumber":"+33612345678","toNumber":"+3361"}'
    >>> raw = pa.table({"source_file": ["a.log"], "source_line": [1], "text": [line],
    ...                 "pre_error": [None]}, schema=RAW_SCHEMA)
    >>> parse_records(raw).column("source").to_pylist()
    ['actions']
    """
    own = con is None
    con = con or duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        con.register("_raw_records", raw)
        parsed: pa.Table = con.sql(parse_sql("_raw_records")).to_arrow_table()  # stubs: Any
        return parsed
    finally:
        con.unregister("_raw_records")
        if own:
            con.close()
