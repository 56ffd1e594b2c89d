"""The abstract values of the torch library model: numbers, strings, tuples, conditions, tensors, and
the interface every layer has.

Everything the analysis cannot decide is ``UNKNOWN``, and every rule stays silent on it. The objects
of Python programs (functions, classes, the module under construction) are the interpreter's
(``convlint.interpreter.objects``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Iterator, List, Optional, Tuple

from ..enums import StrEnum
from ..limits import MAX_ITEMS, MAX_SIZE_OPS
from ..symbolic.dims import Dim
from ..symbolic.poly import Facts, Poly


class Value:
    """Base of all abstract values."""


class _Unknown(Value):
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class IntV(Value):
    poly: Poly


@dataclass(frozen=True)
class FloatV(Value):
    """A float the code computes with numbers only (``drop_path_rate * i / (n - 1)``): known, so that
    ``DropPath(dpr) if dpr > 0. else nn.Identity()`` is decided; never a layer argument convlint counts."""

    value: float


@dataclass(frozen=True)
class StrV(Value):
    text: str


@dataclass(frozen=True)
class NoneV(Value):
    pass


NONE = NoneV()


@dataclass(frozen=True)
class BoolV(Value):
    cond: "Cond"


@dataclass(frozen=True)
class TupleV(Value):
    items: Tuple[Value, ...]


def sequence_of(items: Tuple[Value, ...]) -> Value:
    """A list or tuple grown by the analysed code (``+``, ``append``, ``[*a, *b]``): unknown past
    ``MAX_ITEMS`` items, so that ``l = l + l`` in a loop cannot take the memory."""
    return UNKNOWN if len(items) > MAX_ITEMS else TupleV(items)


@dataclass(frozen=True)
class ParamV(Value):
    """An argument nobody bound: an integer symbol, a boolean atom, maybe None, maybe a module."""

    name: str


@dataclass(frozen=True)
class RefV(Value):
    """A name that reaches torch: ``torch.nn.Conv2d``, ``torch.nn.functional.relu``."""

    qualname: str


@dataclass(frozen=True)
class LayerV(Value):
    layer: "Layer"


@dataclass(frozen=True)
class ShapeV(Value):
    """``x.shape`` / ``x.size()`` of a tensor, indexable to sizes (kept only to recognise flatten)."""

    tensor: "TensorV"


@dataclass(frozen=True)
class SpatialSizeV(Value):
    """``x.shape[2]`` / ``x.size(-1)``: one spatial size of a tensor, as its ``Dim`` (not a number);
    kept so that ``F.interpolate(y, size=x.shape[2:])`` gives ``y`` the sizes of ``x``."""

    dim: "Dim"


@dataclass(frozen=True)
class SpatialSizesV(Value):
    """``x.shape[2:]`` of an input whose rank is still open: all its spatial sizes, as many as the
    tensor resized to them has (``F.interpolate`` needs one per spatial dim)."""

    tensor: "TensorV"


@dataclass(frozen=True)
class BatchSizeV(Value):
    """``x.size(0)`` / ``x.shape[0]``: the batch dim, as used in ``x.view(x.size(0), -1)``."""


# --- conditions ---------------------------------------------------------------------------------


class Cond:
    pass


@dataclass(frozen=True)
class ConstC(Cond):
    value: bool


TRUE, FALSE = ConstC(True), ConstC(False)


@dataclass(frozen=True)
class CmpC(Cond):
    op: str  # == != < <= > >=
    left: Poly
    right: Poly


@dataclass(frozen=True)
class AtomC(Cond):
    """An opaque condition, identified by its source text so two tests of it agree."""

    key: str


@dataclass(frozen=True)
class AndC(Cond):
    parts: Tuple[Cond, ...]


@dataclass(frozen=True)
class OrC(Cond):
    parts: Tuple[Cond, ...]


@dataclass(frozen=True)
class NotC(Cond):
    part: Cond


# --- tensors ------------------------------------------------------------------------------------

CHANNEL_PREFIX = "C["  # channel symbols of input tensors (``C[x]``): learned from the first layer using them


def input_dim(root: str, from_end: int) -> str:
    """The name of a spatial dim of the input ``root``, counted from its last (1): the names hold
    whatever the input's rank turns out to be."""
    return f"{root}#{from_end}"


