#!/usr/bin/env python3
"""Fidelity fixtures made by the official NetAug code (PyTorch).

Drives the official implementation (mit-han-lab/tinyml, folder netaug/, imported from the
path given with --official; nothing of it is copied here) on the five tiny nets of the
paper and writes, per net, one JSON file that crates/trainer/tests/official.rs replays
against our supernet, export, channel sorting, BN re-calibration and NetAug step.

Weights and inputs come from a counter-based generator that the Rust test reimplements
bit for bit (`values` below), so no supernet (19-86 MB each at the paper's factor lists)
has to be stored. Results that are whole tensors are stored as digests: sum, sum of
absolute values, sum of squares (float64) and the values at 32 seeded positions.

Usage (a venv with torch, torchvision, torchprofile, tqdm, pyyaml; `make fixtures`):
    python tools/official_fixtures.py --official ~/tinyml/netaug \
        --out crates/trainer/tests/fixtures/official
"""

import argparse
import copy
import json
import math
import os
import sys
import types

import numpy as np

# The nets: our zoo name, the official `build_model` name, the width factors (NETAUG.md).
NETS = [
    ("tinymbv2", "tinymbv2", [1.0, 1.8, 2.6]),
    ("mbv2-0.35", "mbv2-0.35", [1.0, 1.8, 2.6]),
    ("proxylessnas-0.35", "proxylessnas-0.35", [1.0, 1.8, 2.6]),
    ("mcunet", "mcunet", [1.0, 1.6, 2.2]),
    ("mbv3-0.35", "mbv3-0.35", [1.0, 2.0, 3.0]),
]
EXPAND = [1.0, 1.6, 2.2, 2.8]
CLASSES = 10
RESOLUTION = 48
BATCH = 6
# The two re-calibration batches have different sizes, so their weighting is tested.
RECAL_BATCHES = [6, 4]
# The official recipe's lr (0.025 per 128 images) at this batch.
LR = 0.025 * BATCH / 128
# Smallest distance of an activation input to a kink in the step fixtures.
KINK_GAP = 1e-4
WEIGHT_DECAY = 4e-5
SMOOTHING = 0.1
SAMPLES = 32
ARCH_SEED = 7

MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a(name: str) -> np.uint64:
    """64-bit FNV-1a of the name's UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(h)


def splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64's output function over uint64 counters (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(name: str, n: int) -> np.ndarray:
    """n values in [-1, 1), multiples of 2^-23 (exact in float32), keyed by name."""
    z = splitmix(fnv1a(name) ^ np.arange(n, dtype=np.uint64))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0


# BN scale and shift by the activation that follows (a, b, c, d: gamma = a + b u, beta =
# c + d u): the outputs of a BN followed by ReLU/ReLU6 sit in (0.9, 5.1) and those
# followed by h-swish in (-2.2, 2.2) for |normalized input| < 6, away from every kink, so
# that float rounding never flips an activation's branch: a flip changes a random-init
# supernet's gradients by percents, which would make the step comparison meaningless.
BN_REGIMES = {
    "relu": (0.3, 0.05, 3.0, 0.1),
    "hswish": (0.3, 0.05, 0.0, 0.1),
    "none": (1.0, 0.25, 0.0, 0.1),
}


def sorted_columns(name: str, shape, u: np.ndarray) -> np.ndarray:
    """Point-conv and SE expand-conv weights (what channel sorting ranks): every input
    channel gets the L1 norm 0.5 * rows * m, m spread evenly over [0.5, 1.5) in a seeded
    order, so that the importances are 1/channels apart and never tie."""
    rows, cols = shape[0], shape[1]
    u = u.reshape(rows, cols)
    order = np.argsort(uniform(name + "#rank", cols), kind="stable")
    rank = np.empty(cols, dtype=np.int64)
    rank[order] = np.arange(cols)
    m = 0.5 + (rank + 0.5) / cols
    l1 = np.zeros(cols)
    for r in range(rows):  # row by row, left to right: the sum order the Rust side uses
        l1 += np.abs(u[r])
    return (u * (m * 0.5 * rows / l1)).reshape(-1)


def values(name: str, shape, bn_kind: dict = None) -> np.ndarray:
    """The deterministic value of the official tensor `name` (float32); `bn_kind` maps a
    BN's name to the activation after it (`BN_REGIMES`)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, n)
    regime = BN_REGIMES[(bn_kind or {}).get(name.rsplit(".", 1)[0], "none")]
    if name.endswith("norm.weight"):
        v = regime[0] + regime[1] * u
    elif name.endswith("norm.bias"):
        v = regime[2] + regime[3] * u
    elif name.endswith("se_layer.reduce_conv.bias"):  # keeps the SE's ReLU inputs off 0
        v = 3.0 + 0.1 * u
    elif name.endswith("norm.running_var"):
        v = 1.0 + 0.5 * u
    elif name.endswith("bias") or name.endswith("running_mean"):
        v = 0.1 * u
    elif name == "input" or name.startswith("input."):
        v = 2.0 * u
    else:  # conv or linear weight: uniform with variance 1 / fan_in
        fan_in = int(np.prod(shape[1:]))
        if name.endswith("point_conv.conv.weight") or name.endswith("se_layer.expand_conv.weight"):
            u = sorted_columns(name, shape, u)
        v = u * math.sqrt(3.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def import_official(path: str):
    """Imports the official code from `path`; torchpack (only used for multi-GPU) is stubbed."""
    tp = types.ModuleType("torchpack")
    tp.distributed = types.ModuleType("torchpack.distributed")
    sys.modules.setdefault("torchpack", tp)
    sys.modules.setdefault("torchpack.distributed", tp.distributed)
    sys.path.insert(0, os.path.abspath(path))
    import setup  # noqa: E402  (the official setup.py: build_model, augemnt_model)
    import models.netaug.mbv2 as nmbv2  # noqa: E402
    import models.netaug.mbv3 as nmbv3  # noqa: E402
    import models.netaug.mcunet as nmcunet  # noqa: E402
    import models.netaug.utils as nutils  # noqa: E402
    import utils as outils  # noqa: E402

    return types.SimpleNamespace(
        setup=setup,
        sampling_modules=[nmbv2, nmbv3, nmcunet],
        netaug_utils=nutils,
        utils=outils,
    )


def bn_kinds(net, torch) -> dict:
    """Each BN's name (`....norm`) and the activation after it: relu, hswish or none."""
    kinds = {}
    for name, m in net.named_modules():
        norm = getattr(m, "norm", None)
        if isinstance(norm, torch.nn.BatchNorm2d):
            act = getattr(m, "act", None)
            if isinstance(act, (torch.nn.ReLU, torch.nn.ReLU6)):
                kind = "relu"
            elif isinstance(act, torch.nn.Hardswish):
                kind = "hswish"
            elif act is None:
                kind = "none"
            else:
                raise ValueError(f"{name}: unexpected activation {act}")
            kinds[f"{name}.norm"] = kind
    return kinds


def kink_distance(net, x, torch) -> float:
    """The smallest distance of any activation input to a kink of its activation, in a
    float64 train-mode forward of a copy of `net`."""
    net = copy.deepcopy(net).double().train()
    dist = [math.inf]

    def hook(m, inp):
        kinks = [-3.0, 3.0] if isinstance(m, torch.nn.Hardswish) else [0.0, 6.0]
        a = inp[0].detach()
        dist[0] = min(dist[0], min((a - k).abs().min().item() for k in kinks))

    for m in net.modules():
        if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardswish)):
            m.register_forward_pre_hook(hook)
    functional = torch.nn.functional
    hardsigmoid = functional.hardsigmoid  # the SE gate, called as a function

    def gate(a, *args, **kwargs):
        dist[0] = min(dist[0], min((a.detach() - k).abs().min().item() for k in [-3.0, 3.0]))
        return hardsigmoid(a, *args, **kwargs)

    functional.hardsigmoid = gate
    try:
        with torch.no_grad():
            net(x.double())
    finally:
        functional.hardsigmoid = hardsigmoid
    return dist[0]


def digest(t, seed_name: str) -> dict:
    a = t.detach().double().reshape(-1).numpy()
    rng = np.random.RandomState(int(fnv1a(seed_name) % np.uint64(2**31)))
    idx = np.sort(rng.choice(a.size, size=min(SAMPLES, a.size), replace=False))
    return {
        "sum": float(a.sum()),
        "abs": float(np.abs(a).sum()),
        "sq": float((a * a).sum()),
        "idx": [int(i) for i in idx],
        "val": [float(a[i]) for i in idx],
    }


