#!/usr/bin/env python3
"""The PyTorch side of `netaug bench train`: the same net, batch and step in plain PyTorch.

The net is built from the NetSpec JSON that `netaug profile --model M --spec` prints, so
widths, kernels, strides and activations are ours by construction; the parameter count
is printed, and bench/device.sh checks it against `netaug profile --json` for zoo nets. One training
step = forward, label-smoothed cross entropy, backward, Nesterov SGD (momentum 0.9,
weight decay 4e-5), as `netaug bench train` does. Strict fp32 (no TF32), cudnn.benchmark
on, one device sync at the end of the timed steps.

With `--arches ARCHES.json` (from `netaug profile --model M --arches N`) the step is a
NetAug step as the official code runs it: the supernet's weights at their widest, the
target and one augmented sub-network per step as leading slices of them (the target's
loss plus the augmented net's, one backward), the sub-networks being the ones
`netaug bench train --netaug` draws, in the same order.

With `--compile` the net's forward goes through torch.compile (inductor; with dynamic
shapes for NetAug, whose sub-network changes every step); its compilation happens in the
warm-up steps, which are at least 3 then.

Usage: torch_train.py SPEC.json --resolution R --batch B --device cpu|cuda
       [--steps N] [--warmup W] [--threads T] [--arches ARCHES.json] [--compile]
Prints one JSON object: {"images_per_second": x, "seconds": s, "params": p, ...}.
"""

import argparse
import json
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F


def act(name):
    return {
        "relu": nn.ReLU(inplace=True),
        "relu6": nn.ReLU6(inplace=True),
        "h_swish": nn.Hardswish(inplace=True),
        "h_sigmoid": nn.Hardsigmoid(inplace=True),
    }[name]


def conv_bn(cin, cout, k, stride=1, groups=1, a=None):
    layers = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if a is not None:
        layers.append(act(a))
    return nn.Sequential(*layers)


class SE(nn.Module):
    def __init__(self, c, hidden, a):
        super().__init__()
        self.reduce = nn.Conv2d(c, hidden, 1)
        self.act = act(a)
        self.expand = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        att = F.adaptive_avg_pool2d(x, 1)
        att = self.expand(self.act(self.reduce(att)))
        return x * F.hardsigmoid(att)


class MbConv(nn.Module):
    def __init__(self, b):
        super().__init__()
        layers = [
            conv_bn(b["in_ch"], b["mid"], 1, a=b["act"]),
            conv_bn(b["mid"], b["mid"], b["kernel"], b["stride"], b["mid"], a=b["act"]),
        ]
        if b["se"] is not None:
            layers.append(SE(b["mid"], b["se"]["hidden"], b["se"]["act"]))
        layers.append(conv_bn(b["mid"], b["out"], 1))
        self.body = nn.Sequential(*layers)
        self.identity = b["identity"]

    def forward(self, x):
        y = self.body(x)
        return x + y if self.identity else y


class DsConv(nn.Module):
    def __init__(self, cin, f):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(cin, cin, f["kernel"], 1, cin, a=f["act"]), conv_bn(cin, f["out"], 1)
        )
        self.identity = f["identity"]

    def forward(self, x):
        y = self.body(x)
        return x + y if self.identity else y


class Net(nn.Module):
    """A zoo NetSpec of the mobile family (stem, DS block, MbConv blocks, head)."""

    def __init__(self, spec):
        super().__init__()
        s = spec["stem"]
        if s["max_pool"] or any(b["kind"] != "mb_conv" for b in spec["blocks"]):
            sys.exit("torch_train.py: only the mobile nets (MbConv blocks) are built here")
        layers = [conv_bn(spec["in_channels"], s["out"], s["kernel"], s["stride"], a=s["act"])]
        c = s["out"]
        if spec["first"] is not None:
            layers.append(DsConv(c, spec["first"]))
            c = spec["first"]["out"]
        for b in spec["blocks"]:
            layers.append(MbConv(b))
            c = b["out"]
        if spec["head_conv"] is not None:
            layers.append(conv_bn(c, spec["head_conv"]["out"], 1, a=spec["head_conv"]["act"]))
            c = spec["head_conv"]["out"]
        self.features = nn.Sequential(*layers)
        self.post = None
        if spec["post_pool_conv"] is not None:
            p = spec["post_pool_conv"]
            self.post = nn.Sequential(nn.Conv2d(c, p["out"], 1), act(p["act"]))
            c = p["out"]
        self.classifier = nn.Linear(c, spec["classes"])

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        if self.post is not None:
            x = self.post(x)
        return self.classifier(torch.flatten(x, 1))


