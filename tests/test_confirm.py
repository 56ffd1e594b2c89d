"""Confirmation with real torch: reproducers built from the inferred numbers, run in one child."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Optional

import pytest

import convlint.app.cli as cli
import convlint.app.engine as engine
import convlint.rules as rules_mod
from conftest import ROOT
from convlint.diagnostics import Finding
from convlint.confirm.program import program
from convlint.rules.base import Replay, Rule

torch = pytest.importorskip("torch")  # installed by .ci/run as torch==2.13.0

RESIDUAL_AND_CHANNEL = ["CVL101", "CVL102", "CVL201", "CVL202", "CVL301", "CVL303"]


def _error_of(code: str) -> Optional[str]:
    """Run a reproducer program as a user would paste it; torch's first error line."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return None
    return [l for l in proc.stderr.strip().splitlines() if l.strip()][-1].split(": ", 1)[1]


def test_every_bad_fixture_is_confirmed_with_torchs_message(convlint):
    folders = [str(ROOT / "fixtures" / code) for code in RESIDUAL_AND_CHANNEL]
    proc = convlint("check", "--format", "json", "--explain-confirm", *folders)
    assert proc.returncode == 1, proc.stderr
    found = [d for d in json.loads(proc.stdout) if d["severity"] == "error"]
    assert len(found) >= 50
    unconfirmed = [(d["path"], d["line"], d["code"]) for d in found if d["confirmed"] is not True]
    assert unconfirmed == []
    # the evidence is torch's own message: the program --explain-confirm prints raises exactly it
    programs = proc.stderr.split("# ")[1:]
    assert len(programs) == len(found)
    for d, text in list(zip(found, programs))[::7]:
        header, code = text.split("\n", 1)
        assert header.startswith(f"{d['path']}:{d['line']}:{d['column']}: {d['code']}")
        message = _error_of(code)
        assert message is not None and d["evidence"].startswith(message), (d, message)


def test_text_format_marks_confirmed(convlint):
    proc = convlint("check", "fixtures/sample/resnet_bugs.py")
    assert proc.returncode == 1
    assert all(line.endswith(" [confirmed]") for line in proc.stdout.splitlines())
    first = json.loads(convlint("check", "--format", "json", "fixtures/sample/resnet_bugs.py").stdout)[0]
    assert first["confirmed"] is True
    assert first["evidence"] == ("The size of tensor a (14) must match the size of tensor b (16) at non-singleton "
                                 "dimension 3 (with planes=4, input 2x4x16x16)")


class _PlantedMistake(Rule):
    """A rule that is wrong on purpose: it flags every residual add whose sides match."""

    code = "CVL901"
    name = "planted-mistake"
    summary = "test only"
    replay = Replay.ADD_ANY

    def check(self, analysis) -> Iterable[Finding]:
        for shapes in analysis.residuals:
            if not shapes.channels_differ and shapes.size.relation.value == "equal":
                yield Finding(self.code, "planted: this add is fine", shapes.add.node, subject=shapes)


@pytest.fixture
def planted_rule(monkeypatch):
    rule = _PlantedMistake()
    monkeypatch.setattr(rules_mod, "ALL_RULES", rules_mod.ALL_RULES + [rule])
    monkeypatch.setitem(rules_mod.RULES, rule.code, rule)
    monkeypatch.setattr(engine, "ALL_RULES", rules_mod.ALL_RULES)
    return rule


def _planted_block(tmp_path: Path) -> Path:
    f = tmp_path / "block.py"
    f.write_text(
        "import torch.nn as nn\n\n\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, c):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 3, padding=1)\n\n"
        "    def forward(self, x):\n"
        "        return self.conv(x) + x\n")
    return f


def test_a_finding_torch_does_not_reproduce_is_dropped(planted_rule, tmp_path, capsys):
    f = _planted_block(tmp_path)
    status = cli.main(["check", "--select", "CVL9", "--format", "json", str(f)])
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and status == 0
    assert "CVL901 not reproduced by torch" in err

    status = cli.main(["check", "--select", "CVL9", "--format", "json", "--keep-unconfirmed", str(f)])
    kept = json.loads(capsys.readouterr().out)
    assert [(d["code"], d["severity"], d["confirmed"]) for d in kept] == [("CVL901", "warning", False)]
    assert status == 1


def test_a_slow_child_is_cut_off(convlint):
    proc = convlint("check", "--format", "json", "--confirm-timeout", "0.05", "fixtures/sample/resnet_bugs.py")
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert len(found) == 4 and all(d["confirmed"] is None for d in found)
    assert "torch confirmation stopped after 0.05s" in proc.stderr


def test_no_confirm_and_config_skip_it(convlint, tmp_path):
    quick = json.loads(convlint("check", "--no-confirm", "--format", "json", "fixtures/sample/resnet_bugs.py").stdout)
    assert all(d["confirmed"] is None for d in quick)
    (tmp_path / "pyproject.toml").write_text("[tool.convlint]\nconfirm = false\n")
    (tmp_path / "m.py").write_text((ROOT / "fixtures/sample/resnet_bugs.py").read_text())
    off = json.loads(convlint("check", "--format", "json", "m.py", cwd=tmp_path).stdout)
    assert len(off) == 4 and all(d["confirmed"] is None for d in off)


def test_without_torch_confirmation_is_skipped_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "torch_available", lambda: False)
    status = cli.main(["check", "--format", "json", str(ROOT / "fixtures/sample/resnet_bugs.py")])
    out, err = capsys.readouterr()
    assert status == 1
    assert all(d["confirmed"] is None for d in json.loads(out))
    assert err.count("\n") == 1 and "torch is not installed" in err


def test_reproducer_program_runs_as_printed():
    spec = {"op": "add", "input": [2, 4, 8, 8], "prefix": [],
            "branch": [("Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": (3, 3), "stride": (1, 1),
                                   "padding": (0, 0), "dilation": (1, 1), "groups": 1})],
            "shortcut": []}
    assert _error_of(program(spec)) == ("The size of tensor a (6) must match the size of tensor b (8) at "
                                        "non-singleton dimension 3")


def test_the_child_is_bounded_in_memory():
    """A reproducer asking for 40 GB fails inside the child (torch's own error), it does not swap."""
    spec = {"layers": ["Identity"], "reproducers": [{"id": 0, "op": "consume", "input": [1, 1, 100000, 100000],
                                                     "prefix": [], "consumer": ["Identity", {}]}]}
    proc = subprocess.run([sys.executable, "-m", "convlint.confirm.child"], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    result = json.loads(proc.stdout.splitlines()[0])
    assert result["id"] == 0 and result["stage"] != "ok"
    assert "alloc" in result["error"].lower()
