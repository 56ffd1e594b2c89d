from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ..analysis import Analysis
from ..diagnostics import Finding
from ..symbolic.poly import decide_divisible
from ..torchlib.events import ConvBuilt
from .base import Replay, Rule, judge_convs


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
    replay = Replay.BUILD

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        return judge_convs(analysis, self.judge)

    def judge(self, built: ConvBuilt) -> Optional[Finding]:
        conv, facts = built.conv, built.facts
        if conv.groups is None or facts.infeasible:
            return None
        groups = facts.resolve(conv.groups)
        # torch checks in_channels first: one diagnostic per conv, for the first it rejects
        for what, channels in (("in_channels", conv.in_channels), ("out_channels", conv.out_channels)):
            if channels is not None and decide_divisible(channels, groups, facts) is False:
                value = facts.resolve(channels)
                return Finding(self.code, f"{what}={value} is not divisible by groups={groups}", conv.node,
                               subject=built)
        return None


    def refused_when_built(self, a: Mapping[str, Any]) -> bool:
        return bool(a["in_channels"] % a["groups"] or a["out_channels"] % a["groups"])
