"""Shape models of library layers that model code imports but convlint does not check (like typeshed
for types): the library's own constructor and ``forward`` code, trimmed of logging and warnings, read by
the interpreter like a file of the checked project. They are never imported or executed.

``STUB_MODULES`` maps an importable module name to the stub file that models it. A name the stub
defines stands for the released library even when the library's source is among the checked files
(timm's own ``create_conv2d`` goes through string methods and registries convlint does not follow);
any other name of that module comes from the checked tree, when it is there.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))

_TIMM_LAYERS = os.path.join(_HERE, "timm_layers.py")
STUB_MODULES: Dict[str, str] = {
    "torchvision.ops.misc": os.path.join(_HERE, "torchvision_ops_misc.py"),
    "torchvision.ops": os.path.join(_HERE, "torchvision_ops_misc.py"),
    "timm.layers": _TIMM_LAYERS,
    "timm.layers.conv_bn_act": _TIMM_LAYERS,
    "timm.layers.create_conv2d": _TIMM_LAYERS,
    "timm.layers.norm_act": _TIMM_LAYERS,
    "timm.layers.padding": _TIMM_LAYERS,
}

_loaded: Dict[str, object] = {}  # stub file -> its FileIndex

# an import of a modelled library (absolute, or relative from a copy of the library's own files)
_STUB_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+|import[ \t]+)(?:" + b"|".join(
        re.escape(m.encode()) for m in sorted(STUB_MODULES, key=len, reverse=True)) +
    rb"|\.+ops(?:\.misc)?)\b", re.M)


def imports_stub(data: bytes) -> bool:
    """Whether a file's bytes import from a library convlint models (its layers may come from it)."""
    return _STUB_IMPORT.search(data) is not None


def stub_relative(path: Optional[str], level: int, target: Optional[str]) -> Optional[str]:
    """The stub module a relative import of the file at ``path`` names, by the folders it climbs
    (``torchvision/models/m.py``: ``from ..ops.misc import X`` is ``torchvision.ops.misc``)."""
    if not path or path == "-" or not target:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(level - 1):
        folder = os.path.dirname(folder)
    package = os.path.basename(folder)
    candidate = f"{package}.{target}" if package.isidentifier() else None
    return candidate if candidate in STUB_MODULES else None


def stub_index(module: str):
    """The ``FileIndex`` of the stub for ``module`` (each stub file parsed once per process: the
    module names it stands for share it; stubs make no relative imports), or None."""
    path = STUB_MODULES.get(module)
    if path is None:
        return None
    if path not in _loaded:
        from ..engine import parse_python
        from ..interpreter import FileIndex

        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        _loaded[path] = FileIndex(parse_python(source), module, False, None, source, path)
    return _loaded[path]
