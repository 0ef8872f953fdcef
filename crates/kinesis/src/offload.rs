//! Oversize events kept whole in S3 (`oversize: offload`): the object key, the head the
//! record carries instead of the event, and the S3 calls that write and read the objects.
//!
//! The object is the whole event as one JSON line (the bytes a `json` record would hold),
//! under `{prefix}/{YYYY}/{MM}/{DD}/{identity}.json`: the date is the event's, the identity
//! a hash of the entry's source and offset (see [`Event::identity_hash`]), so an entry
//! shipped again after a retry or a restart overwrites its object instead of adding one.

use logtide_event::Event;
use serde::Deserialize;
use serde_json::Value;

use crate::pack::{add_flag, fit_message};
use crate::Error;

/// Bytes of `message` an offloaded event's head keeps (less when the record is smaller).
pub const HEAD_MESSAGE_BYTES: usize = 8 << 10;

/// The flag in `log.flags` of a head whose whole event is in S3.
pub const OFFLOADED_FLAG: &str = "offloaded";
/// The field of a head that names the whole event's object (`s3://bucket/key`).
pub const ORIGINAL_REF: &str = "event.original_ref";
/// The field of a head that holds the whole event's size (its JSON line, in bytes).
pub const ORIGINAL_BYTES: &str = "event.original_bytes";

/// Top-level fields a head keeps when the event's other fields are too large for a
/// record themselves.
const HEAD_FIELDS: &[&str] = &[
    "agent",
    "cloud",
    "container",
    "event",
    "host",
    "input",
    "kubernetes",
    "log",
    "message",
    "stream",
];

/// `output.kinesis.offload`: where `oversize: offload` writes whole events.
///
/// ```yaml
/// output.kinesis:
///   oversize: offload
///   offload:
///     bucket: logs-offload
///     prefix: logtide-offload          # default
///     region: ap-northeast-1           # default: output.kinesis.region
///     endpoint: http://127.0.0.1:5000  # default: the region's S3 endpoint
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffloadConfig {
    /// The bucket (required).
    pub bucket: String,
    /// Key prefix; default `logtide-offload`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// AWS region of the bucket; default: the stream's (`output.kinesis.region`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's S3 endpoint (local testing; path-style
    /// addressing); default: none.
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn default_prefix() -> String {
    "logtide-offload".into()
}

impl OffloadConfig {
    /// Checks every key without contacting AWS; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        let b = &self.bucket;
        let name_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && !b.starts_with(['-', '.'])
            && !b.ends_with(['-', '.']);
        if !name_ok {
            return Err(Error::Config(format!(
                "offload.bucket: {b:?} is not a bucket name (3 to 63 of a-z, 0-9, - and .)"
            )));
        }
        if self.prefix.starts_with('/') {
            return Err(Error::Config(format!(
                "offload.prefix: {:?} must not start with /",
                self.prefix
            )));
        }
        if self.region.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("offload.region: must not be empty".into()));
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "offload.endpoint: {e:?} is not an http:// or https:// URL"
                )));
            }
        }
        Ok(())
    }

    /// The bucket and prefix objects are written to.
    pub fn target(&self) -> OffloadTarget {
        OffloadTarget {
            bucket: self.bucket.clone(),
            prefix: self.prefix.trim_end_matches('/').to_owned(),
        }
    }
}

/// Where offloaded events go: a bucket and a key prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffloadTarget {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without a trailing `/` (empty for none).
    pub prefix: String,
}

