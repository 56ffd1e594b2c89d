"""Operators on values: arithmetic on symbolic integers, elementwise ops on tensors (where residual
adds are found), comparisons and truth values as conditions."""
from __future__ import annotations

import ast
import math
import re
from dataclasses import replace
from typing import Dict, List, Optional, Tuple, Type, Union

from ..limits import MAX_INT_BITS, MAX_ITEMS, MAX_MERGED_STEPS, MAX_STR_CHARS
from ..symbolic.dims import ZERO
from ..symbolic.poly import Poly
from ..torchlib.catalogue import as_poly
from ..torchlib.events import ResidualAdd
from ..torchlib.layers import UNKNOWN_STEP, Sequential
from ..torchlib.ops import OpSite
from ..torchlib.values import (
    FALSE, NONE, TRUE, UNKNOWN, AndC, AtomC, BoolV, CmpC, Cond, ConstC, FloatV, Flow, IntV, LayerV, NoneV, NotC, OrC,
    ParamV, RefV, ShapeV, SpatialSizesV, SpatialSizeV, Step, StepKind, StrV, TensorV, TupleV, Value, sequence_of,
)
from .classes import TORCH_BASES, is_layer_class
from .conditions import SHAPE_TEST, string_is
from .machine import CallSite, Interpreter
from .modules import flow_of, report_join
from .objects import ClassV, DictV, FuncV, NamespaceV, PartialV
from .state import Context, State

BIN_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.Div: "/",
    ast.MatMult: "@",
}
SHAPES = (ShapeV, SpatialSizeV, SpatialSizesV)  # a tensor's shape, or sizes read from it
_CMP_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def binop(it: Interpreter, op: Optional[str], left: Value, right: Value, node: ast.AST, st: State,
          ctx: Context) -> Value:
    if isinstance(left, TensorV) or isinstance(right, TensorV):
        return tensor_binop(it, op, left, right, node, st, ctx)
    if isinstance(left, StrV):
        if op == "%":
            return _formatted(left, right)
        if op == "+" and isinstance(right, StrV) and len(left.text) + len(right.text) <= MAX_STR_CHARS:
            return StrV(left.text + right.text)
        return UNKNOWN
    a, b = as_poly(left), as_poly(right)
    if isinstance(left, FloatV) or isinstance(right, FloatV) or op == "/":
        return float_arithmetic(op, left, right)  # (`/` makes a float of two ints: `divisor / 2`)
    if a is None or b is None:
        if op == "+" and isinstance(left, TupleV) and isinstance(right, TupleV):
            return sequence_of(left.items + right.items)
        if op == "*" and isinstance(left, TupleV) and b is not None and b.value is not None \
                and len(left.items) * b.value <= MAX_ITEMS:
            return TupleV(left.items * max(b.value, 0))
        return UNKNOWN
    return integer(_arithmetic(op, a, b))


def text_part(value: Value) -> Optional[Union[str, int]]:
    """A known string or integer, as Python has it, for a name built from it (``f"layer{i}"``,
    ``"layer%d" % i``); None for anything else (a flag would print as ``True``, not as its number)."""
    if isinstance(value, StrV):
        return value.text
    if isinstance(value, IntV) and value.poly.value is not None:
        return value.poly.value
    return None


_PLAIN_FORMAT = re.compile(r"(?:[^%]|%[dis%])*", re.S)


def _formatted(template: StrV, values: Value) -> Value:
    """``"denselayer%d" % (i + 1)``: a name built from known numbers and strings (plain ``%d``,
    ``%i`` and ``%s`` only: a width could make any size of string)."""
    if not _PLAIN_FORMAT.fullmatch(template.text):
        return UNKNOWN
    items = values.items if isinstance(values, TupleV) else (values,)
    plain = [text_part(item) for item in items]
    if any(p is None for p in plain):
        return UNKNOWN
    try:
        text = template.text % tuple(plain)
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN
    return StrV(text) if len(text) <= MAX_STR_CHARS else UNKNOWN


