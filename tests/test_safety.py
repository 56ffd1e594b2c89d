"""convlint reads source, it never imports it, and `convlint check` never imports torch."""
from __future__ import annotations

import socket
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


SOCKET_TRAP = '''\
import socket
import torch.nn as nn


def phone_home(where):
    """Tell the test's listening socket that this code ran, and where."""
    with socket.create_connection(("127.0.0.1", {port}), timeout=1) as conn:
        conn.sendall(where.encode())
    return 64


phone_home("module")


class Block(nn.Module):
    width = phone_home("class body")

    def __init__(self, channels=phone_home("default argument")):
        super().__init__()
        phone_home("__init__")
        self.conv = nn.Conv2d(channels, channels, 3, padding=0)

    def forward(self, x):
        phone_home("forward")
        return self.conv(x) + x
'''


@pytest.mark.parametrize("confirm", [[], ["--no-confirm"]], ids=["with-confirmation", "without"])
def test_checked_code_never_opens_a_socket(convlint, tmp_path: Path, confirm):
    """A model file that connects to the test's listening socket when it is imported, when its class
    body or a default argument is evaluated, or when __init__ or forward runs: checking it must not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))  # a port the OS gives the test: nothing else can hold it
        listener.listen(8)
        port = listener.getsockname()[1]
        model = tmp_path / "socket_trap.py"
        model.write_text(SOCKET_TRAP.format(port=port))
        proc = convlint("check", *confirm, str(model))
        assert proc.returncode == 1, proc.stderr
        assert "CVL101" in proc.stdout
        # convlint has exited: any connection it made is already queued (the kernel completes the
        # handshake without accept), so a short timeout cannot miss one
        listener.settimeout(0.1)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            conn = None
        if conn is not None:
            with conn:
                conn.settimeout(0.5)
                try:
                    said = conn.recv(100)
                except OSError:
                    said = b""
            pytest.fail(f"the checked file was executed: it connected to the test's socket ({said!r})")


def test_check_does_not_import_torch():
    code = (
        "import sys\n"
        "from convlint.app.cli import main\n"
        f"status = main(['check', '--format', 'json', {str(ROOT / 'fixtures')!r}])\n"
        "assert status == 1, status\n"
        "assert 'torch' not in sys.modules, 'convlint imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
