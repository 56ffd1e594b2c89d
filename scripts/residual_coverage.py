#!/usr/bin/env python3
"""How many residual adds and skip concatenations convlint understood in a tree of model code, per package.

An add is a `+`, `+=`, `torch.add` or `.add`/`.add_` inside a `forward` method with no literal number as
an operand; a concatenation is a `torch.cat`/`torch.concat`/`torch.concatenate` call there. Only those
of classes that build a conv count (a call whose name holds "conv": `nn.Conv2d`, `conv3x3`,
`ConvNormAct`, `create_conv2d`); `--all` counts every class. One is *understood* when, on some path,
both sides are tensors whose channels and spatial sizes are known as expressions and the judgement is
decided (equal, or different for some or every size); otherwise it is *unknown*, with the reason:

- `operand unknown`: an operand was not followed (a module built elsewhere, a loop, an unmodelled call)
- `channels unknown` / `sizes unknown`: both operands were followed but one of these is not known (or
  not decided)

It then lists what builds the modules the unknown adds read (`self.shortcut = create_shortcut(...)`),
most frequent first: the constructs to model next.

Usage: python scripts/residual_coverage.py CORPUS_DIR [--files a.py b.py ...] [--top N] [--all] [--python ENV]
"""
from __future__ import annotations

import argparse
import ast
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convlint.analysis import analyse  # noqa: E402
from convlint.source.decoding import decode  # noqa: E402
from convlint.app.project import Project  # noqa: E402
from convlint.analysis.residual import examine  # noqa: E402
from convlint.source.environment import find_environment  # noqa: E402
from convlint.symbolic.dims import Relation  # noqa: E402
from convlint.torchlib.events import Concatenation, ResidualAdd  # noqa: E402


def find_adds(tree: ast.AST, joins=None) -> list:
    """The adds (or, with ``joins=_is_cat``, the concatenations) of the ``forward`` methods in ``tree``,
    in source order, each with the class around it."""
    joins = joins or _is_add
    adds = []
    stack = [(tree, False, None)]
    while stack:  # not ast.NodeVisitor: a forward of thousands of chained adds nests deeper than Python recurses
        node, in_forward, cls = stack.pop()
        if isinstance(node, ast.ClassDef):
            cls = node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_forward = in_forward or node.name == "forward"
        elif in_forward and joins(node):
            adds.append((node, cls))
        stack.extend((child, in_forward, cls) for child in ast.iter_child_nodes(node))
    return sorted(adds, key=lambda pair: (pair[0].lineno, pair[0].col_offset))


