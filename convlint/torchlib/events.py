"""What the analysis tells the rules: the facts about a module that diagnostics are derived from.

The interpreter produces these while it runs ``__init__`` and ``forward`` symbolically; rules read
them and nothing else (no rule walks the syntax tree). Adding a fact is adding one ``Event`` class:
the analysis keeps every event by its class (``Analysis.of(ResidualAdd)``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ..symbolic.poly import Facts, Poly
from .layers import Conv, Pool
from .values import Layer, Step, TensorV


class Event:
    """A fact the interpreter found about the analysed code."""


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
        shared = self.left.history.common_past(self.right.history)
        left, right = self.left.history.since(shared), self.right.history.since(shared)
        common = 0  # steps past the shared chain may still be the same steps (a module's, re-placed)
        for a, b in zip(left, right):
            if a is not b:
                break
            common += 1
        left_steps, right_steps = left[common:], right[common:]
        if len(left_steps) >= len(right_steps):
            return self.left, self.right, left_steps, right_steps
        return self.right, self.left, right_steps, left_steps


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
