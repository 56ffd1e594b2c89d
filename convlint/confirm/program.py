"""A reproducer as the Python program ``--explain-confirm`` prints: paste it and torch raises the error
the finding names.

The program is code the user runs, and a reproducer may have been read from the result cache, so a
reproducer is printed only when ``valid_spec`` accepts it (layer names of the confirmation child's
whitelist, known keyword arguments, literal values), and every value is written from its checked type,
never as ``repr`` of whatever object came in.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .spec import CHANNELS, CONCAT, PERMUTE, valid_spec

Layer = Tuple[str, Mapping[str, object]]  # a validated ``[name, {argument: value}]``

_PERMUTE_CLASS = ["", "class Permute(nn.Module):", "    def __init__(self, *dims):", "        super().__init__()",
                  "        self.dims = dims", "", "    def forward(self, x):",
                  "        return x.permute(*self.dims)", ""]
_CHANNELS_CLASS = ["", "class Channels(nn.Module):", "    def __init__(self, start, size):", "        super().__init__()",
                   "        self.start, self.size = start, size", "", "    def forward(self, x):",
                   "        return x[:, self.start:self.start + self.size]", ""]
_CONCAT_CLASS = ["", "class Concat(nn.Module):", "    def __init__(self, *parts):", "        super().__init__()",
                 "        self.parts = nn.ModuleList(parts)", "", "    def forward(self, x):",
                 "        return torch.cat([part(x) for part in self.parts], 1)", ""]


def program(spec: Mapping[str, Any]) -> Optional[str]:
    """The reproducer as a Python program (what ``--explain-confirm`` prints); None when ``spec`` is
    not a reproducer convlint builds (``convlint.confirm.spec.valid_spec``): then there is no program
    to print."""
    if not valid_spec(spec):
        return None
    lines = ["import torch", "from torch import nn", ""]
    names = {name for name, _ in _all_layers(spec)}
    if PERMUTE in names:
        lines += _PERMUTE_CLASS
    if CONCAT in names:
        lines += _CONCAT_CLASS
    if CHANNELS in names:
        lines += _CHANNELS_CLASS
    if spec["op"] == "build":
        lines.append(_layer_code(_layer(spec["layer"])))
        return "\n".join(lines) + "\n"
    lines.append(f"x = torch.randn({', '.join(str(int(n)) for n in spec['input'])})")
    lines.append(f"prefix = {_sequential(spec['prefix'])}")
    if spec["op"] == "add":
        lines.append(f"branch = {_sequential(spec['branch'])}")
        lines.append(f"shortcut = {_sequential(spec['shortcut'])}")
        lines += ["t = prefix(x)", "y = branch(t) + shortcut(t)"]
    elif spec["op"] == "cat":
        lines.append(f"first = {_sequential(spec['branch'])}")
        lines.append(f"second = {_sequential(spec['shortcut'])}")
        lines += ["t = prefix(x)", "y = torch.cat([first(t), second(t)], 1)"]
    else:
        lines.append(f"layer = {_layer_code(_layer(spec['consumer']))}")
        lines.append("y = layer(prefix(x))")
    return "\n".join(lines) + "\n"


def _all_layers(spec: Mapping[str, Any]) -> List[Layer]:
    """Every layer of a validated reproducer (a Concat and the layers of its parts)."""
    chains: List[Sequence[Any]] = [spec[key] for key in ("prefix", "branch", "shortcut") if key in spec]
    chains.append([spec[key] for key in ("layer", "consumer") if key in spec])
    out: List[Layer] = []
    while chains:
        for x in chains.pop():
            layer = _layer(x)
            out.append(layer)
            if layer[0] == CONCAT:
                chains.extend(layer[1]["parts"])  # type: ignore[arg-type]  # (validated: a list of chains)
    return out


def _layer(layer: Sequence[Any]) -> Layer:
    """A validated ``[name, arguments]`` (a list once through JSON) as a pair."""
    name, args = layer
    return (str(name), args)


def _layer_code(layer: Layer, indent: str = "") -> str:
    name, args = layer
    if name == PERMUTE:
        return f"Permute{_literal(args['dims'])}"
    if name == CHANNELS:
        return f"Channels({_literal(args['start'])}, {_literal(args['size'])})"
    if name == CONCAT:
        parts = args["parts"]
        assert isinstance(parts, (list, tuple))  # (validated)
        return f"Concat({', '.join(_sequential(part, indent) for part in parts)})"
    return f"nn.{name}({', '.join(f'{k}={_literal(v)}' for k, v in args.items())})"


def _sequential(layers: Sequence[Sequence[Any]], indent: str = "") -> str:
    """``nn.Sequential(...)`` with a layer per line, ``indent`` deep (a Concat's parts nest)."""
    if not layers:
        return "nn.Sequential()"
    inner = f",\n{indent}    ".join(_layer_code(_layer(x), indent + "    ") for x in layers)
    return f"nn.Sequential(\n{indent}    {inner},\n{indent})"


def _literal(value: object) -> str:
    """The source text of a value ``valid_value`` accepted, written from its type: a sequence (a list
    once the reproducer went through JSON) as a tuple, so that a reproducer prints the same program
    whether it comes from this run or from the cache."""
    if value is None or isinstance(value, bool):
        return "True" if value is True else "False" if value is False else "None"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, (list, tuple)):
        items = [_literal(x) for x in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    raise ValueError(f"not a reproducer value: {type(value).__name__}")  # valid_spec refused it already
