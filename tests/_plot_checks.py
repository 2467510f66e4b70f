"""Checks of a drawn figure that a reader would make by eye, done on its artists.

:func:`readability_problems` draws the figure and records every Text artist matplotlib
actually draws (by wrapping ``Text.draw``: tick labels outside the view, empty or hidden
texts are not drawn, so not recorded), then compares their window extents in pixels:

* no two drawn texts overlap (a share label and a title, two tick labels, a legend entry
  and an axis label);
* every drawn text lies inside the figure;
* a value label written on an Axes (``ax.texts``: the shares of ``bar_label``) lies inside
  that Axes' frame;
* a legend covers no bar (no non-empty bar patch of its Axes).

:func:`category_colors_problems` compares the facecolours of the categories of one plot.
Both return a list of problems in words (empty: fine), so that a failing test says what
collided with what.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import matplotlib.text
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

# Extents touching by less than this many pixels in either direction do not overlap
# (antialiasing and rounding of glyph boxes).
_SLACK = 1.0


@contextlib.contextmanager
def _recording_texts() -> Iterator[list[matplotlib.text.Text]]:
    drawn: list[matplotlib.text.Text] = []
    original = matplotlib.text.Text.draw

    def draw(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return original(self, renderer)

    matplotlib.text.Text.draw = draw
    try:
        yield drawn
    finally:
        matplotlib.text.Text.draw = original


def _overlap(a: Bbox, b: Bbox) -> bool:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width > _SLACK and height > _SLACK


def _inside(inner: Bbox, outer: Bbox) -> bool:
    return (inner.x0 >= outer.x0 - _SLACK and inner.x1 <= outer.x1 + _SLACK
            and inner.y0 >= outer.y0 - _SLACK and inner.y1 <= outer.y1 + _SLACK)


def drawn_texts(fig: Figure) -> list[tuple[matplotlib.text.Text, Bbox]]:
    """Draw `fig`; return each Text drawn with its extent in display pixels."""
    with _recording_texts() as drawn:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    unique = list(dict.fromkeys(drawn))
    return [(t, t.get_window_extent(renderer)) for t in unique]


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c
            if p.get_width() and p.get_height()]


def readability_problems(fig: Figure) -> list[str]:
    """What a reader would find hard to read in `fig`, in words (empty: nothing)."""
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    problems: list[str] = []
    frame = fig.bbox
    for i, (a, box_a) in enumerate(texts):
        if not _inside(box_a, frame):
            problems.append(f"{a.get_text()!r} leaves the figure ({box_a} not in {frame})")
        for b, box_b in texts[i + 1:]:
            if _overlap(box_a, box_b):
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    for ax in fig.axes:
        window = ax.get_window_extent(renderer)
        for t in ax.texts:
            box = t.get_window_extent(renderer)
            if t.get_visible() and t.get_text() and not _inside(box, window):
                problems.append(f"label {t.get_text()!r} leaves its Axes frame")
        legend = ax.get_legend()
        if legend is not None:
            box = legend.get_window_extent(renderer)
            for bar in _bars(ax):
                if _overlap(box, bar.get_window_extent(renderer)):
                    problems.append(f"the legend of {ax.get_title()!r} covers a bar")
                    break
    return problems


def category_colors_problems(colors: dict[str, object], other_color: str) -> list[str]:
    """Categories (label -> facecolour) sharing a colour, or a category coloured as other."""
    problems = []
    seen: dict[str, str] = {}
    for label, color in colors.items():
        hex_ = to_hex(color)
        if label != "other" and hex_ == to_hex(other_color):
            problems.append(f"{label!r} has the colour of 'other'")
        if hex_ in seen:
            problems.append(f"{label!r} and {seen[hex_]!r} share {hex_}")
        seen[hex_] = label
    return problems


def legend_colors(ax: Axes) -> dict[str, object]:
    """Legend label -> facecolour of its handle."""
    legend = ax.get_legend()
    return {t.get_text(): h.get_facecolor()
            for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}


def bar_colors(ax: Axes, axis: str) -> dict[str, object]:
    """Tick label -> facecolour of its bar, for plots of one bar per category."""
    labels = [t.get_text() for t in (ax.get_yticklabels() if axis == "y"
                                     else ax.get_xticklabels())]
    bars = [p for c in ax.containers for p in c]
    return dict(zip(labels, (p.get_facecolor() for p in bars), strict=True))
