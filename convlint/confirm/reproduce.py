"""Reproducers for findings, built from the numbers the analysis read (never from the user's code).

A reproducer is plain data: the input tensor's shape, lists of torch layers by class name with
integer arguments, and the operation expected to fail (an add, a layer call, or building a layer).
Symbols are given small concrete values that satisfy the path's facts and keep the finding true
(``in_planes=4, planes=8, stride=2``). A finding whose history holds a step convlint cannot replay
faithfully (a concatenation, an unmodelled call) gets no reproducer: it stays unconfirmed rather than
being "refuted" by an inexact program.

A reproducer of an add or of a layer call is checked against torch's rules as
``convlint.confirm.replay`` replays them: torch takes every layer's arguments, and the layers before
the operation that must fail run cleanly (so torch raises at that operation, or nowhere).

A reproducer too costly to run at the code's own numbers is scaled down (``convlint.confirm.scaling``).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..analysis.residual import ResidualShapes
from ..limits import MAX_TRIES
from ..rules.base import Replay, Rule
from ..symbolic.dims import Dim
from ..symbolic.poly import FLOOR_ATOMS, Facts, Poly
from ..torchlib.events import ChannelUse, Concatenation, ConvBuilt, diverging
from ..torchlib.flattening import FLATTENED_SIZE
from ..torchlib.layers import NoReplay, Replayable, SizesOf, Template
from ..torchlib.values import CHANNEL_PREFIX, Step, StepKind, TensorV, input_dim
from .replay import Refused, Untraceable, argument_refusal, joined_mismatch, mismatched_dims, shape_through
from .scaling import SIZES, Spec, affordable
from .spec import CHANNELS, CONCAT

Env = Dict[str, int]
Layer = Tuple[str, Dict[str, Any]]  # a torch class name with concrete arguments
CANDIDATES = (4, 8, 2, 3, 16, 6, 1, 5)


_ADD_WANTS = {Replay.ADD_SIZES: "sizes", Replay.ADD_CHANNELS: "channels", Replay.ADD_ANY: "any"}


def reproducer(rule: Rule, subject: object) -> Optional[Dict[str, Any]]:
    """The reproducer of a finding of ``rule`` about ``subject``, as the rule says torch shows it."""
    if isinstance(subject, ResidualShapes) and rule.replay in _ADD_WANTS:
        return residual_spec(subject, _ADD_WANTS[rule.replay])
    if rule.replay is Replay.CAT_SIZES and isinstance(subject, Concatenation):
        return concat_spec(subject)
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
    if step.kind == StepKind.CONCAT and step.parts is not None:
        if not all(_merges_local(part) and not any(_unreplayable(s) for s in part) for part in step.parts):
            raise NoReplay
        return (CONCAT, {"parts": tuple(tuple(_templates(part, ndim)) for part in step.parts)})
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


def _materialize(templates: Sequence[Template], facts: Facts, env: Env,
                 channels: Optional[int] = None) -> Tuple[List[Layer], Optional[int]]:
    """Numbers for the templates, and the channel count they end with; channel counts the analysis
    left unknown follow the chain."""
    out: List[Layer] = []
    for name, args in templates:
        if name == CONCAT:  # each part from the same input; the channels add up
            parts = [_materialize(part, facts, env, channels) for part in args["parts"]]  # type: ignore[attr-defined]
            if channels is None or any(c is None for _, c in parts):
                raise NoReplay
            out.append((name, {"parts": [layers for layers, _ in parts]}))
            channels = sum(c for _, c in parts if c is not None)
            continue
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
        elif name == CHANNELS:
            channels = concrete["size"]
        if any(v is None for v in concrete.values() if not isinstance(v, tuple)) and not name.startswith("Adaptive"):
            raise NoReplay
        out.append((name, concrete))
    return out, channels


def _at_size(layers: Sequence[Layer], root: str, size: Sequence[int], facts: Facts, env: Env) -> Optional[List[Layer]]:
    """``layers`` for an input of spatial ``size``: a resize to other maps' sizes gets those sizes in
    numbers (None when they cannot be had: a size from another input, or no valid size)."""
    out: List[Layer] = []
    for name, args in layers:
        if name == CONCAT:
            parts = [_at_size(part, root, size, facts, env) for part in args["parts"]]
            if any(part is None for part in parts):
                return None
            out.append((name, {"parts": parts}))
        elif isinstance(args.get("size"), SizesOf):
            numbers = {a: Poly.const(v) for a, v in env.items()}
            given = {input_dim(root, len(size) - i): n for i, n in enumerate(size)}  # (the input's own dims)
            sizes = []
            for dim in args["size"].dims:
                if dim.base not in given:
                    return None  # (another input's size)
                ops = [op.resolved(facts).resolved(Facts(subst=numbers)) for op in dim.ops]
                n = Dim(dim.base, tuple(ops)).concrete(given[dim.base], Facts())
                if n is None:
                    return None
                sizes.append(n)
            out.append((name, {**args, "size": tuple(sizes)}))
        else:
            out.append((name, args))
    return out


# --- checked against the replay of torch's rules ------------------------------------------------


def _take_arguments(layers: Sequence[Layer]) -> bool:
    """Whether torch takes the arguments of every layer of ``layers``, when built and when first called."""
    try:
        return all(argument_refusal(layer) is None for layer in layers)
    except Untraceable:  # a reproducer that cannot be checked is not made
        raise NoReplay from None


def _runs(layers: Sequence[Layer], shape: Sequence[int]) -> Optional[List[int]]:
    """The shape after ``layers`` as torch computes it; None where torch raises."""
    try:
        return shape_through(layers, shape)
    except Refused:
        return None
    except Untraceable:  # a reproducer that cannot be checked is not made
        raise NoReplay from None


def _sizes_differ(op: str, a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether joining tensors of shapes ``a`` and ``b`` by ``op`` fails on a spatial size (a dim past
    batch and channels of tensors of one rank)."""
    wrong = joined_mismatch(a, b) if op == "cat" else mismatched_dims(a, b)
    return len(a) == len(b) and any(d >= 2 for d in wrong)


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
        return [tuple(known.get(input_dim(t.root, rank - i), 32) for i in range(rank))]
    return [(n,) * rank for n in SIZES]


