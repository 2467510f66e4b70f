"""DuckDB's own reading of clean JSON Lines files converts exactly as the careful reading."""

from __future__ import annotations

import importlib.util
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import ingest, readers
from smsanalytics.readers import find_inputs, lines_sql

from .conftest import DATA, ROOT, SAMPLE

_spec = importlib.util.spec_from_file_location(
    "convert_paths", ROOT / "benchmarks" / "convert_paths.py"
)
convert_paths = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(convert_paths)

GOOD = json.dumps({"sid": "a", "from": "+33612345678", "to": "+33798765432",
                   "created": "2025-01-10T09:00:00Z", "updated": "2025-01-10T09:00:01Z"})


@pytest.fixture
def direct_used(monkeypatch):
    """Offer DuckDB's reading to every lines file; record which files it read."""
    monkeypatch.setattr(readers, "DIRECT_MIN_BYTES", 0)
    used: dict[str, bool] = {}
    parse_file = ingest._Run.parse_file

    def recorded(self, inp):
        used[inp.name] = parse_file(self, inp)
        return used[inp.name]

    monkeypatch.setattr(ingest._Run, "parse_file", recorded)
    return used


def test_sample_data_and_callr_examples_convert_identically(tmp_path):
    assert convert_paths.differences([SAMPLE, DATA], tmp_path) == []


def test_a_clean_file_is_read_by_duckdb_and_numbered_by_line(tmp_path, direct_used):
    src = tmp_path / "in.jsonl"
    other = GOOD.replace('"a"', '"b"')
    src.write_bytes(f"\ufeff{GOOD}\n\n  \t\nnot json\n\x0b{other}\n".encode())
    out = tmp_path / "out"
    s = smsanalytics.convert([src], out, quiet=True, enrich_rows=False)
    assert direct_used == {str(src): True}
    assert (s.records, s.written, s.rejected) == (3, 2, 1)  # blank lines are no records
    rejects = [json.loads(x) for x in ingest.default_rejects_path(out).read_text().splitlines()]
    assert [(r["source_line"], r["raw"]) for r in rejects] == [(4, "not json")]
    df = smsanalytics.read_dataset(out).sort_values("sid")
    assert df["source_line"].tolist() == [1, 5]  # (the JSON may follow other text)


@pytest.mark.parametrize(
    "content",
    [
        f"{GOOD}\r\n{GOOD}\r\n".encode(),  # CRLF
        f"{GOOD}\rnot json\n".encode(),  # a lone CR ends a line
        GOOD.encode() + b"\n\xff\xfe\n",  # invalid UTF-8
        f"{GOOD}\n\x01\n".encode(),  # the separator DuckDB's reader is given, alone
        f"{GOOD}\x01\n{GOOD}\n".encode(),  # ... and at the end of a line
        f"{GOOD}\nab\x01cd\n".encode(),  # ... and inside
    ],
    ids=["crlf", "lone-cr", "invalid-utf8", "separator", "separator-end", "separator-inside"],
)
def test_anything_unusual_is_read_the_careful_way(tmp_path, direct_used, content):
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    smsanalytics.convert([src], tmp_path / "out", quiet=True, enrich_rows=False)
    assert direct_used == {str(src): False}
    assert convert_paths.differences([src], tmp_path / "cmp", enrich_rows=False) == []


def test_a_line_that_needs_the_size_checks_is_read_the_careful_way(
    tmp_path, direct_used, monkeypatch
):
    monkeypatch.setattr(readers, "RECORD_LIMIT", 1000)
    src = tmp_path / "in.jsonl"
    src.write_text(GOOD + "\n" + '{"sid": "' + "x" * 2000 + '"}\n')
    s = smsanalytics.convert([src], tmp_path / "out", quiet=True, enrich_rows=False)
    assert direct_used == {str(src): False}
    assert s.reject_reasons == {"record too large": 1}


def test_names_duckdb_would_take_for_a_pattern_are_not_offered(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "DIRECT_MIN_BYTES", 0)
    for name in ("a*.jsonl", "a?.jsonl", "a[1].jsonl", "a{b}.jsonl"):
        (tmp_path / name).write_text(GOOD + "\n")
        [inp] = find_inputs([tmp_path / name])
        assert lines_sql(inp) is None, name
    (tmp_path / "it's.jsonl").write_text(GOOD + "\n")
    [inp] = find_inputs([tmp_path / "it's.jsonl"])
    assert lines_sql(inp) is not None


def test_only_large_uncompressed_lines_files_are_offered_and_only_on_request(
    tmp_path, monkeypatch
):
    import gzip

    (tmp_path / "a.jsonl").write_text(GOOD + "\n")
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(GOOD.encode() * 10))
    (tmp_path / "c.json").write_text(GOOD + "\n" + GOOD + "\n")
    inputs = find_inputs([tmp_path])
    monkeypatch.setattr(readers, "DIRECT_MIN_BYTES", None)  # the default
    assert [lines_sql(i) for i in inputs] == [None, None, None]
    monkeypatch.setattr(readers, "DIRECT_MIN_BYTES", 1000)
    assert [lines_sql(i) for i in inputs] == [None, None, None]
    monkeypatch.setattr(readers, "DIRECT_MIN_BYTES", 0)
    assert [lines_sql(i) is None for i in inputs] == [False, True, True]


_PIECES = st.sampled_from([
    GOOD, GOOD.replace('"a"', '"b"'), GOOD.replace("09:00:01", "09:00:02"), "", " ", "\t",
    "not json", '{"sid": 1}', "x " + GOOD, "\x00", "é" + GOOD, '{"sid": "a", "parts": "x"}',
    "\x01", GOOD + "\x01", "\ufeff" + GOOD, "\r", GOOD + "\r",
])


def test_an_empty_crlf_line_before_a_record_keeps_its_line_numbers(tmp_path):
    # Found by the property test below: "\r\n" then a record numbered the record 1, not 2.
    src = tmp_path / "in.jsonl"
    src.write_text("\r\n" + GOOD + "\n", encoding="utf-8")
    assert convert_paths.differences([src], tmp_path, enrich_rows=False) == []


@pytest.mark.slow
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_PIECES, min_size=1, max_size=12), end=st.sampled_from(["\n", ""]))
def test_any_mix_of_lines_converts_identically_both_ways(tmp_path_factory, lines, end):
    work = tmp_path_factory.mktemp("mix")
    src = work / "in.jsonl"
    src.write_text("\n".join(lines) + end, encoding="utf-8")
    assert convert_paths.differences([src], work, enrich_rows=False) == []
