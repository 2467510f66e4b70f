"""The parser: every Callr shape, lenient reading of values, and reject reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from smsanalytics.schema import MESSAGE_SCHEMA, RAW_SCHEMA
from smsanalytics.sources import parse_records

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
        ({"created": "yesterday"}, "created_at: 'yesterday' is not a timestamp"),
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
