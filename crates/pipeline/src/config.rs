//! Loading configuration files, the part every binary shares: YAML in, typed structs
//! out, with Filebeat's conventions (see `logtide_config`), and the `output` section.
//!
//! - Dotted keys are paths: `output.file: {…}` is `output: {file: {…}}` (not inside
//!   `processors`, whose option maps are kept as written).
//! - `${VAR}` and `${VAR:default}` in strings are replaced by environment variables.
//! - Unknown keys are refused, and every error names the key's path (`inputs[0].pathz`).

use std::path::{Path, PathBuf};

pub use logtide_kinesis::KinesisConfig;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// A configuration error in `file`.
pub fn config_error(file: &Path) -> impl Fn(logtide_config::Error) -> Error + '_ {
    move |e| Error::Config {
        file: file.to_owned(),
        message: e.to_string(),
    }
}

/// An invalid value in configuration file `file`; `message` starts with the key's path.
pub fn invalid(file: &Path) -> impl Fn(String) -> Error + Copy + '_ {
    move |message| Error::Config {
        file: file.to_owned(),
        message,
    }
}

/// Parses YAML text into a JSON value and expands its dotted keys, except below the keys
/// in `verbatim`: the first steps of loading every binary's configuration.
pub fn document(text: &str, origin: &Path, verbatim: &[&str]) -> Result<Value, Error> {
    let value = logtide_config::parse_yaml(text).map_err(config_error(origin))?;
    logtide_config::expand_dotted(value, "", verbatim).map_err(config_error(origin))
}

/// Expands `${VAR}` in `value` and deserializes it into `T`; an error names the key's
/// path.
pub fn typed<T: DeserializeOwned>(mut value: Value, origin: &Path) -> Result<T, Error> {
    logtide_config::expand_env(&mut value, "").map_err(config_error(origin))?;
    logtide_config::from_value(value, "").map_err(config_error(origin))
}

/// The text of a configuration file; the error names the file.
pub fn read_config_file(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Config {
        file: path.to_owned(),
        message: format!("cannot read: {e}"),
    })
}

/// Reads configuration file `path` and parses its text with `from_yaml` (a configuration
/// type's own, given `path` to name in its errors): what every configuration's `load`
/// does.
pub fn load_file<T>(
    path: &Path,
    from_yaml: impl FnOnce(&str, &Path) -> Result<T, Error>,
) -> Result<T, Error> {
    from_yaml(&read_config_file(path)?, path)
}

/// `output.console`: events as NDJSON on standard output.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Indent each event (for reading, not for machines).
    #[serde(default)]
    pub pretty: bool,
}

/// `output.file`: events as NDJSON in rotating files.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// Directory of the files.
    pub path: PathBuf,
    /// Name of the current file; rotated files get `.1`, `.2`, … appended.
    #[serde(default = "default_filename")]
    pub filename: String,
    /// Size at which the file is rotated, in KiB.
    #[serde(default = "default_rotate_every_kb")]
    pub rotate_every_kb: u64,
    /// Files kept, the current one included.
    #[serde(default = "default_number_of_files")]
    pub number_of_files: usize,
}

fn default_filename() -> String {
    "logtide.ndjson".into()
}
fn default_rotate_every_kb() -> u64 {
    10 * 1024
}
fn default_number_of_files() -> usize {
    7
}

/// The `output` section: exactly one output.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    /// Standard output.
    pub console: Option<ConsoleConfig>,
    /// Rotating files.
    pub file: Option<FileOutputConfig>,
    /// An AWS Kinesis stream.
    pub kinesis: Option<KinesisConfig>,
}

/// The output chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputConfig {
    /// `output.console`.
    Console(ConsoleConfig),
    /// `output.file`.
    File(FileOutputConfig),
    /// `output.kinesis`: see [`KinesisConfig`] for its keys and their defaults.
    Kinesis(KinesisConfig),
}

impl OutputsConfig {
    /// The one output that is set; errors (starting with the key) when none or several
    /// are, or when the chosen one is invalid.
    pub fn choose(self) -> Result<OutputConfig, String> {
        let OutputsConfig {
            console,
            file,
            kinesis,
        } = self;
        let mut chosen: Vec<(&str, OutputConfig)> = Vec::new();
        if let Some(c) = console {
            chosen.push(("output.console", OutputConfig::Console(c)));
        }
        if let Some(f) = file {
            chosen.push(("output.file", OutputConfig::File(f)));
        }
        if let Some(k) = kinesis {
            k.validate().map_err(|e| match e {
                logtide_kinesis::Error::Config(m) => format!("output.kinesis.{m}"),
                other => format!("output.kinesis: {other}"),
            })?;
            chosen.push(("output.kinesis", OutputConfig::Kinesis(k)));
        }
        if chosen.len() > 1 {
            let names: Vec<&str> = chosen.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "output: only one output may be set, found {}",
                names.join(" and ")
            ));
        }
        match chosen.pop() {
            Some((_, output)) => Ok(output),
            None => Err(
                "output: one output must be set (output.console, output.file or output.kinesis)"
                    .into(),
            ),
        }
    }
}

/// The output an `output` section (dotted keys already expanded, `${VAR}` not yet)
/// selects, for binaries whose configuration has one beside keys of their own.
pub fn output_from_section(section: Option<Value>, origin: &Path) -> Result<OutputConfig, Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OnlyOutput {
        #[serde(default)]
        output: OutputsConfig,
    }
    let mut doc = serde_json::Map::new();
    if let Some(section) = section {
        doc.insert("output".into(), section);
    }
    let only: OnlyOutput = typed(Value::Object(doc), origin)?;
    only.output.choose().map_err(|message| Error::Config {
        file: origin.to_owned(),
        message,
    })
}
