"""The import graph of the project's modules: no cycles, and no function-level imports of project
modules (only optional dependencies such as ray or vllm are imported late). The packages' direction
is tests/test_layout.py's."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("tinyschool", "generators", "filters", "curricula", "trainers", "corpora", "prompts")

def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, modules: dict[str, Path], late_only: bool = False):
    """(target module, line, late) for every import of a project module (not under TYPE_CHECKING)."""
    def walk(node, late):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            inner = late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in modules else child.module for a in child.names]
            for n in names:
                if n.split(".")[0] in PACKAGES and (late or not late_only):
                    yield n if n in modules else n.rsplit(".", 1)[0], child.lineno, late
            yield from walk(child, inner)
    yield from walk(tree, False)


def _graph():
    modules = _modules()
    graph, late = {}, []
    for name, f in modules.items():
        tree = ast.parse(f.read_text(), str(f))
        graph[name] = set()
        for target, line, is_late in _imports(tree, modules):
            if target != name:
                graph[name].add(target)
            if is_late:
                late.append((str(f.relative_to(REPO)), line, target))
    return graph, late


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
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
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_a_late_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("import os\ndef f():\n    from corpora.store import Corpus\n    import ray\n")
    got = list(_imports(tree, {"corpora.store": Path("x")}))
    assert got == [("corpora.store", 3, True)]


def test_no_import_cycles_between_project_modules():
    graph, _ = _graph()
    assert len(graph) > 80  # every module was read
    assert _cycles(graph) == []


def test_no_function_level_imports_of_project_modules():
    _, late = _graph()
    assert late == []
