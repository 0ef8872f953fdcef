//! The crate's error type.

use std::path::PathBuf;

/// Errors of this crate.
///
/// Rule errors name where the rule came from (`origin`: a file path, or
/// `LogAlertRule shop/errors`) and the key at fault. Delivery failures are not errors
/// of this type: they are counted in [`DeliveryStats`](crate::DeliveryStats) and logged,
/// since evaluation goes on whatever a webhook answers. None is retryable as is: the
/// input has to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file is not valid YAML.
    #[error("{origin}: invalid YAML: {message}")]
    Yaml {
        /// The file or resource.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A rule has a missing, unknown or invalid key.
    #[error("{origin}: {key}: {reason}")]
    Rule {
        /// The file or resource.
        origin: String,
        /// The key's path in the rule, e.g. `timeframe.minutes`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An elastalert `filter` uses a query clause this crate does not translate.
    #[error(
        "{origin}: rule \"{rule}\": {path}: unsupported filter clause \"{clause}\" \
         (supported: term, terms, match, match_phrase, range, exists, bool, query_string)"
    )]
    UnsupportedFilter {
        /// The file or resource.
        origin: String,
        /// The rule's name.
        rule: String,
        /// Where the clause is, e.g. `filter[1].query.bool.must[0]`.
        path: String,
        /// The clause's name, e.g. `wildcard`.
        clause: String,
    },
    /// An elastalert filter clause is supported but this use of it is not.
    #[error("{origin}: rule \"{rule}\": {path}: {reason}")]
    InvalidFilter {
        /// The file or resource.
        origin: String,
        /// The rule's name.
        rule: String,
        /// Where the clause is.
        path: String,
        /// What cannot be translated.
        reason: String,
    },
    /// Two rules have the same name.
    #[error("{origin}: rule \"{rule}\" is already defined in {first}")]
    DuplicateRule {
        /// Where the second definition is.
        origin: String,
        /// The name.
        rule: String,
        /// Where the first is.
        first: String,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A saved state file could not be used.
    #[error("alert state {}: {message}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The delivery thread or the directory watch could not be started.
    #[error("{what}: {message}")]
    Start {
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
