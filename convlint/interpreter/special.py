"""Callables convlint knows by their qualified name: torch's own classes and tensor ops, Python's
builtins it models (``super``, ``isinstance``, ``range``, ...), ``functools.partial``,
``collections.OrderedDict``, ``torch.utils.checkpoint``. One registry entry each."""
from __future__ import annotations

import math
from typing import Callable, Dict

from ..limits import MAX_ITEMS
from ..symbolic.poly import Poly
from ..torchlib import ops
from ..torchlib.catalogue import as_poly
from ..torchlib.values import (
    FALSE, NONE, TRUE, UNKNOWN, AndC, AtomC, BoolV, ConstC, OrC, FloatV, IntV, LayerV, RefV, StrV, TupleV, Value,
)
from .classes import class_attribute, is_layer_class
from .machine import CallSite, Interpreter, callee
from .modules import assign_self, flow_of, self_method, torch_class
from .objects import ClassV, DictV, NamedLayersV, NamespaceV, PartialV, RangeV, SelfMethodV, SelfV, SuperV
from .expressions import sequence_items
from .operators import OpCall, is_instance, number_of, to_cond
from .state import Arguments

Special = Callable[[Interpreter, str, Arguments, CallSite], Value]  # (interpreter, qualified name, ...)
_SPECIAL: Dict[str, Special] = {}
# attributes every nn.Module has (hasattr is true for them whatever the class sets)
_MODULE_ATTRIBUTES = {"training", "forward", "_modules", "_parameters", "_buffers", "__class__", "__dict__"}


def special(*qualnames: str) -> Callable[[Special], Special]:
    def register(handler: Special) -> Special:
        for q in qualnames:
            _SPECIAL[q] = handler
        return handler
    return register


@callee(RefV)
def call_qualname(it: Interpreter, func: RefV, arguments: Arguments, site: CallSite) -> Value:
    q = func.qualname
    if q == "functools.partial":
        return _partial(it, q, arguments, site)
    if it.index.patched and it.index.is_patched(q):
        return UNKNOWN  # the file replaced it (`nn.Conv2d = MyConv`): not torch's any more
    if is_layer_class(q):
        return torch_class(it, q, arguments, site)
    handler = _SPECIAL.get(q)
    if handler is not None:
        return handler(it, q, arguments, site)
    if q.startswith("builtins."):
        return UNKNOWN
    if q in ops.FACTORIES:
        return ops.new_tensor(arguments.positional, arguments.keywords, site.node, flow_of(it, site.st, site.ctx))
    return ops.call_function(q, arguments.positional, arguments.keywords, OpCall(it, site))