def _is_add(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.Add) and not _literal(node.left, node.right)
    if isinstance(node, ast.AugAssign):
        return isinstance(node.op, ast.Add) and not _literal(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("add", "add_"):
        args = _arguments(node)
        receiver = node.func.value
        return bool(args) and not _literal(*args[:2]) and \
            (node.func.attr == "add_" or not (isinstance(receiver, ast.Name) and receiver.id == "F"))
    return False


def _is_cat(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
        node.func.attr in ("cat", "concat", "concatenate") and isinstance(node.func.value, ast.Name) and \
        node.func.value.id == "torch"


def builds_conv(cls: ast.ClassDef | None) -> bool:
    """Whether the class calls something named like a conv."""
    if cls is None:
        return False
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if "conv" in name.lower():
                return True
    return False


def _arguments(call: ast.Call) -> list:
    return call.args + [keyword.value for keyword in call.keywords]


def _literal(*nodes) -> bool:
    """Whether one of ``nodes`` is a literal number or string (not a bool, None or complex number)."""
    return any(isinstance(n, ast.Constant) and isinstance(n.value, (int, float, str, bytes)) and
               not isinstance(n.value, bool) for n in nodes)


def _callee(expr: ast.expr, source: str) -> str:
    """How a module attribute is built, as a short label: the callee's dotted name, or the kind of value."""
    if isinstance(expr, ast.Call):
        text = ast.get_source_segment(source, expr.func)
        return f"{text}(...)" if len(text) <= 40 else "a call"
    if isinstance(expr, (ast.IfExp, ast.BoolOp)):
        return "a conditional expression"
    if isinstance(expr, ast.Name):
        return "an argument or local value"
    return type(expr).__name__


def _self_attribute(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def constructs(add: ast.AST, cls: ast.ClassDef | None, source: str) -> list:
    """What builds the modules an unknown add uses: for each ``self.name`` its operands read, the
    right-hand side of the last ``self.name = ...`` in the class (or where else it comes from)."""
    operands = [add.left, add.right] if isinstance(add, ast.BinOp) else \
        [add.target, add.value] if isinstance(add, ast.AugAssign) else \
        _arguments(add)[:1] if _is_cat(add) else _arguments(add)[:2]
    names = [name for operand in operands for name in map(_self_attribute, ast.walk(operand)) if name]
    if not names:
        return ["local tensors only (the forward's own dataflow)"]
    built = {}
    if cls is not None:
        assigns = sorted((n for n in ast.walk(cls) if isinstance(n, ast.Assign)),
                         key=lambda n: (n.lineno, n.col_offset))
        for assign in assigns:
            for target in assign.targets:
                if _self_attribute(target):
                    built[target.attr] = _callee(assign.value, source)
    return [f"self.{name} = {built[name]}" if name in built else "a module set outside the class body "
            "(base class, setattr, loop)" for name in dict.fromkeys(names)]


DECIDED = (Relation.EQUAL, Relation.DIFFER, Relation.SOMETIMES)


def _add_verdict(shapes) -> str:
    a, b, facts = shapes.branch, shapes.shortcut, shapes.facts
    if a.channels is None or b.channels is None:
        return "channels unknown"
    if shapes.channels_differ:
        return "understood"  # torch raises whatever the sizes
    if facts.resolve(a.channels) != facts.resolve(b.channels):
        return "channels unknown"  # known, but not decided
    return "understood" if shapes.dims is not None and shapes.size.relation in DECIDED else "sizes unknown"


def _concat_verdict(event) -> str:
    if any(t.channels is None for t in event.tensors):
        return "channels unknown"
    return "understood" if event.sizes()[0].relation in DECIDED else "sizes unknown"


def classify(path: str, project=None, every_class: bool = False, environment=None):
    """For the adds and the concatenations of one file: a list of (kind, verdict, constructs)."""
    with open(path, "rb") as fh:
        source = decode(fh.read())
    module = ast.parse(source)
    joins = [("add", node, cls) for node, cls in find_adds(module)] + \
        [("concat", node, cls) for node, cls in find_adds(module, _is_cat)]
    joins = [(kind, node, cls) for kind, node, cls in joins if every_class or builds_conv(cls)]
    if not joins:
        return []
    analysis = analyse(module, source, None, project, path, environment)
    status = {}

    def keep(node, verdict):
        if status.get(id(node)) != "understood":
            status[id(node)] = verdict

    for event in analysis.of(ResidualAdd):
        shapes = examine(event)
        if shapes is not None:
            keep(event.node, _add_verdict(shapes))
    for event in analysis.of(Concatenation):
        keep(event.node, _concat_verdict(event))
    out = []
    for kind, node, cls in joins:
        verdict = status.get(id(node), "operand unknown")
        out.append((kind, verdict, constructs(node, cls, source) if verdict != "understood" else []))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--files", nargs="*", default=[], help="also report these files (paths in the corpus)")
    parser.add_argument("--top", type=int, default=25, help="how many unknown constructs to list")
    parser.add_argument("--all", action="store_true", help="count the joins of every class, not only conv blocks")
    parser.add_argument("--python", default=None, help="the environment whose libraries are installed, as convlint's")
    args = parser.parse_args()
    environment = find_environment(args.python)
    per_package = {kind: collections.defaultdict(collections.Counter) for kind in ("add", "concat")}
    per_file = collections.defaultdict(collections.Counter)
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
                verdicts = classify(path, project, args.all, environment)
            except Exception as exc:  # noqa: BLE001 - a survey reports, it does not stop
                print(f"{rel}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            for kind, verdict, why in verdicts:
                per_package[kind][package][verdict] += 1
                per_file[rel][verdict] += 1
                unknown_constructs.update(why)

    def row(name: str, c: collections.Counter) -> str:
        total = sum(c.values())
        ok = c["understood"]
        share = f"{100 * ok / total:.0f}%" if total else "-"
        return (f"| {name} | {total} | {ok} | {share} | {c['operand unknown']} | {c['channels unknown']} | "
                f"{c['sizes unknown']} |")

    scope = "every class" if args.all else "classes that build a conv"
    for kind, title in (("add", "residual adds"), ("concat", "concatenations")):
        print(f"\n{title.capitalize()} ({scope}):\n")
        header = (f"| package | {title} | understood | share | operand unknown | channels unknown | "
                  "sizes unknown |\n|---|---|---|---|---|---|---|")
        print(header)
        total = collections.Counter()
        for package in sorted(per_package[kind]):
            print(row(package, per_package[kind][package]))
            total.update(per_package[kind][package])
        print(row("TOTAL", total))
    if args.files:
        print("\n| file | adds and concatenations | understood | share | operand unknown | channels unknown | "
              "sizes unknown |\n|---|---|---|---|---|---|---|")
        for f in args.files:
            print(row(f, per_file.get(f, collections.Counter())))
    print("\nWhat builds the modules the joins not understood use, most frequent first (a join counts once "
          "per module it reads):\n\n| construct | joins |\n|---|---|")
    for construct, n in unknown_constructs.most_common(args.top):
        print(f"| `{construct}` | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
