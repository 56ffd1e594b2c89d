"""Binding values to assignment targets: names, ``self.`` attributes, items of lists, dicts and
Sequentials, tuples unpacked."""
from __future__ import annotations

import ast
from typing import Dict, List, Optional

from ..torchlib.catalogue import as_poly
from ..torchlib.layers import Opaque, Sequential
from ..torchlib.ops import tensor_size
from ..torchlib.values import UNKNOWN, Layer, LayerV, ShapeV, StrV, TupleV, Value
from .machine import Interpreter
from .modules import assign_self
from .objects import DictV, NamedLayersV, NamespaceV, SelfV
from .state import QUIET, State


def assign(it: Interpreter, target: ast.expr, value: Value, st: State) -> None:
    if type(target) is ast.Name:  # (the exact type first: the commonest assignment)
        st.env[target.id] = value
    elif isinstance(target, ast.Attribute):
        base = it.eval(target.value, st, QUIET)
        if isinstance(base, SelfV):
            assign_self(base, target.attr, value)
        elif isinstance(base, NamespaceV) and base.copied and isinstance(target.value, ast.Name):
            # `block_cnf.stride = 1` on a copy: that copy changes (any other name for it is forgotten)
            for name, held in list(st.env.items()):
                if held is base:
                    st.env[name] = UNKNOWN
            st.env[target.value.id] = NamespaceV({**base.items, target.attr: value}, copied=True, cls=base.cls)
    elif isinstance(target, ast.Subscript):
        replace_item(it, target, value, st)
    elif isinstance(target, (ast.Tuple, ast.List)):
        elements = target.elts
        if isinstance(value, ShapeV):  # `b, c, h, w = x.shape`
            value = TupleV(tuple(tensor_size(value.tensor, k) for k in range(len(elements))))
        items = value.items if isinstance(value, TupleV) and len(value.items) == len(elements) else None
        for i, el in enumerate(elements):
            if isinstance(el, ast.Starred):
                items = None
                assign(it, el.value, UNKNOWN, st)
                continue
            assign(it, el, items[i] if items else UNKNOWN, st)
    elif isinstance(target, ast.Starred):
        assign(it, target.value, UNKNOWN, st)


def index_of(node: ast.Subscript) -> Optional[ast.expr]:
    """The index of ``a[i]``; None for a slice or several indices (``a[1:]``, ``a[i, j]``)."""
    index = node.slice
    return None if isinstance(index, (ast.Slice, ast.Tuple)) else index


def replace_item(it: Interpreter, target: ast.Subscript, value: Optional[Value], st: State) -> None:
    """``layers[3] = conv`` (or ``del layers[-1]`` with ``value`` None) on a list or a Sequential;
    ``kw["padding"] = 1`` on a dict; anything else forgets the container."""
    base_node = target.value
    if not isinstance(base_node, (ast.Name, ast.Attribute)):
        return
    base = it.eval(base_node, st, QUIET)
    index = index_of(target)
    new: Value = UNKNOWN
    if isinstance(base, DictV) and index is not None:
        new = _dict_with(base, it.eval(index, st, QUIET), value)
    elif isinstance(base, NamedLayersV) and base.keys is not None and value is not None and index is not None:
        new = _named_layers_with(base, it.eval(index, st, QUIET), value)
    elif index is not None:
        new = _sequence_with(base, as_poly(it.eval(index, st, QUIET)), value, target)
    assign(it, base_node, new, st)


def _dict_with(base: DictV, key: Value, value: Optional[Value]) -> Value:
    """`kw["padding"] = 1`, `del kw["act"]`"""
    if not isinstance(key, StrV):
        return UNKNOWN
    items: Dict[str, Value] = dict(base.items)
    if value is None:
        items.pop(key.text, None)
    else:
        items[key.text] = value
    return DictV(items)


def _named_layers_with(base: NamedLayersV, key: Value, value: Value) -> Value:
    """`layers["conv"] = ...` on an OrderedDict: in insertion order"""
    if not isinstance(key, StrV) or base.keys is None:
        return UNKNOWN
    keys, items = list(base.keys), list(base.items)
    if key.text in keys:
        items[keys.index(key.text)] = value
    else:
        keys.append(key.text)
        items.append(value)
    return NamedLayersV(tuple(items), tuple(keys))


def _sequence_with(base: Value, k: object, value: Optional[Value], target: ast.Subscript) -> Value:
    """`layers[3] = conv`, `del layers[-1]` on a list or an nn.Sequential"""
    position = getattr(k, "value", None)
    if isinstance(base, TupleV):
        items: Optional[List[Value]] = list(base.items)
    else:
        items = None
    layers: Optional[List[Layer]] = None
    if isinstance(base, LayerV) and isinstance(base.layer, Sequential):
        layers = list(base.layer.layers)
    size = len(items) if items is not None else (len(layers) if layers is not None else None)
    if size is None or not isinstance(position, int) or not -size <= position < size:
        return UNKNOWN
    if items is not None:
        if value is None:
            del items[position]
        else:
            items[position] = value
        return TupleV(tuple(items))
    if layers is not None and isinstance(base, LayerV):
        if value is None:
            del layers[position]
        else:
            layers[position] = value.layer if isinstance(value, LayerV) else Opaque(target)
        return LayerV(Sequential(base.layer.node, layers))
    return UNKNOWN
