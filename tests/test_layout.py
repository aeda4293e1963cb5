"""The architecture's promises, checked on the source: a sans-IO BGP core and a pure route engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "controlplane"
IO_MODULES = {"asyncio", "socket", "time", "selectors", "aiohttp", "aiomqtt", "subprocess"}
# The layers, bottom up: a module may import (transitively) only the project modules its layer allows,
# and the sans-IO layers load no I/O library however deep the chain goes.
LAYERS: dict[str, set[str]] = {
    "controlplane.prefix": set(),
    "controlplane.bgp": {"controlplane.prefix"},
    "controlplane.config": {"controlplane.prefix"},
    "controlplane.engine": {"controlplane.config", "controlplane.prefix", "controlplane.errors"},
    "controlplane.events.event": {"controlplane.engine", "controlplane.config", "controlplane.prefix",
                                  "controlplane.errors"},
    "controlplane.router": {"controlplane.bgp", "controlplane.engine", "controlplane.config", "controlplane.prefix",
                            "controlplane.errors", "controlplane.events.event"},
}
EDGES = {"controlplane.daemon", "controlplane.cli", "controlplane.lab", "controlplane.drg", "controlplane.__main__"}
NO_EDGE = ["controlplane.oci", "controlplane.console", "controlplane.events", "controlplane.control",
           "controlplane.transport", "controlplane.router", "controlplane.render", "controlplane.render_dump",
           "controlplane.queries"]  # these never import an edge
SANS_IO = ["controlplane.prefix", "controlplane.bgp", "controlplane.config", "controlplane.engine",
           "controlplane.events.event", "controlplane.router", "controlplane.render", "controlplane.render_dump",
           "controlplane.errors"]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "bgp").glob("*.py")))
def test_bgp_core_does_no_io(module: str) -> None:
    assert not imports(PACKAGE / "bgp" / module) & IO_MODULES


def test_every_module_opens_with_a_docstring() -> None:
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not missing


def test_importing_the_bgp_core_loads_no_io_or_config_libraries() -> None:
    """A fresh interpreter that imports the sans-IO session has not loaded what the edges use."""
    import subprocess
    import sys

    code = ("import sys, controlplane.bgp.session; "
            "print(' '.join(sorted(m for m in ('asyncio', 'aiohttp', 'aiomqtt', 'pydantic', 'yaml', 'socket') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_the_package_face_still_exports_the_api() -> None:
    import controlplane

    assert {controlplane.Drg.__name__, controlplane.ConfigError.__name__, controlplane.load_config.__name__} == {
        "Drg", "ConfigError", "load_config"}


def _project_imports(path: Path, modules: set[str]) -> set[str]:
    """Every controlplane module a file imports, anywhere in it (function bodies and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
            if node.module in modules:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    return found


def test_no_import_cycle_in_the_package() -> None:
    """Imports flow one way: the import graph of controlplane/ has no cycle (Tarjan's SCCs)."""
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py")}
    graph = {m: _project_imports(p, set(files)) - {m} for m, p in files.items()}
    for m in graph:  # importing controlplane.X runs the package's __init__ first
        if m != "controlplane":
            graph[m].add("controlplane")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert cycles == []


def _graph() -> tuple[dict[str, Path], dict[str, set[str]]]:
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py")}
    return files, {m: _project_imports(p, set(files)) - {m, "controlplane"} for m, p in files.items()}


def _closure(graph: dict[str, set[str]], module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def _package_inits(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts))}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_only_what_is_below_them(layer: str) -> None:
    """Transitively: everything a module of the layer loads is in the layer or in one it may use."""
    files, graph = _graph()
    allowed = {layer, *LAYERS[layer]}
    wrong = {f"{m} -> {dep}" for m in files if _in(m, layer) for dep in _closure(graph, m)
             if not any(_in(dep, a) for a in allowed) and dep not in _package_inits(m)}
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("layer", NO_EDGE)
def test_only_edges_import_the_edges(layer: str) -> None:
    files, graph = _graph()
    wrong = {f"{m} -> {dep}" for m in files if _in(m, layer) for dep in _closure(graph, m) if dep in EDGES}
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("layer", SANS_IO)
def test_sans_io_layers_load_no_io_library_however_deep(layer: str) -> None:
    files, graph = _graph()
    wrong = {f"{m} (via {dep}) imports {lib}" for m in files if _in(m, layer)
             for dep in {m} | _closure(graph, m) for lib in imports(files[dep]) & IO_MODULES}
    assert not wrong, sorted(wrong)



def test_no_module_over_500_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long


def test_no_function_over_60_lines() -> None:
    long = {}
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if (n := node.end_lineno - node.lineno + 1) > 60:
                    long[f"{p.relative_to(PACKAGE)}:{node.name}"] = n
    assert not long
