"""Forking a path where the analysed code chooses: ``x = a if c else b`` on an undecided ``c``, and a
helper or module call whose paths give different results (each result a path of its own, with the
facts of the callee's path that gives it)."""
from __future__ import annotations

import ast
from typing import List, Optional, Tuple

from ..torchlib.layers import Opaque
from ..torchlib.values import NONE, UNKNOWN, LayerV, ParamV, TensorV, Value
from .calls import call_arguments
from .conditions import assume, decide
from .functions import function_ends
from ..limits import MAX_SPLIT
from .machine import CallSite, Interpreter
from .merging import merge_into
from .objects import Composite, FuncV
from .operators import to_cond
from .modules import composite_ends, composite_result, module_output
from .state import Context, State


def split_on_call(it: Interpreter, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
    """``self.aa = create_aa(aa_layer, ...)``: a module-level helper whose paths give different
    results forks the caller, each fork with the facts of the helper's path (``aa_layer`` falsy:
    an ``nn.Identity``), instead of merging them into an unknown."""
    value = getattr(stmt, "value", None)
    if isinstance(value, ast.Call):
        return split_one_call(it, value, states, ctx, helpers=True)
    nested = it.module_calls.get(id(stmt))
    if nested is None:
        nested = it.module_calls[id(stmt)] = nested_module_calls(value)
    for call in nested:  # `self.conv_1x1(x) + self.conv_kxk(x)`: each module call, in order
        states = split_one_call(it, call, states, ctx, helpers=False)
    return states


def split_one_call(it: Interpreter, call: ast.Call, states: List[State], ctx: Context, helpers: bool) -> List[State]:
    """Run ``call`` on each path ahead of its statement (a module call, or with ``helpers`` a
    module-level helper call) and fork the path on its distinct results."""
    out: List[State] = []
    for st in states:
        func = it.eval(call.func, st, ctx)
        module = func.layer if isinstance(func, LayerV) and isinstance(func.layer, Composite) else None
        helper = func if helpers and isinstance(func, FuncV) and func.bound_self is None else None
        if module is None and helper is None:
            out.append(st)
            continue
        arguments = call_arguments(it, call, st, ctx)
        args = arguments.positional
        if module is not None:
            # `x = self.block(x)`: a module whose variants give different results forks the caller
            x = args[0] if args and isinstance(args[0], TensorV) else None
            if arguments.starred or x is None:
                out.append(st)
                continue
            ends = composite_ends(it, module, x, st, ctx, args[1:], arguments.keywords)
            out.extend(_fork_on_module(module, x, call, st, ends))
        elif helper is not None:
            ends = None if arguments.starred else function_ends(it, helper, arguments, CallSite(call, st, ctx))
            out.extend(_fork_on_helper(call, st, ends))
    return out


def _fork_on_module(module: Composite, x: TensorV, call: ast.Call, st: State,
                    ends: Optional[List[State]]) -> List[State]:
    """A module's variants that give different known results stay merged: which one the caller built
    may be fixed by conditions convlint cannot read (``assert self.pool.feat_mult() == 1``); only an
    unknown variant gets a path of its own (a module's own conditions are about its own variables)."""
    live = [e for e in ends or () if not e.facts.infeasible]
    results = [module_output(module, x, NONE if e.returned is None else e.returned) for e in live]
    distinct = _distinct(live, results)
    if len(live) <= 1 or all(r == results[0] for r in results) or len(distinct) > 1:
        st.call_results[id(call)] = composite_result(module, x, st, live)
        return [st]
    return _forks(call, st, distinct, results, share_truths=False)


def _fork_on_helper(call: ast.Call, st: State, ends: Optional[List[State]]) -> List[State]:
    """``self.aa = create_aa(aa_layer, ...)``: one path per distinct known result of the helper, with
    the facts of a helper path that gives it; too many results are not worth the paths."""
    live = [e for e in ends or () if not e.facts.infeasible]
    results = [NONE if e.returned is None else e.returned for e in live]
    if len(live) <= 1 or all(r == results[0] for r in results):
        st.call_results[id(call)] = merge_into(st, live)
        return [st]
    distinct = _distinct(live, results)
    if len(distinct) > MAX_SPLIT:
        st.call_results[id(call)] = UNKNOWN
        return [st]
    return _forks(call, st, distinct, results, share_truths=True)


def _distinct(ends: List[State], results: List[Value]) -> List[Tuple[Value, State]]:
    """Each distinct known result, with the first end that gives it (a module convlint cannot know is
    not a result of its own: such ends share the caller's path, see ``_unknown_result``)."""
    distinct: List[Tuple[Value, State]] = []
    for end, result in zip(ends, results):
        if _unknown_result(result) is None and not any(r == result for r, _ in distinct):
            distinct.append((result, end))
    return distinct


def _unknown_result(result: Value) -> Optional[Value]:
    """What the caller's own path holds for a result it cannot know: unknown, or a module of unknown
    shape (``nn.Module()`` of a library model: unknown, but never None)."""
    if result is UNKNOWN:
        return UNKNOWN
    if isinstance(result, LayerV) and isinstance(result.layer, Opaque):
        return result
    return None


def _forks(call: ast.Call, st: State, distinct: List[Tuple[Value, State]], results: List[Value],
           share_truths: bool) -> List[State]:
    """One path per distinct result; the unknown results share the caller's own path."""
    out = []
    for result, end in distinct:
        path = st.fork()
        path.facts = end.facts.copy()
        if share_truths:
            path.truths = {**path.truths, **end.truths}
        path.call_results[id(call)] = result
        out.append(path)
    unknown = [u for u in map(_unknown_result, results) if u is not None]
    if unknown:  # one path for them all: an opaque module when every one is a module
        st.call_results[id(call)] = unknown[0] if all(u is not UNKNOWN for u in unknown) else UNKNOWN
        out.append(st)
    return out


def split_on_ifexp(it: Interpreter, stmt: ast.stmt, states: List[State], ctx: Context) -> List[State]:
    """``x = a if cond else b`` (or ``return ...``) with an undecided ``cond`` forks like an ``if``."""
    value = getattr(stmt, "value", None)
    if isinstance(value, ast.BoolOp) and isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        test = value.values[0]  # `a or b` is `a if a else b`; `a and b` is `b if a else a`
    elif isinstance(value, ast.IfExp):
        test = value.test
    else:
        return states
    out = []
    for st in states:
        tested = it.eval(test, st, ctx.quiet)
        cond = to_cond(it, tested, test)
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


def nested_module_calls(value: Optional[ast.AST]) -> List[ast.Call]:
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
