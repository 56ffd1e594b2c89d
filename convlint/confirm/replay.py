"""torch's rules replayed on reproducers: which arguments torch refuses when it builds a layer or first
calls it, the shape each layer gives an input or the error torch raises there, and what running a
reproducer costs.

A reproducer is plain data (``convlint.confirm.spec``): torch layers by class name with their
arguments. The replay knows the layers reproducers are made of and torch's formulas for them; where it
differs from torch it is stricter: a layer that would make an empty tensor (zero channels, features or
size) is refused, as a reproducer that makes one shows nothing. ``convlint.confirm.reproduce`` checks
with it that a reproducer fails where its finding says and nowhere before, and scales down the costly
ones; the runner leaves unrun a reproducer past its budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ..limits import MAX_ELEMENTS, MAX_WORK
from .spec import CHANNELS, CONCAT

Dims = Tuple[int, ...]  # an argument per dim

# the reproducers that run two chains on one tensor and join their results: ``a + b``, ``torch.cat([a, b], 1)``
TWO_CHAINS = ("add", "cat")


class Refused(Exception):
    """torch raises here: ``kind`` is what it checks ("argument", "channels", "features", "size",
    "rank"); ``names`` the numbers its message names that are the finding's own (one count against
    another); ``where`` the chain and the index in it of the layer that raises."""

    def __init__(self, kind: str, names: Tuple[int, ...] = ()) -> None:
        super().__init__(kind)
        self.kind = kind
        self.names = names
        self.where: Tuple[str, int] = ("", 0)


class Untraceable(Exception):
    """A layer or an argument this replay of torch's rules does not know."""


@dataclass(frozen=True)
class Cost:
    """What running a reproducer takes, replayed from torch's shape rules, and how the run ends.

    ``work`` counts multiply-adds and elements written; ``elements`` every tensor the run makes, as if
    none were freed. ``outcome`` is where torch raises and how (two reproducers with one outcome show
    the same error, at other sizes); ``named`` the numbers that error names which the finding names
    too (the channel counts of a mismatch), which scaling down keeps."""

    work: int
    elements: int
    outcome: Tuple[object, ...]
    named: Tuple[int, ...] = ()

    @property
    def affordable(self) -> bool:
        return self.work <= MAX_WORK and self.elements <= MAX_ELEMENTS


class _Tally:
    """The running count of a replay."""

    def __init__(self) -> None:
        self.work = 0
        self.elements = 0

    def tensor(self, elements: int, work_per_element: int = 1) -> None:
        self.elements += elements
        self.work += elements * work_per_element


# --- a layer's own arguments ----------------------------------------------------------------------


def argument_refusal(layer: Sequence[Any]) -> Optional[str]:
    """When torch refuses ``layer``'s own arguments, whatever its input: "build" (its constructor
    raises), "call" (its first call raises), or None (it takes them)."""
    leaves = [_named(x) for x in torch_layers(layer)]
    if any(_refused_when_built(name, args) for name, args in leaves):
        return "build"
    if any(_refused_when_called(name, args) for name, args in leaves):
        return "call"
    return None


def torch_layers(layer: Sequence[Any]) -> List[Sequence[Any]]:
    """The torch layers ``layer`` is made of: itself, or every layer of a ``Concat``'s parts."""
    name, args = _named(layer)
    if name != CONCAT:
        return [layer]
    return [leaf for part in args["parts"] for x in part for leaf in torch_layers(x)]


def _refused_when_built(name: str, args: Mapping[str, Any]) -> bool:
    """torch's constructor checks: groups, divisibility, ``padding="same"`` with a stride, and no weight
    or buffer of a negative size."""
    if name.startswith("Conv"):
        n = _rank_in_name(name)
        groups, c_in, c_out = _integer(args["groups"]), _integer(args["in_channels"]), _integer(args["out_channels"])
        if groups < 1 or c_in % groups != 0 or c_out % groups != 0:
            return True
        if args["padding"] == "same" and any(s != 1 for s in _per_dim(args["stride"], n)):
            return True
        return min(c_out, c_in, *_per_dim(args["kernel_size"], n)) < 0
    if name.startswith(("BatchNorm", "InstanceNorm")):
        return _checks_channels(name, args) and _integer(args["num_features"]) < 0
    if name == "GroupNorm":
        groups, channels = _integer(args["num_groups"]), _integer(args["num_channels"])
        return groups == 0 or channels % groups != 0 or (bool(args.get("affine", True)) and channels < 0)
    if name == "Linear":
        return min(_integer(args["in_features"]), _integer(args["out_features"])) < 0
    return False


