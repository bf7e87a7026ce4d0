//! A [`Graph`] as an ONNX model (IR 7, opset 13), written with our own protobuf encoder.
//!
//! Input `input`: `[N, C, R, R]` float32, normalized as the run's evaluation transform
//! (its mean, std and resolution are in the model's metadata); output `logits`:
//! `[N, classes]`. Convolutions carry the folded batch norm as their bias; ReLU6 is `Clip`,
//! MobileNetV3's h-sigmoid is `HardSigmoid(1/6, 1/2)` and h-swish `x * HardSigmoid(x)`.

use netaug_model::layers::Act;

use crate::graph::{Graph, Op};
use netaug_protobuf::Message;

/// ONNX IR version of opset 13.
const IR_VERSION: i64 = 7;
/// The operator set the nodes bind to.
pub const OPSET: i64 = 13;

const FLOAT: i64 = 1;
const ATTR_FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

/// The ONNX bytes of `graph`, with `metadata` (key, value) pairs in the model.
pub fn write(graph: &Graph, metadata: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::default();
    let name = |v: usize| match v {
        0 => "input".to_string(),
        v if v == graph.output() => "logits".to_string(),
        v => format!("v{v}"),
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        let out = name(i + 1);
        let inputs: Vec<String> = node.inputs.iter().map(|&v| name(v)).collect();
        match &node.op {
            Op::Conv {
                weight,
                dims,
                bias,
                stride,
                groups,
            } => {
                let (w_name, b_name) = (
                    format!("{}.weight", node.name),
                    format!("{}.bias", node.name),
                );
                w.tensor(&w_name, dims, weight);
                w.tensor(&b_name, &[dims[0]], bias);
                let (k, s, p) = (dims[2] as i64, *stride as i64, (dims[2] / 2) as i64);
                let mut n = w.node("Conv", &node.name, &[&inputs[0], &w_name, &b_name], &out);
                n.ints("kernel_shape", &[k, k])
                    .ints("strides", &[s, s])
                    .ints("pads", &[p, p, p, p])
                    .ints("dilations", &[1, 1])
                    .int("group", *groups as i64);
                w.push(n);
            }
            Op::Act(act) => w.act(*act, &node.name, &inputs[0], &out),
            Op::Add => {
                let n = w.node("Add", &node.name, &[&inputs[0], &inputs[1]], &out);
                w.push(n);
            }
            Op::Mul => {
                let n = w.node("Mul", &node.name, &[&inputs[0], &inputs[1]], &out);
                w.push(n);
            }
            Op::MaxPool => {
                let mut n = w.node("MaxPool", &node.name, &[&inputs[0]], &out);
                n.ints("kernel_shape", &[3, 3])
                    .ints("strides", &[2, 2])
                    .ints("pads", &[1, 1, 1, 1]);
                w.push(n);
            }
            Op::GlobalAvgPool => {
                let n = w.node("GlobalAveragePool", &node.name, &[&inputs[0]], &out);
                w.push(n);
            }
            Op::Linear { weight, dims, bias } => {
                let flat = format!("{}.flat", node.name);
                let mut n = w.node("Flatten", &flat, &[&inputs[0]], &flat);
                n.int("axis", 1);
                w.push(n);
                let (w_name, b_name) = (
                    format!("{}.weight", node.name),
                    format!("{}.bias", node.name),
                );
                w.tensor(&w_name, dims, weight);
                w.tensor(&b_name, &[dims[0]], bias);
                let mut n = w.node("Gemm", &node.name, &[&flat, &w_name, &b_name], &out);
                n.int("transB", 1);
                w.push(n);
            }
        }
    }
    let [c, h, wd] = graph.input;
    let classes = graph.shape(graph.output())[0];
    let mut g = Message::default();
    for n in &w.nodes {
        g.message(1, n);
    }
    g.string(2, "netaug");
    for t in &w.tensors {
        g.message(5, t);
    }
    g.message(
        11,
        &value_info("input", &[None, Some(c), Some(h), Some(wd)]),
    );
    g.message(12, &value_info("logits", &[None, Some(classes)]));

    let mut m = Message::default();
    m.int(1, IR_VERSION)
        .string(2, "netaug")
        .string(3, env!("CARGO_PKG_VERSION"));
    m.message(7, &g);
    let mut opset = Message::default();
    opset.string(1, "").int(2, OPSET);
    m.message(8, &opset);
    for (k, v) in metadata {
        let mut e = Message::default();
        e.string(1, k).string(2, v);
        m.message(14, &e);
    }
    m.into_bytes()
}

