//! The event record.

use std::cell::OnceCell;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::{path, AckToken, Error, LogEntry, Timestamp};

/// Key under which the event timestamp appears in JSON.
pub const TIMESTAMP_KEY: &str = "@timestamp";
/// Key under which the event metadata appears in JSON, and the path prefix that reaches it.
pub const METADATA_KEY: &str = "@metadata";

/// Where an event was read from: the identity of its source and the bytes it came from.
///
/// For a tailed file `id` identifies the file (not its path, which changes on rotation),
/// and `start..end` are the byte offsets of the entry, terminator included. Together they
/// make a stable identity for an entry across redeliveries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// Identity of the source, stable for its lifetime (for files: device, inode, fingerprint).
    pub id: Arc<str>,
    /// Offset of the entry's first byte.
    pub start: u64,
    /// Offset just past the entry's last byte.
    pub end: u64,
}

/// One log entry or metric sample on its way through logtide.
///
/// Fields are kept and written in the byte order of their keys (as Go's encoding/json
/// writes Filebeat's maps), so output is the same whatever order processors added
/// them in. `@metadata` holds values that steer processing but
/// are not shipped as fields (as in Filebeat). An event is not `Clone` because its
/// [`AckToken`] must be reported exactly once; use [`Event::clone_unacked`] for a copy
/// without one.
///
/// An event made [`from_log_entry`](Event::from_log_entry) holds its fields as a
/// [`LogEntry`] until they are first asked for; [`write_json`](Event::write_json) writes
/// such an event without ever building its maps.
#[derive(Debug, Default)]
pub struct Event {
    timestamp: Timestamp,
    /// Fields not yet moved into `fields`; `fields` is built from it on first use.
    entry: Option<LogEntry>,
    fields: OnceCell<Map<String, Value>>,
    metadata: Map<String, Value>,
    source: Option<Source>,
    ack: Option<AckToken>,
}

impl Event {
    /// An event with no fields.
    pub fn new(timestamp: Timestamp) -> Self {
        Event {
            timestamp,
            ..Event::default()
        }
    }

    /// An event with the given fields.
    pub fn with_fields(timestamp: Timestamp, fields: Map<String, Value>) -> Self {
        Event {
            timestamp,
            fields: OnceCell::from(fields),
            ..Event::default()
        }
    }

    /// An event with the fields of a container log entry (see [`LogEntry`]).
    pub fn from_log_entry(timestamp: Timestamp, entry: LogEntry) -> Self {
        Event {
            timestamp,
            entry: Some(entry),
            ..Event::default()
        }
    }

