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
import ast
import collections
import functools
import io
import os
import re
import sys
import tokenize
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convlint.analysis import analyse  # noqa: E402
from convlint.engine import decode  # noqa: E402
from convlint.project import Project  # noqa: E402


class _AddFinder:
    """The adds of the ``forward`` methods of a module, in source order, each with its class."""

    def __init__(self, source: Optional[str] = None) -> None:
        self.source = source    # tells `"a" "b"` (not a literal) from `"ab"`; without it both are literals
        self.adds = []
        self.in_forward = 0
        self.classes = []       # the class around each forward being visited
        self.class_of = {}      # add node -> its class

    def visit(self, tree: ast.AST) -> None:
        """Walk ``tree`` in source order, calling ``visit_<Type>`` on the way down and ``leave_<Type>`` on
        the way up; without recursion, as a forward of thousands of chained adds is that deep."""
        stack = [(tree, False)]
        while stack:
            node, leaving = stack.pop()
            kind = type(node).__name__
            if leaving:
                getattr(self, "leave_" + kind)(node)
                continue
            visit = getattr(self, "visit_" + kind, None)
            if visit is not None:
                visit(node)
            if hasattr(self, "leave_" + kind):
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name == "forward":
            self.in_forward += 1

    def leave_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name == "forward":
            self.in_forward -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    leave_AsyncFunctionDef = leave_FunctionDef

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if self.in_forward and isinstance(node.op, ast.Add) and not _literal(self.source, node.left, node.right):
            self._add(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.in_forward and isinstance(node.op, ast.Add) and not _literal(self.source, node.value):
            self._add(node)

    def visit_Call(self, node: ast.Call) -> None:
        if not self.in_forward or not isinstance(node.func, ast.Attribute):
            return
        attr = node.func.attr
        if attr not in ("add", "add_"):
            return
        args = _arguments(node)
        if args and not _literal(self.source, *args[:2]):
            if isinstance(node.func.value, ast.Name) and node.func.value.id in ("torch",):
                self._add(node)
            elif attr == "add_" or not (isinstance(node.func.value, ast.Name) and node.func.value.id == "F"):
                self._add(node)

    def _add(self, node) -> None:
        self.adds.append(node)
        self.class_of[id(node)] = self.classes[-1] if self.classes else None


_NEWLINE = re.compile(r"\r\n?|\n")


@functools.lru_cache(maxsize=4)
def _lines(source: str):
    """Where each line of ``source`` starts, and its first newline (the one LibCST writes as ``\\n``)."""
    first = _NEWLINE.search(source)
    return [0] + [m.end() for m in _NEWLINE.finditer(source)], first.group() if first else "\n"


def _offset(source: str, lineno: int, col: int) -> int:
    """The index in ``source`` of an ast position (a line, and a column counted in UTF-8 bytes)."""
    starts, _ = _lines(source)
    start = starts[lineno - 1]
    line = source[start:starts[lineno] if lineno < len(starts) else len(source)]
    return start + (col if line.isascii() else len(line.encode("utf-8")[:col].decode("utf-8", "replace")))


def _text(source: str, start: int, end: int) -> str:
    """``source[start:end]`` as LibCST renders a lone node: a line break between tokens (in brackets,
    after a comment) in the file's usual newline is written ``\\n``; one after a backslash or in a string
    is kept as it is."""
    text = source[start:end]
    _, newline = _lines(source)
    if newline == "\n" or newline not in text:
        return text
    wrapped = "(" + text + ")"
    starts = [0] + [m.end() for m in _NEWLINE.finditer(wrapped)]
    try:
        breaks = [starts[t.start[0] - 1] + t.start[1]
                  for t in tokenize.generate_tokens(io.StringIO(wrapped, newline="").readline)
                  if t.type in (tokenize.NL, tokenize.NEWLINE)]
    except (tokenize.TokenError, SyntaxError):
        return text
    for i in reversed(breaks):
        match = _NEWLINE.match(wrapped, i)
        if match and match.group() == newline:
            wrapped = wrapped[:i] + "\n" + wrapped[match.end():]
    return wrapped[1:-1]


def _code(node: ast.AST, source: str) -> str:
    return _text(source, _offset(source, node.lineno, node.col_offset),
                 _offset(source, node.end_lineno, node.end_col_offset))


def _func_code(call: ast.Call, source: str) -> str:
    """The callee's text with the parentheses around it (``(A if c else B)(x)``), as LibCST has it."""
    func = call.func
    if (call.lineno, call.col_offset) == (func.lineno, func.col_offset):
        return _code(func, source)
    start = _offset(source, call.lineno, call.col_offset)   # the callee's first `(`
    i = end = _offset(source, func.end_lineno, func.end_col_offset)
    while i < len(source) and source[i] != "(":             # up to the arguments' `(`: `)`s, blanks, comments
        if source[i] == "#":
            match = _NEWLINE.search(source, i)
            i = match.start() if match else len(source)
            continue
        if source[i] == ")":
            end = i + 1
        i += 1
    return _text(source, start, end)


def _strings(node: ast.AST, source: Optional[str]) -> int:
    """How many string literals make a str/bytes constant or an f-string (``"a" "b"`` is two)."""
    if source is None:
        return 1
    try:
        tokens = tokenize.generate_tokens(io.StringIO("(" + _code(node, source) + ")").readline)
        return sum(t.type in (tokenize.STRING, getattr(tokenize, "FSTRING_START", -1)) for t in tokens) or 1
    except (tokenize.TokenError, SyntaxError):
        return 1


def _cst_name(expr: ast.AST, source: str) -> str:
    """The LibCST class of an expression, the name the listing has always shown for it."""
    if isinstance(expr, ast.Constant):
        value = expr.value
        if isinstance(value, (str, bytes)):
            return "SimpleString" if _strings(expr, source) == 1 else "ConcatenatedString"
        if value is Ellipsis:
            return "Ellipsis"
        return "Imaginary" if isinstance(value, complex) else "Float" if isinstance(value, float) else "Integer"
    if isinstance(expr, ast.JoinedStr):
        return "FormattedString" if _strings(expr, source) == 1 else "ConcatenatedString"
    return {ast.BinOp: "BinaryOperation", ast.UnaryOp: "UnaryOperation", ast.Compare: "Comparison",
            ast.YieldFrom: "Yield"}.get(type(expr), type(expr).__name__)


def _callee(expr, source: str) -> str:
    """How a module attribute is built, as a short label: the callee's dotted name, or the kind of value."""
    if isinstance(expr, ast.Call):
        text = _func_code(expr, source)
        return f"{text}(...)" if len(text) <= 40 else "a call"
    if isinstance(expr, (ast.IfExp, ast.BoolOp)):
        return "a conditional expression"
    if isinstance(expr, ast.Name) or (isinstance(expr, ast.Constant) and
                                      (expr.value is None or isinstance(expr.value, bool))):
        return "an argument or local value"  # None, True and False are names to LibCST
    return _cst_name(expr, source)


def constructs(add, cls, source: str) -> list:
    """What builds the modules an unknown add uses: for each ``self.name`` its operands read, the
    right-hand side of ``self.name = ...`` in the class (or where else it comes from)."""
    operands = [add.left, add.right] if isinstance(add, ast.BinOp) else \
        [add.target, add.value] if isinstance(add, ast.AugAssign) else _arguments(add)[:2]
    names = []
    for operand in operands:
        for n in _walk(operand):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self":
                names.append(n.attr)
    if not names:
        return ["local tensors only (the forward's own dataflow)"]
    built = {}
    if cls is not None:
        for n in _walk(cls):
            if isinstance(n, ast.Assign):
                for target in n.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and \
                            target.value.id == "self":
                        built.setdefault(target.attr, _callee(n.value, source))
    return [f"self.{name} = {built[name]}" if name in built else "a module set outside the class body "
            "(base class, setattr, loop)" for name in dict.fromkeys(names)]


def _by_position(nodes) -> list:
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def _children(node: ast.AST) -> list:
    """The child nodes of ``node`` in source order, as LibCST lists them (``ast`` puts an IfExp's test
    before its body, a dict's keys before its values, decorators after the body, keyword arguments
    after the positional ones, defaults after the parameters)."""
    if isinstance(node, ast.IfExp):
        return [node.body, node.test, node.orelse]
    if isinstance(node, ast.Dict):
        return [n for pair in zip(node.keys, node.values) for n in pair if n is not None]
    if isinstance(node, ast.Call):
        return [node.func] + _by_position(node.args + node.keywords)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.decorator_list + getattr(node, "type_params", []) + [node.args] + \
            ([node.returns] if node.returns else []) + node.body
    if isinstance(node, ast.ClassDef):
        return node.decorator_list + getattr(node, "type_params", []) + \
            _by_position(node.bases + node.keywords) + node.body
    if isinstance(node, ast.arguments):
        return _by_position(ast.iter_child_nodes(node))
    return list(ast.iter_child_nodes(node))


def _walk(node):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


def _arguments(call: ast.Call) -> list:
    """The values of a call's arguments in source order, starred and keyword ones included."""
    return [a.value if isinstance(a, (ast.Starred, ast.keyword)) else a
            for a in _by_position(call.args + call.keywords)]


def _literal(source: Optional[str], *nodes) -> bool:
    """Whether one of ``nodes`` is a literal number or string (not a bool, None, complex or f-string, nor
    ``"a" "b"``: what LibCST calls an Integer, a Float or a SimpleString)."""
    return any(isinstance(n, ast.Constant) and isinstance(n.value, (int, float, str, bytes)) and
               not isinstance(n.value, bool) and
               (not isinstance(n.value, (str, bytes)) or _strings(n, source) == 1) for n in nodes)


def classify(path: str, project=None):
    with open(path, "rb") as fh:
        source = decode(fh.read())
    module = ast.parse(source)
    finder = _AddFinder(source)
    finder.visit(module)
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
        why = constructs(node, finder.class_of.get(id(node)), source) if verdict != "understood" else []
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
