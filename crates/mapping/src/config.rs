//! The `mapping:` configuration of the Elasticsearch sink.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::normalize::Normalizer;
use crate::pattern::Pattern;
use crate::{Error, Result};

/// How a type conflict is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Convert the value to the mapped type when that loses nothing (`"12"` into a long,
    /// an object into a keyword as its JSON text); otherwise quarantine it.
    Coerce,
    /// Move the value to a sibling field named by its JSON type (`id` → `id_str`,
    /// `id_num`, `id_bool`, `id_obj`); if that one conflicts too, quarantine it.
    Rename,
    /// Move the conflicting field, as JSON text, under `_conflicts.<path>`, and flag the
    /// document.
    Quarantine,
    /// Every leaf under the matching fields becomes a string (mapped as keyword by the
    /// generated template); an object where a keyword is mapped becomes its JSON text;
    /// what still conflicts is quarantined.
    Stringify,
}

impl Policy {
    /// The policy's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Coerce => "coerce",
            Policy::Rename => "rename",
            Policy::Quarantine => "quarantine",
            Policy::Stringify => "stringify",
        }
    }
}

/// One field pattern or several.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum FieldPatterns {
    /// `fields: "message-json.*"`
    One(String),
    /// `fields: ["message-json.*", "labels.*"]`
    Many(Vec<String>),
}

impl FieldPatterns {
    fn as_slice(&self) -> &[String] {
        match self {
            FieldPatterns::One(p) => std::slice::from_ref(p),
            FieldPatterns::Many(ps) => ps,
        }
    }
}

/// A rule: the policy for the fields whose dotted path matches one of the patterns.
///
/// Patterns use Elasticsearch's `path_match` language: `*` matches any run of
/// characters, dots included (`message-json.*` matches `message-json.a.b`); everything
/// else matches itself. The first matching rule wins.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The dotted paths the rule applies to.
    pub fields: FieldPatterns,
    /// What to do with their conflicts.
    pub policy: Policy,
}

/// `sinks.elasticsearch.mapping`.
///
/// ```yaml
/// mapping:
///   default: coerce                   # coerce | rename | quarantine | stringify
///   rules: [{fields: "message-json.*", policy: stringify}]
///   conflicts_field: _conflicts       # where quarantined fields go
///   record_field: event.mapping_conflicts
///   quarantine_flag: event.mapping_quarantined
///   keyword_ignore_above: 1024        # for keywords in the generated template
///   total_fields_limit: 2000          # optional: index.mapping.total_fields.limit in the template
/// ```
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Policy for fields no rule matches. Default `coerce`.
    #[serde(default = "default_policy")]
    pub default: Policy,
    /// Rules, first match wins. Default none.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Object that holds quarantined fields. Default `_conflicts`.
    #[serde(default = "default_conflicts_field")]
    pub conflicts_field: String,
    /// List in which each document records what was changed. Default
    /// `event.mapping_conflicts`.
    #[serde(default = "default_record_field")]
    pub record_field: String,
    /// Boolean set to `true` on documents with a quarantined field. Default
    /// `event.mapping_quarantined`.
    #[serde(default = "default_flag_field")]
    pub quarantine_flag: String,
    /// `ignore_above` of the keyword fields the generated template maps. Default 1024.
    #[serde(default = "default_keyword_ignore_above")]
    pub keyword_ignore_above: u32,
    /// `index.mapping.total_fields.limit` written into the generated template. Default
    /// none (Elasticsearch's 1000).
    #[serde(default)]
    pub total_fields_limit: Option<u64>,
}

fn default_policy() -> Policy {
    Policy::Coerce
}

fn default_conflicts_field() -> String {
    "_conflicts".into()
}

fn default_record_field() -> String {
    "event.mapping_conflicts".into()
}

fn default_flag_field() -> String {
    "event.mapping_quarantined".into()
}

fn default_keyword_ignore_above() -> u32 {
    1024
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            default: default_policy(),
            rules: Vec::new(),
            conflicts_field: default_conflicts_field(),
            record_field: default_record_field(),
            quarantine_flag: default_flag_field(),
            keyword_ignore_above: default_keyword_ignore_above(),
            total_fields_limit: None,
        }
    }
}

