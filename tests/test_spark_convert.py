"""Conversion on Spark gives the local conversion's dataset, rejects and summary.

Also the byte-range split of large JSON Lines files (no JVM needed for that part).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smsanalytics as sa
from smsanalytics import dataset
from smsanalytics import spark as spark_engine
from smsanalytics.errors import ArgumentError
from smsanalytics.readers import (
    find_inputs,
    iter_line_range,
    iter_raw_batches,
    line_boundaries,
)
from tests._spark_session import spark  # noqa: F401  (the session fixture)
from tests.conftest import CALLR_EXAMPLES, DATA, SAMPLE, run, run_process

# ---------------------------------------------------------------------------------------
# Byte ranges (pure: the readers' hooks)
# ---------------------------------------------------------------------------------------

_LINE = st.one_of(
    st.just('{"sid": "a", "from": "+33612345678", "to": "+33639980042"}'),
    st.just(""), st.just("   "), st.just("{broken"), st.just("\r"),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30),
).map(lambda s: s.encode("utf-8")) | st.binary(max_size=12).filter(lambda b: b"\n" not in b)


def _whole(path: Path) -> list[dict]:
    (inp,) = find_inputs([path])
    tables = list(iter_raw_batches(inp))
    return pa.concat_tables(tables).to_pylist() if tables else []


def _ranged(path: Path, step: int) -> list[dict]:
    (inp,) = find_inputs([path])
    cuts = line_boundaries(inp, step)
    data = path.read_bytes()
    tables, line = [], 1
    for start, end in zip(cuts[:-1], cuts[1:], strict=True):
        tables.extend(iter_line_range(inp, start, end, line))
        line += len(re.findall(rb"\r\n|\r|\n", data[start:end]))  # as the reader counts
    return pa.concat_tables(tables).to_pylist() if tables else []


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_LINE, max_size=30), step=st.integers(1, 200),
       newline_at_end=st.booleans())
def test_ranges_give_the_whole_files_candidates(tmp_path_factory, lines, step,
                                                 newline_at_end):
    """However a file is cut, the ranges hold each line once, with its own line number."""
    path = tmp_path_factory.mktemp("ranges") / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end and lines else b""))
    assert _ranged(path, step) == _whole(path)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\r")), block=st.integers(1, 7))
def test_line_ends_are_counted_as_the_reader_counts_them(tmp_path_factory, data, block):
    """LF, CRLF and lone CR each end a line, also when a CRLF falls between two blocks."""
    from smsanalytics import spark_convert

    path = tmp_path_factory.mktemp("count") / "a.jsonl"
    path.write_bytes(data)
    old = spark_convert._COUNT_BLOCK
    spark_convert._COUNT_BLOCK = block
    try:
        with open(path, "rb") as stream:
            got = spark_convert._count_newlines(stream, 0, len(data))
    finally:
        spark_convert._COUNT_BLOCK = old
    assert got == len(re.findall(rb"\r\n|\r|\n", data))


def test_a_byte_order_mark_starting_a_range_mid_file_is_kept(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"sid": 1}\n\xef\xbb\xbf{"sid": 2}\n')
    assert _ranged(path, 5) == _whole(path)
    assert _whole(path)[1]["text"].startswith("\ufeff")


def test_boundaries_are_line_starts(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"aaaa\nbb\n\ncccccccc\nd")
    (inp,) = find_inputs([path])
    assert line_boundaries(inp, 3) == [0, 5, 8, 18, 19]
    assert line_boundaries(inp, 100) == [0, 19]


# ---------------------------------------------------------------------------------------
# The conversion on Spark against the local one
# ---------------------------------------------------------------------------------------

_NOT_COMPARED = {"elapsed", "out", "rejects_path"}


def _hostile(folder: Path) -> Path:
    """Odd but valid and plainly bad records, in a JSON Lines file cut into many ranges."""
    good = json.loads((DATA / "webhook-payload.json").read_text())
    lines = []
    for i in range(40):
        record = dict(good, sid=f"h{i % 25:03d}", body={"text": f"Arrêt {i}\u0000\u202e"},
                      updated=f"2025-03-30T0{i % 4}:00:00Z")
        if i % 7 == 0:
            record["body"] = f"a plain string {i}"  # rejected: not an object with a text
        lines.append(json.dumps(record, ensure_ascii=i % 2 == 0))
    lines[5:5] = ["", "   ", "not json", '{"sid": ', "\ufeff{}", "[1, 2]"]
    path = folder / "hostile.jsonl"
    path.write_bytes("\r\n".join(lines).encode() + b"\n\xff\xfe broken utf-8\n" + b"x" * 5000)
    return path


def _compare(local: Path, on_spark: Path, a: sa.ConversionSummary,
             b: sa.ConversionSummary) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert {k: v for k, v in db.items() if k not in _NOT_COMPARED} == {
        k: v for k, v in da.items() if k not in _NOT_COMPARED}
    order = [("sid", "ascending")]
    ta = dataset.read_dataset_table(local).sort_by(order)
    tb = dataset.read_dataset_table(on_spark).sort_by(order)
    assert tb.schema == ta.schema
    assert tb.to_pylist() == ta.to_pylist()
    assert _partitions(on_spark) == _partitions(local)
    assert Path(b.rejects_path).read_bytes() == Path(a.rejects_path).read_bytes()
    ma, mb = dataset.read_manifest(local), dataset.read_manifest(on_spark)
    assert mb["rows"] == ma["rows"] and mb["partition_by"] == ma["partition_by"]


def _partitions(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in dataset.dataset_files(root):
        key = dataset.partition_of(f, root)
        counts[key] = counts.get(key, 0) + pq.read_metadata(f).num_rows
    return counts


@pytest.mark.spark
def test_spark_conversion_equals_local_on_hostile_and_callr_examples(tmp_path, spark):  # noqa: F811
    inputs = [_hostile(tmp_path), *CALLR_EXAMPLES]
    a = sa.convert(inputs, tmp_path / "local", quiet=True)
    b = spark_engine.convert(spark, [p.as_uri() for p in inputs],
                             (tmp_path / "spark").as_uri(), split_bytes=4000)
    assert b.rejected > 5 and b.duplicates > 0
    _compare(tmp_path / "local", tmp_path / "spark", a, b)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_conversion_equals_local_on_sample_then_incrementally(tmp_path, spark):  # noqa: F811
    first = [SAMPLE]
    a = sa.convert(first, tmp_path / "local", quiet=True)
    b = spark_engine.convert(spark, first, tmp_path / "spark", split_bytes=64 << 10)
    _compare(tmp_path / "local", tmp_path / "spark", a, b)
    # Second run: new records, newer and older versions of rows already in the dataset.
    second = [DATA, _hostile(tmp_path), SAMPLE / "webhooks"]
    a = sa.convert(second, tmp_path / "local", quiet=True)
    b = spark_engine.convert(spark, second, tmp_path / "spark", split_bytes=64 << 10)
    assert b.replaced == a.replaced
    _compare(tmp_path / "local", tmp_path / "spark", a, b)


@pytest.mark.spark
def test_standard_input_and_unknown_schemes_are_refused(spark, tmp_path):  # noqa: F811
    with pytest.raises(ArgumentError, match="standard input"):
        spark_engine.convert(spark, ["-"], tmp_path / "ds")
    for out in ("ftp://host/ds", "http://host/ds", "wasb://c@a/ds"):
        with pytest.raises(ArgumentError, match="s3a://"):
            spark_engine.convert(spark, [CALLR_EXAMPLES[0]], out)
    with pytest.raises(ArgumentError, match="inputs"):
        spark_engine.convert(spark, ["sftp://host/a.jsonl"], tmp_path / "ds")


@pytest.mark.spark
@pytest.mark.slow
def test_cli_engine_spark_prints_the_local_summary(tmp_path, spark):  # noqa: F811
    inputs = [str(p) for p in CALLR_EXAMPLES]
    local = sa.convert(inputs, tmp_path / "local", quiet=True).to_dict()
    result = run("convert", *inputs, "--out", tmp_path / "spark", "--engine", "spark", "--json")
    assert result.exit_code == 0, result.output
    on_spark = json.loads(result.output)
    for key in _NOT_COMPARED:
        local.pop(key), on_spark.pop(key)
    assert on_spark == local
    assert len(dataset.read_dataset_table(tmp_path / "spark")) == local["rows_total"]


def test_cli_spark_master_needs_the_spark_engine(tmp_path):
    result = run("convert", CALLR_EXAMPLES[0], "--out", tmp_path / "ds",
                 "--spark-master", "local[1]")
    assert result.exit_code == 2
    assert "--spark-master is only used with --engine spark" in result.output


def _no_session(monkeypatch) -> None:
    """Fail the test if a Spark session is asked for."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Spark session was started")

    monkeypatch.setattr(spark_engine, "get_session", refuse)


