"""Statements: one handler per node type (registered with ``machine.statement``). An ``if`` the
path's facts do not decide forks the path; a loop over a known, short sequence is unrolled; anything
not modelled forgets what it may set."""
from __future__ import annotations

import ast
from typing import Any, Callable, Dict, List, Sequence, Type, TypeVar, Union

from ..torchlib.values import NONE, UNKNOWN, LayerV, TensorV, TupleV
from .assignment import assign, replace_item
from .conditions import assume, decide
from .expressions import loop_items
from .files import signature
from .forking import split_on_call, split_on_ifexp
from .functions import closure_of, targets_of
from ..limits import MAX_PATHS
from .machine import Interpreter, statement
from .objects import ClassV, Def, DictV, FuncV, NamedLayersV, SelfV
from .operators import BIN_OPS, binop, to_cond
from .state import Context, State

Small = Callable[[Interpreter, Any, State, Context], bool]  # False: the path ends in an exception
H = TypeVar("H", bound=Small)
_SMALL: Dict[type, Small] = {}

_LEAVES_LOOP = (ast.Break, ast.Continue, ast.Return, ast.Yield, ast.YieldFrom)
_HAVOC_KINDS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.withitem, ast.NamedExpr,
                ast.Call)
_SELF_MUTATORS = {"setattr", "add_module", "register_module", "__setattr__", "append", "extend", "insert",
                  "update", "setdefault", "pop", "exec", "eval", "globals", "vars"}


def small(*types: Type[ast.stmt]) -> Callable[[H], H]:
    """Register how one path runs a statement without a body (False: the path ends in an exception)."""
    def register(handler: H) -> H:
        for t in types:
            _SMALL[t] = handler
        return handler
    return register


@statement(ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return, ast.Raise, ast.Assert, ast.Import,
           ast.ImportFrom, ast.Delete, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)