def number_of(value: Value) -> Optional[float]:
    """A float, or an integer known as a number, as a Python number (else None)."""
    if isinstance(value, FloatV):
        return value.value
    p = as_poly(value)
    return None if p is None or p.value is None else float(p.value)


def float_arithmetic(op: Optional[str], left: Value, right: Value) -> Value:
    """Arithmetic with a float: known when both sides are numbers (and the result a finite float)."""
    x, y = number_of(left), number_of(right)
    if x is None or y is None:
        return UNKNOWN
    try:
        result = {"+": x + y, "-": x - y, "*": x * y}.get(op or "") if op != "/" else (x / y if y else None)
    except OverflowError:
        return UNKNOWN
    return FloatV(result) if result is not None and math.isfinite(result) else UNKNOWN


def _arithmetic(op: Optional[str], a: Poly, b: Poly) -> Optional[Poly]:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return None if b.value == 0 else a.floordiv(b)
    if op == "%":
        return a.mod(b)
    if op == "**" and a.value is not None and b.value is not None and 0 <= b.value \
            and a.value.bit_length() * b.value <= 2 * MAX_INT_BITS:  # (never computes a huge power)
        return Poly.const(a.value ** b.value)
    return None


def integer(p: Optional[Poly]) -> Value:
    """An integer value, or unknown past the value budgets (``convlint.limits``)."""
    return UNKNOWN if p is None or p.oversized else IntV(p)


def tensor_binop(it: Interpreter, op: Optional[str], left: Value, right: Value, node: ast.AST, st: State,
                 ctx: Context) -> Value:
    if isinstance(left, TensorV) and isinstance(right, TensorV):
        join = ResidualAdd(node, left, right, st.facts)
        if op == "+":
            report_join(it, st, ctx, lambda built_at: replace(join, built_at=built_at))
        if join.fails():
            return UNKNOWN  # torch raises here: nothing downstream is judged from it (no cascade)
        return merged(it, left, right, node)
    tensor = left if isinstance(left, TensorV) else right
    if isinstance(tensor, TensorV) and op in ("+", "-", "*", "/", "//", "**"):
        # a scalar or a parameter: same shape (a broadcasting parameter keeps the feature map's)
        return tensor.then(Step(StepKind.KEEP, node))
    return UNKNOWN


def merged(it: Interpreter, a: TensorV, b: TensorV, node: ast.AST) -> TensorV:
    """The result of an elementwise op: the operand that is not a broadcast (size-1) one."""
    base, other = a, b
    if a.channels is not None and a.channels.value == 1 and b.channels is not None:
        base, other = b, a
    # the result depends on both operands: keep the other's own layers in its history too
    shared = base.history.common_past(other.history)
    mine = {id(s) for s in base.history.since(shared)}  # (the shared past is in both)
    extra = tuple(s for s in other.history.since(shared) if id(s) not in mine)
    it.budget.spend(len(extra))
    if len(extra) > MAX_MERGED_STEPS:  # `a, b = a * b, b * a` in a loop would double the history each time
        extra = (UNKNOWN_STEP,)  # (a history convlint cannot replay: no reproducer)
    return base.then(*extra, Step(StepKind.MERGE, node, other_steps=len(extra)),
                     resized_by_default=a.resized_by_default or b.resized_by_default)


class OpCall(OpSite):
    """A torch op called on one path (``convlint.torchlib.ops``)."""

    def __init__(self, it: Interpreter, site: CallSite):
        self.it, self.site, self.node = it, site, site.node

    @property
    def anchor(self) -> ast.AST:
        return self.site.ctx.anchor or self.node

    def flow(self) -> Flow:
        return flow_of(self.it, self.site.st, self.site.ctx)

    def combine(self, op: str, left: Value, right: Value) -> Value:
        return tensor_binop(self.it, op, left, right, self.node, self.site.st, self.site.ctx)


# --- conditions ---------------------------------------------------------------------------------


