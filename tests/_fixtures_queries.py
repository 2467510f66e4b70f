"""A small message table whose answers are known, for the query and plot tests.

Times sit around the 2025 DST changes in Europe/Paris: 2025-03-30 has 23 hours there
(UTC 03-29 23:00 to 03-30 22:00), 2025-10-26 has 25 (UTC 10-25 22:00 to 10-26 23:00).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from smsanalytics.schema import MESSAGE_SCHEMA

PARIS = "Europe/Paris"
A, B, C, D, E = "+33600000001", "+33600000002", "+32470000003", "+41790000004", "+33600000005"
TO1, TO2 = "+33639980042", "+33639983040"


def _t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (sid, from, to, created_at UTC, country, location, encoding, parts, cost, traffic, status,
#  body, network, payment)
_ROWS = [
    ("s01", A, TO1, _t(2025, 3, 29, 22, 30), "FR", "France", "gsm", 1, "0.8925",
     "marketing", "delivered", "STOP", "20801", "postpaid"),
    ("s02", A, TO1, _t(2025, 3, 29, 23, 30), "FR", "France", "gsm", 2, "1.785",
     "marketing", "delivered", " Arrêt ! ", "20801", "postpaid"),
    ("s03", B, TO2, _t(2025, 3, 30, 21, 30), "FR", "Paris", "unicode", 1, "0.8925",
     "alerting", "failed", "Bonjour 😀", "20810", "prepaid"),
    ("s04", C, TO1, _t(2025, 3, 30, 22, 30), "BE", "Belgium", "gsm", 1, "1.5",
     "marketing", "delivered", "stop please", "20601", "postpaid"),
    ("s05", A, TO2, _t(2025, 10, 25, 21, 30), "FR", "France", "unicode", 3, "3.3333",
     "marketing", "delivered", "Start", "20801", "postpaid"),
    ("s06", D, TO1, _t(2025, 10, 25, 22, 30), "CH", "Switzerland", "gsm", 1, "2.0001",
     "alerting", "expired", "Stop.", "22801", "prepaid"),
    ("s07", B, TO1, _t(2025, 10, 26, 0, 30), "FR", "Paris", "gsm", 1, "0.8925",
     "marketing", "delivered", "hello", "20810", "prepaid"),
    ("s08", C, TO1, _t(2025, 10, 26, 1, 30), "BE", "Belgium", "unicode", 2, "1.25",
     "marketing", "delivered", "unsubscribe!!", "20601", "postpaid"),
    ("s09", E, TO2, _t(2025, 10, 26, 22, 30), "X'Y", None, "gsm", 1, "0.0001",
     "marketing", "delivered", "désabonner", None, "postpaid"),
    ("s10", A, TO1, _t(2025, 10, 26, 23, 30), "FR", "France", "gsm", 4, "4.0000",
     "alerting", "delivered", "STOP SMS", "20801", "postpaid"),
]

FIELDS = ("sid", "from_number", "to_number", "created_at", "from_country", "from_location",
          "encoding", "parts", "cost_cents", "traffic_type", "status", "body_text",
          "network", "payment_type")


def rows() -> list[dict[str, Any]]:
    """The fixture's messages as dicts (plain Python values, for independent answers)."""
    out = []
    for values in _ROWS:
        row = dict(zip(FIELDS, values, strict=True))
        row["cost_cents"] = Decimal(row["cost_cents"])
        row["direction"] = "inbound"
        row["source"] = "webhook"
        row["network_operator"] = {"20801": "Orange", "20810": "SFR"}.get(row["network"])
        out.append(row)
    return out


def table() -> pa.Table:
    """The fixture as an Arrow table with MESSAGE_SCHEMA."""
    return pa.Table.from_pylist(rows(), schema=MESSAGE_SCHEMA)
