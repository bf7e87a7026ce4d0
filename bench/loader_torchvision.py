"""The reference for `netaug bench loader`: torchvision + PIL on the same images.

Usage: python3 bench/loader_torchvision.py ROOT [--size 160] [--images 400] [--batch 64]
ROOT is an ImageNet-style folder (ROOT/train/<class>/<img>.jpg). Prints images/s of
decode + the official training transform on one core and with one worker per core.
"""
import argparse
import os
import time

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

p = argparse.ArgumentParser()
p.add_argument("root")
p.add_argument("--size", type=int, default=160)
p.add_argument("--images", type=int, default=400)
p.add_argument("--batch", type=int, default=64)
a = p.parse_args()

tf = transforms.Compose([
    transforms.RandomResizedCrop(a.size),
    transforms.RandomHorizontalFlip(),
    transforms.ColorJitter(brightness=32.0 / 255.0, saturation=0.5),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
ds = datasets.ImageFolder(os.path.join(a.root, "train"), transform=tf)
ds = Subset(ds, range(min(a.images, len(ds))))
torch.set_num_threads(1)


def rate(workers):
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader)
    return n / (time.perf_counter() - start)


cores = os.cpu_count()
rate(0)  # warm-up: page cache
single = rate(0)
multi = rate(cores)
print(f"torchvision+PIL: {len(ds)} images to {a.size}px")
print(f"  1 core   {single:9.1f} images/s")
print(f"  {cores} workers {multi:9.1f} images/s")
