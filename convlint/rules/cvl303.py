from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from ..analysis import Analysis
from ..diagnostics import Finding
from ..torchlib.events import ChannelUse
from ..analysis.residual import render_poly
from ..symbolic.poly import Poly, prove_unequal
from ..torchlib.flattening import FLATTENED_SIZE
from ._residual_text import built_text
from .base import Replay, Rule


class LinearAfterFlatten(Rule):
    """
    ## What it does
    Flags an `nn.Linear` whose `in_features` differs from the size of the flattened tensor it
    receives (`torch.flatten(x, 1)`, `x.view(x.size(0), -1)`, `nn.Flatten()`), when that size is
    known: after an adaptive pool (which fixes H,W whatever the input), or from a known input size
    given by a `# convlint: input-size=3x32x32` comment on the class (or `input-size` in
    `[tool.convlint]`), carried through every conv and pool with
    `out = floor((in + 2P - D(K-1) - 1) / S) + 1`. Without an input size the flattened size is still
    `C*H*W` with H and W at least 1: a Linear built for fewer features than C, or for a number C does
    not divide, fails whatever the input (a CIFAR ResNet whose last stage gives 512 channels and whose
    classifier takes 256).

    ## Why is this bad
    It is the most asked-about shape error there is: the model builds and fails on its first batch
    with `mat1 and mat2 shapes cannot be multiplied (1x576 and 400x120)`.

    ## Example
    ```python
    # convlint: input-size=3x32x32
    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 3)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            return self.fc1(torch.flatten(x, 1))
    ```

    ## Use instead
    ```python
            self.conv2 = nn.Conv2d(6, 16, 5)           # 16 x 5 x 5 after the pool
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
    ```
    """

    code = "CVL303"
    name = "linear-after-flatten"
    summary = "nn.Linear(in_features) after a flatten disagrees with the flattened size"
    replay = Replay.CHANNEL_USE

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for use in analysis.of(ChannelUse):
            if use.argument != "in_features" or not use.tensor.flat or use.facts.infeasible:
                continue
            if not prove_unequal(use.expected, use.actual, use.facts):
                continue
            expected = render_poly(use.facts.resolve(use.expected))
            actual_poly = use.facts.resolve(use.actual)
            sizes = _flattened_sizes(actual_poly)
            if sizes is None:
                actual = render_poly(actual_poly)
                message = (f"Linear expects in_features={expected} but the flattened input has {actual} features; "
                           f"use nn.Linear({actual}, ...)")
            else:
                channels, letters = sizes
                actual = "*".join([str(channels), *letters])
                message = (f"Linear expects in_features={expected} but the flattened input has {actual} features "
                           f"({' x '.join(letters)}: its size at the flatten, at least 1 each), never {expected}; "
                           f"use nn.Linear({actual}, ...) for the input size, or pool to 1 first "
                           f"(nn.AdaptiveAvgPool{len(letters)}d(1))")
            yield Finding(self.code, message + built_text(use.built_at, use.at or use.layer.node), use.at or use.layer.node,
                          subject=use)


def _flattened_sizes(p: Poly) -> Optional[Tuple[int, List[str]]]:
    """``512*H*W`` as (512, ["H", "W"]) when the features are channels times sizes left unknown."""
    if len(p.terms) != 1:
        return None
    (monomial, coefficient), = p.terms.items()
    letters = []
    for atom in monomial:
        match = FLATTENED_SIZE.fullmatch(atom)
        if match is None:
            return None
        letters.append(match.group(1))
    order = "LDHW"
    return (coefficient, sorted(letters, key=order.index)) if letters else None
