"""Make untrusted text safe where it is shown: terminal, CSV, HTML, Markdown, plots.

Message bodies and numbers come from strangers. Everything that renders them goes through
one of these functions; none of them changes the stored data.

Decisions:

* Control characters (C0 but tab, DEL, C1) and the invisible characters that change how
  text reads (bidirectional overrides, isolates and marks: Trojan Source) are shown as
  escapes (``\\x1b``, ``\\u202e``) in every output, never passed through. Line breaks are
  shown as ``\\n`` on the terminal and in Markdown (one row per line); HTML and CSV keep
  them, as whitespace inside an element and inside a quoted cell.
* A CSV cell is quoted whenever it holds a delimiter, a quote, a line break or any other
  control character, so a spreadsheet reads exactly one row per record (a bare carriage
  return left unquoted starts a new row in Excel and LibreOffice). Text a spreadsheet would
  run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import OutputPathError
from .paths import check_output_path, write_atomically

if TYPE_CHECKING:  # the terminal and HTML escapes are used where pandas is not needed
    import pandas as pd

__all__ = [
    "for_terminal",
    "for_csv_cell",
    "for_html",
    "for_markdown",
    "for_plot",
    "to_json",
    "write_csv",
    "write_csv_tables",
    "write_json_lines",
    "FORMULA_PREFIXES",
]

# C0 and C1 control characters, DEL, and the bidirectional controls that can make text
# read differently from what it is (Trojan Source): embeddings and overrides, isolates,
# the left-to-right, right-to-left and Arabic letter marks; and the Unicode line and
# paragraph separators, which some terminals and parsers take as a line break. Tab is kept.
_INVISIBLE = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_INVISIBLE}]")
# The same, but line breaks kept (HTML and CSV show them as what they are).
_CONTROL_NOT_BREAKS = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]")

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_FORMULA_AFTER_SPACE = re.compile(r"[\s\x00-\x1f]*[=+\-@]")

# Characters that start inline Markdown (emphasis, code, links, images, raw HTML, entities,
# tables, strikethrough); a backslash makes each literal (CommonMark, GFM).
_MARKDOWN = re.compile(r"([\\`*_\[\]<>&!|~#$])")


def for_terminal(text: object) -> str:
    """Return `text` with control characters shown as escapes (``\\x1b``, ``\\n``).

    An ANSI escape sequence in a message body is printed as text, not obeyed by the
    terminal; a right-to-left override is shown as ``\\u202e``, not obeyed.

    Examples
    --------
    >>> for_terminal("hi\\x1b[2Jthere\\n")
    'hi\\\\x1b[2Jthere\\\\n'
    """
    s = "" if text is None else str(text)
    return _CONTROL.sub(_escape_char, s)


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    if c == "\n":
        return "\\n"
    if c == "\r":
        return "\\r"
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _visible(text: str) -> str:
    """Control and bidirectional characters as escapes; tabs and line breaks kept."""
    return _CONTROL_NOT_BREAKS.sub(_escape_char, text)


def for_csv_cell(value: object) -> object:
    """Neutralise a CSV cell a spreadsheet would run as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or a line break (or with one of them
    after leading blanks and control characters) gets a leading apostrophe, which
    spreadsheets show as text; control characters other than tab and line breaks are shown
    as escapes. Numbers and other types pass unchanged, so negative amounts stay numbers.

    Examples
    --------
    >>> for_csv_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> for_csv_cell(-3)
    -3
    """
    if not isinstance(value, str):
        return value
    text = _visible(value)
    if text.startswith(FORMULA_PREFIXES) or _FORMULA_AFTER_SPACE.match(text):
        return "'" + text
    return text


def for_html(text: object) -> str:
    """Escape `text` for HTML element content and quoted attributes.

    Control and bidirectional characters are shown as escapes (``\\u202e``), as on the
    terminal; tabs and line breaks are kept.

    Examples
    --------
    >>> for_html("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> for_html("abc\\u202edef")
    'abc\\\\u202edef'
    """
    return html.escape(_visible("" if text is None else str(text)), quote=True)


def for_markdown(text: object) -> str:
    """Escape `text` for a Markdown table cell or paragraph: it renders as the text itself.

    Inline metacharacters (links ``[a](...)``, images ``![x](...)``, emphasis, code, raw
    HTML ``<b>``, entities ``&amp;``, table pipes) are backslash-escaped; control characters
    and line breaks are shown as escapes, so a cell stays on its row.

    Examples
    --------
    >>> print(for_markdown("![x](http://evil/p.png) <b>"))
    \\!\\[x\\](http://evil/p.png) \\<b\\>
    """
    return _MARKDOWN.sub(r"\\\1", for_terminal(text))


def for_plot(text: object) -> str:
    """Return `text` for a matplotlib label: drawn as written, never parsed as mathtext.

    A dollar sign is escaped (``\\$``: matplotlib draws it as ``$``) and control characters
    are shown as escapes.

    Examples
    --------
    >>> for_plot("US$ 5 and $x$")
    'US\\\\$ 5 and \\\\$x\\\\$'
    """
    return for_terminal(text).replace("$", "\\$")


# JSON escapes C0 controls itself; these it would pass raw (C1 CSI \x9b is read as ESC [ by
# some terminals). Escaped as \uXXXX they are the same JSON value.
_JSON_RAW = re.compile(f"[\x7f-\x9f{_INVISIBLE}\u2028\u2029]")


def to_json(value: Any, **kwargs: Any) -> str:
    """Return `value` as JSON text that shows no control or bidirectional character raw.

    Non-ASCII text stays readable (``é``); C1 controls, DEL, bidirectional controls and the
    line and paragraph separators are written as ``\\uXXXX`` escapes, which decode to the
    same value. `kwargs` go to :func:`json.dumps`.

    Examples
    --------
    >>> print(to_json({"body": "é\\u202e"}))
    {"body": "é\\u202e"}
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _csv_text(value: Any) -> str | None:
    """One CSV cell as text (None: empty): exact decimals, ISO times, JSON for nested data."""
    # The common types first, without pandas: this runs once per cell.
    if value is None:
        return None
    if isinstance(value, str):
        return str(for_csv_cell(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return None if value != value else repr(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    import pandas as pd

    if hasattr(value, "tolist") and not pd.api.types.is_scalar(value):  # an Arrow list cell
        value = value.tolist()
    if isinstance(value, list | tuple | dict):  # the same JSON as write_json_lines writes
        return str(for_csv_cell(json.dumps(_json_value(value), ensure_ascii=False)))
    if pd.isna(value):
        return None
    if isinstance(value, datetime | date):  # pandas' Timestamp too
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return _csv_text(value.item())
    return str(value)


def _decimal_text(value: Decimal) -> str | None:
    """`value` exact and unrounded, without exponent or padding zeros (None: NaN)."""
    if not value.is_finite():
        return None if value.is_nan() else str(value)
    if value == 0:
        return "0"
    # normalize() rounds to the context's precision (28 digits by default): give it all.
    return f"{value.normalize(Context(prec=len(value.as_tuple().digits))):f}"


def _json_value(value: Any) -> Any:
    """`value` as what :func:`json.dumps` writes exactly (None: null).

    Integers stay integers, whatever their size; floats are written as Python's shortest
    repr that reads back the same (NaN is null, infinities the strings ``inf``/``-inf``:
    JSON has no number for them); decimals are exact strings, as in CSV, but those of
    scale 0 (integers) are integers; times ISO 8601 with their offset; lists and structs
    recursively; anything else its ``str``.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if value != value:
            return None
        return value if value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, Decimal):
        # An integral type (DuckDB's HUGEINT, sum() of integers) arrives as a decimal of
        # scale 0: a JSON integer. Others are exact strings (a float would round them).
        if value.is_finite() and value.as_tuple().exponent == 0:
            return int(value)
        return _decimal_text(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    import pandas as pd

    if hasattr(value, "tolist") and not pd.api.types.is_scalar(value):  # an Arrow list cell
        return _json_value(value.tolist())
    if pd.isna(value):
        return None
    if isinstance(value, datetime | date):  # pandas' Timestamp too
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return _json_value(value.item())
    return str(value)


def write_json_lines(df: pd.DataFrame, out: IO[str]) -> None:
    """Write `df` as JSON Lines to the text stream `out`: one object a row, values exact.

    Keys are the column names, in order. Values as :func:`_json_value` writes them (an
    integer column with missing values keeps its integers); text is written with
    :func:`to_json`, so no control or bidirectional character appears raw.
    """
    names = [str(c) for c in df.columns]
    for row in _rows(df):
        record = dict(zip(names, (_json_value(v) for v in row), strict=True))
        out.write(to_json(record, allow_nan=False) + "\n")


_NEEDS_QUOTES = re.compile(r'[,"\x00-\x1f\x7f-\x9f\u2028\u2029]|^\s|\s$')


def _quoted(cell: str | None) -> str:
    if cell is None:
        return ""
    if cell == "" or _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_csv(df: pd.DataFrame, out: IO[str]) -> None:
    """Write `df` as CSV to the text stream `out`, safe to open in a spreadsheet.

    Each cell is made safe on its own: text is neutralised with :func:`for_csv_cell` and
    quoted when it holds a delimiter, a quote, a line break or any control character (so
    a bare carriage return cannot start a row); decimals are exact, times ISO 8601, lists
    and structs JSON. Lines end with ``\\n``; an empty cell is a missing value (written
    ``""`` when it is the row's only cell, so that the row is not a blank line).
    """
    out.write(_header_line(df))
    for row in _rows(df):
        line = ",".join(_quoted(_csv_text(v)) for v in row)
        # A blank line is no row to a CSV reader: a lone missing cell is written "" (read
        # back as empty, as a missing cell is), so the row is kept.
        out.write((line or '""') + "\n")


def _header_line(df: pd.DataFrame) -> str:
    return ",".join(_quoted(_csv_text(str(c))) for c in df.columns) + "\n"


def _rows(df: pd.DataFrame) -> Iterable[Sequence[Any]]:
    # tolist(), not astype(object): an Arrow list column gives lists, not float arrays.
    columns = [df[c].tolist() for c in df.columns]
    return zip(*columns, strict=True) if columns else ([] for _ in range(len(df)))


def _starts_with(header: str) -> Callable[[Path], bool]:
    """Whether a file's first line is `header`: a table we wrote earlier."""

    def check(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                return fh.readline(len(header) + 1) == header
        except (OSError, UnicodeDecodeError):
            return False

    return check


def write_csv_tables(tables: Mapping[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """Write each table to ``<directory>/<name>.csv`` with :func:`write_csv`.

    The folder is created if needed; other files in it are left alone. An existing
    ``<name>.csv`` is replaced only when its first line is the header written there now
    (an earlier export of the same table); otherwise, or when it is a link, a device or
    a FIFO, nothing is written (:class:`~smsanalytics.errors.OutputPathError`). Each file
    is replaced atomically: an error or Ctrl-C leaves the previous one whole.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    OutputPathError
        If `directory` or one of the files may not be written (checked before any is).
    """
    out = check_output_path(directory, kind="directory")
    plan = []
    for name, df in tables.items():
        header = _header_line(df)
        path = check_output_path(out / f"{name}.csv", kind="file")
        if path.exists() and not _starts_with(header)(path):
            raise OutputPathError(
                str(path),
                "exists and is not this table written earlier (its header differs); "
                "choose another folder",
            )
        plan.append((path, df, header))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, df, header in plan:
        written.append(
            write_atomically(path, functools.partial(write_csv, df), ours=_starts_with(header))
        )
    return written
