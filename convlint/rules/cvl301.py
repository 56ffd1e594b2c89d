from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding
from ..torchlib.events import ChannelUse
from ..analysis.residual import render_poly
from ..symbolic.poly import prove_unequal
from ._residual_text import built_text
from .base import Replay, Rule


class ChannelMismatch(Rule):
    """
    ## What it does
    Flags a layer whose `in_channels` (convs), `num_features` (BatchNorm, InstanceNorm) or
    `num_channels` (GroupNorm) differs from the number of channels flowing into it: from the layer
    before it in an `nn.Sequential`, or through `forward`.

    ## Why is this bad
    The model builds, and fails on its first batch:
    `expected input[1, 64, 16, 16] to have 128 channels, but got 64 channels instead` or
    `running_mean should contain 64 elements not 128`.

    ## Example
    ```python
    self.features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
    )
    ```

    ## Use instead
    ```python
    self.features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
    )
    ```
    """

    code = "CVL301"
    name = "channel-mismatch"
    summary = "a layer's in_channels / num_features / num_channels differs from the channels flowing in"
    replay = Replay.CHANNEL_USE

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for use in analysis.of(ChannelUse):
            if (use.argument == "in_features" and use.tensor.flat) or use.facts.infeasible:  # flat: CVL303
                continue
            if not prove_unequal(use.expected, use.actual, use.facts):
                continue
            expected = render_poly(use.facts.resolve(use.expected))
            actual = render_poly(use.facts.resolve(use.actual))
            name = use.layer.torch_name or "layer"
            message = (f"{name} expects {use.argument}={expected} but receives {actual} channels; "
                       f"use {use.argument}={actual}")
            yield Finding(self.code, message + built_text(use.built_at, use.at or use.layer.node), use.at or use.layer.node,
                          subject=use)
