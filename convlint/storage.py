"""Files convlint reads but did not write, and the entries it keeps in its cache folder.

A checked file, a config, a cache entry or a kept verdict may be anything at its path: a FIFO would
block the run, a device would never end, a huge file would take the memory. ``read_limited`` opens
without blocking (and, asked, without following a symbolic link), checks what it opened, and reads at
most one byte past the limit, so that a file that grew after the check is still refused.
``write_whole`` writes an entry of the cache folder whole, in place of whatever is at its name.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from typing import List

_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
          | getattr(os, "O_BINARY", 0))


class Unreadable(Exception):
    """The file is not one to read (its kind or its size); the message says why."""


class NotRegularFile(Unreadable):
    def __init__(self) -> None:
        super().__init__("not a regular file")


class TooLarge(Unreadable):
    def __init__(self, size: int) -> None:
        super().__init__(f"larger than the limit ({size} bytes)")
        self.size = size  # (at least: a file that grew is refused at the limit plus one)


def read_limited(path: str, limit: int, follow_links: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them. Raises ``OSError`` when it
    cannot be opened or read (``ValueError`` for a path holding a NUL), ``NotRegularFile`` for a FIFO,
    device or folder, ``TooLarge`` past ``limit``; with ``follow_links=False`` a symbolic link at
    ``path`` is an ``OSError`` (ELOOP)."""
    fd = os.open(path, _FLAGS | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0)))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile()
        if info.st_size > limit:
            raise TooLarge(info.st_size)
        data = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise TooLarge(len(data))
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    """The first ``limit`` bytes of ``fd`` (all of it when shorter): ``os.read`` may return fewer."""
    chunks: List[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def write_whole(target: str, data: bytes) -> None:
    """Write ``data`` as the file ``target`` (an entry in a shard folder of the cache folder): a
    temporary file renamed over it, so that a reader sees a whole entry or none, whatever runs at the
    same time. Raises ``OSError`` when it cannot be written."""
    folder = os.path.dirname(target)
    _own_folder(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _own_folder(folder: str) -> None:
    """Make ``folder`` (a shard folder inside the cache) a real folder. Something else at its name (a
    file, a FIFO, a symlink, which would send the write elsewhere) is removed first; the cache folder
    itself is never removed (when it is not a folder, lstat fails with NotADirectoryError)."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(folder)
        os.mkdir(folder)


def _replace(tmp: str, target: str) -> None:
    """Rename ``tmp`` to ``target``. A rename replaces a file, a FIFO or a symlink as a name; a folder
    at ``target`` is the one thing in its way, so it is removed (with what it holds) and the rename
    tried again."""
    try:
        os.replace(tmp, target)
    except OSError:
        try:
            is_folder = stat.S_ISDIR(os.lstat(target).st_mode)
        except OSError:
            is_folder = False
        if not is_folder:
            raise
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
