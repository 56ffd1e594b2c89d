from __future__ import annotations

import ast

from typing import Iterable, List, Optional, Union

from ..analysis import Analysis
from ..diagnostics import Finding, Fix, Severity
from ..analysis.residual import wrong_padding_convs
from ..symbolic.dims import Relation
from ..symbolic.poly import Poly
from ..torchlib.layers import Conv
from ._residual_text import built_text, conv_place, per_dim, sides_text
from .base import Replay, Rule

TWO = Poly.const(2)


class PaddingShouldKeepSize(Rule):
    """
    ## What it does
    Flags a conv on a residual branch whose padding `P` changes the height and width, so the branch's
    H,W no longer match the shortcut's: with stride 1 a conv keeps H,W only when
    `2P = D(K-1)` (D the dilation, K the kernel size), i.e. "padding should be (K-1)/2".

    The output size of a conv is `floor((in + 2P - D(K-1) - 1) / S) + 1`: a 3x3 conv "eats" two
    pixels, and `padding=1` gives them back. Reported only when the add provably fails; when the sizes
    differ only for some input sizes it is a warning.

    ## Why is this bad
    `y = F(x) + x` needs the same C,H,W on both sides. A 3x3 conv with `padding=0` inside the block
    makes `F(x)` two pixels smaller, and the add fails at run time with
    `The size of tensor a (62) must match the size of tensor b (64) at non-singleton dimension 3`.

    ## Example
    ```python
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, kernel_size=3, padding=0)
            self.conv2 = nn.Conv2d(c, c, kernel_size=3, padding=1)

        def forward(self, x):
            return self.conv2(torch.relu(self.conv1(x))) + x
    ```

    ## Use instead
    ```python
            self.conv1 = nn.Conv2d(c, c, kernel_size=3, padding=1)  # (K-1)/2
    ```
    Dilated convs keep the size with `padding=dilation` for a 3x3 kernel (`D(K-1)/2`).
    """

    code = "CVL101"
    name = "residual-padding"
    summary = "padding should be (K-1)/2: a conv on a residual branch changes H,W"
    replay = Replay.ADD_SIZES

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for shapes in analysis.residuals:
            if shapes.size.relation not in (Relation.DIFFER, Relation.SOMETIMES):
                continue
            # (a block built with numbers is judged with them too: where the block alone is judged the
            # same, the two findings are one, at the conv)
            severity = Severity.ERROR if shapes.size.relation is Relation.DIFFER else Severity.WARNING
            for step, conv, wins in wrong_padding_convs(shapes):
                spans = [w.d * (w.k - Poly.const(1)) for w in wins]
                if any(s.value is not None and s.value % 2 for s in spans):
                    continue  # an even kernel: CVL102
                wanted = [s.floordiv(TWO) for s in spans]
                kernel, pad, dil = per_dim([w.k for w in wins]), per_dim([w.p for w in wins]), \
                    per_dim([w.d for w in wins])
                formula = "(K-1)/2" if all(w.d.value == 1 for w in wins) else "D(K-1)/2"
                dilation = "" if dil == "1" else f", dilation={dil}"
                message = (f"padding should be {formula} = {per_dim(wanted)} for kernel_size={kernel}{dilation}, "
                           f"got padding={pad} ({sides_text(shapes)})" + built_text(shapes.add.built_at, shapes.add.node))
                yield Finding(self.code, message, conv_place(step, conv, shapes.add.built_at is not None), severity, _fix(conv, wanted), shapes)



def _fix(conv: Conv, wanted: List[Poly]) -> Optional[Fix]:
    """``padding=1`` in place of the conv's padding argument, when the conv call is the one flagged."""
    if not conv.direct or conv.call is None or any(w.value is None for w in wanted):
        return None
    text = per_dim(wanted)
    call = conv.call
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    for k in call.keywords:
        if k.arg == "padding":
            return Fix(k, f"padding={text}")
    if len(call.args) > 4:
        return Fix(call.args[4], text)
    arguments: List[Union[ast.expr, ast.keyword]] = [*call.args, *call.keywords]
    if not arguments:
        return None
    last = max(arguments, key=lambda a: (a.end_lineno or 0, a.end_col_offset or 0))
    return Fix(last, f", padding={text}", insert_after=True)
