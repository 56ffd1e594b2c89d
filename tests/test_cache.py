"""The result cache between runs: a file is analysed again only when it, a project file its analysis
read, convlint or the options changed; the cache is never beside the checked code."""
from __future__ import annotations

import json
import os
from pathlib import Path

BLOCK = '''import torch.nn as nn
from .helpers import conv3x3


class Block(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.conv1 = conv3x3(planes, planes)
        self.conv2 = conv3x3(planes, planes)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))
'''
HELPERS = '''import torch.nn as nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding={padding}, bias=False)
'''


def _project(root: Path, padding: int) -> None:
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "model.py").write_text(BLOCK)
    (root / "pkg" / "helpers.py").write_text(HELPERS.format(padding=padding))


def _entries(cache: Path):
    return sorted(cache.rglob("*.json"))


def test_second_run_is_served_from_the_cache(convlint, tmp_path: Path):
    cache = tmp_path / "cache"
    env = {"CONVLINT_CACHE_DIR": str(cache)}
    _project(tmp_path, padding=0)
    first = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert first.returncode == 1 and "pkg/model.py:8:22: CVL101" in first.stdout.replace(os.sep, "/")
    entries = _entries(cache)
    assert len(entries) == 3  # one per checked file
    # the entry of model.py holds the finding; edit its message to see where the next run reads it from
    [entry] = [e for e in entries if json.loads(e.read_text())["diagnostics"]]
    data = json.loads(entry.read_text())
    data["diagnostics"][0]["message"] = "served from the cache"
    entry.write_text(json.dumps(data))
    second = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert "CVL101 served from the cache" in second.stdout
    uncached = convlint("check", "--no-confirm", "--no-cache", "pkg", cwd=tmp_path, env=env)
    assert uncached.stdout == first.stdout


def test_a_changed_imported_helper_invalidates_its_importers(convlint, tmp_path: Path):
    env = {"CONVLINT_CACHE_DIR": str(tmp_path / "cache")}
    _project(tmp_path, padding=1)
    assert convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env).stdout == ""
    helpers = tmp_path / "pkg" / "helpers.py"
    helpers.write_text(HELPERS.format(padding=0))
    os.utime(helpers, ns=(helpers.stat().st_atime_ns, helpers.stat().st_mtime_ns + 10**9))
    again = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env)
    assert "pkg/model.py:8:22: CVL101" in again.stdout.replace(os.sep, "/")


def test_other_options_are_other_entries(convlint, tmp_path: Path):
    env = {"CONVLINT_CACHE_DIR": str(tmp_path / "cache")}
    _project(tmp_path, padding=0)
    assert convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env=env).returncode == 1
    ignored = convlint("check", "--no-confirm", "--ignore", "CVL101", "pkg", cwd=tmp_path, env=env)
    assert (ignored.returncode, ignored.stdout) == (0, "")


def test_no_cache_writes_nothing_and_a_broken_cache_is_only_slower(convlint, tmp_path: Path):
    cache = tmp_path / "cache"
    _project(tmp_path, padding=0)
    plain = convlint("check", "--no-confirm", "--no-cache", "pkg", cwd=tmp_path, env={"CONVLINT_CACHE_DIR": str(cache)})
    assert plain.returncode == 1 and not cache.exists()
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    broken = convlint("check", "--no-confirm", "pkg", cwd=tmp_path, env={"CONVLINT_CACHE_DIR": str(not_a_folder)})
    assert (broken.returncode, broken.stdout, broken.stderr) == (1, plain.stdout, plain.stderr)
    # nothing was written beside the checked code
    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == ["__init__.py", "helpers.py", "model.py"]


def test_flake8_plugin_reads_the_cache_by_file_text(tmp_path: Path):
    import subprocess
    import sys
    cache = tmp_path / "cache"
    env = {**os.environ, "CONVLINT_CACHE_DIR": str(cache)}
    model = tmp_path / "model.py"
    model.write_text(BLOCK.replace("from .helpers import conv3x3\n", HELPERS.format(padding=0)))

    def flake8():
        return subprocess.run([sys.executable, "-m", "flake8", "--select", "CVL", str(model)], capture_output=True,
                              text=True, env=env, cwd=str(tmp_path), timeout=120).stdout
    first = flake8()
    assert ":13:22: CVL101 padding should be" in first
    [entry] = [e for e in _entries(cache) if json.loads(e.read_text())["diagnostics"]]
    data = json.loads(entry.read_text())
    for d in data["diagnostics"]:
        d["message"] = "served from the cache"
    entry.write_text(json.dumps(data))
    assert ":13:22: CVL101 served from the cache" in flake8()
    model.write_text(model.read_text() + "\n")  # other text: analysed again
    assert flake8() == first
