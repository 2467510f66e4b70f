"""A dataset folder is read as it is by the PyData tools: polars, pyarrow, DuckDB, pandas, Spark.

Each reader is given the folder and nothing else (no glob, no file list, no option of
ours), as a user next to this toolkit would; each must see every message once, with the
``month`` partition. Also: the manifest lives beside the folder, a dataset written with
the manifest inside still works and is migrated, and ``read_dataset``'s backends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import smsanalytics
from smsanalytics import dataset as ds
from smsanalytics import privacy
from smsanalytics.errors import ArgumentError, DatasetError
from tests._spark_session import spark  # noqa: F401  (the session fixture)
from tests.conftest import SAMPLE

pl = pytest.importorskip("polars")


@pytest.fixture(scope="module")
def converted(full_sample_dataset: Path) -> Path:
    """The whole sample, converted once for the session (conftest): read only."""
    return full_sample_dataset


@pytest.fixture
def dataset(converted: Path, tmp_path: Path) -> Path:
    """A copy of the converted sample, with its manifest: each test may change it."""
    out = tmp_path / "ds"
    shutil.copytree(converted, out)
    shutil.copy(ds.manifest_path(converted), ds.manifest_path(out))
    return out


@pytest.fixture(scope="module")
def expected(converted: Path) -> tuple[int, set[str], Decimal]:
    """What every reader must find: rows, months, exact total cost (from our own reader)."""
    table = ds.read_dataset_table(converted, ["cost_cents"])
    months = {ds.partition_of(f, converted) for f in ds.dataset_files(converted)}
    return table.num_rows, months, sum(v for v in table["cost_cents"].to_pylist() if v)


def _polars_scan(path: Path) -> tuple[int, set[str], Decimal]:
    df = pl.scan_parquet(f"{path}/").select("month", "cost_cents").collect()
    return df.height, set(df["month"].cast(pl.String)), df["cost_cents"].sum()


def _polars_read(path: Path) -> tuple[int, set[str], Decimal]:
    df = pl.read_parquet(path)
    return df.height, set(df["month"].cast(pl.String)), df["cost_cents"].sum()


def _pyarrow(path: Path) -> tuple[int, set[str], Decimal]:
    t = pads.dataset(path, partitioning="hive").to_table(columns=["month", "cost_cents"])
    costs = t["cost_cents"].to_pylist()
    return t.num_rows, {str(m) for m in t["month"].to_pylist()}, sum(c for c in costs if c)


def _duckdb(path: Path) -> tuple[int, set[str], Decimal]:
    con = duckdb.connect()
    rows = con.execute(
        "SELECT month, cost_cents FROM read_parquet(?, hive_partitioning=true)",
        [f"{path}/**/*.parquet"],
    ).fetchall()
    return len(rows), {str(m) for m, _ in rows}, sum(c for _, c in rows if c is not None)


def _pandas(path: Path) -> tuple[int, set[str], Decimal]:
    import pandas as pd

    df = pd.read_parquet(path, columns=["month", "cost_cents"])
    return len(df), {str(m) for m in df["month"]}, sum(c for c in df["cost_cents"] if pd.notna(c))


READERS = {
    "polars.scan_parquet": _polars_scan,
    "polars.read_parquet": _polars_read,
    "pyarrow.dataset": _pyarrow,
    "duckdb": _duckdb,
    "pandas": _pandas,
}


def test_the_folder_holds_nothing_but_parquet_files_in_month_folders(converted: Path) -> None:
    for folder, dirs, files in os.walk(converted):
        here = Path(folder)
        assert all(d.startswith("month=") for d in dirs) and here.parent in (converted,
                                                                            converted.parent)
        assert files == [] or all(f.endswith(".parquet") for f in files), files
    assert ds.manifest_path(converted).is_file()
    assert ds.read_manifest(converted)["format"] == "smsanalytics-dataset"


@pytest.mark.parametrize("reader", READERS)
def test_each_reader_reads_the_folder_as_it_is(converted, expected, reader) -> None:
    rows, months, cost = READERS[reader](converted)
    assert (rows, months) == expected[:2]
    assert Decimal(cost) == expected[2]  # exact: the decimals stay decimals


@pytest.mark.spark
def test_spark_reads_the_folder_as_it_is(spark, converted, expected) -> None:  # noqa: F811
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(converted))
    per_month = df.groupBy("month").agg(F.count("*").alias("n"), F.sum("cost_cents").alias("c"))
    got = per_month.collect()  # one job
    rows, cost = sum(r["n"] for r in got), sum(r["c"] for r in got if r["c"] is not None)
    assert (rows, {str(r["month"]) for r in got}, cost) == expected


def test_polars_sees_the_logical_types(converted: Path) -> None:
    schema = pl.scan_parquet(f"{converted}/").collect_schema()
    assert schema["cost_cents"] == pl.Decimal(18, 6)
    assert schema["created_at"] == pl.Datetime("us", "UTC")


def test_an_unpartitioned_dataset_reads_as_it_is(tmp_path: Path) -> None:
    out = tmp_path / "flat"
    s = smsanalytics.convert([SAMPLE], out, partition_by="none", quiet=True)
    assert sorted(p.suffix for p in out.iterdir()) == [".parquet"]
    assert pl.scan_parquet(f"{out}/").select(pl.len()).collect().item() == s.written
    assert pads.dataset(out).count_rows() == s.written


# --- the manifest, beside the folder -----------------------------------------------------


def _make_legacy(path: Path) -> dict:
    """Turn `path` into a dataset as written before the manifest moved out."""
    manifest = ds.read_manifest(path)
    ds.manifest_path(path).rename(path / ds.MANIFEST_NAME)
    return manifest


def test_a_dataset_with_the_old_manifest_inside_still_works(dataset: Path) -> None:
    manifest = _make_legacy(dataset)
    assert ds.read_manifest(dataset) == manifest
    assert ds.has_manifest(dataset) and not ds.manifest_path(dataset).exists()
    assert ds.describe(dataset).manifest == manifest
    con = smsanalytics.connect(dataset)
    assert con.execute("SELECT count(*) FROM messages").fetchone()[0] == manifest["rows"]
    # pyarrow, pandas and Spark skip a '_' file: they read the old layout too
    assert pads.dataset(dataset, partitioning="hive").count_rows() == manifest["rows"]


def test_the_next_conversion_moves_the_old_manifest_out(dataset: Path) -> None:
    before = _make_legacy(dataset)
    s = smsanalytics.convert([SAMPLE], dataset, quiet=True)
    assert s.written == 0  # nothing new: the migration needs no new data
    assert not (dataset / ds.MANIFEST_NAME).exists()
    assert ds.read_manifest(dataset) == before  # moved as it was: the data did not change
    assert pl.scan_parquet(f"{dataset}/").select(pl.len()).collect().item() == before["rows"]


def test_a_pseudonymised_old_dataset_keeps_its_guard_through_the_migration(
    converted: Path, tmp_path: Path
) -> None:
    key = hashlib.sha256(b"interop").digest()
    anon = tmp_path / "anon"
    privacy.pseudonymize_dataset(converted, anon, key=key)
    _make_legacy(anon)
    with pytest.raises(DatasetError):  # raw numbers into a pseudonymised dataset: refused
        smsanalytics.convert([SAMPLE], anon, quiet=True)
    smsanalytics.convert([SAMPLE], anon, pseudonymize_key=key, quiet=True)
    assert not (anon / ds.MANIFEST_NAME).exists()
    with pytest.raises(DatasetError):  # still refused, from the manifest beside it now
        smsanalytics.convert([SAMPLE], anon, quiet=True)


def test_a_crash_between_swap_and_move_leaves_a_consistent_record(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, write
) -> None:
    first = ds.read_manifest(dataset)
    monkeypatch.setattr(ds, "_publish_manifest", lambda out: None)  # the process died there
    s = smsanalytics.convert([SAMPLE, write("one.jsonl", _one_message())], dataset, quiet=True)
    assert s.written == 1
    # the new version's manifest is still inside: it, not the old one beside, is read
    assert (dataset / ds.MANIFEST_NAME).exists()
    assert ds.manifest_path(dataset).exists()
    assert ds.read_manifest(dataset)["rows"] == first["rows"] + 1
    monkeypatch.undo()
    smsanalytics.convert([SAMPLE], dataset, quiet=True)
    assert not (dataset / ds.MANIFEST_NAME).exists()
    assert ds.read_manifest(dataset)["rows"] == first["rows"] + 1


def _one_message() -> str:
    import json

    from tests.conftest import DATA

    data = json.loads((DATA / "webhook-payload.json").read_text())
    data = data.get("data", data)
    return json.dumps({**data, "sid": "interop-extra-message"}) + "\n"


def test_a_manifest_moved_out_while_being_read_is_found_beside(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _make_legacy(dataset)
    find = ds._manifest_file

    def found_then_moved(path):  # a conversion migrates it between look-up and read
        p = find(path)
        ds._publish_manifest(Path(path))
        return p

    monkeypatch.setattr(ds, "_manifest_file", found_then_moved)
    assert ds.read_manifest(dataset) == manifest


def test_a_folder_without_a_manifest_is_still_refused(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"\.mine\.smsanalytics\.json"):
        smsanalytics.convert([SAMPLE], out, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_the_manifest_is_found_however_the_folder_is_written(dataset: Path) -> None:
    want = ds.manifest_path(dataset)
    assert want.parent == dataset.parent
    for spelling in (f"{dataset}/", f"{dataset}/.", f"{dataset}/month=2025-01/.."):
        assert ds.manifest_path(spelling) == want, spelling


@pytest.mark.parametrize("kind", ["folder", "link"])
def test_something_else_where_the_manifest_goes_is_refused_before_writing(
    tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "ds"
    beside = ds.manifest_path(out)
    if kind == "folder":
        beside.mkdir()
    else:
        beside.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(DatasetError, match="not a regular file"):
        smsanalytics.convert([SAMPLE / "events"], out, quiet=True)
    assert not out.exists() and not (tmp_path / "elsewhere.json").exists()


def test_the_manifest_of_a_link_is_that_of_the_folder(dataset: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(dataset)
    assert ds.read_manifest(link) == ds.read_manifest(dataset) != {}


def test_a_broken_manifest_is_one_clear_error(dataset: Path) -> None:
    ds.manifest_path(dataset).write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        ds.read_manifest(dataset)


def test_the_users_own_file_is_kept_and_read_around(dataset: Path) -> None:
    (dataset / "README.txt").write_text("my notes")
    smsanalytics.convert([SAMPLE], dataset, quiet=True)
    assert (dataset / "README.txt").read_text() == "my notes"
    rows = ds.read_manifest(dataset)["rows"]
    assert len(smsanalytics.read_dataset(dataset, ["sid"])) == rows
    # what the README says: polars still reads the folder through a glob of its Parquet files
    lf = pl.scan_parquet(f"{dataset}/**/*.parquet", hive_partitioning=True)
    assert lf.select(pl.len()).collect().item() == rows


# --- read_dataset's backends -------------------------------------------------------------


def test_read_dataset_as_polars_keeps_the_logical_types(converted: Path) -> None:
    df = smsanalytics.read_dataset(converted, backend="polars")
    assert isinstance(df, pl.DataFrame)
    assert df.columns == smsanalytics.MESSAGE_SCHEMA.names
    assert df.schema["cost_cents"] == pl.Decimal(18, 6)
    assert df.schema["created_at"] == pl.Datetime("us", "UTC")
    assert df.schema["status"] == pl.Categorical
    pandas_df = smsanalytics.read_dataset(converted)
    assert df["cost_cents"].sum() == pandas_df["cost_cents"].sum()  # exact Decimals, equal
    first = df.sort("sid").row(0, named=True)
    assert first["created_at"].tzinfo is not None
    assert first["created_at"].utcoffset() == dt.timedelta(0)


def test_read_dataset_columns_and_the_arrow_backend(converted: Path) -> None:
    table = smsanalytics.read_dataset(converted, ["sid", "cost_cents"], backend="arrow")
    assert isinstance(table, pa.Table) and table.column_names == ["sid", "cost_cents"]
    assert table.equals(smsanalytics.read_dataset_table(converted, ["sid", "cost_cents"]))
    df = smsanalytics.read_dataset(converted, ["sid"], backend="polars")
    assert df.columns == ["sid"] and df.height == table.num_rows


def test_read_dataset_refuses_an_unknown_backend(converted: Path) -> None:
    with pytest.raises(ArgumentError, match="backend"):
        smsanalytics.read_dataset(converted, backend="spark")


def test_reading_as_pandas_or_arrow_does_not_import_polars(converted: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, smsanalytics as sa\n"
        f"sa.read_dataset({str(converted)!r}); sa.read_dataset_table({str(converted)!r})\n"
        "assert 'polars' not in sys.modules, 'polars imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_converting_the_folder_that_holds_the_dataset_does_not_read_its_manifest(
    tmp_path: Path,
) -> None:
    arch = tmp_path / "arch"
    shutil.copytree(SAMPLE / "events", arch)
    first = smsanalytics.convert([arch], arch / "ds", quiet=True)
    assert ds.manifest_path(arch / "ds").parent == arch  # a .json among the archives
    again = smsanalytics.convert([arch], arch / "ds", quiet=True)
    assert (again.records, again.rejected, again.files) == (
        first.records, first.rejected, first.files)
    assert again.written == 0


# No lone surrogates: most cannot be in a file name at all (os.fsencode refuses them).
@given(name=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                    min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_the_manifest_path_is_beside_and_outside_any_dataset_name(name: str) -> None:
    assume(name not in (".", ".."))
    parent = Path("/srv/data")
    beside = ds.manifest_path(parent / name)
    assert beside.parent == parent  # beside the folder, never inside it
    assert beside.name.startswith(f".{name}.")  # what a conversion skips as its own
    assert beside.name != name and beside.name != f".{name}.lock"
    # no other dataset's folder, lock or scratch folder can have this name
    assert not beside.name.endswith(".lock")
    assert ds._leftover_names(parent / name).fullmatch(beside.name) is None
