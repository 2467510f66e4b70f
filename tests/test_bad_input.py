"""Bad and odd input, case by case: nothing lost, nothing wrong (issue 11, the readers).

Each case went wrong once: records vanished uncounted, one record aborted the run, or a
value was read as something the record did not say. The property-based tests in
``test_containers.py`` generate the classes these cases belong to.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import smsanalytics
import smsanalytics.readers as readers


def payload(sid: str, **extra: object) -> dict:
    return {"sid": sid, "from": "+33612345678", "to": "+33639980044",
            "body": {"text": "hi"}, **extra}  # fmt: skip


def load(*paths: Path) -> smsanalytics.LoadResult:
    r = smsanalytics.load_messages(paths)
    s = r.summary
    assert s.records == s.written + s.duplicates + s.rejected, s
    assert len(r.rejects) == s.rejected
    return r


def reasons(r: smsanalytics.LoadResult) -> list[tuple[int, str]]:
    return sorted(zip(r.rejects["source_line"], r.rejects["reason"], strict=True))


def sids(r: smsanalytics.LoadResult) -> list[str]:
    return sorted(r.messages["sid"])


# -- records that vanished uncounted -----------------------------------------------------


def test_json_array_goes_on_after_a_broken_element(write):
    good = [json.dumps(payload(f"s{i}")) for i in range(4)]
    text = "[\n" + ",\n".join([good[0], '{"sid": "bad", "from": }', *good[1:]]) + "\n]\n"
    r = load(write("a.json", text))
    assert sids(r) == ["s0", "s1", "s2", "s3"]
    [(line, reason)] = reasons(r)
    assert line == 3 and reason.startswith("invalid JSON")


def test_json_array_goes_on_after_an_unclosed_string(write):
    pretty = ",\n".join(json.dumps(payload(f"s{i}"), indent=2) for i in range(3))
    broken = pretty.replace('"s1"', '"s1', 1)  # the string never closes on its line
    r = load(write("a.json", "[\n" + broken + "\n]\n"))
    assert sids(r) == ["s0", "s2"]
    assert len(r.rejects) == 1 and r.rejects["reason"][0].startswith("invalid JSON")


def test_json_array_goes_on_after_an_element_cut_short(write):
    cut = json.dumps(payload("s1"), indent=2)[:40]  # its brackets never balance
    parts = [json.dumps(payload("s0"), indent=2), cut, json.dumps(payload("s2"), indent=2)]
    r = load(write("a.json", "[\n" + ",\n".join(parts) + "\n]\n"))
    assert sids(r) == ["s0", "s2"]
    assert len(r.rejects) == 1


def test_json_array_not_closed_keeps_its_elements(write):
    text = "[\n" + ",\n".join(json.dumps(payload(f"s{i}")) for i in range(2)) + ",\n"
    r = load(write("a.json", text))
    assert sids(r) == ["s0", "s1"]
    assert list(r.rejects["reason"]) == ["invalid JSON: the array is not closed"]


def test_yaml_goes_on_after_a_document_with_an_unknown_tag(write):
    doc = "sms:\n  sid: {sid}\n  fromNumber: '+33612345678'\n  toNumber: '+33639980044'\n"
    text = "---\n".join([doc.format(sid="y0"),
                         doc.format(sid="y1") + "  x: !!python/name:os.system\n",
                         doc.format(sid="y2")])  # fmt: skip
    r = load(write("a.yaml", text))
    assert sids(r) == ["y0", "y2"]
    [(line, reason)] = reasons(r)
    assert line == 6 and "constructor" in reason and reason.startswith("invalid YAML")


def test_yaml_goes_on_after_a_document_that_does_not_parse(write):
    doc = "sms:\n  sid: {sid}\n  fromNumber: '+33612345678'\n  toNumber: '+33639980044'\n"
    text = "---\n".join([doc.format(sid="y0"), "sms: [unclosed\n  sid: y1\n",
                         doc.format(sid="y2")])  # fmt: skip
    r = load(write("a.yaml", text))
    assert sids(r) == ["y0", "y2"]
    assert len(r.rejects) == 1 and r.rejects["reason"][0].startswith("invalid YAML")


def test_yaml_list_item_with_an_unknown_tag_is_one_reject(write):
    text = ("- sms: {sid: a, fromNumber: '+33612345678', toNumber: '+1'}\n"
            "- sms: !custom {sid: b}\n"
            "- sms: {sid: c, fromNumber: '+33612345678', toNumber: '+1'}\n")  # fmt: skip
    r = load(write("a.yaml", text))
    assert sids(r) == ["a", "c"]
    assert reasons(r)[0][0] == 2


@pytest.mark.parametrize("suffix", [".jsonl", ".log", ".json"])
def test_cr_only_line_ends(write, suffix):
    text = "\r".join(json.dumps(payload(f"s{i}")) for i in range(3)) + "\r"
    r = load(write("a" + suffix, text))
    assert sids(r) == ["s0", "s1", "s2"]


def test_cr_only_line_numbers(write):
    text = json.dumps(payload("s0")) + "\r\rnot json\r" + json.dumps(payload("s1")) + "\r"
    r = load(write("a.jsonl", text))
    assert sids(r) == ["s0", "s1"]
    assert reasons(r) == [(3, "no JSON object on the line")]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_junk_after_a_compressed_document_is_counted(write, suffix):
    if suffix == ".json":
        text = json.dumps([payload("s0"), payload("s1")], indent=1)
    else:
        text = "".join(f"- {json.dumps(payload(f's{i}'))}\n" for i in range(2))
    r = load(write("a" + suffix + ".gz", gzip.compress(text.encode()) + b"junk"))
    assert sids(r) == ["s0", "s1"]
    [reason] = r.rejects["reason"]
    assert reason.startswith("compressed data is truncated or corrupt")
    assert r.summary.damaged_files


# -- one record, one outcome, in every container -----------------------------------------


CUT_EMOJI = '{"sid": "s1", "from": "+33612345678", "to": "+1", "body": {"text": "x\\ud83d"}}'


@pytest.mark.parametrize(
    "name, text",
    [
        ("a.jsonl", CUT_EMOJI + "\n"),
        ("a.json", "[" + CUT_EMOJI + "]"),
        ("a.json", CUT_EMOJI),
        ("a.yaml", "- " + CUT_EMOJI + "\n"),
        ("a.yaml", CUT_EMOJI.replace('"body": {', "body: {") + "\n"),
    ],
)
def test_lone_surrogate_is_one_reject_in_every_container(write, name, text):
    good = json.dumps(payload("s0"))
    r = load(write(name, text), write("b.jsonl", good + "\n"))
    assert sids(r) == ["s0"]
    assert list(r.rejects["reason"]) == [
        "invalid JSON: a lone UTF-16 surrogate escape (\\ud83d), half of a character"
    ]


@pytest.mark.parametrize("name", ["a.jsonl", "a.json", "a.yaml"])
def test_duplicate_keys_first_wins_in_every_container(write, name):
    text = ('{"sid": "s1", "from": "+33612345678", "from": "+33699999999", "to": "+1",'
            ' "body": {"text": "a", "text": "b"}}')  # fmt: skip
    if name == "a.json":
        text = f"[{text}]"
    r = load(write(name, text + "\n"))
    [row] = r.messages.to_dict("records")
    assert (row["from_number"], row["body_text"]) == ("+33612345678", "a")


# -- YAML scalars are the text that was written ------------------------------------------


YAML_SCALARS = (
    "sms:\n  sid: 01234567\n  fromNumber: '+4791234567'\n  fromCountry: NO\n"
    "  toNumber: '+4791234568'\n  bodyText: Yes\n  fromLocation: 10:30\n"
    "  billingDebit: 0.10\n  toCountry: ~\n  status: 1_000\n  toLocation: 0x1F\n"
    "  createdAt: 2025-03-31 15:42:00\n  encoding: !!int 010\n  toType: null\n"
    "  direction: on\n  network: 1e3\n  parts: .inf\n  fromType: 0o17\n  sentAt:\n"
)


def test_yaml_scalars_are_read_as_written():
    [table] = readers._iter_yaml("a.yaml", YAML_SCALARS.encode())
    sms = json.loads(table.column("text")[0].as_py())["sms"]
    assert sms == {
        "sid": "01234567", "fromNumber": "+4791234567", "fromCountry": "NO",
        "toNumber": "+4791234568", "bodyText": "Yes", "fromLocation": "10:30",
        "billingDebit": "0.10", "toCountry": None, "status": "1_000", "toLocation": "0x1F",
        "createdAt": "2025-03-31 15:42:00", "encoding": "010", "toType": None,
        "direction": "on", "network": "1e3", "parts": ".inf", "fromType": "0o17",
        "sentAt": None,
    }  # fmt: skip


def test_yaml_scalars_keep_their_text(write):
    text = (
        "sms:\n  sid: 01234567\n  fromNumber: '+4791234567'\n  fromCountry: NO\n"
        "  toNumber: '+4791234568'\n  bodyText: Yes\n  fromLocation: 10:30\n"
        "  billingDebit: 0.10\n  toCountry: ~\n  status: 1_000\n  toLocation: 0x1F\n"
        "  createdAt: 2025-03-31 15:42:00\n  encoding: !!int 010\n  toType: null\n"
    )
    r = load(write("a.yaml", text))
    [row] = r.messages.to_dict("records")
    assert row["sid"] == "01234567"
    assert row["from_country"] == "NO" and row["body_text"] == "Yes"
    assert row["from_location"] == "10:30" and row["status"] == "1_000"
    assert row["to_location"] == "0x1F" and row["encoding"] == "010"
    assert row["cost_cents"] == Decimal("0.10")
    assert str(row["created_at"]) == "2025-03-31 15:42:00+00:00"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("!!binary aGVsbG8=", "aGVsbG8="),
        ("!!binary |\n    aGVs\n    bG8=", "aGVs\nbG8=\n"),
        ("!!timestamp 2025-01-01 10:00:00", "2025-01-01 10:00:00"),
        ("!!float 1.50", "1.50"),
        ("!!int 0x10", "0x10"),
        ("!!bool yes", "yes"),
        ("!!str 5", "5"),
        ("!!null x", None),
        ("!!set {a, b}", "body_text is an object"),
        ("!!omap [a: 1, b: 2]", "body_text is a list"),
        ("!!pairs [a: 1, a: 2]", "body_text is a list"),
        ("!!seq [a]", "body_text is a list"),
        ("!!map {a: 1}", "body_text is an object"),
    ],
)
def test_yaml_standard_tags_give_text_never_a_python_repr(value, want):
    """``bodyText: !!binary aGVsbG8=`` was stored as the Python repr ``b'hello'``."""
    doc = f"sms:\n  sid: s\n  fromNumber: '+1'\n  toNumber: '+2'\n  bodyText: {value}\n"
    [table] = readers._iter_yaml("a.yaml", doc.encode())
    [row] = table.to_pylist()
    assert row["pre_error"] is None
    body = json.loads(row["text"])["sms"]["bodyText"]
    if want is None or not want.startswith("body_text is"):
        assert body == want
    elif want == "body_text is a list":
        assert isinstance(body, list) and all(isinstance(x, dict) or x == "a" for x in body)
    else:
        assert isinstance(body, dict)
    assert "b'" not in row["text"] and "{'" not in row["text"] and "('" not in row["text"]


def test_yaml_set_and_ordered_map_are_what_they_are_written_as():
    doc = "- !!set {a, b, a}\n- !!omap [x: 1, y: 2]\n- {k: !!set [a]}\n"
    [table] = readers._iter_yaml("a.yaml", doc.encode())
    rows = table.to_pylist()
    assert json.loads(rows[0]["text"]) == {"a": None, "b": None}
    assert json.loads(rows[1]["text"]) == [{"x": "1"}, {"y": "2"}]
    assert rows[1]["pre_error"] == "not an object (a list)"
    assert rows[2]["pre_error"].startswith("invalid YAML: expected a mapping node")


def test_yaml_merge_keys_and_duplicates(write):
    text = ("- &b {fromNumber: '+33612345678', toNumber: '+1', sid: x}\n"
            "- sms:\n    <<: *b\n    sid: y\n    sid: z\n")  # fmt: skip
    r = load(write("a.yaml", text))
    assert sids(r) == ["x", "y"]  # own keys override merged ones; the first duplicate wins


# -- huge records ------------------------------------------------------------------------


def test_record_above_the_limit_is_rejected_alone(write, monkeypatch):
    monkeypatch.setattr(readers, "RECORD_LIMIT", 1000)
    for name in ("a.jsonl", "b.json", "c.yaml"):
        lines = [json.dumps(payload(name + "0")), json.dumps(payload("big", pad="x" * 5000)),
                 json.dumps(payload(name + "1"))]  # fmt: skip
        text = {"a.jsonl": "\n".join(lines) + "\n", "b.json": "[" + ",\n".join(lines) + "]",
                "c.yaml": "".join(f"- {x}\n" for x in lines)}[name]  # fmt: skip
        r = load(write(name, text))
        assert len(r.messages) == 2 and len(r.rejects) == 1, name
        assert r.rejects["source_line"][0] == 2
        assert r.rejects["reason"][0].startswith("record too large: 5,")
        assert "(a record may have at most 1,000)" in r.rejects["reason"][0]


@pytest.mark.parametrize("compress", [None, "gz", "zst"])
def test_long_line_across_many_chunks(write, monkeypatch, compress):
    monkeypatch.setattr(readers, "_CHUNK_BYTES", 64)
    monkeypatch.setattr(readers, "_COMPRESSED_CHUNK_BYTES", 64)
    monkeypatch.setattr(readers, "RECORD_LIMIT", 3000)
    lines = [json.dumps(payload("s0", pad="y" * 2000)), json.dumps(payload("big", pad="x" * 4000)),
             json.dumps(payload("s1"))]  # fmt: skip
    data = ("\n".join(lines) + "\n").encode()
    name = "a.jsonl"
    if compress == "gz":
        data, name = gzip.compress(data), name + ".gz"
    elif compress == "zst":
        data, name = zstandard.ZstdCompressor().compress(data), name + ".zst"
    r = load(write(name, data))
    assert sids(r) == ["s0", "s1"]
    assert reasons(r)[0][0] == 2 and reasons(r)[0][1].startswith("record too large: 4,")


class _Piece(bytes):
    """A chunk read from a file, which counts the bytes copied when something is joined
    to it with ``+`` (Python asks the right operand first, as it is a subclass)."""

    copied: list[int] = []

    def __radd__(self, other: bytes) -> bytes:
        _Piece.copied.append(len(other) + len(self))
        return bytes(other) + bytes(self)


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        piece = _Piece(self.data[self.pos : self.pos + n])
        self.pos += n
        return piece


def test_a_long_line_is_copied_a_bounded_number_of_times():
    """A line spread over N chunks was copied N times over (carry += chunk): time
    quadratic in its length (a 200 MB line in a .zst file took 58 s, 2.3 s plain)."""
    _Piece.copied.clear()
    line = b'{"sid": "' + b"x" * 200_000 + b'"}\n'
    tables = list(readers._iter_lines(_Stream(line + b"{}\n"), "f", chunk_bytes=100))
    assert sum(len(t) for t in tables) == 2
    assert tables[0].column("text")[0].as_py().encode() == line
    assert sum(_Piece.copied) <= 2 * len(line)


@pytest.mark.slow
def test_a_100_mb_record_does_not_stop_the_run(tmp_path):
    path = tmp_path / "a.jsonl.zst"
    big = json.dumps(payload("big", pad="x" * (100 << 20)))
    data = "\n".join([json.dumps(payload("s0")), big, json.dumps(payload("s1"))]) + "\n"
    path.write_bytes(zstandard.ZstdCompressor().compress(data.encode()))
    del big, data
    r = load(path)
    assert sids(r) == ["s0", "s1"]
    assert r.rejects["reason"][0].startswith("record too large: 104,")


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    n=st.integers(2, 5),
    broken=st.integers(0, 4),
    cut=st.floats(0.0, 1.0, exclude_max=True),
    indent=st.sampled_from([None, 1, 2, 4]),
)
def test_json_array_one_element_cut_anywhere_costs_that_element_only(n, broken, cut, indent):
    broken %= n
    history = [{"before": "sent", "after": "delivered", "at": "2024-04-24T17:42:29Z"}]
    elements = [json.dumps(payload(f"s{i}", statusHistory=history), indent=indent)
                for i in range(n)]  # fmt: skip
    elements[broken] = elements[broken][: int(cut * len(elements[broken]))]
    # (one element a line at least: in an array on one line, an element whose brackets
    # never balance takes the rest of the line with it)
    text = "[\n" + ",\n".join(e for e in elements if e) + "\n]\n"
    [table] = [t for t in readers._iter_json_document("a.json", text.encode()) if len(t)]
    errors = table.column("pre_error").to_pylist()
    good = [json.loads(t)["sid"] for t, e in zip(table.column("text").to_pylist(), errors,
                                                 strict=True) if e is None]  # fmt: skip
    assert good == [f"s{i}" for i in range(n) if i != broken]
    assert sum(e is not None for e in errors) == (1 if elements[broken] else 0)


def _yaml_item(i: int, style: str) -> str:
    """A list item holding record ``s{i}``, in flow or block style, with quoted values."""
    if style == "flow":
        return f"- {{sid: s{i}, fromNumber: '+33612345678', bodyText: \"a: b, [c]\", n: 1}}"
    return f"- sid: s{i}\n  fromNumber: '+33612345678'\n  bodyText: \"a: b, [c]\"\n  n: 1"


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    n=st.integers(2, 5),
    broken=st.integers(0, 4),
    cut=st.floats(0.0, 1.0, exclude_max=True),
    style=st.sampled_from(["flow", "block"]),
    header=st.sampled_from(["", "---\n", "# list\n---\n"]),
)
def test_yaml_list_one_item_cut_anywhere_costs_that_item_only(n, broken, cut, style, header):
    """One broken item took the whole list document with it (the valid items vanished)."""
    broken %= n
    items = [_yaml_item(i, style) for i in range(n)]
    items[broken] = items[broken][: int(cut * len(items[broken]))]
    kept = [(i, item) for i, item in enumerate(items) if item]
    text = header + "".join(item + "\n" for _, item in kept)
    lines, line = {}, header.count("\n") + 1
    for i, item in kept:
        lines[i] = line
        line += item.count("\n") + 1
    rows = [r for t in readers._iter_yaml("a.yaml", text.encode()) for r in t.to_pylist()]
    for i in range(n):
        got = [r for r in rows if r["source_line"] == lines.get(i)]
        if i != broken:
            [row] = got
            assert row["pre_error"] is None and json.loads(row["text"])["sid"] == f"s{i}"
        else:
            assert len(got) == (1 if items[broken] else 0)
            if got and got[0]["pre_error"] is not None and "YAML" in got[0]["pre_error"]:
                assert got[0]["text"] == items[broken].rstrip("\n")  # its own text, whole
    assert len(rows) == len(kept)


def test_yaml_list_with_a_broken_item_keeps_the_others(write):
    """The hostile tester's case: a1 was neither written nor rejected; the reject's raw
    was empty."""
    text = ('- {sid: a1, fromNumber: "+33612345678", toNumber: "+33612345679"}\n'
            '- {sid: a2, fromNumber: "+33612345678", bodyText: "oops}\n'
            '- {sid: a3, fromNumber: "+33612345678", toNumber: "+33612345679"}\n')  # fmt: skip
    r = load(write("l.yaml", text))
    assert sids(r) == ["a1", "a3"]
    [reject] = r.rejects.to_dict("records")
    assert reject["source_line"] == 2
    assert reject["raw"] == '- {sid: a2, fromNumber: "+33612345678", bodyText: "oops}'
    assert reject["reason"].startswith("invalid YAML: ")


def test_yaml_broken_document_is_rejected_at_its_start_with_its_text(write):
    """The reject pointed at the blank line before the next ``---`` (line 6) and its raw
    text was empty."""
    text = ("---\n{sid: b1, fromNumber: '+1', toNumber: '+2'}\n\n"
            "---\n{sid: b2, bodyText: \"oops}\n\n"
            "---\n{sid: b3, fromNumber: '+1', toNumber: '+2'}\n")  # fmt: skip
    r = load(write("m.yaml", text))
    assert sids(r) == ["b1", "b3"]
    [reject] = r.rejects.to_dict("records")
    assert reject["source_line"] == 5
    assert reject["raw"] == '{sid: b2, bodyText: "oops}'
    assert reject["reason"] == "invalid YAML: found unexpected end of stream (line 5)"


def test_yaml_document_that_is_no_list_is_rejected_whole(write):
    text = "sms:\n  sid: [x\n  bodyText: hi\n"
    [table] = readers._iter_yaml("a.yaml", text.encode())
    [row] = table.to_pylist()
    assert (row["source_line"], row["text"]) == (1, text.rstrip("\n"))
    assert row["pre_error"].startswith("invalid YAML: ") and row["pre_error"].endswith("(line 3)")


def test_record_with_too_many_values_is_rejected_alone(write, monkeypatch):
    """60 MB of ``[0,0,0,...`` in one record took DuckDB past its memory: the run failed."""
    monkeypatch.setattr(readers, "VALUE_LIMIT", 1000)
    monkeypatch.setattr(readers, "_COUNTED_BYTES", 2000)
    many = json.dumps(payload("many", x=[0] * 1500))
    long_text = json.dumps(payload("long", body={"text": "é" * 5000}))  # long, few values
    for name in ("a.jsonl", "b.json", "c.yaml"):
        lines = [json.dumps(payload(name)), many, long_text.replace("long", name + "-long")]
        text = {"a.jsonl": "\n".join(lines) + "\n", "b.json": "[" + ",\n".join(lines) + "]",
                "c.yaml": "".join(f"- {x}\n" for x in lines)}[name]  # fmt: skip
        r = load(write(name, text))
        assert sids(r) == sorted([name, name + "-long"]), name
        [(line, reason)] = reasons(r)
        assert line == 2, name
        # 1,499 commas in the list, the object's 4 commas and 6 colons, 1 [ and 2 {
        assert reason == (
            "record too large: about 1,512 JSON values (a record may have at most 1,000)"
        )


@pytest.mark.slow
def test_60_mb_of_values_in_one_record_does_not_stop_the_run(tmp_path):
    path = tmp_path / "a.jsonl"
    many = '{"sid": "many", "from": "+1", "to": "+2", "x": [' + ",".join(["0"] * 30_000_000) + "]}"
    path.write_text("\n".join([json.dumps(payload("s0")), many, json.dumps(payload("s1"))]))
    del many
    r = load(path)
    assert sids(r) == ["s0", "s1"]
    assert r.rejects["reason"][0].startswith("record too large: about 30,000,0")


def test_json_lines_named_json_with_a_long_first_line(write):
    lines = [json.dumps(payload("s0", pad="x" * 100_000)), json.dumps(payload("s1"))]
    r = load(write("a.json", "\r\n".join(lines) + "\r\n"))
    assert sids(r) == ["s0", "s1"] and r.summary.rejected == 0


def test_yaml_document_cut_short_is_rejected_at_its_own_line():
    tables = list(readers._iter_yaml("a.yaml", b"--- {sid: [1\n--- {sid: b}\n"))
    rows = [r for t in tables for r in t.to_pylist()]
    assert [(r["source_line"], r["pre_error"] is None) for r in rows] == [(1, False), (2, True)]
    assert rows[0]["text"] == "--- {sid: [1"
