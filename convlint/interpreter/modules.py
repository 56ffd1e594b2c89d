"""nn.Module semantics: torch layers built from the catalogue, ``nn.Sequential`` and ``nn.ModuleList``,
instances of the analysed code's module classes (``__init__`` run per path), and their ``forward``
run on a tensor."""
from __future__ import annotations

import ast
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..symbolic.dims import Dim
from ..symbolic.poly import Facts, Poly, prove_unequal
from ..source.module_names import dotted
from ..torchlib.catalogue import CONTAINERS, build_layer
from ..torchlib.events import ChannelUse, ConvBuilt, WindowApplied
from ..torchlib.flattening import dim_size
from ..torchlib.layers import Conv, ModuleList, Opaque, Pool, Sequential
from ..torchlib.values import (
    CHANNEL_PREFIX, NONE, UNKNOWN, BoolV, FloatV, Flow, IntV, Layer, LayerV, NoneV, StepKind, StrV, TensorV, TupleV,
    Value, applied, sequence_of,
)
from .classes import DICT_VIEWS, class_kind, find_method, is_dataclass, same_file_bases, torch_layer_base
from .functions import call_function, run_function
from ..limits import MAX_DEPTH
from .machine import CallSite, Interpreter, in_owner
from .merging import merge_into
from .objects import Composite, Env, FuncV, NamedLayersV, NamespaceV, SelfMethodV, SelfV, Variant
from .state import Arguments, Context, State


def report_join(it: Interpreter, st: State, ctx: Context, make: Callable[[Optional[ast.AST]], Any]) -> None:
    """Keep a residual add or a concatenation found on a path: in a module's own forward, or in the
    forward of a module this file's code built (with the call that built it, the module's class may be
    another file's); not on a path that tested tensor shapes, nor where a caller ran the code quietly."""
    if not ctx.report_adds or st.shape_guarded:
        return
    if ctx.anchor is None:
        if it.index is it.checked:
            it.emit(make(None))
    elif ctx.built_at is not None and it.index is it.checked:
        it.emit(make(ctx.built_at))
    elif ctx.built_at is not None and id(ctx.built_at) in it.checked_calls:
        # a module of another file (a library's block) built by this file's call: reported there
        it.emit(replace(make(ctx.built_at), node=ctx.built_at))


class PathFlow(Flow):
    """Applying layers on one path: binds the inputs' channel symbols, reports the rest."""

    def __init__(self, it: Interpreter, st: State, ctx: Context):
        self.it, self.st, self.ctx = it, st, ctx

    @property
    def facts(self) -> Facts:
        return self.st.facts

    def consume(self, layer: Layer, tensor: TensorV, expected: Poly, what: str) -> bool:
        if tensor.channels is None:
            return False
        facts = self.st.facts
        actual = facts.resolve(tensor.channels)
        if any(a.startswith(CHANNEL_PREFIX) for a in actual.atoms()):
            for a in tensor.channels.atoms():
                if a.startswith(CHANNEL_PREFIX) and tensor.channels == Poly.atom(a):
                    facts.names.setdefault(a, expected)
            facts.add_equal(actual, expected)   # the input had these channels after all
            return False
        self.it.emit(ChannelUse(layer, what, expected, actual, tensor, facts, self.place(layer), self.ctx.built_at))
        return prove_unequal(expected, actual, facts)

    def place(self, layer: Layer) -> ast.AST:
        """Where a finding about ``layer`` goes: in the forward of a module another module built, the
        layer's own call when this file has it (else the call that built the module)."""
        if self.ctx.built_at is not None and layer.own_call is not None:
            return layer.own_call
        return layer.node

    def spend(self, units: int = 1) -> None:
        self.it.budget.spend(units)

    def report(self, make: Callable[[Optional[ast.AST]], object]) -> None:
        report_join(self.it, self.st, self.ctx, make)

    def run_module(self, layer: Layer, tensor: TensorV) -> Value:
        if not isinstance(layer, Composite):
            return UNKNOWN
        return run_composite(self.it, layer, tensor, self.st, self.ctx)

    def window(self, layer: Layer, tensor: TensorV, dims: Tuple[Dim, ...]) -> None:
        if not tensor.known_sizes or not isinstance(layer, (Conv, Pool)):
            return  # sizes are numbers only from a known input size
        sizes = tuple(dim_size(d, tensor, self.st.facts) for d in dims)
        values = tuple(None if s is None else s.value for s in sizes)
        if any(v is not None for v in values):
            self.it.emit(WindowApplied(layer, values, self.st.facts, self.place(layer), self.ctx.built_at))


