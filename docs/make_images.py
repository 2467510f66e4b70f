"""Regenerate the README's images in docs/ from the code, on the shipped sample data.

Run it with ``make docs-images`` (or ``python docs/make_images.py [--out DIR]``). It
converts ``sample_data`` into a temporary ``out/dataset``, as ``make demo`` does, then
writes:

* ``volume.png``: :func:`smsanalytics.plots.plot_volume` of the messages per day in
  Europe/Paris, the README's first plot. Drawn by matplotlib's Agg backend with
  matplotlib's default style, a fixed size and resolution, and no "Software" text chunk,
  so the same code and matplotlib give the same bytes;
* ``report.png``: the top 1040 x 1400 pixels of the cost report (``smsanalytics report
  out/dataset --tz Europe/Paris --currency EUR``) as headless Chromium draws it, with no
  network (every host name resolves to nowhere). Without Chromium on the PATH this image
  is left as it is, and the script says so.

Nothing is read from the user's matplotlib configuration or the network.

``docs/images.json`` records what made the images (matplotlib's and Chromium's versions)
and each image's SHA-256 and size: ``tests/test_docs_images.py`` regenerates the images and
expects the same bytes when it runs with the same versions, the same size otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = ROOT / "sample_data"
TZ = "Europe/Paris"
CURRENCY = "EUR"
#: The report screenshot's size [CSS pixels]: a laptop's width, the headline and first tables.
REPORT_WINDOW = (1040, 1400)
#: Each plot image: file name -> (figure size [inches], resolution [dpi]).
PLOT_IMAGES = {"volume.png": ((10.0, 3.6), 100)}


def _convert(workdir: Path) -> Path:
    """Convert the sample data into ``workdir/out/dataset`` and return that path."""
    import smsanalytics as sa

    dataset = workdir / "out" / "dataset"
    sa.convert([str(SAMPLE)], str(dataset), rejects=str(workdir / "out" / "rejects.jsonl"))
    return dataset


def write_plot_images(dataset: Path, out: Path) -> list[Path]:
    """Draw the README's plots of `dataset` into `out`; return the files written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from smsanalytics import plots, queries

    out.mkdir(parents=True, exist_ok=True)
    written = []
    con = queries.connect(str(dataset), currency=CURRENCY)
    try:
        # matplotlib's defaults, whatever the user's matplotlibrc says.
        with matplotlib.rc_context(rc=matplotlib.rcParamsDefault):
            size, dpi = PLOT_IMAGES["volume.png"]
            fig, ax = plt.subplots(figsize=size, dpi=dpi, layout="constrained")
            plots.plot_volume(queries.volume(con, tz=TZ), ax=ax)
            path = out / "volume.png"
            fig.savefig(path, dpi=dpi, metadata={"Software": None})
            plt.close(fig)
            written.append(path)
    finally:
        con.close()
    return written


def chromium() -> str | None:
    """The Chromium binary on the PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_report_image(dataset: Path, out: Path, workdir: Path) -> Path | None:
    """Screenshot the cost report of `dataset` into ``out/report.png`` (None: no Chromium)."""
    browser = chromium()
    if browser is None:
        return None
    from smsanalytics.report import cost_report

    # The page names its source as given: run from the dataset's grand-parent so that it
    # reads "out/dataset", as after `make demo`, not a temporary path.
    here = Path.cwd()
    os.chdir(dataset.parent.parent)
    try:
        page = Path("report.html").resolve()
        cost_report("out/dataset", tz=TZ, currency=CURRENCY).write_html(page)
    finally:
        os.chdir(here)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.png"
    width, height = REPORT_WINDOW
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={workdir / 'profile'}", f"--window-size={width},{height}",
         f"--screenshot={path}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return path


def chromium_version() -> str | None:
    """``chromium --version`` (None without Chromium)."""
    browser = chromium()
    if browser is None:
        return None
    run = subprocess.run([browser, "--version"], capture_output=True, text=True, timeout=60)
    return run.stdout.strip() or None


def png_size(path: Path) -> tuple[int, int]:
    """Width and height [pixels] of a PNG, from its header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def describe(paths: list[Path]) -> dict[str, object]:
    """What made the images and what they are, for docs/images.json."""
    import matplotlib

    return {
        "matplotlib": matplotlib.__version__,
        "chromium": chromium_version(),
        "images": {
            p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                     "size": list(png_size(p))}
            for p in sorted(paths)
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder to write (docs/)")
    parser.add_argument("--no-report", action="store_true",
                        help="only the plots (no Chromium screenshot)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smsanalytics-docs-") as tmp:
        workdir = Path(tmp)
        dataset = _convert(workdir)
        written = write_plot_images(dataset, args.out)
        if not args.no_report:
            shot = write_report_image(dataset, args.out, workdir)
            if shot is None:
                print("no chromium on PATH: report.png left as it is", file=sys.stderr)
            else:
                written.append(shot)
    images = sorted(args.out.glob("*.png"))
    record = args.out / "images.json"
    record.write_text(json.dumps(describe(images), indent=2) + "\n", encoding="utf-8")
    for path in [*written, record]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
