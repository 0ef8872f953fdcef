//! Partition keys of events.

use std::borrow::Cow;

use logtide_event::Event;
use serde_json::Value;

use crate::config::PartitionKey;

/// Kinesis' longest partition key, in Unicode scalar values.
const MAX_KEY_CHARS: usize = 256;
/// The key of an event that has neither the configured field nor a source.
pub(crate) const FALLBACK_KEY: &str = "-";

/// The partition key of each event, borrowed from the events where it can be. `random` is
/// the key for [`PartitionKey::Random`]. An event without a usable value at the key's
/// field gets its source's identity (one file's entries stay together) or `-`; `fallbacks`
/// counts those. Keys longer than Kinesis allows are replaced by a hash of themselves.
pub(crate) fn partition_keys<'e>(
    rule: &PartitionKey,
    events: &'e [Event],
    random: &'e str,
    fallbacks: &mut u64,
) -> Vec<Cow<'e, str>> {
    let Some(path) = rule.field() else {
        return vec![Cow::Borrowed(random); events.len()];
    };
    events
        .iter()
        .map(|e| {
            // `get_str` reads a tailed entry's container id without building its maps.
            let key = match e.get_str(path) {
                Some(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
                Some(_) => None,
                None => match e.get(path) {
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                        Some(Cow::Owned(v.to_string()))
                    }
                    _ => None,
                },
            };
            let key = key.unwrap_or_else(|| {
                *fallbacks += 1;
                match e.source_id() {
                    Some(id) if !id.is_empty() => Cow::Borrowed(&**id),
                    _ => Cow::Borrowed(FALLBACK_KEY),
                }
            });
            if key.len() > MAX_KEY_CHARS && key.chars().count() > MAX_KEY_CHARS {
                Cow::Owned(format!(
                    "{:032x}",
                    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
                ))
            } else {
                key
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::{Source, Timestamp};
    use serde_json::json;
    use std::sync::Arc;

    fn ev(fields: Value) -> Event {
        Event::from_json(fields).unwrap()
    }

    #[test]
    fn keys_by_rule_with_fallbacks() {
        let mut no_field = ev(json!({"message": "x"}));
        no_field.set_source(Source {
            id: Arc::from("dev1:ino2:fp3"),
            start: 0,
            end: 2,
        });
        let events = vec![
            ev(json!({"container": {"id": "abc"}, "kubernetes": {"pod": {"uid": 42}}})),
            no_field,
            ev(json!({"container": {"id": ""}})),
            ev(json!({"container": {"id": "é".repeat(300)}})),
            Event::new(Timestamp::UNIX_EPOCH),
        ];
        let mut fallbacks = 0;
        let keys = partition_keys(&PartitionKey::ContainerId, &events, "r", &mut fallbacks);
        assert_eq!(keys[0], "abc");
        assert_eq!(keys[1], "dev1:ino2:fp3");
        assert_eq!(keys[2], FALLBACK_KEY);
        assert_eq!(keys[3].len(), 32, "a hash instead of 300 characters");
        assert_eq!(keys[4], FALLBACK_KEY);
        assert_eq!(fallbacks, 3);

        let keys = partition_keys(
            &PartitionKey::Field("kubernetes.pod.uid".into()),
            &events[..1],
            "r",
            &mut fallbacks,
        );
        assert_eq!(keys[0], "42");
        let keys = partition_keys(&PartitionKey::Random, &events, "r1", &mut fallbacks);
        assert!(keys.iter().all(|k| k == "r1"));
        assert_eq!(fallbacks, 3);
    }

    #[test]
    fn a_key_of_256_characters_is_kept() {
        let events = vec![ev(json!({"container": {"id": "é".repeat(256)}}))];
        let keys = partition_keys(&PartitionKey::ContainerId, &events, "", &mut 0);
        assert_eq!(keys[0].chars().count(), 256);
    }
}
