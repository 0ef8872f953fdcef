//! Processors that add constant values: `add_fields`, `add_labels` and `add_tags`.

use logtide_event::path::json_type;
use logtide_event::{Event, METADATA_KEY, TIMESTAMP_KEY};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::chain::Report;
use crate::config::{self, StringList};
use crate::merge::{deep_update_from, expand_keys};
use crate::{Error, Result};

/// `add_fields` (and `add_labels`, which is `add_fields` under `labels` with flattened
/// keys): merges constant values into the event, overwriting.
#[derive(Debug)]
pub(crate) struct AddFields {
    /// `None`: the event root.
    target: Option<String>,
    fields: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddFieldsConfig {
    #[serde(default)]
    target: Option<String>,
    fields: Map<String, Value>,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLabelsConfig {
    labels: Map<String, Value>,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

impl AddFields {
    /// `target` defaults to `fields`; `""` is the event root and `@metadata` the metadata.
    /// Dotted keys in `fields` are expanded into objects, as Filebeat's configuration
    /// reader does.
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: AddFieldsConfig = config::from_value(options, path)?;
        let fields =
            expand_keys(c.fields).map_err(|reason| config::invalid(path, "fields", reason))?;
        let target = match c.target.as_deref() {
            None => Some("fields".to_owned()),
            Some("") => {
                if fields.contains_key(TIMESTAMP_KEY) {
                    return Err(config::invalid(
                        path,
                        "fields",
                        "@timestamp cannot be set by add_fields",
                    ));
                }
                if fields.get(METADATA_KEY).is_some_and(|m| !m.is_object()) {
                    return Err(config::invalid(
                        path,
                        "fields",
                        "@metadata must be an object",
                    ));
                }
                None
            }
            Some(t) => Some(t.to_owned()),
        };
        Ok(AddFields { target, fields })
    }

    /// `add_labels`: `labels` flattened into dotted keys (`{a: {b: 1}, l: [x]}` gives
    /// `a.b: "1"`, `l.0: "x"`) with string values, under `labels`.
    pub(crate) fn build_labels(options: &Value, path: &str) -> Result<Self> {
        let c: AddLabelsConfig = config::from_value(options, path)?;
        let mut flat = Map::new();
        for (key, value) in &c.labels {
            flatten_label(key.clone(), value, &mut flat)
                .map_err(|reason| config::invalid(path, "labels", reason))?;
        }
        Ok(AddFields {
            target: Some("labels".to_owned()),
            fields: flat,
        })
    }

    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        match self.target.as_deref() {
            None => {
                for (key, value) in &self.fields {
                    match (key.as_str(), value) {
                        (METADATA_KEY, Value::Object(meta)) => {
                            deep_update_from(event.metadata_mut(), meta, true)
                        }
                        _ => merge_one(event.fields_mut(), key, value),
                    }
                }
            }
            Some(METADATA_KEY) => deep_update_from(event.metadata_mut(), &self.fields, true),
            Some(target) => match event.get_mut(target) {
                Some(Value::Object(existing)) => deep_update_from(existing, &self.fields, true),
                _ => {
                    if let Err(e) = event.insert(target, Value::Object(self.fields.clone())) {
                        report.error(e.into());
                    }
                }
            },
        }
    }
}

/// Merges one borrowed `key: value` into `dst`, overwriting.
fn merge_one(dst: &mut Map<String, Value>, key: &str, value: &Value) {
    match (dst.get_mut(key), value) {
        (Some(Value::Object(old)), Value::Object(new)) => deep_update_from(old, new, true),
        _ => {
            dst.insert(key.to_owned(), value.clone());
        }
    }
}

fn flatten_label(key: String, value: &Value, out: &mut Map<String, Value>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_label(format!("{key}.{k}"), v, out)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_label(format!("{key}.{i}"), v, out)?;
            }
        }
        Value::String(s) => {
            out.insert(key, Value::String(s.clone()));
        }
        Value::Number(n) => {
            out.insert(key, Value::String(n.to_string()));
        }
        Value::Bool(b) => {
            out.insert(key, Value::String(b.to_string()));
        }
        Value::Null => return Err(format!("label {key} has no value")),
    }
    Ok(())
}

