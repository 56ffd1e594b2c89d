"""The analysis budgets: a linter must not stall on one file. When one runs out, what was proven stands
and the rest stays unknown (fewer paths, fewer findings: never a false one)."""
from __future__ import annotations

MAX_PATHS = 48      # live paths per function; more are dropped
MAX_DEPTH = 8       # nested helpers / module classes
MAX_SPLIT = 4       # distinct results of a helper call that fork its caller
MAX_UNROLL = 32     # items of a loop that is run once per item
STEP_BUDGET = 3500  # statements run per class or function analysed


class OutOfBudget(Exception):
    """The statements of one analysed class or function ran past ``STEP_BUDGET``."""
