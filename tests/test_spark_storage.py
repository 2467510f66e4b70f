"""Datasets behind URIs: the rename-free commit, compared with the local conversion.

``file://`` URIs are sent down the path object stores take by emptying
``spark_storage.LOCAL_SCHEMES``: the driver then goes through Hadoop's FileSystem API and
the tasks through pyarrow.fs, as for ``s3a://``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import smsanalytics as sa
from smsanalytics import dataset, spark_convert, spark_storage
from smsanalytics import spark as spark_engine
from smsanalytics.errors import ArgumentError, DatasetError
from smsanalytics.spark_storage import TaskSettings, local_path
from tests._spark_session import spark  # noqa: F401  (the session fixture)
from tests.conftest import CALLR_EXAMPLES, DATA
from tests.test_spark_convert import _compare, _hostile


@contextmanager
def _as_object_store() -> Iterator[None]:
    """Send file:// down the object-store path; fail on any rename, link or lock meanwhile
    (in the driver; the tasks' side is tested with a file system that cannot rename)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a rename, link or lock on the object-store path")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spark_storage, "LOCAL_SCHEMES", frozenset())
        for name in ("rename", "replace", "link"):
            patch.setattr(os, name, refuse)
        patch.setattr(dataset, "commit_version", refuse)
        patch.setattr(dataset, "locked", refuse)
        yield


def _versions(folder: Path, updated: str, sids: range) -> Path:
    """Messages ``v<i>`` as updated at `updated`: a later run's replace an earlier's.

    The file's name needs percent-encoding in a URI, and holds what looks like an escape.
    """
    good = json.loads((DATA / "webhook-payload.json").read_text())
    path = folder / "in %41 b" / f"versions {updated[:13]}.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(dict(good, sid=f"v{i:03d}", body={"text": f"{updated}"},
                                            updated=updated)) + "\n" for i in sids))
    return path


def _uri(path: Path) -> str:
    """A file:// location as one writes it for Spark (not percent-encoded)."""
    return f"file://{path}"


def _listed(root: Path) -> list[str]:
    return sorted(dataset.read_manifest(root)["files"])


def _present(root: Path) -> list[str]:
    return sorted(f.relative_to(root).as_posix() for f in dataset.dataset_files(root))


@pytest.mark.spark
@pytest.mark.slow
def test_store_commit_equals_local_then_incrementally(tmp_path, spark):  # noqa: F811
    first = [_hostile(tmp_path), _versions(tmp_path, "2025-03-01T10:00:00Z", range(30)),
             *CALLR_EXAMPLES]
    a = sa.convert(first, tmp_path / "local", quiet=True)
    out = _uri(tmp_path / "store")
    with _as_object_store():
        b = spark_engine.convert(spark, [_uri(p) for p in first], out, split_bytes=3000)
    assert b.out == out and b.rejects_path == out + ".rejects.jsonl"
    b.rejects_path = str(tmp_path / "store.rejects.jsonl")
    _compare(tmp_path / "local", tmp_path / "store", a, b)
    assert _listed(tmp_path / "store") == _present(tmp_path / "store")
    # The manifest beside; no version folder, no lock file.
    assert [p.name for p in tmp_path.glob(".store.*")] == [".store.smsanalytics.json"]
    before = _listed(tmp_path / "store")
    second = [DATA, _versions(tmp_path, "2025-03-02T10:00:00Z", range(0, 30, 4))]
    a = sa.convert(second, tmp_path / "local", quiet=True)
    with _as_object_store():
        b = spark_engine.convert(spark, [_uri(p) for p in second], out, split_bytes=3000)
    assert b.replaced == a.replaced > 0
    b.rejects_path = str(tmp_path / "store.rejects.jsonl")
    _compare(tmp_path / "local", tmp_path / "store", a, b)
    # Files with replaced rows were rewritten under new names, the old ones deleted.
    assert _listed(tmp_path / "store") == _present(tmp_path / "store")
    assert set(before) - set(_listed(tmp_path / "store"))


