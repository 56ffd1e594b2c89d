"""The interpreter's core: the file it runs in, its caches and budget, and the tables that dispatch
expressions, statements and callees to their handlers (filled by the modules beside this one).

The handlers call back through ``Interpreter.eval``, ``exec_block`` and ``apply``, so the modules that
hold them import this one and never each other in a circle.
"""
from __future__ import annotations

import ast
import functools
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Type, TypeVar

from ..source.environment import Environment
from ..source.module_names import reads_in_place
from ..torchlib.library import MODELLED_MODULES
from ..torchlib.values import FALSE, NONE, TRUE, UNKNOWN, BoolV, IntV, NoneV, ParamV, RefV, StrV, TupleV, Value
from .files import DEFS, FileIndex, canonical
from ..limits import MAX_PATHS, STEP_BUDGET, FileBudget, OutOfBudget
from .loader import installed_modules, library_index
from .objects import ClassV, Def, FuncV, ProjectRefV
from .state import Arguments, Context, State

ExprHandler = Callable[["Interpreter", Any, State, Context], Value]
StmtHandler = Callable[["Interpreter", Any, List[State], Context], List[State]]
CalleeHandler = Callable[["Interpreter", Any, Arguments, "CallSite"], Value]
E = TypeVar("E", bound=ExprHandler)
S = TypeVar("S", bound=StmtHandler)
C = TypeVar("C", bound=CalleeHandler)
F = TypeVar("F", bound=Callable[..., Any])

_EXPRESSIONS: Dict[type, ExprHandler] = {}
_STATEMENTS: Dict[type, StmtHandler] = {}
_CALLEES: Dict[type, CalleeHandler] = {}

# names Python gives every module (a name the file does not bind is one of these, or unknown)
BUILTINS = {"super", "dict", "type", "enumerate", "zip", "int", "max", "min", "tuple", "list", "len",
            "isinstance", "getattr", "range", "float", "round", "abs", "bool", "print", "setattr", "hasattr",
            "sum", "any", "all", "str"}


def expression(*types: Type[ast.expr]) -> Callable[[E], E]:
    """Register the handler of these expression node types: ``(interpreter, node, state, context)
    -> value``."""
    def register(handler: E) -> E:
        for t in types:
            _EXPRESSIONS[t] = handler
        return handler
    return register


def statement(*types: Type[ast.stmt]) -> Callable[[S], S]:
    """Register the handler of these statement node types: ``(interpreter, node, live paths, context)
    -> the paths after it``."""
    def register(handler: S) -> S:
        for t in types:
            _STATEMENTS[t] = handler
        return handler
    return register


def callee(*types: Type[Value]) -> Callable[[C], C]:
    """Register what calling a value of these types does: ``(interpreter, callee, arguments, call site)
    -> value``."""
    def register(handler: C) -> C:
        for t in types:
            _CALLEES[t] = handler
        return handler
    return register


