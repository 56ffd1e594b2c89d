"""Every failure path of the command line and the flake8 plugin ends in one line and the right exit
status (2 for the run, ``CVL001`` for a file), never a traceback: bad option values, broken configs,
endless stdin, a report that cannot be written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from convlint.app.cli import MAX_JOBS, PARALLEL_THRESHOLD, worker_count
from convlint.limits import MAX_BYTES

SAMPLE = (ROOT / "fixtures" / "sample" / "resnet_bugs.py").read_text()
ENV = {"PYTHONPATH": str(ROOT)}  # this checkout's convlint, from any working folder


def _one_line_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    """Exit 2, nothing on stdout, and exactly the one line ``expected`` on stderr."""
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", expected + "\n")


@pytest.mark.parametrize("value, message", [
    ("1000000", f"must be 0 (all cores) to {MAX_JOBS}, got 1000000"),
    ("99999999999999999999", f"must be 0 (all cores) to {MAX_JOBS}, got 99999999999999999999"),
    ("-1", f"must be 0 (all cores) to {MAX_JOBS}, got -1"),
    ("two", "not a whole number: 'two'"),
])
def test_bad_jobs_values_are_usage_errors(convlint, value: str, message: str) -> None:
    proc = convlint("check", "--no-confirm", f"-j{value}", "fixtures/sample/resnet_bugs.py")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == f"convlint check: error: argument -j/--jobs: {message}"


def test_never_more_workers_than_files_to_share() -> None:
    assert worker_count(300, 40) == 40 // PARALLEL_THRESHOLD
    assert worker_count(300, 5) == 1
    assert worker_count(2, 10_000) == 2
    assert worker_count(0, 10_000) == (os.cpu_count() or 1)


@pytest.mark.parametrize("value, message", [
    ("nan", "must be above 0 and at most 3600 seconds, got nan"),
    ("inf", "must be above 0 and at most 3600 seconds, got inf"),
    ("0", "must be above 0 and at most 3600 seconds, got 0"),
    ("-5", "must be above 0 and at most 3600 seconds, got -5"),
    ("soon", "not a number: 'soon'"),
])
def test_bad_confirm_timeouts_are_usage_errors(convlint, value: str, message: str) -> None:
    proc = convlint("check", f"--confirm-timeout={value}", "fixtures/sample/resnet_bugs.py")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == f"convlint check: error: argument --confirm-timeout: {message}"


def test_endless_stdin_is_read_up_to_the_limit_and_skipped() -> None:
    with open("/dev/zero", "rb") as zeros:
        proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "-"], stdin=zeros,
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "-:1:1: CVL001 file skipped: too large to check (1.0 MB; the limit is 1 MB)\n"
    assert proc.stderr == ""


def test_a_file_over_the_limit_is_a_warning_that_exclude_silences(convlint, tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(SAMPLE)
    (tmp_path / "vendored.py").write_text("x = 1\n" * (MAX_BYTES // 6 + 1))
    proc = convlint("check", "--no-confirm", "--format", "json", ".", cwd=tmp_path, env=ENV)
    found = [(d["path"], d["code"], d["severity"]) for d in json.loads(proc.stdout)]
    assert ("./vendored.py", "CVL001", "warning") in found
    (tmp_path / "pyproject.toml").write_text('[tool.convlint]\nexclude = ["vendored.py"]\n')
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path, env=ENV)
    assert proc.returncode == 1 and "vendored.py" not in proc.stdout


@pytest.mark.parametrize("content, message", [
    (b'tool = "x"\n', "[tool.convlint] must be a table"),
    (b'[tool]\nconvlint = 3\n', "[tool.convlint] must be a table"),
    (b'[tool.convlint]\nselect = ["CVL"]\n# \xff\xfe\n', "cannot read configuration: not valid UTF-8 (at byte 35)"),
    (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "cannot read configuration: nested too deeply"),
    (b"[tool.convlint]\ninput-size = [true, true, true]\n",
     "input-size must be C,H,W positive integers, e.g. [3, 224, 224]"),
    (b"[tool.convlint]\ninput-size = [3, 99999999999, 32]\n",
     "input-size must be C,H,W positive integers, e.g. [3, 224, 224]"),
], ids=["tool-a-string", "convlint-a-number", "not-utf8", "nested-arrays", "input-size-booleans", "input-size-huge"])
def test_a_broken_config_is_one_line_and_exit_2(convlint, tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "model.py").write_text(SAMPLE)
    (tmp_path / "pyproject.toml").write_bytes(content)
    proc = convlint("check", "--no-confirm", "model.py", cwd=tmp_path, env=ENV)
    _one_line_error(proc, f"convlint: {tmp_path / 'pyproject.toml'}: {message}")


def test_a_config_that_is_a_fifo_does_not_block(convlint, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pyproject.toml")
    (tmp_path / "model.py").write_text(SAMPLE)
    found = convlint("check", "--no-confirm", "model.py", cwd=tmp_path, env=ENV)  # (300 s: the hang guard)
    assert found.returncode == 1  # a FIFO is no pyproject.toml: the defaults
    named = convlint("check", "--no-confirm", "--config", "pyproject.toml", "model.py", cwd=tmp_path, env=ENV)
    _one_line_error(named, "convlint: pyproject.toml: cannot read configuration: not a regular file")


def test_a_report_that_cannot_be_written_is_exit_2() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--format", "sarif",
                               "fixtures/sample/resnet_bugs.py"], stdout=full, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, "convlint: cannot write the report: No space left on device\n")


def test_a_closed_stdout_is_exit_2() -> None:
    proc = subprocess.run(f"{sys.executable} -m convlint check --no-confirm fixtures/sample/resnet_bugs.py >&-",
                          shell=True, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, "convlint: cannot write the report: standard output is closed\n")


def test_an_absurd_input_size_comment_is_ignored(convlint, tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("# convlint: input-size=3x" + "9" * 5000 + "\n" + SAMPLE)
    proc = convlint("check", "--no-confirm", "model.py", cwd=tmp_path, env=ENV)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "CVL001" not in proc.stdout


# --- the flake8 plugin ---------------------------------------------------------------------------


def _flake8(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **ENV, "CONVLINT_NO_CACHE": "1"}, timeout=300)


def test_flake8_reports_a_broken_config_on_each_file_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(SAMPLE)
    (tmp_path / "b.py").write_text(SAMPLE)
    (tmp_path / "pyproject.toml").write_text('tool = "x"\n')
    proc = _flake8("--select", "CVL", "a.py", "b.py", cwd=tmp_path)
    message = f"CVL001 cannot check: broken configuration: {tmp_path / 'pyproject.toml'}: [tool.convlint] must be a table"
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, f"a.py:1:1: {message}\nb.py:1:1: {message}\n", "")


def test_flake8_skips_a_file_over_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text(SAMPLE + "x = 1\n" * (MAX_BYTES // 6))
    proc = _flake8("--select", "CVL", "big.py", cwd=tmp_path)
    assert proc.stdout == "big.py:1:1: CVL001 file skipped: too large to check (1.0 MB; the limit is 1 MB)\n"


def test_flake8_without_a_cvl_selection_does_not_analyse(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(SAMPLE)
    assert _flake8("--select", "E9", "model.py", cwd=tmp_path).stdout == ""
    assert _flake8("--select", "E9,CVL1", "model.py", cwd=tmp_path).stdout.count(" CVL101 ") == 1