def simple(it: Interpreter, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
    """A statement without a body: each path forks where it chooses, then runs it."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and all(
            call_changes_nothing(it, stmt.value, st, ctx) for st in states):
        return states
    states = split_on_call(it, stmt, split_on_ifexp(it, stmt, states, ctx), ctx)
    run = _SMALL.get(type(stmt))
    if run is None:
        return states
    return [st for st in states if run(it, stmt, st, ctx)]


@small(ast.Assign)
def _assign(it: Interpreter, stmt: ast.Assign, st: State, ctx: Context) -> bool:
    value = it.eval(stmt.value, st, ctx)
    for target in stmt.targets:
        assign(it, target, value, st)
    return True


@small(ast.AnnAssign)
def _annotated_assign(it: Interpreter, stmt: ast.AnnAssign, st: State, ctx: Context) -> bool:
    if stmt.value is not None:
        assign(it, stmt.target, it.eval(stmt.value, st, ctx), st)
    return True


@small(ast.AugAssign)
def _augmented_assign(it: Interpreter, stmt: ast.AugAssign, st: State, ctx: Context) -> bool:
    left = it.eval(stmt.target, st, ctx)
    right = it.eval(stmt.value, st, ctx)
    op = BIN_OPS.get(type(stmt.op))
    assign(it, stmt.target, binop(it, op, left, right, stmt, st, ctx) if op else UNKNOWN, st)
    return True


@small(ast.Expr)
def _expression(it: Interpreter, stmt: ast.Expr, st: State, ctx: Context) -> bool:
    value = stmt.value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):  # docstrings
        it.eval(value, st, ctx)
    return True


@small(ast.Return)
def _return(it: Interpreter, stmt: ast.Return, st: State, ctx: Context) -> bool:
    st.returned = NONE if stmt.value is None else it.eval(stmt.value, st, ctx)
    st.done = True
    return True


@small(ast.Raise)
def _raise(it: Interpreter, stmt: ast.Raise, st: State, ctx: Context) -> bool:
    return False


@small(ast.Assert)
def _assert(it: Interpreter, stmt: ast.Assert, st: State, ctx: Context) -> bool:
    cond = to_cond(it, it.eval(stmt.test, st, ctx), stmt.test)
    if decide(cond, st) is False:
        return False
    assume(cond, True, st)
    return not st.facts.infeasible


@small(ast.Import, ast.ImportFrom)
def _import(it: Interpreter, stmt: Union[ast.Import, ast.ImportFrom], st: State, ctx: Context) -> bool:
    it.index.add_import(stmt, st.env)
    return True


@small(ast.Delete)
def _delete(it: Interpreter, stmt: ast.Delete, st: State, ctx: Context) -> bool:
    for target in stmt.targets:
        for t in targets_of(target):
            if isinstance(t, ast.Subscript):
                replace_item(it, t, None, st)
            elif isinstance(t, ast.Name):
                st.env.pop(t.id, None)
            else:
                assign(it, t, UNKNOWN, st)
    return True


@statement(ast.If)
def run_if(it: Interpreter, stmt: ast.If, states: List[State], ctx: Context) -> List[State]:
    out: List[State] = []
    for st in states:
        cond = to_cond(it, it.eval(stmt.test, st, ctx), stmt.test)
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
            if len(orelse) == 1 and isinstance(orelse[0], ast.If):  # `elif`
                out.extend(run_if(it, orelse[0], [f], ctx) if not f.facts.infeasible else [])
            else:
                branches.append((f, orelse))
        for bst, body in branches:
            if not bst.facts.infeasible:
                out.extend(it.exec_block(body, [bst], ctx))
    return out


@statement(ast.For)
def run_for(it: Interpreter, stmt: ast.For, states: List[State], ctx: Context) -> List[State]:
    """A loop over a known, short sequence (a list of layers, a ModuleList, ``range(4)``) runs once
    per item; any other loop forgets what its body sets."""
    out: List[State] = []
    simple_loop = not stmt.orelse and not _leaves_loop(it, stmt)
    for st in states:
        items = loop_items(it, stmt.iter, st, ctx) if simple_loop else None
        if items is None:
            havoc(it, stmt, st)
            out.append(st)
            continue
        paths = [st]
        for item in items:
            live = [p for p in paths if not p.done]
            for p in live:
                assign(it, stmt.target, item, p)
            paths = [p for p in paths if p.done] + it.exec_block(stmt.body, live, ctx)
            if len(paths) > MAX_PATHS:
                paths = paths[:MAX_PATHS]
        out.extend(paths)
    return out


def _leaves_loop(it: Interpreter, stmt: ast.For) -> List[ast.AST]:
    """The statements that leave a loop's body early (a loop with any is not unrolled)."""
    nodes = it.havoc_nodes.get(-id(stmt))
    if nodes is None:
        nodes = it.havoc_nodes[-id(stmt)] = [n for s in stmt.body for n in ast.walk(s) if isinstance(n, _LEAVES_LOOP)]
    return nodes


@statement(ast.With, ast.AsyncWith)
def run_with(it: Interpreter, stmt: Union[ast.With, ast.AsyncWith], states: List[State], ctx: Context) -> List[State]:
    return it.exec_block(stmt.body, states, ctx)


@statement(ast.Try)
def run_try(it: Interpreter, stmt: ast.Try, states: List[State], ctx: Context) -> List[State]:
    # the code catches what its body may raise: its adds are not ours to judge
    return it.exec_block(stmt.body, states, ctx.quiet if stmt.handlers else ctx)


@statement(ast.FunctionDef, ast.AsyncFunctionDef)
def define_function(it: Interpreter, stmt: Def, states: List[State], ctx: Context) -> List[State]:
    for st in states:
        st.env[stmt.name] = FuncV(stmt, closure=closure_of(it, st))
    return states


@statement(ast.ClassDef)
def define_class(it: Interpreter, stmt: ast.ClassDef, states: List[State], ctx: Context) -> List[State]:
    it.register_methods(stmt)
    for st in states:
        st.env[stmt.name] = ClassV(stmt, closure=closure_of(it, st))
    return states


@statement(ast.stmt)
def unmodelled(it: Interpreter, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
    """`while`, `match`, `async for`: what they may set is forgotten."""
    for st in states:
        havoc(it, stmt, st)
    return states


def havoc(it: Interpreter, stmt: ast.AST, st: State) -> None:
    """Forget every name and ``self.`` attribute a loop (or other unmodelled statement) may set."""
    nodes = it.havoc_nodes.get(id(stmt))
    if nodes is None:
        nodes = it.havoc_nodes[id(stmt)] = [n for n in ast.walk(stmt) if isinstance(n, _HAVOC_KINDS)]
    for node in nodes:
        targets: Sequence[ast.expr] = ()
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
            targets = (node.target,)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = (node.optional_vars,)
        elif isinstance(node, ast.Call):
            _forget_what_a_call_changes(node, st)
        for target in targets:
            for t in targets_of(target):
                if isinstance(t, ast.Name):
                    st.env[t.id] = UNKNOWN
                elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                    owner = st.env.get(t.value.id)
                    if isinstance(owner, SelfV):
                        owner.attrs[t.attr] = UNKNOWN


def _forget_what_a_call_changes(node: ast.Call, st: State) -> None:
    if isinstance(node.func, ast.Attribute):
        recv = node.func.value
        if isinstance(recv, ast.Name):
            current = st.env.get(recv.id)
            if recv.id in st.env and not isinstance(current, SelfV):
                st.env[recv.id] = UNKNOWN      # `layers.append(...)` changes `layers`
            elif isinstance(current, SelfV) and node.func.attr in ("add_module", "register_module"):
                current.seq_layers = None
                current.attrs.clear()
                current.complete = False
        elif isinstance(recv, ast.Attribute) and isinstance(recv.value, ast.Name):
            owner = st.env.get(recv.value.id)
            if isinstance(owner, SelfV):
                owner.attrs[recv.attr] = UNKNOWN
    elif isinstance(node.func, ast.Name) and node.func.id == "setattr" and st.self_v is not None:
        st.self_v.attrs.clear()
        st.self_v.complete = False


def call_changes_nothing(it: Interpreter, call: ast.Call, st: State, ctx: Context) -> bool:
    """``trunc_normal_(self.pos_embed, std=.02)``, ``self.reset_parameters()``: a call whose result
    is dropped, of a function of the analysed code that sets no attribute of ``self`` and calls
    none of its other methods, given only plain values (names, numbers: no tensor, module, list or
    dict it could change). Running it could only change what convlint does not model, so it is
    not run (weight initialisation is a tenth of all the steps a model's analysis takes)."""
    if not _plain(call.func) or not all(_plain(a) for a in call.args) or \
            not all(k.arg is not None and _plain(k.value) for k in call.keywords):
        return False  # (evaluating a call here, then again if this one is run, would run it twice)
    func = it.eval(call.func, st, ctx.quiet)
    if not isinstance(func, FuncV) or not changes_nothing(func.node):
        return False
    values = [it.eval(a, st, ctx.quiet) for a in call.args] + \
        [it.eval(k.value, st, ctx.quiet) for k in call.keywords]
    return not any(isinstance(v, (TensorV, LayerV, DictV, TupleV, NamedLayersV, SelfV)) for v in values)


def _plain(node: ast.expr) -> bool:
    """A name, a number, ``self.pos_embed``, ``-1``: an expression that runs no code."""
    while True:
        if isinstance(node, (ast.Name, ast.Constant)):
            return True
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            return False


def changes_nothing(fn: Def) -> bool:
    """Whether ``fn`` (a helper or a method) leaves ``self`` and everything convlint models alone: no
    ``self.x = ...``, no other method of ``self`` called, no ``setattr``/``add_module``, no container
    changed in place, no ``global``; worked out once and kept on the node."""
    known = getattr(fn, "_convlint_changes_nothing", None)
    if isinstance(known, bool):
        return known
    params = signature(fn).positional
    me = params[0].name if params and params[0].name in ("self", "cls") else None
    verdict = True
    for node in (n for stmt in fn.body for n in ast.walk(stmt)):
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.ClassDef)):
            verdict = False
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            verdict = all(isinstance(x, ast.Name) for target in targets for x in targets_of(target))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            on_self = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == me
            verdict = name not in _SELF_MUTATORS and not (on_self and name not in ("register_buffer",
                                                                                   "register_parameter"))
        if not verdict:
            break
    setattr(fn, "_convlint_changes_nothing", verdict)
    return verdict

