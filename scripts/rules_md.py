#!/usr/bin/env python3
"""Print the README's rule list from the rules' own documentation (summary, before, after)."""
from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convlint.rules import ALL_RULES  # noqa: E402


def section(doc: str, title: str) -> str:
    m = re.search(rf"## {title}\n(.*?)(?=\n## |\Z)", doc, re.S)
    return m.group(1).strip() if m else ""


def main() -> int:
    for rule in ALL_RULES:
        doc = rule.documentation()
        print(f"### {rule.code} {rule.name}\n\n{rule.summary}.\n")
        before, after = section(doc, "Example"), section(doc, "Use instead")
        if rule.code != "CVL001":
            print(f"Before:\n\n{before}\n\nAfter:\n\n{after}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
