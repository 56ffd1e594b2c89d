"""What the analysis tells the rules: the facts about a module that diagnostics are derived from.

The interpreter produces these while it runs ``__init__`` and ``forward`` symbolically; rules read
them and nothing else (no rule walks the syntax tree). Adding a fact is adding one ``Event`` class:
the analysis keeps every event by its class (``Analysis.of(ResidualAdd)``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ..symbolic.dims import Dim, DimComparison, Relation, combined, compare_dims
from ..symbolic.poly import Facts, Poly, prove_unequal
from .layers import Conv, Pool
from .values import Layer, Step, TensorV, spatial_dims


class Event:
    """A fact the interpreter found about the analysed code."""


def diverging(a: TensorV, b: TensorV) -> Tuple[Tuple[Step, ...], Tuple[Step, ...]]:
    """The steps each of two tensors of one input took since they parted."""
    shared = a.history.common_past(b.history)
    left, right = a.history.since(shared), b.history.since(shared)
    common = 0  # steps past the shared chain may still be the same steps (a module's, re-placed)
    for x, y in zip(left, right):
        if x is not y:
            break
        common += 1
    return left[common:], right[common:]


@dataclass(frozen=True)
class ResidualAdd(Event):
    """``a + b`` (or ``a += b``, ``torch.add(a, b)``, ``a.add_(b)``) of two tensors of one input."""

    node: ast.AST
    left: TensorV
    right: TensorV
    facts: Facts
    # set for an add in the forward of a module another module built: the call that built it (the
    # add is judged with that call's numbers)
    built_at: Optional[ast.AST] = None

    def sides(self) -> Tuple[TensorV, TensorV, Tuple[Step, ...], Tuple[Step, ...]]:
        """(branch, shortcut, branch steps, shortcut steps): the shortcut is the side with fewer
        layers since the tensors' common ancestor (the identity shortcut has none)."""
        left_steps, right_steps = diverging(self.left, self.right)
        if len(left_steps) >= len(right_steps):
            return self.left, self.right, left_steps, right_steps
        return self.right, self.left, right_steps, left_steps

    def fails(self) -> bool:
        """Whether torch raises here whatever the unknowns: channels that differ (neither one, which
        broadcasts), or sizes that differ for every input size."""
        if self.left.flat != self.right.flat:
            return False
        if channels_differ(self.left, self.right, self.facts):
            return True
        return add_sizes(self.left, self.right, self.facts)[0].relation is Relation.DIFFER


def channels_differ(a: TensorV, b: TensorV, facts: Facts) -> bool:
    """The channels of two tensors an elementwise op joins differ for every value of the unknowns
    (a side of one channel broadcasts; a count named by a symbol is taken as more than one)."""
    if a.channels is None or b.channels is None:
        return False
    x, y = facts.resolve(a.channels), facts.resolve(b.channels)
    return x.value != 1 and y.value != 1 and prove_unequal(x, y, facts)


def add_sizes(a: TensorV, b: TensorV, facts: Facts,
              fix_conv_padding: bool = False) -> Tuple[DimComparison, Optional[Tuple[Tuple[Dim, ...], Tuple[Dim, ...]]]]:
    """How the spatial sizes of two tensors an elementwise op joins relate, and their dims (None when
    unknown, or made by a default factory a caller may replace)."""
    dims = None if a.resized_by_default or b.resized_by_default else spatial_dims(a, b)
    if dims is None:
        return DimComparison(Relation.UNKNOWN), None
    return combined([compare_dims(x, y, facts, fix_conv_padding) for x, y in zip(*dims)]), dims


@dataclass(frozen=True)
class Concatenation(Event):
    """``torch.cat([a, b], 1)`` of feature maps: the channels add up, and every other dim must match
    (a UNet's skip and its upsampled decoder map)."""

    node: ast.AST
    tensors: Tuple[TensorV, ...]
    facts: Facts
    built_at: Optional[ast.AST] = None  # as for ResidualAdd

    def sizes(self) -> Tuple[DimComparison, Optional[Tuple[TensorV, TensorV]]]:
        """How the joined maps' spatial sizes relate, for every input size the path allows (known
        numbers decide where an input size is given), and the first two maps that differ."""
        first = self.tensors[0]
        verdicts = []
        for other in self.tensors[1:]:
            verdict = _compare_sizes(first, other, self.facts)
            if verdict.relation in (Relation.DIFFER, Relation.SOMETIMES):
                return verdict, (first, other)
            verdicts.append(verdict)
        return combined(verdicts), None


def _compare_sizes(a: TensorV, b: TensorV, facts: Facts) -> DimComparison:
    if a.dims is None and b.dims is None and a.rank_open and b.rank_open and a.root == b.root:
        return DimComparison(Relation.EQUAL)  # one input's sizes, whatever its rank (a map resized to it)
    dims = spatial_dims(a, b)
    if dims is None or a.resized_by_default or b.resized_by_default:
        return DimComparison(Relation.UNKNOWN)
    known = dict(a.known_sizes + b.known_sizes)
    results = []
    for da, db in zip(*dims):
        na, nb = known.get(da.base), known.get(db.base)
        sa = da.concrete(na, facts) if na is not None else None
        sb = db.concrete(nb, facts) if nb is not None else None
        if sa is not None and sb is not None:  # the given input size decides
            results.append(DimComparison(Relation.EQUAL if sa == sb else Relation.DIFFER))
        else:
            results.append(compare_dims(da, db, facts))
    return combined(results)


@dataclass(frozen=True)
class ChannelUse(Event):
    """A layer that expects ``expected`` channels (or features) receiving a tensor with ``actual``."""

    layer: Layer
    argument: str         # in_channels, num_features, num_channels, in_features
    expected: Poly
    actual: Poly
    tensor: TensorV
    facts: Facts
    at: Optional[ast.AST] = None  # where it is reported (the layer's node when None)
    built_at: Optional[ast.AST] = None  # in the forward of a module another built: the call that built it


@dataclass(frozen=True)
class ConvBuilt(Event):
    """A conv constructed with these arguments (checked as torch checks them when it is built)."""

    conv: Conv
    facts: Facts
    padding_text: Optional[str] = None


@dataclass(frozen=True)
class WindowApplied(Event):
    """A conv or pool applied to a tensor whose spatial sizes are known numbers (from an input size)."""

    layer: Union[Conv, Pool]          # its ``windows``, one per dim
    sizes: Tuple[Optional[int], ...]  # the input's size in each windowed dim, None where unknown
    facts: Facts
    at: Optional[ast.AST] = None      # where it is reported (the layer's node when None)
    built_at: Optional[ast.AST] = None  # in the forward of a module another built: the call that built it
