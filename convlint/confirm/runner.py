"""Confirmation: rebuild each error-level finding as a small torch program and run it, once per run.

All reproducers go to one child process (torch is imported once, however many findings), which has a
time limit: a hung or crashed child leaves the findings unconfirmed (``confirmed: null``) with one
line on stderr. A finding torch reproduces gets ``confirmed: true`` and torch's own message as
evidence; one whose reproducer runs cleanly gets ``confirmed: false`` (the static model was wrong).

Every input is bounded (``convlint.limits``): a reproducer past its work or memory budget
(``replay.estimated_cost``) is not run, one run sends at most ``MAX_REPRODUCERS`` reproducers,
``MAX_SENT_BYTES`` of them and ``MAX_RUN_WORK`` of work, and the child limits its own memory
(``child.py``). Verdicts are kept between runs (``verdicts.py``), so the same reproducer is run once per
torch and convlint version.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .. import __version__
from ..diagnostics import Diagnostic
from ..limits import MAX_REPRODUCERS, MAX_RUN_WORK, MAX_SENT_BYTES
from ..torchlib.catalogue import REPLAYED_LAYERS
from .replay import estimated_cost
from .verdicts import VERDICT_STAGES, Verdict, VerdictCache, canonical

EXPECTED_STAGE = {"add": "add", "cat": "cat", "consume": "consume", "build": "build"}
DEFAULT_TIMEOUT = 60.0  # seconds: room for torch's import and MAX_RUN_WORK (convlint.limits)
# The fields of a reproducer the child reads; the others ("values", "scaled_down") describe it
RUN_FIELDS = ("op", "input", "prefix", "branch", "shortcut", "consumer", "layer")
CHILD_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
MEMORY_STAGE = "memory"  # the child's answer when its memory limit, not the shapes, stopped a reproducer


def torch_available() -> bool:
    """Whether torch is installed, without importing it."""
    return importlib.util.find_spec("torch") is not None


def installed_torch_version() -> Optional[str]:
    """torch's version as its installed metadata says: the ``torch-*.dist-info`` first on ``sys.path``,
    where ``importlib.metadata`` finds it (not imported here: it costs every check ~16 ms at start)."""
    for entry in sys.path:
        try:
            found = [name for name in os.listdir(entry or ".")
                     if name.startswith("torch-") and name.endswith(".dist-info")]
        except OSError:
            continue
        if len(found) > 1:
            return None  # two installs in one folder: which one the child imports is unclear
        if found:
            return _metadata_version(os.path.join(entry or ".", found[0], "METADATA"))
    return None


def _metadata_version(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(64), fh):  # the Version field is in the first lines of the header
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


@dataclass
class _Job:
    """One distinct reproducer (what the child runs) and the findings it may confirm."""

    spec: Dict[str, Any]
    findings: List[Diagnostic] = field(default_factory=list)
    key: Optional[str] = None  # its verdict's key, when verdicts are kept


@dataclass
class _ChildReport:
    """What the child printed: whether torch was imported, the reproducer it was running (started,
    not finished), and the results by job index."""

    ready: bool = False
    version: Optional[str] = None  # torch.__version__ as the child imported it
    running: Optional[int] = None
    results: Dict[int, Verdict] = field(default_factory=dict)


class Confirmer:
    """One torch child per run. ``start`` it as soon as a finding appears: torch's import (the bulk of
    the cost) then overlaps with the rest of the analysis. ``finish`` hands it the reproducers whose
    verdict is not kept in ``verdict_directory`` (None: verdicts are neither read nor kept)."""

    def __init__(self, verdict_directory: Optional[str] = None) -> None:
        self._proc: Optional["subprocess.Popen[str]"] = None
        self._cwd: Optional["tempfile.TemporaryDirectory[str]"] = None
        self._error: Optional[str] = None
        self._verdict_directory = verdict_directory
        self._torch_version: Optional[str] = None  # as torch's installed metadata says
        self.from_cache = 0  # distinct reproducers whose verdict was kept from an earlier run
        self.run_by_torch = 0  # distinct reproducers sent to the child

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
            verdicts = self._verdicts()
            pending: List[_Job] = []
            for job in _jobs(todo, verdicts):
                kept = verdicts.get(job.key) if verdicts is not None and job.key is not None else None
                if kept is None:
                    pending.append(job)
                    continue
                self.from_cache += 1
                _judge(job, kept)
            runnable, notes = _within_budget(pending)
            if not runnable:
                return notes
            self.start()
            if self._proc is None:
                return notes + [self._error or "convlint: torch confirmation did not start"]
            self.run_by_torch = len(runnable)
            return notes + self._run(runnable, timeout, verdicts)
        finally:
            self.close()

    def _verdicts(self) -> Optional[VerdictCache]:
        """The kept verdicts for this torch and this convlint, or None (not asked for, or torch's
        version unknown)."""
        if self._verdict_directory is None:
            return None
        version = self._torch_version = installed_torch_version()
        if version is None:
            return None
        try:
            with open(CHILD_SOURCE, "rb") as fh:
                child = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            return None
        # what the child makes of a reproducer: torch, convlint (a changed child or layer list is a
        # changed verdict even when the version number stays)
        salt = "\0".join([f"torch {version}", f"convlint {__version__}", f"child {child}",
                          ",".join(sorted(REPLAYED_LAYERS))])
        return VerdictCache(self._verdict_directory, salt)

    def _run(self, jobs: Sequence[_Job], timeout: float, verdicts: Optional[VerdictCache]) -> List[str]:
        """Run ``jobs`` in the child; judge their findings, keep the verdicts; returns notes."""
        assert self._proc is not None
        given = {"layers": sorted(REPLAYED_LAYERS),
                 "reproducers": [dict(job.spec, id=i) for i, job in enumerate(jobs)]}
        try:
            out, err = self._proc.communicate(json.dumps(given), timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
            report = _read_report(out or "")
            notes = _record(jobs, report, self._keeping(verdicts, report))
            left = sum(d.confirmed is None for job in jobs for d in job.findings)
            return notes + [f"convlint: torch confirmation stopped after {timeout:g}s {_cut_at(jobs, report)}; "
                            f"{left} finding(s) left unconfirmed (raise the limit with --confirm-timeout SECONDS)"]
        except OSError as exc:  # the child died before reading its input
            self._proc.kill()
            return [f"convlint: torch confirmation failed ({exc}); findings left unconfirmed"]
        report = _read_report(out)
        notes = _record(jobs, report, self._keeping(verdicts, report))
        if self._proc.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            notes.append(f"convlint: torch confirmation failed ({last}); findings left unconfirmed")
        return notes

    def _keeping(self, verdicts: Optional[VerdictCache], report: _ChildReport) -> Optional[VerdictCache]:
        """``verdicts`` if the torch the child imported is the one they are keyed by: a torch found
        first on PYTHONPATH without metadata (a source checkout) must not answer for the installed one."""
        if verdicts is None or report.version is None or self._torch_version is None:
            return None
        return verdicts if _release(report.version) == _release(self._torch_version) else None

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._cwd is not None:
            self._cwd.cleanup()
            self._cwd = None


def _release(version: str) -> str:
    """``2.14.1`` of ``2.14.1+cu130``: a wheel's metadata may leave out the local build tag."""
    return version.split("+", 1)[0].strip()


