"""The design rules of docs/design.md, checked on the source (no TensorFlow needed).

* the layers point down: each subpackage imports only the ones below it;
* no import circles between kerasmer's modules;
* no function over 80 lines;
* a function-level import of a kerasmer module says why, in a comment on the line or the line above.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "kerasmer"

# What each layer may import (besides itself).  docs/design.md draws the same picture.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "layers": {"core"},
    "models": {"core", "layers", "data"},
    "viz": {"core"},
    "evaluation": {"core", "data", "viz"},
    "training": {"core", "data", "layers", "models", "evaluation"},
    "export": {"core", "data", "layers", "models"},
    "inference": {"core", "data", "layers", "models", "export", "viz"},
    "cli": {"core", "data", "layers", "models", "evaluation", "training", "export", "inference", "viz"},
}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))


MODULES = {name: (path, tree) for name, path, tree in _modules()}


def _resolve(name: str) -> str | None:
    """The kerasmer module an import names (``kerasmer.data.X.func`` -> ``kerasmer.data.X``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(tree, *, top_level: bool):
    """(line, imported kerasmer module) of the module's imports, top-level ones or those inside functions."""
    nodes = tree.body if top_level else [n for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef,
                                                                                    ast.AsyncFunctionDef))
                                         for n in ast.walk(f)]
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "kerasmer.__version__":  # a string set before any subpackage loads, not a layer
                continue
            if name.split(".")[0] == "kerasmer":
                target = _resolve(name)
                if target:
                    yield node.lineno, target


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_layers_point_down():
    bad = []
    for name, (path, tree) in MODULES.items():
        layer = _layer(name)
        if layer is None:
            continue
        for line, target in _imports(tree, top_level=True):
            other = _layer(target)
            if target == "kerasmer" and layer != "cli":
                bad.append(f"{path.name}:{line} imports the kerasmer package (all models) from layer {layer}")
            elif other is not None and other != layer and other not in ALLOWED[layer]:
                bad.append(f"{name}:{line} ({layer}) imports {target} ({other})")
    assert not bad, "imports against the layer order of docs/design.md:\n" + "\n".join(bad)


def test_no_import_circles():
    graph = {name: {t for _, t in _imports(tree, top_level=True) if t != name}
             for name, (_, tree) in MODULES.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
            # A package importing its own submodules for re-export is not a circle of ideas.
            real = [m for m in component if not any(o.startswith(m + ".") for o in component)]
            if len(component) > 1 and len(real) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def test_no_function_over_80_lines():
    long = [f"{path.relative_to(ROOT.parent)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for name, (path, tree) in MODULES.items() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_function_level_imports_say_why():
    bad = []
    for name, (path, tree) in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, target in _imports(tree, top_level=False):
            here, above = lines[line - 1], lines[line - 2] if line > 1 else ""
            if "#" not in here and not above.strip().startswith("#"):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target} inside a function")
    assert not bad, ("function-level imports of kerasmer modules without a comment saying why "
                     "(optional or heavy imports only):\n" + "\n".join(bad))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_every_layer_exists(layer):
    assert (ROOT / layer / "__init__.py").is_file()