@pytest.mark.spark
@pytest.mark.slow
def test_a_crash_before_the_manifest_leaves_the_previous_version(tmp_path, spark,  # noqa: F811
                                                                 monkeypatch):
    out = _uri(tmp_path / "store")
    first = [_versions(tmp_path, "2025-03-01T10:00:00Z", range(10)), *CALLR_EXAMPLES]
    inputs = [_uri(p) for p in first]
    query = "SELECT sid, updated_at, body_text FROM messages ORDER BY sid"
    with _as_object_store():
        spark_engine.convert(spark, inputs, out)
        old = spark_engine.connect(out, spark=spark).sql(query).fetchall()
    beside = dataset.manifest_path(tmp_path / "store")
    manifest = beside.read_bytes()
    real_write = spark_storage.HadoopStore.write_bytes

    def crash(self, uri, data):
        if uri.endswith(beside.name):
            raise RuntimeError("the driver died")
        return real_write(self, uri, data)

    monkeypatch.setattr(spark_storage.HadoopStore, "write_bytes", crash)
    second = [_uri(_versions(tmp_path, "2025-03-02T10:00:00Z", range(5)).parent), _uri(DATA)]
    with _as_object_store(), pytest.raises(RuntimeError, match="the driver died"):
        spark_engine.convert(spark, second, out)
    # The new files are there, unlisted; the manifest and what readers see are unchanged.
    assert beside.read_bytes() == manifest
    assert set(_present(tmp_path / "store")) > set(_listed(tmp_path / "store"))
    with _as_object_store():
        assert spark_engine.connect(out, spark=spark).sql(query).fetchall() == old
    # The next conversion ignores the orphans too: the dataset of a local run.
    monkeypatch.setattr(spark_storage.HadoopStore, "write_bytes", real_write)
    with _as_object_store():
        b = spark_engine.convert(spark, second, out)
    sa.convert(first, tmp_path / "local", quiet=True)
    a = sa.convert([local_path(p) for p in second], tmp_path / "local", quiet=True)
    assert (b.written, b.replaced, b.rows_total) == (a.written, a.replaced, a.rows_total)
    with _as_object_store():
        got = spark_engine.connect(out, spark=spark).sql(
            "SELECT * FROM messages ORDER BY sid").fetchall()
    want = sa.connect(tmp_path / "local").sql("SELECT * FROM messages ORDER BY sid").fetchall()
    assert got == want  # source_file too: the local path of a file:// URI, decoded


@pytest.mark.spark
def test_a_conversion_that_lost_a_race_changes_nothing(tmp_path, spark,  # noqa: F811
                                                       monkeypatch):
    out = _uri(tmp_path / "store")
    with _as_object_store():
        spark_engine.convert(spark, [_uri(CALLR_EXAMPLES[0])], out)
    # The manifest, listing the files, is beside the folder (no rename put it there).
    beside = dataset.manifest_path(tmp_path / "store")
    assert beside.is_file() and not (tmp_path / "store" / dataset.MANIFEST_NAME).exists()
    listed = _listed(tmp_path / "store")
    real_read = spark_storage.HadoopStore.read_bytes
    reads = []

    def other_commits_meanwhile(self, uri):
        data = real_read(self, uri)
        if uri.endswith(beside.name):
            reads.append(uri)
            return data + b" " if len(reads) == 2 and data else data
        return data

    monkeypatch.setattr(spark_storage.HadoopStore, "read_bytes", other_commits_meanwhile)
    with _as_object_store(), pytest.raises(DatasetError, match="changed by another conversion"):
        spark_engine.convert(spark, [_versions(tmp_path, "2025-03-01T10:00:00Z", range(3))], out)
    assert _listed(tmp_path / "store") == listed == _present(tmp_path / "store")


def _inside(root: Path) -> Path:
    """Where conversions wrote the manifest before it moved beside the folder."""
    return root / dataset.MANIFEST_NAME


