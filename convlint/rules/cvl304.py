from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding
from ..symbolic import decide_divisible
from .base import Rule


class ChannelsNotDivisibleByGroups(Rule):
    """
    ## What it does
    Flags a conv whose `in_channels` or `out_channels` is not divisible by `groups`.

    ## Why is this bad
    torch refuses it when the layer is built: `in_channels must be divisible by groups` /
    `out_channels must be divisible by groups`. A grouped conv splits the channels into `groups` equal
    parts.

    ## Example
    ```python
    self.conv = nn.Conv2d(64, 96, kernel_size=3, padding=1, groups=5)
    ```

    ## Use instead
    ```python
    self.conv = nn.Conv2d(64, 96, kernel_size=3, padding=1, groups=4)   # or a divisor of both
    ```
    """

    code = "CVL304"
    name = "groups-divisibility"
    summary = "in_channels or out_channels not divisible by groups"

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for built in analysis.convs:
            conv, facts = built.conv, built.facts
            if conv.groups is None or facts.infeasible:
                continue
            groups = facts.resolve(conv.groups)
            for what, channels in (("in_channels", conv.in_channels), ("out_channels", conv.out_channels)):
                if channels is None:
                    continue
                if decide_divisible(channels, groups, facts) is False:
                    value = facts.resolve(channels)
                    yield Finding(self.code, f"{what}={value} is not divisible by groups={groups}", conv.node)
                    break
