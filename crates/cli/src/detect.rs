//! `netaug detect`: a saved detector on a folder of images or on its run's evaluation
//! split, written as a COCO results JSON (`[{image_id, category_id, bbox: [x, y, w, h],
//! score}]`) that `netaug det-eval` and pycocotools read.

use anyhow::Result;
use netaug_ops::detect::DetectOptions;

use crate::classify;
use crate::progress::Bars;

/// `netaug detect` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    options: DetectOptions,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `netaug detect`.
pub fn run(args: Args) -> Result<()> {
    let mut bars = Bars::new(args.quiet);
    let report = netaug_ops::detect::run(&args.options, &mut bars).map_err(classify)?;
    outln!("{report}")
}
