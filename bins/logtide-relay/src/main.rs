//! `logtide-relay`: reads logtide's Kinesis stream and writes the events to S3,
//! Elasticsearch, files or the console, checkpointing only what every sink accepted.
//! `setup` installs the Elasticsearch index templates; `mapping check` predicts
//! mapping conflicts of NDJSON documents.
//!
//! This binary only parses arguments, loads the configuration and hands over to
//! `logtide-pipeline`; see `--help`.

use std::io::{BufReader, BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use logtide_pipeline::alerts::test_rules;
use logtide_pipeline::cli::{self, ConfigFile};
use logtide_pipeline::process::{init_logging, stop_on_signals};
use logtide_pipeline::{mapping_check, run_relay, setup_elasticsearch, RelayConfig};

mod status;

/// Relays a Kinesis stream to S3, Elasticsearch, files and the console. Without a
/// subcommand, runs the relay (`run`).
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

/// logtide-relay's configuration file on the command line.
#[derive(Clone, Debug)]
struct Relay;

impl ConfigFile for Relay {
    const DEFAULT: &'static str = "relay.yml";
    const HELP: &'static str = "Configuration file (YAML)";
    const STATUS_HELP: &'static str =
        "Configuration file: its checkpoints and its `http` endpoint are read";
}

/// The configuration file option.
type ConfigArg = cli::ConfigArg<Relay>;

#[derive(Debug, Subcommand)]
enum Command {
    /// Relay until SIGTERM or SIGINT (the default).
    Run(ConfigArg),
    /// Check something without running.
    #[command(subcommand)]
    Test(TestCommand),
    /// Per shard: the checkpoint, its owner and how far the reading is behind (from the
    /// checkpoint store and the running relay's `http` endpoint).
    Status(cli::StatusArgs<Relay>),
    /// Install the Elasticsearch index template, the dead-letter index template and the
    /// ILM (Elasticsearch) or ISM (OpenSearch) policy of `sinks.elasticsearch`.
    Setup(ConfigArg),
    /// Elasticsearch mapping tools.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Alert rules.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Run rule files over NDJSON events from standard input and print the alerts that
    /// would fire (nothing is delivered).
    Test(RulesTestArgs),
}

#[derive(Debug, Args)]
struct RulesTestArgs {
    /// Rule files or directories of rule files.
    #[arg(required = true)]
    rules: Vec<PathBuf>,
    /// Print each alert as a JSON object on its own line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Read one JSON document per line on stdin; print, for each, whether Elasticsearch
    /// with dynamic mapping would index it as it is, and what the normalizer changes.
    Check(CheckArgs),
}

#[derive(Clone, Debug, Args)]
struct CheckArgs {
    /// Index template or index creation body (JSON) the index starts from; default an
    /// empty index with default settings.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Configuration file whose `sinks.elasticsearch.mapping` policies to apply; default
    /// the default policies.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
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
        Some(Command::Setup(c)) => setup(&c),
        Some(Command::Mapping(MappingCommand::Check(a))) => check(&a),
        Some(Command::Rules(RulesCommand::Test(args))) => rules_test(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logtide-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn setup(c: &ConfigArg) -> anyhow::Result<()> {
    let config = RelayConfig::load(&c.config)?;
    let report = setup_elasticsearch(&config)?;
    println!("{}", report.version);
    for step in &report.steps {
        match &step.outcome {
            logtide_es::StepOutcome::Installed => {
                println!("{}: installed ({})", step.what, step.request)
            }
            logtide_es::StepOutcome::Skipped => {
                println!("{}: skipped (setup.retention is 0)", step.what)
            }
            logtide_es::StepOutcome::Unsupported(why) => {
                println!("{}: not supported by this server ({why})", step.what)
            }
        }
    }
    Ok(())
}

fn check(a: &CheckArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let mapping = match &a.config {
        Some(path) => RelayConfig::load(path)?
            .sinks
            .elasticsearch
            .map(|es| es.mapping)
            .with_context(|| format!("{}: no sinks.elasticsearch", path.display()))?,
        None => logtide_es::MappingConfig::default(),
    };
    let template = match &a.template {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--template {}", path.display()))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .with_context(|| format!("--template {}: not JSON", path.display()))?,
            )
        }
        None => None,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let summary = mapping_check(
        &mapping,
        template.as_ref(),
        BufReader::new(stdin.lock()),
        BufWriter::new(stdout.lock()),
    )?;
    eprintln!(
        "{} documents: {} accepted as they are, {} changed by the normalizer, {} still rejected, {} not JSON",
        summary.documents, summary.accepted, summary.changed, summary.unresolved, summary.not_json
    );
    Ok(())
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
        es_indexed = summary.es.as_ref().map(|s| s.indexed),
        es_dead_lettered = summary.es.as_ref().map(|s| s.dead_lettered),
        "relay stopped"
    );
    Ok(())
}

fn rules_test(args: &RulesTestArgs) -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let summary = test_rules(&args.rules, stdin, "standard input", &mut stdout, args.json)?;
    // The alerts are on standard output, the summary on standard error: everything
    // written before it is out first, and a blank line sets the summary apart from the
    // last alert's text when both go to one terminal.
    stdout.flush()?;
    eprintln!(
        "\nsummary: {} rules, {} events ({} not events), {} alerts",
        summary.rules, summary.events, summary.bad_lines, summary.alerts
    );
    Ok(())
}
