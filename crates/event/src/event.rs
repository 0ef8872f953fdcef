//! The event record.

use std::cell::OnceCell;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::log_entry::{rank, write_key, KEYS};
use crate::{path, AckToken, Error, LogEntry, SharedFields, Timestamp};

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
/// such an event without ever building its maps. Three changes keep it that way: fields
/// shared by many events ([`Event::merge_shared`]), the message decoded as JSON in place
/// ([`Event::set_message_decoded`]) and `message` dropped ([`Event::delete`]); anything
/// else builds the maps first. A message decoded in place is written as its text: the
/// one place where keys keep the application's order.
#[derive(Debug, Default)]
pub struct Event {
    timestamp: Timestamp,
    /// What was done to `entry`'s fields without building them.
    lazy: Lazy,
    fields: OnceCell<Map<String, Value>>,
    metadata: Map<String, Value>,
    source: Origin,
    ack: Option<AckToken>,
    /// Fields not yet moved into `fields`; `fields` is built from it on first use.
    /// Declared last, so dropped last: the reference counts above are released before
    /// the message's memory is freed (a locked decrement waits for the stores before it).
    entry: Option<LogEntry>,
}

/// Where an event was read from, as the event holds it.
#[derive(Clone, Debug, Default)]
enum Origin {
    #[default]
    Unknown,
    Given(Source),
    /// The entry's file and offset, up to `end`: the id stays in the entry's
    /// [`LogFile`](crate::LogFile), not cloned for each event. Made [`Origin::Given`]
    /// when the entry goes.
    Entry {
        end: u64,
    },
}

/// Changes to a [`LogEntry`]'s fields held without building them; see [`Event`].
#[derive(Clone, Debug, Default)]
struct Lazy {
    /// Merged over the entry's fields. Its keys are not the entry's, but for `container`
    /// when it replaces the entry's `container` whole (see [`Event::merge_shared`]).
    shared: Option<Arc<SharedFields>>,
    /// The key the message's text is the JSON of (see [`Event::set_message_decoded`]).
    decoded: Option<DecodedKey>,
    /// `message` was removed.
    message_dropped: bool,
}

impl Lazy {
    fn decoded_key(&self) -> Option<&str> {
        self.decoded.map(|d| d.key)
    }

    /// The shared fields have `container`, which replaces the entry's whole.
    fn replaces_container(&self) -> bool {
        self.shared
            .as_deref()
            .is_some_and(SharedFields::has_container)
    }

    fn shared_has(&self, key: &str) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.fields().contains_key(key))
    }

    fn builds(&self, entry: &LogEntry) -> Map<String, Value> {
        let mut fields = entry.to_fields();
        if let Some(decoded) = &self.decoded {
            // The text was checked to be one JSON object when the key was set.
            let value = serde_json::from_str(entry.message.trim_ascii())
                .unwrap_or_else(|_| Value::String(entry.message.clone()));
            fields.insert(decoded.key.to_string(), value);
        }
        if self.message_dropped {
            fields.remove("message");
        }
        if let Some(shared) = &self.shared {
            shared.merge_into(&mut fields);
        }
        fields
    }

    /// Appends `entry`'s fields with these changes, as members of a JSON object each
    /// preceded by a comma, keys in byte order: the bytes `builds` would be written as.
    fn write_members(&self, entry: &LogEntry, out: &mut Vec<u8>) {
        let shared = self
            .shared
            .as_deref()
            .map_or(&[][..], SharedFields::members);
        let mut next = shared.iter().peekable();
        let mut decoded = self.decoded.as_ref();
        // Each of the entry's keys, then none: the added fields that sort after them all.
        for (rank, own_key) in KEYS.iter().map(Some).chain([None]).enumerate() {
            // The added fields that sort between the entry's keys `rank - 1` and `rank`
            // (they never share a key), then the entry's own.
            loop {
                let member = next.peek().filter(|m| m.rank == rank);
                let own = decoded.filter(|d| d.rank == rank);
                match (member, own) {
                    (None, None) => break,
                    (Some(m), Some(d)) if m.key.as_str() < d.key => {
                        out.extend_from_slice(&m.bytes);
                        next.next();
                    }
                    (Some(m), None) => {
                        out.extend_from_slice(&m.bytes);
                        next.next();
                    }
                    (_, Some(d)) => {
                        out.extend_from_slice(d.member);
                        out.extend_from_slice(entry.message.trim_ascii().as_bytes());
                        decoded = None;
                    }
                }
            }
            let replaced = match rank {
                0 => self.replaces_container(),
                4 => self.message_dropped,
                _ => false,
            };
            if own_key.is_some() && entry.has(rank) && !replaced {
                write_key(out, rank);
                entry.write_field(rank, out);
            }
        }
    }
}

