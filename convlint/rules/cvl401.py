from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from ..analysis import Analysis
from ..diagnostics import Finding, Severity
from ..symbolic.poly import number
from ..torchlib.events import WindowApplied
from ._residual_text import built_text, per_dim
from .base import Rule

_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_UNREAD = {"L": "element", "D": "frame", "H": "row", "W": "column"}


class StridedWindowDropsInput(Rule):
    """
    ## What it does
    For a known input size (a `# convlint: input-size=3x224x224` comment on the class, or
    `input-size` in `[tool.convlint]`), flags a strided conv or pool whose windows do not reach the
    end of its input: in `out = floor((in + 2P - D(K-1) - 1) / S) + 1`, the floor throws away
    `(in + 2P - D(K-1) - 1) % S - P` rows (or columns) of the input that no window ever reads.

    ## Why is this bad
    It is not an error, torch runs it; it is information. The last rows and columns of the image
    never reach the output, and upsampling back (in a U-Net or an FPN) gives a size off by one
    from the skip connection it is added to or concatenated with.

    ## Example
    ```python
    # convlint: input-size=3x32x32
    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, kernel_size=3, stride=2)   # 15x15: row 31 is never read

        def forward(self, x):
            return self.conv(x)
    ```

    ## Use instead
    ```python
            self.conv = nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)  # 16x16, every row read
    ```
    """

    code = "CVL401"
    name = "strided-window-drops-input"
    summary = "a strided conv or pool drops input rows/columns (the floor in the size formula), for a known input size"
    severity = Severity.INFO

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        for applied in analysis.of(WindowApplied):
            finding = self.judge(applied)
            if finding is not None:
                yield finding

    def judge(self, applied: WindowApplied) -> Optional[Finding]:
        if applied.facts.infeasible or not applied.layer.windows:
            return None
        windows = [w.resolved(applied.facts) for w in applied.layer.windows]
        names = _DIM_NAMES.get(len(windows), tuple(f"dim {i}" for i in range(len(windows))))
        dropped: List[Tuple[str, int, str]] = []  # (dim name, rows left unread, how that follows)
        for name, n, w in zip(names, applied.sizes, windows):
            if n is None or w.ceil or any(x.value is None for x in w.params()):
                continue
            k, s, p, d = (number(x) for x in w.params())
            if s <= 1:
                continue
            span = n + 2 * p - d * (k - 1) - 1
            # past the last window lie `span % s` rows of the padded input; the last `p` are padding
            left = span % s - p if span >= 0 else 0
            if left > 0:
                minus = f" - {p}" if p else ""
                dropped.append((name, left, f"({n} + 2*{p} - {d}*({k}-1) - 1) % {s}{minus} = {left}"))
        if not dropped:
            return None
        layer = applied.layer
        what = layer.torch_name or (f"{'Max' if getattr(layer, 'is_max', True) else 'Avg'}Pool{layer.ndim}d"
                                    if layer.kind == "pool" else f"Conv{layer.ndim}d")
        sizes = "x".join("?" if n is None else str(n) for n in applied.sizes)
        if len({(left, how) for _, left, how in dropped}) == 1:
            left, how = dropped[0][1], dropped[0][2]
            unread = _rows(left, [name for name, _, _ in dropped])
            detail = how
        else:
            unread = " and ".join(f"{_rows(left, [name])} of {name}" for name, left, _ in dropped)
            detail = "; ".join(how for _, _, how in dropped)
        message = (f"{what} with stride={per_dim([w.s for w in windows])} never reads the last {unread} "
                   f"of its {sizes} input: {detail}; pad the input or the layer to read them")
        return Finding(self.code, message + built_text(applied.built_at, applied.at or layer.node), applied.at or layer.node,
                       severity=self.severity, subject=applied)


def _rows(left: int, names: List[str]) -> str:
    """``row and column``, ``2 rows``."""
    nouns = " and ".join(_UNREAD.get(name, "element") + ("s" if left > 1 else "") for name in names)
    return nouns if left == 1 else f"{left} {nouns}"
