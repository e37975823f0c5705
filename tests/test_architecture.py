"""The package's shape, read from its source with ``ast``: dependencies point one way.

``cli → reconcile → {manifest, ksef, vault} → vocabulary``; the storage and API
layers never reach back into the reconciler or the manifest; the simulator
stands alone; no two modules import each other, directly or round a loop.
Every import counts — also one made inside a function or under
``TYPE_CHECKING``: a type-only back-reference is still a dependency a reader
has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import ksefctl

PACKAGE = Path(ksefctl.__file__).parent

# Known edges that close a loop, each kept only until its owner removes it.  An
# entry is one edge (importer, imported); the test fails once it is gone, so the
# list only shrinks.
ALLOWED_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset(
    {
        # Permissions takes the Session it works through; type-only (TYPE_CHECKING).
        ("ksefctl.ksef.permissions", "ksefctl.ksef.session"),
        # The simulator's grant book is typed with the Simulator and Persistence that
        # hold it; type-only (TYPE_CHECKING).
        ("ksefctl.sim.grants", "ksefctl.sim.service"),
        ("ksefctl.sim.grants", "ksefctl.sim.store"),
    }
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> Iterator[str]:
    """The ksefctl modules ``name`` imports (``from pkg import sub`` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield submodule if submodule in MODULES else target


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        graph[name] = {
            target
            for target in imported(name, path)
            if target in MODULES and target != name and target.startswith("ksefctl")
        }
    return graph


GRAPH = import_graph()


def layer(module: str) -> str:
    """``ksefctl.vault.store`` → ``vault``; ``ksefctl.errors`` → ``errors``."""
    return module.split(".")[1] if "." in module else ""


def edges_between(sources: set[str], targets: set[str]) -> list[tuple[str, str]]:
    return sorted(
        (a, b)
        for a, imports in GRAPH.items()
        for b in imports
        if layer(a) in sources and layer(b) in targets
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
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


def test_the_graph_is_read_from_every_module() -> None:
    assert {"ksefctl.vault.store", "ksefctl.reconcile.engine", "ksefctl.sim.app"} <= set(GRAPH)
    # Sanity: known edges are seen, relative and ``from package import module`` forms too.
    assert "ksefctl.vault.client" in GRAPH["ksefctl.vault.store"]
    assert "ksefctl.vocabulary" in GRAPH["ksefctl.manifest.model"]


def test_no_import_cycle_among_ksefctl_modules() -> None:
    graph = {a: {b for b in bs if (a, b) not in ALLOWED_CYCLE_EDGES} for a, bs in GRAPH.items()}
    assert cycles(graph) == []


@pytest.mark.parametrize("edge", sorted(ALLOWED_CYCLE_EDGES), ids=" -> ".join)
def test_every_allowed_cycle_edge_still_exists(edge: tuple[str, str]) -> None:
    importer, target = edge
    assert target in GRAPH.get(importer, set()), f"{edge} is gone: remove it from the allow-list"


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_vault_and_ksef_never_import_the_reconciler_or_the_manifest() -> None:
    assert edges_between({"vault", "ksef"}, {"reconcile", "manifest", "cli"}) == []


def test_the_manifest_and_the_reconciler_never_import_upwards() -> None:
    assert edges_between({"manifest"}, {"reconcile", "cli", "ksef", "vault"}) == []
    assert edges_between({"reconcile"}, {"cli"}) == []


def test_the_shared_vocabulary_imports_nothing_from_ksefctl() -> None:
    assert GRAPH["ksefctl.vocabulary"] == set()


def test_the_simulator_stands_alone() -> None:
    outside = sorted(
        (a, b) for a, bs in GRAPH.items() if layer(a) == "sim" for b in bs if layer(b) != "sim"
    )
    assert outside == []


def test_vault_modules_use_only_each_others_public_surface() -> None:
    """No ``other._private`` inside ``vault/``: the store, lock and session cache are built
    on the client's public methods."""
    reaches = []
    for name, path in MODULES.items():
        if layer(name) != "vault":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                reaches.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert reaches == []
