"""Libraries read in place: an import that leaves the checked tree is followed into the installed
package's source (tests/environments/installed holds one, ``resblocks``), found by file lookup and
never imported; what a library block does with the numbers this file gives it is reported here."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT

INSTALLED = str(ROOT / "tests" / "environments" / "installed")

BUILT_WRONG = """\
import torch
from torch import nn
from resblocks import PlainBlock


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1)
        self.block = PlainBlock(64, 128, stride=2)

    def forward(self, x):
        return self.block(self.stem(x))
"""

BUILT_RIGHT = """\
from torch import nn
from resblocks import PlainBlock, conv1x1


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = PlainBlock(64, 128, 2, nn.Sequential(conv1x1(64, 128, 2), nn.BatchNorm2d(128)))

    def forward(self, x):
        return self.block(x)
"""

# the model's layers come from a library base class: nothing of it is this file's to report
SUBCLASS = """\
from torch import nn
from resblocks import Backbone


class Wide(Backbone):
    def __init__(self):
        super().__init__(widths=(64, 128, 256))
        self.head = nn.Linear(256, 10)


class Inherited(Backbone):
    pass
"""


def _check(convlint, tmp_path: Path, source: str, *options: str):
    target = tmp_path / "model.py"
    target.write_text(source)
    marker = tmp_path / "imported.txt"
    result = convlint("check", "--no-confirm", "--no-cache", "--format", "json", *options, str(target),
                      env={"RESBLOCKS_MARKER": str(marker)})
    assert not marker.exists(), "the installed library was imported"
    assert result.returncode in (0, 1), result.stderr
    return [(d["code"], d["line"], d["column"], d["message"]) for d in json.loads(result.stdout)]


def test_a_library_block_built_with_wrong_numbers_is_reported_at_the_call(convlint, tmp_path: Path):
    found = _check(convlint, tmp_path, BUILT_WRONG, "--python", INSTALLED)
    assert [(code, line, column) for code, line, column, _ in found] == [("CVL201", 10, 22), ("CVL202", 10, 22)]
    assert found[0][3] == ("shortcut needs 1x1 conv: branch gives 128 channels, shortcut keeps 64; use "
                           "nn.Conv2d(64, 128, kernel_size=1, stride=2) (in the module this call builds)")


def test_without_the_library_installed_the_block_is_unknown(convlint, tmp_path: Path):
    empty = tmp_path / "empty-venv"
    (empty / "lib" / "python3" / "site-packages").mkdir(parents=True)
    assert _check(convlint, tmp_path, BUILT_WRONG, "--python", str(empty)) == []


def test_a_library_block_built_right_is_silent(convlint, tmp_path: Path):
    assert _check(convlint, tmp_path, BUILT_RIGHT, "--python", INSTALLED) == []


def test_a_library_base_class_is_followed_without_reporting_its_code(convlint, tmp_path: Path):
    assert _check(convlint, tmp_path, SUBCLASS, "--python", INSTALLED) == []


def test_a_file_building_only_library_blocks_is_analysed(convlint, tmp_path: Path):
    """No torch layer named in the file: the prefilter still lets it through, since it imports an
    installed library (whose blocks it builds)."""
    source = BUILT_WRONG.replace("        self.stem = nn.Conv2d(3, 64, 3, padding=1)\n", "") \
        .replace("self.block(self.stem(x))", "self.block(x)")
    found = _check(convlint, tmp_path, source, "--python", INSTALLED)
    assert [(code, line) for code, line, _, _ in found] == [("CVL201", 9), ("CVL202", 9)]


@pytest.mark.parametrize("via_cache", [False, True])
def test_the_result_depends_on_the_library_files_read(convlint, tmp_path: Path, via_cache: bool):
    """A changed installed file is a cache miss (its path is a dependency of the result)."""
    env = tmp_path / "venv"
    site = env / "lib" / "python3" / "site-packages"
    source_site = Path(INSTALLED) / "lib" / "python3" / "site-packages"
    for path in source_site.rglob("*"):
        if path.is_file():
            copy = site / path.relative_to(source_site)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())
    target = tmp_path / "model.py"
    target.write_text(BUILT_WRONG)
    options = () if via_cache else ("--no-cache",)

    def codes():
        result = convlint("check", "--no-confirm", "--format", "json", "--python", str(env), *options, str(target),
                          env={"CONVLINT_CACHE_DIR": str(tmp_path / "cache")})
        return [d["code"] for d in json.loads(result.stdout)]

    assert codes() == ["CVL201", "CVL202"]
    blocks = site / "resblocks" / "blocks.py"
    fixed = blocks.read_text().replace("shortcut = x if self.projection is None else self.projection(x)",
                                       "shortcut = x if self.projection is None else self.projection(x)\n"
                                       "        shortcut = y_unknown(shortcut)")
    assert fixed != blocks.read_text()
    blocks.write_text(fixed)
    os.utime(blocks, ns=(1, 1))  # (a new modification time, whatever the clock's resolution)
    assert codes() == []


def test_a_block_of_another_checked_file_built_with_wrong_numbers(convlint, tmp_path: Path):
    """The same for a block class of the checked tree: the file that builds it badly is told."""
    package = tmp_path / "proj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    library = Path(INSTALLED) / "lib" / "python3" / "site-packages" / "resblocks" / "blocks.py"
    (package / "blocks.py").write_text(library.read_text())
    (package / "net.py").write_text(BUILT_WRONG.replace("from resblocks import", "from .blocks import"))
    result = convlint("check", "--no-confirm", "--no-cache", "--format", "json", str(tmp_path))
    found = [(Path(d["path"]).name, d["code"], d["line"], d["column"]) for d in json.loads(result.stdout)]
    assert found == [("net.py", "CVL201", 10, 22), ("net.py", "CVL202", 10, 22)]
