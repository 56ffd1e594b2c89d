"""A reproducer as the Python program ``--explain-confirm`` prints: paste it and torch raises the error
the finding names."""
from __future__ import annotations

from typing import Any, Mapping, Sequence


def _layer_code(layer: Sequence[Any]) -> str:
    name, args = layer
    if name == "Permute":
        return f"Permute{tuple(args['dims'])}"
    parts = [f"{k}={v!r}" for k, v in args.items()]
    return f"nn.{name}({', '.join(parts)})"


def _sequential(layers: Sequence[Sequence[Any]]) -> str:
    if not layers:
        return "nn.Sequential()"
    inner = ",\n    ".join(_layer_code(x) for x in layers)
    return f"nn.Sequential(\n    {inner},\n)"


def program(spec: Mapping[str, Any]) -> str:
    """The reproducer as a Python program (what ``--explain-confirm`` prints)."""
    lines = ["import torch", "from torch import nn", ""]
    if "Permute" in repr(spec):
        lines += ["", "class Permute(nn.Module):", "    def __init__(self, *dims):", "        super().__init__()",
                  "        self.dims = dims", "", "    def forward(self, x):", "        return x.permute(*self.dims)", ""]
    if spec["op"] == "build":
        lines.append(_layer_code(spec["layer"]))
        return "\n".join(lines) + "\n"
    lines.append(f"x = torch.randn({', '.join(map(str, spec['input']))})")
    lines.append(f"prefix = {_sequential(spec['prefix'])}")
    if spec["op"] == "add":
        lines.append(f"branch = {_sequential(spec['branch'])}")
        lines.append(f"shortcut = {_sequential(spec['shortcut'])}")
        lines += ["t = prefix(x)", "y = branch(t) + shortcut(t)"]
    else:
        lines.append(f"layer = {_layer_code(spec['consumer'])}")
        lines.append("y = layer(prefix(x))")
    return "\n".join(lines) + "\n"
