"""User arguments checked at the door: time zones, period bounds, counts, currency, margins.

Every command and every library entry point that takes one of these turns it into a typed
value here, once, and a value that cannot be used raises
:class:`~smsanalytics.errors.ArgumentError` (a :class:`ValueError`) naming the argument, the
value and what would be right. Nothing deeper down has to guess what a string meant.

Decisions:

* A time zone is an IANA name (``Europe/Paris``, ``UTC``, ``Etc/GMT+1``) that both Python's
  ``zoneinfo`` and DuckDB know. ``UTC+1`` is not one (and ``Etc/GMT+1`` is UTC-1, by POSIX's
  inverted sign); paths (``../../etc``, ``/etc/localtime``) are refused.
* A period bound is a date or a date and time in ISO 8601 (``2025-05-01``,
  ``2025-05-01T08:00``, ``2025-05-01T08:00+02:00``); a naive one is wall-clock time in the
  time zone. It must be a real day (``2025-02-30`` is refused) in years
  :data:`MIN_YEAR`..:data:`MAX_YEAR`, and `end` must be after `start`.
* A currency is a label (``EUR``, ``€``): 1 to :data:`MAX_CURRENCY_CHARS` printable
  characters, no control or bidirectional characters (it is printed in every output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ArgumentError

__all__ = [
    "MIN_YEAR",
    "MAX_YEAR",
    "MAX_COUNT",
    "MAX_CURRENCY_CHARS",
    "time_zone",
    "time_zone_name",
    "instant",
    "period_bounds",
    "Bounds",
    "bounds",
    "positive_int",
    "currency_label",
    "margin",
]

#: Earliest and latest year a period bound may fall in (room for the period before it and
#: the one after it, in any time zone).
MIN_YEAR, MAX_YEAR = 1000, 9998
#: Largest count (``top``, ``max_rows``) accepted: more rows than any page can show.
MAX_COUNT = 1_000_000
#: Longest currency label [characters].
MAX_CURRENCY_CHARS = 64

_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")
# C0/C1 controls, DEL, and the bidirectional and zero-width marks that change how text reads.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_TZ_HINT = "an IANA time zone name such as UTC, Europe/Paris or America/New_York"


def time_zone(value: str | tzinfo, name: str = "tz") -> ZoneInfo:
    """Return the time zone `value` names.

    Parameters
    ----------
    value : str or tzinfo
        An IANA name, a :class:`~zoneinfo.ZoneInfo` built from one, or :data:`datetime.UTC`.
    name : str
        How the user wrote the argument (``"--tz"``), for the error.

    Raises
    ------
    ArgumentError
        For anything else: an unknown name, an offset (``UTC+1``), a path.

    Examples
    --------
    >>> time_zone("Europe/Paris").key
    'Europe/Paris'
    """
    if value is UTC:
        return ZoneInfo("UTC")
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise ArgumentError(name, value, f"a time zone built from a file; give {_TZ_HINT}")
        value = value.key
    if not isinstance(value, str):
        raise ArgumentError(name, value, f"not a time zone name; give {_TZ_HINT}")
    if not _ZONE_NAME.fullmatch(value) or ".." in value:
        raise ArgumentError(name, value, f"not a time zone name; give {_TZ_HINT}")
    return _known_zone(value, name)


@lru_cache(maxsize=64)
def _known_zone(key: str, name: str) -> ZoneInfo:
    try:
        zone = ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        same = [z for z in _duckdb_zones() if z.lower() == key.lower()]
        hint = f"names are case-sensitive: {min(same)}" if same else f"give {_TZ_HINT}"
        raise ArgumentError(name, key, f"unknown time zone; {hint}") from None
    if key not in _duckdb_zones():
        # The questions bucket days in DuckDB: a name only Python knows would fail there.
        raise ArgumentError(name, key, f"a time zone DuckDB does not know; give {_TZ_HINT}")
    return zone


@lru_cache(maxsize=1)
def _duckdb_zones() -> frozenset[str]:
    import duckdb

    with duckdb.connect() as con:
        return frozenset(r[0] for r in con.execute("SELECT name FROM pg_timezone_names()")
                         .fetchall())


def time_zone_name(value: str | tzinfo, name: str = "tz") -> str:
    """Return the IANA name of the time zone `value` (checked like :func:`time_zone`)."""
    key = time_zone(value, name).key
    assert key is not None  # time_zone refuses zones without a name
    return key


def instant(value: Any, zone: ZoneInfo, name: str = "start") -> datetime | None:
    """Return a period bound as an aware UTC datetime (None stays None).

    Parameters
    ----------
    value : date, datetime, pandas.Timestamp, str or None
        A naive value is wall-clock time in `zone`; a string is ISO 8601.
    zone : ZoneInfo
        Time zone of naive values.
    name : str
        How the user wrote the argument, for the error.

    Raises
    ------
    ArgumentError
        If `value` is not a real date or time, or falls outside years
        :data:`MIN_YEAR`..:data:`MAX_YEAR`.

    Examples
    --------
    >>> instant("2025-05-01", ZoneInfo("Europe/Paris"))
    datetime.datetime(2025, 4, 30, 22, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = _parse_iso(value, name)
    elif hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        if value != value:  # NaT
            raise ArgumentError(name, value, "not a date or time")
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        raise ArgumentError(name, value, "not a date, datetime or ISO 8601 string")
    # A wall-clock value must lie in the years; an instant (this function's own result, given
    # back) within a day of them, whatever its zone.
    slack = 0 if moment.tzinfo is None else 1
    if not MIN_YEAR - slack <= moment.year <= MAX_YEAR + slack:
        raise ArgumentError(name, _shown(value), f"outside the years {MIN_YEAR} to {MAX_YEAR}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # a tzinfo of the caller's that misbehaves
        raise ArgumentError(name, _shown(value), f"cannot be placed in time: {exc}") from None
    if not MIN_YEAR - 1 <= utc.year <= MAX_YEAR + 1:
        raise ArgumentError(name, _shown(value), f"outside the years {MIN_YEAR} to {MAX_YEAR}")
    return utc


def _parse_iso(text: str, name: str) -> datetime:
    stripped = text.strip()
    try:
        if len(stripped) == 10:  # a day: the common case, read strictly
            return datetime.combine(date.fromisoformat(stripped), time())
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise ArgumentError(
            name, text, "not a real date or time in ISO 8601 (2025-05-01, 2025-05-01T08:00 "
            "or 2025-05-01T08:00+02:00)") from None
    return parsed


def period_bounds(start: Any, end: Any, zone: ZoneInfo,
                  names: tuple[str, str] = ("start", "end")) -> tuple[datetime | None,
                                                                      datetime | None]:
    """Return ``(start, end)`` as aware UTC datetimes, `end` after `start`.

    Raises
    ------
    ArgumentError
        If either is not a bound (see :func:`instant`), or `end` is not after `start`.

    Examples
    --------
    >>> period_bounds("2025-06-01", "2025-05-01", ZoneInfo("UTC"))
    Traceback (most recent call last):
    ...
    smsanalytics.errors.ArgumentError: end '2025-05-01': must be after start ('2025-06-01')
    """
    lo, hi = instant(start, zone, names[0]), instant(end, zone, names[1])
    if lo is not None and hi is not None and hi <= lo:
        raise ArgumentError(names[1], _shown(end),
                            f"must be after {names[0]} ({_shown(start)!r})")
    return lo, hi


@dataclass(frozen=True)
class Bounds:
    """The bounds of a period the user asked for, parsed once: what every layer below takes.

    Not :class:`smsanalytics.report.Period` (a report's closed, labelled period): either
    bound may be open here.

    Attributes
    ----------
    start, end : datetime or None
        Aware UTC instants, `start` inclusive and `end` exclusive (`end` after `start`);
        None leaves that side open.
    zone : ZoneInfo
        The time zone naive input was read in: the zone of the user's days and months.
    """

    start: datetime | None
    end: datetime | None
    zone: ZoneInfo

    @property
    def tz(self) -> str:
        """The IANA name of :attr:`zone` (what DuckDB is given)."""
        assert self.zone.key is not None  # time_zone() refuses zones without a name
        return self.zone.key


def bounds(start: Any, end: Any, tz: str | tzinfo = "UTC", *,
           names: tuple[str, str] = ("start", "end"), tz_name: str = "tz") -> Bounds:
    """Parse a period's bounds and its time zone (the zone first) into :class:`Bounds`.

    Parameters
    ----------
    start, end : date, datetime, pandas.Timestamp, str or None
        As :func:`instant` takes them; naive values are wall-clock times in `tz`.
    tz : str or tzinfo
        As :func:`time_zone` takes it.
    names, tz_name : str
        How the user wrote the arguments, for the errors.

    Raises
    ------
    ArgumentError
        For a bad zone, a bad bound, or `end` not after `start`.

    Examples
    --------
    >>> b = bounds("2025-05-01", None, "Europe/Paris")
    >>> b.start.isoformat(), b.end, b.tz
    ('2025-04-30T22:00:00+00:00', None, 'Europe/Paris')
    """
    zone = time_zone(tz, tz_name)
    lo, hi = period_bounds(start, end, zone, names)
    return Bounds(lo, hi, zone)


def _shown(value: Any) -> Any:
    """How an error shows a value: dates and times in ISO 8601, not as their repr."""
    return value.isoformat() if isinstance(value, date) else value


def positive_int(value: Any, name: str, maximum: int = MAX_COUNT) -> int:
    """Return `value` (an int, or a string of ASCII digits) as an int from 1 to `maximum`.

    Examples
    --------
    >>> positive_int(0, "--top")
    Traceback (most recent call last):
    ...
    smsanalytics.errors.ArgumentError: --top 0: must be a whole number from 1 to 1000000
    """
    reason = f"must be a whole number from 1 to {maximum}"
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise ArgumentError(name, value, reason)
    if not 1 <= value <= maximum:
        raise ArgumentError(name, value, reason)
    return int(value)


def row_cap(value: Any, name: str) -> int | None:
    """Return a number of rows to keep (see :func:`positive_int`), or None for ``"all"``.

    Examples
    --------
    >>> row_cap("all", "--detail-rows"), row_cap("250", "--detail-rows")
    (None, 250)
    """
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    try:
        return positive_int(value, name)
    except ArgumentError:
        raise ArgumentError(
            name, value, f"must be a whole number from 1 to {MAX_COUNT}, or all"
        ) from None


def currency_label(value: str | None, name: str = "currency") -> str | None:
    """Return the currency label `value` (None stays None: not set, never guessed).

    Examples
    --------
    >>> currency_label(" EUR ")
    'EUR'
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentError(name, value, "a currency is a text label such as EUR")
    label = value.strip()
    if not label or len(label) > MAX_CURRENCY_CHARS or _UNPRINTABLE.search(label):
        raise ArgumentError(name, value, f"a currency is a label of 1 to {MAX_CURRENCY_CHARS} "
                            "printable characters, such as EUR")
    return label


def margin(value: Decimal | str | float | int, name: str = "rate_margin") -> Decimal:
    """Return a rate margin (a fraction: ``0.25`` is 25 %) as an exact, finite, >= 0 Decimal.

    Examples
    --------
    >>> margin("0.25")
    Decimal('0.25')
    """
    if isinstance(value, bool):
        raise ArgumentError(name, value, "must be a number such as 0.25 (25 %)")
    try:
        m = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ArgumentError(name, value, "must be a number such as 0.25 (25 %)") from None
    if not m.is_finite() or m < 0:
        raise ArgumentError(name, value, "must be a finite number, 0 or more, such as 0.25")
    return m
