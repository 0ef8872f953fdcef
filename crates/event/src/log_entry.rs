//! The fields of an entry read from a container log file, held as plain values.
//!
//! Every tailed entry carries the same handful of fields, four of them inside nested
//! objects (`log.file.path`, `log.offset`, `container.id`, `input.type`). Building them as
//! JSON maps costs a map, a key string and a hash per object for every entry, which is
//! most of the work of shipping a line when no processor looks at it. An [`Event`] made
//! [`from_log_entry`](crate::Event::from_log_entry) keeps them here instead and builds the
//! maps only when something asks for the event's fields; writing it as JSON writes these
//! values directly, with the same bytes the maps would give.
//!
//! [`Event`]: crate::Event

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::json::{write_str, write_value};

/// What the entries of one file share: its names, behind one reference count. An entry
/// holds one `Arc` of it rather than one per name: each reference count is changed by
/// the thread that reads the entry and again by the one that writes it, and a locked
/// change of a count the other core changed last waits for its cache line.
///
/// Aligned to a cache line, so that in an `Arc` the names do not share the line of the
/// reference counts: the writing thread reads them while the reading thread changes
/// the counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[repr(align(64))]
pub struct LogFile {
    /// `log.file.path`: the path the file was found under.
    pub path: Arc<str>,
    /// `container.id`, from the file's path.
    pub container_id: Option<Arc<str>>,
    /// The file's identity, stable across renames: the `id` of its entries' [`Source`].
    ///
    /// [`Source`]: crate::Source
    pub source_id: Arc<str>,
}

impl LogFile {
    /// A file's names, `source_id` empty (for entries with no source to report).
    pub fn named(path: impl Into<Arc<str>>, container_id: Option<Arc<str>>) -> Arc<LogFile> {
        Arc::new(LogFile {
            path: path.into(),
            container_id,
            source_id: Arc::from(""),
        })
    }
}

/// A container log entry's fields, under the names Filebeat uses: `message`, `stream`,
/// `log.file.path`, `log.offset`, `log.flags` (when partial or truncated), `container.id`
/// (when known), `docker.attrs` (when the line had any) and `input.type`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// `stream`: `stdout` or `stderr`.
    pub stream: &'static str,
    /// The file the entry's first chunk was read from: `log.file.path` and `container.id`.
    pub file: Arc<LogFile>,
    /// `log.offset`: the byte offset of the entry's first chunk in that file.
    pub offset: u64,
    /// Adds `partial` to `log.flags`: the entry ended without its final chunk.
    pub partial: bool,
    /// Adds `truncated` to `log.flags`: the entry was cut at the size limit.
    pub truncated: bool,
    /// `docker.attrs`: the `attrs` object of a docker json-file line.
    pub docker_attrs: Option<Value>,
    /// `input.type`.
    pub input_type: &'static str,
    /// `message`: the entry's text, partial chunks joined. Declared last, so dropped
    /// after the reference counts above are released (see `Event`).
    pub message: String,
}

/// The top-level keys of an entry's fields, in byte order; `LogEntry::has` and
/// `LogEntry::write_field` take an index into it.
pub(crate) const KEYS: [&str; 6] = ["container", "docker", "input", "log", "message", "stream"];

/// How many of [`KEYS`] sort before `key`: a field with this key is written after them
/// and before the rest.
pub(crate) fn rank(key: &str) -> usize {
    KEYS.iter().take_while(|k| **k < key).count()
}

fn object(key: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), value)]))
}

impl LogEntry {
    fn flags(&self) -> impl Iterator<Item = &'static str> {
        [
            self.partial.then_some("partial"),
            self.truncated.then_some("truncated"),
        ]
        .into_iter()
        .flatten()
    }

    /// The fields as a JSON map.
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut fields = Map::with_capacity(6);
        fields.insert("message".into(), Value::String(self.message.clone()));
        fields.insert("stream".into(), Value::String(self.stream.into()));
        let mut log = Map::with_capacity(3);
        log.insert(
            "file".into(),
            object("path", Value::String(self.file.path.to_string())),
        );
        log.insert("offset".into(), Value::from(self.offset));
        if self.partial || self.truncated {
            let flags = self.flags().map(|f| Value::String(f.into())).collect();
            log.insert("flags".into(), Value::Array(flags));
        }
        fields.insert("log".into(), Value::Object(log));
        if let Some(id) = &self.file.container_id {
            fields.insert(
                "container".into(),
                object("id", Value::String(id.to_string())),
            );
        }
        if let Some(attrs) = &self.docker_attrs {
            fields.insert("docker".into(), object("attrs", attrs.clone()));
        }
        fields.insert(
            "input".into(),
            object("type", Value::String(self.input_type.into())),
        );
        fields
    }

    /// Whether the field at `KEYS[index]` is present.
    pub(crate) fn has(&self, index: usize) -> bool {
        match index {
            0 => self.file.container_id.is_some(),
            1 => self.docker_attrs.is_some(),
            _ => index < KEYS.len(),
        }
    }

    /// Appends the value of the field at `KEYS[index]`, which must be present: the bytes
    /// [`to_fields`](Self::to_fields) would be written as.
    pub(crate) fn write_field(&self, index: usize, out: &mut Vec<u8>) {
        match index {
            0 => {
                out.extend_from_slice(b"{\"id\":");
                write_file_str(out, FileStr::ContainerId, &self.file);
                out.push(b'}');
            }
            1 => {
                out.extend_from_slice(b"{\"attrs\":");
                match &self.docker_attrs {
                    Some(attrs) => write_value(out, attrs),
                    None => out.extend_from_slice(b"null"),
                }
                out.push(b'}');
            }
            2 => {
                out.extend_from_slice(b"{\"type\":");
                write_known_str(out, self.input_type);
                out.push(b'}');
            }
            3 => {
                out.extend_from_slice(b"{\"file\":{\"path\":");
                write_file_str(out, FileStr::Path, &self.file);
                out.push(b'}');
                if self.partial || self.truncated {
                    out.extend_from_slice(b",\"flags\":[");
                    for (i, flag) in self.flags().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_str(out, flag);
                    }
                    out.push(b']');
                }
                out.extend_from_slice(b",\"offset\":");
                out.extend_from_slice(itoa::Buffer::new().format(self.offset).as_bytes());
                out.push(b'}');
            }
            4 => write_str(out, &self.message),
            _ => write_known_str(out, self.stream),
        }
    }

    /// Appends the fields as members of a JSON object, each preceded by a comma: the
    /// bytes [`to_fields`](Self::to_fields) would be written as (keys in byte order, as
    /// a map writes them).
    pub(crate) fn write_members(&self, out: &mut Vec<u8>) {
        for index in 0..KEYS.len() {
            if self.has(index) {
                write_key(out, index);
                self.write_field(index, out);
            }
        }
    }
}

