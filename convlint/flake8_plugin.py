"""convlint as a flake8 plugin (``flake8 --select CVL``): the same diagnostics as
``convlint check --no-confirm --format text``, from the source lines flake8 already read.

flake8 handles ``# noqa``, ``--select``/``--ignore`` and ``--jobs`` itself. A file that mentions no
modelled layer costs one regular-expression search; the plugin never confirms with torch.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Iterator, Optional, Sequence, Tuple

from . import __version__
from . import config as config_mod
from .engine import RELEVANT_TEXT, Selection, check_source
from .rules import RULES
from .stubs import imports_stub


@lru_cache(maxsize=64)
def _input_size(directory: str) -> Optional[Tuple[int, ...]]:
    """``input-size`` from the nearest ``[tool.convlint]`` (a broken config is convlint's to report)."""
    try:
        config = config_mod.load(config_mod.find_pyproject(directory), list(RULES))
    except config_mod.ConfigError:
        return None
    return tuple(config.input_size) if config.input_size else None


class Plugin:
    name = "convlint"
    version = __version__

    def __init__(self, tree, lines: Sequence[str], filename: str = "stdin") -> None:
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        source = "".join(self.lines)
        if source.startswith("\ufeff"):
            source = source[1:]
        relevant = RELEVANT_TEXT.search(source) is not None or imports_stub(source.encode("utf-8", "surrogatepass"))
        if not relevant:
            return  # flake8 reports syntax errors itself (E999)
        directory = os.path.dirname(os.path.abspath(self.filename)) if self.filename not in ("stdin", "-") \
            else os.getcwd()
        diagnostics = check_source(source, self.filename, Selection(select=("CVL",)), _input_size(directory),
                                   relevant=True, noqa=False, python_checked=True)
        for d in diagnostics:
            if d.code == "CVL001":
                continue  # flake8 already says E999 for a file Python cannot parse
            yield d.line, d.column - 1, f"{d.code} {d.message}", type(self)
