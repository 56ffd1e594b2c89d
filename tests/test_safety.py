"""convlint reads source, it never imports it, and `convlint check` never imports torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BOOBY_TRAP = '''\
import os
import torch.nn as nn
open({marker!r}, "w").write("imported!")
os._exit(3)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, padding=0)

    def forward(self, x):
        return self.conv(x) + x
'''


@pytest.mark.parametrize("confirm", [[], ["--no-confirm"]], ids=["with-confirmation", "without"])
def test_checked_code_is_never_executed(convlint, tmp_path: Path, confirm):
    marker = tmp_path / "marker.txt"
    model = tmp_path / "trap.py"
    model.write_text(BOOBY_TRAP.format(marker=str(marker)))
    proc = convlint("check", *confirm, str(model))
    assert proc.returncode == 1, proc.stderr
    assert "CVL101" in proc.stdout
    assert not marker.exists()


def test_check_does_not_import_torch():
    code = (
        "import sys\n"
        "from convlint.cli import main\n"
        f"status = main(['check', '--format', 'json', {str(ROOT / 'fixtures')!r}])\n"
        "assert status == 1, status\n"
        "assert 'torch' not in sys.modules, 'convlint imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
