"""Classes of the analysed code: which are torch modules, their bases, methods and class attributes."""
from __future__ import annotations

import ast
from typing import List, Optional, Tuple

from ..source.module_names import dotted
from ..torchlib.values import UNKNOWN, RefV, Value
from .files import DEFS
from .machine import Interpreter, in_owner
from .objects import ClassV, Def, FuncV

TORCH_BASES = {"torch.nn.Module", "torch.nn.Sequential"}


def is_layer_class(qualname: str) -> bool:
    """``torch.nn.Conv2d``, ``torch.nn.Sequential``: a class of ``torch.nn`` (by its name's case)."""
    return qualname.startswith("torch.nn.") and qualname.count(".") == 2 and qualname[9:10].isupper()


def is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if dotted(target) in ("dataclass", "dataclasses.dataclass"):
            return True
    return False


DICT_VIEWS = ("items", "values", "keys")  # what an nn.ModuleDict subclass reads of its own layers


@in_owner(lambda cls: cls)
def class_kind(it: Interpreter, cls: ast.ClassDef, seen: Tuple[int, ...] = ()) -> Optional[str]:
    """"module", "sequential" or "dict" (an ``nn.ModuleDict``) for torch module classes; None for
    anything else."""
    if id(cls) in seen:
        return None
    for base in cls.bases:
        value = it.eval_static(base)
        if isinstance(value, RefV):
            if value.qualname in ("torch.nn.Module",):
                return "module"
            if value.qualname == "torch.nn.Sequential":
                return "sequential"
            if value.qualname == "torch.nn.ModuleDict":
                return "dict"  # DenseNet's blocks: layers added by name, run by `self.items()`
        elif isinstance(value, ClassV):
            kind = class_kind(it, value.node, seen + (id(cls),))
            if kind is not None:
                return kind
    return None


def torch_layer_base(it: Interpreter, cls: ast.ClassDef, depth: int = 0) -> Optional[str]:
    """The torch layer a class only renames (no __init__, forward or other method of its own)."""
    if depth > 8 or any(isinstance(stmt, DEFS) for stmt in cls.body) or len(cls.bases) != 1:
        return None
    with it.within(cls):
        base = it.eval_static(cls.bases[0])
    if isinstance(base, RefV) and is_layer_class(base.qualname) and base.qualname not in TORCH_BASES:
        return base.qualname
    if isinstance(base, ClassV):
        return torch_layer_base(it, base.node, depth + 1)
    return None


@in_owner(lambda cls: cls)
def same_file_bases(it: Interpreter, cls: ast.ClassDef) -> List[ast.ClassDef]:
    out = []
    for base in cls.bases:
        value = it.eval_static(base)
        if isinstance(value, ClassV) and value.node is not cls:
            out.append(value.node)
    return out


@in_owner(lambda cls: cls)
def find_method(it: Interpreter, cls: ast.ClassDef, name: str, depth: int = 0) -> Optional[Def]:
    if depth > 10:
        return None
    for stmt in reversed(cls.body):  # the last definition is the method (the ones before: @overload stubs)
        if isinstance(stmt, DEFS) and stmt.name == name:
            return stmt
    for base in same_file_bases(it, cls):
        found = find_method(it, base, name, depth + 1)
        if found is not None:
            return found
    return None


@in_owner(lambda cls: cls)
def class_attribute(it: Interpreter, cls: ast.ClassDef, name: str, depth: int = 0) -> Value:
    if depth > 10:
        return UNKNOWN
    for stmt in reversed(cls.body):  # the last binding of the name is the class's
        if isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                return it.eval_static(stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if isinstance(stmt.target, ast.Name) and stmt.target.id == name:
                return it.eval_static(stmt.value)
        elif isinstance(stmt, DEFS) and stmt.name == name:
            return FuncV(stmt)
    for base in same_file_bases(it, cls):
        found = class_attribute(it, base, name, depth + 1)
        if found is not UNKNOWN:
            return found
    return UNKNOWN
