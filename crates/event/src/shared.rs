//! Fields that many events share, rendered once.
//!
//! `add_kubernetes_metadata` gives every entry of a container the same `kubernetes` and
//! `container` objects. Cloning them into each event's maps and writing them again for
//! each one was a large part of the seed chain's cost; an event made from a container log
//! entry instead holds a reference to one [`SharedFields`] and writes its bytes, rendered
//! when it was made.

use serde_json::{Map, Value};

use crate::json::{write_str, write_value};
use crate::log_entry::rank;

/// Top-level fields merged into events, with each one's JSON written once.
///
/// Merging follows [`SharedFields::merge_into`]: objects are merged at every depth, any
/// other value replaces what the event had.
///
/// Aligned to 128 bytes so that in its `Arc` the reference counts, which the input
/// thread changes for every event, are not on a cache line the output thread reads.
#[derive(Debug, PartialEq)]
#[repr(align(128))]
pub struct SharedFields {
    fields: Map<String, Value>,
    /// Each field as an object member, in the order of `fields` (keys in byte order).
    members: Vec<Member>,
    /// `fields` has `container` (which replaces a log entry's whole).
    has_container: bool,
}

/// One field written as a member of an object: `,"key":value`.
#[derive(Debug, PartialEq)]
pub(crate) struct Member {
    pub(crate) key: String,
    /// How many of a log entry's own keys sort before this one (see `log_entry::rank`).
    pub(crate) rank: usize,
    pub(crate) bytes: Box<[u8]>,
}

impl SharedFields {
    /// Shares `fields` (top-level keys and their values).
    pub fn new(fields: Map<String, Value>) -> Self {
        let members = fields
            .iter()
            .map(|(key, value)| {
                let mut out = vec![b','];
                write_str(&mut out, key);
                out.push(b':');
                write_value(&mut out, value);
                Member {
                    key: key.clone(),
                    rank: rank(key),
                    bytes: out.into_boxed_slice(),
                }
            })
            .collect();
        let has_container = fields.contains_key("container");
        SharedFields {
            fields,
            members,
            has_container,
        }
    }

    /// The fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Whether there is a `container` field.
    pub(crate) fn has_container(&self) -> bool {
        self.has_container
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as object members, in byte order of the keys.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// Merges the fields into `map`: an object into an object already there, at every
    /// depth; anything else replaces what was there.
    pub fn merge_into(&self, map: &mut Map<String, Value>) {
        fn deep(into: &mut Map<String, Value>, key: &str, value: &Value) {
            match (into.get_mut(key), value) {
                (Some(Value::Object(a)), Value::Object(b)) => {
                    for (k, v) in b {
                        deep(a, k, v);
                    }
                }
                _ => {
                    into.insert(key.to_owned(), value.clone());
                }
            }
        }
        for (key, value) in &self.fields {
            deep(map, key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_objects_at_every_depth_and_replaces_the_rest() {
        let shared = SharedFields::new(
            json!({"kubernetes": {"pod": {"name": "p"}, "labels": {"a": "1"}}, "x": 1})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut map = json!({"kubernetes": {"pod": {"cpu": 2}, "labels": "flat"}, "x": {"y": 1}})
            .as_object()
            .unwrap()
            .clone();
        shared.merge_into(&mut map);
        assert_eq!(
            Value::Object(map),
            json!({"kubernetes": {"pod": {"name": "p", "cpu": 2}, "labels": {"a": "1"}}, "x": 1})
        );
        let members: Vec<_> = shared
            .members()
            .iter()
            .map(|m| (m.rank, String::from_utf8_lossy(&m.bytes).into_owned()))
            .collect();
        assert_eq!(
            members,
            [
                (
                    3,
                    r#","kubernetes":{"labels":{"a":"1"},"pod":{"name":"p"}}"#.to_owned()
                ),
                (6, r#","x":1"#.to_owned())
            ]
        );
    }
}
