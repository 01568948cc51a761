"""No import cycles (issue 19, item 4): no module of the package imports, at any level
(function-level imports too), a module that imports it back, directly or through
others.  The graph is read from the source with ``ast``; nothing is imported."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"ase_fuse": ROOT / "ase_fuse", "ase_fuse.calculators": ROOT / "calculators",
            "ase_fuse.generators": ROOT / "generators"}


def modules():
    """``{dotted name: path}`` of every module of the installed layout."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.setdefault(".".join([package] + parts), path)
    return found


def imports(name, path, known):
    """The package modules that module ``name`` imports anywhere in its source.
    ``from pkg import sub`` names the submodule, not the package."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in known]
            out.update(subs)
            if len(subs) < len(node.names) and prefix in known:
                out.add(prefix)          # a name defined in the package itself
    out.discard(name)
    return out


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert "ase_fuse.executors" in graph["ase_fuse.basinhopping"]
    assert "ase_fuse.calculators.pair_terms" in graph["ase_fuse.calculators.gulp_library"]
    assert len(graph) > 50


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_back_into_one_that_imports_it():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    found = cycles(graph)
    detail = ["; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c)
              for c in found]
    assert not found, detail
