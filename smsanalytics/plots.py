"""Plots of the answers of :mod:`smsanalytics.queries`, one function per question.

Every function is ``plot_x(data, *, ..., ax=None, query=None, **kwargs)``, in seaborn's
style: `data` is the DataFrame the question returned (or a connection / source, in which
case the question is asked with ``query`` as its keyword arguments); the plot is drawn on
`ax` (default: the current Axes), which is returned. Nothing calls ``show()`` or
``savefig()``. ``kwargs`` go to the underlying matplotlib call (``bar``, ``barh``,
``stairs``, ``imshow``).

What a plot reads from the DataFrame besides its columns: ``attrs["tz"]`` (periods are
drawn at their wall-clock time there, and the zone is named), ``attrs["freq"]`` (the period
length), ``attrs["currency"]`` (the money label) and, for :func:`plot_costs` and
:func:`plot_top_senders`, ``attrs["by"]``; every question sets them. A frame made by hand
without them is drawn in UTC, with the period length guessed from the spacing.

Readable by default, on a 6 x 3 inch Axes as on a wide one:

* a title, axis labels with units (and the currency label for money), thousands
  separators, concise date ticks in the question's time zone ("Jan 2025", "Feb", ...);
* a time series is drawn as bars only when every period gets at least
  :data:`MIN_BAR_PIXELS` pixels of the Axes' width; denser ones (hours over months) are
  steps, so a period never shrinks to a bar too thin to render (``kind=`` overrides);
* legends sit beside the Axes, never over the data; value labels (shares) get room
  inside the frame; category labels longer than :data:`MAX_LABEL_CHARS` are shortened
  with "…"; a figure without a layout engine gets matplotlib's constrained layout so the
  outer legend and labels fit in it;
* one colour per category within a plot, and the same colour for a country, an encoding,
  a traffic type or a status in every plot (:func:`color_for`) unless two categories of
  one plot would share it; "other" (the long tail, cut to the top ``n``) and "unknown"
  have colours of their own that no category takes.
"""

from __future__ import annotations

import textwrap
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis, XAxis, YAxis
from matplotlib.colors import to_hex
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from . import queries
from .escape import for_plot

