"""One file as the interpreter reads it: its top-level names (imports as torch qualified names,
classes, functions, constants), the torch names it patches, and its ``input-size`` comments."""
from __future__ import annotations

import ast
import re
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

from ..source.directives import input_size_comment
from ..source.module_names import package_folder_module, reads_in_place, resolve_relative
from ..torchlib.library import MODELLED_MODULES
from ..torchlib.values import RefV, Value
from .objects import ClassV, Def, FuncV, ProjectRefV

# `a.b.Name = ...` (not `==`) and `setattr(a.b, "Name", ...)`, anywhere in a file, for `a` one of
# the file's names for torch modules
_ATTRIBUTE_ASSIGNMENT = (
    r"^[ \t]*(?P<target>(?:{names})(?:\.\w+)*)\.(?P<attr>[A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)"
    r"|\bsetattr\(\s*(?P<target2>(?:{names})(?:\.\w+)*)\s*,\s*(?:['\"](?P<attr2>\w+)['\"])?")
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
COMPOUND = tuple(t for t in (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try,
                             getattr(ast, "TryStar", None), getattr(ast, "Match", None), ast.FunctionDef,
                             ast.AsyncFunctionDef, ast.ClassDef) if t is not None)


class ModuleSet(Protocol):
    """The other files an import may reach (the checked tree: ``convlint.app.project.Project``)."""

    def has_module(self, name: str) -> bool: ...

    def index(self, name: str) -> Optional["FileIndex"]: ...


def canonical(qualname: str) -> str:
    """``torch.nn.modules.conv.Conv2d`` -> ``torch.nn.Conv2d``."""
    if qualname.startswith("torch.nn.modules."):
        return "torch.nn." + qualname.rsplit(".", 1)[-1]
    return qualname


class Param(NamedTuple):
    name: str
    default: Optional[ast.expr]


class Signature(NamedTuple):
    positional: Tuple[Param, ...]   # positional-only and positional-or-keyword, in order
    keyword_only: Tuple[Param, ...]
    star: Optional[str]             # the name of ``*args``
    star_star: Optional[str]        # the name of ``**kwargs``


def signature(fn: Def) -> Signature:
    """``fn``'s parameters with their defaults (``ast.arguments`` keeps the defaults apart), worked out
    once and kept on the node."""
    known = getattr(fn, "_convlint_signature", None)
    if isinstance(known, Signature):
        return known
    a = fn.args
    params = list(a.posonlyargs) + list(a.args)
    defaults: List[Optional[ast.expr]] = [None] * (len(params) - len(a.defaults))
    defaults += list(a.defaults)
    sig = Signature(tuple(Param(p.arg, d) for p, d in zip(params, defaults)),
                    tuple(Param(p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults)),
                    a.vararg.arg if a.vararg is not None else None,
                    a.kwarg.arg if a.kwarg is not None else None)
    setattr(fn, "_convlint_signature", sig)
    return sig


def defaulted_parameters(fn: Def) -> FrozenSet[str]:
    """The names of ``fn``'s parameters that have a default value."""
    sig = signature(fn)
    return frozenset(p.name for p in sig.positional + sig.keyword_only if p.default is not None)


def is_method(fn: Def) -> bool:
    params = signature(fn).positional
    return bool(params) and params[0].name in ("self", "cls")


