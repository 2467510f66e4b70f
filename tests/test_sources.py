"""The parser: every Callr shape, lenient reading of values, and reject reasons."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsanalytics.schema import MESSAGE_SCHEMA, RAW_SCHEMA
from smsanalytics.sources import _blank_null, parse_records, parse_sql

WEBHOOK = {
    "direction": "inbound",
    "sid": "abcd1234",
    "from": "+33612345678",
    "to": "+33639980044",
    "body": {"text": "Bonjour"},
    "trafficType": "marketing",
    "status": "delivered",
    "encoding": "gsm",
    "parts": 1,
    "network": "20801",
    "cost": "2.00",
    "paymentType": "prepaid",
    "created": "2024-04-24T17:42:28Z",
    "updated": "2024-04-24T17:42:29Z",
}
ACTIONS = {
    "sid": "efgh5678",
    "direction": "inbound",
    "fromNumber": "+33612345678",
    "fromType": "MOBILE",
    "fromCountry": "FR",
    "fromLocation": "France",
    "toNumber": "+33639980044",
    "status": "delivered",
    "encoding": "unicode",
    "bodyText": "Привет",
    "parts": 1,
    "billingDebit": "0.8925",
    "billingPaymentType": "postpaid",
    "network": "",
    "createdAt": "2025-03-31T15:42:00.123Z",
    "updatedAt": "2025-03-31T15:42:00.123Z",
    "sentAt": None,
}


def parse(*texts: str, pre_error: list[str | None] | None = None) -> list[dict]:
    raw = pa.table(
        {
            "source_file": ["f"] * len(texts),
            "source_line": list(range(1, len(texts) + 1)),
            "text": list(texts),
            "pre_error": pre_error or [None] * len(texts),
        },
        schema=RAW_SCHEMA,
    )
    return parse_records(raw).to_pylist()


def test_output_has_every_schema_column():
    row = parse(json.dumps(WEBHOOK))[0]
    assert set(MESSAGE_SCHEMA.names) <= set(row)


def test_bare_webhook_payload():
    row = parse(json.dumps(WEBHOOK))[0]
    assert row["reject_reason"] is None
    assert row["source"] == "webhook"
    assert row["from_number"] == "+33612345678"
    assert row["body_text"] == "Bonjour"
    assert row["cost_cents"] == Decimal("2")
    assert row["created_at"] == datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)
    assert row["event_id"] is None and row["event_try"] is None


def test_envelope_takes_sms_from_payload_not_subscription_sid():
    env = {"id": "evt1", "at": "2025-04-07T13:29:30.765Z", "sid": "subscr", "try": 2,
           "type": "v2.sms.inbound.received", "payload": WEBHOOK}
    row = parse(json.dumps(env))[0]
    assert row["sid"] == "abcd1234"
    assert row["event_id"] == "evt1"
    assert row["event_try"] == 2
    assert row["event_at"] == datetime(2025, 4, 7, 13, 29, 30, 765000, tzinfo=UTC)


@pytest.mark.parametrize("wrap", [lambda o: o, lambda o: {"sms": o}])
def test_actions_object_bare_or_under_sms(wrap):
    row = parse(json.dumps(wrap(ACTIONS), ensure_ascii=False))[0]
    assert row["reject_reason"] is None
    assert row["source"] == "actions"
    assert row["from_country"] == "FR"
    assert row["body_text"] == "Привет"
    assert row["cost_cents"] == Decimal("0.8925")
    assert row["network"] is None  # empty network is null
    assert row["sent_at"] is None


def test_log_line_with_text_before_json():
    line = "2025-03-31T15:42:00Z log@v1 SMS received " + json.dumps(ACTIONS)
    row = parse(line)[0]
    assert row["sid"] == "efgh5678" and row["reject_reason"] is None


def test_lenient_values():
    rec = dict(WEBHOOK, parts="2", cost=2.5, network=20801, extra={"x": [1]},
               created="2024-04-24T19:42:28+02:00", updated="2024-04-24 17:42:29")
    row = parse(json.dumps(rec))[0]
    assert row["reject_reason"] is None
    assert row["parts"] == 2
    assert row["cost_cents"] == Decimal("2.5")
    assert row["network"] == "20801"
    assert row["created_at"] == datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)
    # no offset: taken as UTC
    assert row["updated_at"] == datetime(2024, 4, 24, 17, 42, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "reason_start"),
    [
        ({"created": "yesterday"}, "created_at: 'yesterday' is not an RFC 3339 timestamp"),
        ({"created": "2025-03-31T15:42:00+25:00"},
         "created_at: '2025-03-31T15:42:00+25:00' has an impossible UTC offset"),
        ({"created": "2025-03-31T15:42:00-03:60"}, "created_at: '2025-03-31T15:42:00-03:60' has"),
        ({"created": "2025-03-31T15:42:00+2400"}, "created_at: '2025-03-31T15:42:00+2400' has"),
        ({"created": "3000-01-01T00:00:00Z"}, "created_at: '3000-01-01T00:00:00Z' is not a "
         "timestamp between 1678 and 2261"),
        ({"cost": "1e-7"}, "cost_cents: '1e-7' is not an amount"),
        ({"cost": "1.0000000000000000001"}, "cost_cents: '1.0000000000000000001' is not"),
        ({"cost": "1e13"}, "cost_cents: '1e13' is not an amount"),
        ({"cost": "1e99999"}, "cost_cents: '1e99999' is not an amount"),
        ({"cost": "0x10"}, "cost_cents: '0x10' is not an amount"),
        ({"parts": "two"}, "parts: 'two' is not a whole number"),
        ({"parts": 2.5}, "parts: '2.5' is not a whole number"),
        ({"cost": "1.1234567"}, "cost_cents: '1.1234567' is not an amount"),
        ({"cost": "free"}, "cost_cents: 'free' is not an amount"),
        ({"sid": ""}, "missing sid"),
        ({"from": None}, "missing sender"),
        ({"to": "  "}, "missing recipient"),
        ({"statusHistory": [{"before": "sent", "after": "delivered", "at": "soon"}]},
         "status_history"),
    ],
)
def test_bad_values_reject_with_a_reason(change, reason_start):
    row = parse(json.dumps(dict(WEBHOOK, **change)))[0]
    assert row["reject_reason"] is not None
    assert row["reject_reason"].startswith(reason_start)
    assert row["text"]  # the raw text is kept for the rejects file


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("call ended after 3 s", "no JSON object on the line"),
        ('{"sid": "a", "from": ', "invalid JSON"),
        ('{"type": "v2.call.ended", "payload": {"sid": "x"}}', "not an inbound SMS"),
        ('{"hello": "world"}', "not an SMS record"),
    ],
)
def test_not_sms_records(text, reason):
    assert parse(text)[0]["reject_reason"].startswith(reason)


def test_pre_error_wins():
    row = parse(json.dumps(WEBHOOK), pre_error=["not valid UTF-8"])[0]
    assert row["reject_reason"] == "not valid UTF-8"


def test_body_that_says_payload_or_sms_is_still_a_webhook():
    for word in ("payload", "sms", "fromNumber"):
        row = parse(json.dumps(dict(WEBHOOK, body={"text": word}, x=word)))[0]
        assert row["reject_reason"] is None, word
        assert row["source"] == "webhook"
        assert row["body_text"] == word


def test_unknown_enum_values_are_kept():
    row = parse(json.dumps(dict(WEBHOOK, status="teleported", encoding="ucs2")))[0]
    assert row["reject_reason"] is None
    assert (row["status"], row["encoding"]) == ("teleported", "ucs2")



# The parser takes shortcuts for the common case: values without blank ends are not
# trimmed, a status history cast whole is kept when every `at` comes out in range, `updated`
# with the same text as `delivered` is not parsed again, a one-digit parts is cast
# directly. The tests below compare them with the general reading, written out in SQL.

BLANKS = [" ", "  ", "\t", "\n", "\u00a0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f",
          "\u3000", "\u200b", "\ufeff", "\x85"]
CORES = ["x", "+33612345678", "20801", "Île", "Привет", "é", "ab\u00e9", "!", "~", "\x7f",
         "\u0080x", "x\u0080", "\u009f", "\u00a1", "a b",
         '{"a": 1}', "2024-04-24T17:42:28Z"]
TRICKY = ["", *BLANKS] + [b + c + a for c in CORES for b in ("", *BLANKS) for a in ("", *BLANKS)]
TRIM = "nullif(trim(x), '')"
READ_TS = f"TRY_CAST({TRIM} AS TIMESTAMPTZ)"


def general(expr: str, values: list) -> list:
    """Evaluate SQL `expr` of `x` for each value: the reading without shortcuts."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        sql = f"SELECT {expr} FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS t(x, i) ORDER BY i"
        return [r[0] for r in con.execute(sql, [values]).fetchall()]


