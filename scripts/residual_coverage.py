#!/usr/bin/env python3
"""How many residual adds convlint understood in a tree of model code, per package.

An add is a `+`, `+=`, `torch.add` or `.add`/`.add_` inside a `forward` method with no literal number as
an operand. It is *understood* when, on some path, both operands are tensors of the same input whose
channels and spatial sizes are known as expressions; otherwise it is *unknown*, with the reason:

- `operand unknown`: an operand was not followed (a module built elsewhere, a loop, an unmodelled call)
- `channels unknown` / `sizes unknown`: both operands were followed but one of these is not known

Usage: python scripts/residual_coverage.py CORPUS_DIR [--files a.py b.py ...]
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

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "forward":
            self.in_forward += 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "forward":
            self.in_forward -= 1

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self.in_forward and isinstance(node.operator, cst.Add) and not _literal(node.left, node.right):
            self.adds.append(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self.in_forward and isinstance(node.operator, cst.AddAssign) and not _literal(node.value):
            self.adds.append(node)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.in_forward or not isinstance(node.func, cst.Attribute):
            return
        attr = node.func.attr.value
        if attr in ("add", "add_") and node.args and not _literal(*(a.value for a in node.args[:2])):
            if isinstance(node.func.value, cst.Name) and node.func.value.value in ("torch",):
                self.adds.append(node)
            elif attr == "add_" or not (isinstance(node.func.value, cst.Name) and node.func.value.value == "F"):
                self.adds.append(node)


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
    return [status.get(id(node), "operand unknown") for node in finder.adds]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--files", nargs="*", default=[], help="also report these files (paths in the corpus)")
    args = parser.parse_args()
    per_package = collections.defaultdict(collections.Counter)
    per_file = {}
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
            per_package[package].update(verdicts)
            per_file[rel] = collections.Counter(verdicts)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
