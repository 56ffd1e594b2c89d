"""Symbolic tensor shapes: channels as polynomials, each spatial dim as a chain of size operations.

A spatial size is kept as the *operations* applied to an unknown input size (``base``) rather than as
a closed formula, because the formula ``out = floor((in + 2P - D(K-1) - 1) / S) + 1`` with floors does
not simplify: two chains are compared by exact algebra when every stride is 1 (``H + 2P - D(K-1)``)
and otherwise, when every parameter is a number, by evaluating both chains over a range of input
sizes, which tells "differ for every size" (an error) from "differ for some" (a warning naming one).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .poly import Facts, Poly, lower_bound, number, prove_nonzero

ONE = Poly.const(1)
ZERO = Poly.const(0)


@dataclass(frozen=True)
class Window:
    """A sliding window (conv or pool): ``floor((n + 2p - d(k-1) - 1) / s) + 1`` (ceil with ceil_mode)."""

    k: Poly
    s: Poly
    p: Poly
    d: Poly = ONE
    ceil: bool = False
    conv: bool = False  # a conv's window (a pool's padding is not a padding bug)

    def size_change(self) -> Poly:
        """``2P - D(K-1)``: what the window adds to a size at stride 1 (0 keeps H,W)."""
        return self.p * Poly.const(2) - self.d * (self.k - ONE)

    @property
    def keeps_size(self) -> bool:
        """A stride-1 window with 2P = D(K-1), in numbers: every size n >= 1 stays n."""
        k, s, p, d = (x.value for x in (self.k, self.s, self.p, self.d))
        return k is not None and p is not None and d is not None and s == 1 and 2 * p == d * (k - 1)

    def resolved(self, facts: Facts) -> "Window":
        if not (self.k.atoms() or self.s.atoms() or self.p.atoms() or self.d.atoms()):
            return self  # numbers only: nothing to resolve
        return Window(facts.resolve(self.k), facts.resolve(self.s), facts.resolve(self.p),
                      facts.resolve(self.d), self.ceil, self.conv)

    def with_size_keeping_padding(self) -> "Window":
        """This conv as it would be with padding D(K-1)/2, where that is an integer."""
        span = self.d * (self.k - ONE)
        if span.value is not None and span.value % 2:
            if self.s.value == 1:
                return self
            return Window(self.k, self.s, Poly.const(span.value // 2), self.d, self.ceil, self.conv)
        return Window(self.k, self.s, span.floordiv(Poly.const(2)), self.d, self.ceil, self.conv)

    def params(self) -> Sequence[Poly]:
        return (self.k, self.s, self.p, self.d)

    def apply(self, n: int) -> Optional[int]:
        k, s, p, d = (number(x) for x in self.params())
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0 or s <= 0:
            return None
        if not self.ceil:
            return span // s + 1
        out = -(-span // s) + 1
        if (out - 1) * s >= n + p:  # torch: the last window must start inside the input or left pad
            out -= 1
        return out


@dataclass(frozen=True)
class Resize:
    """A size set to a number (adaptive pools, ``F.interpolate(size=...)``)."""

    size: Poly

    def resolved(self, facts: Facts) -> "Resize":
        return Resize(facts.resolve(self.size))

    def params(self) -> Sequence[Poly]:
        return (self.size,)

    def apply(self, n: int) -> Optional[int]:
        return self.size.value


@dataclass(frozen=True)
class Pad:
    """Explicit padding on both ends of a dim (``nn.ZeroPad2d``, ``F.pad``)."""

    total: Poly

    def resolved(self, facts: Facts) -> "Pad":
        return Pad(facts.resolve(self.total))

    def params(self) -> Sequence[Poly]:
        return (self.total,)

    def apply(self, n: int) -> Optional[int]:
        return n + number(self.total)


@dataclass(frozen=True)
class Scale:
    """Nearest/linear upsampling by an integer factor."""

    factor: Poly

    def resolved(self, facts: Facts) -> "Scale":
        return Scale(facts.resolve(self.factor))

    def params(self) -> Sequence[Poly]:
        return (self.factor,)

    def apply(self, n: int) -> Optional[int]:
        return n * number(self.factor)


SizeOp = Union[Window, Resize, Pad, Scale]


@dataclass(frozen=True)
class Dim:
    """One spatial dim: ``ops`` applied in order to the unknown size ``base``."""

    base: str
    ops: Tuple[SizeOp, ...] = ()

    def then(self, op: SizeOp) -> "Dim":
        if isinstance(op, Window) and op.keeps_size:
            return self  # (a network of same-padded convs keeps a short chain: see MAX_SIZE_OPS)
        return Dim(self.base, self.ops + (op,))

    def then_all(self, ops: Sequence[SizeOp]) -> "Dim":
        return Dim(self.base, self.ops + tuple(op for op in ops if not (isinstance(op, Window) and op.keeps_size)))

    def concrete(self, n: int, facts: Facts) -> Optional[int]:
        """The size for input size ``n``, when every parameter is a number."""
        return _run([op.resolved(facts) for op in self.ops], n)


def _run(ops: Sequence[SizeOp], n: Optional[int]) -> Optional[int]:
    for op in ops:
        if n is None or any(p.value is None for p in op.params()):
            return None
        n = op.apply(n)
        if n is None or n < 1:
            return None
    return n


class Relation(Enum):
    EQUAL = "equal"          # same size for every input size
    DIFFER = "differ"        # different (and not broadcastable) for every input size
    SOMETIMES = "sometimes"  # different for some input sizes only
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DimComparison:
    relation: Relation
    example: Optional[int] = None  # an input size that fails, for SOMETIMES


def combined(results: Sequence[DimComparison]) -> DimComparison:
    """Several dims' comparisons as one: a dim that differs decides, then one that sometimes does;
    equal only when every dim is."""
    for rel in (Relation.DIFFER, Relation.SOMETIMES):
        for r in results:
            if r.relation is rel:
                return r
    if results and all(r.relation is Relation.EQUAL for r in results):
        return DimComparison(Relation.EQUAL)
    return DimComparison(Relation.UNKNOWN)


def compare_dims(a: Dim, b: Dim, facts: Facts, fix_conv_padding: bool = False) -> DimComparison:
    """How two sizes derived from the same input relate, for every input size.

    With ``fix_conv_padding``, every conv is taken with the size-keeping padding D(K-1)/2: what
    still differs then is down to strides and pools, not to padding.
    """
    if a.base != b.base:
        return DimComparison(Relation.UNKNOWN)
    ops_a = [op.resolved(facts) for op in a.ops]
    ops_b = [op.resolved(facts) for op in b.ops]
    if fix_conv_padding:
        ops_a = [f for f in map(_fixed, ops_a) if f is not None]
        ops_b = [f for f in map(_fixed, ops_b) if f is not None]
    # Operations both sides share from the start act on the same unknown size: strip them.
    while ops_a and ops_b and ops_a[0] == ops_b[0]:
        ops_a.pop(0)
        ops_b.pop(0)
    if ops_a == ops_b or _normal_form(ops_a, facts) == _normal_form(ops_b, facts):
        return DimComparison(Relation.EQUAL)
    delta_a, delta_b = _stride_one_delta(ops_a, facts), _stride_one_delta(ops_b, facts)
    if delta_a is not None and delta_b is not None:
        diff = facts.resolve(delta_a - delta_b)
        if not diff.terms:
            return DimComparison(Relation.EQUAL)
        if prove_nonzero(diff, facts):
            return DimComparison(Relation.DIFFER)
        return DimComparison(Relation.UNKNOWN)
    # A strided window never gives more than its stride-1 version: when one side is exact and the
    # other's stride-1 bound is already smaller, the sides differ for every stride.
    for exact, other in ((delta_a, ops_b), (delta_b, ops_a)):
        bound = _upper_delta(other, facts)
        if exact is not None and bound is not None:
            gap = facts.resolve(exact - bound)
            lb = lower_bound(gap, facts)
            if lb is not None and lb > 0:
                return DimComparison(Relation.DIFFER)
    if not all(p.value is not None for op in ops_a + ops_b for p in op.params()):
        return _compare_symbolic_strides(ops_a, ops_b, facts)
    result = _compare_by_sampling(ops_a, ops_b)
    if result.relation is Relation.SOMETIMES:
        # name a failing size of the input itself, not of the point where the sides part
        full_a = [op.resolved(facts) for op in a.ops]
        full_b = [op.resolved(facts) for op in b.ops]
        if fix_conv_padding:
            full_a = [f for f in map(_fixed, full_a) if f is not None]
            full_b = [f for f in map(_fixed, full_b) if f is not None]
        example = _failing_input(full_a, full_b)
        return DimComparison(Relation.SOMETIMES, example)
    return result


def _normal_form(ops: Sequence[SizeOp], facts: Facts) -> Tuple[object, ...]:
    """A chain written so that chains giving the same size for every input size read the same.

    A floor window is ``floor((n + c) / s) + 1`` with ``c = 2P - D(K-1) - 1``: what the kernel, padding
    and dilation are matters only through ``c``, and stride-1 windows and pads before it only shift
    ``n``. So a 3x3 conv with padding 1 and a 1x1 conv with padding 0 at the same stride (a ResNet
    branch and its projection) are the same window, and a same-padded conv before a strided one
    vanishes.
    """
    form: List[object] = []
    shift = ZERO
    for op in ops:
        if isinstance(op, Window) and not op.ceil:
            if op.s.value == 1:
                shift = shift + op.size_change()
            else:
                form.append(("window", facts.resolve(shift + op.size_change() - ONE), facts.resolve(op.s)))
                shift = ZERO
        elif isinstance(op, Pad):
            shift = shift + op.total
        else:
            form.extend((("shift", facts.resolve(shift)), op))
            shift = ZERO
    form.append(("shift", facts.resolve(shift)))
    return tuple(form)


def _failing_input(ops_a: Sequence[SizeOp], ops_b: Sequence[SizeOp]) -> Optional[int]:
    for n in range(8, 1025):
        x, y = _run(ops_a, n), _run(ops_b, n)
        if x is not None and y is not None and x != y and 1 not in (x, y):
            return n
    return None


def _compare_symbolic_strides(ops_a: Sequence[SizeOp], ops_b: Sequence[SizeOp], facts: Facts) -> DimComparison:
    """Strides known only by a bound (``stride != 1`` on this path): a larger stride only shrinks a
    size further, so sides that differ from the least stride up differ for every stride."""
    atoms: Set[str] = set()
    for op in list(ops_a) + list(ops_b):
        for p in op.params():
            atoms |= p.atoms()
            if p.atoms() and not (isinstance(op, Window) and p is op.s and len(p.terms) == 1):
                return DimComparison(Relation.UNKNOWN)
    if not atoms or len(atoms) > 2:
        return DimComparison(Relation.UNKNOWN)
    least: Dict[str, int] = {}
    for a in atoms:
        bound = atom_lower_bound(a, facts)
        if bound is None:
            return DimComparison(Relation.UNKNOWN)
        least[a] = bound
    for extra in range(4):
        subst = {a: Poly.const(v + extra) for a, v in least.items()}
        concrete_a = [_substituted(op, subst) for op in ops_a]
        concrete_b = [_substituted(op, subst) for op in ops_b]
        if _compare_by_sampling(concrete_a, concrete_b).relation is not Relation.DIFFER:
            return DimComparison(Relation.UNKNOWN)
    return DimComparison(Relation.DIFFER)


def _substituted(op: SizeOp, subst: Mapping[str, Poly]) -> SizeOp:
    return op.resolved(Facts(subst=dict(subst)))


def atom_lower_bound(atom: str, facts: Facts) -> Optional[int]:
    """1 for a positive atom, 2 when the path also says it is not 1."""
    if atom not in facts.positive:
        return None
    one = Poly.atom(atom) - ONE
    if any(q == one or q == -one for q in (facts.resolve(d) for d in facts.disequal)):
        return 2
    return 1


def _fixed(op: SizeOp) -> Optional[SizeOp]:
    """A conv as if its padding were right; a stride-1 even kernel, which no padding fixes, as if it
    kept the size (that is CVL102's finding, not a downsampling one)."""
    if not (isinstance(op, Window) and op.conv):
        return op
    fixed = op.with_size_keeping_padding()
    if fixed is op and op.s.value == 1:
        return None
    return fixed


def _stride_one_delta(ops: Sequence[SizeOp], facts: Facts) -> Optional[Poly]:
    """``out - in`` when every op keeps the stride at 1 (then it is a polynomial), else None."""
    return _delta(ops, facts, upper_bound=False)


def _upper_delta(ops: Sequence[SizeOp], facts: Facts) -> Optional[Poly]:
    """An upper bound of ``out - in``: every window taken with stride 1 (strides are >= 1)."""
    return _delta(ops, facts, upper_bound=True)


def _delta(ops: Sequence[SizeOp], facts: Facts, upper_bound: bool) -> Optional[Poly]:
    delta = ZERO
    for op in ops:
        if isinstance(op, Window) and (upper_bound or (op.s.value == 1 and not op.ceil)):
            if upper_bound:
                lb = lower_bound(op.s, facts)
                if lb is None or lb < 1:
                    return None
            delta = delta + op.size_change()
        elif isinstance(op, Pad):
            delta = delta + op.total
        else:
            return None
    return delta


def _total_stride(ops: Sequence[SizeOp]) -> int:
    total = 1
    for op in ops:
        if isinstance(op, Window):
            total *= max(number(op.s), 1)
    return total


def _compare_by_sampling(ops_a: Sequence[SizeOp], ops_b: Sequence[SizeOp]) -> DimComparison:
    # Start where both sides are still several pixels wide (size 1 broadcasts), and cover a few
    # periods of the strides so every residue of the floors is seen.
    period = _total_stride(ops_a) * _total_stride(ops_b)
    if period > 4096:  # strides no network has: not worth sampling
        return DimComparison(Relation.UNKNOWN)
    lo = 8 * max(_total_stride(ops_a), _total_stride(ops_b))
    hi = lo + max(4 * period, 64)
    failing: List[int] = []
    valid = 0
    for n in range(lo, hi):
        x, y = _run(ops_a, n), _run(ops_b, n)
        if x is None or y is None:
            continue
        valid += 1
        if x != y and x != 1 and y != 1:
            failing.append(n)
    if not valid:
        return DimComparison(Relation.UNKNOWN)
    if not failing:
        return DimComparison(Relation.EQUAL)
    if len(failing) == valid:
        return DimComparison(Relation.DIFFER)
    return DimComparison(Relation.SOMETIMES, failing[0])


def render_dim(dim: Dim, label: str, facts: Facts) -> str:
    """A readable formula of a size: ``H-2``, ``(H-1)//4 + 1``.

    Floors compose, ``floor((floor((I + c) / d) + t) / s) = floor((I + c + t*d) / (d*s))``, so a chain
    of windows is kept as ``(I + c)//d + e`` and printed once.
    """
    inner, c, d, e = label, ZERO, ONE, ZERO
    for op in (o.resolved(facts) for o in dim.ops):
        if isinstance(op, Window):
            q = op.size_change() - ONE
            if op.ceil:
                q = q + op.s - ONE
            if op.s.value == 1 and not op.ceil:
                e = e + q + ONE
                continue
            c, d, e = c + (e + q) * d, d * op.s, ONE
        elif isinstance(op, Pad):
            e = e + op.total
        elif isinstance(op, Resize):
            inner, c, d, e = str(op.size), ZERO, ONE, ZERO
        elif isinstance(op, Scale):
            inner, c, d, e = f"({_floor_text(inner, c, d, e)})*{_atom(op.factor)}", ZERO, ONE, ZERO
    return _floor_text(inner, c, d, e)


def _floor_text(inner: str, c: Poly, d: Poly, e: Poly) -> str:
    if d.value == 1:
        return _with_offset(inner, c + e)
    if e.value is not None and d.value is not None:
        c, e = c + e * d, ZERO  # (H-1)//2 + 1 reads better as (H+1)//2
    numerator = _with_offset(inner, c)
    return _with_offset(f"({numerator})//{_atom(d)}" if numerator != inner else f"{inner}//{_atom(d)}", e)


def _atom(p: Poly) -> str:
    s = str(p)
    return s if p.value is not None or len(p.terms) == 1 else f"({s})"


def _with_offset(text: str, delta: Poly) -> str:
    if not delta.terms:
        return text
    if delta.value is not None:
        v = delta.value
        return f"{text} {'+' if v > 0 else '-'} {abs(v)}" if "//" in text else f"{text}{'+' if v > 0 else '-'}{abs(v)}"
    return f"{text} + {delta}"


def dim_labels(n: int) -> Tuple[str, ...]:
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(n, tuple(f"S{i}" for i in range(n)))


def render_dims(dims: Sequence[Dim], facts: Facts) -> str:
    return " x ".join(render_dim(d, lab, facts) for d, lab in zip(dims, dim_labels(len(dims))))