def test_blank_ends_shortcut_is_trim():
    values = [*TRICKY, None]
    assert general(_blank_null("x"), values) == general(TRIM, values)


def test_text_values_are_trimmed_as_by_trim():
    recs = [dict(ACTIONS, sid=f"s{v}", fromNumber=v, fromCountry=v, network=v) for v in TRICKY]
    rows = parse(*(json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(recs)))
    expected = general(TRIM, TRICKY)
    assert [r["from_number"] for r in rows] == expected
    assert [r["from_country"] for r in rows] == expected
    assert [r["network"] for r in rows] == expected
    assert [r["sid"] for r in rows] == general(TRIM, [f"s{v}" for v in TRICKY])
    missing = [(r["reject_reason"] or "").startswith("missing sender") for r in rows]
    assert missing == [v is None for v in expected]


def test_timestamps_with_blank_ends():
    texts = ["2024-04-24T17:42:28Z", "2024-04-24 17:42:28", "2024-04-24T19:42:28+02:00", "soon",
             "3000-01-01T00:00:00Z", "1600-01-01", "epoch", "", *BLANKS]
    ends = ("", " ", "\t", "\u00a0", "\u3000")
    texts = [b + t + a for t in texts for b in ends for a in ends]
    rows = parse(*(json.dumps(dict(WEBHOOK, created=t, delivered=t, updated=t)) for t in texts))
    expected = general(READ_TS, texts)
    for column in ("created_at", "delivered_at", "updated_at"):
        assert [r[column] for r in rows] == expected


