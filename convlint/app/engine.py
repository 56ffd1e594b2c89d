"""One file from bytes to diagnostics: decode, parse once, analyse, run the rules, place the results.

The tree is Python's own ``ast`` (``convlint.source.decoding`` says why); a file that holds no finding
(``convlint.source.prefilter``) is only syntax-checked.
"""
from __future__ import annotations

import ast
import gc
import os
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..analysis import Analysis, analyse
from ..confirm.reproduce import reproducer
from ..diagnostics import Diagnostic, Finding, Severity
from ..rules import ALL_RULES, RULES
from ..limits import MAX_BYTES
from ..source.decoding import decode, normalize_newlines, parse_python
from ..source.directives import suppressed
from ..storage import NotRegularFile, TooLarge, read_limited
from ..interpreter.loader import installed_modules
from ..source.environment import Environment, find_environment
from ..source.module_names import imported_modules
from ..source.prefilter import TORCH_CODE
from ..torchlib.catalogue import MODEL_CODE
from ..torchlib.library import LIBRARIES
from .project import Project


@dataclass(frozen=True)
class Selection:
    """Which codes are reported: ``select``/``ignore`` lists of codes or prefixes."""

    select: Sequence[str] = ("CVL",)
    ignore: Sequence[str] = ()

    def wants(self, code: str) -> bool:
        if code == "CVL001":
            return True  # a file that cannot be checked is always said
        chosen = max((len(p) for p in self.select if code.startswith(p)), default=-1)
        ignored = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        if chosen < 0 or ignored > chosen:
            return False
        rule = RULES.get(code)
        # `select = ["CVL"]` means every error and warning rule; info rules are chosen by name
        return rule is None or rule.severity != Severity.INFO or chosen > 3


@dataclass(frozen=True)
class CheckRequest:
    """How files are checked: which codes are reported, the input size of top-level models, the
    files checked together (imports among them are followed), whether ``# noqa`` is honoured here
    (flake8 honours it itself), and whether findings get their torch reproducers (only when they will
    be run or printed: finding one can cost more than the check)."""

    selection: Selection = Selection()
    input_size: Optional[Tuple[int, ...]] = None
    project: Optional[Project] = None
    noqa: bool = True
    reproduce: bool = False
    python: Optional[str] = None  # the environment of the checked code (``convlint.source.environment``)


DEFAULT = CheckRequest()
_ENVIRONMENTS: Dict[Optional[str], Environment] = {}  # found once per process


def environment_of(python: Optional[str]) -> Environment:
    """The environment ``--python`` names (None: convlint's own, then ``$VIRTUAL_ENV``)."""
    if python not in _ENVIRONMENTS:
        _ENVIRONMENTS[python] = find_environment(python)
    return _ENVIRONMENTS[python]


def library_fingerprint(python: Optional[str]) -> str:
    """The installed versions of the environment's libraries: results depend on them (a cache key
    part), through convlint's models of some and the source of the others (read in place)."""
    environment = environment_of(python)
    return environment.fingerprint([library.distribution for library in LIBRARIES] + environment.distributions())


