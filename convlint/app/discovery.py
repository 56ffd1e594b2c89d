"""Which files ``convlint check`` reads: the Python files under the paths it is given, in a stable order.

A folder is walked top-down, sorted by name, without following symbolic links to folders. Skipped:
tool and build folders (``SKIP_DIRS``), virtual environments (a folder holding ``pyvenv.cfg``), what
the ``.gitignore`` files ignore as git reads them, and what ``[tool.convlint] exclude`` lists
(gitignore-style patterns relative to each checked folder). A file named on the command line is
always checked. git itself is never run: a checkout's git configuration can run commands.

The ``.gitignore`` files that apply to a checked folder are its own and those below it, and those of
the folders above it up to the repository's root (the nearest folder holding ``.git``); a nested
repository (a folder below holding ``.git``) starts afresh. Each file's patterns are relative to its
folder; a deeper file's match decides before a shallower one's, and in one file the last matching line
decides; a folder that is ignored is not entered, so nothing under it can be re-included.

What may hide files is returned with them, never skipped silently: a folder that cannot be listed, a
``.gitignore`` that cannot be read.
"""
from __future__ import annotations

import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from ..limits import MAX_IGNORE_FILE_BYTES

if TYPE_CHECKING:
    import pathspec

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", ".mypy_cache",
                       ".pytest_cache", ".ruff_cache", "node_modules", "build", "dist", ".eggs", "site-packages"})


