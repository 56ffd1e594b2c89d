"""What a reproducer may hold: the one check of a reproducer that did not come from this run's own
analysis (the result cache keeps them as JSON, and anyone who can write the cache folder can write one).

A reproducer is plain data (``convlint.confirm.reproduce``): an operation, an input shape, and torch
layers by class name with keyword arguments. The program ``--explain-confirm`` prints is made of those
names and values, so a reproducer is accepted only when every layer name is one the confirmation child
may build, every argument name a keyword argument of those layers, and every value a literal whose text
cannot be anything but that value (an int, a bool, None, a finite float, a string of a fixed set, a short
tuple of ints). Sizes are capped too (``convlint.limits``: layers, arguments, tuple length, ints, texts): an
accepted reproducer prints at most about a hundred kilobytes.
"""
from __future__ import annotations

import keyword
import math
from typing import Any, Dict, FrozenSet, List, Mapping, Sequence, Tuple, TypeGuard, Union

from ..limits import INT_LIMIT, MAX_ARGUMENTS, MAX_DESCRIPTION, MAX_LAYERS, MAX_NESTING, MAX_TUPLE
from ..torchlib.catalogue import REPLAYED_LAYERS

PERMUTE = "Permute"  # ``x.permute(...)`` as a layer: not a torch.nn class
CONCAT = "Concat"  # ``torch.cat([part(x) for part in parts], 1)`` as a layer, of chains ``parts``
CHANNELS = "Channels"  # ``x[:, start:start + size]`` as a layer: a group torch.split or chunk gives
LAYER_NAMES: FrozenSet[str] = REPLAYED_LAYERS | {PERMUTE, CONCAT, CHANNELS}

# the keyword arguments of the replayed torch.nn classes: first those the replays write
# (convlint.torchlib.layers, ``replay``), then the other ones these constructors take
ARGUMENT_NAMES: FrozenSet[str] = frozenset({
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "dilation", "groups",
    "num_features", "affine", "num_groups", "num_channels", "ceil_mode", "value", "output_size",
    "scale_factor", "in_features", "out_features", "dims",
    "bias", "padding_mode", "eps", "momentum", "track_running_stats", "count_include_pad",
    "divisor_override", "return_indices", "start_dim", "end_dim", "size", "mode", "align_corners",
})
# the strings these constructors take: padding, padding modes, Upsample's modes
STRING_VALUES: FrozenSet[str] = frozenset({
    "same", "valid", "zeros", "reflect", "replicate", "circular",
    "nearest", "linear", "bilinear", "bicubic", "trilinear",
})

MIN_RANK, MAX_RANK = 2, 5  # the input: batch, channels, up to three spatial dims
# the texts that describe a reproducer, shown in the evidence: "values" ("planes=4, stride=2", the
# symbols' values) and "scaled_down" (how a costly reproducer was made smaller)
DESCRIPTIONS = ("values", "scaled_down")

# each operation's keys besides the optional DESCRIPTIONS
_KEYS: Dict[str, FrozenSet[str]] = {
    "add": frozenset({"op", "input", "prefix", "branch", "shortcut"}),
    "cat": frozenset({"op", "input", "prefix", "branch", "shortcut"}),
    "consume": frozenset({"op", "input", "prefix", "consumer"}),
    "build": frozenset({"op", "layer"}),
}
_CHAINS: Dict[str, Sequence[str]] = {"add": ("prefix", "branch", "shortcut"), "cat": ("prefix", "branch", "shortcut"),
                                     "consume": ("prefix",), "build": ()}


def valid_spec(spec: object) -> bool:
    """Whether ``spec`` is a reproducer as convlint builds them, within the caps (module docstring):
    only such a reproducer is printed as a program or read back from the cache (so only such a one
    reaches the confirmation child from the cache)."""
    if not isinstance(spec, Mapping):
        return False
    op = spec.get("op")
    if not isinstance(op, str) or op not in _KEYS:
        return False
    keys = set(spec)
    if not _KEYS[op] <= keys <= _KEYS[op].union(DESCRIPTIONS):
        return False
    if not all(valid_description(spec[key]) for key in DESCRIPTIONS if key in spec):
        return False
    if op == "build":
        return valid_layer(spec["layer"])
    chains = [spec[key] for key in _CHAINS[op]]
    if not valid_input(spec["input"]) or not all(valid_chain(chain) for chain in chains) or \
            sum(layer_count(x) for chain in chains for x in chain) > MAX_LAYERS:
        return False
    return op != "consume" or valid_layer(spec["consumer"])


