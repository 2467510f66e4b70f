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

An :class:`Enricher` works batch by batch and remembers what it has looked up: each
distinct number and network code is described once per conversion, in Python, and each
distinct body is measured and matched against the keywords once (up to
``_BODY_MEMORY`` bodies remembered, so memory stays bounded on archives where every body
is different); joining the answers to the rows is done with Arrow's hash kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .keywords import DEFAULT_KEYWORDS, normalise_keyword
from .networks import NETWORK_SCHEMA, lookup_networks
from .numbers import NUMBER_SCHEMA, describe_numbers
from .segments import analyze_array

__all__ = ["Enricher", "COMPUTED_COLUMNS"]

#: Columns filled from the body text.
COMPUTED_COLUMNS = ("computed_encoding", "computed_parts", "unicode_chars")
_KEYWORD_MAX_LENGTH = 40
# Distinct bodies remembered, with what they were found to be; beyond this the memory
# starts over from the current batch (replies such as "OUI" or "STOP" recur constantly,
# so the bodies that matter come back at once).
_BODY_MEMORY = 200_000
# Distinct numbers (and network codes) remembered: the senders of a large archive.
_NUMBER_MEMORY = 1_000_000
# (message column, lookup column) filled from the sender's and the recipient's number
_FROM_NUMBER = {
    "from_country": "country",
    "from_type": "type",
    "from_location": "location",
    "from_carrier": "carrier",
}
_TO_NUMBER = {"to_country": "country", "to_type": "type", "to_location": "location"}
_NETWORK = {"network_country": "network_country", "network_operator": "network_operator"}


class _Memo:
    """What was found for each distinct key, remembered from batch to batch.

    Parameters
    ----------
    describe : callable
        Distinct non-null keys (a string array) -> a table with one row per key, in the
        same order, whose first column is the key.
    empty : pyarrow.Table
        The table `describe` makes of no keys.
    limit : int
        Keys remembered at most; beyond, the memory starts over from the current batch.
    """

    def __init__(
        self, describe: Callable[[pa.Array[Any]], pa.Table], empty: pa.Table, limit: int
    ) -> None:
        self._describe = describe
        self.table = empty
        self._limit = limit

    def rows_for(
        self, keys: pa.Array[Any] | pa.ChunkedArray[Any], columns: list[str]
    ) -> pa.Table:
        """`columns` of the description of each of `keys`, row by row (null for null).

        Each distinct key of the batch is looked up once among those known (one hash
        table), and only the new ones are described.
        """
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if pa.types.is_dictionary(keys.type):
            keys = keys.cast(pa.string())
        encoded = keys.dictionary_encode()
        distinct = encoded.dictionary
        found = pc.index_in(distinct, value_set=self.table.column(0))
        at = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        new = at < 0
        if new.any():
            if len(self.table) + int(new.sum()) > self._limit:  # start over: bounded memory
                self.table = self._describe(distinct)
                at = np.arange(len(distinct))
            else:
                added = self._describe(distinct.filter(pa.array(new)))
                at[new] = len(self.table) + np.arange(len(added))
                self.table = pa.concat_tables([self.table, added]).combine_chunks()
        rows = pa.array(at, pa.int64()).take(encoded.indices)  # a null key has a null index
        return self.table.select(columns).take(rows)


