//! `decode_json_fields`: decodes JSON held in string fields.

use std::fmt;

use logtide_event::path::{self, json_type};
use logtide_event::{DecodedKey, Event, Timestamp, METADATA_KEY, TIMESTAMP_KEY};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::chain::Report;
use crate::config::{self, StringList};
use crate::merge::{deep_update, deep_update_entry, expand_keys};
use crate::{Error, Result};

/// Options of `decode_json_fields`, as Filebeat names them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeJsonFieldsConfig {
    fields: StringList,
    #[serde(default)]
    process_array: bool,
    #[serde(default = "default_max_depth")]
    max_depth: usize,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    overwrite_keys: bool,
    #[serde(default)]
    add_error_key: bool,
    #[serde(default)]
    expand_keys: bool,
    #[serde(default)]
    document_id: Option<String>,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

fn default_max_depth() -> usize {
    1
}

/// Where decoded values go.
#[derive(Debug)]
enum Target {
    /// Replace the field that held the JSON text (`target` absent or null).
    InPlace,
    /// Merge the decoded object into the event root (`target: ""`).
    Root,
    /// Put the decoded value at this field path.
    Field(String),
}

/// Decodes the JSON text in string fields into structured values.
#[derive(Debug)]
pub(crate) struct DecodeJsonFields {
    fields: Vec<String>,
    max_depth: usize,
    process_array: bool,
    target: Target,
    overwrite_keys: bool,
    add_error_key: bool,
    expand_keys: bool,
    document_id: Option<String>,
    /// The target key when a decoded object may be kept as its text (see `crate::raw`):
    /// a new top-level field, no keys to expand, no document id to take out.
    as_is_target: Option<DecodedKey>,
}

