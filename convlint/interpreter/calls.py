"""Calls: evaluating a call's arguments, and what calling each kind of value does (registered with
``machine.callee``); in-place changes of lists, dicts and module containers."""
from __future__ import annotations

import ast
from typing import Dict, List, Optional

from ..torchlib import ops
from ..torchlib.layers import ModuleList, Opaque, Sequential
from ..torchlib.values import (
    NONE, UNKNOWN, BoolV, ConstC, Layer, LayerV, ParamV, StrV, TensorV, TupleV, Value, applied, sequence_of,
)
from ..limits import MAX_ITEMS
from .assignment import assign
from .expressions import sequence_items
from .files import defaulted_parameters
from .functions import call_function
from .machine import CallSite, Interpreter, callee, expression
from .modules import flow_of, instantiate, run_composite, self_method
from .objects import ClassV, Composite, DictV, FuncV, NamespaceV, PartialV, SelfMethodV, TensorMethodV
from .operators import OpCall
from .state import Arguments, Context, State

_PURE_METHODS = {"count", "index", "copy", "get", "keys", "values", "items"}
_STRING_METHODS = {"startswith", "endswith", "lower", "upper", "strip", "replace", "split"}
_MODULE_MUTATORS = {"append", "extend", "insert", "add_module", "register_module", "pop", "__setitem__",
                    "__delitem__"}


@expression(ast.Call)
def call(it: Interpreter, node: ast.Call, st: State, ctx: Context) -> Value:
    func_node = node.func
    if type(func_node) is ast.Attribute and func_node.attr not in _PURE_METHODS:
        receiver = func_node.value
        if type(receiver) is ast.Name or type(receiver) is ast.Attribute:
            current = st.env.get(receiver.id) if isinstance(receiver, ast.Name) else it.eval(receiver, st, ctx)
            if isinstance(current, TupleV):
                return mutate_list(it, receiver, node, st, ctx)
            if isinstance(current, DictV) and not isinstance(current, NamespaceV):
                return mutate_dict(it, receiver, current, node, st, ctx)
            if isinstance(current, LayerV) and func_node.attr in _MODULE_MUTATORS:
                return mutate_module(it, receiver, current, node, st, ctx)
            if isinstance(current, StrV) and func_node.attr in _STRING_METHODS:
                return string_method(it, current.text, node, st, ctx)
        elif type(receiver) is ast.Constant and isinstance(receiver.value, str) and func_node.attr in _STRING_METHODS:
            return string_method(it, receiver.value, node, st, ctx)
    elif type(func_node) is ast.Attribute and func_node.attr == "get" and type(func_node.value) is ast.Name:
        current = st.env.get(func_node.value.id)
        if isinstance(current, DictV) and not isinstance(current, NamespaceV):
            return dict_get(it, current, node, st, ctx)
    if id(node) in st.call_results:
        return st.call_results.pop(id(node))
    func = it.eval(node.func, st, ctx)
    if func is UNKNOWN or isinstance(func, ParamV):
        return UNKNOWN
    arguments = call_arguments(it, node, st, ctx)
    result = it.apply(func, arguments, CallSite(node, st, ctx))
    if isinstance(result, LayerV) and type(func_node) is ast.Name and ctx.depth == 0 and it.running \
            and func_node.id in defaulted_parameters(it.running[-1]):
        result.layer.by_default_factory = True  # (analysed alone: no caller chose the factory)
    if isinstance(func, (FuncV, ClassV)):
        # a dict handed to other code may come back changed
        for a in [*node.args, *(k.value for k in node.keywords if k.arg is not None)]:
            if isinstance(a, ast.Name):
                given = st.env.get(a.id)
                if isinstance(given, DictV) and not isinstance(given, NamespaceV):
                    st.env[a.id] = UNKNOWN
    return result