def test_updated_read_alike_whether_or_not_it_repeats_delivered():
    delivered = ["2024-04-24T17:42:29Z", " 2024-04-24T17:42:29Z", None]
    updated = ["2024-04-24T17:42:29Z", "2024-04-24T17:42:29Z\u00a0", "2024-04-24T17:42:30Z",
               "soon", "3000-01-01T00:00:00Z", None]
    pairs = [(d, u) for d in delivered for u in updated]
    rows = parse(*(json.dumps(dict(WEBHOOK, delivered=d, updated=u)) for d, u in pairs))
    assert [r["delivered_at"] for r in rows] == general(READ_TS, [d for d, _ in pairs])
    assert [r["updated_at"] for r in rows] == general(READ_TS, [u for _, u in pairs])
    for (_, u), row in zip(pairs, rows, strict=True):
        bad = u in ("soon", "3000-01-01T00:00:00Z")
        assert (row["reject_reason"] or "").startswith("updated_at") is bad


HISTORY_ATS = [None, "", " ", "2024-04-24T17:42:28Z", " 2024-04-24T17:42:28Z",
               "2024-04-24T17:42:28Z\u00a0", "\u30002024-04-24T17:42:28Z",
               "\t2024-04-24T17:42:28Z", "2024-04-24T17:42:28Z ", "soon", "3000-01-01T00:00:00Z",
               "1600-01-01", "epoch"]
HISTORIES = [None, [], [None], "x", [{"at": 1714000000}], [{"at": {"x": 1}}]]
HISTORIES += [[{"before": "sent", "after": "delivered", "at": at}] for at in HISTORY_ATS]
HISTORIES += [
    [{"before": "created", "after": "sent", "at": a}, {"before": "sent", "at": b}, {"after": "x"}]
    for a in HISTORY_ATS[2:6]
    for b in HISTORY_ATS
]
HISTORIES += [[{"at": HISTORY_ATS[3]}, None], [None, {"at": HISTORY_ATS[9]}]]


