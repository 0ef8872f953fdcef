//! `logtide-relay`: reads logtide's Kinesis stream and writes the events to S3, files or
//! the console, checkpointing only what every sink accepted.
//!
//! This binary only parses arguments, loads the configuration and hands over to
//! `logtide-pipeline`; see `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use logtide_pipeline::process::{init_logging, stop_on_signals};
use logtide_pipeline::{run_relay, RelayConfig};

mod status;

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
    /// Per shard: the checkpoint, its owner and how far the reading is behind (from the
    /// checkpoint store and the running relay's `http` endpoint).
    Status(status::StatusArgs),
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    /// Load and validate the configuration file, then exit.
    Config(ConfigArg),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        None => run(&cli.run),
        Some(Command::Run(c)) => run(&c),
        Some(Command::Test(TestCommand::Config(c))) => RelayConfig::load(&c.config)
            .map(|_| eprintln!("{}: configuration OK", c.config.display()))
            .map_err(anyhow::Error::from),
        Some(Command::Status(args)) => status::run(&args),
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
    let stop = stop_on_signals("logtide-relay", "flushing, checkpointing, releasing leases")?;
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
