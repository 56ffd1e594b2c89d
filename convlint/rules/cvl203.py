from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding
from ..symbolic.dims import Relation, render_dims
from ..torchlib.events import Concatenation
from ..torchlib.values import TensorV, spatial_dims
from ._residual_text import built_text
from .base import Replay, Rule

FIXES = "give the convs padding (K-1)/2, crop the larger map, or F.interpolate(x, size=skip.shape[2:])"


class SkipConcatSize(Rule):
    """
    ## What it does
    Flags a concatenation along the channels (`torch.cat([a, b], 1)`, as a UNet's decoder joins its
    upsampled map and the encoder's skip) whose maps differ in height or width.

    Sizes are followed with torch's formulas (`floor((in + 2P - D(K-1) - 1) / S) + 1` for convs and
    pools, the scale factor or size of an upsample), for every input size: a join that fails for every
    size is an error. One that fails only for some (an odd size through a pool and back up: "31 or
    32?") is an error when the input size is known (`input-size` in the config, a
    `# convlint: input-size=3x31x31` comment on the class, or the file's own test call) and that size
    fails; without one it is not reported, as every UNet needs sizes its pools divide.

    ## Why is this bad
    `torch.cat` needs every dim but the joined one to match: `Sizes of tensors must match except in
    dimension 1. Expected size 56 but got size 64 for tensor number 1 in the list.`

    ## Example
    ```python
    self.enc = nn.Conv2d(64, 64, 3)            # valid conv: H-2
    self.up = nn.ConvTranspose2d(128, 64, 2, stride=2)
    ...
    return torch.cat([self.enc(x), self.up(y)], 1)
    ```

    ## Use instead
    ```python
    self.enc = nn.Conv2d(64, 64, 3, padding=1)  # keeps H,W
    ```
    """

    code = "CVL203"
    name = "skip-concat-size"
    summary = "a concatenation joins feature maps of different height or width"
    replay = Replay.CAT_SIZES

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for joined in analysis.of(Concatenation):
            if joined.facts.infeasible:
                continue
            verdict, pair = joined.sizes()
            if pair is None or verdict.relation is not Relation.DIFFER:
                continue  # (sizes that differ for some input sizes only: see the docstring)
            sides = f"{_sizes(pair[0], pair[1], joined)} vs {_sizes(pair[1], pair[0], joined)}"
            yield Finding(self.code, f"concatenated maps differ in size: {sides}; {FIXES}{built_text(joined.built_at, joined.node)}",
                          joined.node, subject=joined)


def _sizes(t: TensorV, other: TensorV, joined: Concatenation) -> str:
    """``H x W``, or the numbers where the input size is known (``31 x 31``)."""
    dims = spatial_dims(t, other)
    if dims is None:
        return "?"
    known = dict(t.known_sizes + other.known_sizes)
    numbers = [d.concrete(known[d.base], joined.facts) if d.base in known else None for d in dims[0]]
    if all(n is not None for n in numbers):
        return " x ".join(map(str, numbers))
    return render_dims(dims[0], joined.facts)