def flow_of(it: Interpreter, st: State, ctx: Context) -> PathFlow:
    return PathFlow(it, st, ctx)


# --- torch's own modules ------------------------------------------------------------------------


def torch_class(it: Interpreter, qualname: str, arguments: Arguments, site: CallSite) -> Value:
    """``torch.nn.<name>(...)``, unless the file replaced it (``nn.Conv2d = MyConv``)."""
    if it.index.patched and it.index.is_patched(qualname):
        return UNKNOWN
    return torch_module(it, qualname[len("torch.nn."):], arguments, site)


def torch_module(it: Interpreter, name: str, arguments: Arguments, site: CallSite) -> Value:
    """``nn.<name>(...)``: a layer of the catalogue, or a container of the layers given."""
    args, kwargs, node, ctx = arguments.positional, arguments.keywords, site.node, site.ctx
    if arguments.starred:
        return LayerV(Opaque(ctx.anchor or node))
    if name == "Sequential":
        return LayerV(sequential(it, args, site))
    if name == "ModuleList" and not kwargs and len(args) <= 1:
        items = args[0].items if args and isinstance(args[0], TupleV) else (() if not args else None)
        layers = [v.layer for v in items if isinstance(v, LayerV)] if items is not None else []
        if items is not None and len(layers) == len(items):
            return LayerV(ModuleList(ctx.anchor or node, layers))
        return UNKNOWN
    if name in CONTAINERS:
        return UNKNOWN  # a ModuleList of unknown items, a ModuleDict, parameters: not modelled
    return LayerV(build(it, name, arguments, site))


def build(it: Interpreter, name: str, arguments: Arguments, site: CallSite) -> Layer:
    args, kwargs = arguments.positional, arguments.keywords

    def arg(keyword: str, position: int, default: Optional[Value]) -> Optional[Value]:
        if keyword in kwargs:
            return kwargs[keyword]
        if position < len(args):
            return args[position]
        return default

    anchor = site.ctx.anchor
    layer = build_layer(name, arg, anchor or site.node, site.node, anchor is None, site.st.facts)
    if it.index is it.checked:
        layer.own_call = site.node
    if isinstance(layer, Conv):
        it.emit(ConvBuilt(layer, site.st.facts))
    return layer


def sequential(it: Interpreter, args: Sequence[Value], site: CallSite) -> Sequential:
    if len(args) == 1 and isinstance(args[0], NamedLayersV):  # nn.Sequential(OrderedDict([...]))
        args = list(args[0].items)
    node = site.ctx.anchor or site.node
    items: List[Layer] = [a.layer if isinstance(a, LayerV) else Opaque(node) for a in args]
    seq = Sequential(node, items)
    if site.ctx.anchor is None and items:
        check_sequential(it, seq, site.st, site.ctx)
    return seq


def check_sequential(it: Interpreter, seq: Sequential, st: State, ctx: Context) -> None:
    """Channels must flow through a Sequential whatever its input: check it as it is built."""
    probe = State(dict(st.env), st.facts.copy(), dict(st.truths), st.self_v)
    root = f"seq{id(seq)}"
    seq.apply(TensorV(root, Poly.atom(f"{CHANNEL_PREFIX}{root}]"), None, rank_open=True), flow_of(it, probe, ctx))


