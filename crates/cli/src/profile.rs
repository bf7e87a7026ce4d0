//! `netaug profile`: params and MACs of a zoo network.

use anyhow::Result;
use burn::tensor::Device;
use netaug_model::{AugFactors, InitKind, Net, zoo};
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
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    model: &'a str,
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
    let net = Net::new(
        &spec,
        &AugFactors::none(),
        InitKind::HeFout,
        0,
        &Device::flex(),
    );
    let p = net.profile(args.resolution);
    if args.json {
        let out = Output {
            model: &args.model,
            resolution: args.resolution,
            classes: args.classes,
            params: p.params,
            macs: p.macs,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "{}  resolution {}  classes {}\n  params {:>14}  ({:.2}M)\n  MACs   {:>14}  ({:.1}M)",
            args.model,
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
