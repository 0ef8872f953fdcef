//! Loading logtide's configuration files, with one rule for each convention they share.
//!
//! Every binary's configuration is YAML read into a JSON value, reshaped with Filebeat's
//! conventions, then deserialized into typed structs that refuse unknown keys:
//!
//! - [`parse_yaml`]: YAML text in, a [`serde_json::Value`] out.
//! - [`expand_dotted`]: dotted keys are paths (`output.file: {…}` is
//!   `output: {file: {…}}`), except inside the sections named verbatim (a processor's
//!   `when`, a `processors` list), whose keys are field names.
//! - [`expand_env`]: `${VAR}`, `${VAR:default}` and `${VAR:-default}` in every string.
//! - [`from_value`]: the typed struct; an error names the key's path (`inputs[0].pathz`).
//! - [`duration`] and [`ByteSize`]: `10s`, `1h30m` or a number of seconds; `64MiB` or a
//!   number of bytes. Every crate's options use these, so a duration is written the same
//!   way everywhere.
//!
//! ```
//! use logtide_config::{expand_dotted, expand_env, from_value, parse_yaml};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Output {
//!     file: File,
//! }
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct File {
//!     path: String,
//!     #[serde(with = "logtide_config::duration")]
//!     flush: std::time::Duration,
//! }
//! #[derive(serde::Deserialize)]
//! struct Doc {
//!     output: Output,
//! }
//!
//! let value = parse_yaml("output.file: {path: '${LOGTIDE_DOC_UNSET:/tmp/out}', flush: 2s}")?;
//! let mut value = expand_dotted(value, "", &["processors"])?;
//! expand_env(&mut value, "")?;
//! let doc: Doc = from_value(value, "")?;
//! assert_eq!(doc.output.file.path, "/tmp/out");
//! assert_eq!(doc.output.file.flush, std::time::Duration::from_secs(2));
//!
//! let bad = parse_yaml("output: {file: {path: x, flush: 2s, pathz: y}}")?;
//! let err = from_value::<Doc>(bad, "").err().unwrap();
//! assert!(err.to_string().starts_with("output.file.pathz: unknown field `pathz`"), "{err}");
//! # Ok::<(), logtide_config::Error>(())
//! ```

pub mod duration;
mod size;

pub use size::ByteSize;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A configuration error: where (a key's path, empty for the whole document) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct Error {
    /// The path of the offending key (`inputs[0].paths[1]`), or empty.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl Error {
    /// An error at `path`.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `at.key`, or `key` at the top.
fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// Parses YAML text into a JSON value.
pub fn parse_yaml(text: &str) -> Result<Value, Error> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| Error::at("", format!("invalid YAML: {e}")))
}

