"""What torch layers do to shapes: built from a constructor call's arguments, applied to a tensor.

Each layer knows the channels it expects (``expected_channels``) and how it maps a ``TensorV`` to
the next one. Anything the catalogue does not know is ``Opaque``: its output is unknown, and no
diagnostic is ever derived from it. Arguments are bound by torch's own signatures, so positional and
keyword spellings are the same thing here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple, Union

import ast

from .shapes import ONE, ZERO, Dim, Pad, Resize, Scale, Window
from .symbolic import Facts, Poly
from .values import UNKNOWN, IntV, ParamV, StrV, Step, TensorV, TupleV, Value, BoolV, ConstC, NONE


def as_poly(value: Optional[Value]) -> Optional[Poly]:
    if isinstance(value, IntV):
        return value.poly
    if isinstance(value, ParamV):
        return Poly.atom(value.name)
    if isinstance(value, BoolV) and isinstance(value.cond, ConstC):
        return Poly.const(int(value.cond.value))
    return None


def as_tuple(value: Optional[Value], n: int) -> Optional[Tuple[Poly, ...]]:
    """An int-or-tuple layer argument (``kernel_size=3`` or ``(1, 7)``) as ``n`` polynomials."""
    if isinstance(value, TupleV):
        if len(value.items) == 1 and n != 1:
            return None
        items = value.items if len(value.items) == n else (value.items * n if len(value.items) == 1 else None)
        if items is None:
            return None
        polys = tuple(as_poly(v) for v in items)
        return None if any(p is None for p in polys) else polys  # type: ignore[return-value]
    p = as_poly(value)
    return None if p is None else (p,) * n


def as_bool(value: Optional[Value]) -> Optional[bool]:
    if isinstance(value, BoolV) and isinstance(value.cond, ConstC):
        return value.cond.value
    if isinstance(value, IntV) and value.poly.value is not None:
        return bool(value.poly.value)
    return None


class Flow:
    """What applying layers needs from the interpreter: the path's facts and the event sink."""

    facts: Facts

    def consume(self, layer: "Layer", tensor: TensorV, expected: Poly, what: str) -> None:
        raise NotImplementedError

    def run_composite(self, layer: "Composite", tensor: TensorV) -> Value:
        raise NotImplementedError

    def window(self, layer: "Layer", tensor: TensorV, dims: Tuple[Dim, ...]) -> None:
        """A conv or pool slides its windows over ``dims`` of ``tensor`` (sizes may be known)."""


@dataclass(eq=False)
class Layer:
    node: ast.AST  # where diagnostics about this layer are reported

    kind = "other"
    torch_name = ""    # "Conv2d", "BatchNorm2d", ... for messages
    own_call = None    # its own constructor call, when the checked file has it (set by the interpreter)

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return UNKNOWN

    def step(self) -> Step:
        return Step(self.kind, self.node, self)


@dataclass(eq=False)
class Opaque(Layer):
    """A module convlint does not model (built elsewhere, passed in, or unknown)."""


@dataclass(eq=False)
class Keep(Layer):
    """A layer that keeps the shape: activations, dropout, Identity."""

    kind = "keep"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return t.derive(history=t.history + (self.step(),))


@dataclass(eq=False)
class Norm(Layer):
    """BatchNorm/InstanceNorm (``num_features``) and GroupNorm (``num_channels``)."""

    channels: Optional[Poly] = None
    argument: str = "num_features"
    ndim: Optional[int] = None
    num_groups: Optional[Poly] = None  # GroupNorm
    kind = "norm"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.channels_last:
            return UNKNOWN  # a channels-first norm on a permuted tensor: not modelled
        if self.channels is not None and not t.flat:
            flow.consume(self, t, self.channels, self.argument)
        return t.derive(history=t.history + (self.step(),))


