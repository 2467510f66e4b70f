"""Plots of the answers of :mod:`smsanalytics.queries`, one function per question.

Every function is ``plot_x(data, *, ..., ax=None, query=None, **kwargs)``, in seaborn's
style: `data` is the DataFrame the question returned (or a connection / source, in which
case the question is asked with ``query`` as its keyword arguments); the plot is drawn on
`ax` (default: the current Axes), which is returned. Nothing calls ``show()`` or
``savefig()``. ``kwargs`` go to the underlying matplotlib call (``bar``, ``barh``,
``imshow``).

Readable by default: a title, axis labels with units (and the currency label for money),
thousands separators, concise date ticks in the question's time zone, and the same colour
for a country, an encoding, a traffic type or a status in every plot (:func:`color_for`).
Long tails are cut to the top ``n`` plus "other".
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from . import queries
from .escape import for_plot

__all__ = [
    "ENCODING_COLORS",
    "TRAFFIC_COLORS",
    "STATUS_COLORS",
    "KIND_COLORS",
    "OTHER_COLOR",
    "OTHER",
    "color_for",
    "country_color",
    "plot_volume",
    "plot_top_senders",
    "plot_sender_activity",
    "plot_locations",
    "plot_encodings",
    "plot_parts_distribution",
    "plot_costs",
    "plot_traffic",
    "plot_statuses",
    "plot_activity_pattern",
    "plot_keywords",
]

#: Label of the bar or segment that gathers the long tail.
OTHER = "other"
_UNKNOWN = "unknown"
#: Colour of "other" and of unknown values.
OTHER_COLOR = "#A0A0A0"
#: One colour per encoding (seaborn "deep" palette).
ENCODING_COLORS: dict[str, str] = {"gsm": "#4C72B0", "unicode": "#DD8452"}
#: One colour per traffic type.
TRAFFIC_COLORS: dict[str, str] = {"marketing": "#55A868", "alerting": "#C44E52"}
#: One colour per Callr status: greens delivered, yellows in flight, reds failures.
STATUS_COLORS: dict[str, str] = {
    "delivered": "#2E8B57",
    "sent": "#8FBC8F",
    "remote-queued": "#CCB974",
    "pending": "#E1C340",
    "created": "#F0E68C",
    "failed": "#C44E52",
    "error": "#8B1A1A",
    "expired": "#8172B3",
}
#: One colour per keyword kind.
KIND_COLORS: dict[str, str] = {"opt-out": "#C44E52", "opt-in": "#55A868", "keyword": "#8172B3"}
_SENDER_COLORS = {"new": "#4C72B0", "returning": "#8C8C8C"}

# The commonest countries get fixed, distinct colours; any other code a stable one.
_COUNTRY_ORDER = ("FR", "BE", "CH", "GB", "DE", "ES", "IT", "US", "CA", "NL",
                  "LU", "MA", "PT", "SN", "CI", "TN", "DZ", "RE", "GP", "MQ")
_TAB20 = [plt.get_cmap("tab20")(i) for i in range(20)]
_TAB20B = [plt.get_cmap("tab20b")(i) for i in range(20)]


def country_color(code: str | None) -> Any:
    """Return the colour of a country (ISO 3166-1 alpha-2), the same in every plot.

    Examples
    --------
    >>> country_color("FR") == country_color("FR")
    True
    """
    if code is None or code in (OTHER, _UNKNOWN) or (isinstance(code, float) and np.isnan(code)):
        return OTHER_COLOR
    code = str(code).upper()
    if code in _COUNTRY_ORDER:
        return _TAB20[_COUNTRY_ORDER.index(code)]
    return _TAB20B[zlib.crc32(code.encode()) % len(_TAB20B)]


def color_for(dimension: str, value: Any) -> Any:
    """Return the colour of `value` of a dimension (``encoding``, ``country``, ...).

    Parameters
    ----------
    dimension : str
        ``encoding``, ``traffic_type``, ``status``, ``kind``, ``country`` or another
        column name (then a stable colour derived from the value).
    value : object
        The category; ``"other"`` and missing values are grey.
    """
    if value is None or value in (OTHER, _UNKNOWN) or (
        isinstance(value, float) and np.isnan(value)
    ):
        return OTHER_COLOR
    fixed: Mapping[str, Mapping[str, str]] = {
        "encoding": ENCODING_COLORS, "traffic_type": TRAFFIC_COLORS, "status": STATUS_COLORS,
        "kind": KIND_COLORS, "sender": _SENDER_COLORS,
    }
    if dimension in fixed:
        return fixed[dimension].get(str(value), OTHER_COLOR)
    if dimension == "country":
        return country_color(str(value))
    return _TAB20[zlib.crc32(str(value).encode()) % len(_TAB20)]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _data(data: Any, question: Callable[..., pd.DataFrame],
          query: Mapping[str, Any] | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    return question(data, **dict(query or {}))


def _axes(ax: Axes | None) -> Axes:
    return ax if ax is not None else plt.gca()


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return _UNKNOWN
    # Labels come from the data: text, never mathtext (a "$" would be parsed, and fail).
    return for_plot(value)


def _floats(series: pd.Series) -> np.ndarray:
    """Values for drawing (decimals become floats only here, for pixel positions)."""
    return np.asarray(series.astype("float64").fillna(0.0), dtype=float)


def _money_label(df: pd.DataFrame) -> str:
    currency = df.attrs.get("currency")
    return f"cost [{for_plot(currency)}]" if currency else "cost [account currency]"


def _value_label(df: pd.DataFrame, y: str) -> str:
    if y == "cost":
        return _money_label(df)
    if y == "cost_cents":
        currency = df.attrs.get("currency")
        return f"cost [cents of {for_plot(currency)}]" if currency else "cost [cents]"
    if y == "parts":
        return "parts [segments]"
    return f"{y.replace('_', ' ')} [count]"


def _thousands(axis: Any, money: bool = False) -> None:
    fmt = "{:,.2f}" if money else "{:,.0f}"
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt.format(v)))


def _local_dates(series: pd.Series, tz: str | None) -> np.ndarray:
    """Periods as matplotlib date numbers of their wall-clock time in `tz`."""
    s = pd.to_datetime(series)
    if s.dt.tz is not None:
        s = s.dt.tz_convert(tz or "UTC").dt.tz_localize(None)
    return mdates.date2num(s.to_numpy(dtype="datetime64[us]"))


_FREQ_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0}


def _bar_width(x: np.ndarray, freq: str | None) -> float:
    if freq in _FREQ_DAYS:
        return 0.8 * _FREQ_DAYS[freq]
    if len(x) > 1:
        return 0.8 * float(np.min(np.diff(np.unique(x))))
    return 0.8


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _period_words(df: pd.DataFrame) -> tuple[str, str]:
    freq = df.attrs.get("freq")
    tz = df.attrs.get("tz")
    per = f" per {freq}" if freq else ""
    zone = f" ({for_plot(tz)})" if tz else ""
    return per, zone


def _top_n(values: pd.Series, n: int | None) -> pd.Series:
    """Keep the `n` largest entries of `values` (indexed by label), the rest as "other"."""
    values = values.sort_values(ascending=False, kind="stable")
    if n is None or len(values) <= n:
        return values
    head = values.iloc[:n]
    return pd.concat([head, pd.Series({OTHER: values.iloc[n:].sum()})])


def _stacked(ax: Axes, x: np.ndarray, table: pd.DataFrame, dimension: str, *,
             width: float, horizontal: bool = False, **kwargs: Any) -> None:
    """Draw one BarContainer per column of `table` (rows = x positions), stacked."""
    bottom = np.zeros(len(table))
    draw = ax.barh if horizontal else ax.bar
    for name in table.columns:
        heights = np.asarray(table[name], dtype=float)
        style = {"color": color_for(dimension, name), **kwargs}
        if horizontal:
            draw(x, heights, height=width, left=bottom, label=_label(name), **style)
        else:
            draw(x, heights, width=width, bottom=bottom, label=_label(name), **style)
        bottom = bottom + heights


def _limit_columns(table: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Keep the `n` columns with the largest totals; sum the others into "other"."""
    totals = _top_n(table.sum(axis=0), n)
    if OTHER in totals.index and OTHER not in table.columns:
        kept = [c for c in totals.index if c != OTHER]
        rest = table.drop(columns=kept).sum(axis=1)
        table = table[kept].assign(**{OTHER: rest})
        return table
    return table[list(totals.index)]


