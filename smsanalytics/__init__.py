"""smsanalytics: Callr inbound-SMS archives as typed tables, answers, plots and reports."""

from .dataset import read_dataset
from .errors import (
    DatasetError,
    DatasetLockedError,
    InputError,
    SmsAnalyticsError,
    StrictModeError,
)
from .ingest import ConversionSummary, LoadResult, convert, load_messages, read_messages
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
    "SmsAnalyticsError",
    "InputError",
    "DatasetError",
    "DatasetLockedError",
    "StrictModeError",
]
