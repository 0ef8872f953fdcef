//! The event every logtide stage shares.
//!
//! This crate is deliberately small: an [`Event`] (a nanosecond [`Timestamp`], fields as
//! JSON values ordered by key, `@metadata`, the [`Source`] it was read from), field
//! path access that treats dotted keys the way Filebeat does, [`Condition`]s (Filebeat's
//! `when:`) over events, and the [`AckToken`] through which a sink tells a source that an
//! event is done. It has no async runtime and no SDK
//! dependencies, so every crate can use it.
//!
//! # Example
//!
//! ```
//! use logtide_event::{Event, Timestamp};
//! use serde_json::json;
//!
//! let time = Timestamp::parse_rfc3339(b"2016-10-06T00:17:09.669794202Z")?;
//! let mut event = Event::new(time);
//! event.insert("message", json!("GET /healthz 200"))?;
//! event.insert("kubernetes.labels.app.kubernetes.io/name", json!("shop"))?;
//! assert_eq!(event.get("kubernetes.labels.app.kubernetes.io/name"), Some(&json!("shop")));
//!
//! let mut out = Vec::new();
//! event.write_json(&mut out);
//! assert!(out.starts_with(br#"{"@timestamp":"2016-10-06T00:17:09.669794202Z","kubernetes""#));
//! # Ok::<(), logtide_event::Error>(())
//! ```

mod ack;
mod condition;
mod event;
pub mod json;
mod log_entry;
pub mod path;
mod shared;
mod timestamp;

pub use ack::{AckOutcome, AckToken, Acknowledge};
pub use condition::Condition;
pub use event::{DecodedKey, Event, Source, METADATA_KEY, TIMESTAMP_KEY};
pub use log_entry::{LogEntry, LogFile};
pub use shared::SharedFields;
pub use timestamp::{Timestamp, TimestampError};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A timestamp could not be parsed.
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    /// A field path could not be set because a value on the way is not an object.
    #[error("cannot set field {path}: {at} is a {found}, not an object")]
    NotAnObject {
        /// The path being set.
        path: String,
        /// The prefix of the path that holds a non-object value.
        at: String,
        /// The JSON type found there.
        found: &'static str,
    },
    /// JSON given as an event is not an object.
    #[error("an event must be a JSON object, not {found}")]
    NotAnEventObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// `@timestamp` in event JSON is not a string.
    #[error("@timestamp must be an RFC 3339 string, not {found}")]
    BadTimestampField {
        /// The JSON type found.
        found: &'static str,
    },
    /// A condition's configuration is invalid; `path` is where (`processors[0].drop_fields.when.equals.a`).
    #[error("{path}: {reason}")]
    Condition {
        /// The value's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A condition's regular expression does not compile.
    #[error("{path}: invalid regular expression: {error}")]
    ConditionRegex {
        /// The value's path, e.g. `when.regexp.message`.
        path: String,
        /// The compiler's complaint.
        error: regex::Error,
    },
    /// `@metadata` in event JSON is not an object.
    #[error("@metadata must be an object, not {found}")]
    BadMetadataField {
        /// The JSON type found.
        found: &'static str,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
