"""The package's modules import each other one way only (no cycle, lazy and type-checking
imports included): import-linter's ``acyclic_siblings`` contract checks siblings package by
package; this also covers a package and its own modules."""

from __future__ import annotations

from typing import Any

import pytest

grimp = pytest.importorskip("grimp")  # installed with import-linter (the lint extra)


def _cycle(graph: Any) -> list[str] | None:
    """One import cycle of ``graph`` (its modules in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph("pytest_co2", cache_dir=None)
    assert _cycle(graph) is None


def test_a_cycle_is_found() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")):
        graph.add_import(importer=importer, imported=imported)
    assert _cycle(graph) == ["p.a", "p.b", "p.c", "p.a"]
