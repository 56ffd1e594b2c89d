"""Comments that speak to convlint: ``# noqa: CVL201`` and ``# convlint: input-size=3x32x32``."""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ..limits import MAX_INPUT_SIZE

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
INPUT_SIZE = re.compile(r"convlint:\s*input-size\s*=\s*(\d{1,9}(?:\s*x\s*\d{1,9})*)\b")


def suppressed(lines: Sequence[str], line: int, code: str) -> bool:
    """Whether a ``# noqa`` on ``line`` (1-based) silences ``code``, as flake8 reads it."""
    if not 0 < line <= len(lines):
        return False
    m = NOQA.search(lines[line - 1])
    if m is None:
        return False
    codes = m.group("codes")
    if not codes:
        return True
    return any(code.startswith(c.upper()) for c in re.split(r"[,\s]+", codes) if c)


def input_size_comment(lines: Sequence[bytes], first: int, header_end: int) -> Optional[Tuple[int, ...]]:
    """An ``input-size`` comment on the lines ``first`` to ``header_end`` (0-based, a class's header and
    decorators) or on the comment and blank lines right above them."""
    texts: List[bytes] = [lines[i] for i in range(first, min(header_end, len(lines)))]
    above = first - 1
    while above >= 0 and (lines[above].lstrip().startswith(b"#") or not lines[above].strip()):
        texts.append(lines[above])
        above -= 1
    for raw in texts:
        text = raw.decode("utf-8", "replace")
        if "#" not in text:
            continue
        m = INPUT_SIZE.search(text[text.index("#"):])
        if m:
            size = tuple(int(v) for v in re.split(r"\s*x\s*", m.group(1)))
            return size if len(size) <= 4 and all(0 < v <= MAX_INPUT_SIZE for v in size) else None
    return None
