"""The analysis stays within its budgets (``convlint.limits``) on any input: model files generated
with hostile constructs (hypothesis, derandomized), and the worst inputs of ``bench/hostile.py``
through the real command line."""
from __future__ import annotations

import ast
import json
import sys
import time
from typing import Callable, Iterator, List

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from convlint.analysis import Analysis, analyse
from convlint.app.engine import CheckRequest, check_path
from convlint.limits import FILE_SECONDS, FILE_WORK, MAX_INT_BITS, MAX_ITEMS, MAX_SIZE_OPS
from convlint.symbolic.poly import Poly
from convlint.torchlib.events import ChannelUse, ConvBuilt, ResidualAdd
from convlint.torchlib.values import UNKNOWN, History, IntV, Step, StepKind, TensorV, TupleV, sequence_of

sys.path.insert(0, str(ROOT / "bench"))
import hostile  # noqa: E402  (bench/hostile.py: the inputs it measures are the ones tested here)

# --- generated model files ---------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(0, 64), st.sampled_from(["2**31", "2**64", "10**30", "10**100", "10**18"]))
NAMES = st.sampled_from(["a", "c", "d", "3", "16"])
CONV = st.builds(lambda cin, cout, k, s, p: f"nn.Conv2d({cin}, {cout}, {k}, stride={s}, padding={p})",
                 NAMES, NAMES, st.sampled_from(["1", "3", "a", "(a // 2)"]), st.sampled_from(["1", "2", "a"]),
                 st.sampled_from(["0", "1", "a", "a // 2"]))

Lines = List[str]


def _loop(n: str, body: Lines) -> Lines:
    return [f"for _ in range({n}):"] + ["    " + line for line in body]


INIT_STATEMENTS = st.one_of(
    NUMBERS.map(lambda n: [f"a = {n}"]),
    st.sampled_from([["a = a * a"], ["a = a ** 63"], ["a = a * c + d"], ["a = (a + c) * (a + d)"], ["l = l + l"],
                     ["l.extend(l)"], ["l = [*l, *l]"], ["self.s = nn.Sequential(*l)"], ["l = [l, l]"],
                     ["if c > a:", "    a = a * 2 + c"], ["if a == c * d:", "    l = l + l"]]),
    st.builds(lambda conv: [f"l.append({conv})"], CONV),
    st.builds(lambda conv, n: [f"l = [{conv}] * {n}"], CONV, NUMBERS),
    st.builds(lambda conv, n: [f"l = [{conv} for _ in range({n})]"], CONV, NUMBERS),
    st.builds(lambda conv: [f"self.c = {conv}"], CONV),
)
FORWARD_STATEMENTS = st.sampled_from([
    ["x = self.s(x)"], ["x = x + self.c(x)"], ["y = self.c(x)", "x = x * y + y"], ["x = torch.cat([x, x], 1)"],
    ["p, q = p * q, q * p"], ["x = self.s(x) + x"], ["x = x.flatten(1)"], ["x = x + p"],
])


def _nested(statements: st.SearchStrategy[Lines]) -> st.SearchStrategy[Lines]:
    """Statements, some of them in (nested) loops over short or huge ranges."""
    return st.recursive(statements, lambda inner: st.builds(_loop, NUMBERS.map(str), inner), max_leaves=4)


@st.composite
def model_files(draw: st.DrawFn) -> str:
    init = [line for stmt in draw(st.lists(_nested(INIT_STATEMENTS), min_size=4, max_size=12)) for line in stmt]
    forward = [line for stmt in draw(st.lists(_nested(FORWARD_STATEMENTS), min_size=2, max_size=10))
               for line in stmt]
    size = draw(st.sampled_from(["", "# convlint: input-size=3x32x32\n", "# convlint: input-size=3x4096x4096\n"]))
    return (
        "import torch\nimport torch.nn as nn\n\n\n" + size
        + "class Model(nn.Module):\n    def __init__(self, c, d):\n        super().__init__()\n"
        + "        a = 1\n        l = [nn.Conv2d(c, d, 3, padding=1)]\n        self.s = nn.Identity()\n"
        + "        self.c = nn.Conv2d(c, c, 3, padding=1)\n"
        + "".join(f"        {line}\n" for line in init)
        + "    def forward(self, x):\n        p = self.c(x)\n        q = self.c(x)\n"
        + "".join(f"        {line}\n" for line in forward)
        + "        return self.s(x) + x\n")


