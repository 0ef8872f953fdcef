//! Dynamic templates: which new fields they select and the mapping they give them.

use serde_json::{json, Map, Value};

use crate::pattern::Pattern;
use crate::{Error, Result};

/// The JSON kinds a dynamic template can select with `match_mapping_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatchType {
    Object,
    String,
    Long,
    Double,
    Boolean,
    Date,
    Binary,
}

impl MatchType {
    fn parse(s: &str) -> Option<MatchType> {
        Some(match s {
            "object" => MatchType::Object,
            "string" => MatchType::String,
            "long" => MatchType::Long,
            "double" => MatchType::Double,
            "boolean" => MatchType::Boolean,
            "date" => MatchType::Date,
            "binary" => MatchType::Binary,
            _ => return None,
        })
    }

    /// The type a template without `type` gives (and `{dynamic_type}` stands for).
    pub(crate) fn default_type(self, runtime: bool) -> &'static str {
        match (self, runtime) {
            (MatchType::Object, _) => "object",
            (MatchType::String, false) => "text",
            (MatchType::String, true) => "keyword",
            (MatchType::Long, _) => "long",
            (MatchType::Double, false) => "float",
            (MatchType::Double, true) => "double",
            (MatchType::Boolean, _) => "boolean",
            (MatchType::Date, _) => "date",
            (MatchType::Binary, _) => "binary",
        }
    }
}

/// One entry of `dynamic_templates`.
#[derive(Clone, Debug)]
pub(crate) struct DynamicTemplate {
    matches: Vec<Pattern>,
    unmatches: Vec<Pattern>,
    path_matches: Vec<Pattern>,
    path_unmatches: Vec<Pattern>,
    /// `None`: every type (`*` or absent).
    match_types: Option<Vec<MatchType>>,
    unmatch_types: Vec<MatchType>,
    /// The `mapping` (or `runtime`) object.
    mapping: Map<String, Value>,
    runtime: bool,
    raw: Value,
}

impl DynamicTemplate {
    /// Parses `{"<name>": {"match": …, "mapping": …}}`.
    pub(crate) fn parse(v: &Value, at: &str) -> Result<DynamicTemplate> {
        let Some((name, body)) = v
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
        else {
            return Err(Error::mapping(
                at,
                "a dynamic template is an object with one named entry",
            ));
        };
        let at = format!("{at}.{name}");
        let Value::Object(body) = body else {
            return Err(Error::mapping(at, "must be an object"));
        };
        let regex = match body.get("match_pattern").and_then(Value::as_str) {
            None | Some("simple") => false,
            Some("regex") => true,
            Some(other) => {
                return Err(Error::mapping(
                    format!("{at}.match_pattern"),
                    format!("unknown match_pattern {other:?}"),
                ))
            }
        };
        let patterns = |key: &str| -> Result<Vec<Pattern>> {
            let key_at = format!("{at}.{key}");
            let list = match body.get(key) {
                None => return Ok(Vec::new()),
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|p| {
                        p.as_str()
                            .ok_or_else(|| Error::mapping(&key_at, "patterns must be strings"))
                    })
                    .collect::<Result<_>>()?,
                Some(_) => {
                    return Err(Error::mapping(
                        key_at,
                        "must be a string or a list of strings",
                    ))
                }
            };
            list.into_iter()
                .map(|p| {
                    if regex {
                        Pattern::regex(p, &key_at)
                    } else {
                        Ok(Pattern::wildcard(p))
                    }
                })
                .collect()
        };
        let types = |key: &str| -> Result<Option<Vec<MatchType>>> {
            let key_at = format!("{at}.{key}");
            let list: Vec<&str> = match body.get(key) {
                None => return Ok(None),
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                Some(_) => {
                    return Err(Error::mapping(
                        key_at,
                        "must be a string or a list of strings",
                    ))
                }
            };
            if list.contains(&"*") {
                return Ok(None);
            }
            list.into_iter()
                .map(|t| {
                    MatchType::parse(t).ok_or_else(|| {
                        Error::mapping(&key_at, format!("unknown mapping type {t:?}"))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        };
        let (mapping, runtime) = match (body.get("mapping"), body.get("runtime")) {
            (Some(Value::Object(m)), None) => (m.clone(), false),
            (None, Some(Value::Object(m))) => (m.clone(), true),
            (None, None) => {
                return Err(Error::mapping(
                    at,
                    "a dynamic template needs mapping or runtime",
                ))
            }
            _ => return Err(Error::mapping(at, "mapping/runtime must be one object")),
        };
        Ok(DynamicTemplate {
            matches: patterns("match")?,
            unmatches: patterns("unmatch")?,
            path_matches: patterns("path_match")?,
            path_unmatches: patterns("path_unmatch")?,
            match_types: types("match_mapping_type")?,
            unmatch_types: types("unmatch_mapping_type")?.unwrap_or_default(),
            mapping,
            runtime,
            raw: v.clone(),
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        self.raw.clone()
    }

    pub(crate) fn is_runtime(&self) -> bool {
        self.runtime
    }

    /// Whether the template selects a new field `name` at `path` of the given kind.
    pub(crate) fn selects(&self, path: &str, name: &str, kind: MatchType) -> bool {
        if self.runtime && kind == MatchType::Object {
            return false;
        }
        if let Some(types) = &self.match_types {
            if !types.contains(&kind) {
                return false;
            }
        }
        if self.unmatch_types.contains(&kind) {
            return false;
        }
        let any = |ps: &[Pattern], s: &str| ps.iter().any(|p| p.matches(s));
        (self.matches.is_empty() || any(&self.matches, name))
            && !any(&self.unmatches, name)
            && (self.path_matches.is_empty() || any(&self.path_matches, path))
            && !any(&self.path_unmatches, path)
    }

    /// The mapping for `name`: placeholders replaced, `type` filled in.
    pub(crate) fn mapping_for(&self, name: &str, kind: MatchType) -> Map<String, Value> {
        let dynamic_type = kind.default_type(self.runtime);
        let mut out = Map::new();
        for (k, v) in &self.mapping {
            out.insert(
                substitute(k, name, dynamic_type),
                substitute_value(v, name, dynamic_type),
            );
        }
        if !out.contains_key("type") {
            out.insert("type".into(), json!(dynamic_type));
        }
        out
    }
}

fn substitute(s: &str, name: &str, dynamic_type: &str) -> String {
    s.replace("{name}", name)
        .replace("{dynamic_type}", dynamic_type)
}

fn substitute_value(v: &Value, name: &str, dynamic_type: &str) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, name, dynamic_type)),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| substitute_value(v, name, dynamic_type))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        substitute(k, name, dynamic_type),
                        substitute_value(v, name, dynamic_type),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Value) -> DynamicTemplate {
        DynamicTemplate::parse(&v, "dynamic_templates[0]").unwrap()
    }

