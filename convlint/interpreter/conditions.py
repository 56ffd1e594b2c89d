"""Deciding a condition on a path, and learning one: the path conditions of ``if`` and ``assert``."""
from __future__ import annotations

from typing import Callable, Dict, Optional

from ..symbolic.poly import Poly, lower_bound, prove_nonzero
from ..torchlib.values import AndC, AtomC, CmpC, Cond, ConstC, NotC, OrC
from ..limits import MAX_ORDERS
from .state import State

SHAPE_TEST = "shape-test:"  # the key prefix of conditions that compare tensor shapes
STRING_IS = "string-is:"  # the key prefix of `name == 'text'` for an unknown value: one text at most holds


def string_is(name: str, text: str) -> AtomC:
    """``name == text`` for a value the path does not know (``block_type == 'down'``)."""
    return AtomC(f"{STRING_IS}{name}\0{text}")


def _other_string_holds(key: str, st: State) -> bool:
    """Whether the path already knows the value equals another text than ``key``'s."""
    name = key.split("\0", 1)[0] + "\0"
    return any(truth and other != key and other.startswith(name) for other, truth in st.truths.items())

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
        known = st.truths.get(cond.key)
        if known is None and cond.key.startswith(STRING_IS) and _other_string_holds(cond.key, st):
            return False  # `block_type == 'normal'` once `block_type == 'down'` held
        return known
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
        if st.truths.get(cond.key, truth) != truth or \
                (truth and cond.key.startswith(STRING_IS) and _other_string_holds(cond.key, st)):
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
        else:
            _learn_order(cond.left, cond.right, op, st)


# an order as ``d >= 0``: what to subtract from ``left - right`` (``>`` on integers is ``>= 1``)
_ORDER_SHIFT = {">=": (1, 0), ">": (1, 1), "<=": (-1, 0), "<": (-1, 1)}


def _learn_order(left: Poly, right: Poly, op: str, st: State) -> None:
    """Learn ``left op right`` for an order: ``d >= 0`` for ``d`` an integer polynomial. What is kept
    is what the facts can hold: an atom bounded below by 1 is positive (by 0, non-negative); a ``d``
    already known to be at most 0 is 0 (an equality); one known to be below 0 makes the path
    impossible (``if not 1 <= stride <= 3: raise``, then ``if stride > 1: ... else:`` knows
    ``stride == 1``)."""
    sign, shift = _ORDER_SHIFT[op]
    facts = st.facts
    d = facts.resolve((left - right) if sign > 0 else (right - left)) - Poly.const(shift)
    if d.value is not None:
        if d.value < 0:
            facts.infeasible = True
        return
    below = lower_bound(-d, facts)  # -d >= below, so d <= -below
    if below is not None and -below < 0:
        facts.infeasible = True
        return
    if below is not None and below == 0:
        facts.add_equal(d, Poly.const(0))
        return
    known = lower_bound(d, facts)
    if (known is None or known < 0) and len(facts.orders) < MAX_ORDERS:
        facts.orders = facts.orders + (d,)
    atoms = [(m, c) for m, c in d.terms.items() if m != ()]
    if len(atoms) == 1 and len(atoms[0][0]) == 1 and atoms[0][1] == 1:
        floor = -d.terms.get((), 0)  # atom >= floor
        if floor >= 1:
            facts.mark_positive(Poly.atom(atoms[0][0][0]))
        elif floor == 0:
            facts.mark_nonneg(Poly.atom(atoms[0][0][0]))
