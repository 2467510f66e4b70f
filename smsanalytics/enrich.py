"""Enrichment at conversion: the columns Callr does not send in every shape.

Webhooks carry only raw numbers and an MCC-MNC code; Actions objects carry country, type
and location. Before new rows are written, this module fills, for every row:

* ``from_country``, ``from_type``, ``from_location`` (and ``to_*``) from the number, with
  :func:`smsanalytics.numbers.describe_numbers`, where the record did not supply them
  (values Callr supplied are kept); ``from_carrier``, the operator the number's range was
  allocated to (numbers are portable);
* ``network_country`` and ``network_operator`` from :mod:`smsanalytics.networks`;
* ``computed_encoding``, ``computed_parts``, ``unicode_chars`` from the body with
  :func:`smsanalytics.segments.analyze_array`;
* ``keyword``: the opt-out/opt-in keyword the body is, normalised with
  :func:`smsanalytics.keywords.normalise_keyword`, from :data:`DEFAULT_KEYWORDS`.

Each distinct number, network code and short body is looked up once, in Python; the join and
everything per row happens in DuckDB or in vectorised Arrow code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .keywords import DEFAULT_KEYWORDS, normalise_keyword
from .networks import lookup_networks
from .numbers import describe_numbers
from .segments import analyze_array

__all__ = ["register_lookups", "enrich_sql", "add_computed", "COMPUTED_COLUMNS"]

#: Columns :func:`add_computed` fills from the body text.
COMPUTED_COLUMNS = ("computed_encoding", "computed_parts", "unicode_chars")
_NUMBERS = "_enrich_numbers"
_NETWORKS = "_enrich_networks"
_KEYWORDS = "_enrich_keywords"
_KEYWORD_MAX_LENGTH = 40


def register_lookups(con: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """Describe the distinct numbers and network codes of `rows_sql` into lookup tables.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection where `rows_sql` runs; two tables are created on it.
    rows_sql : str
        A query whose rows have ``from_number``, ``to_number`` and ``network``.
    """
    numbers = con.execute(
        f"""SELECT DISTINCT n FROM (
                SELECT from_number AS n FROM ({rows_sql})
                UNION SELECT to_number FROM ({rows_sql})) WHERE n IS NOT NULL"""
    ).fetchall()
    codes = con.execute(
        f"SELECT DISTINCT network FROM ({rows_sql}) WHERE network IS NOT NULL"
    ).fetchall()
    # A keyword message is a word or two: only short bodies can be one, and each distinct
    # short body is normalised once.
    short = con.execute(
        f"""SELECT DISTINCT body_text FROM ({rows_sql})
            WHERE length(body_text) <= {_KEYWORD_MAX_LENGTH}"""
    ).fetchall()
    words = {normalise_keyword(k) for k in DEFAULT_KEYWORDS}
    found = [(b, k) for (b,) in short if (k := normalise_keyword(b)) in words]
    keyword_table = pa.table(
        {"body_text": [b for b, _ in found], "keyword": [k for _, k in found]},
        schema=pa.schema([("body_text", pa.string()), ("keyword", pa.string())]),
    )
    number_table = describe_numbers(r[0] for r in numbers)
    network_table = lookup_networks(r[0] for r in codes)
    for name, table in (
        (_NUMBERS, number_table),
        (_NETWORKS, network_table),
        (_KEYWORDS, keyword_table),
    ):
        con.register("_lookup", table)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _lookup")
        finally:
            con.unregister("_lookup")


def enrich_sql(rows_sql: str) -> str:
    """SQL selecting the rows of `rows_sql` with number, network and keyword columns filled.

    Call :func:`register_lookups` with the same `rows_sql` first. A value the record
    supplied (an Actions ``fromCountry``) is kept; only nulls are filled.
    """
    return f"""
SELECT r.* REPLACE (
    coalesce(r.from_country, nf.country) AS from_country,
    coalesce(r.from_type, nf.type) AS from_type,
    coalesce(r.from_location, nf.location) AS from_location,
    coalesce(r.from_carrier, nf.carrier) AS from_carrier,
    coalesce(r.to_country, nt.country) AS to_country,
    coalesce(r.to_type, nt.type) AS to_type,
    coalesce(r.to_location, nt.location) AS to_location,
    coalesce(r.network_country, nw.network_country) AS network_country,
    coalesce(r.network_operator, nw.network_operator) AS network_operator,
    coalesce(r.keyword, kw.keyword) AS keyword
)
FROM ({rows_sql}) r
LEFT JOIN {_NUMBERS} nf ON nf.number = r.from_number
LEFT JOIN {_NUMBERS} nt ON nt.number = r.to_number
LEFT JOIN {_NETWORKS} nw ON nw.network = r.network
LEFT JOIN {_KEYWORDS} kw ON kw.body_text = r.body_text
"""


def add_computed(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Fill the computed encoding columns of each batch from its ``body_text``.

    Rows whose computed columns are already set (rewritten old rows) keep them.
    """
    for batch in batches:
        computed = analyze_array(batch.column("body_text"))
        arrays = list(batch.columns)
        names = batch.schema.names
        for name in COMPUTED_COLUMNS:
            i = names.index(name)
            old = batch.column(i)
            new = computed.column(name).combine_chunks().cast(old.type)
            arrays[i] = pc.coalesce(old, new) if old.null_count < len(old) else new
        yield pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
