"""Enrichment at conversion: lookups joined to rows, supplied values kept."""

from __future__ import annotations

import pyarrow as pa

from smsanalytics import enrich
from smsanalytics.schema import MESSAGE_SCHEMA


def batch(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=MESSAGE_SCHEMA)


def test_fills_nulls_and_keeps_what_the_record_supplied():
    e = enrich.Enricher()
    t = e(
        batch(
            {"sid": "1", "from_number": "+33612345678", "to_number": "+4915112345678",
             "network": "20801", "body_text": "Stop!"},
            {"sid": "2", "from_number": "+33612345678", "from_country": "BE",
             "from_location": "Bruxelles", "body_text": "stop the music"},
            {"sid": "3", "from_number": "junk", "network": "12345", "body_text": None},
        )
    ).to_pylist()
    assert (t[0]["from_country"], t[0]["from_type"], t[0]["from_carrier"]) == (
        "FR", "MOBILE", "SFR")
    assert (t[0]["to_country"], t[0]["network_country"], t[0]["network_operator"]) == (
        "DE", "FR", "Orange")
    assert t[0]["keyword"] == "STOP" and t[1]["keyword"] is None
    assert (t[1]["from_country"], t[1]["from_location"], t[1]["from_type"]) == (
        "BE", "Bruxelles", "MOBILE")
    assert t[2]["from_country"] is None and t[2]["network_operator"] is None
    assert (t[0]["computed_encoding"], t[0]["computed_parts"]) == ("gsm", 1)
    assert t[2]["computed_parts"] is None


def test_each_number_is_described_once_per_run(monkeypatch):
    seen: list[list[str]] = []
    describe = enrich.describe_numbers
    monkeypatch.setattr(enrich, "describe_numbers", lambda ns: seen.append(ns) or describe(ns))
    e = enrich.Enricher()
    e(batch({"sid": "1", "from_number": "+33612345678", "to_number": "+33639980044"}))
    t = e(batch({"sid": "2", "from_number": "+33612345678", "to_number": "+33700000000"},
                {"sid": "3", "from_number": "+33612345678"}))
    assert [sorted(s) for s in seen] == [["+33612345678", "+33639980044"], ["+33700000000"]]
    assert t.column("from_carrier").to_pylist() == ["SFR", "SFR"]
