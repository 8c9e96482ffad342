"""The package's layers, a partial order: each part of ``simulator`` imports only from the floors
below its own, never from a sibling on its own floor nor from above (import-linter's layers
contract with independent siblings, ``sweep | calibration | trial``). Checked on every import
statement, including those inside functions; docs/layout.md's "may import" column is this table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

import simulator

PACKAGE = Path(simulator.__file__).parent
# Bottom to top; the parts on one floor must not import each other.
FLOORS = (
    ("model",),
    ("runtime", "analysis"),
    ("sweep", "calibration", "trial"),
    ("sensitivity",),
    ("plots", "benchmark"),
    ("cli",),
)
FLOOR = {part: level for level, floor in enumerate(FLOORS) for part in floor}
MAY_IMPORT = {part: [below for floor in FLOORS[:FLOOR[part]] for below in floor] for part in FLOOR}


def _imports(source: str) -> list[str]:
    """Every module named by an import statement of ``source``, at any depth."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            if node.module == "simulator":  # ``from simulator import x``: x may be a part
                names += [f"simulator.{a.name}" for a in node.names if a.name in FLOOR]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def violations(part: str, source: str) -> list[str]:
    """The imports of ``source``, a module of ``part``, from a part it may not import.

    The package root (``simulator``, ``simulator.__version__``) is no part and may be imported.
    """
    bad = []
    for module in _imports(source):
        words = module.split(".")
        if words[0] == "simulator" and len(words) > 1 and words[1] in FLOOR:
            if words[1] != part and words[1] not in MAY_IMPORT[part]:
                bad.append(module)
    return bad


def _modules() -> list[tuple[str, Path]]:
    """(part, path) of every module of the package but its root's ``__init__`` and ``__main__``."""
    return [(path.relative_to(PACKAGE).with_suffix("").parts[0], path) for path in sorted(PACKAGE.rglob("*.py"))
            if path.relative_to(PACKAGE).with_suffix("").parts[0] not in ("__init__", "__main__")]


def test_the_floors_name_every_part_once():
    parts = [part for floor in FLOORS for part in floor]
    assert len(parts) == len(set(parts))
    assert {part for part, _ in _modules()} == set(parts)


def test_no_module_imports_a_sibling_or_a_floor_above_its_own():
    bad = [f"{path.relative_to(PACKAGE)} imports {module}"
           for part, path in _modules() for module in violations(part, path.read_text())]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("part, source, refused", [
    ("sweep", "from simulator.calibration.fit import Evaluator", "simulator.calibration.fit"),  # sibling
    ("calibration", "def f():\n    import simulator.sweep.experiment\n", "simulator.sweep.experiment"),  # in a function
    ("trial", "from simulator import sweep", "simulator.sweep"),  # sibling, as a name of the package
    ("analysis", "from simulator.runtime.storage import write_netcdf", "simulator.runtime.storage"),
    ("model", "from simulator.analysis import outcomes", "simulator.analysis"),  # a floor above
    ("sensitivity", "from simulator.plots import sweep", "simulator.plots"),  # a floor above
])
def test_the_checker_refuses_a_sibling_or_upward_import(part, source, refused):
    assert violations(part, source) == [refused]


def test_the_checker_passes_imports_from_below_and_the_root():
    source = ("from simulator.sweep.experiment import MAX_PATIENTS_PER_CHUNK\nimport simulator.model.kernel\n"
              "from simulator import __version__\nfrom simulator.sensitivity import psa\nimport numpy\n")
    assert violations("sensitivity", source) == []


def test_layout_doc_lists_what_each_part_may_import():
    rows = re.findall(r"^\| `simulator/(\w+)(?:/|\.py)` \|.*\| ([^|]*) \|$", (ROOT / "docs" / "layout.md").read_text(),
                      re.M)
    documented = {part: set() if may.strip() == "nothing of ours" else {m.strip() for m in may.split(",")}
                  for part, may in rows}
    assert documented == {part: set(below) for part, below in MAY_IMPORT.items()}
