#!/usr/bin/env bash
# Training-step throughput of every backend of a `--features tch` build, side by side on
# one machine: `netaug bench train --both` (baseline and NetAug steps, same net and batch).
# Usage (on the GPU machine, with PyTorch installed): bench/device-train.sh NETAUG_BINARY
set -uo pipefail
BIN=${1:-target-tch/release/netaug}
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib 2>/dev/null | paste -sd:)
nvidia-smi -L 2>/dev/null || true
nproc
run() { echo "## $*"; timeout 240 "$BIN" bench train "$@" --json || echo "exit $?"; }
run --model tinymbv2 --resolution 32 --batch 256 --device tch-cuda --both --warmup 2 --steps 10
run --model tinymbv2 --resolution 144 --batch 256 --device tch-cuda --both --warmup 1 --steps 3
run --model tinymbv2 --resolution 32 --batch 64 --device tch-cpu --both --warmup 2 --steps 10
run --model tinymbv2 --resolution 32 --batch 64 --device cpu --both --warmup 2 --steps 10
