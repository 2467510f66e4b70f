"""Rendering of the cost report and the audit: sections of plain data, as HTML or Markdown.

This module owns how a report looks, not what it says. A report is a list of
:class:`Section` objects holding plain data: titles, paragraphs, headline cards, charts and
:class:`Table` objects whose cells are typed values (ints, Decimals, datetimes, text) under
:class:`Column` objects that say what kind of value each column holds. Two renderers walk
that one list: :func:`to_html` (a Jinja2 template with autoescape on) and
:func:`to_markdown`.

Decisions:

* **Escaping is the default, not a habit.** The Jinja2 environment escapes every value it
  prints; its ``finalize`` hook runs :func:`~smsanalytics.escape.for_html` first, so control
  and bidirectional characters and lone surrogates are shown as escapes, as everywhere else.
  Only the chart's SVG, which matplotlib drew from paths (no text from the data in it), is
  marked safe.
* **One rule per kind of amount** (:func:`format_value`): totals in major units to 2
  decimals; costs per message and per part to 6 decimals, the precision Callr prices at
  (4 decimals of a cent), so every cell of a column has the same number of decimals and a
  price point reads exactly; percentages to 1 decimal. Rounding is half-even and happens
  only here: the data underneath stays exact.
* Units go in the column headers (``Cost (EUR)``, ``Per part (EUR per part)``,
  ``Share (%)``), so a cell is a bare number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ._analysis import is_na
from .amounts import DASH, cents, count, exact, money, pct, rate, share
from .escape import for_html, for_markdown

__all__: list[str] = []  # internal: the report and the audit use it

Kind = Literal["text", "message", "count", "money", "rate", "cents", "pct", "share", "when",
               "exact"]
_NUMERIC = frozenset({"count", "money", "rate", "cents", "pct", "share", "exact"})


def when(value: Any) -> str:
    """An instant as ``YYYY-MM-DD HH:MM`` (in the zone it carries)."""
    return DASH if is_na(value) else value.strftime("%Y-%m-%d %H:%M")


def format_value(value: Any, kind: Kind, *, signed: bool = False) -> str:
    """Format one typed value by the kind of its column (the one rule of each kind)."""
    if kind in ("text", "message"):
        return "" if is_na(value) else str(value)
    if isinstance(value, str):  # a word in a column of numbers ("no change", "3 more")
        return value
    formats = {"count": count, "money": money, "rate": rate, "cents": cents, "pct": pct}
    if kind in formats:
        return formats[kind](value, signed=signed)
    return {"share": share, "when": when, "exact": exact}[kind](value)


# ---------------------------------------------------------------------------------------
# The section model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column: its header, the kind of its values and their unit (shown in the header)."""

    header: str
    kind: Kind = "text"
    unit: str = ""
    signed: bool = False

    @property
    def title(self) -> str:
        return f"{self.header} ({self.unit})" if self.unit else self.header

    @property
    def numeric(self) -> bool:
        return self.kind in _NUMERIC


@dataclass
class Table:
    """A table of typed values; ``bars`` are shares (0 to 1) drawn beside a share column."""

    columns: list[Column]
    rows: list[list[Any]]
    classes: list[str] = field(default_factory=list)
    bars: list[float | None] = field(default_factory=list)
    footer: list[Any] | None = None
    note: str | None = None
    empty: str = "Nothing in this period."

    def cells(self, row: Sequence[Any]) -> list[str]:
        """The formatted cells of one row (footer cells that are None stay blank)."""
        return ["" if v is None else format_value(v, c.kind, signed=c.signed)
                for c, v in zip(self.columns, row, strict=True)]


@dataclass
class Paragraph:
    """A paragraph of text; ``kind`` is ``""``, ``"note"``, ``"ok"`` or ``"legend"``."""

    text: str
    kind: str = ""


@dataclass
class Card:
    """One headline figure: its value now and in the comparison period."""

    title: str
    kind: Kind
    unit: str
    current: Any
    previous: Any
    change_pct: Any
    previous_label: str
    main: bool = False
    #: Whether a rise is bad news (spending): coloured red up, green down.
    spending: bool = False

    @property
    def value(self) -> str:
        return format_value(self.current, self.kind)

    @property
    def was(self) -> str:
        return format_value(self.previous, self.kind)

    @property
    def change(self) -> str:
        if is_na(self.previous) or is_na(self.change_pct):
            return f"{self.previous_label}: no messages"
        p = self.change_pct
        arrow = "▲" if p > 0 else "▼" if p < 0 else "="
        return f"{arrow} {pct(p, signed=True)} % vs {self.previous_label} ({self.was})"

    @property
    def tone(self) -> str:
        if not self.spending or is_na(self.change_pct):
            return ""
        return "up" if self.change_pct > 0 else "down" if self.change_pct < 0 else ""


@dataclass
class Cards:
    """The headline figures (cards in HTML, a table in Markdown)."""

    cards: list[Card]
    current_label: str
    previous_label: str


@dataclass
class Chart:
    """An inline SVG drawn by matplotlib (glyphs as paths: no text from the data inside)."""

    svg: str
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, label)
    legend_note: str = ""


Block = Table | Paragraph | Cards | Chart


@dataclass
class Section:
    """A titled part of a page (level 2 or 3); ``title`` may be empty."""

    title: str
    blocks: list[Block | Section] = field(default_factory=list)
    level: int = 2


