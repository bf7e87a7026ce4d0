//! `netaug profile`: params and MACs of a zoo network, or of a detector on it.

use anyhow::Result;
use burn::tensor::Device;
use netaug_model::{AugFactors, Detector, InitKind, Net, zoo};
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
    /// Print the network's description (the NetSpec JSON: widths, kernels, strides,
    /// activations) instead, e.g. for bench/torch_train.py to build the same net.
    #[arg(long, conflicts_with = "detector")]
    spec: bool,
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
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    let (factors, device) = (AugFactors::none(), Device::flex());
    let p = if args.detector {
        let det = Detector::new(
            &spec,
            &factors,
            args.classes,
            3,
            InitKind::HeFout,
            0,
            &device,
        );
        det.profile(args.resolution)
    } else {
        Net::new(&spec, &factors, InitKind::HeFout, 0, &device).profile(args.resolution)
    };
    if args.json {
        let out = Output {
            model: &args.model,
            detector: args.detector,
            resolution: args.resolution,
            classes: args.classes,
            params: p.params,
            macs: p.macs,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "{}{}  resolution {}  classes {}\n  params {:>14}  ({:.2}M)\n  MACs   {:>14}  ({:.1}M)",
            args.model,
            if args.detector { " detector" } else { "" },
            args.resolution,
            args.classes,
            p.params,
            p.params as f64 / 1e6,
            p.macs,
            p.macs as f64 / 1e6
        );
    }
    Ok(())
}
