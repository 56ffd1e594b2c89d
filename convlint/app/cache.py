"""Each file's diagnostics kept between runs, as ruff keeps its own: a file is not analysed again while
its bytes, the project files its analysis read, convlint itself and the options are unchanged.

The cache lives in the user's cache folder (``$CONVLINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/convlint``,
else ``~/.cache/convlint``), never beside the checked code; ``--no-cache`` turns it off. An entry holds
the size, modification time and inode of the file and of every project file the analysis read; any
change to one of them is a miss. A cache that cannot be read or written costs only the time it would
have saved.

An entry is data anyone who can write the cache folder may have written, so it is read as untrusted
input: only a regular file (never through a symlink, never waiting on a FIFO) of at most
``MAX_CACHE_ENTRY_BYTES`` (``convlint.limits``), parsed as JSON and checked field by field against
``Diagnostic`` (its reproducer by ``convlint.confirm.spec.valid_spec``). Anything else is a miss, which
the next ``put`` replaces.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeGuard

from .. import __version__
from ..confirm.spec import valid_spec
from ..diagnostics import Diagnostic, Severity
from ..limits import MAX_CACHE_ENTRY_BYTES
from ..storage import Unreadable, read_limited, write_whole

Stamp = Tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)

def default_directory() -> str:
    explicit = os.environ.get("CONVLINT_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convlint")


def stamp(path: str) -> Optional[Stamp]:
    """``path``'s size, modification time and inode; None when it cannot be read (a dependency's path
    comes from a cache entry, and may hold a NUL or a lone surrogate: ValueError)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _code_fingerprint() -> str:
    """convlint's own files (its rules, its library models): a changed convlint invalidates every entry."""
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
        """The diagnostics kept for ``path``, if neither it nor a file its analysis read changed since."""
        current = stamp(path)
        if current is None:
            return None
        entry = _read_entry(self._entry(path))
        if not _valid_entry(entry, _PATH_ENTRY_KEYS) or tuple(entry["stamp"]) != current:
            return None
        for dep, dep_stamp in entry["deps"].items():
            if (None if dep_stamp is None else tuple(dep_stamp)) != stamp(dep):
                return None
        return [Diagnostic(**d) for d in entry["diagnostics"]]

    def _content_entry(self, path: str, source: str) -> str:
        digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        return self._entry(f"{path}\0{digest}")

    def get_for_source(self, path: str, source: str) -> Optional[List[Diagnostic]]:
        """The diagnostics of exactly this source text (the flake8 plugin, which has no file stamp)."""
        entry = _read_entry(self._content_entry(path, source))
        if not _valid_entry(entry, _SOURCE_ENTRY_KEYS):
            return None
        return [Diagnostic(**d) for d in entry["diagnostics"]]

    def put_for_source(self, path: str, source: str, diagnostics: List[Diagnostic]) -> None:
        _write(self._content_entry(path, source), diagnostics)

    def put(self, path: str, before: Optional[Stamp], deps: Iterable[str],
            diagnostics: List[Diagnostic]) -> None:
        """Keep ``diagnostics`` of ``path`` as it was when analysed (``before``: its stamp then)."""
        if before is None or stamp(path) != before:
            return  # the file changed while it was checked: what was found belongs to neither version
        dep_stamps: Dict[str, Optional[Stamp]] = {dep: stamp(dep) for dep in deps}
        _write(self._entry(path), diagnostics, stamp=before, deps=dep_stamps)


# --- reading an entry ---------------------------------------------------------------------------


def _read_entry(target: str) -> object:
    """The JSON value of the entry file ``target``; None when it is missing, not a regular file (a
    link is not followed, a FIFO not waited on), larger than ``MAX_CACHE_ENTRY_BYTES``, or not JSON
    in UTF-8."""
    try:
        data = read_limited(target, MAX_CACHE_ENTRY_BYTES, follow_links=False)
    except (OSError, ValueError, Unreadable):
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, an int too long, nested too deeply
        return None