def _pivot(df: pd.DataFrame, index: str, column: str, value: str) -> pd.DataFrame:
    frame = pd.DataFrame({
        index: df[index],
        column: df[column].map(_label),
        value: _floats(df[value]),
    })
    return frame.pivot_table(index=index, columns=column, values=value, aggfunc="sum",
                             fill_value=0.0, sort=True)


# ---------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------


def plot_volume(
    data: Any,
    *,
    y: str = "messages",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Bar chart of messages, parts or cost per period (from :func:`queries.volume`).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.volume` returned, or a connection / source.
    y : {'messages', 'parts', 'cost', 'cost_cents'}
        What the bars measure.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: the current Axes).
    query : mapping, optional
        Keyword arguments of the question when `data` is not a DataFrame.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.volume, query)
    ax = _axes(ax)
    x = _local_dates(df["period"], df.attrs.get("tz"))
    style = {"color": "#4C72B0", **kwargs}
    ax.bar(x, _floats(df[y]), width=_bar_width(x, df.attrs.get("freq")), label=y, **style)
    _date_axis(ax)
    _thousands(ax.yaxis, money=y.startswith("cost"))
    per, zone = _period_words(df)
    what = "Cost" if y.startswith("cost") else y.replace("_", " ").capitalize()
    ax.set_title(f"{what}{per}{zone}")
    ax.set_ylabel(_value_label(df, y))
    ax.set_xlabel(f"period{zone}")
    return ax


def plot_top_senders(
    data: Any,
    *,
    x: str | None = None,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Horizontal bars of the top senders, largest on top, coloured by country.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.top_senders` returned, or a connection / source.
    x : {'messages', 'parts', 'cost'}, optional
        What the bars measure (default: what the senders were ranked by).
    ax, query, **kwargs
        As in :func:`plot_volume` (kwargs go to :meth:`~matplotlib.axes.Axes.barh`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.top_senders, query)
    ax = _axes(ax)
    x = x or df.attrs.get("by") or "messages"
    pos = np.arange(len(df))
    colors = [country_color(c if isinstance(c, str) else None) for c in df["country"]]
    style = {"color": colors, **kwargs}
    ax.barh(pos, _floats(df[x]), **style)
    ax.set_yticks(pos, [_label(v) for v in df["from_number"]])
    ax.invert_yaxis()
    _thousands(ax.xaxis, money=x.startswith("cost"))
    ax.set_xlabel(_value_label(df, x))
    ax.set_ylabel("sender")
    ax.set_title(f"Top {len(df)} senders by {'cost' if x.startswith('cost') else x}")
    countries = list(dict.fromkeys(_label(c) for c in df["country"]))
    handles = [plt.Rectangle((0, 0), 1, 1, color=country_color(c))
               for c in countries]
    if countries:
        ax.legend(handles, countries, title="country", loc="lower right")
    return ax


def plot_sender_activity(
    data: Any,
    *,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars of new and returning senders per period.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.sender_activity` returned, or a source.
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.sender_activity, query)
    ax = _axes(ax)
    x = _local_dates(df["period"], df.attrs.get("tz"))
    table = pd.DataFrame({"new": df["new_senders"].to_numpy(dtype=float),
                          "returning": df["returning_senders"].to_numpy(dtype=float)})
    _stacked(ax, x, table, "sender", width=_bar_width(x, df.attrs.get("freq")), **kwargs)
    _date_axis(ax)
    _thousands(ax.yaxis)
    per, zone = _period_words(df)
    ax.set_title(f"New and returning senders{per}{zone}")
    ax.set_ylabel("senders [count]")
    ax.set_xlabel(f"period{zone}")
    ax.legend(title="senders")
    return ax


def plot_locations(
    data: Any,
    *,
    x: str = "messages",
    n: int | None = 10,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Horizontal bars by sender country (or location): top `n` plus "other".

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.locations` returned, or a connection / source.
    x : {'messages', 'senders', 'parts', 'cost'}
        What the bars measure; each bar is annotated with its share of the total.
    n : int or None
        Bars before "other" (None: all).
    ax, query, **kwargs
        As in :func:`plot_volume` (kwargs go to :meth:`~matplotlib.axes.Axes.barh`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.locations, query)
    ax = _axes(ax)
    by_location = "location" in df.columns
    labels = [
        f"{_label(c)} · {_label(loc)}" if by_location else _label(c)
        for c, loc in zip(df["country"], df["location"] if by_location else df["country"],
                          strict=True)
    ]
    countries = dict(zip(labels, df["country"], strict=True))
    values = _top_n(pd.Series(_floats(df[x]), index=labels).groupby(level=0, sort=False).sum(),
                    n)
    pos = np.arange(len(values))
    colors = [country_color(countries.get(k) if isinstance(countries.get(k), str) else None)
              for k in values.index]
    style = {"color": colors, **kwargs}
    bars = ax.barh(pos, values.to_numpy(), **style)
    ax.set_yticks(pos, list(values.index))
    ax.invert_yaxis()
    total = float(values.sum())
    if total > 0:
        ax.bar_label(bars, labels=[f"{v / total:.1%}" for v in values], padding=3)
    _thousands(ax.xaxis, money=x.startswith("cost"))
    ax.set_xlabel(_value_label(df, x))
    ax.set_ylabel("sender location" if by_location else "sender country")
    what = "Cost" if x.startswith("cost") else x.capitalize()
    ax.set_title(f"{what} by sender {'location' if by_location else 'country'}")
    return ax


def plot_encodings(
    data: Any,
    *,
    n: int | None = 10,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """GSM vs unicode: bars of messages per encoding, or share per country (stacked).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.encodings` returned (with or without
        ``by="country"``), or a connection / source.
    n : int or None
        Countries shown before "other", when by country.
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.encodings, query)
    ax = _axes(ax)
    if "country" in df.columns:
        table = _pivot(df.assign(country=df["country"].map(_label)), "country", "encoding",
                       "messages")
        keep = _top_n(table.sum(axis=1), n)
        if OTHER in keep.index:
            kept = [k for k in keep.index if k != OTHER]
            other = table.drop(index=kept).sum(axis=0).rename(OTHER)
            table = pd.concat([table.loc[kept], other.to_frame().T])
        else:
            table = table.loc[list(keep.index)]
        shares = table.div(table.sum(axis=1), axis=0)
        pos = np.arange(len(shares))
        _stacked(ax, pos, shares, "encoding", width=0.8, horizontal=True, **kwargs)
        ax.set_yticks(pos, list(shares.index))
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        ax.set_xlabel("share of the country's messages [%]")
        ax.set_ylabel("sender country")
        ax.set_title("Encoding by sender country")
        ax.legend(title="encoding", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return ax
    labels = [_label(e) for e in df["encoding"]]
    pos = np.arange(len(df))
    style = {"color": [color_for("encoding", e) for e in labels], **kwargs}
    bars = ax.bar(pos, _floats(df["messages"]), **style)
    ax.set_xticks(pos, labels)
    ax.bar_label(bars, labels=[f"{s:.1%}" for s in df["share"]], padding=3)
    _thousands(ax.yaxis)
    ax.set_ylabel("messages [count]")
    ax.set_xlabel("encoding")
    ax.set_title("Messages by encoding (GSM vs unicode)")
    return ax


def plot_parts_distribution(
    data: Any,
    *,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars of messages per number of parts, split by encoding.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.parts_distribution` returned, or a source.
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.parts_distribution, query)
    ax = _axes(ax)
    df = df[df["parts"].notna()]
    table = _pivot(df.assign(parts=df["parts"].astype(int)), "parts", "encoding", "messages")
    _stacked(ax, table.index.to_numpy(), table, "encoding", width=0.8, **kwargs)
    ax.set_xticks(table.index.to_numpy(), [str(p) for p in table.index])
    _thousands(ax.yaxis)
    ax.set_xlabel("parts [segments per message]")
    ax.set_ylabel("messages [count]")
    ax.set_title("Messages by number of parts")
    ax.legend(title="encoding")
    return ax


def plot_costs(
    data: Any,
    *,
    n: int | None = 10,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Bars of cost by the first grouping, stacked by the second (top `n` plus "other").

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.costs` returned, or a connection / source.
        A period grouping draws a time axis; a category grouping draws horizontal bars.
    n : int or None
        Categories kept before "other" (bars, and stacked segments).
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.costs, query)
    ax = _axes(ax)
    dims = list(df.attrs.get("by") or [c for c in df.columns[: list(df.columns).index(
        "messages")]])
    label = _money_label(df)
    if not dims:
        bars = ax.bar([0], _floats(df["cost"]), **{"color": "#4C72B0", **kwargs})
        ax.set_xticks([0], ["total"])
        ax.bar_label(bars, labels=[f"{v:,.2f}" for v in _floats(df["cost"])], padding=3)
        _thousands(ax.yaxis, money=True)
        ax.set_ylabel(label)
        ax.set_title("Total cost")
        return ax
    first, second = dims[0], (dims[1] if len(dims) > 1 else None)
    tz = df.attrs.get("tz")
    is_time = first in queries.FREQS
    frame = df.copy()
    if second is None:
        frame["_all"] = "cost"
        second_col = "_all"
    else:
        second_col = second
    if is_time:
        frame["_x"] = _local_dates(frame[first], tz)
    else:
        frame["_x"] = frame[first].map(_label)
    table = _pivot(frame, "_x", second_col, "cost")
    table = _limit_columns(table, n)
    if is_time:
        x = table.index.to_numpy(dtype=float)
        _stacked(ax, x, table, second or "cost", width=_bar_width(x, first), **kwargs)
        _date_axis(ax)
        _thousands(ax.yaxis, money=True)
        ax.set_ylabel(label)
        ax.set_xlabel(f"{first} ({for_plot(tz)})" if tz else first)
    else:
        keep = _top_n(table.sum(axis=1), n)
        if OTHER in keep.index:
            kept = [k for k in keep.index if k != OTHER]
            other = table.drop(index=kept).sum(axis=0).rename(OTHER)
            table = pd.concat([table.loc[kept], other.to_frame().T])
        else:
            table = table.loc[list(keep.index)]
        pos = np.arange(len(table))
        if second is None:
            colors = [color_for(first, k) for k in table.index]
            ax.barh(pos, table["cost"].to_numpy(), label="cost", **{"color": colors, **kwargs})
        else:
            _stacked(ax, pos, table, second, width=0.8, horizontal=True, **kwargs)
        ax.set_yticks(pos, [str(k) for k in table.index])
        ax.invert_yaxis()
        _thousands(ax.xaxis, money=True)
        ax.set_xlabel(label)
        ax.set_ylabel(first.replace("_", " "))
    title = f"Cost by {first.replace('_', ' ')}"
    if second is not None:
        title += f" and {second.replace('_', ' ')}"
        ax.legend(title=second.replace("_", " "), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title + (f" ({for_plot(tz)})" if is_time and tz else ""))
    return ax


def _plot_breakdown(df: pd.DataFrame, column: str, title: str, ax: Axes, n: int | None,
                    **kwargs: Any) -> Axes:
    if "period" not in df.columns:
        labels = [_label(v) for v in df[column]]
        pos = np.arange(len(df))
        style = {"color": [color_for(column, v) for v in labels], **kwargs}
        bars = ax.bar(pos, _floats(df["messages"]), **style)
        ax.set_xticks(pos, labels)
        ax.bar_label(bars, labels=[f"{s:.1%}" for s in df["share"]], padding=3)
        ax.set_xlabel(column.replace("_", " "))
        ax.set_title(title)
    else:
        tz = df.attrs.get("tz")
        table = _pivot(df.assign(_x=_local_dates(df["period"], tz)), "_x", column, "messages")
        table = _limit_columns(table, n)
        x = table.index.to_numpy(dtype=float)
        _stacked(ax, x, table, column, width=_bar_width(x, df.attrs.get("freq")), **kwargs)
        _date_axis(ax)
        per, zone = _period_words(df)
        ax.set_title(f"{title}{per}{zone}")
        ax.set_xlabel(f"period{zone}")
        ax.legend(title=column.replace("_", " "))
    _thousands(ax.yaxis)
    ax.set_ylabel("messages [count]")
    return ax


def plot_traffic(
    data: Any,
    *,
    n: int | None = 8,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars of messages per traffic type per period (or totals).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.traffic` returned, or a connection / source.
    n : int or None
        Traffic types kept before "other".
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.traffic, query)
    return _plot_breakdown(df, "traffic_type", "Messages by traffic type", _axes(ax), n,
                           **kwargs)


def plot_statuses(
    data: Any,
    *,
    n: int | None = 8,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars of messages per Callr status per period (or totals).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.statuses` returned, or a connection / source.
    n : int or None
        Statuses kept before "other".
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.statuses, query)
    return _plot_breakdown(df, "status", "Messages by status", _axes(ax), n, **kwargs)


def plot_activity_pattern(
    data: Any,
    *,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    colorbar: bool = True,
    **kwargs: Any,
) -> Axes:
    """Heatmap of messages by hour of day (columns) and day of week (rows).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.activity_pattern` returned, or a source.
    ax, query
        As in :func:`plot_volume`.
    colorbar : bool
        Draw a colour bar (labelled in messages) beside the Axes.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.imshow` (e.g. ``cmap``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.activity_pattern, query)
    ax = _axes(ax)
    grid = np.zeros((7, 24))
    for wd, hour, count in zip(df["weekday"], df["hour"], df["messages"], strict=True):
        grid[int(wd), int(hour)] = float(count)
    style = {"cmap": "Blues", "aspect": "auto", "interpolation": "nearest", **kwargs}
    image = ax.imshow(grid, **style)
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    tz = df.attrs.get("tz")
    zone = f" ({tz})" if tz else ""
    ax.set_xlabel(f"hour of day{zone}")
    ax.set_ylabel("day of week")
    ax.set_title(f"Messages by hour and day of week{zone}")
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax)
        bar.set_label("messages [count]")
        _thousands(bar.ax.yaxis)
    return ax


def plot_keywords(
    data: Any,
    *,
    by: str = "kind",
    n: int | None = 8,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars of keyword messages per period, by kind (opt-out, opt-in) or keyword.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.keywords` returned, or a connection / source.
    by : {'kind', 'keyword'}
        What the segments are.
    n : int or None
        Keywords kept before "other" when ``by="keyword"``.
    ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if by not in ("kind", "keyword"):
        raise ValueError(f"by must be 'kind' or 'keyword', not {by!r}")
    df = _data(data, queries.keywords, query)
    ax = _axes(ax)
    if "period" not in df.columns:
        totals = _top_n(df.groupby(by, sort=False)["messages"].sum().astype(float), n)
        pos = np.arange(len(totals))
        colors = [color_for(by, k) for k in totals.index]
        ax.barh(pos, totals.to_numpy(), **{"color": colors, **kwargs})
        ax.set_yticks(pos, [_label(k) for k in totals.index])
        ax.invert_yaxis()
        _thousands(ax.xaxis)
        ax.set_xlabel("messages [count]")
        ax.set_ylabel(by)
        ax.set_title(f"Keyword messages by {by}")
        return ax
    tz = df.attrs.get("tz")
    table = _pivot(df.assign(_x=_local_dates(df["period"], tz)), "_x", by, "messages")
    table = _limit_columns(table, n)
    x = table.index.to_numpy(dtype=float)
    _stacked(ax, x, table, by, width=_bar_width(x, df.attrs.get("freq")), **kwargs)
    _date_axis(ax)
    _thousands(ax.yaxis)
    per, zone = _period_words(df)
    ax.set_title(f"Opt-out and opt-in keywords{per}{zone}")
    ax.set_xlabel(f"period{zone}")
    ax.set_ylabel("messages [count]")
    ax.legend(title=by)
    return ax