@pytest.mark.spark
def test_a_legacy_manifest_inside_is_read_until_one_beside_exists(tmp_path, spark):  # noqa: F811
    root = tmp_path / "store"
    sa.convert(CALLR_EXAMPLES, root, quiet=True)
    sa.convert([_versions(tmp_path, "2025-03-01T10:00:00Z", range(5))], root, quiet=True)
    files = _present(root)  # a file per run
    assert len(files) > 1
    beside = dataset.manifest_path(root)
    record = json.loads(beside.read_text())
    beside.unlink()
    # What the Spark conversion wrote to a URI before: the manifest inside, with its files.
    _inside(root).write_text(dataset.manifest_text({**record, "files": files[:1]}))
    count = "SELECT count(*) FROM messages"
    with _as_object_store():
        store = spark_storage.HadoopStore(spark)
        assert store.read_manifest(_uri(root))["files"] == files[:1]
        listed_only = spark_engine.connect(_uri(root), spark=spark).sql(count).fetchall()
        # A conversion cut between writing the one beside and deleting the one inside:
        # the one beside is the newer, and wins.
        beside.write_text(dataset.manifest_text({**record, "files": files}))
        assert store.read_manifest(_uri(root))["files"] == files
        every = spark_engine.connect(_uri(root), spark=spark).sql(count).fetchall()
    assert every == [(record["rows"],)] and listed_only[0][0] < record["rows"]


@pytest.mark.spark
def test_a_folder_where_a_uris_manifest_goes_is_refused(tmp_path, spark):  # noqa: F811
    dataset.manifest_path(tmp_path / "store").mkdir()
    with _as_object_store(), pytest.raises(DatasetError, match="is a directory"):
        spark_engine.convert(spark, [_uri(CALLR_EXAMPLES[0])], _uri(tmp_path / "store"))
    assert not (tmp_path / "store").exists()


@pytest.mark.spark
@pytest.mark.slow
def test_a_manifest_left_beside_a_removed_folder_is_ignored(tmp_path, spark):  # noqa: F811
    stale = {"partition_by": "none", "rows": 9, "files": ["month=2025-03/part-gone.parquet"]}
    dataset.manifest_path(tmp_path / "store").write_text(dataset.manifest_text(stale))
    with _as_object_store():
        b = spark_engine.convert(spark, [_uri(CALLR_EXAMPLES[0])], _uri(tmp_path / "store"))
    assert b.rows_total == b.written > 0
    assert _listed(tmp_path / "store") == _present(tmp_path / "store")


def test_a_manifest_deleted_between_look_up_and_open_reads_as_none(monkeypatch):
    """A conversion deletes a legacy manifest inside while a reader opens it."""
    class _Gone:
        def __init__(self):
            self.looks = 0

        def exists(self, path):
            self.looks += 1
            return self.looks == 1  # there when looked up, gone when opened

        def open(self, path):
            raise RuntimeError("java.io.FileNotFoundException")

    store = object.__new__(spark_storage.HadoopStore)
    monkeypatch.setattr(store, "_fs_path", lambda uri: (_Gone(), uri), raising=False)
    assert store.read_bytes("s3a://b/ds/_smsanalytics.json") is None
    monkeypatch.setattr(store, "_fs_path", lambda uri: (_There(), uri), raising=False)
    with pytest.raises(RuntimeError, match="denied"):  # any other failure is raised
        store.read_bytes("s3a://b/ds/_smsanalytics.json")


class _There:
    def exists(self, path):
        return True

    def open(self, path):
        raise RuntimeError("java.nio.file.AccessDeniedException: denied")


def test_a_uris_manifest_is_named_as_a_local_datasets() -> None:
    beside, inside = spark_storage.manifest_uris("s3a://bucket/data/my%20ds")
    assert beside == "s3a://bucket/data/.my%20ds.smsanalytics.json"
    assert inside == "s3a://bucket/data/my%20ds/" + dataset.MANIFEST_NAME
    assert spark_storage.manifest_uris("hdfs://nn:8020/ds/")[0] == "hdfs://nn:8020/.ds.smsanalytics.json"
    with pytest.raises(DatasetError, match="root"):
        spark_storage.manifest_uris("s3a://bucket/")
    with pytest.raises(ArgumentError, match="root of a bucket"):
        spark_convert.check_arguments(["a.jsonl"], "s3a://bucket")


