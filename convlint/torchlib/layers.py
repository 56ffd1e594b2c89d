"""The layer families of torch: what each does to a tensor's shape, the attributes torch gives it, and
how it is replayed for confirmation, each family described once, in its class.

Each layer knows the channels it expects and how it maps a ``TensorV`` to the next one. Anything not
modelled is ``Opaque``: its output is unknown, and no diagnostic is ever derived from it. The names
that build each family, and how their arguments are read, are in ``catalogue``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import ClassVar, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from ..symbolic.dims import ONE, ZERO, Dim, Pad, Resize, Scale, SizeOp, Window
from ..symbolic.poly import Poly
from .flattening import flatten
from .values import (
    UNKNOWN, Flow, IntV, Layer, Step, StepKind, StrV, TensorV, TupleV, Value, applied,
)

# A replayed layer: its torch class name and its arguments, numbers still symbolic
# (``("Conv2d", {"in_channels": Poly, ...})``); reproducers give the symbols values.
Template = Tuple[str, Dict[str, object]]


class NoReplay(Exception):
    """The step cannot be replayed faithfully by torch layers (the finding stays unconfirmed)."""


def _dims_names(*kinds: str) -> FrozenSet[str]:
    return frozenset(f"{kind}{n}d" for kind in kinds for n in (1, 2, 3))


def _ints(polys: Optional[Sequence[Poly]]) -> Value:
    return UNKNOWN if polys is None else TupleV(tuple(IntV(p) for p in polys))


def _int(p: Optional[Poly]) -> Value:
    return UNKNOWN if p is None else IntV(p)


@dataclass(eq=False)
class Opaque(Layer):
    """A module convlint does not model (built elsewhere, passed in, or unknown)."""


class Replayable(Layer):
    """A family torch can rebuild from its numbers: ``replays_as`` lists the torch classes it may use
    (the confirmation child builds those and nothing else)."""

    replays_as: ClassVar[FrozenSet[str]] = frozenset()

    def replay(self, ndim: int) -> Optional[Template]:
        """The torch layer that replays it in a reproducer (None: it keeps the shape)."""
        raise NoReplay


@dataclass(eq=False)
class Keep(Replayable):
    """A layer that keeps the shape: activations, dropout, Identity."""

    kind = StepKind.KEEP

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return t.then(self.step())

    def replay(self, ndim: int) -> Optional[Template]:
        return None


@dataclass(eq=False)
class Norm(Replayable):
    """BatchNorm/InstanceNorm (``num_features``) and GroupNorm (``num_channels``)."""

    channels: Optional[Poly] = None
    argument: str = "num_features"
    ndim: Optional[int] = None
    num_groups: Optional[Poly] = None  # GroupNorm
    kind = StepKind.NORM
    replays_as = _dims_names("BatchNorm", "InstanceNorm") | {"GroupNorm"}

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.channels_last:
            return UNKNOWN  # a channels-first norm on a permuted tensor: not modelled
        if self.channels is not None and not t.flat and flow.consume(self, t, self.channels, self.argument):
            return UNKNOWN  # torch raises here: nothing downstream is judged from it
        return t.then(self.step())

    def attribute(self, name: str) -> Value:
        if name in ("num_features", "num_channels") and self.channels is not None:
            return IntV(self.channels)
        return UNKNOWN

    def replay(self, ndim: int) -> Optional[Template]:
        if self.argument == "num_channels":
            return ("GroupNorm", {"num_groups": self.num_groups, "num_channels": self.channels})
        name = self.torch_name if self.torch_name.startswith(("BatchNorm", "InstanceNorm")) else f"BatchNorm{ndim}d"
        args: Dict[str, object] = {"num_features": self.channels}
        if name.startswith("InstanceNorm"):
            args["affine"] = True
        return (name, args)


Padding = Union[None, str, Tuple[Poly, ...]]  # polys, "same", or None when unknown


@dataclass(eq=False)
class Conv(Replayable):
    ndim: int = 2
    in_channels: Optional[Poly] = None
    out_channels: Optional[Poly] = None
    kernel: Optional[Tuple[Poly, ...]] = None
    stride: Optional[Tuple[Poly, ...]] = None
    padding: Padding = None
    dilation: Optional[Tuple[Poly, ...]] = None
    groups: Optional[Poly] = None
    call: Optional[ast.Call] = None   # the nn.ConvNd(...) call itself
    direct: bool = False              # the call is the reported node (so a fix can edit it)
    windows: Optional[Tuple[Window, ...]] = None
    kind = StepKind.CONV
    replays_as = _dims_names("Conv")

    def __post_init__(self) -> None:
        if self.kernel and self.stride and self.dilation and isinstance(self.padding, tuple):
            self.windows = tuple(Window(k, s, p, d, False, True) for k, s, p, d in
                                 zip(self.kernel, self.stride, self.padding, self.dilation))

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.channels_last:
            return UNKNOWN
        if self.in_channels is not None and not t.flat and flow.consume(self, t, self.in_channels, "in_channels"):
            return UNKNOWN
        dims = t.with_rank(self.ndim)
        if dims is not None:
            if self.padding == "same":
                pass  # torch pads so that the size is kept (stride 1 is enforced when built)
            elif self.windows is not None:
                flow.window(self, t, dims)
                dims = tuple(d.then(w) for d, w in zip(dims, self.windows))
            else:
                dims = None
        if dims is None:
            return t.derive(channels=self.out_channels, dims=None,
                            history=t.history.then(self.step(), UNKNOWN_STEP))
        return t.then(self.step(), channels=self.out_channels, dims=dims)

    def attribute(self, name: str) -> Value:
        if name in ("in_channels", "out_channels", "groups"):
            return _int({"in_channels": self.in_channels, "out_channels": self.out_channels,
                         "groups": self.groups}[name])
        if name in ("stride", "kernel_size", "dilation"):
            return _ints({"stride": self.stride, "kernel_size": self.kernel, "dilation": self.dilation}[name])
        if name == "padding":
            return StrV(self.padding) if isinstance(self.padding, str) else _ints(self.padding)
        return UNKNOWN

    def replay(self, ndim: int) -> Optional[Template]:
        # unknown channel counts (None) are filled in later with any value the chain accepts: the
        # finding holds for every value of them
        if self.kernel is None or self.stride is None or self.dilation is None or self.padding is None:
            raise NoReplay
        return (f"Conv{self.ndim}d", {"in_channels": self.in_channels, "out_channels": self.out_channels,
                                      "kernel_size": self.kernel, "stride": self.stride,
                                      "padding": self.padding, "dilation": self.dilation,
                                      "groups": self.groups})


@dataclass(eq=False)
class TransposedConv(Replayable):
    """``nn.ConvTranspose2d``: each size becomes ``(n-1)S - 2P + D(K-1) + output_padding + 1``, kept as
    a scale by S and a constant padding, so that chains compare as the conv's do."""

    ndim: int = 2
    in_channels: Optional[Poly] = None
    out_channels: Optional[Poly] = None
    kernel: Optional[Tuple[Poly, ...]] = None
    stride: Optional[Tuple[Poly, ...]] = None
    padding: Optional[Tuple[Poly, ...]] = None
    output_padding: Optional[Tuple[Poly, ...]] = None
    dilation: Optional[Tuple[Poly, ...]] = None
    groups: Optional[Poly] = None
    kind = StepKind.POOL  # (it changes sizes by no window: stride totals stop at it)
    replays_as = _dims_names("ConvTranspose")

    def size_ops(self) -> Optional[Tuple[Tuple[Scale, Pad], ...]]:
        if None in (self.kernel, self.stride, self.padding, self.output_padding, self.dilation):
            return None
        assert self.kernel and self.stride and self.padding and self.output_padding and self.dilation
        return tuple((Scale(s), Pad(d * (k - ONE) - p * Poly.const(2) + o + ONE - s))
                     for k, s, p, o, d in zip(self.kernel, self.stride, self.padding, self.output_padding,
                                              self.dilation))

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.channels_last or t.flat:
            return UNKNOWN
        if self.in_channels is not None and flow.consume(self, t, self.in_channels, "in_channels"):
            return UNKNOWN
        dims = t.with_rank(self.ndim)
        ops = self.size_ops()
        if dims is None or ops is None:
            return t.derive(channels=self.out_channels, dims=None,
                            history=t.history.then(self.step(), UNKNOWN_STEP))
        return t.then(self.step(), channels=self.out_channels,
                      dims=tuple(d.then(scale) if not pad.total.terms else d.then(scale).then(pad)
                                 for d, (scale, pad) in zip(dims, ops)))

    def replay(self, ndim: int) -> Optional[Template]:
        if None in (self.kernel, self.stride, self.padding, self.output_padding, self.dilation):
            raise NoReplay
        return (f"ConvTranspose{self.ndim}d", {
            "in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel,
            "stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
            "groups": self.groups, "dilation": self.dilation})


