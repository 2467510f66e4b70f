"""Untrusted text in every renderer: terminal, HTML, Markdown, CSV (spreadsheets), plots."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsanalytics.audit import audit
from smsanalytics.escape import (
    for_csv_cell,
    for_html,
    for_markdown,
    for_plot,
    for_terminal,
    write_csv,
    write_csv_tables,
)
from smsanalytics.report import cost_report
from smsanalytics.schema import MESSAGE_SCHEMA

from ._fixtures_queries import rows

# Characters that must never reach an output raw: C0 controls but tab and line breaks,
# DEL, C1 controls (U+009B is an 8-bit CSI), the bidirectional controls and marks, and the
# Unicode line and paragraph separators (a line break to some terminals and parsers).
HOSTILE = ("\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x80\x85\x9b\x9f"
           "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
           "\u2028\u2029")
RAW_ANYWHERE = re.compile(f"[{HOSTILE}]")
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def needs_escape(text: str) -> bool:
    """Whether `text` holds a control character (Unicode Cc) other than tab and line breaks,
    or a bidirectional control: what every output shows as an escape."""
    return any((unicodedata.category(c) == "Cc" and c not in "\t\r\n") or c in BIDI
               for c in text)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")

hostile_text = st.text(
    st.one_of(st.sampled_from(list(HOSTILE) + list("=+-@\t\r\n\"',;|[]()!<>&`*_$\\ ")),
              st.characters(codec="utf-8", exclude_categories=("Cs",))),
    max_size=40)


# -- a spreadsheet's reading of a CSV file -----------------------------------------------


def spreadsheet_rows(text: str) -> list[list[str]]:
    """Read CSV as Excel and LibreOffice do: any unquoted CR, LF or CRLF ends a row."""
    out: list[list[str]] = []
    row: list[str] = []
    cell: list[str] = []
    quoted = started = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"' and text[i + 1:i + 2] == '"':
                cell.append('"')
                i += 1
            elif c == '"':
                quoted = False
            else:
                cell.append(c)
        elif c == '"' and not cell:
            quoted = started = True
        elif c == ",":
            row.append("".join(cell))
            cell, started = [], False
        elif c in "\r\n":
            row.append("".join(cell))
            out.append(row)
            row, cell, started = [], [], False
            if c == "\r" and text[i + 1:i + 2] == "\n":
                i += 1
        else:
            cell.append(c)
            started = True
        i += 1
    if cell or row or started:
        row.append("".join(cell))
        out.append(row)
    return out


def is_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_START)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(hostile_text, min_size=2, max_size=2), min_size=1, max_size=5))
def test_any_text_gives_one_spreadsheet_row_per_record_and_no_formula(
        records: list[list[str]]) -> None:
    buf = io.StringIO()
    write_csv(pd.DataFrame(records, columns=["a", "b"]), buf)
    got = spreadsheet_rows(buf.getvalue())
    assert len(got) == len(records) + 1
    assert all(len(r) == 2 for r in got)
    for original, cells in zip(records, got[1:], strict=True):
        for text, cell in zip(original, cells, strict=True):
            assert not is_formula(cell)
            assert not RAW_ANYWHERE.search(cell)
            if not needs_escape(text):  # nothing to show as an escape: kept exactly
                assert cell in (text, "'" + text)
    # Python's reader (RFC 4180) agrees.
    assert len(list(csv.reader(io.StringIO(buf.getvalue(), newline="")))) == len(records) + 1


@pytest.mark.parametrize("cell", ["x\r=HYPERLINK(\"http://evil\")", "x\r+1", "x\n@SUM(A1)",
                                  "a\r\n-2+3", "\r=1", " =1+1", "\x00=1", "\u202e=1"])
def test_a_line_break_cannot_start_a_formula_row(cell: str) -> None:
    buf = io.StringIO()
    write_csv(pd.DataFrame({"body": [cell, "ok"]}), buf)
    got = spreadsheet_rows(buf.getvalue())
    assert len(got) == 3 and got[2] == ["ok"]
    assert not is_formula(got[1][0])


def test_csv_cells_keep_numbers_exact_and_nested_data_as_json() -> None:
    from decimal import Decimal

    df = pd.DataFrame({"n": [-3, 4], "d": [Decimal("-0.50"), None],
                       "s": [[{"status": "a"}, {"status": "b"}], None]}).astype(object)
    buf = io.StringIO()
    write_csv(df, buf)
    got = list(csv.reader(io.StringIO(buf.getvalue())))
    assert got[1] == ["-3", "-0.5", '[{"status": "a"}, {"status": "b"}]']
    assert got[2] == ["4", "", ""]


def test_for_csv_cell_neutralises_after_blanks() -> None:
    assert for_csv_cell(" =1+1") == "' =1+1"
    assert for_csv_cell("\t-1") == "'\t-1"
    assert for_csv_cell("a=1") == "a=1" and for_csv_cell(-1) == -1


# -- every text renderer -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_hostile_characters_never_survive_any_renderer(text: str) -> None:
    for render in (for_terminal, for_html, for_markdown, for_plot):
        assert not RAW_ANYWHERE.search(render(text)), render.__name__
    assert not RAW_ANYWHERE.search(str(for_csv_cell(text)))
    html = for_html(text)
    assert "<" not in html and ">" not in html and '"' not in html
    assert "\n" not in for_terminal(text) and "\r" not in for_markdown(text)


@pytest.mark.parametrize("char, shown", [("\u202e", "\\u202e"), ("\x00", "\\x00"),
                                         ("\x1b", "\\x1b"), ("\u2066", "\\u2066"),
                                         ("\u200f", "\\u200f"), ("\x9b", "\\x9b"),
                                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")])
def test_html_shows_controls_as_the_terminal_does(char: str, shown: str) -> None:
    assert for_html(f"a{char}b") == f"a{shown}b"
    assert for_terminal(f"a{char}b") == f"a{shown}b"


@pytest.mark.parametrize("text", ["![x](http://evil.example/p.png)", "[a](javascript:alert(1))",
                                  "<img src=x onerror=alert(1)>", "&lt;b&gt;", "**bold**",
                                  "`code`", "a|b", "~~gone~~", "$x$", "<http://evil>"])
def test_markdown_metacharacters_are_escaped(text: str) -> None:
    md = for_markdown(text)
    # Every metacharacter is preceded by a backslash: nothing starts a link, image, tag,
    # entity, emphasis, code span or cell.
    for m in re.finditer(r"[\[\]<>&*`|~!$_]", md):
        assert md[m.start() - 1] == "\\", (text, md)


def test_markdown_renders_as_the_text_itself() -> None:
    markdown = pytest.importorskip("markdown_it")
    for text in ["![x](http://evil.example/p.png)", "[a](javascript:alert(1))",
                 "<script>x</script>", "&amp; *b* `c`"]:
        rendered = markdown.MarkdownIt("commonmark").renderInline(for_markdown(text))
        assert "<a" not in rendered and "<img" not in rendered and "<script" not in rendered
        assert "<em>" not in rendered and "<code>" not in rendered


# -- the report and the audit, end to end --------------------------------------------------


EVIL = ["x\r=HYPERLINK(\"http://evil\")", "![x](http://evil.example/p.png)",
        "[a](javascript:alert(1))", "a\u202eb\x00c\x1b[31m", "\u2066iso\u2069 \u200f"]


def evil_table() -> pa.Table:
    base = rows()
    for i, text in enumerate(EVIL):
        base[i]["body_text"] = text
        base[i]["from_number"] = text
        base[i]["from_country"] = text
        base[i]["network"] = text
    return pa.Table.from_pylist(base, schema=MESSAGE_SCHEMA)


@pytest.fixture(scope="module")
def evil_report():
    return cost_report(evil_table(), start="2025-03-01", end="2025-11-01", currency="EUR")


def test_report_html_shows_controls_visibly(evil_report) -> None:
    html = evil_report.to_html()
    assert not RAW_ANYWHERE.search(html)
    assert "\\u202e" in html and "\\x1b[31m" in html


def test_report_markdown_passes_no_markdown_through(evil_report) -> None:
    md = evil_report.to_markdown()
    assert "![x](" not in md and "[a](" not in md and not RAW_ANYWHERE.search(md)
    assert "\\!\\[x\\](http://evil.example/p.png)" in md


@pytest.mark.parametrize("make", ["report", "audit"])
def test_report_and_audit_csv_have_one_row_per_record(evil_report, tmp_path: Path,
                                                       make: str) -> None:
    if make == "report":
        tables, files = evil_report.tables(), evil_report.to_csv(tmp_path)
    else:
        a = audit(evil_table())
        tables, files = a.tables(), a.to_csv(tmp_path)
    assert files
    for path in files:
        got = spreadsheet_rows(path.read_text(encoding="utf-8"))
        assert len(got) == len(tables[path.stem]) + 1, path.name
        for row in got:
            assert not any(is_formula(c) for c in row), (path.name, row)
            assert not any(RAW_ANYWHERE.search(c) for c in row), (path.name, row)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(hostile_text, min_size=1, max_size=4))
def test_write_csv_tables_any_text(tmp_path: Path, texts: list[str]) -> None:
    written = write_csv_tables({"t": pd.DataFrame({"x": texts, "y": texts})}, tmp_path)
    got = spreadsheet_rows(written[0].read_text(encoding="utf-8"))
    assert len(got) == len(texts) + 1
    assert not any(is_formula(c) for r in got for c in r)


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_json_output_is_the_same_value_with_nothing_raw(text: str) -> None:
    import json

    from smsanalytics.escape import to_json

    out = to_json({"k": text})
    assert json.loads(out) == {"k": text}
    assert not RAW_ANYWHERE.search(out)


def test_audit_json_shows_no_control_raw() -> None:
    out = audit(evil_table()).to_json()
    assert not RAW_ANYWHERE.search(out) and "\\u202e" in out
