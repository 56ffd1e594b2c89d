"""Project mode: the files checked together, so that an import resolving inside them is followed.

``from .layers import get_padding`` or ``from timm.layers import create_conv2d`` reaches a helper in
another file of the checked tree; that file is parsed (once per process, kept in a small cache) and
its helpers and classes are understood like the checking file's own. Imports that do not resolve
inside the tree stay unknown.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Tuple

CACHE_SIZE = 64  # parsed files kept per process
_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import|import[ \t]+([.\w]+))", re.M)


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
        self._cache: "OrderedDict[str, Optional[object]]" = OrderedDict()
        self._imported: set = set()  # module names an import has asked for
        self.read: set = set()  # paths of the modules looked up (what a file's result depends on)
        self._tops: Optional[set] = None

    def imports_from_tree(self, data: bytes) -> bool:
        """Whether a file's bytes import from the checked tree (``from .layers import ...``,
        ``from timm.layers import ...``): its layers may come from helpers there."""
        if self._tops is None:
            self._tops = {name.split(".")[0].encode() for name in self.paths}
        for m in _IMPORT_LINE.finditer(data):
            module = m.group(1) or m.group(2)
            if module.startswith(b".") or module.split(b".")[0] in self._tops:
                return True
        return False

    def module_of(self, path: str) -> Tuple[Optional[str], bool]:
        return self.names.get(os.path.abspath(path), (None, False))

    def has_module(self, name: str) -> bool:
        return name in self.paths

    def remember(self, name: str, index) -> None:
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

    def parsed(self, path: str, source: str):
        """The tree of ``path`` when an import already parsed this very source (each file is parsed
        once), else None."""
        name = self.names.get(os.path.abspath(path), (None, False))[0]
        index = self._cache.get(name) if name is not None else None
        return index.module if index is not None and index.source == source else None

    def index(self, name: str):
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
                index = self._load(path, name)
            except Exception:  # noqa: BLE001 - an unreadable helper file is an unknown helper
                index = None
        self._cache[name] = index
        self._shrink()
        return index

    def _load(self, path: str, name: str):
        """Parse a helper file with the guards a checked file gets (size, Python's parser first)."""
        import stat

        from .engine import MAX_BYTES, decode, normalize_newlines, parse_python
        from .interpreter import FileIndex

        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None
        with open(path, "rb") as fh:
            source = decode(fh.read())
        source = normalize_newlines(source)
        try:
            tree = parse_python(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None  # a helper file Python refuses stays unknown (its own check says why)
        return FileIndex(tree, name, path.endswith("__init__.py"), self, source, path)

    def __getstate__(self):
        return {"paths": self.paths, "names": self.names}

    def __setstate__(self, state) -> None:
        self.paths, self.names = state["paths"], state["names"]
        self._cache = OrderedDict()
        self._imported = set()
        self.read = set()
        self._tops = None


def module_name(path: str) -> Tuple[Optional[str], bool]:
    """``a/b/c.py`` is ``b.c`` when ``b/`` is a package and ``a/`` is not."""
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
