"""Every budget of a check, in one place: a linter runs unattended on code nobody vetted, so no file,
however small or large, may take unbounded time or memory.

A budget that runs out never makes a finding: what was proven before stands, and what is past the
budget stays unknown (fewer paths, fewer findings, never a false one). Three kinds:

* **values**: a list longer than ``MAX_ITEMS``, an integer wider than ``MAX_INT_BITS``, a polynomial
  with more than ``MAX_TERMS`` terms or ``MAX_DEGREE`` factors, a spatial size after more than
  ``MAX_SIZE_OPS`` operations are unknown values; a tensor's history keeps at most
  ``MAX_MERGED_STEPS`` steps of the other operand of a merge;
* **one class or function** of the checked code: ``STEP_BUDGET`` statements, ``MAX_PATHS`` paths,
  ``MAX_DEPTH`` nested calls; past them its analysis stops (``OutOfBudget``);
* **one file**: ``FILE_WORK`` work units (statements run, calls made, facts kept), ``FILE_SECONDS``
  of analysis, ``FILE_MEMORY`` bytes of memory grown; past one of them the file's analysis stops
  (``FileOutOfBudget``, which names it: ``--debug`` prints it).

Outside the analysis, each input convlint reads and each torch run it starts is bounded too:

* **files read besides the checked ones**: a configuration of ``MAX_CONFIG_BYTES``, an ignore file of
  ``MAX_IGNORE_FILE_BYTES`` (a larger one is an error, or skipped as git skips it);
* **the result cache**: an entry of ``MAX_CACHE_ENTRY_BYTES`` (a larger one is a miss); a kept torch
  verdict of ``MAX_VERDICT_BYTES``, its message of ``MAX_VERDICT_CHARS``;
* **confirmation**, per reproducer: ``MAX_TRIES`` combinations of values for its symbols, ``MAX_WORK``
  multiply-adds and ``MAX_ELEMENTS`` tensor elements (past them it is scaled down, else not run); what
  one may hold (``confirm/spec.py`` checks it): ``MAX_LAYERS`` layers of ``MAX_ARGUMENTS`` arguments,
  tuples of ``MAX_TUPLE`` ints within ``INT_LIMIT``, texts of ``MAX_DESCRIPTION`` characters; per run:
  ``MAX_REPRODUCERS`` reproducers, ``MAX_SENT_BYTES`` of them, ``MAX_RUN_WORK`` in all (past them a
  finding stays unconfirmed). The torch child's memory headroom, ``MEMORY_HEADROOM``, lives in
  ``confirm/child.py``: the child imports nothing of convlint.
"""
from __future__ import annotations

import os
import time
from typing import Optional

# --- source --------------------------------------------------------------------------------------
MAX_BYTES = 1024 * 1024  # larger files are skipped (real model files are 10-250 KB; timm's largest 234 KB)
MAX_STDIN = MAX_BYTES    # what `convlint check -` reads at most
MAX_INPUT_SIZE = 1 << 20  # an input size's channels or side (`input-size`): larger is no image

# --- values --------------------------------------------------------------------------------------
MAX_ITEMS = 1024      # items of a list, tuple or dict value (a Sequential of 1,024 layers is already rare)
MAX_INT_BITS = 64     # no layer argument is wider; wider arithmetic (2**2**32) is an unknown value
MAX_TERMS = 32        # terms of a polynomial (real channel arithmetic has at most three or four)
MAX_DEGREE = 8        # factors of a term (planes * expansion * groups ...)
MAX_SIZE_OPS = 256    # windows, pads and resizes kept per spatial size (a deeper chain: size unknown)
MAX_MERGED_STEPS = 256  # steps of a merge's other operand kept in its history (more: not replayable)

# --- one class or function of the checked code ----------------------------------------------------
MAX_PATHS = 48        # live paths per function; more are dropped
MAX_STR_CHARS = 1000  # a string the analysed code builds (`"layer%d" % i`, `a + b`); longer is unknown
MAX_ORDERS = 16       # inequalities a path keeps beyond signs (each costs a subtraction per bound asked)
MAX_DEPTH = 8         # nested helpers / module classes
MAX_SPLIT = 4         # distinct results of a helper call that fork its caller
MAX_UNROLL = 32       # items of a loop that is run once per item
STEP_BUDGET = 3500    # statements run per class or function analysed

# --- one file -------------------------------------------------------------------------------------
FILE_WORK = 250_000   # work units: the real corpus's most (timm's maxxvit.py) is 24,096
FILE_SECONDS = 20.0   # of analysis (the README promises 30 s for a 1 MB file, parse and rules included)
FILE_MEMORY = 1 << 30  # bytes of resident memory grown while one file is analysed
CHECK_EVERY = 1024    # work units between two looks at the clock and the memory

