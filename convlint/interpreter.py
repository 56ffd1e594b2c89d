"""Symbolic execution of a file's model code: ``__init__`` builds layers, ``forward`` moves tensors.

Each class (and each module-level function) is run once with its arguments as symbols. An ``if`` whose
condition the path's facts do not decide forks the path, and each fork learns the condition (or its
negation) as facts: on the ``else`` of ``if stride != 1 or in_planes != planes:`` the analysis knows
``stride == 1`` and ``in_planes == planes``. Loops, comprehensions and anything else not modelled
make the values they touch unknown. The run emits events (``convlint.events``) for the rules.

Nothing here imports or executes the analysed code: it reads the syntax tree only.
"""
from __future__ import annotations

import ast
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import layers as L
from .stubs import STUB_MODULES, stub_index, stub_relative
from .events import ChannelUse, ConvBuilt, ResidualAdd, WindowApplied
from .project import resolve_relative
from .shapes import ONE, ZERO, Dim, Resize
from .symbolic import Facts, Poly, lower_bound, prove_nonzero
from .values import (
    FALSE, NONE, TRUE, UNKNOWN, AndC, AtomC, BatchSizeV, BoolV, ClassV, CmpC, Cond, ConstC, FuncV, NoneV,
    IntV, LayerV, NotC, OrC, ParamV, RefV, SelfV, ShapeV, Step, StrV, TensorV, TupleV, Value,
)

MAX_PATHS = 48      # live paths per function; more are dropped (fewer paths: fewer findings)
MAX_DEPTH = 8       # nested helpers / module classes
MAX_SPLIT = 4       # distinct results of a helper call that fork its caller
MAX_UNROLL = 32     # items of a loop that is run once per item
STEP_BUDGET = 3500   # statements run per class or function analysed: a linter must not stall on one file


class _OutOfBudget(Exception):
    pass


CHANNEL_PREFIX = "C["  # channel symbols of forward inputs: learned from the first layer using them

LAYER_NAME = re.compile(r"Conv[123]d|BatchNorm[123]d|GroupNorm|InstanceNorm[123]d|Linear|Sequential|"
                        r"(Max|Avg)Pool[123]d")
LAYER_WORD = re.compile(rf"\b(?:{LAYER_NAME.pattern})\b")
# `a.b.Name = ...` (not `==`) and `setattr(a.b, "Name", ...)`, anywhere in a file, for `a` one of
# the file's names for torch modules
_ATTRIBUTE_ASSIGNMENT = (
    r"^[ \t]*(?P<target>(?:{names})(?:\.\w+)*)\.(?P<attr>[A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)"
    r"|\bsetattr\(\s*(?P<target2>(?:{names})(?:\.\w+)*)\s*,\s*(?:['\"](?P<attr2>\w+)['\"])?")
SHAPE_TEST = "shape-test:"  # the key prefix of conditions that compare tensor shapes
INPUT_SIZE_RE = re.compile(r"convlint:\s*input-size\s*=\s*(\d+(?:\s*x\s*\d+)*)")

Def = Union[ast.FunctionDef, ast.AsyncFunctionDef]
_NUMBERS: Dict[int, IntV] = {}  # the IntV of each small literal (values never change: one is enough)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def canonical(qualname: str) -> str:
    """``torch.nn.modules.conv.Conv2d`` -> ``torch.nn.Conv2d``."""
    if qualname.startswith("torch.nn.modules."):
        return "torch.nn." + qualname.rsplit(".", 1)[-1]
    return qualname


