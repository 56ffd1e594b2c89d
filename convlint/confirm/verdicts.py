"""Torch's verdicts on reproducers, kept between runs: a reproducer is plain data, and what torch makes
of it depends only on that data, torch's version and convlint's (its child), so the same reproducer is
run once, not on every check.

An entry is one small JSON file, named by a hash of the reproducer's canonical JSON and the versions
(the caller's ``salt``), under a folder the caller chooses. Entries are written whole (a temporary file
renamed over the old one) and checked when read: a regular file (never through a symbolic link), a few
kilobytes at most, the key it was written for, a known stage and a string message. Anything else is a
miss. Only verdicts are kept: the caller never stores a timeout, a crash or an out-of-memory result.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional

from ..limits import MAX_VERDICT_BYTES, MAX_VERDICT_CHARS
from ..storage import Unreadable, read_limited, write_whole

# the stages the child reports as a verdict (``ok``: the reproducer ran cleanly)
VERDICT_STAGES = frozenset({"ok", "build", "prefix", "branch", "shortcut", "add", "cat", "consume"})

Verdict = Dict[str, str]  # {"stage": ..., "error": ...}: what the child printed for one reproducer


def canonical(reproducer: Mapping[str, Any]) -> str:
    """The reproducer's JSON with sorted keys and no spaces (a tuple and a list are the same data)."""
    return json.dumps(reproducer, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class VerdictCache:
    """The verdicts under ``directory`` for one torch and one convlint (``salt`` names both)."""

    def __init__(self, directory: str, salt: str) -> None:
        self.directory = directory
        self.salt = salt

    def key(self, reproducer: Mapping[str, Any]) -> Optional[str]:
        """The reproducer's key, or None for data that is not JSON (never cached)."""
        try:
            text = canonical(reproducer)
        except (TypeError, ValueError):
            return None
        return hashlib.sha256(f"{self.salt}\0{text}".encode("utf-8")).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".json")

    def get(self, key: str) -> Optional[Verdict]:
        try:  # a regular file only: a link is not followed, a FIFO not waited on
            entry = read_limited(self._path(key), MAX_VERDICT_BYTES, follow_links=False)
            data = json.loads(entry.decode("utf-8"))
        except (OSError, ValueError, Unreadable):
            return None
        return _valid(data, key)

    def put(self, key: str, verdict: Mapping[str, Any]) -> None:
        """Keep ``verdict``; one that is not a verdict (see ``VERDICT_STAGES``) is not kept."""
        entry = _valid({"key": key, **verdict}, key)
        if entry is None:
            return
        try:
            data = json.dumps({"key": key, **entry}, ensure_ascii=False).encode("utf-8")
            write_whole(self._path(key), data)
        except (OSError, ValueError):  # (ValueError: a message Python cannot encode, a lone surrogate)
            pass  # a cache that cannot be written costs only the time it would have saved


def _valid(data: object, key: str) -> Optional[Verdict]:
    """The verdict in ``data`` if it has the entry's shape and was written for ``key``."""
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    stage, error = data.get("stage"), data.get("error", "")
    if stage not in VERDICT_STAGES or not isinstance(stage, str) or not isinstance(error, str):
        return None
    if len(error) > MAX_VERDICT_CHARS or set(data) - {"key", "stage", "error"}:
        return None
    return {"stage": stage, "error": error} if "error" in data else {"stage": stage}
