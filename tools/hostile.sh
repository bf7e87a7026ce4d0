#!/usr/bin/env bash
# A hostile user's pass over the CLI: bad configs and --set values, device and replica
# settings, the validation split and the learning-rate choice, exports and run folders
# that hold a user's files, sweeps (local and Slurm scripts), reports of damaged results
# folders. Every case states the exit code it must end with and, where it matters, what
# must still be on disk; a panic (101), an abort (134) or a signal fails any case.
#
#   tools/hostile.sh [NETAUG]     (default: target/release/netaug)
#
# Prints one line per failed case and the count; exits 1 if any case failed. Each case is
# a tiny run (Fashion-MNIST in its real idx format, 32 images, 16 px): the pass takes a
# minute or two on 2 cores.
set -u
NETAUG=$(realpath "${1:-target/release/netaug}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

# Real idx files: 32 training and 16 test images, 10 classes.
python3 - <<'EOF'
import gzip, os, random, struct
os.makedirs("fm", exist_ok=True)
def split(prefix, n):
    rng = random.Random(n)
    with gzip.open(f"fm/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(rng.randrange(256) for _ in range(n * 784)))
    with gzip.open(f"fm/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n)))
split("train", 32)
split("t10k", 16)
EOF
cat > fmb.yaml <<'EOF'
data: {dataset: fashion-mnist, root: fm, image_size: 16, batch_size: 16, workers: 1}
model: {name: mbv2-0.1}
run: {epochs: 1, warmup_epochs: 0, base_lr: 0.05, seed: 0}
EOF

PASS=0
FAIL=0
N=0
LAST=0

# check WANT DESCRIPTION -- ARGS...: runs netaug ARGS, wants exit code WANT.
check() {
    local want=$1 what=$2
    shift 3
    N=$((N + 1))
    "$NETAUG" "$@" >"out.$N" 2>"err.$N" </dev/null
    local got=$?
    LAST=$N
    if [ "$got" -ne "$want" ] || grep -q "panicked at\|RUST_BACKTRACE" "err.$N"; then
        FAIL=$((FAIL + 1))
        echo "FAIL [$N] $what: exit $got, wanted $want: $(tail -c 300 "err.$N" | tr '\n' ' ')"
    else
        PASS=$((PASS + 1))
    fi
}

# says TEXT DESCRIPTION: the last case's stderr names TEXT (the key or the --set at fault).
says() {
    N=$((N + 1))
    if grep -qF -- "$1" "err.$LAST"; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1))
        echo "FAIL [$N] $2 does not say \"$1\": $(tail -c 300 "err.$LAST" | tr '\n' ' ')"
    fi
}

# expect DESCRIPTION COMMAND...: a shell condition that must hold after the cases before.
expect() {
    local what=$1
    shift
    N=$((N + 1))
    if "$@"; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1))
        echo "FAIL [$N] $what"
    fi
}

# A finished run to export from and resume.
check 0 "a good run" -- train fmb.yaml --out run --quiet
cp -r run keep # for the report cases, whatever the cases between do to run/

# --- bad values, each refused with exit 2 before anything is written ---
i=0
for set in \
    run.base_lr=-1 run.base_lr=abc run.epochs=0 run.epochs= run.epochs.x=1 \
    run.warmup_epochs=18446744073709551615 run.seed=-1 run.replicas=0 run.replicas=100000 \
    data.image_size=4 data.image_size=100000 data.batch_size=0 data.train_subset=0 \
    data.eval_subset=0 data.train_subset=100000 data.eval_subset=100000 data.workers=100000 \
    data.val_split=0 data.val_split=32 data.val_split=100000 data.min_scale=2 \
    data.dataset=mnist 'data={dataset: mnist, image_size: 16, batch_size: 16}' \
    data.root=/no/such/dir model.name=resnet9000 model.dropout=2 device=tpu device=cpu:7 \
    'device={name: cpu}' 'device=[]' 'device=[cpu, cuda]' device=cuda device=tch-cpu \
    'netaug={aug_expand_list: [1.0, 100000], aug_width_mult_list: [1.0, 1.8]}' \
    'netaug={aug_expand_list: [], aug_width_mult_list: [1.0]}' \
    'netaug={aug_expand_list: [0.5], aug_width_mult_list: [1.0]}' \
    'kd={teacher: /no/teacher, temperature: 2.0, weight: 0.7}' run.label_smoothing=1.5 \
    run.weight_decay=-1 run.log_every=0 'run=[1, 2]' '=1' 'run..epochs=1'; do
    i=$((i + 1))
    check 2 "--set $set" -- train fmb.yaml --out "bad$i" --set "$set"
    expect "--set $set wrote nothing" test ! -e "bad$i/config.yaml"
done
check 2 "--set conflicting with another --set names that --set" -- \
    train fmb.yaml --out conflict --set run.replicas=2 --set model.dropout=0.1
