//! `netaug`: a thin command line over the netaug crates. Argument parsing and wiring only.

/// `println!` that returns a failed write as an error (exit 1, as every failed write)
/// instead of panicking: stdout may be a full disk. (A closed pipe ends the process
/// quietly through SIGPIPE, see `signals`.)
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(crate::stdout_error)
    }};
}

/// `eprintln!` that never fails: a dead stderr never stops the work (a training run goes
/// on and writes its files).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod bench;
mod data;
mod detect;
mod deteval;
mod profile;
mod progress;
mod ranks;
mod report;
mod signals;
mod sweep;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train tiny neural networks with Network Augmentation (NetAug, ICLR 2022).
#[derive(Parser)]
#[command(name = "netaug", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the params and MACs of a zoo network.
    #[command(
        after_help = "Example:\n  netaug profile --model mbv2-0.35 --resolution 160\n  \
                            netaug profile --model tinymbv2 --resolution 144 --json"
    )]
    Profile(profile::Args),
    /// Train one run from a YAML config.
    #[command(
        after_help = "Examples:\n  netaug train experiments/runs/fashion-mnist-netaug.yaml --out results/fm-netaug\n  \
                      netaug train experiments/runs/fashion-mnist-netaug.yaml --out results/fm-netaug --resume\n  \
                      netaug train CONFIG.yaml --out DIR --set run.epochs=3 --set netaug=null"
    )]
    Train(train::TrainArgs),
    /// Top-1/top-5 of a saved network on a dataset split.
    #[command(
        after_help = "Examples:\n  netaug eval --checkpoint results/fm-netaug\n  \
                      netaug eval --checkpoint results/fm-netaug/checkpoints/best --json\n  \
                      netaug eval --checkpoint DIR/exported --dataset food101 --root /data/food-101 --image-size 160"
    )]
    Eval(train::EvalArgs),
    /// Write the target (tiny) net of a checkpoint as a plain static network.
    #[command(
        after_help = "Example:\n  netaug export --checkpoint results/fm-netaug/checkpoints/best --out tiny/"
    )]
    Export(train::ExportArgs),
    /// Run a sweep: every combination of a grid of run configs, in parallel, resumable.
    #[command(
        after_help = "Examples:\n  netaug sweep experiments/fashion-mnist.yaml --out results/fashion-mnist\n  \
                      netaug sweep experiments/imagenet.yaml --set data.root=/data/imagenet --dry-run"
    )]
    Sweep(sweep::Args),
    /// Aggregate a sweep's runs into summary.csv, paper-style tables and plots.
    #[command(after_help = "Examples:\n  netaug report results/fashion-mnist\n  \
                      netaug report results/imagenet --paper experiments/paper/results.csv")]
    Report(report::Args),
    /// Run a saved detector on images; write its detections as a COCO results JSON.
    #[command(
        after_help = "Examples:\n  netaug detect --checkpoint results/pasted-netaug --out dets.json\n  \
                      netaug detect --checkpoint DIR/exported --images photos/ --image-size 320 --out dets.json"
    )]
    Detect(detect::Args),
    /// Detection metrics of a detections file: COCO (pycocotools' 12 numbers) or VOC AP.
    #[command(
        name = "det-eval",
        after_help = "Examples:\n  netaug det-eval --gt instances_val2017.json --dt dets.json --format coco --json\n  \
                      netaug det-eval --gt /data/VOCdevkit --voc-set 2007/test --dt dets.json --format voc --voc-metric 11point"
    )]
    DetEval(deteval::Args),
    /// Inspect datasets.
    #[command(subcommand)]
    Data(data::Command),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  netaug completions bash > ~/.local/share/bash-completion/completions/netaug\n  \
                      netaug completions zsh > ~/.zfunc/_netaug\n  \
                      netaug completions fish > ~/.config/fish/completions/netaug.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Errors of the user's making (bad names, values, files): exit code 2. It keeps the
/// library error it wraps, and so that error's chain of causes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(pub Box<dyn std::error::Error + Send + Sync>);

/// Library errors that know whether the user's input is at fault.
pub trait InputError: std::error::Error + Send + Sync + 'static {
    /// Whether the user's input is at fault.
    fn is_input(&self) -> bool;
}

/// Each library error says itself whether the input is at fault.
macro_rules! input_errors {
    ($($error:ty),*) => {$(
        impl InputError for $error {
            fn is_input(&self) -> bool {
                <$error>::is_input(self)
            }
        }
    )*};
}

input_errors!(
    netaug_trainer::TrainError,
    netaug_sweep::SweepError,
    netaug_analysis::AnalysisError,
    netaug_ops::OpsError
);

/// A failed write to stdout, as an error naming it.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("writing to stdout")
}

/// Input errors become [`UsageError`] (exit 2); the rest stay errors (exit 1).
pub fn classify<E: InputError>(e: E) -> anyhow::Error {
    if e.is_input() {
        UsageError(Box::new(e)).into()
    } else {
        e.into()
    }
}

/// The error and its causes on one line, `error: cause: cause`. A cause whose text the
/// line already holds (an error that shows its source in its own message) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line = format!("{line}: {text}");
        }
    }
    line
}

fn main() -> ExitCode {
    signals::default_sigpipe();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETAUG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file (a Slurm task's) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The training steps run on this thread; in the pool, their parallel loops need no
    // thread wake-ups through the OS (see `join_pool`).
    if let Err(e) = netaug_kernels::join_pool() {
        tracing::debug!("rayon's global pool: {e}");
    }
    let cli = Cli::parse();
    if let Err(why) = netaug_data::image::max_pixels_from_env() {
        errln!("error: {why}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Profile(args) => profile::run(args),
        Command::Train(args) => train::train(args),
        Command::Eval(args) => train::eval(args),
        Command::Export(args) => train::export(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Report(args) => report::run(args),
        Command::Detect(args) => detect::run(args),
        Command::DetEval(args) => deteval::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // clap_complete panics on a failed write: it writes to memory, we to stdout.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "netaug", &mut script);
            use std::io::Write as _;
            std::io::stdout()
                .lock()
                .write_all(&script)
                .and_then(|()| std::io::stdout().lock().flush())
                .map_err(stdout_error)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(report_error(&err)),
    }
}

/// Prints `err` as one `error:` line and returns the exit code it ends the process with:
/// 128 + the signal for a stopped run, 2 for the user's input, else 1.
fn report_error(err: &anyhow::Error) -> u8 {
    errln!("error: {}", one_line(err));
    if let Some(netaug_trainer::TrainError::Interrupted(signal)) = err.downcast_ref() {
        signals::exit_code(*signal)
    } else if err.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}