def _tensors(analysis: Analysis) -> Iterator[TensorV]:
    for add in analysis.of(ResidualAdd):
        yield add.left
        yield add.right
    for use in analysis.of(ChannelUse):
        yield use.tensor


def _polys(analysis: Analysis) -> Iterator[Poly]:
    for t in _tensors(analysis):
        if t.channels is not None:
            yield t.channels
    for built in analysis.of(ConvBuilt):
        yield from (p for p in (built.conv.in_channels, built.conv.out_channels, built.conv.groups) if p is not None)
    for use in analysis.of(ChannelUse):
        yield use.expected
        yield use.actual


SMALL = hostile.small_inputs()


def _hostile_examples(test: Callable[[str], None]) -> Callable[[str], None]:
    """Each hostile input of bench/hostile.py is an example the property is always checked on."""
    for text in SMALL.values():
        test = example(text)(test)
    return test


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(model_files())
@_hostile_examples
def test_generated_models_stay_within_the_budgets(source: str) -> None:
    started = time.monotonic()
    analysis = analyse(ast.parse(source), source)
    elapsed = time.monotonic() - started
    assert elapsed < FILE_SECONDS + 10, "hang guard"  # (the time budget itself stops at FILE_SECONDS)
    budget = analysis.budget
    # work: within the budget, or stopped by it (a spend may pass it by one statement's paths)
    assert budget.work_spent <= FILE_WORK or analysis.stopped == budget.exhausted is not None
    assert budget.work_spent <= FILE_WORK + 4096
    for t in _tensors(analysis):
        # history kept: each step costs work, and a merge keeps a bounded part of its other operand
        assert len(t.history) <= 3 * FILE_WORK
        assert t.dims is None or all(len(d.ops) <= MAX_SIZE_OPS for d in t.dims)
    for p in _polys(analysis):
        assert not p.oversized, p
        assert all(c.bit_length() <= MAX_INT_BITS for c in p.terms.values())


# --- the budgets' pieces ------------------------------------------------------------------------


def test_a_list_past_max_items_is_unknown() -> None:
    conv = IntV(Poly.const(3))
    assert sequence_of((conv,) * MAX_ITEMS) == TupleV((conv,) * MAX_ITEMS)
    assert sequence_of((conv,) * (MAX_ITEMS + 1)) is UNKNOWN


def test_polynomials_past_the_value_budgets_are_oversized() -> None:
    assert not Poly.const(2 ** MAX_INT_BITS - 1).oversized
    assert Poly.const(2 ** MAX_INT_BITS).oversized
    c = Poly.atom("c")
    power = c
    for _ in range(7):
        power = power * c
    assert not power.oversized  # c**8
    assert (power * c).oversized  # c**9
    wide = Poly({(f"a{i}",): 1 for i in range(33)})
    assert wide.oversized


def test_a_history_is_shared_by_the_tensors_derived_from_it() -> None:
    node = ast.Name("x")
    t = TensorV("x", Poly.atom("C"), None)
    tensors = [t]
    for _ in range(1000):
        tensors.append(tensors[-1].then(Step(StepKind.KEEP, node)))
    last = tensors[-1].history
    assert len(last) == 1000
    # each tensor's history is its input's plus one node: 1,000 nodes in all, not 500,500
    assert all(b.history.before is a.history for a, b in zip(tensors, tensors[1:]))
    a = tensors[600].then(Step(StepKind.CONV, node))
    b = tensors[600].then(Step(StepKind.POOL, node), Step(StepKind.KEEP, node))
    assert a.history.common_past(b.history) is tensors[600].history
    assert [s.kind for s in b.history.since(tensors[600].history)] == [StepKind.POOL, StepKind.KEEP]
    assert History().common_past(last) is not last


