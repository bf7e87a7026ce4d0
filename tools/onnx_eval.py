#!/usr/bin/env python3
"""Top-1 of an ONNX file written by `netaug export --format onnx`, run by onnxruntime.

The images are prepared from the file's own metadata (netaug.resolution, netaug.mean,
netaug.std: resize the shorter side to ceil(R / 0.875) with PIL's bilinear filter, center
crop R x R, scale to [0, 1], normalize), as a user of the file would, on the validation
split of Fashion-MNIST (IDX files) or of an image folder (val/<class>/*).

    python tools/onnx_eval.py --onnx tiny.onnx --fashion-mnist /usr/share/datasets/fashion-mnist
    python tools/onnx_eval.py --onnx tiny.onnx --folder /data/small
"""
import argparse
import gzip
import math
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def fashion_mnist(root):
    with gzip.open(os.path.join(root, "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)
    with gzip.open(os.path.join(root, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return [(Image.fromarray(im, "L"), int(l)) for im, l in zip(images, labels)]


def folder(root):
    val = os.path.join(root, "val")
    classes = sorted(d for d in os.listdir(os.path.join(root, "train")))
    out = []
    for i, c in enumerate(classes):
        for name in sorted(os.listdir(os.path.join(val, c))):
            out.append((Image.open(os.path.join(val, c, name)), i))
    return out


def prepare(img, size, mean, std, channels):
    img = img.convert("L" if channels == 1 else "RGB")
    side = math.ceil(size / 0.875)
    w, h = img.size
    rw, rh = (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    img = img.resize((rw, rh), Image.BILINEAR)
    left, top = round((rw - size) / 2.0), round((rh - size) / 2.0)
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, np.float32).reshape(size, size, channels) / 255.0
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return x.transpose(2, 0, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fashion-mnist")
    g.add_argument("--folder")
    p.add_argument("--batch", type=int, default=256)
    a = p.parse_args()

    session = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    size = int(meta["netaug.resolution"])
    mean = [float(v) for v in meta["netaug.mean"].split(",")]
    std = [float(v) for v in meta["netaug.std"].split(",")]
    channels = session.get_inputs()[0].shape[1]
    samples = fashion_mnist(a.fashion_mnist) if a.fashion_mnist else folder(a.folder)
    hits = 0
    for i in range(0, len(samples), a.batch):
        chunk = samples[i:i + a.batch]
        x = np.stack([prepare(im, size, mean, std, channels) for im, _ in chunk])
        logits = session.run(["logits"], {"input": x})[0]
        hits += int((logits.argmax(1) == np.array([l for _, l in chunk])).sum())
    print(f"{a.onnx}: top-1 {100.0 * hits / len(samples):.2f}% on {len(samples)} images "
          f"(onnxruntime {ort.__version__}, {os.path.getsize(a.onnx)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
