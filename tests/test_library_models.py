"""Each shape model of a library helper (``convlint/torchlib/library.py``) against the real library.

For every case, a small module builds the helper with some arguments and flattens its output into an
``nn.Linear(1, 1)``: convlint's CVL303 message then says how many features it computed for the input
size the class gives, and the real library, built and run in ``CONVLINT_CUDA_PYTHON``'s venv (torch
2.14.1, torchvision 0.29.1, timm 1.0.31: ``.ci/run`` makes it), says how many there are. convlint is
given that venv as ``--python``: the models are used because its ``dist-info`` names versions they were
checked against. A case the models leave unknown must give no finding at all.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CUDA_PYTHON = os.environ.get("CONVLINT_CUDA_PYTHON")
pytestmark = pytest.mark.skipif(not CUDA_PYTHON, reason="CONVLINT_CUDA_PYTHON is not set: no venv with timm "
                                                        "and torchvision to compare with (.ci/run makes one)")

# (import line, the helper's construction, input C x spatial sizes)
CASES = [
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3)", (8, 17, 17)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3, stride=2)", (8, 17, 17)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 5, stride=2)", (8, 18, 18)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3, dilation=2)", (8, 17, 17)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 8, 3, stride=2, depthwise=True)", (8, 16, 16)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3, padding='same')", (8, 15, 15)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 4, stride=2, padding='valid')", (8, 17, 17)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3, stride=2, padding=0)", (8, 17, 17)),
    ("from timm.layers import create_conv2d", "create_conv2d(8, 16, 3, stride=2, padding='same')", (8, 17, 17)),
    ("from timm.layers import ConvNormAct", "ConvNormAct(8, 16, 3, stride=2)", (8, 17, 17)),
    ("from timm.layers import ConvNormAct", "ConvNormAct(8, 16)", (8, 9, 9)),
    ("from timm.layers import ConvNormAct", "ConvNormAct(8, 16, 3, padding=0)", (8, 9, 9)),
    ("from timm.layers import ConvBnAct", "ConvBnAct(8, 16, 5, stride=2, dilation=1)", (8, 19, 19)),
    ("from timm.layers import BatchNormAct2d", "BatchNormAct2d(8)", (8, 5, 5)),
    ("from timm.layers import get_norm_act_layer", "get_norm_act_layer(nn.BatchNorm2d, nn.ReLU)(8)", (8, 5, 5)),
    ("from timm.layers import create_aa", "create_aa(None, 8, stride=2)", (8, 7, 7)),
    ("from timm.layers import DropPath", "DropPath(0.1)", (8, 5, 5)),
    ("from timm.layers import create_attn", "create_attn('se', 8)", (8, 5, 5)),
    ("from timm.layers import create_attn", "create_attn('eca', 8)", (8, 5, 5)),
    ("from timm.layers import create_act_layer", "create_act_layer('relu')", (8, 5, 5)),
    ("from timm.layers import make_divisible", "nn.Conv2d(8, make_divisible(37), 1)", (8, 3, 3)),
    ("from timm.layers import make_divisible", "nn.Conv2d(8, make_divisible(12), 1)", (8, 3, 3)),
    ("from timm.layers import make_divisible", "nn.Conv2d(8, make_divisible(100, 16), 1)", (8, 3, 3)),
    ("from timm.layers import make_divisible", "nn.Conv2d(8, make_divisible(16 * 0.75, 4), 1)", (8, 3, 3)),
    ("from timm.layers import Linear", "nn.Sequential(nn.Flatten(1), Linear(200, 4))", (8, 5, 5)),
    ("from timm.layers.linear import Linear", "nn.Sequential(nn.Flatten(1), Linear(200, 3))", (8, 5, 5)),
    ("from timm.layers import get_padding", "nn.Conv2d(8, 4, 7, stride=2, padding=get_padding(7, 2))", (8, 20, 20)),
    ("from timm.layers import SelectAdaptivePool2d", "SelectAdaptivePool2d(pool_type='avg', flatten=True)", (8, 5, 5)),
    ("from timm.layers import SelectAdaptivePool2d", "SelectAdaptivePool2d(pool_type='max')", (8, 5, 5)),
    ("from timm.layers import create_classifier", "nn.Sequential(*create_classifier(8, 4))", (8, 5, 5)),
    ("from timm.layers import create_classifier", "nn.Sequential(*create_classifier(8, 4, use_conv=True))", (8, 5, 5)),
    ("from timm.layers import create_classifier", "nn.Sequential(*create_classifier(8, 4, drop_rate=0.1))", (8, 5, 5)),
    ("from timm.layers import to_2tuple", "nn.Conv2d(8, 4, to_2tuple(3), stride=to_2tuple(2))", (8, 9, 9)),
    ("from timm.layers import to_ntuple", "nn.Sequential(*[nn.Conv2d(8, 8, 3)] * len(to_ntuple(3)(1)))", (8, 9, 9)),
    ("from timm.layers import get_norm_layer", "get_norm_layer(nn.BatchNorm2d)(8)", (8, 5, 5)),
    ("from timm.models import build_model_with_cfg", "build_model_with_cfg(nn.Identity, 'resnet18', False)", (8, 5, 5)),
    ("from timm.models._builder import build_model_with_cfg",
     "build_model_with_cfg(nn.Conv2d, 'resnet18', False, kwargs_filter=('num_classes', 'in_chans'), "
     "in_channels=8, out_channels=4, kernel_size=3)", (8, 5, 5)),
    ("from torchvision.ops import Conv2dNormActivation", "Conv2dNormActivation(8, 16, 3, stride=2)", (8, 17, 17)),
    ("from torchvision.ops import Conv2dNormActivation", "Conv2dNormActivation(8, 16, 5, dilation=2)", (8, 17, 17)),
    ("from torchvision.ops import Conv2dNormActivation", "Conv2dNormActivation(8, 16, 3, padding=0)", (8, 9, 9)),
    ("from torchvision.ops import Conv2dNormActivation",
     "Conv2dNormActivation(8, 16, 1, norm_layer=None, activation_layer=None)", (8, 9, 9)),
    ("from torchvision.ops.misc import Conv3dNormActivation", "Conv3dNormActivation(8, 16, 3, stride=2)", (8, 7, 9, 9)),
    ("from torchvision.ops import SqueezeExcitation", "SqueezeExcitation(8, 2)", (8, 5, 5)),
    ("from torchvision.ops import StochasticDepth", "StochasticDepth(0.1, 'row')", (8, 5, 5)),
    ("from torchvision.ops import FrozenBatchNorm2d", "FrozenBatchNorm2d(8)", (8, 5, 5)),
]
# what the models leave unknown (timm pads a strided 'same' conv at run time): no finding expected
UNKNOWN = {"create_conv2d(8, 16, 3, stride=2, padding='same')"}

PROBE = """import torch
from torch import nn
{imports}