def _partial(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``functools.partial(nn.Conv2d, kernel_size=3)``."""
    args = arguments.positional
    if arguments.starred or not args:
        return UNKNOWN
    return PartialV(args[0], tuple(args[1:]), dict(arguments.keywords))


@special("builtins.super")
def _super(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    running = it.running[-1] if it.running else None
    return SuperV(site.st.self_v, it.method_class.get(id(running)) if running is not None else None)


@special("torch.nn.Sequential.__init__")
def _sequential_init(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``nn.Sequential.__init__(self, *layers)``."""
    args = arguments.positional
    if not args or not isinstance(args[0], SelfV):
        return UNKNOWN
    return self_method(it, SelfMethodV(args[0], "super.__init__"),
                       Arguments(args[1:], arguments.keywords, arguments.starred), site)


@special("builtins.hasattr", "builtins.getattr")
def _self_attribute_test(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``hasattr(self, "skip")`` / ``getattr(self, "skip", None)``: known when this path set it, or
    when nothing could have (every attribute of the module is known)."""
    args = arguments.positional
    if len(args) < 2 or not isinstance(args[0], SelfV) or not isinstance(args[1], StrV):
        return UNKNOWN
    sv, attr = args[0], args[1].text
    default = args[2] if len(args) > 2 else None
    is_hasattr = q == "builtins.hasattr"
    if attr in sv.attrs:
        return BoolV(TRUE) if is_hasattr else sv.attrs[attr]
    known = class_attribute(it, sv.cls, attr)
    if known is not UNKNOWN:
        return BoolV(TRUE) if is_hasattr else known
    if sv.complete and attr not in _MODULE_ATTRIBUTES:
        if is_hasattr:
            return BoolV(FALSE)
        return default if default is not None else UNKNOWN
    return UNKNOWN if not is_hasattr else BoolV(AtomC(it.code(site.node)))


@special("builtins.dict")
def _dict(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args, kwargs = arguments.positional, arguments.keywords
    if arguments.starred:
        return UNKNOWN
    if not args:
        return DictV(dict(kwargs))
    if len(args) == 1 and isinstance(args[0], DictV):
        return DictV({**args[0].items, **kwargs})
    return UNKNOWN


@special("builtins.isinstance")
def _isinstance(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) != 2:
        return UNKNOWN
    verdict = is_instance(args[0], args[1])
    return BoolV(AtomC(it.code(site.node)) if verdict is None else ConstC(verdict))


@special("builtins.type")
def _type(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) != 1:
        return UNKNOWN
    if isinstance(args[0], SelfV):
        return ClassV(args[0].cls, closure=args[0].closure)
    if isinstance(args[0], LayerV) and args[0].layer.torch_name:
        return RefV(f"torch.nn.{args[0].layer.torch_name}")
    return UNKNOWN


@special("builtins.setattr")
def _setattr(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) == 3 and isinstance(args[0], SelfV) and isinstance(args[1], StrV):
        assign_self(args[0], args[1].text, args[2])
        return NONE
    return UNKNOWN


@special("torch.utils.checkpoint.checkpoint")
def _checkpoint(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``checkpoint(self.block, x)`` runs ``self.block(x)``."""
    args = arguments.positional
    if not args:
        return UNKNOWN
    return it.apply(args[0], Arguments(list(args[1:]), {}, arguments.starred), site)


@special("collections.OrderedDict")
def _ordered_dict(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args, kwargs = arguments.positional, arguments.keywords
    if not args and not kwargs:
        return NamedLayersV((), ())
    if len(args) == 1 and isinstance(args[0], TupleV):
        pairs = [item.items[1] for item in args[0].items if isinstance(item, TupleV) and len(item.items) == 2]
        return NamedLayersV(tuple(pairs)) if len(pairs) == len(args[0].items) else UNKNOWN
    return UNKNOWN


# --- builtins on numbers and sequences ----------------------------------------------------------


@special("builtins.range")
def _range(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    polys = [as_poly(a) for a in arguments.positional]
    bounds = [p.value for p in polys if p is not None and p.value is not None]
    if 1 <= len(polys) <= 3 and len(bounds) == len(polys) and (len(bounds) < 3 or bounds[2] != 0):
        return RangeV(tuple(bounds))
    return UNKNOWN


@special("builtins.len")
def _len(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) == 1 and isinstance(args[0], TupleV):
        return IntV(Poly.const(len(args[0].items)))
    return UNKNOWN


@special("builtins.sum")
def _sum(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``sum(block_repeats)``, ``sum(layers, 1)``: the total of a known list of whole numbers."""
    args = arguments.positional
    if not 1 <= len(args) <= 2 or arguments.keywords or arguments.starred:
        return UNKNOWN
    items = sequence_items(args[0])
    if items is None and isinstance(args[0], RangeV) and args[0].numbers is not None and \
            len(args[0].numbers) <= MAX_ITEMS:
        items = [IntV(Poly.const(n)) for n in args[0].numbers]
    if items is None:
        return UNKNOWN
    total = Poly.const(0)
    for item in [*items, *args[1:]]:
        p = as_poly(item) if isinstance(item, IntV) else None
        if p is None:
            return UNKNOWN  # (floats, tensors and unknowns: not a channel count)
        total = total + p
    return IntV(total)


@special("builtins.any", "builtins.all")
def _any_all(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``any([isinstance(v, tuple) for v in (k, s)])``: the truth of each item, joined."""
    args = arguments.positional
    items = sequence_items(args[0]) if len(args) == 1 and not arguments.keywords else None
    if items is None:
        return UNKNOWN
    conds = tuple(to_cond(it, item, site.node) for item in items)
    if q == "builtins.any":
        return BoolV(OrC(conds) if conds else FALSE)
    return BoolV(AndC(conds) if conds else TRUE)


@special("copy.copy", "copy.deepcopy")
def _copy(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """A copy of a config (torchvision's ``block_cnf = copy.copy(cnf)``), a list or a number."""
    args = arguments.positional
    if len(args) != 1 or arguments.keywords:
        return UNKNOWN
    value = args[0]
    if isinstance(value, NamespaceV):
        return NamespaceV(dict(value.items), copied=True, cls=value.cls)
    if isinstance(value, DictV):
        return DictV(dict(value.items))
    if isinstance(value, (TupleV, IntV, FloatV, StrV, BoolV)) or value is NONE:
        return value  # (values convlint keeps unchanged: a copy reads the same)
    return UNKNOWN


@special("builtins.float")
def _float(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) == 1 and not arguments.keywords and isinstance(args[0], FloatV):
        return args[0]
    p = as_poly(args[0]) if len(args) == 1 and isinstance(args[0], IntV) else None
    return FloatV(float(p.value)) if p is not None and p.value is not None and abs(p.value) < 2 ** 53 else UNKNOWN


@special("builtins.enumerate")
def _enumerate(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    items = sequence_items(args[0]) if len(args) == 1 else None
    if items is not None:  # (a list, or the modules of a ModuleList)
        return TupleV(tuple(TupleV((IntV(Poly.const(i)), v)) for i, v in enumerate(items)))
    return UNKNOWN


@special("builtins.zip")
def _zip(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    sequences = [sequence_items(a) for a in arguments.positional]
    if sequences and all(s is not None for s in sequences):
        return TupleV(tuple(TupleV(tuple(group)) for group in zip(*(s for s in sequences if s is not None))))
    return UNKNOWN


@special("math.floor", "math.ceil", "builtins.round")
def _rounding(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    """``math.floor(planes * (base_width / 64.0))``, ``round(c * 0.25)`` of a known float: an int."""
    args = arguments.positional
    if len(args) != 1 or arguments.keywords:
        return UNKNOWN
    if isinstance(args[0], FloatV):
        value = args[0].value
        if abs(value) >= 2 ** 62:
            return UNKNOWN
        rounded = math.floor(value) if q == "math.floor" else math.ceil(value) if q == "math.ceil" else round(value)
        return IntV(Poly.const(int(rounded)))
    return args[0] if as_poly(args[0]) is not None else UNKNOWN


@special("builtins.int")
def _int(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) == 1 and isinstance(args[0], FloatV):  # `int(planes * (base_width / 64.))`: truncated
        return IntV(Poly.const(int(args[0].value))) if abs(args[0].value) < 2 ** 62 else UNKNOWN
    return args[0] if len(args) == 1 and as_poly(args[0]) is not None else UNKNOWN


@special("builtins.max", "builtins.min")
def _max_min(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    if len(args) < 2 or any(number_of(a) is None for a in args):
        return UNKNOWN
    pick = max if q == "builtins.max" else min
    return pick(args, key=lambda a: number_of(a) or 0.0)  # (the argument itself: an int stays an int)


@special("builtins.tuple", "builtins.list")
def _tuple(it: Interpreter, q: str, arguments: Arguments, site: CallSite) -> Value:
    args = arguments.positional
    return args[0] if len(args) == 1 and isinstance(args[0], TupleV) else UNKNOWN
