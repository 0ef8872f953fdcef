//! The crate's error type.

/// Errors of this crate: bad configuration and mapping JSON that cannot be understood.
///
/// None of them is retryable: they describe input that will not get better by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `mapping:` configuration is invalid; `path` is the key, e.g. `mapping.rules[0].policy`.
    #[error("{path}: {message}")]
    Config {
        /// Where in the configuration the problem is.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// A mapping, settings or `_mapping` response body could not be understood.
    #[error("mapping JSON at {path}: {message}")]
    Mapping {
        /// Where in the JSON the problem is (`mappings.properties.a.type`).
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl Error {
    pub(crate) fn mapping(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Mapping {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
