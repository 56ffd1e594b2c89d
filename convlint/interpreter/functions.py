"""Functions and methods of the analysed code: binding arguments, running a body on a path, and what
a nested function sees of its enclosing one."""
from __future__ import annotations

import ast
from typing import Dict, List, Optional, Set, Tuple, Union

from ..torchlib.layers import Opaque
from ..torchlib.values import NONE, UNKNOWN, LayerV, ParamV, RefV, TupleV, Value
from .classes import is_layer_class
from .files import Param, is_method, signature
from ..limits import MAX_DEPTH
from .machine import CallSite, Interpreter, in_owner
from .merging import merge_into
from .objects import ClassV, Def, DictV, Env, FuncV, SelfV
from .state import Arguments, Context, State


def bind(it: Interpreter, fn: Def, arguments: Arguments, skip_self: bool, ctx: Context) -> Env:
    sig = signature(fn)
    args, kwargs = arguments.positional, arguments.keywords
    params = sig.positional[1:] if skip_self else sig.positional
    env: Env = {}
    for i, p in enumerate(params):
        name = p.name
        if i < len(args):
            env[name] = args[i]
        elif name in kwargs:
            env[name] = kwargs[name]
        else:
            env[name] = unbound(it, p, ctx)
    for p in sig.keyword_only:
        env[p.name] = kwargs[p.name] if p.name in kwargs else unbound(it, p, ctx)
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


def unbound(it: Interpreter, p: Param, ctx: Context) -> Value:
    """An argument the call did not give. Inside a call its default is what the code runs with.
    At the top of an analysis every argument is a symbol, except a layer class given as default
    (``norm_layer=nn.BatchNorm2d``): the module is checked as it is built by default; and an
    optional part that is None by default (``aa_layer=None``, ``downsample=None``) is left out:
    as a symbol its None path was judged anyway, and its other paths (an unknown part) fork
    without end and judge little."""
    if p.default is not None:
        if ctx.depth > 0:
            return it.eval_static(p.default)
        default = it.eval_static(p.default)
        if isinstance(default, RefV) and is_layer_class(default.qualname) or isinstance(default, ClassV) \
                or default is NONE:
            return default
    return ParamV(ctx.owner + p.name)


def run_function(it: Interpreter, fn: Def, arguments: Arguments, caller: State, ctx: Context,
                 self_v: Optional[SelfV] = None, split: bool = False,
                 closure: Optional[Env] = None) -> List[State]:
    """Run ``fn``'s body on a copy of the caller's facts (``split``: on the caller's own facts, for a
    root whose paths are its own); returns its end states."""
    env = bind(it, fn, arguments, skip_self=self_v is not None or is_method(fn), ctx=ctx)
    closure = closure if closure is not None else (self_v.closure if self_v is not None else None)
    if closure:
        env = {**closure, **env}  # a nested def reads its enclosing function's variables
    if self_v is not None:
        params = signature(fn).positional
        if params:
            env[params[0].name] = self_v
    start = State(env, caller.facts.copy() if not split else caller.facts, dict(caller.truths), self_v)
    it.running.append(fn)
    try:
        states = it.exec_block(fn.body, [start], ctx)
    finally:
        it.running.pop()
    return [s for s in states if not s.facts.infeasible]


def closure_of(it: Interpreter, st: State) -> Optional[Env]:
    """What a def inside the running function sees of its variables. Python reads them when the
    nested code runs, not when it is defined: a variable bound once is known now, one bound again
    (or later) is unknown; never the global of the same name."""
    if not it.running:
        return None
    fn = it.running[-1]
    counts = assignment_counts(fn)
    return {name: st.env[name] if n == 1 and name in st.env else UNKNOWN for name, n in counts.items()}


def call_function(it: Interpreter, fn: FuncV, arguments: Arguments, site: CallSite) -> Value:
    """A helper or a method called from an expression: its paths merged into one value."""
    ends = function_ends(it, fn, arguments, site)
    # a method of another module (`self.pool.feat_mult()`) changes that module, not the caller's self
    same_self = fn.bound_self is None or fn.bound_self is site.st.self_v
    value = UNKNOWN if ends is None else merge_into(site.st, ends, same_self)
    if value is UNKNOWN and returns_built_object(fn.node):
        return LayerV(Opaque(site.node))  # its paths built different things: unknown, but never None
    return value