/// `[dims]` of a float tensor value, `None` for the batch (`N`).
fn value_info(name: &str, dims: &[Option<usize>]) -> Message {
    let mut shape = Message::default();
    for d in dims {
        let mut dim = Message::default();
        match d {
            Some(v) => dim.int(1, *v as i64),
            None => dim.string(2, "N"),
        };
        shape.message(1, &dim);
    }
    let mut tensor = Message::default();
    tensor.int(1, FLOAT).message(2, &shape);
    let mut ty = Message::default();
    ty.message(1, &tensor);
    let mut v = Message::default();
    v.string(1, name).message(2, &ty);
    v
}

/// Nodes and initializers as they are written.
#[derive(Default)]
struct Writer {
    nodes: Vec<Message>,
    tensors: Vec<Message>,
    relu6_bounds: bool,
}

/// A node under construction, with its attributes.
struct NodeMsg(Message);

impl NodeMsg {
    fn attr(&mut self, name: &str, fill: impl FnOnce(&mut Message)) -> &mut Self {
        let mut a = Message::default();
        a.string(1, name);
        fill(&mut a);
        self.0.message(5, &a);
        self
    }

    fn int(&mut self, name: &str, v: i64) -> &mut Self {
        self.attr(name, |a| {
            a.int(3, v).int(20, ATTR_INT);
        })
    }

    fn float(&mut self, name: &str, v: f32) -> &mut Self {
        self.attr(name, |a| {
            a.float(2, v).int(20, ATTR_FLOAT);
        })
    }

    fn ints(&mut self, name: &str, vs: &[i64]) -> &mut Self {
        self.attr(name, |a| {
            a.ints(8, vs).int(20, ATTR_INTS);
        })
    }
}

impl Writer {
    fn node(&self, op: &str, name: &str, inputs: &[&str], output: &str) -> NodeMsg {
        let mut n = Message::default();
        for i in inputs {
            n.string(1, i);
        }
        n.string(2, output).string(3, name).string(4, op);
        NodeMsg(n)
    }

    fn push(&mut self, n: NodeMsg) {
        self.nodes.push(n.0);
    }

    fn tensor(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        let mut t = Message::default();
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if !dims.is_empty() {
            t.ints(1, &dims);
        }
        t.int(2, FLOAT).string(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        self.tensors.push(t);
    }

    fn act(&mut self, act: Act, name: &str, input: &str, output: &str) {
        match act {
            Act::Relu => {
                let n = self.node("Relu", name, &[input], output);
                self.push(n);
            }
            Act::Relu6 => {
                if !self.relu6_bounds {
                    self.tensor("relu6.min", &[], &[0.0]);
                    self.tensor("relu6.max", &[], &[6.0]);
                    self.relu6_bounds = true;
                }
                let n = self.node("Clip", name, &[input, "relu6.min", "relu6.max"], output);
                self.push(n);
            }
            Act::HSigmoid => {
                let mut n = self.node("HardSigmoid", name, &[input], output);
                n.float("alpha", 1.0 / 6.0).float("beta", 0.5);
                self.push(n);
            }
            Act::HSwish => {
                let gate = format!("{name}.gate");
                let mut n = self.node("HardSigmoid", &gate, &[input], &gate);
                n.float("alpha", 1.0 / 6.0).float("beta", 0.5);
                self.push(n);
                let n = self.node("Mul", name, &[input, &gate], output);
                self.push(n);
            }
        }
    }
}
