"""The roots of an analysis: each class of the file (its ``__init__`` paths, then ``forward`` on each),
each module-level function, and the file's own statements; each within its step budget."""
from __future__ import annotations

import ast
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..symbolic.poly import Poly
from ..torchlib.catalogue import MODEL_CODE
from ..torchlib.layers import Sequential
from ..torchlib.values import CHANNEL_PREFIX, LayerV, TensorV, Value, input_dim
from .classes import class_kind, find_method
from .files import signature
from .functions import run_function
from ..limits import MAX_PATHS, STEP_BUDGET, FileOutOfBudget, OutOfBudget
from ..torchlib.library import MODELLED_MODULES
from .loader import library_index
from .machine import Interpreter
from .modules import flow_of, run_composite
from .objects import ClassV, Composite, Def, ProjectRefV, SelfV
from .state import Arguments, Context, State

NO_ARGUMENTS = Arguments([], {})


def analyse_class(it: Interpreter, cls: ast.ClassDef, input_size: Optional[Tuple[int, ...]] = None) -> None:
    """Run one class: its ``__init__`` paths, then ``forward`` on each (within the step budget:
    what was found before it ran out stands, the rest stays unknown)."""
    it.steps = 0
    try:
        _analyse_class(it, cls, input_size)
    except FileOutOfBudget:
        raise  # the file's budget: nothing more of this file is run
    except OutOfBudget:
        pass


def _analyse_class(it: Interpreter, cls: ast.ClassDef, input_size: Optional[Tuple[int, ...]]) -> None:
    ctx = Context()
    init = find_method(it, cls, "__init__")
    base_kind = class_kind(it, cls)
    if base_kind is None:
        return
    self_v = SelfV(cls, {}, [] if base_kind == "sequential" else None)
    start = State.empty(self_v)
    if init is None:
        states = [start]
    else:
        with it.within(init):
            states = run_function(it, init, NO_ARGUMENTS, start, _root_context(it, cls, init), self_v, split=True)
    forward = find_method(it, cls, "forward")
    if forward is None and base_kind != "sequential":
        return
    for st in states[:MAX_PATHS]:
        if st.facts.infeasible:
            continue
        instance = st.self_v or self_v
        if forward is None:  # an nn.Sequential subclass: its registered layers, in order
            if instance.seq_layers is not None:
                x = TensorV("x", Poly.atom(f"{CHANNEL_PREFIX}x]"), None, rank_open=True)
                Sequential(cls, list(instance.seq_layers)).apply(x, flow_of(it, State({}, st.facts, st.truths, instance), ctx))
            continue
        args = forward_inputs(forward, input_size)
        first = args[0] if args else None
        if input_size and isinstance(first, TensorV):
            # the input's channels are given: a fact of every path
            st.facts.add_equal(Poly.atom(f"{CHANNEL_PREFIX}{first.root}]"), Poly.const(input_size[0]))
        fst = State({}, st.facts, st.truths, instance)
        with it.within(forward):
            run_function(it, forward, Arguments(list(args), {}), fst, _root_context(it, cls, forward), instance,
                         split=True)


def _root_context(it: Interpreter, cls: ast.ClassDef, method: Def) -> Context:
    """A class's own method runs with no anchor; one it inherits from another file's class reports
    what it builds at the class (its adds are that file's to judge)."""
    return Context() if it.owners.get(id(method), it.checked) is it.checked else Context(anchor=cls)


def forward_inputs(forward: Def, input_size: Optional[Tuple[int, ...]]) -> List[Value]:
    """The tensors ``forward`` is given: one per parameter without a default, channels and sizes
    unknown (the first one's known with an input size)."""
    args: List[Value] = []
    for i, p in enumerate(signature(forward).positional[1:]):
        if p.default is not None:
            break
        root = p.name
        channels = Poly.atom(f"{CHANNEL_PREFIX}{root}]")
        known: Tuple[Tuple[str, int], ...] = ()
        if input_size and i == 0:
            spatial = input_size[1:]
            known = tuple((input_dim(root, k), spatial[-k]) for k in range(1, len(spatial) + 1))
        args.append(TensorV(root, channels, None, known_sizes=known, rank_open=True))
    return args