@dataclass(eq=False)
class ChannelSlice(Replayable):
    """Channels ``start`` to ``start + size`` of a map: a group ``torch.split``/``chunk`` gives, or a
    range ``x[:, a:b]``."""

    start: Poly = ZERO
    size: Poly = ONE
    kind = StepKind.OTHER
    replays_as = frozenset()  # (a reproducer's own "Channels" layer: convlint.confirm.spec)

    def replay(self, ndim: int) -> Optional[Template]:
        return ("Channels", {"start": self.start, "size": self.size})


@dataclass(eq=False)
class Pool(Replayable):
    ndim: int = 2
    windows: Optional[Tuple[Window, ...]] = None
    is_max: bool = True
    kind = StepKind.POOL
    replays_as = _dims_names("MaxPool", "AvgPool")

    def apply(self, t: TensorV, flow: Flow) -> Value:
        dims = t.with_rank(self.ndim)
        if dims is None or self.windows is None:
            return t.derive(dims=None, history=t.history.then(self.step(), UNKNOWN_STEP))
        flow.window(self, t, dims)
        return t.then(self.step(), dims=tuple(d.then(w) for d, w in zip(dims, self.windows)))

    def replay(self, ndim: int) -> Optional[Template]:
        if self.windows is None:
            raise NoReplay
        w = self.windows
        args: Dict[str, object] = {"kernel_size": tuple(x.k for x in w), "stride": tuple(x.s for x in w),
                                   "padding": tuple(x.p for x in w), "ceil_mode": w[0].ceil}
        if self.is_max:
            args["dilation"] = tuple(x.d for x in w)
        return (f"{'Max' if self.is_max else 'Avg'}Pool{self.ndim}d", args)


