//! `netaug profile`: params and MACs of a zoo network, or of a detector on it.

use anyhow::Result;
use burn::tensor::Device;
use netaug_deploy::memory::LayerMemory;
use netaug_deploy::{Graph, Memory};
use netaug_model::{Active, ActiveArch, AugFactors, Detector, InitKind, Net, zoo};
use serde::Serialize;

use crate::UsageError;

/// Arguments of `netaug profile`.
#[derive(clap::Args)]
pub struct Args {
    /// Zoo name: tinymbv2, mbv2-<w>, proxylessnas-<w>, mcunet, mbv3-<w>, resnet50.
    #[arg(long)]
    model: String,
    /// Input resolution in pixels (square images).
    #[arg(long, default_value_t = 224)]
    resolution: usize,
    /// Classifier outputs.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Image channels (3 for RGB, 1 for grayscale).
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// Profile the YOLOv3-style detector on this backbone instead (`--classes` are then
    /// the detector's, 3 anchors per scale).
    #[arg(long)]
    detector: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// With the microcontroller memory per layer (flash, and SRAM alive while it runs).
    #[arg(long, conflicts_with = "detector")]
    layers: bool,
    /// Print the network's description (the NetSpec JSON: widths, kernels, strides,
    /// activations) instead, e.g. for bench/torch_train.py to build the same net.
    #[arg(long, conflicts_with = "detector")]
    spec: bool,
    /// Print the widest and the first N augmented sub-networks of the NetAug supernet
    /// (the paper's factor lists for the model), drawn as `netaug bench train --netaug`
    /// draws them, one per step: what bench/torch_train.py's NetAug step runs.
    #[arg(long, value_name = "N", conflicts_with_all = ["detector", "spec"])]
    arches: Option<usize>,
}

#[derive(Serialize)]
struct Arches {
    model: String,
    /// The target: every width at its base value.
    min: ActiveArch,
    /// The widest sub-network (the supernet's weight shapes).
    max: ActiveArch,
    /// One augmented sub-network per training step.
    sampled: Vec<ActiveArch>,
}

#[derive(Serialize)]
struct Output<'a> {
    model: &'a str,
    // Only with --detector, so the classifier's output keeps its contract shape.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    detector: bool,
    resolution: usize,
    classes: usize,
    params: u64,
    macs: u64,
    // int8 deployment memory of a classifier (netaug-deploy's model).
    #[serde(skip_serializing_if = "Option::is_none")]
    flash_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_sram_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<Vec<LayerMemory>>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    if args.resolution < 8 {
        return Err(UsageError(format!(
            "--resolution {}: must be at least 8 pixels",
            args.resolution
        ))
        .into());
    }
    let spec = zoo::spec(&args.model, args.classes, args.in_channels)
        .map_err(|e| UsageError(e.to_string()))?;
    if args.spec {
        outln!("{}", serde_json::to_string_pretty(&spec)?)?;
        return Ok(());
    }
    if let Some(n) = args.arches {
        let (e, w) = zoo::paper_factors(&spec.name);
        let factors = AugFactors::new(e, w)?;
        let net = Net::new(&spec, &factors, InitKind::HeFout, 0, &Device::flex());
        let mut rng = netaug_trainer::bench::arch_rng();
        let out = Arches {
            model: args.model,
            min: net.sample(Active::Min),
            max: net.sample(Active::Max),
            sampled: (0..n)
                .map(|_| net.sample(Active::Random(&mut rng)))
                .collect(),
        };
        outln!("{}", serde_json::to_string(&out)?)?;
        return Ok(());
    }
    let (factors, device) = (AugFactors::none(), Device::flex());
    let (p, memory) = if args.detector {
        let det = Detector::new(
            &spec,
            &factors,
            args.classes,
            3,
            InitKind::HeFout,
            0,
            &device,
        );
        (det.profile(args.resolution), None)
    } else {
        let net = Net::new(&spec, &factors, InitKind::HeFout, 0, &device);
        let memory = Memory::of(&Graph::of(&net, args.resolution)?);
        (net.profile(args.resolution), Some(memory))
    };
    if args.json {
        let out = Output {
            model: &args.model,
            detector: args.detector,
            resolution: args.resolution,
            classes: args.classes,
            params: p.params,
            macs: p.macs,
            flash_bytes: memory.as_ref().map(|m| m.flash_bytes),
            peak_sram_bytes: memory.as_ref().map(|m| m.peak_sram_bytes),
            layers: memory.filter(|_| args.layers).map(|m| m.layers),
        };
        outln!("{}", serde_json::to_string(&out)?)?;
    } else {
        outln!(
            "{}{}  resolution {}  classes {}\n  params {:>14}  ({:.2}M)\n  MACs   {:>14}  ({:.1}M)",
            args.model,
            if args.detector { " detector" } else { "" },
            args.resolution,
            args.classes,
            p.params,
            p.params as f64 / 1e6,
            p.macs,
            p.macs as f64 / 1e6
        )?;
        if let Some(m) = memory {
            outln!(
                "  flash  {:>14}  ({:.1} KB, int8 weights + int32 biases)\n  SRAM   {:>14}  \
                 ({:.1} KB peak, int8 activations, layer by layer)",
                m.flash_bytes,
                m.flash_bytes as f64 / 1024.0,
                m.peak_sram_bytes,
                m.peak_sram_bytes as f64 / 1024.0
            )?;
            if args.layers {
                outln!("  {:<32} {:>12} {:>12}", "layer", "flash (B)", "SRAM (B)")?;
                for l in &m.layers {
                    outln!(
                        "  {:<32} {:>12} {:>12}",
                        l.name,
                        l.flash_bytes,
                        l.sram_bytes
                    )?;
                }
            }
        }
    }
    Ok(())
}
