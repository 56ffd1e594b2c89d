"""Reading another module's file for the interpreter: a helper file of the checked tree, or a stub of a
library convlint models (``convlint.stubs``), with the guards a checked file gets. Never imported."""
from __future__ import annotations

from typing import Dict, Optional

from ..limits import MAX_BYTES
from ..source.decoding import decode, normalize_newlines, parse_python
from ..storage import Unreadable, read_limited
from ..stubs import STUB_MODULES
from .files import FileIndex, ModuleSet


def load_file(path: str, name: str, project: Optional[ModuleSet] = None) -> Optional[FileIndex]:
    """The ``FileIndex`` of the module ``name`` in ``path``; None for a file Python (or the size limit)
    refuses: it stays unknown (its own check says why)."""
    try:
        data = read_limited(path, MAX_BYTES)
    except Unreadable:
        return None
    source = normalize_newlines(decode(data))
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return FileIndex(tree, name, path.endswith("__init__.py"), project, source, path)


_STUBS: Dict[str, Optional[FileIndex]] = {}  # stub file -> its FileIndex, parsed once per process


def stub_index(module: str) -> Optional[FileIndex]:
    """The ``FileIndex`` of the stub for ``module`` (the module names a stub file stands for share it;
    stubs make no relative imports), or None."""
    path = STUB_MODULES.get(module)
    if path is None:
        return None
    if path not in _STUBS:
        _STUBS[path] = load_file(path, module)
    return _STUBS[path]
