"""Exceptions: one root class; specific ones also inherit the builtin that fits.

Problems in the *data* (a bad line, an unknown value) are not exceptions: they are counted
and written to the rejects file. Exceptions are for what stops a whole operation: an input
that cannot be opened, a dataset that cannot be read, a lock held by another run.
"""

from __future__ import annotations

__all__ = [
    "SmsAnalyticsError",
    "InputError",
    "DatasetError",
    "DatasetLockedError",
    "StrictModeError",
    "KeyFileError",
    "PrivacyOptionsError",
]


class SmsAnalyticsError(Exception):
    """Root of every error this package raises on purpose."""


class InputError(SmsAnalyticsError, ValueError):
    """An input cannot be read at all (missing, unreadable, corrupt compression).

    Parameters
    ----------
    path : str
        The input file.
    reason : str
        What is wrong, in words a user can act on.
    line : int, optional
        1-based line, when the problem has one.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class DatasetError(SmsAnalyticsError, ValueError):
    """A dataset directory is missing, unreadable or not a smsanalytics dataset."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DatasetLockedError(DatasetError):
    """Another conversion holds the dataset's lock."""


class StrictModeError(SmsAnalyticsError, ValueError):
    """Records were rejected and strict mode was asked for."""


class PrivacyOptionsError(SmsAnalyticsError, ValueError):
    """Pseudonymisation options that do not go together (recipients without a key, ...)."""


class KeyFileError(SmsAnalyticsError, ValueError):
    """A pseudonymisation key file is missing, unreadable or too short.

    Parameters
    ----------
    path : str
        The key file.
    reason : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