def self_method(it: Interpreter, method: SelfMethodV, arguments: Arguments, site: CallSite) -> Value:
    """``super().__init__(*layers)`` of a Sequential subclass, ``self.add_module(name, layer)``."""
    sv = method.self_v
    args, kwargs = arguments.positional, arguments.keywords
    if sv is None:
        return UNKNOWN
    if method.name == "super.__init__":
        # the bases of the class whose __init__ called super() (not always the instance's class)
        bases = same_file_bases(it, method.owner or sv.cls)
        inits = [find_method(it, b, "__init__") for b in bases]
        base_init = next((init for init in inits if init is not None), None)
        if base_init is not None:  # a base class of the analysed code builds part of the module
            return call_function(it, FuncV(base_init, sv), arguments, site)
        if len(bases) == 1 and is_dataclass(bases[0]):  # a dataclass's own __init__ binds its fields
            with it.within(bases[0]):
                fields = dataclass_fields(it, bases[0], arguments)
            if fields is None:
                sv.attrs.clear()
                sv.complete = False
                return UNKNOWN
            sv.attrs.update(fields)
            return NONE
        if sv.seq_layers is not None:
            if arguments.starred or kwargs:
                sv.seq_layers = None
                return NONE
            sv.seq_layers = list(sequential(it, args, site).layers)
        return NONE
    if method.name in DICT_VIEWS and not args and not kwargs:
        return _registered(sv, method.name)
    if method.name in ("add_module", "register_module"):
        if len(args) == 2 and isinstance(args[0], StrV):
            sv.attrs[args[0].text] = args[1]
            if sv.seq_layers is not None:
                added = args[1]
                sv.seq_layers.append(added.layer if isinstance(added, LayerV) else Opaque(site.node))
        else:  # a module under a name not known: what the instance holds is no longer known
            sv.attrs.clear()
            sv.seq_layers = None
            sv.complete = False
        return NONE
    return UNKNOWN


def _registered(sv: SelfV, view: str) -> Value:
    """``self.items()`` of an ``nn.ModuleDict`` subclass: its modules in the order they were added,
    when every attribute is a known layer or a plain number, string or flag (anything else may be
    a module too)."""
    if not sv.complete:
        return UNKNOWN
    layers = []
    for name, value in sv.attrs.items():
        if isinstance(value, LayerV):
            layers.append((name, value))
        elif not isinstance(value, (IntV, FloatV, BoolV, StrV, NoneV)):
            return UNKNOWN
    if view == "keys":
        return sequence_of(tuple(StrV(name) for name, _ in layers))
    if view == "values":
        return sequence_of(tuple(value for _, value in layers))
    return sequence_of(tuple(TupleV((StrV(name), value)) for name, value in layers))


def assign_self(base: SelfV, name: str, value: Value) -> None:
    """``self.name = value``."""
    if base.seq_layers is not None and isinstance(value, LayerV):
        # an nn.Sequential subclass runs its registered modules in the order they were set
        previous = base.attrs.get(name)
        if isinstance(previous, LayerV) and previous.layer in base.seq_layers:
            base.seq_layers[base.seq_layers.index(previous.layer)] = value.layer
        else:
            base.seq_layers.append(value.layer)
    base.attrs[name] = value


# --- the analysed code's module classes ---------------------------------------------------------