class Enricher:
    """Fill the enrichment columns of message batches, remembering earlier lookups.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from smsanalytics.schema import MESSAGE_SCHEMA
    >>> rows = MESSAGE_SCHEMA.empty_table().to_pylist() + [
    ...     {"sid": "a", "from_number": "+33612345678", "to_number": "+33639980044",
    ...      "network": "20801", "body_text": "STOP"}]
    >>> batch = pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)
    >>> row = Enricher()(batch).to_pylist()[0]
    >>> row["from_country"], row["from_carrier"], row["network_operator"], row["keyword"]
    ('FR', 'SFR', 'Orange', 'STOP')
    """

    def __init__(self) -> None:
        self._keywords = {normalise_keyword(k) for k in DEFAULT_KEYWORDS}
        # (the lambdas look the module's functions up when called: tests replace them)
        self._numbers = _Memo(
            lambda ns: describe_numbers(ns.to_pylist()), NUMBER_SCHEMA.empty_table(),
            _NUMBER_MEMORY,
        )
        self._networks = _Memo(
            lambda cs: lookup_networks(cs.to_pylist()), NETWORK_SCHEMA.empty_table(),
            _NUMBER_MEMORY,
        )
        self._bodies = _Memo(
            self._describe_bodies, self._describe_bodies(pa.array([], pa.string())),
            _BODY_MEMORY,
        )

    def __call__(self, table: pa.Table) -> pa.Table:
        """Return `table` with its enrichment columns filled where they are null.

        Parameters
        ----------
        table : pyarrow.Table
            Message columns (``from_number``, ``to_number``, ``network``, ``body_text`` and
            the columns filled); other columns are kept.
        """
        n = table.num_rows
        numbers = pa.chunked_array(
            table.column("from_number").chunks + table.column("to_number").chunks,
            type=pa.string(),
        )
        wanted = list(dict.fromkeys([*_FROM_NUMBER.values(), *_TO_NUMBER.values()]))
        described = self._numbers.rows_for(numbers, wanted)
        for fields, rows in ((_FROM_NUMBER, described.slice(0, n)),
                             (_TO_NUMBER, described.slice(n))):  # fmt: skip
            for name, source in fields.items():
                table = _fill(table, name, rows.column(source))
        lookups = (
            (self._networks, "network", _NETWORK),
            (self._bodies, "body_text", {c: c for c in ("keyword", *COMPUTED_COLUMNS)}),
        )
        for memo, key, fields in lookups:
            rows = memo.rows_for(table.column(key), list(fields.values()))
            for name, source in fields.items():
                table = _fill(table, name, rows.column(source))
        return table

    def _describe_bodies(self, bodies: pa.Array[Any]) -> pa.Table:
        """Keyword, encoding, parts and unicode characters of distinct non-null `bodies`."""
        computed = analyze_array(bodies)
        # analyze_array took them, and rows_for decodes dictionaries: string arrays
        if not isinstance(bodies, pa.StringArray | pa.LargeStringArray):
            raise TypeError(f"bodies must be strings, not {bodies.type}")
        columns: dict[str, pa.Array[Any] | pa.ChunkedArray[Any]] = {
            "body": bodies,
            "keyword": self._keywords_of(bodies),
        }
        columns |= {name: computed.column(name) for name in COMPUTED_COLUMNS}
        return pa.Table.from_pydict(columns)

    def _keywords_of(self, bodies: pa.StringArray | pa.LargeStringArray) -> pa.StringArray:
        """The keyword each body is (a word or two: only short bodies are normalised)."""
        is_short = pc.less_equal(pc.utf8_length(bodies), pa.scalar(_KEYWORD_MAX_LENGTH))
        # the stubs type if_else for scalars or arrays alike: arrays in, an array out
        short = cast(
            "pa.StringArray | pa.LargeStringArray", pc.if_else(is_short, bodies, None)
        )
        distinct = pc.unique(short).drop_null()
        words = [normalise_keyword(b) for b in distinct.to_pylist() if b is not None]
        hits = pa.array([w if w in self._keywords else None for w in words], pa.string())
        return hits.take(pc.index_in(short, value_set=distinct))


def _fill(
    table: pa.Table, name: str, values: pa.Array[Any] | pa.ChunkedArray[Any]
) -> pa.Table:
    """Set column `name` to `values` where it is null (a value the record gave is kept)."""
    i = table.schema.get_field_index(name)
    old = table.column(i)
    values = values.cast(old.type)
    new = values if old.null_count == len(old) else pc.coalesce(old, values)
    return table.set_column(i, table.schema.field(i), new)
