"""Issue 6: never crash, never hang, never execute.

Whatever a file holds (bad syntax, a foreign encoding, binary bytes, pathological nesting, 50 MB, a
FIFO, a dangling symlink, syntax newer than the parser), ``convlint check`` reports it in one
``CVL001`` line, or checks it normally, and goes on with the other files of the run: every bad-input
case below runs the real command line on the bad file *and* on a known-bad model file beside it, whose
CVL101 must still be reported.

Then three property/corpus checks, in process: random Python from the grammar (hypothesmith), random
conv/residual model code from a strategy of our own, and the whole standard library of the running
interpreter.

Binary and odd-encoding inputs are generated at run time into ``tmp_path`` (none is committed).
Tests marked ``xfail(strict=True)`` pin a convlint bug found by this file: they start passing (and so
fail, being strict) when the bug is fixed, and the mark is then removed.
"""
from __future__ import annotations

import ast
import codecs
import os
import re
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

from conftest import ROOT

try:
    import resource
except ImportError:  # not on Windows
    resource = None
needs_rlimit = pytest.mark.skipif(resource is None, reason="needs resource.setrlimit to cap the child's memory")

# --------------------------------------------------------------------------------------------------
# the neighbour: a known-bad model checked in every run, whose diagnostic must survive the bad file

NEIGHBOUR = "neighbour_model.py"
MODEL = '''\
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, padding=0)

    def forward(self, x):
        return self.conv(x) + x
'''
BUG_CALL = "nn.Conv2d(64, 64, 3, padding=0)"
CVL101_TEXT = "CVL101 padding should be (K-1)/2 = 1 for kernel_size=3, got padding=0"
NEIGHBOUR_LINE = f"{NEIGHBOUR}:7:21: {CVL101_TEXT}"


def bug_position(text: str) -> tuple:
    """1-based (line, column) of the buggy conv call in decoded source text, as Python counts them
    (\\r\\n, \\n and a lone \\r end a line; a tab is one column)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        if BUG_CALL in line:
            return number, line.index(BUG_CALL) + 1
    raise AssertionError("no bug in the text")


class Run:
    """One ``convlint check --no-confirm`` process: its exit code, stdout/stderr lines and time."""

    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "surrogateescape")
        self.stderr = proc.stderr.decode("utf-8", "surrogateescape")
        self.seconds = seconds

    def lines_for(self, name: str) -> List[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"{name}:")]

    def __repr__(self) -> str:  # what pytest shows when an assertion fails
        return (f"<exit {self.returncode} after {self.seconds:.1f}s\n--- stdout\n{self.stdout[-3000:]}"
                f"\n--- stderr\n{self.stderr[-3000:]}>")


def run_check(cwd: Path, *paths: str, timeout: float = 60, env: Optional[dict] = None,
              memory_limit: Optional[int] = None, with_neighbour: bool = True) -> Run:
    """The real command line, in a child process, on ``paths`` (relative to ``cwd``) plus the neighbour."""
    if with_neighbour:
        (cwd / NEIGHBOUR).write_text(MODEL)
        paths = (*paths, NEIGHBOUR)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    environment.update(env or {})

    def limit_memory():  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", *paths], cwd=str(cwd),
                          capture_output=True, timeout=timeout, env=environment,
                          preexec_fn=limit_memory if memory_limit and resource else None)
    return Run(proc, time.monotonic() - start)


def assert_survived(run: Run, expected_exit: Sequence[int] = (1,)) -> None:
    """No traceback, no crash signal, the expected exit status, and the neighbour still checked."""
    assert run.returncode in expected_exit, run
    assert "Traceback" not in run.stderr, run
    assert any(line.startswith(NEIGHBOUR_LINE) for line in run.stdout.splitlines()), run


def assert_one_cvl001(run: Run, name: str, line: Optional[int] = 1, column: Optional[int] = 1,
                      message: str = "") -> str:
    """Exactly one diagnostic for ``name``: CVL001 at ``line``:``column`` (anywhere when None) whose
    message starts with ``message``."""
    lines = run.lines_for(name)
    assert len(lines) == 1, run
    if line is None:
        assert re.match(rf"{re.escape(name)}:\d+:\d+: CVL001 {re.escape(message)}", lines[0]), run
    else:
        assert lines[0].startswith(f"{name}:{line}:{column}: CVL001 {message}"), run
    return lines[0]


def assert_bug_found(run: Run, name: str, text: str) -> None:
    """The file's only diagnostic is the CVL101 of its conv, at the right line and column."""
    line, column = bug_position(text)
    lines = run.lines_for(name)
    assert len(lines) == 1, run
    assert lines[0].startswith(f"{name}:{line}:{column}: {CVL101_TEXT}"), run


