"""The shape every rule has: a code, a one-line summary, its documentation, and ``check``."""
from __future__ import annotations

import inspect
from typing import ClassVar, Iterable

from ..analysis import Analysis
from ..diagnostics import Finding


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[str] = "error"

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return f"# {cls.name} ({cls.code})\n\n" + inspect.cleandoc(cls.__doc__ or "") + "\n"