def test_status_history_read_alike_plain_or_not():
    rows = parse(*(json.dumps(dict(WEBHOOK, statusHistory=h)) for h in HISTORIES))
    # The general reading: every entry's `at` trimmed and cast; a bad one rejects the record.
    at = "TRY_CAST(nullif(trim(e.at), '') AS TIMESTAMPTZ)"
    in_range = f"{at} BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND '2262-01-01 00:00:00+00'"
    spec = '[{"before": "VARCHAR", "after": "VARCHAR", "at": "VARCHAR"}]'
    history = f"TRY(from_json(x, '{spec}'))"
    texts = [json.dumps(h) for h in HISTORIES]
    entry = f"{{'before': e.before, 'after': e.after, 'at': {at}}}"
    expected = general(f"list_transform({history}, lambda e: {entry})", texts)
    bad = general(
        f"coalesce(list_bool_or(list_transform({history}, lambda e: "
        f"nullif(trim(e.at), '') IS NOT NULL AND ({at} IS NULL OR NOT ({in_range})))), false)",
        texts,
    )
    # A history that is not a list of objects is rejected for its shape, first.
    shape = [h is not None and (not isinstance(h, list) or not all(isinstance(e, dict) for e in h))
             for h in HISTORIES]  # fmt: skip
    reasons = [r["reject_reason"] or "" for r in rows]
    assert [r.startswith("statusHistory") for r in reasons] == shape
    keep = [not s for s in shape]
    assert [r["status_history"] for r, k in zip(rows, keep, strict=True) if k] == [
        e for e, k in zip(expected, keep, strict=True) if k
    ]
    got_bad = [r.startswith("status_history") for r, k in zip(reasons, keep, strict=True) if k]
    assert got_bad == [b for b, k in zip(bad, keep, strict=True) if k]
    assert any(bad) and not all(bad)


def test_parts_one_digit_or_more():
    cases = [("7", 7), (7, 7), ("0", 0), ("07", 7), ("7.0", 7), ("+7", 7), (" 7 ", 7),
             ("\u00a07", 7), ("١", None), ("７", None), ("7.5", None), ("-1", None), ("", None),
             (None, None)]
    rows = parse(*(json.dumps(dict(WEBHOOK, parts=p), ensure_ascii=False) for p, _ in cases))
    assert [r["parts"] for r in rows] == [expected for _, expected in cases]
    rejected = [(r["reject_reason"] or "").startswith("parts") for r in rows]
    assert rejected == [e is None and p not in ("", None) for p, e in cases]


def test_unparsed_columns_are_exactly_those_the_parse_leaves_null():
    from smsanalytics.sources import UNPARSED_COLUMNS

    recs = [json.dumps(WEBHOOK), json.dumps(ACTIONS), json.dumps({"sms": ACTIONS})]
    rows = parse(*recs)
    always_null = {
        name for name in MESSAGE_SCHEMA.names if all(r[name] is None for r in rows)
    }
    # Columns some shape supplies but these records leave empty are not "unparsed".
    assert set(UNPARSED_COLUMNS) <= always_null
    assert "from_country" not in UNPARSED_COLUMNS and "status_history" not in UNPARSED_COLUMNS
    assert set(UNPARSED_COLUMNS) == {
        "from_carrier", "network_country", "network_operator", "computed_encoding",
        "computed_parts", "unicode_chars", "keyword"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2025-03-31t15:42:00z", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31T15:42:00Z", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31 15:42:00Z", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31T15:42:00+00:00", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31T15:42:00-00:00", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31T17:42:00+02:00", datetime(2025, 3, 31, 15, 42, tzinfo=UTC)),
        ("2025-03-31T15:42:00.5Z", datetime(2025, 3, 31, 15, 42, 0, 500000, tzinfo=UTC)),
        ("2025-03-31T15:42:00.123456789Z", datetime(2025, 3, 31, 15, 42, 0, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2016-12-31t23:59:60.5z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2025-03-31T23:59:00+23:59", datetime(2025, 3, 31, 0, 0, tzinfo=UTC)),
    ],
)
def test_rfc3339_forms(text, want):
    row = parse(json.dumps(dict(WEBHOOK, created=text)))[0]
    assert row["reject_reason"] is None
    assert row["created_at"] == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("123456789012.123456", "123456789012.123456"),
        ("999999999999.999999", "999999999999.999999"),
        ("2.0", "2"),
        ("1e-2", "0.01"),
        ("1E+1", "10"),
        ("-0", "0"),
        ("0.10", "0.1"),
        ("0.1000000", "0.1"),
        ("100e-8", "0.000001"),
        ("0e99", "0"),
        ("0.000012345e5", "1.2345"),
        (".5", "0.5"),
        ("+2", "2"),
    ],
)
@pytest.mark.parametrize("as_number", [False, True])
def test_amounts_are_read_exactly_from_their_text(text, want, as_number):
    if as_number and (text.startswith((".", "+")) or text.endswith(".")):
        return  # not JSON numbers
    record = json.dumps(dict(WEBHOOK, cost="COST")).replace('"COST"', text if as_number
                                                         else json.dumps(text))  # fmt: skip
    row = parse(record)[0]
    assert row["reject_reason"] is None
    assert row["cost_cents"] == Decimal(want)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": "text"}, "body is a string, not an object with a text"),
        ({"body": ["x"]}, "body is a list, not an object with a text"),
        ({"body": 3}, "body is a number, not an object with a text"),
        ({"body": {"text": ["x"]}}, "body.text is a list, not text"),
        ({"body": {"text": {"a": 1}}}, "body.text is an object, not text"),
        ({"statusHistory": "delivered"}, "statusHistory is a string, not a list of objects"),
        ({"statusHistory": {"at": "x"}}, "statusHistory is an object, not a list of objects"),
        ({"statusHistory": [1, 2]}, "statusHistory has an entry that is not an object"),
        ({"statusHistory": [{"before": "a", "after": "b", "at": "2024-04-24T17:42:29Z"}, "x"]},
         "statusHistory has an entry that is not an object"),
    ],
)
def test_values_of_the_wrong_shape_are_rejects(change, reason):
    row = parse(json.dumps(dict(WEBHOOK, **change)))[0]
    assert row["reject_reason"] == reason
    envelope = {"id": "e1", "at": "2024-04-24T17:42:29Z", "type": "v2.sms.inbound.received",
                "try": 0, "payload": dict(WEBHOOK, **change)}  # fmt: skip
    assert parse(json.dumps(envelope))[0]["reject_reason"] == reason