def check_path(path: str, request: CheckRequest = DEFAULT, display: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics of the file at ``path`` (reported as ``display``)."""
    shown = display or path
    try:
        data = read_limited(path, MAX_BYTES)
    except NotRegularFile:  # a FIFO or device would block or never end
        return [_file_error(shown, 1, 1, "cannot read: not a regular file")]
    except TooLarge as exc:
        return [too_large(shown, exc.size)]
    except OSError as exc:
        return [_file_error(shown, 1, 1, f"cannot read: {exc.strerror or exc}")]
    return check_bytes(data, shown, request, path)


def check_bytes(data: bytes, path: str, request: CheckRequest = DEFAULT,
                real_path: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics of a file's bytes (``real_path``: where it is, when ``path`` only names it)."""
    if len(data) > MAX_BYTES:
        return [too_large(path, len(data))]
    try:
        source = decode(data)
    except (UnicodeDecodeError, LookupError) as exc:
        return [_file_error(path, 1, 1, f"cannot decode: {_reason(exc)}")]
    relevant = may_hold_finding(data, request.project, environment_of(request.python))
    return check_source(source, path, request, relevant, real_path=real_path)


def may_hold_finding(data: bytes, project: Optional[Project] = None, environment: Optional[Environment] = None) -> bool:
    """Whether a file's bytes are worth analysing: they name a layer, import a library convlint
    models, or are torch code importing from the files checked with it or from an installed library
    (whose blocks it may build)."""
    if MODEL_CODE.names_a_layer(data) or MODEL_CODE.imports_library(data):
        return True
    if TORCH_CODE.search(data) is None:
        return False
    if project is not None and project.imports_from_tree(data):
        return True
    return environment is not None and imports_installed(data, environment)


def imports_installed(data: bytes, environment: Environment) -> bool:
    """Whether a file's bytes import a library installed in ``environment`` (read in place)."""
    installed = installed_modules(environment)
    return any(installed.has_module(m) for m in imported_modules(data))


def check_source(source: str, path: str, request: CheckRequest = DEFAULT, relevant: bool = True,
                 tree: Optional[ast.Module] = None, real_path: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics of one file's source; ``relevant=False`` only checks its syntax; ``tree`` is the
    source's ``ast`` when the caller parsed it already (flake8 hands us its tree)."""
    with _collector_paused():
        return _checked(source, path, request, relevant, tree, real_path)


def _checked(source: str, path: str, request: CheckRequest, relevant: bool, tree: Optional[ast.Module],
             real_path: Optional[str]) -> List[Diagnostic]:
    project = request.project
    if tree is None:
        source = normalize_newlines(source)
        tree = project.parsed(real_path or path, source) if project is not None else None
    if tree is None:
        try:
            tree = parse_python(source)
        except SyntaxError as exc:
            return [_file_error(path, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
        except (RecursionError, MemoryError):
            return [_file_error(path, 1, 1, "cannot parse: the code is nested too deeply")]
        except ValueError as exc:  # a NUL byte
            return [_file_error(path, 1, 1, f"cannot parse: {exc}")]
    if not relevant:
        return []
    try:
        analysis = analyse(tree, source, request.input_size, project, real_path or path,
                           environment_of(request.python))
    except RecursionError:
        return [_file_error(path, 1, 1, "cannot analyse: the code is nested too deeply")]
    except MemoryError:
        return [_file_error(path, 1, 1, "cannot analyse: out of memory")]
    except Exception as exc:  # noqa: BLE001 - one file's internal error must not stop the run
        return [_internal_error(path, "the analysis", exc)]
    if analysis.stopped is not None and os.environ.get("CONVLINT_DEBUG"):
        print(f"convlint: {path}: analysis stopped early: {analysis.stopped} ran out "
              f"(what was found before is reported)", file=sys.stderr)
    return _judged(analysis, source, path, request)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one file is parsed and analysed: both make millions
    of small objects and almost no cycles, and the collector's passes over the live heap (the trees
    of the project's files) cost a fifth of the run; it is back on, as it was, after the file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _judged(analysis: Analysis, source: str, path: str, request: CheckRequest) -> List[Diagnostic]:
    """The selected rules' findings: one per code and node; where several paths found it, an error
    over a warning, then the plainest message."""
    best: Dict[Tuple[str, int], Finding] = {}
    failures: List[Diagnostic] = []
    for rule in ALL_RULES:
        if not request.selection.wants(rule.code):
            continue
        try:
            for finding in rule.check(analysis):
                key = (finding.code, id(finding.node))
                if key not in best or _rank(finding) < _rank(best[key]):
                    best[key] = finding
        except Exception as exc:  # noqa: BLE001 - the other rules still report
            failures.append(_internal_error(path, rule.code, exc))
    if not best:
        return failures
    return failures + _place(list(best.values()), source, path, request)


def _rank(finding: Finding) -> Tuple[int, int]:
    return (finding.severity != "error", len(finding.message))


def _place(findings: List[Finding], source: str, path: str, request: CheckRequest) -> List[Diagnostic]:
    lines = source.split("\n")
    out: List[Diagnostic] = []
    for f in findings:
        span = _span(f.node, lines) if f.node is not None else None
        if span is None:
            continue
        line, col, end_line, end_col = span
        if request.noqa and suppressed(lines, line, f.code):
            continue
        fix = None
        if f.fix is not None:
            fix_span = _span(f.fix.node, lines)
            if fix_span is not None:
                at = fix_span[2:] if f.fix.insert_after else fix_span[:2]
                fix = {"line": at[0], "column": at[1], "end_line": fix_span[2], "end_column": fix_span[3],
                       "replacement": f.fix.replacement}
        repro = None
        if request.reproduce and f.severity == Severity.ERROR and f.subject is not None and f.code in RULES:
            try:
                repro = reproducer(RULES[f.code], f.subject)
            except Exception:  # noqa: BLE001 - no reproducer: the finding stays unconfirmed
                repro = None
        out.append(Diagnostic(path, line, col, end_line, end_col, f.code, f.severity, f.message, fix=fix,
                              repro=repro))
    out.sort(key=Diagnostic.sort_key)
    return out


def _span(node: ast.AST, lines: Sequence[str]) -> Optional[Tuple[int, int, int, int]]:
    """1-based line and column (in characters, as editors count them; ``ast`` counts UTF-8 bytes) of
    the start and the end of ``node``; None for a node that has no place in the source."""
    line: Optional[int] = getattr(node, "lineno", None)
    if line is None or not 0 < line <= len(lines):
        return None
    column: int = getattr(node, "col_offset", 0)
    end_line: Optional[int] = getattr(node, "end_lineno", None)
    end_line = line if end_line is None else end_line
    end: Optional[int] = getattr(node, "end_col_offset", None)
    end = column if end is None else end
    return (line, _characters(lines[line - 1], column) + 1,
            end_line, _characters(lines[end_line - 1], end) + 1 if end_line <= len(lines) else end + 1)


def _characters(line: str, byte_offset: int) -> int:
    if line.isascii():
        return byte_offset
    return len(line.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "replace"))




INTERNAL_ERROR = "internal error in "


def _internal_error(path: str, where: str, exc: BaseException) -> Diagnostic:
    """A bug of convlint's own: one line for the file (the traceback with CONVLINT_DEBUG=1)."""
    if os.environ.get("CONVLINT_DEBUG"):
        traceback.print_exc()
    return _file_error(path, 1, 1, f"{INTERNAL_ERROR}{where}: {type(exc).__name__}: {exc}")


def too_large(path: str, size: int) -> Diagnostic:
    """A warning, not an error: a vendored big file must not fail CI forever (``exclude`` silences it)."""
    return Diagnostic(path, 1, 1, 1, 1, "CVL001", Severity.WARNING,
                      f"file skipped: too large to check ({size / (1024 * 1024):.1f} MB; the limit is "
                      f"{MAX_BYTES // (1024 * 1024)} MB)")


def _file_error(path: str, line: int, column: int, message: str) -> Diagnostic:
    return Diagnostic(path, line, column, line, column, "CVL001", "error", message)


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        if exc.reason.startswith("binary"):
            return exc.reason
        return f"not valid {exc.encoding} ({exc.reason} at byte {exc.start})"
    return str(exc)