def digests(state: dict) -> dict:
    return {k: digest(v, k) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def arch_of(net, torch) -> dict:
    """The active widths in our `ActiveArch` layout."""
    stem, first = net.backbone["input_stem"].op_list
    blocks = []
    for block in net.all_blocks:
        blocks.append(
            {
                "mid": int(block.conv.inverted_conv.conv.active_out_channels),
                "out": int(block.conv.point_conv.conv.active_out_channels),
            }
        )
    convs_before, convs_after, pooled = [], [], False
    for op in net.head.op_list:
        if isinstance(op, torch.nn.AdaptiveAvgPool2d):
            pooled = True
        elif hasattr(op, "out_channels_list"):
            (convs_after if pooled else convs_before).append(int(op.conv.active_out_channels))
    return {
        "stem": int(stem.conv.active_out_channels),
        "first": int(first.conv.point_conv.conv.active_out_channels),
        "blocks": blocks,
        "head_conv": convs_before[0] if convs_before else None,
        "post_pool_conv": convs_after[0] if convs_after else None,
    }


def set_max(net, official):
    """The widest sub-network: every random choice takes the largest candidate."""
    saved = [m.torch_random_choices for m in official.sampling_modules]
    for m in official.sampling_modules:
        m.torch_random_choices = lambda src, generator, k=1: max(src)
    try:
        net.set_active(mode="random")
    finally:
        for m, f in zip(official.sampling_modules, saved):
            m.torch_random_choices = f


def logits(net, x, torch, train: bool):
    net = copy.deepcopy(net)  # train-mode forward moves the running statistics
    net.train(train)
    with torch.no_grad():
        return net(x).reshape(-1).tolist()


def fixture(name, official_name, widths, official, torch):
    setup = official.setup
    base = setup.build_model(official_name, CLASSES)
    net = setup.augemnt_model(
        base, {"aug_expand_list": EXPAND, "aug_width_mult_list": widths}, CLASSES
    )
    state = net.state_dict()
    names = [k for k in state if not k.endswith("num_batches_tracked")]
    kinds = bn_kinds(net, torch)
    with torch.no_grad():
        for k in names:
            state[k].copy_(torch.from_numpy(values(k, tuple(state[k].shape), kinds)))
    x = torch.from_numpy(values("input", (BATCH, 3, RESOLUTION, RESOLUTION)))
    labels = [(3 * i + 1) % CLASSES for i in range(BATCH)]
    generator = torch.Generator()
    generator.manual_seed(ARCH_SEED)

    # Logits at four sub-networks, eval and train mode.
    archs, out_eval, out_train = {}, {}, {}
    for mode in ["min", "random", "min_w", "max"]:
        if mode == "max":
            set_max(net, official)
        else:
            net.set_active(mode=mode, generator=generator)
        archs[mode] = arch_of(net, torch)
        out_eval[mode] = logits(net, x, torch, train=False)
        out_train[mode] = logits(net, x, torch, train=True)

    # Export of the target net (the official export reads the widths of a forward pass).
    net.set_active(mode="min")
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, RESOLUTION, RESOLUTION))
    exported = net.export().eval()
    with torch.no_grad():
        export_logits = exported(x).reshape(-1).tolist()
    export = {
        "tensors": {k: list(v.shape) for k, v in exported.state_dict().items() if not k.endswith("num_batches_tracked")},
        "digests": digests(exported.state_dict()),
        "logits": export_logits,
    }

    # Channel sorting of the whole supernet, and the random sub-network's logits after it.
    sorted_net = copy.deepcopy(net)
    sorted_net.sort_channels()
    sorted_net.set_active(mode="min")
    from_arch = archs["random"]
    set_arch(sorted_net, from_arch)
    sort = {"digests": digests(sorted_net.state_dict()), "logits": logits(sorted_net, x, torch, train=False)}

    # BN re-calibration of the target net on two batches.
    recal_net = copy.deepcopy(net)
    recal_net.set_active(mode="min")
    batches = [
        (torch.from_numpy(values(f"input.recal{i}", (n, 3, RESOLUTION, RESOLUTION))), None)
        for i, n in enumerate(RECAL_BATCHES)
    ]
    torch.Tensor.cuda = lambda self, *a, **k: self  # reset_bn moves batches to the GPU
    official.netaug_utils.reset_bn(recal_net, batches)
    reset_bn = {
        "batches": RECAL_BATCHES,
        "digests": {
            k: digest(v, k) for k, v in recal_net.state_dict().items() if "running_" in k
        },
        "logits": logits(recal_net, x, torch, train=False),
    }

    # Two NetAug steps: min + one random augmented net, one SGD step each (official
    # optimizer: Nesterov momentum 0.9, no weight decay on biases and norms).
    step_net = copy.deepcopy(net)
    no_wd = [p for k, p in step_net.named_parameters() if "bias" in k or "norm" in k]
    wd = [p for k, p in step_net.named_parameters() if not ("bias" in k or "norm" in k)]
    optimizer = torch.optim.SGD(
        [{"params": no_wd, "weight_decay": 0}, {"params": wd, "weight_decay": WEIGHT_DECAY}],
        lr=LR,
        momentum=0.9,
        nesterov=True,
    )
    criterion = official.utils.CrossEntropyWithLabelSmooth(smooth_ratio=SMOOTHING)
    # The same steps in float64: how far float32 rounding alone moves each gradient (some
    # are exactly 0 in exact arithmetic, e.g. a BN shift before a linear map and a BN).
    exact_net = copy.deepcopy(step_net).double()
    exact_optimizer = torch.optim.SGD(
        [
            {"params": [p for k, p in exact_net.named_parameters() if "bias" in k or "norm" in k], "weight_decay": 0},
            {"params": [p for k, p in exact_net.named_parameters() if not ("bias" in k or "norm" in k)], "weight_decay": WEIGHT_DECAY},
        ],
        lr=LR,
        momentum=0.9,
        nesterov=True,
    )
    y = torch.tensor(labels)
    step_archs, losses, kink_gaps, inputs, grads = [], [], [], [], []
    step_net.train()
    for step in range(2):
        # The augmented net of this step (official: set_active("random") after the target's
        # backward; the generator's draws do not depend on the forward passes).
        step_net.set_active(mode="random", generator=generator)
        arch = arch_of(step_net, torch)
        # The first input whose activations all stay KINK_GAP from a kink.
        for salt in range(50):
            images = torch.from_numpy(values(f"input.step{step}.{salt}", tuple(x.shape)))
            step_net.set_active(mode="min")
            gap = kink_distance(step_net, images, torch)
            set_arch(step_net, arch)
            gap = min(gap, kink_distance(step_net, images, torch))
            if gap >= KINK_GAP:
                break
        else:
            raise SystemExit(f"{name} step {step}: no input keeps activations off the kinks")
        inputs.append(f"input.step{step}.{salt}")
        kink_gaps.append(gap)
        optimizer.zero_grad()
        step_net.set_active(mode="min")
        loss = criterion(step_net(images), y)
        loss.backward()
        set_arch(step_net, arch)
        step_archs.append(arch)
        aug_loss = criterion(step_net(images), y)
        aug_loss.backward()
        exact_net.train()
        exact_optimizer.zero_grad()
        exact_net.set_active(mode="min")
        criterion(exact_net(images.double()), y).backward()
        set_arch(exact_net, arch)
        criterion(exact_net(images.double()), y).backward()
        exact = dict(exact_net.named_parameters())
        step_grads = {}
        for k, p in step_net.named_parameters():
            d = digest(p.grad, k + "#grad")
            d["noise"] = (p.grad.double() - exact[k].grad).abs().max().item()
            step_grads[k] = d
        grads.append(step_grads)
        optimizer.step()
        exact_optimizer.step()
        losses.append([loss.item(), aug_loss.item()])
        if step == 0:
            first = digests(step_net.state_dict())
    steps = {
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
        "smoothing": SMOOTHING,
        "archs": step_archs,
        "losses": losses,
        "kink_gaps": kink_gaps,
        "inputs": inputs,
        "grads": grads,
        "first_digests": first,
        "digests": digests(step_net.state_dict()),
    }

    return {
        "model": name,
        "official_model": official_name,
        "aug_expand_list": EXPAND,
        "aug_width_mult_list": widths,
        "classes": CLASSES,
        "resolution": RESOLUTION,
        "batch": BATCH,
        "labels": labels,
        "tensors": {k: list(state[k].shape) for k in names},
        "bn_kinds": kinds,
        "archs": archs,
        "logits": {"eval": out_eval, "train": out_train},
        "export": export,
        "sort": sort,
        "reset_bn": reset_bn,
        "steps": steps,
    }


