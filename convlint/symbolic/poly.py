"""A small symbolic domain for integer quantities: polynomials over named atoms.

Channel counts, kernel sizes, strides and paddings in model code are mostly literals, constructor
arguments (``planes``, ``stride``) or simple arithmetic over them (``planes * self.expansion``,
``k // 2``). A polynomial with integer coefficients over *atoms* covers that: an atom is a symbol
(``planes``) or an opaque floor division (``k // 2``). ``Facts`` holds what a code path tells about
the atoms (equalities as substitutions, and which atoms are known to be positive), and the ``prove_*``
functions answer only when the answer holds for every value consistent with those facts: anything
else is ``None`` (unknown), from which no diagnostic is ever derived.

This is deliberately tiny (no sympy): a linter runs on every save, and these expressions rarely have
more than three terms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional, Tuple

from ..limits import MAX_DEGREE, MAX_INT_BITS, MAX_TERMS

Monomial = Tuple[str, ...]  # sorted atom names; () is the constant term
_SMALL: Dict[int, "Poly"] = {}


class Poly:
    """An integer polynomial over atoms, immutable and hashable."""

    __slots__ = ("terms", "_hash", "_atoms")

    def __init__(self, terms: Mapping[Monomial, int]):
        self.terms: Dict[Monomial, int] = {m: c for m, c in terms.items() if c != 0}
        self._hash: Optional[int] = None
        self._atoms: Optional[FrozenSet[str]] = None

    # construction -------------------------------------------------------------------------
    @staticmethod
    def const(value: int) -> "Poly":
        if -64 <= value <= 4096:  # the small numbers of layer arguments: one shared Poly each
            poly = _SMALL.get(value)
            if poly is None:
                poly = _SMALL[value] = Poly({(): value})
            return poly
        return Poly({(): value})

    @staticmethod
    def atom(name: str) -> "Poly":
        return Poly({(name,): 1})

    # queries -------------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(m == () for m in self.terms)

    @property
    def value(self) -> Optional[int]:
        """The integer value when the polynomial is a constant, else None."""
        terms = self.terms
        if not terms:
            return 0
        if len(terms) == 1 and () in terms:
            return terms[()]
        return None

    @property
    def oversized(self) -> bool:
        """Past the value budgets of ``convlint.limits`` (too wide a number, too many terms or
        factors): the interpreter makes such a result an unknown value."""
        return len(self.terms) > MAX_TERMS or any(
            len(m) > MAX_DEGREE or c.bit_length() > MAX_INT_BITS for m, c in self.terms.items())

    def atoms(self) -> FrozenSet[str]:
        if self._atoms is None:  # asked for on every substitution: computed once (a Poly never changes)
            self._atoms = frozenset(a for m in self.terms for a in m)
        return self._atoms

    # arithmetic ----------------------------------------------------------------------------
    def __add__(self, other: "Poly") -> "Poly":
        terms = dict(self.terms)
        for m, c in other.terms.items():
            terms[m] = terms.get(m, 0) + c
        return Poly(terms)

    def __neg__(self) -> "Poly":
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: "Poly") -> "Poly":
        return self + (-other)

    def __mul__(self, other: "Poly") -> "Poly":
        terms: Dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return Poly(terms)

    def floordiv(self, other: "Poly") -> "Poly":
        """``self // other``: exact when constant or evenly divisible, else an opaque atom."""
        a, b = self.value, other.value
        if a is not None and b is not None:
            return Poly.const(a // b) if b != 0 else UNKNOWN_DIV
        if b is not None and b > 0 and all(c % b == 0 for c in self.terms.values()):
            return Poly({m: c // b for m, c in self.terms.items()})
        if b == 1:
            return self
        name = f"({self})//({other})"
        FLOOR_ATOMS[name] = (self, other)
        return Poly.atom(name)

    def mod(self, other: "Poly") -> Optional["Poly"]:
        a, b = self.value, other.value
        if a is not None and b is not None and b != 0:
            return Poly.const(a % b)
        return None

    def substitute(self, subst: Mapping[str, "Poly"]) -> "Poly":
        if not subst or not (self.atoms() & subst.keys()):
            return self
        out = Poly({})
        for m, c in self.terms.items():
            term = Poly.const(c)
            for a in m:
                term = term * subst.get(a, Poly.atom(a))
            out = out + term
        return out

    # identity ------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self.terms.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"Poly({self})"

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        # highest degree first, then by name: `planes*4 + 1`
        for m, c in sorted(self.terms.items(), key=lambda mc: (-len(mc[0]), mc[0])):
            if m == ():
                parts.append((c < 0, str(abs(c))))
                continue
            name = "*".join(m)
            text = name if abs(c) == 1 else f"{name}*{abs(c)}"
            parts.append((c < 0, text))
        out = ("-" if parts[0][0] else "") + parts[0][1]
        for neg, text in parts[1:]:
            out += (" - " if neg else " + ") + text
        return out


UNKNOWN_DIV = Poly.atom("<division by zero>")

# the floor divisions behind atoms like `(channels)//(4)`: name -> (numerator, denominator)
FLOOR_ATOMS: Dict[str, Tuple[Poly, Poly]] = {}


@dataclass
class Facts:
    """What one code path knows: substitutions from its equalities, and positive atoms.

    ``subst`` maps an atom to the polynomial it equals on this path (always fully applied, so a
    value never needs two rounds). ``positive`` holds atoms known to be >= 1 (channel counts, kernel
    sizes, strides: torch rejects anything else); every other atom is only known to be an integer.
    ``infeasible`` is set when the path's own conditions contradict each other.
    """

    subst: Dict[str, Poly] = field(default_factory=dict)
    positive: FrozenSet[str] = frozenset()
    nonneg: FrozenSet[str] = frozenset()
    disequal: Tuple[Poly, ...] = ()
    infeasible: bool = False
    # how to name an atom in messages: an input's channel count as the layer argument it met first
    names: Dict[str, Poly] = field(default_factory=dict)
    positive_products: FrozenSet[Monomial] = frozenset()
    # polynomials known to be >= 0 that the sets above cannot hold (``depth - 2 <= 0`` once
    # ``depth >= 3`` is false): a later ``depth >= 4`` is then impossible
    orders: Tuple[Poly, ...] = ()

    def copy(self) -> "Facts":
        return Facts(dict(self.subst), self.positive, self.nonneg, self.disequal, self.infeasible,
                     dict(self.names), self.positive_products, self.orders)

    def display(self, p: Poly) -> Poly:
        """``p`` as the source names it (before this path's equalities were applied)."""
        return p.substitute(self.names)

    def resolve(self, p: Poly) -> Poly:
        return p.substitute(self.subst)

    def mark_positive(self, p: Poly) -> None:
        """Record that ``p`` is >= 1 (single atoms, and single products such as ``c*w``)."""
        p = self.resolve(p)
        if len(p.terms) == 1:
            (m, c), = p.terms.items()
            if len(m) == 1 and c == 1:
                self.positive = self.positive | {m[0]}
            elif len(m) > 1 and c > 0:
                self.positive_products = self.positive_products | {m}

    def mark_nonneg(self, p: Poly) -> None:
        p = self.resolve(p)
        if len(p.terms) == 1:
            (m, c), = p.terms.items()
            if len(m) == 1 and c == 1:
                self.nonneg = self.nonneg | {m[0]}

    def add_equal(self, a: Poly, b: Poly) -> None:
        """Learn ``a == b``: solve for an atom with a unit coefficient when there is one."""
        d = self.resolve(a) - self.resolve(b)
        if not d.terms:
            return
        if d.is_const:
            self.infeasible = True
            return
        if prove_nonzero(d, self):
            self.infeasible = True
            return
        for (m, c) in sorted(d.terms.items(), key=lambda mc: mc[0]):
            if len(m) == 1 and abs(c) == 1 and not any(m[0] in other for other in d.terms if other != m):
                atom = m[0]
                rest = d - Poly({m: c})
                value = -rest if c == 1 else rest
                self._bind(atom, value)
                break
        for q in self.disequal:
            if not self.resolve(q).terms:
                self.infeasible = True

    def add_unequal(self, a: Poly, b: Poly) -> None:
        d = self.resolve(a) - self.resolve(b)
        if not d.terms:
            self.infeasible = True
        else:
            self.disequal = self.disequal + (d,)

    def _bind(self, atom: str, value: Poly) -> None:
        one = {atom: value}
        subst = {k: v.substitute(one) for k, v in self.subst.items()}
        if value.oversized or any(v.oversized for v in subst.values()):
            return  # past the value budgets: the path knows less (which never makes a finding)
        self.subst = subst
        self.subst[atom] = value
        # positivity survives substitution when the atom is replaced by a single positive atom
        if atom in self.positive:
            self.mark_positive(value)


def number(p: Poly) -> int:
    """The value of a polynomial the caller knows to be a number."""
    value = p.value
    if value is None:
        raise TypeError(f"{p} is not a number")
    return value


def lower_bound(p: Poly, facts: Facts) -> Optional[int]:
    """A lower bound of ``p`` valid for every value consistent with ``facts``, if one is easy."""
    p = facts.resolve(p)
    bound = _term_bound(p, facts)
    for known in facts.orders:  # p = known + c with known >= 0: p >= c
        rest = (p - facts.resolve(known)).value
        if rest is not None and (bound is None or rest > bound):
            bound = rest
    return bound


def _term_bound(p: Poly, facts: Facts) -> Optional[int]:
    """A lower bound of ``p`` from the signs of its atoms."""
    bound = 0
    for m, c in p.terms.items():
        if m == ():
            bound += c
            continue
        if c < 0:
            return None
        if all(a in facts.positive for a in m) or m in facts.positive_products:
            bound += c
        elif all(a in facts.positive or a in facts.nonneg for a in m):
            pass
        else:
            return None
    return bound


def _relax_floors(p: Poly, facts: Facts) -> Optional[Poly]:
    """A positive multiple of a lower bound of ``p`` without floor atoms: with ``f = n // d``,
    ``d*f <= n`` and ``d*f >= n - d + 1``. None when ``p`` has no (simple) floor atom."""
    out, changed = p, False
    for (m, c) in list(p.terms.items()):
        if len(m) != 1 or m[0] not in FLOOR_ATOMS or m[0] in facts.subst:
            continue
        num, den = FLOOR_ATOMS[m[0]]
        d = den.value
        if d is None or d <= 0:
            return None
        num = facts.resolve(num)
        rest = out - Poly({m: c})
        bound = num if c < 0 else num - den + Poly.const(1)
        out = rest * den + bound * Poly.const(c)
        changed = True
    return out if changed else None


def _positive(p: Poly, facts: Facts) -> bool:
    lb = lower_bound(p, facts)
    if lb is not None and lb > 0:
        return True
    relaxed = _relax_floors(p, facts)
    if relaxed is not None:
        lb = lower_bound(relaxed, facts)
        return lb is not None and lb > 0
    return False


def prove_nonzero(p: Poly, facts: Facts) -> bool:
    """True when ``p != 0`` for every value consistent with ``facts``."""
    p = facts.resolve(p)
    if not p.terms:
        return False
    if p.is_const:
        return True
    if _positive(p, facts) or _positive(-p, facts):
        return True
    if _indivisible_constant(p):
        return True
    return any(not (facts.resolve(q) - p).terms or not (facts.resolve(q) + p).terms
               for q in facts.disequal)


def _indivisible_constant(p: Poly) -> bool:
    """Every atom is an integer: when the coefficients of the non-constant terms share a factor
    that the constant lacks, ``p`` is never 0 (``512*H*W - 1000``: a multiple of 512 is never 1000)."""
    constant = p.terms.get((), 0)
    if constant == 0:
        return False
    g = 0
    for m, c in p.terms.items():
        if m != ():
            g = math.gcd(g, c)
    return g > 1 and constant % g != 0


def prove_unequal(a: Poly, b: Poly, facts: Facts) -> bool:
    return prove_nonzero(a - b, facts)


def prove_greater(a: Poly, b: Poly, facts: Facts) -> bool:
    """True when ``a > b`` for every value consistent with ``facts``."""
    lb = lower_bound(a - b, facts)
    return lb is not None and lb > 0


def decide_divisible(value: Poly, divisor: Poly, facts: Facts) -> Optional[bool]:
    """Whether ``divisor`` divides ``value``: True/False when provable, None when unknown."""
    value, divisor = facts.resolve(value), facts.resolve(divisor)
    v, d = value.value, divisor.value
    if v is not None and d is not None:
        return d != 0 and v % d == 0
    if len(divisor.terms) == 1:
        (dm, dc), = divisor.terms.items()
        if dc != 0 and all(_monomial_divides(dm, m) and c % dc == 0 for m, c in value.terms.items()):
            return True
    # 0 < value < divisor: `Conv2d(c, 2 * c, groups=2 * c)`
    low, gap = lower_bound(value, facts), lower_bound(divisor - value, facts)
    if low is not None and low > 0 and gap is not None and gap > 0:
        return False
    return None


def _monomial_divides(d: Monomial, m: Monomial) -> bool:
    rest = list(m)
    for a in d:
        if a not in rest:
            return False
        rest.remove(a)
    return True