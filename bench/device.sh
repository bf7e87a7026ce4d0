#!/usr/bin/env bash
# Training-step throughput, ours against plain PyTorch, side by side on one machine.
#
# For each case: `netaug bench train --both` (baseline and NetAug steps of our binary) and
# bench/torch_train.py (the same net, built from the same NetSpec JSON, same batch, fp32,
# cudnn.benchmark on) one after the other, then one line with both and their ratio.
# Usage, on the GPU machine (python3 with torch 2.11):
#   bench/device.sh [NETAUG_BINARY]        (default target-tch/release/netaug)
# CASES="model-or-spec.json:resolution:batch:our-device:torch-device ..." overrides the list.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-target-tch/release/netaug}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
# libtorch and its CUDA libraries from the PyTorch wheel this machine already has.
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib "$SITE"/nvidia/*/*/lib 2>/dev/null | paste -sd:)
CASES=${CASES:-"tinymbv2:144:256:tch-cuda:cuda $HERE/probe.json:32:256:tch-cuda:cuda tinymbv2:32:256:tch-cuda:cuda tinymbv2:32:64:tch-cpu:cpu tinymbv2:32:64:cpu:cpu"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
nvidia-smi -L 2>/dev/null || true
echo "cpus: $(nproc)"
printf '%-10s %4s %5s %-9s %12s %12s %8s %12s %8s\n' model px batch device "ours img/s" "NetAug img/s" "NA cost" "torch img/s" ratio
for case in $CASES; do
    IFS=: read -r net res batch ours theirs <<<"$case"
    params=
    if [[ $net == *.json ]]; then
        spec=$net
        netarg=(--spec "$net")
    else
        spec=$WORK/$net.json
        "$BIN" profile --model "$net" --spec >"$spec" || { echo "$net: profile failed"; continue; }
        netarg=(--model "$net")
        params=$("$BIN" profile --model "$net" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["params"])')
    fi
    a=$(timeout 400 "$BIN" bench train "${netarg[@]}" --resolution "$res" --batch "$batch" \
        --device "$ours" --both --warmup "$WARMUP" --steps "$STEPS" --json) || a='{}'
    b=$(timeout 400 python3 "$HERE/torch_train.py" "$spec" --resolution "$res" --batch "$batch" \
        --device "$theirs" --warmup "$WARMUP" --steps "$STEPS") || b='{}'
    echo "# ours:  $a"
    echo "# torch: $b"
    # The same net on both sides: PyTorch's parameter count against our profile's.
    theirs_params=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1] or "{}").get("params", ""))' "$b")
    [[ -z $params || $params == "$theirs_params" ]] || echo "# WARNING: params differ: ours $params, PyTorch $theirs_params"
    python3 - "$a" "$b" "$net" "$res" "$batch" "$ours" <<'PY'
import json, os, sys
a, b = json.loads(sys.argv[1] or "{}"), json.loads(sys.argv[2] or "{}")
name = os.path.basename(sys.argv[3]).removesuffix(".json")
base = a.get("baseline", {}).get("images_per_second")
aug = a.get("netaug", {}).get("images_per_second")
torch = b.get("images_per_second")
f = lambda v, d=1: f"{v:.{d}f}" if v else "-"
ratio = base / torch if base and torch else None
print(f"{name:<10} {sys.argv[4]:>4} {sys.argv[5]:>5} {sys.argv[6]:<9} {f(base):>12} {f(aug):>12} "
      f"{f(a.get('netaug_cost'), 2):>8} {f(torch):>12} {f(ratio, 3):>8}")
PY
done
