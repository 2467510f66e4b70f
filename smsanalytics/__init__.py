"""smsanalytics: Callr inbound-SMS archives as typed tables, answers, plots and reports.

The public names below are imported on first use (PEP 562), so that ``import
smsanalytics`` and the command line start quickly: pandas, matplotlib and phonenumbers'
data together take more than a second to import, and a conversion needs none of them
before its first batch is parsed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    DatasetError,
    DatasetLockedError,
    InputError,
    SmsAnalyticsError,
    StrictModeError,
)

if TYPE_CHECKING:
    from . import queries
    from .dataset import read_dataset, read_dataset_table
    from .ingest import ConversionSummary, LoadResult, convert, load_messages, read_messages
    from .queries import connect, run_sql
    from .report import CostReport, cost_report
    from .schema import MESSAGE_SCHEMA

__version__ = "0.1.0"

#: Public name -> module that defines it (relative to this package).
_LAZY: dict[str, str] = {
    "MESSAGE_SCHEMA": ".schema",
    "ConversionSummary": ".ingest",
    "LoadResult": ".ingest",
    "convert": ".ingest",
    "load_messages": ".ingest",
    "read_messages": ".ingest",
    "read_dataset": ".dataset",
    "read_dataset_table": ".dataset",
    "connect": ".queries",
    "run_sql": ".queries",
    "cost_report": ".report",
    "CostReport": ".report",
}

__all__ = [
    "MESSAGE_SCHEMA",
    "ConversionSummary",
    "LoadResult",
    "convert",
    "load_messages",
    "read_messages",
    "read_dataset",
    "read_dataset_table",
    "connect",
    "run_sql",
    "cost_report",
    "CostReport",
    "queries",
    "SmsAnalyticsError",
    "InputError",
    "DatasetError",
    "DatasetLockedError",
    "StrictModeError",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name == "queries":
        value = importlib.import_module(".queries", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