@pytest.mark.spark
def test_private_spark_conversion_equals_local_then_incrementally(tmp_path, spark):  # noqa: F811
    """Same tokens, redactions, withheld rejects and manifest as the local conversion."""
    from smsanalytics import privacy
    from smsanalytics.errors import DatasetError

    privacy.generate_key(tmp_path / "key")
    key = privacy.load_key(tmp_path / "key")
    options = {"pseudonymize_key": key, "redact_bodies": True, "pseudonymize_recipients": True}
    first = [_hostile(tmp_path), *CALLR_EXAMPLES]
    a = sa.convert(first, tmp_path / "local", quiet=True, **options)
    b = spark_engine.convert(spark, first, tmp_path / "spark", split_bytes=4000, **options)
    _compare(tmp_path / "local", tmp_path / "spark", a, b)
    rows = dataset.read_dataset_table(tmp_path / "spark")
    assert rows.column("body_text").null_count == len(rows)
    assert all(n.startswith(privacy.TOKEN_PREFIX) for n in rows.column("from_number").to_pylist()
               if n)
    rejects = [json.loads(line) for line in Path(b.rejects_path).read_text().splitlines()]
    assert rejects and all(r["raw"] is None for r in rejects)
    assert (dataset.read_manifest(tmp_path / "spark")[privacy.MANIFEST_KEY]
            == dataset.read_manifest(tmp_path / "local")[privacy.MANIFEST_KEY])
    second = [DATA]
    a = sa.convert(second, tmp_path / "local", quiet=True, **options)
    b = spark_engine.convert(spark, second, tmp_path / "spark", **options)
    _compare(tmp_path / "local", tmp_path / "spark", a, b)
    # Another key, or none, would mix tokens in one dataset: refused as locally.
    privacy.generate_key(tmp_path / "other")
    other = privacy.load_key(tmp_path / "other")
    for wrong in ({**options, "pseudonymize_key": other}, {}):
        with pytest.raises(DatasetError):
            spark_engine.convert(spark, second, tmp_path / "spark", **wrong)