# --- files read besides the checked ones ----------------------------------------------------------
MAX_CONFIG_BYTES = 1024 * 1024  # a pyproject.toml is a few KB; a larger "config" is not one
MAX_IGNORE_FILE_BYTES = 100 * 1024 * 1024  # git's (dir.c) skips one this large or larger; none stalls a walk
MAX_PTH_BYTES = 64 * 1024  # an environment's pyvenv.cfg or .pth file: a few lines; a larger one is skipped

# --- the result cache -----------------------------------------------------------------------------
# an entry read or written: the fixtures' largest is 3.6 KB, and parsing a planted 4 MB one takes ~0.15 s
MAX_CACHE_ENTRY_BYTES = 4 * 1024 * 1024
MAX_VERDICT_BYTES = 8192  # a kept torch verdict: a stage and torch's one-line message
MAX_VERDICT_CHARS = 1000  # of that message (at most 4 bytes each in UTF-8: within MAX_VERDICT_BYTES)

# --- confirmation: one reproducer -----------------------------------------------------------------
MAX_TRIES = 400       # combinations of values for a finding's symbols: all of two symbols, some of three
# multiply-adds plus elements written: 0.05 s (64 channels in and out) to 1.8 s (3 in, 64 out at
# 1024x1024) on the child's one thread; the costliest fixture reproducer needs 4.6 * 10**8
MAX_WORK = 10**9
# tensor elements made, none counted as freed: 1 GiB of float32, within the child's memory headroom,
# and room for a classifier head such as VGG's nn.Linear(25088, 4096) (10**8 weights)
MAX_ELEMENTS = 2**28

# --- confirmation: what a reproducer may hold (confirm/spec.py) ----------------------------------
INT_LIMIT = 2 ** 63   # every int in [-INT_LIMIT, INT_LIMIT): torch's are int64; at most 20 characters printed
MAX_LAYERS = 128      # in all of its chains: VGG-19-BN, torchvision's longest plain chain, replays 42
MAX_ARGUMENTS = 9     # per layer: Conv's nine (device and dtype aside), the most of the replayed layers
MAX_TUPLE = 6         # the longest tuple argument: a 3-d pad's six numbers
MAX_DESCRIPTION = 4096  # characters of a text shown in the evidence: some 200 "name=value" pairs
MAX_NESTING = 4       # Concats within Concats (an Inception block inside a dense one)
# (so the longest program printed is ~128 layers x 9 arguments x 6 numbers of 20 characters: ~170 KB)

# --- confirmation: one run ------------------------------------------------------------------------
MAX_REPRODUCERS = 256  # distinct ones sent to the torch child (findings that share one count it once)
MAX_SENT_BYTES = 4 << 20  # of their JSON: the fixtures' reproducers take 0.2 to 1.6 KB each
MAX_RUN_WORK = 10 * MAX_WORK  # ~18 s at the slowest rate measured, within runner.DEFAULT_TIMEOUT (60 s)


class OutOfBudget(Exception):
    """The statements of one analysed class or function ran past ``STEP_BUDGET``."""


class FileOutOfBudget(OutOfBudget):
    """One file's analysis ran past a file budget; the message names it."""


def resident_bytes() -> Optional[int]:
    """This process's resident memory, where the platform tells it cheaply (Linux's /proc)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class FileBudget:
    """The work, time and memory one file's analysis may still use. ``spend`` is called for each
    unit of work; every ``CHECK_EVERY`` units it also looks at the clock and the memory."""

    def __init__(self, work: int = FILE_WORK, seconds: float = FILE_SECONDS, memory: int = FILE_MEMORY):
        self.work_left = work
        self._work = work
        self._until = time.monotonic() + seconds
        self._seconds = seconds
        start = resident_bytes()
        self._memory_cap = None if start is None else start + memory
        self._memory = memory
        self._next_look = CHECK_EVERY
        self.exhausted: Optional[str] = None  # which budget ran out, once one has

    @property
    def work_spent(self) -> int:
        return self._work - self.work_left

    def spend(self, units: int = 1) -> None:
        if self.exhausted is not None:
            raise FileOutOfBudget(self.exhausted)
        self.work_left -= units
        if self.work_left < 0:
            self._stop(f"the work budget ({self._work:,} units)")
        self._next_look -= units
        if self._next_look <= 0:
            self._next_look = CHECK_EVERY
            if time.monotonic() > self._until:
                self._stop(f"the time budget ({self._seconds:g} s)")
            if self._memory_cap is not None:
                now = resident_bytes()
                if now is not None and now > self._memory_cap:
                    self._stop(f"the memory budget ({self._memory >> 20} MB)")

    def _stop(self, which: str) -> None:
        self.exhausted = which
        raise FileOutOfBudget(which)