def _refused_when_called(name: str, args: Mapping[str, Any]) -> bool:
    """The checks of a layer's first call that do not depend on its input: windows of positive
    kernels, strides and dilations and no negative padding (a pool's at most half its kernel), a
    positive group count; and no layer of zero channels or features (torch refuses every input but an
    empty one; a Linear of no output features makes an empty tensor)."""
    if name.startswith(("Conv", "MaxPool", "AvgPool")):
        kernel, stride, padding, dilation = _window(name, args, _rank_in_name(name))
        if min(*kernel, *stride, *dilation) < 1 or min(padding, default=0) < 0:
            return True
        if name.startswith("ConvTranspose"):
            # torch: "output padding must be smaller than either stride or dilation"
            extra = _per_dim(args["output_padding"], _rank_in_name(name))
            if any(o < 0 or (o >= s and o >= d) for o, s, d in zip(extra, stride, dilation)):
                return True
        if name.startswith("Conv"):
            return 0 in (_integer(args["in_channels"]), _integer(args["out_channels"]))
        return any(2 * p > k for p, k in zip(padding, kernel))
    if name.startswith(("BatchNorm", "InstanceNorm")):
        return _checks_channels(name, args) and _integer(args["num_features"]) == 0
    if name == "GroupNorm":
        return _integer(args["num_groups"]) < 0 or \
            (bool(args.get("affine", True)) and _integer(args["num_channels"]) == 0)
    if name == "Linear":
        return 0 in (_integer(args["in_features"]), _integer(args["out_features"]))
    return False


def _checks_channels(name: str, args: Mapping[str, Any]) -> bool:
    """Whether a BatchNorm or InstanceNorm holds weights or running statistics, so checks its input's
    channels against ``num_features``."""
    return name.startswith("BatchNorm") or bool(args.get("affine")) or bool(args.get("track_running_stats"))


# --- shapes ---------------------------------------------------------------------------------------


def shape_through(layers: Sequence[Sequence[Any]], shape: Sequence[int], stage: str = "",
                  tally: Optional[_Tally] = None) -> List[int]:
    """The shape after ``layers`` (the layers of chain ``stage``) as torch computes it; raises
    ``Refused``, its ``where`` set, at the first layer torch raises at."""
    out = list(shape)
    for i, layer in enumerate(layers):
        try:
            out = shape_after(layer, out, tally)
        except Refused as refusal:
            refusal.where = (stage, i)
            raise
    return out


