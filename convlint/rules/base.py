"""The shape every rule has: a code, a one-line summary, its documentation, and ``check``."""
from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Optional, Set

from ..enums import StrEnum

from ..analysis import Analysis
from ..diagnostics import Finding, Severity
from ..torchlib.events import ConvBuilt


class Replay(StrEnum):
    """How torch reproduces a rule's findings (``convlint.confirm`` builds the program from the
    finding's subject)."""

    NONE = "none"
    ADD_SIZES = "add-sizes"        # branch(t) + shortcut(t) fails: the sides' sizes differ
    ADD_CHANNELS = "add-channels"  # branch(t) + shortcut(t) fails: the sides' channels differ
    ADD_ANY = "add"                # branch(t) + shortcut(t), replayed with any values the facts allow
    CAT_SIZES = "cat-sizes"        # torch.cat([a(t), b(t)], 1) fails: the maps' sizes differ
    CHANNEL_USE = "channel-use"    # layer(prefix(x)) fails: the layer expects other channels or features
    BUILD = "build"                # building the layer fails (``refused_when_built`` says for which numbers)


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    replay: ClassVar[Replay] = Replay.NONE

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        raise NotImplementedError

    def refused_when_built(self, a: Mapping[str, Any]) -> bool:
        """For ``Replay.BUILD``: whether torch refuses to build the layer with these concrete arguments."""
        return False

    @classmethod
    def documentation(cls) -> str:
        return f"# {cls.name} ({cls.code})\n\n" + inspect.cleandoc(cls.__doc__ or "") + "\n"


def judge_convs(analysis: Analysis, judge: Callable[[ConvBuilt], Optional[Finding]]) -> Iterator[Finding]:
    """Judge every conv construction. A conv whose own call is flagged (its arguments are the
    problem) is not flagged again at the helper or module calls that reach it; one that is wrong only
    with the arguments a caller gave is flagged at that caller."""
    flagged: Set[int] = set()
    convs = analysis.of(ConvBuilt)
    for built in convs:
        if built.conv.direct:
            finding = judge(built)
            if finding is not None:
                flagged.add(id(built.conv.call))
                yield finding
    for built in convs:
        if not built.conv.direct and id(built.conv.call) not in flagged:
            finding = judge(built)
            if finding is not None:
                yield finding
