#!/usr/bin/env bash
# Speed of convlint against its anchors, measured in one run on the real corpus (see README).
#
#   bash bench/run.sh [RUNS]
#
# Gathers the corpus with ../shared/tools/real-corpus.sh, makes two throwaway virtual environments
# under $BENCH_DIR (flake8 alone; flake8 + this convlint + TorchFix), then times whole processes,
# RUNS times each (default 3), and prints medians and ratios (bench/anchors.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/convlint-bench}
CORPUS=${CONVLINT_CORPUS:-/tmp/convlint-corpus}
mkdir -p "$BENCH_DIR"

[[ -f $CORPUS/CORPUS_MANIFEST.txt ]] || bash ../shared/tools/real-corpus.sh "$CORPUS" >&2

if [[ ! -x $BENCH_DIR/plain/bin/flake8 ]]; then
  python3 -m venv "$BENCH_DIR/plain"
  "$BENCH_DIR/plain/bin/pip" install -q flake8 >&2
fi
if [[ ! -x $BENCH_DIR/full/bin/convlint ]]; then
  python3 -m venv "$BENCH_DIR/full"
  "$BENCH_DIR/full/bin/pip" install -q flake8 libcst . >&2  # libcst: the parse-only anchor
fi
# TorchFix, the closest anchor (a LibCST flake8 plugin for PyTorch), in a venv of its own: flake8 runs
# every installed plugin, so beside convlint it would be counted in "flake8 with convlint"
if [[ ! -x $BENCH_DIR/torchfix/bin/torchfix ]]; then
  python3 -m venv "$BENCH_DIR/torchfix"
  "$BENCH_DIR/torchfix/bin/pip" install -q torchfix >&2 || echo "torchfix not installable: skipped" >&2
fi
"$BENCH_DIR/full/bin/pip" uninstall -q -y torchfix >/dev/null 2>&1 || true
"$BENCH_DIR/full/bin/pip" install -q --no-deps --force-reinstall . >&2  # this checkout

exec "$BENCH_DIR/full/bin/python" bench/anchors.py --corpus "$CORPUS" --runs "$RUNS" --bench-dir "$BENCH_DIR"
