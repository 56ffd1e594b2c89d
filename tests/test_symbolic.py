"""The symbolic domain: what it proves, and what it refuses to prove."""
from __future__ import annotations

from convlint.symbolic.dims import Dim, Relation, Window, compare_dims
from convlint.symbolic.poly import Facts, Poly, decide_divisible, prove_unequal

P = Poly.atom
C = Poly.const


def facts(*positive: str) -> Facts:
    f = Facts()
    for name in positive:
        f.mark_positive(P(name))
    return f


def test_expansion_differs_only_with_positive_channels():
    assert prove_unequal(P("planes") * C(4), P("planes"), facts("planes"))
    assert not prove_unequal(P("planes") * C(4), P("planes"), Facts())  # planes could be 0
    assert not prove_unequal(P("planes") * C(4), P("in_planes"), facts("planes", "in_planes"))


def test_path_equalities_substitute():
    f = facts("planes", "in_planes")
    f.add_equal(P("in_planes"), P("planes"))
    assert prove_unequal(P("planes") * C(4), P("in_planes"), f)


def test_floor_division_is_below_its_numerator():
    f = facts("channels")
    quarter = P("channels").floordiv(C(4))
    assert prove_unequal(quarter, P("channels"), f)
    half_k = P("k").floordiv(C(2))
    # 2*(k//2) == k - 1 exactly when k is odd: unknown parity proves nothing
    assert not prove_unequal(half_k * C(2), P("k") - C(1), facts("k"))


def test_contradiction_makes_the_path_infeasible():
    f = facts("stride")
    f.add_unequal(P("stride"), C(1))
    f.add_equal(P("stride"), C(1))
    assert f.infeasible


def test_divisibility():
    f = facts("c")
    assert decide_divisible(C(64), C(3), f) is False
    assert decide_divisible(P("c") * C(2), P("c"), f) is True
    assert decide_divisible(P("c"), C(4), f) is None


def _conv(k, s, p, d=1):
    return Window(C(k), C(s), C(p), C(d), False, True)


def test_sizes_padding_and_stride():
    f = Facts()
    x = Dim("H")
    assert compare_dims(x.then(_conv(3, 1, 1)), x, f).relation is Relation.EQUAL
    assert compare_dims(x.then(_conv(3, 1, 0)), x, f).relation is Relation.DIFFER
    assert compare_dims(x.then(_conv(3, 1, 2, 2)), x, f).relation is Relation.EQUAL  # padding=dilation
    assert compare_dims(x.then(_conv(3, 2, 1)), x, f).relation is Relation.DIFFER
    # 3x3/s2/p1 against 1x1/s2: equal for every size
    assert compare_dims(x.then(_conv(3, 2, 1)), x.then(_conv(1, 2, 0)), f).relation is Relation.EQUAL
    # against a floor-mode 2x2 average pool: only odd sizes differ
    pool = Window(C(2), C(2), C(0))
    result = compare_dims(x.then(_conv(3, 2, 1)), x.then(pool), f)
    assert result.relation is Relation.SOMETIMES and result.example % 2 == 1
    ceil_pool = Window(C(2), C(2), C(0), C(1), True)
    assert compare_dims(x.then(_conv(3, 2, 1)), x.then(ceil_pool), f).relation is Relation.EQUAL


def test_symbolic_stride_needs_a_bound():
    f = facts("s")
    strided = Dim("H").then(Window(C(3), P("s"), C(1), C(1), False, True))
    assert compare_dims(strided, Dim("H"), f).relation is Relation.UNKNOWN  # s may be 1
    f.add_unequal(P("s"), C(1))
    assert compare_dims(strided, Dim("H"), f).relation is Relation.DIFFER


def test_windows_of_one_symbolic_stride_compare_by_their_offset():
    # a ResNet/RegNet branch (3x3, stride s, padding 1) and its projection (1x1, stride s): both are
    # floor((H - 1) / s) + 1, whatever s is; a same-padded conv before the strided one changes nothing
    f = facts("s")
    x = Dim("H")
    branch = x.then(_conv(3, 1, 1)).then(Window(C(3), P("s"), C(1), C(1), False, True))
    projection = x.then(Window(C(1), P("s"), C(0), C(1), False, True))
    assert compare_dims(branch, projection, f).relation is Relation.EQUAL
    # a stride-1 valid conv before it shifts the offset: not provably equal (nor different for every s)
    shifted = x.then(_conv(3, 1, 0)).then(Window(C(3), P("s"), C(1), C(1), False, True))
    assert compare_dims(shifted, projection, f).relation is Relation.UNKNOWN
