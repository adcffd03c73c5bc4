"""The import graph of ``src/baozi`` has no cycles: every import counts, wherever it is written.

An import inside a function runs later than one at the top of a module, but it still makes the
importing module depend on the imported one, so a loop closed that way is a loop all the same. The
graph counts every ``import`` statement (module level, class level, function level), every
``importlib.import_module("baozi....")`` written as a literal, and every ``"baozi.module:Class"``
string (the lazy registry that picks a backend by URL scheme). It leaves out only the imports under
``if TYPE_CHECKING:``, which never run.

A package's ``__init__`` counts as a module of its own: importing ``baozi.pools.thread`` is an
edge to ``baozi.pools.thread``, not to ``baozi.pools``, since re-exporting submodules from their
package is what a package does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "baozi"

_LAZY_TARGET = re.compile(rf"^({PACKAGE}(?:\.\w+)+):\w+$")


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of the tree except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _calls_import_module(call: ast.Call) -> bool:
    """Whether this is ``importlib.import_module("...")`` with a literal name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (
        name == "import_module"
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def _base(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module a ``from`` import names, with its dots resolved."""
    if not level:
        return target or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()  # a module's siblings live in its package
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([target] if target else []))


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports, in any way the module docstring lists."""
    return {name for name in _names(module, path) if name in modules and name != module}


def _names(module: str, path: Path) -> set[str]:
    """Every module name that ``module`` imports, of the package or not."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node.level, node.module)
            names.add(base)
            # ``from . import x``: x may be a module rather than a name the package defines
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _calls_import_module(node):
            names.add(node.args[0].value)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            lazy = _LAZY_TARGET.match(node.value)
            if lazy:
                names.add(lazy.group(1))
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _loop(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One closed path through the component, for the failure message."""
    start = min(component)
    path, seen = [start], {start}
    while True:
        succ = min(s for s in graph[path[-1]] if s in component)
        if succ in seen:
            return path[path.index(succ) :] + [succ]
        path.append(succ)
        seen.add(succ)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "baozi.backends.memory" in graph["baozi.backends"]  # a "module:Class" string
    assert "baozi.cli.worker" in graph["baozi.cli"]
    assert "baozi.app" not in graph["baozi.jobs"]  # only under TYPE_CHECKING there


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    loops = [
        f"{' -> '.join(_loop(graph, component))} (all in one tangle: {', '.join(sorted(component))})"
        for component in _cycles(graph)
    ]
    assert not loops, "import cycles:\n" + "\n".join(loops)


def _below(module: str, layer: str) -> bool:
    return module == layer or module.startswith(f"{layer}.")


def test_the_library_imports_neither_the_cli_nor_click() -> None:
    for module, path in _modules().items():
        if _below(module, "baozi.cli") or module == "baozi.__main__":
            continue
        names = _names(module, path)
        assert not any(_below(n, "click") or _below(n, "baozi.cli") for n in names), module


def test_the_stores_and_pools_import_nothing_above_them() -> None:
    above = ("baozi.app", "baozi.tasks", "baozi.executor", "baozi.worker", "baozi.supervisor")
    above += ("baozi.sync", "baozi.queues", "baozi.deques", "baozi.beat", "baozi.current")
    above += ("baozi.cli", "baozi.web", "baozi.monitor")
    graph = import_graph()
    for module, imported in graph.items():
        if _below(module, "baozi.backends") or _below(module, "baozi.pools"):
            upward = {n for n in imported if any(_below(n, layer) for layer in above)}
            assert not upward, f"{module} imports {sorted(upward)}"
