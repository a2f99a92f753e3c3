"""The import rules of docs/ARCHITECTURE.md ("Dependencies point one way"), checked on the source.

Every ``import``/``from ... import`` of a ``resectbench`` module is read from the source with ``ast``
(imports inside functions included: a lazy import is still an arrow). The rules:

1. No import cycles between modules.
2. No cycles between the top-level parts (``data``, ``geometry``, ``models`` ...).
3. Each part imports only the parts its row of ``ALLOWED`` names (the layer table of
   docs/ARCHITECTURE.md); in particular no library module imports the CLI, the leaderboard
   reads result files through ``vocabulary`` only (no models, data or protocol), geometry knows
   no data and data no models, and ``vocabulary`` imports nothing from the package.

``PENDING`` lists the known exceptions still to be removed; the test fails when one is gone, so the
list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resectbench"

#: part -> the parts it may import (cli may import everything; nothing but __main__ imports cli)
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "vocabulary": set(),
    "errors": set(),
    "search_space": set(),
    "profiles": {"errors"},
    "registry": {"errors", "search_space"},
    "plugins": {"_version", "errors", "registry"},
    "geometry": {"errors", "vocabulary"},
    "data": {"errors", "vocabulary", "profiles", "geometry"},
    "losses": {"errors", "vocabulary", "registry", "search_space"},
    "fusion": {"errors", "vocabulary", "registry", "search_space"},
    "balancing": {"errors", "vocabulary", "registry", "search_space"},
    "models": {
        "_version",  # the key of a shared fit (models/shared_fits.py) changes with the code
        "errors",
        "vocabulary",
        "registry",
        "search_space",
        "profiles",
        "data",
        "geometry",
        "losses",
        "fusion",
        "balancing",
    },
    "baselines": {"errors", "vocabulary", "registry", "search_space", "profiles", "data", "geometry", "models"},
    "protocol": {
        "errors",
        "vocabulary",
        "registry",
        "search_space",
        "profiles",
        "plugins",
        "data",
        "geometry",
        "models",
        "baselines",
        "tracking",  # the MLflow logger, registered on the run_event hook when RESECTBENCH_MLFLOW asks for it
    },
    # experiment trackers on the run_event hook: plain-dict payloads, so no protocol
    "tracking": {"_version", "plugins"},
    "leaderboard": {"_version", "errors", "vocabulary", "geometry"},
    # conformance checks for component authors (resectbench.testing)
    "testing": {"errors", "vocabulary", "registry", "search_space", "models", "balancing"},
    "cli": {
        "_version",
        "errors",
        "vocabulary",
        "registry",
        "search_space",
        "profiles",
        "plugins",
        "data",
        "geometry",
        "losses",
        "fusion",
        "balancing",
        "models",
        "baselines",
        "protocol",
        "leaderboard",
        "tracking",
        "resectbench",
    },
    "__main__": {"cli"},
    "resectbench": {"_version", "plugins", "registry"},  # the package's __init__: the public API
}

#: (importer, imported) arrows that break a rule and are known; remove each when it is fixed
PENDING: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The resectbench modules ``name`` imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "resectbench")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "resectbench":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "resectbench"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def arrows(exclude_pending: bool = True):
    for importer, imported in sorted((a, b) for a, bs in GRAPH.items() for b in bs):
        if exclude_pending and (importer, imported) in PENDING:
            continue
        yield importer, imported


def test_the_source_is_read():
    assert "resectbench.vocabulary" in MODULES and "resectbench.cli.app" in MODULES
    assert "resectbench.vocabulary" in GRAPH["resectbench.protocol.store"]
    assert "resectbench.registry" in GRAPH["resectbench.plugins.manager"]


def test_no_import_cycles_between_modules():
    assert cycles(GRAPH) == []


def test_no_cycles_between_parts():
    parts: dict[str, set[str]] = {}
    for importer, imported in arrows():
        if part(importer) != part(imported):
            parts.setdefault(part(importer), set()).add(part(imported))
    for name in list(parts):
        parts.setdefault(name, set())
    assert cycles(parts) == []


def test_every_part_is_in_the_layer_table():
    assert {part(m) for m in MODULES} <= set(ALLOWED), "a new part needs its row in ALLOWED (and docs/ARCHITECTURE.md)"


def test_no_forbidden_arrows():
    forbidden = [
        f"{a} -> {b}" for a, b in arrows() if part(a) != part(b) and part(b) not in ALLOWED.get(part(a), set())
    ]
    assert forbidden == []


def test_no_library_module_imports_the_cli():
    assert [a for a, b in arrows() if part(b) == "cli" and part(a) not in ("cli", "__main__")] == []


def test_vocabulary_imports_nothing_from_the_package():
    assert GRAPH["resectbench.vocabulary"] == set()


def test_pending_exceptions_still_exist():
    """A fixed exception must leave PENDING (and docs/ARCHITECTURE.md), so the rules only get stricter."""
    present = set(arrows(exclude_pending=False))
    assert PENDING <= present, f"remove from PENDING: {sorted(PENDING - present)}"


def test_no_test_file_imports_another_test_file():
    """Shared test code lives in conftest.py fixtures or helper modules (not collected), never in a test file."""
    tests = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name} -> {n}" for n in names if n.split(".")[-1].startswith("test_")]
    assert offenders == []