@dataclass(eq=False)
class Conv(Layer):
    ndim: int = 2
    in_channels: Optional[Poly] = None
    out_channels: Optional[Poly] = None
    kernel: Optional[Tuple[Poly, ...]] = None
    stride: Optional[Tuple[Poly, ...]] = None
    padding: Union[None, str, Tuple[Poly, ...]] = None  # polys, "same", or None when unknown
    dilation: Optional[Tuple[Poly, ...]] = None
    groups: Optional[Poly] = None
    call: Optional[ast.Call] = None   # the nn.ConvNd(...) call itself
    direct: bool = False              # the call is the reported node (so a fix can edit it)
    windows: Optional[Tuple[Window, ...]] = None
    kind = "conv"

    def __post_init__(self) -> None:
        if self.kernel and self.stride and self.dilation and isinstance(self.padding, tuple):
            self.windows = tuple(Window(k, s, p, d, False, True) for k, s, p, d in
                                 zip(self.kernel, self.stride, self.padding, self.dilation))

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.channels_last:
            return UNKNOWN
        if self.in_channels is not None and not t.flat:
            flow.consume(self, t, self.in_channels, "in_channels")
        dims = t.with_rank(self.ndim)
        if dims is not None:
            if self.padding == "same":
                pass  # torch pads so that the size is kept (stride 1 is enforced when built)
            elif self.windows is not None:
                flow.window(self, t, dims)
                dims = tuple(d.then(w) for d, w in zip(dims, self.windows))
            else:
                dims = None
        hist = t.history + (self.step(),)
        if dims is None:
            return t.derive(channels=self.out_channels, dims=None, history=hist + (_UNKNOWN_STEP,))
        return t.derive(channels=self.out_channels, dims=dims, history=hist)


@dataclass(eq=False)
class Pool(Layer):
    ndim: int = 2
    windows: Optional[Tuple[Window, ...]] = None
    is_max: bool = True
    kind = "pool"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        dims = t.with_rank(self.ndim)
        hist = t.history + (self.step(),)
        if dims is None or self.windows is None:
            return t.derive(dims=None, history=hist + (_UNKNOWN_STEP,))
        flow.window(self, t, dims)
        return t.derive(dims=tuple(d.then(w) for d, w in zip(dims, self.windows)), history=hist)


@dataclass(eq=False)
class SizeOps(Layer):
    """A layer whose spatial effect is one op per dim: adaptive pools, padding, upsampling."""

    ndim: int = 2
    ops: Optional[Tuple[Optional[Union[Resize, Pad, Scale]], ...]] = None
    pad_arg: object = None  # a padding layer's own `padding` argument (int or per-side tuple)
    kind = "pool"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        dims = t.with_rank(self.ndim)
        hist = t.history + (self.step(),)
        if dims is None or self.ops is None:
            return t.derive(dims=None, history=hist + (_UNKNOWN_STEP,))
        new = tuple(d if op is None else d.then(op) for d, op in zip(dims, self.ops))
        return t.derive(dims=new, history=hist)


@dataclass(eq=False)
class Flatten(Layer):
    start_dim: int = 1
    kind = "flatten"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if self.start_dim != 1:
            return UNKNOWN
        return flatten(t, flow, self.step())


@dataclass(eq=False)
class Linear(Layer):
    in_features: Optional[Poly] = None
    out_features: Optional[Poly] = None
    kind = "linear"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if not (t.flat or t.channels_last):
            return UNKNOWN  # a Linear on a feature map acts on its last dim (W): not modelled
        if self.in_features is not None:
            flow.consume(self, t, self.in_features, "in_features")
        return t.derive(channels=self.out_features, history=t.history + (self.step(),))


@dataclass(eq=False)
class Sequential(Layer):
    layers: List[Layer] = field(default_factory=list)
    kind = "sequential"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        out: Value = t
        for layer in self.layers:
            if not isinstance(out, TensorV):
                return UNKNOWN
            out = layer.apply(out, flow)
        return out


@dataclass(eq=False)
class PixelShuffle(Layer):
    """``PixelShuffle(r)``: C*r*r channels to C, H,W times r (``PixelUnshuffle`` the other way)."""

    factor: Poly = ONE
    up: bool = True
    kind = "pool"

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
        return t.derive(channels=channels, dims=new_dims, history=t.history + (self.step(),))


@dataclass(eq=False)
class ModuleList(Layer):
    """``nn.ModuleList([...])`` of known layers: indexed or iterated, never called itself."""

    items: List[Layer] = field(default_factory=list)


@dataclass(eq=False)
class Composite(Layer):
    """An instance of a module class of the same file: applied by running its ``forward``."""

    instance: object = None  # values.SelfV
    facts: Optional[Facts] = None
    truths: Optional[dict] = None
    kind = "module"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return flow.run_composite(self, t)


NOWHERE = ast.Name("_")  # the node of a step that has no place in the source (never reported)
_UNKNOWN_STEP = Step("other", NOWHERE)  # a change convlint does not model


def flatten(t: TensorV, flow: Flow, step: Step) -> Value:
    """``torch.flatten(x, 1)``: the feature count is known when every spatial size is."""
    if t.flat:
        return t
    features: Optional[Poly] = t.channels
    if t.dims is None or features is None:
        features = None
    else:
        for d in t.dims:
            size = dim_size(d, t, flow.facts)
            if size is None:
                features = None
                break
            features = features * size
    return t.derive(channels=features, dims=(), flat=True, history=t.history + (step,))


