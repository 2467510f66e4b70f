"""What the analysis modules share: connections, filters, exact money, Arrow -> pandas.

Internal (its names may change): :mod:`smsanalytics.queries`, :mod:`smsanalytics.audit` and
:mod:`smsanalytics.report` import it; it imports none of them. One place for each of:

* **Connections.** :func:`connect` (public as :func:`smsanalytics.queries.connect`) opens a
  DuckDB connection with the ``messages`` view; :func:`opened` is the context manager the
  questions use: it yields a connection for any source and closes it only if it opened it.
* **Filters.** :class:`Filters` names the six filter arguments every question takes, once.
  :func:`select` parses them, with the time zone, into a :class:`Selection` (at the door:
  a bad zone or bound is an :class:`~smsanalytics.errors.ArgumentError` before anything
  is read); :meth:`Selection.where` writes the WHERE clause with every value bound.
* **Exact money.** Ratios of cents are exact fractions rounded once, half to even, to
  :data:`RATIO_QUANTUM` (:func:`ratio`); sums skip missing values (:func:`dsum`).
* **Arrow -> pandas.** :func:`to_frame` is the one converter of query results: integers
  are nullable pandas integers (``Int64``: a missing count is ``pd.NA``, never a float),
  decimals and nested values Arrow dtypes, dictionaries their values, instants tz-aware in
  the question's zone. A column name means one thing in every table
  (``tests/test_column_names.py``): ``usual_rate_cents`` is a median, ``rate_cents`` and
  ``average_rate_cents`` a cost divided by parts.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, TypedDict

import duckdb
import pandas as pd
import pyarrow as pa

from . import arguments, dataset
from .errors import DatasetError
from .schema import COLUMNS, VIEW_COLUMNS, duckdb_type

__all__ = [
    "Source",
    "TimeBound",
    "TextFilter",
    "Filters",
    "FILTER_NAMES",
    "Selection",
    "select",
    "connect",
    "opened",
    "interrupt_all",
    "is_connection",
    "set_currency",
    "currency_of",
    "lock_down",
    "is_locked_down",
    "pin_dataset",
    "used_params",
    "to_frame",
    "RATIO_QUANTUM",
    "RATIO_TYPE",
    "MONEY_TYPE",
    "is_na",
    "dec",
    "dsum",
    "isum",
    "quantize",
    "ratio",
]

#: Whatever :func:`connect` accepts, or a connection it returned.
Source = Any
#: A period bound as the user may give it (naive values are wall-clock times in `tz`).
TimeBound = date | datetime | str | pd.Timestamp | None
#: One value or several of a text column; None: no filter.
TextFilter = str | Iterable[str] | None


class Filters(TypedDict, total=False):
    """The filters every question takes as keyword arguments (all optional).

    Attributes
    ----------
    start, end : date, datetime, pandas.Timestamp or str
        Only messages created at or after `start` and before `end`. Naive values are
        wall-clock times in the question's `tz` (``start="2025-03-30", tz="Europe/Paris"``
        is Paris midnight); strings are ISO 8601.
    to_number, country, traffic_type, status : str or iterable of str
        Only messages with one of these recipients, sender countries (``from_country``,
        ISO alpha-2), traffic types, statuses. An empty list matches nothing.
    """

    start: TimeBound
    end: TimeBound
    to_number: TextFilter
    country: TextFilter
    traffic_type: TextFilter
    status: TextFilter


#: The filter arguments, in order.
FILTER_NAMES: tuple[str, ...] = ("start", "end", "to_number", "country", "traffic_type",
                                 "status")
# The text filters and the column each matches.
_FILTER_COLUMNS = {
    "to_number": "to_number",
    "country": "from_country",
    "traffic_type": "traffic_type",
    "status": "status",
}

# Connections connect() opened, while they live: interrupt_all() stops their queries.
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
# The dataset directory each of those connections' messages view scans, if it scans one:
# locking a connection down pins the view to that dataset's files (see pin_dataset).
_DATASETS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Path] = (
    weakref.WeakKeyDictionary()
)

_VIEW = "messages"
# SQL of the view's computed columns (schema.VIEW_COLUMNS). Both are independent of the
# session time zone, which `smsanalytics sql --tz` changes. The month is the partition's
# (smsanalytics.dataset.month_groups).
_VIEW_COLUMN_SQL = {
    "month": (f"coalesce(strftime(timezone('UTC', coalesce({', '.join(dataset.MONTH_SOURCES)})),"
              f" '%Y-%m'), '{dataset.UNKNOWN_MONTH}')"),
    "cost": "cost_cents * 0.01",
}
_SOURCE_TABLE = "_smsanalytics_source"
_CURRENCY_VARIABLE = "smsanalytics_currency"


# ---------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------


def connect(
    source: Source,
    *,
    currency: str | None = None,
    engine: Literal["duckdb", "spark"] = "duckdb",
    spark: Any = None,
) -> Any:
    """Open a connection with a ``messages`` view over `source`: DuckDB, or Spark.

    Parameters
    ----------
    source : str, Path, sequence of paths, a table (pandas, polars, Arrow) or connection
        * a dataset directory (one holding Parquet files, or with a manifest),
          scanned in place; its files are looked up by every query, so the connection
          sees the dataset's current version after a later conversion;
        * any other path, or a list of paths: Callr archive files, read with
          :func:`smsanalytics.ingest.read_messages`;
        * a table of messages (columns of ``MESSAGE_SCHEMA``; missing ones are null,
          extra ones ignored): a pandas DataFrame, a pyarrow Table, a polars DataFrame or
          LazyFrame (collected), or any object with the Arrow PyCapsule interface
          (``__arrow_c_stream__``); it is read once, when the connection is made;
        * a connection: returned as it is (its currency label is only set if given).
    currency : str, optional
        Label of the account currency (e.g. ``"EUR"``); costs are reported with it.
    engine : {'duckdb', 'spark'}
        ``duckdb`` (embedded, the default) or ``spark``: a
        :class:`~smsanalytics.spark.SparkConnection` that every question and the cost
        report accept, with the same answers (see :func:`smsanalytics.spark.connect`; the
        source may then also be a URI or a Spark DataFrame).
    spark : pyspark.sql.SparkSession, optional
        With ``engine="spark"``: the session (default: the active one, or a new local one).

    Returns
    -------
    duckdb.DuckDBPyConnection or smsanalytics.spark.SparkConnection
        Session time zone UTC; the ``messages`` view has the schema's columns, then the
        computed :data:`~smsanalytics.schema.VIEW_COLUMNS`: ``month`` (``YYYY-MM`` in UTC,
        the dataset's partition) and ``cost`` (``cost_cents / 100``, an exact decimal).

    Examples
    --------
    >>> import pandas as pd
    >>> con = connect(pd.DataFrame({"sid": ["a"], "from_country": ["FR"]}), currency="EUR")
    >>> con.execute("SELECT sid, from_country, cost_cents FROM messages").fetchall()
    [('a', 'FR', None)]
    """
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"engine must be 'duckdb' or 'spark', not {engine!r}")
    if engine == "spark":
        from . import spark as spark_engine

        return spark_engine.connect(source, spark=spark, currency=currency)
    if is_connection(source):
        if currency is not None:
            set_currency(source, currency)
        return source
    con = duckdb.connect()
    _OPEN.add(con)
    con.execute("SET TimeZone = 'UTC'")
    try:  # DuckDB's bar writes to stdout, where `sql --csv/--json` writes the answer
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in Jupyter, DuckDB wants ipywidgets to change it
        pass
    if isinstance(source, str | Path) and _is_dataset(Path(source)):
        con.execute(f"CREATE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                    f"FROM {dataset.scan_sql(source)}")
        _DATASETS[con] = Path(source)
    else:
        if isinstance(source, str | Path) or _is_path_list(source):
            from .ingest import read_messages

            paths = [source] if isinstance(source, str | Path) else list(source)
            source = read_messages(*paths)
        _register_table(con, _as_arrow(source))
    if currency is not None:
        set_currency(con, currency)
    return con


def interrupt_all() -> None:
    """Stop the queries running on every connection :func:`connect` opened.

    DuckDB does not notice Ctrl-C while it runs a query; the command line calls this from
    the main thread when the user interrupts a query running in another one.
    """
    for con in list(_OPEN):
        try:
            con.interrupt()
        except duckdb.Error:  # closed meanwhile
            pass


def lock_down(con: duckdb.DuckDBPyConnection, allowed: Iterable[str | Path] = ()) -> None:
    """Forbid `con` every file access but reading `allowed`, and every setting change.

    Disables DuckDB's external access (files, ``COPY ... TO``, ``ATTACH``, ``read_*`` of
    other files, extension ``INSTALL``/``LOAD``, Python replacement scans) except reading
    the files in `allowed`; no spill files are written (``temp_directory`` unset), and the
    configuration is locked so the SQL cannot undo any of it. Views created before still
    read their files, if those are in `allowed`.
    """
    con.execute("SET allowed_paths = ?", [[str(p) for p in allowed]])
    con.execute("SET temp_directory = ''")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def is_locked_down(con: Any) -> bool:
    """Whether `con` is a DuckDB connection :func:`lock_down` locked already.

    Its settings are then final. A connection locked some other way, with external access
    still on, is not: locking it down again fails (a DuckDB error), never runs the SQL.
    """
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return False
    locked, external = con.execute("SELECT current_setting('lock_configuration'), "
                                    "current_setting('enable_external_access')").fetchall()[0]
    return bool(locked) and not external


def pin_dataset(con: Any) -> list[str]:
    """Point the ``messages`` view of `con` at its dataset's files as they are now.

    A locked connection may open only the paths it allows and may not list a directory, so
    the view cannot look its files up at each query (:func:`dataset.scan_sql`): it reads the
    current files, by their real paths, listed once here. Returns the paths DuckDB opens to
    read them (each file and its literal glob pattern), for ``allowed_paths``; none for a
    connection without a dataset. A file linking outside the dataset is refused: read-only
    SQL reads the dataset and nothing else.
    """
    root = _DATASETS.get(con) if isinstance(con, duckdb.DuckDBPyConnection) else None
    if root is None:
        return []
    real_root = root.resolve()
    files = []
    for f in dataset.dataset_files(root):
        real = f.resolve()
        if not real.is_relative_to(real_root):
            raise DatasetError(str(root), f"{f.relative_to(root)} links outside the dataset; "
                                          "read-only SQL reads only the dataset's own files")
        files.append(real)
    con.execute(f"CREATE OR REPLACE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                f"FROM {dataset.scan_sql(real_root, files)}")
    return [p for f in files for p in (str(f), dataset.glob_literal(f))]


def _is_dataset(path: Path) -> bool:
    if not path.is_dir():
        return False
    return dataset.has_manifest(path) or bool(dataset.dataset_files(path))


def _is_path_list(source: Any) -> bool:
    return (
        isinstance(source, list | tuple)
        and len(source) > 0
        and all(isinstance(p, str | Path) for p in source)
    )


def _as_arrow(source: Any) -> pa.Table:
    """A table in memory as Arrow: pandas, Arrow, polars, or any Arrow PyCapsule exporter."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False)
    if type(source).__module__.split(".")[0] == "polars" and hasattr(source, "collect"):
        # A polars LazyFrame: run its plan (polars itself is never imported here).
        source = source.collect()
    if hasattr(source, "__arrow_c_stream__") or hasattr(source, "__arrow_c_array__"):
        # The Arrow PyCapsule interface: polars, DuckDB relations, nanoarrow, Arrow tables
        # of other libraries. pyarrow reads the stream without copying the buffers.
        return pa.table(source)
    raise TypeError(
        "source must be a dataset directory, archive path(s), a table (pandas or polars "
        "DataFrame, polars LazyFrame, pyarrow Table, or any object with the Arrow PyCapsule "
        f"interface __arrow_c_stream__) or a connection, not {type(source).__name__}"
    )


