"""Merging the paths a call ended in into the value its caller sees."""
from __future__ import annotations

from typing import List, Sequence, Set

from ..symbolic.poly import Poly
from ..torchlib.layers import NOWHERE
from ..torchlib.values import CHANNEL_PREFIX, NONE, UNKNOWN, Step, StepKind, TensorV, Value
from .state import State


def merge_into(st: State, ends: List[State], same_self: bool = True) -> Value:
    """The value of a call whose body ended in ``ends``; the caller's path learns what they all
    agree on (one end: everything; several: the channel counts they found for the inputs)."""
    ends = [e for e in ends if not e.facts.infeasible]
    if not ends:
        return UNKNOWN
    results = [NONE if e.returned is None else e.returned for e in ends]
    if len(ends) == 1:
        end = ends[0]
        st.facts = end.facts
        if same_self:
            st.truths = end.truths
            if st.self_v is not None and end.self_v is not None:
                st.self_v.attrs.update(end.self_v.attrs)
                st.self_v.seq_layers = end.self_v.seq_layers
        return results[0]
    for atom, value in ends[0].facts.subst.items():
        if atom.startswith(CHANNEL_PREFIX) and atom not in st.facts.subst and \
                all(e.facts.subst.get(atom) == value for e in ends[1:]):
            st.facts.names.setdefault(atom, ends[0].facts.names.get(atom, value))
            st.facts.add_equal(Poly.atom(atom), value)
    if same_self and st.self_v is not None:
        keys: Set[str] = set()
        for e in ends:
            if e.self_v is not None:
                keys |= e.self_v.attrs.keys()
        for k in keys:
            vals = [e.self_v.attrs.get(k, UNKNOWN) if e.self_v else UNKNOWN for e in ends]
            st.self_v.attrs[k] = vals[0] if all(v == vals[0] for v in vals) else UNKNOWN
    first = results[0]
    if all(r == first for r in results):
        return first
    tensors = [r for r in results if isinstance(r, TensorV)]
    if len(tensors) == len(results):
        return join_tensors(tensors, ends)
    return UNKNOWN


def join_tensors(results: Sequence[TensorV], ends: Sequence[State]) -> Value:
    """Tensors from several paths: one tensor when they agree on channels and sizes."""
    first = results[0]
    key = [(ends[i].facts.resolve(r.channels) if r.channels is not None else None, r.dims, r.flat)
           for i, r in enumerate(results)]
    if all(k == key[0] for k in key):
        return first.then(Step(StepKind.KEEP, NOWHERE))
    return UNKNOWN