class FileIndex:
    """Top-level names of one file: imports (as torch qualified names), classes, functions, constants."""

    def __init__(self, module: ast.Module, module_name: Optional[str] = None, is_package: bool = False,
                 project: Optional[ModuleSet] = None, source: str = "", path: Optional[str] = None):
        self.module, self.path, self.source = module, path, source
        self.module_name, self.is_package, self.project = module_name, is_package, project
        self.names: Dict[str, Value] = {}
        self.constants: Dict[str, ast.expr] = {}
        self.star_torch_nn = False
        self.classes: List[ast.ClassDef] = []
        self.functions: List[Def] = []
        self.statements: List[ast.stmt] = []
        self._lines: Optional[List[bytes]] = None
        self._index(module.body)
        self.patched = self._patched_torch_names(source)

    def lines(self) -> List[bytes]:
        """The source's lines as UTF-8 (``ast`` columns count bytes), read on first use."""
        if self._lines is None:
            self._lines = self.source.encode("utf-8", "surrogatepass").split(b"\n")
        return self._lines

    def source_of(self, node: Union[ast.stmt, ast.expr]) -> bytes:
        """The source lines ``node`` spans."""
        return b"\n".join(self.lines()[node.lineno - 1:node.end_lineno])

    def _patched_torch_names(self, source: str) -> Tuple[str, ...]:
        """Torch names the file assigns anywhere (``nn.Conv2d = MyConv``, ``setattr(nn, "Conv2d", f)``):
        they no longer mean torch's layers. A name ending in "." stands for everything under it."""
        patched: List[str] = []
        torch_names = [n for n, v in self.names.items() if isinstance(v, RefV) and v.qualname.split(".")[0] == "torch"]
        if not torch_names:
            return ()
        pattern = _ATTRIBUTE_ASSIGNMENT.format(names="|".join(map(re.escape, sorted(torch_names))))
        for m in re.finditer(pattern, source, re.M):
            target, attr = (m.group("target"), m.group("attr")) if m.group("target") else \
                (m.group("target2"), m.group("attr2"))
            first, _, rest = target.partition(".")
            base = self.names.get(first)
            if isinstance(base, RefV) and base.qualname.split(".")[0] == "torch":
                qualified = ".".join(p for p in (base.qualname, rest) if p)
                patched.append(canonical(f"{qualified}.{attr}") if attr else qualified + ".")
        return tuple(patched)

    def is_patched(self, qualname: str) -> bool:
        return any(qualname == p or (p.endswith(".") and qualname.startswith(p)) for p in self.patched)

    def _index(self, body: Sequence[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                self.names[stmt.name] = ClassV(stmt)
                self.classes.append(stmt)
            elif isinstance(stmt, DEFS):
                self.names[stmt.name] = FuncV(stmt)
                self.functions.append(stmt)
            elif isinstance(stmt, (ast.If, ast.Try)):
                # `try: from torch import nn` / `if TYPE_CHECKING:` blocks still define names
                self._index(stmt.body)
                if isinstance(stmt, ast.If):
                    self._index(stmt.orelse)
            elif not isinstance(stmt, COMPOUND):
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    self.add_import(stmt, self.names)
                elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
                        isinstance(stmt.targets[0], ast.Name):
                    self.constants[stmt.targets[0].id] = stmt.value
                self.statements.append(stmt)

    def add_import(self, node: Union[ast.Import, ast.ImportFrom], into: Dict[str, Value]) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    into[alias.asname] = RefV(canonical(alias.name))
                else:
                    top = alias.name.split(".")[0]
                    into[top] = RefV(top)
            return
        base = node.module
        if node.level:
            target = base
            base = resolve_relative(self.module_name, self.is_package, node.level, target) \
                if self.module_name else None
            if base is None or not (self.project is not None and self.project.has_module(base)):
                # a modelled library, reached from a copy of the library's own files
                # (torchvision/models/x.py: `from ..ops.misc import ...`) whose top package has
                # no __init__.py beside it: the folder names say where the import leads
                by_folder = package_folder_module(self.path, node.level, target)
                base = by_folder if by_folder in MODELLED_MODULES else base
        if base is None:
            return
        if any(alias.name == "*" for alias in node.names):
            if base == "torch.nn":
                self.star_torch_nn = True
            return
        for alias in node.names:
            name = alias.name
            local = alias.asname or name
            if self.project is not None and self.project.has_module(base) or base in MODELLED_MODULES:
                into[local] = ProjectRefV(base, name)  # a helper of another checked file, or a library model
            elif not node.level and reads_in_place(base):
                into[local] = ProjectRefV(base, name)  # perhaps an installed library's: looked for when used
            elif not node.level:
                into[local] = RefV(canonical(f"{base}.{name}"))

    def input_size(self, cls: ast.ClassDef) -> Optional[Tuple[int, ...]]:
        """A ``# convlint: input-size=3x32x32`` comment on the lines above the class (its decorators
        included) or on its header."""
        first = min([cls.lineno] + [d.lineno for d in cls.decorator_list]) - 1
        header_end = cls.body[0].lineno - 1 if cls.body else cls.lineno
        return input_size_comment(self.lines(), first, header_end)