@pytest.mark.parametrize(
    "change",
    [{"body": {"text": "[URGENT] {x}"}}, {"body": None}, {"body": {"text": None}},
     {"statusHistory": None}, {"statusHistory": []}, {"body": {"text": ""}}],
)
def test_values_of_the_right_shape_are_not_rejects(change):
    row = parse(json.dumps(dict(WEBHOOK, **change)))[0]
    assert row["reject_reason"] is None


@pytest.mark.parametrize("body", [["x"], {"a": 1}])
def test_actions_body_of_the_wrong_shape_is_a_reject(body):
    row = parse(json.dumps(dict(ACTIONS, bodyText=body)))[0]
    assert row["reject_reason"].startswith("bodyText is a")
    row = parse(json.dumps({"sms": dict(ACTIONS, bodyText=body)}))[0]
    assert row["reject_reason"].startswith("bodyText is a")


def test_records_without_body_or_history_are_not_rejects():
    bare = {k: v for k, v in WEBHOOK.items() if k not in ("body", "statusHistory")}
    row = parse(json.dumps(bare))[0]
    assert row["reject_reason"] is None and row["body_text"] is None


def test_status_history_reads_rfc3339_like_the_other_times():
    entry = {"before": "sent", "after": "delivered", "at": "2016-12-31t23:59:60.5z"}
    row = parse(json.dumps(dict(WEBHOOK, statusHistory=[entry])))[0]
    assert row["reject_reason"] is None
    leap = datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert row["status_history"][0]["at"] == leap


_INT_MAX = 2**31 - 1


def _whole_value(text: str) -> int | None:
    """The whole number `text` stands for in [0, 2^31 - 1] (exactly, by Decimal), or None."""
    if "n" in text.lower():  # no NaN or Infinity
        return None
    value = Decimal(text)
    if value != value.to_integral_value() or not 0 <= value <= _INT_MAX:
        return None
    return int(value)


