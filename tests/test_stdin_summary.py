"""``convert -``: the summary counts the bytes read from standard input."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import DATA, run


def _line(i: int, body: str = "Bonjour") -> str:
    return json.dumps({"sid": f"s{i}", "from": "+33612345678", "to": "+33639980044",
                       "body": {"text": body}, "created": "2025-01-01T00:00:00Z"}) + "\n"


def test_stdin_bytes_are_counted_in_the_json_summary(tmp_path):
    text = "".join(_line(i, "é😀 ünïcödé") for i in range(500))
    r = run("convert", "-", "--out", str(tmp_path / "ds"), "--json",
            input=text.encode("utf-8"))
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["bytes"] == len(text.encode("utf-8"))  # bytes, not characters
    assert summary["files"] == 1 and summary["records"] == 500


def test_stdin_beside_files_adds_what_was_read(tmp_path):
    text = (DATA / "actions-log-line.txt").read_bytes()
    files = sorted(p for p in DATA.iterdir() if p.is_file())
    r = run("convert", "-", *map(str, files), "--out", str(tmp_path / "ds"), "--json",
            input=text)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["bytes"] == len(text) + sum(p.stat().st_size for p in files)
    assert summary["files"] == len(files) + 1


def test_the_text_summary_of_a_pipe_shows_its_size_and_one_file(tmp_path):
    text = "".join(_line(i) for i in range(12_000))  # about 1.4 MB
    proc = subprocess.run(
        [sys.executable, "-m", "smsanalytics", "convert", "-", "--out", str(tmp_path / "ds")],
        input=text.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.decode().splitlines()[0]
    mb = len(text) / 1e6
    assert f"12,000 records from 1 file ({mb:,.1f} MB in" in first