    #[test]
    fn selection_rules() {
        let longs = t(json!({"longs_as_strings": {
            "match_mapping_type": "string", "match": "long_*", "unmatch": "*_text",
            "mapping": {"type": "long"}}}));
        assert!(longs.selects("a.long_num", "long_num", MatchType::String));
        assert!(!longs.selects("a.long_text", "long_text", MatchType::String));
        assert!(!longs.selects("a.long_num", "long_num", MatchType::Long));
        let path = t(json!({"full_name": {
            "path_match": ["name.*", "person.*"], "path_unmatch": "*.middle",
            "mapping": {"type": "text", "copy_to": "full_name"}}}));
        assert!(path.selects("name.first", "first", MatchType::String));
        assert!(path.selects("person.first", "first", MatchType::Object));
        assert!(!path.selects("name.middle", "middle", MatchType::String));
        let re = t(
            json!({"re": {"match_pattern": "regex", "match": "^profit_\\d+$", "mapping": {"type": "double"}}}),
        );
        assert!(re.selects("profit_12", "profit_12", MatchType::Long));
        assert!(!re.selects("profit_x", "profit_x", MatchType::Long));
        let rt = t(json!({"rt": {"match_mapping_type": "*", "runtime": {}}}));
        assert!(rt.is_runtime());
        assert!(!rt.selects("o", "o", MatchType::Object));
        assert!(rt.selects("s", "s", MatchType::String));
    }

    #[test]
    fn placeholders_and_default_type() {
        let named = t(
            json!({"named": {"match": "*", "mapping": {"type": "{dynamic_type}", "analyzer": "{name}"}}}),
        );
        assert_eq!(
            Value::Object(named.mapping_for("english", MatchType::String)),
            json!({"type": "text", "analyzer": "english"})
        );
        assert_eq!(
            Value::Object(named.mapping_for("ratio", MatchType::Double)),
            json!({"type": "float", "analyzer": "ratio"})
        );
        let untyped = t(json!({"no_index": {"match": "*", "mapping": {"index": false}}}));
        assert_eq!(
            Value::Object(untyped.mapping_for("n", MatchType::Long)),
            json!({"type": "long", "index": false})
        );
    }

    #[test]
    fn bad_templates_name_the_place() {
        for (v, want) in [
            (json!({"a": {"match": "*"}}), "mapping JSON at dynamic_templates[0].a: a dynamic template needs mapping or runtime"),
            (json!({"a": {"match_mapping_type": "strang", "mapping": {}}}), "mapping JSON at dynamic_templates[0].a.match_mapping_type: unknown mapping type \"strang\""),
            (json!({"a": {}, "b": {}}), "mapping JSON at dynamic_templates[0]: a dynamic template is an object with one named entry"),
        ] {
            assert_eq!(DynamicTemplate::parse(&v, "dynamic_templates[0]").unwrap_err().to_string(), want);
        }
    }
}
