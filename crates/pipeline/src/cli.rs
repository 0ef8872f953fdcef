//! Command-line options the binaries share, as clap argument groups that a binary
//! flattens into its own parser (`#[command(flatten)]`) or takes as a subcommand's
//! arguments: `-c/--config` ([`ConfigArg`]) and `status`'s options ([`StatusArgs`]).
//!
//! What differs from one binary to another, the default file and the help text, comes
//! from a type of the binary's that implements [`ConfigFile`]:
//!
//! ```
//! use clap::Parser;
//! use logtide_pipeline::cli::{ConfigArg, ConfigFile};
//!
//! #[derive(Clone, Debug)]
//! struct Relay;
//!
//! impl ConfigFile for Relay {
//!     const DEFAULT: &'static str = "relay.yml";
//!     const HELP: &'static str = "Configuration file (YAML)";
//! }
//!
//! #[derive(Debug, Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     config: ConfigArg<Relay>,
//! }
//!
//! let cli = Cli::parse_from(["logtide-relay"]);
//! assert_eq!(cli.config.config, std::path::Path::new("relay.yml"));
//! ```

use std::marker::PhantomData;
use std::path::PathBuf;

/// One binary's configuration file, as its command line names it.
pub trait ConfigFile {
    /// The file read when `-c/--config` is not given.
    const DEFAULT: &'static str;
    /// The help text of `-c/--config`.
    const HELP: &'static str;
    /// The help text of `status -c/--config`: what `status` reads through the file.
    const STATUS_HELP: &'static str = Self::HELP;
}

/// `-c/--config <CONFIG>`: the configuration file, `F::DEFAULT` unless given.
#[derive(Clone, Debug, clap::Args)]
pub struct ConfigArg<F: ConfigFile> {
    /// The configuration file.
    #[arg(short = 'c', long = "config", default_value = F::DEFAULT, help = F::HELP)]
    pub config: PathBuf,
    #[arg(skip)]
    file: PhantomData<F>,
}

/// The options of `status`: `-c/--config <CONFIG>` (the file whose state and `http`
/// endpoint are read, `F::DEFAULT` unless given) and `--json`.
#[derive(Clone, Debug, clap::Args)]
pub struct StatusArgs<F: ConfigFile> {
    /// The configuration file.
    #[arg(short = 'c', long = "config", default_value = F::DEFAULT, help = F::STATUS_HELP)]
    pub config: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[arg(skip)]
    file: PhantomData<F>,
}
