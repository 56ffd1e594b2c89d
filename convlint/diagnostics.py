"""Diagnostics: what a rule found, where, and how to fix it."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .enums import StrEnum


class Severity(StrEnum):
    """A diagnostic's severity (a string: it is written as it is in every output format)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Fix:
    """Replace ``node`` by ``replacement``, or insert it right after ``node`` with ``insert_after``."""

    node: ast.AST
    replacement: str
    insert_after: bool = False


@dataclass
class Finding:
    """A rule's result before it has a place in a file (positions are computed only for these)."""

    code: str
    message: str
    node: Optional[ast.AST]
    severity: Severity = Severity.ERROR
    fix: Optional[Fix] = None
    subject: object = None   # the analysis result it is about, for building a reproducer


@dataclass
class Diagnostic:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    severity: str
    message: str
    confirmed: Optional[bool] = None
    evidence: Optional[str] = None
    fix: Optional[Dict[str, Any]] = None
    repro: Optional[Dict[str, Any]] = None  # how torch reproduces it (convlint.confirm.reproduce)

    def sort_key(self) -> Tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.code)

    def to_json(self) -> Dict[str, Any]:
        return {
            "path": self.path, "line": self.line, "column": self.column, "end_line": self.end_line,
            "end_column": self.end_column, "code": self.code, "severity": self.severity,
            "message": self.message, "confirmed": self.confirmed, "evidence": self.evidence,
            "fix": self.fix,
        }