def set_arch(net, arch):
    """Sets the widths of `arch` on an official supernet (what set_active would pick)."""
    stem, first = net.backbone["input_stem"].op_list
    stem.conv.active_out_channels = arch["stem"]
    first.conv.point_conv.conv.active_out_channels = arch["first"]
    for block, w in zip(net.all_blocks, arch["blocks"]):
        block.conv.inverted_conv.conv.active_out_channels = w["mid"]
        block.conv.point_conv.conv.active_out_channels = w["out"]
    pooled, convs = False, []
    for op in net.head.op_list:
        if op.__class__.__name__ == "AdaptiveAvgPool2d":
            pooled = True
        elif hasattr(op, "out_channels_list"):
            convs.append((pooled, op))
    for pooled, op in convs:
        op.conv.active_out_channels = arch["post_pool_conv" if pooled else "head_conv"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, help="the official netaug/ folder")
    parser.add_argument("--out", required=True, help="folder for the <net>.json files")
    parser.add_argument("--nets", nargs="*", help="only these nets (our names)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    official = import_official(args.official)
    os.makedirs(args.out, exist_ok=True)
    for name, official_name, widths in NETS:
        if args.nets and name not in args.nets:
            continue
        data = fixture(name, official_name, widths, official, torch)
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        print(f"{path}: {os.path.getsize(path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
