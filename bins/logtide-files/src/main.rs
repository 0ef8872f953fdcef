//! `logtide-files`: the node agent that tails container logs.
//!
//! This binary only parses arguments, loads the configuration and hands over to the
//! library crates; see `--help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logtide_pipeline::cli::{self, ConfigFile};
use logtide_pipeline::process::{init_logging, stop_on_signals};
use logtide_pipeline::{run_files, FilesConfig};

mod k8s_path;
mod parse;
mod process;
mod registry;
mod status;

/// Events are built on the input threads and freed on the output thread; this allocator
/// handles that pattern without lock contention or heap fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ships Kubernetes container logs. Without a subcommand, runs the agent (`run`).
#[derive(Debug, Parser)]
#[command(
    name = "logtide-files",
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

/// logtide-files' configuration file on the command line.
#[derive(Clone, Debug)]
struct Files;

impl ConfigFile for Files {
    const DEFAULT: &'static str = "logtide-files.yml";
    const HELP: &'static str =
        "Configuration file (YAML; Filebeat's filebeat.yml layout is accepted)";
    const STATUS_HELP: &'static str =
        "Configuration file: its registry and its `http` endpoint are read";
}

/// The configuration file option shared by the subcommands.
type ConfigArg = cli::ConfigArg<Files>;

#[derive(Debug, Subcommand)]
enum Command {
    /// Tail the configured files and ship their entries (the default).
    Run(ConfigArg),
    /// Check something without running.
    #[command(subcommand)]
    Test(TestCommand),
    /// Inspect or import the registry of saved read positions.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Parse container log lines and print each as JSON.
    Parse(parse::ParseArgs),
    /// Run a configuration's processors over NDJSON events from standard input.
    Process(process::ProcessArgs),
    /// Print the Kubernetes metadata (pod, namespace, container, …) each log path carries.
    K8sPath(k8s_path::K8sPathArgs),
    /// Per file: what is shipped, what is behind, what was lost and why (from the registry,
    /// the files and the running agent's `http` endpoint). The registry as saved is
    /// `registry show`.
    Status(cli::StatusArgs<Files>),
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    /// Load and validate a configuration file, then print "Config OK".
    Config(ConfigArg),
}

fn run(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = FilesConfig::load(&config.config)?;
    let stop = stop_on_signals("logtide-files", "flushing and saving the registry")?;
    let summary = run_files(&config, stop)?;
    let events: u64 = summary.inputs.iter().map(|s| s.events).sum();
    tracing::info!(events, "stopped");
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => run(&args),
        Command::Test(TestCommand::Config(args)) => FilesConfig::load(&args.config)
            .map(|_| {
                println!("Config OK");
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
        Command::Registry(cmd) => registry::run(cmd),
        Command::Parse(args) => parse::run(&args),
        Command::Process(args) => process::run(&args),
        Command::K8sPath(args) => k8s_path::run(&args),
        Command::Status(args) => status::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logtide-files: {e:#}");
            ExitCode::FAILURE
        }
    }
}
