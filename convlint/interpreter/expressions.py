"""Expressions: one handler per node type (registered with ``machine.expression``)."""
from __future__ import annotations

import ast
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..symbolic.poly import Poly
from ..source.module_names import dotted
from ..torchlib.catalogue import as_poly
from ..limits import MAX_INT_BITS, MAX_ITEMS, MAX_UNROLL
from ..torchlib.layers import ModuleList, Sequential
from ..torchlib.ops import channel_range, shape_items, tensor_size
from ..torchlib.values import (
    FALSE, NONE, TRUE, UNKNOWN, AndC, BoolV, FloatV, IntV, LayerV, NotC, OrC, ParamV, RefV, ShapeV, StrV, TensorV,
    TupleV, Value, sequence_of,
)
from .assignment import assign, index_of
from .classes import DICT_VIEWS, class_attribute, class_kind
from .conditions import decide
from .files import canonical
from .machine import Interpreter, expression
from .objects import (
    ClassV, Composite, DictV, FuncV, NamespaceV, RangeV, SelfMethodV, SelfV, SuperV, TensorMethodV,
)
from .operators import BIN_OPS, binop, comparison, text_part, to_cond
from .state import Context, State

_NUMBERS: Dict[int, IntV] = {}  # the IntV of each small literal (values never change: one is enough)
_UNDECORATED = {"torch.no_grad", "torch.jit.unused", "torch.jit.ignore"}  # decorators that change nothing


@expression(ast.Name)
def name(it: Interpreter, node: ast.Name, st: State, ctx: Context) -> Value:
    return it.lookup(node.id, st)


@expression(ast.Constant)
def constant(it: Interpreter, node: ast.Constant, st: State, ctx: Context) -> Value:
    value = node.value
    kind = type(value)
    if kind is int:
        assert isinstance(value, int)
        number = _NUMBERS.get(value)
        if number is None:
            if value.bit_length() > MAX_INT_BITS:
                return UNKNOWN  # (past the value budgets of convlint.limits)
            number = IntV(Poly.const(value))
            if -64 <= value <= 4096:
                _NUMBERS[value] = number
        return number
    if isinstance(value, str):
        return StrV(value)
    if kind is bool:
        return BoolV(TRUE if value else FALSE)
    if value is None:
        return NONE
    if kind is float:
        assert isinstance(value, float)
        return FloatV(value) if math.isfinite(value) else UNKNOWN
    return UNKNOWN


@expression(ast.Attribute)
def attribute(it: Interpreter, node: ast.Attribute, st: State, ctx: Context) -> Value:
    return attribute_of(it, it.eval(node.value, st, ctx), node.attr)


def attribute_of(it: Interpreter, base: Value, attr: str) -> Value:
    if isinstance(base, RefV):
        return RefV(canonical(f"{base.qualname}.{attr}"))
    if isinstance(base, SelfV):
        return _self_attribute(it, base, attr)
    if isinstance(base, ClassV):
        return class_attribute(it, base.node, attr)
    if isinstance(base, SuperV):
        return SelfMethodV(base.self_v, f"super.{attr}", base.owner)
    if isinstance(base, TensorV):
        if attr == "shape":
            return ShapeV(base)
        return TensorMethodV(base, attr)
    if isinstance(base, LayerV) and isinstance(base.layer, Composite):
        return _child_attribute(it, base.layer, attr)
    if isinstance(base, LayerV):
        return base.layer.attribute(attr)
    if isinstance(base, DictV) and attr in base.items:  # a namespace-like config
        return base.items[attr]
    if isinstance(base, NamespaceV) and base.cls is not None:  # a config's class: constants, static methods
        with it.within(base.cls):
            return _through_instance(class_attribute(it, base.cls, attr), None)
    if isinstance(base, ParamV) and not attr.startswith("__"):
        return ParamV(f"{base.name}.{attr}")  # `cfg.width`: unknown, but the same at every read
    return UNKNOWN


def _child_attribute(it: Interpreter, child: Composite, attr: str) -> Value:
    """``self.global_pool.feat_mult()``, ``self.encoder.out_channels``: what a module of the analysed
    code holds, as its own ``self`` reads it, when it was built one way only (its methods run on
    that module, not on the caller)."""
    if len(child.variants) != 1 or attr.startswith("__"):
        return UNKNOWN
    instance = child.variants[0].self_v
    with it.within(instance.cls):
        return _self_attribute(it, instance, attr)