says "--set model.dropout=0.1" "the conflict"
# The messages of the errors that used to name the wrong key, or none.
check 2 "a key turned into a section" -- train fmb.yaml --out k1 --set run.epochs.x=1
says "--set run.epochs.x=1: run.epochs" "a key turned into a section"
check 2 "an unknown dataset without a root" -- train fmb.yaml --out k2 \
    --set 'data={dataset: mnist, image_size: 16, batch_size: 16}'
says "data.dataset: unknown dataset" "an unknown dataset without a root"
check 2 "device as a mapping" -- train fmb.yaml --out k3 --set 'device={name: cpu}'
says "device: " "device as a mapping"
says "a device name" "device as a mapping"
check 2 "a training subset larger than the pool" -- train fmb.yaml --out k4 --set data.train_subset=5000
says "data.train_subset: 5000 is more than the 32" "a training subset larger than the pool"
check 2 "0 training images" -- train fmb.yaml --out k5 --set data.train_subset=0
says "data.train_subset" "0 training images"
check 2 "100,000 loader threads" -- train fmb.yaml --out k6 --set data.workers=100000
says "data.workers" "100,000 loader threads"
check 2 "a supernet 100,000 times as wide" -- train fmb.yaml --out k7 \
    --set 'netaug={aug_expand_list: [1.0, 100000], aug_width_mult_list: [1.0, 1.8]}'
says "netaug.aug_expand_list" "a supernet 100,000 times as wide"

# --- config files ---
printf '\xef\xbb\xbf' >bom.yaml && cat fmb.yaml >>bom.yaml
check 0 "a config with a byte-order mark" -- train bom.yaml --out bomrun --quiet
printf 'data: [unclosed\n' >broken.yaml
check 2 "malformed YAML" -- train broken.yaml --out broken
check 2 "a missing config" -- train no-such.yaml --out missing
head -c 2000000 /dev/zero | tr '\0' 'a' >huge.yaml
check 2 "a 2 MB config" -- train huge.yaml --out huge
check 2 "a folder as the config" -- train fm --out dirconf

# --- run folders a user owns ---
mkdir -p mine && echo notes >mine/notes.txt && echo old >mine/.notes.old
check 2 "train --out a folder with a user's files" -- train fmb.yaml --out mine
expect "its .old file is kept" test -f mine/.notes.old
mkdir -p dotonly && echo rc >dotonly/.bashrc.old
check 2 "train --out a folder holding only .bashrc.old" -- train fmb.yaml --out dotonly
expect "its .bashrc.old is kept" test -f dotonly/.bashrc.old
check 2 "a second train into a run" -- train fmb.yaml --out run
echo file >afile
check 2 "train --out a file" -- train fmb.yaml --out afile
expect "the file is kept" grep -q file afile
check 0 "resume a finished run" -- train fmb.yaml --out run --resume --quiet
check 2 "resume with another seed" -- train fmb.yaml --out run --resume --set run.seed=5
check 0 "replicas as a list" -- train fmb.yaml --out rep --quiet --set 'device=[cpu, cpu]' --set run.epochs=2 --pause-at 1
check 0 "resumed with the same replicas written as a count" -- \
    train fmb.yaml --out rep --quiet --set run.replicas=2 --set run.epochs=2 --resume

# --- divergence ---
check 1 "a loss that turns NaN" -- train fmb.yaml --out nan --set run.base_lr=1e30 --set run.epochs=2
check 1 "weights that turn NaN on the epoch's last step" -- \
    train fmb.yaml --out nanlast --set run.base_lr=1e300 --set data.batch_size=32
expect "no NaN best checkpoint" test ! -e nanlast/checkpoints/best

# --- export ---
check 0 "export" -- export --checkpoint run --out tiny
check 2 "export onto an earlier export without --force" -- export --checkpoint run --out tiny
check 0 "export --force onto an earlier export" -- export --checkpoint run --out tiny --force
check 2 "export --force onto a user's folder" -- export --checkpoint run --out mine --force
expect "the user's notes are kept" test -f mine/notes.txt
check 2 "export --force onto the run" -- export --checkpoint run --out run --force
expect "the run is kept" test -f run/config.yaml -a -f run/summary.json
check 2 "export --force onto a checkpoint" -- export --checkpoint run --out run/checkpoints/latest --force
expect "the optimizer state is kept" test -f run/checkpoints/latest/optimizer.bpk
check 2 "export --force onto a file" -- export --checkpoint run --out afile --force
check 2 "export of nothing" -- export --checkpoint no-such-run --out x
check 0 "export --format onnx" -- export --checkpoint run --out tiny.onnx --format onnx
check 2 "export --format onnx to a .bin" -- export --checkpoint run --out tiny.bin --format onnx
check 2 "export --format tflite" -- export --checkpoint run --out t.tflite --format tflite

# --- eval and bench ---
check 0 "eval" -- eval --checkpoint keep
check 2 "eval of nothing" -- eval --checkpoint no-such
check 2 "eval at 100000 px" -- eval --checkpoint keep --image-size 100000
check 2 "bench --resolution 100000" -- bench train --model mbv2-0.1 --resolution 100000
check 2 "bench --device cpu:1" -- bench train --model mbv2-0.1 --device cpu:1
check 2 "bench of an unknown net" -- bench train --model resnet9000
N=$((N + 1))
if NETAUG_MAX_PIXELS=abc "$NETAUG" train fmb.yaml --out px >/dev/null 2>&1; [ $? -eq 2 ]; then
    PASS=$((PASS + 1))
