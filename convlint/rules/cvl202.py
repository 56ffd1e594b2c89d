from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding, Severity
from ..symbolic.dims import Relation
from ._residual_text import built_text, sides_text
from .base import Replay, Rule


class ShortcutNeedsStride(Rule):
    """
    ## What it does
    Flags a residual add whose branch downsamples (a strided conv or a pool) while the shortcut keeps
    the height and width: "shortcut needs 1x1 conv with stride=S".

    Sizes are compared with torch's formula `floor((in + 2P - D(K-1) - 1) / S) + 1` for every input
    size: when they differ for every size it is an error; when they differ only for some (odd sizes
    under a stride, "31 or 32?") it is a warning that names a failing size.

    A block is judged alone (its arguments as symbols) and also with the numbers each module of the
    file builds it with: a block whose shortcut is always the identity is fine alone, but not where
    the model builds it with `stride=2`; the message then names the line that built it.

    ## Why is this bad
    A stride-2 branch halves H,W; adding it to the un-downsampled input fails at run time:
    `The size of tensor a (32) must match the size of tensor b (64) at non-singleton dimension 3`.

    ## Example
    ```python
    self.conv1 = nn.Conv2d(64, 64, 3, stride=2, padding=1)
    ...
    return self.conv2(self.conv1(x)) + x
    ```

    ## Use instead
    ```python
    self.shortcut = nn.Sequential(nn.Conv2d(64, 64, kernel_size=1, stride=2, bias=False),
                                  nn.BatchNorm2d(64))
    ...
    return self.conv2(self.conv1(x)) + self.shortcut(x)
    ```
    """

    code = "CVL202"
    name = "shortcut-needs-stride"
    summary = "shortcut needs 1x1 conv with stride=S: the branch downsamples, the shortcut keeps H,W"
    replay = Replay.ADD_SIZES

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for shapes in analysis.residuals:
            fixed = shapes.size_if_padded
            if fixed.relation not in (Relation.DIFFER, Relation.SOMETIMES):
                continue
            stride = shapes.branch_stride()
            stride_text = f" with stride={stride}" if stride is not None and stride.value != 1 else ""
            if fixed.relation is Relation.DIFFER:
                message = f"shortcut needs 1x1 conv{stride_text}: {sides_text(shapes)}{built_text(shapes.add.built_at, shapes.add.node)}"
                yield Finding(self.code, message, shapes.add.node, subject=shapes)
            else:
                example = f" (e.g. {fixed.example})" if fixed.example else ""
                message = (f"branch and shortcut sizes differ for some input sizes{example}: {sides_text(shapes)}"
                           f"{built_text(shapes.add.built_at, shapes.add.node)}")

                yield Finding(self.code, message, shapes.add.node, Severity.WARNING, subject=shapes)
