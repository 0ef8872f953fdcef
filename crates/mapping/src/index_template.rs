//! The composable index template that goes with a normalizer's policies.

use serde_json::{json, Map, Value};

use crate::config::Policy;
use crate::normalize::Normalizer;

/// Template types a leaf can arrive as (`match_mapping_type`), objects excluded.
const LEAF_TYPES: [&str; 5] = ["string", "date", "long", "double", "boolean"];

impl Normalizer {
    /// The body of `PUT _index_template/<name>` for indices matching `index_patterns`:
    ///
    /// - `dynamic_templates`: for each `stringify` rule, every leaf under its patterns is
    ///   a keyword (one template per leaf type, so that date-like and numeric-looking
    ///   strings are keywords too); for each `rename` rule, the sibling fields it creates
    ///   get a fixed type (`*_str` keyword, `*_num` double, `*_bool` boolean).
    /// - `properties`: the conflicts object is stored but not parsed (`enabled: false`),
    ///   so a quarantined value can never conflict again and adds no fields; the change
    ///   records and the quarantine flag get fixed types.
    /// - `settings`: `index.mapping.total_fields.limit` when configured.
    ///
    /// Templates use `path_match`, so they work on Elasticsearch 7 and 8 and OpenSearch.
    pub fn index_template(&self, index_patterns: &[&str], priority: u64) -> Value {
        let config = self.config();
        let keyword = json!({"type": "keyword", "ignore_above": config.keyword_ignore_above});
        let mut templates = Vec::new();
        let mut push = |name: String, field: (&str, &str), match_type: &str, mapping: &Value| {
            let mut body = Map::new();
            body.insert(field.0.into(), json!(field.1));
            body.insert("match_mapping_type".into(), json!(match_type));
            body.insert("mapping".into(), mapping.clone());
            templates.push(json!({ name: Value::Object(body) }));
        };
        let mut rules: Vec<(Vec<String>, Policy)> = self
            .rules()
            .iter()
            .map(|(patterns, policy)| {
                (
                    patterns.iter().map(|p| p.as_str().to_owned()).collect(),
                    *policy,
                )
            })
            .collect();
        rules.push((vec!["*".to_owned()], config.default));
        for (i, (patterns, policy)) in rules.iter().enumerate() {
            for (j, pattern) in patterns.iter().enumerate() {
                let field = if pattern == "*" {
                    ("match", "*")
                } else {
                    ("path_match", pattern.as_str())
                };
                match policy {
                    Policy::Stringify => {
                        for t in LEAF_TYPES {
                            push(format!("logtide_stringify_{i}_{j}_{t}"), field, t, &keyword);
                        }
                    }
                    Policy::Rename => {
                        let (key, base) = field;
                        let with = |suffix: &str| format!("{base}{suffix}");
                        let (s, n, b) = (with("_str"), with("_num"), with("_bool"));
                        for t in ["string", "date", "long", "double"] {
                            push(
                                format!("logtide_rename_{i}_{j}_str_{t}"),
                                (key, &s),
                                t,
                                &keyword,
                            );
                        }
                        for t in ["long", "double"] {
                            push(
                                format!("logtide_rename_{i}_{j}_num_{t}"),
                                (key, &n),
                                t,
                                &json!({"type": "double"}),
                            );
                        }
                        push(
                            format!("logtide_rename_{i}_{j}_bool"),
                            (key, &b),
                            "boolean",
                            &json!({"type": "boolean"}),
                        );
                    }
                    Policy::Coerce | Policy::Quarantine => {}
                }
            }
        }
        let mut properties = Map::new();
        insert_path(
            &mut properties,
            &config.conflicts_field,
            json!({"type": "object", "enabled": false}),
        );
        insert_path(
            &mut properties,
            &config.record_field,
            json!({"properties": {
                "field": {"type": "keyword", "ignore_above": config.keyword_ignore_above},
                "action": {"type": "keyword"},
                "reason": {"type": "text"},
                "to": {"type": "keyword", "ignore_above": config.keyword_ignore_above},
                "value": {"type": "keyword", "index": false, "doc_values": false}
            }}),
        );
        insert_path(
            &mut properties,
            &config.quarantine_flag,
            json!({"type": "boolean"}),
        );
        let mut template = Map::new();
        if let Some(limit) = config.total_fields_limit {
            template.insert(
                "settings".into(),
                json!({"index": {"mapping": {"total_fields": {"limit": limit}}}}),
            );
        }
        template.insert(
            "mappings".into(),
            json!({"dynamic_templates": templates, "properties": properties}),
        );
        json!({
            "index_patterns": index_patterns,
            "priority": priority,
            "template": template,
            "_meta": {"managed_by": "logtide", "policies": rules.iter().map(|(p, policy)| json!({"fields": p, "policy": policy.as_str()})).collect::<Vec<_>>()}
        })
    }
}

/// Puts a mapping at a dotted path of a `properties` object, creating objects on the way.
fn insert_path(properties: &mut Map<String, Value>, path: &str, mapping: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = properties;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_owned(), mapping);
            return;
        }
        let entry = cur
            .entry(part.to_owned())
            .or_insert_with(|| json!({"properties": {}}));
        let Some(obj) = entry.as_object_mut() else {
            return;
        };
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        let Some(next) = props.as_object_mut() else {
            return;
        };
        cur = next;
    }
}
