"""Deciding a condition on a path, and learning one: the path conditions of ``if`` and ``assert``."""
from __future__ import annotations

from typing import Callable, Dict, Optional

from ..symbolic.poly import lower_bound, prove_nonzero
from ..torchlib.values import AndC, AtomC, CmpC, Cond, ConstC, NotC, OrC
from .state import State

SHAPE_TEST = "shape-test:"  # the key prefix of conditions that compare tensor shapes

_HOLDS: Dict[str, Callable[[int], bool]] = {
    "==": lambda d: d == 0, "!=": lambda d: d != 0, "<": lambda d: d < 0, "<=": lambda d: d <= 0,
    ">": lambda d: d > 0, ">=": lambda d: d >= 0,
}
NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def decide(cond: Cond, st: State) -> Optional[bool]:
    """True or False when the path's facts settle ``cond``, else None."""
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
        return _decide_comparison(cond, st)
    return None


def _decide_comparison(cond: CmpC, st: State) -> Optional[bool]:
    diff = st.facts.resolve(cond.left - cond.right)
    if diff.value is not None:
        return _HOLDS[cond.op](diff.value)
    if cond.op in ("==", "!="):
        if prove_nonzero(diff, st.facts):
            return cond.op == "!="
        return None
    lb = lower_bound(diff, st.facts)
    negated = lower_bound(-diff, st.facts)
    ub = None if negated is None else -negated
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
            if len(open_parts) == 1 and all(decide(p, st) == (not truth) for p in cond.parts
                                            if p is not open_parts[0]):
                assume(open_parts[0], truth, st)
    elif isinstance(cond, CmpC):
        op = cond.op if truth else NEGATED[cond.op]
        if op == "==":
            st.facts.add_equal(cond.left, cond.right)
        elif op == "!=":
            st.facts.add_unequal(cond.left, cond.right)