def test_privacy_options_never_show_the_key():
    from smsanalytics.spark_convert import _Privacy

    key = bytes(range(32))
    options = _Privacy(key, True, False)
    assert key.hex() not in repr(options) and str(key) not in repr(options)
    assert "key given" in repr(options)


@pytest.mark.parametrize(("options", "message"), [
    (["--pseudonymize"], "--pseudonymize needs --key-file"),
    (["--redact-bodies", "--key-file", "KEY"], "--key-file is only used with --pseudonymize"),
    (["--pseudonymize", "--key-file", "WEAK"], "does not hold a random key"),
])
def test_cli_spark_refuses_bad_privacy_options_before_a_session(tmp_path, monkeypatch, options,
                                                               message):
    from smsanalytics import privacy

    _no_session(monkeypatch)
    privacy.generate_key(tmp_path / "key")
    (tmp_path / "weak").write_text("ab" * 32 + "\n")
    names = {"KEY": str(tmp_path / "key"), "WEAK": str(tmp_path / "weak")}
    args = [names.get(a, a) for a in options]
    result = run("convert", CALLR_EXAMPLES[0], "--out", tmp_path / "ds", "--engine", "spark",
                 *args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("smsanalytics: error: ") and message in line
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("inputs", [["-"], ["EXAMPLE", "-"]])
def test_cli_spark_refuses_stdin_before_a_session(tmp_path, monkeypatch, inputs):
    _no_session(monkeypatch)
    args = [str(CALLR_EXAMPLES[0]) if a == "EXAMPLE" else a for a in inputs]
    result = run("convert", *args, "--out", tmp_path / "ds", "--engine", "spark",
                 input=CALLR_EXAMPLES[0].read_text())
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("smsanalytics: error: inputs '-': standard input cannot be read")
    assert not (tmp_path / "ds").exists()


def test_cli_spark_session_that_cannot_start_is_one_line(tmp_path, monkeypatch):
    """A JVM that cannot start (no Java, a bad master): the error is the library's."""
    pytest.importorskip("pyspark")
    from pyspark import SparkContext
    from pyspark.errors import PySparkRuntimeError

    def no_gateway(*args, **kwargs):
        raise PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})

    monkeypatch.setattr(SparkContext, "_ensure_initialized", no_gateway)
    result = run("convert", CALLR_EXAMPLES[0], "--out", tmp_path / "ds", "--engine", "spark",
                 "--spark-master", "local[1]")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("smsanalytics: error: cannot start a Spark session (master local[1]): ")
    assert "JAVA_GATEWAY_EXITED" in line
    assert not (tmp_path / "ds").exists()