class StepKind(StrEnum):
    """What a step did to a tensor (a string, so that ``kind == "conv"`` reads as it did)."""

    CONV = "conv"
    POOL = "pool"
    NORM = "norm"
    KEEP = "keep"          # the shape is kept: activations, dropout, scalar arithmetic
    MERGE = "merge"        # an elementwise op of two tensors, or a concatenation of unrelated ones
    CONCAT = "concat"      # a concatenation of tensors of one input: ``parts`` holds each one's steps
    LINEAR = "linear"
    FLATTEN = "flatten"
    MODULE = "module"      # a module class of the analysed code
    SEQUENTIAL = "sequential"
    PERMUTE = "permute"
    OTHER = "other"        # a change convlint does not model


@dataclass(frozen=True)
class Step:
    """One layer or operation a tensor went through, for locating the cause of a mismatch."""

    kind: StepKind
    node: ast.AST                       # where it is reported: the layer's constructor call
    layer: Optional["Layer"] = None     # the layer, for steps a layer made
    # a merge of two tensors: how many steps just before it came from the other operand (for replaying)
    other_steps: Optional[int] = None
    permutation: Optional[Tuple[int, ...]] = None  # a permute: the order of the dims
    # a concatenation: the steps each joined tensor took since their common past (for replaying)
    parts: Optional[Tuple[Tuple["Step", ...], ...]] = None

    def placed_at(self, node: ast.AST) -> "Step":
        return replace(self, node=node)


class History:
    """The steps a tensor went through, oldest first, as a chain: a tensor one step further points to
    its input's chain, so a network of N layers keeps N steps in all, however many of its tensors
    (and the facts that hold them) are kept, where a tuple per tensor would keep N*N/2."""

    __slots__ = ("last", "before", "length")

    def __init__(self, last: Optional[Step] = None, before: Optional["History"] = None):
        self.last = last
        self.before = before
        self.length: int = 0 if last is None else 1 + (before.length if before is not None else 0)

    def then(self, *steps: Step) -> "History":
        chain = self
        for step in steps:
            chain = History(step, chain)
        return chain

    def __len__(self) -> int:
        return self.length

    def steps(self) -> Tuple[Step, ...]:
        """Every step, oldest first (a walk of the whole chain: for findings, not for each step)."""
        return self.newest(self.length)

    def newest(self, n: int) -> Tuple[Step, ...]:
        """The last ``n`` steps, oldest first."""
        out: List[Step] = []
        chain: Optional[History] = self
        while chain is not None and chain.last is not None and len(out) < n:
            out.append(chain.last)
            chain = chain.before
        return tuple(reversed(out))

    def without_newest(self, n: int) -> "History":
        """The chain as it was ``n`` steps ago."""
        chain = self
        for _ in range(min(n, self.length)):
            chain = chain.before or NO_HISTORY
        return chain

    def common_past(self, other: "History") -> "History":
        """The newest chain both share (their common past), found by walking back only as far as
        the two differ: a residual add of a long network costs its two branches, not the network."""
        a = self.without_newest(self.length - other.length)
        b = other.without_newest(other.length - self.length)
        while a is not b and a.before is not None and b.before is not None:
            a, b = a.before, b.before
        return a if a is b else NO_HISTORY

    def since(self, past: "History") -> Tuple[Step, ...]:
        """The steps after ``past`` (a chain this one extends), oldest first."""
        return self.newest(self.length - past.length)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps())

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, History) and self.length == other.length and self.steps() == other.steps()

    def __hash__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"History({len(self)} steps)"


NO_HISTORY = History()


