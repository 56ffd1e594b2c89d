#!/usr/bin/env python3
"""Time and peak memory of convlint on hostile inputs: small files built to make an analysis grow
(lists doubled in loops, huge integers, deep Sequentials, long add chains, path explosions) and 1 MB
files at the size limit. Each input is checked by a fresh ``python -m convlint check --no-confirm
--no-cache`` process; its wall time and peak resident memory (the kernel's ``ru_maxrss``) are shown.

    python bench/hostile.py [--tree PATH] [--timeout S] [-k NAME]

``--tree`` runs the convlint of another checkout (e.g. a worktree of an older commit) for a
before/after comparison. The promise (README, "Limits"): every input of up to 2 KB under 2 s and
300 MB, a 1 MB file under 30 s and 2 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

HEADER = "import torch\nimport torch.nn as nn\n\n\n"
CONV = "nn.Conv2d(3, 3, 3, padding=1)"


def block(init: str, forward: str = "        return self.s(x) + x\n") -> str:
    """A module class whose ``__init__`` and ``forward`` bodies are given (8-space indented)."""
    return (HEADER + "class M(nn.Module):\n    def __init__(self):\n        super().__init__()\n" + init
            + "    def forward(self, x):\n" + forward)


def small_inputs() -> Dict[str, str]:
    """Inputs of up to 2 KB, each aimed at one way an analysis can grow."""
    inputs = {
        "list doubled by + (13x)": block(f"        l = [{CONV}]\n" + "        l = l + l\n" * 13
                                         + "        self.s = nn.Sequential(*l)\n"),
        "list doubled by + (40x)": block(f"        l = [{CONV}]\n" + "        l = l + l\n" * 40
                                         + "        self.s = nn.Sequential(*l)\n"),
        "list doubled in a loop": block(f"        l = [{CONV}]\n        for _ in range(30):\n"
                                        "            l = l + l\n            l.extend(l)\n"
                                        "        self.s = nn.Sequential(*l)\n"),
        "list repeated 10**9 times": block(f"        l = [{CONV}] * 10**9\n        self.s = nn.Sequential(*l)\n"),
        "starred doubling": block(f"        l = [{CONV}]\n" + "        l = [*l, *l]\n" * 30
                                  + "        self.s = nn.Sequential(*l)\n"),
        "appends in nested loops": block("        l = []\n        for i in range(32):\n"
                                         "            for j in range(32):\n                for k in range(32):\n"
                                         f"                    l.append({CONV})\n"
                                         "        self.s = nn.Sequential(*l)\n"),
        "integer squared 32 times": block("        a = 2\n        for _ in range(32):\n            a = a * a\n"
                                          "        self.s = nn.Conv2d(3, a, 3)\n"),
        "power tower": block("        a = 10**63\n        a = a**63\n        a = a**63\n        a = a**63\n"
                             "        self.s = nn.Conv2d(3, a, 3)\n"),
        "symbolic squaring": HEADER + "class M(nn.Module):\n    def __init__(self, c, d):\n"
                                      "        super().__init__()\n        a = c + d + 1\n"
                                      "        for _ in range(32):\n            a = a * a + c\n"
                                      "        self.s = nn.Conv2d(c, a, 3)\n"
                                      "    def forward(self, x):\n        return self.s(x) + x\n",
        "range(10**18) loop": block("        l = []\n        for i in range(10**18):\n"
                                    f"            l.append({CONV})\n        self.s = nn.Sequential(*l)\n"),
        "4,096-conv Sequential with a bug": block(f"        l = [{CONV}] * 4096\n"
                                                  "        self.s = nn.Sequential(*l, nn.Conv2d(3, 3, 3))\n"),
        "1,024 convs and a bug, with input size": "# convlint: input-size=3x4096x4096\n" + block(
            f"        l = [nn.Conv2d(3, 3, 3, padding=1)] * 1024\n        self.s = nn.Sequential(*l)\n"
            "        self.fc = nn.Linear(7, 10)\n", "        return self.fc(self.s(x).flatten(1))\n"),
        "long add chain": block(f"        self.c = {CONV}\n        self.s = nn.Identity()\n",
                                "        for _ in range(32):\n" + "            x = x + self.c(x)\n" * 40
                                + "        return self.s(x) + x\n"),
        "nested add loops": block(f"        self.c = {CONV}\n        self.s = nn.Identity()\n",
                                  "        for _ in range(32):\n            for _ in range(32):\n"
                                  "                for _ in range(32):\n                    x = x * self.c(x) + x\n"
                                  "        return self.s(x) + x\n"),
        "1,024-layer Sequential in nested loops": block(f"        self.s = nn.Sequential(*[{CONV}] * 1024)\n",
                                                        "        for _ in range(32):\n            for _ in range(32):\n"
                                                        "                for _ in range(32):\n"
                                                        "                    x = self.s(x)\n        return x + x\n"),
        "2**20 paths": HEADER + "class M(nn.Module):\n    def __init__(self, " + ", ".join(f"f{i}" for i in range(20))
                       + "):\n        super().__init__()\n        c = 3\n"
                       + "".join(f"        if f{i}:\n            c = c * 2 + {i}\n" for i in range(20))
                       + "        self.s = nn.Conv2d(3, c, 3)\n    def forward(self, x):\n        return self.s(x) + x\n",
        "recursive helper": HEADER + "def make(n):\n    return nn.Sequential(make(n - 1), make(n - 1))\n\n\n"
                            + "class M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                            + "        self.s = make(64)\n    def forward(self, x):\n        return self.s(x) + x\n",
        "nested comprehensions": block("        l = [[[" + CONV + " for _ in range(32)] for _ in range(32)] "
                                       "for _ in range(32)]\n        self.s = nn.Sequential(*l[0][0])\n"),
        "deep parentheses": block("        self.s = nn.Conv2d(3, 3, " + "(" * 90 + "3" + ")" * 90 + ")\n"),
        "many equalities": HEADER + "class M(nn.Module):\n    def __init__(self, " + ", ".join(f"a{i}" for i in range(24))
                           + "):\n        super().__init__()\n"
                           + "".join(f"        if a{i} == a{i + 1} * a{i + 1} + a{i}:\n            pass\n"
                                     for i in range(23))
                           + "        self.s = nn.Conv2d(a0, a23, 3)\n    def forward(self, x):\n"
                           "        return self.s(x) + x\n",
    }
    for name, text in inputs.items():
        assert len(text.encode()) <= 2048, (name, len(text.encode()))
    return inputs


def large_inputs() -> Dict[str, str]:
    """Files just under the 1 MB limit."""
    limit = 1024 * 1024 - 4096
    seq_line = f"            {CONV},\n"
    convs = (limit - 400) // len(seq_line)
    one_seq = block("        self.s = nn.Sequential(\n" + seq_line * convs + "        )\n")
    resblock = (
        "class Block{i}(nn.Module):\n    def __init__(self, cin, cout, stride=1):\n        super().__init__()\n"
        "        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)\n        self.b1 = nn.BatchNorm2d(cout)\n"
        "        self.c2 = nn.Conv2d(cout, cout, 3, 1, 0)\n        self.b2 = nn.BatchNorm2d(cout)\n"
        "    def forward(self, x):\n        return self.b2(self.c2(self.b1(self.c1(x)))) + x\n\n\n")
    blocks, i = [HEADER], 0
    while sum(map(len, blocks)) < limit - len(resblock) - 16:
        blocks.append(resblock.format(i=i))
        i += 1
    fwd_line = "        x = self.c(x) + x\n"
    long_forward = block(f"        self.c = {CONV}\n        self.s = nn.Identity()\n",
                         fwd_line * ((limit - 400) // len(fwd_line)) + "        return self.s(x) + x\n")
    return {f"1 MB: one Sequential of {convs:,} convs": one_seq,
            f"1 MB: {i:,} residual block classes": "".join(blocks),
            "1 MB: one forward of 37,000 adds": long_forward}


MEMORY_CAP = 8 << 30  # bytes of address space a check may take here (an unbounded one would take the machine)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def measure(text: str, tree: str, timeout: float) -> Tuple[float, str]:
    """(seconds, outcome) of one check of ``text`` by a fresh convlint process (at most ``MEMORY_CAP``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        env = {**os.environ, "PYTHONPATH": tree, "CONVLINT_NO_CACHE": "1"}
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "convlint", "check", "--no-confirm", "--debug", path],
                                  capture_output=True, text=True, env=env, cwd=folder, timeout=timeout,
                                  preexec_fn=_capped)
        except subprocess.TimeoutExpired:
            return time.perf_counter() - start, f"killed after {timeout:g} s"
        seconds = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    crashed = "Traceback" in proc.stderr or "MemoryError" in proc.stderr
    note = next((line for line in lines if "budget" in line), lines[-1] if crashed and lines else "")
    return seconds, f"exit {proc.returncode}" + (f"; {note[:100]}" if note else "")


