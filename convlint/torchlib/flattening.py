"""Flattening a feature map: its feature count, as a number when every spatial size is one, else as
the channels times a positive size atom per dim (``512*H*W``), which says enough to tell a Linear
layer's ``in_features`` wrong for every input size."""
from __future__ import annotations

import ast
import re
from typing import Optional

from ..symbolic.dims import Dim, Resize, dim_labels
from ..symbolic.poly import Facts, Poly
from .values import Flow, Step, TensorV, Value


def flatten(t: TensorV, flow: Flow, step: Step) -> Value:
    """``torch.flatten(x, 1)``: the feature count is known when every spatial size is."""
    if t.flat:
        return t
    features: Optional[Poly] = t.channels
    if t.dims is None or features is None:
        features = None
    else:
        letters = dim_labels(len(t.dims)) if 1 <= len(t.dims) <= 3 else ()  # (L; H, W; D, H, W)
        for i, d in enumerate(t.dims):
            size = dim_size(d, t, flow.facts)
            if size is None:
                if not letters:
                    features = None
                    break
                # a size not known as a number is still a whole number of at least 1: the features
                # are a multiple of the channels, and at least as many (`512*H*W` is never 256)
                size = Poly.atom(flattened_size(letters[i], step.node))
                flow.facts.mark_positive(size)
            features = features * size
    return t.then(step, channels=features, dims=(), flat=True)


# ``H[40:14]``: the size H of the map flattened at line 40, column 14 (its own atom per flatten)
FLATTENED_SIZE = re.compile(r"\b([LDHW])\[\d+:\d+\]")


def flattened_size(letter: str, node: ast.AST) -> str:
    return f"{letter}[{getattr(node, 'lineno', 0)}:{getattr(node, 'col_offset', 0)}]"


def dim_size(d: Dim, t: TensorV, facts: Facts) -> Optional[Poly]:
    """A spatial size as a number: after the last resize, or from a known input size."""
    ops = list(d.ops)
    start: Optional[int] = dict(t.known_sizes).get(d.base)
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if isinstance(op, Resize):
            size = facts.resolve(op.size)
            if size.value is None:
                return size if i == len(ops) - 1 else None
            start, ops = size.value, ops[i + 1:]
            break
    if start is None:
        return None
    out = Dim(d.base, tuple(ops)).concrete(start, facts)
    return None if out is None else Poly.const(out)
