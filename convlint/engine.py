"""One file from bytes to diagnostics: decode, parse once, analyse, run the rules, place the results.

Positions are computed only for files that have a finding (LibCST's position metadata costs more
than the parse itself, and almost every file has no finding).
"""
from __future__ import annotations

import codecs
import io
import os
import re
import stat
import tokenize
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .analysis import analyse
from .diagnostics import Diagnostic, Finding
from .rules import ALL_RULES, RULES
from .stubs import imports_stub

# Every finding involves one of these layers (by name: an alias import still names it), so a file
# without any of them is only syntax-checked, with `ast`, ten times cheaper than LibCST (unless it
# is torch code importing from another checked file, whose helpers may build them).
_LAYER_NAMES = (r"\b(Conv[123]d|BatchNorm[123]d|SyncBatchNorm|GroupNorm|InstanceNorm[123]d|Linear|"
                r"(Max|Avg|AdaptiveAvg|AdaptiveMax)Pool[123]d|Sequential)\b")
_RELEVANT = re.compile(_LAYER_NAMES.encode())
RELEVANT_TEXT = re.compile(_LAYER_NAMES)
_TORCH = re.compile(rb"\btorch\b|\bnn\.")  # model code that builds its layers through another file's helpers
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# Larger files are refused: LibCST needs about 1.2 GB and 25 s per MB; real model files are 10-250 KB
# (the largest of timm, torchvision, monai and smp: 234 KB), and 1 MB keeps a check under 2 GB and 30 s
MAX_BYTES = 1024 * 1024


@dataclass
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
        return rule is None or rule.severity != "info" or chosen > 3


def decode(data: bytes) -> str:
    """Source text as Python reads it: a BOM, a PEP 263 coding cookie, else UTF-8."""
    if b"\x00" in data[:8192]:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "binary file (NUL byte)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, str(exc)) from None
    if encoding == "utf-8-sig":
        data = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
        encoding = "utf-8"
    return data.decode(encoding)


def check_bytes(data: bytes, path: str, selection: Selection = Selection(),
                input_size: Optional[Sequence[int]] = None, project=None,
                real_path: Optional[str] = None) -> List[Diagnostic]:
    if len(data) > MAX_BYTES:
        return [_too_large(path, len(data))]
    try:
        source = decode(data)
    except (UnicodeDecodeError, LookupError) as exc:
        return [_file_error(path, 1, 1, f"cannot decode: {_reason(exc)}")]
    relevant = _RELEVANT.search(data) is not None or imports_stub(data) or \
        (project is not None and _TORCH.search(data) is not None and project.imports_from_tree(data))
    return check_source(source, path, selection, input_size, relevant, project=project, real_path=real_path)