_PATH_ENTRY_KEYS = frozenset({"stamp", "deps", "diagnostics"})
_SOURCE_ENTRY_KEYS = frozenset({"diagnostics"})  # an entry of the flake8 plugin, keyed by the text itself
_CODE = re.compile(r"CVL[0-9]{3}")
_SEVERITIES = frozenset(s.value for s in Severity)


def _valid_entry(entry: object, keys: FrozenSet[str]) -> TypeGuard[Dict[str, Any]]:
    """``entry`` has exactly ``keys``: ``stamp`` a stamp, ``deps`` paths to stamps or null,
    ``diagnostics`` a list of valid diagnostics."""
    if not isinstance(entry, dict) or set(entry) != keys:
        return False
    if "stamp" in keys and not _is_stamp(entry["stamp"]):
        return False
    deps = entry.get("deps", {})
    if not isinstance(deps, dict) or not all(isinstance(dep, str) and (s is None or _is_stamp(s))
                                             for dep, s in deps.items()):
        return False
    items = entry["diagnostics"]
    return isinstance(items, list) and all(valid_diagnostic(d) for d in items)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_stamp(value: object) -> bool:
    """A ``Stamp`` as JSON: a list of three ints."""
    return isinstance(value, list) and len(value) == 3 and all(_is_int(x) for x in value)


def _is_position(value: object) -> bool:
    """A 1-based line or column."""
    return _is_int(value) and value >= 1


def _is_optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


_FIX_FIELDS: Dict[str, Callable[[object], bool]] = {
    "line": _is_position, "column": _is_position, "end_line": _is_position, "end_column": _is_position,
    "replacement": lambda value: isinstance(value, str),
}


def _is_fix(value: object) -> bool:
    """None, or where to put what (``convlint.app.engine``'s ``fix``)."""
    return value is None or _has_fields(value, _FIX_FIELDS)


# one check per field of Diagnostic (tests/test_cache.py compares the names with the dataclass's)
DIAGNOSTIC_FIELDS: Dict[str, Callable[[object], bool]] = {
    "path": lambda value: isinstance(value, str),
    "line": _is_position, "column": _is_position, "end_line": _is_position, "end_column": _is_position,
    "code": lambda value: isinstance(value, str) and _CODE.fullmatch(value) is not None,
    "severity": lambda value: isinstance(value, str) and value in _SEVERITIES,
    "message": lambda value: isinstance(value, str),
    "confirmed": lambda value: value is None or isinstance(value, bool),
    "evidence": _is_optional_str,
    "fix": _is_fix,
    "repro": lambda value: value is None or valid_spec(value),
}


def valid_diagnostic(value: object) -> bool:
    """A diagnostic as the cache writes it: exactly the fields of ``Diagnostic``, each of its type."""
    return _has_fields(value, DIAGNOSTIC_FIELDS)


def _has_fields(value: object, fields: Mapping[str, Callable[[object], bool]]) -> bool:
    """A JSON object with exactly the keys of ``fields``, each value passing its check."""
    return isinstance(value, dict) and set(value) == set(fields) and \
        all(check(value[name]) for name, check in fields.items())


# --- writing an entry ---------------------------------------------------------------------------


def _write(target: str, diagnostics: List[Diagnostic], **fields: object) -> None:
    """Write the entry ``target`` whole (a temporary file renamed over it), in place of anything at its
    name; nothing when it cannot be written or would be too large to be read back."""
    entry = {**fields, "diagnostics": [dataclasses.asdict(d) for d in diagnostics]}
    try:
        # ASCII: json.dumps escapes every other character; no NaN, which the reader would refuse
        data = json.dumps(entry, allow_nan=False).encode("ascii")
    except (TypeError, ValueError):
        return
    if len(data) > MAX_CACHE_ENTRY_BYTES:
        return  # _read_entry would refuse it: the file is analysed again each run
    try:
        write_whole(target, data)
    except (OSError, ValueError):  # (ValueError: a path Python cannot pass to the system)
        pass  # a cache that cannot be written costs only the time it would have saved
