//! What a microcontroller needs to run a [`Graph`] at int8.
//!
//! - Flash: int8 weights and int32 biases of every convolution and of the classifier
//!   (quantization scales and the program itself are not counted).
//! - SRAM: a layer-by-layer schedule (as TFLite Micro runs a model): every value is an
//!   int8 buffer of `C x H x W` bytes, allocated when its node runs and freed after the
//!   last node that reads it; the input lives until its last reader too, and the logits
//!   to the end. Activations are fused into the node before them (they write in place).
//!   A node's SRAM is every buffer alive while it runs (its inputs, its output, and what
//!   later nodes still need, such as the saved input of a residual); the peak is the
//!   largest over the nodes.

use serde::Serialize;

use crate::graph::{Graph, Op};

/// Flash and SRAM of a graph at int8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// int8 weights + int32 biases, in bytes.
    pub flash_bytes: u64,
    /// The most SRAM any node needs, in bytes.
    pub peak_sram_bytes: u64,
    /// Per node, in execution order (fused activations left out).
    pub layers: Vec<LayerMemory>,
}

/// One node's share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerMemory {
    /// The node's name.
    pub name: String,
    /// Its flash (weights and biases), in bytes.
    pub flash_bytes: u64,
    /// SRAM alive while it runs, in bytes.
    pub sram_bytes: u64,
}

impl Memory {
    /// The memory of `graph`.
    pub fn of(graph: &Graph) -> Self {
        let n = graph.nodes.len();
        // The buffer each value lives in: its own, or (a fused activation) its input's.
        let mut buffer: Vec<usize> = (0..=n).collect();
        for (i, node) in graph.nodes.iter().enumerate() {
            if matches!(node.op, Op::Act(_)) {
                buffer[i + 1] = buffer[node.inputs[0]];
            }
        }
        let size = |v: usize| -> u64 { graph.shape(v).iter().product::<usize>() as u64 };
        // Each buffer: its bytes (of the value that allocated it), first and last node.
        let mut first = vec![usize::MAX; n + 1];
        let mut last = vec![0usize; n + 1];
        first[0] = 0;
        for (i, node) in graph.nodes.iter().enumerate() {
            let b = buffer[i + 1];
            first[b] = first[b].min(i);
            last[b] = last[b].max(i);
            for &v in &node.inputs {
                last[buffer[v]] = last[buffer[v]].max(i);
            }
        }
        last[buffer[n]] = n.saturating_sub(1);
        let mut layers = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            if let Op::Act(_) = node.op {
                continue;
            }
            let flash = match &node.op {
                Op::Conv { weight, bias, .. } | Op::Linear { weight, bias, .. } => {
                    weight.len() as u64 + 4 * bias.len() as u64
                }
                _ => 0,
            };
            let sram = (0..=n)
                .filter(|&b| buffer[b] == b && first[b] <= i && i <= last[b])
                .map(size)
                .sum();
            layers.push(LayerMemory {
                name: node.name.clone(),
                flash_bytes: flash,
                sram_bytes: sram,
            });
        }
        Self {
            flash_bytes: layers.iter().map(|l| l.flash_bytes).sum(),
            peak_sram_bytes: layers.iter().map(|l| l.sram_bytes).max().unwrap_or(0),
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;
    use netaug_model::layers::Act;

    fn node(name: &str, op: Op, inputs: Vec<usize>, shape: [usize; 3]) -> Node {
        Node {
            name: name.into(),
            op,
            inputs,
            shape,
        }
    }

    fn conv(out: usize, cin: usize) -> Op {
        Op::Conv {
            weight: vec![0.0; out * cin],
            dims: [out, cin, 1, 1],
            bias: vec![0.0; out],
            stride: 1,
            groups: 1,
        }
    }

    #[test]
    fn a_residual_keeps_its_input_alive_and_activations_take_no_buffer() {
        // input 4x8x8 (256) -> conv 16x8x8 (1024) -> relu -> conv 4x8x8 (256) -> add input.
        let g = Graph {
            input: [4, 8, 8],
            nodes: vec![
                node("expand", conv(16, 4), vec![0], [16, 8, 8]),
                node("expand.act", Op::Act(Act::Relu), vec![1], [16, 8, 8]),
                node("project", conv(4, 16), vec![2], [4, 8, 8]),
                node("add", Op::Add, vec![3, 0], [4, 8, 8]),
            ],
        };
        let m = Memory::of(&g);
        let sram: Vec<u64> = m.layers.iter().map(|l| l.sram_bytes).collect();
        // expand: input + its output; project: the saved input, the expanded map, its
        // output; add: the input, project's output and the sum.
        assert_eq!(sram, [256 + 1024, 256 + 1024 + 256, 256 + 256 + 256]);
        assert_eq!(m.peak_sram_bytes, 1536);
        assert_eq!(m.flash_bytes, (16 * 4 + 4 * 16) + (4 * 16 + 4 * 4));
    }
}
