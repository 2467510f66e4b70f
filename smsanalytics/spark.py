"""Spark as the scale-out engine: the questions of :mod:`smsanalytics.queries` on a SparkSession.

This module owns what runs on Spark. :func:`connect` (also ``queries.connect(...,
engine="spark")``) returns a :class:`SparkConnection`: a ``messages`` view on a
SparkSession that every named question, ``run_sql`` and ``cost_report`` accept in place of
a DuckDB connection, and that answers with the same DataFrames.

How the answers stay the same:

* The SQL is the DuckDB SQL of :mod:`smsanalytics.queries`, translated by
  :mod:`smsanalytics.spark_sql`; parameters stay bound (``spark.sql(sql, args=...)``).
* DuckDB decides the result's types: the same statement is planned by DuckDB over an
  empty ``messages`` table of the schema's types (a few milliseconds), and Spark's result
  is cast to that Arrow schema, which only widens (decimal precision, int32 to int64), so
  values are unchanged and dtypes are DuckDB's.
* Each query runs with the session time zone UTC (set for the query, then restored), as
  the DuckDB connection does; a SparkConnection is therefore not for use from several
  threads at once.

PySpark (4.x) and sqlglot are imported only when a Spark connection is made
(``pip install smsanalytics[spark]``; Spark needs Java 17+).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import unicodedata
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import dataset
from .errors import ArgumentError, SmsAnalyticsError
from .schema import MESSAGE_SCHEMA, VIEW_COLUMNS

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkConnection", "connect", "convert", "get_session", "strip_accents"]

_TZ_KEY = "spark.sql.session.timeZone"


def strip_accents(text: str | None) -> str | None:
    """Remove accents as DuckDB's ``strip_accents`` does (utf8proc's STRIPMARK and COMPOSE).

    Decompose, drop every mark (Unicode categories Mn, Mc, Me), compose again: Hangul
    syllables, which decompose into letters, come back whole.

    Examples
    --------
    >>> strip_accents("Arrêt")
    'Arret'
    """
    if text is None:
        return None
    kept = "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if not unicodedata.category(ch).startswith("M"))
    return unicodedata.normalize("NFC", kept)


def get_session(master: str | None = None, *, app_name: str = "smsanalytics") -> SparkSession:
    """Return the active SparkSession, or start one set up for smsanalytics.

    Parameters
    ----------
    master : str, optional
        Where to run (``local[2]``, ``spark://host:7077``, ``yarn``, ...). Default: the
        master already configured (by ``spark-submit``, ``spark-defaults.conf``), else
        ``local[*]``.

    Notes
    -----
    A new session runs its Python workers with this interpreter unless ``PYSPARK_PYTHON``
    says otherwise (a worker on another Python fails on import), has no UI, few shuffle
    partitions (the questions' results are small) and writes Parquet timestamps as
    ``TIMESTAMP_MICROS`` (Spark's default, INT96, changes answers).

    Raises
    ------
    SmsAnalyticsError
        If the session cannot start (a master Spark cannot parse or reach, no Java): the
        line of Spark's error that names it, not its Java stack.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        # Start (or join, under spark-submit) the JVM first: only then does SparkConf see
        # the configured master, which a default must not override.
        SparkContext._ensure_initialized()
        builder = (
            SparkSession.builder.appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        )
        if master is not None or not SparkConf().contains("spark.master"):
            builder = builder.master(master or "local[*]")
        return builder.getOrCreate()
    except Exception as exc:
        if not is_spark_error(exc):
            raise
        where = f" (master {master})" if master else ""
        raise SmsAnalyticsError(
            f"cannot start a Spark session{where}: {spark_error_reason(exc)}"
        ) from exc


def is_spark_error(exc: BaseException) -> bool:
    """Whether `exc` comes from Spark (the JVM, its gateway or a Python worker)."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]  # py4j: no types
    from pyspark.errors import PySparkException

    return isinstance(exc, PySparkException | Py4JError)


def spark_error_reason(exc: BaseException) -> str:
    """The line of a Spark error that names it (the last ``...Error: ...``), for one line.

    A JVM error arrives with its whole Java stack; a Python worker's, with a traceback.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Error: " in line or "Exception: " in line]
    line = named[-1] if named else lines[0] if lines else type(exc).__name__
    return line.lstrip(": ")[:300]  # a JVM error's line starts ": org.apache..."


class _Result:
    """What ``SparkConnection.sql``/``execute`` return: read it as Arrow, rows or pandas."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def to_arrow_table(self) -> pa.Table:
        return self._table

    arrow = to_arrow_table

    def fetchall(self) -> list[tuple[Any, ...]]:
        columns = [c.to_pylist() for c in self._table.columns]
        return list(zip(*columns, strict=True))

    def df(self) -> pd.DataFrame:
        """The result in pandas, as the questions and ``run_sql`` convert it (in UTC).

        The one converter, :func:`smsanalytics._analysis.to_frame`: a column gets the same
        dtype on Spark as on DuckDB (``Int64`` counts, exact decimals). Not what DuckDB's
        own ``.df()`` gives, which makes decimals floats.
        """
        from ._analysis import to_frame

        return to_frame(self._table)


class SparkConnection:
    """A ``messages`` view on a SparkSession, used like the DuckDB connection of the questions.

    Made by :func:`connect`. It offers the part of DuckDB's connection the questions, the
    report and the audit use: ``sql``/``execute`` (DuckDB SQL, translated), ``register`` /
    ``unregister`` (Arrow tables as temporary views) and ``close``.

    Attributes
    ----------
    spark : pyspark.sql.SparkSession
        The session.
    view : str
        Name of the ``messages`` temporary view in the session (unique per connection).
    currency : str or None
        Currency label reported with costs.
    """

    def __init__(self, spark: SparkSession, frame: DataFrame, *,
                 currency: str | None = None) -> None:
        from . import queries

        self.spark = spark
        self.currency = currency
        self.view = f"_smsanalytics_messages_{uuid.uuid4().hex[:12]}"
        frame.createOrReplaceTempView(self.view)
        self._tables: dict[str, str] = {"messages": self.view}
        self._columns: dict[str, list[str]] = {}
        # DuckDB over an empty table of the same schema: it types every result.
        self._shadow: duckdb.DuckDBPyConnection = queries.connect(MESSAGE_SCHEMA.empty_table())
        _register_strip_accents(spark)

    def __repr__(self) -> str:
        return f"<SparkConnection view={self.view} currency={self.currency!r}>"

    def translate(self, sql: str) -> str:
        """Return the Spark SQL this connection runs for the DuckDB statement `sql`."""
        from .spark_sql import to_spark

        return to_spark(sql, tables=self._tables, columns=self._columns)

    def sql(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> _Result:
        """Run one DuckDB statement on Spark; the result has DuckDB's column types."""
        text = sql.strip().rstrip(";")
        head = text.split(None, 2)[:2]
        if head and head[0].upper() in ("CREATE", "DROP"):
            self._ddl(text)
            return _Result(pa.table({}))
        expected = self._shadow.sql(text, params=params).to_arrow_table().schema
        spark_sql = self.translate(text)
        args = dict(params) if isinstance(params, Mapping) else list(params or []) or None
        with self._utc():
            table = self.spark.sql(spark_sql, args=args).toArrow()
        return _Result(_conform(table, expected))

    execute = sql

    def _ddl(self, text: str) -> None:
        # Views are created on both sides: in DuckDB to type the statements that use them.
        self._shadow.execute(text)
        with self._utc():
            self.spark.sql(self.translate(text))

    def register(self, name: str, table: pa.Table) -> None:
        """Make the Arrow `table` a temporary view called `name` (as DuckDB's ``register``)."""
        plain = _undictionary(table)
        self._shadow.register(name, plain.slice(0, 0))
        with self._utc():
            self.spark.createDataFrame(plain).createOrReplaceTempView(name)
        self._columns[name] = plain.column_names

    def unregister(self, name: str) -> None:
        """Drop the temporary view `name`."""
        self._shadow.unregister(name)
        self.spark.catalog.dropTempView(name)
        self._columns.pop(name, None)

    def close(self) -> None:
        """Nothing to release: the session is the caller's, and the views die with it.

        The report and the audit close connections they believe they opened; closing
        must not stop a connection the caller still uses.
        """

    @contextmanager
    def _utc(self) -> Iterator[None]:
        before = self.spark.conf.get(_TZ_KEY)
        self.spark.conf.set(_TZ_KEY, "UTC")
        try:
            yield
        finally:
            if before is None:  # never so (the key has a default), but the stubs allow it
                self.spark.conf.unset(_TZ_KEY)
            else:
                self.spark.conf.set(_TZ_KEY, before)


def connect(source: Any, *, spark: SparkSession | None = None,
            currency: str | None = None) -> SparkConnection:
    """Open a :class:`SparkConnection` with a ``messages`` view over `source`.

    Parameters
    ----------
    source : str, Path, Spark DataFrame, pandas.DataFrame, pyarrow.Table, or connection
        * a dataset directory or its URI (``file://``, ``hdfs://``, ``s3a://``,
          ``abfss://``: whatever the session's file systems read), read in place by
          Spark: the files its manifest (beside the folder, or inside from before:
          :mod:`smsanalytics.dataset`) lists when it lists them (a dataset the Spark
          conversion wrote to a URI, committed without renames), else every Parquet
          file in it;
        * a Spark DataFrame, pandas DataFrame or Arrow table of messages (missing
          columns are null, extra ones ignored);
        * archive paths (a list, or a path that is not a dataset): read on the driver
          with :func:`smsanalytics.ingest.read_messages`;
        * a SparkConnection: returned as it is.
    spark : pyspark.sql.SparkSession, optional
        The session (default: the active one, or a new local one, see
        :func:`get_session`).
    currency : str, optional
        Currency label.

    Returns
    -------
    SparkConnection
    """
    if isinstance(source, SparkConnection):
        if currency is not None:
            source.currency = currency
        return source
    for module in ("pyspark", "sqlglot"):
        if importlib.util.find_spec(module) is None:
            raise ArgumentError("engine", "spark", f"{module} is not installed: pip install "
                                "'smsanalytics[spark]' (Spark also needs Java 17+)")
    session = spark if spark is not None else get_session()
    return SparkConnection(session, _frame(session, source), currency=currency)


def convert(spark: SparkSession, inputs: Any, out: str | Path, **options: Any) -> Any:
    """Convert archives into a dataset with a Spark job: :func:`smsanalytics.spark_convert.convert`.

    The same dataset, rejects file and summary as :func:`smsanalytics.convert`.
    """
    from .spark_convert import convert as convert_on_spark

    return convert_on_spark(spark, inputs, out, **options)


def _frame(spark: SparkSession, source: Any) -> DataFrame:
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    if isinstance(source, DataFrame):
        frame = source
    elif isinstance(source, str | Path) and _is_dataset_location(source):
        frame = _dataset_frame(spark, str(source))
    else:
        if isinstance(source, str | Path) or _is_path_list(source):
            from .ingest import read_messages

            paths = [source] if isinstance(source, str | Path) else list(source)
            source = read_messages(*paths)
        if not isinstance(source, pa.Table):
            import pandas as pd

            if not isinstance(source, pd.DataFrame):
                raise TypeError(
                    "source must be a dataset directory or URI, archive path(s), a Spark or "
                    f"pandas DataFrame, a pyarrow Table or a SparkConnection, not "
                    f"{type(source).__name__}")
            source = pa.Table.from_pandas(source, preserve_index=False)
        frame = spark.createDataFrame(_undictionary(source))
    present = set(frame.columns)
    columns = []
    for f in MESSAGE_SCHEMA:
        spark_type = from_arrow_type(_plain_type(f.type))
        value = F.col(f"`{f.name}`") if f.name in present else F.lit(None)
        columns.append(value.cast(spark_type).alias(f.name))
    typed = frame.select(*columns)
    return typed.select("*", *_view_columns(typed))


def _dataset_frame(spark: SparkSession, location: str) -> DataFrame:
    """The dataset at `location`: the files its manifest lists, if it lists them (a
    dataset the Spark conversion committed without renames, see
    :mod:`smsanalytics.spark_convert`), else every Parquet file in it."""
    from .spark_storage import HadoopStore, is_local, join, local_path, spark_string

    if is_local(location):
        manifest = dataset.read_manifest(local_path(location))
        base = local_path(location).absolute().as_uri()
    else:
        store = HadoopStore(spark)
        base = store.qualify(location)
        manifest = store.read_manifest(base)
    reader = spark.read.option("mergeSchema", "true")
    if "files" not in manifest:
        return reader.parquet(location)
    files = [spark_string(join(base, str(f))) for f in manifest["files"]]
    if not files:
        return spark.createDataFrame(_undictionary(MESSAGE_SCHEMA.empty_table()))
    return reader.parquet(*files)


def _view_columns(frame: DataFrame) -> list[Any]:
    """The computed columns of DuckDB's ``messages`` view (``schema.VIEW_COLUMNS``).

    The month is formatted in the session time zone, which every query sets to UTC.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    when = F.coalesce(*(F.col(c) for c in dataset.MONTH_SOURCES))
    computed = {
        "month": F.coalesce(F.date_format(when, "yyyy-MM"), F.lit(dataset.UNKNOWN_MONTH)),
        "cost": F.col("cost_cents") * F.lit(Decimal("0.01")),
    }
    return [computed[c.name].cast(from_arrow_type(c.type)).alias(c.name)
            for c in VIEW_COLUMNS]


def _is_path_list(source: Any) -> bool:
    return (isinstance(source, list | tuple) and len(source) > 0
            and all(isinstance(p, str | Path) for p in source))


def _is_dataset_location(source: str | Path) -> bool:
    """A URI of another file system (Spark reads it), or a local dataset directory."""
    text = str(source)
    if "://" in text and not text.startswith("file://"):
        return True
    path = Path(text.removeprefix("file://"))
    return path.is_dir() and (
        dataset.has_manifest(path) or bool(dataset.dataset_files(path)))


def _register_strip_accents(spark: SparkSession) -> None:
    from pyspark.sql.functions import udf

    from .spark_sql import STRIP_ACCENTS_UDF

    spark.udf.register(STRIP_ACCENTS_UDF, udf(strip_accents, "string", useArrow=True))


def _plain_type(t: pa.DataType) -> pa.DataType:
    """`t` without dictionary encoding (Spark has none), also inside lists and structs."""
    if pa.types.is_dictionary(t):
        return _plain_type(t.value_type)
    if pa.types.is_list(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_plain_type(f.type)) for f in t])
    return t


def _undictionary(table: pa.Table) -> pa.Table:
    schema = pa.schema([f.with_type(_plain_type(f.type)) for f in table.schema])
    return table.cast(schema) if schema != table.schema else table


def _conform(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """Spark's result with DuckDB's names and types (by position: DuckDB names the columns)."""
    if table.num_columns != len(expected):  # a translation bug, never the user's input
        raise RuntimeError(
            f"Spark returned {table.num_columns} columns where DuckDB plans {len(expected)}")
    table = table.rename_columns(expected.names)
    return table.cast(expected)
