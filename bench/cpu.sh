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
# PyTorch eager, and PyTorch with torch.compile (inductor), for baseline steps; for NetAug
# steps eager only by default: compiled with dynamic shapes, a step whose sub-network is
# new recompiles, and on 2 cores the 13 steps of tinymbv2 and mbv2-0.1 had not finished
# compiling after 5 minutes (TORCH_NETAUG="torch torch-compile" to try it).
TORCH=${TORCH:-torch torch-compile} TORCH_NETAUG=${TORCH_NETAUG:-torch}
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib 2>/dev/null | paste -sd:)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ $NET == *.json ]]; then spec=$NET; netarg=(--spec "$NET"); else
    spec=$WORK/net.json; "$BIN" profile --model "$NET" --spec >"$spec"; netarg=(--model "$NET")
    "$BIN" profile --model "$NET" --arches $((WARMUP + STEPS + 3)) >"$WORK/arches.json"; fi
export RAYON_NUM_THREADS=$THREADS
for round in $(seq "$ROUNDS"); do
    for dev in $DEVICES; do
        for k in $KERNELS; do
            echo "$round $dev $k $(NETAUG_KERNELS=$k "$BIN" bench train "${netarg[@]}" --resolution "$RES" \
                --batch "$BATCH" --device "$dev" --both --warmup "$WARMUP" --steps "$STEPS" --json)"
        done
    done
    for engine in $TORCH; do
        flag=(); [[ $engine == torch-compile ]] && flag=(--compile)
        echo "$round $engine - $("$PY" "$HERE/torch_train.py" "$spec" --resolution "$RES" --batch "$BATCH" \
            --warmup "$WARMUP" --steps "$STEPS" --threads "$THREADS" "${flag[@]}")"
        [[ -f $WORK/arches.json && " $TORCH_NETAUG " == *" $engine "* ]] && echo "$round $engine netaug $("$PY" "$HERE/torch_train.py" "$spec" \
            --resolution "$RES" --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" \
            --threads "$THREADS" --arches "$WORK/arches.json" "${flag[@]}")"
    done
done | tee "$WORK/raw" | cut -c1-160 >&2
python3 - "$WORK/raw" <<'PY'
import json, statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    r, dev, k, js = line.split(" ", 3)
    d = json.loads(js)
    rows.setdefault((dev, k), []).append(d)
def ips(engine, kind):
    return [d["images_per_second"] for d in rows.get((engine, kind), [])]
anchors = {e: (ips(e, "-"), ips(e, "netaug")) for e in ("torch", "torch-compile") if ips(e, "-")}
print(f"medians of {max(len(v[0]) for v in anchors.values())} rounds; " + "; ".join(
    f"{e}: baseline {st.median(b):.1f} img/s" + (f", NetAug {st.median(n):.1f}" if n else "")
    for e, (b, n) in anchors.items()))
# NetAug's anchor: the faster PyTorch NetAug step, eager or compiled, round by round.
best_na = [max(v) for v in zip(*[n for _, n in anchors.values() if n])] if any(
    n for _, n in anchors.values()) else []
cols = [e for e in anchors]
print("| device | kernels | baseline img/s | NetAug img/s | NetAug cost | "
      + " | ".join(f"baseline / {e}" for e in cols) + " | NetAug / faster PyTorch NetAug |")
print("|---|---|---|---|---|" + "---|" * len(cols) + "---|")
for (dev, k), ds in rows.items():
    if dev.startswith("torch"):
        continue
    b = [d["baseline"]["images_per_second"] for d in ds]
    a = [d["netaug"]["images_per_second"] for d in ds]
    ratios = [f"{st.median(x / t for x, t in zip(b, anchors[e][0])):.2f}" for e in cols]
    na = f"{st.median(x / t for x, t in zip(a, best_na)):.2f}" if best_na else "-"
    print(f"| `{dev}` | {k} | {st.median(b):.1f} | {st.median(a):.1f} | "
          f"{st.median(x / y for x, y in zip(b, a)):.2f}x | " + " | ".join(ratios) + f" | {na} |")
PY
