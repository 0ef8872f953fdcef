//! `logtide-metrics`: the node agent that collects node and Kubernetes metrics.
//!
//! This binary only parses arguments, loads the configuration and hands over to
//! `logtide_pipeline::metrics`; see `--help`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use logtide_pipeline::cli::{ConfigArg, ConfigFile};
use logtide_pipeline::metrics::{collect_once, run_metrics, MetricsConfig};
use logtide_pipeline::process::{init_logging, stop_on_signals};

/// Events are built on the collector threads and freed on the output thread; this
/// allocator handles that without lock contention (and halves the CPU time of building
/// the pod events, see benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Collects node (cpu, load, memory, filesystem, diskio, network) and Kubernetes (pod,
/// container, volume) metrics with Metricbeat's field names and ships them to the
/// configured output.
#[derive(Debug, Parser)]
#[command(name = "logtide-metrics", version, about)]
struct Cli {
    #[command(flatten)]
    config: ConfigArg<Metrics>,
    /// Collect every metricset once (two samples one second apart where rates need
    /// them), print the events as NDJSON on standard output and exit: 1 if a collection
    /// failed.
    #[arg(long)]
    once: bool,
}

/// logtide-metrics' configuration file on the command line.
#[derive(Clone, Debug)]
struct Metrics;

impl ConfigFile for Metrics {
    const DEFAULT: &'static str = "logtide-metrics.yml";
    const HELP: &'static str = "Configuration file (YAML)";
}

fn once(config: &MetricsConfig) -> anyhow::Result<ExitCode> {
    let report = collect_once(config, Duration::from_secs(1))?;
    let mut buf = Vec::new();
    for e in &report.events {
        e.write_json(&mut buf);
        buf.push(b'\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&buf)?;
    stdout.flush()?;
    for (name, e) in &report.errors {
        eprintln!("logtide-metrics: {name}: {e}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = MetricsConfig::load(&cli.config.config)?;
    if cli.once {
        return once(&config);
    }
    init_logging();
    let stop = stop_on_signals("logtide-metrics", "writing what is queued")?;
    let summary = run_metrics(&config, stop)?;
    let events: u64 = summary.output.events.load(Ordering::Relaxed);
    tracing::info!(events, "stopped");
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logtide-metrics: {e:#}");
            ExitCode::FAILURE
        }
    }
}
