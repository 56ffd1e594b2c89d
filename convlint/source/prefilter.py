"""Whether a file is worth analysing, from its bytes alone (a regular-expression search, no parse).

Every finding involves a layer the catalogue marks (by name: an alias import still names it), so a
file naming none of them is only syntax-checked, unless it imports a library convlint models or, checked
with other files, is torch code importing from them (their helpers may build the layers).
"""
from __future__ import annotations

import re
from typing import Iterable, Pattern


class Prefilter:
    def __init__(self, layer_names: Iterable[str], library_imports: Pattern[bytes]):
        alternatives = "|".join(sorted(map(re.escape, layer_names), key=lambda n: (-len(n), n)))
        self.layer_word = re.compile(rf"\b(?:{alternatives})\b".encode())
        self.library_imports = library_imports

    def names_a_layer(self, data: bytes) -> bool:
        return self.layer_word.search(data) is not None

    def imports_library(self, data: bytes) -> bool:
        """An import of a library convlint models (its layers may come from it)."""
        return self.library_imports.search(data) is not None


TORCH_CODE = re.compile(rb"\btorch\b|\bnn\.")  # model code that may build layers through another file's helpers
