#!/usr/bin/env python3
"""Time convlint and its anchors on the corpus, as whole processes, and print medians and ratios.

Run through bench/run.sh, which prepares the environments this expects.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PARSE = """
import sys, os, {mod}
n = 0
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        if f.endswith('.py'):
            src = open(os.path.join(d, f), encoding='utf-8', errors='replace').read()
            try:
                {call}
            except Exception:
                pass
            n += 1
"""


def timed(cmd, runs, stdin_path=None, env=None):
    """(median seconds, peak RSS MB of the command's own process) over ``runs`` runs."""
    times, peak = [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as fh:
            proc = subprocess.Popen(cmd, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})})
            _, _, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest so far
            proc.returncode = 0
        times.append(time.perf_counter() - start)
        peak = max(peak, usage.ru_maxrss / 1024)
    return statistics.median(times), peak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bench-dir", required=True)
    args = parser.parse_args()
    py = sys.executable
    plain = os.path.join(args.bench_dir, "plain", "bin")
    full = os.path.dirname(py)
    corpus, runs = args.corpus, args.runs
    resnet = os.path.join(corpus, "torchvision", "models", "resnet.py")
    rows = {}

    cache = {"CONVLINT_CACHE_DIR": os.path.join(args.bench_dir, "cache")}

    def row(name, cmd, stdin=None, n=runs, env=None):
        secs, mem = timed(cmd, n, stdin, env)
        rows[name] = secs
        print(f"| {name} | {secs:.2f} | {mem:.0f} |", flush=True)

    print(f"corpus: {corpus}, {runs} runs each, medians (whole processes, this machine: {os.cpu_count()} cores)\n")
    print("| command | seconds | peak RSS of a child (MB) |\n|---|---|---|")
    row("ast.parse, every file", [py, "-c", PARSE.format(mod="ast", call="ast.parse(src)"), corpus])
    row("libcst.parse_module, every file",
        [py, "-c", PARSE.format(mod="libcst", call="libcst.parse_module(src)"), corpus])
    convlint = [os.path.join(full, "convlint"), "check", "--no-confirm"]
    row("convlint check --no-confirm -j 1", convlint + ["--no-cache", "-j", "1", corpus])
    row("convlint check --no-confirm (all cores)", convlint + ["--no-cache", corpus])
    subprocess.run(["rm", "-rf", cache["CONVLINT_CACHE_DIR"]])
    subprocess.run(convlint + [corpus], stdout=subprocess.DEVNULL, env={**os.environ, **cache})  # fills it
    row("convlint check, second run over the unchanged corpus (warm cache)", convlint + [corpus], env=cache)
    torchfix = os.path.join(args.bench_dir, "torchfix", "bin", "torchfix")
    if os.path.exists(torchfix):
        row("torchfix (TorchFix CLI)", [torchfix, corpus], n=1)
    # F and CVL selected: under a --select that names no CVL code the plugin does no work at all
    row("flake8 --select=F,CVL, without convlint", [os.path.join(plain, "flake8"), "--select=F,CVL", corpus])
    row("flake8 --select=F,CVL, with convlint installed (cache off)", [os.path.join(full, "flake8"),
        "--select=F,CVL", corpus], env={"CONVLINT_NO_CACHE": "1"})
    row("flake8 --select=F,CVL, with convlint installed", [os.path.join(full, "flake8"), "--select=F,CVL", corpus],
        env=cache)
    row("editor: convlint check - < resnet.py",
        [os.path.join(full, "convlint"), "check", "--no-confirm", "-", "--stdin-filename", "resnet.py"], resnet)
    row("editor: flake8 - < resnet.py", [os.path.join(plain, "flake8"), "-"], resnet)

    def ratio(a, b):
        return f"{rows[a] / rows[b]:.2f}x" if a in rows and b in rows and rows[b] else "n/a"

    print("\n| ratio | value | target |\n|---|---|---|")
    print(f"| convlint -j1 / LibCST parse-only | {ratio('convlint check --no-confirm -j 1', 'libcst.parse_module, every file')} | <= 1.0x |")
    print(f"| convlint -j1 / TorchFix | {ratio('convlint check --no-confirm -j 1', 'torchfix (TorchFix CLI)')} | <= 0.2x |")
    plain_flake8 = "flake8 --select=F,CVL, without convlint"
    cold = "flake8 --select=F,CVL, with convlint installed (cache off)"
    print(f"| flake8 with / without convlint, cache off | {ratio(cold, plain_flake8)} | <= 1.5x |")
    print(f"| flake8 with / without convlint, cache on | "
          f"{ratio('flake8 --select=F,CVL, with convlint installed', plain_flake8)} | <= 1.5x |")
    print(f"| warm second run / LibCST parse-only | {ratio('convlint check, second run over the unchanged corpus (warm cache)', 'libcst.parse_module, every file')} | - |")
    print(f"| editor check / flake8 - | {ratio('editor: convlint check - < resnet.py', 'editor: flake8 - < resnet.py')} | <= 2x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