/// A top-level key that a [`LogEntry`]'s message can be decoded into in place (see
/// [`Event::set_message_decoded`]), checked once when a processor is built: not a key of
/// the entry, no `.`, not starting with `@`.
///
/// Events hold it by value: the key text is interned for the life of the process (one
/// copy per distinct key ever configured), so an event neither counts references to it
/// nor compares it with the entry's keys again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedKey {
    key: &'static str,
    /// `,"key":`, as the key is written before the text.
    member: &'static [u8],
    /// See `log_entry::rank`.
    rank: usize,
}

impl DecodedKey {
    /// The key, or `None` when a message cannot be decoded into it in place.
    pub fn new(key: &str) -> Option<DecodedKey> {
        let fits = !key.contains('.') && !key.starts_with('@') && !KEYS.contains(&key);
        fits.then(|| {
            let (key, member) = intern(key);
            DecodedKey {
                key,
                member,
                rank: rank(key),
            }
        })
    }

    /// The key's text.
    pub fn as_str(&self) -> &'static str {
        self.key
    }
}

/// One `'static` copy of each distinct key (there are as many as configurations name),
/// with its object member prefix.
fn intern(key: &str) -> (&'static str, &'static [u8]) {
    type Interned = (&'static str, &'static [u8]);
    static INTERNED: std::sync::Mutex<Vec<Interned>> = std::sync::Mutex::new(Vec::new());
    let mut keys = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = keys.iter().find(|(k, _)| *k == key) {
        return *found;
    }
    let mut member = vec![b','];
    crate::json::write_str(&mut member, key);
    member.push(b':');
    let interned: Interned = (Box::leak(key.into()), Box::leak(member.into_boxed_slice()));
    keys.push(interned);
    interned
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

    /// The container log entry the event was made from, as long as its fields have not
    /// been changed but by the three changes an entry keeps (shared fields, the message
    /// decoded in place, `message` dropped; see [`Event`]); `None` once they have, or for
    /// other events. A cheap way to read the entry's path or container id.
    pub fn log_entry(&self) -> Option<&LogEntry> {
        // `fields_mut`, the only way to change the fields other than the changes `Lazy`
        // records, drops the entry.
        self.entry.as_ref()
    }

    /// The fields, ordered by key.
    pub fn fields(&self) -> &Map<String, Value> {
        self.fields.get_or_init(|| {
            self.entry
                .as_ref()
                .map(|e| self.lazy.builds(e))
                .unwrap_or_default()
        })
    }

    /// The entry and the changes to it, while its fields are not built.
    fn lazy_entry(&self) -> Option<(&LogEntry, &Lazy)> {
        match (&self.entry, self.fields.get()) {
            (Some(entry), None) => Some((entry, &self.lazy)),
            _ => None,
        }
    }

    /// Merges `shared` into the fields as [`SharedFields::merge_into`] does. An event in
    /// entry form keeps a reference instead of copying the fields, unless a key is one
    /// the entry has (but `container`, replaced whole when `shared`'s has an `id` or the
    /// entry has none), or it already holds shared fields; then the maps are built.
    pub fn merge_shared(&mut self, shared: &Arc<SharedFields>) {
        if let Some((entry, lazy)) = self.lazy_entry() {
            let fits = lazy.shared.is_none()
                && shared
                    .fields()
                    .iter()
                    .all(|(key, value)| match key.as_str() {
                        "container" => {
                            entry.file.container_id.is_none()
                                || value.as_object().is_some_and(|c| c.contains_key("id"))
                        }
                        key => !KEYS.contains(&key) && lazy.decoded_key() != Some(key),
                    });
            if fits {
                self.lazy.shared = Some(Arc::clone(shared));
                return;
            }
        }
        shared.merge_into(self.fields_mut());
    }

    /// The message of an event in entry form whose fields are not built, while it is
    /// neither decoded nor dropped: the text [`Event::set_message_decoded`] may stand for.
    pub fn entry_message(&self) -> Option<&str> {
        let (entry, lazy) = self.lazy_entry()?;
        (lazy.decoded.is_none() && !lazy.message_dropped).then_some(entry.message.as_str())
    }

    /// Sets the top-level field `key` to the JSON object [`Event::entry_message`] holds,
    /// without decoding it: the text is written as it is. Returns `false`, changing
    /// nothing, when the event has no such message or `key` is not a new top-level key
    /// (a key of the entry or of its shared fields, with a `.`, or starting with `@`).
    ///
    /// The caller vouches for the text: one JSON object, nothing but spaces and tabs
    /// around it and no line breaks, no key twice in any object, no integer beyond
    /// `i64` — so that written as it is, it has the value `serde_json` decodes from it,
    /// which is what the field holds when the maps are built.
    pub fn set_message_decoded(&mut self, key: DecodedKey) -> bool {
        let fits = self.entry_message().is_some() && !self.lazy.shared_has(key.key);
        if fits {
            self.lazy.decoded = Some(key);
        }
        fits
    }

    /// The fields, for modification.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        if let (Origin::Entry { end }, Some(entry)) = (&self.source, &self.entry) {
            self.source = Origin::Given(Source {
                id: Arc::clone(&entry.file.source_id),
                start: entry.offset,
                end: *end,
            });
        }
        if self.fields.get().is_none() {
            let lazy = std::mem::take(&mut self.lazy);
            let fields = self
                .entry
                .take()
                .map(|e| lazy.builds(&e))
                .unwrap_or_default();
            self.fields = OnceCell::from(fields);
        }
        self.entry = None;
        self.lazy = Lazy::default();
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

    /// The value at `path` in an event in entry form, when it can be found without
    /// building the maps: in its shared fields, or nowhere (no top-level field it could
    /// reach, the key itself or a key and a `.`, is there). `None` when the maps are
    /// needed.
    fn lazy_get(&self, path: &str) -> Option<Option<&Value>> {
        let (entry, lazy) = self.lazy_entry()?;
        if path.starts_with(METADATA_KEY) {
            return None;
        }
        let reaches = |key: &str| {
            path.strip_prefix(key)
                .is_some_and(|r| r.is_empty() || r.starts_with('.'))
        };
        if let Some(shared) = &lazy.shared {
            // A shared key is none of the entry's (or replaces its `container` whole).
            if let Some(key) = shared.fields().keys().find(|k| reaches(k)) {
                return (!key.contains('.')).then(|| path::get(shared.fields(), path));
            }
        }
        let mut own = (0..KEYS.len())
            .filter(|&i| entry.has(i) && !(i == 4 && lazy.message_dropped))
            .map(|i| KEYS[i])
            .chain(lazy.decoded_key());
        (!own.any(reaches)).then_some(None)
    }

    /// The value at a field path such as `kubernetes.pod.name` or `@metadata._id`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        if let Some(found) = self.lazy_get(path) {
            return found;
        }
        let (map, path) = self.route(path);
        path::get(map, path)
    }

    /// The string at a field path, like `get(path)` when that is a string, but read
    /// straight from a [`LogEntry`] (without building the maps) for its string fields:
    /// `message`, `stream`, `log.file.path`, `container.id`, `input.type`.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        if let Some((entry, lazy)) = self.lazy_entry() {
            match path {
                "message" if lazy.message_dropped => return None,
                "message" => return Some(&entry.message),
                "stream" => return Some(entry.stream),
                "log.file.path" => return Some(&entry.file.path),
                "container.id" if !lazy.replaces_container() => {
                    return entry.file.container_id.as_deref()
                }
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
        if let Some((_, lazy)) = self.lazy_entry() {
            match path {
                "message" => return !lazy.message_dropped,
                "stream" | "log.file.path" | "log.offset" | "input.type" => return true,
                _ if lazy.decoded_key() == Some(path) => return true,
                _ => {}
            }
        }
        self.get(path).is_some()
    }

    /// Sets a field path, creating objects on the way; returns the previous value.
    pub fn insert(&mut self, path: &str, value: Value) -> Result<Option<Value>, Error> {
        let (map, path) = self.route_mut(path);
        path::insert(map, path, value)
    }

    /// Removes a field path; returns whether it was there. Like `remove(path).is_some()`,
    /// but `message` of an event in entry form goes without building its maps.
    pub fn delete(&mut self, path: &str) -> bool {
        if path == "message" {
            if let Some((_, lazy)) = self.lazy_entry() {
                let was = !lazy.message_dropped;
                self.lazy.message_dropped = true;
                return was;
            }
        }
        self.remove(path).is_some()
    }

    /// Removes a field path and returns its value.
    pub fn remove(&mut self, path: &str) -> Option<Value> {
        let (map, path) = self.route_mut(path);
        path::remove(map, path)
    }

    /// Where the event was read from, if it came from a source with offsets.
    pub fn source(&self) -> Option<Source> {
        let (id, start, end) = self.source_parts()?;
        Some(Source {
            id: Arc::clone(id),
            start,
            end,
        })
    }

    /// The identity of the source the event was read from ([`Source::id`]), without a
    /// copy of the [`Source`].
    pub fn source_id(&self) -> Option<&Arc<str>> {
        self.source_parts().map(|(id, _, _)| id)
    }

    fn source_parts(&self) -> Option<(&Arc<str>, u64, u64)> {
        match (&self.source, &self.entry) {
            (Origin::Given(s), _) => Some((&s.id, s.start, s.end)),
            (Origin::Entry { end }, Some(entry)) => {
                Some((&entry.file.source_id, entry.offset, *end))
            }
            _ => None,
        }
    }

    /// Records where the event was read from.
    pub fn set_source(&mut self, source: Source) {
        self.source = Origin::Given(source);
    }

    /// Records that an event made [`from_log_entry`](Event::from_log_entry) was read
    /// from its entry's file ([`LogFile::source_id`](crate::LogFile::source_id)), from
    /// the entry's `offset` to `end`: the [`Source`] the event reports, without another
    /// reference to the file's id. Does nothing for other events.
    pub fn set_entry_source(&mut self, end: u64) {
        if self.entry.is_some() {
            self.source = Origin::Entry { end };
        }
    }

    /// Attaches the token that acknowledges this event to its source.
    pub fn set_ack(&mut self, token: AckToken) {
        self.ack = Some(token);
    }

    /// Takes the acknowledgement token out, for the sink to report when it is done.
    pub fn take_ack(&mut self) -> Option<AckToken> {
        self.ack.take()
    }

    /// The acknowledgement token, left in the event (see [`AckToken::accept_all_in_place`]).
    pub fn ack_mut(&mut self) -> Option<&mut AckToken> {
        self.ack.as_mut()
    }

    /// A copy of the event without its acknowledgement token.
    pub fn clone_unacked(&self) -> Event {
        Event {
            timestamp: self.timestamp,
            entry: self.entry.clone(),
            lazy: self.lazy.clone(),
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
        match self.source_parts() {
            Some((id, start, _)) => {
                scratch.extend_from_slice(id.as_bytes());
                scratch.push(0);
                scratch.extend_from_slice(&start.to_le_bytes());
            }
            None => self.write_json(scratch),
        }
        xxhash_rust::xxh3::xxh3_128(scratch)
    }

    /// How many events ahead of the one it writes a writer calls [`Event::prefetch`]:
    /// writing one takes about as long as a line takes to come from the other core.
    pub const PREFETCH_DISTANCE: usize = 2;

    /// Starts loading the first bytes of an entry's message into this core's cache, for a
    /// writer to call on an event a few places ahead of the one it writes. The message
    /// was written by the thread that read it, and writing it as JSON otherwise waits
    /// for each of its first cache lines to come from that core. Does nothing for other
    /// events, or on processors without SSE.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
        if let Some(entry) = &self.entry {
            /// Bytes of the message asked for: most messages' first lines, where a load
            /// waits before the processor sees the run and fetches ahead by itself.
            const AHEAD: usize = 256;
            let bytes = entry.message.as_bytes();
            for at in (0..bytes.len().min(AHEAD)).step_by(64) {
                safe_arch::prefetch_t0(&bytes[at]);
            }
        }
    }

    /// Writes `events` as NDJSON into `out` (each event as [`write_json`] writes it, then
    /// `\n`), asking for each event's message a few events ahead (see [`prefetch`]).
    ///
    /// [`write_json`]: Event::write_json
    /// [`prefetch`]: Event::prefetch
    pub fn write_ndjson(events: &[Event], out: &mut Vec<u8>) {
        for e in events.iter().take(Event::PREFETCH_DISTANCE) {
            e.prefetch();
        }
        for (i, e) in events.iter().enumerate() {
            if let Some(ahead) = events.get(i + Event::PREFETCH_DISTANCE) {
                ahead.prefetch();
            }
            e.write_json(out);
            out.push(b'\n');
        }
    }

    /// Appends the event as one JSON object: `@timestamp` first, then the fields by key,
    /// then `@metadata` when it is not empty (the same bytes as its `Serialize` form).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        self.timestamp.write_rfc3339(out);
        out.push(b'"');
        match self.lazy_entry() {
            Some((entry, lazy))
                if lazy.shared.is_none() && lazy.decoded.is_none() && !lazy.message_dropped =>
            {
                entry.write_members(out)
            }
            Some((entry, lazy)) => lazy.write_members(entry, out),
            None => {
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
            && self.source_parts() == other.source_parts()
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
            file: crate::LogFile::named(
                "/var/log/containers/a_b_c-0123.log",
                id.then(|| Arc::from("0123")),
            ),
            offset: 18_446_744_073_709_551_615,
            partial,
            truncated,
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

    fn shared_fields(container_id: bool, runtime: bool) -> Arc<SharedFields> {
        let mut fields = Map::new();
        fields.insert(
            "kubernetes".into(),
            json!({"pod": {"name": "p", "uid": "u"}, "namespace": "ns", "labels": {"app.kubernetes.io/name": "x \"q\""}}),
        );
        let mut container = Map::new();
        if container_id {
            container.insert("id".into(), json!("4567"));
        }
        if runtime {
            container.insert("runtime".into(), json!("containerd"));
        }
        if !container.is_empty() {
            fields.insert("container".into(), Value::Object(container));
        }
        Arc::new(SharedFields::new(fields))
    }

    /// Every combination of the changes an entry-form event holds without maps, in both
    /// orders, against the same changes made to maps: the same bytes, the same value and
    /// the same answers to field lookups.
    #[test]
    fn lazy_changes_write_what_their_maps_write() {
        let time = Timestamp::parse_rfc3339(b"2024-01-02T03:04:05.5Z").unwrap();
        let json_text = r#"{"a":1,"b":"x\"y","c":{"d":[1,2.5,null]},"n":-3}"#;
        let shared_variants = [
            None,
            Some(shared_fields(true, true)),
            Some(shared_fields(false, true)),
            Some(shared_fields(true, false)),
        ];
        let mut lazy_writes = 0;
        for (bits, key) in (0..64u8).map(|b| {
            (
                b % 16,
                ["message-json", "json", "aaa", "zz"][usize::from(b / 16)],
            )
        }) {
            let target = DecodedKey::new(key).unwrap();
            for shared in &shared_variants {
                for decode in [false, true] {
                    for drop in [false, true] {
                        for shared_first in [false, true] {
                            let mut e =
                                entry(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                            e.message = json_text.into();
                            let mut lazy = Event::from_log_entry(time, e.clone());
                            let mut maps = Event::with_fields(time, e.to_fields());
                            let merge = |ev: &mut Event, maps: &mut Event| {
                                if let Some(s) = shared {
                                    ev.merge_shared(s);
                                    s.merge_into(maps.fields_mut());
                                }
                            };
                            if shared_first {
                                merge(&mut lazy, &mut maps);
                            }
                            if decode {
                                let value: Value = serde_json::from_str(json_text).unwrap();
                                if lazy.log_entry().is_some() {
                                    assert_eq!(lazy.entry_message(), Some(json_text));
                                    assert!(lazy.set_message_decoded(target));
                                } else {
                                    lazy.insert(key, value.clone()).unwrap();
                                }
                                maps.insert(key, value).unwrap();
                            }
                            if drop {
                                assert!(lazy.delete("message"));
                                assert!(!lazy.delete("message"), "already gone");
                                maps.remove("message");
                            }
                            if !shared_first {
                                merge(&mut lazy, &mut maps);
                            }
                            if lazy.log_entry().is_some() && (shared.is_some() || decode || drop) {
                                lazy_writes += 1;
                            }
                            let case = format!("bits {bits} key {key} shared {} decode {decode} drop {drop} shared first {shared_first}", shared.is_some());
                            for path in [
                                "message",
                                key,
                                "json.a",
                                "container.id",
                                "container",
                                "container.runtime",
                                "stream",
                                "log.offset",
                                "kubernetes.pod.name",
                                "kubernetes.labels.app.kubernetes.io/name",
                                "nope",
                            ] {
                                assert_eq!(
                                    lazy.contains(path),
                                    maps.contains(path),
                                    "{case}: contains {path}"
                                );
                                assert_eq!(
                                    lazy.get_str(path),
                                    maps.get_str(path),
                                    "{case}: get_str {path}"
                                );
                            }
                            let (mut a, mut b) = (Vec::new(), Vec::new());
                            lazy.write_json(&mut a);
                            maps.write_json(&mut b);
                            assert_eq!(
                                String::from_utf8(a).unwrap(),
                                String::from_utf8(b).unwrap(),
                                "{case}"
                            );
                            assert_eq!(lazy, maps, "{case}");
                        }
                    }
                }
            }
        }
        assert!(
            lazy_writes > 300,
            "most cases stay in entry form: {lazy_writes}"
        );
    }

    #[test]
    fn lookups_of_what_an_entry_has_or_lacks_build_no_maps() {
        let mut e = entry(false, false, true, false);
        e.message = r#"{"a":1}"#.into();
        let mut event = Event::from_log_entry(Timestamp::UNIX_EPOCH, e);
        event.merge_shared(&shared_fields(true, true));
        assert!(event.set_message_decoded(DecodedKey::new("message-json").unwrap()));
        assert!(event.contains("message-json"));
        assert!(event.contains("message"));
        assert!(!event.contains("nope"));
        assert!(!event.contains("message-jsonx"));
        assert!(!event.contains("messages.x"));
        assert_eq!(event.get("error.message"), None);
        assert_eq!(
            event.get_str("log.file.path"),
            Some("/var/log/containers/a_b_c-0123.log")
        );
        assert!(event.delete("message"));
        assert!(!event.contains("message"));
        assert!(event.fields.get().is_none(), "no maps built");
        assert_eq!(event.get("kubernetes.pod.name"), Some(&json!("p")));
        assert_eq!(event.get_str("container.id"), Some("4567"));
        assert_eq!(event.get("container.runtime"), Some(&json!("containerd")));
        assert!(
            event.fields.get().is_none(),
            "shared fields are read where they are"
        );
        assert_eq!(event.get("message-json.a"), Some(&json!(1)));
        assert!(
            event.fields.get().is_some(),
            "looking inside the message builds them"
        );
    }

    #[test]
    fn a_decoded_message_is_written_as_it_was_read() {
        let text = "  {\"z\": 1,\t\"a\": \"\\u00e9\", \"m\": {\"y\": 2.50, \"b\": []}} \t";
        let mut e = entry(false, false, true, false);
        e.message = text.into();
        let mut event = Event::from_log_entry(Timestamp::UNIX_EPOCH, e);
        assert_eq!(DecodedKey::new("a.b"), None, "not a top-level key");
        assert_eq!(DecodedKey::new("@x"), None);
        assert_eq!(DecodedKey::new("log"), None, "the entry's own key");
        assert!(event.set_message_decoded(DecodedKey::new("message-json").unwrap()));
        assert!(
            !event.set_message_decoded(DecodedKey::new("other").unwrap()),
            "decoded once"
        );
        assert_eq!(
            DecodedKey::new("message-json").unwrap().as_str().as_ptr(),
            DecodedKey::new(&String::from("message-json"))
                .unwrap()
                .as_str()
                .as_ptr(),
            "one copy of each key"
        );
        assert!(event.delete("message"));
        assert_eq!(event.entry_message(), None);
        let mut out = Vec::new();
        event.write_json(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains(
                r#","message-json":{"z": 1,	"a": "\u00e9", "m": {"y": 2.50, "b": []}},"stream""#
            ),
            "{line}"
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value["message-json"],
            json!({"a": "é", "m": {"b": [], "y": 2.5}, "z": 1})
        );
        assert_eq!(event.get("message-json.m.y"), Some(&json!(2.5)));
        assert!(event.get("message").is_none());
        // Changing a field builds the maps; the decoded object is then written by key.
        event.insert("message-json.z", json!(2)).unwrap();
        assert!(event.log_entry().is_none());
        let mut out = Vec::new();
        event.write_json(&mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#""message-json":{"a":"é","m":{"b":[],"y":2.5},"z":2}"#));
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
    fn an_entry_reports_its_files_source_before_and_after_its_fields_are_built() {
        let mut entry = entry(false, false, true, false);
        entry.file = Arc::new(crate::LogFile {
            source_id: Arc::from("2049:1234:9e3779b97f4a7c15"),
            ..crate::LogFile::clone(&entry.file)
        });
        let mut e = Event::from_log_entry(Timestamp::default(), entry);
        assert_eq!(e.source(), None);
        e.set_entry_source(99);
        let want = Source {
            id: Arc::from("2049:1234:9e3779b97f4a7c15"),
            start: 18_446_744_073_709_551_615,
            end: 99,
        };
        assert_eq!(
            e.source_id().map(|id| &**id),
            Some("2049:1234:9e3779b97f4a7c15")
        );
        assert_eq!(e.source(), Some(want.clone()));
        assert_eq!(e.clone_unacked().source(), Some(want.clone()));
        let mut scratch = Vec::new();
        let hash = e.identity_hash(&mut scratch);
        e.fields_mut().insert("x".into(), json!(1));
        assert!(e.log_entry().is_none());
        assert_eq!(e.source(), Some(want));
        assert_eq!(e.identity_hash(&mut scratch), hash);
        // Not an entry: nothing to report.
        let mut plain = sample();
        plain.set_entry_source(5);
        assert_eq!(plain.source(), None);
    }

    #[test]
    fn ndjson_is_each_events_json_and_a_newline() {
        let time = Timestamp::parse_rfc3339(b"2024-01-02T03:04:05.5Z").unwrap();
        let mut events: Vec<Event> = (0..16u8)
            .map(|bits| {
                let mut entry = entry(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
                // Empty, short and longer than what is fetched ahead.
                entry.message = "x\"y".repeat(usize::from(bits) * 30);
                Event::from_log_entry(time, entry)
            })
            .collect();
        events.push(sample());
        for n in 0..=events.len() {
            let mut want = Vec::new();
            for e in &events[..n] {
                e.write_json(&mut want);
                want.push(b'\n');
            }
            let mut got = Vec::new();
            Event::write_ndjson(&events[..n], &mut got);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
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