/// Expands dotted keys into nested objects, merging with objects already there. Below a
/// key whose last segment is in `verbatim`, contents are kept as written (their keys are
/// field names, not paths). `at` is where `value` is, for errors.
///
/// A key set twice, or set both as a value and as a section, is an error.
pub fn expand_dotted(value: Value, at: &str, verbatim: &[&str]) -> Result<Value, Error> {
    let Value::Object(map) = value else {
        return Ok(value);
    };
    let mut out = Map::new();
    for (key, v) in map {
        let last = key.rsplit('.').next().unwrap_or_default();
        let v = if verbatim.contains(&last) {
            v
        } else {
            expand_dotted(v, &join(at, &key), verbatim)?
        };
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut cur = &mut out;
        let mut path = String::new();
        for p in parts {
            path = join(&path, p);
            let slot = cur
                .entry(p.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            cur = match slot {
                Value::Object(m) => m,
                _ => {
                    return Err(Error::at(
                        join(at, &key),
                        format!("{path} is set both as a value and as a section"),
                    ))
                }
            };
        }
        match (cur.get_mut(last), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    if existing.insert(k.clone(), v).is_some() {
                        return Err(Error::at(join(at, &format!("{key}.{k}")), "set twice"));
                    }
                }
            }
            (Some(_), _) => return Err(Error::at(join(at, &key), "set twice")),
            (None, v) => {
                cur.insert(last.to_owned(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Replaces `${VAR}`, `${VAR:default}` and `${VAR:-default}` in every string of `value`
/// with the environment's values; `path` is where `value` is, for errors. An error names
/// the variable, never a value.
pub fn expand_env(value: &mut Value, path: &str) -> Result<(), Error> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = expand_env_text(s).map_err(|message| Error::at(path, message))?;
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand_env(v, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_env(v, &join(path, k))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// [`expand_env`] for one string.
pub fn expand_env_text(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let spec = &after[..end];
        let (name, default) = match spec.split_once(":-").or_else(|| spec.split_once(':')) {
            Some((n, d)) => (n, Some(d)),
            None => (spec, None),
        };
        match (std::env::var(name), default) {
            (Ok(v), _) => out.push_str(&v),
            (Err(_), Some(d)) => out.push_str(d),
            (Err(_), None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Deserializes `value` into `T`; an error names the path of the offending key below
/// `at` (where `value` is).
pub fn from_value<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match inner.as_str() {
            "." | "" => at.to_owned(),
            inner if at.is_empty() => inner.to_owned(),
            inner if inner.starts_with('[') => format!("{at}{inner}"),
            inner => format!("{at}.{inner}"),
        };
        Error::at(path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_nest_and_merge() {
        let v = json!({"output.file": {"path": "/x"}, "output": {"file.name": "a"}, "processors": [{"a.b": 1}], "x.when": {"c.d": 1}});
        let got = expand_dotted(v, "", &["processors", "when"]).unwrap();
        assert_eq!(
            got,
            json!({"output": {"file": {"path": "/x", "name": "a"}}, "processors": [{"a.b": 1}], "x": {"when": {"c.d": 1}}})
        );
    }

    #[test]
    fn dotted_key_conflicts_name_the_key() {
        let cases = [
            (
                json!({"output.console.pretty": true, "output": {"console": {"pretty": false}}}),
                "output.console.pretty: set twice",
            ),
            (
                json!({"a": 1, "a.b": 2}),
                "at.a.b: a is set both as a value and as a section",
            ),
            (json!({"a.b": 1, "a": {"b": 2}}), "at.a.b: set twice"),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            let at = if i == 0 { "" } else { "at" };
            let err = expand_dotted(v, at, &[]).unwrap_err().to_string();
            assert_eq!(err, want);
        }
    }

    #[test]
    fn env_forms() {
        std::env::set_var("LOGTIDE_CONFIG_TEST_SET", "v");
        std::env::remove_var("LOGTIDE_CONFIG_TEST_UNSET");
        let mut v = json!({"a": ["x${LOGTIDE_CONFIG_TEST_SET}y", "${LOGTIDE_CONFIG_TEST_UNSET:d}", "${LOGTIDE_CONFIG_TEST_UNSET:-e}", "${LOGTIDE_CONFIG_TEST_SET:f}"], "n": 1});
        expand_env(&mut v, "").unwrap();
        assert_eq!(v, json!({"a": ["xvy", "d", "e", "v"], "n": 1}));
        let mut bad = json!({"a": {"b": ["ok", "${LOGTIDE_CONFIG_TEST_UNSET}"]}});
        assert_eq!(
            expand_env(&mut bad, "").unwrap_err().to_string(),
            "a.b[1]: environment variable LOGTIDE_CONFIG_TEST_UNSET is not set"
        );
        assert_eq!(
            expand_env_text("${OPEN").unwrap_err(),
            "unclosed ${ in \"${OPEN\""
        );
    }

    #[test]
    fn typed_errors_name_the_path_below_at() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            n: u32,
        }
        let err = from_value::<Vec<S>>(json!([{"n": 1}, {"n": "x"}]), "list").unwrap_err();
        assert_eq!(err.path, "list[1].n");
        let err = from_value::<S>(json!({"m": 1}), "p.q").unwrap_err();
        assert_eq!(err.path, "p.q.m");
        assert!(err.message.contains("unknown field `m`"), "{err}");
        let err = from_value::<S>(json!({"n": -1}), "").unwrap_err();
        assert_eq!(err.path, "n");
        assert!(parse_yaml("a: [")
            .unwrap_err()
            .message
            .starts_with("invalid YAML"));
    }
}
