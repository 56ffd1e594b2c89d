"""Project mode: the files checked together, so that an import resolving inside them is followed.

``from .layers import get_padding`` or ``from timm.layers import create_conv2d`` reaches a helper in
another file of the checked tree; that file is parsed (once per process, kept in a small cache) and
its helpers and classes are understood like the checking file's own. Imports that do not resolve
inside the tree stay unknown.
"""
from __future__ import annotations

import ast
import os
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Set, Tuple

from ..interpreter import FileIndex, load_file
from ..source.module_names import imported_modules, module_name

CACHE_SIZE = 64  # parsed files kept per process


class Project:
    """Module names of the checked files (``timm.layers.padding`` -> its path)."""

    def __init__(self, files: Iterable[str]):
        self.paths: Dict[str, str] = {}
        self.names: Dict[str, Tuple[str, bool]] = {}  # path -> (module name, is a package __init__)
        for path in files:
            name, is_package = module_name(path)
            if name:
                self.paths.setdefault(name, os.path.abspath(path))
                self.names[os.path.abspath(path)] = (name, is_package)
        self._cache: "OrderedDict[str, Optional[FileIndex]]" = OrderedDict()
        self._imported: Set[str] = set()  # module names an import has asked for
        self.read: Set[str] = set()  # paths of the modules looked up (what a file's result depends on)
        self._tops: Optional[Set[str]] = None

    def imports_from_tree(self, data: bytes) -> bool:
        """Whether a file's bytes import from the checked tree (``from .layers import ...``,
        ``from timm.layers import ...``): its layers may come from helpers there."""
        if self._tops is None:
            self._tops = {name.split(".")[0] for name in self.paths}
        return any(module.startswith(".") or module.split(".")[0] in self._tops
                   for module in imported_modules(data))

    def module_of(self, path: str) -> Tuple[Optional[str], bool]:
        return self.names.get(os.path.abspath(path), (None, False))

    def has_module(self, name: str) -> bool:
        return name in self.paths

    def remember(self, name: str, index: FileIndex) -> None:
        self._cache[name] = index
        self._cache.move_to_end(name)
        self._shrink()

    def _shrink(self) -> None:
        """Past ``CACHE_SIZE`` files, forget the one used longest ago that no import has asked for (a
        model file checked once), else the one used longest ago: helpers stay parsed once."""
        while len(self._cache) > CACHE_SIZE:
            victim = next((name for name in self._cache if name not in self._imported), None)
            if victim is None:
                self._cache.popitem(last=False)
            else:
                del self._cache[victim]

    def parsed(self, path: str, source: str) -> Optional[ast.Module]:
        """The tree of ``path`` when an import already parsed this very source (each file is parsed
        once), else None."""
        name = self.names.get(os.path.abspath(path), (None, False))[0]
        index = self._cache.get(name) if name is not None else None
        return index.module if index is not None and index.source == source else None

    def index(self, name: str) -> Optional[FileIndex]:
        """The ``FileIndex`` of a module of the tree (None when absent or unreadable)."""
        if name in self.paths:
            self.read.add(self.paths[name])
        self._imported.add(name)
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        path = self.paths.get(name)
        index = None
        if path is not None:
            try:
                index = load_file(path, name, self)
            except Exception:  # noqa: BLE001 - an unreadable helper file is an unknown helper
                index = None
        self._cache[name] = index
        self._shrink()
        return index

    def __getstate__(self) -> Tuple[Dict[str, str], Dict[str, Tuple[str, bool]]]:
        return self.paths, self.names

    def __setstate__(self, state: Tuple[Dict[str, str], Dict[str, Tuple[str, bool]]]) -> None:
        self.paths, self.names = state
        self._cache = OrderedDict()
        self._imported = set()
        self.read = set()
        self._tops = None