# --- the three kinds of reproducers -------------------------------------------------------------


def residual_spec(shapes: ResidualShapes, want: str) -> Optional[Spec]:
    """``branch(t) + shortcut(t)`` must fail; ``want`` is "channels" or "sizes" (the values chosen keep
    that finding true), or "any" (just replay the add)."""
    if shapes.dims is None and want == "sizes":
        return None
    return _joined_spec("add", shapes.branch, shapes.shortcut, shapes.branch_steps, shapes.shortcut_steps,
                        shapes.facts, want)


def concat_spec(joined: Concatenation) -> Optional[Spec]:
    """``torch.cat([first(t), second(t)], 1)`` must fail: the first two maps whose sizes differ."""
    pair = joined.sizes()[1]
    if pair is None:
        return None
    first, second = pair
    first_steps, second_steps = diverging(first, second)
    return _joined_spec("cat", first, second, first_steps, second_steps, joined.facts, "sizes")


def _joined_spec(op: str, branch: TensorV, shortcut: TensorV, branch_steps: Sequence[Step],
                 shortcut_steps: Sequence[Step], facts: Facts, want: str) -> Optional[Spec]:
    """Two chains from one tensor joined by ``op`` ("add" or "cat") must fail; ``want`` as for
    ``residual_spec``."""
    branch_channels, shortcut_channels = branch.channels, shortcut.channels
    if branch.root != shortcut.root or (want != "sizes" and (branch_channels is None or shortcut_channels is None)):
        return None  # (a finding on sizes needs no channel count: the replay gives them)
    n_common = len(branch.history) - len(branch_steps)
    prefix_steps = branch.history.steps()[:n_common]
    all_steps = tuple(prefix_steps) + tuple(branch_steps) + tuple(shortcut_steps)
    if any(_unreplayable(s) for s in all_steps):
        return None
    if not _merges_local(prefix_steps) or not _merges_local(branch_steps) or not _merges_local(shortcut_steps):
        return None
    rank = _rank(branch, all_steps)
    try:
        prefix, left, right = (_templates(prefix_steps, rank), _templates(branch_steps, rank),
                               _templates(shortcut_steps, rank))
    except NoReplay:
        return None
    channels_in = _input_channels(branch.root, facts)
    free = sorted((_atoms([channels_in, *(a for _, a in prefix + left + right)]) |
                   _atoms([branch.channels, shortcut.channels])) - set(facts.subst))

    def accept(env: Env) -> Optional[Spec]:
        b = None if branch_channels is None else _eval(branch_channels, facts, env)
        s = None if shortcut_channels is None else _eval(shortcut_channels, facts, env)
        c_in = _eval(channels_in, facts, env)
        if (want != "sizes" and (b is None or s is None)) or c_in is None or c_in < 1:
            return None
        if want == "channels" and (b == s or 1 in (b, s)):
            return None
        first, after = _materialize(prefix, facts, env, c_in)
        layers = [first, _materialize(left, facts, env, after)[0], _materialize(right, facts, env, after)[0]]
        if not _take_arguments([layer for chain in layers for layer in chain]):
            return None
        for size in _sizes_for(branch, rank):
            sized = [_at_size(chain, branch.root, size, facts, env) for chain in layers]
            if any(chain is None for chain in sized):
                continue
            prefix_layers, branch_layers, shortcut_layers = (chain or [] for chain in sized)
            common = _runs(prefix_layers, [2, c_in, *size])
            sides = None if common is None else (_runs(branch_layers, common), _runs(shortcut_layers, common))
            if sides is None or sides[0] is None or sides[1] is None:
                continue
            if want == "sizes" and not _sizes_differ(op, sides[0], sides[1]):
                continue
            return {"op": op, "input": [2, c_in, *size], "prefix": prefix_layers, "branch": branch_layers,
                    "shortcut": shortcut_layers}
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
        # a flattened size the analysis left symbolic (`512*H*W`) is whatever the input size gives
        sized = actual is None and t.flat and all(
            a in env or FLATTENED_SIZE.fullmatch(a) for a in _atoms(facts.resolve(use.actual)))
        if expected is None or (actual is None and not sized) or expected == actual or c_in is None or c_in < 1:
            return None
        layers, channels = _materialize(history, facts, env, c_in)
        last = _materialize([consumer], facts, env, channels)[0]
        if not _take_arguments(layers + last):
            return None
        for size in _sizes_for(t, rank):
            prefix = _at_size(layers, t.root, size, facts, env)
            shape = None if prefix is None else _runs(prefix, [2, c_in, *size])
            if shape is None or (sized and shape[-1] == expected):
                continue
            return {"op": "consume", "input": [2, c_in, *size], "prefix": prefix, "consumer": last[0]}
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
        name, args = _materialize([template], facts, env)[0][0]
        if not check(args):
            return None
        return {"op": "build", "layer": [name, args]}

    return _search(free, facts, accept)
