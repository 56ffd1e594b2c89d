"""The command line of the contract, run as a real process: formats, exit codes, stdin, config."""
from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import ROOT

SAMPLE = "fixtures/sample/resnet_bugs.py"
GOOD = "fixtures/CVL201/good_densenet_cat.py"
# the pattern editors use for flake8-style output (vim errorformat %f:%l:%c: %m, VS Code matchers)
TEXT_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>CVL\d{3}) (?P<message>.+)$")


def test_text_format_and_exit_code_1(convlint):
    proc = convlint("check", "--no-confirm", SAMPLE)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    parsed = [TEXT_LINE.match(line).groupdict() for line in lines]
    assert [(p["line"], p["column"], p["code"]) for p in parsed] == [
        ("14", "22", "CVL101"), ("52", "23", "CVL201"), ("66", "16", "CVL202"), ("75", "19", "CVL303")]
    assert lines[0] == (f"{SAMPLE}:14:22: CVL101 padding should be (K-1)/2 = 1 for kernel_size=3, got padding=0 "
                        "(branch gives H-2 x W-2, shortcut keeps H x W)")


def test_clean_file_exits_0(convlint):
    assert (ROOT / GOOD).exists()
    proc = convlint("check", "--no-confirm", GOOD)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_json_fields(convlint):
    proc = convlint("check", "--no-confirm", "--format", "json", SAMPLE)
    assert proc.returncode == 1
    items = json.loads(proc.stdout)
    first = items[0]
    assert set(first) == {"path", "line", "column", "end_line", "end_column", "code", "severity", "message",
                          "confirmed", "evidence", "fix"}
    assert (first["path"], first["line"], first["column"], first["code"], first["severity"]) == \
        (SAMPLE, 14, 22, "CVL101", "error")
    assert (first["end_line"], first["end_column"]) == (14, 95)
    assert first["confirmed"] is None and first["evidence"] is None
    # the fix replaces the padding argument in place
    assert first["fix"] == {"line": 14, "column": 73, "end_line": 14, "end_column": 82, "replacement": "padding=1"}
    source_line = (ROOT / SAMPLE).read_text().splitlines()[13]
    assert source_line[72:81] == "padding=0"


def test_exit_zero_and_select_ignore(convlint):
    assert convlint("check", "--no-confirm", "--exit-zero", SAMPLE).returncode == 0
    only = convlint("check", "--no-confirm", "--select", "CVL2", SAMPLE)
    assert [l.split()[1] for l in only.stdout.splitlines()] == ["CVL201", "CVL202"]
    without = convlint("check", "--no-confirm", "--ignore", "CVL1,CVL303", SAMPLE)
    assert [l.split()[1] for l in without.stdout.splitlines()] == ["CVL201", "CVL202"]


def test_missing_path_is_a_usage_error(convlint):
    proc = convlint("check", "--no-confirm", "no/such/file.py")
    assert proc.returncode == 2
    assert "no/such/file.py" in proc.stderr


def test_unknown_code_is_a_usage_error(convlint):
    proc = convlint("check", "--no-confirm", "--select", "CVL999", SAMPLE)
    assert proc.returncode == 2 and "CVL999" in proc.stderr


def test_stdin_with_filename(convlint):
    source = (ROOT / SAMPLE).read_text()
    proc = convlint("check", "--no-confirm", "-", "--stdin-filename", "models/resnet.py", stdin=source)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("models/resnet.py:14:22: CVL101 ")


def test_noqa(convlint, tmp_path: Path):
    source = (ROOT / SAMPLE).read_text().replace("# expect: CVL101@22", "# noqa: CVL101")
    source = source.replace("# expect: CVL202@16", "# noqa")
    source = source.replace("# expect: CVL201@23", "# noqa: CVL303")  # another code: still reported
    f = tmp_path / "m.py"
    f.write_text(source)
    proc = convlint("check", "--no-confirm", str(f))
    assert [l.split()[1] for l in proc.stdout.splitlines()] == ["CVL201", "CVL303"]


