"""Reading another module's file for the interpreter: a helper file of the checked tree, the models
of a library's helpers (``convlint.torchlib.library``), or an installed library's own source, read in
place, with the guards a checked file gets. Never imported."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Optional, Set, Tuple

from ..limits import MAX_BYTES
from ..source.decoding import decode, normalize_newlines, parse_python
from ..storage import Unreadable, read_limited
from ..source.environment import Environment
from ..source.module_names import reads_in_place
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


INSTALLED_CACHE_SIZE = 128  # installed library files kept parsed per process


class InstalledModules:
    """The modules of the checked code's environment (``from mmcv.cnn import ConvModule``), read in
    place from their ``.py`` files: found by file lookup only (``Environment.module_file``), parsed on
    first use and kept for the process. torch stays the catalogue's, and the standard library is not
    looked for. A file Python refuses, or a module with no ``.py`` file, stays unknown."""

    def __init__(self, environment: Environment):
        self.environment = environment
        self._files: Dict[str, Optional[Tuple[str, bool]]] = {}
        self._parsed: "OrderedDict[str, Optional[FileIndex]]" = OrderedDict()
        self.read: Set[str] = set()  # the paths of the files read (what a result depends on)

    def has_module(self, name: str) -> bool:
        if not reads_in_place(name):
            return False
        if name not in self._files:
            self._files[name] = self.environment.module_file(name)
        return self._files[name] is not None

    def index(self, name: str) -> Optional[FileIndex]:
        if not self.has_module(name):
            return None
        found = self._files[name]
        assert found is not None  # (has_module)
        self.read.add(found[0])
        if name in self._parsed:
            self._parsed.move_to_end(name)
            return self._parsed[name]
        index = load_file(found[0], name, self)  # its own imports are read in the same environment
        self._parsed[name] = index
        if len(self._parsed) > INSTALLED_CACHE_SIZE:
            self._parsed.popitem(last=False)
        return index


_INSTALLED: Dict[Tuple[str, ...], InstalledModules] = {}


def installed_modules(environment: Environment) -> InstalledModules:
    """The one ``InstalledModules`` of an environment in this process (its parses are shared by every
    file checked)."""
    key = tuple(environment.site_dirs)
    if key not in _INSTALLED:
        _INSTALLED[key] = InstalledModules(environment)
    return _INSTALLED[key]