PadArgument = Union[None, Poly, Tuple[Optional[Poly], ...]]


@dataclass(eq=False)
class SizeOps(Replayable):
    """A layer whose spatial effect is one op per dim: adaptive pools, padding layers."""

    ndim: int = 2
    ops: Optional[Tuple[Optional[SizeOp], ...]] = None
    pad_arg: PadArgument = None  # a padding layer's own `padding` argument (int or per-side tuple)
    kind = StepKind.POOL
    replays_as = _dims_names("AdaptiveAvgPool", "ZeroPad", "ReflectionPad", "ReplicationPad", "ConstantPad",
                             "CircularPad")

    def apply(self, t: TensorV, flow: Flow) -> Value:
        dims = t.with_rank(self.ndim)
        if dims is None or self.ops is None:
            return t.derive(dims=None, history=t.history.then(self.step(), UNKNOWN_STEP))
        new = tuple(d if op is None else d.then(op) for d, op in zip(dims, self.ops))
        return t.then(self.step(), dims=new)

    def replay(self, ndim: int) -> Optional[Template]:
        if self.pad_arg is not None and self.torch_name:
            if isinstance(self.pad_arg, tuple) and None in self.pad_arg:
                raise NoReplay
            args: Dict[str, object] = {"padding": self.pad_arg}
            if self.torch_name.startswith("ConstantPad"):
                args["value"] = 0.0
            return (self.torch_name, args)
        if self.ops is None or not all(op is None or isinstance(op, Resize) for op in self.ops):
            raise NoReplay
        return (f"AdaptiveAvgPool{self.ndim}d",
                {"output_size": tuple(None if op is None else op.size for op in self.ops
                                      if op is None or isinstance(op, Resize))})


@dataclass(eq=False)
class Upsample(Replayable):
    factor: Poly = ONE
    kind = StepKind.POOL
    replays_as = frozenset({"Upsample"})

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.flat or t.dims is None:
            return UNKNOWN
        return t.then(self.step(), dims=tuple(d.then(Scale(self.factor)) for d in t.dims))

    def replay(self, ndim: int) -> Optional[Template]:
        return ("Upsample", {"scale_factor": self.factor})


