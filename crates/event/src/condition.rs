//! Conditions (`when:`), with Filebeat's names and semantics.

use regex::Regex;
use serde_json::Value;

use crate::path::json_type;
use crate::{Error, Event, Result};

/// A condition on an event, as written under a processor's `when:`.
///
/// One key per condition object:
///
/// - `has_fields: [f, …]`: every field exists.
/// - `equals: {f: v, …}`: every field equals its value; values are strings, integers or
///   booleans, and an integer matches only an integer field.
/// - `contains: {f: s, …}`: every field is a string containing `s`, or an array with such a
///   string.
/// - `regexp: {f: re, …}`: like `contains`, with a regular expression found anywhere in
///   the string.
/// - `range: {f.gte: n, f.lt: n, …}`: every field is a number within the bounds (`gt`,
///   `gte`, `lt`, `lte`).
/// - `and: [c, …]`, `or: [c, …]`, `not: c`.
///
/// A missing field makes `equals`, `contains`, `regexp` and `range` false. Field maps may
/// be nested (`equals: {http: {code: 200}}` is `equals: {http.code: 200}`), as Filebeat
/// flattens them.
#[derive(Debug)]
pub struct Condition(Kind);

#[derive(Debug)]
enum Kind {
    HasFields(Vec<String>),
    Equals(Vec<(String, Expected)>),
    Contains(Vec<(String, String)>),
    Regexp(Vec<(String, Regex)>),
    Range(Vec<(String, Bounds)>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Debug)]
enum Expected {
    /// Compared as Filebeat does: both sides as unsigned 64-bit integers.
    Int(u64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Default)]
struct Bounds {
    gt: Option<f64>,
    gte: Option<f64>,
    lt: Option<f64>,
    lte: Option<f64>,
}

impl Condition {
    /// Builds a condition from its configuration (YAML as JSON), e.g.
    /// `{"has_fields": ["message-json"]}`. Errors name the path under `when`.
    pub fn from_config(config: &Value) -> Result<Condition> {
        Condition::from_config_at(config, "when")
    }