def in_owner(node_of: Callable[[Any], Optional[ast.AST]]) -> Callable[[F], F]:
    """Run the function in the file that defines the class or function its first argument names."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(it: "Interpreter", first: Any, *args: Any, **kwargs: Any) -> Any:
            node = node_of(first)
            owner = it.owners.get(id(node)) if node is not None else None
            if node is None or owner is None or owner is it.index:
                return fn(it, first, *args, **kwargs)
            with it.within(node):
                return fn(it, first, *args, **kwargs)
        return wrapper  # type: ignore[return-value]  # (the same signature: functools.wraps keeps it)
    return decorate


class CallSite:
    """A call being run on one path: its node, the path, the context (``operators.OpCall`` gives it
    the services tensor ops need)."""

    def __init__(self, node: ast.Call, st: State, ctx: Context):
        self.node, self.st, self.ctx = node, st, ctx


class Interpreter:
    """Runs one checked file's code symbolically (and the code of the files it imports) and emits the
    facts it finds (``convlint.torchlib.events``) to ``emit``."""

    def __init__(self, index: FileIndex, emit: Callable[[object], None], budget: Optional[FileBudget] = None,
                 environment: Optional[Environment] = None):
        self.index = index
        self.environment = environment  # where the checked code's libraries are installed (their versions)
        self.installed = installed_modules(environment) if environment is not None else None
        self.checked = index  # the file being checked (``index`` moves to another file's code while it runs)
        self._sink = emit
        self.budget = budget or FileBudget()  # the file's work, time and memory (convlint.limits)
        self.owners: Dict[int, FileIndex] = {}  # class/function node -> the file that defines it
        self.method_class: Dict[int, ast.ClassDef] = {}  # method node -> the class defining it
        self.checked_calls: Set[int] = set()    # the classes instantiated by the checked file's code
        self.in_progress: Set[object] = set()   # classes, functions and constants being run (no recursion)
        self.running: List[Def] = []            # the functions being run, innermost last
        self.steps = 0                          # statements run by the current root
        self.builders: Optional[Set[int]] = None  # module-level functions that build a model of this file
        self.builder_helpers: Set[int] = set()   # those of them another one calls (run with its numbers)
        self.builder_steps = STEP_BUDGET          # what the model builders of the file may still run
        self.module_calls: Dict[int, List[ast.Call]] = {}  # statement -> the `self.x(name)` calls in it
        self.havoc_nodes: Dict[int, List[ast.AST]] = {}    # statement -> the nodes that may bind names in it
        self._constants: Dict[Tuple[int, str], Value] = {}
        self._static: Dict[Tuple[int, int], Value] = {}
        self._code: Dict[int, str] = {}
        self._registered: Dict[int, FileIndex] = {}
        self.register(index)

    # --- files ----------------------------------------------------------------------------------

    def register(self, index: FileIndex) -> None:
        if id(index) in self._registered:
            return
        self._registered[id(index)] = index  # (kept: the id stays this index's)
        for node in [*index.classes, *index.functions]:
            self.owners[id(node)] = index
        for cls in index.classes:
            self.register_methods(cls)

    def register_methods(self, cls: ast.ClassDef) -> None:
        owner = self.owners.get(id(cls), self.index)
        for stmt in cls.body:
            if isinstance(stmt, DEFS):
                self.method_class[id(stmt)] = cls
                self.owners[id(stmt)] = owner  # a method runs with its own file's names

    @contextmanager
    def within(self, node: ast.AST) -> Iterator[None]:
        """Evaluate in the file that defines ``node`` (a helper or class of another checked file)."""
        previous = self.index
        self.index = self.owners.get(id(node), previous)
        try:
            yield
        finally:
            self.index = previous

    def resolve_project(self, ref: ProjectRefV, depth: int = 0) -> Value:
        """``from .layers import create_conv2d``: the helper as the other file (or a library model) defines it."""
        project = self.index.project
        if depth > 8:
            return UNKNOWN
        models = library_index(ref.module, self.environment) if ref.module in MODELLED_MODULES else None
        index: Optional[FileIndex]
        if models is not None and ref.name in models.names:
            index = models  # a library helper convlint models (see convlint.torchlib.library)
        elif project is not None and project.has_module(ref.module):
            index = project.index(ref.module)
        elif models is None and self.installed is not None and self.installed.has_module(ref.module):
            index = self.installed.index(ref.module)  # an installed library's own source, read in place
        else:
            index = models
        if index is None:
            # not found: a name of a library as torch names are (unknown unless the catalogue has it)
            return RefV(canonical(f"{ref.module}.{ref.name}")) if reads_in_place(ref.module) else UNKNOWN
        self.register(index)
        value = index.names.get(ref.name)
        if isinstance(value, ProjectRefV):
            return self.resolve_project(value, depth + 1)
        return UNKNOWN if value is None else value

    # --- dispatch -------------------------------------------------------------------------------

    def eval(self, node: ast.expr, st: State, ctx: Context) -> Value:
        handler = _EXPRESSIONS.get(type(node))
        return UNKNOWN if handler is None else handler(self, node, st, ctx)

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

    def emit(self, event: object) -> None:
        self.budget.spend()  # every fact kept is memory: facts count as work
        self._sink(event)

    def exec_stmt(self, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
        self.steps += len(states)
        self.budget.spend(len(states))
        if self.steps > STEP_BUDGET:
            raise OutOfBudget
        handler = _STATEMENTS.get(type(stmt)) or _STATEMENTS[ast.stmt]  # (ast.stmt: any other statement)
        return handler(self, stmt, states, ctx)

    def apply(self, func: Value, arguments: Arguments, site: CallSite) -> Value:
        """Call ``func`` (a function, a class, a layer, a torch name, ...) with ``arguments``."""
        self.budget.spend()
        handler = _CALLEES.get(type(func))
        return UNKNOWN if handler is None else handler(self, func, arguments, site)

    # --- names ----------------------------------------------------------------------------------

    def code(self, node: ast.AST) -> str:
        """A node's text, unparsed (not read from the file: the node may be another file's); it names
        opaque conditions."""
        key = id(node)
        text = self._code.get(key)
        if text is None:
            text = self._code[key] = ast.unparse(node)
        return text

    def lookup(self, name: str, st: State) -> Value:
        if name in st.env:
            return st.env[name]
        index = self.index
        if name in index.names:
            value = index.names[name]
            return self.resolve_project(value) if isinstance(value, ProjectRefV) else value
        if name in index.constants:
            return self._constant(index, name)
        if name == "True":
            return BoolV(TRUE)
        if name == "False":
            return BoolV(FALSE)
        if name == "None":
            return NONE
        if index.star_torch_nn:
            return RefV(f"torch.nn.{name}")
        if name in BUILTINS:
            return RefV(f"builtins.{name}")
        return UNKNOWN

    def _constant(self, index: FileIndex, name: str) -> Value:
        key = (id(index), name)
        if key not in self._constants:
            if key in self.in_progress:
                return UNKNOWN
            self.in_progress.add(key)
            try:
                self._constants[key] = self.eval_static(index.constants[name])
            finally:
                self.in_progress.discard(key)
        return self._constants[key]

    def eval_static(self, expr: ast.expr) -> Value:
        """An expression at module level (bases, defaults, class attributes); a value that cannot
        change (a number, a name of a class) is worked out once."""
        key = (id(self.index), id(expr))
        value = self._static.get(key)
        if value is None:
            value = self.eval(expr, State.empty(), Context(report_adds=False, anchor=expr))
            if unchanging(value):
                self._static[key] = value
        return value


def unchanging(value: Value) -> bool:
    """A value no code can change (so one object may stand for it everywhere)."""
    if isinstance(value, (IntV, StrV, BoolV, NoneV, RefV, ClassV, FuncV, ParamV)):
        return True
    return isinstance(value, TupleV) and all(unchanging(v) for v in value.items)