impl DecodeJsonFields {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: DecodeJsonFieldsConfig = config::from_value(options, path)?;
        if c.max_depth < 1 {
            return Err(config::invalid(path, "max_depth", "must be at least 1"));
        }
        let target = match c.target {
            None => Target::InPlace,
            Some(t) if t.is_empty() => Target::Root,
            Some(t) => Target::Field(t),
        };
        let as_is_target = match &target {
            Target::Field(t) if !c.expand_keys && c.document_id.is_none() => DecodedKey::new(t),
            _ => None,
        };
        Ok(DecodeJsonFields {
            as_is_target,
            fields: c.fields.0,
            max_depth: c.max_depth,
            process_array: c.process_array,
            target,
            overwrite_keys: c.overwrite_keys,
            add_error_key: c.add_error_key,
            expand_keys: c.expand_keys,
            document_id: c.document_id.filter(|id| !id.is_empty()),
        })
    }

    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        for field in &self.fields {
            self.decode_field(event, field, report);
        }
    }

    fn decode_field(&self, event: &mut Event, field: &str, report: &mut Report<'_>) {
        // A tailed entry's JSON message that nothing needs decoded stays text.
        if let (Some(target), Some(message)) = (self.as_is_target, event.entry_message()) {
            if field == "message"
                && crate::raw::writable_as_is(message, self.max_depth > 1)
                && event.set_message_decoded(target)
            {
                return;
            }
        }
        // Fields that are missing or do not hold a string are skipped, as in Filebeat.
        let Some(text) = event.get_str(field) else {
            return;
        };
        // Text that cannot be a JSON value, most plain log lines, without the cost of the
        // parser's error (whose message only `add_error_key` shows).
        if !self.add_error_key && !may_be_json(text) {
            report.not_json();
            return;
        }
        let mut decoded = match unmarshal(text, self.max_depth, self.process_array) {
            Ok(value) => value,
            // Text that is not JSON is what most container logs hold: without
            // `add_error_key` it is counted apart and left as it is, not an error; with it,
            // it is an error and the event carries it (`error.message`), as in Filebeat.
            Err(_) if !self.add_error_key => {
                report.not_json();
                return;
            }
            Err(failure) => {
                let reason = failure.to_string();
                let mut error = Map::with_capacity(3);
                error.insert(
                    "message".to_owned(),
                    Value::String(format!("parsing input as JSON: {reason}")),
                );
                error.insert("data".to_owned(), Value::String(text.to_owned()));
                error.insert("field".to_owned(), Value::String(field.to_owned()));
                set_error(event, error);
                report.error(Error::InvalidJson {
                    field: field.to_owned(),
                    reason,
                });
                return;
            }
        };

        let id = match &self.document_id {
            Some(key) => take_document_id(&mut decoded, key),
            None => None,
        };

        if let Target::Root = self.target {
            match decoded {
                Value::Object(keys) => self.write_json_keys(event, keys, field, report),
                other => report.error(Error::TargetNotObject {
                    field: field.to_owned(),
                    found: json_type(&other),
                }),
            }
        } else {
            if self.expand_keys {
                decoded = match decoded {
                    Value::Object(map) => match expand_keys(map) {
                        Ok(map) => Value::Object(map),
                        Err(reason) => {
                            // Nothing is written when the keys cannot be expanded.
                            self.json_error(event, field, reason, report);
                            return;
                        }
                    },
                    other => {
                        report.error(Error::DecodedValue {
                            field: field.to_owned(),
                            reason: format!(
                                "failed to expand keys: the value is a JSON {}, not an object",
                                json_type(&other)
                            ),
                        });
                        other
                    }
                };
            }
            match &self.target {
                Target::Field(target) => {
                    if let Err(e) = event.insert(target, decoded) {
                        report.error(e.into());
                        return;
                    }
                }
                _ => {
                    // The field was found a moment ago and nothing has changed since.
                    if let Some(slot) = event.get_mut(field) {
                        *slot = decoded;
                    }
                }
            }
        }

        if let Some(id) = id {
            event
                .metadata_mut()
                .insert("_id".to_owned(), Value::String(id));
        }
    }

    /// Merges a decoded object into the event root.
    fn write_json_keys(
        &self,
        event: &mut Event,
        mut keys: Map<String, Value>,
        field: &str,
        report: &mut Report<'_>,
    ) {
        if self.expand_keys {
            keys = match expand_keys(keys) {
                Ok(keys) => keys,
                Err(reason) => {
                    self.json_error(event, field, reason, report);
                    return;
                }
            };
        }
        if !self.overwrite_keys {
            // Existing keys win; `@timestamp` and `@metadata` are left alone.
            for (key, value) in keys {
                if key != TIMESTAMP_KEY && key != METADATA_KEY {
                    deep_update_entry(event.fields_mut(), key, value, false);
                }
            }
            return;
        }
        for (key, value) in keys {
            match key.as_str() {
                TIMESTAMP_KEY => match &value {
                    Value::String(s) => match parse_timestamp(s) {
                        Some(time) => event.set_timestamp(time),
                        None => self.json_error(
                            event,
                            field,
                            format!("@timestamp not overwritten (parse error on {s})"),
                            report,
                        ),
                    },
                    _ => self.json_error(
                        event,
                        field,
                        "@timestamp not overwritten (not string)".to_owned(),
                        report,
                    ),
                },
                METADATA_KEY => match value {
                    Value::Object(meta) => deep_update(event.metadata_mut(), meta, true),
                    _ => self.json_error(
                        event,
                        field,
                        "failed to update @metadata".to_owned(),
                        report,
                    ),
                },
                "type" => match value {
                    Value::String(s) if !s.is_empty() && !s.starts_with('_') => {
                        event.fields_mut().insert(key, Value::String(s));
                    }
                    Value::String(s) => self.json_error(
                        event,
                        field,
                        format!("type not overwritten (invalid value [{s}])"),
                        report,
                    ),
                    _ => self.json_error(
                        event,
                        field,
                        "type not overwritten (not string)".to_owned(),
                        report,
                    ),
                },
                _ => deep_update_entry(event.fields_mut(), key, value, true),
            }
        }
    }

    /// Reports a decoded value that could not be written, and records it in the event's
    /// `error` field when `add_error_key` is set.
    fn json_error(&self, event: &mut Event, field: &str, reason: String, report: &mut Report<'_>) {
        if self.add_error_key {
            let mut error = Map::with_capacity(2);
            error.insert("message".to_owned(), Value::String(reason.clone()));
            error.insert("type".to_owned(), Value::String("json".to_owned()));
            set_error(event, error);
        }
        report.error(Error::DecodedValue {
            field: field.to_owned(),
            reason,
        });
    }
}

