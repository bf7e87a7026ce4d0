#!/usr/bin/env bash
# One run over 2 MPI ranks of 1 thread each against one process of 2 threads, on this
# machine, interleaved for ROUNDS rounds: training images/s of a short Fashion-MNIST run
# (read from metrics.jsonl, evaluation excluded), and the time a step spends in the ranks'
# gradient sum (rank 0's log line; it includes waiting for the slower rank).
# Usage: bench/mpi.sh NETAUG_BINARY_WITH_MPI [model ...]   (make build-mpi builds one)
set -uo pipefail
BIN=$1; shift
NETS=${*:-tinymbv2 mbv2-1.0}
ROUNDS=${ROUNDS:-3} RES=${RES:-16} BATCH=${BATCH:-128} IMAGES=${IMAGES:-5120}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none -np 2)
speed() { python3 -c 'import json,sys; print("%.0f" % json.loads(open(sys.argv[1]).readline())["images_per_second"])' "$1/metrics.jsonl"; }
printf '%-10s %5s %-22s %8s %14s\n' net round mode "img/s" "sum ms/step"
for net in $NETS; do
    config=$WORK/$net.yaml
    cat >"$config" <<EOF
data: {dataset: fashion-mnist, image_size: $RES, batch_size: $BATCH, train_subset: $IMAGES, eval_subset: 256, workers: 1}
model: {name: $net}
run: {epochs: 1, warmup_epochs: 0, base_lr: 0.1}
EOF
    for round in $(seq "$ROUNDS"); do
        out=$WORK/$net-$round-alone
        RAYON_NUM_THREADS=2 "$BIN" train "$config" --out "$out" --quiet >/dev/null 2>"$out.err" &&
            printf '%-10s %5s %-22s %8s %14s\n' "$net" "$round" "1 process x 2 threads" "$(speed "$out")" -
        out=$WORK/$net-$round-ranks
        NETAUG_LOG=info RAYON_NUM_THREADS=1 "${mpi[@]}" "$BIN" train "$config" --out "$out" --quiet >/dev/null 2>"$out.err" &&
            printf '%-10s %5s %-22s %8s %14s\n' "$net" "$round" "2 ranks x 1 thread" "$(speed "$out")" \
                "$(sed -n 's/.*took \([0-9.]*\) ms a step.*/\1/p' "$out.err" | head -1)"
    done
    params=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["params"])' "$WORK/$net-1-ranks/summary.json")
    echo "$net: $params parameters: each rank sends $((params * 4)) bytes of gradient a step, rank 0 gathers and sends back"
done
