"""Confirmation: rebuild each error-level finding as a small torch program and run it, once per run.

All reproducers go to one child process (torch is imported once, however many findings), which has a
time limit: a hung or crashed child leaves the findings unconfirmed (``confirmed: null``) with one
line on stderr. A finding torch reproduces gets ``confirmed: true`` and torch's own message as
evidence; one whose reproducer runs cleanly gets ``confirmed: false`` (the static model was wrong).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from typing import List, Sequence

from .diagnostics import Diagnostic

EXPECTED_STAGE = {"add": "add", "consume": "consume", "build": "build"}
DEFAULT_TIMEOUT = 60.0


def torch_available() -> bool:
    """Whether torch is installed, without importing it."""
    return importlib.util.find_spec("torch") is not None


def confirm(diagnostics: Sequence[Diagnostic], timeout: float = DEFAULT_TIMEOUT) -> List[str]:
    """Set ``confirmed``/``evidence`` on the diagnostics that carry a reproducer; returns notes."""
    todo = [d for d in diagnostics if d.repro is not None and d.severity == "error"]
    if not todo:
        return []
    specs = [dict(d.repro, id=i) for i, d in enumerate(todo)]
    # an empty folder as working directory: nothing the user has can shadow a module torch imports
    with tempfile.TemporaryDirectory(prefix="convlint-confirm-") as cwd:
        try:
            proc = subprocess.run([sys.executable, "-m", "convlint.confirm_child"], input=json.dumps(specs),
                                  capture_output=True, text=True, timeout=timeout, cwd=cwd,
                                  env=_child_env())
        except subprocess.TimeoutExpired as exc:
            _apply(todo, exc.stdout or "")
            return [f"convlint: torch confirmation stopped after {timeout:g}s; "
                    f"{sum(d.confirmed is None for d in todo)} finding(s) left unconfirmed"]
        except OSError as exc:
            return [f"convlint: cannot start the torch confirmation: {exc}"]
    _apply(todo, proc.stdout)
    notes = []
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        notes.append(f"convlint: torch confirmation failed ({last}); findings left unconfirmed")
    return notes


def _apply(todo: Sequence[Diagnostic], output) -> None:
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


def _child_env():
    import os
    env = dict(os.environ)
    # the child must find convlint itself (an editable or a normal install both do)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