@in_owner(lambda fn: fn.node)
def function_ends(it: Interpreter, fn: FuncV, arguments: Arguments, site: CallSite) -> Optional[List[State]]:
    """The end states of a call's body (None: not followed)."""
    ctx = site.ctx
    if ctx.depth >= MAX_DEPTH or id(fn.node) in it.in_progress:
        return None
    if fn.bound_self is None and is_method(fn.node):
        return None
    if fn.bound_self is None and ctx.anchor is None:
        # layers a module-level helper builds are reported at this call
        inner = ctx.inner(anchor=site.node, report_adds=False, owner=f"{fn.node.name}.")
    elif fn.bound_self is None:
        inner = ctx.inner(owner=f"{fn.node.name}.")
    elif ctx.anchor is None and it.index is not it.checked:
        inner = ctx.inner(anchor=site.node)  # a base class's method in another file: what it builds is this call's
    else:
        inner = ctx.inner()
    it.in_progress.add(id(fn.node))
    try:
        ends = run_function(it, fn.node, arguments, site.st, inner, fn.bound_self, closure=fn.closure)
    finally:
        it.in_progress.discard(id(fn.node))
    if returns_built_object(fn.node):
        for end in ends:
            if end.returned is UNKNOWN:  # not known, but built: never None (`if self.downsample is not None`)
                end.returned = LayerV(Opaque(site.node))
    return ends


def returns_built_object(fn: Def) -> bool:
    """Whether every ``return`` of ``fn`` returns a call's result and its body ends with one (a helper
    such as ``def downsample_conv(...): ... return nn.Sequential(...)`` never returns None)."""
    known = getattr(fn, "_convlint_returns_call", None)
    if isinstance(known, bool):
        return known
    answer = bool(fn.body) and isinstance(fn.body[-1], ast.Return)
    stack: List[ast.AST] = list(fn.body)
    while stack and answer:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested scope's returns are its own
        if isinstance(node, (ast.Yield, ast.YieldFrom)) or (isinstance(node, ast.Return) and not isinstance(node.value, ast.Call)):
            answer = False
        stack.extend(ast.iter_child_nodes(node))
    setattr(fn, "_convlint_returns_call", answer)
    return answer


def assignment_counts(fn: Def) -> Dict[str, int]:
    """How many times each local variable of ``fn`` is bound (parameters once; a loop or ``+=`` twice),
    nested scopes left out; ``global``/``nonlocal`` names are not its own. Worked out once per function."""
    known = getattr(fn, "_convlint_assignments", None)
    if isinstance(known, dict):
        return known
    bindings = _Bindings()
    sig = signature(fn)
    for name in (*(p.name for p in (*sig.positional, *sig.keyword_only)), sig.star, sig.star_star):
        if name is not None:
            bindings.bind(name, 1)
    for stmt in fn.body:
        bindings.visit_in(stmt, 0)
    result = {name: n for name, n in bindings.counts.items() if name not in bindings.outside}
    setattr(fn, "_convlint_assignments", result)
    return result


class _Bindings:
    """The names a function body binds, counted (see ``assignment_counts``)."""

    _OWN_SCOPE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}
        self.outside: Set[str] = set()  # global / nonlocal names

    def bind(self, target: Union[ast.expr, str], times: int) -> None:
        for name in ((target,) if isinstance(target, str) else targets_of(target)):
            if isinstance(name, str):
                self.counts[name] = self.counts.get(name, 0) + times
            elif isinstance(name, ast.Name):
                self.counts[name.id] = self.counts.get(name.id, 0) + times

    def visit_in(self, node: ast.AST, loop: int) -> None:
        """Count what ``node`` binds, inside ``loop`` nested loops (a binding in a loop counts twice)."""
        times = 2 if loop else 1
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.bind(node.name, times)
            return  # its body is its own scope
        if isinstance(node, self._OWN_SCOPE):
            return
        for target, count in self._targets(node, times):
            self.bind(target, count)
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            loop += 1
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.outside.update(node.names)
        for child in ast.iter_child_nodes(node):
            self.visit_in(child, loop)

    @staticmethod
    def _targets(node: ast.AST, times: int) -> List[Tuple[Union[ast.expr, str], int]]:
        if isinstance(node, ast.Assign):
            return [(t, times) for t in node.targets]
        if isinstance(node, (ast.AnnAssign, ast.NamedExpr)):
            return [(node.target, times)] if not isinstance(node, ast.AnnAssign) or node.value is not None else []
        if isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
            return [(node.target, 2)]
        if isinstance(node, ast.withitem) and node.optional_vars is not None:
            return [(node.optional_vars, times)]
        if isinstance(node, ast.ExceptHandler) and node.name is not None:
            return [(node.name, times)]
        if isinstance(node, ast.alias):
            return [(node.asname or node.name.split(".")[0], times)]
        return []


def targets_of(node: ast.expr) -> List[ast.expr]:
    """The names, attributes and items an assignment target binds (tuples unpacked)."""
    if isinstance(node, (ast.Tuple, ast.List)):
        out: List[ast.expr] = []
        for el in node.elts:
            out.extend(targets_of(el.value if isinstance(el, ast.Starred) else el))
        return out
    return [node]
