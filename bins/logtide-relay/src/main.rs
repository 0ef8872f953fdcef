//! `logtide-relay`: reads logtide's Kinesis stream and writes the events to S3, files or
//! the console, checkpointing only what every sink accepted.
//!
//! This binary only parses arguments, loads the configuration and hands over to
//! `logtide-pipeline`; see `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use logtide_pipeline::{run_relay, RelayConfig};

/// Relays a Kinesis stream to S3, files and the console. Without a subcommand, runs the
/// relay (`run`).
#[derive(Debug, Parser)]
#[command(
    name = "logtide-relay",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: ConfigArg,
}

/// The configuration file option.
#[derive(Clone, Debug, Args)]
struct ConfigArg {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "config", default_value = "relay.yml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Relay until SIGTERM or SIGINT (the default).
    Run(ConfigArg),
    /// Check something without running.
    #[command(subcommand)]
    Test(TestCommand),
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    /// Load and validate the configuration file, then exit.
    Config(ConfigArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        None => run(&cli.run),
        Some(Command::Run(c)) => run(&c),
        Some(Command::Test(TestCommand::Config(c))) => RelayConfig::load(&c.config)
            .map(|_| eprintln!("{}: configuration OK", c.config.display()))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logtide-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(c: &ConfigArg) -> anyhow::Result<()> {
    let config = RelayConfig::load(&c.config)?;
    let stop = stop_on_signals()?;
    let summary = run_relay(&config, stop)?;
    tracing::info!(
        records = summary.consumer.records,
        events = summary.consumer.events,
        dead_letters =
            summary.consumer.dead_letters_undecodable + summary.consumer.dead_letters_incomplete,
        s3_objects = summary.s3.as_ref().map(|s| s.objects),
        "relay stopped"
    );
    Ok(())
}

/// Sets `stop` on SIGTERM or SIGINT; a second signal exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot install signal handlers")?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if flag.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "logtide-relay: second signal {sig}: exiting without a clean shutdown"
                    );
                    std::process::exit(1);
                }
                tracing::info!(
                    signal = sig,
                    "stopping: flushing, checkpointing, releasing leases"
                );
            }
        })
        .context("cannot start the signal thread")?;
    Ok(stop)
}
