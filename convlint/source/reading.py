"""Reading a file convlint did not write: a regular file only, within a size limit.

A checked file, a config, a cache entry or a kept verdict may be anything at its path: a FIFO would
block the run, a device would never end, a huge file would take the memory. ``read_limited`` opens
without blocking (and, asked, without following a symbolic link), checks what it opened, and reads at
most one byte past the limit, so that a file that grew after the check is still refused.
"""
from __future__ import annotations

import os
import stat
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
