"""The layering the README's Architecture section states: no import cycle between the
project's modules (counting imports inside functions too), and ``datasets/`` imports
nothing of ``benchmark/`` or ``baselines/``."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("datasets", "benchmark", "baselines")


def _modules() -> dict[str, Path]:
    out = {"run_all": REPO / "run_all.py"}
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*.py"):
            parts = p.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in its file)."""
    mods, graph = _modules(), defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    pkg = base if path.name == "__init__.py" else base[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    module = ".".join([*pkg, *([node.module] if node.module else [])])
                else:
                    module = node.module
                # ``from pkg import sub`` imports the submodule; other names come from pkg
                subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [module, *subs]
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_by_hand():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = import_graph()
    assert "benchmark.methods" in graph and "baselines" in graph["benchmark.methods"]
    assert cycles(graph) == []


def test_datasets_import_nothing_of_the_harness():
    bad = {(m, t) for m, ts in import_graph().items() if m.split(".")[0] == "datasets"
           for t in ts if t.split(".")[0] != "datasets"}
    assert bad == set()