def _self_attribute(it: Interpreter, base: SelfV, attr: str) -> Value:
    if attr in base.attrs:
        return base.attrs[attr]
    if attr == "__class__":
        return ClassV(base.cls, closure=base.closure)
    if attr in ("add_module", "register_module") or attr in DICT_VIEWS and class_kind(it, base.cls) == "dict":
        return SelfMethodV(base, attr)
    return _through_instance(class_attribute(it, base.cls, attr), base)


def _through_instance(value: Value, instance: Optional[SelfV]) -> Value:
    """A class attribute as an instance reads it: a method bound to ``instance`` (unknown without one:
    a config's plain methods are not followed), a static method as it is."""
    if isinstance(value, FuncV):
        decorators = {dotted(d) for d in value.node.decorator_list}
        if "staticmethod" in decorators:
            return value
        if decorators - _UNDECORATED or instance is None:
            return UNKNOWN  # classmethods, properties, caches: not modelled
        return FuncV(value.node, instance)
    return value


@expression(ast.BinOp)
def binary(it: Interpreter, node: ast.BinOp, st: State, ctx: Context) -> Value:
    op = BIN_OPS.get(type(node.op))
    if op is None:
        return UNKNOWN
    return binop(it, op, it.eval(node.left, st, ctx), it.eval(node.right, st, ctx), node, st, ctx)


@expression(ast.UnaryOp)
def unary(it: Interpreter, node: ast.UnaryOp, st: State, ctx: Context) -> Value:
    value = it.eval(node.operand, st, ctx)
    op_type = type(node.op)
    if op_type is ast.Not:
        return BoolV(NotC(to_cond(it, value, node.operand)))
    if op_type is ast.USub:
        p = as_poly(value)
        return IntV(-p) if p is not None else (value if isinstance(value, TensorV) else UNKNOWN)
    if op_type is ast.UAdd:
        return value
    return UNKNOWN


@expression(ast.BoolOp)
def boolean(it: Interpreter, node: ast.BoolOp, st: State, ctx: Context) -> Value:
    values = node.values
    is_or = type(node.op) is ast.Or
    if id(node) in st.choices:  # a value `a or b` whose `a` this path decided
        if st.choices[id(node)] == is_or:
            return it.eval(values[0], st, ctx)
        return it.eval(values[1] if len(values) == 2 else rest_of(node), st, ctx)
    parts = tuple(to_cond(it, it.eval(v, st, ctx), v) for v in values)
    return BoolV(OrC(parts) if is_or else AndC(parts))


def rest_of(node: ast.BoolOp) -> ast.BoolOp:
    """``b or c`` of ``a or b or c``, placed where it is in the source (its text names conditions);
    made once and kept on the node."""
    rest = getattr(node, "_convlint_rest", None)
    if isinstance(rest, ast.BoolOp):
        return rest
    rest = ast.BoolOp(op=node.op, values=node.values[1:])
    first, last = node.values[1], node.values[-1]
    rest.lineno, rest.col_offset = first.lineno, first.col_offset
    rest.end_lineno, rest.end_col_offset = last.end_lineno, last.end_col_offset
    setattr(node, "_convlint_rest", rest)
    return rest


@expression(ast.Compare)
def compare(it: Interpreter, node: ast.Compare, st: State, ctx: Context) -> Value:
    return BoolV(comparison(it, node, st, ctx))


@expression(ast.JoinedStr)
def formatted(it: Interpreter, node: ast.JoinedStr, st: State, ctx: Context) -> Value:
    """``f"layer{i + 1}"`` with known parts (module names set with ``setattr``/``add_module``)."""
    parts: List[str] = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
            continue
        if not isinstance(value, ast.FormattedValue) or value.format_spec is not None or value.conversion != -1:
            return UNKNOWN
        part = text_part(it.eval(value.value, st, ctx))
        if part is None:
            return UNKNOWN
        parts.append(str(part))
    return StrV("".join(parts))