# --- the worst inputs, through the real command line ----------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_hostile_inputs_end_with_a_verdict_and_no_traceback(convlint, tmp_path, name: str) -> None:
    path = tmp_path / "model.py"
    path.write_text(SMALL[name])
    proc = convlint("check", "--no-confirm", "--no-cache", str(path), cwd=tmp_path)  # (300 s: the hang guard)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_debug_says_which_budget_stopped_the_analysis(convlint, tmp_path) -> None:
    path = tmp_path / "model.py"
    path.write_text(SMALL["1,024-layer Sequential in nested loops"])
    quiet = convlint("check", "--no-confirm", "--no-cache", str(path), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = convlint("check", "--no-confirm", "--no-cache", "--debug", str(path), cwd=tmp_path)
    assert loud.returncode == 0
    assert loud.stderr == (f"convlint: {path}: analysis stopped early: the work budget ({FILE_WORK:,} units) ran "
                           f"out (what was found before is reported)\n")


def test_a_finding_before_the_budget_ran_out_stands(convlint, tmp_path) -> None:
    """The padding bug is found on the first statements; the loops after it exhaust the budget."""
    source = SMALL["1,024-layer Sequential in nested loops"].replace(
        "        for _ in range(32):\n", "        y = self.bad(x) + x\n        for _ in range(32):\n", 1).replace(
        "        super().__init__()\n", "        super().__init__()\n        self.bad = nn.Conv2d(3, 3, 3)\n", 1)
    path = tmp_path / "model.py"
    path.write_text(source)
    proc = convlint("check", "--no-confirm", "--no-cache", "--debug", "--format", "json", str(path), cwd=tmp_path)
    assert proc.returncode == 1
    assert "work budget" in proc.stderr
    line = source.splitlines().index("        self.bad = nn.Conv2d(3, 3, 3)") + 1
    assert [(d["line"], d["code"]) for d in json.loads(proc.stdout)] == [(line, "CVL101")]


def test_reproducers_are_built_only_when_they_will_be_run_or_printed() -> None:
    sample = str(ROOT / "fixtures" / "sample" / "resnet_bugs.py")
    errors = [d for d in check_path(sample, CheckRequest()) if d.severity == "error"]
    assert len(errors) == 4 and all(d.repro is None for d in errors)  # (--no-confirm, the flake8 plugin)
    wanted = [d for d in check_path(sample, CheckRequest(reproduce=True)) if d.severity == "error"]
    assert len(wanted) == 4 and all(d.repro is not None for d in wanted)


HELPER_THEN_BUILDER = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x


def make_stem(in_chs, out_chs):
    layers = []
    for i in range(32):
        for j in range(32):
            for k in range(8):
                layers.append(Block(out_chs))
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 3), *layers)


class Net(nn.Module):
    def __init__(self, width, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stem(x)), 1))


def net():
    return Net(16)
'''


def test_a_helper_that_needs_arguments_leaves_the_builders_budget_to_builders(tmp_path) -> None:
    """``make_stem(in_chs, out_chs)`` builds blocks of the file, so it counts as a builder, but it runs
    with symbols and its loops take every step it is given: ``net()``, which runs with the model's
    numbers, still gets the builders' budget and finds the classifier's width."""
    path = tmp_path / "model.py"
    path.write_text(HELPER_THEN_BUILDER)
    found = [(d.line, d.code) for d in check_path(str(path), CheckRequest())]
    line = HELPER_THEN_BUILDER.splitlines().index("        self.fc = nn.Linear(32, num_classes)") + 1
    assert (line, "CVL303") in found
