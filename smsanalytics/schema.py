"""The canonical message table: every column's name, type, unit and meaning.

This module owns the columns. Every other module takes names and types from here:
``MESSAGE_SCHEMA`` (a :class:`pyarrow.Schema` whose fields carry a ``description`` and a
``unit`` in their metadata), the enumerated values Callr documents, and the conversions of
those types to DuckDB SQL types. It imports no I/O and nothing else of the package.

Decisions the Callr documentation leaves open, made here:

* ``cost_cents`` is an exact ``decimal128(18, 6)`` in *cents of the account currency*.
  The currency is not in the data; reports take it as a label (``currency="EUR"``).
* Times are ``timestamp[us, tz=UTC]``. A time zone is a parameter of a question, never of
  the stored data.
* Enumerated columns are dictionary-encoded and keep unknown values as they come.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "Column",
    "COLUMNS",
    "MESSAGE_SCHEMA",
    "REJECT_SCHEMA",
    "RAW_SCHEMA",
    "PARTITION_COLUMN",
    "VIEW_COLUMNS",
    "ENUM_VALUES",
    "COST_TYPE",
    "TIMESTAMP_TYPE",
    "column",
    "duckdb_type",
]

#: Exact money: up to 12 integer digits and 6 decimals of a cent (Callr bills to 4).
COST_TYPE = pa.decimal128(18, 6)
#: Instants, always UTC.
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
_ENUM = pa.dictionary(pa.int32(), pa.string())
_STATUS_CHANGE = pa.struct(
    [
        pa.field("before", pa.string()),
        pa.field("after", pa.string()),
        pa.field("at", TIMESTAMP_TYPE),
    ]
)

#: The values Callr documents for each enumerated column. Others are kept, not rejected.
ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "direction": ("inbound", "outbound"),
    "traffic_type": ("marketing", "alerting"),
    "status": (
        "created",
        "error",
        "expired",
        "failed",
        "pending",
        "delivered",
        "remote-queued",
        "sent",
    ),
    "encoding": ("gsm", "unicode"),
    "computed_encoding": ("gsm", "unicode"),
    "payment_type": ("prepaid", "postpaid"),
    "source": ("webhook", "actions"),
}


@dataclass(frozen=True)
class Column:
    """One column of the message table.

    Parameters
    ----------
    name : str
        Canonical column name (a contract: other tools rely on it).
    type : pyarrow.DataType
        Arrow type of the column.
    description : str
        What the column holds and where it comes from.
    unit : str, optional
        Unit of the values, if any.
    """

    name: str
    type: pa.DataType
    description: str
    unit: str | None = None

    def field(self) -> pa.Field[pa.DataType]:
        """Return the Arrow field, with description and unit as metadata."""
        meta = {"description": self.description}
        if self.unit:
            meta["unit"] = self.unit
        return pa.field(self.name, self.type, nullable=True, metadata=meta)


_S = pa.string()
COLUMNS: tuple[Column, ...] = (
    Column("sid", _S, "Callr's id of the SMS (payload `sid`); one row per sid."),
    Column("direction", _ENUM, "inbound or outbound."),
    Column("from_number", _S, "Sender, E.164 as Callr gave it."),
    Column("to_number", _S, "Recipient (the customer's number), E.164."),
    Column("body_text", _S, "Message text as received (untrusted)."),
    Column("traffic_type", _ENUM, "marketing or alerting (webhooks only)."),
    Column("status", _ENUM, "Callr status: delivered, failed, expired, ..."),
    Column("error", _S, "Callr error string, often empty."),
    Column("encoding", _ENUM, "Encoding Callr billed: gsm (GSM 03.38) or unicode (UCS-2)."),
    Column("parts", pa.int32(), "Number of SMS segments Callr billed.", "segments"),
    Column("network", _S, "MCC+MNC of the sender's operator, e.g. 20801; null if empty."),
    Column(
        "cost_cents",
        COST_TYPE,
        "What Callr charged (webhook `cost`, Actions `billingDebit`); exact decimal.",
        "cents of the account currency",
    ),
    Column("payment_type", _ENUM, "prepaid or postpaid."),
    Column("created_at", TIMESTAMP_TYPE, "When Callr created the SMS record.", "UTC"),
    Column("sent_at", TIMESTAMP_TYPE, "When the SMS was sent; often null.", "UTC"),
    Column("delivered_at", TIMESTAMP_TYPE, "When the SMS was delivered.", "UTC"),
    Column("updated_at", TIMESTAMP_TYPE, "Last update of the record; the latest wins.", "UTC"),
    Column("from_type", _S, "Sender number type, libphonenumber name (MOBILE, ...)."),
    Column("from_country", _S, "Sender country, ISO 3166-1 alpha-2."),
    Column("from_location", _S, "Sender location text (e.g. France)."),
    Column("to_type", _S, "Recipient number type, libphonenumber name."),
    Column("to_country", _S, "Recipient country, ISO 3166-1 alpha-2."),
    Column("to_location", _S, "Recipient location text."),
    Column(
        "from_carrier",
        _S,
        "Operator the sender's number range was allocated to "
        "(libphonenumber); numbers are portable, so not necessarily the current one.",
    ),
    Column("network_country", _S, "Country of the `network` MCC, ISO 3166-1 alpha-2."),
    Column("network_operator", _S, "Brand name of the `network` MCC-MNC operator."),
    Column("computed_encoding", _ENUM, "Encoding the body needs (gsm or unicode), computed."),
    Column("computed_parts", pa.int32(), "Segments the body needs, computed.", "segments"),
    Column("unicode_chars", _S, "Characters that forced unicode, e.g. '’ U+2019'; null if gsm."),
    Column(
        "keyword",
        _S,
        "Opt-out/opt-in keyword the body is, normalised (STOP, ARRET, START, ...); "
        "null if it is not one. Kept when bodies are redacted.",
    ),
    Column(
        "status_history",
        pa.list_(_STATUS_CHANGE),
        "Webhook statusHistory: list of {before, after, at (UTC)}.",
    ),
    Column("source", _ENUM, "Shape the record came in: webhook or actions."),
    Column("event_id", _S, "Webhook envelope id (same on retries); null if bare."),
    Column("event_at", TIMESTAMP_TYPE, "When the webhook event was emitted.", "UTC"),
    Column("event_try", pa.int32(), "Webhook delivery attempt, 0 first."),
    Column("source_file", _S, "File the record was read from ('-' for standard input)."),
    Column("source_line", pa.int64(), "Line in source_file where the record starts (1-based)."),
)

#: The canonical table's schema.
MESSAGE_SCHEMA: pa.Schema = pa.schema([c.field() for c in COLUMNS])

#: Hive partition key of a dataset: month of ``created_at`` in UTC, as ``YYYY-MM``. It is
#: a directory name (``month=2025-03``), not a column stored in the Parquet files.
PARTITION_COLUMN = "month"

#: Columns the ``messages`` view of :func:`smsanalytics.queries.connect` computes after
#: the stored ones (never stored in a dataset's files): handy in SQL of your own.
VIEW_COLUMNS: tuple[Column, ...] = (
    Column(PARTITION_COLUMN, _S,
           "Month partition of the message: YYYY-MM of created_at (else of the first of "
           "updated_at, delivered_at, sent_at, event_at it has) in UTC; 'unknown' if none.",
           "UTC"),
    Column("cost", pa.decimal128(18, 8),
           "cost_cents / 100, exact: the cost in major units of the account currency.",
           "currency units"),
)

#: One line of the rejects file (JSON Lines).
REJECT_SCHEMA: pa.Schema = pa.schema(
    [
        Column("source_file", _S, "File of the rejected record.").field(),
        Column("source_line", pa.int64(), "Line it starts on.").field(),
        Column("reason", _S, "Why it was rejected.").field(),
        Column("raw", _S, "The record's text (truncated).").field(),
    ]
)

#: Record candidates as readers hand them to the parser: a record's text (a JSON object,
#: possibly behind log text), where it starts, and a reason to reject it already known.
RAW_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("source_file", _ENUM),  # one value per file: dictionary, not copies
        pa.field("source_line", pa.int64()),
        pa.field("text", _S),
        pa.field("pre_error", _S),
    ]
)

_BY_NAME = {c.name: c for c in COLUMNS}


def column(name: str) -> Column:
    """Return the :class:`Column` called `name` (KeyError if there is none)."""
    return _BY_NAME[name]


def duckdb_type(t: pa.DataType) -> str:
    """Return the DuckDB SQL type that stores Arrow type `t`.

    Dictionary-encoded strings are plain ``VARCHAR`` in SQL (Parquet dictionary-encodes
    them on disk anyway); they become dictionaries again when read back into Arrow.
    """
    if pa.types.is_dictionary(t) or pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    raise TypeError(f"no DuckDB type for {t}")
