"""The package's public names, and what importing it costs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import smsanalytics


@pytest.mark.parametrize("name", smsanalytics.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(smsanalytics, name)
    assert value is not None
    assert name in dir(smsanalytics)


def test_the_lazy_names_are_the_public_ones() -> None:
    errors = {n for n in smsanalytics.__all__ if n.endswith("Error")}
    assert set(smsanalytics._LAZY) | {"queries"} | errors == set(smsanalytics.__all__)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        smsanalytics.no_such_thing  # noqa: B018


def _modules_after(code: str) -> dict[str, bool]:
    probe = (
        f"import sys, json\n{code}\n"
        "print(json.dumps({m: m in sys.modules for m in "
        "('pandas', 'phonenumbers', 'matplotlib')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_importing_the_package_is_light() -> None:
    # pandas, phonenumbers' data and matplotlib each take a large part of a second.
    loaded = _modules_after("import smsanalytics\nsmsanalytics.convert")
    assert loaded == {"pandas": False, "phonenumbers": False, "matplotlib": False}


def test_a_core_conversion_leaves_phonenumbers_unloaded(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"sid": "s1", "from": "+33612345678", "to": "+33798765432", "body": {"text": "hi"}}\n'
    )
    out = tmp_path / "out"
    loaded = _modules_after(
        "import smsanalytics\n"
        f"s = smsanalytics.convert([{str(src)!r}], {str(out)!r}, quiet=True, enrich_rows=False)\n"
        "assert s.written == 1, s"
    )
    # pyarrow itself imports pandas when it first builds an array, if pandas is there.
    assert loaded["phonenumbers"] is False
    assert loaded["matplotlib"] is False
    enriched = _modules_after(
        "import smsanalytics\n"
        f"smsanalytics.convert([{str(src)!r}], {str(out)!r}, quiet=True, overwrite=True)"
    )
    assert enriched["phonenumbers"] is True
