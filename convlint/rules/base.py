"""The shape every rule has: a code, a one-line summary, its documentation, and ``check``."""
from __future__ import annotations

import inspect
from typing import Callable, ClassVar, Iterable, Iterator, Optional

from ..analysis import Analysis
from ..diagnostics import Finding
from ..events import ConvBuilt


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[str] = "error"

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        raise NotImplementedError

    def reproducer(self, subject) -> Optional[dict]:
        """A torch reproducer for a finding about ``subject`` (see convlint.reproduce), if any."""
        return None

    @classmethod
    def documentation(cls) -> str:
        return f"# {cls.name} ({cls.code})\n\n" + inspect.cleandoc(cls.__doc__ or "") + "\n"



def judge_convs(analysis: Analysis, judge: Callable[[ConvBuilt], Optional[Finding]]) -> Iterator[Finding]:
    """Judge every conv construction. A conv whose own call is flagged (its arguments are the
    problem) is not flagged again at the helper or module calls that reach it; one that is wrong only
    with the arguments a caller gave is flagged at that caller."""
    flagged = set()
    for built in analysis.convs:
        if built.conv.direct:
            finding = judge(built)
            if finding is not None:
                flagged.add(id(built.conv.call))
                yield finding
    for built in analysis.convs:
        if not built.conv.direct and id(built.conv.call) not in flagged:
            finding = judge(built)
            if finding is not None:
                yield finding