def dotted(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


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
    sig = getattr(fn, "_convlint_signature", None)
    if sig is not None:
        return sig
    a = fn.args
    params = list(a.posonlyargs) + list(a.args)
    defaults = [None] * (len(params) - len(a.defaults)) + list(a.defaults)
    sig = Signature(tuple(Param(p.arg, d) for p, d in zip(params, defaults)),
                    tuple(Param(p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults)),
                    a.vararg.arg if a.vararg is not None else None,
                    a.kwarg.arg if a.kwarg is not None else None)
    fn._convlint_signature = sig  # type: ignore[union-attr]
    return sig


# --- the file -----------------------------------------------------------------------------------


class FileIndex:
    """Top-level names of one file: imports (as torch qualified names), classes, functions, constants."""

    def __init__(self, module: ast.Module, module_name: Optional[str] = None, is_package: bool = False,
                 project=None, source: str = "", path: Optional[str] = None):
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

    def text_of(self, node: ast.AST) -> str:
        """The source lines ``node`` spans."""
        last = node.end_lineno  # type: ignore[attr-defined]
        return b"\n".join(self.lines()[node.lineno - 1:last]).decode("utf-8", "replace")  # type: ignore[attr-defined]

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
            elif isinstance(stmt, _DEFS):
                self.names[stmt.name] = FuncV(stmt)
                self.functions.append(stmt)
            elif isinstance(stmt, (ast.If, ast.Try)):
                # `try: from torch import nn` / `if TYPE_CHECKING:` blocks still define names
                self._index(stmt.body)
                if isinstance(stmt, ast.If):
                    self._index(stmt.orelse)
            elif not isinstance(stmt, _COMPOUND):
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
                # a library modelled by a stub, reached from a copy of the library's own files
                # (torchvision/models/x.py: `from ..ops.misc import ...`) whose top package has
                # no __init__.py beside it: the folder names say where the import leads
                by_folder = stub_relative(self.path, node.level, target)
                base = by_folder if by_folder is not None else base
        if base is None:
            return
        if any(alias.name == "*" for alias in node.names):
            if base == "torch.nn":
                self.star_torch_nn = True
            return
        for alias in node.names:
            name = alias.name
            local = alias.asname or name
            if self.project is not None and self.project.has_module(base) or base in STUB_MODULES:
                into[local] = ProjectRefV(base, name)  # a helper of another checked file, or a stub
            elif not node.level:
                into[local] = RefV(canonical(f"{base}.{name}"))

    def input_size(self, cls: ast.ClassDef) -> Optional[Tuple[int, ...]]:
        """A ``# convlint: input-size=3x32x32`` comment on the lines above the class (its decorators
        included) or on its header."""
        lines = self.lines()
        first = min([cls.lineno] + [d.lineno for d in cls.decorator_list]) - 1
        header_end = cls.body[0].lineno - 1 if cls.body else cls.lineno
        texts = [lines[i] for i in range(first, min(header_end, len(lines)))]
        above = first - 1
        while above >= 0 and (lines[above].lstrip().startswith(b"#") or not lines[above].strip()):
            texts.append(lines[above])
            above -= 1
        for raw in texts:
            text = raw.decode("utf-8", "replace")
            if "#" not in text:
                continue
            m = INPUT_SIZE_RE.search(text[text.index("#"):])
            if m:
                return tuple(int(v) for v in re.split(r"\s*x\s*", m.group(1)))
        return None


# --- paths --------------------------------------------------------------------------------------


@dataclass
class State:
    env: Dict[str, Value]
    facts: Facts
    truths: Dict[str, bool]
    self_v: Optional[SelfV] = None
    returned: Optional[Value] = None
    done: bool = False
    choices: Dict[int, bool] = field(default_factory=dict)  # `a if c else b` decided on this path
    shape_guarded: bool = False  # the path tested tensor shapes (`if out.shape == x.shape:`)
    call_results: Dict[int, Value] = field(default_factory=dict)  # helper calls already run on this path

    def fork(self) -> "State":
        env, self_v = dict(self.env), self.self_v
        if self.self_v is not None:
            # the module under construction is mutable: each path gets its own, under every name for it
            self_v = self.self_v.copy()
            env = {k: (self_v if v is self.self_v else v) for k, v in env.items()}
        return State(env, self.facts.copy(), dict(self.truths), self_v, self.returned, self.done,
                     dict(self.choices), self.shape_guarded, dict(self.call_results))


@dataclass
class Context:
    """Where the interpreter is: how deep in helpers, and which node diagnostics are anchored at."""

    depth: int = 0
    anchor: Optional[ast.AST] = None       # the call in the analysed code that built what follows
    report_adds: bool = True
    owner: str = ""                        # prefix for symbols of unbound arguments in nested calls
    built_at: Optional[ast.AST] = None     # in a module's forward: the call that built the module
    plain_call: bool = False               # a root function run as called with no arguments

    def without_adds(self) -> "Context":
        """The same place, for evaluating a test or an iterable: adds found there are not judged."""
        return Context(self.depth, self.anchor, False, self.owner, self.built_at)


def _in_owner(node_of):
    """Run the method in the file that defines the class or function it works on."""
    def decorate(method):
        def wrapper(self, *args, **kwargs):
            node = node_of(args)
            owner = self._owners.get(id(node)) if node is not None else None
            if owner is None or owner is self.index:
                return method(self, *args, **kwargs)
            with self.within(node):
                return method(self, *args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
        return wrapper
    return decorate


def _composite_class(layer) -> Optional[ast.ClassDef]:
    variants = getattr(layer, "instance", None)
    return variants[0][0].cls if variants else None


class Interpreter:
    def __init__(self, index: FileIndex, emit: Callable[[object], None]):
        self.index = index
        self.checked = index  # the file being checked (``index`` moves to another file's code while it runs)
        self.emit_event = emit
        self._owners: Dict[int, FileIndex] = {}  # class/function node -> the file that defines it
        self._constant_cache: Dict[Tuple[int, str], Value] = {}
        self._static: Dict[Tuple[int, int], Value] = {}
        self._builders: Optional[set] = None  # module-level functions that build a model of this file
        self._builder_steps = STEP_BUDGET      # what the model builders of the file may still run
        self._in_progress: set = set()
        self._code_cache: Dict[int, str] = {}
        self._havoc_nodes: Dict[int, List[ast.AST]] = {}
        self._running: List[Def] = []   # the functions being run, innermost last
        self._method_class: Dict[int, ast.ClassDef] = {}  # method node -> the class defining it
        self._registered: Dict[int, FileIndex] = {}
        self._module_calls: Dict[int, List[ast.Call]] = {}  # statement -> `self.x(name)` calls in it
        self._assignments: Dict[int, Dict[str, int]] = {}
        self._steps = 0
        self._register(index)

    # --- files ----------------------------------------------------------------------------------

    def _register(self, index: FileIndex) -> None:
        if id(index) in self._registered:
            return
        self._registered[id(index)] = index  # (kept: the id stays this index's)
        for node in index.classes + index.functions:
            self._owners[id(node)] = index
        for cls in index.classes:
            self._register_methods(cls)

    def _register_methods(self, cls: ast.ClassDef) -> None:
        owner = self._owners.get(id(cls), self.index)
        for stmt in cls.body:
            if isinstance(stmt, _DEFS):
                self._method_class[id(stmt)] = cls
                self._owners[id(stmt)] = owner  # a method runs with its own file's names

    @contextmanager
    def within(self, node: ast.AST):
        """Evaluate in the file that defines ``node`` (a helper or class of another checked file)."""
        previous = self.index
        self.index = self._owners.get(id(node), previous)
        try:
            yield
        finally:
            self.index = previous

    def resolve_project(self, ref: "ProjectRefV", depth: int = 0) -> Value:
        """``from .layers import create_conv2d``: the helper as the other file defines it."""
        project = self.index.project
        if depth > 8:
            return UNKNOWN
        stub = stub_index(ref.module) if ref.module in STUB_MODULES else None
        if stub is not None and ref.name in stub.names:
            index = stub  # a library layer convlint models (see convlint.stubs)
        elif project is not None and project.has_module(ref.module):
            index = project.index(ref.module)
        else:
            index = stub
        if index is None:
            return UNKNOWN
        self._register(index)
        value = index.names.get(ref.name)
        if isinstance(value, ProjectRefV):
            return self.resolve_project(value, depth + 1)
        if value is None:
            return UNKNOWN
        return value

    # --- public entry points --------------------------------------------------------------------

    def analyse_class(self, cls: ast.ClassDef, input_size: Optional[Tuple[int, ...]] = None) -> None:
        """Run one class: its ``__init__`` paths, then ``forward`` on each (within the step budget:
        what was found before it ran out stands, the rest stays unknown)."""
        self._steps = 0
        try:
            self._analyse_class(cls, input_size)
        except _OutOfBudget:
            pass

    def _analyse_class(self, cls: ast.ClassDef, input_size: Optional[Tuple[int, ...]] = None) -> None:
        ctx = Context()
        init = self.find_method(cls, "__init__")
        base_kind = self.class_kind(cls)
        if base_kind is None:
            return
        self_v = SelfV(cls, {}, [] if base_kind == "sequential" else None)
        start = State({}, Facts(), {}, self_v)
        if init is not None:
            states = self.run_function(init, [], {}, start, ctx, self_v, split=True)
        else:
            states = [start]
        forward = self.find_method(cls, "forward")
        if forward is None:
            return
        for st in states[:MAX_PATHS]:
            if st.facts.infeasible:
                continue
            st.self_v = st.self_v or self_v
            args = self.forward_inputs(forward, input_size)
            if input_size and args and isinstance(args[0], TensorV):
                # the input's channels are given: a fact of every path
                st.facts.add_equal(Poly.atom(f"{CHANNEL_PREFIX}{args[0].root}]"), Poly.const(input_size[0]))
            fst = State({}, st.facts, st.truths, st.self_v)
            self.run_function(forward, args, {}, fst, ctx, st.self_v, split=True, tensors=True)

    def analyse_function(self, fn: Def) -> None:
        """A module-level function on its own, for the layers it builds from its own numbers, and
        for the model it builds from a class of this file (``def resnet18(): return ResNet(BasicBlock,
        [2, 2, 2, 2])``): that model's forward is run, and its blocks' adds are judged with the numbers
        it built them from. A function that does neither has nothing to check: its callers check its
        results."""
        builds_model = self.builds_model(fn)
        if not builds_model and not LAYER_WORD.search(self.index.text_of(fn)):
            return
        # half a class's budget: what such a function builds beyond its own layers (a whole model
        # from a config) is checked by that model's and its blocks' own classes; the model builders
        # of a file (resnet18, resnet34, ..., often dozens) share one class's budget
        budget = STEP_BUDGET // 2
        if builds_model:
            budget = min(budget, self._builder_steps)
            if budget <= 0:
                return
        self._steps = STEP_BUDGET - budget
        try:
            # a model builder is checked as `resnet18()` builds: its `*args` and `**kwargs` empty
            ends = self.run_function(fn, [], {}, State({}, Facts(), {}), Context(plain_call=builds_model), None,
                                     split=True)
            if builds_model:
                for end in ends[:MAX_PATHS]:
                    model = end.returned
                    if isinstance(model, LayerV) and isinstance(model.layer, L.Composite):
                        root = f"{fn.name}()"
                        x = TensorV(root, Poly.atom(f"{CHANNEL_PREFIX}{root}]"), None, rank_open=True)
                        self.run_composite(model.layer, x, end, Context())
        except _OutOfBudget:
            pass
        if builds_model:
            self._builder_steps -= self._steps - (STEP_BUDGET - budget)

    def builds_model(self, fn: Def) -> bool:
        """Whether ``fn`` calls a module class of this file by its name, or a function of this file
        that does (torchvision's ``resnet18()`` calls ``_resnet(BasicBlock, ...)``, which calls ``ResNet``)."""
        if self._builders is None:
            classes = {cls.name for cls in self.index.classes if self.class_kind(cls) is not None}
            functions = {f.name: f for f in self.index.functions}
            calls = {f.name: {n.func.id for stmt in f.body for n in ast.walk(stmt)
                              if type(n) is ast.Call and type(n.func) is ast.Name}
                     for f in self.index.functions}
            builders = {name for name, called in calls.items() if called & classes}
            grown = True
            while grown:  # the functions that reach a builder through this file's functions
                before = len(builders)
                builders |= {name for name, called in calls.items() if called & builders}
                grown = len(builders) > before
            self._builders = {id(functions[name]) for name in builders}
        return id(fn) in self._builders

    def analyse_statements(self, stmts: Sequence[ast.stmt]) -> None:
        self._steps = 0
        try:
            self.exec_block(stmts, [State({}, Facts(), {})], Context())
        except _OutOfBudget:
            pass

    def forward_inputs(self, forward: Def, input_size: Optional[Tuple[int, ...]]) -> List[Value]:
        args: List[Value] = []
        for i, p in enumerate(signature(forward).positional[1:]):
            if p.default is not None:
                break
            root = p.name
            channels = Poly.atom(f"{CHANNEL_PREFIX}{root}]")
            known: Tuple[Tuple[str, int], ...] = ()
            if input_size and i == 0:
                spatial = input_size[1:]
                known = tuple((f"{root}#{k}", spatial[-k]) for k in range(1, len(spatial) + 1))
            args.append(TensorV(root, channels, None, (), False, known, rank_open=True))
        return args

    # --- classes --------------------------------------------------------------------------------

    @_in_owner(lambda args: args[0])
    def class_kind(self, cls: ast.ClassDef, seen: Tuple[int, ...] = ()) -> Optional[str]:
        """"module" or "sequential" for torch module classes; None for anything else."""
        if id(cls) in seen:
            return None
        for base in cls.bases:
            value = self.eval_static(base)
            if isinstance(value, RefV):
                if value.qualname in ("torch.nn.Module",):
                    return "module"
                if value.qualname == "torch.nn.Sequential":
                    return "sequential"
            elif isinstance(value, ClassV):
                kind = self.class_kind(value.node, seen + (id(cls),))
                if kind is not None:
                    return kind
        return None

    def torch_layer_base(self, cls: ast.ClassDef, depth: int = 0) -> Optional[str]:
        """The torch layer a class only renames (no __init__, forward or other method of its own)."""
        if depth > 8 or any(isinstance(stmt, _DEFS) for stmt in cls.body) or len(cls.bases) != 1:
            return None
        with self.within(cls):
            base = self.eval_static(cls.bases[0])
        if isinstance(base, RefV) and _is_layer_class(base.qualname) and base.qualname not in _TORCH_BASES:
            return base.qualname
        if isinstance(base, ClassV):
            return self.torch_layer_base(base.node, depth + 1)
        return None

    @_in_owner(lambda args: args[0])
    def same_file_bases(self, cls: ast.ClassDef) -> List[ast.ClassDef]:
        out = []
        for base in cls.bases:
            value = self.eval_static(base)
            if isinstance(value, ClassV) and value.node is not cls:
                out.append(value.node)
        return out

    @_in_owner(lambda args: args[0])
    def find_method(self, cls: ast.ClassDef, name: str, depth: int = 0) -> Optional[Def]:
        if depth > 10:
            return None
        for stmt in cls.body:
            if isinstance(stmt, _DEFS) and stmt.name == name:
                return stmt
        for base in self.same_file_bases(cls):
            found = self.find_method(base, name, depth + 1)
            if found is not None:
                return found
        return None

    @_in_owner(lambda args: args[0])
    def class_attribute(self, cls: ast.ClassDef, name: str, depth: int = 0) -> Value:
        if depth > 10:
            return UNKNOWN
        for stmt in cls.body:
            targets: List[ast.expr] = []
            if isinstance(stmt, ast.Assign):
                targets = stmt.targets
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets = [stmt.target]
            elif isinstance(stmt, _DEFS) and stmt.name == name:
                return FuncV(stmt)
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return self.eval_static(stmt.value)  # type: ignore[union-attr,arg-type]
        for base in self.same_file_bases(cls):
            found = self.class_attribute(base, name, depth + 1)
            if found is not UNKNOWN:
                return found
        return UNKNOWN

    def eval_static(self, expr: ast.expr) -> Value:
        """An expression at module level (bases, defaults, class attributes); a value that cannot
        change (a number, a name of a class) is worked out once."""
        key = (id(self.index), id(expr))
        value = self._static.get(key)
        if value is None:
            value = self.eval(expr, State({}, Facts(), {}), Context(report_adds=False, anchor=expr))
            if _unchanging(value):
                self._static[key] = value
        return value

    # --- functions ------------------------------------------------------------------------------

    def bind(self, fn: Def, args: Sequence[Value], kwargs: Dict[str, Value],
             skip_self: bool, ctx: Context) -> Optional[Dict[str, Value]]:
        sig = signature(fn)
        params = sig.positional[1:] if skip_self else sig.positional
        env: Dict[str, Value] = {}
        for i, p in enumerate(params):
            name = p.name
            if i < len(args):
                env[name] = args[i]
            elif name in kwargs:
                env[name] = kwargs[name]
            else:
                env[name] = self.unbound(p, ctx)
        for p in sig.keyword_only:
            env[p.name] = kwargs[p.name] if p.name in kwargs else self.unbound(p, ctx)
        # inside a call every argument is known (a call with an unknown `*a`/`**kw` is not followed):
        # `*args` and `**kwargs` hold what the named parameters did not take; at the top of an
        # analysis they are whatever a caller passes
        called = ctx.depth > 0 or ctx.plain_call
        if sig.star is not None:
            env[sig.star] = TupleV(tuple(args[len(params):])) if called else UNKNOWN
        if sig.star_star is not None:
            named = {p.name for p in params} | {p.name for p in sig.keyword_only}
            env[sig.star_star] = DictV({k: v for k, v in kwargs.items() if k not in named}) if called else UNKNOWN
        return env

    def unbound(self, p: Param, ctx: Context) -> Value:
        """An argument the call did not give. Inside a call its default is what the code runs with.
        At the top of an analysis every argument is a symbol, except a layer class given as default
        (``norm_layer=nn.BatchNorm2d``): the module is checked as it is built by default; and an
        optional part that is None by default (``aa_layer=None``, ``downsample=None``) is left out:
        as a symbol its None path was judged anyway, and its other paths (an unknown part) fork
        without end and judge little."""
        if p.default is not None:
            if ctx.depth > 0:
                return self.eval_static(p.default)
            default = self.eval_static(p.default)
            if isinstance(default, RefV) and _is_layer_class(default.qualname) or isinstance(default, ClassV) \
                    or default is NONE:
                return default
        return ParamV(ctx.owner + p.name)

    def run_function(self, fn: Def, args: Sequence[Value], kwargs: Dict[str, Value],
                     caller: State, ctx: Context, self_v: Optional[SelfV], split: bool,
                     tensors: bool = False, closure: Optional[Dict[str, Value]] = None) -> List[State]:
        """Run ``fn``'s body on a copy of the caller's facts; returns its end states."""
        env = self.bind(fn, args, kwargs, skip_self=self_v is not None or _is_method(fn), ctx=ctx)
        if env is None:
            return []
        closure = closure if closure is not None else (self_v.closure if self_v is not None else None)
        if closure:
            env = {**closure, **env}  # a nested def reads its enclosing function's variables
        if self_v is not None:
            params = signature(fn).positional
            if params:
                env[params[0].name] = self_v
        start = State(env, caller.facts.copy() if not split else caller.facts, dict(caller.truths), self_v)
        self._running.append(fn)
        try:
            states = self.exec_block(fn.body, [start], ctx)
        finally:
            self._running.pop()
        return [s for s in states if not s.facts.infeasible]

    def closure_of(self, st: State) -> Optional[Dict[str, Value]]:
        """What a def inside the running function sees of its variables. Python reads them when the
        nested code runs, not when it is defined: a variable bound once is known now, one bound again
        (or later) is unknown; never the global of the same name."""
        if not self._running:
            return None
        fn = self._running[-1]
        counts = self._assignments.get(id(fn))
        if counts is None:
            counts = self._assignments[id(fn)] = _assignment_counts(fn)
        return {name: st.env[name] if n == 1 and name in st.env else UNKNOWN for name, n in counts.items()}

    def call_function(self, fn: FuncV, args: Sequence[Value], kwargs: Dict[str, Value], st: State,
                      ctx: Context, node: ast.Call) -> Value:
        """A helper or a method called from an expression: its paths merged into one value."""
        ends = self.function_ends(fn, args, kwargs, st, ctx, node)
        return UNKNOWN if ends is None else self.merge_into(st, ends)

    @_in_owner(lambda args: args[0].node)
    def function_ends(self, fn: FuncV, args: Sequence[Value], kwargs: Dict[str, Value], st: State,
                      ctx: Context, node: ast.Call) -> Optional[List[State]]:
        """The end states of a call's body (None: not followed)."""
        if ctx.depth >= MAX_DEPTH or id(fn.node) in self._in_progress:
            return None
        if fn.bound_self is None and _is_method(fn.node):
            return None
        inner = Context(ctx.depth + 1, ctx.anchor, ctx.report_adds, ctx.owner, ctx.built_at)
        if fn.bound_self is None and ctx.anchor is None:
            inner.anchor = node   # layers a module-level helper builds are reported at this call
            inner.report_adds = False
        if fn.bound_self is None:
            inner.owner = f"{fn.node.name}."

        self._in_progress.add(id(fn.node))
        try:
            return self.run_function(fn.node, args, kwargs, st, inner, fn.bound_self, split=False,
                                     closure=fn.closure)
        finally:
            self._in_progress.discard(id(fn.node))

    def merge_into(self, st: State, ends: List[State], same_self: bool = True) -> Value:
        """The value of a call whose body ended in ``ends``; the caller's path learns what they all
        agree on (one end: everything; several: the channel counts they found for the inputs)."""
        ends = [e for e in ends if not e.facts.infeasible]
        if not ends:
            return UNKNOWN
        results = [NONE if e.returned is None else e.returned for e in ends]
        if len(ends) == 1:
            st.facts = ends[0].facts
            if same_self:
                st.truths = ends[0].truths
                if st.self_v is not None and ends[0].self_v is not None:
                    st.self_v.attrs.update(ends[0].self_v.attrs)
                    st.self_v.seq_layers = ends[0].self_v.seq_layers
            return results[0]
        for atom, value in ends[0].facts.subst.items():
            if atom.startswith(CHANNEL_PREFIX) and atom not in st.facts.subst and \
                    all(e.facts.subst.get(atom) == value for e in ends[1:]):
                st.facts.names.setdefault(atom, ends[0].facts.names.get(atom, value))
                st.facts.add_equal(Poly.atom(atom), value)
        if not same_self:
            pass
        elif st.self_v is not None:
            keys = set().union(*(e.self_v.attrs.keys() for e in ends if e.self_v is not None))
            for k in keys:
                vals = [e.self_v.attrs.get(k, UNKNOWN) if e.self_v else UNKNOWN for e in ends]
                st.self_v.attrs[k] = vals[0] if all(v == vals[0] for v in vals) else UNKNOWN
        first = results[0]
        if all(r == first for r in results):
            return first
        if all(isinstance(r, TensorV) for r in results):
            return _join_tensors(results, ends)  # type: ignore[arg-type]
        return UNKNOWN

    # --- statements -----------------------------------------------------------------------------

    def exec_block(self, stmts: Sequence[ast.stmt], states: List[State], ctx: Context) -> List[State]:
        for stmt in stmts:
            if len(states) == 1:  # the common case, without the lists below
                if states[0].done:
                    break
                states = self.exec_stmt(stmt, states, ctx)
                continue
            live = [s for s in states if not s.done]
            if not live:
                break
            finished = [s for s in states if s.done]
            states = finished + self.exec_stmt(stmt, live, ctx)
            if len(states) > MAX_PATHS:
                states = states[:MAX_PATHS]
        return states

    def exec_stmt(self, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
        self._steps += len(states)
        if self._steps > STEP_BUDGET:
            raise _OutOfBudget
        t = type(stmt)
        if t in _SIMPLE:
            if t is ast.Expr and type(stmt.value) is ast.Call and all(  # type: ignore[attr-defined]
                    self.call_changes_nothing(stmt.value, st, ctx) for st in states):  # type: ignore[attr-defined]
                return states
            states = self.split_on_call(stmt, self.split_on_ifexp(stmt, states, ctx), ctx)
            return [st for st in states if self.exec_small(stmt, st, ctx)]
        if t is ast.If:
            return self.exec_if(stmt, states, ctx)  # type: ignore[arg-type]
        if t is ast.For:
            return self.exec_for(stmt, states, ctx)  # type: ignore[arg-type]
        if t is ast.With or t is ast.AsyncWith:
            return self.exec_block(stmt.body, states, ctx)  # type: ignore[attr-defined]
        if t is ast.Try:
            if stmt.handlers:  # type: ignore[attr-defined]  # the code catches what its body may raise:
                ctx = ctx.without_adds()                     # its adds are not ours to judge
            return self.exec_block(stmt.body, states, ctx)  # type: ignore[attr-defined]
        if t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            for st in states:
                st.env[stmt.name] = FuncV(stmt, closure=self.closure_of(st))  # type: ignore[attr-defined]
            return states
        if t is ast.ClassDef:
            self._register_methods(stmt)  # type: ignore[arg-type]
            for st in states:
                st.env[stmt.name] = ClassV(stmt, closure=self.closure_of(st))  # type: ignore[attr-defined]
            return states
        for st in states:  # `while`, `match`, `async for`: what they may set is forgotten
            self.havoc(stmt, st)
        return states

    def call_changes_nothing(self, call: ast.Call, st: State, ctx: Context) -> bool:
        """``trunc_normal_(self.pos_embed, std=.02)``, ``self.reset_parameters()``: a call whose result
        is dropped, of a function of the analysed code that sets no attribute of ``self`` and calls
        none of its other methods, given only plain values (names, numbers: no tensor, module, list or
        dict it could change). Running it could only change what convlint does not model, so it is
        not run (weight initialisation is a tenth of all the steps a model's analysis takes)."""
        if not _plain(call.func) or not all(_plain(a) for a in call.args) or \
                not all(k.arg is not None and _plain(k.value) for k in call.keywords):
            return False  # (evaluating a call here, then again if this one is run, would run it twice)
        func = self.eval(call.func, st, ctx.without_adds())
        if not isinstance(func, FuncV) or not _changes_nothing(func.node):
            return False
        values = [self.eval(a, st, ctx.without_adds()) for a in call.args] + \
            [self.eval(k.value, st, ctx.without_adds()) for k in call.keywords]
        return not any(isinstance(v, (TensorV, LayerV, DictV, TupleV, NamedLayersV, SelfV)) for v in values)

    def split_on_call(self, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
        """``self.aa = create_aa(aa_layer, ...)``: a module-level helper whose paths give different
        results forks the caller, each fork with the facts of the helper's path (``aa_layer`` falsy:
        an ``nn.Identity``), instead of merging them into an unknown."""
        value = getattr(stmt, "value", None)
        if type(value) is ast.Call:
            return self.split_one_call(value, states, ctx, helpers=True)
        nested = self._module_calls.get(id(stmt))
        if nested is None:
            nested = self._module_calls[id(stmt)] = _nested_module_calls(value)
        for call in nested:  # `self.conv_1x1(x) + self.conv_kxk(x)`: each module call, in order
            states = self.split_one_call(call, states, ctx, helpers=False)
        return states

    def split_one_call(self, value: ast.Call, states: List[State], ctx: Context, helpers: bool) -> List[State]:
        out = []
        for st in states:
            func = self.eval(value.func, st, ctx)
            module = isinstance(func, LayerV) and isinstance(func.layer, L.Composite)
            if not module and (not helpers or not isinstance(func, FuncV) or func.bound_self is not None):
                out.append(st)
                continue
            args, kwargs, starred = self.call_arguments(value, st, ctx)
            if module:
                # `x = self.block(x)`: a module whose variants give different results forks the caller
                if starred or not args or not isinstance(args[0], TensorV):
                    out.append(st)
                    continue
                ends = self.composite_ends(func.layer, args[0], st, ctx, args[1:], kwargs)  # type: ignore
            else:
                ends = None if starred else self.function_ends(func, args, kwargs, st, ctx, value)
            ends = [e for e in ends or () if not e.facts.infeasible]
            results = [NONE if e.returned is None else e.returned for e in ends]
            if module:
                results = [self.module_output(func.layer, args[0], r) for r in results]  # type: ignore
            if len(ends) <= 1 or all(r == results[0] for r in results):
                st.call_results[id(value)] = self.composite_result(func.layer, args[0], st, ends) if module \
                    else self.merge_into(st, ends)  # type: ignore[union-attr]
                out.append(st)
                continue
            # one path per distinct known result (with the facts of a helper path that gives it); the
            # unknown results share one path; too many results are not worth the paths
            distinct: List[Tuple[Value, State]] = []
            for end, result in zip(ends, results):
                if result is not UNKNOWN and not any(r == result for r, _ in distinct):
                    distinct.append((result, end))
            if len(distinct) > (1 if module else MAX_SPLIT):
                # a module's variants that give different known results stay merged: which one the
                # caller built may be fixed by conditions convlint cannot read (`assert
                # self.pool.feat_mult() == 1`); only an unknown variant gets a path of its own
                st.call_results[id(value)] = self.composite_result(func.layer, args[0], st, ends) if module \
                    else UNKNOWN  # type: ignore[union-attr]
                out.append(st)
                continue
            for result, end in distinct:
                path = st.fork()
                path.facts = end.facts.copy()
                if not module:  # a module's own conditions are about its own variables, not the caller's
                    path.truths = {**path.truths, **end.truths}
                path.call_results[id(value)] = result
                out.append(path)
            if any(r is UNKNOWN for r in results):
                st.call_results[id(value)] = UNKNOWN
                out.append(st)
        return out

    def split_on_ifexp(self, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
        """``x = a if cond else b`` (or ``return ...``) with an undecided ``cond`` forks like an ``if``."""
        value = getattr(stmt, "value", None)
        t = type(value)
        if t is ast.BoolOp and (type(stmt) is ast.Assign or type(stmt) is ast.AnnAssign):
            test = value.values[0]  # type: ignore[union-attr]  # `a or b` is `a if a else b`;
        elif t is ast.IfExp:                                    # `a and b` is `b if a else a`
            test = value.test  # type: ignore[union-attr]
        else:
            return states
        out = []
        for st in states:
            tested = self.eval(test, st, ctx.without_adds())
            cond = self.to_cond(tested, test)
            verdict = decide(cond, st)
            if verdict is not None:
                st.choices[id(value)] = verdict
                out.append(st)
                continue
            other = st.fork()
            # `layers = layers or LayerFn()` on an argument nobody gave: the default path first, so
            # that it is among the paths kept when there are too many
            order = ((other, False), (st, True)) if isinstance(tested, ParamV) else ((st, True), (other, False))
            for path, truth in order:
                assume(cond, truth, path)
                path.choices[id(value)] = truth
                if not path.facts.infeasible:
                    out.append(path)
        return out

    def exec_for(self, stmt: ast.For, states: List[State], ctx: Context) -> List[State]:
        """A loop over a known, short sequence (a list of layers, a ModuleList, ``range(4)``) runs once
        per item; any other loop forgets what its body sets."""
        out: List[State] = []
        simple = not stmt.orelse and not self.loop_nodes(stmt)
        for st in states:
            items = self.loop_items(stmt.iter, st, ctx) if simple else None
            if items is None:
                self.havoc(stmt, st)
                out.append(st)
                continue
            paths = [st]
            for item in items:
                live = [p for p in paths if not p.done]
                for p in live:
                    self.assign(stmt.target, item, p)
                paths = [p for p in paths if p.done] + self.exec_block(stmt.body, live, ctx)
                if len(paths) > MAX_PATHS:
                    paths = paths[:MAX_PATHS]
            out.extend(paths)
        return out

    def loop_nodes(self, stmt: ast.For) -> List[ast.AST]:
        """The statements that leave a loop's body early (a loop with any is not unrolled)."""
        nodes = self._havoc_nodes.get(-id(stmt))
        if nodes is None:
            nodes = self._havoc_nodes[-id(stmt)] = [n for s in stmt.body for n in ast.walk(s)
                                                    if isinstance(n, _LEAVES_LOOP)]
        return nodes

    def loop_items(self, node: ast.expr, st: State, ctx: Context) -> Optional[Sequence[Value]]:
        value = self.eval(node, st, ctx.without_adds())
        items: Optional[Sequence[Value]] = None
        if isinstance(value, TupleV):
            items = value.items
        elif isinstance(value, LayerV) and isinstance(value.layer, (L.ModuleList, L.Sequential)):
            layers = value.layer.items if isinstance(value.layer, L.ModuleList) else value.layer.layers
            items = [LayerV(x) for x in layers]
        elif isinstance(value, _Range):
            items = [IntV(Poly.const(i)) for i in range(*value.bounds)]
        return items if items is not None and len(items) <= MAX_UNROLL else None

    def exec_if(self, stmt: ast.If, states: List[State], ctx: Context) -> List[State]:
        out: List[State] = []
        for st in states:
            cond = self.to_cond(self.eval(stmt.test, st, ctx), stmt.test)
            verdict = decide(cond, st)
            branches = []
            if verdict is not False:
                t = st if verdict is True else st.fork()
                if verdict is None:
                    assume(cond, True, t)
                branches.append((t, stmt.body))
            if verdict is not True:
                f = st
                if verdict is None:
                    assume(cond, False, f)
                orelse = stmt.orelse
                if len(orelse) == 1 and type(orelse[0]) is ast.If:  # `elif`
                    out.extend(self.exec_if(orelse[0], [f], ctx) if not f.facts.infeasible else [])
                    f = None  # type: ignore[assignment]
                else:
                    branches.append((f, orelse))
            for bst, body in branches:
                if bst is None or bst.facts.infeasible:
                    continue
                out.extend(self.exec_block(body, [bst], ctx))
        return out

    def exec_small(self, small: ast.stmt, st: State, ctx: Context) -> bool:
        """Run one simple statement; False when the path ends in an exception."""
        t = type(small)
        if t is ast.Assign:
            value = self.eval(small.value, st, ctx)  # type: ignore[attr-defined]
            for target in small.targets:  # type: ignore[attr-defined]
                self.assign(target, value, st)
        elif t is ast.AnnAssign:
            if small.value is not None:  # type: ignore[attr-defined]
                self.assign(small.target, self.eval(small.value, st, ctx), st)  # type: ignore[attr-defined]
        elif t is ast.AugAssign:
            left = self.eval(small.target, st, ctx)  # type: ignore[attr-defined]
            right = self.eval(small.value, st, ctx)  # type: ignore[attr-defined]
            op = _BIN_OPS.get(type(small.op))  # type: ignore[attr-defined]
            value = self.binop(op, left, right, small, st, ctx) if op else UNKNOWN
            self.assign(small.target, value, st)  # type: ignore[attr-defined]
        elif t is ast.Expr:
            value = small.value  # type: ignore[attr-defined]
            if not (type(value) is ast.Constant and isinstance(value.value, str)):  # docstrings
                self.eval(value, st, ctx)
        elif t is ast.Return:
            value = small.value  # type: ignore[attr-defined]
            st.returned = NONE if value is None else self.eval(value, st, ctx)
            st.done = True
        elif t is ast.Raise:
            return False
        elif t is ast.Assert:
            test = small.test  # type: ignore[attr-defined]
            cond = self.to_cond(self.eval(test, st, ctx), test)
            if decide(cond, st) is False:
                return False
            assume(cond, True, st)
            return not st.facts.infeasible
        elif t is ast.Import or t is ast.ImportFrom:
            self.index.add_import(small, st.env)  # type: ignore[arg-type]
        elif t is ast.Delete:
            for target in small.targets:  # type: ignore[attr-defined]
                for t in _targets(target):
                    if isinstance(t, ast.Subscript):
                        self.replace_item(t, None, st)
                    elif isinstance(t, ast.Name):
                        st.env.pop(t.id, None)
                    else:
                        self.assign(t, UNKNOWN, st)
        return True

    def assign(self, target: ast.expr, value: Value, st: State) -> None:
        t = type(target)
        if t is ast.Name:
            st.env[target.id] = value  # type: ignore[attr-defined]
        elif t is ast.Attribute:
            base = self.eval(target.value, st, Context(report_adds=False))  # type: ignore[attr-defined]
            if isinstance(base, SelfV):
                self.assign_self(base, target.attr, value)  # type: ignore[attr-defined]
        elif t is ast.Subscript:
            self.replace_item(target, value, st)  # type: ignore[arg-type]
        elif t is ast.Tuple or t is ast.List:
            elements = target.elts  # type: ignore[attr-defined]
            if isinstance(value, ShapeV):  # `b, c, h, w = x.shape`
                value = TupleV(tuple(self.tensor_size(value.tensor, k) for k in range(len(elements))))
            items = value.items if isinstance(value, TupleV) and len(value.items) == len(elements) else None
            for i, el in enumerate(elements):
                if type(el) is ast.Starred:
                    items = None
                    self.assign(el.value, UNKNOWN, st)
                    continue
                self.assign(el, items[i] if items else UNKNOWN, st)
        elif t is ast.Starred:
            self.assign(target.value, UNKNOWN, st)  # type: ignore[attr-defined]

    def assign_self(self, base: SelfV, name: str, value: Value) -> None:
        if base.seq_layers is not None and isinstance(value, LayerV):
            # an nn.Sequential subclass runs its registered modules in the order they were set
            previous = base.attrs.get(name)
            if isinstance(previous, LayerV) and previous.layer in base.seq_layers:
                base.seq_layers[base.seq_layers.index(previous.layer)] = value.layer
            else:
                base.seq_layers.append(value.layer)
        base.attrs[name] = value

    def replace_item(self, target: ast.Subscript, value: Optional[Value], st: State) -> None:
        """``layers[3] = conv`` (or ``del layers[-1]`` with ``value`` None) on a list or a Sequential;
        anything else forgets the container."""
        base_node = target.value
        if not isinstance(base_node, (ast.Name, ast.Attribute)):
            return
        ctx = Context(report_adds=False)
        base = self.eval(base_node, st, ctx)
        new: Value = UNKNOWN
        index = _index_of(target)
        if isinstance(base, DictV) and index is not None:
            key = self.eval(index, st, ctx)
            if isinstance(key, StrV):  # `kw["padding"] = 1`, `del kw["act"]`
                items = dict(base.items)
                if value is None:
                    items.pop(key.text, None)
                else:
                    items[key.text] = value
                new = DictV(items)
            self.assign(base_node, new, st)
            return
        if isinstance(base, NamedLayersV) and base.keys is not None and value is not None and index is not None:
            key = self.eval(index, st, ctx)
            if isinstance(key, StrV):  # `layers["conv"] = ...` on an OrderedDict: in insertion order
                keys, items = list(base.keys), list(base.items)
                if key.text in keys:
                    items[keys.index(key.text)] = value
                else:
                    keys.append(key.text)
                    items.append(value)
                new = NamedLayersV(tuple(items), tuple(keys))
            self.assign(base_node, new, st)
            return
        if index is not None:
            k = L.as_poly(self.eval(index, st, ctx))
            items = base.items if isinstance(base, TupleV) else (
                base.layer.layers if isinstance(base, LayerV) and isinstance(base.layer, L.Sequential) else None)
            if items is not None and k is not None and k.value is not None and -len(items) <= k.value < len(items):
                new_items = list(items)
                if value is None:
                    del new_items[k.value]
                elif isinstance(base, TupleV):
                    new_items[k.value] = value
                else:
                    new_items[k.value] = value.layer if isinstance(value, LayerV) else L.Opaque(target)
                new = TupleV(tuple(new_items)) if isinstance(base, TupleV) else \
                    LayerV(L.Sequential(base.layer.node, new_items))  # type: ignore[union-attr]
        self.assign(base_node, new, st)

    def havoc(self, stmt: ast.AST, st: State) -> None:
        """Forget every name and ``self.`` attribute a loop (or other unmodelled statement) may set."""
        nodes = self._havoc_nodes.get(id(stmt))
        if nodes is None:
            nodes = self._havoc_nodes[id(stmt)] = [n for n in ast.walk(stmt) if isinstance(n, _HAVOC_KINDS)]
        for node in nodes:
            targets: Sequence[ast.expr] = ()
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
                targets = (node.target,)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                targets = (node.optional_vars,)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                recv = node.func.value
                if isinstance(recv, ast.Name) and recv.id in st.env and not isinstance(st.env[recv.id], SelfV):
                    st.env[recv.id] = UNKNOWN      # `layers.append(...)` changes `layers`
                elif isinstance(recv, ast.Name) and isinstance(st.env.get(recv.id), SelfV):
                    sv = st.env[recv.id]
                    if node.func.attr in ("add_module", "register_module"):
                        sv.seq_layers = None          # type: ignore[union-attr]
                        sv.attrs.clear()              # type: ignore[union-attr]
                        sv.complete = False           # type: ignore[union-attr]
                elif isinstance(recv, ast.Attribute) and isinstance(recv.value, ast.Name) and \
                        isinstance(st.env.get(recv.value.id), SelfV):
                    st.env[recv.value.id].attrs[recv.attr] = UNKNOWN  # type: ignore[union-attr]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                if st.self_v is not None:
                    st.self_v.attrs.clear()
                    st.self_v.complete = False
            for target in targets:
                for t in _targets(target):
                    if isinstance(t, ast.Name):
                        st.env[t.id] = UNKNOWN
                    elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and \
                            isinstance(st.env.get(t.value.id), SelfV):
                        st.env[t.value.id].attrs[t.attr] = UNKNOWN  # type: ignore[union-attr]

    # --- expressions ----------------------------------------------------------------------------

    def code(self, node: ast.AST) -> str:
        key = id(node)
        text = self._code_cache.get(key)
        if text is None:  # (unparsed, not read from the file: the node may be another file's)
            text = self._code_cache[key] = ast.unparse(node)
        return text

    def lookup(self, name: str, st: State) -> Value:
        if name in st.env:
            return st.env[name]
        if name in self.index.names:
            value = self.index.names[name]
            return self.resolve_project(value) if isinstance(value, ProjectRefV) else value
        if name in self.index.constants:
            key = (id(self.index), name)
            if key not in self._constant_cache:
                if key in self._in_progress:
                    return UNKNOWN
                self._in_progress.add(key)
                try:
                    self._constant_cache[key] = self.eval_static(self.index.constants[name])
                finally:
                    self._in_progress.discard(key)
            return self._constant_cache[key]
        if name == "True":
            return BoolV(TRUE)
        if name == "False":
            return BoolV(FALSE)
        if name == "None":
            return NONE
        if self.index.star_torch_nn:
            return RefV(f"torch.nn.{name}")
        if name in _BUILTINS:
            return RefV(f"builtins.{name}")
        return UNKNOWN

    def eval(self, node: ast.expr, st: State, ctx: Context) -> Value:
        t = type(node)  # exact types, the commonest first: this is the interpreter's hottest path
        if t is ast.Name:
            return self.lookup(node.id, st)  # type: ignore[attr-defined]
        if t is ast.Attribute:
            return self.attribute(self.eval(node.value, st, ctx), node.attr, st)  # type: ignore[attr-defined]
        if t is ast.Call:
            return self.call(node, st, ctx)  # type: ignore[arg-type]
        if t is ast.Constant:
            value = node.value  # type: ignore[attr-defined]
            kind = type(value)
            if kind is int:
                number = _NUMBERS.get(value)
                if number is None:
                    number = IntV(Poly.const(value))
                    if -64 <= value <= 4096:
                        _NUMBERS[value] = number
                return number
            if kind is str:
                return StrV(value)
            if kind is bool:
                return BoolV(TRUE if value else FALSE)
            if value is None:
                return NONE
            return UNKNOWN
        if t is ast.BinOp:
            op = _BIN_OPS.get(type(node.op))  # type: ignore[attr-defined]
            if op is None:
                return UNKNOWN
            left, right = node.left, node.right  # type: ignore[attr-defined]
            return self.binop(op, self.eval(left, st, ctx), self.eval(right, st, ctx), node, st, ctx)
        if t is ast.UnaryOp:
            operand = node.operand  # type: ignore[attr-defined]
            value = self.eval(operand, st, ctx)
            op_type = type(node.op)  # type: ignore[attr-defined]
            if op_type is ast.Not:
                return BoolV(NotC(self.to_cond(value, operand)))
            if op_type is ast.USub:
                p = L.as_poly(value)
                return IntV(-p) if p is not None else (value if isinstance(value, TensorV) else UNKNOWN)
            if op_type is ast.UAdd:
                return value
            return UNKNOWN
        if t is ast.BoolOp:
            values = node.values  # type: ignore[attr-defined]
            is_or = type(node.op) is ast.Or  # type: ignore[attr-defined]
            if id(node) in st.choices:  # a value `a or b` whose `a` this path decided
                if st.choices[id(node)] == is_or:
                    return self.eval(values[0], st, ctx)
                return self.eval(values[1] if len(values) == 2 else _rest_of(node), st, ctx)  # type: ignore[arg-type]
            parts = tuple(self.to_cond(self.eval(v, st, ctx), v) for v in values)
            return BoolV(OrC(parts) if is_or else AndC(parts))
        if t is ast.Compare:
            return BoolV(self.comparison(node, st, ctx))  # type: ignore[arg-type]
        if t is ast.Tuple or t is ast.List:
            items = []
            for el in node.elts:  # type: ignore[attr-defined]
                if type(el) is ast.Starred:
                    inner = self.eval(el.value, st, ctx)
                    if isinstance(inner, TupleV):
                        items.extend(inner.items)
                        continue
                    return UNKNOWN
                items.append(self.eval(el, st, ctx))
            return TupleV(tuple(items))
        if t is ast.Subscript:
            return self.subscript(node, st, ctx)  # type: ignore[arg-type]
        if t is ast.IfExp:
            if id(node) in st.choices:
                chosen = node.body if st.choices[id(node)] else node.orelse  # type: ignore[attr-defined]
                return self.eval(chosen, st, ctx)
            test = node.test  # type: ignore[attr-defined]
            cond = self.to_cond(self.eval(test, st, ctx), test)
            verdict = decide(cond, st)
            if verdict is True:
                return self.eval(node.body, st, ctx)  # type: ignore[attr-defined]
            if verdict is False:
                return self.eval(node.orelse, st, ctx)  # type: ignore[attr-defined]
            a, b = self.eval(node.body, st, ctx), self.eval(node.orelse, st, ctx)  # type: ignore[attr-defined]
            return a if a == b else UNKNOWN
        if t is ast.NamedExpr:
            value = self.eval(node.value, st, ctx)  # type: ignore[attr-defined]
            self.assign(node.target, value, st)  # type: ignore[attr-defined]
            return value
        if t is ast.ListComp or t is ast.GeneratorExp:
            return self.comprehension(node, st, ctx)  # type: ignore[arg-type]
        if t is ast.Dict:
            items: Dict[str, Value] = {}
            for key_node, value_node in zip(node.keys, node.values):  # type: ignore[attr-defined]
                if key_node is None:  # `{**other}`
                    return UNKNOWN
                key = self.eval(key_node, st, ctx)
                if not isinstance(key, StrV):
                    return UNKNOWN
                items[key.text] = self.eval(value_node, st, ctx)
            return DictV(items)
        return UNKNOWN

    def comprehension(self, node: Union[ast.ListComp, ast.GeneratorExp], st: State, ctx: Context) -> Value:
        """``[Block(64) for _ in range(4)]``: one ``for`` over a known, short sequence, with no ``if``,
        is the list of its items (its variable is the comprehension's own, as in Python 3)."""
        if len(node.generators) != 1:
            return UNKNOWN
        loop = node.generators[0]
        if loop.ifs or loop.is_async:
            return UNKNOWN
        items = self.loop_items(loop.iter, st, ctx)
        if items is None:
            return UNKNOWN
        names = [t.id for t in _targets(loop.target) if isinstance(t, ast.Name)]
        saved = {name: st.env[name] for name in names if name in st.env}
        values = []
        try:
            for item in items:
                self.assign(loop.target, item, st)
                values.append(self.eval(node.elt, st, ctx))
        finally:
            for name in names:
                if name in saved:
                    st.env[name] = saved[name]
                else:
                    st.env.pop(name, None)
        return TupleV(tuple(values))

    def attribute(self, base: Value, attr: str, st: State) -> Value:
        if isinstance(base, RefV):
            return RefV(canonical(f"{base.qualname}.{attr}"))
        if isinstance(base, SelfV):
            if attr in base.attrs:
                return base.attrs[attr]
            if attr == "__class__":
                return ClassV(base.cls, closure=base.closure)
            if attr in ("add_module", "register_module"):
                return _SelfMethod(base, attr)
            value = self.class_attribute(base.cls, attr)
            if isinstance(value, FuncV):
                decorators = {dotted(d) for d in value.node.decorator_list}
                if "staticmethod" in decorators:
                    return value
                if decorators - {"torch.no_grad", "torch.jit.unused", "torch.jit.ignore"}:
                    return UNKNOWN  # classmethods, properties, caches: not modelled
                return FuncV(value.node, base)
            return value
        if isinstance(base, ClassV):
            value = self.class_attribute(base.node, attr)
            return value
        if isinstance(base, _Super):
            return _SelfMethod(base.self_v, f"super.{attr}", base.owner)
        if isinstance(base, TensorV):
            if attr == "shape":
                return ShapeV(base)
            return _TensorMethod(base, attr)
        if isinstance(base, LayerV):
            return layer_attribute(base.layer, attr)
        if isinstance(base, DictV) and attr in base.items:  # a namespace-like config
            return base.items[attr]
        if isinstance(base, ParamV) and not attr.startswith("__"):
            return ParamV(f"{base.name}.{attr}")  # `cfg.width`: unknown, but the same at every read
        return UNKNOWN

    def subscript(self, node: ast.Subscript, st: State, ctx: Context) -> Value:
        base = self.eval(node.value, st, ctx)
        index_node = _index_of(node)
        if index_node is None:
            return UNKNOWN
        index = self.eval(index_node, st, ctx)
        if isinstance(base, DictV) and isinstance(index, StrV):
            return base.items.get(index.text, UNKNOWN)
        if isinstance(base, ParamV) and isinstance(index, StrV):
            return ParamV(f"{base.name}[{index.text!r}]")  # `cfg["width"]`
        i = L.as_poly(index)
        if i is None or i.value is None:
            return UNKNOWN
        k = i.value
        if isinstance(base, ParamV):
            return ParamV(f"{base.name}[{k}]")  # `dilation[0]`: unknown, but the same at every read
        if isinstance(base, TupleV) and -len(base.items) <= k < len(base.items):
            return base.items[k]
        if isinstance(base, LayerV) and isinstance(base.layer, L.ModuleList):
            items = base.layer.items
            if -len(items) <= k < len(items):
                return LayerV(items[k])
        if isinstance(base, ShapeV):
            return self.tensor_size(base.tensor, k)
        if isinstance(base, LayerV) and isinstance(base.layer, L.Sequential):
            layers = base.layer.layers
            if -len(layers) <= k < len(layers):
                return LayerV(layers[k])
        return UNKNOWN

    def tensor_size(self, t: TensorV, k: int) -> Value:
        if k == 0:
            return BatchSizeV()
        if k == 1 and t.channels is not None and not t.flat:
            return IntV(t.channels)
        return UNKNOWN

    def comparison(self, node: ast.Compare, st: State, ctx: Context) -> Cond:
        parts: List[Cond] = []
        left = self.eval(node.left, st, ctx)
        left_node: ast.expr = node.left
        for op, comparator in zip(node.ops, node.comparators):
            right = self.eval(comparator, st, ctx)
            parts.append(self.compare(type(op), left, right, left_node, comparator, node))
            left, left_node = right, comparator
        return parts[0] if len(parts) == 1 else AndC(tuple(parts))

    def compare(self, op: type, left: Value, right: Value, left_node: ast.AST,
                right_node: ast.AST, whole: ast.AST) -> Cond:
        """``left op right`` for one comparison operator (its ``ast`` class)."""
        if op is ast.Is or op is ast.IsNot:
            negate = op is ast.IsNot
            cond: Cond
            if right is NONE:
                cond = self.is_none(left, left_node)
            elif left is NONE:
                cond = self.is_none(right, right_node)
            elif isinstance(left, (RefV, ClassV)) and isinstance(right, (RefV, ClassV)):
                cond = ConstC(left == right)  # `type(self.short) is nn.Identity`
            else:
                cond = AtomC(self.code(whole))
            return NotC(cond) if negate else cond
        if op is ast.In or op is ast.NotIn:
            negate = op is ast.NotIn
            if isinstance(right, TupleV):
                conds = [self.compare(ast.Eq, left, item, left_node, right_node, whole) for item in right.items]
                cond = OrC(tuple(conds)) if conds else FALSE
                return NotC(cond) if negate else cond
            return AtomC(self.code(whole))
        sym = _CMP_OPS.get(op)
        if sym in ("==", "!=") and isinstance(left, TupleV) and isinstance(right, TupleV):
            # `self.conv.stride == (1, 1)`: element by element
            if len(left.items) != len(right.items):
                return ConstC(sym == "!=")
            parts = tuple(self.compare(ast.Eq, a, b, left_node, right_node, whole)
                          for a, b in zip(left.items, right.items))
            both = AndC(parts) if parts else TRUE
            return both if sym == "==" else NotC(both)
        if isinstance(left, ShapeV) or isinstance(right, ShapeV) or (
                (left is UNKNOWN or right is UNKNOWN) and re.search(r"\.shape\b|\.size\(", self.code(whole))):
            return AtomC(SHAPE_TEST + self.code(whole))
        a, b = L.as_poly(left), L.as_poly(right)
        if sym is not None and a is not None and b is not None:
            return CmpC(sym, a, b)
        if sym in ("==", "!=") and isinstance(left, (StrV, NoneV)) and isinstance(right, (StrV, NoneV)):
            same = left == right
            return ConstC(same if sym == "==" else not same)
        if sym in ("==", "!=") and {_builtin_kind(left), _builtin_kind(right)} in ({"int", "str"}, {"str", "sequence"}):
            return ConstC(sym == "!=")  # `padding == ''` for padding=0: never equal (a bool is an int too)
        return AtomC(self.code(whole))

    def is_none(self, value: Value, node: ast.AST) -> Cond:
        if value is NONE:
            return TRUE
        if isinstance(value, ParamV):
            return AtomC(f"{value.name} is None")
        if value is UNKNOWN:
            return AtomC(f"{self.code(node)} is None")
        return FALSE

    def to_cond(self, value: Value, node: ast.AST) -> Cond:
        if isinstance(value, BoolV):
            return value.cond
        if value is NONE:
            return FALSE
        if isinstance(value, IntV):
            return CmpC("!=", value.poly, ZERO)
        if isinstance(value, StrV):
            return ConstC(bool(value.text))
        if isinstance(value, TupleV):
            return ConstC(bool(value.items))
        if isinstance(value, ParamV):
            return AtomC(value.name)
        if isinstance(value, LayerV):
            if isinstance(value.layer, L.Sequential):
                return ConstC(bool(value.layer.layers))
            return TRUE
        if isinstance(value, (ClassV, FuncV, RefV)):
            return TRUE
        return AtomC(self.code(node))

    # --- operators on values --------------------------------------------------------------------

    def binop(self, op: Optional[str], left: Value, right: Value, node: ast.AST, st: State,
              ctx: Context) -> Value:
        if isinstance(left, TensorV) or isinstance(right, TensorV):
            return self.tensor_binop(op, left, right, node, st, ctx)
        a, b = L.as_poly(left), L.as_poly(right)
        if a is None or b is None:
            if op == "+" and isinstance(left, TupleV) and isinstance(right, TupleV):
                return TupleV(left.items + right.items)
            if op == "*" and isinstance(left, TupleV) and b is not None and b.value is not None \
                    and len(left.items) * b.value <= 1024:
                return TupleV(left.items * max(b.value, 0))
            return UNKNOWN
        if op == "+":
            return IntV(a + b)
        if op == "-":
            return IntV(a - b)
        if op == "*":
            return IntV(a * b)
        if op == "//":
            if b.value == 0:
                return UNKNOWN
            return IntV(a.floordiv(b))
        if op == "%":
            m = a.mod(b)
            return IntV(m) if m is not None else UNKNOWN
        if op == "**" and a.value is not None and b.value is not None and 0 <= b.value < 64:
            return IntV(Poly.const(a.value ** b.value))
        return UNKNOWN

    def tensor_binop(self, op: Optional[str], left: Value, right: Value, node: ast.AST, st: State,
                     ctx: Context) -> Value:
        if isinstance(left, TensorV) and isinstance(right, TensorV):
            if op == "+":
                self.residual_add(node, left, right, st, ctx)
            return _merged(left, right, node)
        tensor = left if isinstance(left, TensorV) else right
        if op in ("+", "-", "*", "/", "//", "**"):
            # a scalar or a parameter: same shape (a broadcasting parameter keeps the feature map's)
            return tensor.derive(history=tensor.history + (Step("keep", node),))
        return UNKNOWN

    def residual_add(self, node: ast.AST, a: TensorV, b: TensorV, st: State, ctx: Context) -> None:
        if not ctx.report_adds or st.shape_guarded:
            return
        if ctx.anchor is None:
            self.emit_event(ResidualAdd(node, a, b, st.facts))
        elif ctx.built_at is not None and self.index is self.checked:
            self.emit_event(ResidualAdd(node, a, b, st.facts, built_at=ctx.built_at))

    # --- calls ----------------------------------------------------------------------------------

    def call(self, node: ast.Call, st: State, ctx: Context) -> Value:
        func_node = node.func
        if type(func_node) is ast.Attribute and func_node.attr not in _PURE_METHODS:
            receiver = func_node.value
            if type(receiver) is ast.Name or type(receiver) is ast.Attribute:
                current = st.env.get(receiver.id) if type(receiver) is ast.Name else \
                    self.eval(receiver, st, ctx)  # type: ignore[attr-defined]
                if isinstance(current, TupleV):
                    return self.mutate_list(receiver, node, st, ctx)
                if isinstance(current, DictV) and not isinstance(current, NamespaceV):
                    return self.mutate_dict(receiver, current, node, st, ctx)
                if isinstance(current, LayerV) and func_node.attr in _MODULE_MUTATORS:
                    return self.mutate_module(receiver, current, node, st, ctx)
        if id(node) in st.call_results:
            return st.call_results.pop(id(node))
        func = self.eval(node.func, st, ctx)
        if func is UNKNOWN or isinstance(func, ParamV):
            return UNKNOWN
        args, kwargs, starred = self.call_arguments(node, st, ctx)
        result = self.apply_callable(func, args, kwargs, starred, node, st, ctx)
        if isinstance(func, (FuncV, ClassV)):
            # a dict handed to other code may come back changed
            for a in [*node.args, *(k.value for k in node.keywords if k.arg is not None)]:
                if type(a) is ast.Name and isinstance(st.env.get(a.id), DictV) \
                        and not isinstance(st.env.get(a.id), NamespaceV):
                    st.env[a.id] = UNKNOWN
        return result

    def call_arguments(self, node: ast.Call, st: State, ctx: Context) -> Tuple[List[Value], Dict[str, Value], bool]:
        """Positional and keyword values; ``starred`` when ``*args``/``**kw`` hide some."""
        args: List[Value] = []
        kwargs: Dict[str, Value] = {}
        starred = False
        for arg in node.args:
            if type(arg) is ast.Starred:
                value = self.eval(arg.value, st, ctx)
                if isinstance(value, TupleV):
                    args.extend(value.items)
                else:
                    starred = True
                continue
            args.append(self.eval(arg, st, ctx))
        for keyword in node.keywords:
            value = self.eval(keyword.value, st, ctx)
            if keyword.arg is not None:
                kwargs[keyword.arg] = value
            elif isinstance(value, DictV):
                kwargs.update(value.items)  # `**dd` with dd = {"device": device, "dtype": dtype}
            else:
                starred = True
        return args, kwargs, starred

    def apply_callable(self, func: Value, args: List[Value], kwargs: Dict[str, Value], starred: bool,
                       node: ast.Call, st: State, ctx: Context) -> Value:
        if isinstance(func, _Partial):
            return self.apply_callable(func.func, list(func.args) + args, {**func.kwargs, **kwargs}, starred,
                                       node, st, ctx)
        if isinstance(func, RefV):
            if func.qualname == "functools.partial":
                if starred or not args:
                    return UNKNOWN
                return _Partial(args[0], tuple(args[1:]), dict(kwargs))
            return self.call_ref(func.qualname, args, kwargs, starred, node, st, ctx)
        if isinstance(func, _SelfMethod):
            return self.self_method(func, args, kwargs, starred, node, st, ctx)
        if starred:
            return UNKNOWN
        if isinstance(func, ClassV):
            return self.instantiate(func.node, args, kwargs, node, st, ctx, func.closure)
        if isinstance(func, FuncV):
            return self.call_function(func, args, kwargs, st, ctx, node)
        if isinstance(func, LayerV):
            if len(args) >= 1 and isinstance(args[0], TensorV):
                if isinstance(func.layer, L.Composite):  # its forward may take more than the tensor
                    return self.run_composite(func.layer, args[0], st, ctx, args[1:], kwargs)
                return func.layer.apply(args[0], self.flow(st, ctx))
            return UNKNOWN
        if isinstance(func, _TensorMethod):
            return self.tensor_method(func.tensor, func.name, args, kwargs, node, st, ctx)
        return UNKNOWN

    def mutate_list(self, receiver: ast.expr, node: ast.Call, st: State, ctx: Context) -> Value:
        """``layers.append(conv)`` / ``layers.extend([...])``; any other change forgets the list."""
        current = self.eval(receiver, st, ctx)
        method = node.func.attr  # type: ignore[attr-defined]
        args = [self.eval(a, st, ctx) for a in node.args]
        new: Value = UNKNOWN
        if isinstance(current, TupleV) and _plain_arguments(node):
            if method == "append" and len(args) == 1:
                new = TupleV(current.items + (args[0],))
            elif method == "extend" and len(args) == 1 and isinstance(args[0], TupleV):
                new = TupleV(current.items + args[0].items)
        self.assign(receiver, new, st)
        return NONE

    def mutate_dict(self, receiver: ast.expr, current: "DictV", node: ast.Call, st: State,
                    ctx: Context) -> Value:
        """``kw.setdefault("padding", 1)``, ``kw.update(...)``, ``kw.pop("act", None)`` on a dict of
        keyword arguments; any other method forgets the dict."""
        method = node.func.attr  # type: ignore[attr-defined]
        args, kwargs, starred = self.call_arguments(node, st, ctx)
        items: Optional[Dict[str, Value]] = dict(current.items)
        result: Value = UNKNOWN
        key = args[0].text if args and isinstance(args[0], StrV) else None
        if starred:
            items = None
        elif method == "setdefault" and key is not None and len(args) in (1, 2) and not kwargs:
            result = items.setdefault(key, args[1] if len(args) == 2 else NONE)  # type: ignore[union-attr]
        elif method == "update" and len(args) <= 1 and (not args or isinstance(args[0], DictV)):
            items.update(args[0].items if args else {})  # type: ignore[union-attr]
            items.update(kwargs)  # type: ignore[union-attr]
            result = NONE
        elif method == "pop" and key is not None and len(args) in (1, 2) and not kwargs:
            result = items.pop(key, args[1] if len(args) == 2 else UNKNOWN)  # type: ignore[union-attr]
        else:
            items = None
        self.assign(receiver, UNKNOWN if items is None else DictV(items), st)
        return result

    def mutate_module(self, receiver: ast.expr, current: LayerV, node: ast.Call, st: State,
                      ctx: Context) -> Value:
        """``seq.append(layer)`` / ``seq.add_module(name, layer)`` on an nn.Sequential value,
        ``blocks.append(block)`` / ``blocks.extend([...])`` on an nn.ModuleList."""
        method = node.func.attr  # type: ignore[attr-defined]
        args = [self.eval(a, st, ctx) for a in node.args]
        new: Value = UNKNOWN
        layer = args[-1] if args else None
        if isinstance(current.layer, L.Sequential) and _plain_arguments(node) and \
                ((method == "append" and len(args) == 1) or (method in ("add_module", "register_module")
                                                               and len(args) == 2)):
            added = layer.layer if isinstance(layer, LayerV) else L.Opaque(ctx.anchor or node)
            new = LayerV(L.Sequential(current.layer.node, list(current.layer.layers) + [added]))
        elif isinstance(current.layer, L.ModuleList) and _plain_arguments(node) and len(args) == 1:
            added_items = [layer] if method == "append" else \
                list(layer.items) if method == "extend" and isinstance(layer, TupleV) else None
            if added_items is not None and all(isinstance(v, LayerV) for v in added_items):
                new = LayerV(L.ModuleList(current.layer.node, list(current.layer.items) +
                                          [v.layer for v in added_items]))  # type: ignore[union-attr]
        self.assign(receiver, new, st)
        return NONE

    def self_method(self, m: "_SelfMethod", args: List[Value], kwargs: Dict[str, Value], starred: bool,
                    node: ast.Call, st: State, ctx: Context) -> Value:
        """``super().__init__(*layers)`` of a Sequential subclass, ``self.add_module(name, layer)``."""
        sv = m.self_v
        if sv is None:
            return UNKNOWN
        if m.name == "super.__init__":
            # the bases of the class whose __init__ called super() (not always the instance's class)
            base_init = next((self.find_method(b, "__init__") for b in self.same_file_bases(m.owner or sv.cls)
                              if self.find_method(b, "__init__") is not None), None)
            if base_init is not None:  # a base class of this file builds part of the module
                return self.call_function(FuncV(base_init, sv), args, kwargs, st, ctx, node)
            if sv.seq_layers is not None:
                if starred or kwargs:
                    sv.seq_layers = None
                    return NONE
                seq = self.sequential(args, node, st, ctx)
                sv.seq_layers = list(seq.layers)  # type: ignore[attr-defined]
            return NONE
        if m.name in ("add_module", "register_module"):
            if len(args) == 2 and isinstance(args[0], StrV):
                sv.attrs[args[0].text] = args[1]
                if sv.seq_layers is not None:
                    sv.seq_layers.append(args[1].layer if isinstance(args[1], LayerV) else L.Opaque(node))
            else:
                sv.attrs.clear()
                sv.seq_layers = None
            return NONE
        return UNKNOWN

    def flow(self, st: State, ctx: Context) -> "PathFlow":
        return PathFlow(self, st, ctx)

    def call_ref(self, q: str, args: List[Value], kwargs: Dict[str, Value], starred: bool,
                 node: ast.Call, st: State, ctx: Context) -> Value:
        if self.index.patched and self.index.is_patched(q):
            return UNKNOWN  # the file replaced it (`nn.Conv2d = MyConv`): not torch's any more
        if _is_layer_class(q):
            name = q[9:]
            if starred:
                return LayerV(L.Opaque(ctx.anchor or node))
            if name == "Sequential":
                return LayerV(self.sequential(args, node, st, ctx))
            if name == "ModuleList" and not kwargs and len(args) <= 1:
                items = args[0].items if args and isinstance(args[0], TupleV) else (() if not args else None)
                if items is not None and all(isinstance(v, LayerV) for v in items):
                    return LayerV(L.ModuleList(ctx.anchor or node, [v.layer for v in items]))  # type: ignore
                return UNKNOWN
            if name in ("ModuleList", "ModuleDict", "ParameterList", "Parameter"):
                return UNKNOWN
            return LayerV(self.build(name, args, kwargs, node, st, ctx))
        if q == "builtins.super":
            running = self._running[-1] if self._running else None
            return _Super(st.self_v, self._method_class.get(id(running)) if running is not None else None)
        if q == "torch.nn.Sequential.__init__" and args and isinstance(args[0], SelfV):
            return self.self_method(_SelfMethod(args[0], "super.__init__"), args[1:], kwargs, starred, node, st, ctx)
        if q in ("builtins.hasattr", "builtins.getattr") and len(args) >= 2 and isinstance(args[0], SelfV) \
                and isinstance(args[1], StrV):
            return self.self_attribute_test(q[9:], args[0], args[1].text, args[2] if len(args) > 2 else None, node)
        if q == "builtins.dict" and not starred:
            return self.call_dict(args, kwargs)
        if q == "builtins.isinstance" and len(args) == 2:
            verdict = is_instance(args[0], args[1])
            return BoolV(AtomC(self.code(node)) if verdict is None else ConstC(verdict))
        if q == "builtins.type" and len(args) == 1:
            if isinstance(args[0], SelfV):
                return ClassV(args[0].cls, closure=args[0].closure)
            if isinstance(args[0], LayerV) and args[0].layer.torch_name:
                return RefV(f"torch.nn.{args[0].layer.torch_name}")
            return UNKNOWN
        if q == "builtins.setattr" and len(args) == 3 and isinstance(args[0], SelfV) and isinstance(args[1], StrV):
            self.assign_self(args[0], args[1].text, args[2])
            return NONE
        if q in ("torch.utils.checkpoint.checkpoint", "torch.utils.checkpoint.checkpoint_sequential") and args:
            if q.endswith("checkpoint"):
                return self.apply_callable(args[0], list(args[1:]), {}, starred, node, st, ctx)
            return UNKNOWN
        if q.startswith("builtins."):
            return self.call_builtin(q[9:], args)
        if q == "collections.OrderedDict" and not args and not kwargs:
            return NamedLayersV((), ())
        if q == "collections.OrderedDict" and len(args) == 1 and isinstance(args[0], TupleV):
            pairs = [item.items[1] for item in args[0].items if isinstance(item, TupleV) and len(item.items) == 2]
            return NamedLayersV(tuple(pairs)) if len(pairs) == len(args[0].items) else UNKNOWN
        if q in _TENSOR_FACTORIES:
            return self.new_tensor(args, kwargs, node, st)
        return self.call_torch_function(q, args, kwargs, node, st, ctx)

    @staticmethod
    def new_tensor(args: List[Value], kwargs: Dict[str, Value], node: ast.Call, st: State) -> Value:
        """``torch.randn(1, 3, 32, 32)`` (test code running the model): a batch of known channels and
        sizes, as an ``input-size`` gives them."""
        given = kwargs.get("size")
        sizes = args[0].items if len(args) == 1 and isinstance(args[0], TupleV) else \
            given.items if not args and isinstance(given, TupleV) else args
        numbers = [L.as_poly(v) for v in sizes]
        if not 3 <= len(numbers) <= 5 or any(p is None or p.value is None or p.value < 1 for p in numbers):
            return UNKNOWN
        root = f"{dotted(node.func)}@{node.lineno}:{node.col_offset}"
        spatial = [p.value for p in numbers[2:]]  # type: ignore[union-attr]
        n = len(spatial)
        channels = Poly.atom(f"{CHANNEL_PREFIX}{root}]")
        st.facts.add_equal(channels, numbers[1])  # type: ignore[arg-type]  # (as an input-size gives them)
        return TensorV(root, channels, tuple(Dim(f"{root}#{n - i}") for i in range(n)),
                       known_sizes=tuple((f"{root}#{k}", spatial[-k]) for k in range(1, n + 1)))

    def self_attribute_test(self, name: str, sv: SelfV, attr: str, default: Optional[Value],
                            node: ast.AST) -> Value:
        """``hasattr(self, "skip")`` / ``getattr(self, "skip", None)``: known when this path set it, or
        when nothing could have (every attribute of the module is known)."""
        if attr in sv.attrs:
            return BoolV(TRUE) if name == "hasattr" else sv.attrs[attr]
        known = self.class_attribute(sv.cls, attr)
        if known is not UNKNOWN:
            return BoolV(TRUE) if name == "hasattr" else known
        if sv.complete and attr not in _MODULE_ATTRIBUTES:
            if name == "hasattr":
                return BoolV(FALSE)
            return default if default is not None else UNKNOWN
        return UNKNOWN if name == "getattr" else BoolV(AtomC(self.code(node)))

    def call_builtin(self, name: str, args: List[Value]) -> Value:
        polys = [L.as_poly(a) for a in args]
        if name == "range" and 1 <= len(args) <= 3 and all(p is not None and p.value is not None for p in polys):
            bounds = tuple(p.value for p in polys)  # type: ignore[union-attr]
            if len(bounds) < 3 or bounds[2] != 0:
                return _Range(bounds)  # type: ignore[arg-type]
        if name == "len" and len(args) == 1 and isinstance(args[0], TupleV):
            return IntV(Poly.const(len(args[0].items)))
        if name == "enumerate" and len(args) == 1 and isinstance(args[0], TupleV):
            return TupleV(tuple(TupleV((IntV(Poly.const(i)), v)) for i, v in enumerate(args[0].items)))
        if name == "zip" and args and all(isinstance(a, TupleV) for a in args):
            return TupleV(tuple(TupleV(group) for group in zip(*(a.items for a in args))))  # type: ignore
        if name == "int" and len(args) == 1 and polys[0] is not None:
            return args[0]
        if name in ("max", "min") and len(args) >= 2 and all(p is not None and p.value is not None for p in polys):
            values = [p.value for p in polys]  # type: ignore[union-attr]
            return IntV(Poly.const(max(values) if name == "max" else min(values)))  # type: ignore[type-var]
        if name in ("tuple", "list") and len(args) == 1 and isinstance(args[0], TupleV):
            return args[0]
        return UNKNOWN

    def call_dict(self, args: List[Value], kwargs: Dict[str, Value]) -> Value:
        if not args:
            return DictV(dict(kwargs))
        if len(args) == 1 and isinstance(args[0], DictV):
            return DictV({**args[0].items, **kwargs})
        return UNKNOWN

    def build(self, name: str, args: List[Value], kwargs: Dict[str, Value], node: ast.Call, st: State,
              ctx: Context) -> L.Layer:
        def arg(keyword: str, position: int, default: Optional[Value]) -> Optional[Value]:
            if keyword in kwargs:
                return kwargs[keyword]
            if position < len(args):
                return args[position]
            return default

        report_node = ctx.anchor or node
        layer = L.build_layer(name, arg, report_node, node, ctx.anchor is None, st.facts)
        if self.index is self.checked:
            layer.own_call = node
        if isinstance(layer, L.Conv):
            self.emit_event(ConvBuilt(layer, st.facts))
        return layer

    def sequential(self, args: List[Value], node: ast.Call, st: State, ctx: Context) -> L.Layer:
        if len(args) == 1 and isinstance(args[0], NamedLayersV):  # nn.Sequential(OrderedDict([...]))
            args = list(args[0].items)
        items: List[L.Layer] = []
        for a in args:
            if isinstance(a, LayerV):
                items.append(a.layer)
            else:
                items.append(L.Opaque(ctx.anchor or node))
        seq = L.Sequential(ctx.anchor or node, items)
        if ctx.anchor is None and items:
            self.check_sequential(seq, st, ctx)
        return seq

    def check_sequential(self, seq: L.Sequential, st: State, ctx: Context) -> None:
        """Channels must flow through a Sequential whatever its input: check it as it is built."""
        probe = State(dict(st.env), st.facts.copy(), dict(st.truths), st.self_v)
        root = f"seq{id(seq)}"
        seq.apply(TensorV(root, Poly.atom(f"{CHANNEL_PREFIX}{root}]"), None, rank_open=True), self.flow(probe, ctx))

    @_in_owner(lambda args: args[0])
    def instantiate(self, cls: ast.ClassDef, args: List[Value], kwargs: Dict[str, Value], node: ast.Call,
                    st: State, ctx: Context, closure: Optional[Dict[str, Value]] = None) -> Value:
        kind = self.class_kind(cls)
        anchor = ctx.anchor or node
        base = self.torch_layer_base(cls)
        if base is not None:  # `class MyConv(nn.Conv2d): pass` builds an nn.Conv2d
            return self.call_ref(base, args, kwargs, False, node, st, ctx)
        if kind is None and _is_dataclass(cls):
            return self.dataclass_instance(cls, args, kwargs)
        if kind is None or ctx.depth >= MAX_DEPTH or id(cls) in self._in_progress:
            return LayerV(L.Opaque(anchor))
        inner = Context(ctx.depth + 1, anchor, False, f"{cls.name}.")
        self_v = SelfV(cls, {}, [] if kind == "sequential" else None, closure=closure)
        init = self.find_method(cls, "__init__")
        self._in_progress.add(id(cls))
        try:
            start = State({}, st.facts.copy(), dict(st.truths), self_v)
            ends = self.run_function(init, args, kwargs, start, inner, self_v, split=True) if init else [start]
        finally:
            self._in_progress.discard(id(cls))
        ends = [e for e in ends if not e.facts.infeasible]
        if not ends:
            return LayerV(L.Opaque(anchor))
        if self.find_method(cls, "forward") is None:
            if kind != "sequential" or not all(e.self_v and e.self_v.seq_layers is not None for e in ends):
                return LayerV(L.Opaque(anchor))
            if len(ends) == 1:
                return LayerV(L.Sequential(anchor, list(ends[0].self_v.seq_layers)))  # type: ignore[union-attr]
            # an nn.Sequential subclass whose layers depend on its arguments: one variant per path
        variants = [(e.self_v or self_v, e.facts, e.truths) for e in ends]
        return LayerV(L.Composite(anchor, variants))

    def dataclass_instance(self, cls: ast.ClassDef, args: List[Value], kwargs: Dict[str, Value]) -> Value:
        """A ``@dataclass`` config (``LayerFn(conv_norm_act=ConvNormAct)``): its fields, bound like
        ``__init__`` binds them, readable as attributes. Inherited fields are not followed."""
        if cls.bases:
            return UNKNOWN
        fields: List[Tuple[str, Optional[Value]]] = []
        for small in cls.body:
            if not isinstance(small, ast.AnnAssign) or not isinstance(small.target, ast.Name):
                continue
            annotation = dotted(small.annotation)
            if annotation in ("ClassVar", "typing.ClassVar"):
                continue
            default: Optional[Value] = None
            if small.value is not None:
                value = small.value
                if isinstance(value, ast.Call) and dotted(value.func) in ("field", "dataclasses.field"):
                    given = {k.arg: k.value for k in value.keywords if k.arg is not None}
                    default = self.eval_static(given["default"]) if "default" in given else UNKNOWN
                else:
                    default = self.eval_static(value)
            fields.append((small.target.id, default))
        names = [name for name, _ in fields]
        if len(args) > len(fields) or any(k not in names for k in kwargs):
            return UNKNOWN
        items: Dict[str, Value] = {}
        for i, (name, default) in enumerate(fields):
            given_value = args[i] if i < len(args) else kwargs.get(name)
            items[name] = given_value if given_value is not None else (UNKNOWN if default is None else default)
        return NamespaceV(items)

    def run_composite(self, layer: L.Composite, t: TensorV, st: State, ctx: Context,
                      extra: Sequence[Value] = (), kwargs: Optional[Dict[str, Value]] = None) -> Value:
        """The module applied to ``t``: its variants' results merged into one value."""
        ends = self.composite_ends(layer, t, st, ctx, extra, kwargs)
        return UNKNOWN if ends is None else self.composite_result(layer, t, st, ends)

    def composite_result(self, layer: L.Composite, t: TensorV, st: State, ends: List[State]) -> Value:
        """The module's end states merged into the value the caller sees (the caller learns what they
        agree on)."""
        return self.module_output(layer, t, self.merge_into(st, ends, same_self=False))

    @_in_owner(lambda args: _composite_class(args[0]))
    def composite_ends(self, layer: L.Composite, t: TensorV, st: State, ctx: Context,
                       extra: Sequence[Value] = (), kwargs: Optional[Dict[str, Value]] = None
                       ) -> Optional[List[State]]:
        """The end states of the module's ``forward`` on ``t``, one or more per variant (None: not run)."""
        variants = layer.instance  # list of (SelfV, Facts, truths)
        if not variants or ctx.depth >= MAX_DEPTH:
            return None
        cls = variants[0][0].cls
        forward = self.find_method(cls, "forward")
        sequential = forward is None and not extra and not kwargs and \
            all(self_v.seq_layers is not None for self_v, _, _ in variants)
        if not sequential and (forward is None or id(forward) in self._in_progress):
            return None
        # the module's own adds are judged with the numbers it was built from, when it is this
        # file's code (a module of another file is that file's to report)
        inner = Context(ctx.depth + 1, layer.node, ctx.report_adds, f"{cls.name}.", built_at=layer.node)
        ends: List[State] = []
        self._in_progress.add(id(forward))
        try:
            for self_v, facts, truths in variants:
                merged = st.facts.copy()
                for k, v in facts.subst.items():
                    if k not in merged.subst:
                        merged.add_equal(Poly.atom(k), v)
                merged.positive |= facts.positive
                start = State({}, merged, {**st.truths, **truths}, self_v)
                if sequential:  # an nn.Sequential subclass: its layers in order
                    start.returned = L.Sequential(layer.node, list(self_v.seq_layers)).apply(t, self.flow(start, inner))
                    ends.append(start)
                    continue
                ends.extend(self.run_function(forward, [t, *extra], dict(kwargs or {}), start, inner, self_v,
                                              split=True))
        finally:
            self._in_progress.discard(id(forward))
        return ends

    @staticmethod
    def module_output(layer: L.Composite, t: TensorV, out: Value) -> Value:
        """Everything that happened inside the module is reported at the module's constructor call."""
        if isinstance(out, TensorV):
            steps = tuple(s if s.node is layer.node or s.kind == "other" else Step(s.kind, layer.node, s.layer)
                          for s in out.history[len(t.history):])
            out = out.derive(history=t.history + steps)
        return out

    # --- tensors --------------------------------------------------------------------------------

    def call_torch_function(self, q: str, args: List[Value], kwargs: Dict[str, Value], node: ast.Call,
                            st: State, ctx: Context) -> Value:
        short = q.rsplit(".", 1)[-1]
        is_fn = q.startswith("torch.nn.functional.") or (q.startswith("torch.") and q.count(".") == 1)
        if not is_fn or not args or not isinstance(args[0], (TensorV, TupleV)):
            return UNKNOWN
        x = args[0]
        if short in _KEEP_FUNCTIONS and isinstance(x, TensorV):
            return x.derive(history=x.history + (Step("keep", node),))
        if short in ("add",) and len(args) >= 2 and isinstance(x, TensorV):
            return self.tensor_binop("+", x, args[1], node, st, ctx)
        if short in ("mul", "sub", "div") and len(args) >= 2 and isinstance(x, TensorV):
            return self.tensor_binop("*", x, args[1], node, st, ctx)
        if short == "cat" and isinstance(x, TupleV):
            dim = L.as_poly(args[1] if len(args) > 1 else kwargs.get("dim", IntV(ZERO)))
            return self.concat(x.items, dim, node)
        if short == "flatten" and isinstance(x, TensorV):
            start = L.as_poly(args[1] if len(args) > 1 else kwargs.get("start_dim", IntV(ZERO)))
            end = L.as_poly(args[2] if len(args) > 2 else kwargs.get("end_dim", IntV(Poly.const(-1))))
            if start is not None and start.value == 1 and end is not None and end.value == -1:
                return L.flatten(x, self.flow(st, ctx), Step("flatten", node))
            return UNKNOWN
        if not isinstance(x, TensorV):
            return UNKNOWN
        for n in (1, 2, 3):
            if short in (f"max_pool{n}d", f"avg_pool{n}d"):
                def arg(keyword: str, position: int, default: Optional[Value]) -> Optional[Value]:
                    if keyword in kwargs:
                        return kwargs[keyword]
                    if position + 1 < len(args):
                        return args[position + 1]
                    return default
                layer = L.build_pool(n, short.startswith("max"), arg, ctx.anchor or node, functional=True)
                return layer.apply(x, self.flow(st, ctx))
            if short in (f"adaptive_avg_pool{n}d", f"adaptive_max_pool{n}d"):
                size = args[1] if len(args) > 1 else kwargs.get("output_size")
                sizes = L.optional_tuple(size, n)
                ops = None if sizes is None else tuple(None if s is None else Resize(s) for s in sizes)
                return L.SizeOps(node, n, ops).apply(x, self.flow(st, ctx))
        if short in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
            factor = L.as_poly(kwargs.get("scale_factor", args[2] if len(args) > 2 else None))
            if factor is not None and x.dims is not None and kwargs.get("size", NONE) is NONE and \
                    (len(args) < 2 or args[1] is NONE):
                return L.Upsample(ctx.anchor or node, factor).apply(x, self.flow(st, ctx))
            return x.derive(dims=None, history=x.history + (Step("other", node),))  # size unknown
        if short in ("mean", "sum", "amax", "max") and q.startswith("torch."):
            return self.reduce(x, args[1:], kwargs, node)
        return UNKNOWN

    def tensor_method(self, t: TensorV, name: str, args: List[Value], kwargs: Dict[str, Value],
                      node: ast.Call, st: State, ctx: Context) -> Value:
        if name in _KEEP_METHODS:
            return t.derive(history=t.history + (Step("keep", node),))
        if name in ("add", "add_") and args:
            return self.tensor_binop("+", t, args[0], node, st, ctx)
        if name in ("mul", "mul_", "sub", "sub_", "div", "div_") and args:
            return self.tensor_binop("*", t, args[0], node, st, ctx)
        if name == "size":
            if not args:
                return ShapeV(t)
            k = L.as_poly(args[0])
            return self.tensor_size(t, k.value) if k is not None and k.value is not None else UNKNOWN
        if name == "flatten":
            start = L.as_poly(args[0] if args else kwargs.get("start_dim", IntV(ZERO)))
            if start is not None and start.value == 1 and len(args) <= 1:
                return L.flatten(t, self.flow(st, ctx), Step("flatten", node))
            return UNKNOWN
        if name in ("view", "reshape"):
            shape = args[0].items if len(args) == 1 and isinstance(args[0], TupleV) else tuple(args)
            if len(shape) == 2 and isinstance(shape[0], BatchSizeV):
                last = L.as_poly(shape[1])
                if last is not None and last.value == -1:
                    return L.flatten(t, self.flow(st, ctx), Step("flatten", node))
            if len(shape) == 2:
                first, last = L.as_poly(shape[0]), L.as_poly(shape[1])
                if first is not None and first.value == -1 and last is not None:
                    # `x.view(-1, 400)` declares the feature count: not a plain flatten to replay
                    return t.derive(channels=last, dims=(), flat=True, history=t.history + (Step("other", node),))
            return UNKNOWN
        if name in ("mean", "sum", "amax"):
            return self.reduce(t, args, kwargs, node)
        if name == "permute":
            return self.permute(t, args, node)
        return UNKNOWN

    def permute(self, t: TensorV, args: Sequence[Value], node: ast.AST) -> Value:
        """Channels to the end and back, as ConvNeXt blocks do around their Linear layers."""
        order = args[0].items if len(args) == 1 and isinstance(args[0], TupleV) else args
        perm = [L.as_poly(v) for v in order]
        if t.flat or t.dims is None or any(p is None or p.value is None for p in perm):
            return UNKNOWN
        perm_values = [p.value for p in perm]  # type: ignore[union-attr]
        n = len(t.dims) + 2
        to_last = [0] + list(range(2, n)) + [1]
        to_first = [0, n - 1] + list(range(1, n - 1))
        if perm_values == to_last and not t.channels_last:
            return t.derive(channels_last=True, history=t.history + (Step("permute", node, tuple(perm_values)),))
        if perm_values == to_first and t.channels_last:
            return t.derive(channels_last=False, history=t.history + (Step("permute", node, tuple(perm_values)),))
        return UNKNOWN

    def reduce(self, t: TensorV, args: Sequence[Value], kwargs: Dict[str, Value], node: ast.AST) -> Value:
        """``x.mean((2, 3))``: a global pool; flat unless ``keepdim``."""
        dim = args[0] if args else kwargs.get("dim")
        keep = L.as_bool(args[1] if len(args) > 1 else kwargs.get("keepdim", BoolV(FALSE)))
        if t.dims is None or t.flat or not isinstance(dim, TupleV) or keep is None:
            return UNKNOWN
        n = len(t.dims)
        picked = sorted({(p.value % (n + 2)) for p in (L.as_poly(v) for v in dim.items) if p is not None and p.value is not None})
        if picked != list(range(2, n + 2)):
            return UNKNOWN
        if keep:
            return t.derive(dims=tuple(d.then(Resize(ONE)) for d in t.dims), history=t.history + (Step("pool", node),))
        return t.derive(dims=(), flat=True, history=t.history + (Step("flatten", node),))

    def concat(self, items: Sequence[Value], dim: Optional[Poly], node: ast.AST) -> Value:

        tensors = [v for v in items if isinstance(v, TensorV)]
        if len(tensors) != len(items) or not tensors or dim is None or dim.value != 1:
            return UNKNOWN
        first = tensors[0]
        channels: Optional[Poly] = ZERO
        for t in tensors:
            if t.channels is None or t.flat or channels is None:
                channels = None
            else:
                channels = channels + t.channels
        return first.derive(channels=channels, history=first.history + (Step("merge", node),))


class PathFlow(L.Flow):
    """Applying layers on one path: binds the inputs' channel symbols, reports the rest."""

    def __init__(self, interp: Interpreter, st: State, ctx: Context):
        self.interp, self.st, self.ctx = interp, st, ctx

    @property
    def facts(self) -> Facts:  # type: ignore[override]
        return self.st.facts

    def consume(self, layer: L.Layer, tensor: TensorV, expected: Poly, what: str) -> None:
        if tensor.channels is None:
            return
        actual = self.st.facts.resolve(tensor.channels)
        if any(a.startswith(CHANNEL_PREFIX) for a in actual.atoms()):
            for a in tensor.channels.atoms():
                if a.startswith(CHANNEL_PREFIX) and tensor.channels == Poly.atom(a):
                    self.st.facts.names.setdefault(a, expected)
            self.st.facts.add_equal(actual, expected)   # the input had these channels after all
            return
        self.interp.emit_event(ChannelUse(layer, what, expected, actual, tensor, self.st.facts, self.place(layer),
                                          self.ctx.built_at))

    def place(self, layer: L.Layer) -> ast.AST:
        """Where a finding about ``layer`` goes: in the forward of a module another module built, the
        layer's own call when this file has it (else the call that built the module)."""
        if self.ctx.built_at is not None and layer.own_call is not None:
            return layer.own_call
        return layer.node

    def run_composite(self, layer: L.Composite, tensor: TensorV) -> Value:
        return self.interp.run_composite(layer, tensor, self.st, self.ctx)

    def window(self, layer: L.Layer, tensor: TensorV, dims: Tuple[Dim, ...]) -> None:
        if not tensor.known_sizes:
            return  # sizes are numbers only from a known input size
        sizes = tuple(L.dim_size(d, tensor, self.st.facts) for d in dims)
        values = tuple(None if s is None else s.value for s in sizes)
        if any(v is not None for v in values):
            self.interp.emit_event(WindowApplied(layer, values, self.st.facts, self.place(layer), self.ctx.built_at))


# --- conditions ---------------------------------------------------------------------------------


def decide(cond: Cond, st: State) -> Optional[bool]:
    if isinstance(cond, ConstC):
        return cond.value
    if isinstance(cond, AtomC):
        return st.truths.get(cond.key)
    if isinstance(cond, NotC):
        inner = decide(cond.part, st)
        return None if inner is None else not inner
    if isinstance(cond, AndC):
        verdicts = [decide(p, st) for p in cond.parts]
        if any(v is False for v in verdicts):
            return False
        return True if all(v is True for v in verdicts) else None
    if isinstance(cond, OrC):
        verdicts = [decide(p, st) for p in cond.parts]
        if any(v is True for v in verdicts):
            return True
        return False if all(v is False for v in verdicts) else None
    if isinstance(cond, CmpC):
        diff = st.facts.resolve(cond.left - cond.right)
        if diff.value is not None:
            return _CMP_EVAL[cond.op](diff.value)
        lb = lower_bound(diff, st.facts)
        ub = lower_bound(-diff, st.facts)
        ub = None if ub is None else -ub
        if cond.op in ("==", "!="):
            if prove_nonzero(diff, st.facts):
                return cond.op == "!="
            return None
        if cond.op == ">":
            return True if lb is not None and lb > 0 else (False if ub is not None and ub <= 0 else None)
        if cond.op == ">=":
            return True if lb is not None and lb >= 0 else (False if ub is not None and ub < 0 else None)
        if cond.op == "<":
            return True if ub is not None and ub < 0 else (False if lb is not None and lb >= 0 else None)
        if cond.op == "<=":
            return True if ub is not None and ub <= 0 else (False if lb is not None and lb > 0 else None)
    return None


def assume(cond: Cond, truth: bool, st: State) -> None:
    """Learn that ``cond`` is ``truth`` on this path."""
    if isinstance(cond, ConstC):
        if cond.value != truth:
            st.facts.infeasible = True
    elif isinstance(cond, AtomC):
        if st.truths.get(cond.key, truth) != truth:
            st.facts.infeasible = True
        st.truths[cond.key] = truth
        if cond.key.startswith(SHAPE_TEST):
            st.shape_guarded = True  # the code looks at the shapes itself: its adds are not ours to judge
    elif isinstance(cond, NotC):
        assume(cond.part, not truth, st)
    elif isinstance(cond, (AndC, OrC)):
        absorbing = isinstance(cond, OrC)  # True absorbs an Or, False absorbs an And
        if truth != absorbing:
            for p in cond.parts:
                assume(p, truth, st)
        else:
            open_parts = [p for p in cond.parts if decide(p, st) is None]
            if len(open_parts) == 1 and all(decide(p, st) == (not truth) for p in cond.parts if p is not open_parts[0]):
                assume(open_parts[0], truth, st)
    elif isinstance(cond, CmpC):
        op = cond.op if truth else _NEGATED[cond.op]
        if op == "==":
            st.facts.add_equal(cond.left, cond.right)
        elif op == "!=":
            st.facts.add_unequal(cond.left, cond.right)


# --- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TensorMethod(Value):
    tensor: TensorV
    name: str


@dataclass(frozen=True)
class NamedLayersV(Value):
    """``OrderedDict([("conv", layer), ...])``: the layers, in order, of an ``nn.Sequential``."""

    items: Tuple[Value, ...]
    keys: Optional[Tuple[str, ...]] = None  # known when built item by item (``layers["a"] = ...``)


@dataclass(frozen=True)
class _Range(Value):
    bounds: Tuple[int, ...]


def is_instance(value: Value, cls: Value) -> Optional[bool]:
    """``isinstance(self.short, nn.Identity)`` for a layer convlint built, when it can tell."""
    classes = cls.items if isinstance(cls, TupleV) else (cls,)
    kind = _builtin_kind(value)
    if kind is not None:
        if not all(isinstance(c, RefV) for c in classes):
            return None
        verdicts = [_BUILTIN_INSTANCE.get((kind, c.qualname)) for c in classes]  # type: ignore[union-attr]
        if any(v is True for v in verdicts):
            return True
        return False if all(v is False for v in verdicts) else None
    if not isinstance(value, LayerV) or not value.layer.torch_name:
        return None
    if not all(isinstance(c, RefV) for c in classes):
        return None
    names = {c.qualname for c in classes}  # type: ignore[union-attr]
    if "torch.nn.Module" in names or f"torch.nn.{value.layer.torch_name}" in names:
        return True
    # a torch class by name that is not the layer's own: false unless it could be a base class
    return False if all(_is_layer_class(n) and n not in _TORCH_BASES for n in names) else None


_TORCH_BASES = {"torch.nn.Module", "torch.nn.Sequential"}


def _builtin_kind(value: Value) -> Optional[str]:
    if isinstance(value, BoolV):
        return "bool"
    if isinstance(value, IntV):
        return "int"
    if isinstance(value, StrV):
        return "str"
    if isinstance(value, TupleV):
        return "sequence"   # a tuple or a list: which one is not kept
    if value is NONE:
        return "none"
    return None


_SEQUENCE_TYPES = ("typing.Sequence", "collections.abc.Sequence", "typing.Iterable", "collections.abc.Iterable")
# isinstance(value of this kind, this class): True, False, or absent when it cannot be told
_BUILTIN_INSTANCE: Dict[Tuple[str, str], bool] = {
    **{(kind, "builtins.int"): kind in ("int", "bool") for kind in ("int", "bool", "str", "sequence", "none")},
    **{(kind, "builtins.bool"): kind == "bool" for kind in ("bool", "str", "sequence", "none")},
    **{(kind, "builtins.float"): False for kind in ("int", "bool", "str", "sequence", "none")},
    **{(kind, "builtins.str"): kind == "str" for kind in ("int", "bool", "str", "sequence", "none")},
    **{(kind, t): kind in ("sequence", "str") for kind in ("int", "bool", "str", "sequence", "none")
       for t in _SEQUENCE_TYPES},
    **{(kind, t): False for kind in ("int", "bool", "str", "none") for t in ("builtins.tuple", "builtins.list")},
}


def layer_attribute(layer, attr: str) -> Value:
    """``self.conv.stride``, ``self.conv.out_channels``: the numbers the layer was built with."""
    def tup(polys):
        return UNKNOWN if polys is None else TupleV(tuple(IntV(p) for p in polys))
    if isinstance(layer, L.Conv):
        if attr in ("in_channels", "out_channels", "groups"):
            p = getattr(layer, attr)
            return UNKNOWN if p is None else IntV(p)
        if attr in ("stride", "kernel_size", "dilation"):
            return tup(getattr(layer, {"kernel_size": "kernel"}.get(attr, attr)))
        if attr == "padding":
            return StrV(layer.padding) if isinstance(layer.padding, str) else tup(layer.padding)
    if isinstance(layer, L.Norm) and attr in ("num_features", "num_channels") and layer.channels is not None:
        return IntV(layer.channels)
    if isinstance(layer, L.Linear) and attr in ("in_features", "out_features"):
        p = getattr(layer, attr)
        return UNKNOWN if p is None else IntV(p)
    return UNKNOWN


@dataclass(frozen=True)
class DictV(Value):
    """A dict of string keys (``dd = {"device": device, "dtype": dtype}``), for ``**dd``."""

    items: Dict[str, Value]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, eq=False)
class NamespaceV(DictV):
    """A ``@dataclass`` config instance: fields read as attributes (``layers.conv_norm_act(...)`` calls
    one); not a dict, so method calls on it are not dict changes."""


@dataclass(frozen=True)
class ProjectRefV(Value):
    """A name imported from another file of the checked tree, resolved when used."""

    module: str
    name: str


@dataclass(frozen=True)
class _Partial(Value):
    """``functools.partial(nn.Conv2d, kernel_size=3)``."""

    func: Value
    args: Tuple[Value, ...]
    kwargs: Dict[str, Value]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True)
class _Super(Value):
    self_v: Optional[SelfV]
    owner: Optional[ast.ClassDef] = None  # the class whose method calls super(): its bases come next


@dataclass(frozen=True)
class _SelfMethod(Value):
    self_v: Optional[SelfV]
    name: str
    owner: Optional[ast.ClassDef] = None  # for super().method: the class that called super()


def _merged(a: TensorV, b: TensorV, node: ast.AST) -> TensorV:
    """The result of an elementwise op: the operand that is not a broadcast (size-1) one."""
    base, other = a, b
    if a.channels is not None and a.channels.value == 1 and b.channels is not None:
        base, other = b, a
    # the result depends on both operands: keep the other's own layers in its history too
    mine = {id(s) for s in base.history}
    extra = tuple(s for s in other.history if id(s) not in mine)
    # the merge step records how many steps before it came from the other operand (for replaying)
    return base.derive(history=base.history + extra + (Step("merge", node, len(extra)),))


def _join_tensors(results: Sequence[TensorV], ends: Sequence[State]) -> Value:
    first = results[0]
    key = [(ends[i].facts.resolve(r.channels) if r.channels is not None else None, r.dims, r.flat)
           for i, r in enumerate(results)]
    if all(k == key[0] for k in key):
        return first.derive(history=first.history + (Step("keep", L.NOWHERE),))
    return UNKNOWN


def _is_layer_class(qualname: str) -> bool:
    return qualname.startswith("torch.nn.") and qualname.count(".") == 2 and qualname[9:10].isupper()


def _nested_module_calls(value: Optional[ast.AST]) -> List[ast.Call]:
    """``self.block(x)`` calls inside an expression whose arguments are plain names (evaluating them
    ahead of the expression changes nothing), in source order."""
    found: List[ast.Call] = []
    stack = [value] if value is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                          ast.GeneratorExp)):
            continue  # evaluated only on some condition, or later
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                and n.func.value.id == "self" and all(isinstance(a, ast.Name) for a in n.args) \
                and all(k.arg is not None and isinstance(k.value, ast.Name) for k in n.keywords):
            found.append(n)
        stack.extend(reversed(list(ast.iter_child_nodes(n))))
    return found


def _plain(node: ast.expr) -> bool:
    """A name, a number, ``self.pos_embed``, ``-1``: an expression that runs no code."""
    while True:
        t = type(node)
        if t is ast.Name or t is ast.Constant:
            return True
        if t is ast.Attribute:
            node = node.value  # type: ignore[attr-defined]
        elif t is ast.UnaryOp:
            node = node.operand  # type: ignore[attr-defined]
        else:
            return False


_SELF_MUTATORS = {"setattr", "add_module", "register_module", "__setattr__", "append", "extend", "insert",
                  "update", "setdefault", "pop", "exec", "eval", "globals", "vars"}


def _changes_nothing(fn: Def) -> bool:
    """Whether ``fn`` (a helper or a method) leaves ``self`` and everything convlint models alone: no
    ``self.x = ...``, no other method of ``self`` called, no ``setattr``/``add_module``, no container
    changed in place, no ``global``; worked out once and kept on the node."""
    known = getattr(fn, "_convlint_changes_nothing", None)
    if known is not None:
        return known
    params = signature(fn).positional
    me = params[0].name if params and params[0].name in ("self", "cls") else None
    verdict = True
    for node in (n for stmt in fn.body for n in ast.walk(stmt)):
        t = type(node)
        if t in (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.ClassDef):
            verdict = False
        elif t in (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete):
            targets = node.targets if t in (ast.Assign, ast.Delete) else [node.target]  # type: ignore[attr-defined]
            verdict = all(isinstance(x, ast.Name) for target in targets for x in _targets(target))
        elif t is ast.Call:
            func = node.func  # type: ignore[attr-defined]
            name = func.id if type(func) is ast.Name else func.attr if type(func) is ast.Attribute else None
            on_self = type(func) is ast.Attribute and type(func.value) is ast.Name and func.value.id == me
            verdict = name not in _SELF_MUTATORS and not (on_self and name not in ("register_buffer",
                                                                                   "register_parameter"))
        if not verdict:
            break
    fn._convlint_changes_nothing = verdict  # type: ignore[union-attr]
    return verdict


def _unchanging(value: Value) -> bool:
    """A value no code can change (so one object may stand for it everywhere)."""
    if isinstance(value, (IntV, StrV, BoolV, NoneV, RefV, ClassV, FuncV, ParamV)):
        return True
    return isinstance(value, TupleV) and all(_unchanging(v) for v in value.items)


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if dotted(target) in ("dataclass", "dataclasses.dataclass"):
            return True
    return False


def _assignment_counts(fn: Def) -> Dict[str, int]:
    """How many times each local variable of ``fn`` is bound (parameters once; a loop or ``+=`` twice),
    nested scopes left out; ``global``/``nonlocal`` names are not its own."""
    counts: Dict[str, int] = {}
    outside: set = set()

    def bind(target: Union[ast.expr, str], times: int = 1) -> None:
        for name in ((target,) if isinstance(target, str) else _targets(target)):
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + times
            elif isinstance(name, ast.Name):
                counts[name.id] = counts.get(name.id, 0) + times

    def visit(node: ast.AST, loop: int) -> None:
        times = 2 if loop else 1
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name, times)
            return  # its body is its own scope
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Assign):
            for t in node.targets:
                bind(t, times)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            bind(node.target, times)
        elif isinstance(node, ast.AugAssign):
            bind(node.target, 2)
        elif isinstance(node, ast.NamedExpr):
            bind(node.target, times)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            if not isinstance(node, ast.While):
                bind(node.target, 2)
            loop += 1
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            bind(node.optional_vars, times)
        elif isinstance(node, ast.ExceptHandler) and node.name is not None:
            bind(node.name, times)
        elif isinstance(node, ast.alias):
            bind(node.asname or node.name.split(".")[0], times)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            outside.update(node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, loop)

    sig = signature(fn)
    for p in (*sig.positional, *sig.keyword_only):
        bind(p.name)
    for star in (sig.star, sig.star_star):
        if star is not None:
            bind(star)
    for stmt in fn.body:
        visit(stmt, 0)
    return {name: n for name, n in counts.items() if name not in outside}


