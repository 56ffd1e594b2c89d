"""Reproducers for findings, built from the numbers the analysis read (never from the user's code).

A reproducer is plain data: the input tensor's shape, lists of torch layers by class name with
integer arguments, and the operation expected to fail (an add, a layer call, or building a layer).
Symbols are given small concrete values that satisfy the path's facts and keep the finding true
(``in_planes=4, planes=8, stride=2``). A finding whose history holds a step convlint cannot replay
faithfully (a concatenation, an unmodelled call) gets no reproducer: it stays unconfirmed rather than
being "refuted" by an inexact program.

Numbers the code itself fixes (``nn.Conv2d(3, 100000, 3)``, ``# convlint: input-size=3x4096x4096``)
can make a reproducer too costly to run. ``estimated_cost`` replays a reproducer's shapes as torch
would and counts its work and memory; a reproducer past the budget is scaled down (smaller spatial
sizes, smaller channel counts the finding does not name) when torch then fails the same way, else it is
kept as it is and the runner leaves it unrun.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from ..analysis.residual import ResidualShapes
from ..rules.base import Replay, Rule
from ..symbolic.poly import FLOOR_ATOMS, Facts, Poly
from ..torchlib.events import ChannelUse, ConvBuilt
from ..torchlib.layers import NoReplay, Replayable, Template
from ..torchlib.values import CHANNEL_PREFIX, Step, StepKind, TensorV

Env = Dict[str, int]
Layer = Tuple[str, Dict[str, Any]]  # a torch class name with concrete arguments
Spec = Dict[str, Any]  # a reproducer: plain data (JSON) the confirmation child runs
CANDIDATES = (4, 8, 2, 3, 16, 6, 1, 5)
SIZES = (16, 32, 64, 128, 224)
MAX_TRIES = 400

# The budget of one reproducer, in multiply-adds plus elements written. Measured on one thread (the
# child's): 10**9 of them take 0.05 s (a 3x3 conv, 64 channels in and out) to 1.8 s (3 channels in, 64
# out, at 1024x1024), and the costliest of the 95 fixture reproducers needs 4.6 * 10**8
MAX_WORK = 10**9
# The tensors of one reproducer (weights, activations, a convolution's unfolded input), counted as if
# none were freed: 2**28 float32 elements are 1 GiB, within the child's memory headroom (child.py),
# and still hold a classifier head such as VGG's nn.Linear(25088, 4096) (10**8 weights)
MAX_ELEMENTS = 2**28
# Scaling a reproducer down: spatial sizes up to this are kept; larger ones become a size below
# 2 * m with the same remainder modulo m (strides and pools that divide m round alike)
KEEP_SIZE = 64
SIZE_MODULI = (32, 64, 128)
# channel counts up to this are kept; larger ones the finding does not name are renumbered
KEEP_CHANNELS = 64
CHANNEL_ARGUMENTS = ("in_channels", "out_channels", "groups", "num_features", "num_channels", "num_groups",
                     "in_features", "out_features")


_ADD_WANTS = {Replay.ADD_SIZES: "sizes", Replay.ADD_CHANNELS: "channels", Replay.ADD_ANY: "any"}


def reproducer(rule: Rule, subject: object) -> Optional[Dict[str, Any]]:
    """The reproducer of a finding of ``rule`` about ``subject``, as the rule says torch shows it."""
    if isinstance(subject, ResidualShapes) and rule.replay in _ADD_WANTS:
        return residual_spec(subject, _ADD_WANTS[rule.replay])
    if rule.replay is Replay.CHANNEL_USE and isinstance(subject, ChannelUse):
        return channel_use_spec(subject)
    if rule.replay is Replay.BUILD and isinstance(subject, ConvBuilt):
        return conv_build_spec(subject, rule.refused_when_built)
    return None


# --- from layers to templates -------------------------------------------------------------------


def _template(step: Step, ndim: int) -> Optional[Template]:
    """The torch layer that replays ``step`` (None: a step that keeps the shape)."""
    layer = step.layer
    if layer is not None:
        if not isinstance(layer, Replayable):
            raise NoReplay
        return layer.replay(ndim)
    if step.kind == StepKind.FLATTEN:
        return ("Flatten", {})
    if step.kind == StepKind.PERMUTE and step.permutation is not None:
        return ("Permute", {"dims": step.permutation})
    if step.kind == StepKind.KEEP:
        return None
    raise NoReplay


def _templates(steps: Sequence[Step], ndim: int) -> List[Template]:
    """The layers to replay. An elementwise merge (``f * g``) keeps one operand's shape: the steps of
    the other operand, recorded just before the merge, are left out of the chain."""
    chain: List[Step] = []
    for step in steps:
        if step.kind == StepKind.MERGE and step.other_steps is not None:
            if step.other_steps:
                del chain[-step.other_steps:]
            continue
        chain.append(step)
    out = []
    for step in chain:
        t = _template(step, ndim)
        if t is not None:
            out.append(t)
    return out


# --- values for the symbols ---------------------------------------------------------------------


def _atoms(value: object) -> Set[str]:
    if isinstance(value, Poly):
        out = set()
        for a in value.atoms():
            if a in FLOOR_ATOMS:
                num, den = FLOOR_ATOMS[a]
                out |= _atoms(num) | _atoms(den)
            else:
                out.add(a)
        return out
    if isinstance(value, (tuple, list)):
        return set().union(*(_atoms(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_atoms(v) for v in value.values())) if value else set()
    return set()


def _eval(p: Poly, facts: Facts, env: Env) -> Optional[int]:
    p = facts.resolve(p)
    total = 0
    for m, c in p.terms.items():
        term = c
        for a in m:
            if a in env:
                term *= env[a]
            elif a in FLOOR_ATOMS:
                num, den = FLOOR_ATOMS[a]
                n, d = _eval(num, facts, env), _eval(den, facts, env)
                if n is None or not d:
                    return None
                term *= n // d
            else:
                return None
        total += term
    return total


def _concrete(value: object, facts: Facts, env: Env) -> object:
    if isinstance(value, Poly):
        v = _eval(value, facts, env)
        if v is None:
            raise NoReplay
        return v
    if isinstance(value, tuple):
        return tuple(_concrete(v, facts, env) for v in value)
    return value


def _search(free: Sequence[str], facts: Facts, accept: Callable[[Env], Optional[Spec]]) -> Optional[Spec]:
    for i, combo in enumerate(itertools.product(CANDIDATES, repeat=len(free))):
        if i >= MAX_TRIES:
            return None
        env = dict(zip(free, combo))
        if any(_eval(d, facts, env) in (0, None) for d in facts.disequal):
            continue
        try:
            spec = accept(env)
        except NoReplay:
            return None
        except (ZeroDivisionError, TypeError):
            continue
        if spec is not None:
            spec = affordable(spec)
            spec["values"] = ", ".join(f"{a}={v}" for a, v in sorted(env.items()) if not a.startswith("C["))
            return spec
    return None


def _layers_ok(layers: Sequence[Layer]) -> bool:
    """Arguments torch accepts when building (so a reproducer fails where the finding says)."""
    for name, args in layers:
        if name.startswith("Conv"):
            g = args["groups"]
            if g < 1 or args["in_channels"] % g or args["out_channels"] % g or args["out_channels"] < 1 \
                    or args["in_channels"] < 1 or min(args["kernel_size"]) < 1 or min(args["stride"]) < 1 \
                    or min(args["dilation"]) < 1:
                return False
            if isinstance(args["padding"], tuple) and min(args["padding"]) < 0:
                return False
            if args["padding"] == "same" and max(args["stride"]) != 1:
                return False
        elif name.startswith(("MaxPool", "AvgPool")):
            if any(2 * p > k for p, k in zip(args["padding"], args["kernel_size"])) or min(args["stride"]) < 1:
                return False
        elif name == "GroupNorm":
            if args["num_groups"] < 1 or args["num_channels"] % args["num_groups"]:
                return False
        elif name.startswith(("BatchNorm", "InstanceNorm")):
            if args["num_features"] < 1:
                return False
        elif name == "Linear":
            if args["in_features"] < 1 or args["out_features"] < 1:
                return False
    return True


def _out_channels(layers: Sequence[Layer], channels: int) -> int:
    for name, args in layers:
        channels = args.get("out_channels") or args.get("num_features") or args.get("num_channels") or \
            args.get("out_features") or channels
    return channels


def _simulate(layers: Sequence[Layer], size: Tuple[int, ...]) -> Optional[Tuple[int, ...]]:
    """The spatial size after ``layers`` (torch's formulas), or None where a layer would refuse it."""
    dims = tuple(size)
    channels_last = False
    for name, args in layers:
        if name == "Permute":
            channels_last = not channels_last
            continue
        if name == "Linear" and channels_last:
            continue
        if name.startswith(("Conv", "MaxPool", "AvgPool")):
            n = len(dims)
            k, st, p = args["kernel_size"], args["stride"], args["padding"]
            d = args.get("dilation", (1,) * n)
            if p == "same":
                continue
            out = []
            for i in range(n):
                span = dims[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
                if span < 0:
                    return None
                if args.get("ceil_mode"):
                    o = -(-span // st[i]) + 1
                    if (o - 1) * st[i] >= dims[i] + p[i]:
                        o -= 1
                else:
                    o = span // st[i] + 1
                out.append(o)
            dims = tuple(out)
        elif name.startswith("AdaptiveAvgPool"):
            dims = tuple(d if o is None else o for d, o in zip(dims, args["output_size"]))
        elif name == "Upsample":
            dims = tuple(d * args["scale_factor"] for d in dims)
        elif name in ("Flatten", "Linear"):
            dims = ()
        elif "Pad" in name:
            pad = args["padding"]
            pad = (pad,) * (2 * len(dims)) if isinstance(pad, int) else pad
            dims = tuple(d + pad[2 * (len(dims) - 1 - i)] + pad[2 * (len(dims) - 1 - i) + 1]
                         for i, d in enumerate(dims))
        if any(d < 1 for d in dims):
            return None
    return dims


def _materialize(templates: Sequence[Template], facts: Facts, env: Env,
                 channels: Optional[int] = None) -> List[Layer]:
    """Numbers for the templates; channel counts the analysis left unknown follow the chain."""
    out: List[Layer] = []
    for name, args in templates:
        concrete: Dict[str, Any] = {k: (None if v is None else _concrete(v, facts, env)) for k, v in args.items()}
        if name.startswith("Conv"):
            concrete["in_channels"] = concrete["in_channels"] or channels
            if concrete["in_channels"] is None:
                raise NoReplay
            concrete["groups"] = concrete["groups"] or 1
            concrete["out_channels"] = concrete["out_channels"] or concrete["in_channels"]
            channels = concrete["out_channels"]
        elif name.startswith(("BatchNorm", "InstanceNorm")):
            concrete["num_features"] = concrete["num_features"] or channels
            channels = concrete["num_features"]
        elif name == "GroupNorm":
            concrete["num_channels"] = concrete["num_channels"] or channels
            concrete["num_groups"] = concrete["num_groups"] or 1
            channels = concrete["num_channels"]
        elif name == "Linear":
            channels = concrete["out_features"]
        if any(v is None for v in concrete.values() if not isinstance(v, tuple)) and not name.startswith("Adaptive"):
            raise NoReplay
        out.append((name, concrete))
    return out


def _rank(t: TensorV, steps: Sequence[Step]) -> int:
    if t.dims:
        return len(t.dims)
    for s in steps:
        n = getattr(s.layer, "ndim", None)
        if isinstance(n, int) and n > 0:
            return n
    return 2


def _input_channels(root: str, facts: Facts) -> Poly:
    return facts.resolve(Poly.atom(f"{CHANNEL_PREFIX}{root}]"))


def _sizes_for(t: TensorV, rank: int) -> Sequence[Tuple[int, ...]]:
    known = dict(t.known_sizes)
    if known:
        return [tuple(known.get(f"{t.root}#{rank - i}", 32) for i in range(rank))]
    return [(n,) * rank for n in SIZES]


# --- the three kinds of reproducers -------------------------------------------------------------


def residual_spec(shapes: ResidualShapes, want: str) -> Optional[Spec]:
    """``branch(t) + shortcut(t)`` must fail; ``want`` is "channels" or "sizes" (the values chosen keep
    that finding true), or "any" (just replay the add)."""
    if shapes.dims is None and want == "sizes":
        return None
    facts = shapes.facts
    branch, shortcut = shapes.branch, shapes.shortcut
    branch_channels, shortcut_channels = branch.channels, shortcut.channels
    if branch.root != shortcut.root or branch_channels is None or shortcut_channels is None:
        return None
    n_common = len(branch.history) - len(shapes.branch_steps)
    prefix_steps = branch.history.steps()[:n_common]
    all_steps = tuple(prefix_steps) + tuple(shapes.branch_steps) + tuple(shapes.shortcut_steps)
    if any(_unreplayable(s) for s in all_steps):
        return None
    if not _merges_local(prefix_steps) or not _merges_local(shapes.branch_steps) or \
            not _merges_local(shapes.shortcut_steps):
        return None
    rank = _rank(branch, all_steps)
    try:
        prefix, left, right = (_templates(prefix_steps, rank), _templates(shapes.branch_steps, rank),
                               _templates(shapes.shortcut_steps, rank))
    except NoReplay:
        return None
    channels_in = _input_channels(branch.root, facts)
    free = sorted((_atoms([channels_in, *(a for _, a in prefix + left + right)]) |
                   _atoms([branch.channels, shortcut.channels])) - set(facts.subst))

    def accept(env: Env) -> Optional[Spec]:
        b, s = _eval(branch_channels, facts, env), _eval(shortcut_channels, facts, env)
        c_in = _eval(channels_in, facts, env)
        if b is None or s is None or c_in is None or c_in < 1:
            return None
        if want == "channels" and (b == s or 1 in (b, s)):
            return None
        first = _materialize(prefix, facts, env, c_in)
        after = _out_channels(first, c_in)
        layers = [first, _materialize(left, facts, env, after), _materialize(right, facts, env, after)]
        if not all(_layers_ok(x) for x in layers):
            return None
        for size in _sizes_for(branch, rank):
            bs, ss = _simulate(layers[0] + layers[1], size), _simulate(layers[0] + layers[2], size)
            if bs is None or ss is None:
                continue
            if want == "sizes" and not any(x != y and 1 not in (x, y) for x, y in zip(bs, ss)):
                continue
            return {"op": "add", "input": [2, c_in, *size], "prefix": layers[0], "branch": layers[1],
                    "shortcut": layers[2]}
        return None

    return _search(free, facts, accept)


def _unreplayable(step: Step) -> bool:
    """A step of no layer that changed the shape in a way no layer replays: an unmodelled change, a
    concatenation."""
    if step.kind == StepKind.MERGE:
        return step.other_steps is None
    return step.kind in (StepKind.OTHER, StepKind.MODULE) and step.layer is None


def _merges_local(steps: Sequence[Step]) -> bool:
    """Every merge's other operand lies within ``steps`` (so dropping it stays inside this chain)."""
    for i, step in enumerate(steps):
        if step.kind == StepKind.MERGE and step.other_steps is not None and step.other_steps > i:
            return False
    return True


def channel_use_spec(use: ChannelUse) -> Optional[Spec]:
    """``consumer(history(x))`` must fail: the layer expects other channels (or features)."""
    t, facts = use.tensor, use.facts
    steps = t.history.steps()
    if any(_unreplayable(s) for s in steps) or not _merges_local(steps):
        return None
    rank = _rank(t, steps)
    try:
        history = _templates(steps, rank)
        consumer = _template(use.layer.step(), rank)
    except NoReplay:
        return None
    if consumer is None:
        return None
    channels_in = _input_channels(t.root, facts)
    free = sorted(_atoms([channels_in, *(a for _, a in history), consumer[1]]) - set(facts.subst))

    def accept(env: Env) -> Optional[Spec]:
        expected, actual = _eval(use.expected, facts, env), _eval(use.actual, facts, env)
        c_in = _eval(channels_in, facts, env)
        if expected is None or actual is None or expected == actual or c_in is None or c_in < 1:
            return None
        layers = _materialize(history, facts, env, c_in)
        last = _materialize([consumer], facts, env, _out_channels(layers, c_in))
        if not _layers_ok(layers) or not _layers_ok(last):
            return None
        for size in _sizes_for(t, rank):
            if _simulate(layers, size) is None:
                continue
            return {"op": "consume", "input": [2, c_in, *size], "prefix": layers, "consumer": last[0]}
        return None

    return _search(free, facts, accept)


def conv_build_spec(built: ConvBuilt, check: Callable[[Mapping[str, Any]], bool]) -> Optional[Spec]:
    """``nn.ConvNd(...)`` must be refused when it is built."""
    facts = built.facts
    try:
        template = _template(built.conv.step(), built.conv.ndim)
    except NoReplay:
        return None
    if template is None:
        return None
    free = sorted(_atoms(template[1]) - set(facts.subst))

    def accept(env: Env) -> Optional[Spec]:
        name, args = _materialize([template], facts, env)[0]
        if not check(args):
            return None
        return {"op": "build", "layer": [name, args]}

    return _search(free, facts, accept)


# --- what a reproducer costs, and scaling it down ----------------------------------------------


class _Refused(Exception):
    """torch raises here: ``kind`` is what it checks ("channels", "features", "size", "rank");
    ``names`` the numbers its message names that are the finding's own (one count against another)."""

    def __init__(self, kind: str, names: Tuple[int, ...] = ()) -> None:
        super().__init__(kind)
        self.kind = kind
        self.names = names
        self.where: Tuple[str, int] = ("", 0)


class _Untraceable(Exception):
    """A layer or an argument this replay of torch's shape rules does not know."""


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


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Untraceable
    return value


def _per_dim(value: object, n: int) -> Tuple[int, ...]:
    """An argument given as one int or one per dim."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise _Untraceable
        return tuple(_integer(v) for v in value)
    return (_integer(value),) * n


def _rank_in_name(name: str) -> int:
    """3 for ``Conv3d``."""
    if len(name) > 2 and name.endswith("d") and name[-2] in "123":
        return int(name[-2])
    raise _Untraceable


def _windowed(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
              dilation: Sequence[int], ceil_mode: bool) -> List[int]:
    """Sizes after a sliding window (torch's formula, as ``_simulate``)."""
    out = []
    for d, k, st, p, dl in zip(sizes, kernel, stride, padding, dilation):
        if st < 1:
            raise _Refused("size")
        span = d + 2 * p - dl * (k - 1) - 1
        if span < 0:
            raise _Refused("size")
        o = -(-span // st) + 1 if ceil_mode else span // st + 1
        if ceil_mode and (o - 1) * st >= d + p:
            o -= 1
        out.append(o)
    return out


def _build_refused(layer: Sequence[Any]) -> bool:
    """Whether torch refuses to build ``layer`` (it checks these before making any weight)."""
    name, args = layer[0], layer[1]
    if not str(name).startswith("Conv"):
        return False
    n = _rank_in_name(name)
    groups, c_in, c_out = _integer(args["groups"]), _integer(args["in_channels"]), _integer(args["out_channels"])
    stride = _per_dim(args["stride"], n)
    return groups < 1 or c_in % groups != 0 or c_out % groups != 0 or (args["padding"] == "same" and max(stride) > 1)


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


def _replay_layer(layer: Sequence[Any], shape: List[int], tally: _Tally) -> List[int]:
    """The shape after ``layer`` as torch computes it, with its cost; raises ``_Refused`` where torch
    raises."""
    name, args = layer[0], layer[1]
    if not isinstance(name, str) or not isinstance(args, Mapping):
        raise _Untraceable
    elements = math.prod(shape)
    if name == "Permute":
        dims = [_integer(d) for d in args["dims"]]
        if sorted(dims) != list(range(len(shape))):
            raise _Refused("rank")
        return [shape[i] for i in dims]
    if name == "Flatten":
        tally.tensor(elements)  # a view of a contiguous tensor, a copy of a permuted one: counted as a copy
        return shape[:1] + [math.prod(shape[1:])]
    if name == "Linear":
        c_in, c_out = _integer(args["in_features"]), _integer(args["out_features"])
        if shape[-1] != c_in:
            raise _Refused("features", (c_in, shape[-1]))
        tally.tensor(elements // max(c_in, 1) * c_out, c_in)
        return shape[:-1] + [c_out]
    if name == "Upsample":
        factor = args.get("scale_factor")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or len(shape) < 3:
            raise _Untraceable
        out = shape[:2] + [int(math.floor(d * factor)) for d in shape[2:]]
        tally.tensor(math.prod(out))
        return out
    if name == "GroupNorm":
        if len(shape) < 2:
            raise _Refused("rank")
        channels = _integer(args["num_channels"])
        if shape[1] != channels:
            raise _Refused("channels", (channels, shape[1]))
        tally.tensor(elements, 2)
        return shape
    n = _rank_in_name(name)
    if name.startswith("Conv"):
        if len(shape) != n + 2:
            raise _Refused("rank")
        c_in, c_out, groups = _integer(args["in_channels"]), _integer(args["out_channels"]), _integer(args["groups"])
        if shape[1] != c_in:
            raise _Refused("channels", (c_in, shape[1]))
        kernel = _per_dim(args["kernel_size"], n)
        sizes = shape[2:] if args["padding"] == "same" else _windowed(
            shape[2:], kernel, _per_dim(args["stride"], n), _per_dim(args["padding"], n),
            _per_dim(args["dilation"], n), False)
        taps = c_in // groups * math.prod(kernel)
        tally.tensor(taps * math.prod(sizes))  # the unfolded input some of torch's kernels make
        tally.tensor(shape[0] * c_out * math.prod(sizes), taps)
        return [shape[0], c_out, *sizes]
    if len(shape) not in (n + 1, n + 2):  # the layers below take a batched or an unbatched input
        raise _Refused("rank")
    if name.startswith(("BatchNorm", "InstanceNorm")):
        if name.startswith("BatchNorm") and len(shape) != n + 2 and not (n == 1 and len(shape) == 2):
            raise _Refused("rank")
        features, channels = _integer(args["num_features"]), shape[1] if len(shape) == n + 2 else shape[0]
        checks = name.startswith("BatchNorm") or args.get("affine") or args.get("track_running_stats")
        if checks and channels != features:
            raise _Refused("channels", (features, channels))
        tally.tensor(elements, 2)
        return shape
    if name.startswith(("MaxPool", "AvgPool")):
        kernel = _per_dim(args["kernel_size"], n)
        stride = kernel if args.get("stride") is None else _per_dim(args["stride"], n)
        sizes = _windowed(shape[-n:], kernel, stride, _per_dim(args.get("padding", 0), n),
                          _per_dim(args.get("dilation", 1), n), bool(args.get("ceil_mode")))
        out = shape[:-n] + sizes
        tally.tensor(math.prod(out), math.prod(kernel))
        return out
    if name.startswith("AdaptiveAvgPool"):
        wanted = args["output_size"]
        wanted = [wanted] * n if isinstance(wanted, int) else list(wanted)
        if len(wanted) != n:
            raise _Untraceable
        out = shape[:-n] + [d if w is None else _integer(w) for d, w in zip(shape[-n:], wanted)]
        tally.tensor(elements + math.prod(out))
        return out
    if name.endswith(("Pad1d", "Pad2d", "Pad3d")):
        pad = args["padding"]
        sides = [_integer(pad)] * (2 * n) if isinstance(pad, int) else [_integer(p) for p in pad]
        if len(sides) % 2 or len(sides) // 2 > n:
            raise _Untraceable
        out = list(shape)
        for i in range(len(sides) // 2):  # torch pads the last dim first
            dim, left, right = len(shape) - 1 - i, sides[2 * i], sides[2 * i + 1]
            if name.startswith("Reflection") and max(left, right) >= shape[dim]:
                raise _Refused("size")
            if name.startswith("Circular") and max(left, right) > shape[dim]:
                raise _Refused("size")
            out[dim] = shape[dim] + left + right
            if out[dim] < 1:
                raise _Refused("size")
        tally.tensor(math.prod(out))
        return out
    raise _Untraceable


def _replay_chain(stage: str, layers: Sequence[Sequence[Any]], shape: List[int], tally: _Tally) -> List[int]:
    for i, layer in enumerate(layers):
        try:
            shape = _replay_layer(layer, shape, tally)
        except _Refused as refusal:
            refusal.where = (stage, i)
            raise
    return shape


def _mismatched(a: Sequence[int], b: Sequence[int]) -> Tuple[int, ...]:
    """The dims (of the broadcast result) where ``a + b`` cannot broadcast."""
    rank = max(len(a), len(b))
    a, b = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    return tuple(i for i, (x, y) in enumerate(zip(a, b)) if x != y and 1 not in (x, y))


def _replay(spec: Mapping[str, Any]) -> Cost:
    tally = _Tally()
    if spec["op"] == "build":
        if _build_refused(spec["layer"]):
            return Cost(0, 0, ("build",))
        tally.tensor(_weights(spec["layer"]))
        return Cost(tally.work, tally.elements, ("ok",))
    adding = spec["op"] == "add"
    chains: List[Tuple[str, Sequence[Sequence[Any]]]] = [("prefix", spec["prefix"])]
    chains += [("branch", spec["branch"]), ("shortcut", spec["shortcut"])] if adding else \
        [("consume", [spec["consumer"]])]
    for _, layers in chains:  # every layer is built (its weights filled) before the input runs
        for layer in layers:
            if _build_refused(layer):
                return Cost(tally.work, tally.elements, ("build",))
            tally.tensor(_weights(layer))
    shape = [_integer(d) for d in spec["input"]]
    if not shape or min(shape) < 0:
        raise _Untraceable
    tally.tensor(math.prod(shape))
    try:
        t = _replay_chain("prefix", spec["prefix"], shape, tally)
        if not adding:
            _replay_chain("consume", [spec["consumer"]], t, tally)
            return Cost(tally.work, tally.elements, ("ok",))
        a = _replay_chain("branch", spec["branch"], t, tally)
        b = _replay_chain("shortcut", spec["shortcut"], t, tally)
    except _Refused as refusal:
        if refusal.where[0] == "consume":
            return Cost(tally.work, tally.elements, ("consume", refusal.kind, refusal.names), refusal.names)
        return Cost(tally.work, tally.elements, (*refusal.where, refusal.kind))
    wrong = _mismatched(a, b)
    if not wrong:
        tally.tensor(max(math.prod(a), math.prod(b)))
        return Cost(tally.work, tally.elements, ("ok",))
    # a channel count is a number the finding names; spatial sizes are H and W in its message
    named = (a[1], b[1]) if 1 in wrong and len(a) == len(b) else ()
    return Cost(tally.work, tally.elements, ("add", wrong, named), named)


def estimated_cost(spec: Mapping[str, Any]) -> Optional[Cost]:
    """What running ``spec`` takes and where torch raises; None for a reproducer this replay of
    torch's shape rules does not follow."""
    try:
        return _replay(spec)
    except (_Untraceable, KeyError, TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError):
        return None


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
    if spec["op"] == "build":
        return [spec["layer"]]
    return [*spec["prefix"], *spec.get("branch", []), *spec.get("shortcut", []),
            *([spec["consumer"]] if "consumer" in spec else [])]


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
