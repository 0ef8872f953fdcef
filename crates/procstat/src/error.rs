//! The error type of this crate.

use std::path::PathBuf;

/// Errors of this crate. Each names what failed and where: the file and line, the mount,
/// the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (or a directory listed).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a kernel or cgroup file is not in the expected format.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// One-based line number (0 when the problem is the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `statvfs` failed on a mount point (for example a mount that vanished).
    #[error("filesystem {mount_point}: statvfs {}: {source}", path.display())]
    Statvfs {
        /// The mount point, as the host sees it.
        mount_point: String,
        /// The path that was asked (the mount point below the host root).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The kubelet could not be reached or answered with an error.
    #[error("kubelet {url}: {message}")]
    Kubelet {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A kubelet answer is not a valid Summary API document.
    #[error("kubelet {url}: invalid summary JSON at line {line} column {column}: {message}")]
    Summary {
        /// The URL requested.
        url: String,
        /// Line of the error in the document.
        line: usize,
        /// Column of the error in the document.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration is invalid; the message starts with the key.
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// Whether the error is about something missing (a file, a mount) rather than malformed.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Read { source, .. } | Error::Statvfs { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
