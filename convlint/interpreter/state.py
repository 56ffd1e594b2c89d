"""Where the interpreter is: the state of one path, and the context of the code it runs."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Dict, List, Optional

from ..symbolic.poly import Facts
from ..torchlib.values import Value
from .objects import Env, SelfV


@dataclass
class State:
    """One path: its variables, what it knows (``facts`` of numbers, ``truths`` of opaque tests)."""

    env: Env
    facts: Facts
    truths: Dict[str, bool]
    self_v: Optional[SelfV] = None
    returned: Optional[Value] = None
    done: bool = False
    choices: Dict[int, bool] = field(default_factory=dict)  # `a if c else b` decided on this path
    shape_guarded: bool = False  # the path tested tensor shapes (`if out.shape == x.shape:`)
    call_results: Dict[int, Value] = field(default_factory=dict)  # helper calls already run on this path

    @classmethod
    def empty(cls, self_v: Optional[SelfV] = None) -> "State":
        return cls({}, Facts(), {}, self_v)

    def fork(self) -> "State":
        env, self_v = dict(self.env), self.self_v
        if self.self_v is not None:
            # the module under construction is mutable: each path gets its own, under every name for it
            self_v = self.self_v.copy()
            env = {k: (self_v if v is self.self_v else v) for k, v in env.items()}
        return State(env=env, facts=self.facts.copy(), truths=dict(self.truths), self_v=self_v,
                     returned=self.returned, done=self.done, choices=dict(self.choices),
                     shape_guarded=self.shape_guarded, call_results=dict(self.call_results))


@dataclass(frozen=True)
class Context:
    """Where the interpreter is: how deep in helpers, and which node diagnostics are anchored at."""

    depth: int = 0
    anchor: Optional[ast.AST] = None       # the call in the analysed code that built what follows
    report_adds: bool = True
    owner: str = ""                        # prefix for symbols of unbound arguments in nested calls
    built_at: Optional[ast.AST] = None     # in a module's forward: the call that built the module
    plain_call: bool = False               # a root function run as called with no arguments

    @cached_property
    def quiet(self) -> "Context":
        """The same place, for evaluating a test or an iterable: adds found there are not judged."""
        return replace(self, report_adds=False, plain_call=False)

    def inner(self, anchor: Optional[ast.AST] = None, report_adds: Optional[bool] = None,
              owner: Optional[str] = None, built_at: Optional[ast.AST] = None,
              keep_built_at: bool = True) -> "Context":
        """One level deeper (a helper's body, a module's ``__init__`` or ``forward``): what is not
        given stays as it is (``built_at`` too, unless ``keep_built_at`` is false)."""
        return Context(depth=self.depth + 1, anchor=self.anchor if anchor is None else anchor,
                       report_adds=self.report_adds if report_adds is None else report_adds,
                       owner=self.owner if owner is None else owner,
                       built_at=built_at if built_at is not None or not keep_built_at else self.built_at)


QUIET = Context(report_adds=False)


@dataclass
class Arguments:
    """A call's argument values; ``starred`` when a ``*args``/``**kw`` of unknown contents hides some."""

    positional: List[Value]
    keywords: Dict[str, Value]
    starred: bool = False  # for the bases of assignment targets (no add is judged there)
