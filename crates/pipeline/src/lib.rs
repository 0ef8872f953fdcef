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

//! Each application is behind a cargo feature, so that each binary builds and links only
//! what it runs: `files` (logtide-files), `metrics` (logtide-metrics), `relay`
//! (logtide-relay). The plumbing they share is always there: configuration loading and
//! the `output` section ([`config`]), outputs ([`output`]), the self-monitoring endpoint
//! ([`http`]), counters ([`telemetry`]), `status` ([`status`]), logging and signals
//! ([`process`]).

pub mod cli;
pub mod config;
#[cfg(feature = "files")]
pub mod files;
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod output;
pub mod process;
#[cfg(feature = "relay")]
pub mod relay;
pub mod status;
pub mod telemetry;

use std::path::PathBuf;

pub use config::OutputConfig;
#[cfg(feature = "files")]
pub use files::{
    run_files, run_files_with, FileObserver, FilesConfig, Gate, HoldStats, RunOptions, RunSummary,
};
#[cfg(feature = "relay")]
pub use relay::{
    alerts, mapping_check, run_relay, run_relay_with, setup_elasticsearch, MappingCheckSummary,
    RelayConfig, RelaySinks, RelaySource, RelaySummary,
};
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
    /// An output could not be set up or written.
    #[error("output: {0}")]
    Output(String),
    /// A local file or thread operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Kinesis sink or source failed.
    #[error("{context}: {source}")]
    Kinesis {
        /// Where (`output.kinesis`, `source.kinesis`).
        context: &'static str,
        /// The cause.
        #[source]
        source: logtide_kinesis::Error,
    },
    /// The relay's S3 archive failed.
    #[cfg(feature = "relay")]
    #[error("sinks.s3: {0}")]
    S3(#[source] logtide_s3::Error),
    /// The relay's Elasticsearch sink failed.
    #[cfg(feature = "relay")]
    #[error("sinks.elasticsearch: {0}")]
    Elasticsearch(#[source] logtide_es::Error),
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
    #[cfg(feature = "files")]
    #[error(transparent)]
    Tail(#[from] logtide_tail::Error),
}

impl Error {
    /// Whether trying again later may succeed: what the failing sink or source says.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Kinesis { source, .. } => source.is_retryable(),
            #[cfg(feature = "relay")]
            Error::S3(e) => e.is_retryable(),
            #[cfg(feature = "relay")]
            Error::Elasticsearch(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
