"""The Python environment the checked code runs in: where its libraries' files are, and which versions
are installed, found by looking at files only.

convlint never imports a library and never runs the environment's interpreter (a ``.pth`` file's
``import`` lines would run code): the site-packages folders come from the environment's layout
(``pyvenv.cfg`` and ``lib/pythonX.Y/site-packages``), the versions from the names of its ``*.dist-info``
folders. By default the environment is the one convlint runs in (its ``sys.path``), with the active
virtual environment (``$VIRTUAL_ENV``) after it, for a pre-commit hook whose own environment lacks the
project's libraries; ``--python`` (or the ``python`` key of the config) names another one.
"""
from __future__ import annotations

import glob
import os
import re
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..limits import MAX_PTH_BYTES
from ..storage import Unreadable, read_limited

Version = Tuple[int, ...]

_DIST_FOLDER = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._]*?)-(?P<version>[0-9][^-]*?)\.(?:dist|egg)-info$")


class Environment:
    """The site-packages folders of one Python environment, and what is installed there."""

    def __init__(self, site_dirs: Sequence[str]):
        self.site_dirs = [d for d in dict.fromkeys(os.path.abspath(d) for d in site_dirs) if os.path.isdir(d)]
        self._versions: Optional[Dict[str, str]] = None

    def version(self, distribution: str) -> Optional[str]:
        """The installed version of ``distribution`` (``timm``), from its ``dist-info`` folder's name."""
        if self._versions is None:
            self._versions = {}
            for folder in self.site_dirs:
                try:
                    names = sorted(os.listdir(folder))
                except OSError:
                    continue
                for name in names:
                    m = _DIST_FOLDER.match(name)
                    if m:  # the first environment folder that has it wins, as for imports
                        self._versions.setdefault(normalized(m.group("name")), m.group("version"))
        return self._versions.get(normalized(distribution))

    def distributions(self) -> List[str]:
        """The (normalized) names of the distributions installed here."""
        self.version("")  # (reads the folders once)
        return sorted(self._versions or ())

    def module_file(self, module: str) -> Optional[Tuple[str, bool]]:
        """The source file of ``module`` (``timm.layers.padding``) and whether it is a package's
        ``__init__.py``; None when no folder has it as a ``.py`` file (a compiled or namespace-only
        module, or an editable install that works through an import hook)."""
        parts = module.split(".")
        if not all(p.isidentifier() for p in parts):
            return None
        for folder in self.site_dirs:
            base = os.path.join(folder, *parts)
            package = os.path.join(base, "__init__.py")
            if os.path.isfile(package):
                return package, True
            if os.path.isfile(base + ".py"):
                return base + ".py", False
        return None

    def fingerprint(self, distributions: Iterable[str]) -> str:
        """The versions of ``distributions`` here, for cache keys (a result read a library's files)."""
        return ",".join(f"{d}={self.version(d) or '-'}" for d in sorted(set(distributions)))


def normalized(distribution: str) -> str:
    """A distribution name as packaging compares them: ``Foo.Bar-baz`` is ``foo_bar_baz``."""
    return re.sub(r"[-_.]+", "_", distribution).lower()


def parse_version(text: str) -> Version:
    """The leading numbers of a version: ``0.29.1+cu130`` is (0, 29, 1); ``1.0.0rc1`` is (1, 0, 0)."""
    numbers: List[int] = []
    for part in text.split("."):
        m = re.match(r"\d+", part)
        if m is None:
            break
        numbers.append(int(m.group(0)))
        if m.end() != len(part):
            break
    return tuple(numbers)


def find_environment(python: Optional[str] = None) -> Environment:
    """The environment of the interpreter or environment folder ``python`` names, else convlint's own
    with ``$VIRTUAL_ENV`` after it."""
    if python:
        return Environment(site_packages_of(python))
    dirs = [p for p in sys.path if p and os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")]
    active = os.environ.get("VIRTUAL_ENV")
    if active:
        dirs += site_packages_of(active)
    return Environment(dirs)


def site_packages_of(python: str) -> List[str]:
    """The site-packages folders of an environment, from its layout: ``python`` is its interpreter
    (``.venv/bin/python``) or its folder (``.venv``). A virtual environment that includes the system
    site-packages (``pyvenv.cfg``) gets its base interpreter's too. Path lines of ``.pth`` files are
    followed; their ``import`` lines are not run."""
    root = os.path.abspath(python)
    if os.path.isfile(root):  # bin/python -> the environment folder
        root = os.path.dirname(os.path.dirname(root))
    dirs = _layout(root)
    config = _pyvenv_cfg(root)
    if config.get("include-system-site-packages", "").lower() == "true" and config.get("home"):
        dirs += _layout(os.path.dirname(config["home"].rstrip(os.sep)))
    return dirs + [extra for d in dirs for extra in _pth_paths(d)]


def _layout(root: str) -> List[str]:
    patterns = [os.path.join(root, "lib", "python3*", "site-packages"),
                os.path.join(root, "lib64", "python3*", "site-packages"),
                os.path.join(root, "Lib", "site-packages"),  # Windows
                os.path.join(root, "lib", "python3*", "dist-packages")]
    return [d for pattern in patterns for d in sorted(glob.glob(pattern)) if os.path.isdir(d)]


def _pyvenv_cfg(root: str) -> Dict[str, str]:
    try:
        text = read_limited(os.path.join(root, "pyvenv.cfg"), MAX_PTH_BYTES).decode("utf-8", "replace")
    except (Unreadable, OSError):
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _pth_paths(site_dir: str) -> List[str]:
    """The folders the ``.pth`` files of ``site_dir`` add (``import`` lines and comments skipped)."""
    out = []
    for pth in sorted(glob.glob(os.path.join(site_dir, "*.pth"))):
        try:
            text = read_limited(pth, MAX_PTH_BYTES).decode("utf-8", "replace")
        except (Unreadable, OSError):
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            folder = os.path.normpath(os.path.join(site_dir, line))
            if os.path.isdir(folder):
                out.append(folder)
    return out