def comparison(it: Interpreter, node: ast.Compare, st: State, ctx: Context) -> Cond:
    parts: List[Cond] = []
    left = it.eval(node.left, st, ctx)
    left_node: ast.expr = node.left
    for op, comparator in zip(node.ops, node.comparators):
        right = it.eval(comparator, st, ctx)
        parts.append(compare(it, type(op), left, right, left_node, comparator, node))
        left, left_node = right, comparator
    return parts[0] if len(parts) == 1 else AndC(tuple(parts))


def compare(it: Interpreter, op: Type[ast.cmpop], left: Value, right: Value, left_node: ast.AST,
            right_node: ast.AST, whole: ast.AST) -> Cond:
    """``left op right`` for one comparison operator (its ``ast`` class)."""
    if op is ast.Is or op is ast.IsNot:
        cond: Cond
        if right is NONE:
            cond = is_none(it, left, left_node)
        elif left is NONE:
            cond = is_none(it, right, right_node)
        elif isinstance(left, (RefV, ClassV)) and isinstance(right, (RefV, ClassV)):
            cond = ConstC(left == right)  # `type(self.short) is nn.Identity`
        else:
            cond = AtomC(it.code(whole))
        return NotC(cond) if op is ast.IsNot else cond
    if op is ast.In or op is ast.NotIn:
        if isinstance(right, TupleV):
            conds = [compare(it, ast.Eq, left, item, left_node, right_node, whole) for item in right.items]
            cond = OrC(tuple(conds)) if conds else FALSE
            return NotC(cond) if op is ast.NotIn else cond
        return AtomC(it.code(whole))
    sym = _CMP_OPS.get(op)
    if sym in ("==", "!=") and isinstance(left, TupleV) and isinstance(right, TupleV):
        # `self.conv.stride == (1, 1)`: element by element
        if len(left.items) != len(right.items):
            return ConstC(sym == "!=")
        parts = tuple(compare(it, ast.Eq, a, b, left_node, right_node, whole)
                      for a, b in zip(left.items, right.items))
        both = AndC(parts) if parts else TRUE
        return both if sym == "==" else NotC(both)
    if isinstance(left, SHAPES) or isinstance(right, SHAPES) or (
            (left is UNKNOWN or right is UNKNOWN) and re.search(r"\.shape\b|\.size\(", it.code(whole))):
        return AtomC(SHAPE_TEST + it.code(whole))
    if sym is not None and (isinstance(left, FloatV) or isinstance(right, FloatV)):
        x, y = number_of(left), number_of(right)
        if x is None or y is None:
            return AtomC(it.code(whole))
        return ConstC({"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[sym])
    a, b = as_poly(left), as_poly(right)
    if sym is not None and a is not None and b is not None:
        return CmpC(sym, a, b)
    named_text = (left, right) if isinstance(right, StrV) else (right, left)
    if sym in ("==", "!=") and isinstance(named_text[0], ParamV) and isinstance(named_text[1], StrV):
        atom = string_is(named_text[0].name, named_text[1].text)  # the value equals one text at most
        return atom if sym == "==" else NotC(atom)
    if sym in ("==", "!=") and isinstance(left, (StrV, NoneV)) and isinstance(right, (StrV, NoneV)):
        same = left == right
        return ConstC(same if sym == "==" else not same)
    if sym in ("==", "!=") and {builtin_kind(left), builtin_kind(right)} in (
            {"int", "str"}, {"str", "sequence"}, {"class", "str"}):
        return ConstC(sym == "!=")  # `padding == ''` for padding=0, `norm_layer == 'batchnorm'` for a class
    return AtomC(it.code(whole))


def is_none(it: Interpreter, value: Value, node: ast.AST) -> Cond:
    if value is NONE:
        return TRUE
    if isinstance(value, ParamV):
        return AtomC(f"{value.name} is None")
    if value is UNKNOWN:
        return AtomC(f"{it.code(node)} is None")
    return FALSE


def to_cond(it: Interpreter, value: Value, node: ast.AST) -> Cond:
    """The truth of a value, as a condition."""
    if isinstance(value, BoolV):
        return value.cond
    if value is NONE:
        return FALSE
    if isinstance(value, IntV):
        return CmpC("!=", value.poly, ZERO)
    if isinstance(value, FloatV):
        return ConstC(value.value != 0)
    if isinstance(value, StrV):
        return ConstC(bool(value.text))
    if isinstance(value, TupleV):
        return ConstC(bool(value.items))
    if isinstance(value, DictV) and not isinstance(value, NamespaceV):  # `if kwargs:` (its keys are known)
        return ConstC(bool(value.items))
    if isinstance(value, ParamV):
        return AtomC(value.name)
    if isinstance(value, LayerV):
        if isinstance(value.layer, Sequential):
            return ConstC(bool(value.layer.layers))
        return TRUE
    if isinstance(value, (ClassV, FuncV, RefV)):
        return TRUE
    return AtomC(it.code(node))


def builtin_kind(value: Value) -> Optional[str]:
    if isinstance(value, BoolV):
        return "bool"
    if isinstance(value, IntV):
        return "int"
    if isinstance(value, FloatV):
        return "float"
    if isinstance(value, StrV):
        return "str"
    if isinstance(value, TupleV):
        return "sequence"   # a tuple or a list: which one is not kept
    if value is NONE:
        return "none"
    if isinstance(value, TensorV):
        return "tensor"
    if isinstance(value, (ClassV, FuncV, PartialV)) or (isinstance(value, RefV) and is_layer_class(value.qualname)):
        return "class"      # a class or a function (a layer class given as `norm_layer=nn.BatchNorm2d`)
    return None


_SEQUENCE_TYPES = ("typing.Sequence", "collections.abc.Sequence", "typing.Iterable", "collections.abc.Iterable")
_KINDS = ("int", "bool", "str", "sequence", "none", "float", "class", "tensor")
# isinstance(value of this kind, this class): True, False, or absent when it cannot be told
_BUILTIN_INSTANCE: Dict[Tuple[str, str], bool] = {
    **{(kind, "builtins.int"): kind in ("int", "bool") for kind in _KINDS},
    **{(kind, "builtins.bool"): kind == "bool" for kind in ("bool", "str", "sequence", "none", "float", "class")},
    **{(kind, "builtins.float"): kind == "float" for kind in _KINDS},
    **{(kind, "builtins.str"): kind == "str" for kind in _KINDS},
    **{(kind, t): kind in ("sequence", "str") for kind in _KINDS for t in _SEQUENCE_TYPES},
    **{(kind, t): False for kind in ("int", "bool", "str", "none", "float", "class", "tensor")
       for t in ("builtins.tuple", "builtins.list")},
    # DenseNet's layers take a map or a list of maps: `if isinstance(input, Tensor):`
    **{(kind, "torch.Tensor"): kind == "tensor" for kind in _KINDS},
    **{("tensor", t): t in ("typing.Iterable", "collections.abc.Iterable") for t in _SEQUENCE_TYPES},
}


def is_instance(value: Value, cls: Value) -> Optional[bool]:
    """``isinstance(self.short, nn.Identity)`` for a layer convlint built, when it can tell."""
    classes = cls.items if isinstance(cls, TupleV) else (cls,)
    refs = [c for c in classes if isinstance(c, RefV)]
    kind = builtin_kind(value)
    if kind is not None:
        if len(refs) != len(classes):
            return None
        verdicts = [_BUILTIN_INSTANCE.get((kind, c.qualname)) for c in refs]
        if any(v is True for v in verdicts):
            return True
        return False if all(v is False for v in verdicts) else None
    if not isinstance(value, LayerV) or not value.layer.torch_name or len(refs) != len(classes):
        return None
    names = {c.qualname for c in refs}
    if "torch.nn.Module" in names or f"torch.nn.{value.layer.torch_name}" in names:
        return True
    # a torch class by name that is not the layer's own: false unless it could be a base class
    return False if all(is_layer_class(n) and n not in TORCH_BASES for n in names) else None
