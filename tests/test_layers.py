"""The package's layers: no module imports from a subpackage above its own (model at the bottom,
the command line at the top), checked on every import statement, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import simulator

PACKAGE = Path(simulator.__file__).parent
LAYERS = ("model", "runtime", "analysis", "sweep", "calibration", "sensitivity", "trial", "plots", "benchmark", "cli")


def _layer(module: str) -> int | None:
    """Layer index of a ``simulator.<part>...`` module name (None for the package root itself)."""
    parts = module.split(".")
    if parts[0] != "simulator" or len(parts) == 1:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            if node.module == "simulator":  # ``from simulator import x``: x may be a subpackage
                names += [f"simulator.{a.name}" for a in node.names if a.name in LAYERS]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] in ("__init__", "__main__"):
            continue
        assert rel.parts[0] in LAYERS, f"{rel} is in no layer of {LAYERS}"


def test_no_module_imports_from_a_layer_above_it():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] in ("__init__", "__main__"):
            continue
        own = LAYERS.index(rel.parts[0])
        bad += [f"{rel} imports {m}" for m in _imports(path) if (_layer(m) or 0) > own]
    assert not bad, "\n".join(bad)