def call_arguments(it: Interpreter, node: ast.Call, st: State, ctx: Context) -> Arguments:
    """Positional and keyword values; ``starred`` when ``*args``/``**kw`` hide some."""
    args: List[Value] = []
    kwargs: Dict[str, Value] = {}
    starred = False
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            value = it.eval(arg.value, st, ctx)
            items = sequence_items(value)  # a list, or the modules of a ModuleList (`nn.Sequential(*stages)`)
            if items is not None:
                args.extend(items)
            else:
                starred = True
            continue
        args.append(it.eval(arg, st, ctx))
    for keyword in node.keywords:
        value = it.eval(keyword.value, st, ctx)
        if keyword.arg is not None:
            kwargs[keyword.arg] = value
        elif isinstance(value, DictV):
            kwargs.update(value.items)  # `**dd` with dd = {"device": device, "dtype": dtype}
        else:
            starred = True
    return Arguments(args, kwargs, starred)


# --- what calling a value does ------------------------------------------------------------------


@callee(PartialV)
def call_partial(it: Interpreter, func: PartialV, arguments: Arguments, site: CallSite) -> Value:
    merged = Arguments(list(func.args) + arguments.positional, {**func.kwargs, **arguments.keywords},
                       arguments.starred)
    return it.apply(func.func, merged, site)


@callee(SelfMethodV)
def call_self_method(it: Interpreter, func: SelfMethodV, arguments: Arguments, site: CallSite) -> Value:
    return self_method(it, func, arguments, site)


@callee(ClassV)
def call_class(it: Interpreter, func: ClassV, arguments: Arguments, site: CallSite) -> Value:
    if arguments.starred:
        return UNKNOWN
    if it.index is it.checked:
        it.checked_calls.add(id(site.node))
    return instantiate(it, func.node, arguments, site, func.closure)


@callee(FuncV)
def call_def(it: Interpreter, func: FuncV, arguments: Arguments, site: CallSite) -> Value:
    if arguments.starred:
        return UNKNOWN
    return call_function(it, func, arguments, site)


@callee(LayerV)
def call_layer(it: Interpreter, func: LayerV, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    layer = func.layer
    if arguments.starred or not args:
        return UNKNOWN
    first, given = args[0], None
    if isinstance(layer, Composite) and isinstance(first, TupleV) and first.items and \
            all(isinstance(m, TensorV) for m in first.items):  # `layer(features)`: a list of maps
        first, given = first.items[0], first
    if not isinstance(first, TensorV):
        return UNKNOWN
    if isinstance(layer, Composite):  # its forward may take more than the tensor
        return run_composite(it, layer, first, site.st, site.ctx, args[1:], arguments.keywords, given)
    return applied(layer, first, layer.apply(first, flow_of(it, site.st, site.ctx)))


@callee(TensorMethodV)
def call_tensor_method(it: Interpreter, func: TensorMethodV, arguments: Arguments, site: CallSite) -> Value:
    if arguments.starred:
        return UNKNOWN
    return ops.call_method(func.tensor, func.name, arguments.positional, arguments.keywords, OpCall(it, site))


# --- containers changed in place ----------------------------------------------------------------


def _plain_arguments(node: ast.Call) -> bool:
    """Only positional arguments, none of them starred."""
    return not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)


def _method_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else ""


def mutate_list(it: Interpreter, receiver: ast.expr, node: ast.Call, st: State, ctx: Context) -> Value:
    """``layers.append(conv)`` / ``layers.extend([...])``; any other change forgets the list."""
    current = it.eval(receiver, st, ctx)
    method = _method_name(node)
    args = [it.eval(a, st, ctx) for a in node.args]
    new: Value = UNKNOWN
    if isinstance(current, TupleV) and _plain_arguments(node):
        if method == "append" and len(args) == 1:
            new = sequence_of(current.items + (args[0],))
        elif method == "extend" and len(args) == 1 and isinstance(args[0], TupleV):
            new = sequence_of(current.items + args[0].items)
    assign(it, receiver, new, st)
    return NONE