# convlint: input-size={size}
class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.rank = nn.Conv{rank}d({channels}, {channels}, 1)
        self.m = {build}
        self.fc = nn.Linear(1, 1)

    def forward(self, x):
        x = self.rank(x)  # (fixes the input's rank, as model code's first conv does)
        return self.fc(torch.flatten(self.m(x), 1))
"""

REAL = """
import json, sys, torch
from torch import nn
out = []
for imports, build, size in json.loads(sys.stdin.read()):
    scope = {"torch": torch, "nn": nn}
    exec(imports, scope)
    module = eval(build, scope).train()
    y = module(torch.randn(2, *size))  # (the probe's 1x1 conv before it keeps the shape)
    out.append(int(y[0].numel()))
print(json.dumps(out))
"""


def _probe(imports: str, build: str, size: tuple) -> str:
    return PROBE.format(imports=imports, size="x".join(map(str, size)), build=build, rank=len(size) - 1,
                        channels=size[0])


def _real_features() -> list:
    assert CUDA_PYTHON is not None
    proc = subprocess.run([CUDA_PYTHON, "-c", REAL], input=json.dumps(CASES), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_library_model_agrees_with_the_library(tmp_path: Path) -> None:
    real = _real_features()
    paths = []
    for i, (imports, build, size) in enumerate(CASES):
        path = tmp_path / f"probe_{i}.py"
        path.write_text(_probe(imports, build, size))
        paths.append(str(path))
    proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--no-cache",
                           "--format", "json", "--python", str(CUDA_PYTHON), *paths],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    found = {Path(d["path"]).name: d["message"] for d in json.loads(proc.stdout)}
    wrong = []
    for i, (_, build, _) in enumerate(CASES):
        message = found.get(f"probe_{i}.py")
        if build in UNKNOWN:
            if message is not None:
                wrong.append(f"{build}: expected no finding, got {message}")
            continue
        m = re.search(r"the flattened input has (\d+) features", message or "")
        got = int(m.group(1)) if m else None
        if got != real[i]:
            wrong.append(f"{build}: convlint {got if m else message!r}, the library {real[i]}")
    assert wrong == [], "\n".join(wrong)


def test_the_models_are_not_used_for_other_versions(tmp_path: Path) -> None:
    """timm 2.0 is not a version the models were checked against: its helpers stay unknown."""
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    (site / "timm-2.0.0.dist-info").mkdir(parents=True)
    path = tmp_path / "probe.py"
    path.write_text(_probe(*CASES[1]))
    args = [sys.executable, "-m", "convlint", "check", "--no-confirm", "--no-cache", str(path)]
    assert subprocess.run([*args, "--python", str(tmp_path / "env")], capture_output=True, text=True).stdout == ""
    assert "CVL303" in subprocess.run([*args, "--python", str(CUDA_PYTHON)], capture_output=True, text=True).stdout
