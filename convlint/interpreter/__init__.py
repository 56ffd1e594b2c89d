"""Symbolic execution of a file's model code: ``__init__`` builds layers, ``forward`` moves tensors.

Each class (and each module-level function) is run once with its arguments as symbols. An ``if`` whose
condition the path's facts do not decide forks the path, and each fork learns the condition (or its
negation) as facts: on the ``else`` of ``if stride != 1 or in_planes != planes:`` the analysis knows
``stride == 1`` and ``in_planes == planes``. Loops, comprehensions and anything else not modelled
make the values they touch unknown. The run emits events (``convlint.torchlib.events``) for the rules.

Nothing here imports or executes the analysed code: it reads the syntax tree only.

The modules, from the bottom: ``objects`` (Python objects as values), ``state`` (a path, a context),
``conditions``, ``files`` (a file's names), ``loader`` (other files and library models),
``machine`` (the core and its dispatch tables), ``classes``, ``merging``, ``functions``, ``modules``
(nn.Module semantics), ``operators``, ``assignment``, ``expressions``, ``calls``, ``special`` (callables
known by name), ``forking``, ``statements``, ``roots`` (what an analysis runs). Its budgets are
``convlint.limits``.
"""
from __future__ import annotations

from . import calls, expressions, special, statements  # noqa: F401  (they fill the dispatch tables)
from .files import FileIndex
from .loader import load_file
from .machine import Interpreter
from .roots import analyse_class, analyse_function, analyse_statements, in_run_order

__all__ = ["FileIndex", "Interpreter", "analyse_class", "analyse_function", "analyse_statements", "in_run_order",
           "load_file"]