@expression(ast.Tuple, ast.List)
def sequence(it: Interpreter, node: Union[ast.Tuple, ast.List], st: State, ctx: Context) -> Value:
    items: List[Value] = []
    for el in node.elts:
        if isinstance(el, ast.Starred):
            inner = it.eval(el.value, st, ctx)
            if isinstance(inner, TupleV) and len(items) + len(inner.items) <= MAX_ITEMS:
                items.extend(inner.items)
                continue
            return UNKNOWN
        items.append(it.eval(el, st, ctx))
    return sequence_of(tuple(items))


@expression(ast.Subscript)
def subscript(it: Interpreter, node: ast.Subscript, st: State, ctx: Context) -> Value:
    base = it.eval(node.value, st, ctx)
    if isinstance(base, TensorV):
        return _tensor_indexed(it, base, node, st, ctx)
    if isinstance(node.slice, ast.Slice):
        return _sliced(it, base, node.slice, st, ctx)
    index_node = index_of(node)
    if index_node is None:
        return UNKNOWN
    index = it.eval(index_node, st, ctx)
    if isinstance(base, DictV) and isinstance(index, StrV):
        return base.items.get(index.text, UNKNOWN)
    if isinstance(base, ParamV) and isinstance(index, StrV):
        return ParamV(f"{base.name}[{index.text!r}]")  # `cfg["width"]`
    i = as_poly(index)
    if i is None or i.value is None:
        return UNKNOWN
    k = i.value
    if isinstance(base, ParamV):
        return ParamV(f"{base.name}[{k}]")  # `dilation[0]`: unknown, but the same at every read
    if isinstance(base, TupleV) and -len(base.items) <= k < len(base.items):
        return base.items[k]
    if isinstance(base, LayerV) and isinstance(base.layer, ModuleList):
        items = base.layer.items
        if -len(items) <= k < len(items):
            return LayerV(items[k])
    if isinstance(base, ShapeV):
        return tensor_size(base.tensor, k)
    if isinstance(base, LayerV) and isinstance(base.layer, Sequential):
        layers = base.layer.layers
        if -len(layers) <= k < len(layers):
            return LayerV(layers[k])
    return UNKNOWN


def _tensor_indexed(it: Interpreter, x: TensorV, node: ast.Subscript, st: State, ctx: Context) -> Value:
    """``x[:, :k]``, ``x[:, a:b, :, :]``, ``x[:, :k, ...]``: a range of channels, every other dim
    whole; anything else (an index, a step, a spatial crop) is unknown."""
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if len(parts) < 2 or not _whole(parts[0]) or not isinstance(parts[1], ast.Slice) or parts[1].step is not None:
        return UNKNOWN
    rest = parts[2:]
    ellipsis = [p for p in rest if isinstance(p, ast.Constant) and p.value is Ellipsis]
    if len(ellipsis) > 1 or not all(_whole(p) or p in ellipsis for p in rest):
        return UNKNOWN
    if rest and not ellipsis and (x.dims is None or x.rank_open or len(rest) > len(x.dims)):
        return UNKNOWN  # (more parts than dims is torch's error, not a range)
    bounds = _slice_bounds(it, parts[1], st, ctx)
    if bounds is None:
        return UNKNOWN
    return channel_range(x, node, bounds[0], bounds[1], st.facts)


def _whole(part: ast.expr) -> bool:
    """``:`` (every index of a dim)."""
    return isinstance(part, ast.Slice) and part.lower is None and part.upper is None and part.step is None


def _sliced(it: Interpreter, base: Value, part: ast.Slice, st: State, ctx: Context) -> Value:
    """``channels[1:]``, ``layers[:-1]``: a list's items between known bounds; ``x.shape[2:]``."""
    if not isinstance(base, (TupleV, ShapeV)):
        return UNKNOWN
    bounds = _slice_bounds(it, part, st, ctx)
    if bounds is None or any(b is not None and b.value is None for b in bounds):
        return UNKNOWN
    lower, upper, step = (None if b is None else b.value for b in bounds)
    if isinstance(base, ShapeV):  # `x.shape[2:]`, `x.size()[-2:]`
        return (shape_items(base.tensor, lower) or UNKNOWN) if lower is not None and upper is None and \
            step is None else UNKNOWN
    if step == 0:
        return UNKNOWN
    return sequence_of(base.items[lower:upper:step])


