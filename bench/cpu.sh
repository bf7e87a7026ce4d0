#!/usr/bin/env bash
# Training-step throughput on this machine's CPU: our `cpu` (flex) and `tch-cpu` devices,
# each with the fast paths and with burn's reference ops (NETAUG_KERNELS=burn), against
# PyTorch CPU on the same net, interleaved for ROUNDS rounds so that load drifts hit all.
# Usage: bench/cpu.sh NETAUG_TCH_BINARY TORCH_PYTHON [model-or-spec.json] [resolution] [batch]
# (NETAUG_TCH_BINARY: `make build-tch`'s target-tch/release/netaug; TORCH_PYTHON: a python
# with torch, e.g. .venv-torch/bin/python.)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1 PY=$2 NET=${3:-tinymbv2} RES=${4:-32} BATCH=${5:-64}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-10} WARMUP=${WARMUP:-2}
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib 2>/dev/null | paste -sd:)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ $NET == *.json ]]; then spec=$NET; netarg=(--spec "$NET"); else
    spec=$WORK/net.json; "$BIN" profile --model "$NET" --spec >"$spec"; netarg=(--model "$NET"); fi
for round in $(seq "$ROUNDS"); do
    for dev in cpu tch-cpu; do
        for k in fast burn; do
            echo "$round $dev $k $(NETAUG_KERNELS=$k "$BIN" bench train "${netarg[@]}" --resolution "$RES" \
                --batch "$BATCH" --device "$dev" --both --warmup "$WARMUP" --steps "$STEPS" --json)"
        done
    done
    echo "$round torch - $("$PY" "$HERE/torch_train.py" "$spec" --resolution "$RES" --batch "$BATCH" \
        --warmup "$WARMUP" --steps "$STEPS")"
done | tee "$WORK/raw" | cut -c1-160 >&2
python3 - "$WORK/raw" <<'PY'
import json, statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    r, dev, k, js = line.split(" ", 3)
    d = json.loads(js)
    rows.setdefault((dev, k), []).append(d)
torch = [d["images_per_second"] for d in rows[("torch", "-")]]
print(f"median of {len(torch)} rounds; PyTorch {st.median(torch):.1f} img/s")
print("| device | kernels | baseline img/s | NetAug img/s | NetAug cost | baseline / PyTorch |")
print("|---|---|---|---|---|---|")
for (dev, k), ds in rows.items():
    if dev == "torch":
        continue
    b = [d["baseline"]["images_per_second"] for d in ds]
    a = [d["netaug"]["images_per_second"] for d in ds]
    ratio = [x / t for x, t in zip(b, torch)]
    print(f"| `{dev}` | {k} | {st.median(b):.1f} | {st.median(a):.1f} | "
          f"{st.median(x / y for x, y in zip(b, a)):.2f}x | {st.median(ratio):.2f} |")
PY
