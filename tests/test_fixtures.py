"""Every fixture's diagnostics, compared exactly with the `# expect:` marks written next to the code.

A missing or an extra diagnostic fails: code, line, column and severity must all match.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from convlint.app.engine import CheckRequest, Selection, check_path
from convlint.rules import RULES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# the fixtures that build layers with timm's or torchvision's helpers are checked as where those are
# installed (convlint reads the versions only: tests/environments/README.md)
RELEASED = str(Path(__file__).resolve().parent / "environments" / "released")
MARK = re.compile(r"#\s*expect:\s*(?P<marks>.*)$")
ITEM = re.compile(r"(?P<code>CVL\d{3})@(?P<col>\d+)(?::(?P<severity>error|warning|info))?")


def expected_marks(path: Path):
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        m = MARK.search(line)
        if not m:
            continue
        for item in ITEM.finditer(m.group("marks")):
            code = item.group("code")
            severity = item.group("severity") or (RULES[code].severity if code in RULES else "error")
            out.append((lineno, int(item.group("col")), code, severity))
    return sorted(out)


FILES = sorted(p for p in FIXTURES.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FIXTURES)) for p in FILES])
def test_fixture(path: Path) -> None:
    every_rule = Selection(select=tuple(RULES))  # info rules too: they are chosen by name
    got = sorted((d.line, d.column, d.code, d.severity)
                 for d in check_path(str(path), CheckRequest(every_rule, python=RELEASED)))
    expected = expected_marks(path)
    assert got == expected, "\n".join(
        [f"{path.name}: got != expected"]
        + [f"  extra   {c}@{col}:{s} line {ln}" for ln, col, c, s in got if (ln, col, c, s) not in expected]
        + [f"  missing {c}@{col}:{s} line {ln}" for ln, col, c, s in expected if (ln, col, c, s) not in got])


def test_every_rule_has_bad_and_good_fixtures() -> None:
    for code in RULES:
        folder = FIXTURES / code
        bad = list(folder.glob("bad_*.py"))
        assert bad, f"{code} has no bad fixture"
        if code != "CVL001":
            assert list(folder.glob("good_*.py")), f"{code} has no good fixture"
        for path in bad:
            assert any(c == code for _, _, c, _ in expected_marks(path)), f"{path} expects no {code}"
