from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_convlint(*args: str, stdin: str = None, cwd: Path = ROOT, env=None) -> subprocess.CompletedProcess:
    """The real command line, in a child process, as users and editors run it."""
    return subprocess.run([sys.executable, "-m", "convlint", *args], input=stdin, capture_output=True,
                          text=True, cwd=str(cwd), env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """convlint's result cache in a folder of the test session, not the user's ~/.cache."""
    os.environ["CONVLINT_CACHE_DIR"] = str(tmp_path_factory.mktemp("convlint-cache"))


@pytest.fixture
def convlint():
    return run_convlint