    /// [`Condition::from_config`] with `path` naming where the condition is, e.g.
    /// `processors[1].drop_fields.when` or `rules/errors.yml: when`.
    pub fn from_config_at(config: &Value, path: &str) -> Result<Condition> {
        let Value::Object(map) = config else {
            return Err(invalid(
                path,
                format!(
                    "expected a condition object, found a JSON {}",
                    json_type(config)
                ),
            ));
        };
        let mut entries = map.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(invalid(
                path,
                format!(
                    "a condition must have exactly one key, found {} ({}); combine conditions with and/or",
                    keys.len(),
                    keys.join(", ")
                ),
            ));
        };
        let at = format!("{path}.{key}");
        let kind = match key.as_str() {
            "has_fields" => Kind::HasFields(string_list(value, &at)?),
            "equals" => {
                let mut out = Vec::new();
                for (field, v) in flatten_fields(value, &at)? {
                    let expected = match v {
                        Value::String(s) => Expected::Str(s.clone()),
                        Value::Bool(b) => Expected::Bool(*b),
                        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                            (Some(i), _) => Expected::Int(i as u64),
                            (None, Some(u)) => Expected::Int(u),
                            _ => {
                                return Err(invalid(
                                    &format!("{at}.{field}"),
                                    format!(
                                        "equals compares strings, integers and booleans, not {n}"
                                    ),
                                ))
                            }
                        },
                        other => {
                            return Err(invalid(
                                &format!("{at}.{field}"),
                                format!(
                                    "equals compares strings, integers and booleans, not a JSON {}",
                                    json_type(other)
                                ),
                            ))
                        }
                    };
                    out.push((field, expected));
                }
                Kind::Equals(out)
            }
            "contains" => {
                let mut out = Vec::new();
                for (field, v) in flatten_fields(value, &at)? {
                    let Value::String(s) = v else {
                        return Err(invalid(
                            &format!("{at}.{field}"),
                            format!("contains needs a string, not a JSON {}", json_type(v)),
                        ));
                    };
                    out.push((field, s.clone()));
                }
                Kind::Contains(out)
            }
            "regexp" => {
                let mut out = Vec::new();
                for (field, v) in flatten_fields(value, &at)? {
                    let path = format!("{at}.{field}");
                    let Value::String(s) = v else {
                        return Err(invalid(
                            &path,
                            format!("regexp needs a string, not a JSON {}", json_type(v)),
                        ));
                    };
                    let re =
                        Regex::new(s).map_err(|error| Error::ConditionRegex { path, error })?;
                    out.push((field, re));
                }
                Kind::Regexp(out)
            }
            "range" => Kind::Range(range(value, &at)?),
            "and" | "or" => {
                let Value::Array(items) = value else {
                    return Err(invalid(
                        &at,
                        format!(
                            "expected a list of conditions, found a JSON {}",
                            json_type(value)
                        ),
                    ));
                };
                if items.is_empty() {
                    return Err(invalid(&at, "expected at least one condition"));
                }
                let list = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Condition::from_config_at(c, &format!("{at}[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                if key == "and" {
                    Kind::And(list)
                } else {
                    Kind::Or(list)
                }
            }
            "not" => Kind::Not(Box::new(Condition::from_config_at(value, &at)?)),
            _ => return Err(invalid(path, format!("unknown condition \"{key}\""))),
        };
        Ok(Condition(kind))
    }

    /// Whether `event` meets the condition.
    pub fn check(&self, event: &Event) -> bool {
        match &self.0 {
            Kind::HasFields(fields) => fields
                .iter()
                .all(|f| f == crate::TIMESTAMP_KEY || event.contains(f)),
            Kind::Equals(list) => list
                .iter()
                .all(|(f, expected)| event.get(f).is_some_and(|v| expected.matches(v))),
            Kind::Contains(list) => list.iter().all(|(f, needle)| {
                event
                    .get(f)
                    .is_some_and(|v| any_string(v, |s| s.contains(needle.as_str())))
            }),
            Kind::Regexp(list) => list.iter().all(|(f, re)| {
                event
                    .get(f)
                    .is_some_and(|v| any_string(v, |s| re.is_match(s)))
            }),
            Kind::Range(list) => list.iter().all(|(f, bounds)| {
                event
                    .get(f)
                    .and_then(Value::as_f64)
                    .is_some_and(|x| bounds.contains(x))
            }),
            Kind::And(list) => list.iter().all(|c| c.check(event)),
            Kind::Or(list) => list.iter().any(|c| c.check(event)),
            Kind::Not(c) => !c.check(event),
        }
    }
}

impl Expected {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Expected::Str(want), Value::String(s)) => want == s,
            (Expected::Bool(want), Value::Bool(b)) => want == b,
            (Expected::Int(want), Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => *want == i as u64,
                (None, Some(u)) => *want == u,
                _ => false,
            },
            _ => false,
        }
    }
}

impl Bounds {
    fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

/// Whether `value` is a string meeting `pred`, or an array holding one.
fn any_string(value: &Value, pred: impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => pred(s),
        Value::Array(items) => items
            .iter()
            .any(|v| matches!(v, Value::String(s) if pred(s))),
        _ => false,
    }
}

/// The `field: value` pairs of a condition, nested objects and arrays flattened into dotted
/// paths.
fn flatten_fields<'v>(value: &'v Value, path: &str) -> Result<Vec<(String, &'v Value)>> {
    let Value::Object(map) = value else {
        return Err(invalid(
            path,
            format!(
                "expected an object of field: value pairs, found a JSON {}",
                json_type(value)
            ),
        ));
    };
    fn walk<'v>(key: String, value: &'v Value, out: &mut Vec<(String, &'v Value)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(format!("{key}.{k}"), v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(format!("{key}.{i}"), v, out);
                }
            }
            _ => out.push((key, value)),
        }
    }
    let mut out = Vec::new();
    for (k, v) in map {
        walk(k.clone(), v, &mut out);
    }
    if out.is_empty() {
        return Err(invalid(path, "expected at least one field"));
    }
    Ok(out)
}