def _is_method(fn: Def) -> bool:
    params = signature(fn).positional
    return bool(params) and params[0].name in ("self", "cls")


def _targets(node: ast.expr) -> Iterable[ast.expr]:
    if isinstance(node, (ast.Tuple, ast.List)):
        for el in node.elts:
            yield from _targets(el.value if isinstance(el, ast.Starred) else el)
    else:
        yield node


def _index_of(node: ast.Subscript) -> Optional[ast.expr]:
    """The index of ``a[i]``; None for a slice or several indices (``a[1:]``, ``a[i, j]``)."""
    index = node.slice
    return None if isinstance(index, (ast.Slice, ast.Tuple)) else index


def _plain_arguments(node: ast.Call) -> bool:
    """Only positional arguments, none of them starred."""
    return not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)


def _rest_of(node: ast.BoolOp) -> ast.BoolOp:
    """``b or c`` of ``a or b or c``, placed where it is in the source (its text names conditions);
    made once and kept on the node."""
    rest = getattr(node, "_convlint_rest", None)
    if rest is None:
        rest = ast.BoolOp(op=node.op, values=node.values[1:])
        first, last = node.values[1], node.values[-1]
        rest.lineno, rest.col_offset = first.lineno, first.col_offset
        rest.end_lineno, rest.end_col_offset = last.end_lineno, last.end_col_offset
        node._convlint_rest = rest  # type: ignore[attr-defined]
    return rest


