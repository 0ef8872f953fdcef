//! The Elasticsearch / OpenSearch sink of logtide: no document is dropped for its types.
//!
//! - [`EsConfig`] (`sinks.elasticsearch`): hosts, index pattern, authentication (basic,
//!   API key, TLS with a custom CA, AWS SigV4 with the AWS default credential chain),
//!   bulk limits, concurrency, gzip, retry backoff, the [`MappingConfig`] policies.
//! - [`EsSink`]: `_bulk` requests bounded by documents and bytes, `concurrency` of them
//!   at once, gzipped. Per item: 429/502/503/504 (and a few 500s) are sent again after an
//!   exponential backoff; a mapping rejection makes the sink read the index's mapping
//!   again (`GET <index>`) and send the document normalized against it; anything still
//!   refused goes to the dead-letter index (`logtide-deadletter-YYYY.MM.DD`) as the
//!   original JSON text with the error. So does a document that the normalizer could only
//!   make acceptable by removing values without room to record them in it (a
//!   `total_fields.limit` reached before the index template made the conflicts object
//!   unmapped). Documents get a deterministic `_id`
//!   ([`document_id`]) so a redelivery overwrites, and go to the index named by their
//!   time ([`IndexPattern`]). Every outcome is counted ([`EsStats`]).
//!
//!   The normalizer assumes documents are mapped in the order it saw them; `_bulk`
//!   requests in flight at once may be applied by the server in another order, so a field
//!   a later batch introduces can be mapped first. A document refused for that is handled
//!   like any mapping rejection (fresh mapping, normalized again, sent again: counted in
//!   [`EsStats::mapping_retries`]); `concurrency: 1` avoids it at the cost of throughput.
//! - [`setup`]: the index template of the normalizer's policies, the dead-letter
//!   template, and an ILM (Elasticsearch) or ISM (OpenSearch) retention policy.
//! - The server is identified at start (`GET /`, [`ServerVersion`]): Elasticsearch 7 to
//!   9 and OpenSearch 1 to 3.
//!
//! # The HTTP client
//!
//! The sink speaks the REST API through `ureq` (already the workspace's small blocking
//! client, TLS through rustls with the ring provider) rather than the `elasticsearch`
//! crate. That crate brings its own async stack (reqwest, hyper, tokio) for the few
//! endpoints used here (`/`, `/_bulk`, `/<index>`, `/_index_template`, `/_ilm`,
//! `/_plugins/_ism`), does not speak to OpenSearch 2 and 3 as such, and has no hook to
//! sign each request with AWS SigV4 over the exact (gzipped) bytes sent — which Amazon
//! OpenSearch Service with IAM needs. Here a request is built, compressed, signed
//! (`aws-sigv4`, credentials from `aws-config`'s default chain, cached until shortly
//! before they expire) and sent in one place (`client.rs`).
//!
//! # Acknowledgements
//!
//! An event's [`AckToken`](logtide_event::AckToken) is accepted when its document is
//! indexed, and discarded with the reason [`DEAD_LETTER_REASON`] when it is stored in the
//! dead-letter index; both let the source move past it. A document whose dead letter is
//! refused too (counted in [`EsStats::failed`] and logged) keeps its token unreported, so
//! the source never moves past it.
//!
//! # Example
//!
//! ```no_run
//! use logtide_es::{EsConfig, EsSink};
//! use logtide_event::Event;
//! use serde_json::json;
//!
//! let mut config = EsConfig::new(["http://127.0.0.1:9200"]);
//! config.index = "logs-%{+yyyy.MM.dd}".into();
//! let mut sink = EsSink::connect(&config)?;
//! let event = Event::from_json(json!({
//!     "@timestamp": "2024-05-01T07:08:09Z",
//!     "message-json": {"id": "a-17"}
//! }))?;
//! sink.write(vec![event])?;
//! assert_eq!(sink.stats().indexed + sink.stats().dead_lettered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bulk;
mod client;
mod config;
mod index;
mod setup;
mod sink;

pub use client::{Distribution, ServerVersion};
pub use config::{EsConfig, SetupConfig, SigV4Config, SslConfig, VerificationMode};
pub use index::{document_id, IndexPattern};
pub use logtide_mapping::MappingConfig;
pub use setup::{dead_letter_template, index_template, setup, SetupReport, SetupStep, StepOutcome};
pub use sink::{EsSink, EsStats, DEAD_LETTER_REASON};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; the message starts with the key.
    #[error("invalid elasticsearch configuration: {0}")]
    Config(String),
    /// Local setup failed (compression, a request thread).
    #[error("elasticsearch sink setup: {0}")]
    Setup(String),
    /// The AWS SDK could not be set up for SigV4 signing.
    #[error(transparent)]
    Aws(#[from] logtide_aws::Error),
    /// No node could be reached, or the connection failed. Retryable.
    #[error("elasticsearch request to {url} failed: {message}")]
    Http {
        /// The URL tried last.
        url: String,
        /// What went wrong.
        message: String,
        /// The HTTP client's error, if it came from there.
        #[source]
        source: Option<ureq::Error>,
    },
    /// No answer came within `timeout` (or the connection could not be opened in time).
    /// Retryable.
    #[error("elasticsearch request to {url} timed out: {message}")]
    Timeout {
        /// The URL tried last.
        url: String,
        /// What timed out.
        message: String,
        /// The HTTP client's error.
        #[source]
        source: ureq::Error,
    },
    /// The server answered with an unexpected status.
    #[error("elasticsearch {method} {url} answered {status}: {body}")]
    Status {
        /// The request method.
        method: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// The server's answer could not be understood.
    #[error("elasticsearch answer from {url}: {message}")]
    Response {
        /// The URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The server's version is not supported.
    #[error("unsupported server: {0}")]
    Unsupported(String),
    /// AWS credentials could not be had (retryable), or a request could not be signed.
    #[error("aws sigv4: {0}")]
    Credentials(#[from] logtide_aws::sigv4::SignError),
    /// Documents are still being retried after `max_retry_time`. Retryable: they stay
    /// queued in the sink for the next call.
    #[error("{documents} documents not yet indexed after retrying: {last_error}")]
    Pending {
        /// Documents still queued.
        documents: usize,
        /// The last failure seen.
        last_error: String,
    },
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Http { .. } | Error::Timeout { .. } | Error::Pending { .. } => true,
            Error::Credentials(e) => e.is_retryable(),
            Error::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
