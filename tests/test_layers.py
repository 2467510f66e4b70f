"""The import layers: each module imports only its own layer and those below it.

Read from the source (AST), imports inside functions included: a lazy import that runs
back up is still a dependency running the wrong way. The README's layout table lists the
same layers; a test below keeps the two in step.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "smsanalytics"

#: Lowest first. A module may import modules of its own layer or of a layer before it.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "schema", "arguments", "paths", "escape"}),
    ("pure facts and parsing", {"keywords", "numbers", "networks", "segments", "sources",
                                "readers", "dataset", "privacy", "enrich", "sample"}),
    ("conversion and receiving", {"ingest", "receiver_archive", "receiver"}),
    ("analysis", {"_analysis", "amounts", "queries", "spark_sql", "spark_storage", "spark",
                  "spark_convert"}),
    ("answers", {"render", "audit", "report", "plots"}),
    ("entry points", {"cli", "__main__", "__init__"}),
]

#: Imports allowed to run up, each with its reason (the import is inside a function).
EXCEPTIONS: dict[tuple[str, str], str] = {
    # pseudonymize_dataset rewrites a dataset with ingest's interrupt handling.
    ("privacy", "ingest"): "privacy.pseudonymize_dataset reuses ingest's Ctrl-C guard",
    # The package root re-exports the public names of every layer (imported on first use).
    ("__init__", "*"): "the package root re-exports the public API",
}


def _layer_of() -> dict[str, int]:
    return {m: i for i, (_, modules) in enumerate(LAYERS) for m in modules}


def _imports(path: Path) -> set[str]:
    """The package modules `path` imports, at module level or in a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] == "smsanalytics":
                found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "smsanalytics" and len(parts) > 1:
                    found.add(parts[1])
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return found & modules


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(_layer_of()), "place the new module in LAYERS (and the README)"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.stem)
def test_no_import_runs_back_up(path: Path):
    layer = _layer_of()
    me = path.stem
    upward = sorted(
        m for m in _imports(path)
        if layer[m] > layer[me] and (me, m) not in EXCEPTIONS and (me, "*") not in EXCEPTIONS
    )
    assert upward == [], (f"{me} ({LAYERS[layer[me]][0]}) imports {upward} from a later "
                          "layer")


def test_the_checker_sees_a_lazy_import_running_up(tmp_path: Path):
    # The test above must be able to fail: an import inside a function counts.
    module = tmp_path / "schema.py"
    module.write_text("def f():\n    from .report import cost_report\n"
                      "    import smsanalytics.cli\n")
    assert _imports(module) == {"report", "cli"}


def test_the_readme_layout_lists_every_module_in_its_layer():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| layer | module | owns |"):] + "\n\n"
    table = table[:table.index("\n\n")]
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| layer")]
    listed: dict[str, str] = {}
    for row in rows:
        layer_name, modules = row.split("|")[1].strip(), row.split("|")[2]
        for name in re.findall(r"`([A-Za-z_]+)\.py`", modules):
            listed[name] = layer_name
    expected = {m: name for name, modules in LAYERS for m in modules}
    assert listed == expected
