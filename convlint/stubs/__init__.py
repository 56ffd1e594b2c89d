"""Shape models of library layers that model code imports but convlint does not check (like typeshed
for types): the library's own constructor and ``forward`` code, trimmed of logging and warnings, read by
the interpreter like a file of the checked project. They are never imported or executed.

``STUB_MODULES`` maps an importable module name to the stub file that models it; a module of the
checked tree with the same name (torchvision's own source) takes precedence.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))

STUB_MODULES: Dict[str, str] = {
    "torchvision.ops.misc": os.path.join(_HERE, "torchvision_ops_misc.py"),
    "torchvision.ops": os.path.join(_HERE, "torchvision_ops_misc.py"),
}

_loaded: Dict[str, Optional[object]] = {}


def stub_relative(path: Optional[str], level: int, target: Optional[str]) -> Optional[str]:
    """The stub module a relative import of the file at ``path`` names, by the folders it climbs
    (``torchvision/models/m.py``: ``from ..ops.misc import X`` is ``torchvision.ops.misc``)."""
    if not path or path == "-" or not target:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(level - 1):
        folder = os.path.dirname(folder)
    package = os.path.basename(folder)
    candidate = f"{package}.{target}" if package.isidentifier() else None
    return candidate if candidate in STUB_MODULES else None


def stub_index(module: str):
    """The ``FileIndex`` of the stub for ``module`` (parsed once per process), or None."""
    if module not in _loaded:
        path = STUB_MODULES.get(module)
        index = None
        if path is not None:
            from ..engine import parse_libcst
            from ..interpreter import FileIndex

            with open(path, encoding="utf-8") as fh:
                source = fh.read()
            index = FileIndex(parse_libcst(source), "torchvision.ops.misc", False, None, source, path)
        _loaded[module] = index
    return _loaded[module]