@pytest.mark.slow
def test_cli_spark_bogus_master_is_one_line_exit_2(tmp_path):
    """The real thing, in a process of its own (no session of the tests' to reuse): a JVM
    starts and refuses the master. The JVM's own log lines come before ours."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17+")
    r = run_process("convert", CALLR_EXAMPLES[0], "--out", tmp_path / "ds", "--engine", "spark",
                    "--spark-master", "bogus://x", timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    mine = [line for line in r.stderr.splitlines() if line.startswith("smsanalytics")]
    assert mine == [
        "smsanalytics: error: cannot start a Spark session (master bogus://x): "
        "org.apache.spark.SparkException: Could not parse Master URL: 'bogus://x'"]
    assert r.stderr.splitlines()[-1] == mine[0]
    assert not (tmp_path / "ds").exists()


@pytest.mark.spark
def test_a_task_failure_is_one_error_and_changes_nothing(spark, tmp_path, monkeypatch):  # noqa: F811
    """An input gone between the listing and its task: one error, no dataset, no leftovers."""
    from smsanalytics import spark_convert
    from smsanalytics.errors import SmsAnalyticsError
    from smsanalytics.readers import InputFile

    gone = InputFile(str(tmp_path / "gone.json"), "json", None, 10)
    monkeypatch.setattr(spark_convert, "find_inputs", lambda paths: [gone])
    with pytest.raises(SmsAnalyticsError, match="Spark job failed: .*gone.json") as info:
        spark_engine.convert(spark, ["ignored"], tmp_path / "ds")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds.lock"] or not (
        tmp_path / "ds").exists()


@pytest.mark.spark
def test_the_rejects_file_inside_an_input_folder_is_not_read_back(tmp_path, spark):  # noqa: F811
    """``convert arch --out arch/ds`` twice: the first run's rejects are output, not input."""
    import shutil

    archive = tmp_path / "arch"
    archive.mkdir()
    shutil.copy(_hostile(tmp_path), archive / "hostile.jsonl")
    first = spark_engine.convert(spark, [archive], archive / "ds")
    assert first.rejected and (archive / "ds.rejects.jsonl").exists()
    again = spark_engine.convert(spark, [archive], archive / "ds")
    assert (again.files, again.records) == (first.files, first.records) == (
        1, sa.convert([tmp_path / "hostile.jsonl"], tmp_path / "local", quiet=True).records)


@pytest.mark.spark
def test_the_rejects_file_is_never_more_open_than_the_dataset_folder(tmp_path, spark):  # noqa: F811
    """As the local conversion: a dataset made private keeps its rejects (raw text) private."""
    import stat

    hostile = _hostile(tmp_path)
    out, rejects = tmp_path / "ds", tmp_path / "ds.rejects.jsonl"
    spark_engine.convert(spark, [hostile], out)
    out.chmod(0o700)
    rejects.chmod(0o644)
    spark_engine.convert(spark, [hostile], out, overwrite=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
