from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding
from ._residual_text import built_text
from .base import Replay, Rule


class ShortcutNeedsChannelProjection(Rule):
    """
    ## What it does
    Flags a residual add whose branch changes the number of channels while the shortcut keeps them
    ("shortcut needs 1x1 conv"). The message names both channel counts and the 1x1 conv (with the
    branch's stride) that the shortcut needs.

    Conditions in the code are taken into account: with
    `if stride != 1 or in_planes != planes: shortcut = <projection> else: shortcut = identity`, the
    identity is only used when `in_planes == planes`, so a branch that ends with `planes * 4` channels
    is still a mismatch there. A block is also judged with the numbers each module of the file builds
    it with (`BasicBlock(64, 128)` with an identity shortcut), and the message names the line that
    built it.

    ## Why is this bad
    `y = F(x) + x` needs the same C,H,W on both sides. When `F` ends with `C_out != C_in` channels the
    add fails at run time: `The size of tensor a (256) must match the size of tensor b (64) at
    non-singleton dimension 1`.

    ## Example
    ```python
    class Block(nn.Module):
        def __init__(self, in_planes, planes):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, padding=1)
            self.conv2 = nn.Conv2d(planes, planes * 4, 1)

        def forward(self, x):
            return self.conv2(self.conv1(x)) + x
    ```

    ## Use instead
    ```python
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes * 4, kernel_size=1, stride=1, bias=False),
                nn.BatchNorm2d(planes * 4),
            )

        def forward(self, x):
            return self.conv2(self.conv1(x)) + self.shortcut(x)
    ```
    """

    code = "CVL201"
    name = "shortcut-needs-projection"
    summary = "shortcut needs 1x1 conv: the branch changes channels, the shortcut keeps them"
    replay = Replay.ADD_CHANNELS

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for shapes in analysis.residuals:
            if not shapes.channels_differ:
                continue
            out_ch = shapes.render_channels(shapes.branch.channels)
            in_ch = shapes.render_channels(shapes.shortcut.channels)
            stride = shapes.branch_stride()
            stride_text = "" if stride is None else f", stride={stride}"
            conv = (f"nn.Conv{shapes.ndim()}d({shapes.channel_name(shapes.shortcut.channels)}, "
                    f"{shapes.channel_name(shapes.branch.channels)}, kernel_size=1{stride_text})")
            if shapes.shortcut_keeps_shape():
                message = (f"shortcut needs 1x1 conv: branch gives {out_ch} channels, shortcut keeps {in_ch}; "
                           f"use {conv}")
            else:
                message = (f"channels differ at the residual add: branch gives {out_ch}, shortcut gives {in_ch}; "
                           f"the shortcut's projection should output {out_ch} channels")
            yield Finding(self.code, message + built_text(shapes.add.built_at, shapes.add.node), shapes.add.node, subject=shapes)
