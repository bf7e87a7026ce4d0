//! The inference graph of a net's active sub-network: what runs at deployment, with batch
//! norm folded into the convolution before it. One walk over the net's stages (stem, the
//! first separable block, the blocks, head conv, pooling, post-pool conv, classifier)
//! builds it; the ONNX writer and the memory model read it.

use burn::tensor::Tensor;
use netaug_model::Net;
use netaug_model::blocks::{Block, DsConv};
use netaug_model::layers::{Act, ConvLayer, DynConv2d, DynSe};

use crate::DeployError;

/// A value's shape for one image: `[channels, height, width]`.
pub type Shape = [usize; 3];

/// A plain feed-forward graph. Value 0 is the input image; node `i` writes value `i + 1`.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Shape of the input image.
    pub input: Shape,
    /// Nodes in execution order (every input is an earlier value).
    pub nodes: Vec<Node>,
}

/// One operation of a [`Graph`].
#[derive(Clone, Debug)]
pub struct Node {
    /// Where it comes from in the net (`blocks.3.depth`).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// The values it reads.
    pub inputs: Vec<usize>,
    /// Shape of the value it writes.
    pub shape: Shape,
}

/// The operations of the zoo's nets at inference.
#[derive(Clone, Debug)]
pub enum Op {
    /// Convolution with bias (BN folded in), padding `kernel / 2` on every side.
    Conv {
        /// `[out, in / groups, k, k]`, row-major.
        weight: Vec<f32>,
        /// Its dimensions.
        dims: [usize; 4],
        /// `[out]`.
        bias: Vec<f32>,
        /// Spatial stride.
        stride: usize,
        /// Groups (the channel count for a depthwise conv).
        groups: usize,
    },
    /// An element-wise activation.
    Act(Act),
    /// Element-wise sum of two values of one shape (a residual).
    Add,
    /// A value `[C, H, W]` scaled per channel by a `[C, 1, 1]` value (squeeze-excite).
    Mul,
    /// 3x3 max pooling, stride 2, padding 1.
    MaxPool,
    /// Mean over the spatial dimensions, to `[C, 1, 1]`.
    GlobalAvgPool,
    /// Fully connected layer on a `[C, 1, 1]` value: `weight @ x + bias`.
    Linear {
        /// `[out, in]`, row-major.
        weight: Vec<f32>,
        /// Its dimensions.
        dims: [usize; 2],
        /// `[out]`.
        bias: Vec<f32>,
    },
}

impl Graph {
    /// The graph of `net`'s active sub-network for `resolution x resolution` images.
    pub fn of(net: &Net, resolution: usize) -> Result<Self, DeployError> {
        // A plain copy at the active widths: every weight is then whole.
        let net = net.export();
        let spec = net.spec();
        let mut g = Builder {
            graph: Graph {
                input: [spec.in_channels, resolution, resolution],
                nodes: Vec::new(),
            },
        };
        let mut x = g.conv_layer("stem", &net.stem, 0)?;
        if spec.stem.max_pool {
            let [c, h, w] = g.shape(x);
            let (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
            x = g.push("stem.pool", Op::MaxPool, vec![x], [c, h, w]);
        }
        if let Some(first) = &net.first {
            x = g.separable("first", first, x)?;
        }
        for (i, block) in net.blocks.iter().enumerate() {
            x = g.block(&format!("blocks.{i}"), block, x)?;
        }
        if let Some(conv) = &net.head_conv {
            x = g.conv_layer("head_conv", conv, x)?;
        }
        let c = g.shape(x)[0];
        x = g.push("pool", Op::GlobalAvgPool, vec![x], [c, 1, 1]);
        if let Some(conv) = &net.post_pool_conv {
            x = g.conv_layer("post_pool_conv", conv, x)?;
        }
        let weight = host(net.classifier.weight.val(), "classifier.weight")?;
        let bias = host(net.classifier.bias.val(), "classifier.bias")?;
        let out = bias.len();
        let dims = [out, g.shape(x)[0]];
        g.push(
            "classifier",
            Op::Linear { weight, dims, bias },
            vec![x],
            [out, 1, 1],
        );
        Ok(g.graph)
    }

    /// The shape of value `v`.
    pub fn shape(&self, v: usize) -> Shape {
        if v == 0 {
            self.input
        } else {
            self.nodes[v - 1].shape
        }
    }

    /// The output value (the logits).
    pub fn output(&self) -> usize {
        self.nodes.len()
    }

    /// Multiply-adds of the convolutions and the classifier for one image (the paper's
    /// count: the squeeze-excite scaling and the residual sums are not MACs).
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv { dims, .. } => {
                    let [_, h, w] = n.shape;
                    (dims.iter().product::<usize>() * h * w) as u64
                }
                Op::Linear { dims, .. } => (dims[0] * dims[1]) as u64,
                _ => 0,
            })
            .sum()
    }
}

struct Builder {
    graph: Graph,
}

impl Builder {
    fn shape(&self, v: usize) -> Shape {
        self.graph.shape(v)
    }

