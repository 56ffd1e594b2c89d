"""String-valued enums: members compare, hash, print and serialize as their strings (``"error"``), so
that protocols written as strings (JSON fields, step kinds) stay exactly as they were."""
from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)
