//! `netaug profile`: params and MACs of a zoo network, or of a detector on it.

use anyhow::Result;
use netaug_ops::profile::{self, ProfileOptions};

use crate::classify;

/// Arguments of `netaug profile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    options: ProfileOptions,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
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

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let options = &args.options;
    if args.spec {
        let spec = profile::spec(options).map_err(classify)?;
        return outln!("{}", serde_json::to_string_pretty(&spec)?);
    }
    if let Some(n) = args.arches {
        let arches = profile::arches(options, n).map_err(classify)?;
        return outln!("{}", serde_json::to_string(&arches)?);
    }
    let p = profile::profile(options).map_err(classify)?;
    if args.json {
        outln!("{}", serde_json::to_string(&p)?)
    } else {
        outln!("{p}")
    }
}
