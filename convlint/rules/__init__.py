"""The rules, one module each; ``RULES`` lists them by code."""
from __future__ import annotations

from typing import Dict, List

from .base import Rule
from .cvl001 import Unparsable
from .cvl101 import PaddingShouldKeepSize
from .cvl102 import EvenKernelOnResidualBranch
from .cvl201 import ShortcutNeedsChannelProjection
from .cvl202 import ShortcutNeedsStride
from .cvl203 import SkipConcatSize
from .cvl301 import ChannelMismatch
from .cvl302 import SamePaddingWithStride
from .cvl303 import LinearAfterFlatten
from .cvl304 import ChannelsNotDivisibleByGroups
from .cvl401 import StridedWindowDropsInput

ALL_RULES: List[Rule] = [
    Unparsable(), PaddingShouldKeepSize(), EvenKernelOnResidualBranch(), ShortcutNeedsChannelProjection(),
    ShortcutNeedsStride(), SkipConcatSize(), ChannelMismatch(), SamePaddingWithStride(), LinearAfterFlatten(),
    ChannelsNotDivisibleByGroups(), StridedWindowDropsInput(),
]
RULES: Dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}
