"""Shape models of library layers that model code imports but convlint does not check (like typeshed
for types): the library's own constructor and ``forward`` code, trimmed of logging and warnings, read by
the interpreter like a file of the checked project (``convlint.interpreter.loader``). They are never
imported or executed.

``STUB_MODULES`` maps an importable module name to the stub file that models it. A name the stub
defines stands for the released library even when the library's source is among the checked files
(timm's own ``create_conv2d`` goes through string methods and registries convlint does not follow);
any other name of that module comes from the checked tree, when it is there.
"""
from __future__ import annotations

import os
import re
from typing import Dict

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

# an import of a modelled library (absolute, or relative from a copy of the library's own files)
STUB_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+|import[ \t]+)(?:" + b"|".join(
        re.escape(m.encode()) for m in sorted(STUB_MODULES, key=len, reverse=True)) +
    rb"|\.+ops(?:\.misc)?)\b", re.M)