impl OffloadTarget {
    /// `s3://bucket/key`.
    pub fn reference(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// The object key of an event: `{prefix}/{YYYY}/{MM}/{DD}/{identity}.json`.
pub fn object_key(target: &OffloadTarget, event: &Event, scratch: &mut Vec<u8>) -> String {
    let identity = event.identity_hash(scratch);
    scratch.clear();
    event.timestamp().write_rfc3339(scratch);
    let date = String::from_utf8_lossy(&scratch[..10.min(scratch.len())]).replace('-', "/");
    let slash = if target.prefix.is_empty() { "" } else { "/" };
    format!("{}{slash}{date}/{identity:032x}.json", target.prefix)
}

/// The bucket and key of an `s3://bucket/key` reference.
pub fn parse_reference(reference: &str) -> Option<(&str, &str)> {
    let rest = reference.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// Writes into `line` the head of `event` (its JSON line with a newline) that fits in
/// `cap` bytes: `message` cut to [`HEAD_MESSAGE_BYTES`] or less, `log.flags` with
/// `"offloaded"`, [`ORIGINAL_REF`] and [`ORIGINAL_BYTES`]; when the event's other fields
/// are too large themselves, only [`HEAD_FIELDS`] stay. Returns false when not even that
/// fits.
pub(crate) fn head_event(
    event: &Event,
    reference: &str,
    original_bytes: usize,
    cap: usize,
    line: &mut Vec<u8>,
) -> bool {
    let mut head = event.clone_unacked();
    if let Some(Value::String(message)) = head.get_mut("message") {
        if message.len() > HEAD_MESSAGE_BYTES {
            let mut keep = HEAD_MESSAGE_BYTES;
            while !message.is_char_boundary(keep) {
                keep -= 1;
            }
            message.truncate(keep);
        }
    }
    add_flag(&mut head, OFFLOADED_FLAG);
    if !mark(&mut head, reference, original_bytes) {
        return false;
    }
    if fit_message(&mut head, cap, line) {
        return true;
    }
    head.fields_mut()
        .retain(|k, _| HEAD_FIELDS.contains(&k.as_str()));
    head.metadata_mut().clear();
    fit_message(&mut head, cap, line)
}

/// Sets the reference fields; an `event` field that is not an object gives way.
fn mark(head: &mut Event, reference: &str, original_bytes: usize) -> bool {
    if head.get("event").is_some_and(|v| !v.is_object()) {
        head.remove("event");
    }
    head.insert(ORIGINAL_REF, Value::String(reference.to_owned()))
        .is_ok()
        && head
            .insert(ORIGINAL_BYTES, Value::from(original_bytes as u64))
            .is_ok()
}

/// The reference of a head whose whole event is in S3, if `event` is one.
pub fn offloaded_reference(event: &Event) -> Option<&str> {
    let flagged = ["log.flags", "log_flags"].iter().any(|path| {
        event
            .get(path)
            .and_then(Value::as_array)
            .is_some_and(|flags| flags.iter().any(|f| f.as_str() == Some(OFFLOADED_FLAG)))
    });
    if !flagged {
        return None;
    }
    event.get(ORIGINAL_REF).and_then(Value::as_str)
}

/// `source.kinesis.offload`: how the consumer reads offloaded events back.
///
/// ```yaml
/// source.kinesis:
///   offload:
///     restore: true                    # default
///     region: ap-northeast-1           # default: source.kinesis.region
///     endpoint: http://127.0.0.1:5000  # default: the region's S3 endpoint
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreConfig {
    /// Fetch the whole event of each offloaded head and hand it on instead of the head;
    /// default `true`.
    #[serde(default = "default_restore")]
    pub restore: bool,
    /// AWS region of the buckets; default: the stream's (`source.kinesis.region`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's S3 endpoint (local testing); default: none.
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn default_restore() -> bool {
    true
}

impl Default for RestoreConfig {
    fn default() -> Self {
        RestoreConfig {
            restore: true,
            region: None,
            endpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::{Source, Timestamp};
    use serde_json::json;
    use std::sync::Arc;

    fn target() -> OffloadTarget {
        OffloadConfig {
            bucket: "logs-offload".into(),
            prefix: "big/".into(),
            region: None,
            endpoint: None,
        }
        .target()
    }

    fn big_event() -> Event {
        let mut e = Event::new(Timestamp::parse_rfc3339(b"2024-06-01T00:36:59.5Z").unwrap());
        e.insert("message", json!(format!("héad {}", "x".repeat(100_000))))
            .unwrap();
        e.insert("container.id", json!("abc")).unwrap();
        e.insert("log.offset", json!(42)).unwrap();
        e
    }

    #[test]
    fn the_key_is_the_entry_identity_under_the_event_date() {
        let mut e = big_event();
        let mut scratch = Vec::new();
        let key = object_key(&target(), &e, &mut scratch);
        assert!(key.starts_with("big/2024/06/01/"), "{key}");
        assert!(key.ends_with(".json") && key.len() == "big/2024/06/01/".len() + 32 + 5);
        assert_eq!(object_key(&target(), &e, &mut scratch), key, "stable");
        e.set_source(Source {
            id: Arc::from("dev:ino:fp"),
            start: 7,
            end: 9,
        });
        let by_source = object_key(&target(), &e, &mut scratch);
        assert_ne!(by_source, key);
        e.insert("message", json!("changed")).unwrap();
        assert_eq!(
            object_key(&target(), &e, &mut scratch),
            by_source,
            "with a source, the identity is the entry's place, not its content"
        );
        let reference = target().reference(&key);
        assert_eq!(
            parse_reference(&reference),
            Some(("logs-offload", key.as_str()))
        );
        assert_eq!(parse_reference("s3://bucket"), None);
        assert_eq!(parse_reference("http://x/y"), None);
    }

    #[test]
    fn the_head_fits_and_points_at_the_whole_event() {
        let e = big_event();
        let mut line = Vec::new();
        assert!(head_event(&e, "s3://b/k.json", 100_123, 4096, &mut line));
        assert!(line.len() <= 4096 && line.ends_with(b"\n"));
        let head = Event::from_json(serde_json::from_slice(&line).unwrap()).unwrap();
        assert_eq!(offloaded_reference(&head), Some("s3://b/k.json"));
        assert_eq!(head.get(ORIGINAL_BYTES), Some(&json!(100_123)));
        assert_eq!(head.get("log.flags"), Some(&json!(["offloaded"])));
        assert_eq!(head.get("log.offset"), Some(&json!(42)));
        let message = head.get_str("message").unwrap();
        assert!(message.starts_with("héad x") && message.len() < 4096);

        let mut line = Vec::new();
        assert!(head_event(&e, "s3://b/k.json", 1, 1 << 20, &mut line));
        let head = Event::from_json(serde_json::from_slice(&line).unwrap()).unwrap();
        assert_eq!(head.get_str("message").unwrap().len(), HEAD_MESSAGE_BYTES);

        // A large field other than message: the head keeps only the essentials.
        let mut e = big_event();
        e.insert("message-json.blob", json!("z".repeat(50_000)))
            .unwrap();
        e.insert("event", json!("not an object")).unwrap();
        let mut line = Vec::new();
        assert!(head_event(&e, "s3://b/k.json", 1, 4096, &mut line));
        let head = Event::from_json(serde_json::from_slice(&line).unwrap()).unwrap();
        assert!(head.get("message-json").is_none());
        assert_eq!(offloaded_reference(&head), Some("s3://b/k.json"));
        assert_eq!(head.get("container.id"), Some(&json!("abc")));

        // Not a head: no flag, or no reference.
        assert_eq!(offloaded_reference(&big_event()), None);
    }

    #[test]
    fn config_errors_name_the_key() {
        let parse = |json: &str| -> Result<OffloadConfig, String> {
            let c: OffloadConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
            c.validate().map_err(|e| e.to_string())?;
            Ok(c)
        };
        let c = parse(r#"{"bucket":"logs"}"#).unwrap();
        assert_eq!(c.prefix, "logtide-offload");
        for (json, want) in [
            (r#"{"prefix":"x"}"#, "missing field `bucket`"),
            (
                r#"{"bucket":"Logs"}"#,
                "offload.bucket: \"Logs\" is not a bucket name",
            ),
            (
                r#"{"bucket":"logs","prefix":"/x"}"#,
                "offload.prefix: \"/x\" must not start",
            ),
            (
                r#"{"bucket":"logs","endpoint":"x:1"}"#,
                "offload.endpoint: \"x:1\" is not",
            ),
            (
                r#"{"bucket":"logs","bukket":"x"}"#,
                "unknown field `bukket`",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