def python_syntax_error(source) -> SyntaxError:
    try:
        compile(source, "<test>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc
    raise AssertionError("Python accepts this source")


def python_accepts(path: Path) -> bool:
    """Whether the running Python parses the file (in a child: deep nesting may exhaust the stack)."""
    proc = subprocess.run([sys.executable, "-c", "import ast, sys; ast.parse(open(sys.argv[1], 'rb').read())",
                           str(path)], capture_output=True, timeout=120)
    return proc.returncode == 0


# --------------------------------------------------------------------------------------------------
# 1. bad inputs, through the real command line

def test_syntax_error_is_reported_where_python_sees_it(tmp_path: Path):
    source = MODEL.replace("return self.conv(x) + x", "return self.conv(x) + x)")
    (tmp_path / "broken.py").write_text(source)
    error = python_syntax_error(source)
    run = run_check(tmp_path, "broken.py")
    assert_survived(run)
    line = assert_one_cvl001(run, "broken.py", error.lineno, error.offset, "syntax error: ")
    assert line == f"broken.py:{error.lineno}:{error.offset}: CVL001 syntax error: {error.msg}"


def test_inconsistent_tabs_are_a_syntax_error(tmp_path: Path):
    source = MODEL.replace("        super().__init__()", "\tsuper().__init__()")
    (tmp_path / "tabs_and_spaces.py").write_text(source)
    error = python_syntax_error(source)
    run = run_check(tmp_path, "tabs_and_spaces.py")
    assert_survived(run)
    assert_one_cvl001(run, "tabs_and_spaces.py", error.lineno, error.offset,
                      "syntax error: inconsistent use of tabs and spaces")


def test_invalid_utf8_without_cookie_cannot_be_decoded(tmp_path: Path):
    data = MODEL.encode().replace(b"import torch.nn as nn\n", b"import torch.nn as nn\n# caf\xe9 cr\xe8me\n")
    (tmp_path / "latin1_no_cookie.py").write_bytes(data)
    run = run_check(tmp_path, "latin1_no_cookie.py")
    assert_survived(run)
    assert_one_cvl001(run, "latin1_no_cookie.py", 1, 1, "cannot decode: not valid utf-8")


def test_unknown_encoding_in_cookie_cannot_be_decoded(tmp_path: Path):
    (tmp_path / "bad_cookie.py").write_bytes(b"# -*- coding: uft-8 -*-\n" + MODEL.encode())
    run = run_check(tmp_path, "bad_cookie.py")
    assert_survived(run)
    assert_one_cvl001(run, "bad_cookie.py", 1, 1, "cannot decode: ")


def test_latin1_with_pep263_cookie_is_decoded_and_checked(tmp_path: Path):
    text = "# -*- coding: latin-1 -*-\n# caf\xe9, cr\xe8me br\xfbl\xe9e\n" + MODEL.replace(
        "padding=0)", "padding=0)  # na\xefve")
    (tmp_path / "latin1_cookie.py").write_bytes(text.encode("latin-1"))
    run = run_check(tmp_path, "latin1_cookie.py")
    assert_survived(run)
    assert_bug_found(run, "latin1_cookie.py", text)


def test_utf8_bom_file_is_checked(tmp_path: Path):
    text = MODEL.replace("padding=0)", "padding=0)  # \u00e9t\u00e9 \u2192 \u03c0")
    (tmp_path / "bom.py").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    run = run_check(tmp_path, "bom.py")
    assert_survived(run)
    assert_bug_found(run, "bom.py", text)  # the BOM is not a column


def test_binary_file_with_nul_bytes(tmp_path: Path):
    (tmp_path / "binary.py").write_bytes(bytes(range(256)) * 16)
    run = run_check(tmp_path, "binary.py")
    assert_survived(run)
    assert_one_cvl001(run, "binary.py", 1, 1, "cannot decode: binary file")


def test_nul_byte_after_the_first_8k(tmp_path: Path):
    (tmp_path / "late_nul.py").write_bytes(MODEL.encode() + b"# " + b"x" * 9000 + b"\x00\n")
    run = run_check(tmp_path, "late_nul.py")
    assert_survived(run)
    lines = run.lines_for("late_nul.py")
    assert len(lines) == 1 and " CVL001 " in lines[0] and "null bytes" in lines[0], run


def test_empty_file_gives_no_diagnostic(tmp_path: Path):
    (tmp_path / "empty.py").write_bytes(b"")
    run = run_check(tmp_path, "empty.py")
    assert_survived(run)
    assert run.lines_for("empty.py") == []
    alone = run_check(tmp_path, "empty.py", with_neighbour=False)
    assert (alone.returncode, alone.stdout, alone.stderr) == (0, "", ""), alone


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_crlf_and_cr_line_endings(tmp_path: Path, newline: str):
    text = MODEL.replace("\n", newline)
    (tmp_path / "endings.py").write_bytes(text.encode())
    run = run_check(tmp_path, "endings.py")
    assert_survived(run)
    assert_bug_found(run, "endings.py", text)


def test_mixed_line_endings(tmp_path: Path):
    lines = MODEL.split("\n")
    text = "\r\n".join(lines[:5]) + "\n" + "\n".join(lines[5:])  # the class header in CRLF, its body in LF
    (tmp_path / "mixed.py").write_bytes(text.encode())
    ast.parse(text)  # Python accepts it
    run = run_check(tmp_path, "mixed.py")
    assert_survived(run)
    assert_bug_found(run, "mixed.py", text)


def test_tab_indentation(tmp_path: Path):
    text = MODEL.replace("    ", "\t")
    (tmp_path / "tabs.py").write_text(text)
    run = run_check(tmp_path, "tabs.py")
    assert_survived(run)
    assert_bug_found(run, "tabs.py", text)  # a tab counts as one column, as in Python's own positions


def test_very_long_line(tmp_path: Path):
    long_string = "'" + "a" * 100_000 + "'"
    text = MODEL.replace("        self.conv = ", f"        _ = {long_string}; self.conv = ")
    assert max(len(line) for line in text.splitlines()) > 100_000
    (tmp_path / "long_line.py").write_text(text)
    run = run_check(tmp_path, "long_line.py")
    assert_survived(run)
    assert_bug_found(run, "long_line.py", text)


DEEP = {
    "parentheses_3000": "x = " + "(" * 3000 + "1" + ")" * 3000 + "\n",
    "unary_minus_20000": "x = " + "-" * 20000 + "1\n",
    "additions_2900": "x = " + "1+" * 2900 + "1\n",
    "attributes_5000": "x = a" + ".b" * 5000 + "\n",
    "calls_199": "x = " + "f(" * 199 + "1" + ")" * 199 + "\n",
    "lambdas_3000": "x = " + "lambda: " * 3000 + "1\n",
    "elif_5000": "if x:\n    pass\n" + "elif x:\n    pass\n" * 5000,
    "indent_99": "".join(" " * i + "if x:\n" for i in range(99)) + " " * 99 + "pass\n",
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_never_crashes(tmp_path: Path, name: str):
    # the layer import makes convlint analyse the file, not only parse it
    (tmp_path / "deep.py").write_text("import torch.nn as nn\n" + DEEP[name])
    run = run_check(tmp_path, "deep.py")
    assert_survived(run, expected_exit=(0, 1))
    lines = run.lines_for("deep.py")
    if python_accepts(tmp_path / "deep.py"):
        assert lines == [] or (len(lines) == 1 and " CVL001 " in lines[0]), run
    else:
        assert len(lines) == 1 and lines[0].startswith("deep.py:") and " CVL001 " in lines[0], run


def test_deep_nesting_in_a_file_with_a_finding(tmp_path: Path):
    (tmp_path / "deep_with_bug.py").write_text(MODEL + "\nY = " + "[" * 150 + "]" * 150 + "\n")
    assert python_accepts(tmp_path / "deep_with_bug.py")
    run = run_check(tmp_path, "deep_with_bug.py")
    assert_survived(run)
    lines = run.lines_for("deep_with_bug.py")
    assert len(lines) == 1 and (" CVL001 " in lines[0] or CVL101_TEXT in lines[0]), run


def _big_module(size: int) -> str:
    """A generated module of about ``size`` bytes: many small residual blocks, each with the bug."""
    body = MODEL.split("\n", 1)[1]
    parts, total, i = ["import torch.nn as nn\n"], 0, 0
    while total < size:
        parts.append(body.replace("class Block(", f"class Block{i}("))
        total += len(parts[-1])
        i += 1
    return "".join(parts)


def test_50mb_module_is_refused_or_checked_in_bounded_time(tmp_path: Path):
    (tmp_path / "huge.py").write_text(_big_module(50 * 1024 * 1024))
    run = run_check(tmp_path, "huge.py", timeout=120)
    assert run.seconds < 60, run
    assert_survived(run)
    lines = run.lines_for("huge.py")
    cvl001 = [line for line in lines if " CVL001 " in line]
    if cvl001:  # refused: one line, nothing else for the file
        assert lines == cvl001 and len(cvl001) == 1, run
        assert cvl001[0].startswith("huge.py:1:1: CVL001 file skipped: too large to check"), run
    else:
        assert lines, run


def test_too_large_message_gives_the_real_size(tmp_path: Path):
    (tmp_path / "huge.py").write_text(_big_module(50 * 1024 * 1024))
    run = run_check(tmp_path, "huge.py")
    assert_survived(run)
    line = assert_one_cvl001(run, "huge.py", 1, 1, "file skipped: too large to check")
    assert re.search(r"\b50(\.\d+)? ?MB\b", line), run


@needs_rlimit
def test_module_just_under_the_size_limit_in_bounded_time_and_memory(tmp_path: Path):
    """Whatever convlint accepts to check, it checks within 60 s and 2 GB (else it must refuse it)."""
    from convlint.limits import MAX_BYTES
    text = _big_module(MAX_BYTES - 64 * 1024)
    assert MAX_BYTES - 128 * 1024 < len(text.encode()) < MAX_BYTES
    (tmp_path / "almost_too_large.py").write_text(text)
    try:
        run = run_check(tmp_path, "almost_too_large.py", timeout=60, memory_limit=2 * 1024 ** 3)
    except subprocess.TimeoutExpired:
        pytest.fail("convlint ran for over 60 s on a module it accepts")
    assert_survived(run)
    assert run.lines_for("almost_too_large.py"), run


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a chmod 000 file")
def test_unreadable_file(tmp_path: Path):
    path = tmp_path / "unreadable.py"
    path.write_text(MODEL)
    path.chmod(0)
    try:
        run = run_check(tmp_path, "unreadable.py")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert_survived(run)
    assert_one_cvl001(run, "unreadable.py", 1, 1, "cannot read: Permission denied")


def test_directory_named_like_a_python_file(tmp_path: Path):
    (tmp_path / "package.py").mkdir()
    (tmp_path / "package.py" / "inner.py").write_text(MODEL)
    run = run_check(tmp_path, "package.py")
    assert_survived(run)
    # a folder is walked, whatever its name: its files are checked
    assert any(line.startswith(f"package.py{os.sep}inner.py:7:21: CVL101") for line in run.stdout.splitlines()), run


def test_broken_symlink(tmp_path: Path):
    (tmp_path / "dangling.py").symlink_to(tmp_path / "no-such-target.py")
    run = run_check(tmp_path, "dangling.py")
    assert_survived(run)
    assert_one_cvl001(run, "dangling.py", 1, 1, "cannot read: No such file or directory")
    # inside a folder too
    folder = run_check(tmp_path, ".", with_neighbour=False)
    assert_one_cvl001(folder, f".{os.sep}dangling.py", 1, 1, "cannot read: ")


def test_symlink_loop(tmp_path: Path):
    (tmp_path / "loop_a.py").symlink_to("loop_b.py")
    (tmp_path / "loop_b.py").symlink_to("loop_a.py")
    run = run_check(tmp_path, "loop_a.py")
    assert_survived(run)
    assert_one_cvl001(run, "loop_a.py", 1, 1, "cannot read: ")


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_unix_socket_named_like_a_python_file(tmp_path: Path):
    server = socket.socket(socket.AF_UNIX)
    try:
        try:
            server.bind(str(tmp_path / "socket.py"))
        except OSError as exc:  # e.g. a temporary folder path longer than sun_path allows
            pytest.skip(f"cannot bind a Unix socket there: {exc}")
        run = run_check(tmp_path, "socket.py")
    finally:
        server.close()
    assert_survived(run)
    assert_one_cvl001(run, "socket.py", 1, 1, "cannot read: ")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_named_like_a_python_file(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.py")
    try:
        run = run_check(tmp_path, "pipe.py", timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("convlint hung on a FIFO")
    assert_survived(run)
    assert_one_cvl001(run, "pipe.py", 1, 1, "cannot read: ")


def test_path_that_does_not_exist(tmp_path: Path):
    run = run_check(tmp_path, "no_such_dir/no_such_file.py")
    assert run.returncode == 2, run
    assert run.stderr.splitlines() == ["convlint: no_such_dir/no_such_file.py: no such file or directory"], run
    assert NEIGHBOUR_LINE in run.stdout, run  # the other files are still checked
    assert "Traceback" not in run.stderr


NEW_SYNTAX = {
    "match_statement": "match command.split():\n    case [action, obj]:\n        pass\n"
                       "    case {'k': v, **rest}:\n        pass\n    case Point(x=0) | None:\n        pass\n"
                       "    case _:\n        pass\n",
    "walrus": "if (n := len(a)) > 10:\n    print(f'{(m := n)=}')\n",
    "positional_only": "def f(a, /, b, *, c):\n    return a\n",
    "parenthesized_with": "with (open('a') as f, open('b') as g):\n    pass\n",
    "except_star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "star_in_subscript": "x = a[*b]\n",
    "relaxed_decorator": "@buttons[0].clicked.connect\ndef f():\n    pass\n",
    "pep695_type_alias": "type X = int\n",
    "pep695_generic_def": "def f[T](x: T) -> T:\n    return x\n",
    "pep695_generic_class": "class Box[T]:\n    item: T\n",
    "pep701_fstring": "x = f\"{'a' + \"b\"}\"\ny = f'{\"\\n\".join(z)}'\n",
}


@pytest.mark.parametrize("name", sorted(NEW_SYNTAX))
def test_python_3_9_to_3_12_syntax(tmp_path: Path, name: str):
    text = NEW_SYNTAX[name] + "\n\n" + MODEL
    (tmp_path / "modern.py").write_text(text)
    run = run_check(tmp_path, "modern.py")
    assert_survived(run)
    try:
        compile(text, "modern.py", "exec", dont_inherit=True)
    except SyntaxError as error:  # too new for the running Python: its error, where it says
        assert_one_cvl001(run, "modern.py", error.lineno, error.offset, "syntax error: ")
        return
    assert_bug_found(run, "modern.py", text)  # what Python runs, convlint reads


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_cvl001_in_every_format(tmp_path: Path, fmt: str):
    import json
    (tmp_path / "binary.py").write_bytes(b"\x00\x01\x02")
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / NEIGHBOUR).write_text(MODEL)
    proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--format", fmt, "binary.py",
                           "broken.py", NEIGHBOUR], cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc
    if fmt == "json":
        got = sorted((d["path"], d["code"]) for d in json.loads(proc.stdout))
    elif fmt == "sarif":
        got = sorted((r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"])
                     for r in json.loads(proc.stdout)["runs"][0]["results"])
    elif fmt == "github":
        got = sorted((line.split("file=")[1].split(",")[0], line.split("title=")[1].split("::")[0])
                     for line in proc.stdout.splitlines())
    else:
        got = sorted((line.split(":")[0], line.split()[1]) for line in proc.stdout.splitlines())
    assert got == [("binary.py", "CVL001"), ("broken.py", "CVL001"), (NEIGHBOUR, "CVL101")]


def test_binary_on_stdin(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--stdin-filename", "in.py",
                           "-"], input=b"\x89PNG\r\n\x1a\n\x00\x00", cwd=str(tmp_path), capture_output=True,
                          timeout=60)
    assert proc.returncode == 1, proc
    assert proc.stdout.decode().splitlines() == ["in.py:1:1: CVL001 cannot decode: binary file (NUL byte)"]


def test_file_name_that_is_not_utf8(tmp_path: Path):
    name = os.fsdecode(b"mod\xe8le.py")
    try:
        (tmp_path / name).write_text(MODEL)
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses non-UTF-8 names")
    run = run_check(tmp_path, name, env={"PYTHONIOENCODING": "utf-8"})
    assert_survived(run)
    assert len([line for line in run.stdout.splitlines() if line.startswith("mod")]) == 1, run


# project mode: an import of another checked file is followed, so that file's content matters too

def _project(tmp_path: Path, helper: str) -> None:
    (tmp_path / "helpers.py").write_text(helper)
    (tmp_path / "model.py").write_text(MODEL.replace("import torch.nn as nn\n",
                                                     "import torch.nn as nn\nfrom helpers import pad\n")
                                       .replace("padding=0)", "padding=pad(0))"))


def test_project_import_never_executes_the_helper(tmp_path: Path):
    marker = tmp_path / "executed.txt"
    _project(tmp_path, f"import os\nopen({str(marker)!r}, 'w').write('!')\nos._exit(3)\n\n\n"
                       "def pad(p):\n    return p\n")
    run = run_check(tmp_path, "model.py", "helpers.py")
    assert_survived(run)
    assert not marker.exists()


def test_project_import_of_a_deeply_nested_helper(tmp_path: Path):
    _project(tmp_path, "X = " + "-" * 20000 + "1\n\n\ndef pad(p):\n    return p\n")
    run = run_check(tmp_path, "model.py", "helpers.py")
    assert_survived(run)
    assert_one_cvl001(run, "helpers.py", 1, 1, "")


@needs_rlimit
def test_project_import_of_a_too_large_helper(tmp_path: Path):
    _project(tmp_path, "def pad(p):\n    return p\n\n\n" + "x = 1\n" * (2 * 1024 * 1024))
    try:
        run = run_check(tmp_path, "model.py", "helpers.py", timeout=60, memory_limit=2 * 1024 ** 3)
    except subprocess.TimeoutExpired:
        pytest.fail("convlint ran for over 60 s")
    assert_survived(run)
    assert_one_cvl001(run, "helpers.py", 1, 1, "file skipped: too large to check")


# the abstract interpreter evaluates constructor code: it must not build what it cannot afford

def test_huge_list_repetition_in_constructor(tmp_path: Path):
    text = MODEL.replace("        self.conv =", "        table = [0] * 10**10\n        self.conv =")
    (tmp_path / "repeat.py").write_text(text)
    run = run_check(tmp_path, "repeat.py", memory_limit=2 * 1024 ** 3)
    assert_survived(run)
    assert not any("internal error" in line for line in run.stdout.splitlines()), run


def test_huge_stride_does_not_hang(tmp_path: Path):
    (tmp_path / "stride.py").write_text(MODEL.replace("padding=0)", "stride=10**9)"))
    try:
        run = run_check(tmp_path, "stride.py", timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("convlint hung on stride=10**9")
    assert_survived(run)


def test_long_forward_is_not_quadratic(tmp_path: Path):
    text = MODEL.replace("padding=0)", "padding=1)").replace(
        "        return self.conv(x) + x\n", "        y = x\n" + "        y = self.conv(y) + y\n" * 2000
        + "        return y\n")
    (tmp_path / "long_forward.py").write_text(text)
    try:
        run = run_check(tmp_path, "long_forward.py", timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("over 10 s for a 2000-line forward")
    assert_survived(run)


def test_conv2d_branch_with_conv1d_shortcut(tmp_path: Path):
    (tmp_path / "mixed_dims.py").write_text(MODEL.replace(
        "        self.conv = nn.Conv2d(64, 64, 3, padding=0)\n",
        "        self.conv = nn.Conv2d(4, 2, 3, padding=1)\n        self.shortcut = nn.Conv1d(4, 4, 1)\n").replace(
        "return self.conv(x) + x", "return self.conv(x) + self.shortcut(x)"))
    run = run_check(tmp_path, "mixed_dims.py")
    assert_survived(run)
    assert len(run.lines_for("mixed_dims.py")) == 1, run


def test_channels_as_power_of_an_argument(tmp_path: Path):
    (tmp_path / "unet_stage.py").write_text(
        "import torch.nn as nn\n\n\nclass Stage(nn.Module):\n    def __init__(self, base=32, level=1):\n"
        "        super().__init__()\n        width = base * 2 ** level\n"
        "        self.conv = nn.Conv2d(width, width, 3)\n\n    def forward(self, x):\n"
        "        return x + self.conv(x)\n")
    run = run_check(tmp_path, "unet_stage.py")
    assert_survived(run)
    assert len(run.lines_for("unet_stage.py")) == 1, run


# --------------------------------------------------------------------------------------------------
# 2. any Python the grammar allows (hypothesmith), in process

def _hypothesis_settings(examples: int):
    """Deterministic in CI (the same examples every run); ``CONVLINT_FUZZ_RANDOM=1`` explores new ones and
    ``CONVLINT_FUZZ_SHRINK=1`` shrinks a failing example to a minimal one (minutes, so off by default)."""
    from hypothesis import HealthCheck, Phase, settings
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("CONVLINT_FUZZ_SHRINK"):
        phases.append(Phase.shrink)
    return settings(max_examples=examples, deadline=None, database=None, phases=phases,
                    derandomize=not os.environ.get("CONVLINT_FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def _assert_diagnostics(result, source: str, valid: bool) -> None:
    from convlint.diagnostics import Diagnostic
    from convlint.app.engine import INTERNAL_ERROR
    from convlint.rules import RULES
    assert isinstance(result, list)
    lines = source.split("\n")
    for d in result:
        assert isinstance(d, Diagnostic), d
        assert d.code in RULES, d
        assert not d.message.startswith(INTERNAL_ERROR), d
        assert "\n" not in d.message, d
        if valid:
            assert d.code != "CVL001", d
            assert 1 <= d.line <= len(lines), d
            assert 1 <= d.column <= len(lines[d.line - 1]) + 1, d
            assert (d.line, d.column) <= (d.end_line, d.end_column), d
            assert d.end_line <= len(lines) and d.end_column <= len(lines[d.end_line - 1]) + 1, d


def test_any_grammatical_source_never_raises():
    hypothesmith = pytest.importorskip("hypothesmith")
    from hypothesis import given
    from convlint.app.engine import check_source

    @_hypothesis_settings(200)
    @given(hypothesmith.from_grammar())
    def check(source: str) -> None:
        _assert_diagnostics(check_source(source, "fuzz.py"), source, valid=False)

    check()


# --------------------------------------------------------------------------------------------------
# 3. random conv/residual model code, in process

def model_sources():
    """Random, syntactically valid nn.Module code: Conv1d/2d/3d with int/tuple/symbolic kernel, stride,
    padding, dilation and groups (keyword or positional), BatchNorm, pools, nested Sequentials, helper
    functions, residual adds with +, += and torch.add, shortcuts chosen by if/else on constructor
    arguments."""
    from hypothesis import strategies as st

    small = st.integers(min_value=0, max_value=7)
    channel_literals = st.sampled_from(["1", "3", "8", "16", "32", "64", "128", "256"])

    @st.composite
    def size_arg(draw, names, dims, allow_strings=False):
        kind = draw(st.sampled_from(["int", "int", "tuple", "symbol", "expr", "string"] if allow_strings
                                    else ["int", "int", "tuple", "symbol", "expr"]))
        if kind == "int":
            return str(draw(small))
        if kind == "tuple":
            length = draw(st.sampled_from([dims, dims, 1, 2, 3]))
            items = draw(st.lists(small, min_size=length, max_size=length))
            return "(" + ", ".join(map(str, items)) + ("," if length == 1 else "") + ")"
        if kind == "symbol":
            return draw(st.sampled_from(names))
        if kind == "expr":
            name = draw(st.sampled_from(names))
            return draw(st.sampled_from([f"{name} // 2", f"({name} - 1) // 2", f"{name} * 2", f"{name} + 1",
                                         f"({name} - 1) // 2 * dilation", f"max({name}, 1)"]))
        return draw(st.sampled_from(["'same'", "'valid'"]))

    @st.composite
    def channels(draw, previous):
        return draw(st.one_of(st.just(previous), st.just(previous), channel_literals,
                              st.sampled_from(["in_ch", "out_ch", "mid", "out_ch * 4", "in_ch // 2", "planes",
                                               "self.mid", "16 * 2 ** level", "2 ** 6", "in_ch * 2 ** 0"])))

    @st.composite
    def conv(draw, cin, cout, names):
        dims = draw(st.sampled_from([1, 2, 2, 2, 3]))
        values = [cin, cout, draw(size_arg(names, dims)), draw(size_arg(names, dims)),
                  draw(size_arg(names, dims, allow_strings=True)), draw(size_arg(names, dims)),
                  draw(st.sampled_from(["1", "1", "2", "4", "groups", cin, "32"])), "False"]
        keywords = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"]
        positional = draw(st.integers(min_value=0, max_value=8))
        args = values[:positional]
        for keyword, value in list(zip(keywords, values))[positional:]:
            if keyword in ("in_channels", "out_channels", "kernel_size") or draw(st.booleans()):
                args.append(f"{keyword}={value}")
        if positional < 3 and draw(st.booleans()):
            head, tail = args[:positional], args[positional:]
            args = head + draw(st.permutations(tail))  # keywords in any order
        layer = f"nn.Conv{dims}d({', '.join(args)})"
        return layer, cout

    @st.composite
    def layer(draw, cin, names, depth):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "bn", "pool", "act", "helper", "sequential"]
                                    if depth < 2 else ["conv", "bn", "pool", "act"]))
        if kind == "conv":
            return draw(conv(cin, draw(channels(cin)), names))
        if kind == "bn":
            dims = draw(st.sampled_from([1, 2, 2, 3]))
            return f"nn.BatchNorm{dims}d({draw(channels(cin))})", cin
        if kind == "pool":
            dims = draw(st.sampled_from([1, 2, 2, 3]))
            pool = draw(st.sampled_from(["MaxPool", "AvgPool", "AdaptiveAvgPool"]))
            if pool == "AdaptiveAvgPool":
                return f"nn.{pool}{dims}d({draw(size_arg(names, dims))})", cin
            args = [draw(size_arg(names, dims)) for _ in range(draw(st.integers(min_value=1, max_value=3)))]
            return f"nn.{pool}{dims}d({', '.join(args)})", cin
        if kind == "act":
            return draw(st.sampled_from(["nn.ReLU(inplace=True)", "nn.ReLU()", "nn.Identity()", "nn.GELU()"])), cin
        if kind == "helper":
            cout = draw(channels(cin))
            helper = draw(st.sampled_from(["conv3x3({cin}, {cout}, stride)", "conv1x1({cin}, {cout})",
                                           "conv3x3({cin}, {cout})", "conv_bn({cin}, {cout}, 3, stride)",
                                           "conv_bn({cin}, {cout}, k=1)", "make_stack({cin}, 2)"]))
            return helper.format(cin=cin, cout=cout), (cin if "make_stack" in helper else cout)
        items, c = [], cin
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            text, c = draw(layer(c, names, depth + 1))
            items.append(text)
        form = draw(st.sampled_from(["plain", "plain", "ordered", "starred"]))
        if form == "ordered":
            pairs = ", ".join(f"('m{i}', {text})" for i, text in enumerate(items))
            return f"nn.Sequential(OrderedDict([{pairs}]))", c
        if form == "starred":
            return f"nn.Sequential(*[{', '.join(items)}])", c
        return f"nn.Sequential({', '.join(items)})", c

    half_kernel = ["k // 2", "(k - 1) // 2", "0", "1"]

    @st.composite
    def helpers(draw):
        k = draw(st.sampled_from(["3", "5", "2", "(3, 3)", "(1, 3)"]))
        p = draw(st.sampled_from(["1", "0", "2", "dilation", "(1, 1)", "'same'"]))
        return (
            "def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):\n"
            f"    return nn.Conv2d(in_planes, out_planes, kernel_size={k}, stride=stride, padding={p}, "
            "groups=groups, bias=False, dilation=dilation)\n\n\n"
            "def conv1x1(in_planes, out_planes, stride=1):\n"
            f"    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, "
            f"bias={draw(st.sampled_from(['False', 'True']))})\n\n\n"
            "def conv_bn(cin, cout, k=3, s=1):\n"
            f"    return nn.Sequential(nn.Conv2d(cin, cout, k, s, {draw(st.sampled_from(half_kernel))}, "
            "bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))\n\n\n"
            "def make_stack(c, n):\n"
            "    layers = []\n"
            "    for _ in range(n):\n"
            f"        layers.append(nn.Conv2d(c, c, {draw(st.sampled_from(['3', '1', '2']))}, "
            f"padding={draw(st.sampled_from(['1', '0']))}))\n"
            "        layers += [nn.BatchNorm2d(c), nn.ReLU()]\n"
            "    return nn.Sequential(*layers)\n"
        )

    @st.composite
    def block(draw, index):
        expansion = draw(st.sampled_from(["", "", "    expansion = 4\n", "    expansion = 1\n"]))
        defaults = {"in_ch": draw(channel_literals), "out_ch": draw(channel_literals),
                    "stride": draw(st.sampled_from(["1", "1", "2", "(2, 1)", "3"])),
                    "k": draw(st.sampled_from(["1", "3", "5", "2", "(3, 1)"])),
                    "dilation": draw(st.sampled_from(["1", "2"])), "groups": draw(st.sampled_from(["1", "2", "4"])),
                    "planes": draw(channel_literals), "level": draw(st.sampled_from(["0", "1", "2"]))}
        names = ["k", "stride", "dilation", "in_ch", "out_ch"]
        use_flag = draw(st.booleans())
        params = ", ".join(f"{n}={v}" for n, v in defaults.items()) + (", use_proj=True" if use_flag else "")
        body = ["        super().__init__()",
                f"        mid = {draw(st.sampled_from(['out_ch', 'out_ch // 4', 'planes', '64', 'in_ch * 2']))}",
                "        self.mid = mid"]
        attributes: List[str] = []
        c = "in_ch"
        for i in range(draw(st.integers(min_value=1, max_value=4))):
            text, c = draw(layer(c, names, 0))
            if draw(st.integers(min_value=0, max_value=5)) == 0:
                other, _ = draw(layer(c, names, 1))
                condition = draw(st.sampled_from(["stride == 1", "in_ch != out_ch", "k > 1", "use_proj" if use_flag
                                                  else "dilation > 1"]))
                body += [f"        if {condition}:", f"            self.l{i} = {text}", "        else:",
                         f"            self.l{i} = {other}"]
            else:
                body.append(f"        self.l{i} = {text}")
            attributes.append(f"l{i}")
        shortcut_kind = draw(st.sampled_from(["conditional", "conditional", "always", "none", "identity",
                                              "downsample_none"]))
        proj = (f"nn.Sequential(nn.Conv{draw(st.sampled_from([2, 2, 1, 3]))}d(in_ch, {draw(channels('out_ch'))}, "
                f"kernel_size=1, stride={draw(st.sampled_from(['stride', '1', '2']))}, bias=False), "
                f"nn.BatchNorm2d({draw(channels('out_ch'))}))")
        if shortcut_kind == "conditional":
            condition = draw(st.sampled_from(["stride != 1 or in_ch != out_ch", "stride > 1", "in_ch != out_ch",
                                              "use_proj" if use_flag else "stride != 1",
                                              "stride != 1 or in_ch != out_ch * 4",
                                              "stride != 1 or in_ch != out_ch * self.expansion" if expansion
                                              else "stride != 1"]))
            body += ["        self.shortcut = nn.Sequential()", f"        if {condition}:",
                     f"            self.shortcut = {proj}"]
        elif shortcut_kind == "always":
            body.append(f"        self.shortcut = {proj}")
        elif shortcut_kind == "identity":
            body.append("        self.shortcut = nn.Identity()")
        elif shortcut_kind == "downsample_none":
            body += ["        self.downsample = None", "        if stride != 1:",
                     f"            self.downsample = {proj}"]
        if draw(st.integers(min_value=0, max_value=3)) == 0:  # a ModuleList walked in forward
            text, _ = draw(layer("out_ch", names, 1))
            body.append(f"        self.extra = nn.ModuleList([{text} for _ in range({draw(small)})])")
            attributes.append("extra")
        forward = ["    def forward(self, x):", "        identity = x"]
        value = "x"
        for name in attributes:
            if name == "extra":
                forward += ["        for m in self.extra:", f"            out = m({value})"]
                value = "out"
                continue
            step = draw(st.sampled_from(["self.{n}({v})", "self.{n}({v})", "F.relu(self.{n}({v}))",
                                         "torch.relu(self.{n}({v}))"]))
            forward.append(f"        out = {step.format(n=name, v=value)}")
            value = "out"
        short = {"conditional": "self.shortcut(x)", "always": "self.shortcut(x)", "identity": "self.shortcut(x)",
                 "none": "identity", "downsample_none": "identity"}[shortcut_kind]
        if shortcut_kind == "downsample_none":
            forward += ["        if self.downsample is not None:", "            identity = self.downsample(x)"]
        add = draw(st.sampled_from(["out = out + {s}", "out += {s}", "out = torch.add(out, {s})", "out = {s} + out",
                                    "out = F.relu(out + {s})", "out = out + ({s} if self.training else x)",
                                    "out = torch.cat([out, {s}], 1)", "out = out * 0.5 + {s}"]))
        forward += [f"        {add.format(s=short)}", "        return out"]
        comment = draw(st.sampled_from(["", "", "# convlint: input-size=3x32x32\n"]))
        return (f"{comment}class Block{index}(nn.Module):\n{expansion}    def __init__(self, {params}):\n"
                + "\n".join(body) + "\n\n" + "\n".join(forward) + "\n")

    @st.composite
    def network(draw, blocks):
        stages = []
        c = draw(channel_literals)
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            index = draw(st.integers(min_value=0, max_value=blocks - 1))
            out = draw(channel_literals)
            stages.append(f"Block{index}({c}, {out}, {draw(st.sampled_from(['1', '2']))})")
            c = out
        pool = draw(st.sampled_from(["nn.AdaptiveAvgPool2d(1)", "nn.AdaptiveAvgPool2d((2, 2))", "nn.MaxPool2d(4)"]))
        features = draw(st.sampled_from([c, f"{c} * 4", "512", f"{c} * 2 * 2"]))
        return ("# convlint: input-size=3x32x32\nclass Net(nn.Module):\n    def __init__(self, num_classes=10):\n"
                "        super().__init__()\n"
                f"        self.stem = nn.Sequential(nn.Conv2d(3, {stages[0].split('(')[1].split(',')[0]}, 3, "
                "padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())\n"
                f"        self.layers = nn.Sequential({', '.join(stages)})\n"
                f"        self.pool = {pool}\n"
                f"        self.fc = nn.Linear({features}, num_classes)\n\n"
                "    def forward(self, x):\n"
                "        x = self.layers(self.stem(x))\n"
                "        x = torch.flatten(self.pool(x), 1)\n"
                "        return self.fc(x)\n")

    @st.composite
    def module(draw):
        header = draw(st.sampled_from(["import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n",
                                       "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"]))
        header = "from collections import OrderedDict\n\n" + header
        count = draw(st.integers(min_value=1, max_value=3))
        parts = [header, draw(helpers())] + [draw(block(i)) for i in range(count)]
        if draw(st.booleans()):
            parts.append(draw(network(count)))
        return "\n\n".join(parts)

    return module()


def test_random_conv_models_never_raise_and_place_inside_the_source():
    pytest.importorskip("hypothesis")
    from hypothesis import given
    from convlint.app.engine import check_source

    @_hypothesis_settings(300)
    @given(model_sources())
    def check(source: str) -> None:
        ast.parse(source)  # the strategy writes valid Python
        _assert_diagnostics(check_source(source, "model.py"), source, valid=True)

    check()


# --------------------------------------------------------------------------------------------------
# 4. the standard library of the running interpreter, in process

def test_whole_standard_library():
    from convlint.app import cli, discovery, engine
    stdlib = sysconfig.get_paths()["stdlib"]
    start = time.monotonic()
    files = discovery.discover([stdlib], []).files  # site-packages is skipped by discover
    assert len(files) > 500
    diagnostics = cli.run_files(files, engine.CheckRequest(), jobs=0)
    seconds = time.monotonic() - start
    internal = [d for d in diagnostics if d.code == "CVL001" and d.message.startswith(engine.INTERNAL_ERROR)]
    print(f"\nstandard library: {len(files)} files, {len(diagnostics)} diagnostics "
          f"({sum(d.code == 'CVL001' for d in diagnostics)} CVL001) in {seconds:.1f} s")
    assert not internal, "\n".join(f"{d.path}:{d.line}:{d.column}: {d.message}" for d in internal)
    assert all("\n" not in d.message for d in diagnostics)
