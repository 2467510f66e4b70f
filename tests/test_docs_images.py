"""The README's images are there and are what ``make docs-images`` makes from the code.

What is compared (docs/make_images.py writes docs/images.json beside the images):

* every image the README shows exists in docs/, is a PNG of the size recorded, and every
  PNG in docs/ is shown in the README (none left over);
* the plot images, regenerated from the code into a temporary folder, are the same bytes
  as the committed ones when matplotlib is the version that made them (Agg output is
  deterministic for one version; another version may antialias differently), and the
  same size otherwise;
* the report screenshot, regenerated with Chromium (``-m slow``: a browser start), is the
  same bytes with the same Chromium, the same size otherwise.

A failure means the code changed what the README shows: run ``make docs-images``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RECORD = json.loads((DOCS / "images.json").read_text(encoding="utf-8"))
AGAIN = "the code changed what the README shows: run `make docs-images`"


def _script():
    spec = importlib.util.spec_from_file_location("make_images", DOCS / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_images = _script()


def readme_images() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"!\[[^\]]*\]\(docs/([^)\s]+)\)", text))


def test_readme_images_exist_and_none_is_left_over():
    shown = readme_images()
    assert shown, "the README shows no image"
    assert shown == {p.name for p in DOCS.glob("*.png")}
    assert shown == set(RECORD["images"])
    for name in shown:
        size = make_images.png_size(DOCS / name)
        assert list(size) == RECORD["images"][name]["size"], name
        digest = hashlib.sha256((DOCS / name).read_bytes()).hexdigest()
        assert digest == RECORD["images"][name]["sha256"], f"{name}: {AGAIN}"


def test_png_size_refuses_what_is_not_a_png(tmp_path):
    fake = tmp_path / "x.png"
    fake.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(ValueError, match="not a PNG"):
        make_images.png_size(fake)


def _compare(name: str, fresh: Path, same_maker: bool) -> None:
    recorded = RECORD["images"][name]
    assert list(make_images.png_size(fresh)) == recorded["size"], f"{name}: {AGAIN}"
    if same_maker:
        assert hashlib.sha256(fresh.read_bytes()).hexdigest() == recorded["sha256"], (
            f"{name}: {AGAIN}")


def test_the_plot_images_are_what_the_code_draws(tmp_path):
    import matplotlib

    dataset = make_images._convert(tmp_path)
    written = make_images.write_plot_images(dataset, tmp_path / "docs")
    assert {p.name for p in written} == set(make_images.PLOT_IMAGES)
    for path in written:
        _compare(path.name, path, matplotlib.__version__ == RECORD["matplotlib"])
    # twice the same bytes: nothing in the file depends on the time or the machine
    again = make_images.write_plot_images(dataset, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]


@pytest.mark.slow
@pytest.mark.skipif(make_images.chromium() is None, reason="no chromium on PATH")
def test_the_report_image_is_what_the_code_renders(tmp_path):
    dataset = make_images._convert(tmp_path)
    shot = make_images.write_report_image(dataset, tmp_path / "docs", tmp_path)
    _compare("report.png", shot, make_images.chromium_version() == RECORD["chromium"])


def test_make_has_a_docs_images_target():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docs-images:.*\n\t.*docs/make_images\.py", makefile, re.M)
