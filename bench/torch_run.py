#!/usr/bin/env python3
"""PyTorch's side of a default-sweep run, for its memory: tinymbv2 (or any mobile NetSpec)
on Fashion-MNIST at 32 px, batch 128, a 5,000-image training subset, 4 epochs, each ending
with an evaluation on the 10,000 test images; with `--arches` NetAug steps (the target
plus one sampled sub-network per step, as torch_train.py). The data are the Debian
package's idx files, decoded once into uint8 and resized per batch; the augmentation is a
random horizontal flip only and the learning rate a constant 0.1 (memory, not accuracy,
is what this measures; its NetAug run does not train at that rate). Run it under
`/usr/bin/time -v` for the peak RSS.

Usage: torch_run.py SPEC.json [--arches ARCHES.json] [--threads 2]
"""

import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from torch_train import DynNet, Net

ROOT = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(f"{ROOT}/{name}", "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def batch(images, size):
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - 0.2860) / 0.3530


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--arches")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = json.load(open(a.spec))
    train_x, train_y = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    val_x, val_y = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    pick = np.random.default_rng(0).permutation(len(train_x))[:a.subset]
    train_x, train_y = train_x[pick], train_y[pick]
    arches = json.load(open(a.arches)) if a.arches else None
    net = (DynNet(spec, arches["max"]) if arches else Net(spec)).train()
    target = (lambda x: net(x, arches["min"])) if arches else net
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=4e-5)
    steps = len(train_x) // a.batch
    start, step = time.perf_counter(), 0
    for epoch in range(a.epochs):
        net.train()
        order = np.random.default_rng(epoch).permutation(len(train_x))
        for s in range(steps):
            i = order[s * a.batch:(s + 1) * a.batch]
            x, y = batch(train_x[i], a.size), torch.from_numpy(train_y[i].astype(np.int64))
            flip = torch.rand(len(i)) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = F.cross_entropy(target(x), y, label_smoothing=0.1)
            if arches:
                aug = arches["sampled"][step % len(arches["sampled"])]
                loss = loss + F.cross_entropy(net(x, aug), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(val_x), 500):
                x = batch(val_x[s:s + 500], a.size)
                correct += (target(x).argmax(1).numpy() == val_y[s:s + 500]).sum()
        print(json.dumps({"epoch": epoch + 1, "val_top1": 100.0 * correct / len(val_x),
                          "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
