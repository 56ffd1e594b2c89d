"""convlint as a flake8 plugin (``flake8 --select CVL``): the same diagnostics as
``convlint check --no-confirm --format text``, from the source lines flake8 already read.

flake8 handles ``# noqa``, ``--select``/``--ignore`` and ``--jobs`` itself. A file that mentions no
modelled layer costs one regular-expression search; a file checked before with the same text is read
from convlint's result cache (``CONVLINT_NO_CACHE=1`` turns it off); the plugin never confirms with torch.
"""
from __future__ import annotations

import argparse
import ast
import os
from functools import lru_cache
from typing import Iterator, Optional, Sequence, Tuple

from .. import __version__
from .. import config as config_mod
from ..rules import RULES
from .cache import ResultCache
from ..limits import MAX_BYTES
from ..source.prefilter import TORCH_CODE
from .engine import (
    INTERNAL_ERROR, CheckRequest, Selection, check_source, environment_of, imports_installed, library_fingerprint,
    may_hold_finding, too_large,
)


@lru_cache(maxsize=64)
def _settings(directory: str) -> Tuple[Optional[Tuple[int, ...]], Optional[str], Optional[str]]:
    """``input-size`` and ``python`` from the nearest ``[tool.convlint]``, and what is wrong with that
    config, if anything (reported on each file it governs, never a crash of the whole flake8 run)."""
    try:
        config = config_mod.load(config_mod.find_pyproject(directory), list(RULES))
    except config_mod.ConfigError as exc:
        return None, None, str(exc)
    return (tuple(config.input_size) if config.input_size else None), config.python, None


@lru_cache(maxsize=8)
def _cache(input_size: Optional[Tuple[int, ...]], python: Optional[str]) -> Optional[ResultCache]:
    """The result cache of the CLI, keyed here by the file's text (``CONVLINT_NO_CACHE=1``: none)."""
    if os.environ.get("CONVLINT_NO_CACHE"):
        return None
    return ResultCache.for_run([Selection(select=("CVL",)), input_size, "flake8", library_fingerprint(python)], [])


class Plugin:
    name = "convlint"
    version = __version__

    selected = True  # whether flake8's --select can show a CVL code at all (see parse_options)

    @classmethod
    def parse_options(cls, options: argparse.Namespace) -> None:
        """flake8's options: under a ``--select`` that names no CVL code (``--select E9``), whatever
        the plugin found would be dropped, so it does not analyse at all."""
        select = getattr(options, "select", None)
        chosen = [*(select or ()), *(getattr(options, "extend_select", None) or ())]
        cls.selected = select is None or any("CVL".startswith(c) or c.startswith("CVL") for c in chosen)

    def __init__(self, tree: ast.Module, lines: Sequence[str], filename: str = "stdin") -> None:
        self.tree = tree  # flake8's own parse of the file: convlint analyses it as it is
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        if not self.selected:
            return
        source = "".join(self.lines)
        if source.startswith("\ufeff"):
            source = source[1:]
        data = source.encode("utf-8", "surrogatepass")
        relevant = may_hold_finding(data)
        if not relevant and TORCH_CODE.search(data) is None:
            return  # flake8 reports syntax errors itself (E999)
        directory = os.path.dirname(os.path.abspath(self.filename)) if self.filename not in ("stdin", "-") \
            else os.getcwd()
        input_size, python, config_error = _settings(directory)
        if not relevant and not imports_installed(data, environment_of(python)):
            return  # (torch code that imports no installed library: no layer to judge)
        if config_error is not None:
            yield 1, 0, f"CVL001 cannot check: broken configuration: {config_error}", type(self)
            return
        if len(data) > MAX_BYTES:  # the same size limit as the command line's
            yield 1, 0, f"CVL001 {too_large(self.filename, len(data)).message}", type(self)
            return
        cache = _cache(input_size, python)
        diagnostics = cache.get_for_source(self.filename, source) if cache is not None else None
        if diagnostics is None:
            request = CheckRequest(Selection(select=("CVL",)), input_size, noqa=False, python=python)
            diagnostics = check_source(source, self.filename, request,
                                       tree=self.tree if "\r" not in source else None)
            if cache is not None and not any(d.message.startswith(INTERNAL_ERROR) for d in diagnostics):
                cache.put_for_source(self.filename, source, diagnostics)
        for d in diagnostics:
            if d.code == "CVL001":
                continue  # flake8 already says E999 for a file Python cannot parse
            yield d.line, d.column - 1, f"{d.code} {d.message}", type(self)
