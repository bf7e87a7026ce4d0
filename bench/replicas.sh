#!/usr/bin/env bash
# The ways one machine's cores can share out training steps, side by side: one run with
# its threads (1 replica x CORES threads), one run over replicas (CORES replicas x 1
# thread, `--replicas`), CORES separate one-thread runs at once (what `netaug sweep --jobs
# CORES` does), and PyTorch CPU with CORES threads; baseline and NetAug steps at the same
# global batch, interleaved for ROUNDS rounds so that load drifts hit all.
# Usage: bench/replicas.sh NETAUG_BINARY [TORCH_PYTHON] [model] [resolution] [batch]
# (TORCH_PYTHON: a python with torch, e.g. .venv-torch/bin/python; `-` leaves PyTorch out.)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1 PY=${2:--} NET=${3:-tinymbv2} RES=${4:-32} BATCH=${5:-64}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-10} WARMUP=${WARMUP:-2} CORES=${CORES:-$(nproc)}
# torch warns on import when numpy is absent; the step does not need it.
export PYTHONWARNINGS=ignore
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BIN" profile --model "$NET" --spec >"$WORK/net.json"
"$BIN" profile --model "$NET" --arches $((WARMUP + STEPS)) >"$WORK/arches.json"
ours() { # threads replicas
    RAYON_NUM_THREADS=$1 "$BIN" bench train --model "$NET" --resolution "$RES" --batch "$BATCH" \
        --device cpu --both --warmup "$WARMUP" --steps "$STEPS" --replicas "$2" --json
}
torch() { # extra arguments
    "$PY" "$HERE/torch_train.py" "$WORK/net.json" --resolution "$RES" --batch "$BATCH" \
        --warmup "$WARMUP" --steps "$STEPS" --threads "$CORES" "$@"
}
for round in $(seq "$ROUNDS"); do
    echo "$round threads $(ours "$CORES" 1)"
    echo "$round replicas $(ours "$CORES" "$CORES")"
    for k in $(seq "$CORES"); do ours 1 1 >"$WORK/job$k" & done
    wait
    echo "$round jobs $(cat "$WORK"/job* | python3 -c 'import json, sys
runs = [json.loads(l) for l in sys.stdin]
print(json.dumps({m: {"images_per_second": sum(r[m]["images_per_second"] for r in runs)}
                  for m in ("baseline", "netaug")}))')"
    if [[ $PY != - ]]; then
        b=$(torch | python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_second"])')
        a=$(torch --arches "$WORK/arches.json" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_second"])')
        echo "$round pytorch {\"baseline\": {\"images_per_second\": $b}, \"netaug\": {\"images_per_second\": $a}}"
    fi
done | tee "$WORK/raw" | cut -c1-160 >&2
python3 - "$WORK/raw" "$NET" "$RES" "$BATCH" "$CORES" <<'PY'
import json, statistics as st, sys
raw, net, res, batch, cores = sys.argv[1:]
rows = {}
for line in open(raw):
    _, how, js = line.split(" ", 2)
    rows.setdefault(how, []).append(json.loads(js))
names = {
    "threads": f"one run, 1 replica x {cores} threads",
    "replicas": f"one run, {cores} replicas x 1 thread",
    "jobs": f"{cores} runs at once, 1 thread each (sum)",
    "pytorch": f"PyTorch CPU, {cores} threads",
}
med = {h: {m: st.median(d[m]["images_per_second"] for d in ds) for m in ("baseline", "netaug")}
       for h, ds in rows.items()}
print(f"{net}, {res} px, global batch {batch}; medians of {len(rows['threads'])} rounds")
print("| layout | baseline img/s | NetAug img/s | baseline vs one run's threads "
      "| NetAug vs one run's threads |")
print("|---|---|---|---|---|")
for how, m in med.items():
    ratio = [m[k] / med["threads"][k] for k in ("baseline", "netaug")]
    print(f"| {names[how]} | {m['baseline']:.1f} | {m['netaug']:.1f} | {ratio[0]:.2f}x "
          f"| {ratio[1]:.2f}x |")
PY