@dataclass(frozen=True)
class SizesOf:
    """The sizes of spatial dims as a reproducer's input size makes them (``size=`` of a resize to
    another map's sizes): numbers only once that input size is chosen."""

    dims: Tuple[Dim, ...]


@dataclass(eq=False)
class ResizeTo(Replayable):
    """``F.interpolate(x, size=skip.shape[2:])``: the map takes those sizes, whatever they are."""

    dims: Tuple[Dim, ...] = ()
    kind = StepKind.POOL
    replays_as = frozenset({"Upsample"})

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.flat or t.dims is None or len(t.dims) != len(self.dims):
            return UNKNOWN
        return t.then(self.step(), dims=self.dims)

    def replay(self, ndim: int) -> Optional[Template]:
        return ("Upsample", {"size": SizesOf(self.dims)})


@dataclass(eq=False)
class Flatten(Replayable):
    start_dim: int = 1
    kind = StepKind.FLATTEN
    replays_as = frozenset({"Flatten"})

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if self.start_dim != 1:
            return UNKNOWN
        return flatten(t, flow, self.step())

    def replay(self, ndim: int) -> Optional[Template]:
        return ("Flatten", {})


@dataclass(eq=False)
class Linear(Replayable):
    in_features: Optional[Poly] = None
    out_features: Optional[Poly] = None
    kind = StepKind.LINEAR
    replays_as = frozenset({"Linear"})

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if not (t.flat or t.channels_last):
            return UNKNOWN  # a Linear on a feature map acts on its last dim (W): not modelled
        if self.in_features is not None and flow.consume(self, t, self.in_features, "in_features"):
            return UNKNOWN
        return t.then(self.step(), channels=self.out_features)

    def attribute(self, name: str) -> Value:
        if name in ("in_features", "out_features"):
            return _int(self.in_features if name == "in_features" else self.out_features)
        return UNKNOWN

    def replay(self, ndim: int) -> Optional[Template]:
        if self.in_features is None or self.out_features is None:
            raise NoReplay
        return ("Linear", {"in_features": self.in_features, "out_features": self.out_features})


@dataclass(eq=False)
class Sequential(Replayable):
    layers: List[Layer] = field(default_factory=list)
    kind = StepKind.SEQUENTIAL

    def apply(self, t: TensorV, flow: Flow) -> Value:
        out: Value = t
        for layer in self.layers:
            if not isinstance(out, TensorV):
                return UNKNOWN
            flow.spend()  # (a Sequential of 1,000 layers run in a loop is a million steps)
            out = applied(layer, out, layer.apply(out, flow))
        return out

    def replay(self, ndim: int) -> Optional[Template]:
        return None  # its layers are in the history already


@dataclass(eq=False)
class PixelShuffle(Layer):
    """``PixelShuffle(r)``: C*r*r channels to C, H,W times r (``PixelUnshuffle`` the other way)."""

    factor: Poly = ONE
    up: bool = True
    kind = StepKind.POOL

    def apply(self, t: TensorV, flow: Flow) -> Value:
        dims = t.with_rank(2)
        if dims is None or t.channels is None:
            return UNKNOWN
        square = self.factor * self.factor
        if self.up:
            channels = t.channels.floordiv(square)
            new_dims = tuple(d.then(Scale(self.factor)) for d in dims)
        else:
            channels = t.channels * square
            new_dims = tuple(d.then(Window(self.factor, self.factor, ZERO)) for d in dims)
        return t.then(self.step(), channels=channels, dims=new_dims)


@dataclass(eq=False)
class ModuleList(Layer):
    """``nn.ModuleList([...])`` of known layers: indexed or iterated, never called itself."""

    items: List[Layer] = field(default_factory=list)


NOWHERE = ast.Name("_")  # the node of a step that has no place in the source (never reported)
UNKNOWN_STEP = Step(StepKind.OTHER, NOWHERE)  # a change convlint does not model


def replayed_families() -> FrozenSet[str]:
    """Every torch class a reproducer may build (the confirmation child's whitelist)."""
    names: FrozenSet[str] = frozenset()
    for family in (Keep, Norm, Conv, TransposedConv, Pool, SizeOps, Upsample, ResizeTo, Flatten, Linear, Sequential):
        names |= family.replays_as
    return names
