"""Exceptions: one root class; specific ones also inherit the builtin that fits.

Problems in the *data* (a bad line, an unknown value) are not exceptions: they are counted
and written to the rejects file. Exceptions are for what stops a whole operation: an input
that cannot be opened, a dataset that cannot be read, a lock held by another run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self, TypeVar

__all__ = [
    "SmsAnalyticsError",
    "InputError",
    "DatasetError",
    "DatasetLockedError",
    "StrictModeError",
    "KeyFileError",
    "PrivacyOptionsError",
    "ArgumentError",
    "OutputPathError",
]


class SmsAnalyticsError(Exception):
    """Root of every error this package raises on purpose.

    Subclasses keep their context as attributes and pickle with it (``__reduce__`` rebuilds
    them from their constructor arguments), so they survive Spark and multiprocessing workers.
    """

    _init_args: tuple[object, ...]
    _init_kwargs: dict[str, object]

    def __new__(cls, *args: object, **kwargs: object) -> Self:
        # Remember each instance's constructor arguments for __reduce__, whatever the
        # subclass's __init__ signature (BaseException.args holds only the message).
        # Keywords stay keywords: put after the positionals in call order, a keyword
        # given out of the signature's order would land in another parameter.
        self = super().__new__(cls, *args)
        self._init_args = args
        self._init_kwargs = kwargs
        return self

    def __reduce__(self) -> tuple[Callable[..., Self], tuple[object, ...]]:
        return (_rebuild, (type(self), self._init_args, self._init_kwargs))


_E = TypeVar("_E", bound=SmsAnalyticsError)


def _rebuild(cls: type[_E], args: tuple[object, ...], kwargs: dict[str, object]) -> _E:
    """Call ``cls(*args, **kwargs)``: how a pickled error is made again (pickle can pass
    only positional arguments to a class)."""
    return cls(*args, **kwargs)


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


class ArgumentError(SmsAnalyticsError, ValueError):
    """A value a user gave (an option, a parameter) is not valid: checked at the door.

    Parameters
    ----------
    name : str
        The option or parameter, as the user wrote it (``"--tz"``, ``"start"``).
    value : object
        What was given.
    reason : str
        What is wrong and what would be right, in words a user can act on.
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name} {value!r}: {reason}")


class OutputPathError(SmsAnalyticsError, ValueError):
    """An output path we were asked to write is not safe to write.

    It is one of the inputs, a device, a FIFO, a symlink to elsewhere, or something that is
    not ours. Raised before anything is read or written.

    Parameters
    ----------
    path : str
        The output path.
    reason : str
        Why it is refused.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
