from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ..analysis import Analysis
from ..diagnostics import Finding
from ..symbolic.poly import Poly, prove_greater
from ._residual_text import per_dim
from ..torchlib.events import ConvBuilt
from .base import Replay, Rule, judge_convs


class SamePaddingWithStride(Rule):
    """
    ## What it does
    Flags a conv built with `padding='same'` and a stride greater than 1.

    ## Why is this bad
    torch refuses it when the layer is built:
    `padding='same' is not supported for strided convolutions`. "Same" output size and a stride do
    not go together: a stride shrinks H,W by design.

    ## Example
    ```python
    self.down = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding="same")
    ```

    ## Use instead
    ```python
    self.down = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1)  # (K-1)/2
    ```
    """

    code = "CVL302"
    name = "same-padding-with-stride"
    summary = "padding='same' with stride > 1 (torch rejects it when the layer is built)"
    replay = Replay.BUILD

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        return judge_convs(analysis, self.judge)

    def judge(self, built: ConvBuilt) -> Optional[Finding]:
        conv = built.conv
        if conv.padding != "same" or conv.stride is None or built.facts.infeasible:
            return None
        if not any(prove_greater(s, Poly.const(1), built.facts) for s in conv.stride):
            return None
        stride = per_dim([built.facts.resolve(s) for s in conv.stride])
        return Finding(self.code, f"padding='same' is not supported with stride={stride}; "
                       f"use an explicit padding such as (K-1)/2", conv.node, subject=built)


    def refused_when_built(self, a: Mapping[str, Any]) -> bool:
        return bool(a["padding"] == "same" and max(a["stride"]) > 1)
