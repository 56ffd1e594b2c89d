"""What a residual add's two sides are: channels, sizes, and which layers made them differ.

The four residual rules (CVL101, CVL102, CVL201, CVL202) read one ``ResidualShapes`` per add, so the
comparison is made once however many rules look at it.
"""
from __future__ import annotations

import re

from dataclasses import dataclass
from typing import List, Optional, Set, Tuple

from ..symbolic.dims import Dim, DimComparison, Relation, Window, render_dims
from ..symbolic.poly import Facts, Poly, prove_unequal
from ..torchlib.events import ResidualAdd, add_sizes, channels_differ
from ..torchlib.flattening import FLATTENED_SIZE
from ..torchlib.layers import Conv, Pool
from ..torchlib.values import Step, StepKind, TensorV

ONE = Poly.const(1)
SHAPE_CHANGING = {StepKind.CONV, StepKind.POOL, StepKind.LINEAR, StepKind.FLATTEN, StepKind.MODULE, StepKind.MERGE,
                  StepKind.CONCAT, StepKind.SEQUENTIAL}


@dataclass
class ResidualShapes:
    add: ResidualAdd
    branch: TensorV
    shortcut: TensorV
    branch_steps: Tuple[Step, ...]
    shortcut_steps: Tuple[Step, ...]
    channels_differ: bool
    size: DimComparison          # the sides' H,W as written
    size_if_padded: DimComparison  # the same with every conv padded to keep its size
    dims: Optional[Tuple[Tuple[Dim, ...], Tuple[Dim, ...]]]

    @property
    def facts(self) -> Facts:
        return self.add.facts

    def render_channels(self, p: Optional[Poly]) -> str:
        """The channels as the source names them, with what this path knows when that differs:
        ``in_planes (= planes here)``."""
        if p is None:
            return "?"
        shown, resolved = self.facts.display(p), self.facts.resolve(p)
        if shown == resolved:
            return render_poly(resolved)
        return f"{render_poly(shown)} (= {render_poly(resolved)} here)"

    def channel_name(self, p: Optional[Poly]) -> str:
        return "?" if p is None else render_poly(self.facts.display(p))

    def render_sizes(self, side: TensorV) -> str:
        if self.dims is None:
            return "?"
        dims = self.dims[0] if side is self.branch else self.dims[1]
        return render_dims(dims, self.facts)

    def branch_stride(self) -> Optional[Poly]:
        """The stride a 1x1 projection needs: the branch's total stride over the shortcut's."""
        b, s = total_stride(self.branch_steps, self.facts), total_stride(self.shortcut_steps, self.facts)
        if b is None or s is None:
            return None
        if s.value == 1:
            return b
        if b == s:
            return ONE
        return None

    def shortcut_keeps_shape(self) -> bool:
        """The shortcut is the identity up to shape-keeping steps (activations, norms, clones)."""
        return not any(s.kind in SHAPE_CHANGING for s in self.shortcut_steps)

    def ndim(self) -> int:
        return len(self.dims[0]) if self.dims else 2


def render_poly(p: Poly) -> str:
    # the channel symbol of a forward argument `x` reads as `C_x` (other brackets are the code's own:
    # `widths[0]`, `cfg['width']`)
    # a flattened size left unknown (`H[40:14]`, named by the flatten's position) reads as `H`
    text = FLATTENED_SIZE.sub(r"\1", str(p))
    return re.sub(r"\bC\[(\w+)\]", r"C_\1", text)


def total_stride(steps: Tuple[Step, ...], facts: Facts) -> Optional[Poly]:
    total = ONE
    for step in steps:
        layer = step.layer
        if isinstance(layer, (Conv, Pool)):
            windows = layer.windows
            if windows is None:
                if isinstance(layer, Conv) and layer.padding == "same":
                    continue
                return None
            total = total * facts.resolve(windows[0].s)
        elif step.kind == StepKind.POOL:
            return None
    return total


def examine(add: ResidualAdd) -> Optional[ResidualShapes]:
    """Compare the two sides of an add; None when the path is impossible."""
    facts = add.facts
    if facts.infeasible:
        return None
    branch, shortcut, bsteps, ssteps = add.sides()
    if branch.flat != shortcut.flat:
        return None
    size, dims = add_sizes(branch, shortcut, facts)
    size_fixed = size
    if size.relation in (Relation.DIFFER, Relation.SOMETIMES):
        size_fixed = add_sizes(branch, shortcut, facts, fix_conv_padding=True)[0]
    return ResidualShapes(add, branch, shortcut, bsteps, ssteps, channels_differ(branch, shortcut, facts), size,
                          size_fixed, dims)


def wrong_padding_convs(shapes: ResidualShapes) -> List[Tuple[Step, Conv, List[Window]]]:
    """The convs on either side whose padding changes H,W: (step, conv, its windows resolved)."""
    out: List[Tuple[Step, Conv, List[Window]]] = []
    seen: Set[int] = set()
    for step in shapes.branch_steps + shapes.shortcut_steps:
        conv = step.layer
        if not isinstance(conv, Conv) or conv.windows is None or id(conv) in seen:
            continue
        seen.add(id(conv))
        facts = shapes.facts
        wins = [w.resolved(facts) for w in conv.windows]
        bad = False
        for w in wins:
            if prove_unequal(w.size_change(), Poly.const(0), facts):
                bad = True
        if bad:
            out.append((step, conv, wins))
    return out
