//! The error type of this crate.

use std::path::PathBuf;

/// A CA file that cannot be used. Each error names the configuration key that listed the
/// file, and the file. None is retryable: the file or the configuration must change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        /// The configuration key that lists the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid PEM (a section without its end line, bad base64).
    #[error("{key}: {}: {source}", path.display())]
    Pem {
        /// The configuration key that lists the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// What the PEM parser found wrong.
        #[source]
        source: ureq::Error,
    },
    /// The file holds no certificate (only a private key, or no PEM section at all).
    #[error("{key}: {}: no PEM certificate in it", path.display())]
    NoCertificate {
        /// The configuration key that lists the file.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