def check_source(source: str, path: str, selection: Selection = Selection(),
                 input_size: Optional[Sequence[int]] = None, relevant: bool = True,
                 noqa: bool = True, python_checked: bool = False, project=None,
                 real_path: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics of one file's source; ``noqa=False`` leaves ``# noqa`` to the caller (flake8),
    ``python_checked`` says Python's parser already accepted the source (flake8 hands us its tree)."""
    # Python's own parser first: its syntax errors say where they are (LibCST's are often a line
    # late), and it refuses the pathological nesting on which LibCST's native parser crashes
    if not python_checked:
        python_error = python_syntax_error(source, path)
        if python_error or not relevant:
            return python_error
    elif not relevant:
        return []
    try:
        module = parse_libcst(source)
    except cst.ParserSyntaxError as exc:
        return [_file_error(path, exc.raw_line, exc.raw_column + 1, f"cannot parse with LibCST: {exc.message}")]
    except RecursionError:
        return [_file_error(path, 1, 1, "cannot parse: the code is nested too deeply")]
    except Exception as exc:  # noqa: BLE001 - LibCST raises a few non-syntax errors on odd input
        return [_file_error(path, 1, 1, f"cannot parse: {exc}")]
    try:
        analysis = analyse(module, source, input_size, project, real_path or path)
    except RecursionError:
        return [_file_error(path, 1, 1, "cannot analyse: the code is nested too deeply")]
    except Exception as exc:  # noqa: BLE001 - one file's internal error must not stop the run
        return [_internal_error(path, "the analysis", exc)]
    # one finding per code and node; where several paths found it, an error over a warning, then the
    # plainest message
    best: Dict[Tuple[str, int], Finding] = {}
    failures: List[Diagnostic] = []
    for rule in ALL_RULES:
        if not selection.wants(rule.code):
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
    try:
        return failures + _place(list(best.values()), module, source, path, noqa)
    except RecursionError:
        return failures + [_file_error(path, 1, 1, "cannot place findings: the code is nested too deeply")]


def parse_libcst(source: str) -> cst.Module:
    """LibCST's tree of a source Python's parser accepted (``python_syntax_error`` first: LibCST's native
    parser crashes on nesting Python refuses). Python reads \r\n and \r as \n; LibCST 1.0 fails on
    some mixes of them."""
    return cst.parse_module(source.replace("\r\n", "\n").replace("\r", "\n"))


def _rank(finding: Finding) -> Tuple[int, int]:
    return (finding.severity != "error", len(finding.message))


def _place(findings: List[Finding], module: cst.Module, source: str, path: str,
           noqa: bool = True) -> List[Diagnostic]:
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    lines = source.splitlines()
    out: List[Diagnostic] = []
    for f in findings:
        rng = positions.get(f.node) if f.node is not None else None
        if rng is None:
            continue
        line, col = rng.start.line, rng.start.column + 1
        if noqa and _suppressed(lines, line, f.code):
            continue
        fix = None
        if f.fix is not None:
            frng = positions.get(f.fix.node)
            if frng is not None:
                at = frng.end if f.fix.insert_after else frng.start
                end = frng.end
                fix = {"line": at.line, "column": at.column + 1, "end_line": end.line,
                       "end_column": end.column + 1, "replacement": f.fix.replacement}
        repro = None
        if f.severity == "error" and f.subject is not None and f.code in RULES:
            try:
                repro = RULES[f.code].reproducer(f.subject)
            except Exception:  # noqa: BLE001 - no reproducer: the finding stays unconfirmed
                repro = None
        out.append(Diagnostic(path, line, col, rng.end.line, rng.end.column + 1, f.code, f.severity,
                              f.message, fix=fix, repro=repro))
    out.sort(key=Diagnostic.sort_key)
    return out


def _suppressed(lines: Sequence[str], line: int, code: str) -> bool:
    if not 0 < line <= len(lines):
        return False
    m = _NOQA.search(lines[line - 1])
    if m is None:
        return False
    codes = m.group("codes")
    if not codes:
        return True
    return any(code.startswith(c.upper()) for c in re.split(r"[,\s]+", codes) if c)


def python_syntax_error(source: str, path: str) -> List[Diagnostic]:
    """A file no rule can flag still gets its syntax checked, the cheap way."""
    import ast
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return [_file_error(path, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
    except (RecursionError, MemoryError):
        return [_file_error(path, 1, 1, "cannot parse: the code is nested too deeply")]
    except ValueError as exc:
        return [_file_error(path, 1, 1, f"cannot parse: {exc}")]
    return []


INTERNAL_ERROR = "internal error in "


def _internal_error(path: str, where: str, exc: BaseException) -> Diagnostic:
    """A bug of convlint's own: one line for the file (the traceback with CONVLINT_DEBUG=1)."""
    import os
    import traceback
    if os.environ.get("CONVLINT_DEBUG"):
        traceback.print_exc()
    return _file_error(path, 1, 1, f"{INTERNAL_ERROR}{where}: {type(exc).__name__}: {exc}")


def _too_large(path: str, size: int) -> Diagnostic:
    return _file_error(path, 1, 1, f"file too large to check ({size / (1024 * 1024):.1f} MB; the limit is "
                                   f"{MAX_BYTES // (1024 * 1024)} MB)")


def _file_error(path: str, line: int, column: int, message: str) -> Diagnostic:
    return Diagnostic(path, line, column, line, column, "CVL001", "error", message)


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        if exc.reason.startswith("binary"):
            return exc.reason
        return f"not valid {exc.encoding} ({exc.reason} at byte {exc.start})"
    return str(exc)


def check_path(path: str, display: Optional[str] = None, selection: Selection = Selection(),
               input_size: Optional[Sequence[int]] = None, project=None) -> List[Diagnostic]:
    shown = display or path
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return [_file_error(shown, 1, 1, "cannot read: not a regular file")]
        if info.st_size > MAX_BYTES:
            return [_too_large(shown, info.st_size)]
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return [_file_error(shown, 1, 1, f"cannot read: {exc.strerror or exc}")]
    return check_bytes(data, shown, selection, input_size, project, path)