def _register_table(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    con.register(_SOURCE_TABLE, table)
    present = set(table.column_names)
    cols = []
    for c in COLUMNS:
        value = f'"{c.name}"' if c.name in present else "NULL"
        cols.append(f'CAST({value} AS {duckdb_type(c.type)}) AS "{c.name}"')
    con.execute(f"CREATE VIEW {_VIEW} AS SELECT *, {_view_columns()} "
                f"FROM (SELECT {', '.join(cols)} FROM {_SOURCE_TABLE})")


def _view_columns() -> str:
    """The select list of the view's computed columns, typed as the schema says."""
    return ", ".join(f'CAST({_VIEW_COLUMN_SQL[c.name]} AS {duckdb_type(c.type)}) AS "{c.name}"'
                     for c in VIEW_COLUMNS)


def is_connection(source: Any) -> bool:
    """A DuckDB connection, or a Spark one (whose module is loaded if one exists)."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        return True
    spark_engine = sys.modules.get("smsanalytics.spark")
    return spark_engine is not None and isinstance(source, spark_engine.SparkConnection)


def set_currency(con: Any, currency: str) -> None:
    """Give the connection `con` the currency label `currency` (its costs are reported so)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        con.currency = currency
        return
    con.execute(f"SET VARIABLE {_CURRENCY_VARIABLE} = ?", [currency])


def currency_of(con: Any, currency: str | None) -> str | None:
    """The currency label to report: `currency` if given, else the one of `con` (or None)."""
    if currency is not None:
        return currency
    label: str | None
    if not isinstance(con, duckdb.DuckDBPyConnection):
        label = con.currency
    else:
        label = con.execute(f"SELECT getvariable('{_CURRENCY_VARIABLE}')").fetchall()[0][0]
    return label


@contextmanager
def opened(source: Source, *, currency: str | None = None) -> Iterator[Any]:
    """Yield a connection for `source`; close it on exit only if this call opened it.

    A connection given (DuckDB or Spark) is yielded as it is, and stays open.
    """
    if is_connection(source):
        if currency is not None:
            set_currency(source, currency)
        yield source
        return
    con = connect(source, currency=currency)
    try:
        yield con
    finally:
        con.close()


# ---------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The filters of a question, parsed: what the SQL layer receives.

    Attributes
    ----------
    bounds : arguments.Bounds
        The period (aware UTC instants, either side open) and the time zone.
    values : tuple of (str, tuple of str)
        Each text filter given (its name in :class:`Filters`) and the values it allows.
    """

    bounds: arguments.Bounds
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def tz(self) -> str:
        """The IANA name of the time zone."""
        return self.bounds.tz

    def period_params(self) -> dict[str, datetime]:
        """``$start`` and ``$end`` (those given), as bound parameters."""
        found = {"start": self.bounds.start, "end": self.bounds.end}
        return {k: v for k, v in found.items() if v is not None}

    def where(self, *, extra: Sequence[str] = (), period: bool = True
              ) -> tuple[str, dict[str, Any]]:
        """Return the WHERE clause (or "") and its parameters; every value is bound.

        Parameters
        ----------
        extra : sequence of str
            Conditions (SQL) to put first.
        period : bool
            False leaves out `start` and `end` (the "any time" of a question).
        """
        conditions: list[str] = list(extra)
        params: dict[str, Any] = {}
        if period:
            params.update(self.period_params())
            ops = {"start": "created_at >= $start", "end": "created_at < $end"}
            conditions.extend(ops[k] for k in params)
        for name, items in self.values:
            if not items:
                conditions.append("false")
                continue
            names = [f"{name}_{i}" for i in range(len(items))]
            params.update(zip(names, items, strict=True))
            placeholders = ", ".join(f"${n}" for n in names)
            conditions.append(f"{_FILTER_COLUMNS[name]} IN ({placeholders})")
        if not conditions:
            return "", params
        return "WHERE " + "\n  AND ".join(conditions), params


def select(tz: Any = "UTC", filters: Mapping[str, Any] | None = None) -> Selection:
    """Parse a question's time zone and :class:`Filters` (at the door) into a Selection.

    Raises
    ------
    ArgumentError
        For a bad time zone or bound, or `end` not after `start`.
    TypeError
        For an argument that is not a filter, or a text filter value that is not a str.

    Examples
    --------
    >>> s = select("Europe/Paris", {"start": "2025-05-01", "country": ["FR", "BE"]})
    >>> where, params = s.where()
    >>> print(where)
    WHERE created_at >= $start
      AND from_country IN ($country_0, $country_1)
    >>> params["start"].isoformat(), params["country_1"]
    ('2025-04-30T22:00:00+00:00', 'BE')
    """
    given = dict(filters or {})
    unknown = [k for k in given if k not in FILTER_NAMES]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    bounds = arguments.bounds(given.get("start"), given.get("end"), tz)
    values = []
    for name in _FILTER_COLUMNS:
        value = given.get(name)
        if value is None:
            continue
        items = (value,) if isinstance(value, str) else tuple(value)
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"{name} values must be strings, not {type(item).__name__}")
        values.append((name, items))
    return Selection(bounds, tuple(values))


def used_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the parameters the SQL uses (DuckDB rejects unused named parameters)."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return {k: v for k, v in params.items() if k in used}


# ---------------------------------------------------------------------------------------
# Arrow -> pandas
# ---------------------------------------------------------------------------------------

_NULLABLE_INTEGERS: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
}


def _exact_dtype(t: pa.DataType) -> Any:
    """Integers nullable, decimals and nested values Arrow: nothing goes through a float."""
    if pa.types.is_decimal(t) or pa.types.is_nested(t):
        # pandas' default makes a list of integers with a null floats.
        return pd.ArrowDtype(t)
    return _NULLABLE_INTEGERS.get(t)


def to_frame(table: pa.Table, tz: str = "UTC") -> pd.DataFrame:
    """Turn a query result into pandas, exactly: the one converter of the analysis modules.

    Integers become nullable pandas integers (``Int64``...; a missing one is ``pd.NA``),
    decimals and nested values (lists, structs) Arrow dtypes, dictionary-encoded columns
    their values; tz-aware instants are shown in `tz`. Floats, text and booleans take
    pandas' default. Spark's results are converted here too (``SparkConnection.sql(...)
    .df()``), so a column has one dtype on either engine. Stored messages are not:
    :func:`smsanalytics.dataset.to_pandas` keeps them Arrow throughout (its notes say why).

    Examples
    --------
    >>> df = to_frame(pa.table({"messages": pa.array([3, None], pa.int64())}))
    >>> str(df["messages"].dtype), df["messages"].tolist()
    ('Int64', [3, <NA>])
    """
    if any(pa.types.is_dictionary(f.type) for f in table.schema):
        table = pa.Table.from_arrays(
            [c.cast(f.type.value_type) if pa.types.is_dictionary(f.type) else c
             for f, c in zip(table.schema, table.columns, strict=True)],
            names=table.column_names)
    df = table.to_pandas(types_mapper=_exact_dtype)
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            df[f.name] = df[f.name].dt.tz_convert(tz)
    return df


# ---------------------------------------------------------------------------------------
# Exact money
# ---------------------------------------------------------------------------------------

#: Resolution of the ratios of cents (rates per part, amounts at stake) [cents].
RATIO_QUANTUM = Decimal("1e-10")
#: Arrow type of those ratios.
RATIO_TYPE = pa.decimal128(38, 10)
#: Arrow type of sums of costs [cents].
MONEY_TYPE = pa.decimal128(38, 6)


def is_na(value: Any) -> bool:
    """Whether `value` is a missing scalar of any kind: None, NA, NaN or NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def dec(value: Any) -> Decimal:
    """A cost as a Decimal; a missing one is 0 (as SQL sums skip nulls)."""
    return Decimal(0) if is_na(value) else Decimal(value)


def dsum(values: Iterable[Any]) -> Decimal:
    """The exact sum of costs, missing ones skipped."""
    return sum((dec(v) for v in values), Decimal(0))


def isum(values: Iterable[Any]) -> int:
    """The sum of counts, missing ones skipped."""
    return sum((int(v) for v in values if not is_na(v)), 0)


def quantize(value: Fraction) -> Decimal:
    """An exact ratio as a Decimal, rounded once, half to even, to :data:`RATIO_QUANTUM`.

    Examples
    --------
    >>> quantize(Fraction(1, 3))
    Decimal('0.3333333333')
    """
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        RATIO_QUANTUM, ROUND_HALF_EVEN)


def ratio(num: Decimal | Fraction | int, den: Decimal | Fraction | int = 1) -> Decimal | None:
    """``num / den`` exactly, rounded once as :func:`quantize` does; None when `den` is 0.

    Examples
    --------
    >>> ratio(Decimal("2.6775"), 3), ratio(1, 0)
    (Decimal('0.8925000000'), None)
    """
    if not den:
        return None
    return quantize(Fraction(num) / Fraction(den))
