"""Confirmation with real torch: reproducers built from the inferred numbers, run in one child."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterable, Optional

import pytest

import convlint.app.cli as cli
import convlint.app.engine as engine
import convlint.confirm.runner as runner
import convlint.rules as rules_mod
from conftest import ROOT
from convlint.app.engine import CheckRequest, check_path
from convlint.confirm.program import program
from convlint.confirm.replay import estimated_cost
from convlint.confirm.runner import Confirmer
from convlint.confirm.verdicts import VerdictCache
from convlint.diagnostics import Diagnostic, Finding
from convlint.rules.base import Replay, Rule
from convlint.torchlib.catalogue import REPLAYED_LAYERS

torch = pytest.importorskip("torch")  # installed by .ci/run as torch==2.13.0

RESIDUAL_AND_CHANNEL = ["CVL101", "CVL102", "CVL201", "CVL202", "CVL203", "CVL301", "CVL303"]


def _error_of(code: str) -> Optional[str]:
    """Run a reproducer program as a user would paste it; torch's first error line."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return None
    return [l for l in proc.stderr.strip().splitlines() if l.strip()][-1].split(": ", 1)[1]


def test_every_bad_fixture_is_confirmed_with_torchs_message(convlint):
    folders = [str(ROOT / "fixtures" / code) for code in RESIDUAL_AND_CHANNEL]
    released = str(ROOT / "tests" / "environments" / "released")  # timm's and torchvision's helpers known
    proc = convlint("check", "--format", "json", "--explain-confirm", "--python", released, *folders)
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
    proc = convlint("check", "--format", "json", "--no-cache", "--confirm-timeout", "0.05",
                    "fixtures/sample/resnet_bugs.py")
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert len(found) == 4 and all(d["confirmed"] is None for d in found)
    assert "torch confirmation stopped after 0.05s" in proc.stderr
    assert "4 finding(s) left unconfirmed (raise the limit with --confirm-timeout SECONDS)" in proc.stderr


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
    result = _child_results(sys.executable, spec)[0]
    assert result["stage"] == "memory"  # not a verdict on the reproducer: never kept, never judged
    assert "alloc" in result["error"].lower()


