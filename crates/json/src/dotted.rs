//! Filebeat's configuration semantics for dotted keys.
//!
//! Filebeat loads its configuration with go-ucfg and the path separator `.`, so a dotted
//! key anywhere in a processor list is a path: `add_labels.labels: {a: b}` is
//! `add_labels: {labels: {a: b}}`, and keys that share a prefix are merged. Conditions
//! then flatten their field maps back into dotted paths (`equals: {proc: {name: x}}` is
//! `equals: {proc.name: x}`), so both spellings mean the same.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// Expands every dotted key in `value` into nested objects, merging keys that share a
/// prefix, as Filebeat's loader does. `path` names `value` in errors; two spellings that
/// give one key different non-object values are refused.
pub(crate) fn expand(value: &Value, path: &str) -> Result<Value> {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                let v = expand(v, &format!("{path}.{key}"))?;
                let mut parts = key.split('.').rev();
                let last = parts.next().unwrap_or(key);
                let mut nested = Value::Object(Map::from_iter([(last.to_owned(), v)]));
                for part in parts {
                    nested = Value::Object(Map::from_iter([(part.to_owned(), nested)]));
                }
                let Value::Object(nested) = nested else {
                    unreachable!("built as an object")
                };
                merge(&mut out, nested, path)?;
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| expand(v, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Merges `from` into `into`: objects deeply, anything else must not be given twice.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>, path: &str) -> Result<()> {
    for (key, v) in from {
        match (into.get_mut(&key), v) {
            (None, v) => {
                into.insert(key, v);
            }
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b, &format!("{path}.{key}"))?,
            (Some(_), _) => {
                return Err(Error::InvalidConfig {
                    path: format!("{path}.{key}"),
                    reason: "given twice (once through a dotted key) with different values"
                        .to_owned(),
                })
            }
        }
    }
    Ok(())
}

/// A `when:` condition with the field maps of `equals`, `contains`, `regexp` and `range`
/// flattened into dotted keys (Filebeat's `Fields.Unpack`), and `and`, `or`, `not`
/// followed.
pub(crate) fn flatten_condition(value: &Value) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let out = map
        .iter()
        .map(|(key, v)| {
            let v = match (key.as_str(), v) {
                ("equals" | "contains" | "regexp" | "range", Value::Object(fields)) => {
                    let mut flat = Map::new();
                    flatten_into(&mut flat, "", fields);
                    Value::Object(flat)
                }
                ("and" | "or", Value::Array(items)) => {
                    Value::Array(items.iter().map(flatten_condition).collect())
                }
                ("not", v) => flatten_condition(v),
                (_, v) => v.clone(),
            };
            (key.clone(), v)
        })
        .collect();
    Value::Object(out)
}

fn flatten_into(out: &mut Map<String, Value>, prefix: &str, map: &Map<String, Value>) {
    for (key, v) in map {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten_into(out, &key, inner),
            v => {
                out.insert(key, v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_become_nested_objects_and_merge() {
        let cases = [
            (
                json!({"add_labels.labels": {"a": "b"}}),
                json!({"add_labels": {"labels": {"a": "b"}}}),
            ),
            (
                json!({"add_fields.target": "t", "add_fields": {"fields.x": 1, "fields": {"y": 2}}}),
                json!({"add_fields": {"target": "t", "fields": {"x": 1, "y": 2}}}),
            ),
            (
                json!({"drop_event.when.equals.type": "process"}),
                json!({"drop_event": {"when": {"equals": {"type": "process"}}}}),
            ),
            (
                json!({"rename": {"fields": [{"from": "a.b", "to": "c"}]}}),
                json!({"rename": {"fields": [{"from": "a.b", "to": "c"}]}}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(expand(&input, "p[0]").unwrap(), want, "{input}");
        }
    }

    #[test]
    fn conflicting_spellings_are_refused_with_the_path() {
        let err = expand(&json!({"a": {"b": 1}, "a.b": 2}), "p[0]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p[0].a.b: given twice (once through a dotted key) with different values"
        );
    }

    #[test]
    fn condition_field_maps_are_flattened() {
        let input = json!({"and": [
            {"equals": {"proc": {"name": "x"}}},
            {"not": {"range": {"http": {"code": {"gte": 200, "lt": 300}}}}},
            {"has_fields": ["a.b"]},
        ]});
        assert_eq!(
            flatten_condition(&input),
            json!({"and": [
                {"equals": {"proc.name": "x"}},
                {"not": {"range": {"http.code.gte": 200, "http.code.lt": 300}}},
                {"has_fields": ["a.b"]},
            ]})
        );
    }
}
