"""The abstract values the interpreter computes with.

Everything the analysis cannot decide is ``UNKNOWN``, and every rule stays silent on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import ast

from .shapes import Dim
from .symbolic import Poly


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


@dataclass(frozen=True)
class ParamV(Value):
    """An argument nobody bound: an integer symbol, a boolean atom, maybe None, maybe a module."""

    name: str


@dataclass(frozen=True)
class RefV(Value):
    """A name that reaches torch: ``torch.nn.Conv2d``, ``torch.nn.functional.relu``."""

    qualname: str


@dataclass(frozen=True)
class ClassV(Value):
    node: ast.ClassDef
    # a class defined inside a function sees that function's variables (what they were when it ran)
    closure: Optional[Dict[str, Value]] = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class FuncV(Value):
    node: ast.FunctionDef
    bound_self: Optional["SelfV"] = None
    closure: Optional[Dict[str, Value]] = field(default=None, compare=False, hash=False)


@dataclass(eq=False)
class SelfV(Value):
    """The module under construction: its attributes and its class."""

    cls: ast.ClassDef
    attrs: dict = field(default_factory=dict)
    # for subclasses of nn.Sequential: the layers handed to super().__init__ / add_module
    seq_layers: Optional[list] = None
    complete: bool = True  # every attribute it has was set where this analysis saw it
    closure: Optional[Dict[str, Value]] = None  # the enclosing function's variables (a nested class)

    def copy(self) -> "SelfV":
        return SelfV(self.cls, dict(self.attrs), None if self.seq_layers is None else list(self.seq_layers),
                     self.complete, self.closure)


@dataclass(frozen=True)
class LayerV(Value):
    layer: Any  # a convlint.layers.Layer


@dataclass(frozen=True)
class ShapeV(Value):
    """``x.shape`` / ``x.size()`` of a tensor, indexable to sizes (kept only to recognise flatten)."""

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


@dataclass(frozen=True)
class Step:
    """One layer or operation a tensor went through, for locating the cause of a mismatch."""

    kind: str                      # "conv", "pool", "norm", "keep", "merge", "linear", "flatten", "module",
    #                                "other" (a change convlint does not model)
    node: ast.AST              # where it is reported: the layer's constructor call
    layer: Any = None              # the Layer for convs and pools


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
    history: Tuple[Step, ...] = ()
    flat: bool = False
    known_sizes: Tuple[Tuple[str, int], ...] = ()  # input sizes given by `input-size`
    rank_open: bool = False  # an input whose rank no layer has fixed yet (``dims`` is None)
    channels_last: bool = False  # permuted to (N, *spatial, C), as ConvNeXt blocks do around Linears

    def with_rank(self, n: int) -> Optional[Tuple[Dim, ...]]:
        """The last ``n`` spatial dims, naming the input's dims when the rank was still open."""
        if self.flat or self.channels_last:
            return None
        if self.dims is None:
            if not self.rank_open:
                return None
            return tuple(Dim(f"{self.root}#{n - i}") for i in range(n))
        if len(self.dims) != n:
            return None
        return self.dims

    def derive(self, **changes: Any) -> "TensorV":
        fields = dict(root=self.root, channels=self.channels, dims=self.dims, history=self.history,
                      flat=self.flat, known_sizes=self.known_sizes, rank_open=self.rank_open,
                      channels_last=self.channels_last)
        if "dims" in changes or "flat" in changes:
            fields["rank_open"] = False
        fields.update(changes)
        return TensorV(**fields)