/// Reads `range: {field.op: number, …}`, grouping the bounds per field.
fn range(value: &Value, path: &str) -> Result<Vec<(String, Bounds)>> {
    let mut out: Vec<(String, Bounds)> = Vec::new();
    for (key, v) in flatten_fields(value, path)? {
        let at = format!("{path}.{key}");
        let Some((field, op)) = key.rsplit_once('.') else {
            return Err(invalid(
                &at,
                "a range key is a field followed by .gt, .gte, .lt or .lte",
            ));
        };
        let bound = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(bound) = bound else {
            return Err(invalid(
                &at,
                format!("a range bound must be a number, not {v}"),
            ));
        };
        let i = match out.iter().position(|(f, _)| f == field) {
            Some(i) => i,
            None => {
                out.push((field.to_owned(), Bounds::default()));
                out.len() - 1
            }
        };
        let bounds = &mut out[i].1;
        match op {
            "gt" => bounds.gt = Some(bound),
            "gte" => bounds.gte = Some(bound),
            "lt" => bounds.lt = Some(bound),
            "lte" => bounds.lte = Some(bound),
            _ => {
                return Err(invalid(
                    &at,
                    format!("unknown range operator \"{op}\" (expected gt, gte, lt or lte)"),
                ))
            }
        }
    }
    Ok(out)
}

/// Reads `f` or `[f, …]`.
fn string_list(value: &Value, path: &str) -> Result<Vec<String>> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(
                    &format!("{path}[{i}]"),
                    format!("invalid type: {}, expected a string", describe(other)),
                )),
            })
            .collect(),
        other => Err(invalid(
            path,
            format!(
                "invalid type: {}, expected a string or a list of strings",
                describe(other)
            ),
        )),
    }
}

