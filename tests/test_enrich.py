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


def test_keywords_agree_with_normalising_every_body():
    from smsanalytics.keywords import DEFAULT_KEYWORDS, normalise_keyword

    words = {normalise_keyword(k) for k in DEFAULT_KEYWORDS}
    bodies = [
        "Arrêt !", "STOP", " stop   all ", "De\u0301sinscription", "Désinscription!!", "S.T.O.P",
        "Desinscriptions", "ＳＴＯＰ", "stop sms please", "o p t - o u t", "opt-out", "BAJA.",
        "unsubscribe", "ｕｎｓｕｂｓｃｒｉｂｅ", "ǅ", "\u1100\u1161", "STOP\u0000", "", None,
        "x" * 41, "stop " + "!" * 35,
    ]
    got = enrich.Enricher()._keywords_of(pa.chunked_array([bodies], pa.string())).to_pylist()
    want = [
        w if b is not None and len(b) <= 40 and (w := normalise_keyword(b)) in words else None
        for b in bodies
    ]
    assert got == want
    assert got[:4] == ["ARRET", "STOP", "STOP ALL", "DESINSCRIPTION"]


def test_each_body_is_measured_once_and_the_memory_is_bounded(monkeypatch):
    measured: list[list[str]] = []
    analyze = enrich.analyze_array
    monkeypatch.setattr(
        enrich, "analyze_array", lambda b: measured.append(b.to_pylist()) or analyze(b)
    )
    e = enrich.Enricher()
    first = e(batch({"sid": "1", "body_text": "STOP"}, {"sid": "2", "body_text": "Café ☕"},
                    {"sid": "3", "body_text": "STOP"}, {"sid": "4", "body_text": None}))
    second = e(batch({"sid": "5", "body_text": "Café ☕"}, {"sid": "6", "body_text": "oui"}))
    assert [sorted(m) for m in measured[1:]] == [["Café ☕", "STOP"], ["oui"]]
    assert first.column("keyword").to_pylist() == ["STOP", None, "STOP", None]
    assert first.column("computed_encoding").to_pylist() == ["gsm", "unicode", "gsm", None]
    assert second.column("unicode_chars").to_pylist()[0] == first.column(
        "unicode_chars").to_pylist()[1]
    monkeypatch.setattr(enrich, "_BODY_MEMORY", 2)
    small = enrich.Enricher()
    small(batch({"sid": "1", "body_text": "oui"}, {"sid": "2", "body_text": "non"}))
    third = small(batch({"sid": "7", "body_text": "START"}, {"sid": "8", "body_text": "STOP"},
                        {"sid": "9", "body_text": None}))
    # started over from this batch's bodies
    assert small._bodies.table.column("body").to_pylist() == ["START", "STOP"]
    assert third.column("keyword").to_pylist() == ["START", "STOP", None]
    assert third.column("computed_parts").to_pylist() == [1, 1, None]