    /// Builds an event from a JSON object as written by [`Event::write_json`]: `@timestamp`
    /// (RFC 3339; the current time when absent) and `@metadata` (an object) are taken out,
    /// everything else becomes fields.
    pub fn from_json(value: Value) -> Result<Self, Error> {
        let Value::Object(mut fields) = value else {
            return Err(Error::NotAnEventObject {
                found: path::json_type(&value),
            });
        };
        let timestamp = match fields.remove(TIMESTAMP_KEY) {
            None => Timestamp::now(),
            Some(Value::String(s)) => Timestamp::parse_rfc3339(s.as_bytes())?,
            Some(other) => {
                return Err(Error::BadTimestampField {
                    found: path::json_type(&other),
                })
            }
        };
        let metadata = match fields.remove(METADATA_KEY) {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(Error::BadMetadataField {
                    found: path::json_type(&other),
                })
            }
        };
        Ok(Event {
            timestamp,
            fields: OnceCell::from(fields),
            metadata,
            ..Event::default()
        })
    }

    /// The event time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Replaces the event time.
    pub fn set_timestamp(&mut self, timestamp: Timestamp) {
        self.timestamp = timestamp;
    }

    /// The container log entry the event was made from, as long as its fields are
    /// unchanged (see [`Event::from_log_entry`]); `None` once they have been changed, or
    /// for other events. A cheap way to read the entry's path or container id.
    pub fn log_entry(&self) -> Option<&LogEntry> {
        // `fields_mut`, the only way to change the fields, drops the entry.
        self.entry.as_ref()
    }

    /// The fields, ordered by key.
    pub fn fields(&self) -> &Map<String, Value> {
        self.fields.get_or_init(|| {
            self.entry
                .as_ref()
                .map(LogEntry::to_fields)
                .unwrap_or_default()
        })
    }

    /// The fields, for modification.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        if self.fields.get().is_none() {
            let fields = self.entry.take().map(|e| e.to_fields()).unwrap_or_default();
            self.fields = OnceCell::from(fields);
        }
        self.entry = None;
        self.fields
            .get_mut()
            .expect("the fields were set just above")
    }

    /// The `@metadata` values.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The `@metadata` values, for modification.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.metadata
    }

    /// Splits a path into the map it addresses and the path within it: `@metadata.x`
    /// addresses `x` in the metadata, anything else the fields.
    fn route<'p>(&self, path: &'p str) -> (&Map<String, Value>, &'p str) {
        match path
            .strip_prefix(METADATA_KEY)
            .and_then(|p| p.strip_prefix('.'))
        {
            Some(rest) => (&self.metadata, rest),
            None => (self.fields(), path),
        }
    }

    fn route_mut<'p>(&mut self, path: &'p str) -> (&mut Map<String, Value>, &'p str) {
        match path
            .strip_prefix(METADATA_KEY)
            .and_then(|p| p.strip_prefix('.'))
        {
            Some(rest) => (&mut self.metadata, rest),
            None => (self.fields_mut(), path),
        }
    }

    /// The value at a field path such as `kubernetes.pod.name` or `@metadata._id`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let (map, path) = self.route(path);
        path::get(map, path)
    }

    /// The string at a field path, like `get(path)` when that is a string, but read
    /// straight from a [`LogEntry`] (without building the maps) for its string fields:
    /// `message`, `stream`, `log.file.path`, `container.id`, `input.type`.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        if let Some(entry) = &self.entry {
            match path {
                "message" => return Some(&entry.message),
                "stream" => return Some(entry.stream),
                "log.file.path" => return Some(&entry.path),
                "container.id" => return entry.container_id.as_deref(),
                "input.type" => return Some(entry.input_type),
                _ => {}
            }
        }
        self.get(path).and_then(Value::as_str)
    }

    /// The value at a field path, for modification.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        let (map, path) = self.route_mut(path);
        path::get_mut(map, path)
    }

    /// Whether a field path exists.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Sets a field path, creating objects on the way; returns the previous value.
    pub fn insert(&mut self, path: &str, value: Value) -> Result<Option<Value>, Error> {
        let (map, path) = self.route_mut(path);
        path::insert(map, path, value)
    }

    /// Removes a field path and returns its value.
    pub fn remove(&mut self, path: &str) -> Option<Value> {
        let (map, path) = self.route_mut(path);
        path::remove(map, path)
    }

    /// Where the event was read from, if it came from a source with offsets.
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// Records where the event was read from.
    pub fn set_source(&mut self, source: Source) {
        self.source = Some(source);
    }

    /// Attaches the token that acknowledges this event to its source.
    pub fn set_ack(&mut self, token: AckToken) {
        self.ack = Some(token);
    }

    /// Takes the acknowledgement token out, for the sink to report when it is done.
    pub fn take_ack(&mut self) -> Option<AckToken> {
        self.ack.take()
    }

    /// A copy of the event without its acknowledgement token.
    pub fn clone_unacked(&self) -> Event {
        Event {
            timestamp: self.timestamp,
            entry: self.entry.clone(),
            fields: self.fields.clone(),
            metadata: self.metadata.clone(),
            source: self.source.clone(),
            ack: None,
        }
    }

    /// A 128-bit hash that is the same every time this entry is delivered: of the source
    /// identity and the entry's start offset when the event knows its source, else of
    /// the event's JSON (time, fields and metadata), which a redelivery repeats byte for
    /// byte. `scratch` is a buffer to reuse. It names an entry's Elasticsearch document
    /// and its offloaded copy in S3.
    pub fn identity_hash(&self, scratch: &mut Vec<u8>) -> u128 {
        scratch.clear();
        match &self.source {
            Some(src) => {
                scratch.extend_from_slice(src.id.as_bytes());
                scratch.push(0);
                scratch.extend_from_slice(&src.start.to_le_bytes());
            }
            None => self.write_json(scratch),
        }
        xxhash_rust::xxh3::xxh3_128(scratch)
    }

    /// Appends the event as one JSON object: `@timestamp` first, then the fields by key,
    /// then `@metadata` when it is not empty (the same bytes as its `Serialize` form).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        self.timestamp.write_rfc3339(out);
        out.push(b'"');
        match (self.fields.get(), &self.entry) {
            (None, Some(entry)) => entry.write_members(out),
            _ => {
                for (k, v) in self.fields() {
                    out.push(b',');
                    crate::json::write_str(out, k);
                    out.push(b':');
                    crate::json::write_value(out, v);
                }
            }
        }
        if !self.metadata.is_empty() {
            out.extend_from_slice(b",\"@metadata\":");
            crate::json::write_map(out, &self.metadata);
        }
        out.push(b'}');
    }
}