/// Replaces the event's top-level `error` field.
fn set_error(event: &mut Event, error: Map<String, Value>) {
    event
        .fields_mut()
        .insert("error".to_owned(), Value::Object(error));
}

/// Takes the string at `key` out of a decoded object, for `document_id`.
fn take_document_id(decoded: &mut Value, key: &str) -> Option<String> {
    let Value::Object(map) = decoded else {
        return None;
    };
    if !matches!(path::get(map, key), Some(Value::String(_))) {
        return None;
    }
    match path::remove(map, key) {
        Some(Value::String(id)) => Some(id),
        _ => None,
    }
}

/// Parses `@timestamp` from a decoded object: RFC 3339, or ISO 8601 with a `±hhmm` offset.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    if let Ok(time) = Timestamp::parse_rfc3339(text.as_bytes()) {
        return Some(time);
    }
    let b = text.as_bytes();
    let n = b.len();
    if n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit) {
        let with_colon = format!("{}:{}", &text[..n - 2], &text[n - 2..]);
        return Timestamp::parse_rfc3339(with_colon.as_bytes()).ok();
    }
    None
}

/// Why a text did not decode.
#[derive(Debug)]
enum Failure {
    /// Not exactly one JSON value.
    Invalid(Invalid),
    /// An array where arrays are not processed (`process_array: false`, more depth left).
    Skipped,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Invalid(reason) => reason.fmt(f),
            Failure::Skipped => f.write_str("processing skipped"),
        }
    }
}

/// Decodes `text`, then, while depth is left, the strings inside it that hold JSON objects
/// or arrays.
///
/// This follows Filebeat: a decoded array with depth left and `process_array` off is
/// [`Failure::Skipped`] (at the top this fails the field; below, the string is kept), and
/// a nested string that does not decode is kept as it is.
fn unmarshal(text: &str, depth: usize, process_array: bool) -> Result<Value, Failure> {
    let mut value = decode_one(text).map_err(Failure::Invalid)?;
    let depth = depth - 1;
    if depth == 0 {
        return Ok(value);
    }
    match &mut value {
        Value::Object(map) => {
            for v in map.values_mut() {
                decode_nested(v, depth, process_array);
            }
        }
        Value::Array(items) => {
            if !process_array {
                return Err(Failure::Skipped);
            }
            for v in items {
                decode_nested(v, depth, process_array);
            }
        }
        _ => {}
    }
    Ok(value)
}

fn decode_nested(value: &mut Value, depth: usize, process_array: bool) {
    if let Value::String(s) = value {
        if is_structured(s) {
            if let Ok(decoded) = unmarshal(s, depth, process_array) {
                *value = decoded;
            }
        }
    }
}

/// Whether `text` might be one JSON value, judged without the parser: what starts with
/// a letter of `true`, `false` or `null` must be that word, and what starts like a number
/// must hold nothing but a number's characters. Log lines that start with a digit (an IP
/// address, a date) or one of those letters are most plain-text lines.
fn may_be_json(text: &str) -> bool {
    let text = text.trim_matches([' ', '\t', '\n', '\r']);
    match text.as_bytes().first() {
        Some(b'{' | b'[' | b'"') => true,
        Some(b't' | b'f' | b'n') => matches!(text, "true" | "false" | "null"),
        Some(b'-' | b'0'..=b'9') => text
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')),
        _ => false,
    }
}

/// Whether a string looks like a JSON object or array (after trimming whitespace).
pub(crate) fn is_structured(s: &str) -> bool {
    let s = s.trim().as_bytes();
    s.len() >= 2 && matches!((s[0], s[s.len() - 1]), (b'{', b'}') | (b'[', b']'))
}