@given(name=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                    min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_the_manifest_beside_a_uri_is_where_a_local_dataset_has_it(name: str) -> None:
    assume(name not in (".", ".."))
    folder = Path("/srv/data") / name
    beside, inside = spark_storage.manifest_uris(spark_storage.join("file:///srv/data", name))
    assert spark_storage.display_name(beside) == str(dataset.manifest_path(folder))
    assert spark_storage.display_name(inside) == str(folder / dataset.MANIFEST_NAME)


@pytest.mark.spark
@pytest.mark.slow
def test_the_next_conversion_moves_a_legacy_manifest_beside_without_renames(
        tmp_path, spark, monkeypatch):  # noqa: F811
    root, out = tmp_path / "store", _uri(tmp_path / "store")
    first = [_versions(tmp_path, "2025-03-01T10:00:00Z", range(10)), *CALLR_EXAMPLES]
    with _as_object_store():
        spark_engine.convert(spark, [_uri(p) for p in first], out)
    beside = dataset.manifest_path(root)
    _inside(root).write_bytes(beside.read_bytes())  # as the conversion wrote it before
    beside.unlink()
    events = []
    real_write, real_delete = (spark_storage.HadoopStore.write_bytes,
                               spark_storage.HadoopStore.delete)

    def write(self, uri, data):
        events.append(("write", uri.rsplit("/", 1)[1]))
        return real_write(self, uri, data)

    def delete(self, uri):
        events.append(("delete", uri.rsplit("/", 1)[1]))
        return real_delete(self, uri)

    monkeypatch.setattr(spark_storage.HadoopStore, "write_bytes", write)
    monkeypatch.setattr(spark_storage.HadoopStore, "delete", delete)
    second = [_versions(tmp_path, "2025-03-02T10:00:00Z", range(0, 10, 3))]
    with _as_object_store():
        b = spark_engine.convert(spark, [_uri(p) for p in second], out)
    # Only the files the legacy manifest listed were the dataset; the new one is beside,
    # written before the legacy one is deleted.
    assert events.index(("write", beside.name)) < events.index(("delete", dataset.MANIFEST_NAME))
    assert beside.is_file() and not _inside(root).exists()
    assert _listed(root) == _present(root)
    sa.convert(first, tmp_path / "local", quiet=True)
    a = sa.convert(second, tmp_path / "local", quiet=True)
    assert (b.written, b.replaced, b.rows_total) == (a.written, a.replaced, a.rows_total)


# ---------------------------------------------------------------------------------------
# The tasks' side, without a JVM
# ---------------------------------------------------------------------------------------


class _NoMoves(pafs.FileSystemHandler):
    """A local file system whose renames fail: what an object store cannot do."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

    def __eq__(self, other): return self is other  # noqa: E704
    def __ne__(self, other): return self is not other  # noqa: E704
    def get_type_name(self): return "no-moves"  # noqa: E704
    def normalize_path(self, path): return path  # noqa: E704
    def get_file_info(self, paths): return self.local.get_file_info(paths)  # noqa: E704
    def get_file_info_selector(self, s): return self.local.get_file_info(s)  # noqa: E704
    def create_dir(self, path, recursive): self.local.create_dir(path, recursive=recursive)  # noqa: E704
    def delete_dir(self, path): self.local.delete_dir(path)  # noqa: E704
    def delete_dir_contents(self, path, missing_dir_ok=False): raise AssertionError  # noqa: E704
    def delete_root_dir_contents(self): raise AssertionError  # noqa: E704
    def delete_file(self, path): self.local.delete_file(path)  # noqa: E704
    def move(self, src, dest): raise AssertionError("rename on an object store")  # noqa: E704
    def copy_file(self, src, dest): raise AssertionError("copy")  # noqa: E704
    def open_input_stream(self, path): return self.local.open_input_stream(path)  # noqa: E704
    def open_input_file(self, path): return self.local.open_input_file(path)  # noqa: E704
    def open_output_stream(self, path, metadata): return self.local.open_output_stream(path)  # noqa: E704
    def open_append_stream(self, path, metadata): raise AssertionError  # noqa: E704


def test_upload_and_ranged_download_use_no_rename(tmp_path):
    fs = pafs.PyFileSystem(_NoMoves())
    source = tmp_path / "a.bin"
    source.write_bytes(bytes(range(256)) * 40)
    spark_storage.upload(source, fs, str(tmp_path / "b.bin"))
    assert (tmp_path / "b.bin").read_bytes() == source.read_bytes()
    spark_storage.download(fs, str(tmp_path / "b.bin"), tmp_path / "c.bin", 100, 5000)
    assert (tmp_path / "c.bin").read_bytes() == source.read_bytes()[100:5000]


@pytest.mark.parametrize(("data", "at", "want"), [
    (b"aa\nbb\ncc", 0, 0), (b"aa\nbb\ncc", 1, 3), (b"aa\nbb\ncc", 3, 3), (b"aa\nbb\ncc", 4, 6),
    (b"aa\nbb\ncc", 7, 8), (b"aa\nbb\ncc", 8, 8), (b"\n\n", 1, 1), (b"a\r\nb", 2, 3),
])
def test_a_fixed_cut_moves_to_the_next_line_start(tmp_path, data, want, at):
    path = tmp_path / "a.jsonl"
    path.write_bytes(data)
    with open(path, "rb") as stream:
        assert spark_convert._line_start(stream, at, len(data)) == want


def test_s3a_settings_become_arrow_options_per_bucket_first():
    settings = TaskSettings({
        "fs.s3a.access.key": "AK", "fs.s3a.secret.key": "SK",
        "fs.s3a.bucket.logs.endpoint": "http://127.0.0.1:9000",
        "fs.s3a.endpoint": "s3.eu-west-3.amazonaws.com", "fs.s3a.endpoint.region": "eu-west-3",
    })
    assert spark_storage.s3_options("logs", settings) == {
        "access_key": "AK", "secret_key": "SK", "endpoint_override": "http://127.0.0.1:9000",
        "region": "eu-west-3"}
    assert spark_storage.s3_options("other", settings)["endpoint_override"] == (
        "s3.eu-west-3.amazonaws.com")
    assert spark_storage.s3_options("x", TaskSettings()) == {}  # the machine's credentials
    assert "SK" not in repr(settings) and "fs.s3a.secret.key" in repr(settings)


@pytest.mark.parametrize(("location", "local"), [
    ("/data/ds", True), ("ds", True), ("file:///data/ds", True), ("s3a://b/ds", False),
    ("hdfs://nn:8020/ds", False), ("abfss://c@a.dfs.core.windows.net/ds", False),
    ("HDFS://nn/ds", False), ("./weird:name", True),
])
def test_which_locations_are_local(location, local):
    assert spark_storage.is_local(location) is local


def test_unknown_schemes_name_the_argument():
    with pytest.raises(ArgumentError, match="rejects"):
        spark_convert.check_arguments(["a.jsonl"], "ds", "ftp://h/r.jsonl")
    spark_convert.check_arguments(["s3a://b/in/"], "abfss://c@a.dfs.core.windows.net/ds",
                                  "hdfs://nn/r.jsonl")


def test_file_uris_keep_their_path_as_source_file():
    assert spark_storage.display_name("file:///data/a%20b.jsonl") == "/data/a b.jsonl"
    # What a user writes is taken as Spark takes it: not decoded.
    assert spark_storage.local_path("file:///data/a%20b") == Path("/data/a%20b")
    assert spark_storage.local_path("file:/data/a b") == Path("/data/a b")
    assert spark_storage.display_name("s3a://b/k.jsonl") == "s3a://b/k.jsonl"
