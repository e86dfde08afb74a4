"""Import rules of the project's own modules (main, cli, gui, model), read from the source with ``ast``.

Every import counts, at module level and inside functions (a function-level import only hides a cycle
until the function runs); imports under ``if TYPE_CHECKING:`` do not, since they never run.  The rules:
no import cycles; the engine (``model/``) imports no Qt, no argparse and no front end; the command line
(``cli/``) imports no Qt and no GUI; the app's session state (``gui/session.py``) imports no Qt.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "gui", "model")
QT = ("PySide6", "shiboken6")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    files = {"main": ROOT / "main.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node that runs, leaving out the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _nodes(other)
            continue
        yield child
        yield from _nodes(child)


def imported_names(module: str, path: Path) -> set[str]:
    """Dotted names ``module`` imports: ``import a.b`` -> a.b; ``from a import b`` -> a.b (a module or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _resolve(name: str, modules: set[str]) -> str | None:
    """The project module a dotted name lives in (the longest prefix that is a module), or None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def build_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between project modules, every dotted name each module imports)."""
    files = project_files()
    modules = set(files)
    raw = {m: imported_names(m, p) for m, p in files.items()}
    graph = {m: {t for n in names if (t := _resolve(n, modules)) and t != m} for m, names in raw.items()}
    return graph, raw


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Concrete cycles ``[a, b, ..., a]``: for every import inside a strongly connected component (Tarjan),
    the shortest way back, so each import that closes a loop shows in at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles: dict[tuple[str, ...], list[str]] = {}
    for component in components:
        for v in sorted(component):
            for w in sorted(graph[v] & component):
                loop = [v, *_shortest_path(graph, w, v, component)[:-1]]
                turn = loop.index(min(loop))  # one spelling per cycle: start at its smallest name
                loop = loop[turn:] + loop[:turn]
                cycles.setdefault(tuple(loop), [*loop, loop[0]])
    return [cycles[key] for key in sorted(cycles)]


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str, members: set[str]) -> list[str]:
    """Breadth-first path ``[start, ..., goal]`` inside ``members`` (one exists in a component)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        if v == goal:
            return paths[v]
        for w in sorted(graph[v] & members):
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"no path from {start} to {goal}")


@pytest.fixture(scope="module")
def graph():
    return build_graph()


def _offenders(raw: dict[str, set[str]], prefix: str, banned: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {n}" for m, names in raw.items() if m == prefix or m.startswith(f"{prefix}.")
                  for n in names if n.split(".")[0] in banned or any(n.startswith(f"{b}.") for b in banned))


def test_no_import_cycles(graph):
    cycles = find_cycles(graph[0])
    print("\n".join(" -> ".join(c) for c in cycles))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_engine_imports_no_qt_no_argparse_no_front_end(graph):
    offenders = _offenders(graph[1], "model", (*QT, "argparse", "cli", "gui"))
    assert not offenders, "\n".join(offenders)


def test_command_line_imports_no_qt_and_no_gui(graph):
    offenders = _offenders(graph[1], "cli", (*QT, "gui"))
    assert not offenders, "\n".join(offenders)


def test_session_state_is_qt_free(graph):
    if not (ROOT / "gui" / "session.py").is_file():
        pytest.skip("gui/session.py does not exist yet")
    offenders = _offenders(graph[1], "gui.session", QT)
    assert not offenders, "\n".join(offenders)


# -- the checker checks what it should ------------------------------------------
def test_cycle_finder_reports_a_concrete_cycle():
    g = {"a": {"b"}, "b": {"c", "a"}, "c": {"a", "d"}, "d": set(), "e": set()}
    assert find_cycles(g) == [["a", "b", "a"], ["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_imports_under_type_checking_do_not_count_but_function_level_ones_do(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import gui.app\nelse:\n"
                      "    import json\n\ndef f():\n    from model import errors\n    from . import sibling\n")
    assert imported_names("cli.mod", source) == {"typing", "typing.TYPE_CHECKING", "json", "model",
                                                "model.errors", "cli", "cli.sibling"}