_SIMPLE = {ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return, ast.Raise, ast.Assert, ast.Import,
           ast.ImportFrom, ast.Delete, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal}
_COMPOUND = tuple(t for t in (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try,
                              getattr(ast, "TryStar", None), getattr(ast, "Match", None), ast.FunctionDef,
                              ast.AsyncFunctionDef, ast.ClassDef) if t is not None)
_LEAVES_LOOP = (ast.Break, ast.Continue, ast.Return, ast.Yield, ast.YieldFrom)
_HAVOC_KINDS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.withitem, ast.NamedExpr,
                ast.Call)

_BIN_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.Div: "/",
    ast.MatMult: "@",
}
_CMP_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_CMP_EVAL = {
    "==": lambda d: d == 0, "!=": lambda d: d != 0, "<": lambda d: d < 0, "<=": lambda d: d <= 0,
    ">": lambda d: d > 0, ">=": lambda d: d >= 0,
}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}

_TENSOR_FACTORIES = {"torch.randn", "torch.rand", "torch.zeros", "torch.ones", "torch.empty"}
_PURE_METHODS = {"count", "index", "copy", "get", "keys", "values", "items"}
_MODULE_MUTATORS = {"append", "extend", "insert", "add_module", "register_module", "pop", "__setitem__",
                    "__delitem__"}
# attributes every nn.Module has (hasattr is true for them whatever the class sets)
_MODULE_ATTRIBUTES = {"training", "forward", "_modules", "_parameters", "_buffers", "__class__", "__dict__"}

_BUILTINS = {"super", "dict", "type", "enumerate", "zip", "int", "max", "min", "tuple", "list", "len", "isinstance", "getattr", "range",
             "float", "round", "abs", "bool", "print", "setattr", "hasattr", "sum", "any", "all", "str"}

_KEEP_FUNCTIONS = {
    "relu", "relu_", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu",
    "leaky_relu_", "elu", "selu", "celu", "mish", "softplus", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "softmax", "log_softmax", "batch_norm", "group_norm", "instance_norm",
    "normalize", "hardtanh", "prelu", "sigmoid_", "tanh_", "clamp", "clamp_", "abs", "neg", "exp",
    "local_response_norm", "channel_shuffle",
}
_KEEP_METHODS = {
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "contiguous", "clone", "float", "half",
    "double", "to", "type_as", "detach", "clamp", "clamp_", "clamp_min", "clamp_min_", "abs", "neg",
    "exp", "sqrt", "pow", "softmax", "log_softmax", "requires_grad_", "cpu", "cuda", "bfloat16",
}