else
    FAIL=$((FAIL + 1))
    echo "FAIL [$N] NETAUG_MAX_PIXELS=abc is not refused"
fi

# --- sweeps ---
cat >sweep.yaml <<'EOF'
name: hostile
base:
  data: {dataset: fashion-mnist, root: fm, image_size: 16, batch_size: 16, workers: 1}
  model: {name: mbv2-0.1}
  run: {epochs: 1, warmup_epochs: 0, seed: 0}
grid:
  run.base_lr: [0.05, 0.1]
seeds: [0]
EOF
check 0 "a sweep" -- sweep sweep.yaml --out sw
check 0 "the same sweep again does nothing" -- sweep sweep.yaml --out sw
check 2 "sweep --out a file" -- sweep sweep.yaml --out afile
check 2 "--run-index on a folder without plan.json" -- sweep sweep.yaml --out mine --run-index 0
check 2 "--grace 0" -- sweep sweep.yaml --out g --executor slurm --grace 0
check 2 "--grace 29" -- sweep sweep.yaml --out g --executor slurm --grace 29
check 2 "--sbatch with a line break" -- sweep sweep.yaml --out g --executor slurm --sbatch $'--partition=x\nrm -rf ~'
check 2 "--submit without slurm" -- sweep sweep.yaml --out g --submit
check 2 "--jobs 2^63 with 2 replicas" -- sweep sweep.yaml --out g --jobs 9223372036854775808 --set device='[cpu, cpu]'
expect "no refused sweep wrote its folder" test ! -e g
for name in '"a b"' '../../escaped' '"x\nsrun rm"' '""' '.hidden'; do
    sed "s|^name: hostile|name: $name|" sweep.yaml >named.yaml
    check 2 "sweep name $name" -- sweep named.yaml --dry-run
done
expect "no sweep escaped results/" test ! -e ../escaped -a ! -e results
sed 's|  run: {|  device: cuda\n  run: {|' sweep.yaml >cuda.yaml
check 2 "a sweep on a device not compiled in" -- sweep cuda.yaml --out cu
check 2 "the same, for Slurm" -- sweep cuda.yaml --out cu --executor slurm
expect "nothing written for it" test ! -e cu
mkdir -p base && sed -n '/^base:/,/^grid:/p' sweep.yaml | sed '1d;$d;s/^  //' >base/b.yaml
printf '\xef\xbb\xbf' >base/bom.yaml && cat base/b.yaml >>base/bom.yaml
printf 'name: bombase\nbase: base/bom.yaml\ngrid:\n  run.base_lr: [0.05, 0.1]\nseeds: [0]\n' >bombase.yaml
check 0 "a sweep whose base file has a byte-order mark" -- sweep bombase.yaml --out bb --dry-run
printf 'name: h\nbase: base/b.yaml\nhalving: {metric: val_top1, rungs: [5], keep: 1/3}\ngrid:\n  run.base_lr: [0.05, 0.1]\nseeds: [0]\n' >badhalving.yaml
check 2 "a halving rung past the epochs" -- sweep badhalving.yaml --out bh --dry-run

# --- report ---
check 0 "report of a sweep" -- report sw
mkdir -p failed/runs
check 1 "a run that fails in its first epoch" -- train fmb.yaml --out failed/runs/a --set run.base_lr=1e30 --set run.epochs=2
check 0 "report of a folder whose runs all failed (used to hang)" -- report failed
cp -r sw twice
for r in sw/runs/*; do cp -r "$r" "twice/runs/copy-$(basename "$r")"; done
check 0 "report of runs present twice" -- report twice
expect "they are counted once" grep -q "counted once" "out.$((N))"
mkdir -p killed/runs && cp -r sw/runs/. killed/runs/ && rm "$(ls -d killed/runs/*/ | head -1)summary.json"
check 0 "report of a run killed before its summary" -- report killed
expect "it counts as failed" grep -q "counted as failed" "out.$N"
mkdir -p long/runs
for end in a b; do
    d="long/runs/r$end"
    mkdir -p "$d"
    sed "s|root: .*|root: /$(printf 'a-long-folder-name/%.0s' $(seq 20))$end|" keep/config.yaml >"$d/config.yaml"
    cp keep/summary.json keep/metrics.jsonl "$d/"
done
check 0 "report of runs apart by a 400-byte data.root" -- report long
mkdir -p big/runs/r && cp keep/config.yaml keep/metrics.jsonl big/runs/r/
sed 's/"seed": 0/"seed": 18446744073709551615/' keep/summary.json >big/runs/r/summary.json
check 0 "report of a seed past i64::MAX" -- report big
expect "the seed is kept" grep -q 18446744073709551615 big/summary.csv
check 2 "report of nothing" -- report no-such-folder
check 2 "report of an empty folder" -- report mine

echo "$N cases: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
