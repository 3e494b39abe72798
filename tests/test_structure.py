"""The package's import graph has no circles.

Every import counts, module-level and function-level (and those under TYPE_CHECKING): a lazy
import keeps a circle from failing at import time but it is still a circle in the structure -
the one this test was written for (``hilr/episodes.py`` dispatching ``bag plot`` and
``bag export`` through lazy imports of modules that import ``episodes``) existed only through
one. Importing ``a.b`` also imports the package ``a``; those implicit edges are left out, as
the package ``__init__`` files import nothing of their own.
"""

from __future__ import annotations

from tests.helpers import imports_of, package_modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (each target resolved to its longest prefix
    that is a module of the package)."""
    modules = package_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for imp in imports_of(module, path):
            if imp.target.split(".")[0] == "gigabrain_runtime":
                target = resolve(imp.target)
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_package_has_no_import_circles():
    graph = import_graph()
    circles = cycles(graph)
    described = [
        " <-> ".join(c) + ": " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
        for c in circles
    ]
    assert circles == [], "import circles:\n" + "\n".join(described)


def test_the_cycle_finder_sees_a_circle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_knows_the_layering_it_guards():
    graph = import_graph()
    assert "gigabrain_runtime.hilr.episodes" in graph["gigabrain_runtime.hilr.plot"]
    assert "gigabrain_runtime.hilr.plot" in graph["gigabrain_runtime.hilr.cli"]  # lazy
    assert "gigabrain_runtime.bags" in graph["gigabrain_runtime.calibration.cli"]