def _place(d: Diagnostic) -> str:
    return f"{d.path}:{d.line}:{d.column}: {d.code}"


def _jobs(todo: Sequence[Diagnostic], verdicts: Optional[VerdictCache]) -> List[_Job]:
    """The distinct reproducers of ``todo``, in order (findings that share one are judged together)."""
    jobs: Dict[str, _Job] = {}
    for i, d in enumerate(todo):
        spec = {name: value for name, value in (d.repro or {}).items() if name in RUN_FIELDS}
        try:
            identity = canonical(spec)
        except (TypeError, ValueError):
            identity = f"\0unique {i}"  # not JSON: the child cannot be sent it either; kept apart
        job = jobs.setdefault(identity, _Job(spec, key=verdicts.key(spec) if verdicts is not None else None))
        job.findings.append(d)
    return list(jobs.values())


def _within_budget(jobs: Sequence[_Job]) -> Tuple[List[_Job], List[str]]:
    """The jobs this run may send to the child, and a note for each one it may not."""
    runnable: List[_Job] = []
    notes: List[str] = []
    sent_bytes = run_work = over_run = 0
    for job in jobs:
        cost = estimated_cost(job.spec)
        first = job.findings[0]
        if cost is None:
            notes.append(f"convlint: {_place(first)} reproducer not run: its cost cannot be estimated; "
                         f"left unconfirmed")
            continue
        if not cost.affordable:
            notes.append(f"convlint: {_place(first)} reproducer too costly to run (about {cost.work:.1e} "
                         f"multiply-adds, {cost.elements * 4 / 2**30:.1f} GiB of tensors; no smaller copy shows "
                         f"the same error); left unconfirmed (--explain-confirm prints it)")
            continue
        try:
            size = len(json.dumps(job.spec))
        except (TypeError, ValueError):
            size = MAX_SENT_BYTES + 1
        if len(runnable) >= MAX_REPRODUCERS or sent_bytes + size > MAX_SENT_BYTES or \
                run_work + cost.work > MAX_RUN_WORK:
            over_run += len(job.findings)
            continue
        runnable.append(job)
        sent_bytes += size
        run_work += cost.work
    if over_run:
        notes.append(f"convlint: {over_run} finding(s) left unconfirmed: one run confirms at most {MAX_REPRODUCERS} "
                     f"reproducers ({MAX_SENT_BYTES >> 20} MiB, {MAX_RUN_WORK:.0e} multiply-adds in all)")
    return runnable, notes


