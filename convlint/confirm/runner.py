"""Confirmation: rebuild each error-level finding as a small torch program and run it, once per run.

All reproducers go to one child process (torch is imported once, however many findings), which has a
time limit: a hung or crashed child leaves the findings unconfirmed (``confirmed: null``) with one
line on stderr. A finding torch reproduces gets ``confirmed: true`` and torch's own message as
evidence; one whose reproducer runs cleanly gets ``confirmed: false`` (the static model was wrong).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Union

from ..diagnostics import Diagnostic
from ..torchlib.catalogue import REPLAYED_LAYERS

EXPECTED_STAGE = {"add": "add", "consume": "consume", "build": "build"}
DEFAULT_TIMEOUT = 60.0


def torch_available() -> bool:
    """Whether torch is installed, without importing it."""
    return importlib.util.find_spec("torch") is not None


class Confirmer:
    """One torch child per run. ``start`` it as soon as a finding appears: torch's import (the bulk of
    the cost) then overlaps with the rest of the analysis. ``finish`` hands it the reproducers."""

    def __init__(self) -> None:
        self._proc: Optional["subprocess.Popen[str]"] = None
        self._cwd: Optional["tempfile.TemporaryDirectory[str]"] = None
        self._error: Optional[str] = None

    def start(self) -> None:
        if self._proc is not None or self._error is not None:
            return
        # an empty folder as working directory: nothing the user has can shadow a module torch imports
        self._cwd = tempfile.TemporaryDirectory(prefix="convlint-confirm-")
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "convlint.confirm.child"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          cwd=self._cwd.name, env=_child_env())
        except OSError as exc:
            self._error = f"convlint: cannot start the torch confirmation: {exc}"

    def finish(self, diagnostics: Sequence[Diagnostic], timeout: float = DEFAULT_TIMEOUT) -> List[str]:
        """Set ``confirmed``/``evidence`` on the diagnostics that carry a reproducer; returns notes."""
        todo = [d for d in diagnostics if d.repro is not None and d.severity == "error"]
        try:
            if not todo:
                return []
            self.start()
            if self._proc is None:
                return [self._error or "convlint: torch confirmation did not start"]
            specs = [dict(d.repro or {}, id=i) for i, d in enumerate(todo)]
            try:
                given = {"layers": sorted(REPLAYED_LAYERS), "reproducers": specs}
                out, err = self._proc.communicate(json.dumps(given), timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                out, _ = self._proc.communicate()
                _apply(todo, out or "")
                return [f"convlint: torch confirmation stopped after {timeout:g}s; "
                        f"{sum(d.confirmed is None for d in todo)} finding(s) left unconfirmed"]
            except OSError as exc:  # the child died before reading its input
                self._proc.kill()
                return [f"convlint: torch confirmation failed ({exc}); findings left unconfirmed"]
            _apply(todo, out)
            if self._proc.returncode != 0:
                last = (err.strip().splitlines() or ["no message"])[-1]
                return [f"convlint: torch confirmation failed ({last}); findings left unconfirmed"]
            return []
        finally:
            self.close()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._cwd is not None:
            self._cwd.cleanup()
            self._cwd = None


def _apply(todo: Sequence[Diagnostic], output: Union[str, bytes]) -> None:
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    for line in output.splitlines():
        try:
            result = json.loads(line)
            d = todo[result["id"]]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        stage = result.get("stage")
        if stage == "ok":
            d.confirmed = False
        elif stage == EXPECTED_STAGE.get(d.repro["op"]):
            d.confirmed = True
            where = [f"with {d.repro['values']}"] if d.repro.get("values") else []
            if "input" in d.repro:
                where.append(f"input {'x'.join(map(str, d.repro['input']))}")
            d.evidence = result.get("error", "") + (f" ({', '.join(where)})" if where else "")


def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    # the child must find convlint itself (an editable or a normal install both do)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