def shape_after(layer: Sequence[Any], shape: List[int], tally: Optional[_Tally] = None) -> List[int]:
    """The shape after ``layer`` as torch computes it, with its cost counted in ``tally``; raises
    ``Refused`` where torch raises."""
    name, args = _named(layer)
    tally = _Tally() if tally is None else tally
    if name == CHANNELS:  # x[:, start:start + size]
        start, size = _integer(args["start"]), _integer(args["size"])
        if len(shape) < 2 or shape[1] < start + size:
            raise Refused("channels")
        tally.tensor(math.prod(shape) // max(shape[1], 1) * size)
        return [shape[0], size, *shape[2:]]
    if name == CONCAT:  # torch.cat([part(x) for part in parts], 1)
        outs = [shape_through(part, shape, "", tally) for part in args["parts"]]
        if any(joined_mismatch(outs[0], out) for out in outs[1:]) or len(outs[0]) < 2:
            raise Refused("size")
        joined = [outs[0][0], sum(out[1] for out in outs), *outs[0][2:]]
        tally.tensor(math.prod(joined))
        return joined
    if _refused_when_called(name, args):
        raise Refused("argument")
    elements = math.prod(shape)
    if name == "Permute":
        dims = [_integer(d) for d in args["dims"]]
        if sorted(dims) != list(range(len(shape))):
            raise Refused("rank")
        return [shape[i] for i in dims]
    if name == "Flatten":
        tally.tensor(elements)  # a view of a contiguous tensor, a copy of a permuted one: counted as a copy
        return shape[:1] + [math.prod(shape[1:])]
    if name == "Linear":
        c_in, c_out = _integer(args["in_features"]), _integer(args["out_features"])
        if shape[-1] != c_in:
            raise Refused("features", (c_in, shape[-1]))
        tally.tensor(elements // max(c_in, 1) * c_out, c_in)
        return shape[:-1] + [c_out]
    if name == "Upsample" and args.get("size") is not None:
        size = args["size"]
        if not isinstance(size, (tuple, list)) or len(size) != len(shape) - 2 or not 3 <= len(shape) <= 5:
            raise Refused("rank")
        out = shape[:2] + [_integer(n) for n in size]
        if min(out) < 1:
            raise Refused("size")
        tally.tensor(math.prod(out))
        return out
    if name == "Upsample":
        factor = args.get("scale_factor")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise Untraceable
        if not 3 <= len(shape) <= 5:
            raise Refused("rank")
        out = shape[:2] + [int(math.floor(d * factor)) for d in shape[2:]]
        if min(out) < 1:
            raise Refused("size")
        tally.tensor(math.prod(out))
        return out
    if name == "GroupNorm":
        if len(shape) < 2:
            raise Refused("rank")
        channels = _integer(args["num_channels"])
        if shape[1] != channels:
            raise Refused("channels", (channels, shape[1]))
        tally.tensor(elements, 2)
        return shape
    n = _rank_in_name(name)
    if name.startswith("Conv"):  # ConvNd and ConvTransposeNd
        if len(shape) != n + 2:
            raise Refused("rank")
        c_in, c_out, groups = _integer(args["in_channels"]), _integer(args["out_channels"]), _integer(args["groups"])
        if shape[1] != c_in:
            raise Refused("channels", (c_in, shape[1]))
        kernel, stride, padding, dilation = _window(name, args, n)
        if name.startswith("ConvTranspose"):
            extra = _per_dim(args["output_padding"], n)
            sizes = [(d - 1) * s - 2 * p + dl * (k - 1) + o + 1
                     for d, k, s, p, dl, o in zip(shape[2:], kernel, stride, padding, dilation, extra)]
            if min(sizes) < 1:
                raise Refused("size")
            taps = c_out // groups * math.prod(kernel)
            tally.tensor(shape[0] * c_in * math.prod(shape[2:]), taps)  # each input value spread over taps
            tally.tensor(shape[0] * c_out * math.prod(sizes))
            return [shape[0], c_out, *sizes]
        sizes = shape[2:] if not padding else _windowed(shape[2:], kernel, stride, padding, dilation, False)
        taps = c_in // groups * math.prod(kernel)
        tally.tensor(taps * math.prod(sizes))  # the unfolded input some of torch's kernels make
        tally.tensor(shape[0] * c_out * math.prod(sizes), taps)
        return [shape[0], c_out, *sizes]
    if len(shape) not in (n + 1, n + 2):  # the layers below take a batched or an unbatched input
        raise Refused("rank")
    if name.startswith(("BatchNorm", "InstanceNorm")):
        if name.startswith("BatchNorm") and len(shape) != n + 2 and not (n == 1 and len(shape) == 2):
            raise Refused("rank")
        features, channels = _integer(args["num_features"]), shape[1] if len(shape) == n + 2 else shape[0]
        if _checks_channels(name, args) and channels != features:
            raise Refused("channels", (features, channels))
        if name.startswith("BatchNorm") and len(shape) != n + 1 and elements == channels:
            raise Refused("values")  # a batch's statistics need more than one value per channel (training)
        tally.tensor(elements, 2)
        return shape
    if name.startswith(("MaxPool", "AvgPool")):
        kernel, stride, padding, dilation = _window(name, args, n)
        out = shape[:-n] + _windowed(shape[-n:], kernel, stride, padding, dilation, bool(args.get("ceil_mode")))
        tally.tensor(math.prod(out), math.prod(kernel))
        return out
    if name.startswith("AdaptiveAvgPool"):
        wanted = args["output_size"]
        wanted = [wanted] * n if isinstance(wanted, int) else list(wanted)
        if len(wanted) != n:
            raise Untraceable
        out = shape[:-n] + [d if w is None else _integer(w) for d, w in zip(shape[-n:], wanted)]
        if min(out) < 1:
            raise Refused("size")
        tally.tensor(elements + math.prod(out))
        return out
    if name.endswith(("Pad1d", "Pad2d", "Pad3d")):
        pad = args["padding"]
        sides = [_integer(pad)] * (2 * n) if isinstance(pad, int) else [_integer(p) for p in pad]
        if len(sides) % 2 or len(sides) // 2 > n:
            raise Untraceable
        out = list(shape)
        for i in range(len(sides) // 2):  # torch pads the last dim first
            dim, left, right = len(shape) - 1 - i, sides[2 * i], sides[2 * i + 1]
            if name.startswith("Reflection") and max(left, right) >= shape[dim]:
                raise Refused("size")
            if name.startswith("Circular") and max(left, right) > shape[dim]:
                raise Refused("size")
            out[dim] = shape[dim] + left + right
            if out[dim] < 1:
                raise Refused("size")
        tally.tensor(math.prod(out))
        return out
    raise Untraceable


def _window(name: str, args: Mapping[str, Any], n: int) -> Tuple[Dims, Dims, Dims, Dims]:
    """A convolution's or pool's kernel, stride, padding (empty for ``"same"``) and dilation, per dim (a
    pool's as torch's defaults where they are not given)."""
    kernel = _per_dim(args["kernel_size"], n)
    if name.startswith("Conv"):
        padding = () if args["padding"] == "same" else _per_dim(args["padding"], n)
        return kernel, _per_dim(args["stride"], n), padding, _per_dim(args["dilation"], n)
    stride = kernel if args.get("stride") is None else _per_dim(args["stride"], n)
    return kernel, stride, _per_dim(args.get("padding", 0), n), _per_dim(args.get("dilation", 1), n)


def _windowed(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
              dilation: Sequence[int], ceil_mode: bool) -> List[int]:
    """Sizes after a sliding window (torch's formula; the arguments are checked already)."""
    out = []
    for d, k, st, p, dl in zip(sizes, kernel, stride, padding, dilation):
        span = d + 2 * p - dl * (k - 1) - 1
        if span < 0:
            raise Refused("size")
        o = -(-span // st) + 1 if ceil_mode else span // st + 1
        if ceil_mode and (o - 1) * st >= d + p:  # the last window must start inside the input or its left padding
            o -= 1
        out.append(o)
    return out


def joined_mismatch(a: Sequence[int], b: Sequence[int]) -> Tuple[int, ...]:
    """The dims where ``torch.cat([a, b], 1)`` fails: every dim but 1 must be equal (no broadcasting);
    tensors of two ranks fail as a whole (dim -1)."""
    if len(a) != len(b):
        return (-1,)
    return tuple(i for i, (x, y) in enumerate(zip(a, b)) if i != 1 and x != y)


def mismatched_dims(a: Sequence[int], b: Sequence[int]) -> Tuple[int, ...]:
    """The dims (of the broadcast result) where ``a + b`` cannot broadcast."""
    rank = max(len(a), len(b))
    a, b = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    return tuple(i for i, (x, y) in enumerate(zip(a, b)) if x != y and 1 not in (x, y))


# --- what a reproducer costs ----------------------------------------------------------------------


def estimated_cost(spec: Mapping[str, Any]) -> Optional[Cost]:
    """What running ``spec`` takes and where torch raises; None for a reproducer this replay of
    torch's rules does not follow."""
    try:
        return _replay(spec)
    except (Untraceable, KeyError, TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError):
        return None


def _replay(spec: Mapping[str, Any]) -> Cost:
    tally = _Tally()
    if spec["op"] == "build":
        if _refused_when_built(*_named(spec["layer"])):
            return Cost(0, 0, ("build",))
        tally.tensor(_weights(spec["layer"]))
        return Cost(tally.work, tally.elements, ("ok",))
    adding = spec["op"] in TWO_CHAINS
    chains: List[Tuple[str, Sequence[Sequence[Any]]]] = [("prefix", spec["prefix"])]
    chains += [("branch", spec["branch"]), ("shortcut", spec["shortcut"])] if adding else \
        [("consume", [spec["consumer"]])]
    for _, layers in chains:  # every layer is built (its weights filled) before the input runs
        for layer in (leaf for x in layers for leaf in torch_layers(x)):
            if _refused_when_built(*_named(layer)):
                return Cost(tally.work, tally.elements, ("build",))
            tally.tensor(_weights(layer))
    shape = [_integer(d) for d in spec["input"]]
    if not shape or min(shape) < 0:
        raise Untraceable
    tally.tensor(math.prod(shape))
    try:
        t = shape_through(spec["prefix"], shape, "prefix", tally)
        if not adding:
            shape_through([spec["consumer"]], t, "consume", tally)
            return Cost(tally.work, tally.elements, ("ok",))
        a = shape_through(spec["branch"], t, "branch", tally)
        b = shape_through(spec["shortcut"], t, "shortcut", tally)
    except Refused as refusal:
        if refusal.where[0] == "consume":
            return Cost(tally.work, tally.elements, ("consume", refusal.kind, refusal.names), refusal.names)
        return Cost(tally.work, tally.elements, (*refusal.where, refusal.kind))
    if spec["op"] == "cat":
        wrong = joined_mismatch(a, b)
        if not wrong:
            tally.tensor(math.prod(a) + math.prod(b))
            return Cost(tally.work, tally.elements, ("ok",))
        return Cost(tally.work, tally.elements, ("cat", wrong))
    wrong = mismatched_dims(a, b)
    if not wrong:
        tally.tensor(max(math.prod(a), math.prod(b)))
        return Cost(tally.work, tally.elements, ("ok",))
    # a channel count is a number the finding names; spatial sizes are H and W in its message
    named = (a[1], b[1]) if 1 in wrong and len(a) == len(b) else ()
    return Cost(tally.work, tally.elements, ("add", wrong, named), named)


def _weights(layer: Sequence[Any]) -> int:
    """The elements of ``layer``'s weights and buffers (all filled when it is built)."""
    name, args = str(layer[0]), layer[1]
    if name.startswith("Conv"):
        return _integer(args["out_channels"]) * (_integer(args["in_channels"]) // _integer(args["groups"])) * \
            math.prod(_per_dim(args["kernel_size"], _rank_in_name(name))) + _integer(args["out_channels"])
    if name == "Linear":
        return (_integer(args["in_features"]) + 1) * _integer(args["out_features"])
    if name.startswith(("BatchNorm", "InstanceNorm")):
        return 4 * _integer(args["num_features"])
    if name == "GroupNorm":
        return 2 * _integer(args["num_channels"])
    return 0


# --- reading a layer's arguments ------------------------------------------------------------------


def _named(layer: Sequence[Any]) -> Tuple[str, Mapping[str, Any]]:
    """A layer's class name and arguments."""
    name, args = layer[0], layer[1]
    if not isinstance(name, str) or not isinstance(args, Mapping):
        raise Untraceable
    return name, args


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Untraceable
    return value


def _per_dim(value: object, n: int) -> Dims:
    """An argument given as one int or one per dim."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise Untraceable
        return tuple(_integer(v) for v in value)
    return (_integer(value),) * n


def _rank_in_name(name: str) -> int:
    """3 for ``Conv3d``."""
    if len(name) > 2 and name.endswith("d") and name[-2] in "123":
        return int(name[-2])
    raise Untraceable
