"""Torch's tensor operations: one entry per op, serving both spellings, ``torch.f(x, ...)`` (or
``F.f(x, ...)``) and ``x.f(...)``, with what it does to the shape.

A handler gets the input tensor and the other arguments, and the ``OpSite`` of the call: the
interpreter's services an op may need (the path's flow for the layers it applies, and elementwise
combination, which is where residual adds are found).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

from ..source.module_names import dotted
from ..symbolic.dims import ONE, ZERO, Dim, Relation, Resize
from ..limits import MAX_ITEMS
from ..symbolic.poly import Facts, Poly, prove_greater
from .catalogue import adaptive_pool, as_bool, as_poly, pool
from .events import Concatenation
from .flattening import flatten
from .layers import ChannelSlice, ResizeTo, Upsample
from .values import (
    CHANNEL_PREFIX, FALSE, NONE, UNKNOWN, BatchSizeV, BoolV, Flow, IntV, ShapeV, SpatialSizesV, SpatialSizeV, Step,
    StepKind, TensorV, TupleV, Value, input_dim,
)

class OpSite:
    """A call of a tensor op on one path (the interpreter gives its own)."""

    node: ast.Call

    @property
    def anchor(self) -> ast.AST:
        """Where layers the op applies are reported (the call, or the helper call that reached it)."""
        raise NotImplementedError

    def flow(self) -> Flow:
        raise NotImplementedError

    def combine(self, op: str, left: Value, right: Value) -> Value:
        """``left op right`` elementwise (``+`` of two tensors is a residual add)."""
        raise NotImplementedError


OpHandler = Callable[[OpSite, Value, Sequence[Value], Mapping[str, Value]], Value]  # (site, input, rest, kwargs)


@dataclass(frozen=True)
class TensorOp:
    names: Tuple[str, ...]
    run: OpHandler
    function: bool = True   # torch.<name>(x, ...), torch.nn.functional.<name>(x, ...)
    method: bool = True     # x.<name>(...)


def _tensor(handler: Callable[[OpSite, TensorV, Sequence[Value], Mapping[str, Value]], Value]) -> OpHandler:
    """An op whose input must be a tensor (anything else: unknown)."""
    def run(site: OpSite, x: Value, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
        return handler(site, x, rest, kwargs) if isinstance(x, TensorV) else UNKNOWN
    return run


@_tensor
def _keep(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    return x.then(Step(StepKind.KEEP, site.node))


@_tensor
def _add(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    return site.combine("+", x, rest[0]) if rest else UNKNOWN


@_tensor
def _scale(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    return site.combine("*", x, rest[0]) if rest else UNKNOWN


def _cat(site: OpSite, x: Value, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    if not isinstance(x, TupleV):
        return UNKNOWN
    dim = as_poly(rest[0] if rest else kwargs.get("dim", IntV(ZERO)))
    return concat(x.items, dim, site.node, site.flow())


@_tensor
def _flatten(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    start = as_poly(rest[0] if rest else kwargs.get("start_dim", IntV(ZERO)))
    end = as_poly(rest[1] if len(rest) > 1 else kwargs.get("end_dim", IntV(Poly.const(-1))))
    if start is not None and start.value == 1 and end is not None and end.value == -1:
        return flatten(x, site.flow(), Step(StepKind.FLATTEN, site.node))
    return UNKNOWN


def _pool(n: int, is_max: bool) -> OpHandler:
    @_tensor
    def run(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
        def arg(keyword: str, position: int, default: Optional[Value]) -> Optional[Value]:
            if keyword in kwargs:
                return kwargs[keyword]
            return rest[position] if position < len(rest) else default
        return pool(n, is_max, arg, site.anchor, functional=True).apply(x, site.flow())
    return run


def _adaptive_pool(n: int) -> OpHandler:
    @_tensor
    def run(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
        size = rest[0] if rest else kwargs.get("output_size")
        return adaptive_pool(n, size, site.node).apply(x, site.flow())
    return run


@_tensor
def _interpolate(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    factor = as_poly(kwargs.get("scale_factor", rest[1] if len(rest) > 1 else None))
    if factor is not None and x.dims is not None and kwargs.get("size", NONE) is NONE and \
            (not rest or rest[0] is NONE):
        return Upsample(site.anchor, factor).apply(x, site.flow())
    size = kwargs.get("size", rest[0] if rest else None)
    if isinstance(size, SpatialSizesV) and x.dims is None and x.rank_open and not size.tensor.known_sizes:
        # two inputs of open rank (a decoder block's map and its skip): the map now has the skip's
        # sizes, named as the skip's are whatever rank the first layer gives them
        return x.then(Step(StepKind.OTHER, site.node), root=size.tensor.root)
    sizes = sizes_of(size, None if x.dims is None else len(x.dims))
    if sizes is not None and not x.flat and not x.channels_last:
        # resized to another map's sizes (a decoder meeting its skip): those sizes, whatever they are
        return ResizeTo(site.anchor, sizes).apply(x.derive(dims=x.with_rank(len(sizes))), site.flow())
    return x.then(Step(StepKind.OTHER, site.node), dims=None)  # size unknown


@_tensor
def _reduce(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    """``x.mean((2, 3))``: a global pool; flat unless ``keepdim``."""
    dim = rest[0] if rest else kwargs.get("dim")
    keep = as_bool(rest[1] if len(rest) > 1 else kwargs.get("keepdim", BoolV(FALSE)))
    if x.dims is None or x.flat or not isinstance(dim, TupleV) or keep is None:
        return UNKNOWN
    n = len(x.dims)
    picked = sorted({p.value % (n + 2) for p in (as_poly(v) for v in dim.items)
                     if p is not None and p.value is not None})
    if picked != list(range(2, n + 2)):
        return UNKNOWN
    if keep:
        return x.then(Step(StepKind.POOL, site.node), dims=tuple(d.then(Resize(ONE)) for d in x.dims))
    return x.then(Step(StepKind.FLATTEN, site.node), dims=(), flat=True)


@_tensor
def _size(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    if not rest:
        return ShapeV(x)
    k = as_poly(rest[0])
    return tensor_size(x, k.value) if k is not None and k.value is not None else UNKNOWN


@_tensor
def _view(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    shape = rest[0].items if len(rest) == 1 and isinstance(rest[0], TupleV) else tuple(rest)
    if len(shape) == 2 and isinstance(shape[0], BatchSizeV):
        last = as_poly(shape[1])
        if last is not None and last.value == -1:
            return flatten(x, site.flow(), Step(StepKind.FLATTEN, site.node))
    if len(shape) == 2:
        first, last = as_poly(shape[0]), as_poly(shape[1])
        if first is not None and first.value == -1 and last is not None:
            # `x.view(-1, 400)` declares the feature count: not a plain flatten to replay
            return x.then(Step(StepKind.OTHER, site.node), channels=last, dims=(), flat=True)
    return UNKNOWN


def _split(site: OpSite, x: Value, rest: Sequence[Value], kwargs: Mapping[str, Value], chunks: bool) -> Value:
    """``torch.split(x, 26, 1)``, ``x.chunk(4, dim=1)``: the channel groups, when the counts are numbers
    (Res2Net's scales, ShuffleNet's halves)."""
    if not isinstance(x, TensorV) or x.flat or x.channels is None or x.channels.value is None:
        return UNKNOWN
    dim = as_poly(rest[1] if len(rest) > 1 else kwargs.get("dim", IntV(ZERO)))
    if dim is None or dim.value != 1:
        return UNKNOWN
    channels = x.channels.value
    given = rest[0] if rest else kwargs.get("chunks" if chunks else "split_size_or_sections")
    if isinstance(given, TupleV) and not chunks:
        sizes = [p.value for p in (as_poly(v) for v in given.items) if p is not None and p.value is not None]
        if len(sizes) != len(given.items) or sum(sizes) != channels or min(sizes, default=0) < 1:
            return UNKNOWN
    else:
        n = as_poly(given)
        if n is None or n.value is None or n.value < 1 or channels < 1:
            return UNKNOWN
        size = -(-channels // n.value) if chunks else n.value
        sizes = [size] * (channels // size) + ([channels % size] if channels % size else [])
    if len(sizes) > MAX_ITEMS:
        return UNKNOWN
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return TupleV(tuple(_channels(x, site.node, Poly.const(start), Poly.const(s)) for start, s in zip(starts, sizes)))


@_tensor
def _permute(site: OpSite, x: TensorV, rest: Sequence[Value], kwargs: Mapping[str, Value]) -> Value:
    """Channels to the end and back, as ConvNeXt blocks do around their Linear layers."""
    order = rest[0].items if len(rest) == 1 and isinstance(rest[0], TupleV) else rest
    perm = [as_poly(v) for v in order]
    values = [p.value for p in perm if p is not None and p.value is not None]
    if x.flat or x.dims is None or len(values) != len(perm):
        return UNKNOWN
    n = len(x.dims) + 2
    to_last = [0] + list(range(2, n)) + [1]
    to_first = [0, n - 1] + list(range(1, n - 1))
    step = Step(StepKind.PERMUTE, site.node, permutation=tuple(values))
    if values == to_last and not x.channels_last:
        return x.then(step, channels_last=True)
    if values == to_first and x.channels_last:
        return x.then(step, channels_last=False)
    return UNKNOWN


OPS: Tuple[TensorOp, ...] = (
    TensorOp(("relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "abs", "neg", "exp",
              "softmax", "log_softmax"), _keep),
    TensorOp(("relu6", "gelu", "silu", "hardswish", "hardsigmoid", "leaky_relu", "leaky_relu_", "elu", "selu",
              "celu", "mish", "softplus", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
              "batch_norm", "group_norm", "instance_norm", "normalize", "hardtanh", "prelu",
              "local_response_norm", "channel_shuffle"), _keep, method=False),
    TensorOp(("contiguous", "clone", "float", "half", "double", "to", "type_as", "detach", "clamp_min",
              "clamp_min_", "sqrt", "pow", "requires_grad_", "cpu", "cuda", "bfloat16"), _keep, function=False),
    TensorOp(("add",), _add),
    TensorOp(("add_",), _add, function=False),
    TensorOp(("mul", "sub", "div"), _scale),
    TensorOp(("mul_", "sub_", "div_"), _scale, function=False),
    TensorOp(("cat",), _cat, method=False),
    TensorOp(("flatten",), _flatten),
    *(TensorOp((f"max_pool{n}d",), _pool(n, True), method=False) for n in (1, 2, 3)),
    *(TensorOp((f"avg_pool{n}d",), _pool(n, False), method=False) for n in (1, 2, 3)),
    *(TensorOp((f"adaptive_avg_pool{n}d", f"adaptive_max_pool{n}d"), _adaptive_pool(n), method=False)
      for n in (1, 2, 3)),
    TensorOp(("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"), _interpolate, method=False),
    TensorOp(("mean", "sum", "amax"), _reduce),
    TensorOp(("max",), _reduce, method=False),
    TensorOp(("size",), _size, function=False),
    TensorOp(("view", "reshape"), _view, function=False),
    TensorOp(("permute",), _permute, function=False),
    TensorOp(("split",), lambda site, x, rest, kwargs: _split(site, x, rest, kwargs, chunks=False)),
    TensorOp(("chunk",), lambda site, x, rest, kwargs: _split(site, x, rest, kwargs, chunks=True)),
)
_FUNCTIONS: Dict[str, TensorOp] = {name: op for op in OPS if op.function for name in op.names}
_METHODS: Dict[str, TensorOp] = {name: op for op in OPS if op.method for name in op.names}
FACTORIES = frozenset({"torch.randn", "torch.rand", "torch.zeros", "torch.ones", "torch.empty"})


def call_function(qualname: str, args: Sequence[Value], kwargs: Mapping[str, Value], site: OpSite) -> Value:
    """``torch.f(x, ...)`` or ``torch.nn.functional.f(x, ...)``."""
    namespace, _, name = qualname.rpartition(".")
    if namespace not in ("torch", "torch.nn.functional") and not namespace.startswith("torch.nn.functional."):
        return UNKNOWN
    op = _FUNCTIONS.get(name)
    if op is None or not args or not isinstance(args[0], (TensorV, TupleV)):
        return UNKNOWN
    return op.run(site, args[0], args[1:], kwargs)


def call_method(x: TensorV, name: str, args: Sequence[Value], kwargs: Mapping[str, Value], site: OpSite) -> Value:
    """``x.f(...)``."""
    op = _METHODS.get(name)
    return UNKNOWN if op is None else op.run(site, x, args, kwargs)


def channel_range(x: TensorV, node: ast.AST, lower: Optional[Poly], upper: Optional[Poly], facts: Facts) -> Value:
    """``x[:, lower:upper]`` (GhostNet's ``out[:, :self.out_chs]``): the channels in the range, where
    they are numbers or ``upper`` provably within the map's channels; the other dims unchanged."""
    if x.flat or x.channels_last:
        return UNKNOWN  # (channels last: dim 1 is a spatial one)
    if x.channels is None:
        return _some_channels(x, node)
    channels = facts.resolve(x.channels)
    start = Poly.const(0) if lower is None else facts.resolve(lower)
    stop = channels if upper is None else facts.resolve(upper)
    if channels.value is not None and start.value is not None and stop.value is not None:
        picked = range(channels.value)[start.value:stop.value]  # Python's own slice rules (negatives)
        if not picked:
            return UNKNOWN
        return _channels(x, node, Poly.const(picked.start), Poly.const(len(picked)))
    before = Poly.const(-1)
    if not (prove_greater(start, before, facts) and prove_greater(stop, start, facts)):
        return _some_channels(x, node)  # (a negative bound counts from the end: not followed symbolically)
    if not prove_greater(channels - stop, before, facts):  # the range may run past the map's end
        return x.then(ChannelSlice(node, start, stop - start).step(), channels=None)
    return _channels(x, node, start, stop - start)


def _some_channels(x: TensorV, node: ast.AST) -> TensorV:
    """A range of ``x``'s channels that is not known: its sizes are still ``x``'s."""
    return x.then(Step(StepKind.OTHER, node), channels=None)


def _channels(x: TensorV, node: ast.AST, start: Poly, size: Poly) -> TensorV:
    """``size`` channels of ``x`` from ``start`` on."""
    return x.then(ChannelSlice(node, start, size).step(), channels=size)


def tensor_size(t: TensorV, k: int) -> Value:
    """``x.size(k)`` / ``x.shape[k]``: the batch dim, or the channels."""
    if k == 0:
        return BatchSizeV()
    if k == 1 and t.channels is not None and not t.flat:
        return IntV(t.channels)
    if t.flat or t.channels_last:
        return UNKNOWN
    if t.dims is None:  # an input whose rank is open: its last dims are named from the end
        return SpatialSizeV(Dim(input_dim(t.root, -k))) if t.rank_open and -3 <= k < 0 else UNKNOWN
    rank = len(t.dims) + 2
    if 2 <= k < rank or -len(t.dims) <= k < 0:
        return SpatialSizeV(t.dims[k % rank - 2])
    return UNKNOWN


def shape_items(t: TensorV, lower: int) -> Optional[Value]:
    """``x.shape[lower:]`` as a tuple of sizes (batch, channels, spatial), when it is known: the rank
    is, or ``lower`` counts spatial dims from the end of an input whose rank is open; ``x.shape[2:]``
    of such an input is all its spatial sizes."""
    if t.flat or t.channels_last:
        return None
    if t.dims is None and t.rank_open and lower == 2:
        return SpatialSizesV(t)
    if t.dims is not None:
        return TupleV(tuple(tensor_size(t, k) for k in range(len(t.dims) + 2))[lower:])
    if t.rank_open and -3 <= lower < 0:
        return TupleV(tuple(tensor_size(t, k) for k in range(lower, 0)))
    return None


def sizes_of(value: Optional[Value], rank: Optional[int]) -> Optional[Tuple[Dim, ...]]:
    """The spatial sizes ``value`` lists (``x.shape[2:]``, ``(h, w)`` read from shapes), for a tensor
    of ``rank`` spatial dims (None: not known), else None."""
    if isinstance(value, SpatialSizesV):
        return value.tensor.with_rank(rank) if rank is not None else None
    if not isinstance(value, TupleV) or not value.items:
        return None
    dims = tuple(item.dim for item in value.items if isinstance(item, SpatialSizeV))
    return dims if len(dims) == len(value.items) else None


def concat(items: Sequence[Value], dim: Optional[Poly], node: ast.AST, flow: Flow) -> Value:
    """``torch.cat([a, b], 1)``: the channels add up, and the other dims must match. A join that fails
    for every input size makes an unknown tensor: nothing downstream is judged from it (no cascade)."""
    tensors = tuple(v for v in items if isinstance(v, TensorV))
    if len(tensors) != len(items) or not tensors or dim is None or dim.value != 1:
        return UNKNOWN
    if len(tensors) > 1:
        joined = Concatenation(node, tensors, flow.facts)
        flow.report(lambda built_at: replace(joined, built_at=built_at))
        if joined.sizes()[0].relation is Relation.DIFFER:
            return UNKNOWN
    first = tensors[0]
    channels: Optional[Poly] = ZERO
    for t in tensors:
        if t.channels is None or t.flat or channels is None:
            channels = None
        else:
            channels = channels + t.channels
    if channels is not None and channels.oversized:
        channels = None  # (`x = torch.cat([x, x], 1)` in a loop: past the value budgets)
    resized = any(t.resized_by_default for t in tensors)
    if any(t.root != first.root for t in tensors):
        return first.then(Step(StepKind.MERGE, node), channels=channels, resized_by_default=resized)
    common = first.history
    for t in tensors[1:]:
        common = common.common_past(t.history)
    flow.spend(sum(len(t.history) - len(common) for t in tensors))
    parts = tuple(t.history.since(common) for t in tensors)
    return first.derive(history=common.then(Step(StepKind.CONCAT, node, parts=parts)), channels=channels,
                        resized_by_default=resized)


def new_tensor(args: Sequence[Value], kwargs: Mapping[str, Value], node: ast.Call, flow: Flow) -> Value:
    """``torch.randn(1, 3, 32, 32)`` (test code running the model): a batch of known channels and
    sizes, as an ``input-size`` gives them."""
    given = kwargs.get("size")
    sizes = args[0].items if len(args) == 1 and isinstance(args[0], TupleV) else \
        given.items if not args and isinstance(given, TupleV) else args
    numbers = [as_poly(v) for v in sizes]
    known = [p.value for p in numbers if p is not None and p.value is not None and p.value >= 1]
    if not 3 <= len(numbers) <= 5 or len(known) != len(numbers):
        return UNKNOWN
    root = f"{dotted(node.func)}@{node.lineno}:{node.col_offset}"
    spatial = known[2:]
    n = len(spatial)
    channels = Poly.atom(f"{CHANNEL_PREFIX}{root}]")
    flow.facts.add_equal(channels, Poly.const(known[1]))  # (as an input-size gives them)
    return TensorV(root, channels, tuple(Dim(input_dim(root, n - i)) for i in range(n)),
                   known_sizes=tuple((input_dim(root, k), spatial[-k]) for k in range(1, n + 1)))