@in_owner(lambda cls: cls)
def instantiate(it: Interpreter, cls: ast.ClassDef, arguments: Arguments, site: CallSite,
                closure: Optional[Env] = None) -> Value:
    ctx = site.ctx
    kind = class_kind(it, cls)
    anchor = ctx.anchor or site.node
    base = torch_layer_base(it, cls)
    if base is not None:  # `class MyConv(nn.Conv2d): pass` builds an nn.Conv2d
        return torch_class(it, base, Arguments(arguments.positional, arguments.keywords), site)
    if kind is None and is_dataclass(cls):
        return dataclass_instance(it, cls, arguments)
    if kind is None and plain_bases(it, cls) and ctx.depth < MAX_DEPTH and id(cls) not in it.in_progress:
        return config_instance(it, cls, arguments, site, closure)
    if kind is None or ctx.depth >= MAX_DEPTH or id(cls) in it.in_progress:
        return LayerV(Opaque(anchor))
    inner = ctx.inner(anchor=anchor, report_adds=False, owner=f"{cls.name}.", keep_built_at=False)
    self_v = SelfV(cls, {}, [] if kind == "sequential" else None, closure=closure)
    init = find_method(it, cls, "__init__")
    it.in_progress.add(id(cls))
    try:
        start = State({}, site.st.facts.copy(), dict(site.st.truths), self_v)
        ends = run_function(it, init, arguments, start, inner, self_v, split=True) if init else [start]
    finally:
        it.in_progress.discard(id(cls))
    ends = [e for e in ends if not e.facts.infeasible]
    if not ends:
        return LayerV(Opaque(anchor))
    if find_method(it, cls, "forward") is None:
        layer_lists = [e.self_v.seq_layers for e in ends if e.self_v is not None]
        if kind != "sequential" or len(layer_lists) != len(ends) or any(x is None for x in layer_lists):
            return LayerV(Opaque(anchor))
        if len(ends) == 1:
            return LayerV(Sequential(anchor, list(layer_lists[0] or ())))
        # an nn.Sequential subclass whose layers depend on its arguments: one variant per path
    variants = [Variant(e.self_v or self_v, e.facts, e.truths) for e in ends]
    return LayerV(Composite(anchor, variants))


def config_instance(it: Interpreter, cls: ast.ClassDef, arguments: Arguments, site: CallSite,
                    closure: Optional[Env] = None) -> Value:
    """A plain class of settings (torchvision's ``InvertedResidualConfig(16, 3, 16, ...)``): what its
    ``__init__`` sets on ``self``, readable as attributes, when every path sets the same."""
    init = find_method(it, cls, "__init__")
    if init is None:
        return UNKNOWN
    self_v = SelfV(cls, {}, None, closure=closure)
    inner = site.ctx.inner(report_adds=False, owner=f"{cls.name}.")
    it.in_progress.add(id(cls))
    try:
        start = State({}, site.st.facts.copy(), dict(site.st.truths), self_v)
        ends = [e for e in run_function(it, init, arguments, start, inner, self_v, split=True)
                if not e.facts.infeasible]
    finally:
        it.in_progress.discard(id(cls))
    settings = [dict(e.self_v.attrs) if e.self_v is not None else None for e in ends]
    if not settings or any(s is None or s != settings[0] for s in settings):
        return UNKNOWN
    return NamespaceV(settings[0] or {}, cls=cls)


def plain_bases(it: Interpreter, cls: ast.ClassDef) -> bool:
    """Whether every base of ``cls`` is a plain class of the analysed code (not a module), if it has
    any: a class of settings (torchvision's ``MBConvConfig(_MBConvConfig)``)."""
    bases = same_file_bases(it, cls)
    return len(bases) == len(cls.bases) and all(class_kind(it, b) is None for b in bases)


def dataclass_instance(it: Interpreter, cls: ast.ClassDef, arguments: Arguments) -> Value:
    """A ``@dataclass`` config (``LayerFn(conv_norm_act=ConvNormAct)``): its fields, bound like
    ``__init__`` binds them, readable as attributes. Inherited fields are not followed."""
    items = dataclass_fields(it, cls, arguments)
    return UNKNOWN if items is None else NamespaceV(items)