def dim_size(d: Dim, t: TensorV, facts: Facts) -> Optional[Poly]:
    """A spatial size as a number: after the last resize, or from a known input size."""
    ops = list(d.ops)
    start: Optional[int] = dict(t.known_sizes).get(d.base)
    for i in range(len(ops) - 1, -1, -1):
        if isinstance(ops[i], Resize):
            size = facts.resolve(ops[i].size)
            if size.value is None:
                return size if i == len(ops) - 1 else None
            start, ops = size.value, ops[i + 1:]
            break
    if start is None:
        return None
    out = Dim(d.base, tuple(ops)).concrete(start, facts)
    return None if out is None else Poly.const(out)


# --- the catalogue ------------------------------------------------------------------------------

_ACTIVATIONS = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softsign", "Tanhshrink",
    "LogSigmoid", "Threshold", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout", "Softmax", "Softmax2d", "LogSoftmax", "Softmin",
    "ChannelShuffle", "Hardshrink", "Softshrink",
}

Binder = Callable[[str, int, Optional[Value]], Optional[Value]]


def build_layer(name: str, arg: Binder, node: ast.AST, call: ast.Call, direct: bool,
                facts: Facts) -> Layer:
    """The layer for ``torch.nn.<name>(...)``; ``arg(keyword, position, default)`` reads an argument."""
    layer = _build(name, arg, node, call, direct, facts)
    layer.torch_name = name
    return layer


def _build(name: str, arg: Binder, node: ast.AST, call: ast.Call, direct: bool, facts: Facts) -> Layer:
    if name in _ACTIVATIONS:
        return Keep(node)
    for n in (1, 2, 3):
        if name == f"Conv{n}d":
            return _conv(n, arg, node, call, direct, facts)
        if name in (f"BatchNorm{n}d", f"InstanceNorm{n}d", f"LazyBatchNorm{n}d"):
            ch = as_poly(arg("num_features", 0, None)) if not name.startswith("Lazy") else None
            if name.startswith("Instance") and not (as_bool(arg("affine", 3, BoolV(ConstC(False)))) or
                                                    as_bool(arg("track_running_stats", 4, BoolV(ConstC(False))))):
                ch = None  # without weights or running stats torch only warns on a mismatch
            if ch is not None:
                facts.mark_positive(ch)
            return Norm(node, ch, "num_features", n)
        if name in (f"MaxPool{n}d", f"AvgPool{n}d"):
            return build_pool(n, name.startswith("Max"), arg, node)
        if name in (f"AdaptiveAvgPool{n}d", f"AdaptiveMaxPool{n}d"):
            sizes = optional_tuple(arg("output_size", 0, None), n)
            ops = None if sizes is None else tuple(None if s is None else Resize(s) for s in sizes)
            return SizeOps(node, n, ops)
        if name in (f"ZeroPad{n}d", f"ReflectionPad{n}d", f"ReplicationPad{n}d", f"ConstantPad{n}d",
                    f"CircularPad{n}d"):
            raw = arg("padding", 0, None)
            pad_arg = as_poly(raw) if as_poly(raw) is not None else (
                tuple(as_poly(v) for v in raw.items) if isinstance(raw, TupleV) else None)
            return SizeOps(node, n, _pads(raw, n), pad_arg)
    if name == "SyncBatchNorm":
        ch = as_poly(arg("num_features", 0, None))
        return Norm(node, ch, "num_features")
    if name == "GroupNorm":
        ch = as_poly(arg("num_channels", 1, None))
        return Norm(node, ch, "num_channels", None, as_poly(arg("num_groups", 0, None)))
    if name in ("LocalResponseNorm", "LayerNorm", "RMSNorm"):
        return Keep(node)  # keep the shape (LayerNorm's normalized_shape is not checked)
    if name in ("PixelShuffle", "PixelUnshuffle"):
        factor = as_poly(arg("upscale_factor" if name == "PixelShuffle" else "downscale_factor", 0, None))
        return PixelShuffle(node, factor, name == "PixelShuffle") if factor is not None else Opaque(node)
    if name == "Flatten":
        start = as_poly(arg("start_dim", 0, IntV(ONE)))
        end = as_poly(arg("end_dim", 1, IntV(Poly.const(-1))))
        if start is None or start.value != 1 or end is None or end.value != -1:
            return Opaque(node)
        return Flatten(node, 1)
    if name == "Linear":
        return Linear(node, as_poly(arg("in_features", 0, None)), as_poly(arg("out_features", 1, None)))
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        factor = as_poly(arg("scale_factor", 1, None))
        if arg("size", 0, NONE) is NONE and factor is not None:
            return _upsample(node, factor)
        return Opaque(node)
    return Opaque(node)