/// `add_tags`: appends tags to a list field (`tags` by default), duplicates included.
#[derive(Debug)]
pub(crate) struct AddTags {
    tags: Vec<Value>,
    target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTagsConfig {
    tags: StringList,
    #[serde(default)]
    target: Option<String>,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

impl AddTags {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: AddTagsConfig = config::from_value(options, path)?;
        let target = match c.target {
            Some(t) if !t.is_empty() => t,
            _ => "tags".to_owned(),
        };
        Ok(AddTags {
            tags: c.tags.0.into_iter().map(Value::String).collect(),
            target,
        })
    }

    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        if self.tags.is_empty() {
            return;
        }
        match event.get_mut(&self.target) {
            Some(Value::Array(tags)) => tags.extend_from_slice(&self.tags),
            Some(other) => report.error(Error::NotAnArray {
                field: self.target.clone(),
                found: json_type(other),
            }),
            None => {
                if let Err(e) = event.insert(&self.target, Value::Array(self.tags.clone())) {
                    report.error(e.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Processors;
    use logtide_event::Event;
    use serde_json::{json, Value};

    fn run(name: &str, options: Value, input: Value) -> (Value, Vec<String>) {
        let chain = Processors::from_config(&json!([{ name: options }])).unwrap();
        let mut event = Event::from_json(input).unwrap();
        let outcome = chain.run(&mut event);
        let mut out = serde_json::to_value(&event).unwrap();
        out.as_object_mut().unwrap().remove("@timestamp");
        let errors = outcome
            .errors()
            .iter()
            .map(|e| e.error().to_string())
            .collect();
        (out, errors)
    }

    type Case = (&'static str, Value, Value, Value, Vec<&'static str>);

    fn check(name: &str, cases: Vec<Case>) {
        for (what, options, input, want, want_errors) in cases {
            let (got, errors) = run(name, options, input);
            assert_eq!(got, want, "{name}: {what}");
            assert_eq!(errors, want_errors, "{name}: {what}");
        }
    }

    #[test]
    fn add_fields() {
        check(
            "add_fields",
            vec![
                (
                    "default target, dotted keys expanded",
                    json!({"fields": {"project.name": "shop", "id": "5747"}}),
                    json!({"message": "m"}),
                    json!({"message": "m", "fields": {"project": {"name": "shop"}, "id": "5747"}}),
                    vec![],
                ),
                (
                    "named target merges and overwrites",
                    json!({"target": "project", "fields": {"name": "new", "o": {"b": 2}}}),
                    json!({"project": {"name": "old", "keep": 1, "o": {"a": 1}}}),
                    json!({"project": {"name": "new", "keep": 1, "o": {"a": 1, "b": 2}}}),
                    vec![],
                ),
                (
                    "nested target path replaces a scalar",
                    json!({"target": "a.b", "fields": {"c": 1}}),
                    json!({"a": {"b": "x"}}),
                    json!({"a": {"b": {"c": 1}}}),
                    vec![],
                ),
                (
                    "root target, metadata",
                    json!({"target": "", "fields": {"env": "prod", "@metadata": {"index": "i"}, "o": {"x": 1}}}),
                    json!({"env": "dev", "o": {"y": 2}}),
                    json!({"env": "prod", "o": {"y": 2, "x": 1}, "@metadata": {"index": "i"}}),
                    vec![],
                ),
                (
                    "metadata target",
                    json!({"target": "@metadata", "fields": {"pipeline": "p"}}),
                    json!({}),
                    json!({"@metadata": {"pipeline": "p"}}),
                    vec![],
                ),
                (
                    "target under a scalar",
                    json!({"target": "s.t", "fields": {"c": 1}}),
                    json!({"s": 1}),
                    json!({"s": 1}),
                    vec!["cannot set field s.t: s is a number, not an object"],
                ),
            ],
        );
        for (options, want) in [
            (json!({"target": "", "fields": {"@timestamp": "x"}}), "processors[0].add_fields.fields: @timestamp cannot be set by add_fields"),
            (json!({"fields": {"a": 1, "a.b": 2}}), "processors[0].add_fields.fields.a: given twice (once through a dotted key) with different values"),
            (json!({"target": "x"}), r#"processors[0].add_fields: missing required key "fields""#),
        ] {
            let err = Processors::from_config(&json!([{ "add_fields": options }])).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn add_labels() {
        check(
            "add_labels",
            vec![(
                "flattened with string values",
                json!({"labels": {"number": 1, "with.dots": "test", "nested": {"with.dots": "nested"}, "array": ["do", "re", {"with.field": "mi"}], "on": true}}),
                json!({"labels": {"existing": "x"}}),
                json!({"labels": {"existing": "x", "number": "1", "with.dots": "test", "nested.with.dots": "nested", "array.0": "do", "array.1": "re", "array.2.with.field": "mi", "on": "true"}}),
                vec![],
            )],
        );
        let err =
            Processors::from_config(&json!([{"add_labels": {"labels": {"a": null}}}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "processors[0].add_labels.labels: label a has no value"
        );
    }

    #[test]
    fn add_tags() {
        check(
            "add_tags",
            vec![
                (
                    "creates the list",
                    json!({"tags": ["web", "prod"]}),
                    json!({}),
                    json!({"tags": ["web", "prod"]}),
                    vec![],
                ),
                (
                    "appends without removing duplicates",
                    json!({"tags": "web"}),
                    json!({"tags": ["web"]}),
                    json!({"tags": ["web", "web"]}),
                    vec![],
                ),
                (
                    "custom target",
                    json!({"tags": ["a"], "target": "service.tags"}),
                    json!({"service": {"name": "s"}}),
                    json!({"service": {"name": "s", "tags": ["a"]}}),
                    vec![],
                ),
                (
                    "target is not a list",
                    json!({"tags": ["a"]}),
                    json!({"tags": "x"}),
                    json!({"tags": "x"}),
                    vec![
                        r#"cannot add tags to field "tags": it holds a JSON string, not an array"#,
                    ],
                ),
            ],
        );
    }
}
