//! `netaug det-eval`: COCO (pycocotools' 12 numbers) or Pascal VOC (per-class AP, mAP at
//! IoU 0.5) of a detections file against ground truth.

use std::path::PathBuf;

use anyhow::Result;
use netaug_deteval::voc::Metric;
use netaug_deteval::{EvalError, coco, io, voc};

use crate::UsageError;

/// `netaug det-eval` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Ground truth: a COCO instances JSON; for `--format voc` also a VOC folder (holding
    /// VOCdevkit/ or VOC<year>/).
    #[arg(long)]
    gt: PathBuf,
    /// Detections: a COCO results JSON, a list of {image_id, category_id, bbox: [x, y, w,
    /// h], score} (VOC folders: image_id is the file number, category_id the class's
    /// position in the VOC list plus one).
    #[arg(long)]
    dt: PathBuf,
    /// The metric.
    #[arg(long, value_enum)]
    format: Format,
    /// VOC: the VOC2007 11-point metric (`11point`) or VOC2010+ area (`area`).
    #[arg(long, value_enum, default_value_t = VocMetric::Area)]
    voc_metric: VocMetric,
    /// VOC folder: the image set, YEAR/SET.
    #[arg(long, default_value = "2007/test")]
    voc_set: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Which evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// COCOeval (bbox).
    Coco,
    /// Pascal VOC AP at IoU 0.5.
    Voc,
}

/// VOC interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VocMetric {
    /// VOC2007 11-point.
    #[value(name = "11point")]
    ElevenPoint,
    /// VOC2010+ area under the precision envelope.
    Area,
}

fn input(e: EvalError) -> anyhow::Error {
    UsageError(Box::new(e)).into()
}

/// Runs `netaug det-eval`.
pub fn run(args: Args) -> Result<()> {
    let dets = io::detections(&args.dt).map_err(input)?;
    match args.format {
        Format::Coco => {
            let gt = io::coco_gt(&args.gt).map_err(input)?;
            let s = coco::evaluate(&gt, &dets).map_err(input)?;
            if args.json {
                outln!("{}", s.to_json())?;
            } else {
                outln!("{s}")?;
            }
        }
        Format::Voc => {
            let gt = if args.gt.is_dir() {
                let (year, set) = args.voc_set.split_once('/').ok_or_else(|| {
                    UsageError(
                        format!(
                            "--voc-set {}: expected YEAR/SET, e.g. 2007/test",
                            args.voc_set
                        )
                        .into(),
                    )
                })?;
                io::voc_gt_from_folder(&args.gt, year, set).map_err(input)?
            } else {
                io::voc_gt_from_coco(&args.gt).map_err(input)?
            };
            let metric = match args.voc_metric {
                VocMetric::ElevenPoint => Metric::ElevenPoint,
                VocMetric::Area => Metric::Area,
            };
            let r = voc::evaluate(&gt, &dets, metric).map_err(input)?;
            if args.json {
                outln!("{}", r.to_json())?;
            } else {
                for (name, ap) in &r.per_class {
                    match ap {
                        Some(ap) => outln!("  {name:<16} AP50 {:>6.2}", ap * 100.0)?,
                        None => outln!("  {name:<16} AP50      - (no ground truth)")?,
                    }
                }
                outln!(
                    "mAP50 {:.2} ({:?} metric)",
                    r.map50 * 100.0,
                    args.voc_metric
                )?;
            }
        }
    }
    Ok(())
}
