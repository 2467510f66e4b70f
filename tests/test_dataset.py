"""Writing dataset files: positions of rows, filtering files, schema on disk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsanalytics import dataset as ds
from smsanalytics.errors import DatasetError
from smsanalytics.schema import MESSAGE_SCHEMA, PARTITION_COLUMN


def messages(sids: list[str], months: list[str]) -> pa.Table:
    rows = [{"sid": s} for s in sids]
    table = pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)
    return table.append_column(PARTITION_COLUMN, pa.array(months))


def assert_full_schema(path) -> None:
    """Types (dictionaries too) and each field's description and unit, from the file."""
    got = pq.read_schema(path)
    assert got.names == MESSAGE_SCHEMA.names
    for field in MESSAGE_SCHEMA:
        assert got.field(field.name).metadata == field.metadata
        if field.name != "status_history":  # Parquet names a list's items "element"
            assert got.field(field.name).type == field.type, field.name


def test_positions_point_at_each_row_in_its_file(tmp_path):
    with ds.PartitionWriter(tmp_path, partition_by="month") as w:
        first = w.write(messages(["a", "b", "c"], ["2025-01", "2025-02", "2025-01"]))
        second = w.write(messages(["d", "e"], ["2025-02", "2025-01"]))
    assert w.counts == {"2025-01": 3, "2025-02": 2}
    contents = {n: pq.read_table(p).column("sid").to_pylist() for n, p in enumerate(w.paths)}
    for sids, (file_no, pos) in ((["a", "b", "c"], first), (["d", "e"], second)):
        for sid, f, p in zip(sids, file_no, pos, strict=True):
            assert contents[f][p] == sid
    assert {ds.partition_of(p, tmp_path) for p in w.paths} == {"2025-01", "2025-02"}


def test_files_carry_the_full_schema(tmp_path):
    with ds.PartitionWriter(tmp_path, partition_by="none") as w:
        w.write(messages(["a"], ["2025-01"]))
    (path,) = w.paths
    assert path.parent == tmp_path
    assert_full_schema(path)


def test_many_interleaved_months_keep_memory_bounded_and_rows_whole(tmp_path):
    n = 200_000
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    sids = [f"s{i}" for i in range(n)]
    with ds.PartitionWriter(tmp_path, partition_by="month") as w:
        for start in range(0, n, 50_000):
            w.write(messages(sids[start : start + 50_000], [months[i % 12] for i in
                                                            range(start, start + 50_000)]))
    assert sum(w.counts.values()) == n
    assert sum(pq.read_metadata(p).num_rows for p in w.paths) == n


def test_rewrite_drops_positions_and_sids(tmp_path):
    with ds.PartitionWriter(tmp_path, partition_by="none") as w:
        w.write(messages([f"s{i}" for i in range(100_000)], ["x"] * 100_000))
    (path,) = w.paths
    target = tmp_path / "copy.parquet"
    kept = ds.rewrite_file(
        path, target, drop_positions=np.array([99_999, 0, 70_000]), drop_sids=pa.array(["s5"])
    )
    got = pq.read_table(target).column("sid").to_pylist()
    assert kept == len(got) == 99_996
    assert {"s0", "s5", "s70000", "s99999"}.isdisjoint(got) and got[0] == "s1"
    assert_full_schema(target)


def test_rewrite_in_place_removes_a_file_left_empty(tmp_path):
    with ds.PartitionWriter(tmp_path, partition_by="none") as w:
        w.write(messages(["a", "b"], ["x", "x"]))
    (path,) = w.paths
    assert ds.rewrite_file(path, path, drop_sids=pa.array(["a", "b"])) == 0
    assert not path.exists() and not list(tmp_path.glob(".*.tmp"))


def test_statistics_kept_where_a_range_filter_can_use_them(tmp_path):
    import datetime as dt

    t = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    rows = pa.Table.from_pylist(
        [{"sid": "b", "created_at": t, "body_text": "hi", "status": "delivered"},
         {"sid": "a", "created_at": t + dt.timedelta(days=2), "body_text": "yo"}],
        schema=MESSAGE_SCHEMA,
    )
    with ds.PartitionWriter(tmp_path, partition_by="none") as w:
        w.write(rows)
    group = pq.read_metadata(w.paths[0]).row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics
             for i in range(group.num_columns)}
    created = stats["created_at"]
    assert created.has_min_max and created.min == t and created.max == t + dt.timedelta(days=2)
    assert stats["status"].has_min_max
    assert stats["body_text"] is None or not stats["body_text"].has_min_max
    assert stats["sid"] is None or not stats["sid"].has_min_max


def test_month_groups_follow_the_calendar_in_utc():
    import datetime as dt

    utc = dt.UTC
    instants = [
        dt.datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=utc),
        dt.datetime(2025, 4, 1, tzinfo=utc),
        dt.datetime(1970, 1, 1, tzinfo=utc) - dt.timedelta(microseconds=1),
        dt.datetime(1678, 1, 1, tzinfo=utc),
        dt.datetime(2261, 12, 31, 23, 59, tzinfo=utc),
        dt.datetime(2024, 2, 29, 12, tzinfo=utc),
    ]
    rows = [{"sid": str(i), "created_at": t} for i, t in enumerate(instants)]
    rows.append({"sid": "u", "updated_at": instants[0]})  # no creation time: the next one
    rows.append({"sid": "e", "event_at": instants[1]})
    rows.append({"sid": "n"})  # no time at all
    keys, indices = ds.month_groups(pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA))
    got = [keys[i] for i in indices]
    want = [f"{t.year:04d}-{t.month:02d}" for t in instants]
    assert got == [*want, "2025-03", "2025-04", "unknown"]
    assert keys[-1] == "unknown" and len(set(keys)) == len(keys)


def test_rows_already_in_month_order_land_in_their_files(tmp_path):
    with ds.PartitionWriter(tmp_path, partition_by="month") as w:
        file_no, pos = w.write(messages(["a", "b", "c", "d"],
                                        ["2025-01", "2025-01", "2025-02", "2025-02"]))
    contents = {n: pq.read_table(p).column("sid").to_pylist() for n, p in enumerate(w.paths)}
    assert [contents[f][p] for f, p in zip(file_no, pos, strict=True)] == ["a", "b", "c", "d"]
    assert sorted(contents.values()) == [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize("text", ["[]", '"a manifest"', "null", "3"])
def test_a_manifest_that_is_not_an_object_is_one_clear_error(tmp_path, text):
    # A manifest is a record: any other JSON used to come back as is, and its reader
    # (report, convert) then failed on a list or a string with an AttributeError.
    dataset = tmp_path / "messages"
    dataset.mkdir()
    ds.manifest_path(dataset).write_text(text)
    with pytest.raises(DatasetError, match="unreadable manifest .*not a JSON object"):
        ds.read_manifest(dataset)
