#!/usr/bin/env bash
# Per-op profile of `netaug bench train` on the `cpu` (flex) device: builds a frame-pointer
# release binary (target-fp/, so call stacks survive without DWARF unwinding), records it
# with perf and prints bench/perf_ops.py's table.
# Usage: bench/profile.sh [model] [resolution] [batch] [--netaug]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=${1:-tinymbv2} RES=${2:-32} BATCH=${3:-64} NETAUG=${4:-}
cd "$HERE/.."
RUSTFLAGS="-C force-frame-pointers=yes" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release -p netaug-cli --target-dir target-fp
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
perf record -F 499 -g --call-graph fp -o "$WORK/perf.data" -- target-fp/release/netaug bench train \
    --model "$MODEL" --resolution "$RES" --batch "$BATCH" --device cpu --warmup 2 --steps 10 $NETAUG
perf script -i "$WORK/perf.data" 2>/dev/null >"$WORK/perf.txt"
python3 "$HERE/perf_ops.py" "$WORK/perf.txt" 25
