#!/usr/bin/env python3
"""Where a training step's CPU time goes, per op, from `perf script` of a frame-pointer build.

Each sample of the main thread is charged to the highest-level op on its stack: a backward
node of burn's autodiff graph (`bw: BatchNormTrainOps`), an op the net calls on the autodiff
backend (`fw: conv2d_nobias`), the optimizer. Samples of rayon's worker threads carry no
caller, so they are charged to the kind of function they were in (a kernel family, or
idle spinning between tasks). bench/profile.sh records and calls this.

Usage: perf_ops.py PERF_SCRIPT.txt [rows]   (prints a Markdown table, share of all samples)
"""

import collections
import re
import sys

# Highest-level op names, most specific first; `OpsStep::step` (a generic backward node)
# counts only when no named backward node is on the stack.
OPS = [
    (r"::(\w+) as burn_autodiff::ops::backward::Backward", "bw"),
    (r"netaug_kernels::flex::(\w+Backward)(?:<\w+>)? as", "bw"),
    (r"Kernels for burn_autodiff::backend::Autodiff<[^>]*>>?::(\w+)$", "fw"),
    (r"for burn_autodiff::backend::Autodiff<B,C>>::(\w+)$", "fw"),
    (r"(burn_optim)", "optimizer"),
    (r"(Net::new)", "setup"),
    (r"OpsStep<.*Step>::(step)", "bw"),
]

FAMILIES = [
    (r"copy_2d_tiled|permute|contiguous|slice_write|cat", "layout copies"),
    (r"gemm", "GEMM"),
    (r"conv|im2col", "convolution loops"),
    (r"reduce", "reductions"),
    (r"zip|unary|binary|scalar_op|clamp|mask", "element-wise"),
    (r"malloc|free|_int_|page|folio|memcg|fault|unlink_chunk|memset|memcpy|memmove|lru",
     "allocation, page faults"),
    (r"netaug_kernels", "netaug kernels"),
    (r"start_thread|sched|yield|futex|switch|wake|exit_to_user", "idle, scheduling"),
]

# Frames that say nothing about which kernel runs (iterator adapters, rayon plumbing).
PLUMBING = re.compile(
    r"^(core::|alloc::|<core::|<alloc::|<&|<\(|<f32|<usize|pulp|<pulp|rayon|<rayon|std::|"
    r"<std::|crossbeam|start_thread|clone3)")


def frames(sample):
    for line in sample.strip().split("\n")[1:]:
        line = line.strip()
        if " " in line:
            name = re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", line.split(" ", 1)[1])
            yield re.sub(r"::\{\{closure\}\}", "", name)


def family(leaf):
    return next((f for p, f in FAMILIES if re.search(p, leaf)), "other")


def charge(fr):
    joined = " ".join(fr)
    # Root first, the generic backward step last. A step run on a pool thread
    # (`on_workers`) carries its op frames there too.
    for name in sorted(reversed(fr), key=lambda n: "Step>::step" in n):
        for pattern, kind in OPS:
            m = re.search(pattern, name)
            if m:
                # `ConvBackward<netaug_kernels::flex::direct::Direct>` -> `ConvBackward<Direct>`
                op = re.sub(r"<[\w:]*::(\w+)>", r"<\1>", m.group(1))
                return f"{kind}: {op}"
    if " main" not in " " + joined:
        leaf = next((n for n in fr if not PLUMBING.match(n)), "start_thread")
        if "kallsyms" in leaf:
            leaf = "page fault" if "fault" in joined else "start_thread"
        return "worker threads: " + family(leaf)
    return "main thread: other"


def main():
    samples = [s for s in open(sys.argv[1]).read().split("\n\n") if s.strip()]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    count = collections.Counter(charge(list(frames(s))) for s in samples)
    total = sum(count.values())
    print(f"{total} samples")
    print("| where | share of samples |\n|---|---|")
    for k, v in count.most_common(rows):
        print(f"| {k} | {100 * v / total:.1f}% |")


if __name__ == "__main__":
    main()