impl MappingConfig {
    /// Reads the `mapping:` object (YAML converted to JSON); errors name the key, e.g.
    /// `mapping.rules[0].policy: unknown variant "strngify", expected one of …`.
    pub fn from_json(value: &Value) -> Result<MappingConfig> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "mapping".to_owned()
            } else {
                format!("mapping.{path}")
            };
            Error::config(path, e.into_inner().to_string())
        })
    }

    /// Validates the configuration and builds the normalizer.
    pub fn build(&self) -> Result<Normalizer> {
        let mut rules = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("mapping.rules[{i}].fields");
            let patterns = rule.fields.as_slice();
            if patterns.is_empty() {
                return Err(Error::config(at, "needs at least one pattern"));
            }
            let mut compiled = Vec::new();
            for p in patterns {
                if p.is_empty() {
                    return Err(Error::config(at, "a pattern cannot be empty"));
                }
                compiled.push(Pattern::wildcard(p));
            }
            rules.push((compiled, rule.policy));
        }
        let own = [
            ("conflicts_field", &self.conflicts_field),
            ("record_field", &self.record_field),
            ("quarantine_flag", &self.quarantine_flag),
        ];
        for (key, path) in own {
            if path.is_empty() || path.split('.').any(|p| p.trim().is_empty()) {
                return Err(Error::config(
                    format!("mapping.{key}"),
                    format!("{path:?} is not a field path (empty parts)"),
                ));
            }
            if path.starts_with("@timestamp")
                || path.starts_with("@metadata")
                || path.starts_with("_id")
            {
                return Err(Error::config(
                    format!("mapping.{key}"),
                    format!("{path:?} is reserved"),
                ));
            }
        }
        for (i, (ka, a)) in own.iter().enumerate() {
            for (kb, b) in &own[i + 1..] {
                if a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}.")) {
                    return Err(Error::config(
                        format!("mapping.{kb}"),
                        format!("{b:?} overlaps {ka} {a:?}"),
                    ));
                }
            }
        }
        if self.keyword_ignore_above == 0 || self.keyword_ignore_above > 8191 {
            return Err(Error::config(
                "mapping.keyword_ignore_above",
                "must be between 1 and 8191 (longer keywords can exceed Lucene's 32766-byte term limit)",
            ));
        }
        if self.total_fields_limit == Some(0) {
            return Err(Error::config(
                "mapping.total_fields_limit",
                "must be at least 1",
            ));
        }
        Ok(Normalizer::new(self.clone(), rules))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_documented_values() {
        let c = MappingConfig::from_json(&json!({})).unwrap();
        assert_eq!(c, MappingConfig::default());
        assert_eq!(c.default, Policy::Coerce);
        assert_eq!(c.conflicts_field, "_conflicts");
        assert_eq!(c.record_field, "event.mapping_conflicts");
        assert_eq!(c.quarantine_flag, "event.mapping_quarantined");
        assert_eq!(c.keyword_ignore_above, 1024);
        assert!(c.build().is_ok());
    }

    #[test]
    fn the_issue_example_parses() {
        let c = MappingConfig::from_json(&json!({
            "default": "coerce",
            "rules": [{"fields": "message-json.*", "policy": "stringify"},
                      {"fields": ["a.*", "b"], "policy": "rename"}]
        }))
        .unwrap();
        assert_eq!(c.rules[0].policy, Policy::Stringify);
        assert_eq!(
            c.rules[1].fields,
            FieldPatterns::Many(vec!["a.*".into(), "b".into()])
        );
        c.build().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!({"defualt": "coerce"}), "mapping.defualt: unknown field `defualt`, expected one of `default`, `rules`, `conflicts_field`, `record_field`, `quarantine_flag`, `keyword_ignore_above`, `total_fields_limit`"),
            (json!({"default": "drop"}), "mapping.default: unknown variant `drop`, expected one of `coerce`, `rename`, `quarantine`, `stringify`"),
            (json!({"rules": [{"fields": "a", "policy": "rename", "extra": 1}]}), "mapping.rules[0].extra: unknown field `extra`, expected `fields` or `policy`"),
            (json!({"rules": [{"fields": "a"}]}), "mapping.rules[0]: missing field `policy`"),
            (json!({"rules": [{"fields": 5, "policy": "rename"}]}), "mapping.rules[0].fields: data did not match any variant of untagged enum FieldPatterns"),
        ];
        for (v, want) in cases {
            assert_eq!(MappingConfig::from_json(&v).unwrap_err().to_string(), want);
        }
        let build_cases = [
            (json!({"rules": [{"fields": "", "policy": "rename"}]}), "mapping.rules[0].fields: a pattern cannot be empty"),
            (json!({"rules": [{"fields": [], "policy": "rename"}]}), "mapping.rules[0].fields: needs at least one pattern"),
            (json!({"conflicts_field": "a..b"}), "mapping.conflicts_field: \"a..b\" is not a field path (empty parts)"),
            (json!({"quarantine_flag": "event.mapping_conflicts.flag"}), "mapping.quarantine_flag: \"event.mapping_conflicts.flag\" overlaps record_field \"event.mapping_conflicts\""),
            (json!({"keyword_ignore_above": 0}), "mapping.keyword_ignore_above: must be between 1 and 8191 (longer keywords can exceed Lucene's 32766-byte term limit)"),
        ];
        for (v, want) in build_cases {
            let c = MappingConfig::from_json(&v).unwrap();
            assert_eq!(c.build().unwrap_err().to_string(), want);
        }
    }
}