def valid_description(text: object) -> bool:
    """A text that describes a reproducer (``"planes=4, stride=2"``): printable, of at most
    MAX_DESCRIPTION characters (it is shown in the evidence: no terminal control sequence)."""
    return isinstance(text, str) and len(text) <= MAX_DESCRIPTION and text.isprintable()


def valid_input(shape: object) -> bool:
    """The input tensor's shape: MIN_RANK to MAX_RANK positive ints."""
    return _is_sequence(shape) and MIN_RANK <= len(shape) <= MAX_RANK and \
        all(is_int(n) and n >= 1 for n in shape)


def valid_chain(layers: object, depth: int = 0) -> bool:
    """A chain of at most MAX_LAYERS layers (``nn.Sequential``'s arguments), ``depth`` Concats deep."""
    return _is_sequence(layers) and len(layers) <= MAX_LAYERS and all(valid_layer(x, depth) for x in layers)


def layer_count(layer: Sequence[Any]) -> int:
    """The torch layers ``layer`` builds: one, or those of a ``Concat``'s parts."""
    name, args = layer
    if name == CONCAT:
        return sum(layer_count(x) for part in args["parts"] for x in part)
    return 1


def valid_layer(layer: object, depth: int = 0) -> bool:
    """``[name, {argument: value}]``: a layer the confirmation child may build, with keyword arguments
    of those layers and literal values; ``Permute`` takes exactly a permutation ``dims``."""
    if not _is_sequence(layer) or len(layer) != 2:
        return False
    name, args = layer
    if not isinstance(name, str) or name not in LAYER_NAMES or not name.isidentifier() or \
            not isinstance(args, Mapping):
        return False
    if name == CHANNELS:
        start, size = args.get("start"), args.get("size")
        return set(args) == {"start", "size"} and is_int(start) and is_int(size) and start >= 0 and size >= 1
    if name == CONCAT:
        parts = args.get("parts")
        return depth < MAX_NESTING and set(args) == {"parts"} and _is_sequence(parts) and \
            1 <= len(parts) <= MAX_TUPLE and all(valid_chain(part, depth + 1) for part in parts) and \
            layer_count(layer) <= MAX_LAYERS
    if name == PERMUTE:
        dims = args.get("dims")
        if set(args) != {"dims"} or not _is_sequence(dims) or not 1 <= len(dims) <= MAX_TUPLE:
            return False
        ints = [d for d in dims if is_int(d)]
        return len(ints) == len(dims) and sorted(ints) == list(range(len(ints)))
    return len(args) <= MAX_ARGUMENTS and all(valid_argument_name(k) and valid_value(v) for k, v in args.items())


def valid_argument_name(name: object) -> bool:
    """A keyword argument of the replayed layers (so an identifier, and no Python keyword)."""
    return isinstance(name, str) and name in ARGUMENT_NAMES and name.isidentifier() and \
        not keyword.iskeyword(name)


def valid_value(value: object) -> bool:
    """A literal argument: None, a bool, an int or a finite float within INT_LIMIT, a string of
    STRING_VALUES, or a tuple (a list, once through JSON) of up to MAX_TUPLE ints or Nones (an
    adaptive pool's output size keeps a dim with None)."""
    if value is None or isinstance(value, bool) or is_int(value):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and -INT_LIMIT <= value < INT_LIMIT
    if isinstance(value, str):
        return value in STRING_VALUES
    return _is_sequence(value) and len(value) <= MAX_TUPLE and all(x is None or is_int(x) for x in value)


def is_int(value: object) -> TypeGuard[int]:
    """An int (not a bool) within INT_LIMIT."""
    return isinstance(value, int) and not isinstance(value, bool) and -INT_LIMIT <= value < INT_LIMIT


def _is_sequence(value: object) -> TypeGuard[Union[List[object], Tuple[object, ...]]]:
    """A list or a tuple: what a reproducer's sequences are before (tuples) and after (lists) JSON.
    Not any Sequence: a string is one."""
    return isinstance(value, (list, tuple))
