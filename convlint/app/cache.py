"""Each file's diagnostics kept between runs, as ruff keeps its own: a file is not analysed again while
its bytes, the project files its analysis read, convlint itself and the options are unchanged.

The cache lives in the user's cache folder (``$CONVLINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/convlint``,
else ``~/.cache/convlint``), never beside the checked code; ``--no-cache`` turns it off. An entry holds
the size, modification time and inode of the file and of every project file the analysis read; any
change to one of them is a miss. A cache that cannot be read or written costs only the time it would
have saved.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import __version__
from ..diagnostics import Diagnostic

Stamp = Tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


def default_directory() -> str:
    explicit = os.environ.get("CONVLINT_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convlint")


def stamp(path: str) -> Optional[Stamp]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _code_fingerprint() -> str:
    """convlint's own files (its rules, its stubs): a changed convlint invalidates every entry."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [__version__]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                parts.append(f"{os.path.relpath(os.path.join(dirpath, name), root)}:{stamp(os.path.join(dirpath, name))}")
    return "\n".join(parts)


class ResultCache:
    """Entries for one kind of run: the same convlint, options and set of checked modules."""

    def __init__(self, directory: str, run_key: str):
        self.directory = directory
        self.run_key = run_key

    @classmethod
    def for_run(cls, options: Iterable[object], modules: Sequence[str],
                directory: Optional[str] = None) -> "ResultCache":
        """``options`` change diagnostics (selection, input size); ``modules`` are the checked tree's
        module names (a module added or removed can change where an import leads)."""
        key = hashlib.sha256("\0".join([_code_fingerprint(), *map(repr, options), *sorted(modules)]).encode(
            "utf-8", "surrogatepass")).hexdigest()
        return cls(directory or default_directory(), key)

    def _entry(self, path: str) -> str:
        name = hashlib.sha256(f"{self.run_key}\0{path}\0{os.path.abspath(path)}".encode(
            "utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self.directory, name[:2], name + ".json")

    def get(self, path: str) -> Optional[List[Diagnostic]]:
        current = stamp(path)
        entry = self._read(self._entry(path)) if current is not None else None
        try:
            if entry is None or tuple(entry["stamp"]) != current:
                return None
            for dep, dep_stamp in entry["deps"].items():
                if (tuple(dep_stamp) if dep_stamp else None) != stamp(dep):
                    return None
            return [Diagnostic(**d) for d in entry["diagnostics"]]
        except (KeyError, TypeError):
            return None

    def _content_entry(self, path: str, source: str) -> str:
        digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        return self._entry(f"{path}\0{digest}")

    def get_for_source(self, path: str, source: str) -> Optional[List[Diagnostic]]:
        """The diagnostics of exactly this source text (the flake8 plugin, which has no file stamp)."""
        entry = self._read(self._content_entry(path, source))
        try:
            return None if entry is None else [Diagnostic(**d) for d in entry["diagnostics"]]
        except (KeyError, TypeError):
            return None

    def put_for_source(self, path: str, source: str, diagnostics: List[Diagnostic]) -> None:
        self._write(self._content_entry(path, source), diagnostics)

    def put(self, path: str, before: Optional[Stamp], deps: Iterable[str],
            diagnostics: List[Diagnostic]) -> None:
        """Keep ``diagnostics`` of ``path`` as it was when analysed (``before``: its stamp then)."""
        if before is None or stamp(path) != before:
            return  # the file changed while it was checked: what was found belongs to neither version
        dep_stamps: Dict[str, Optional[Stamp]] = {dep: stamp(dep) for dep in deps}
        self._write(self._entry(path), diagnostics, stamp=before, deps=dep_stamps)

    @staticmethod
    def _read(target: str) -> Optional[Dict[str, Any]]:
        try:
            with open(target, encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    @staticmethod
    def _write(target: str, diagnostics: List[Diagnostic], **fields: object) -> None:
        entry = {**fields, "diagnostics": [dataclasses.asdict(d) for d in diagnostics]}
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(entry, fh)
                os.replace(tmp, target)  # whole entries only, whatever runs at the same time
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, TypeError, ValueError):
            pass
