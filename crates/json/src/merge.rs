//! Merging objects into objects and expanding dotted keys, the way Filebeat does.

use logtide_event::path::json_type;
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Merges `src` into `dst`, moving the values.
///
/// Objects present on both sides are merged recursively. Any other value in `src` replaces
/// the one in `dst` when `overwrite` is set and is otherwise added only where `dst` has no
/// such key. As in Filebeat, an object from `src` always replaces a non-object in `dst`,
/// even without `overwrite`.
pub(crate) fn deep_update(dst: &mut Map<String, Value>, src: Map<String, Value>, overwrite: bool) {
    for (key, value) in src {
        deep_update_entry(dst, key, value, overwrite);
    }
}

/// Merges one `key: value` into `dst` as [`deep_update`] does.
pub(crate) fn deep_update_entry(
    dst: &mut Map<String, Value>,
    key: String,
    value: Value,
    overwrite: bool,
) {
    match dst.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(value);
        }
        Entry::Occupied(slot) => {
            let old = slot.into_mut();
            match (old, value) {
                (Value::Object(old), Value::Object(new)) => deep_update(old, new, overwrite),
                (old, new @ Value::Object(_)) => *old = new,
                (old, new) => {
                    if overwrite {
                        *old = new;
                    }
                }
            }
        }
    }
}

/// [`deep_update`] from a borrowed source: only the values that are stored are cloned.
pub(crate) fn deep_update_from(
    dst: &mut Map<String, Value>,
    src: &Map<String, Value>,
    overwrite: bool,
) {
    for (key, value) in src {
        match dst.get_mut(key) {
            None => {
                dst.insert(key.clone(), value.clone());
            }
            Some(old) => match (old, value) {
                (Value::Object(old), Value::Object(new)) => deep_update_from(old, new, overwrite),
                (old, new @ Value::Object(_)) => *old = new.clone(),
                (old, new) => {
                    if overwrite {
                        *old = new.clone();
                    }
                }
            },
        }
    }
}

/// Expands keys that contain dots into nested objects, recursively: `{"a.b": 1}` becomes
/// `{"a": {"b": 1}}`, and objects that meet at the same key are merged.
///
/// Fails when two keys conflict (`{"a": 1, "a.b": 2}`, or the same leaf written twice);
/// the message names the dotted key, e.g. `cannot expand "a.b": found conflicting key: a
/// is a string, not an object`. Keys without dots keep their place; expanded keys follow
/// them. Arrays are not entered.
pub(crate) fn expand_keys(map: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(map.len());
    let mut dotted = Vec::new();
    for (key, value) in map {
        let value = match value {
            Value::Object(inner) => Value::Object(
                expand_keys(inner).map_err(|e| format!("error expanding \"{key}\": {e}"))?,
            ),
            other => other,
        };
        if key.contains('.') {
            dotted.push((key, value));
        } else {
            out.insert(key, value);
        }
    }
    for (key, value) in dotted {
        put_expanded(&mut out, &key, value).map_err(|e| format!("cannot expand \"{key}\": {e}"))?;
    }
    Ok(out)
}

/// Puts `value` at the dot-separated `key`, creating objects on the way.
fn put_expanded(map: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), String> {
    let mut segments = key.split('.');
    let last = segments.next_back().unwrap_or(key);
    let mut cur = map;
    let mut walked = 0;
    for segment in segments {
        walked += segment.len() + 1;
        let next = cur
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(inner) => cur = inner,
            other => {
                return Err(format!(
                    "found conflicting key: {} is a {}, not an object",
                    &key[..walked - 1],
                    json_type(other)
                ))
            }
        }
    }
    match cur.entry(last.to_owned()) {
        Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
        Entry::Occupied(slot) => match (slot.into_mut(), value) {
            (Value::Object(old), Value::Object(new)) => merge_disjoint(old, new),
            (_, Value::Object(_)) => Err("found conflicting key".to_owned()),
            (old, _) => Err(format!("found existing ({}) value", json_type(old))),
        },
    }
}

