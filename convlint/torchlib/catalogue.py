"""The catalogue: which ``torch.nn`` class names build which layer family, and how each reads its
arguments. Arguments are bound by torch's own signatures (keyword, else position, else default), so
positional and keyword spellings are the same thing here.

Adding a layer type is one ``Family`` entry here (and, if its size rule is new, a class in ``layers``).
The prefilter's names and the confirmation child's whitelist are derived from these entries.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from ..source.prefilter import Prefilter
from ..symbolic.dims import ONE, ZERO, Pad, Resize, Window
from ..symbolic.poly import Facts, Poly
from .layers import (
    Conv, Flatten, Keep, Linear, Norm, Opaque, PadArgument, Padding, PixelShuffle, Pool, SizeOps, TransposedConv,
    Upsample, replayed_families,
)
from .library import LIBRARY_IMPORT
from .values import NONE, BoolV, ConstC, IntV, Layer, ParamV, StrV, TupleV, Value

# reads one argument: (keyword, position, default) -> the value given, else the default
Binder = Callable[[str, int, Optional[Value]], Optional[Value]]


@dataclass(frozen=True)
class BuildSite:
    """Where a layer is built: the node its findings are reported at, its own call, the path's facts."""

    node: ast.AST
    call: ast.Call
    direct: bool        # ``node`` is the call itself (so a fix can edit it)
    facts: Facts


Builder = Callable[[str, int, Binder, BuildSite], Layer]  # (torch name, its dims or 0, arguments, site)


@dataclass(frozen=True)
class Family:
    names: Tuple[str, ...]
    build: Builder
    # naming one of these makes a file worth analysing (every finding involves one)
    marks_model_code: bool = False


# --- reading arguments --------------------------------------------------------------------------


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
        return None if any(p is None for p in polys) else tuple(p for p in polys if p is not None)
    p = as_poly(value)
    return None if p is None else (p,) * n


def as_bool(value: Optional[Value]) -> Optional[bool]:
    if isinstance(value, BoolV) and isinstance(value.cond, ConstC):
        return value.cond.value
    if isinstance(value, IntV) and value.poly.value is not None:
        return bool(value.poly.value)
    return None


def optional_tuple(value: Optional[Value], n: int) -> Optional[Tuple[Optional[Poly], ...]]:
    """Adaptive pool sizes: an int, or a tuple whose items may be None (keep that dim)."""
    if isinstance(value, TupleV) and len(value.items) == n:
        out: List[Optional[Poly]] = []
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


_FALSE = BoolV(ConstC(False))


# --- builders -----------------------------------------------------------------------------------


