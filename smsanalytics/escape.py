"""Make untrusted text safe where it is shown: terminal, CSV for spreadsheets, HTML.

Message bodies and numbers come from strangers. Everything that renders them goes through
one of these functions; none of them changes the stored data.
"""

from __future__ import annotations

import html
import re

__all__ = ["for_terminal", "for_csv_cell", "for_html", "FORMULA_PREFIXES"]

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
