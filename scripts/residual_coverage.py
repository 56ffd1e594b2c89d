#!/usr/bin/env python3
"""How many residual adds convlint understood in a tree of model code, per package.

An add is a `+`, `+=`, `torch.add` or `.add`/`.add_` inside a `forward` method with no literal number as
an operand. It is *understood* when, on some path, both operands are tensors of the same input whose
channels and spatial sizes are known as expressions; otherwise it is *unknown*, with the reason:

- `operand unknown`: an operand was not followed (a module built elsewhere, a loop, an unmodelled call)
- `channels unknown` / `sizes unknown`: both operands were followed but one of these is not known

It then lists what builds the modules the unknown adds read (`self.shortcut = create_shortcut(...)`),
most frequent first: the constructs to model next.

Usage: python scripts/residual_coverage.py CORPUS_DIR [--files a.py b.py ...] [--top N]
"""
from __future__ import annotations

import argparse
import collections
import os
import sys

import libcst as cst

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convlint.analysis import analyse  # noqa: E402
from convlint.engine import decode  # noqa: E402
from convlint.project import Project  # noqa: E402


class _AddFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.adds = []
        self.in_forward = 0
        self.classes = []       # the class around each forward being visited
        self.class_of = {}      # add node -> its class

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "forward":
            self.in_forward += 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "forward":
            self.in_forward -= 1

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self.in_forward and isinstance(node.operator, cst.Add) and not _literal(node.left, node.right):
            self._add(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self.in_forward and isinstance(node.operator, cst.AddAssign) and not _literal(node.value):
            self._add(node)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.in_forward or not isinstance(node.func, cst.Attribute):
            return
        attr = node.func.attr.value
        if attr in ("add", "add_") and node.args and not _literal(*(a.value for a in node.args[:2])):
            if isinstance(node.func.value, cst.Name) and node.func.value.value in ("torch",):
                self._add(node)
            elif attr == "add_" or not (isinstance(node.func.value, cst.Name) and node.func.value.value == "F"):
                self._add(node)

    def _add(self, node) -> None:
        self.adds.append(node)
        self.class_of[id(node)] = self.classes[-1] if self.classes else None


def _code(node) -> str:
    return cst.Module([]).code_for_node(node)


def _callee(expr) -> str:
    """How a module attribute is built, as a short label: the callee's dotted name, or the kind of value."""
    if isinstance(expr, cst.Call):
        text = _code(expr.func)
        return f"{text}(...)" if len(text) <= 40 else "a call"
    if isinstance(expr, (cst.IfExp, cst.BooleanOperation)):
        return "a conditional expression"
    if isinstance(expr, cst.Name):
        return "an argument or local value"
    return type(expr).__name__


def constructs(add, cls) -> list:
    """What builds the modules an unknown add uses: for each ``self.name`` its operands read, the
    right-hand side of ``self.name = ...`` in the class (or where else it comes from)."""
    operands = [add.left, add.right] if isinstance(add, cst.BinaryOperation) else \
        [add.target, add.value] if isinstance(add, cst.AugAssign) else [a.value for a in add.args[:2]]
    names = []
    for operand in operands:
        for n in _walk(operand):
            if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Name) and n.value.value == "self":
                names.append(n.attr.value)
    if not names:
        return ["local tensors only (the forward's own dataflow)"]
    built = {}
    if cls is not None:
        for n in _walk(cls):
            if isinstance(n, cst.Assign):
                for t in n.targets:
                    target = t.target
                    if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and \
                            target.value.value == "self":
                        built.setdefault(target.attr.value, _callee(n.value))
    return [f"self.{name} = {built[name]}" if name in built else "a module set outside the class body "
            "(base class, setattr, loop)" for name in dict.fromkeys(names)]


def _walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def _literal(*nodes) -> bool:
    return any(isinstance(n, (cst.Integer, cst.Float, cst.SimpleString)) for n in nodes)


def classify(path: str, project=None):
    with open(path, "rb") as fh:
        source = decode(fh.read())
    module = cst.parse_module(source)
    finder = _AddFinder()
    module.visit(finder)
    if not finder.adds:
        return []
    analysis = analyse(module, source, None, project, path)
    status = {}
    for event in analysis.residual_adds:
        a, b = event.left, event.right
        if a.channels is None or b.channels is None:
            verdict = "channels unknown"
        elif (a.dims is None and not a.rank_open) or (b.dims is None and not b.rank_open) or \
                (a.dims is None and b.dims is None):
            verdict = "sizes unknown"
        else:
            verdict = "understood"
        prev = status.get(id(event.node))
        if prev != "understood":
            status[id(event.node)] = verdict
    out = []
    for node in finder.adds:
        verdict = status.get(id(node), "operand unknown")
        why = constructs(node, finder.class_of.get(id(node))) if verdict != "understood" else []
        out.append((verdict, why))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--files", nargs="*", default=[], help="also report these files (paths in the corpus)")
    parser.add_argument("--top", type=int, default=25, help="how many unknown constructs to list")
    args = parser.parse_args()
    per_package = collections.defaultdict(collections.Counter)
    per_file = {}
    unknown_constructs = collections.Counter()
    all_files = [os.path.join(d, f) for d, _, fs in os.walk(args.corpus) for f in fs if f.endswith(".py")]
    project = Project(all_files)  # as `convlint check CORPUS` sees it: imports inside it are followed
    for dirpath, dirnames, filenames in os.walk(args.corpus):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, args.corpus)
            package = rel.split(os.sep)[0]
            try:
                verdicts = classify(path, project)
            except Exception as exc:  # noqa: BLE001 - a survey reports, it does not stop
                print(f"{rel}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            per_package[package].update(v for v, _ in verdicts)
            per_file[rel] = collections.Counter(v for v, _ in verdicts)
            for _, why in verdicts:
                unknown_constructs.update(why)

    def row(name: str, c: collections.Counter) -> str:
        total = sum(c.values())
        ok = c["understood"]
        share = f"{100 * ok / total:.0f}%" if total else "-"
        return (f"| {name} | {total} | {ok} | {share} | {c['operand unknown']} | {c['channels unknown']} | "
                f"{c['sizes unknown']} |")

    header = ("| package | residual adds | understood | share | operand unknown | channels unknown | "
              "sizes unknown |\n|---|---|---|---|---|---|---|")
    print(header)
    total = collections.Counter()
    for package in sorted(per_package):
        print(row(package, per_package[package]))
        total.update(per_package[package])
    print(row("TOTAL", total))
    if args.files:
        print()
        print(header.replace("package", "file"))
        for f in args.files:
            print(row(f, per_file.get(f, collections.Counter())))
    print("\nWhat builds the modules the adds not understood use, most frequent first (an add counts once "
          "per module it reads):\n\n| construct | adds |\n|---|---|")
    for construct, n in unknown_constructs.most_common(args.top):
        print(f"| `{construct}` | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
