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