def _child_results(python: str, given: dict) -> list:
    """Run the confirmation child with ``python`` on ``given``; its results (progress lines left out)."""
    proc = subprocess.run([python, "-m", "convlint.confirm.child"], input=json.dumps(given),
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines and "ready" in lines[0], proc.stderr
    return [line for line in lines if "stage" in line]


# --- bounded on every input: costly reproducers, the time limit, kept verdicts ---------------------

SAMPLE = "fixtures/sample/resnet_bugs.py"

HUGE_CONV = """import torch.nn as nn


# convlint: input-size=3x4096x4096
class Huge(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 100000, 3)
        self.conv2 = nn.Conv2d(100000, 3, 1)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x
"""

# findings whose numbers are the error's own: the flattened features of a 4096x4096 input, and
# two channel counts in the hundred thousands (a smaller copy would show other numbers)
EXACT_AND_HUGE = """import torch
import torch.nn as nn


# convlint: input-size=3x4096x4096
class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(self.stem(x))
        return self.fc(torch.flatten(x, 1))


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 100000, 3, padding=1)
        self.conv2 = nn.Conv2d(100000, 200000, 1)
        self.bn = nn.BatchNorm2d(100000)

    def forward(self, x):
        return self.bn(self.conv2(self.conv1(x)))
"""


def test_a_huge_reproducer_is_scaled_down_where_torch_fails_the_same_way(convlint, tmp_path):
    (tmp_path / "huge.py").write_text(HUGE_CONV)
    # the time limit is the hang guard: at full size this reproducer needs 13 TB and days of work
    proc = convlint("check", "--format", "json", "--no-cache", "--confirm-timeout", "50", "huge.py", cwd=tmp_path)
    found = json.loads(proc.stdout)
    assert [(d["code"], d["line"], d["confirmed"]) for d in found] == [("CVL101", 8, True)], proc.stderr
    assert found[0]["evidence"].startswith("The size of tensor a (")
    assert "scaled down from input 2x3x4096x4096, 100000 channels as 4" in found[0]["evidence"]
    assert "stopped after" not in proc.stderr and "memory" not in proc.stderr


def test_a_reproducer_too_costly_even_scaled_down_is_not_run(convlint, tmp_path):
    (tmp_path / "exact.py").write_text(EXACT_AND_HUGE)
    proc = convlint("check", "--format", "json", "--no-cache", "--confirm-timeout", "50", "exact.py", cwd=tmp_path)
    found = json.loads(proc.stdout)
    assert [(d["code"], d["line"], d["confirmed"]) for d in found] == [("CVL303", 11, None), ("CVL301", 23, None)]
    for d in found:
        assert f"exact.py:{d['line']}:{d['column']}: {d['code']} reproducer too costly to run" in proc.stderr
    assert "stopped after" not in proc.stderr
    assert "run by torch" not in proc.stderr  # (no --debug) and no child was needed: see the next check
    debug = convlint("check", "--format", "json", "--no-cache", "--debug", "exact.py", cwd=tmp_path)
    assert "0 reproducer verdict(s) from the cache, 0 run by torch" in debug.stderr


def test_the_cost_replay_agrees_with_torch_on_every_fixture():
    """``estimated_cost`` replays torch's shape rules to scale reproducers down: where it says torch
    raises must be where torch raises."""
    specs = [json.loads(json.dumps(d.repro)) for path in sorted((ROOT / "fixtures").rglob("*.py"))
             for d in check_path(str(path), CheckRequest(reproduce=True)) if d.repro is not None]
    assert len(specs) >= 90
    given = {"layers": sorted(REPLAYED_LAYERS), "reproducers": [dict(s, id=i) for i, s in enumerate(specs)]}
    torch_says = {r["id"]: r["stage"] for r in _child_results(sys.executable, given)}
    replay_says = {i: estimated_cost(s).outcome[0] for i, s in enumerate(specs)}
    assert replay_says == torch_says
    assert all(estimated_cost(s).affordable for s in specs)


def _fake_torch(folder: Path, init: str, nn: str = "") -> str:
    """A folder to put first on PYTHONPATH, holding a stand-in ``torch`` package."""
    (folder / "torch").mkdir(parents=True)
    (folder / "torch" / "__init__.py").write_text(init)
    (folder / "torch" / "nn.py").write_text(nn)
    return str(folder)


def _broken_torch(folder: Path) -> str:
    return _fake_torch(folder, "raise ImportError('this torch cannot be imported (test)')\n")


def _stalling_torch(folder: Path) -> str:
    """A torch that imports at once and whose layers never finish: the time limit must cut the run
    while the first reproducer runs."""
    init = ("from . import nn\n__version__ = '0.0+stalling'\n"
            "def manual_seed(seed): pass\ndef set_num_threads(n): pass\ndef randn(*shape): return shape\n"
            "class no_grad:\n    def __enter__(self): return self\n    def __exit__(self, *exc): return False\n")
    nn = ("import time\n\n"
          "class Module:\n    def __init__(self, *args, **kwargs): pass\n"
          "    def __call__(self, x):\n        time.sleep(600)\n        return x\n\n"
          "class Sequential(Module):\n    def __init__(self, *layers): self.layers = layers\n"
          "    def __call__(self, x):\n        for layer in self.layers:\n            x = layer(x)\n"
          "        return x\n\n"
          "def __getattr__(name):\n    return type(name, (Module,), {})\n")
    return _fake_torch(folder, init, nn)


def _kept_verdicts(cache: Path) -> list:
    return sorted((cache / "verdicts").rglob("*.json")) if (cache / "verdicts").is_dir() else []


def test_the_time_limit_note_names_the_finding_it_cut(convlint, tmp_path):
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": _stalling_torch(tmp_path / "stalling"), "CONVLINT_CACHE_DIR": str(cache)}
    proc = convlint("check", "--format", "json", "--confirm-timeout", "3", SAMPLE, env=env)
    found = json.loads(proc.stdout)
    assert len(found) == 4 and all(d["confirmed"] is None for d in found)
    first = found[0]
    assert (f"convlint: torch confirmation stopped after 3s while reproducing {SAMPLE}:{first['line']}:"
            f"{first['column']}: {first['code']}; 4 finding(s) left unconfirmed (raise the limit with "
            f"--confirm-timeout SECONDS)") in proc.stderr
    assert _kept_verdicts(cache) == []  # a timeout is not a verdict


def test_verdicts_are_kept_and_answer_without_torch(convlint, tmp_path):
    cache = tmp_path / "cache"
    broken = {"PYTHONPATH": _broken_torch(tmp_path / "broken"), "CONVLINT_CACHE_DIR": str(cache)}
    # with this torch nothing is confirmed, and a crash is not a verdict
    crashed = convlint("check", "--format", "json", SAMPLE, env=broken)
    assert all(d["confirmed"] is None for d in json.loads(crashed.stdout))
    assert "torch confirmation failed (ImportError: this torch cannot be imported (test))" in crashed.stderr
    assert _kept_verdicts(cache) == []

    real = convlint("check", "--format", "json", "--debug", SAMPLE, env={"CONVLINT_CACHE_DIR": str(cache)})
    assert "0 reproducer verdict(s) from the cache, 4 run by torch" in real.stderr
    assert len(_kept_verdicts(cache)) == 4
    confirmed = json.loads(real.stdout)
    assert all(d["confirmed"] is True for d in confirmed)

    again = convlint("check", "--format", "json", "--debug", SAMPLE, env=broken)
    assert json.loads(again.stdout) == confirmed  # the same verdicts and evidence, torch never imported
    assert "4 reproducer verdict(s) from the cache, 0 run by torch" in again.stderr
    assert "failed" not in again.stderr

    for off in (["--no-cache"], []):
        env = dict(broken, CONVLINT_NO_CACHE="1") if not off else broken
        skipped = convlint("check", "--format", "json", *off, SAMPLE, env=env)
        assert all(d["confirmed"] is None for d in json.loads(skipped.stdout)), off


def _diagnostic(repro: dict, line: int = 1) -> Diagnostic:
    return Diagnostic("m.py", line, 1, line, 2, "CVL101", "error", "a finding", repro=repro)


def _add_spec(size: int, scaled_down: Optional[str] = None) -> dict:
    """branch(t) + t with a padded 3x3 conv: runs cleanly (the planted finding is wrong)."""
    conv = ["Conv2d", {"in_channels": 4, "out_channels": 4, "kernel_size": [3, 3], "stride": [1, 1],
                       "padding": [1, 1], "dilation": [1, 1], "groups": 1}]
    spec = {"op": "add", "input": [2, 4, size, size], "prefix": [], "branch": [conv], "shortcut": []}
    if scaled_down:
        spec["scaled_down"] = scaled_down
    return spec


def test_a_scaled_down_reproducer_that_runs_cleanly_refutes_nothing():
    plain, scaled = _diagnostic(_add_spec(8)), _diagnostic(_add_spec(8, "scaled down from input 2x4x4096x4096"), 2)
    assert Confirmer().finish([plain, scaled]) == []
    assert plain.confirmed is False and scaled.confirmed is None


def test_one_run_sends_at_most_max_reproducers_and_each_once(monkeypatch):
    monkeypatch.setattr(runner, "MAX_REPRODUCERS", 3)
    findings = [_diagnostic(_add_spec(8 + i), i) for i in range(5)] + [_diagnostic(_add_spec(8), 9)]
    confirmer = Confirmer()
    notes = confirmer.finish(findings)
    assert confirmer.run_by_torch == 3  # the copy of the first reproducer is run once, with it
    assert [d.confirmed for d in findings] == [False, False, False, None, None, False]
    assert notes == ["convlint: 2 finding(s) left unconfirmed: one run confirms at most 3 reproducers "
                     "(4 MiB, 1e+10 multiply-adds in all)"]


# --- the kept verdicts: what is read back is checked ------------------------------------------------

def _cache(tmp_path: Path, salt: str = "torch 1") -> VerdictCache:
    return VerdictCache(str(tmp_path / "verdicts"), salt)


def test_a_verdict_is_kept_under_its_reproducer_and_versions(tmp_path):
    cache = _cache(tmp_path)
    spec = _add_spec(8)
    key = cache.key(spec)
    cache.put(key, {"stage": "add", "error": "The size of tensor a (6) must match"})
    assert cache.get(key) == {"stage": "add", "error": "The size of tensor a (6) must match"}
    assert cache.key(json.loads(json.dumps(spec))) == key  # tuples and lists are the same data
    assert _cache(tmp_path, "torch 2").key(spec) != key and cache.key(_add_spec(9)) != key
    assert [p.suffix for p in (tmp_path / "verdicts").rglob("*") if p.is_file()] == [".json"]  # no temp file left


def test_what_is_not_a_verdict_is_not_kept(tmp_path):
    cache = _cache(tmp_path)
    for i, result in enumerate([{"stage": "memory", "error": "can't allocate memory"}, {"stage": "started"},
                                {"stage": "add", "error": 3}, {"stage": "ok", "other": "x"}]):
        key = cache.key(_add_spec(8 + i))
        cache.put(key, result)
        assert cache.get(key) is None, result


def _planted(cache: VerdictCache, entry: bytes) -> str:
    """Write ``entry`` where the verdict of ``_add_spec(8)`` is kept; its key."""
    key = cache.key(_add_spec(8))
    path = Path(cache.directory) / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(entry)
    return key


PLANTED = {
    "no key": lambda key: {"stage": "add", "error": "x"},
    "another key": lambda key: {"key": "0" * 64, "stage": "add", "error": "x"},
    "unknown stage": lambda key: {"key": key, "stage": "shortcut!", "error": "x"},
    "error not a string": lambda key: {"key": key, "stage": "add", "error": ["x"]},
    "error too long": lambda key: {"key": key, "stage": "add", "error": "x" * 5000},
    "another field": lambda key: {"key": key, "stage": "add", "error": "x", "evidence": "y"},
    "not an object": lambda key: [key, "add"],
}


@pytest.mark.parametrize("make", list(PLANTED.values()), ids=list(PLANTED))
def test_a_planted_entry_is_a_miss(tmp_path, make):
    cache = _cache(tmp_path)
    key = _planted(cache, json.dumps(make(cache.key(_add_spec(8)))).encode())
    assert cache.get(key) is None


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe{", b""])
def test_an_unreadable_entry_is_a_miss(tmp_path, raw):
    cache = _cache(tmp_path)
    assert cache.get(_planted(cache, raw)) is None


def test_an_entry_is_read_only_from_a_small_regular_file(tmp_path):
    cache = _cache(tmp_path)
    key = _planted(cache, json.dumps({"key": cache.key(_add_spec(8)), "stage": "add", "error": "x"}).encode())
    entry = Path(cache.directory) / key[:2] / f"{key}.json"
    assert cache.get(key) == {"stage": "add", "error": "x"}

    target = tmp_path / "elsewhere.json"
    entry.rename(target)
    entry.symlink_to(target)
    assert cache.get(key) is None  # never through a symbolic link

    entry.unlink()
    entry.write_text(json.dumps({"key": key, "stage": "add", "error": "x"}) + " " * 10000)
    assert cache.get(key) is None  # past the size cap

    entry.unlink()
    os.mkfifo(entry)
    reader = threading.Thread(target=cache.get, args=(key,), daemon=True)
    reader.start()
    reader.join(timeout=30)  # the hang guard: opening a FIFO without O_NONBLOCK waits for a writer
    assert not reader.is_alive() and cache.get(key) is None


def test_the_cost_replay_knows_a_batchnorm_needs_two_values_per_channel():
    """A reproducer is scaled down to a batch of one first; torch refuses a training BatchNorm that
    then sees one value per channel, and the replay must say so (else a scaled copy fails elsewhere)."""
    bn = ["BatchNorm2d", {"num_features": 4}]
    pool = ["AvgPool2d", {"kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0], "ceil_mode": False}]
    linear = ["Linear", {"in_features": 3, "out_features": 2}]
    specs = [{"op": "consume", "input": [batch, 4, size, size], "prefix": [pool, bn, ["Flatten", {}]],
              "consumer": linear} for batch in (1, 2) for size in (2, 4)]
    given = {"layers": sorted(REPLAYED_LAYERS), "reproducers": [dict(s, id=i) for i, s in enumerate(specs)]}
    torch_says = {r["id"]: r["stage"] for r in _child_results(sys.executable, given)}
    replay_says = {i: estimated_cost(s).outcome[0] for i, s in enumerate(specs)}
    assert replay_says == torch_says
    assert replay_says[0] == "prefix" and set(replay_says.values()) == {"prefix", "consume"}
