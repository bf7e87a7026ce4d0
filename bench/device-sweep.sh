#!/usr/bin/env bash
# experiments/fashion-mnist-gpu.yaml on the GPU machine, then its report.
# Usage there: bench/device-sweep.sh NETAUG_BINARY FASHION_MNIST_DIR OUT [JOBS]
# (FASHION_MNIST_DIR holds the four IDX .gz files, e.g. carried from
# /usr/share/datasets/fashion-mnist; the machine has no Debian package.)
set -euo pipefail
BIN=$1 DATA=$2 OUT=$3 JOBS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib "$SITE"/nvidia/*/*/lib 2>/dev/null | paste -sd:)
nvidia-smi -L 2>/dev/null || true
time "$BIN" sweep "$HERE/../experiments/fashion-mnist-gpu.yaml" --out "$OUT" --jobs "$JOBS" --set data.root="$DATA"
"$BIN" report "$OUT" --paper "$HERE/../experiments/paper/results.csv"
cat "$OUT"/tables/*.md 2>/dev/null || ls -R "$OUT/tables"
