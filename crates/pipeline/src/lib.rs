//! Wiring of logtide's binaries: typed configuration, sources, outputs, shutdown.
//!
//! Binaries stay thin: they parse arguments, load a configuration with
//! [`FilesConfig::load`] and call [`run_files`]. Configuration files are YAML with
//! Filebeat's conventions (dotted keys, `filebeat.inputs` aliases, `${VAR}` expansion);
//! unknown keys are refused with their path.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use logtide_pipeline::{run_files, FilesConfig};
//!
//! let config = FilesConfig::load("logtide-files.yml".as_ref())?;
//! let stop = Arc::new(AtomicBool::new(false)); // set it from a signal handler
//! let summary = run_files(&config, stop)?;
//! println!("{} events", summary.inputs.iter().map(|s| s.events).sum::<u64>());
//! # Ok::<(), logtide_pipeline::Error>(())
//! ```

pub mod alerts;
pub mod config;
mod hold;
pub mod http;
mod k8s;
pub mod metrics;
pub mod output;
pub mod process;
mod relay;
mod run;
pub mod status;
pub mod telemetry;

use std::path::PathBuf;

pub use config::{FilesConfig, OutputConfig};
pub use hold::{Gate, HoldStats};
pub use relay::{
    mapping_check, run_relay, run_relay_with, setup_elasticsearch, MappingCheckSummary,
    RelayConfig, RelaySinks, RelaySource, RelaySummary,
};
pub use run::{run_files, run_files_with, FileObserver, RunOptions, RunSummary};
pub use telemetry::Telemetry;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file is invalid; the message names the key.
    #[error("{}: {message}", file.display())]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// What is wrong, starting with the key's path.
        message: String,
    },
    /// An output could not be set up.
    #[error("output: {0}")]
    Output(String),
    /// A configured feature is not available.
    #[error("{0}")]
    Unsupported(String),
    /// The process could not set itself up (signal handlers, threads).
    #[error("{0}")]
    Process(String),
    /// Alerting could not start (a rule, the rules directory, the cluster, delivery).
    #[error("{0}")]
    Alerts(String),
    /// A tailer could not start.
    #[error(transparent)]
    Tail(#[from] logtide_tail::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