    fn push(&mut self, name: &str, op: Op, inputs: Vec<usize>, shape: Shape) -> usize {
        self.graph.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            shape,
        });
        self.graph.nodes.len()
    }

    /// A conv of a plain net (bias or none) with `scale` and `shift` per output channel
    /// folded in: `w * scale`, `(b - 0) * scale + shift`.
    fn conv(
        &mut self,
        name: &str,
        conv: &DynConv2d,
        fold: Option<(Vec<f64>, Vec<f64>)>,
        x: usize,
    ) -> Result<usize, DeployError> {
        let dims = conv.weight.val().dims();
        let mut weight = host(conv.weight.val(), &format!("{name}.weight"))?;
        let mut bias = match &conv.bias {
            Some(b) => host(b.val(), &format!("{name}.bias"))?,
            None => vec![0.0; dims[0]],
        };
        if let Some((scale, shift)) = fold {
            let per_out = weight.len() / dims[0];
            for (o, chunk) in weight.chunks_mut(per_out).enumerate() {
                for v in chunk {
                    *v = (*v as f64 * scale[o]) as f32;
                }
                bias[o] = (bias[o] as f64 * scale[o] + shift[o]) as f32;
            }
        }
        let [_, h, w] = self.shape(x);
        let (k, s) = (dims[2], conv.stride);
        let size = |n: usize| (n + 2 * (k / 2) - k) / s + 1;
        let groups = if conv.depthwise { dims[0] } else { 1 };
        let op = Op::Conv {
            weight,
            dims,
            bias,
            stride: s,
            groups,
        };
        Ok(self.push(name, op, vec![x], [dims[0], size(h), size(w)]))
    }

    /// Conv, BN folded into it, then the activation.
    fn conv_layer(
        &mut self,
        name: &str,
        layer: &ConvLayer,
        x: usize,
    ) -> Result<usize, DeployError> {
        let fold = match &layer.bn {
            Some(bn) => {
                let read = |t: Tensor<1>, what: &str| -> Result<Vec<f64>, DeployError> {
                    let v = host(t, &format!("{name}.bn.{what}"))?;
                    Ok(v.into_iter().map(f64::from).collect())
                };
                let gamma = read(bn.gamma.val(), "gamma")?;
                let beta = read(bn.beta.val(), "beta")?;
                let mean = read(bn.running_mean.value_sync(), "running_mean")?;
                let var = read(bn.running_var.value_sync(), "running_var")?;
                let scale: Vec<f64> = gamma
                    .iter()
                    .zip(&var)
                    .map(|(g, v)| g / (v + bn.eps).sqrt())
                    .collect();
                let shift = beta
                    .iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((b, m), s)| b - m * s)
                    .collect();
                Some((scale, shift))
            }
            None => None,
        };
        let y = self.conv(name, &layer.conv, fold, x)?;
        Ok(self.act(name, layer.act, y))
    }

    fn act(&mut self, name: &str, act: Option<Act>, x: usize) -> usize {
        match act {
            Some(a) => {
                let shape = self.shape(x);
                self.push(&format!("{name}.act"), Op::Act(a), vec![x], shape)
            }
            None => x,
        }
    }

    fn add(&mut self, name: &str, a: usize, b: usize) -> usize {
        let shape = self.shape(a);
        self.push(&format!("{name}.add"), Op::Add, vec![a, b], shape)
    }

    fn separable(&mut self, name: &str, b: &DsConv, x: usize) -> Result<usize, DeployError> {
        let y = self.conv_layer(&format!("{name}.depth"), &b.depth, x)?;
        let y = self.conv_layer(&format!("{name}.point"), &b.point, y)?;
        Ok(if b.identity { self.add(name, y, x) } else { y })
    }

    fn se(&mut self, name: &str, se: &DynSe, x: usize) -> Result<usize, DeployError> {
        let shape = self.shape(x);
        let pooled = self.push(
            &format!("{name}.pool"),
            Op::GlobalAvgPool,
            vec![x],
            [shape[0], 1, 1],
        );
        let r = self.conv(&format!("{name}.reduce"), &se.reduce, None, pooled)?;
        let r = self.act(&format!("{name}.reduce"), Some(se.act), r);
        let e = self.conv(&format!("{name}.expand"), &se.expand, None, r)?;
        let e = self.act(&format!("{name}.expand"), Some(Act::HSigmoid), e);
        Ok(self.push(&format!("{name}.scale"), Op::Mul, vec![x, e], shape))
    }

    fn block(&mut self, name: &str, block: &Block, x: usize) -> Result<usize, DeployError> {
        match block {
            Block::MbConv(b) => {
                let y = self.conv_layer(&format!("{name}.inverted"), &b.inverted, x)?;
                let mut y = self.conv_layer(&format!("{name}.depth"), &b.depth, y)?;
                if let Some(se) = &b.se {
                    y = self.se(&format!("{name}.se"), se, y)?;
                }
                let y = self.conv_layer(&format!("{name}.point"), &b.point, y)?;
                Ok(if b.identity { self.add(name, y, x) } else { y })
            }
            Block::Bottleneck(b) => {
                let y = self.conv_layer(&format!("{name}.conv1"), &b.conv1, x)?;
                let y = self.conv_layer(&format!("{name}.conv2"), &b.conv2, y)?;
                let y = self.conv_layer(&format!("{name}.conv3"), &b.conv3, y)?;
                let shortcut = match &b.downsample {
                    Some(ds) => self.conv_layer(&format!("{name}.downsample"), ds, x)?,
                    None => x,
                };
                let sum = self.add(name, y, shortcut);
                Ok(self.act(name, Some(Act::Relu), sum))
            }
        }
    }
}

/// A tensor's values on the host.
fn host<const D: usize>(t: Tensor<D>, name: &str) -> Result<Vec<f32>, DeployError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DeployError::Read {
            name: name.to_string(),
            message: format!("{e:?}"),
        })
}
