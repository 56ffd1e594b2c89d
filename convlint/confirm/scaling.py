"""Scaling a costly reproducer down: numbers the code itself fixes (``nn.Conv2d(3, 100000, 3)``,
``# convlint: input-size=3x4096x4096``) can make a reproducer too costly to run. ``replay.estimated_cost``
counts its work and memory; one past the budget is replaced by a smaller copy (smaller spatial sizes,
smaller channel counts the finding does not name) on which torch fails the same way, else it is kept as
it is and the runner leaves it unrun.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .replay import estimated_cost, torch_layers

Spec = Dict[str, Any]  # a reproducer: plain data (JSON) the confirmation child runs
SIZES = (16, 32, 64, 128, 224)  # the spatial sizes a reproducer's input is given, smallest first
# spatial sizes up to this are kept; larger ones become a size below 2 * m with the same remainder
# modulo m (strides and pools that divide m round alike)
KEEP_SIZE = 64
SIZE_MODULI = (32, 64, 128)
# channel counts up to this are kept; larger ones the finding does not name are renumbered
KEEP_CHANNELS = 64
CHANNEL_ARGUMENTS = ("in_channels", "out_channels", "groups", "num_features", "num_channels", "num_groups",
                     "in_features", "out_features")


def affordable(spec: Spec) -> Spec:
    """``spec`` when it is within the budget; else a scaled-down copy torch fails on the same way
    (smaller spatial sizes, and smaller channel counts the error does not name), which says how it was
    scaled in ``scaled_down``; else ``spec`` as it is (the runner leaves it unrun)."""
    cost = estimated_cost(spec)
    if cost is None or cost.affordable or spec["op"] == "build":
        return spec
    for smaller, how in _scaled_down(spec, cost.named):
        smaller_cost = estimated_cost(smaller)
        if smaller_cost is not None and smaller_cost.affordable and smaller_cost.outcome == cost.outcome:
            smaller["scaled_down"] = how
            return smaller
    return spec


def _scaled_down(spec: Spec, named: Tuple[int, ...]) -> Iterator[Tuple[Spec, str]]:
    """Smaller copies of ``spec`` to try, the least changed first, each with a description."""
    original = "x".join(map(str, spec["input"]))
    if spec["input"][0] > 1:  # half the work, unless a BatchNorm is then left one value per channel
        single = copy.deepcopy(spec)
        single["input"][0] = 1
        yield single, f"scaled down from input {original}"
    sizes = [_with_sizes(spec, s) for s in _smaller_sizes(spec["input"][2:])]
    for smaller in sizes:
        yield smaller, f"scaled down from input {original}"
    renumbered = _renumbered_channels(spec, named)
    if renumbered is not None:
        fewer, renaming = renumbered
        yield fewer, f"scaled down from {renaming}"
        for size in _smaller_sizes(fewer["input"][2:]):
            yield _with_sizes(fewer, size), f"scaled down from input {original}, {renaming}"


def _smaller_sizes(sizes: Sequence[int]) -> List[Tuple[int, ...]]:
    """Smaller spatial sizes: the same remainders modulo a power of two first (they round alike
    through the strides that divide it), then the usual sizes."""
    if all(d <= KEEP_SIZE for d in sizes):
        return []
    out: List[Tuple[int, ...]] = []
    for m in SIZE_MODULI:
        out.append(tuple(d if d <= KEEP_SIZE else m + d % m for d in sizes))
    out += [tuple(min(d, n) for d in sizes) for n in SIZES]
    return [s for i, s in enumerate(out) if s not in out[:i] and s != tuple(sizes)]


def _with_sizes(spec: Spec, sizes: Sequence[int]) -> Spec:
    smaller = copy.deepcopy(spec)
    smaller["input"] = [*spec["input"][:2], *sizes]
    return smaller


def _layers_of(spec: Spec) -> List[Any]:
    """The torch layers of ``spec`` (a Concat's as the layers of its parts)."""
    if spec["op"] == "build":
        return [spec["layer"]]
    return [leaf for x in [*spec["prefix"], *spec.get("branch", []), *spec.get("shortcut", []),
                           *([spec["consumer"]] if "consumer" in spec else [])] for leaf in torch_layers(x)]


def _renumbered_channels(spec: Spec, named: Tuple[int, ...]) -> Optional[Tuple[Spec, str]]:
    """``spec`` with each large channel count the error does not name replaced by a small one, kept
    distinct from every other count (only which counts are equal, and which divide which through
    ``groups``, decides torch's channel checks), and a description of the renaming."""
    if spec["op"] == "build":
        return None
    counts = {args[key] for _, args in _layers_of(spec) for key in CHANNEL_ARGUMENTS
              if isinstance(args.get(key), int)} | {spec["input"][1]}
    large = sorted(c for c in counts if c > KEEP_CHANNELS and c not in named)
    if not large:
        return None
    kept = counts - set(large)
    groups = [args[key] for _, args in _layers_of(spec) for key in ("groups", "num_groups")
              if isinstance(args.get(key), int) and args[key] in kept]
    step = math.lcm(*groups) if groups else 1
    renamed: Dict[int, int] = {}
    new = (max(kept, default=1) // step + 1) * step
    for count in large:  # in order: a larger count stays larger
        while new in kept or new < 2:
            new += step
        renamed[count] = new
        new += step
    fewer = copy.deepcopy(spec)
    for _, args in _layers_of(fewer):
        for key in CHANNEL_ARGUMENTS:
            if isinstance(args.get(key), int) and args[key] in renamed:
                args[key] = renamed[args[key]]
    fewer["input"][1] = renamed.get(fewer["input"][1], fewer["input"][1])
    return fewer, ", ".join(f"{c} channels as {renamed[c]}" for c in large)
