//! `netaug train`, `netaug eval`, `netaug export`: arguments over netaug-trainer and
//! netaug-ops, with a progress bar per phase (drawn only on a terminal).

use std::path::PathBuf;

use anyhow::Result;
use netaug_ops::eval::{EvalOptions, evaluate};
use netaug_ops::export::{self, ExportOptions, Official, Source};
use netaug_trainer::{RunConfig, TrainError, TrainOptions};

use crate::classify;
use crate::progress::Bars;

/// `netaug train` arguments.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run config (YAML; see experiments/).
    pub config: PathBuf,
    /// The run folder (config.yaml, metrics.jsonl, summary.json, checkpoints/, exported/).
    #[arg(long)]
    pub out: PathBuf,
    /// Override a config key, e.g. `--set run.epochs=3` (repeatable; `null` removes).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bars or epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Stop after epoch N (warm-up included) with status `paused`, under the schedule of
    /// all the run's epochs; `--resume` continues it (what successive halving runs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pause_at: Option<u64>,
}

/// `netaug eval` arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    options: EvalOptions,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `netaug export` arguments.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// A run folder or checkpoint folder.
    #[arg(
        long,
        required_unless_present = "from_pth",
        conflicts_with = "from_pth"
    )]
    pub checkpoint: Option<PathBuf>,
    /// An official NetAug PyTorch checkpoint (`.pth`/`.pt`): a plain net or a NetAug
    /// supernet, whose target net is exported.
    #[arg(long, value_name = "FILE", requires = "model")]
    pub from_pth: Option<PathBuf>,
    /// With --from-pth: the zoo net the file holds (tinymbv2, mbv2-0.35, ...).
    #[arg(long)]
    pub model: Option<String>,
    /// With --from-pth: the class count the file must have.
    #[arg(long)]
    pub classes: Option<usize>,
    /// With --from-pth: the input channels the file must have.
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// The input side for --from-pth and for a checkpoint outside a run folder (a run's
    /// own resolution wins): the params/MACs line, and the ONNX input with --format onnx.
    #[arg(long, default_value_t = netaug_ops::DEFAULT_RESOLUTION)]
    pub resolution: usize,
    /// With --from-pth, for a supernet: its expand factors (default: tried plain, then
    /// the paper's lists for --model).
    #[arg(long, value_delimiter = ',', requires = "aug_width_mult_list")]
    pub aug_expand_list: Option<Vec<f64>>,
    /// With --from-pth, for a supernet: its width factors.
    #[arg(long, value_delimiter = ',', requires = "aug_expand_list")]
    pub aug_width_mult_list: Option<Vec<f64>>,
    /// Where to write the tiny net: a folder (model.json, weights.bpk), or with
    /// `--format onnx` a file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing `--out`; the old one goes only once the new one is whole.
    #[arg(long)]
    pub force: bool,
    /// `folder` (what `eval` and `train`'s `init_from` read) or `onnx` (a file for ONNX
    /// runtimes: BN folded, opset 13, input normalized as the run's evaluation).
    #[arg(long, value_enum, default_value_t = ExportFormat::Folder)]
    pub format: ExportFormat,
}

/// What `netaug export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A folder with model.json and weights.bpk.
    Folder,
    /// One ONNX file.
    Onnx,
}

/// Runs `netaug train`.
pub fn train(args: TrainArgs) -> Result<()> {
    let config =
        RunConfig::load(&args.config, &args.set).map_err(|e| classify(TrainError::from(e)))?;
    let (world, ranks) = crate::ranks::join()?;
    crate::signals::stop_runs_on_signals()?;
    let options = TrainOptions {
        resume: args.resume,
        pause_at: args.pause_at.map(|n| n as usize),
        world: world.clone(),
    };
    // Rank 0 alone shows progress and the result; the other ranks train silently.
    let mut bars = Bars::new(args.quiet || !world.leads());
    let result = netaug_trainer::train(&config, &args.out, &options, &mut bars);
    let summary = match (result, &ranks) {
        (Ok(summary), _) => summary,
        (Err(e), Some(ranks)) if !world.stops_together(&e) => {
            // The other ranks would wait on this one for ever: end them all.
            let code = crate::report_error(&classify(e).context(format!("rank {}", world.rank())));
            ranks.abort(code)
        }
        (Err(e), _) => return Err(classify(e)),
    };
    if !world.leads() {
        return Ok(());
    }
    let paused = match summary.status {
        netaug_trainer::Status::Paused => {
            format!(
                " (paused after epoch {})",
                args.pause_at.unwrap_or_default()
            )
        }
        _ => String::new(),
    };
    outln!(
        "{}: {} {} {}{paused}, {:.0} img/s, {:.0} s",
        args.out.display(),
        summary.model,
        summary.method,
        summary.result_line(),
        summary.images_per_second,
        summary.wall_seconds
    )
}

/// Runs `netaug eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let report = evaluate(&args.options, &mut Bars::new(args.json)).map_err(classify)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)
    } else {
        outln!("{report}")
    }
}

/// Runs `netaug export`.
pub fn export(args: ExportArgs) -> Result<()> {
    let source = match (args.checkpoint, args.from_pth, args.model) {
        (Some(checkpoint), _, _) => Source::Checkpoint(checkpoint),
        (None, Some(path), Some(model)) => Source::Official(Official {
            path,
            model,
            classes: args.classes,
            in_channels: args.in_channels,
            factors: args.aug_expand_list.zip(args.aug_width_mult_list),
        }),
        _ => return Err(crate::UsageError("--from-pth needs --model".into()).into()),
    };
    let options = ExportOptions {
        source,
        resolution: args.resolution,
        out: args.out,
        force: args.force,
        format: match args.format {
            ExportFormat::Folder => export::Format::Folder,
            ExportFormat::Onnx => export::Format::Onnx,
        },
    };
    let report = export::export(&options).map_err(classify)?;
    outln!("{report}")
}