def string_method(it: Interpreter, text: str, node: ast.Call, st: State, ctx: Context) -> Value:
    """``arch.startswith("efficientnet_b")``, ``name.lower()``, ``"a.b".split(".")`` on a known text."""
    method = _method_name(node)
    arguments = call_arguments(it, node, st, ctx)
    args = arguments.positional
    if arguments.starred or arguments.keywords:
        return UNKNOWN
    texts = [a.text if isinstance(a, StrV) else None for a in args]
    if method in ("startswith", "endswith") and len(args) == 1:
        given = args[0].items if isinstance(args[0], TupleV) else args  # one text, or a tuple of texts
        affixes = tuple(t.text for t in given if isinstance(t, StrV))
        if len(affixes) != len(given):
            return UNKNOWN
        test = text.startswith if method == "startswith" else text.endswith
        return BoolV(ConstC(test(affixes)))
    if method in ("lower", "upper", "strip") and not args:
        return StrV(getattr(text, method)())
    if method == "replace" and len(args) == 2 and None not in texts:
        return StrV(text.replace(texts[0] or "", texts[1] or ""))
    if method == "split" and len(args) == 1 and texts[0]:
        return sequence_of(tuple(StrV(part) for part in text.split(texts[0], MAX_ITEMS)))
    return UNKNOWN


def dict_get(it: Interpreter, current: DictV, node: ast.Call, st: State, ctx: Context) -> Value:
    """``kwargs.get("norm_layer")``: the value, or the default when the key is missing (a dict value
    holds every key the code gave it, as ``pop`` reads it too)."""
    arguments = call_arguments(it, node, st, ctx)
    args = arguments.positional
    if arguments.starred or arguments.keywords or not 1 <= len(args) <= 2 or not isinstance(args[0], StrV):
        return UNKNOWN
    return current.items.get(args[0].text, args[1] if len(args) == 2 else NONE)


def mutate_dict(it: Interpreter, receiver: ast.expr, current: DictV, node: ast.Call, st: State,
                ctx: Context) -> Value:
    """``kw.setdefault("padding", 1)``, ``kw.update(...)``, ``kw.pop("act", None)`` on a dict of
    keyword arguments; any other method forgets the dict."""
    method = _method_name(node)
    arguments = call_arguments(it, node, st, ctx)
    args, kwargs = arguments.positional, arguments.keywords
    items: Optional[Dict[str, Value]] = dict(current.items)
    result: Value = UNKNOWN
    key = args[0].text if args and isinstance(args[0], StrV) else None
    if arguments.starred or items is None:
        items = None
    elif method == "setdefault" and key is not None and len(args) in (1, 2) and not kwargs:
        result = items.setdefault(key, args[1] if len(args) == 2 else NONE)
    elif method == "update" and len(args) <= 1 and (not args or isinstance(args[0], DictV)):
        first = args[0] if args else None
        items.update(first.items if isinstance(first, DictV) else {})
        items.update(kwargs)
        result = NONE
    elif method == "pop" and key is not None and len(args) in (1, 2) and not kwargs:
        result = items.pop(key, args[1] if len(args) == 2 else UNKNOWN)
    else:
        items = None
    assign(it, receiver, UNKNOWN if items is None else DictV(items), st)
    return result


def mutate_module(it: Interpreter, receiver: ast.expr, current: LayerV, node: ast.Call, st: State,
                  ctx: Context) -> Value:
    """``seq.append(layer)`` / ``seq.add_module(name, layer)`` on an nn.Sequential value,
    ``blocks.append(block)`` / ``blocks.extend([...])`` on an nn.ModuleList."""
    method = _method_name(node)
    args = [it.eval(a, st, ctx) for a in node.args]
    new: Value = UNKNOWN
    layer = args[-1] if args else None
    container = current.layer
    if isinstance(container, Sequential) and _plain_arguments(node) and \
            ((method == "append" and len(args) == 1) or (method in ("add_module", "register_module")
                                                           and len(args) == 2)):
        added: Layer = layer.layer if isinstance(layer, LayerV) else Opaque(ctx.anchor or node)
        new = LayerV(Sequential(container.node, list(container.layers) + [added]))
    elif isinstance(container, ModuleList) and _plain_arguments(node) and len(args) == 1:
        added_items = [layer] if method == "append" else \
            list(layer.items) if method == "extend" and isinstance(layer, TupleV) else None
        layers = [v.layer for v in added_items or () if isinstance(v, LayerV)]
        if added_items is not None and len(layers) == len(added_items):
            new = LayerV(ModuleList(container.node, list(container.items) + layers))
    assign(it, receiver, new, st)
    return NONE
