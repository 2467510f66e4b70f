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
# (message column, lookup column) filled from the sender's and the recipient's number
_FROM_NUMBER = {
    "from_country": "country",
    "from_type": "type",
    "from_location": "location",
    "from_carrier": "carrier",
}
_TO_NUMBER = {"to_country": "country", "to_type": "type", "to_location": "location"}
_NETWORK = {"network_country": "network_country", "network_operator": "network_operator"}


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
        self._numbers = NUMBER_SCHEMA.empty_table()
        self._networks = NETWORK_SCHEMA.empty_table()
        self._keywords = {normalise_keyword(k) for k in DEFAULT_KEYWORDS}
        self._bodies = self._describe_bodies(pa.array([], pa.string()))

    def __call__(self, table: pa.Table) -> pa.Table:
        """Return `table` with its enrichment columns filled where they are null.

        Parameters
        ----------
        table : pyarrow.Table
            Message columns (``from_number``, ``to_number``, ``network``, ``body_text`` and
            the columns filled); other columns are kept.
        """
        numbers = self._learn_numbers(table)
        networks = self._learn_networks(table)
        for key, lookup, fields in (
            ("from_number", numbers, _FROM_NUMBER),
            ("to_number", numbers, _TO_NUMBER),
            ("network", networks, _NETWORK),
        ):
            at = pc.index_in(table.column(key), value_set=lookup.column(0))
            for name, source in fields.items():
                table = _fill(table, name, lookup.column(source).take(at))
        bodies = table.column("body_text")
        if pa.types.is_dictionary(bodies.type):
            bodies = bodies.cast(pa.string())
        known = self._learn_bodies(bodies)
        at = pc.index_in(bodies, value_set=known.column("body"))
        for name in ("keyword", *COMPUTED_COLUMNS):
            table = _fill(table, name, known.column(name).take(at))
        return table

    def _learn_numbers(self, table: pa.Table) -> pa.Table:
        seen = pa.chunked_array(
            table.column("from_number").chunks + table.column("to_number").chunks,
            type=pa.string(),
        )
        new = _unknown(seen, self._numbers.column("number"))
        if len(new):
            found = describe_numbers(new.to_pylist())
            self._numbers = pa.concat_tables([self._numbers, found]).combine_chunks()
        return self._numbers

    def _learn_networks(self, table: pa.Table) -> pa.Table:
        new = _unknown(table.column("network"), self._networks.column("network"))
        if len(new):
            found = lookup_networks(new.to_pylist())
            self._networks = pa.concat_tables([self._networks, found]).combine_chunks()
        return self._networks

    def _learn_bodies(self, bodies: pa.ChunkedArray) -> pa.Table:
        """What each distinct body of `bodies` is, with those seen in earlier batches."""
        new = _unknown(bodies, self._bodies.column("body"))
        if len(new):
            found = self._describe_bodies(new)
            if len(self._bodies) + len(new) > _BODY_MEMORY:  # start over: bounded memory
                self._bodies = self._describe_bodies(pc.unique(bodies).drop_null())
            else:
                self._bodies = pa.concat_tables([self._bodies, found]).combine_chunks()
        return self._bodies

    def _describe_bodies(self, bodies: pa.Array) -> pa.Table:
        """Keyword, encoding, parts and unicode characters of distinct non-null `bodies`."""
        computed = analyze_array(bodies)
        columns = {"body": bodies, "keyword": self._keywords_of(bodies)}
        columns |= {name: computed.column(name) for name in COMPUTED_COLUMNS}
        return pa.table(columns)

    def _keywords_of(self, bodies: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The keyword each body is (a word or two: only short bodies are normalised)."""
        short = pc.if_else(
            pc.less_equal(pc.utf8_length(bodies), _KEYWORD_MAX_LENGTH), bodies, None
        )
        distinct = pc.unique(short).drop_null()
        words = [normalise_keyword(b) for b in distinct.to_pylist()]
        hits = pa.array([w if w in self._keywords else None for w in words], pa.string())
        return hits.take(pc.index_in(short, value_set=distinct))


def _unknown(values: pa.ChunkedArray, known: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Distinct non-null `values` not in `known`."""
    distinct = pc.unique(values).drop_null()
    if len(known):
        distinct = distinct.filter(pc.invert(pc.is_in(distinct, value_set=known)))
    return distinct


def _fill(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Set column `name` to `values` where it is null (a value the record gave is kept)."""
    i = table.schema.get_field_index(name)
    old = table.column(i)
    values = values.cast(old.type)
    new = values if old.null_count == len(old) else pc.coalesce(old, values)
    return table.set_column(i, table.schema.field(i), new)
