#!/usr/bin/env bash
# Training-step throughput on this machine's CPU: our `cpu` (flex) and `tch-cpu` devices,
# each with the fast paths and with burn's reference ops (NETAUG_KERNELS=burn), against
# PyTorch CPU on the same net (baseline steps, and for zoo nets NetAug steps on the same
# sampled sub-networks, `netaug profile --arches`), interleaved for ROUNDS rounds so that
# load drifts hit all.
# Usage: bench/cpu.sh NETAUG_BINARY TORCH_PYTHON [model-or-spec.json] [resolution] [batch]
# (NETAUG_BINARY: with DEVICES="cpu tch-cpu", the default, `make build-tch`'s
# target-tch/release/netaug; DEVICES=cpu takes the plain release build; KERNELS="fast burn"
# by default; TORCH_PYTHON: a python with torch, e.g. .venv-torch/bin/python.)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1 PY=$2 NET=${3:-tinymbv2} RES=${4:-32} BATCH=${5:-64}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-10} WARMUP=${WARMUP:-2}
DEVICES=${DEVICES:-cpu tch-cpu} KERNELS=${KERNELS:-fast burn} THREADS=${THREADS:-2}
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib 2>/dev/null | paste -sd:)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ $NET == *.json ]]; then spec=$NET; netarg=(--spec "$NET"); else
    spec=$WORK/net.json; "$BIN" profile --model "$NET" --spec >"$spec"; netarg=(--model "$NET")
    "$BIN" profile --model "$NET" --arches $((WARMUP + STEPS)) >"$WORK/arches.json"; fi
export RAYON_NUM_THREADS=$THREADS
for round in $(seq "$ROUNDS"); do
    for dev in $DEVICES; do
        for k in $KERNELS; do
            echo "$round $dev $k $(NETAUG_KERNELS=$k "$BIN" bench train "${netarg[@]}" --resolution "$RES" \
                --batch "$BATCH" --device "$dev" --both --warmup "$WARMUP" --steps "$STEPS" --json)"
        done
    done
    echo "$round torch - $("$PY" "$HERE/torch_train.py" "$spec" --resolution "$RES" --batch "$BATCH" \
        --warmup "$WARMUP" --steps "$STEPS" --threads "$THREADS")"
    [[ -f $WORK/arches.json ]] && echo "$round torch netaug $("$PY" "$HERE/torch_train.py" "$spec" \
        --resolution "$RES" --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" \
        --threads "$THREADS" --arches "$WORK/arches.json")"
done | tee "$WORK/raw" | cut -c1-160 >&2
python3 - "$WORK/raw" <<'PY'
import json, statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    r, dev, k, js = line.split(" ", 3)
    d = json.loads(js)
    rows.setdefault((dev, k), []).append(d)
torch = [d["images_per_second"] for d in rows[("torch", "-")]]
torch_na = [d["images_per_second"] for d in rows.get(("torch", "netaug"), [])]
print(f"median of {len(torch)} rounds; PyTorch {st.median(torch):.1f} img/s"
      + (f", PyTorch NetAug {st.median(torch_na):.1f} img/s" if torch_na else ""))
print("| device | kernels | baseline img/s | NetAug img/s | NetAug cost | baseline / PyTorch "
      "| NetAug / PyTorch NetAug |")
print("|---|---|---|---|---|---|---|")
for (dev, k), ds in rows.items():
    if dev == "torch":
        continue
    b = [d["baseline"]["images_per_second"] for d in ds]
    a = [d["netaug"]["images_per_second"] for d in ds]
    ratio = [x / t for x, t in zip(b, torch)]
    ratio_na = [x / t for x, t in zip(a, torch_na)]
    na = f"{st.median(ratio_na):.2f}" if torch_na else "-"
    print(f"| `{dev}` | {k} | {st.median(b):.1f} | {st.median(a):.1f} | "
          f"{st.median(x / y for x, y in zip(b, a)):.2f}x | {st.median(ratio):.2f} | {na} |")
PY