def test_config_in_pyproject(convlint, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.convlint]\nignore = ["CVL101", "CVL303"]\n')
    (tmp_path / "m.py").write_text((ROOT / SAMPLE).read_text())
    proc = convlint("check", "--no-confirm", "m.py", cwd=tmp_path)
    assert [l.split()[1] for l in proc.stdout.splitlines()] == ["CVL201", "CVL202"]


def test_config_unknown_key(convlint, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.convlint]\nselct = ["CVL"]\n')
    (tmp_path / "m.py").write_text("x = 1\n")
    proc = convlint("check", "--no-confirm", "m.py", cwd=tmp_path)
    assert proc.returncode == 2 and "selct" in proc.stderr


def test_config_input_size_for_top_level_models(convlint, tmp_path: Path):
    (tmp_path / "m.py").write_text(
        "import torch\nimport torch.nn as nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.fc = nn.Linear(8 * 30 * 30, 10)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(torch.flatten(self.conv(x), 1))\n")
    assert convlint("check", "--no-confirm", "m.py", cwd=tmp_path).returncode == 0  # input size unknown: silent
    (tmp_path / "pyproject.toml").write_text("[tool.convlint]\ninput-size = [3, 64, 64]\n")
    proc = convlint("check", "--no-confirm", "m.py", cwd=tmp_path)
    assert proc.stdout == ("m.py:9:19: CVL303 Linear expects in_features=7200 but the flattened input has "
                           "30752 features; use nn.Linear(30752, ...)\n")


def test_folder_walk_is_sorted_and_skips_tool_folders(convlint, tmp_path: Path):
    bad = (ROOT / "fixtures/CVL202/bad_downblock_stride2_identity.py").read_text()
    for rel in ("b/model.py", "a/model.py", ".venv/lib/model.py", "build/model.py", "__pycache__/m.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(bad)
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    paths = [l.split(":")[0] for l in proc.stdout.splitlines()]
    assert paths == ["./a/model.py", "./b/model.py"]


def test_rule_docs(convlint):
    proc = convlint("rule", "CVL101")
    assert proc.returncode == 0
    for heading in ("## What it does", "## Why is this bad", "## Example", "## Use instead"):
        assert heading in proc.stdout
    assert convlint("rule", "CVL999").returncode == 2
    every = convlint("rule", "--all").stdout
    for code in ("CVL001", "CVL101", "CVL102", "CVL201", "CVL202", "CVL301", "CVL302", "CVL303", "CVL304"):
        assert f"({code})" in every


def test_version(convlint):
    proc = convlint("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("convlint ")


def test_unparsable_file_is_reported_and_the_run_goes_on(convlint, tmp_path: Path):
    (tmp_path / "a.py").write_text("def f(:\n")
    (tmp_path / "b.py").write_bytes(b"\xff\xfe\x00\x01garbage")
    (tmp_path / "c.py").write_text((ROOT / SAMPLE).read_text())
    proc = convlint("check", "--no-confirm", ".", cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("./a.py:1:7: CVL001 syntax error")
    assert lines[1].startswith("./b.py:1:1: CVL001 cannot decode")
    assert sum(l.startswith("./c.py:") for l in lines) == 4
    assert proc.returncode == 1


def test_info_rule_is_reported_only_when_named(convlint, tmp_path: Path):
    stem = "fixtures/CVL401/bad_stem_conv_stride2_unpadded.py"
    default = convlint("check", "--no-confirm", stem)
    assert (default.returncode, default.stdout) == (0, "")
    named = convlint("check", "--no-confirm", "--select", "CVL,CVL401", "--format", "json", stem)
    assert named.returncode == 1
    [item] = json.loads(named.stdout)
    assert (item["line"], item["column"], item["code"], item["severity"], item["confirmed"]) == \
        (9, 21, "CVL401", "info", None)
    assert item["message"].startswith("Conv2d with stride=2 never reads the last row and column of its 32x32 input")
    (tmp_path / "pyproject.toml").write_text('[tool.convlint]\nselect = ["CVL4"]\n')
    (tmp_path / "m.py").write_text((ROOT / stem).read_text())
    configured = convlint("check", "--no-confirm", "m.py", cwd=tmp_path)
    assert configured.stdout.startswith("m.py:9:21: CVL401 ")
