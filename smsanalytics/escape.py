"""Make untrusted text safe where it is shown: terminal, CSV for spreadsheets, HTML.

Message bodies and numbers come from strangers. Everything that renders them goes through
one of these functions; none of them changes the stored data.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the terminal and HTML escapes are used where pandas is not needed
    import pandas as pd

__all__ = ["for_terminal", "for_csv_cell", "for_html", "write_csv_tables", "FORMULA_PREFIXES"]

# C0 and C1 control characters, DEL, and the bidirectional overrides that can make text
# read differently from what it is (Trojan Source). Tab is kept.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def for_terminal(text: object) -> str:
    """Return `text` with control characters shown as escapes (``\\x1b``, ``\\n``).

    An ANSI escape sequence in a message body is printed as text, not obeyed by the
    terminal.

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


def for_csv_cell(value: object) -> object:
    """Neutralise a CSV cell a spreadsheet would run as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or a line break gets a leading
    apostrophe, which spreadsheets show as text. Numbers and other types pass unchanged,
    so negative amounts stay numbers.

    Examples
    --------
    >>> for_csv_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> for_csv_cell(-3)
    -3
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def for_html(text: object) -> str:
    """Escape `text` for HTML element content and quoted attributes.

    Examples
    --------
    >>> for_html("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    return html.escape("" if text is None else str(text), quote=True)


def _csv_value(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    if isinstance(value, Decimal):
        # Exact and unrounded, without exponent or padding zeros.
        return f"{value.normalize():f}" if value != 0 else "0"
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.isoformat()
    return for_csv_cell(value)


def write_csv_tables(tables: Mapping[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """Write each table to ``<directory>/<name>.csv``, safe to open in a spreadsheet.

    Decimals are written exact and unrounded, times in ISO 8601, and text cells (and
    headers) a spreadsheet would run as a formula are neutralised with
    :func:`for_csv_cell`.

    Returns
    -------
    list of Path
        The files written.
    """
    import pandas as pd

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        cells = pd.DataFrame(
            {
                str(for_csv_cell(str(c))): [_csv_value(v) for v in df[c].astype(object)]
                for c in df.columns
            },
            index=range(len(df)),
        )
        path = out / f"{name}.csv"
        cells.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        written.append(path)
    return written
