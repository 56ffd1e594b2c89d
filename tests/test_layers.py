"""The package's layers: each imports only the layers below it, with no import cycle.

    source and config -> symbolic math and shapes -> the torch library model (catalogue, ops, library models)
    -> the interpreter -> analysis results -> rules -> confirmation -> the application

Also: no function-level imports (but torch in the confirmation child), rules never walk the syntax
tree, the child imports nothing of convlint, and ``convlint check`` and the flake8 plugin import no
optional dependency. ``python tests/test_layers.py`` prints the graph by layer and its cycles (none).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

PACKAGE = Path(__file__).resolve().parent.parent / "convlint"
LAYERS = [  # (layer, the module-name prefixes in it), from the bottom
    ("source", ["convlint", "convlint.source", "convlint.diagnostics", "convlint.config"]),
    ("symbolic", ["convlint.symbolic"]),
    ("torchlib", ["convlint.torchlib"]),
    ("interpreter", ["convlint.interpreter"]),
    ("analysis", ["convlint.analysis"]),
    ("rules", ["convlint.rules"]),
    ("confirm", ["convlint.confirm"]),
    ("app", ["convlint.app", "convlint.__main__"]),
]
OPTIONAL = ("torch", "libcst", "pygls", "rich")  # imported only where their subcommand starts
FUNCTION_LEVEL_ALLOWED = {
    ("convlint.confirm.child", "torch"),
    # measured: importing the process pool costs an editor's one-file check (0.18 s) 11 ms
    ("convlint.app.cli", "multiprocessing"),
    # measured: importing pathspec costs every start 26 ms (on Python < 3.13, asyncio with it)
    ("convlint.app.discovery", "pathspec"),
}


def modules() -> Dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        found[name] = path
    return found


def layer_of(name: str) -> int:
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    assert best >= 0, f"{name} belongs to no layer"
    return best


def _imports(name: str, path: Path, known: Set[str]) -> Iterator[Tuple[ast.AST, str, bool]]:
    """(node, imported module, at function level) for every import of the module's code."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested |= {id(n) for n in ast.walk(node) if n is not node}
    for node in ast.walk(tree):
        inner = id(node) in nested
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, inner
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import calls`: the submodule
                sub = f"{target}.{alias.name}"
                yield node, sub if sub in known else target, inner


def graph() -> Dict[str, Set[str]]:
    known = modules()
    edges: Dict[str, Set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for _, target, inner in _imports(name, path, set(known)):
            if target in known and not inner:
                edges[name].add(target)
    return edges


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
             for a, targets in graph().items() for b in sorted(targets) if layer_of(b) > layer_of(a)]
    assert wrong == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_no_function_level_imports_but_the_allowed_ones() -> None:
    known = modules()
    found = [(name, target) for name, path in known.items() for _, target, inner in _imports(name, path, set(known))
             if inner and (name, target.split(".")[0]) not in FUNCTION_LEVEL_ALLOWED]
    assert found == []


def test_optional_dependencies_are_imported_nowhere_at_module_level() -> None:
    known = modules()
    found = [(name, target) for name, path in known.items() for _, target, inner in _imports(name, path, set(known))
             if not inner and target.split(".")[0] in OPTIONAL]
    assert found == []


def test_the_confirmation_child_imports_nothing_of_convlint() -> None:
    path = PACKAGE / "confirm" / "child.py"
    imported = [target for _, target, _ in _imports("convlint.confirm.child", path, set())]
    assert [t for t in imported if t.startswith("convlint")] == []
    assert "torch" in imported


def test_the_interpreter_never_imports_rules_reporters_or_torch() -> None:
    known = modules()
    for name, path in known.items():
        if name.startswith("convlint.interpreter"):
            imported = [target for _, target, _ in _imports(name, path, set(known))]
            assert not [t for t in imported if t.startswith(("convlint.rules", "convlint.app", "convlint.confirm"))]
            assert not [t for t in imported if t.split(".")[0] == "torch"]


def test_rules_read_facts_and_never_walk_the_tree() -> None:
    for path in sorted((PACKAGE / "rules").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for walking in ("ast.walk", "iter_child_nodes", "NodeVisitor", "NodeTransformer", "ast.parse"):
            assert walking not in source, f"{path.name} uses {walking}"


def test_check_and_the_flake8_plugin_import_no_optional_dependency() -> None:
    sample = str(PACKAGE.parent / "fixtures" / "sample" / "resnet_bugs.py")
    probe = (
        "import sys\n"
        "from convlint.app.cli import main\n"
        f"main(['check', '--no-confirm', '--no-cache', {sample!r}])\n"
        "from flake8.main.cli import main as flake8\n"
        "try:\n"
        f"    flake8(['--select', 'CVL', '--jobs', '1', {sample!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          env={"CONVLINT_NO_CACHE": "1", "PATH": ""})
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout + proc.stderr
    assert proc.stdout.count("CVL") == 8  # both ran: four findings each


if __name__ == "__main__":
    edges = graph()
    for i, (layer, _) in enumerate(LAYERS):
        names = sorted(n for n in edges if layer_of(n) == i)
        print(f"{layer}: {len(names)} modules, {sum(len(edges[n]) for n in names)} imports inside convlint")
    print(f"cycles: {cycles(edges) or 'none'}")
