"""The package's import graph: no cycles between subpackages, lower layers import no higher one.

Read from the source with :mod:`ast` (nothing is imported), so a cycle hidden in a function-level
import counts too; imports under ``if TYPE_CHECKING:`` are left out because they never run.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import stairways

PACKAGE = Path(stairways.__file__).resolve().parent


def _runtime_imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(module, line) of every absolute import outside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "stairways":
                for alias in node.names:
                    yield f"stairways.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno


def subpackage_edges(package: Path = PACKAGE) -> dict[tuple[str, str], list[str]]:
    """Imports from one subpackage of stairways into another, with where each happens."""
    subpackages = {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if len(rel.parts) < 2:
            continue  # top-level modules (config, errors, ...) are not subpackages
        source = rel.parts[0]
        for module, line in _runtime_imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] != "stairways" or len(parts) < 2:
                continue
            target = parts[1]
            if target in subpackages and target != source:
                edges.setdefault((source, target), []).append(f"stairways/{rel}:{line}")
    return edges


def find_cycle(edges: dict[tuple[str, str], list[str]]) -> list[str] | None:
    """One cycle of the graph as a list of nodes (first repeated at the end), or None."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_cycle_finder_reports_a_planted_cycle() -> None:
    edges = {("a", "b"): ["x"], ("b", "c"): ["y"], ("c", "a"): ["z"], ("c", "d"): ["w"]}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    del edges[("c", "a")]
    assert find_cycle(edges) is None


def test_no_import_cycle_between_subpackages() -> None:
    edges = subpackage_edges()
    assert edges, "no imports between subpackages were found: the walk is broken"
    cycle = find_cycle(edges)
    if cycle is not None:
        where = [
            f"{a} -> {b}: " + ", ".join(edges[(a, b)][:3]) for a, b in itertools.pairwise(cycle)
        ]
        raise AssertionError("import cycle between subpackages:\n  " + "\n  ".join(where))


def test_market_core_and_rewards_import_no_higher_layer() -> None:
    edges = subpackage_edges()
    allowed = {"market": set(), "data": set(), "rewards": {"market"}}
    for (source, target), where in edges.items():
        if source in allowed:
            assert target in allowed[source], f"{source} imports {target} at {where}"