class DynConvBn(nn.Module):
    """Conv (no bias) + BN at the widest width, run on leading slices of its channels."""

    def __init__(self, cin, cout, k, stride=1, depthwise=False, a=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(cout)
        self.stride, self.pad, self.depthwise = stride, k // 2, depthwise
        self.act = None if a is None else act(a)

    def forward(self, x, cout):
        cin = x.shape[1]
        if self.depthwise:
            w, groups = self.weight[:cin], cin
            cout = cin
        else:
            w, groups = self.weight[:cout, :cin], 1
        y = F.conv2d(x, w, None, self.stride, self.pad, 1, groups)
        bn = self.bn
        y = F.batch_norm(y, bn.running_mean[:cout], bn.running_var[:cout], bn.weight[:cout],
                         bn.bias[:cout], self.training, 0.1, bn.eps)
        return y if self.act is None else self.act(y)


class DynNet(nn.Module):
    """The NetAug supernet of a mobile NetSpec (no SE, no post-pooling conv): weights at the
    widths of `widest`, forward at any sub-network's widths (a `netaug profile --arches`
    arch)."""

    def __init__(self, spec, widest):
        super().__init__()
        s = spec["stem"]
        if s["max_pool"] or spec["post_pool_conv"] is not None or any(
                b["kind"] != "mb_conv" or b["se"] is not None for b in spec["blocks"]):
            sys.exit("torch_train.py --arches: only mobile nets without SE blocks")
        self.stem = DynConvBn(spec["in_channels"], widest["stem"], s["kernel"], s["stride"],
                              a=s["act"])
        c = widest["stem"]
        self.first = None
        if spec["first"] is not None:
            f = spec["first"]
            self.first = nn.ModuleList([
                DynConvBn(c, c, f["kernel"], 1, depthwise=True, a=f["act"]),
                DynConvBn(c, widest["first"], 1)])
            self.first_identity = f["identity"]
            c = widest["first"]
        self.blocks = nn.ModuleList()
        self.identity = []
        for b, w in zip(spec["blocks"], widest["blocks"]):
            self.blocks.append(nn.ModuleList([
                DynConvBn(c, w["mid"], 1, a=b["act"]),
                DynConvBn(w["mid"], w["mid"], b["kernel"], b["stride"], depthwise=True,
                          a=b["act"]),
                DynConvBn(w["mid"], w["out"], 1)]))
            self.identity.append(b["identity"])
            c = w["out"]
        self.head = None
        if spec["head_conv"] is not None:
            self.head = DynConvBn(c, widest["head_conv"], 1, a=spec["head_conv"]["act"])
            c = widest["head_conv"]
        self.classifier = nn.Linear(c, spec["classes"])

    def forward(self, x, arch):
        x = self.stem(x, arch["stem"])
        if self.first is not None:
            y = self.first[1](self.first[0](x, None), arch["first"])
            x = x + y if self.first_identity else y
        for block, w, identity in zip(self.blocks, arch["blocks"], self.identity):
            y = block[2](block[1](block[0](x, w["mid"]), None), w["out"])
            x = x + y if identity else y
        if self.head is not None:
            x = self.head(x, arch["head_conv"])
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        cl = self.classifier
        return F.linear(x, cl.weight[:, :x.shape[1]], cl.bias)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--arches", help="NetAug step on these sub-networks (netaug profile --arches)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward (inductor)")
    a = ap.parse_args()
    if a.compile:
        a.warmup = max(a.warmup, 3)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    spec = json.load(open(a.spec))
    dev = torch.device(a.device)
    torch.manual_seed(0)
    arches = json.load(open(a.arches)) if a.arches else None
    if arches is not None and len(arches["sampled"]) < a.warmup + a.steps:
        sys.exit(f"torch_train.py: {a.arches} has fewer than {a.warmup + a.steps} sub-networks")
    if arches is None:
        net = Net(spec).to(dev).train()
        run = torch.compile(net) if a.compile else net
        forward = lambda i: F.cross_entropy(run(x), y, label_smoothing=0.1)
    else:
        net = DynNet(spec, arches["max"]).to(dev).train()
        run = torch.compile(net, dynamic=True) if a.compile else net

        def forward(i):
            loss = F.cross_entropy(run(x, arches["min"]), y, label_smoothing=0.1)
            aug = F.cross_entropy(run(x, arches["sampled"][i]), y, label_smoothing=0.1)
            return loss + aug
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
    x = torch.randn(a.batch, spec["in_channels"], a.resolution, a.resolution, device=dev)
    y = torch.arange(a.batch, device=dev) % spec["classes"]
    total = torch.zeros((), device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    start = time.perf_counter()
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            sync()
            start = time.perf_counter()
        loss = forward(i)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    sync()
    total.item()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "engine": f"pytorch {torch.__version__}" + (" compile" if a.compile else ""),
        "model": spec["name"],
        "resolution": a.resolution,
        "batch": a.batch,
        "device": a.device,
        "threads": torch.get_num_threads(),
        "params": params,
        "netaug": arches is not None,
        "steps": a.steps,
        "images_per_second": a.steps * a.batch / seconds,
        "seconds": seconds,
    }))


if __name__ == "__main__":
    main()
