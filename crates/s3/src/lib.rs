//! The S3 archive sink of logtide: events as gzip-compressed NDJSON objects, cut by size
//! and age, with keys from a template.
//!
//! - [`S3Config`] (`sinks.s3`): bucket, prefix, region, endpoint, `max_object_bytes`,
//!   `max_age`, `key_template`.
//! - [`Archive`] is the pure core: it batches events per shard into gzip NDJSON, and names
//!   each object from the template (the default
//!   `{prefix}/%Y/%m/%d/%H/{shard}-{sequence}.ndjson.gz`, where `{sequence}` is the first
//!   record's sequence number and the time that of the object's first event, so a batch
//!   delivered again overwrites the same key).
//! - [`S3Sink`] uploads finished objects (PutObject, or a multipart upload for large ones),
//!   retries with backoff, and accepts the events' [`AckToken`]s only after the upload
//!   succeeded. A failed upload keeps the object and its tokens for the next attempt.
//!
//! ```
//! use logtide_event::{Event, Timestamp};
//! use logtide_s3::{Archive, S3Config};
//! use serde_json::json;
//!
//! let mut config = S3Config::new("logs-archive");
//! config.max_object_bytes = 1 << 20;
//! let mut archive = Archive::new(&config)?;
//! let mut e = Event::new(Timestamp::new(1_700_000_000, 0).unwrap());
//! e.insert("message", json!("hello"))?;
//! archive.add("shardId-000000000000", "4959", vec![e]);
//! let objects = archive.take_all();
//! assert_eq!(objects[0].key, "logtide/2023/11/14/22/shardId-000000000000-4959.ndjson.gz");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod config;
mod sink;

pub use archive::{Archive, Object};
pub use config::{ByteSize, S3Config};
pub use sink::{S3Sink, S3Stats};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; names the key.
    #[error("invalid s3 configuration: {0}")]
    Config(String),
    /// The AWS client could not be set up.
    #[error(transparent)]
    Aws(#[from] logtide_aws::Error),
    /// An upload failed after its retries. Retryable: the object and its events are kept.
    #[error("s3 upload of {key} failed after {attempts} attempts: {last_error}")]
    Upload {
        /// The object's key.
        key: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last_error: CallError,
    },
}

/// A failed S3 call: which call, what it said, and the SDK's error (none when the
/// answer itself was unusable).
#[derive(Debug, thiserror::Error)]
#[error("{call}: {message}")]
pub struct CallError {
    /// The call (`PutObject`, `UploadPart 3`, …).
    pub call: String,
    /// What the service or the client said.
    pub message: String,
    /// The SDK's error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Upload { .. })
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[doc(no_inline)]
pub use logtide_event::AckToken;