def analyse_function(it: Interpreter, fn: Def) -> None:
    """A module-level function on its own, for the layers it builds from its own numbers, and
    for the model it builds from a class of this file (``def resnet18(): return ResNet(BasicBlock,
    [2, 2, 2, 2])``): that model's forward is run, and its blocks' adds are judged with the numbers
    it built them from. A function that does neither has nothing to check: its callers check its
    results."""
    builds = builds_model(it, fn)
    if builds and id(fn) in it.builder_helpers:
        return  # `_create_resnet(variant, **kwargs)`: its callers (resnet18, ...) run it with their numbers
    if not builds and not MODEL_CODE.names_a_layer(it.index.source_of(fn)):
        return
    # half a class's budget: what such a function builds beyond its own layers (a whole model
    # from a config) is checked by that model's and its blocks' own classes; the model builders
    # of a file (resnet18, resnet34, ..., often dozens) share one class's budget, which the first
    # may spend whole (an EfficientNet-B0 built with its numbers takes most of it)
    budget = STEP_BUDGET // 2
    shared = builds and not _needs_arguments(fn)  # (`create_stem(in_chs, ...)` is run with symbols: a helper)
    if shared:
        budget = it.builder_steps
        if budget <= 0:
            return
    it.steps = STEP_BUDGET - budget
    try:
        # a model builder is checked as `resnet18()` builds: its `*args` and `**kwargs` empty
        ends = run_function(it, fn, NO_ARGUMENTS, State.empty(), Context(plain_call=builds), split=True)
        if builds:
            for end in ends[:MAX_PATHS]:
                model = end.returned
                if isinstance(model, LayerV) and isinstance(model.layer, (Composite, Sequential)):
                    root = f"{fn.name}()"
                    x = TensorV(root, Poly.atom(f"{CHANNEL_PREFIX}{root}]"), None, rank_open=True)
                    if isinstance(model.layer, Composite):
                        run_composite(it, model.layer, x, end, Context())
                    else:  # `return nn.Sequential(stem, Block(64, 64), ...)`: its layers in order
                        model.layer.apply(x, flow_of(it, end, Context()))
    except FileOutOfBudget:
        raise  # the file's budget: nothing more of this file is run
    except OutOfBudget:
        pass
    if shared:
        it.builder_steps -= it.steps - (STEP_BUDGET - budget)


def _needs_arguments(fn: Def) -> bool:
    """Whether ``fn`` has a parameter a call must give (one with no default)."""
    args = fn.args
    positional = args.posonlyargs + args.args
    return len(args.defaults) < len(positional) or any(d is None for d in args.kw_defaults)


def in_run_order(it: Interpreter, functions: Sequence[Def]) -> List[Def]:
    """The file's module-level functions in the order they are run. The model builders share one
    budget (often dozens of ``resnet18``-like variants), so those that name a class of the file no
    earlier builder named (``block=SEResNeXtBottleneck``) come first: each block class is judged with
    some model's numbers before the budget goes to variants of the same blocks."""
    classes = {cls.name for cls in it.index.classes}
    seen: Set[str] = set()
    first: List[Def] = []
    later: List[Def] = []
    for fn in functions:
        if not builds_model(it, fn) or id(fn) in it.builder_helpers:
            first.append(fn)
            continue
        named = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in classes}
        (later if named <= seen else first).append(fn)
        seen |= named
    return first + later


def builds_model(it: Interpreter, fn: Def) -> bool:
    """Whether ``fn`` calls a module class of this file by its name, or a function of this file
    that does (torchvision's ``resnet18()`` calls ``_resnet(BasicBlock, ...)``, which calls ``ResNet``)."""
    if it.builders is None:
        index = it.index
        classes = {cls.name for cls in index.classes if class_kind(it, cls) is not None}
        functions = {f.name: f for f in index.functions}
        # a function calls a class by its name, or hands it to a library factory convlint models
        # (timm's `build_model_with_cfg(ResNet, variant, pretrained, **kwargs)`)
        calls: Dict[str, Set[str]] = {
            f.name: {name for stmt in f.body for n in ast.walk(stmt) if isinstance(n, ast.Call)
                     for name in _called_or_handed(it, n)}
            for f in index.functions}
        # a model class of another file builds this file's blocks too (timm's res2net builders hand
        # `block=Bottle2neck` to `ResNet` from resnet.py)
        classes |= {name for name in set().union(*calls.values()) - classes - set(functions)
                    if _imported_module_class(it, name)}
        builders = {name for name, called in calls.items() if called & classes}
        grown = True
        while grown:  # the functions that reach a builder through this file's functions
            before = len(builders)
            builders |= {name for name, called in calls.items() if called & builders}
            grown = len(builders) > before
        it.builders = {id(functions[name]) for name in builders}
        called_by_builders = set().union(*(calls[name] for name in builders)) if builders else set()
        it.builder_helpers = {id(functions[name]) for name in builders & called_by_builders}
    return id(fn) in it.builders


def _imported_module_class(it: Interpreter, name: str) -> bool:
    """Whether ``name`` is a torch module class this file imports from another file of the project."""
    ref = it.index.names.get(name)
    if not isinstance(ref, ProjectRefV):
        return False
    value = it.resolve_project(ref)
    if not isinstance(value, ClassV):
        return False
    with it.within(value.node):
        return class_kind(it, value.node) is not None


def _called_or_handed(it: Interpreter, call: ast.Call) -> List[str]:
    if not isinstance(call.func, ast.Name):
        return []
    names = [call.func.id]
    factory = it.index.names.get(call.func.id)
    if isinstance(factory, ProjectRefV) and factory.module in MODELLED_MODULES and \
            library_index(factory.module, it.environment) is not None:  # (its model is in use here)
        names += [a.id for a in call.args if isinstance(a, ast.Name)]
    return names


def analyse_statements(it: Interpreter, stmts: Sequence[ast.stmt]) -> None:
    """The file's own module-level statements (its test code may run the model)."""
    it.steps = 0
    try:
        it.exec_block(stmts, [State.empty()], Context())
    except FileOutOfBudget:
        raise  # the file's budget: nothing more of this file is run
    except OutOfBudget:
        pass

