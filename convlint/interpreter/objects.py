"""The objects of Python programs the interpreter computes with, beside the torch library's values:
functions, classes, the module under construction, dicts, and the callables convlint models.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

from ..symbolic.poly import Facts
from ..torchlib.values import Flow, Layer, StepKind, TensorV, Value

Def = Union[ast.FunctionDef, ast.AsyncFunctionDef]
Env = Dict[str, Value]


@dataclass(frozen=True)
class ClassV(Value):
    node: ast.ClassDef
    # a class defined inside a function sees that function's variables (what they were when it ran)
    closure: Optional[Env] = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class FuncV(Value):
    node: Def
    bound_self: Optional["SelfV"] = None
    closure: Optional[Env] = field(default=None, compare=False, hash=False)


@dataclass(eq=False)
class SelfV(Value):
    """The module under construction: its attributes and its class."""

    cls: ast.ClassDef
    attrs: Env = field(default_factory=dict)
    # for subclasses of nn.Sequential: the layers handed to super().__init__ / add_module
    seq_layers: Optional[List[Layer]] = None
    complete: bool = True  # every attribute it has was set where this analysis saw it
    closure: Optional[Env] = None  # the enclosing function's variables (a nested class)

    def copy(self) -> "SelfV":
        return SelfV(self.cls, dict(self.attrs), None if self.seq_layers is None else list(self.seq_layers),
                     self.complete, self.closure)


@dataclass(frozen=True)
class DictV(Value):
    """A dict of string keys (``dd = {"device": device, "dtype": dtype}``), for ``**dd``."""

    items: Dict[str, Value]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, eq=False)
class NamespaceV(DictV):
    """A ``@dataclass`` config instance: fields read as attributes (``layers.conv_norm_act(...)`` calls
    one); not a dict, so method calls on it are not dict changes. A ``copy.copy`` of one is ``copied``:
    no other name holds it, so setting its attributes changes only it."""

    copied: bool = False
    cls: Optional[ast.ClassDef] = None  # the plain class it is an instance of: its static methods


@dataclass(frozen=True)
class ProjectRefV(Value):
    """A name imported from another file of the checked tree (or a stub), resolved when used."""

    module: str
    name: str


@dataclass(frozen=True)
class PartialV(Value):
    """``functools.partial(nn.Conv2d, kernel_size=3)``."""

    func: Value
    args: Tuple[Value, ...]
    kwargs: Dict[str, Value]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True)
class SuperV(Value):
    self_v: Optional[SelfV]
    owner: Optional[ast.ClassDef] = None  # the class whose method calls super(): its bases come next


@dataclass(frozen=True)
class SelfMethodV(Value):
    """``self.add_module``, ``super().__init__``: methods of nn.Module convlint models."""

    self_v: Optional[SelfV]
    name: str
    owner: Optional[ast.ClassDef] = None  # for super().method: the class that called super()


@dataclass(frozen=True)
class TensorMethodV(Value):
    tensor: TensorV
    name: str


@dataclass(frozen=True)
class NamedLayersV(Value):
    """``OrderedDict([("conv", layer), ...])``: the layers, in order, of an ``nn.Sequential``."""

    items: Tuple[Value, ...]
    keys: Optional[Tuple[str, ...]] = None  # known when built item by item (``layers["a"] = ...``)


@dataclass(frozen=True)
class RangeV(Value):
    bounds: Tuple[int, ...]

    @property
    def numbers(self) -> Optional[range]:
        """The range, when its length fits a machine integer (``len()`` of a longer one fails)."""
        numbers = range(*self.bounds)
        try:
            len(numbers)
        except OverflowError:
            return None
        return numbers


@dataclass(frozen=True)
class Variant:
    """One way a module class's ``__init__`` ended: the instance, and the facts and truths of that path."""

    self_v: SelfV
    facts: Facts
    truths: Mapping[str, bool]


@dataclass(eq=False)
class Composite(Layer):
    """An instance of a module class of the analysed code: applied by running its ``forward``."""

    variants: List[Variant] = field(default_factory=list)
    kind = StepKind.MODULE

    def apply(self, t: TensorV, flow: Flow) -> Value:
        return flow.run_module(self, t)

    def cls(self) -> Optional[ast.ClassDef]:
        return self.variants[0].self_v.cls if self.variants else None