def _keep(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    return Keep(site.node)


def _conv(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    in_ch = as_poly(arg("in_channels", 0, None))
    out_ch = as_poly(arg("out_channels", 1, None))
    kernel = as_tuple(arg("kernel_size", 2, None), n)
    stride = as_tuple(arg("stride", 3, IntV(ONE)), n)
    dilation = as_tuple(arg("dilation", 5, IntV(ONE)), n)
    groups = as_poly(arg("groups", 6, IntV(ONE)))
    raw_padding = arg("padding", 4, IntV(ZERO))
    padding: Padding
    if isinstance(raw_padding, StrV):
        padding = "same" if raw_padding.text == "same" else (ZERO,) * n if raw_padding.text == "valid" else None
    else:
        padding = as_tuple(raw_padding, n)
    for p in (in_ch, out_ch, groups, *(kernel or ()), *(stride or ()), *(dilation or ())):
        if p is not None:
            site.facts.mark_positive(p)
    if isinstance(padding, tuple):
        for p in padding:
            site.facts.mark_nonneg(p)
    return Conv(site.node, n, in_ch, out_ch, kernel, stride, padding, dilation, groups, site.call, site.direct)


def _transposed_conv(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    """``nn.ConvTranspose2d(in, out, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1)``: note the positional order, groups before dilation."""
    in_ch = as_poly(arg("in_channels", 0, None))
    out_ch = as_poly(arg("out_channels", 1, None))
    kernel = as_tuple(arg("kernel_size", 2, None), n)
    stride = as_tuple(arg("stride", 3, IntV(ONE)), n)
    padding = as_tuple(arg("padding", 4, IntV(ZERO)), n)
    output_padding = as_tuple(arg("output_padding", 5, IntV(ZERO)), n)
    groups = as_poly(arg("groups", 6, IntV(ONE)))
    dilation = as_tuple(arg("dilation", 8, IntV(ONE)), n)
    for p in (in_ch, out_ch, groups, *(kernel or ()), *(stride or ()), *(dilation or ())):
        if p is not None:
            site.facts.mark_positive(p)
    return TransposedConv(site.node, n, in_ch, out_ch, kernel, stride, padding, output_padding, dilation, groups)


def _batch_norm(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    ch = as_poly(arg("num_features", 0, None)) if not name.startswith("Lazy") else None
    if name.startswith("Instance") and not (as_bool(arg("affine", 3, _FALSE)) or
                                            as_bool(arg("track_running_stats", 4, _FALSE))):
        ch = None  # without weights or running stats torch only warns on a mismatch
    if ch is not None:
        site.facts.mark_positive(ch)
    return Norm(site.node, ch, "num_features", n)


def _sync_batch_norm(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    return Norm(site.node, as_poly(arg("num_features", 0, None)), "num_features")


def _group_norm(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    ch = as_poly(arg("num_channels", 1, None))
    return Norm(site.node, ch, "num_channels", None, as_poly(arg("num_groups", 0, None)))


def pool(n: int, is_max: bool, arg: Binder, node: ast.AST, functional: bool = False) -> Pool:
    """``nn.MaxPool2d(...)``, or with ``functional`` ``F.max_pool2d(x, ...)``, whose positional order
    differs: ``F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)``."""
    kernel = as_tuple(arg("kernel_size", 0, None), n)
    raw_stride = arg("stride", 1, NONE)
    stride = kernel if raw_stride is NONE else as_tuple(raw_stride, n)
    padding = as_tuple(arg("padding", 2, IntV(ZERO)), n)
    if is_max:
        dilation = as_tuple(arg("dilation", 3, IntV(ONE)), n)
        ceil = as_bool(arg("ceil_mode", 4 if functional else 5, _FALSE))
    else:
        dilation = (ONE,) * n
        ceil = as_bool(arg("ceil_mode", 3, _FALSE))
    if kernel is None or stride is None or padding is None or dilation is None or ceil is None:
        return Pool(node, n, None, is_max)
    windows = tuple(Window(k, s, p, d, bool(ceil)) for k, s, p, d in zip(kernel, stride, padding, dilation))
    return Pool(node, n, windows, is_max)


def _pool(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    return pool(n, name.startswith("Max"), arg, site.node)


def adaptive_pool(n: int, output_size: Optional[Value], node: ast.AST) -> SizeOps:
    sizes = optional_tuple(output_size, n)
    ops = None if sizes is None else tuple(None if s is None else Resize(s) for s in sizes)
    return SizeOps(node, n, ops)


def _adaptive_pool(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    return adaptive_pool(n, arg("output_size", 0, None), site.node)


def _padding_layer(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    raw = arg("padding", 0, None)
    pad_arg: PadArgument = as_poly(raw) if as_poly(raw) is not None else (
        tuple(as_poly(v) for v in raw.items) if isinstance(raw, TupleV) else None)
    return SizeOps(site.node, n, _pads(raw, n), pad_arg)


def _pads(value: Optional[Value], n: int) -> Optional[Tuple[Pad, ...]]:
    """Padding layers: an int pads every side; a tuple lists (left, right, top, bottom, ...)."""
    p = as_poly(value)
    if p is not None:
        return (Pad(p * Poly.const(2)),) * n
    if isinstance(value, TupleV) and len(value.items) == 2 * n:
        sides = [as_poly(v) for v in value.items]
        known = [s for s in sides if s is not None]
        if len(known) != len(sides):
            return None
        # the tuple starts from the last dim
        per_dim = [Pad(known[2 * i] + known[2 * i + 1]) for i in range(n)]
        return tuple(reversed(per_dim))
    return None


def _pixel_shuffle(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    up = name == "PixelShuffle"
    factor = as_poly(arg("upscale_factor" if up else "downscale_factor", 0, None))
    return PixelShuffle(site.node, factor, up) if factor is not None else Opaque(site.node)


def _flatten(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    start = as_poly(arg("start_dim", 0, IntV(ONE)))
    end = as_poly(arg("end_dim", 1, IntV(Poly.const(-1))))
    if start is None or start.value != 1 or end is None or end.value != -1:
        return Opaque(site.node)
    return Flatten(site.node, 1)


def _linear(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    return Linear(site.node, as_poly(arg("in_features", 0, None)), as_poly(arg("out_features", 1, None)))


def _upsample(name: str, n: int, arg: Binder, site: BuildSite) -> Layer:
    factor = as_poly(arg("scale_factor", 1, None))
    if arg("size", 0, NONE) is NONE and factor is not None:
        return Upsample(site.node, factor)
    return Opaque(site.node)


def _in_dims(*kinds: str) -> Tuple[str, ...]:
    return tuple(f"{kind}{n}d" for kind in kinds for n in (1, 2, 3))


FAMILIES: Tuple[Family, ...] = (
    Family(("ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
            "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softsign", "Tanhshrink",
            "LogSigmoid", "Threshold", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
            "AlphaDropout", "FeatureAlphaDropout", "Softmax", "Softmax2d", "LogSoftmax", "Softmin",
            "ChannelShuffle", "Hardshrink", "Softshrink",
            # norms that keep the shape (LayerNorm's normalized_shape is not checked)
            "LocalResponseNorm", "LayerNorm", "RMSNorm"), _keep),
    Family(_in_dims("Conv"), _conv, marks_model_code=True),
    Family(_in_dims("ConvTranspose"), _transposed_conv, marks_model_code=True),
    Family(_in_dims("BatchNorm", "InstanceNorm"), _batch_norm, marks_model_code=True),
    Family(_in_dims("LazyBatchNorm"), _batch_norm),
    Family(("SyncBatchNorm",), _sync_batch_norm, marks_model_code=True),
    Family(("GroupNorm",), _group_norm, marks_model_code=True),
    Family(_in_dims("MaxPool", "AvgPool"), _pool, marks_model_code=True),
    Family(_in_dims("AdaptiveAvgPool", "AdaptiveMaxPool"), _adaptive_pool, marks_model_code=True),
    Family(_in_dims("ZeroPad", "ReflectionPad", "ReplicationPad", "ConstantPad", "CircularPad"), _padding_layer),
    Family(("PixelShuffle", "PixelUnshuffle"), _pixel_shuffle),
    Family(("Flatten",), _flatten),
    Family(("Linear",), _linear, marks_model_code=True),
    Family(("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"), _upsample),
)
_BY_NAME: Dict[str, Family] = {name: family for family in FAMILIES for name in family.names}

# containers the interpreter builds itself from the layers it is given
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "Parameter")
# the names that make a file worth analysing (see ``convlint.source.prefilter``)
MODEL_CODE_NAMES: Tuple[str, ...] = tuple(
    name for family in FAMILIES if family.marks_model_code for name in family.names) + ("Sequential",)
# a file (or a function's text) naming none of them, importing no modelled library, holds no finding
MODEL_CODE = Prefilter(MODEL_CODE_NAMES, LIBRARY_IMPORT)
# the torch classes a reproducer may build: the confirmation child builds nothing else
REPLAYED_LAYERS: FrozenSet[str] = replayed_families()


def build_layer(name: str, arg: Binder, node: ast.AST, call: ast.Call, direct: bool, facts: Facts) -> Layer:
    """The layer for ``torch.nn.<name>(...)``; anything the catalogue does not know is ``Opaque``."""
    family = _BY_NAME.get(name)
    site = BuildSite(node, call, direct, facts)
    layer = family.build(name, _dims_of(name), arg, site) if family is not None else Opaque(node)
    layer.torch_name = name
    return layer


def _dims_of(name: str) -> int:
    """3 for ``Conv3d``, 0 for a name without dims."""
    return int(name[-2]) if len(name) > 2 and name.endswith("d") and name[-2] in "123" else 0

