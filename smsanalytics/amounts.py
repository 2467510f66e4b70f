"""Exact money for the eye: one formatting rule per kind of amount, and frames that show it.

Amounts stay exact :class:`~decimal.Decimal` values everywhere; rounding (half-even) happens
only when a value is shown. Totals in major units get :data:`MONEY_DECIMALS` decimals, costs
per message and per part :data:`RATE_DECIMALS` (Callr prices to 4 decimals of a cent), audit
amounts in cents :data:`CENTS_DECIMALS`. :class:`ExactFrame` is a pandas DataFrame shown
that way in a notebook or a console (never ``0.02900000`` or ``0E-10``) while every value,
operation and export stays the DataFrame's own: the questions, the report and the audit
return their tables as such frames.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd

from ._analysis import is_na

__all__ = ["DASH", "ExactFrame", "exact_frame", "shown", "money", "rate", "cents", "count", "pct",
           "share", "exact", "MONEY_DECIMALS", "RATE_DECIMALS", "CENTS_DECIMALS"]

#: Decimals of a cost per message or per part [major units]: 4 decimals of a cent.
RATE_DECIMALS = 6
#: Decimals of a total [major units].
MONEY_DECIMALS = 2
#: Decimals of an amount in cents shown in the audit (Callr's precision).
CENTS_DECIMALS = 4

#: What an empty cell shows.
DASH = "–"


# ---------------------------------------------------------------------------------------
# Formatting: one rule per kind of value
# ---------------------------------------------------------------------------------------


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)


def _sign(v: Decimal | int, text: str) -> str:
    return ("+" if v > 0 else "−" if v < 0 else "±") + text


def _fixed(value: Decimal, places: int, signed: bool) -> str:
    v = _round(value, places)
    if signed:
        return _sign(v, f"{abs(v):,.{places}f}")
    return f"{v:,.{places}f}".replace("-", "−")


def money(cents: Any, *, signed: bool = False) -> str:
    """A total: cents -> major units, 2 decimals, half-even, thousands separators."""
    if is_na(cents):
        return DASH
    return _fixed(Decimal(cents).scaleb(-2), MONEY_DECIMALS, signed)


def rate(cents: Any, *, signed: bool = False) -> str:
    """A cost per message or per part: cents -> major units, :data:`RATE_DECIMALS`."""
    if is_na(cents):
        return DASH
    return _fixed(Decimal(cents).scaleb(-2), RATE_DECIMALS, signed)


def cents(value: Any, *, signed: bool = False) -> str:
    """An amount in cents, :data:`CENTS_DECIMALS` decimals (never ``0E-10``)."""
    if is_na(value):
        return DASH
    return _fixed(Decimal(value), CENTS_DECIMALS, signed)


def count(n: Any, *, signed: bool = False) -> str:
    """A whole number with thousands separators."""
    if is_na(n):
        return DASH
    n = int(n)
    return _sign(n, f"{abs(n):,}") if signed else f"{n:,}"


def pct(value: Any, *, signed: bool = False) -> str:
    """A percentage (the value is already in %), 1 decimal, without the unit."""
    if is_na(value):
        return DASH
    return _fixed(Decimal(value), 1, signed)


def share(value: Any) -> str:
    """A fraction of 1 as a percentage, 1 decimal, without the unit."""
    if is_na(value):
        return DASH
    return pct(Decimal(str(float(value))) * 100)


def exact(cents_value: Any) -> str:
    """Exact major units, every decimal kept (at least 2): a reconciliation shows equality."""
    if is_na(cents_value):
        return DASH
    v = Decimal(cents_value).scaleb(-2)
    text = f"{v.normalize():f}" if v != 0 else "0"
    head, _, tail = text.partition(".")
    return f"{int(head):,}.{tail.ljust(2, '0')}".replace("-", "−")


# ---------------------------------------------------------------------------------------
# DataFrames in a notebook: exact underneath, money on screen
# ---------------------------------------------------------------------------------------


def _plain_decimal(v: Decimal) -> str:
    return f"{v.normalize():f}" if v != 0 else "0"


def _shown_cell(name: str, v: Any) -> Any:
    if is_na(v):
        return pd.NA
    if not isinstance(v, Decimal):
        return v
    if name.endswith("_cents"):
        return cents(v)
    if name in ("cost", "previous_cost"):
        return money(v * 100)
    if name.startswith("cost_per_"):
        return rate(v * 100)
    return _plain_decimal(v)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` for the eye: exact decimals as money by kind, never ``0E-10``.

    ``*_cents`` columns get :data:`CENTS_DECIMALS` decimals of a cent, ``cost`` columns
    (major units) :data:`MONEY_DECIMALS`, ``cost_per_*`` :data:`RATE_DECIMALS`; any other
    decimal is written exactly, without an exponent.
    """
    out = pd.DataFrame(index=df.index)
    for name in df.columns:
        column = df[name]
        if column.dtype == object or (isinstance(column.dtype, pd.ArrowDtype)
                                      and "decimal" in str(column.dtype)):
            out[name] = pd.Series([_shown_cell(str(name), v) for v in column.astype(object)],
                                  index=df.index, dtype=object)
        else:
            out[name] = column
    return out


class ExactFrame(pd.DataFrame):
    """A DataFrame shown as money in a notebook and a console, exact underneath.

    Only the display changes (``repr`` and ``_repr_html_``, through :func:`shown`, or
    the frame's own ``display`` function); every value, operation and export is the
    DataFrame's own; frames derived from it (``head()``, a filter) are shown the same way.
    """

    _metadata = ["display"]
    #: A function of the plain frame giving the frame to show (None: :func:`shown`).
    display: Any

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return ExactFrame

    def _for_the_eye(self) -> pd.DataFrame:
        plain = pd.DataFrame(self)
        show = getattr(self, "display", None)
        try:
            return show(plain) if show is not None else shown(plain)
        except (KeyError, IndexError):  # a frame derived from it lost what `display` reads
            return shown(plain)

    def __repr__(self) -> str:
        return repr(self._for_the_eye())

    def _repr_html_(self) -> str | None:
        plain: Any = self._for_the_eye()  # pandas-stubs do not declare _repr_html_
        html: str | None = plain._repr_html_()
        return html


def exact_frame(df: pd.DataFrame, display: Any = None) -> ExactFrame:
    """`df` as an :class:`ExactFrame` (same data, same ``attrs``)."""
    out = ExactFrame(df)
    out.attrs.update(df.attrs)
    out.display = display
    return out
