"""Who sends STOP: ``opt_outs()`` and ``top_senders(keyword=...)``, against plain Python."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from smsanalytics import privacy, queries
from smsanalytics.keywords import DEFAULT_KEYWORDS, normalise_keyword
from smsanalytics.schema import MESSAGE_SCHEMA

from ._fixtures_queries import PARIS, A, B, C, D, E, rows, table

S1, S2 = "+33611111111", "+33622222222"
N1, N2 = "+33700000001", "+33700000002"


def _t(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


def _connect(messages: list[tuple]) -> object:
    """(from, to, created_at, body) tuples -> a connection."""
    data = [{"sid": f"m{i}", "from_number": f, "to_number": to, "created_at": at,
             "body_text": body, "from_country": "FR", "parts": 1, "cost_cents": Decimal(1)}
            for i, (f, to, at, body) in enumerate(messages)]
    return queries.connect(pa.Table.from_pylist(data, schema=MESSAGE_SCHEMA))


def _by_sender(df: pd.DataFrame) -> dict[str, dict]:
    return {r["from_number"]: r for r in df.to_dict("records")}


def test_fixture_senders_keywords_and_times():
    df = queries.opt_outs(table())
    kinds = {normalise_keyword(k): v for k, v in DEFAULT_KEYWORDS.items()}
    outs: dict[str, list] = {}
    for r in rows():
        if kinds.get(normalise_keyword(r["body_text"])) == "opt-out":
            outs.setdefault(r["from_number"], []).append(r)
    assert set(df["from_number"]) == set(outs) == {A, C, D, E}
    got = _by_sender(df)
    for sender, rs in outs.items():
        latest = max(rs, key=lambda r: r["created_at"])
        assert got[sender]["keyword"] == normalise_keyword(latest["body_text"])
        assert got[sender]["opt_outs"] == len(rs)
        assert got[sender]["first_opt_out_at"] == min(r["created_at"] for r in rs)
        assert got[sender]["last_opt_out_at"] == latest["created_at"]
        assert got[sender]["to_numbers"] == sorted({r["to_number"] for r in rs})
    # A wrote START on 25 October, then STOP SMS on the 26th: opted out in the end.
    assert got[A]["keyword"] == "STOP SMS" and not got[A]["opted_back_in"]
    assert got[A]["opt_outs"] == 3
    assert list(df["last_opt_out_at"]) == sorted(df["last_opt_out_at"], reverse=True)
    assert str(df["last_opt_out_at"].dt.tz) == "UTC"
    assert B not in got  # "Bonjour", "hello": no keyword


def test_opting_back_in_later_and_earlier():
    con = _connect([
        (S1, N1, _t(5, 1), "STOP"), (S1, N2, _t(5, 3), "Arrêt !"), (S1, N1, _t(5, 9), "start"),
        (S1, N1, _t(5, 10), "START"),
        (S2, N1, _t(5, 1), "start"), (S2, N1, _t(5, 2), "stop"),
    ])
    got = _by_sender(queries.opt_outs(con))
    assert got[S1]["opted_back_in"] and got[S1]["opted_back_in_at"] == _t(5, 9)
    assert got[S1]["to_numbers"] == [N1, N2] and got[S1]["keyword"] == "ARRET"
    assert not got[S2]["opted_back_in"] and pd.isna(got[S2]["opted_back_in_at"])


def test_period_selects_opt_outs_but_a_later_opt_in_still_counts():
    con = _connect([(S1, N1, _t(3, 31, 21), "STOP"), (S1, N1, _t(6, 1), "START"),
                    (S2, N1, _t(3, 31, 23), "STOP")])
    # Paris: 31 March 21:00 UTC is 23:00 (March); 23:00 UTC is 1 April 01:00.
    march = queries.opt_outs(con, start="2025-03-01", end="2025-04-01", tz=PARIS)
    assert march["from_number"].tolist() == [S1]
    assert bool(march["opted_back_in"].iloc[0])
    assert queries.opt_outs(con, start="2025-04-01", tz=PARIS)["from_number"].tolist() == [S2]


def test_missing_recipient_gives_an_empty_list_and_redacted_bodies_use_the_keyword():
    data = [{"sid": "a", "from_number": S1, "to_number": None, "created_at": _t(5, 1),
             "body_text": None, "keyword": "STOP"}]
    df = queries.opt_outs(queries.connect(pa.Table.from_pylist(data, schema=MESSAGE_SCHEMA)))
    assert df["to_numbers"].tolist() == [[]]
    assert df["keyword"].tolist() == ["STOP"]


def test_an_empty_answer_keeps_its_columns_and_types():
    df = queries.opt_outs(_connect([(S1, N1, _t(5, 1), "hello")]))
    assert df.empty
    assert list(df.columns) == ["from_number", "country", "keyword", "opt_outs",
                                "first_opt_out_at", "last_opt_out_at", "to_numbers",
                                "opted_back_in", "opted_back_in_at", "pseudonymized"]
    assert df["opted_back_in"].dtype == bool and df["to_numbers"].dtype == object


def test_custom_keywords_and_kinds():
    con = _connect([(S1, N1, _t(5, 1), "halt"), (S1, N1, _t(5, 2), "again"),
                    (S2, N1, _t(5, 1), "STOP")])
    df = queries.opt_outs(con, keywords={"HALT": "opt-out", "again": "opt-in", "x": "other"})
    assert df["from_number"].tolist() == [S1]
    assert bool(df["opted_back_in"].iloc[0])


def test_pseudonymised_numbers_are_tokens_and_said_so():
    key = bytes.fromhex("9f2c41d07be35a8816f4c9e02d7b63a1c58e0f4b92d6173ae8b05c2f41d96e73")
    s1, n1 = privacy.pseudonymize_number(S1, key), privacy.pseudonymize_number(N1, key)
    df = queries.opt_outs(_connect([(s1, n1, _t(5, 1), "STOP"), (S2, N2, _t(5, 1), "STOP")]))
    got = _by_sender(df)
    assert got[s1]["pseudonymized"] and not got[S2]["pseudonymized"]
    assert df.attrs["pseudonymized"] == ("from_number", "to_numbers")
    clear = queries.opt_outs(_connect([(S2, N2, _t(5, 1), "STOP")]))
    assert clear.attrs["pseudonymized"] == ()


# ---------------------------------------------------------------- top_senders(keyword=...)


@pytest.mark.parametrize("keyword", ["stop", ["STOP", "arrêt"], "STOP SMS"])
def test_top_senders_by_keyword(keyword):
    words = {normalise_keyword(k) for k in ([keyword] if isinstance(keyword, str) else keyword)}
    expected = Counter(r["from_number"] for r in rows()
                       if normalise_keyword(r["body_text"]) in words)
    df = queries.top_senders(table(), keyword=keyword, n=None)
    assert dict(zip(df["from_number"], df["messages"], strict=True)) == dict(expected)


@pytest.mark.parametrize("keyword", ["x' OR '1'='1", "'); DROP VIEW messages; --", []])
def test_top_senders_keyword_is_bound_not_pasted(keyword):
    con = queries.connect(table())
    assert queries.top_senders(con, keyword=keyword).empty
    assert len(queries.top_senders(con)) == len({r["from_number"] for r in rows()})


def test_top_senders_without_keyword_is_unchanged():
    assert queries.top_senders(table(), n=None)["messages"].sum() == len(rows())
    assert C in set(queries.top_senders(table())["from_number"])
    assert D in set(queries.top_senders(table(), keyword="STOP")["from_number"])
    assert E not in set(queries.top_senders(table(), keyword="STOP")["from_number"])


def test_messages_without_a_sender_are_left_out():
    con = _connect([(None, N1, _t(5, 1), "STOP"), (S1, N1, _t(5, 1), "STOP")])
    df = queries.opt_outs(con)
    assert df["from_number"].tolist() == [S1]
    assert df["pseudonymized"].tolist() == [False]


def test_control_characters_and_accents_normalise_like_the_keyword_list():
    bodies = ["S\x00TOP", "  arrêt\u200b!! ", "STOP\r\n", "ＳＴＯＰ", "stop please"]
    senders = [f"+3361000000{i}" for i in range(len(bodies))]
    con = _connect([(s, N1, _t(5, 1), b) for s, b in zip(senders, bodies, strict=True)])
    got = set(queries.opt_outs(con)["from_number"])
    kinds = {normalise_keyword(k): v for k, v in DEFAULT_KEYWORDS.items()}
    expected = {s for s, b in zip(senders, bodies, strict=True)
                if kinds.get(normalise_keyword(b)) == "opt-out"}
    assert got == expected and senders[-1] not in got
