//! `netaug`: a thin command line over the netaug crates. Argument parsing and wiring only.

mod bench;
mod data;
mod profile;

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
    /// Inspect datasets.
    #[command(subcommand)]
    Data(data::Command),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// Errors of the user's making (bad names, values, files): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETAUG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Profile(args) => profile::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