def _slice_bounds(it: Interpreter, part: ast.Slice, st: State, ctx: Context
                  ) -> Optional[Tuple[Optional[Poly], Optional[Poly], Optional[Poly]]]:
    """A slice's lower bound, upper bound and step as integers (None where it gives none); None when
    one it gives is not an integer."""
    bounds = []
    for bound in (part.lower, part.upper, part.step):
        p = None if bound is None else as_poly(it.eval(bound, st, ctx))
        if bound is not None and p is None:
            return None
        bounds.append(p)
    return bounds[0], bounds[1], bounds[2]


@expression(ast.IfExp)
def conditional(it: Interpreter, node: ast.IfExp, st: State, ctx: Context) -> Value:
    if id(node) in st.choices:
        return it.eval(node.body if st.choices[id(node)] else node.orelse, st, ctx)
    cond = to_cond(it, it.eval(node.test, st, ctx), node.test)
    verdict = decide(cond, st)
    if verdict is True:
        return it.eval(node.body, st, ctx)
    if verdict is False:
        return it.eval(node.orelse, st, ctx)
    a, b = it.eval(node.body, st, ctx), it.eval(node.orelse, st, ctx)
    return a if a == b else UNKNOWN


@expression(ast.NamedExpr)
def walrus(it: Interpreter, node: ast.NamedExpr, st: State, ctx: Context) -> Value:
    value = it.eval(node.value, st, ctx)
    assign(it, node.target, value, st)
    return value


@expression(ast.ListComp, ast.GeneratorExp)
def comprehension(it: Interpreter, node: Union[ast.ListComp, ast.GeneratorExp], st: State, ctx: Context) -> Value:
    """``[Block(64) for _ in range(4)]``: one ``for`` over a known, short sequence, with no ``if``,
    is the list of its items (its variable is the comprehension's own, as in Python 3)."""
    if len(node.generators) != 1:
        return UNKNOWN
    loop = node.generators[0]
    if loop.ifs or loop.is_async:
        return UNKNOWN
    items = loop_items(it, loop.iter, st, ctx)
    if items is None:
        return UNKNOWN
    names = [t.id for t in _names_in(loop.target)]
    saved = {n: st.env[n] for n in names if n in st.env}
    values = []
    try:
        for item in items:
            assign(it, loop.target, item, st)
            values.append(it.eval(node.elt, st, ctx))
    finally:
        for n in names:
            if n in saved:
                st.env[n] = saved[n]
            else:
                st.env.pop(n, None)
    return TupleV(tuple(values))


def _names_in(target: ast.expr) -> List[ast.Name]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for el in target.elts for n in _names_in(el.value if isinstance(el, ast.Starred) else el)]
    return [target] if isinstance(target, ast.Name) else []


@expression(ast.Dict)
def dictionary(it: Interpreter, node: ast.Dict, st: State, ctx: Context) -> Value:
    items: Dict[str, Value] = {}
    for key_node, value_node in zip(node.keys, node.values):
        if key_node is None:  # `{**other}`
            return UNKNOWN
        key = it.eval(key_node, st, ctx)
        if not isinstance(key, StrV):
            return UNKNOWN
        items[key.text] = it.eval(value_node, st, ctx)
    return DictV(items)


def sequence_items(value: Value) -> Optional[Sequence[Value]]:
    """The items of a list or tuple, or the modules of a ModuleList or Sequential, in order."""
    if isinstance(value, TupleV):
        return value.items
    if isinstance(value, LayerV) and isinstance(value.layer, ModuleList):
        return [LayerV(x) for x in value.layer.items]
    if isinstance(value, LayerV) and isinstance(value.layer, Sequential):
        return [LayerV(x) for x in value.layer.layers]
    return None


def loop_items(it: Interpreter, node: ast.expr, st: State, ctx: Context) -> Optional[Sequence[Value]]:
    """The items of a known, short sequence a loop runs over (a list of layers, a ModuleList,
    ``range(4)``); None for anything else."""
    value = it.eval(node, st, ctx.quiet)
    items: Optional[Sequence[Value]] = sequence_items(value)
    if isinstance(value, RangeV):
        numbers = value.numbers
        if numbers is not None and len(numbers) <= MAX_UNROLL:
            items = [IntV(Poly.const(i)) for i in numbers]
    return items if items is not None and len(items) <= MAX_UNROLL else None