def measure_in_own_process(text: str, tree: str, timeout: float) -> Tuple[float, float, str]:
    """(seconds, peak MB, outcome): ``measure`` run by a process of its own, whose children's peak
    resident memory (``RUSAGE_CHILDREN``) is then that one check's."""
    code = ("import sys, json, resource; sys.path.insert(0, sys.argv[1]); import hostile; "
            "s, o = hostile.measure(sys.stdin.read(), sys.argv[2], float(sys.argv[3])); "
            "print(json.dumps([s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, o]))")
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", code, here, tree, str(timeout)], input=text,
                          capture_output=True, text=True)
    seconds, peak, outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    return seconds, peak, outcome


def run_all(tree: str, timeout: float, only: str = "") -> List[Tuple[str, int, float, float, str]]:
    rows = []
    for name, text in {**small_inputs(), **large_inputs()}.items():
        if only not in name:
            continue
        seconds, peak, outcome = measure_in_own_process(text, tree, timeout)
        rows.append((name, len(text.encode()), seconds, peak, outcome))
        print(f"| {name} | {len(text.encode()):,} B | {seconds:.2f} s | {peak:.0f} MB | {outcome} |", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the checkout whose convlint is run (default: this one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a check is killed")
    parser.add_argument("-k", dest="only", default="", help="only the inputs whose name holds this text")
    args = parser.parse_args()
    print(f"convlint from {args.tree}\n\n| input | size | time | peak RSS | outcome |\n|---|---|---|---|---|")
    rows = run_all(args.tree, args.timeout, args.only)
    small = [r for r in rows if r[1] <= 2048]
    large = [r for r in rows if r[1] > 2048]
    if not small or not large:
        return 0
    worst_time, worst_memory = max(small, key=lambda r: r[2]), max(small, key=lambda r: r[3])
    print(f"\ninputs of up to 2 KB: slowest {worst_time[2]:.2f} s ({worst_time[0]}), "
          f"largest {worst_memory[3]:.0f} MB ({worst_memory[0]})")
    print(f"1 MB inputs: slowest {max(r[2] for r in large):.2f} s, largest {max(r[3] for r in large):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
