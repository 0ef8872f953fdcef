//! `logtide-files`: container log files in, events out (feature `files`).
//!
//! Tailer threads feed one output thread (see [`run_files`]); the configuration is
//! [`FilesConfig`]; the metadata gate ([`Gate`]) holds a new container's events until its
//! pod's metadata is known.

pub mod config;
mod hold;
mod k8s;
mod run;

pub use config::{build_processors, load_processors, FilesConfig, InputConfig, RegistrySection};
pub use hold::{Gate, HoldStats};
pub use run::{run_files, run_files_with, FileObserver, RunOptions, RunSummary};
