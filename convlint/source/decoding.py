"""Source text as Python reads it, and its ``ast``.

The tree is Python's own ``ast``: its parser is C and gives every node its place, where LibCST's parse
alone costs more than a whole check may (see ``bench/``); nothing convlint reports needs comments or
whitespace, which only a concrete tree keeps.
"""
from __future__ import annotations

import ast
import codecs
import io
import tokenize


def decode(data: bytes) -> str:
    """Source text as Python reads it: a BOM, a PEP 263 coding cookie, else UTF-8."""
    if b"\x00" in data[:8192]:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "binary file (NUL byte)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, str(exc)) from None
    if encoding == "utf-8-sig":
        data = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
        encoding = "utf-8"
    return data.decode(encoding)


def normalize_newlines(source: str) -> str:
    """Python reads ``\\r\\n`` and ``\\r`` as ``\\n``: so do the lines convlint reports."""
    return source.replace("\r\n", "\n").replace("\r", "\n") if "\r" in source else source


def parse_python(source: str) -> ast.Module:
    """The ``ast`` of a source (newlines already normalized); raises what ``ast.parse`` raises."""
    return ast.parse(source)
