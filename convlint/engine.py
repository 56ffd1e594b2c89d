"""One file from bytes to diagnostics: decode, parse once, analyse, run the rules, place the results.

The tree is Python's own ``ast``: its parser is C and gives every node its place, where LibCST's parse
alone costs more than a whole check may (see ``bench/``); nothing convlint reports needs comments or
whitespace, which only a concrete tree keeps.
"""
from __future__ import annotations

import ast
import codecs
import gc
import io
import os
import re
import stat
import tokenize
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .analysis import analyse
from .diagnostics import Diagnostic, Finding
from .rules import ALL_RULES, RULES
from .stubs import imports_stub

# Every finding involves one of these layers (by name: an alias import still names it), so a file
# without any of them is only syntax-checked (unless it is torch code importing from another checked
# file, whose helpers may build them).
_LAYER_NAMES = (r"\b(Conv[123]d|BatchNorm[123]d|SyncBatchNorm|GroupNorm|InstanceNorm[123]d|Linear|"
                r"(Max|Avg|AdaptiveAvg|AdaptiveMax)Pool[123]d|Sequential)\b")
_RELEVANT = re.compile(_LAYER_NAMES.encode())
_TORCH = re.compile(rb"\btorch\b|\bnn\.")  # model code that builds its layers through another file's helpers
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# Larger files are refused: real model files are 10-250 KB (the largest of timm, torchvision, monai
# and smp: 234 KB), and 1 MB keeps a check of a pathological file under 2 GB and 30 s
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
    return check_source(source, path, selection, input_size, may_hold_finding(data, project), project=project,
                        real_path=real_path)


def may_hold_finding(data: bytes, project=None) -> bool:
    """Whether a file's bytes are worth analysing: they name a layer, import a library convlint
    models, or (checked with other files) are torch code importing from them."""
    return _RELEVANT.search(data) is not None or imports_stub(data) or \
        (project is not None and _TORCH.search(data) is not None and project.imports_from_tree(data))


def check_source(source: str, path: str, selection: Selection = Selection(),
                 input_size: Optional[Sequence[int]] = None, relevant: bool = True,
                 noqa: bool = True, tree: Optional[ast.Module] = None, project=None,
                 real_path: Optional[str] = None) -> List[Diagnostic]:
    """Diagnostics of one file's source; ``noqa=False`` leaves ``# noqa`` to the caller (flake8),
    ``tree`` is the source's ``ast`` when the caller parsed it already (flake8 hands us its tree)."""
    with _collector_paused():
        return _checked(source, path, selection, input_size, relevant, noqa, tree, project, real_path)


def _checked(source: str, path: str, selection: Selection, input_size: Optional[Sequence[int]],
             relevant: bool, noqa: bool, tree: Optional[ast.Module], project,
             real_path: Optional[str]) -> List[Diagnostic]:
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
    return _analysed(tree, source, path, selection, input_size, noqa, project, real_path)


@contextmanager
def _collector_paused():
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


def _analysed(tree: ast.Module, source: str, path: str, selection: Selection,
              input_size: Optional[Sequence[int]], noqa: bool, project,
              real_path: Optional[str]) -> List[Diagnostic]:
    try:
        analysis = analyse(tree, source, input_size, project, real_path or path)
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
    return failures + _place(list(best.values()), source, path, noqa)


def normalize_newlines(source: str) -> str:
    """Python reads ``\\r\\n`` and ``\\r`` as ``\\n``: so do the lines convlint reports."""
    return source.replace("\r\n", "\n").replace("\r", "\n") if "\r" in source else source


def parse_python(source: str) -> ast.Module:
    """The ``ast`` of a source (newlines already normalized); raises what ``ast.parse`` raises."""
    return ast.parse(source)


def _rank(finding: Finding) -> Tuple[int, int]:
    return (finding.severity != "error", len(finding.message))


def _place(findings: List[Finding], source: str, path: str, noqa: bool = True) -> List[Diagnostic]:
    lines = source.split("\n")
    out: List[Diagnostic] = []
    for f in findings:
        span = _span(f.node, lines) if f.node is not None else None
        if span is None:
            continue
        line, col, end_line, end_col = span
        if noqa and _suppressed(lines, line, f.code):
            continue
        fix = None
        if f.fix is not None:
            fix_span = _span(f.fix.node, lines)
            if fix_span is not None:
                at = fix_span[2:] if f.fix.insert_after else fix_span[:2]
                fix = {"line": at[0], "column": at[1], "end_line": fix_span[2], "end_column": fix_span[3],
                       "replacement": f.fix.replacement}
        repro = None
        if f.severity == "error" and f.subject is not None and f.code in RULES:
            try:
                repro = RULES[f.code].reproducer(f.subject)
            except Exception:  # noqa: BLE001 - no reproducer: the finding stays unconfirmed
                repro = None
        out.append(Diagnostic(path, line, col, end_line, end_col, f.code, f.severity, f.message, fix=fix,
                              repro=repro))
    out.sort(key=Diagnostic.sort_key)
    return out


def _span(node, lines: Sequence[str]) -> Optional[Tuple[int, int, int, int]]:
    """1-based line and column (in characters, as editors count them; ``ast`` counts UTF-8 bytes) of
    the start and the end of ``node``; None for a node that has no place in the source."""
    line = getattr(node, "lineno", None)
    if line is None or not 0 < line <= len(lines):
        return None
    end_line = node.end_lineno if node.end_lineno is not None else line
    end = node.end_col_offset if node.end_col_offset is not None else node.col_offset
    return (line, _characters(lines[line - 1], node.col_offset) + 1,
            end_line, _characters(lines[end_line - 1], end) + 1 if end_line <= len(lines) else end + 1)


def _characters(line: str, byte_offset: int) -> int:
    if line.isascii():
        return byte_offset
    return len(line.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "replace"))


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
