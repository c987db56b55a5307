"""The house rules, checked from the imports: no circle, imports only run downward, and no private name leaves its
module. Function-level imports count too: a circle hidden inside a function is still a circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bench"
# Floors, lowest first. A module may import its own floor or lower ones; the top floor (the API, the CLI, the
# runner, search) may import anything.
FLOORS = [
    ("bench.errors", "bench.paths", "bench.names", "bench.fileio", "bench.version", "bench.threads",
     "bench.declared"),
    ("bench.provenance",),
    ("bench.data",),
    ("bench.models",),
    ("bench.index",),
    ("bench.measure",),
    ("bench.train",),
    ("bench.reports",),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(modules: dict[str, Path]):
    """(importer, imported module, name) for every `from bench... import name` and `import bench...`."""
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        yield name, f"{base}.{alias.name}", None
                    elif base in modules:
                        yield name, base, alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        yield name, alias.name, None


def _floor(module: str) -> int:
    for i, floor in enumerate(FLOORS):
        if any(module == f or module.startswith(f + ".") for f in floor):
            return i
    return len(FLOORS)  # the top: bench, bench.cli, bench.runner, bench.search, ...


def test_no_import_circle():
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for a, b, _ in _imports(modules):
        if a != b:
            edges[a].add(b)
    circles, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                circles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not circles, circles


def test_imports_only_run_downward():
    up = sorted({(a, b) for a, b, _ in _imports(_modules()) if _floor(b) > _floor(a)})
    assert not up, up


def _private(name: str | None) -> bool:
    return bool(name) and name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    leaks = {(a, f"{b}.{n}") for a, b, n in _imports(modules) if _private(n) and a != b}
    for name, path in modules.items():  # module._name, where module is another bench module bound by an import
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in modules:
                        bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr) \
                    and bound.get(node.value.id, name) != name:
                leaks.add((name, f"{bound[node.value.id]}.{node.attr}"))
    assert not sorted(leaks), sorted(leaks)