def _read_report(output: Union[str, bytes]) -> _ChildReport:
    """The child's lines: ``{"ready": version}``, ``{"running": id}``, then each result."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    report = _ChildReport()
    for line in output.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue  # a line cut short when the child was killed
        if not isinstance(message, dict):
            continue
        if "ready" in message:
            report.ready = True
            report.version = str(message["ready"])
        elif isinstance(message.get("running"), int):
            report.running = message["running"]
        elif isinstance(message.get("id"), int) and isinstance(message.get("stage"), str):
            report.results[message["id"]] = {"stage": message["stage"], "error": str(message.get("error", ""))}
            if report.running == message["id"]:
                report.running = None
    return report


def _record(jobs: Sequence[_Job], report: _ChildReport, verdicts: Optional[VerdictCache]) -> List[str]:
    """Judge the findings of every job the child answered and keep the verdicts; notes for the
    reproducers the child had no memory for."""
    notes = []
    for i, result in report.results.items():
        if not 0 <= i < len(jobs):
            continue
        job = jobs[i]
        if result["stage"] == MEMORY_STAGE:
            notes.append(f"convlint: {_place(job.findings[0])} reproducer needed more memory than the torch "
                         f"child may take; left unconfirmed")
            continue
        _judge(job, result)
        if verdicts is not None and job.key is not None and result["stage"] in VERDICT_STAGES:
            verdicts.put(job.key, result)
    return notes


def _cut_at(jobs: Sequence[_Job], report: _ChildReport) -> str:
    """Where the time limit cut the child."""
    if not report.ready:
        return "while torch was being imported"
    if report.running is not None and 0 <= report.running < len(jobs):
        return f"while reproducing {_place(jobs[report.running].findings[0])}"
    return "between reproducers"


def _judge(job: _Job, verdict: Mapping[str, str]) -> None:
    """Set ``confirmed`` and ``evidence`` of the job's findings from torch's verdict."""
    stage = verdict.get("stage")
    for d in job.findings:
        repro = d.repro or {}
        if stage == "ok":
            # a scaled-down reproducer was checked against convlint's replay of torch's shape rules,
            # not against the finding: that it runs cleanly refutes nothing
            if not repro.get("scaled_down"):
                d.confirmed = False
        elif stage == EXPECTED_STAGE.get(repro.get("op", "")):
            d.confirmed = True
            d.evidence = verdict.get("error", "") + _circumstances(repro)


def _circumstances(repro: Mapping[str, Any]) -> str:
    """The values and input the evidence was found with: `` (with planes=4, input 2x4x16x16)``."""
    where = [f"with {repro['values']}"] if repro.get("values") else []
    if "input" in repro:
        where.append(f"input {'x'.join(map(str, repro['input']))}")
    if repro.get("scaled_down"):
        where.append(str(repro["scaled_down"]))
    return f" ({', '.join(where)})" if where else ""


def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    # the child must find convlint itself (an editable or a normal install both do)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["CUDA_VISIBLE_DEVICES"] = ""  # the child runs on the CPU (it says so again itself)
    return env
