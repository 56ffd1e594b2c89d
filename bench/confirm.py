#!/usr/bin/env python3
"""The cost of torch confirmation, measured in one run: `convlint check` with and without it.

Times whole processes (median of N runs) on the bad fixtures (every finding confirmed in one child
process) and on the good fixtures (no finding: confirmation must cost nothing), and prints the
overhead per run and per finding.

Usage: python bench/confirm.py [-n RUNS]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ["CVL101", "CVL102", "CVL201", "CVL202", "CVL301", "CVL302", "CVL303", "CVL304"]


def timed(args) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convlint", "check", *args], cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def median_time(args, runs: int) -> float:
    return statistics.median(timed(args) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    args = parser.parse_args()
    bad = [str(p) for code in RULES for p in sorted((ROOT / "fixtures" / code).glob("bad_*.py"))]
    good = [str(p) for code in RULES for p in sorted((ROOT / "fixtures" / code).glob("good_*.py"))]
    out = subprocess.run([sys.executable, "-m", "convlint", "check", "--format", "json", *bad], cwd=ROOT,
                         capture_output=True, text=True).stdout
    found = json.loads(out)
    confirmed = sum(d["confirmed"] is True for d in found)
    print(f"bad fixtures: {len(bad)} files, {len(found)} findings, {confirmed} confirmed by torch")
    rows = []
    for label, files in (("bad fixtures", bad), ("good fixtures", good)):
        off = median_time(["--no-confirm", *files], args.runs)
        on = median_time(files, args.runs)
        rows.append((label, off, on))
    print("\n| files | --no-confirm (s) | with confirmation (s) | ratio | overhead per run (s) |")
    print("|---|---|---|---|---|")
    for label, off, on in rows:
        print(f"| {label} | {off:.3f} | {on:.3f} | {on / off:.2f}x | {on - off:+.3f} |")
    label, off, on = rows[0]
    if found:
        print(f"\noverhead per finding on the bad fixtures: {1000 * (on - off) / len(found):.1f} ms "
              f"({len(found)} findings, one child process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