def dataclass_fields(it: Interpreter, cls: ast.ClassDef, arguments: Arguments) -> Optional[Dict[str, Value]]:
    """The fields of a ``@dataclass`` as its generated ``__init__`` binds them from ``arguments``."""
    args, kwargs = arguments.positional, arguments.keywords
    if cls.bases or arguments.starred:
        return None
    fields: List[Tuple[str, Optional[Value]]] = []
    for small in cls.body:
        if not isinstance(small, ast.AnnAssign) or not isinstance(small.target, ast.Name):
            continue
        if dotted(small.annotation) in ("ClassVar", "typing.ClassVar"):
            continue
        default: Optional[Value] = None
        if small.value is not None:
            value = small.value
            if isinstance(value, ast.Call) and dotted(value.func) in ("field", "dataclasses.field"):
                given = {k.arg: k.value for k in value.keywords if k.arg is not None}
                default = it.eval_static(given["default"]) if "default" in given else UNKNOWN
            else:
                default = it.eval_static(value)
        fields.append((small.target.id, default))
    names = [name for name, _ in fields]
    if len(args) > len(fields) or any(k not in names for k in kwargs):
        return None
    items: Dict[str, Value] = {}
    for i, (name, default) in enumerate(fields):
        given_value = args[i] if i < len(args) else kwargs.get(name)
        items[name] = given_value if given_value is not None else (UNKNOWN if default is None else default)
    return items


def run_composite(it: Interpreter, layer: Composite, t: TensorV, st: State, ctx: Context,
                  extra: Sequence[Value] = (), kwargs: Optional[Dict[str, Value]] = None,
                  given: Optional[Value] = None) -> Value:
    """The module applied to ``t`` (or to ``given``, a list of maps whose first is ``t``: DenseNet's
    layers take every map before them): its variants' results merged into one value."""
    ends = composite_ends(it, layer, t, st, ctx, extra, kwargs, given)
    return UNKNOWN if ends is None else composite_result(layer, t, st, ends)


def composite_result(layer: Composite, t: TensorV, st: State, ends: List[State]) -> Value:
    """The module's end states merged into the value the caller sees (the caller learns what they
    agree on)."""
    return module_output(layer, t, merge_into(st, ends, same_self=False))


@in_owner(lambda layer: layer.cls())
def composite_ends(it: Interpreter, layer: Composite, t: TensorV, st: State, ctx: Context,
                   extra: Sequence[Value] = (), kwargs: Optional[Dict[str, Value]] = None,
                   given: Optional[Value] = None) -> Optional[List[State]]:
    """The end states of the module's ``forward`` on ``t``, one or more per variant (None: not run)."""
    variants = layer.variants
    if not variants or ctx.depth >= MAX_DEPTH:
        return None
    cls = variants[0].self_v.cls
    forward = find_method(it, cls, "forward")
    sequential = forward is None and not extra and not kwargs and given is None and \
        all(v.self_v.seq_layers is not None for v in variants)
    if not sequential and (forward is None or id(forward) in it.in_progress):
        return None
    # the module's own adds are judged with the numbers it was built from, when it is this
    # file's code (a module of another file is that file's to report)
    inner = ctx.inner(anchor=layer.node, owner=f"{cls.name}.", built_at=layer.node)
    ends: List[State] = []
    it.in_progress.add(id(forward))
    try:
        for variant in variants:
            merged = st.facts.copy()
            for k, v in variant.facts.subst.items():
                if k not in merged.subst:
                    merged.add_equal(Poly.atom(k), v)
            merged.positive |= variant.facts.positive
            start = State({}, merged, {**st.truths, **variant.truths}, variant.self_v)
            if forward is None:  # an nn.Sequential subclass: its layers in order
                layers = list(variant.self_v.seq_layers or ())
                start.returned = Sequential(layer.node, layers).apply(t, flow_of(it, start, inner))
                ends.append(start)
                continue
            first = t if given is None else given
            ends.extend(run_function(it, forward, Arguments([first, *extra], dict(kwargs or {})), start, inner,
                                     variant.self_v, split=True))
    finally:
        it.in_progress.discard(id(forward))
    return ends


def module_output(layer: Composite, t: TensorV, out: Value) -> Value:
    """Everything that happened inside the module is reported at the module's constructor call."""
    if isinstance(out, TensorV):
        steps = tuple(s if s.node is layer.node or s.kind == StepKind.OTHER else s.placed_at(layer.node)
                      for s in out.history.newest(len(out.history) - len(t.history)))
        out = out.derive(history=t.history.then(*steps))
    return applied(layer, t, out)
