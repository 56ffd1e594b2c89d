"""Wording shared by the residual rules: how the two sides of an add are described."""
from __future__ import annotations

import ast
from typing import Optional, Sequence

from ..analysis.residual import ResidualShapes
from ..symbolic.poly import Poly
from ..torchlib.layers import Conv
from ..torchlib.values import Step


def sides_text(shapes: ResidualShapes) -> str:
    """``branch gives H-2 x W-2, shortcut keeps H x W``."""
    keeps = "keeps" if shapes.shortcut_keeps_shape() else "gives"
    return (f"branch gives {shapes.render_sizes(shapes.branch)}, "
            f"shortcut {keeps} {shapes.render_sizes(shapes.shortcut)}")


def per_dim(values: Sequence[Poly]) -> str:
    """``3`` when every dim agrees, else ``(1, 7)``."""
    texts = [str(v) for v in values]
    if all(t == texts[0] for t in texts):
        return texts[0]
    return "(" + ", ".join(texts) + ")"


def conv_place(step: Step, conv: Conv, built: bool) -> ast.AST:
    """Where a finding about a conv of a residual branch goes: the conv's own call, also when it was
    judged inside a module another one built (its step is placed at that module's call)."""
    return conv.own_call if built and conv.own_call is not None else step.node


def built_text(built_at: Optional[ast.AST], node: Optional[ast.AST] = None) -> str:
    """Where the numbers came from, for what was judged in the forward of a module another built
    (``node``, the finding's place, is that call itself for a module of another file)."""
    line = getattr(built_at, "lineno", None)
    if line is None:
        return ""
    return " (in the module this call builds)" if node is built_at else f" (for the module built on line {line})"
