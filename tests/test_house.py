"""The house rules a newcomer can rely on (the project's conventions; issue #24), checked on the
source with ``ast``:

- a public function (name not starting with ``_``) in ``backend/`` takes at most three
  positional parameters (``self``/``cls`` not counted): the rest after a bare ``*``;
- the modules of ``backend`` import each other without a cycle (module-level imports);
- an import inside a function in ``backend/`` is of a library slow to import that the caller
  may never need (torch, umap, sklearn, scipy submodules, hdbscan, numba, pynndescent, pymatgen,
  matplotlib, plotly, celery, tqdm, or a backend module that imports torch), never of the
  standard library, NumPy or pandas, and has a comment on its line or the line above saying why;
- no module of ``backend/``, ``components/``, ``pages/`` or ``app.py`` is over 500 lines;
- no function outside ``tests/`` and ``bench/`` is over 60 lines, except a page's ``layout``.

Each check is a function of a folder, and the last test runs them on a small bad package to
show that each can fail.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.conftest import PROJECT

MAX_POSITIONAL = 3
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
#: imported at module level, always: cheap, and needed nearly everywhere
CHEAP = frozenset(sys.stdlib_module_names) | {"numpy", "pandas"}

#: known exceptions, each with its reason: code that arrived beside this test, left to the work
#: that owns it. The test fails when one is no longer needed (then remove it here).
EXCEPTIONS: dict[str, str] = {}


def _sources(root: Path, *parts: str):
    for part in parts:
        p = root / part
        if p.is_file():
            yield p
        elif p.is_dir():
            yield from sorted(q for q in p.rglob("*.py") if "__pycache__" not in q.parts)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


# ---- the checks ---------------------------------------------------------------------------------

def positional_heavy_functions(root: Path, package: str = "backend") -> list[str]:
    """Public functions of ``package`` with more than MAX_POSITIONAL positional parameters."""
    found = []
    for path in _sources(root, package):
        for name, fn in _functions(ast.parse(path.read_text())):
            if fn.name.startswith("_"):
                continue
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            if params and params[0] in ("self", "cls"):
                params = params[1:]
            if len(params) > MAX_POSITIONAL:
                found.append(f"{_rel(root, path)}::{name}")
    return found


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(tree: ast.Module):
    """Import statements executed when the module is imported (not in functions or classes'
    methods, not under ``if TYPE_CHECKING``)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
        elif isinstance(node, ast.ClassDef):
            stack.extend(node.body)


def import_graph(root: Path, package: str = "backend") -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports at module level (``from pkg import mod``
    counts as importing the submodule ``pkg.mod``, ``from pkg import name`` as importing ``pkg``)."""
    modules = {_module_name(root, p): p for p in _sources(root, package)}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    anchor = mod.split(".") if is_package else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def import_cycles(root: Path, package: str = "backend") -> list[list[str]]:
    """Cycles of the import graph (one per strongly connected component of two or more
    modules), each as its sorted modules."""
    graph = import_graph(root, package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _function_imports(tree: ast.AST):
    """(import node, first import of its run of consecutive import statements) for every import
    inside a function."""
    for _, fn in _functions(tree):
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if not isinstance(block, list):
                    continue
                first = None
                for stmt in block:
                    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        first = first or stmt
                        yield stmt, first
                    else:
                        first = None


def unexplained_function_imports(root: Path, package: str = "backend") -> list[str]:
    """Imports inside functions of ``package`` that are cheap (belong at the top) or have no
    comment saying why they are there."""
    found = set()
    for path in _sources(root, package):
        lines = path.read_text().splitlines()
        for node, first in _function_imports(ast.parse("\n".join(lines))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            where = f"{_rel(root, path)}:{node.lineno}"
            cheap = [m for m in modules if m.split(".")[0] in CHEAP]
            if cheap:
                found.add(f"{where} imports {', '.join(cheap)} in a function: import it at the top")
            commented = (any("#" in lines[i - 1] for i in range(node.lineno, node.end_lineno + 1))
                         or lines[node.lineno - 2].strip().startswith("#")
                         or lines[first.lineno - 2].strip().startswith("#"))  # a comment above a group
            if not commented:
                found.add(f"{where} imports {', '.join(modules)} in a function without a comment saying why")
    return sorted(found)


def long_modules(root: Path, parts=("backend", "components", "pages", "app.py")) -> list[str]:
    return [_rel(root, p) for p in _sources(root, *parts) if len(p.read_text().splitlines()) > MAX_MODULE_LINES]


def long_functions(root: Path) -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines (decorators not counted) in the project's Python
    files outside tests/ and bench/, except ``layout`` of a page."""
    found = []
    for path in _sources(root, "."):
        rel = _rel(root, path)
        if rel.split("/")[0] in ("tests", "bench") or rel.startswith("."):
            continue
        for name, fn in _functions(ast.parse(path.read_text())):
            if rel.startswith("pages/") and name == "layout":
                continue
            if fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES:
                found.append(f"{rel}::{name}")
    return found


# ---- the project --------------------------------------------------------------------------------

def _check(found: list[str]) -> None:
    unexpected = [f for f in found if f not in EXCEPTIONS]
    assert not unexpected, "\n".join(unexpected)


def test_public_functions_take_the_fourth_parameter_on_by_keyword():
    _check(positional_heavy_functions(PROJECT))


def test_backend_modules_import_each_other_without_a_cycle():
    assert import_cycles(PROJECT) == []


def test_imports_inside_functions_are_heavy_libraries_with_a_reason():
    assert unexplained_function_imports(PROJECT) == []


def test_no_module_over_500_lines():
    _check(long_modules(PROJECT))


def test_no_function_over_60_lines():
    _check(long_functions(PROJECT))


def test_every_exception_is_still_needed():
    found = (set(positional_heavy_functions(PROJECT)) | set(long_modules(PROJECT))
             | set(long_functions(PROJECT)))
    assert set(EXCEPTIONS) <= found, f"no longer needed, remove from EXCEPTIONS: {set(EXCEPTIONS) - found}"


# ---- the checks can fail ------------------------------------------------------------------------

BAD_A = '''"""A module that breaks every rule."""
import os

from pkg import b


def four(a, b, c, d):
    return a


def lazy():
    import json
    import torch
    # torch: only here
    import torch.nn
    return json, torch, os


def fine(a, b, c, *, d):
    import sklearn  # sklearn: ~2 s to import
    return sklearn
'''
BAD_B = '''from pkg.a import fine


class Thing:
    def method(self, a, b, c, d):
        pass

    def _private(self, a, b, c, d):
        pass


def long():
''' + "    x = 1\n" * 60


def test_the_checks_catch_a_bad_package(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text(BAD_A + "\n" * 500)
    (tmp_path / "pkg" / "b.py").write_text(BAD_B)
    assert positional_heavy_functions(tmp_path, "pkg") == ["pkg/a.py::four", "pkg/b.py::Thing.method"]
    assert import_cycles(tmp_path, "pkg") == [["pkg.a", "pkg.b"]]
    assert unexplained_function_imports(tmp_path, "pkg") == [
        "pkg/a.py:12 imports json in a function without a comment saying why",
        "pkg/a.py:12 imports json in a function: import it at the top",
        "pkg/a.py:13 imports torch in a function without a comment saying why",
    ]
    assert long_modules(tmp_path, ("pkg",)) == ["pkg/a.py"]
    assert long_functions(tmp_path) == ["pkg/b.py::long"]