/// Appends `,"key":` for the key at `KEYS[index]`.
pub(crate) fn write_key(out: &mut Vec<u8>, index: usize) {
    const MEMBERS: [&[u8]; 6] = [
        b",\"container\":",
        b",\"docker\":",
        b",\"input\":",
        b",\"log\":",
        b",\"message\":",
        b",\"stream\":",
    ];
    out.extend_from_slice(MEMBERS[index]);
}

/// Which of a file's names [`write_file_str`] writes.
#[derive(Clone, Copy)]
enum FileStr {
    Path,
    ContainerId,
}

/// Appends a file's path or container id (`""` when it has none) as a JSON string. The
/// events of one file come in runs: the last file written on this thread is remembered
/// with the JSON of both names (the `Arc` held, so that its address names that file
/// alone), and that JSON is copied again instead of escaping the names for every event.
fn write_file_str(out: &mut Vec<u8>, kind: FileStr, file: &Arc<LogFile>) {
    type Last = RefCell<Option<(Arc<LogFile>, [Vec<u8>; 2])>>;
    thread_local! {
        static LAST: Last = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        let json = match last {
            Some((f, json)) if Arc::ptr_eq(f, file) => json,
            slot => {
                let mut path = Vec::with_capacity(file.path.len() + 2);
                write_str(&mut path, &file.path);
                let mut id = Vec::new();
                write_str(&mut id, file.container_id.as_deref().unwrap_or_default());
                &mut slot.insert((Arc::clone(file), [path, id])).1
            }
        };
        out.extend_from_slice(&json[kind as usize]);
    });
}

/// Appends `s` as a JSON string: the values a tailer gives `stream` and `input.type`
/// from their one written form, anything else escaped.
fn write_known_str(out: &mut Vec<u8>, s: &str) {
    let known: &[u8] = match s {
        "stdout" => b"\"stdout\"",
        "stderr" => b"\"stderr\"",
        "container" => b"\"container\"",
        _ => return write_str(out, s),
    };
    out.extend_from_slice(known);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_members_are_the_keys_written() {
        for (index, key) in KEYS.iter().enumerate() {
            let mut out = Vec::new();
            write_key(&mut out, index);
            assert_eq!(
                out,
                format!(",{}:", serde_json::to_string(key).unwrap()).as_bytes()
            );
        }
    }

    #[test]
    fn paths_and_known_strings_are_written_as_serde_json_writes_them() {
        let plain = LogFile::named("/var/log/containers/a_b_c-0123.log", Some("0123".into()));
        let quoted = LogFile::named("/var/log/odd \"name\"\\x.log", Some("a\"b".into()));
        let no_id = LogFile::named("/var/log/x.log", None);
        // In runs, alternating, and a new file equal to the remembered one.
        let again = Arc::new(LogFile::clone(&plain));
        for file in [
            &plain, &plain, &quoted, &quoted, &plain, &again, &no_id, &quoted,
        ] {
            let mut out = Vec::new();
            write_file_str(&mut out, FileStr::Path, file);
            assert_eq!(out, serde_json::to_vec(&*file.path).unwrap(), "{file:?}");
            let mut out = Vec::new();
            write_file_str(&mut out, FileStr::ContainerId, file);
            let id = file.container_id.as_deref().unwrap_or_default();
            assert_eq!(out, serde_json::to_vec(id).unwrap(), "{file:?}");
        }
        for s in ["stdout", "stderr", "container", "docker", "odd \"one\""] {
            let mut out = Vec::new();
            write_known_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s}");
        }
    }
}