/// Events compare by content; the acknowledgement token is not part of it.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.timestamp == other.timestamp
            && self.fields() == other.fields()
            && self.metadata == other.metadata
            && self.source == other.source
    }
}

impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = usize::from(!self.metadata.is_empty());
        let fields = self.fields();
        let mut map = serializer.serialize_map(Some(fields.len() + 1 + extra))?;
        map.serialize_entry(TIMESTAMP_KEY, &self.timestamp)?;
        for (k, v) in fields {
            map.serialize_entry(k, v)?;
        }
        if !self.metadata.is_empty() {
            map.serialize_entry(METADATA_KEY, &self.metadata)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Event {
        let value = json!({
            "@timestamp": "2024-01-02T03:04:05.123456789Z",
            "message": "hello",
            "kubernetes": {"labels": {"app.kubernetes.io/name": "shop"}},
            "@metadata": {"_id": "abc"}
        });
        Event::from_json(value).unwrap()
    }

    #[test]
    fn json_output_orders_keys_and_keeps_metadata() {
        let e = sample();
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"@timestamp":"2024-01-02T03:04:05.123456789Z","kubernetes":{"labels":{"app.kubernetes.io/name":"shop"}},"message":"hello","@metadata":{"_id":"abc"}}"#
        );
    }

    #[test]
    fn write_json_matches_serialize() {
        let e = sample();
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(out, serde_json::to_vec(&e).unwrap());
        let empty = Event::new(Timestamp::UNIX_EPOCH);
        let mut out = Vec::new();
        empty.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"@timestamp":"1970-01-01T00:00:00.000000000Z"}"#
        );
    }

    #[test]
    fn paths_reach_fields_and_metadata() {
        let mut e = sample();
        assert_eq!(
            e.get("kubernetes.labels.app.kubernetes.io/name"),
            Some(&json!("shop"))
        );
        assert_eq!(e.get("@metadata._id"), Some(&json!("abc")));
        assert!(!e.contains("_id"));
        e.insert("@metadata.pipeline", json!("p1")).unwrap();
        e.insert("log.offset", json!(42)).unwrap();
        assert_eq!(e.metadata().get("pipeline"), Some(&json!("p1")));
        assert_eq!(e.remove("message"), Some(json!("hello")));
        if let Some(v) = e.get_mut("log.offset") {
            *v = json!(43);
        }
        assert_eq!(e.get("log.offset"), Some(&json!(43)));
        assert_eq!(e.fields().keys().collect::<Vec<_>>(), ["kubernetes", "log"]);
    }

    #[test]
    fn from_json_errors_name_the_problem() {
        let cases = [
            (json!([1]), "an event must be a JSON object, not array"),
            (
                json!({"@timestamp": 5}),
                "@timestamp must be an RFC 3339 string, not number",
            ),
            (
                json!({"@metadata": "x"}),
                "@metadata must be an object, not string",
            ),
            (
                json!({"@timestamp": "yesterday"}),
                "not an RFC 3339 timestamp: expected a 4-digit year at column 0",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(Event::from_json(value).unwrap_err().to_string(), want);
        }
    }

    fn entry(partial: bool, truncated: bool, id: bool, attrs: bool) -> LogEntry {
        LogEntry {
            message: "{\"msg\":\"tab\there\"}\n\u{1}".into(),
            stream: "stderr",
            path: Arc::from("/var/log/containers/a_b_c-0123.log"),
            offset: 18_446_744_073_709_551_615,
            partial,
            truncated,
            container_id: id.then(|| Arc::from("0123")),
            docker_attrs: attrs.then(|| json!({"tag": "x", "n": [1, 2.5]})),
            input_type: "container",
        }
    }

    #[test]
    fn log_entry_events_write_what_their_maps_write() {
        let time = Timestamp::parse_rfc3339(b"2024-01-02T03:04:05.5Z").unwrap();
        for bits in 0..16u8 {
            let e = entry(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
            let lazy = Event::from_log_entry(time, e.clone());
            let mut direct = Vec::new();
            lazy.write_json(&mut direct);
            let built = Event::with_fields(time, e.to_fields());
            let mut from_maps = Vec::new();
            built.write_json(&mut from_maps);
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(from_maps).unwrap()
            );
            assert_eq!(
                serde_json::to_vec(&lazy).unwrap(),
                serde_json::to_vec(&built).unwrap()
            );
            assert_eq!(lazy, built);
        }
    }

    #[test]
    fn log_entry_fields_are_reachable_and_changeable() {
        let mut e = Event::from_log_entry(Timestamp::UNIX_EPOCH, entry(true, false, true, false));
        assert_eq!(e.log_entry().map(|l| l.offset), Some(u64::MAX));
        assert_eq!(
            e.get("log.file.path"),
            Some(&json!("/var/log/containers/a_b_c-0123.log"))
        );
        assert_eq!(e.get("log.flags"), Some(&json!(["partial"])));
        assert_eq!(e.get("container.id"), Some(&json!("0123")));
        for path in [
            "message",
            "stream",
            "log.file.path",
            "container.id",
            "input.type",
        ] {
            let fresh =
                Event::from_log_entry(Timestamp::UNIX_EPOCH, entry(true, false, true, false));
            assert_eq!(
                fresh.get_str(path),
                e.get(path).and_then(Value::as_str),
                "{path}"
            );
        }
        assert_eq!(e.get_str("log.offset"), None, "not a string");
        assert_eq!(e.get("docker"), None);
        assert!(e.log_entry().is_some(), "reading fields keeps the entry");
        e.insert("kubernetes.pod.name", json!("a")).unwrap();
        assert!(e.log_entry().is_none(), "changed fields live in the maps");
        assert_eq!(e.remove("stream"), Some(json!("stderr")));
        let mut out = Vec::new();
        e.write_json(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kubernetes"]["pod"]["name"], json!("a"));
        assert_eq!(v["input"]["type"], json!("container"));
        assert!(v.get("stream").is_none());
        assert_eq!(
            e.fields().keys().collect::<Vec<_>>(),
            ["container", "input", "kubernetes", "log", "message"]
        );
    }

    #[test]
    fn clone_unacked_drops_only_the_token() {
        let mut e = sample();
        e.set_source(Source {
            id: Arc::from("dev1:ino2"),
            start: 10,
            end: 20,
        });
        let copy = e.clone_unacked();
        assert_eq!(copy, e);
        assert_eq!(copy.source().map(|s| (s.start, s.end)), Some((10, 20)));
        assert!(e.take_ack().is_none());
    }
}
