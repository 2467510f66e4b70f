"""smsanalytics: Callr inbound-SMS archives as typed tables, answers, plots and reports."""

from . import queries
from .dataset import read_dataset
from .errors import (
    DatasetError,
    DatasetLockedError,
    InputError,
    SmsAnalyticsError,
    StrictModeError,
)
from .ingest import ConversionSummary, LoadResult, convert, load_messages, read_messages
from .queries import connect, run_sql
from .report import CostReport, cost_report
from .schema import MESSAGE_SCHEMA

__version__ = "0.1.0"

__all__ = [
    "MESSAGE_SCHEMA",
    "ConversionSummary",
    "LoadResult",
    "convert",
    "load_messages",
    "read_messages",
    "read_dataset",
    "queries",
    "connect",
    "run_sql",
    "cost_report",

    "CostReport",
    "SmsAnalyticsError",
    "InputError",
    "DatasetError",
    "DatasetLockedError",
    "StrictModeError",
]
