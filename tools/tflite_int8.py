#!/usr/bin/env python3
"""Full-integer (int8) TFLite model of an ONNX file from `netaug export --format onnx`.

The ONNX graph (the few operators netaug writes: Conv, Relu, Clip, HardSigmoid, Mul, Add,
MaxPool, GlobalAveragePool, Flatten, Gemm) is rebuilt as a TensorFlow function in NHWC,
checked against onnxruntime, and converted by TensorFlow Lite's converter with full
integer post-training quantization (int8 weights, activations, input and output;
per-channel weight scales), calibrated on training images prepared as the file's
metadata says. Then float (TF) and int8 (TFLite interpreter) top-1 on the validation
split, and the file sizes, are printed.

    python tools/tflite_int8.py --onnx tiny.onnx --fashion-mnist /usr/share/datasets/fashion-mnist --out tiny.tflite
"""
import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from onnx_eval import fashion_mnist, folder, prepare  # noqa: E402


def train_split(a):
    """A fixed sample of training images for calibration."""
    import gzip

    from PIL import Image

    if a.fashion_mnist:
        with gzip.open(os.path.join(a.fashion_mnist, "train-images-idx3-ubyte.gz")) as f:
            raw = f.read()
        n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)
        pick = np.random.default_rng(0).choice(n, a.calibration, replace=False)
        return [Image.fromarray(images[i], "L") for i in pick]
    train = os.path.join(a.folder, "train")
    paths = [os.path.join(train, c, f) for c in sorted(os.listdir(train))
             for f in sorted(os.listdir(os.path.join(train, c)))]
    pick = np.random.default_rng(0).permutation(len(paths))[:a.calibration]
    return [Image.open(paths[i]) for i in pick]


def tf_function(model):
    """The ONNX graph as a function of an NHWC float batch."""
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def run(x):
        v = {g.input[0].name: x}
        for node in g.node:
            at = attrs(node)
            ins = node.input
            if node.op_type == "Conv":
                w, b = consts[ins[1]], consts[ins[2]]
                p, s, groups = at["pads"][0], at["strides"][0], at.get("group", 1)
                y = v[ins[0]]
                if p:
                    y = tf.pad(y, [[0, 0], [p, p], [p, p], [0, 0]])
                if groups == 1:
                    y = tf.nn.conv2d(y, w.transpose(2, 3, 1, 0), s, "VALID")
                else:
                    y = tf.nn.depthwise_conv2d(y, w.transpose(2, 3, 0, 1), [1, s, s, 1], "VALID")
                out = y + b
            elif node.op_type == "Relu":
                out = tf.nn.relu(v[ins[0]])
            elif node.op_type == "Clip":
                out = tf.clip_by_value(v[ins[0]], float(consts[ins[1]]), float(consts[ins[2]]))
            elif node.op_type == "HardSigmoid":
                out = tf.nn.relu6(v[ins[0]] * (6.0 * at["alpha"]) + 6.0 * at["beta"]) / 6.0
            elif node.op_type == "Mul":
                out = v[ins[0]] * v[ins[1]]
            elif node.op_type == "Add":
                out = v[ins[0]] + v[ins[1]]
            elif node.op_type == "MaxPool":
                # The zoo's max pool follows a ReLU: zero padding equals -inf padding.
                y = tf.pad(v[ins[0]], [[0, 0], [1, 1], [1, 1], [0, 0]])
                out = tf.nn.max_pool2d(y, 3, 2, "VALID")
            elif node.op_type == "GlobalAveragePool":
                out = tf.reduce_mean(v[ins[0]], axis=[1, 2], keepdims=True)
            elif node.op_type == "Flatten":
                out = tf.reshape(v[ins[0]], [-1, v[ins[0]].shape[-1]])
            elif node.op_type == "Gemm":
                out = tf.matmul(v[ins[0]], consts[ins[1]].T) + consts[ins[2]]
            else:
                raise SystemExit(f"error: operator {node.op_type} is not one netaug writes")
            v[node.output[0]] = out
        return v[g.output[0].name]

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", required=True)
    p.add_argument("--out", required=True, help="the .tflite file to write")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fashion-mnist")
    g.add_argument("--folder")
    p.add_argument("--calibration", type=int, default=500, help="training images")
    a = p.parse_args()

    model = onnx.load(a.onnx)
    meta = {m.key: m.value for m in model.metadata_props}
    size = int(meta["netaug.resolution"])
    mean = [float(v) for v in meta["netaug.mean"].split(",")]
    std = [float(v) for v in meta["netaug.std"].split(",")]
    channels = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    nhwc = lambda im: prepare(im, size, mean, std, channels).transpose(1, 2, 0)  # noqa: E731

    run = tf_function(model)
    fn = tf.function(run, input_signature=[tf.TensorSpec([1, size, size, channels], tf.float32)])
    val = fashion_mnist(a.fashion_mnist) if a.fashion_mnist else folder(a.folder)

    # The rebuilt function against onnxruntime on a few images.
    session = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
    probe = np.stack([nhwc(im) for im, _ in val[:16]])
    want = session.run(["logits"], {"input": probe.transpose(0, 3, 1, 2)})[0]
    got = np.concatenate([fn(probe[i:i + 1]).numpy() for i in range(len(probe))])
    diff = float(np.abs(got - want).max())
    if diff > 1e-3 * max(1.0, float(np.abs(want).max())):
        raise SystemExit(f"error: the TF rebuild differs from onnxruntime by {diff}")

    calib = [nhwc(im)[None] for im in train_split(a)]

    def representative():
        for x in calib:
            yield [x]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    blob = conv.convert()
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, a.out)

    try:  # LiteRT, TensorFlow Lite's successor, when installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_path=a.out)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    float_hits = int8_hits = 0
    for im, label in val:
        x = nhwc(im)[None]
        float_hits += int(np.argmax(fn(x).numpy()) == label)
        q = np.clip(np.round(x / in_scale + in_zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        int8_hits += int(np.argmax(interp.get_tensor(out["index"])) == label)
    n = len(val)
    print(f"{a.onnx}: float top-1 {100.0 * float_hits / n:.2f}% ({os.path.getsize(a.onnx)} bytes), "
          f"int8 TFLite top-1 {100.0 * int8_hits / n:.2f}% ({os.path.getsize(a.out)} bytes) "
          f"on {n} images; TF rebuild vs onnxruntime max |diff| {diff:.2e} "
          f"(TensorFlow {tf.__version__}, {len(calib)} calibration images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
