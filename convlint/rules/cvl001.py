from __future__ import annotations

from typing import Iterable

from ..analysis import Analysis
from ..diagnostics import Finding
from .base import Rule


class Unparsable(Rule):
    """
    ## What it does
    Reports a file convlint cannot read or parse: a syntax error (at the parser's position, with its
    message), bytes that are not valid in the file's encoding, or a file that cannot be opened.

    ## Why is this bad
    A file that cannot be parsed cannot be checked: every other rule is silent on it, and Python
    itself will refuse to import it.

    ## Example
    ```python
    class Block(nn.Module):
        def forward(self, x)
            return x
    ```

    ## Use instead
    ```python
    class Block(nn.Module):
        def forward(self, x):
            return x
    ```
    """

    code = "CVL001"
    name = "unparsable-file"
    summary = "the file cannot be read or parsed"

    def check(self, analysis: Analysis) -> Iterable[Finding]:
        return ()  # reported by the engine, which is the one that reads and parses files