@dataclass
class Page:
    """A whole page: its title, the line under it, its sections and its footer."""

    title: str
    subtitle: list[tuple[str, bool]]  # (text, bold)
    sections: list[Section]
    footer: str = ""
    css_class: str = "smsa-report"


def frame_table(df: pd.DataFrame, *, tz: str = "", headers: dict[str, Column] | None = None,
                limit: int | None = None) -> Table:
    """A DataFrame as a :class:`Table`: the kind of each column from its name and type.

    ``*_cents`` columns are amounts in cents, integers are counts, instants are shown in
    their zone (`tz` names it in the header); `headers` gives a column its own
    :class:`Column` instead.
    """
    columns = []
    for name in df.columns:
        dtype = df[name].dtype
        if headers and name in headers:
            columns.append(headers[name])
        elif str(name).endswith("_cents"):
            columns.append(Column(str(name), "cents"))
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            columns.append(Column(str(name), "when", tz))
        elif pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            columns.append(Column(str(name), "count"))
        else:
            columns.append(Column(str(name)))
    shown = df if limit is None else df.head(limit)
    rows = [["" if is_na(v) and c.kind == "text" else v for c, v in zip(columns, row,
                                                                             strict=True)]
            for row in shown.astype(object).itertuples(index=False, name=None)]
    return Table(columns, rows, empty="Nothing found.")


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    # Runs on every {{ value }} before autoescape: our escaping (controls, bidi marks, lone
    # surrogates shown visibly) replaces Jinja's plain one; Markup is left as it is.
    if isinstance(value, Markup):
        return value
    return Markup(for_html(value))


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("smsanalytics", "templates"), autoescape=True,
                      finalize=_finalize, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.globals.update(svg=lambda chart: Markup(chart.svg), block_kind=_block_kind)
    return env


def css(name: str) -> str:
    """The text of a stylesheet shipped in ``templates/`` (ours, no data in it)."""
    loader = _environment().loader
    assert loader is not None
    return loader.get_source(_environment(), name)[0]


def to_html(page: Page, *, document: bool, head: str = "",
            template: str = "page.html.j2") -> str:
    """Render `page` as a whole HTML document, or as a fragment for a notebook.

    Parameters
    ----------
    page : Page
        What to show.
    document : bool
        True: ``<!DOCTYPE html>`` and ``<head>``; False: a ``<style>`` and the page's
        ``<div>`` only.
    head : str
        Trusted markup for the document head (the page marker), not escaped.
    template : str
        The template in ``templates/`` (``audit.html.j2``: the audit's fragment).
    """
    return _environment().get_template(template).render(
        page=page, document=document, head=Markup(head), css=Markup(css("report.css")),
        page_css=Markup(css("page.css"))).lstrip()


def _block_kind(block: Block | Section) -> str:
    return type(block).__name__.lower()


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def _md_table(t: Table) -> str:
    if not t.rows:
        return for_markdown(t.empty) + "\n"
    lines = ["| " + " | ".join(for_markdown(c.title) for c in t.columns) + " |",
             "| " + " | ".join("---:" if c.numeric else "---" for c in t.columns) + " |"]
    for row in t.rows:
        lines.append("| " + " | ".join(for_markdown(c) for c in t.cells(row)) + " |")
    if t.footer:
        lines.append("| " + " | ".join(f"**{for_markdown(c)}**" if c else ""
                                       for c in t.cells(t.footer)) + " |")
    if t.note:
        lines += ["", for_markdown(t.note)]
    return "\n".join(lines) + "\n"


def _md_cards(c: Cards) -> str:
    columns = [Column(""), Column(c.current_label, "text"), Column(c.previous_label, "text"),
               Column("Change", "text", "%")]
    rows = [[card.title + (f" ({card.unit})" if card.unit else ""), card.value, card.was,
             pct(card.change_pct, signed=True)] for card in c.cards]
    return _md_table(Table(columns, rows))


def _md_block(block: Block | Section) -> list[str]:
    if isinstance(block, Section):
        return _md_section(block)
    if isinstance(block, Table):
        return [_md_table(block)]
    if isinstance(block, Cards):
        return [_md_cards(block)]
    if isinstance(block, Paragraph):
        return [for_markdown(block.text) + "\n"]
    if block.legend_note:  # a Chart: only its caption
        return [for_markdown(block.legend_note) + "\n"]
    return []


def _md_section(section: Section) -> list[str]:
    out = [f"{'#' * section.level} {for_markdown(section.title)}\n"] if section.title else []
    for block in section.blocks:
        out += _md_block(block)
    return out


def to_markdown(page: Page) -> str:
    """Render `page` as Markdown: every text escaped with :func:`for_markdown`."""
    out = [f"# {for_markdown(page.title)}\n",
           for_markdown("".join(text for text, _ in page.subtitle)) + "\n"]
    for section in page.sections:
        out += _md_section(section)
    if page.footer:
        out.append(for_markdown(page.footer) + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Paths shown on a page
# ---------------------------------------------------------------------------------------


def shown_path(path: str | Path, page: str | Path | None) -> str:
    """How a page names a file: relative to the page's folder, or its name alone.

    A page travels (mailed, archived, printed): an absolute path of the machine that made
    it says nothing useful to its reader and tells them about that machine.
    """
    p = Path(path)
    if page is not None:
        try:
            rel = os.path.relpath(p.resolve(), Path(page).resolve().parent)
        except ValueError:  # another drive (Windows)
            return p.name or str(p)
        return Path(rel).as_posix()
    return p.name or str(p)
