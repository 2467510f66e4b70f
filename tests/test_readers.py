"""Containers: which files are read, and every record's line number."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pytest
import zstandard

from smsanalytics.errors import InputError
from smsanalytics.readers import find_inputs, iter_raw_batches


def records(path) -> list[dict]:
    [inp] = find_inputs([path])
    tables = list(iter_raw_batches(inp))
    return pa.concat_tables(tables).to_pylist() if tables else []


def test_lines_blank_lines_bom_and_crlf(write):
    p = write("a.jsonl", '\ufeff{"a": 1}\r\n\r\n   \n{"b": 2}\r\n\n{"c": 3}')
    got = records(p)
    assert [r["source_line"] for r in got] == [1, 4, 6]
    assert [json.loads(r["text"]) for r in got] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert all(r["pre_error"] is None for r in got)


def test_invalid_utf8_line_is_flagged_others_kept(write):
    p = write("b.log", b'{"ok": 1}\n{"bad": "caf\xe9"}\n{"ok": 2}\n')
    got = records(p)
    assert [r["source_line"] for r in got] == [1, 2, 3]
    assert got[1]["pre_error"].startswith("not valid UTF-8")
    assert got[0]["pre_error"] is None and got[2]["pre_error"] is None


def test_line_longer_than_a_chunk(write, monkeypatch):
    import smsanalytics.readers as readers

    monkeypatch.setattr(readers, "_CHUNK_BYTES", 64)
    long = json.dumps({"x": "y" * 500})
    p = write("c.jsonl", f'{{"a": 1}}\n{long}\n{{"b": 2}}\n')
    got = records(p)
    assert [r["source_line"] for r in got] == [1, 2, 3]
    assert got[1]["text"].strip() == long


def test_json_array_elements_get_their_own_line(write):
    p = write("d.json", '[\n  {"a": 1},\n\n  {"b": 2},\n  3\n]\n')
    got = records(p)
    assert [r["source_line"] for r in got] == [2, 4, 5]
    assert got[2]["pre_error"].startswith("not an object")


def test_pretty_single_object_is_one_record(write):
    p = write("e.json", json.dumps({"a": 1, "b": {"c": 2}}, indent=2))
    got = records(p)
    assert len(got) == 1 and json.loads(got[0]["text"]) == {"a": 1, "b": {"c": 2}}


def test_json_lines_named_json(write):
    p = write("f.json", '{"a": 1}\n{"b": 2}\n')
    assert len(records(p)) == 2


def test_truncated_json_document_is_one_reject(write):
    p = write("g.json", '{\n  "a": 1,\n  "b": ')
    [got] = records(p)
    assert got["pre_error"].startswith("invalid JSON")


def test_yaml_documents_and_lists(write):
    p = write(
        "h.yaml",
        "sms:\n  sid: a\n---\nsms:\n  sid: b\n  createdAt: 2025-03-31T15:42:00Z\n"
        "---\n- sms: {sid: c}\n- sms: {sid: d}\n",
    )
    got = records(p)
    assert [r["source_line"] for r in got] == [1, 4, 8, 9]
    # timestamps stay text: the parser reads them, not YAML
    assert json.loads(got[1]["text"])["sms"]["createdAt"] == "2025-03-31T15:42:00Z"


def test_invalid_yaml_keeps_what_came_before(write):
    p = write("i.yml", "sms:\n  sid: a\n---\nsms: [unclosed\n")
    got = records(p)
    assert json.loads(got[0]["text"]) == {"sms": {"sid": "a"}}
    assert got[-1]["pre_error"].startswith("invalid YAML")


@pytest.mark.parametrize("suffix", ["gz", "zst"])
def test_compressed(write, suffix):
    data = b'{"a": 1}\n{"b": 2}\n'
    blob = gzip.compress(data) if suffix == "gz" else zstandard.compress(data)
    p = write(f"j.jsonl.{suffix}", blob)
    assert [r["source_line"] for r in records(p)] == [1, 2]


def test_truncated_gzip_reports_the_file(write):
    rows = 60_000  # several read chunks, so the lines before the damage survive
    data = b"".join(b'{"n": %d, "pad": "%d"}\n' % (i, i * 7919) for i in range(rows))
    blob = gzip.compress(data)
    p = write("k.jsonl.gz", blob[: len(blob) // 2])
    got = records(p)
    assert got[-1]["pre_error"].startswith("compressed data is truncated or corrupt")
    good = [json.loads(r["text"])["n"] for r in got[:-1]]
    assert 0 < len(good) < rows
    assert good == list(range(len(good)))  # what was read is whole and in order


def test_directory_walk_skips_unknown_and_hidden(write, tmp_path):
    write("dir/a.jsonl", "{}\n")
    write("dir/sub/b.json.gz", gzip.compress(b"{}"))
    write("dir/notes.md", "# not data\n")
    write("dir/.hidden.jsonl", "{}\n")
    names = [i.name for i in find_inputs([tmp_path / "dir"])]
    assert [n.rsplit("/", 1)[-1] for n in names] == ["a.jsonl", "b.json.gz"]


def test_explicit_unknown_suffix_is_sniffed(write):
    p = write("export.data", '[{"a": 1}, {"b": 2}]')
    assert len(records(p)) == 2


def test_missing_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        find_inputs([tmp_path / "nope.jsonl"])


def test_stdin(monkeypatch):
    import sys

    fake = io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n\n{"b": 2}\n'))
    monkeypatch.setattr(sys, "stdin", fake)
    [inp] = find_inputs(["-"])
    got = pa.concat_tables(list(iter_raw_batches(inp))).to_pylist()
    assert [(r["source_file"], r["source_line"]) for r in got] == [("-", 1), ("-", 3)]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from([b"{}", b'{"a":1}', b"x", b"\xc3\xa9", b" ", b"\r", b"\n", b"\r\n",
                         b"\t", b"\n\n", b"\xff"]),
        max_size=40,
    ),
    bom=st.booleans(),
    chunk=st.integers(min_value=1, max_value=17),
    head=st.integers(min_value=0, max_value=5),
)
def test_lines_are_the_same_whatever_the_chunk_boundaries(pieces, bom, chunk, head):
    from smsanalytics.readers import _iter_lines

    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(pieces)
    stream = io.BytesIO(data)
    first = stream.read(head)
    tables = list(_iter_lines(stream, "f", first, chunk_bytes=chunk))
    got = pa.concat_tables(tables) if tables else None
    body = data[3:] if bom else data
    # A line ends with LF, CRLF or a lone CR.
    body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    want = [
        (n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()
    ]
    if got is None or not len(got):
        assert want == []
        return
    assert got.column("source_line").to_pylist() == [n for n, _ in want]
    texts = got.column("text").to_pylist()
    errors = got.column("pre_error").to_pylist()
    for (_, raw), text, error in zip(want, texts, errors, strict=True):
        if error is None:
            assert text.rstrip("\n").encode() == raw
        else:
            assert "not valid UTF-8" in error