@dataclass(eq=False)
class Upsample(Layer):
    factor: Poly = ONE
    kind = "pool"

    def apply(self, t: TensorV, flow: Flow) -> Value:
        if t.flat or t.dims is None:
            return UNKNOWN
        return t.derive(dims=tuple(d.then(Scale(self.factor)) for d in t.dims),
                        history=t.history + (self.step(),))


def _upsample(node: ast.AST, factor: Poly) -> Layer:
    return Upsample(node, factor)


def _conv(n: int, arg: Binder, node: ast.AST, call: ast.Call, direct: bool, facts: Facts) -> Conv:
    in_ch = as_poly(arg("in_channels", 0, None))
    out_ch = as_poly(arg("out_channels", 1, None))
    kernel = as_tuple(arg("kernel_size", 2, None), n)
    stride = as_tuple(arg("stride", 3, IntV(ONE)), n)
    dilation = as_tuple(arg("dilation", 5, IntV(ONE)), n)
    groups = as_poly(arg("groups", 6, IntV(ONE)))
    raw_padding = arg("padding", 4, IntV(ZERO))
    padding: Union[None, str, Tuple[Poly, ...]]
    if isinstance(raw_padding, StrV):
        padding = {"same": "same", "valid": (ZERO,) * n}.get(raw_padding.text)  # type: ignore[assignment]
    else:
        padding = as_tuple(raw_padding, n)
    for p in (in_ch, out_ch, groups, *(kernel or ()), *(stride or ()), *(dilation or ())):
        if p is not None:
            facts.mark_positive(p)
    if isinstance(padding, tuple):
        for p in padding:
            facts.mark_nonneg(p)
    return Conv(node, n, in_ch, out_ch, kernel, stride, padding, dilation, groups, call, direct)


def build_pool(n: int, is_max: bool, arg: Binder, node: ast.AST, functional: bool = False) -> Pool:
    """``nn.MaxPool2d(...)``, or with ``functional`` ``F.max_pool2d(x, ...)``, whose positional order
    differs: ``F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)``."""
    kernel = as_tuple(arg("kernel_size", 0, None), n)
    raw_stride = arg("stride", 1, NONE)
    stride = kernel if raw_stride is NONE else as_tuple(raw_stride, n)
    padding = as_tuple(arg("padding", 2, IntV(ZERO)), n)
    if is_max:
        dilation = as_tuple(arg("dilation", 3, IntV(ONE)), n)
        ceil = as_bool(arg("ceil_mode", 4 if functional else 5, BoolV(ConstC(False))))
    else:
        dilation = (ONE,) * n
        ceil = as_bool(arg("ceil_mode", 3, BoolV(ConstC(False))))
    if None in (kernel, stride, padding, dilation, ceil):
        return Pool(node, n, None, is_max)
    windows = tuple(Window(k, s, p, d, bool(ceil)) for k, s, p, d in zip(kernel, stride, padding, dilation))
    return Pool(node, n, windows, is_max)


def optional_tuple(value: Optional[Value], n: int) -> Optional[Tuple[Optional[Poly], ...]]:
    """Adaptive pool sizes: an int, or a tuple whose items may be None (keep that dim)."""
    if isinstance(value, TupleV) and len(value.items) == n:
        out = []
        for v in value.items:
            if v is NONE:
                out.append(None)
            else:
                p = as_poly(v)
                if p is None:
                    return None
                out.append(p)
        return tuple(out)
    p = as_poly(value)
    return None if p is None else (p,) * n


def _pads(value: Optional[Value], n: int) -> Optional[Tuple[Pad, ...]]:
    """Padding layers: an int pads every side; a tuple lists (left, right, top, bottom, ...)."""
    p = as_poly(value)
    if p is not None:
        return (Pad(p * Poly.const(2)),) * n
    if isinstance(value, TupleV) and len(value.items) == 2 * n:
        sides = [as_poly(v) for v in value.items]
        if any(s is None for s in sides):
            return None
        # the tuple starts from the last dim
        per_dim = [Pad(sides[2 * i] + sides[2 * i + 1]) for i in range(n)]  # type: ignore[operator]
        return tuple(reversed(per_dim))
    return None


