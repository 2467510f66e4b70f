"""The notebooks in notebooks/ run top to bottom in a real Jupyter kernel.

Each notebook is executed with nbclient in a fresh kernel started from the interpreter
running the tests (whatever kernelspecs the machine has installed), with ``notebooks/`` as
its working directory, as Jupyter would. A cell that raises fails the test with that
cell's source and traceback.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
# Figures render as inline PNGs without a display.
_INLINE = "module://matplotlib_inline.backend_inline"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ThisPythonKernelManager(AsyncKernelManager):
    """Start every kernel as ``sys.executable -m ipykernel_launcher``.

    A ``python3`` kernelspec installed elsewhere (the user's, the system's) could point to
    another Python without smsanalytics; this one is always the test's own interpreter.
    """

    @property
    def kernel_spec(self) -> KernelSpec:
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3 (smsanalytics tests)",
                language="python",
                env={"MPLBACKEND": _INLINE},
            )
        return self._kernel_spec


@functools.cache
def run_notebook(path: Path) -> nbformat.NotebookNode:
    """Execute the notebook at `path` (once per session; not saved) and return it."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        kernel_manager_class=ThisPythonKernelManager,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # Notebooks write to tempfile.mkdtemp(); point it at a directory removed afterwards.
    with tempfile.TemporaryDirectory(prefix="smsanalytics-nb-") as tmp:
        client.execute(env={**os.environ, "TMPDIR": tmp})
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _files(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def test_notebooks_are_there() -> None:
    names = {p.name for p in NOTEBOOK_PATHS}
    assert {"01_tour.ipynb", "02_batch_conversion.ipynb", "03_cost_analysis.ipynb",
            "04_opt_outs.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_is_saved_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing:\n{cell.source}"
            )


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path) -> None:
    before = _files(ROOT / "sample_data") | _files(NOTEBOOKS)
    error = None
    try:
        nb = run_notebook(path)
    except CellExecutionError as e:
        error = _ANSI.sub("", str(e))  # the kernel's traceback is coloured for a terminal
    if error is not None:
        pytest.fail(f"{path.name}: a cell failed\n{error}", pytrace=False)
    assert _files(ROOT / "sample_data") | _files(NOTEBOOKS) == before, (
        f"{path.name} wrote into the repository; write to a temporary directory"
    )
    # The objects a notebook displays (summaries, reports) render as HTML, not a repr.
    assert any("text/html" in out.get("data", {}) for out in _outputs(nb))


def test_tour_draws_every_plot() -> None:
    from smsanalytics import plots

    nb = run_notebook(NOTEBOOKS / "01_tour.ipynb")
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    drawn = [name for name in plots.__all__ if name.startswith("plot_")]
    assert [name for name in drawn if f"plots.{name}(" not in source] == []
    images = [out for out in _outputs(nb) if "image/png" in out.get("data", {})]
    assert len(images) >= len(drawn)


def test_opt_outs_notebook_answers_who_when_and_from_which_numbers() -> None:
    nb = run_notebook(NOTEBOOKS / "04_opt_outs.ipynb")
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for call in ("queries.opt_outs(", "top_senders(con, keyword=", 'freq="quarter"'):
        assert call in source
    text = "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
                     for out in _outputs(nb))
    assert re.search(r"\d+ senders opted out; \d+ opted back in later", text)
    assert "'+" in text  # the CSV for the CRM: numbers neutralised for spreadsheets
    assert "('from_number', 'to_numbers')" in text  # the pseudonymised list says so