def _integer_fields(text: str, as_number: bool) -> tuple[str, str]:
    """A webhook with `text` as its parts, and an envelope with `text` as its try."""
    value = text if as_number else json.dumps(text)
    record = json.dumps(dict(WEBHOOK, parts="N")).replace('"N"', value)
    envelope = json.dumps(
        {"type": "v2.sms.inbound.received", "id": "e", "at": "2025-01-01T00:00:00Z",
         "try": "N", "payload": WEBHOOK}
    ).replace('"N"', value)  # fmt: skip
    return record, envelope


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1E2", 100), ("100.0", 100), ("1e0", 1), ("10e-1", 1), ("0e5", 0),
        ("2147483647", _INT_MAX), ("-0", 0), ("-0.0e3", 0),
        ("2.00000000000000000001", None), ("0.99999999999999999999", None), ("1e-2", None),
        ("2147483648", None), ("1e400", None), ("-1", None), ("-1e0", None),
    ],
)  # fmt: skip
@pytest.mark.parametrize("as_number", [False, True])
def test_integer_fields_read_alike_as_number_or_string(text, want, as_number):
    """A JSON number is not read through its double: 2.00000000000000000001 was 2."""
    rows = parse(*_integer_fields(text, as_number))
    assert [rows[0]["parts"], rows[1]["event_try"]] == [want, want]
    for row, column in zip(rows, ("parts", "event_try"), strict=True):
        if want is None:
            assert row["reject_reason"] == f"{column}: '{text}' is not a whole number"
        else:
            assert row["reject_reason"] is None


_DIGITS = st.text("0123456789", min_size=1, max_size=22)


@st.composite
def _json_numbers(draw: st.DrawFn) -> str:
    """JSON number texts, many of them whole numbers written in long or odd ways."""
    sign = draw(st.sampled_from(["", "", "-"]))
    integer = draw(_DIGITS | st.integers(0, 2**32).map(str))
    integer = integer.lstrip("0") or "0"  # JSON allows no leading zero
    fraction = draw(st.none() | st.text("0", max_size=20) | _DIGITS)
    exponent = draw(st.none() | st.integers(-25, 25))
    text = sign + integer
    if fraction:
        text += "." + fraction
    if exponent is not None:
        text += draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+"])) * (
            exponent >= 0
        ) + str(exponent)
    return text


@settings(max_examples=15, deadline=None)
@given(st.lists(_json_numbers(), min_size=1, max_size=40))
def test_integer_fields_same_outcome_whatever_the_notation(texts):
    """Whole or not is decided exactly from the text, for a JSON number as for a string."""
    records = [r for t in texts for form in (True, False) for r in _integer_fields(t, form)]
    rows = parse(*records)
    for i, text in enumerate(texts):
        want = _whole_value(text)
        got = rows[4 * i : 4 * i + 4]
        assert [got[0]["parts"], got[1]["event_try"], got[2]["parts"], got[3]["event_try"]] == [
            want
        ] * 4, text
        assert [r["reject_reason"] is None for r in got] == [want is not None] * 4, text


@settings(max_examples=60, deadline=None)
@given(hours=st.integers(0, 99), minutes=st.integers(0, 99), sign=st.sampled_from("+-"),
       colon=st.booleans())
def test_an_offset_is_impossible_exactly_when_its_hours_or_minutes_are(hours, minutes, sign,
                                                                        colon):
    offset = f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"
    rec = {"sid": "a", "from": "+33612345678", "to": "+33612345679",
           "created": f"2025-03-31T15:42:00{offset}"}
    reason = parse(json.dumps(rec))[0]["reject_reason"] or ""
    assert ("impossible UTC offset" in reason) == (hours > 23 or minutes > 59), (offset, reason)


# The parse's SQL, kept in the repository so that a change to parsing shows up in review
# as a readable SQL diff (SMSANALYTICS_UPDATE_REFERENCE=1 rewrites the file).
PARSE_REFERENCE = Path(__file__).parent / "data" / "parse.sql"


def test_the_parse_sql_is_the_reference_copy():
    text = "-- sources.parse_sql('raw_records'), generated: see tests/test_sources.py\n"
    text += parse_sql("raw_records").strip() + ";\n"
    if os.environ.get("SMSANALYTICS_UPDATE_REFERENCE"):
        PARSE_REFERENCE.write_text(text, encoding="utf-8")
    assert text == PARSE_REFERENCE.read_text(encoding="utf-8"), (
        "the parse's SQL changed: review it, then rerun with SMSANALYTICS_UPDATE_REFERENCE=1")
