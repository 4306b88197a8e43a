"""Layers that only point down: a package imports only from the layers below it, in functions too.

An import placed inside a function to dodge a cycle is still an upward dependency, so every
``from .. import`` in a module counts, wherever it stands.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "babysit"

# Lowest first; packages of one layer do not import each other.
LAYERS = [
    {"errors"},
    {"plugins", "processes", "config", "rundir", "stats"},
    {"data", "models", "optim"},
    {"train"},  # the loop and what every training uses: step, schedules' callbacks, average
    {"watch"},
    {"experiment"},  # one experiment's set-up and training, for every stage
    {"evaluation"},  # the final evaluation on the test split, once, at the end
    {"check"},
    {"sanity"},
    {"search", "ensemble", "lightning"},
    {"report"},
    {"workflow"},
    {"commands", "cli", "__init__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# Known upward imports still to remove, each with where it stands.
DEBT = {
    ("experiment", "search"): "experiment.validate(search=True) checks the search space and stages",
}


def imported_packages(path: Path) -> set[str]:
    """The top-level babysit packages (or modules) `path` imports, anywhere in the file."""
    here = path.relative_to(SRC).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = list(here[:-1])[:max(0, len(here) - node.level)]
        target = base + (node.module.split(".") if node.module else [])
        names = target[:1] or [a.name for a in node.names]
        found.update(n for n in names if n in LEVEL)
    return found


def package(path: Path) -> str:
    return path.relative_to(SRC).with_suffix("").parts[0]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    own = package(path)
    upward = {name for name in imported_packages(path) - {own}
              if LEVEL[name] >= LEVEL[own] and (own, name) not in DEBT}
    assert not upward, f"{path.relative_to(SRC)} ({own}) imports {sorted(upward)} from its layer or above"


def test_the_debt_is_still_owed():
    """An entry of DEBT that no longer holds is removed from it (the test above then guards it)."""
    for (low, high), where in DEBT.items():
        assert any(high in imported_packages(p) for p in SRC.rglob("*.py") if package(p) == low), where
