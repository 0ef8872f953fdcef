//! Field paths over JSON objects, resolved the way Filebeat resolves them.
//!
//! A path such as `kubernetes.labels.app.kubernetes.io/name` is looked up level by level:
//! at each level the whole remaining path is first tried as one key (so keys that contain
//! dots, like Kubernetes label names, are found), and only then is it split at its first
//! dot and the lookup continues in the object under the first part.

use serde_json::{Map, Value};

use crate::Error;

/// Looks up `path` in `map`.
pub fn get<'m>(map: &'m Map<String, Value>, path: &str) -> Option<&'m Value> {
    let mut cur = map;
    let mut key = path;
    loop {
        if let Some(v) = cur.get(key) {
            return Some(v);
        }
        let (head, tail) = key.split_once('.')?;
        match cur.get(head) {
            Some(Value::Object(next)) => {
                cur = next;
                key = tail;
            }
            _ => return None,
        }
    }
}

/// Looks up `path` in `map` for modification.
pub fn get_mut<'m>(map: &'m mut Map<String, Value>, path: &str) -> Option<&'m mut Value> {
    let (parent, key) = parent_of(map, path)?;
    parent.get_mut(key)
}

/// Finds the object that holds the last segment of `path`, without creating anything.
fn parent_of<'m, 'p>(
    map: &'m mut Map<String, Value>,
    path: &'p str,
) -> Option<(&'m mut Map<String, Value>, &'p str)> {
    let mut cur = map;
    let mut key = path;
    loop {
        if cur.contains_key(key) {
            return Some((cur, key));
        }
        let (head, tail) = key.split_once('.')?;
        match cur.get_mut(head) {
            Some(Value::Object(next)) => {
                cur = next;
                key = tail;
            }
            _ => return None,
        }
    }
}

/// Sets `path` to `value`, creating the objects on the way, and returns the old value.
///
/// Fails when a value on the way exists but is not an object (the path cannot be created
/// without destroying it).
pub fn insert(
    map: &mut Map<String, Value>,
    path: &str,
    value: Value,
) -> Result<Option<Value>, Error> {
    let mut cur = map;
    let mut key = path;
    loop {
        if cur.contains_key(key) {
            return Ok(cur.insert(key.to_owned(), value));
        }
        let Some((head, tail)) = key.split_once('.') else {
            return Ok(cur.insert(key.to_owned(), value));
        };
        let next = cur
            .entry(head.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(next) => {
                cur = next;
                key = tail;
            }
            other => {
                let at = &path[..path.len() - tail.len() - 1];
                return Err(Error::NotAnObject {
                    path: path.to_owned(),
                    at: at.to_owned(),
                    found: json_type(other),
                });
            }
        }
    }
}

/// Removes `path` and returns its value; the order of the remaining keys is kept.
pub fn remove(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    let (parent, key) = parent_of(map, path)?;
    parent.remove(key)
}

/// The JSON type name of a value, as used in error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
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
    fn get_walks_nested_and_dotted_keys() {
        let m = obj(json!({
            "a": {"b": {"c": 1}},
            "labels": {"app": "web", "app.kubernetes.io/name": "shop"},
            "x.y": {"z": true},
            "plain": 3
        }));
        let cases: &[(&str, Option<Value>)] = &[
            ("a.b.c", Some(json!(1))),
            ("a.b", Some(json!({"c": 1}))),
            ("labels.app", Some(json!("web"))),
            ("labels.app.kubernetes.io/name", Some(json!("shop"))),
            // As in Filebeat, a dotted key matches only as the whole rest of the path.
            ("x.y.z", None),
            ("x.y", Some(json!({"z": true}))),
            ("plain", Some(json!(3))),
            ("plain.more", None),
            ("a.b.c.d", None),
            ("missing", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(get(&m, path), want.as_ref(), "path {path}");
        }
    }

    #[test]
    fn insert_creates_and_overwrites() {
        let mut m = obj(json!({"a": {"b": 1}, "s": "x", "k.v": 1}));
        assert_eq!(insert(&mut m, "a.c", json!(2)).unwrap(), None);
        assert_eq!(insert(&mut m, "a.b", json!(3)).unwrap(), Some(json!(1)));
        assert_eq!(insert(&mut m, "n.e.w", json!([])).unwrap(), None);
        assert_eq!(insert(&mut m, "k.v", json!(2)).unwrap(), Some(json!(1)));
        assert_eq!(
            Value::Object(m.clone()),
            json!({"a": {"b": 3, "c": 2}, "s": "x", "k.v": 2, "n": {"e": {"w": []}}})
        );
        let err = insert(&mut m, "s.t.u", json!(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set field s.t.u: s is a string, not an object"
        );
    }

    #[test]
    fn remove_keeps_order_and_finds_dotted() {
        let mut m = obj(json!({"first": 1, "a": {"b": 1, "c": 2}, "k.v": 3, "last": 4}));
        assert_eq!(remove(&mut m, "a.b"), Some(json!(1)));
        assert_eq!(remove(&mut m, "k.v"), Some(json!(3)));
        assert_eq!(remove(&mut m, "nope.x"), None);
        assert_eq!(remove(&mut m, "first"), Some(json!(1)));
        let keys: Vec<_> = m.keys().cloned().collect();
        assert_eq!(keys, ["a", "last"]);
        if let Some(v) = get_mut(&mut m, "a.c") {
            *v = json!("changed");
        }
        assert_eq!(get(&m, "a.c"), Some(&json!("changed")));
    }
}
