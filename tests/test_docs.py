"""Docstring examples run, and every public name is documented."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import smsanalytics

from .conftest import ROOT

MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(smsanalytics.__path__, "smsanalytics.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples use the shipped sample_data
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, report=True)
    assert result.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_public_names_have_docstrings(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no module docstring"
    for public in getattr(module, "__all__", []):
        obj = getattr(module, public)
        if callable(obj) and not isinstance(obj, type(os)):
            assert getattr(obj, "__doc__", None), f"{name}.{public} has no docstring"


def test_package_exports_exist():
    for public in smsanalytics.__all__:
        assert hasattr(smsanalytics, public)


def test_make_demo_writes_the_paths_the_readme_names(tmp_path):
    import re
    import shutil
    import subprocess

    if shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "smsanalytics").exists():
        pytest.skip("needs make and the project's .venv")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = re.search(r"`make demo` writes (.*?)\.\s", readme, re.S)
    assert sentence, "the README no longer says what `make demo` writes"
    named = re.findall(r"`out/([^`]+)`", sentence.group(1))
    assert len(named) >= 3, named
    out = tmp_path / "out"
    proc = subprocess.run(
        ["make", "-s", "demo", f"OUT={out}"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    for rel in named:
        assert (out / rel).exists(), f"README names out/{rel}, which make demo did not write"