/// Merges `src` into `dst` where only objects may meet.
fn merge_disjoint(dst: &mut Map<String, Value>, src: Map<String, Value>) -> Result<(), String> {
    for (key, value) in src {
        match dst.get_mut(&key) {
            None => {
                dst.insert(key, value);
            }
            Some(old) => match (old, value) {
                (Value::Object(old), Value::Object(new)) => {
                    merge_disjoint(old, new).map_err(|e| format!("cannot merge \"{key}\": {e}"))?
                }
                (Value::Object(_), new) => {
                    return Err(format!(
                        "cannot merge \"{key}\": found ({}) value",
                        json_type(&new)
                    ))
                }
                (old, _) => {
                    return Err(format!(
                        "cannot merge \"{key}\": found ({}) value",
                        json_type(old)
                    ))
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn expand_keys_cases() {
        let ok = [
            (json!({"hello.world": 15}), json!({"hello": {"world": 15}})),
            (
                json!({"test": 15, "hello.there": 1, "hello.world.ok": "test", "elastic.for": "search"}),
                json!({"test": 15, "hello": {"there": 1, "world": {"ok": "test"}}, "elastic": {"for": "search"}}),
            ),
            (
                json!({"root": {"ok": 1}, "root.shared": "yes", "root.one.two.three": 4}),
                json!({"root": {"ok": 1, "shared": "yes", "one": {"two": {"three": 4}}}}),
            ),
            (
                json!({"a.b": {"c": 1}, "a": {"b": {"d": 2}}}),
                json!({"a": {"b": {"c": 1, "d": 2}}}),
            ),
            (
                json!({"x": {"y.z": [1, {"k.v": 2}]}}),
                json!({"x": {"y": {"z": [1, {"k.v": 2}]}}}),
            ),
            (
                json!({".a": 1, "b.": 2}),
                json!({"": {"a": 1}, "b": {"": 2}}),
            ),
            (json!({}), json!({})),
        ];
        for (input, want) in ok {
            let got = expand_keys(obj(input.clone())).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(Value::Object(got), want, "{input}");
        }
        let failing = [
            (json!({"a.b": "c", "a.b.c": "d"}), "cannot expand \"a.b.c\": found conflicting key: a.b is a string, not an object"),
            // Keys are visited in byte order, whatever order the text had them in.
            (json!({"a.b.c": "d", "a.b": "c"}), "cannot expand \"a.b.c\": found conflicting key: a.b is a string, not an object"),
            (json!({"a": {"b": {"c": 1}}, "a.b": "x"}), "cannot expand \"a.b\": found existing (object) value"),
            (json!({"a": 1, "a.b": 2}), "cannot expand \"a.b\": found conflicting key: a is a number, not an object"),
            (json!({"a.b": 2, "a": 1}), "cannot expand \"a.b\": found conflicting key: a is a number, not an object"),
            (json!({"a": {"b": 1}, "a.b": {"c": 1}}), "cannot expand \"a.b\": found conflicting key"),
            (
                json!({"a.b": {"c": 1}, "a": {"b": {"c": 2}}}),
                "cannot expand \"a.b\": cannot merge \"c\": found (number) value",
            ),
            (json!({"x": {"a": 1, "a.b": 2}}), "error expanding \"x\": cannot expand \"a.b\": found conflicting key: a is a number, not an object"),
        ];
        for (input, want) in failing {
            assert_eq!(
                expand_keys(obj(input.clone())).unwrap_err(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn deep_update_cases() {
        let base = json!({"a": 1, "o": {"x": 1, "y": {"z": 1}}, "s": "str"});
        let update = json!({"a": 2, "o": {"x": 2, "y": {"w": 2}, "n": 3}, "s": {"now": "object"}, "new": true});
        let cases = [
            (
                true,
                json!({"a": 2, "o": {"x": 2, "y": {"z": 1, "w": 2}, "n": 3}, "s": {"now": "object"}, "new": true}),
            ),
            // Without overwrite only new keys are added, but an object still replaces a
            // non-object (Filebeat's rule).
            (
                false,
                json!({"a": 1, "o": {"x": 1, "y": {"z": 1, "w": 2}, "n": 3}, "s": {"now": "object"}, "new": true}),
            ),
        ];
        for (overwrite, want) in cases {
            let mut owned = obj(base.clone());
            deep_update(&mut owned, obj(update.clone()), overwrite);
            assert_eq!(Value::Object(owned), want, "owned, overwrite={overwrite}");
            let mut borrowed = obj(base.clone());
            deep_update_from(&mut borrowed, &obj(update.clone()), overwrite);
            assert_eq!(
                Value::Object(borrowed),
                want,
                "borrowed, overwrite={overwrite}"
            );
        }
    }
}
