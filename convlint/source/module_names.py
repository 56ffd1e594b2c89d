"""Module names of files: where ``from ..layers import x`` written in a file leads."""
from __future__ import annotations

import ast
import os
import re
import sys
from typing import Iterator, Optional, Tuple


def module_name(path: str) -> Tuple[Optional[str], bool]:
    """``a/b/c.py`` is ``b.c`` when ``b/`` is a package and ``a/`` is not; the flag tells a package's
    ``__init__.py``."""
    path = os.path.abspath(path)
    directory, filename = os.path.split(path)
    if not filename.endswith(".py"):
        return None, False
    stem = filename[:-3]
    is_package = stem == "__init__"
    parts = [] if is_package else [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        if not package.isidentifier():
            break
        parts.insert(0, package)
    if not parts or not all(p.isidentifier() for p in parts):
        return None, is_package
    return ".".join(parts), is_package


def resolve_relative(current: str, is_package: bool, level: int, target: Optional[str]) -> Optional[str]:
    """The absolute module of ``from ..x import y`` written in module ``current``."""
    parts = current.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        if level - 1 > len(parts):
            return None
        parts = parts[:len(parts) - (level - 1)]
    if target:
        parts = parts + target.split(".")
    return ".".join(parts) if parts else None


def package_folder_module(path: Optional[str], level: int, target: Optional[str]) -> Optional[str]:
    """The module a relative import names by the folders it climbs, for a file whose top package has no
    ``__init__.py`` beside it (``torchvision/models/m.py``: ``from ..ops.misc import X`` is
    ``torchvision.ops.misc``)."""
    if not path or path == "-" or not target:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(level - 1):
        folder = os.path.dirname(folder)
    package = os.path.basename(folder)
    return f"{package}.{target}" if package.isidentifier() else None


def dotted(node: ast.expr) -> Optional[str]:
    """``torch.nn.Conv2d`` for the expression ``torch.nn.Conv2d`` (None for anything but names and
    attributes)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def reads_in_place(module: str) -> bool:
    """Whether an absolute import of ``module`` may lead to an installed library's source: not torch
    (convlint's catalogue knows it), not the standard library."""
    top = module.split(".")[0]
    return bool(top) and top != "torch" and top not in sys.stdlib_module_names


_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import|import[ \t]+([.\w]+))", re.M)


def imported_modules(data: bytes) -> Iterator[str]:
    """The modules a file's bytes import (``from .layers import x`` gives ``.layers``), without a parse."""
    for m in _IMPORT_LINE.finditer(data):
        yield (m.group(1) or m.group(2)).decode("ascii", "replace")
