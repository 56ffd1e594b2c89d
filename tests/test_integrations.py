"""Where users meet convlint, each through the real program: flake8, pre-commit, editors, CI formats."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SAMPLE = "fixtures/sample/resnet_bugs.py"
SCHEMA = ROOT.parent / "shared" / "data" / "sarif-schema-2.1.0.json"


def _flake8(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", *args], capture_output=True, text=True, cwd=str(cwd),
                          timeout=600)


def test_flake8_reports_what_convlint_reports(convlint):
    expected = convlint("check", "--no-confirm", "fixtures").stdout.splitlines()
    expected = [l for l in expected if " CVL001 " not in l]  # flake8 says E999 for those itself
    got = _flake8("--select", "CVL", "fixtures").stdout.splitlines()
    key = lambda l: (l.split(":")[0], int(l.split(":")[1]), int(l.split(":")[2]))  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert len(got) > 70


def test_flake8_with_jobs_and_noqa(tmp_path: Path):
    source = (ROOT / SAMPLE).read_text()
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(source.replace("# expect: CVL101@22", "# noqa: CVL101")
                                           .replace("# expect: CVL202@16", "# noqa"))
    proc = _flake8("--select", "CVL", "--jobs", "2", ".", cwd=tmp_path)
    codes = sorted(l.split()[1] for l in proc.stdout.splitlines())
    assert codes == ["CVL201"] * 6 + ["CVL303"] * 6
    assert proc.returncode == 1


def test_flake8_plugin_is_registered():
    proc = _flake8("--version")
    assert "convlint:" in proc.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_hook(tmp_path: Path):
    repo = tmp_path / "user-repo"
    repo.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)

    git("init", "-q")
    bad = (ROOT / "fixtures/CVL202/bad_downblock_stride2_identity.py").read_text()
    (repo / "model.py").write_text(bad)
    git("add", "model.py")
    git("commit", "-qm", "model")

    def try_repo():
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "convlint", "--all-files",
                               "--verbose"], cwd=repo, capture_output=True, text=True, env=env, timeout=900)

    failing = try_repo()
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "model.py:19:23: CVL202" in failing.stdout

    fixed = bad.replace("kernel_size=3, stride=2, padding=1", "kernel_size=3, stride=1, padding=1")
    assert fixed != bad
    (repo / "model.py").write_text(fixed)
    git("commit", "-qam", "fix")
    passing = try_repo()
    assert passing.returncode == 0, passing.stdout + passing.stderr


def _readme_regex(name: str) -> str:
    """The pattern the README gives editors (so the test checks the documented setup)."""
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {name} -->\s*```\w*\n(.*?)```", text, re.S)
    assert m, f"README has no {name} block"
    return m.group(1)


def test_editor_setups_parse_the_text_output(convlint):
    proc = convlint("check", "--no-confirm", "-", "--stdin-filename", "src/model.py",
                    stdin=(ROOT / SAMPLE).read_text())
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    vscode = json.loads(_readme_regex("vscode"))
    pattern = vscode["tasks"][0]["problemMatcher"]["pattern"]
    for line in lines:
        m = re.match(pattern["regexp"], line)
        assert m, line
        assert m.group(pattern["file"]) == "src/model.py"
        assert int(m.group(pattern["line"])) > 0 and int(m.group(pattern["column"])) > 0
        assert m.group(pattern["code"]).startswith("CVL")
    # vim: errorformat %f:%l:%c: %m
    assert "errorformat=%f:%l:%c:\\ %m" in _readme_regex("vim")
    for line in lines:
        assert re.match(r"^[^:]+:\d+:\d+: .+$", line)


@pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/data/sarif-schema-2.1.0.json not present")
def test_sarif_is_valid(convlint):
    jsonschema = pytest.importorskip("jsonschema")
    proc = convlint("check", "--no-confirm", "--format", "sarif", SAMPLE, "fixtures/CVL001")
    log = json.loads(proc.stdout)
    jsonschema.validate(log, json.loads(SCHEMA.read_text()))
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "convlint"
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == sorted(ids) and "CVL201" in ids
    results = run["results"]
    assert len(results) == 7
    first = [r for r in results if r["ruleId"] == "CVL101"][0]
    assert first["locations"][0]["physicalLocation"]["region"]["startLine"] == 14
    assert ids[first["ruleIndex"]] == "CVL101"


def test_github_format(convlint):
    proc = convlint("check", "--no-confirm", "--format", "github", SAMPLE)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"::error file={SAMPLE},line=14,col=22,endLine=14,endColumn=95,title=CVL101::padding")
    assert len(lines) == 4


def test_folder_order_is_the_same_whatever_the_jobs(convlint, tmp_path: Path):
    sources = sorted((ROOT / "fixtures").rglob("bad_*.py"))[:40]
    for i, src in enumerate(sources):
        (tmp_path / f"pkg{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"pkg{i % 3}" / f"{src.parent.name}_{src.name}").write_text(src.read_text())
    (tmp_path / ".gitignore").write_text("pkg2/\n")
    (tmp_path / "pyproject.toml").write_text('[tool.convlint]\nexclude = ["pkg1/CVL1*"]\n')
    one = convlint("check", "--no-confirm", "-j", "1", ".", cwd=tmp_path)
    two = convlint("check", "--no-confirm", "-j", "2", ".", cwd=tmp_path)
    assert one.stdout == two.stdout and one.stdout
    paths = {l.split(":")[0] for l in one.stdout.splitlines()}
    assert not any(p.startswith("./pkg2/") for p in paths)
    assert not any(p.startswith("./pkg1/CVL1") for p in paths)
    assert any(p.startswith("./pkg1/CVL2") for p in paths)


def test_readme_lists_every_rule():
    from convlint.rules import ALL_RULES
    readme = (ROOT / "README.md").read_text()
    for rule in ALL_RULES:
        assert f"### {rule.code}" in readme, rule.code
        section = readme.split(f"### {rule.code}", 1)[1].split("### ", 1)[0]
        assert rule.summary in section
        if rule.code != "CVL001":
            assert "Before" in section and "After" in section