@dataclass
class Discovered:
    """What ``discover`` found: the files to check, in order; the given paths that do not exist; and the
    problems that may have hidden files (an unlistable folder, an unreadable ``.gitignore``), each as
    (path, reason), the reason a phrase such as ``cannot list folder: Permission denied``."""
    files: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    problems: List[Tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Pattern:
    """One gitignore-style line, as git matches it against one entry of a folder it walks.

    pathspec matches a path when the pattern matches the path or any folder above it (so that a flat
    file list can be filtered); git asks only whether the pattern matches the entry itself. So the line
    is cut at its ``**`` into groups of segments, each a pathspec pattern that matches exactly that many
    segments (no shorter path can match it): ``a/b`` is one group matching the whole path, ``*.py`` (no
    slash: at any depth) one group matching the path's end, ``a/**/b`` a group at each end."""
    negated: bool
    dir_only: bool  # a trailing slash: matches folders only
    groups: Tuple[Tuple[pathspec.Pattern, int], ...]  # each group's matcher and number of segments
    starts: bool  # the first group matches the path's first segments (no leading `**`)
    ends: bool  # the last group matches the path's last segments (no trailing `**`)

    def matches(self, segments: Sequence[str], is_dir: bool) -> bool:
        """Whether the line matches the entry whose path from the pattern file's folder is ``segments``."""
        if self.dir_only and not is_dir:
            return False
        groups = list(self.groups)
        first, end = 0, len(segments)  # the segments not matched yet
        if self.starts:
            matcher, count = groups.pop(0)
            if count > end or matcher.match_file("/".join(segments[:count])) is None:
                return False
            first = count
            if len(self.groups) == 1 and self.ends:  # no `**`: the group is the whole path
                return first == end
        if self.ends and groups:
            matcher, count = groups.pop()
            if end - count < first or matcher.match_file("/".join(segments[end - count:])) is None:
                return False
            end -= count
        for matcher, count in groups:  # between two `**`: the first place it fits leaves most room after
            while first + count <= end and matcher.match_file("/".join(segments[first:first + count])) is None:
                first += 1
            if first + count > end:
                return False
            first += count
        return self.ends or first < end  # a trailing `**` matches what is inside: one segment at least


def _compile(line: str) -> Optional[_Pattern]:
    """The pattern of one line, or None for a blank line, a comment, or a line pathspec cannot read
    (such as a lone ``!`` or ``[b-a]``, which match nothing)."""
    try:
        with warnings.catch_warnings():  # (re's FutureWarning on a `[[` would be a stray stderr line)
            warnings.simplefilter("ignore")
            return _compile_valid(line)
    except (ValueError, re.error):
        return None


def _compile_valid(line: str) -> Optional[_Pattern]:
    """``_compile``'s work; pathspec raises on a line it cannot read."""
    import pathspec  # here: only a walk with ignore patterns pays for it (an editor's one-file check does not)

    compiled = pathspec.GitIgnoreSpec.from_lines([line]).patterns
    if not compiled or compiled[0].include is None:
        return None
    body = line[1:] if compiled[0].include is False else line
    while body.endswith(" ") and not body.endswith("\\ "):  # git drops unescaped trailing spaces
        body = body[:-1]
    core = body[:-1] if body.endswith("/") else body
    # no slash but a trailing one: the name at any depth, as if the line began with `**/`
    parts = ["**", core] if "/" not in core else [part for part in core.split("/") if part]
    if not parts:
        return None
    groups: List[List[str]] = [[]]
    for part in parts:
        if part == "**":
            groups.append([])
        else:
            groups[-1].append(part)
    return _Pattern(negated=not compiled[0].include, dir_only=body.endswith("/"),
                    groups=tuple((pathspec.GitIgnoreSpec.from_lines(["/" + "/".join(group)]).patterns[0], len(group))
                                 for group in groups if group),
                    starts=parts[0] != "**", ends=parts[-1] != "**")


@dataclass(frozen=True)
class _PatternFile:
    """The patterns of one ``.gitignore`` (or the ``exclude`` list), placed relative to the walk: a path
    from the checked folder is made relative to the pattern file's folder by dropping ``below`` (the
    file's folder, when inside the checked folder) or prepending ``above`` (the checked folder's path
    from the file's folder, when above it)."""
    patterns: Tuple[_Pattern, ...]
    below: str = ""
    above: str = ""

    def decision(self, path: str, is_dir: bool) -> Optional[bool]:
        """True: ignored; False: re-included by a ``!`` line; None: no line matches the entry."""
        segments = (self.above + path[len(self.below):]).split("/")
        for pattern in reversed(self.patterns):  # the last matching line decides
            if pattern.matches(segments, is_dir):
                return not pattern.negated
        return None


def _patterns(lines: Sequence[str], below: str = "", above: str = "") -> _PatternFile:
    compiled = (_compile(line) for line in lines)
    return _PatternFile(tuple(p for p in compiled if p is not None), below, above)


def _skipped(exclude: _PatternFile, ignore_files: Sequence[_PatternFile], path: str, is_dir: bool) -> bool:
    """Whether ``exclude`` or the ``.gitignore`` files (the deepest deciding first) skip the entry at
    ``path`` (from the checked folder, ``/``-separated)."""
    if exclude.decision(path, is_dir):
        return True
    for pattern_file in reversed(ignore_files):
        decision = pattern_file.decision(path, is_dir)
        if decision is not None:
            return decision
    return False


def _read_ignore_file(path: str, found: Discovered) -> Optional[List[str]]:
    """The lines of a ``.gitignore``; None (with a problem noted) when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_IGNORE_FILE_BYTES)
    except OSError as exc:
        found.problems.append((path, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) >= MAX_IGNORE_FILE_BYTES:
        size = f"{MAX_IGNORE_FILE_BYTES // (1024 * 1024)} MiB"
        found.problems.append((path, f"not read: {size} or more (git skips it too)"))
        return None
    # the bytes as os.scandir decodes names, so that a pattern matches an undecodable name as git does
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    return [line.removesuffix("\r") for line in text.split("\n")]  # git splits at LF and drops a CR


def _repository_ignore_files(folder: str, found: Discovered) -> Tuple[_PatternFile, ...]:
    """The ``.gitignore`` files of the folders above ``folder`` up to its repository's root, the root's
    first; none when no folder above holds ``.git`` (or ``folder`` itself does)."""
    real = os.path.realpath(folder)  # the folders git sees above it
    above: List[str] = []
    current = real
    while not os.path.lexists(os.path.join(current, ".git")):
        parent = os.path.dirname(current)
        if parent == current:
            return ()  # not in a repository: only the checked folder's own .gitignore files apply
        above.append(parent)
        current = parent
    files: List[_PatternFile] = []
    for ancestor in reversed(above):
        path = os.path.join(ancestor, ".gitignore")
        try:
            is_file = stat.S_ISREG(os.lstat(path).st_mode)  # git does not follow a linked .gitignore
        except FileNotFoundError:
            continue
        except OSError as exc:
            found.problems.append((path, f"cannot read: {exc.strerror or exc}"))
            continue
        lines = _read_ignore_file(path, found) if is_file else None
        if lines is not None:
            prefix = os.path.relpath(real, ancestor).replace(os.sep, "/") + "/"
            files.append(_patterns(lines, above=prefix))
    return tuple(files)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # a link to a folder counts as a folder (listed, never entered), as os.walk does
    except OSError:
        return False


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _is_regular_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _walk(top: str, exclude: _PatternFile, found: Discovered) -> None:
    """Add the Python files under the folder ``top`` to ``found``, in os.walk's top-down sorted order.

    A stack rather than recursion (os.walk recurses before Python 3.12): a deep tree cannot exhaust
    the interpreter's recursion limit."""
    # (the folder's path, its path from `top` ("" or ending in "/"), the .gitignore files over it)
    stack: List[Tuple[str, str, Tuple[_PatternFile, ...]]] = [(top, "", _repository_ignore_files(top, found))]
    while stack:
        folder, relative, ignore_files = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            found.problems.append((folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        if relative and any(entry.name == ".git" for entry in entries):
            ignore_files = ()  # a nested repository: the outer .gitignore files do not reach inside it
        own = next((entry for entry in entries if entry.name == ".gitignore" and _is_regular_file(entry)), None)
        lines = _read_ignore_file(own.path, found) if own is not None else None
        if lines is not None:
            ignore_files = ignore_files + (_patterns(lines, below=relative),)
        subfolders: List[Tuple[str, str, Tuple[_PatternFile, ...]]] = []
        for entry in entries:
            entry_relative = relative + entry.name
            if _is_dir(entry):
                if (entry.name in SKIP_DIRS or _is_link(entry)
                        or _skipped(exclude, ignore_files, entry_relative, True)
                        or os.path.isfile(os.path.join(folder, entry.name, "pyvenv.cfg"))):
                    continue
                subfolders.append((os.path.join(folder, entry.name), entry_relative + "/", ignore_files))
            elif entry.name.endswith(".py") and not _skipped(exclude, ignore_files, entry_relative, False):
                found.files.append(os.path.join(folder, entry.name))
        stack.extend(reversed(subfolders))  # popped in name order: each folder's files, then its subfolders


def discover(paths: Sequence[str], exclude: Sequence[str]) -> Discovered:
    """The Python files under ``paths`` (files named there as they are, folders walked), in order.

    ``exclude``: gitignore-style patterns relative to each checked folder (``build/``, ``*_pb2.py``)."""
    found = Discovered()
    for path in paths:
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            found.missing.append(path)
            continue
        except OSError as exc:  # e.g. a path too long: it may exist, but cannot be reached
            found.problems.append((path, f"cannot access: {exc.strerror or exc}"))
            continue
        if os.path.isdir(path):
            _walk(path, _patterns(exclude), found)
        else:
            found.files.append(path)
    return found
