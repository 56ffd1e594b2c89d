"""Reading another module's file for the interpreter: a helper file of the checked tree, or the models
of a library's helpers (``convlint.torchlib.library``), with the guards a checked file gets. Never imported."""
from __future__ import annotations

from typing import Dict, Optional

from ..limits import MAX_BYTES
from ..source.decoding import decode, normalize_newlines, parse_python
from ..storage import Unreadable, read_limited
from ..source.environment import Environment
from ..torchlib.library import Library, library_of, models_hold
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


_MODELS: Dict[str, Optional[FileIndex]] = {}  # library -> its models' FileIndex, parsed once per process


def library_index(module: str, environment: Optional[Environment]) -> Optional[FileIndex]:
    """The ``FileIndex`` of the models of ``module``'s library (every module name of a library shares
    it), when the installed version is one they hold for; else None."""
    library = library_of(module)
    if library is None or environment is None or not models_hold(library, environment):
        return None
    if library.distribution not in _MODELS:
        _MODELS[library.distribution] = _models_index(library)
    return _MODELS[library.distribution]


def _models_index(library: Library) -> Optional[FileIndex]:
    tree = parse_python(library.models)
    return FileIndex(tree, library.modules[0], True, None, library.models, f"<convlint's models of {library.distribution}>")