__all__ = [
    "ENCODING_COLORS",
    "TRAFFIC_COLORS",
    "STATUS_COLORS",
    "KIND_COLORS",
    "OTHER_COLOR",
    "UNKNOWN_COLOR",
    "OTHER",
    "MIN_BAR_PIXELS",
    "MAX_LABEL_CHARS",
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
#: Colour of "other", reserved: no category is drawn in it.
OTHER_COLOR = "#A0A0A0"
#: Colour of missing values ("unknown"), reserved as well.
UNKNOWN_COLOR = "#D9D9D9"
#: Narrowest period [pixels of the Axes' width] drawn as a bar: 3 px of bar, 1 px of gap.
#: Below it, a time series is drawn as steps.
MIN_BAR_PIXELS = 4.0
#: Longest category label drawn in full [characters, after escaping]; longer ones end in "…".
MAX_LABEL_CHARS = 32
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
_SENDER_COLORS = {"new": "#4C72B0", "returning": "#8C6D31"}
_FIXED: Mapping[str, Mapping[str, str]] = {
    "encoding": ENCODING_COLORS, "traffic_type": TRAFFIC_COLORS, "status": STATUS_COLORS,
    "kind": KIND_COLORS, "sender": _SENDER_COLORS,
}

# Category colours: tab20 without its two greys (a grey category would read as "other"),
# then tab20b. The commonest countries get fixed ones; any other value a stable one.
_COUNTRY_ORDER = ("FR", "BE", "CH", "GB", "DE", "ES", "IT", "US", "CA", "NL",
                  "LU", "MA", "PT", "SN", "CI", "TN", "DZ", "RE", "GP", "MQ")
_PALETTE = [to_hex(plt.get_cmap("tab20")(i)) for i in range(20) if i not in (14, 15)] + [
    to_hex(plt.get_cmap("tab20b")(i)) for i in range(20)]
_RESERVED = {OTHER_COLOR.lower(), UNKNOWN_COLOR.lower()}

# matplotlib.dates has no annotations (most of matplotlib has them): the two functions
# used are typed here (for arrays: date numbers, and a list of datetimes); a call of its
# classes' methods is an untyped call, ignored where it is made ("dates").
_date2num = cast(Callable[[Any], npt.NDArray[np.float64]], mdates.date2num)
_num2date = cast(Callable[[Any], list[datetime]], mdates.num2date)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def country_color(code: str | None) -> str:
    """Return the colour of a country (ISO 3166-1 alpha-2), the same in every plot.

    Missing is :data:`UNKNOWN_COLOR`, ``"other"`` :data:`OTHER_COLOR`.

    Examples
    --------
    >>> country_color("FR") == country_color("FR")
    True
    """
    if _is_missing(code) or code == _UNKNOWN:
        return UNKNOWN_COLOR
    if code == OTHER:
        return OTHER_COLOR
    code = str(code).upper()
    if code in _COUNTRY_ORDER:
        return _PALETTE[_COUNTRY_ORDER.index(code)]
    return _PALETTE[zlib.crc32(code.encode()) % len(_PALETTE)]


def color_for(dimension: str, value: Any) -> str:
    """Return the colour of `value` of a dimension (``encoding``, ``country``, ...).

    Parameters
    ----------
    dimension : str
        ``encoding``, ``traffic_type``, ``status``, ``kind``, ``country`` or another
        column name (then a stable colour derived from the value).
    value : object
        The category. ``"other"`` is :data:`OTHER_COLOR`, a missing value
        :data:`UNKNOWN_COLOR`; no other value gets either.

    Notes
    -----
    This is the preferred colour. Within one plot, a category whose preferred colour
    another category of the plot already took gets the next free one, so no two
    categories of a plot share a colour.
    """
    if _is_missing(value) or value == _UNKNOWN:
        return UNKNOWN_COLOR
    if value == OTHER:
        return OTHER_COLOR
    if dimension == "country":
        return country_color(str(value))
    fixed = _FIXED.get(dimension, {}).get(str(value))
    if fixed is not None:
        return fixed
    return _PALETTE[zlib.crc32(str(value).encode()) % len(_PALETTE)]


def _distinct_colors(dimension: str, values: Iterable[Any]) -> list[str]:
    """The colour of each of `values` in one plot: preferred colours, no two the same."""
    taken: set[str] = set()
    out: list[str] = []
    spare = iter(_PALETTE)
    extra = 0
    for value in values:
        color = to_hex(color_for(dimension, value)).lower()
        reserved = color in _RESERVED and (_is_missing(value) or value in (OTHER, _UNKNOWN))
        if reserved and color not in taken:
            out.append(color)
            taken.add(color)
            continue
        if color in taken or color in _RESERVED:
            # A category never takes a reserved colour, nor one another category took.
            color = next((c for c in spare if c not in taken and c not in _RESERVED), "")
        while not color or color in taken or color in _RESERVED:
            # More categories than the palette: evenly spread hues, still all different.
            extra += 1
            color = to_hex(plt.get_cmap("hsv")((extra * 0.618034) % 1.0)).lower()
        taken.add(color)
        out.append(color)
    return out


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _data(data: Any, question: Callable[..., pd.DataFrame],
          query: Mapping[str, Any] | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    return question(data, **dict(query or {}))


def _figure(ax: Axes) -> Any:
    """The Figure `ax` is drawn in (the root one when `ax` is in a SubFigure)."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no subfigure roots to look up
        return ax.figure


def _axes(ax: Axes | None) -> Axes:
    ax = ax if ax is not None else plt.gca()
    figure = _figure(ax)
    if figure is not None and figure.get_layout_engine() is None:
        # Legends beside the Axes and long tick labels need room that a fixed layout
        # would cut off at the figure's edge.
        figure.set_layout_engine("constrained")
    return ax


def _name(value: Any) -> str:
    """A category as text for a plot: escaped (never mathtext), "unknown" when missing."""
    if _is_missing(value):
        return _UNKNOWN
    # Labels come from the data: text, never mathtext (a "$" would be parsed, and fail).
    # A tab has no glyph; a value spelled like the tail or a missing value is quoted so it
    # stays its own category.
    text = for_plot(value).replace("\t", " ")
    return f'"{text}"' if text in (OTHER, _UNKNOWN) else text


def _shorten(text: str) -> str:
    """`text` (already escaped) cut to MAX_LABEL_CHARS, ending in "…" when cut."""
    if len(text) <= MAX_LABEL_CHARS:
        return text
    # Never end on half of an escape: "\\" alone before "…" would make "\\…".
    return text[: MAX_LABEL_CHARS - 1].rstrip("\\") + "…"


def _label(value: Any) -> str:
    """A category as drawn in a tick label or legend: escaped and at most MAX_LABEL_CHARS."""
    return _shorten(_name(value))


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


class _RoomyLocator(MaxNLocator):
    """Nice ticks, no more than the axis has room for with its labels side by side.

    Along x, labels such as "1,250,000.00" are wider than matplotlib's guess of three
    font sizes each; the number of ticks follows the widest label's length instead, read
    at draw time (after the layout).
    """

    def __call__(self) -> Sequence[float]:
        axis = self.axis
        if isinstance(axis, XAxis) and axis.axis_name == "x":
            low, high = axis.get_view_interval()
            widest = max(len(axis.get_major_formatter()(v, 0)) for v in (low, high))
            size = FontProperties(size=plt.rcParams["xtick.labelsize"]).get_size_in_points()
            label = 0.62 * size * widest + 1.5 * size
            width = axis.axes.bbox.width / _figure(axis.axes).dpi * 72.0
            self.set_params(nbins=max(1, int(width / label)))
        return super().__call__()


def _thousands(axis: XAxis | YAxis, money: bool = False) -> None:
    fmt = "{:,.2f}" if money else "{:,.0f}"
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt.format(v)))
    if axis.axis_name == "x":
        axis.set_major_locator(_RoomyLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10]))


def _local_times(series: pd.Series, tz: str | None) -> pd.Series:
    """Periods as naive wall-clock times in `tz` (what the date axis shows)."""
    s = pd.to_datetime(series)
    if s.dt.tz is not None:
        s = s.dt.tz_convert(tz or "UTC").dt.tz_localize(None)
    return s.astype("datetime64[us]")


def _local_dates(series: pd.Series, tz: str | None) -> npt.NDArray[np.float64]:
    """Periods as matplotlib date numbers of their wall-clock time in `tz`."""
    return _date2num(_local_times(series, tz).to_numpy())


_FREQ_STEP: dict[str, pd.DateOffset] = {
    "hour": pd.DateOffset(hours=1),
    "day": pd.DateOffset(days=1),
    "week": pd.DateOffset(weeks=1),
    "month": pd.DateOffset(months=1),
    "quarter": pd.DateOffset(months=3),
    "year": pd.DateOffset(years=1),
}
# Every period of queries.FREQS has its length here (tests/test_plots_readable.py checks);
# a period unknown here is drawn with the spacing of its rows as its length.


def _period_ends(starts: npt.NDArray[np.float64], freq: str | None
                 ) -> npt.NDArray[np.float64]:
    """The end of each period (date numbers), from its start and the period length."""
    if freq in _FREQ_STEP:
        local = pd.DatetimeIndex(_num2date(starts)).tz_localize(None)
        return _date2num((local + _FREQ_STEP[freq]).to_numpy(dtype="datetime64[us]"))
    gaps = np.diff(np.unique(starts))
    return starts + (float(np.min(gaps)) if len(gaps) else 1.0)


# Width [inches] one date tick label needs: "Jan 2025" or "Mar-15" at 10 pt and a gap.
_DATE_TICK_INCHES = 0.8


class _RoomyDateLocator(mdates.AutoDateLocator):
    """AutoDateLocator placing as many ticks as the Axes' width has room for, side by side.

    The width is read when the ticks are placed (at draw time, after the layout gave the
    legend and labels their room), not when the plot is made.
    """

    def __call__(self) -> Sequence[float]:
        axes = self.axis.axes if isinstance(self.axis, Axis) else None
        if axes is not None:
            room = axes.bbox.width / _figure(axes).dpi / _DATE_TICK_INCHES
            self.maxticks = dict.fromkeys(self.maxticks, max(2, int(room)))
        ticks: Sequence[float] = super().__call__()  # type: ignore[no-untyped-call]  # dates
        return ticks


def _date_axis(ax: Axes) -> None:
    locator = _RoomyDateLocator(minticks=2)  # type: ignore[no-untyped-call]  # dates
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]  # dates
    # Month ticks read "Jan 2025", "Feb", ...: January says its year instead of replacing
    # the month by it (matplotlib's default writes "2025" alone).
    formatter.zero_formats = ["", "%b %Y", "%b", "%b-%d", "%H:%M", "%H:%M"]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _title(ax: Axes, text: str) -> None:
    """Set the title, wrapped at spaces to the Axes' width so it never leaves the figure."""
    size = FontProperties(size=plt.rcParams["axes.titlesize"]).get_size_in_points()
    # 0.6 em a character: wider than DejaVu Sans' average, so a line never overflows.
    chars = int(ax.bbox.width / _figure(ax).dpi * 72.0 / (0.6 * size))
    ax.set_title("\n".join(textwrap.wrap(text, max(chars, 12), break_long_words=False)) or text)


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
    kept: pd.Series = pd.concat([head, pd.Series({OTHER: values.iloc[n:].sum()})])
    return kept


def _stacked(ax: Axes, x: np.ndarray, table: pd.DataFrame, dimension: str, *,
             width: float | np.ndarray, horizontal: bool = False, **kwargs: Any) -> None:
    """Draw one BarContainer per column of `table` (rows = x positions), stacked."""
    bottom = np.zeros(len(table))
    colors = _distinct_colors(dimension, table.columns)
    for name, color in zip(table.columns, colors, strict=True):
        heights = np.asarray(table[name], dtype=float)
        style = {"color": color, **kwargs}
        # Columns are names already escaped by _pivot: shortened, not escaped twice.
        if horizontal:
            ax.barh(x, heights, height=width, left=bottom, label=_shorten(str(name)), **style)
        else:
            ax.bar(x, heights, width=width, bottom=bottom, label=_shorten(str(name)), **style)
        bottom = bottom + heights


def _series_kind(ax: Axes, starts: np.ndarray, ends: np.ndarray, kind: str) -> str:
    """``"bar"`` when every period gets MIN_BAR_PIXELS of the Axes' width, else ``"step"``."""
    if kind not in ("auto", "bar", "step"):
        raise ValueError(f"kind must be 'auto', 'bar' or 'step', not {kind!r}")
    if kind != "auto" or len(starts) == 0:
        return "bar" if kind == "auto" else kind
    span = float(np.max(ends) - np.min(starts))
    shortest = float(np.min(ends - starts))
    pixels = ax.bbox.width * shortest / span if span > 0 else ax.bbox.width
    return "bar" if pixels >= MIN_BAR_PIXELS else "step"


def _time_series(ax: Axes, x: np.ndarray, table: pd.DataFrame, dimension: str,
                 freq: str | None, *, kind: str = "auto", **kwargs: Any) -> str:
    """Draw `table` (rows = periods starting at `x`, columns = stacked series) over time.

    Bars stand in the middle of their period, 0.8 of its length wide; steps cover
    each period from its start to its end, with zero where a period is absent (an empty
    period has no row). Returns the kind drawn.
    """
    if len(x) == 0:
        return "bar" if kind == "auto" else kind  # no period: nothing to draw
    order = np.argsort(x, kind="stable")
    x = np.asarray(x, dtype=float)[order]
    table = table.iloc[order]
    # A wall-clock hour that repeats when clocks go back is drawn once, summed.
    if len(np.unique(x)) != len(x):
        table = table.groupby(x, sort=True).sum()
        x = table.index.to_numpy(dtype=float)
    ends = _period_ends(x, freq)
    drawn = _series_kind(ax, x, ends, kind)
    if drawn == "bar":
        # Each bar in the middle of its period (a year's bar is that year, not the half
        # years around its 1 January), 0.8 of its length.
        _stacked(ax, x + (ends - x) / 2, table, dimension, width=0.8 * (ends - x), **kwargs)
    else:
        edges: list[float] = [float(x[0])]
        slots: list[int | None] = []
        for i, (start, end) in enumerate(zip(x, ends, strict=True)):
            if start > edges[-1]:
                edges.append(float(start))
                slots.append(None)  # a gap: no message in the periods between
            edges.append(float(max(end, edges[-1])))
            slots.append(i)
        bottom = np.zeros(len(slots))
        colors = _distinct_colors(dimension, table.columns)
        for name, color in zip(table.columns, colors, strict=True):
            column = np.asarray(table[name], dtype=float)
            values = np.array([0.0 if i is None else column[i] for i in slots])
            style = {"color": color, "fill": True, **kwargs}
            ax.stairs(bottom + values, edges, baseline=bottom.copy(),
                      label=_shorten(str(name)), **style)
            bottom = bottom + values
    ax.set_ylim(bottom=0)
    # The axis spans the periods drawn, from the first start to the last end, so the
    # first period's start (1 January of a year, say) gets its tick.
    pad = 0.01 * float(ends[-1] - x[0])
    ax.set_xlim(float(x[0]) - pad, float(ends[-1]) + pad)
    return drawn


def _plot_over_time(ax: Axes, df: pd.DataFrame, x: np.ndarray, table: pd.DataFrame,
                    dimension: str, *, title: str, ylabel: str, legend: str | None,
                    kind: str, style: Mapping[str, Any], money: bool = False) -> Axes:
    """Draw a question's answer per period, `table` over `x` (:func:`_time_series`, with
    `style` for matplotlib), on a date axis: the title says the period length and the zone
    of `df`, the y axis has thousands separators (two decimals with `money`), `legend`
    (its title) puts the legend beside the Axes."""
    _time_series(ax, x, table, dimension, df.attrs.get("freq"), kind=kind, **style)
    _date_axis(ax)
    _thousands(ax.yaxis, money=money)
    per, zone = _period_words(df)
    _title(ax, f"{title}{per}{zone}")
    ax.set_xlabel(f"period{zone}")
    ax.set_ylabel(ylabel)
    if legend is not None:
        _legend_beside(ax, legend)
    return ax


def _messages_per_period(df: pd.DataFrame, column: str, n: int | None) -> pd.DataFrame:
    """Messages per period (rows: local date numbers) and value of `column` (columns: the
    `n` with the most messages, then "other")."""
    x = _local_dates(df["period"], df.attrs.get("tz"))
    return _limit_columns(_pivot(df.assign(_x=x), "_x", column, "messages"), n)


def _legend_beside(ax: Axes, title: str, **kwargs: Any) -> None:
    """A legend to the right of the Axes, where it hides no bar.

    Entries go in as many columns as it takes for the legend to be no taller than the
    Axes (one entry is about 1.8 times the legend's font size tall, with its spacing).
    """
    entries = len(kwargs.get("labels") or ax.get_legend_handles_labels()[1])
    if not entries:
        return  # nothing drawn (no rows): no empty legend box, no warning
    size = FontProperties(size=plt.rcParams["legend.fontsize"]).get_size_in_points()
    height = 0.85 * ax.bbox.height / _figure(ax).dpi * 72.0
    rows = max(1, int(height / (1.8 * size)) - 1)  # the title takes a row
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              ncols=max(1, -(-entries // rows)), **kwargs)


def _room_for_labels(ax: Axes, labels: Sequence[str], axis: str) -> None:
    """Extend the value axis so that labels written past the bar ends stay in the frame.

    The room is estimated from the labels' length in characters (0.62 of the font size
    each, more than the digits and "%" of DejaVu Sans take) and the Axes' size in points,
    of which the layout may later take a fifth (tick labels, a colour bar).
    """
    if not labels:
        return
    figure = _figure(ax)
    points = 0.62 * plt.rcParams["font.size"] * max(len(s) for s in labels) + 8.0
    if axis == "x":
        size = 0.8 * ax.bbox.width * 72.0 / figure.dpi
        low, high = ax.get_xlim()
    else:
        points = 1.4 * plt.rcParams["font.size"] + 8.0  # one line of text, upright
        size = 0.8 * ax.bbox.height * 72.0 / figure.dpi
        low, high = ax.get_ylim()
    share = min(0.5, points / max(size, 1.0))
    high = low + (high - low) / (1.0 - share)
    if axis == "x":
        ax.set_xlim(low, high)
    else:
        ax.set_ylim(low, high)


def _limit_columns(table: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Keep the `n` columns with the largest totals; sum the others into "other"."""
    totals = _top_n(table.sum(axis=0), n)
    if OTHER in totals.index and OTHER not in table.columns:
        kept = [c for c in totals.index if c != OTHER]
        rest = table.drop(columns=kept).sum(axis=1)
        table = table[kept].assign(**{OTHER: rest})
        return table
    return table[list(totals.index)]


def _limit_rows(table: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Keep the `n` rows with the largest totals, largest first; sum the others into "other"."""
    keep = _top_n(table.sum(axis=1), n)
    if OTHER in keep.index and OTHER not in table.index:
        kept = [k for k in keep.index if k != OTHER]
        other = table.drop(index=kept).sum(axis=0).rename(OTHER)
        return pd.concat([table.loc[kept], other.to_frame().T])
    return table.loc[list(keep.index)]


def _pivot(df: pd.DataFrame, index: str, column: str, value: str, *,
           named: bool = False) -> pd.DataFrame:
    """Sum `value` by `index` (rows) and `column` (columns: names, escaped unless `named`)."""
    frame = pd.DataFrame({
        index: df[index],
        column: df[column] if named else df[column].map(_name),
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
    kind: str = "auto",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Messages, parts or cost per period (from :func:`queries.volume`), as bars or steps.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.volume` returned, or a connection / source.
    y : {'messages', 'parts', 'cost', 'cost_cents'}
        What is measured.
    kind : {'auto', 'bar', 'step'}
        Bars, steps, or (``auto``) bars when each period gets at least
        :data:`MIN_BAR_PIXELS` pixels of the Axes' width, steps otherwise.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: the current Axes).
    query : mapping, optional
        Keyword arguments of the question when `data` is not a DataFrame.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.bar` or :meth:`~matplotlib.axes.Axes.stairs`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.volume, query)
    ax = _axes(ax)
    x = _local_dates(df["period"], df.attrs.get("tz"))
    table = pd.DataFrame({y: _floats(df[y])})
    what = "Cost" if y.startswith("cost") else y.replace("_", " ").capitalize()
    return _plot_over_time(ax, df, x, table, "volume", title=what,
                           ylabel=_value_label(df, y), legend=None, kind=kind,
                           style={"color": "#4C72B0", **kwargs}, money=y.startswith("cost"))


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
    countries = list(dict.fromkeys(_name(c) for c in df["country"]))
    palette = dict(zip(countries, _distinct_colors("country", countries), strict=True))
    style = {"color": [palette[_name(c)] for c in df["country"]], **kwargs}
    ax.barh(pos, _floats(df[x]), **style)
    ax.set_yticks(pos, [_label(v) for v in df["from_number"]])
    ax.invert_yaxis()
    _thousands(ax.xaxis, money=x.startswith("cost"))
    ax.set_xlabel(_value_label(df, x))
    ax.set_ylabel("sender")
    _title(ax, f"Top {len(df)} senders by {'cost' if x.startswith('cost') else x}")
    handles = [Rectangle((0, 0), 1, 1, color=palette[c]) for c in countries]
    if countries:
        _legend_beside(ax, "country", handles=handles,
                       labels=[_shorten(c) for c in countries])
    return ax


def plot_sender_activity(
    data: Any,
    *,
    kind: str = "auto",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars (or steps) of new and returning senders per period.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.sender_activity` returned, or a source.
    kind, ax, query, **kwargs
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
    return _plot_over_time(ax, df, x, table, "sender", title="New and returning senders",
                           ylabel="senders [count]", legend="senders", kind=kind,
                           style=kwargs)


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

    Notes
    -----
    By location, a bar's colour is its country's: the locations of one country share it.
    """
    df = _data(data, queries.locations, query)
    ax = _axes(ax)
    by_location = "location" in df.columns
    names = [
        f"{_name(c)} · {_name(loc)}" if by_location else _name(c)
        for c, loc in zip(df["country"], df["location"] if by_location else df["country"],
                          strict=True)
    ]
    countries = dict(zip(names, (_name(c) for c in df["country"]), strict=True))
    values = _top_n(pd.Series(_floats(df[x]), index=names).groupby(level=0, sort=False).sum(),
                    n)
    pos = np.arange(len(values))
    shown = list(dict.fromkeys(countries.get(k, OTHER) for k in values.index))
    palette = dict(zip(shown, _distinct_colors("country", shown), strict=True))
    style = {"color": [palette[countries.get(k, OTHER)] for k in values.index], **kwargs}
    bars = ax.barh(pos, values.to_numpy(), **style)
    ax.set_yticks(pos, [_shorten(k) for k in values.index])
    ax.invert_yaxis()
    total = float(values.sum())
    if total > 0:
        shares = [f"{v / total:.1%}" for v in values]
        ax.bar_label(bars, labels=shares, padding=3)
        _room_for_labels(ax, shares, "x")
    _thousands(ax.xaxis, money=x.startswith("cost"))
    ax.set_xlabel(_value_label(df, x))
    ax.set_ylabel("sender location" if by_location else "sender country")
    what = "Cost" if x.startswith("cost") else x.capitalize()
    _title(ax, f"{what} by sender {'location' if by_location else 'country'}")
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
        table = _pivot(df.assign(country=df["country"].map(_name)), "country", "encoding",
                       "messages")
        table = _limit_rows(table, n)
        fractions = table.div(table.sum(axis=1), axis=0)
        pos = np.arange(len(fractions))
        _stacked(ax, pos, fractions, "encoding", width=0.8, horizontal=True, **kwargs)
        ax.set_yticks(pos, [_shorten(str(k)) for k in fractions.index])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        ax.set_xlabel("share of the country's messages [%]")
        ax.set_ylabel("sender country")
        _title(ax, "Encoding by sender country")
        _legend_beside(ax, "encoding")
        return ax
    labels = [_label(e) for e in df["encoding"]]
    pos = np.arange(len(df))
    style = {"color": _distinct_colors("encoding", [_name(e) for e in df["encoding"]]),
             **kwargs}
    bars = ax.bar(pos, _floats(df["messages"]), **style)
    ax.set_xticks(pos, labels)
    shares = [f"{s:.1%}" for s in df["share"]]
    ax.bar_label(bars, labels=shares, padding=3)
    _room_for_labels(ax, shares, "y")
    _thousands(ax.yaxis)
    ax.set_ylabel("messages [count]")
    ax.set_xlabel("encoding")
    _title(ax, "Messages by encoding (GSM vs unicode)")
    return ax


def plot_parts_distribution(
    data: Any,
    *,
    log: bool = True,
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Bars of messages per number of parts, one bar per encoding side by side.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.parts_distribution` returned, or a source.
    log : bool, default True
        A logarithmic count axis. Messages of one part usually outnumber those of four
        by a hundred times or more: on a linear axis every bar but the first is flat.
        Bars side by side (not stacked) so that each bar's height is its own count on
        the log axis.
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
    pos = np.arange(len(table))
    width = 0.8 / max(len(table.columns), 1)
    colors = _distinct_colors("encoding", table.columns)
    for i, (name, color) in enumerate(zip(table.columns, colors, strict=True)):
        offset = (i - (len(table.columns) - 1) / 2) * width
        ax.bar(pos + offset, np.asarray(table[name], dtype=float), width=width,
               label=_shorten(str(name)), **{"color": color, **kwargs})
    ax.set_xticks(pos, [str(p) for p in table.index])
    if log:
        ax.set_yscale("log")
        top = float(table.to_numpy().max()) if table.size else 1.0
        # A count of one stands half a decade tall; the top decade has room above.
        ax.set_ylim(0.5, max(top, 1.0) * 3.0)
        ax.yaxis.set_major_locator(LogLocator(base=10))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("messages [count, log scale]")
    else:
        ax.set_ylabel("messages [count]")
    _thousands(ax.yaxis)
    ax.set_xlabel("parts [segments per message]")
    _title(ax, "Messages by number of parts")
    _legend_beside(ax, "encoding")
    return ax


# Columns that may say which country an operator is in (Orange in France is not Orange in
# Spain). Whichever the costs frame has, the operator is labelled "Orange (FR)".
_OPERATOR_COUNTRY_COLUMNS = ("network_country", "operator_country", "from_country", "country")


def _operator_names(df: pd.DataFrame, dims: list[str]) -> tuple[pd.Series, list[str]]:
    """Operators labelled with their country, and the dimensions left once merged.

    A frame grouped by operator that also carries a country column not asked for as its
    own grouping (``costs(by="operator")`` grouping by (country, operator)) draws one
    category per pair, named "Orange (FR)".
    """
    country = next((c for c in _OPERATOR_COUNTRY_COLUMNS
                    if c in df.columns and c != "operator"
                    and (c not in dims or set(dims) == {"operator", c})), None)
    if country is None:
        return df["operator"].map(_name), dims
    names = [
        _UNKNOWN if _is_missing(op) else f"{_name(op)} ({_name(cc)})"
        for op, cc in zip(df["operator"], df[country], strict=True)
    ]
    return pd.Series(names, index=df.index), [d for d in dims if d != country]


def plot_costs(
    data: Any,
    *,
    n: int | None = 10,
    kind: str = "auto",
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
        An operator is labelled with its country ("Orange (FR)") when the frame has a
        country column beside ``operator``.
    n : int or None
        Categories kept before "other" (bars, and stacked segments).
    kind : {'auto', 'bar', 'step'}
        For a period grouping, as in :func:`plot_volume`.
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
        totals = [f"{v:,.2f}" for v in _floats(df["cost"])]
        ax.bar_label(bars, labels=totals, padding=3)
        _room_for_labels(ax, totals, "y")
        _thousands(ax.yaxis, money=True)
        ax.set_ylabel(label)
        _title(ax, "Total cost")
        return ax
    frame = df.copy()
    if "operator" in dims:
        frame["operator"], dims = _operator_names(frame, dims)
    for d in dims:
        if d not in queries.FREQS and d != "operator":
            frame[d] = frame[d].map(_name)
    first, second = dims[0], (dims[1] if len(dims) > 1 else None)
    tz = df.attrs.get("tz")
    is_time = first in queries.FREQS
    if second is None:
        frame["_all"] = "cost"
        second_col = "_all"
    else:
        second_col = second
    if is_time:
        frame["_x"] = _local_dates(frame[first], tz)
    else:
        frame["_x"] = frame[first]
    table = _pivot(frame, "_x", second_col, "cost", named=True)
    table = _limit_columns(table, n)
    if is_time:
        _time_series(ax, table.index.to_numpy(dtype=float), table, second or "cost", first,
                     kind=kind, **kwargs)
        _date_axis(ax)
        _thousands(ax.yaxis, money=True)
        ax.set_ylabel(label)
        ax.set_xlabel(f"{first} ({for_plot(tz)})" if tz else first)
    else:
        table = _limit_rows(table, n)
        pos = np.arange(len(table))
        if second is None:
            colors = _distinct_colors(first, table.index)
            costs = table["cost"].to_numpy() if "cost" in table else np.zeros(len(table))
            ax.barh(pos, costs, label="cost", **{"color": colors, **kwargs})
        else:
            _stacked(ax, pos, table, second, width=0.8, horizontal=True, **kwargs)
        ax.set_yticks(pos, [_shorten(str(k)) for k in table.index])
        ax.invert_yaxis()
        _thousands(ax.xaxis, money=True)
        ax.set_xlabel(label)
        ax.set_ylabel(first.replace("_", " "))
    title = f"Cost by {first.replace('_', ' ')}"
    if second is not None:
        title += f" and {second.replace('_', ' ')}"
        _legend_beside(ax, second.replace("_", " "))
    _title(ax, title + (f" ({for_plot(tz)})" if is_time and tz else ""))
    return ax


def _plot_breakdown(df: pd.DataFrame, column: str, title: str, ax: Axes, n: int | None,
                    kind: str, **kwargs: Any) -> Axes:
    if "period" not in df.columns:
        # Horizontal bars: category names of any length read side by side, unrotated.
        names = [_name(v) for v in df[column]]
        pos = np.arange(len(df))
        style = {"color": _distinct_colors(column, names), **kwargs}
        bars = ax.barh(pos, _floats(df["messages"]), **style)
        ax.set_yticks(pos, [_shorten(s) for s in names])
        ax.invert_yaxis()
        shares = [f"{s:.1%}" for s in df["share"]]
        ax.bar_label(bars, labels=shares, padding=3)
        _room_for_labels(ax, shares, "x")
        _thousands(ax.xaxis)
        ax.set_ylabel(column.replace("_", " "))
        ax.set_xlabel("messages [count]")
        _title(ax, title)
        return ax
    table = _messages_per_period(df, column, n)
    return _plot_over_time(ax, df, table.index.to_numpy(dtype=float), table, column,
                           title=title, ylabel="messages [count]",
                           legend=column.replace("_", " "), kind=kind, style=kwargs)


def plot_traffic(
    data: Any,
    *,
    n: int | None = 8,
    kind: str = "auto",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars (or steps) of messages per traffic type per period (or totals).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.traffic` returned, or a connection / source.
    n : int or None
        Traffic types kept before "other".
    kind, ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.traffic, query)
    return _plot_breakdown(df, "traffic_type", "Messages by traffic type", _axes(ax), n,
                           kind, **kwargs)


def plot_statuses(
    data: Any,
    *,
    n: int | None = 8,
    kind: str = "auto",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars (or steps) of messages per Callr status per period (or totals).

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.statuses` returned, or a connection / source.
    n : int or None
        Statuses kept before "other".
    kind, ax, query, **kwargs
        As in :func:`plot_volume`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = _data(data, queries.statuses, query)
    return _plot_breakdown(df, "status", "Messages by status", _axes(ax), n, kind, **kwargs)


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
    zone = f" ({for_plot(tz)})" if tz else ""
    ax.set_xlabel(f"hour of day{zone}")
    ax.set_ylabel("day of week")
    _title(ax, f"Messages by hour and day of week{zone}")
    if colorbar:
        # In an inset of the Axes, not an Axes of the figure's own: matplotlib refuses to
        # change layout engines (a later fig.tight_layout()) once a figure has a colour bar
        # laid out by one.
        bar = _figure(ax).colorbar(image, cax=ax.inset_axes((1.03, 0.0, 0.03, 1.0)))
        bar.set_label("messages [count]")
        _thousands(bar.ax.yaxis)
    return ax


def plot_keywords(
    data: Any,
    *,
    by: str = "kind",
    n: int | None = 8,
    kind: str = "auto",
    ax: Axes | None = None,
    query: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Axes:
    """Stacked bars (or steps) of keyword messages per period, by kind or keyword.

    Parameters
    ----------
    data : pandas.DataFrame or source
        What :func:`~smsanalytics.queries.keywords` returned, or a connection / source.
    by : {'kind', 'keyword'}
        What the segments are.
    n : int or None
        Keywords kept before "other" when ``by="keyword"``.
    kind, ax, query, **kwargs
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
        totals = _top_n(df.assign(**{by: df[by].map(_name)}).groupby(by, sort=False)[
            "messages"].sum().astype(float), n)
        pos = np.arange(len(totals))
        colors = _distinct_colors(by, totals.index)
        ax.barh(pos, totals.to_numpy(), **{"color": colors, **kwargs})
        ax.set_yticks(pos, [_shorten(str(k)) for k in totals.index])
        ax.invert_yaxis()
        _thousands(ax.xaxis)
        ax.set_xlabel("messages [count]")
        ax.set_ylabel(by)
        _title(ax, f"Keyword messages by {by}")
        return ax
    table = _messages_per_period(df, by, n)
    return _plot_over_time(ax, df, table.index.to_numpy(dtype=float), table, by,
                           title="Opt-out and opt-in keywords", ylabel="messages [count]",
                           legend=by, kind=kind, style=kwargs)
