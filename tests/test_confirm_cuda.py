"""Confirmation with a CUDA build of torch, what `pip install torch` gives most Linux users (no GPU needed:
the build imports without one, mapping ~3 GB of address space on the way).

``CONVLINT_CUDA_PYTHON`` names the Python of a venv holding that build; ``.ci/run`` makes the venv and
sets it (and fails when it cannot), so these tests are skipped only in local runs without it.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT

CUDA_PYTHON = os.environ.get("CONVLINT_CUDA_PYTHON")
pytestmark = pytest.mark.skipif(not CUDA_PYTHON, reason="CONVLINT_CUDA_PYTHON is not set: no venv with a CUDA "
                                                        "build of torch to test with (.ci/run makes one)")


def _run(*args: str, stdin: str = None, env=None) -> subprocess.CompletedProcess:
    assert CUDA_PYTHON is not None
    return subprocess.run([CUDA_PYTHON, *args], input=stdin, capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, **(env or {})}, timeout=300)


def test_the_venv_holds_a_cuda_build_of_torch():
    proc = _run("-c", "import torch; print(torch.__version__, torch.version.cuda)")
    version, cuda = proc.stdout.split()
    assert cuda != "None", version


def test_every_finding_is_confirmed_with_a_cuda_build(tmp_path):
    proc = _run("-m", "convlint", "check", "--format", "json", "fixtures/sample/resnet_bugs.py",
                env={"CONVLINT_CACHE_DIR": str(tmp_path)})
    found = json.loads(proc.stdout)
    assert len(found) == 4, proc.stderr
    assert [d["confirmed"] for d in found] == [True] * 4, proc.stderr
    assert proc.stderr == ""
    # torch's own messages (and the values and input they were found with)
    assert found[0]["evidence"] == ("The size of tensor a (14) must match the size of tensor b (16) at "
                                    "non-singleton dimension 3 (with planes=4, input 2x4x16x16)")
    assert found[3]["evidence"].startswith("mat1 and mat2 shapes cannot be multiplied")


def test_the_child_is_bounded_in_memory_with_a_cuda_build():
    """The limit is set after torch's import, above what the CUDA libraries mapped: a reproducer asking
    for 40 GB fails at once with torch's allocation error, and it is not taken for a verdict."""
    spec = {"layers": ["Identity"], "reproducers": [{"id": 0, "op": "consume", "input": [1, 1, 100000, 100000],
                                                     "prefix": [], "consumer": ["Identity", {}]}]}
    proc = _run("-m", "convlint.confirm.child", stdin=json.dumps(spec))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "ready" in lines[0] and "+cu" in lines[0]["ready"], proc.stderr
    result = [line for line in lines if "stage" in line][0]
    assert result["id"] == 0 and result["stage"] == "memory"
    assert "alloc" in result["error"].lower()
