from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding, Severity
from ..analysis.residual import wrong_padding_convs
from ..symbolic.dims import Relation
from ..symbolic.poly import Poly
from ._residual_text import built_text, conv_place, per_dim, sides_text
from .base import Replay, Rule


class EvenKernelOnResidualBranch(Rule):
    """
    ## What it does
    Flags a conv on a residual branch with an even kernel (more precisely an odd `D(K-1)`): no
    symmetric integer padding keeps its height and width, so the branch cannot match the shortcut.

    A `K x K` kernel eats `K-1` pixels; padding gives back `2P`, always an even number. With `K = 2`
    or `4` the size changes by one pixel whatever `P` is.

    ## Why is this bad
    The residual add `F(x) + x` fails at run time with `The size of tensor a (63) must match the size
    of tensor b (64) ...`, and no value of `padding` fixes it.

    ## Example
    ```python
    self.conv = nn.Conv2d(64, 64, kernel_size=2, padding=1)   # gives H+1 x W+1
    ...
    return self.conv(x) + x
    ```

    ## Use instead
    ```python
    self.conv = nn.Conv2d(64, 64, kernel_size=3, padding=1)   # an odd kernel
    # or keep the even kernel with padding="same" (torch pads asymmetrically), stride 1 only
    self.conv = nn.Conv2d(64, 64, kernel_size=2, padding="same")
    ```
    """

    code = "CVL102"
    name = "residual-even-kernel"
    summary = "even kernel on a residual branch: no symmetric padding keeps H,W"
    replay = Replay.ADD_SIZES

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for shapes in analysis.residuals:
            if shapes.size.relation not in (Relation.DIFFER, Relation.SOMETIMES):
                continue
            severity = Severity.ERROR if shapes.size.relation is Relation.DIFFER else Severity.WARNING
            for step, conv, wins in wrong_padding_convs(shapes):
                spans = [w.d * (w.k - Poly.const(1)) for w in wins]
                if not any(s.value is not None and s.value % 2 for s in spans):
                    continue
                kernel, pad = per_dim([w.k for w in wins]), per_dim([w.p for w in wins])
                message = (f"even kernel_size={kernel} on a residual branch: no symmetric padding keeps H,W "
                           f"(got padding={pad}; {sides_text(shapes)}); use an odd kernel or padding='same'"
                           + built_text(shapes.add.built_at, shapes.add.node))
                yield Finding(self.code, message, conv_place(step, conv, shapes.add.built_at is not None), severity, subject=shapes)