/// A value as serde describes it in type errors (`integer `1``).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".to_owned(),
        Value::Object(_) => "map".to_owned(),
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::Condition {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::from_json(json!({
            "message": "GET /healthz 200",
            "level": "info",
            "code": 200,
            "neg": -3,
            "ratio": 0.5,
            "ok": true,
            "tags": ["web", "beta", 7],
            "http": {"response": {"code": 503}},
            "kubernetes": {"labels": {"app.kubernetes.io/name": "shop"}},
            "text_num": "200",
            "@metadata": {"pipeline": "p1"},
        }))
        .unwrap()
    }

    #[test]
    fn conditions_on_an_event() {
        let e = event();
        let cases = [
            (
                json!({"has_fields": ["message", "http.response.code"]}),
                true,
            ),
            (json!({"has_fields": "message"}), true),
            (json!({"has_fields": ["message", "nope"]}), false),
            (
                json!({"has_fields": ["@timestamp", "@metadata.pipeline"]}),
                true,
            ),
            (json!({"has_fields": []}), true),
            (json!({"equals": {"level": "info"}}), true),
            (json!({"equals": {"level": "info", "code": 200}}), true),
            (json!({"equals": {"level": "info", "code": 201}}), false),
            (
                json!({"equals": {"http": {"response": {"code": 503}}}}),
                true,
            ),
            (json!({"equals": {"http.response.code": 503}}), true),
            (json!({"equals": {"neg": -3}}), true),
            (json!({"equals": {"ok": true}}), true),
            (json!({"equals": {"ok": "true"}}), false),
            (json!({"equals": {"text_num": 200}}), false),
            (json!({"equals": {"code": "200"}}), false),
            (json!({"equals": {"ratio": 0}}), false),
            (json!({"equals": {"missing": "x"}}), false),
            (
                json!({"equals": {"kubernetes.labels.app.kubernetes.io/name": "shop"}}),
                true,
            ),
            (json!({"equals": {"@metadata.pipeline": "p1"}}), true),
            (json!({"contains": {"message": "healthz"}}), true),
            (json!({"contains": {"message": "HEALTHZ"}}), false),
            (json!({"contains": {"tags": "bet"}}), true),
            (json!({"contains": {"tags": "7"}}), false),
            (json!({"contains": {"code": "200"}}), false),
            (json!({"regexp": {"message": "^GET /\\w+ 2\\d\\d$"}}), true),
            (json!({"regexp": {"message": "POST"}}), false),
            (json!({"regexp": {"tags": "^b"}}), true),
            (json!({"range": {"code.gte": 200, "code.lt": 300}}), true),
            (json!({"range": {"code": {"gt": 200}}}), false),
            (json!({"range": {"http.response.code.gte": 500}}), true),
            (
                json!({"range": {"ratio.lte": 0.5, "ratio.gt": "0.1"}}),
                true,
            ),
            (json!({"range": {"neg.lt": 0}}), true),
            (json!({"range": {"text_num.gte": 0}}), false),
            (json!({"range": {"missing.gte": 0}}), false),
            (
                json!({"and": [{"equals": {"level": "info"}}, {"has_fields": ["code"]}]}),
                true,
            ),
            (
                json!({"and": [{"equals": {"level": "info"}}, {"has_fields": ["x"]}]}),
                false,
            ),
            (
                json!({"or": [{"equals": {"level": "debug"}}, {"has_fields": ["code"]}]}),
                true,
            ),
            (
                json!({"or": [{"equals": {"level": "debug"}}, {"has_fields": ["x"]}]}),
                false,
            ),
            (json!({"not": {"equals": {"level": "debug"}}}), true),
            (json!({"not": {"not": {"has_fields": ["x"]}}}), false),
        ];
        for (config, want) in cases {
            let c = Condition::from_config(&config).unwrap_or_else(|e| panic!("{config}: {e}"));
            assert_eq!(c.check(&e), want, "{config}");
        }
    }

    #[test]
    fn condition_config_errors() {
        let cases = [
            (json!("x"), "when: expected a condition object, found a JSON string"),
            (json!({}), "when: a condition must have exactly one key, found 0 (); combine conditions with and/or"),
            (
                json!({"equals": {"a": 1}, "not": {"has_fields": ["b"]}}),
                "when: a condition must have exactly one key, found 2 (equals, not); combine conditions with and/or",
            ),
            (json!({"network": {"ip": "private"}}), r#"when: unknown condition "network""#),
            (json!({"has_fields": [1]}), "when.has_fields[0]: invalid type: integer `1`, expected a string"),
            (json!({"equals": ["a"]}), "when.equals: expected an object of field: value pairs, found a JSON array"),
            (json!({"equals": {"a": 1.5}}), "when.equals.a: equals compares strings, integers and booleans, not 1.5"),
            (json!({"equals": {"a": null}}), "when.equals.a: equals compares strings, integers and booleans, not a JSON null"),
            (json!({"contains": {"a": 1}}), "when.contains.a: contains needs a string, not a JSON number"),
            (json!({"regexp": {"a": "("}}), "when.regexp.a: invalid regular expression: regex parse error:\n    (\n    ^\nerror: unclosed group"),
            (json!({"range": {"a": 1}}), "when.range.a: a range key is a field followed by .gt, .gte, .lt or .lte"),
            (json!({"range": {"a.gt": "x"}}), r#"when.range.a.gt: a range bound must be a number, not "x""#),
            (json!({"range": {"a.ge": 1}}), r#"when.range.a.ge: unknown range operator "ge" (expected gt, gte, lt or lte)"#),
            (json!({"and": []}), "when.and: expected at least one condition"),
            (json!({"or": {"a": 1}}), "when.or: expected a list of conditions, found a JSON object"),
            (json!({"or": [{"has_fields": ["a"]}, {"equals": {"b": []}}]}), "when.or[1].equals: expected at least one field"),
            (json!({"not": {"and": [{"bogus": 1}]}}), r#"when.not.and[0]: unknown condition "bogus""#),
        ];
        for (config, want) in cases {
            let err = Condition::from_config(&config).unwrap_err();
            assert_eq!(err.to_string(), want, "{config}");
        }
    }
}