@dataclass(frozen=True)
class TensorV(Value):
    """A tensor in ``forward``: channels, spatial dims (last dims), and its history.

    ``root`` names the forward argument it descends from; ``dims`` is None while no layer fixed the
    tensor's rank (an untouched input), see ``with_rank``. A flattened tensor has ``flat`` set and
    its feature count in ``channels``.
    """

    root: str
    channels: Optional[Poly]
    dims: Optional[Tuple[Dim, ...]]
    history: History = NO_HISTORY
    flat: bool = False
    known_sizes: Tuple[Tuple[str, int], ...] = ()  # input sizes given by `input-size`
    rank_open: bool = False  # an input whose rank no layer has fixed yet (``dims`` is None)
    channels_last: bool = False  # permuted to (N, *spatial, C), as ConvNeXt blocks do around Linears
    # its sizes were changed by a layer built from a factory a caller may replace (``conv_block=ConvNormAct``
    # in a block analysed alone): the default's sizes are not what the code runs with
    resized_by_default: bool = False

    def with_rank(self, n: int) -> Optional[Tuple[Dim, ...]]:
        """The last ``n`` spatial dims, naming the input's dims when the rank was still open."""
        if self.flat or self.channels_last:
            return None
        if self.dims is None:
            if not self.rank_open:
                return None
            return tuple(Dim(input_dim(self.root, n - i)) for i in range(n))
        if len(self.dims) != n:
            return None
        return self.dims

    def derive(self, **changes: Any) -> "TensorV":
        if "dims" in changes or "flat" in changes:
            changes.setdefault("rank_open", False)
        dims = changes.get("dims")
        if dims is not None and any(len(d.ops) > MAX_SIZE_OPS for d in dims):
            changes["dims"] = None  # sizes past the budget (convlint.limits): unknown
        return replace(self, **changes)

    def then(self, *steps: Step, **changes: Any) -> "TensorV":
        """The tensor after ``steps`` (with the changes they made)."""
        return self.derive(history=self.history.then(*steps), **changes)


def spatial_dims(a: TensorV, b: TensorV) -> Optional[Tuple[Tuple[Dim, ...], Tuple[Dim, ...]]]:
    """The spatial dims of two tensors at one rank (an input's still open rank takes the other's),
    for comparing them; None when either is flat or a rank is unknown."""
    if a.flat or b.flat:
        return None
    rank = len(a.dims) if a.dims is not None else (len(b.dims) if b.dims is not None else None)
    if rank is None or rank == 0:
        return None
    da, db = a.with_rank(rank), b.with_rank(rank)
    if da is None or db is None:
        return None
    return da, db


# --- layers -------------------------------------------------------------------------------------


class Flow:
    """What applying layers needs from the interpreter: the path's facts and the event sink."""

    @property
    def facts(self) -> Facts:
        raise NotImplementedError

    def consume(self, layer: "Layer", tensor: TensorV, expected: Poly, what: str) -> bool:
        """``layer`` takes ``tensor`` and expects ``expected`` channels (or features) of it: True when
        it provably gets others (torch raises there)."""
        raise NotImplementedError

    def spend(self, units: int = 1) -> None:
        """Count work done outside the interpreter's statements (each layer of a Sequential applied)."""

    def report(self, make: Callable[[Optional[ast.AST]], object]) -> None:
        """A join of tensors (a concatenation) found on this path, made by ``make(built_at)`` and kept
        where the path's residual adds are kept (``built_at``: the call that built the module)."""

    def run_module(self, layer: "Layer", tensor: TensorV) -> Value:
        """A module of the analysed code applied to ``tensor`` (its ``forward`` run)."""
        raise NotImplementedError

    def window(self, layer: "Layer", tensor: TensorV, dims: Tuple[Dim, ...]) -> None:
        """A conv or pool slides its windows over ``dims`` of ``tensor`` (sizes may be known)."""


@dataclass(eq=False)
class Layer:
    """A layer, as built from a constructor call's arguments (the families are in ``layers``)."""

    node: ast.AST  # where diagnostics about this layer are reported

    kind: ClassVar[StepKind] = StepKind.OTHER
    torch_name: str = field(default="", init=False)  # "Conv2d", "BatchNorm2d", ... for messages
    # its own constructor call, when the checked file has it (set by the interpreter)
    own_call: Optional[ast.Call] = field(default=None, init=False)
    # built by a parameter's default factory in code analysed alone (``conv_block(64, 96, 3, stride=2)``
    # with ``conv_block=ConvNormAct``): callers pass their own (``partial(ConvNormAct, padding=0)``)
    by_default_factory: bool = field(default=False, init=False)

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return UNKNOWN

    def step(self) -> Step:
        return Step(self.kind, self.node, self)

    def attribute(self, name: str) -> Value:
        """``self.conv.stride``: an attribute torch's layer has, as the layer was built."""
        return UNKNOWN


def applied(layer: "Layer", t: TensorV, out: Value) -> Value:
    """``out``, the result of ``layer`` on ``t``, marked when a default factory's layer changed its sizes."""
    if not layer.by_default_factory or not isinstance(out, TensorV) or out.resized_by_default:
        return out
    before = t.dims if t.dims is not None or out.dims is None else t.with_rank(len(out.dims))
    return out if out.dims == before else out.derive(resized_by_default=True)