/// Why text is not exactly one JSON value; its message is made only when shown.
#[derive(Debug)]
enum Invalid {
    Parse(serde_json::Error),
    Empty,
    Multiple,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Parse(e) => e.fmt(f),
            Invalid::Empty => f.write_str("EOF"),
            Invalid::Multiple => f.write_str("multiple json elements found"),
        }
    }
}

/// Decodes exactly one JSON value from `text`.
fn decode_one(text: &str) -> Result<Value, Invalid> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<GoValue>();
    let value = match stream.next() {
        Some(Ok(GoValue(value))) => value,
        Some(Err(e)) => return Err(Invalid::Parse(e)),
        None => return Err(Invalid::Empty),
    };
    let rest = &text[stream.byte_offset()..];
    if rest
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Ok(value)
    } else {
        Err(Invalid::Multiple)
    }
}

/// A JSON value with numbers typed as Filebeat types them: an integer literal that fits
/// in an `i64` is an integer, anything else (fractions, exponents, larger integers) a
/// float.
struct GoValue(Value);

impl<'de> Deserialize<'de> for GoValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GoVisitor).map(GoValue)
    }
}

struct GoVisitor;

impl<'de> Visitor<'de> for GoVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(GoVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(GoValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        // JSON gives no size up front; room for 8 keys holds a typical log object with one
        // allocation instead of several growth steps.
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(8));
        while let Some(key) = access.next_key::<String>()? {
            let GoValue(v) = access.next_value()?;
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Processors;
    use proptest::prelude::*;
    use serde_json::json;

    /// Runs one `decode_json_fields` over `input`; returns the event as JSON (without
    /// `@timestamp` unless the input had one) and the processor's error messages, then
    /// `(not JSON)` for each field found not to be JSON without `add_error_key`.
    fn run(config: Value, input: Value) -> (Value, Vec<String>) {
        let keep_time = input.get("@timestamp").is_some();
        let chain = Processors::from_config(&json!([{ "decode_json_fields": config }])).unwrap();
        let mut event = Event::from_json(input).unwrap();
        let outcome = chain.run(&mut event);
        let mut out = serde_json::to_value(&event).unwrap();
        if !keep_time {
            out.as_object_mut().unwrap().remove("@timestamp");
        }
        let errors = outcome
            .errors()
            .iter()
            .map(|e| e.error().to_string())
            .chain(outcome.not_json().iter().map(|_| "(not JSON)".to_owned()))
            .collect();
        (out, errors)
    }

    #[test]
    fn decode_cases() {
        // (name, config, input, expected event, expected errors)
        let cases: Vec<(&str, Value, Value, Value, Vec<&str>)> = vec![
            (
                "in place, depth 1 keeps nested JSON strings",
                json!({"fields": ["msg"]}),
                json!({"msg": r#"{"log":"{\"level\":\"info\"}","n":1}"#}),
                json!({"msg": {"log": r#"{"level":"info"}"#, "n": 1}}),
                vec![],
            ),
            (
                "depth 2 decodes nested objects",
                json!({"fields": ["msg"], "max_depth": 2}),
                json!({"msg": r#"{"log":"{\"level\":\"info\"}","arr":"[1]"}"#}),
                json!({"msg": {"log": {"level": "info"}, "arr": [1]}}),
                vec![],
            ),
            (
                "nested arrays are kept as strings with depth left and process_array off",
                json!({"fields": ["msg"], "max_depth": 3}),
                json!({"msg": r#"{"arr":"[{\"a\":\"b\"}]"}"#}),
                json!({"msg": {"arr": r#"[{"a":"b"}]"#}}),
                vec![],
            ),
            (
                "process_array decodes strings inside arrays",
                json!({"fields": ["msg"], "max_depth": 3, "process_array": true}),
                json!({"msg": r#"{"arr":"[\"{\\\"a\\\":1}\", \"x\"]"}"#}),
                json!({"msg": {"arr": [{"a": 1}, "x"]}}),
                vec![],
            ),
            (
                "top-level array with depth left and process_array off is skipped",
                json!({"fields": ["msg"], "max_depth": 2, "add_error_key": true}),
                json!({"msg": "[1,2]"}),
                json!({"msg": "[1,2]", "error": {"message": "parsing input as JSON: processing skipped", "data": "[1,2]", "field": "msg"}}),
                vec![r#"parsing field "msg" as JSON: processing skipped"#],
            ),
            (
                "top-level array at depth 1 is decoded",
                json!({"fields": ["msg"]}),
                json!({"msg": " [1, \"a\"] "}),
                json!({"msg": [1, "a"]}),
                vec![],
            ),
            (
                "scalars decode too",
                json!({"fields": ["a", "b", "c"]}),
                json!({"a": "12", "b": "\"s\"", "c": "null"}),
                json!({"a": 12, "b": "s", "c": null}),
                vec![],
            ),
            (
                "missing and non-string fields are skipped",
                json!({"fields": ["nope", "num", "obj"]}),
                json!({"num": 5, "obj": {"a": "{}"}}),
                json!({"num": 5, "obj": {"a": "{}"}}),
                vec![],
            ),
            (
                "nested field path and metadata",
                json!({"fields": ["kubernetes.annotations.cfg", "@metadata.raw"]}),
                json!({"kubernetes": {"annotations": {"cfg": "{\"a\":1}"}}, "@metadata": {"raw": "[true]"}}),
                json!({"kubernetes": {"annotations": {"cfg": {"a": 1}}}, "@metadata": {"raw": [true]}}),
                vec![],
            ),
            (
                "empty text",
                json!({"fields": "msg", "add_error_key": true}),
                json!({"msg": "  "}),
                json!({"msg": "  ", "error": {"message": "parsing input as JSON: EOF", "data": "  ", "field": "msg"}}),
                vec![r#"parsing field "msg" as JSON: EOF"#],
            ),
            (
                "text after a number",
                json!({"fields": "msg"}),
                json!({"msg": "11:38:04,323 |-INFO testing"}),
                json!({"msg": "11:38:04,323 |-INFO testing"}),
                vec!["(not JSON)"],
            ),
            (
                "target field",
                json!({"fields": ["message"], "target": "message-json"}),
                json!({"message": "{\"a\":{\"b\":1}}"}),
                json!({"message": "{\"a\":{\"b\":1}}", "message-json": {"a": {"b": 1}}}),
                vec![],
            ),
            (
                "target field under a non-object",
                json!({"fields": ["message"], "target": "message.json"}),
                json!({"message": "{\"a\":1}"}),
                json!({"message": "{\"a\":1}"}),
                vec!["cannot set field message.json: message is a string, not an object"],
            ),
            (
                "root without overwrite keeps existing keys and timestamp",
                json!({"fields": ["msg"], "target": ""}),
                json!({"@timestamp": "2020-01-01T00:00:00Z", "msg": r#"{"a":2,"b":2,"@timestamp":"2021-01-01T00:00:00Z","@metadata":{"x":1},"o":{"n":1}}"#, "a": 1, "o": {"m": 1}}),
                json!({"@timestamp": "2020-01-01T00:00:00.000000000Z", "msg": r#"{"a":2,"b":2,"@timestamp":"2021-01-01T00:00:00Z","@metadata":{"x":1},"o":{"n":1}}"#, "a": 1, "o": {"m": 1, "n": 1}, "b": 2}),
                vec![],
            ),
            (
                "root with overwrite: type rules and bad timestamp",
                json!({"fields": ["msg"], "target": "", "overwrite_keys": true, "add_error_key": true}),
                json!({"@timestamp": "2020-01-01T00:00:00Z", "msg": r#"{"type":"_doc","@timestamp":"yesterday"}"#}),
                // Keys are merged in byte order, so `error` keeps the last one's: `type`.
                json!({"@timestamp": "2020-01-01T00:00:00.000000000Z", "msg": r#"{"type":"_doc","@timestamp":"yesterday"}"#, "error": {"message": "type not overwritten (invalid value [_doc])", "type": "json"}}),
                vec![
                    r#"decoded field "msg": @timestamp not overwritten (parse error on yesterday)"#,
                    r#"decoded field "msg": type not overwritten (invalid value [_doc])"#,
                ],
            ),
            (
                "root with overwrite: ISO 8601 timestamp, metadata not an object, good type",
                json!({"fields": ["msg"], "target": "", "overwrite_keys": true}),
                json!({"@timestamp": "2020-01-01T00:00:00Z", "msg": r#"{"@timestamp":"2021-03-04T05:06:07.123+0100","@metadata":5,"type":"app"}"#}),
                json!({"@timestamp": "2021-03-04T04:06:07.123000000Z", "msg": r#"{"@timestamp":"2021-03-04T05:06:07.123+0100","@metadata":5,"type":"app"}"#, "type": "app"}),
                vec![r#"decoded field "msg": failed to update @metadata"#],
            ),
            (
                "document_id moves a string to @metadata._id",
                json!({"fields": ["msg"], "document_id": "key.id"}),
                json!({"msg": r#"{"key":{"id":"abc","x":1},"v":2}"#}),
                json!({"msg": {"key": {"x": 1}, "v": 2}, "@metadata": {"_id": "abc"}}),
                vec![],
            ),
            (
                "document_id ignores non-strings",
                json!({"fields": ["msg"], "document_id": "id", "target": ""}),
                json!({"msg": r#"{"id":7}"#}),
                json!({"msg": r#"{"id":7}"#, "id": 7}),
                vec![],
            ),
            (
                "expand_keys in place",
                json!({"fields": ["msg"], "expand_keys": true}),
                json!({"msg": r#"{"a.b":1,"a.c":2}"#}),
                json!({"msg": {"a": {"b": 1, "c": 2}}}),
                vec![],
            ),
            (
                "expand_keys conflict in a target field writes nothing",
                json!({"fields": ["msg"], "expand_keys": true, "target": "out", "add_error_key": true}),
                json!({"msg": r#"{"a":1,"a.b":2}"#}),
                json!({"msg": r#"{"a":1,"a.b":2}"#, "error": {"message": "cannot expand \"a.b\": found conflicting key: a is a number, not an object", "type": "json"}}),
                vec![
                    r#"decoded field "msg": cannot expand "a.b": found conflicting key: a is a number, not an object"#,
                ],
            ),
            (
                "expand_keys on a non-object still writes it",
                json!({"fields": ["msg"], "expand_keys": true}),
                json!({"msg": "[1]"}),
                json!({"msg": [1]}),
                vec![
                    r#"decoded field "msg": failed to expand keys: the value is a JSON array, not an object"#,
                ],
            ),
            (
                "root target with a non-object",
                json!({"fields": ["msg"], "target": ""}),
                json!({"msg": "\"text\""}),
                json!({"msg": "\"text\""}),
                vec![
                    r#"failed to add target to root: field "msg" decoded to a JSON string, not an object"#,
                ],
            ),
            (
                "several fields, one bad",
                json!({"fields": ["a", "b"], "add_error_key": true}),
                json!({"a": "{", "b": "{}"}),
                json!({"a": "{", "b": {}, "error": {"message": "parsing input as JSON: EOF while parsing an object at line 1 column 1", "data": "{", "field": "a"}}),
                vec![
                    r#"parsing field "a" as JSON: EOF while parsing an object at line 1 column 1"#,
                ],
            ),
        ];
        for (name, config, input, want, want_errors) in cases {
            let (got, errors) = run(config, input);
            assert_eq!(got, want, "{name}");
            assert_eq!(errors, want_errors, "{name}");
        }
    }

    #[test]
    fn numbers_are_typed_like_go() {
        let cases = [
            ("3", json!(3), true),
            ("-7", json!(-7), true),
            ("9223372036854775807", json!(i64::MAX), true),
            ("9223372036854775808", json!(9223372036854775808.0), false),
            ("12345678901234567890", json!(1.2345678901234567e19), false),
            ("-9223372036854775809", json!(-9223372036854775809.0), false),
            ("1.5", json!(1.5), false),
            ("1e3", json!(1000.0), false),
            ("1.0", json!(1.0), false),
        ];
        for (text, want, is_int) in cases {
            let got = decode_one(text).unwrap();
            assert_eq!(got, want, "{text}");
            let n = got.as_number().unwrap();
            assert_eq!(n.is_i64(), is_int, "{text}");
            assert_eq!(n.is_f64(), !is_int, "{text}");
        }
    }

    #[test]
    fn decode_one_rejects_anything_but_one_value() {
        let cases = [
            ("{\"a\":1}{\"b\":2}", "multiple json elements found"),
            ("{} x", "multiple json elements found"),
            ("{}}", "multiple json elements found"),
            ("", "EOF"),
            ("Broken JSON [[", "expected value at line 1 column 1"),
        ];
        for (text, want) in cases {
            assert_eq!(decode_one(text).unwrap_err().to_string(), want, "{text}");
        }
        assert_eq!(
            decode_one(" {\"a\": [1, 2]}\r\n").unwrap(),
            json!({"a": [1, 2]})
        );
    }

    #[test]
    fn what_may_not_be_json_does_not_decode() {
        for (text, may) in [
            (
                "10.26.113.142 - - [2024-06-01T00:36:59.528Z] \"GET /\"",
                false,
            ),
            ("2024-06-01 00:36:59.529 DEBUG 187", false),
            ("true", true),
            (" true\r\n", true),
            ("trueish", false),
            ("null pointer", false),
            ("failed", false),
            ("-1.5e+3", true),
            ("12", true),
            ("[1, 2]", true),
            ("\"text\"", true),
            ("INFO started", false),
        ] {
            assert_eq!(may_be_json(text), may, "{text:?}");
            if !may {
                assert!(decode_one(text).is_err(), "{text:?}");
            }
        }
    }

    proptest! {
        /// The check before the parser never turns away text the parser would decode.
        #[test]
        fn text_turned_away_never_decodes(
            head in prop_oneof![Just(""), Just(" "), Just("-"), Just("1"), Just("t"), Just("true"), Just("n"), Just("f"), Just("0.")],
            rest in "[ -~\t\n\r]{0,12}",
        ) {
            let text = format!("{head}{rest}");
            if !may_be_json(&text) {
                prop_assert!(decode_one(&text).is_err(), "{:?}", text);
            }
        }
    }

    #[test]
    fn structured_strings() {
        for s in ["{}", " [1] ", "{\"a\":1}", "[]", "\n{ }\t"] {
            assert!(is_structured(s), "{s:?}");
        }
        for s in ["", "{", "}", "x{}", "{}x", "[}", "12", "\"{}\""] {
            assert!(!is_structured(s), "{s:?}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Three decimals print and parse back exactly.
            (-1_000_000_000i64..1_000_000_000).prop_map(|n| Value::from(n as f64 / 1000.0)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z.]{1,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_leaves_invalid_json_unchanged(text in prop_oneof![".{0,64}", r#"[\[\]{}":,0-9a-z .eE+\\-]{0,40}"#], depth in 1usize..4, arrays: bool, expand: bool) {
            let config = json!({"fields": ["msg"], "max_depth": depth, "process_array": arrays, "expand_keys": expand, "add_error_key": true});
            let (got, errors) = run(config, json!({"msg": text.clone()}));
            if serde_json::from_str::<Value>(&text).is_err() {
                prop_assert_eq!(got.get("msg"), Some(&Value::String(text)));
                prop_assert_eq!(errors.len(), 1);
            }
        }

        #[test]
        fn valid_objects_decode_to_themselves(value in json_value()) {
            let text = value.to_string();
            let (got, errors) = run(json!({"fields": ["msg"]}), json!({"msg": text}));
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(got.get("msg"), Some(&value));
        }

        #[test]
        fn prefixes_of_json_never_panic(value in json_value(), cut in 0usize..200, target in prop_oneof![Just(Value::Null), Just(json!("")), Just(json!("t"))]) {
            let text = value.to_string();
            let mut end = cut.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let config = json!({"fields": ["msg"], "max_depth": 3, "target": target, "overwrite_keys": true, "expand_keys": true});
            let _ = run(config, json!({"msg": &text[..end]}));
        }
    }
}
