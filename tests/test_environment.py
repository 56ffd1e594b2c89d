"""Finding the checked code's Python environment from files only (``convlint.source.environment``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from convlint.source.environment import find_environment, parse_version, site_packages_of


def _venv(root: Path, *dists: str) -> Path:
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for dist in dists:
        (site / f"{dist}.dist-info").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "python").write_text("#!/bin/sh\nexit 99\n")  # never run
    return site


def test_versions_come_from_dist_info_folder_names(tmp_path: Path) -> None:
    _venv(tmp_path / "venv", "timm-1.0.31", "torchvision-0.29.1+cu130", "Foo_Bar-2.0")
    for python in (tmp_path / "venv", tmp_path / "venv" / "bin" / "python"):
        env = find_environment(str(python))
        assert env.version("timm") == "1.0.31"
        assert env.version("torchvision") == "0.29.1+cu130"
        assert env.version("foo-bar") == "2.0"
        assert env.version("torch") is None
    assert parse_version("0.29.1+cu130") == (0, 29, 1) and parse_version("1.0.0rc1") == (1, 0, 0)


def test_pth_path_lines_are_followed_and_import_lines_never_run(tmp_path: Path) -> None:
    site = _venv(tmp_path / "venv")
    extra = tmp_path / "src"
    (extra / "mylib").mkdir(parents=True)
    (extra / "mylib" / "__init__.py").write_text("")
    (extra / "mylib" / "layers.py").write_text("")
    marker = tmp_path / "ran"
    (site / "project.pth").write_text(f"# a comment\n{extra}\nimport os; open({str(marker)!r}, 'w')\n")
    env = find_environment(str(tmp_path / "venv"))
    assert env.module_file("mylib.layers") == (str(extra / "mylib" / "layers.py"), False)
    assert env.module_file("mylib") == (str(extra / "mylib" / "__init__.py"), True)
    assert env.module_file("missing") is None
    assert not marker.exists()


def test_system_site_packages_when_the_venv_includes_them(tmp_path: Path) -> None:
    base_site = _venv(tmp_path / "base", "timm-1.0.30")
    _venv(tmp_path / "venv")
    (tmp_path / "venv" / "pyvenv.cfg").write_text(
        f"home = {tmp_path / 'base' / 'bin'}\ninclude-system-site-packages = true\n")
    assert str(base_site) in site_packages_of(str(tmp_path / "venv"))
    assert find_environment(str(tmp_path / "venv")).version("timm") == "1.0.30"
    (tmp_path / "venv" / "pyvenv.cfg").write_text(f"home = {tmp_path / 'base' / 'bin'}\n")
    assert find_environment(str(tmp_path / "venv")).version("timm") is None


def test_the_default_is_convlints_own_environment_then_virtual_env(tmp_path: Path, monkeypatch) -> None:
    _venv(tmp_path / "active", "somelib-3.1")
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "active"))
    env = find_environment()
    assert env.version("somelib") == "3.1"
    own = [p for p in sys.path if p.endswith("site-packages")]
    assert env.site_dirs[:len(own)] == [os.path.abspath(p) for p in own if os.path.isdir(p)]
