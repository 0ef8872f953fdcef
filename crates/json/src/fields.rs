//! Processors that remove, keep, move, copy and shorten fields: `drop_fields`,
//! `include_fields`, `rename`, `copy_fields` and `truncate_fields`.

use logtide_event::path::{self, json_type};
use logtide_event::{Event, METADATA_KEY, TIMESTAMP_KEY};
use regex::Regex;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::chain::Report;
use crate::config::{self, FromTo, StringList};
use crate::goregexp;
use crate::merge::deep_update;
use crate::{Error, Result};

/// Fields Filebeat never lets `drop_fields` remove, and `include_fields` always keeps.
const MANDATORY: [&str; 2] = [TIMESTAMP_KEY, "type"];

/// `drop_fields`: removes fields, named or matched by `/regexp/`.
#[derive(Debug)]
pub(crate) struct DropFields {
    fields: Vec<String>,
    patterns: Vec<Regex>,
    ignore_missing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropFieldsConfig {
    fields: StringList,
    #[serde(default)]
    ignore_missing: bool,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

impl DropFields {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: DropFieldsConfig = config::from_value(options, path)?;
        let mut fields = Vec::new();
        let mut patterns = Vec::new();
        for (i, field) in c.fields.0.into_iter().enumerate() {
            if MANDATORY.contains(&field.as_str()) {
                continue;
            }
            if field.len() > 2 && field.starts_with('/') && field.ends_with('/') {
                let pattern = &field[1..field.len() - 1];
                goregexp::validate(pattern, &format!("{path}.fields[{i}]"))?;
                let re = Regex::new(pattern).map_err(|error| Error::InvalidRegex {
                    path: format!("{path}.fields[{i}]"),
                    error,
                })?;
                patterns.push(re);
            } else {
                fields.push(field);
            }
        }
        Ok(DropFields {
            fields,
            patterns,
            ignore_missing: c.ignore_missing,
        })
    }

    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        for field in &self.fields {
            if !event.delete(field) && !self.ignore_missing {
                report.error(Error::NotDropped {
                    field: field.clone(),
                });
            }
        }
        if !self.patterns.is_empty() {
            let mut key = String::new();
            drop_matching(event.fields_mut(), &mut key, &self.patterns);
        }
    }
}

/// Removes every entry whose full dotted key matches a pattern; an object that does not
/// match is searched in turn. `key` is the path of `map`, and is restored on return.
fn drop_matching(map: &mut Map<String, Value>, key: &mut String, patterns: &[Regex]) {
    map.retain(|k, v| {
        let len = key.len();
        if len > 0 {
            key.push('.');
        }
        key.push_str(k);
        let keep = if patterns.iter().any(|p| p.is_match(key)) {
            false
        } else {
            if let Value::Object(inner) = v {
                drop_matching(inner, key, patterns);
            }
            true
        };
        key.truncate(len);
        keep
    });
}

/// `include_fields`: keeps only the listed fields (plus `@timestamp`, `@metadata` and
/// `type`).
#[derive(Debug)]
pub(crate) struct IncludeFields {
    fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeFieldsConfig {
    fields: StringList,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

impl IncludeFields {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: IncludeFieldsConfig = config::from_value(options, path)?;
        // The timestamp and the metadata are not fields: they are always kept.
        let mut fields: Vec<String> = c
            .fields
            .0
            .into_iter()
            .filter(|f| f != TIMESTAMP_KEY && f != METADATA_KEY && !f.starts_with("@metadata."))
            .collect();
        if !fields.iter().any(|f| f == "type") {
            fields.push("type".to_owned());
        }
        Ok(IncludeFields { fields })
    }

    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        let mut old = std::mem::take(event.fields_mut());
        let mut kept = Map::with_capacity(self.fields.len());
        for field in &self.fields {
            let Some(value) = path::remove(&mut old, field) else {
                continue;
            };
            // Listing a field and a field below it (`a.b`, then `a`) keeps both.
            let merge = matches!(
                (path::get(&kept, field), &value),
                (Some(Value::Object(_)), Value::Object(_))
            );
            if merge {
                if let (Some(Value::Object(existing)), Value::Object(value)) =
                    (path::get_mut(&mut kept, field), value)
                {
                    deep_update(existing, value, false);
                }
            } else if let Err(e) = path::insert(&mut kept, field, value) {
                report.error(e.into());
            }
        }
        *event.fields_mut() = kept;
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveConfig {
    fields: Vec<FromTo>,
    #[serde(default)]
    ignore_missing: bool,
    #[serde(default = "config::yes")]
    fail_on_error: bool,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

/// The options `rename` and `copy_fields` share.
#[derive(Debug)]
struct Moves {
    fields: Vec<FromTo>,
    ignore_missing: bool,
    fail_on_error: bool,
}

impl Moves {
    fn build(options: &Value, path: &str) -> Result<Self> {
        let c: MoveConfig = config::from_value(options, path)?;
        Ok(Moves {
            fields: c.fields,
            ignore_missing: c.ignore_missing,
            fail_on_error: c.fail_on_error,
        })
    }
}

/// `rename`: moves fields; never overwrites an existing field.
#[derive(Debug)]
pub(crate) struct Rename(Moves);

impl Rename {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        Moves::build(options, path).map(Rename)
    }

    /// With `fail_on_error`, the first failure undoes the renames before it, records the
    /// error in `error.message` (as Filebeat does) and stops; without it, every pair is
    /// tried. Either way each failure is reported.
    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        let Moves {
            fields,
            ignore_missing,
            fail_on_error,
        } = &self.0;
        let ignore_missing = *ignore_missing;
        apply_pairs(
            event,
            fields,
            *fail_on_error,
            report,
            "failed to rename fields in processor",
            |event, pair| rename_one(event, pair, ignore_missing),
            undo_rename,
        );
    }
}

/// Applies `apply` to each pair. With `fail_on_error`, the first failure undoes (with
/// `undo`, newest first) the pairs applied before it, records `"{failure}: {error}"` in
/// `error.message` and stops; without it, every pair is tried. Each failure is reported.
fn apply_pairs<U>(
    event: &mut Event,
    pairs: &[FromTo],
    fail_on_error: bool,
    report: &mut Report<'_>,
    failure: &str,
    mut apply: impl FnMut(&mut Event, &FromTo) -> Result<Option<U>>,
    mut undo: impl FnMut(&mut Event, &FromTo, U),
) {
    let mut done = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        match apply(event, pair) {
            Ok(Some(applied)) => {
                if fail_on_error && pairs.len() > 1 {
                    done.push((i, applied));
                }
            }
            Ok(None) => {}
            Err(e) => {
                if fail_on_error {
                    for (j, applied) in done.into_iter().rev() {
                        undo(event, &pairs[j], applied);
                    }
                    set_error_message(event, format!("{failure}: {e}"));
                    report.error(e);
                    return;
                }
                report.error(e);
            }
        }
    }
}

/// How to undo one rename: the new path's first created key ends at byte `created` of `to`
/// (see [`plan_insert`]), and the old value sat `splits` levels down its path (see
/// [`remove_at`]).
#[derive(Debug, Clone, Copy)]
struct Moved {
    created: usize,
    splits: usize,
}

/// Renames one field; returns how to undo it, or `None` when the source is missing and
/// that is allowed.
fn rename_one(event: &mut Event, pair: &FromTo, ignore_missing: bool) -> Result<Option<Moved>> {
    if event.contains(&pair.to) {
        return Err(Error::TargetExists {
            field: pair.to.clone(),
        });
    }
    // Remove first, so that `a` can become `a.b`.
    let (map, from) = route_mut(event, &pair.from);
    let Some((value, splits)) = remove_at(map, from) else {
        return missing(&pair.from, ignore_missing);
    };
    let (map, to) = route_mut(event, &pair.to);
    match plan_insert(map, to, &pair.to) {
        Ok(created) => {
            path::insert(map, to, value)?;
            Ok(Some(Moved { created, splits }))
        }
        Err(e) => {
            let e = not_put(&pair.to, &value, e);
            // The value goes back where it was: its parents are still there.
            let (map, from) = route_mut(event, &pair.from);
            put_back(map, from, splits, value);
            Err(e)
        }
    }
}

fn undo_rename(event: &mut Event, pair: &FromTo, moved: Moved) {
    let (map, to) = route_mut(event, &pair.to);
    let Some(value) = take_exact(map, to) else {
        return;
    };
    if moved.created < to.len() {
        take_exact(map, &to[..moved.created]);
    }
    let (map, from) = route_mut(event, &pair.from);
    put_back(map, from, moved.splits, value);
}

/// `copy_fields`: copies fields; never overwrites an existing field.
#[derive(Debug)]
pub(crate) struct CopyFields(Moves);

impl CopyFields {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        Moves::build(options, path).map(CopyFields)
    }

    /// Failures are handled as in [`Rename::run`].
    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        let Moves {
            fields,
            ignore_missing,
            fail_on_error,
        } = &self.0;
        let ignore_missing = *ignore_missing;
        apply_pairs(
            event,
            fields,
            *fail_on_error,
            report,
            "failed to copy fields in copy_fields processor",
            |event, pair| copy_one(event, pair, ignore_missing),
            |event, pair, created| {
                let (map, to) = route_mut(event, &pair.to);
                take_exact(map, &to[..created]);
            },
        );
    }
}

fn copy_one(event: &mut Event, pair: &FromTo, ignore_missing: bool) -> Result<Option<usize>> {
    if event.contains(&pair.to) {
        return Err(Error::TargetExists {
            field: pair.to.clone(),
        });
    }
    let Some(value) = event.get(&pair.from).cloned() else {
        return missing(&pair.from, ignore_missing);
    };
    let (map, to) = route_mut(event, &pair.to);
    let created = plan_insert(map, to, &pair.to).map_err(|e| Error::NotCopied {
        field: pair.to.clone(),
        value: go_value(&value),
        source: Box::new(e),
    })?;
    path::insert(map, to, value)?;
    Ok(Some(created))
}

/// Filebeat's error for a value that cannot be written at `to`.
fn not_put(to: &str, value: &Value, source: Error) -> Error {
    Error::NotPut {
        field: to.to_owned(),
        value: go_value(value),
        source: Box::new(source),
    }
}

/// A value as Go's `%v` prints it: strings without quotes, other scalars as JSON, maps
/// and slices in Go's `map[k:v]` / `[a b]` form.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_owned(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// The outcome for a missing source field: skipped, or an error.
fn missing<T>(field: &str, ignore_missing: bool) -> Result<Option<T>> {
    if ignore_missing {
        Ok(None)
    } else {
        Err(Error::MissingField {
            field: field.to_owned(),
        })
    }
}

/// Sets `error.message` as Filebeat's `rename` and `copy_fields` do; ignored when `error`
/// is not an object.
fn set_error_message(event: &mut Event, message: String) {
    let _ = event.insert("error.message", Value::String(message));
}

/// The map a path addresses and the path within it: `@metadata.x` is `x` in the metadata.
fn route_mut<'e, 'p>(event: &'e mut Event, path: &'p str) -> (&'e mut Map<String, Value>, &'p str) {
    match path
        .strip_prefix(METADATA_KEY)
        .and_then(|p| p.strip_prefix('.'))
    {
        Some(rest) => (event.metadata_mut(), rest),
        None => (event.fields_mut(), path),
    }
}

/// Where inserting a new `path` into `map` (as [`path::insert`] does) starts creating
/// keys: the byte length of the prefix of `path` that names the first new key. Fails,
/// without changing anything, where the insert would fail. `shown` is the path for the
/// error message.
///
/// When the path does not exist yet, the insert splits it at every dot, so the prefix and
/// the whole path name their keys exactly (see [`take_exact`]).
fn plan_insert(map: &Map<String, Value>, path: &str, shown: &str) -> Result<usize> {
    let mut cur = map;
    let mut key = path;
    loop {
        if cur.contains_key(key) {
            return Ok(path.len());
        }
        let start = path.len() - key.len();
        let Some((head, tail)) = key.split_once('.') else {
            return Ok(path.len());
        };
        match cur.get(head) {
            None => return Ok(start + head.len()),
            Some(Value::Object(next)) => {
                cur = next;
                key = tail;
            }
            Some(other) => {
                let offset = shown.len() - path.len();
                return Err(Error::Event(logtide_event::Error::NotAnObject {
                    path: shown.to_owned(),
                    at: shown[..offset + start + head.len()].to_owned(),
                    found: json_type(other),
                }));
            }
        }
    }
}

/// Removes the value at `path`, where every dot separates two keys.
fn take_exact(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut cur = map;
    if let Some(parents) = parents {
        for key in parents.split('.') {
            match cur.get_mut(key) {
                Some(Value::Object(next)) => cur = next,
                _ => return None,
            }
        }
    }
    cur.remove(last)
}

/// Removes the value at `path`, found as [`path::get`] finds it (at each level the whole
/// rest of the path as one key first, then split at its first dot), and returns it with the
/// number of splits on the way, which is where [`put_back`] puts it again.
fn remove_at(map: &mut Map<String, Value>, path: &str) -> Option<(Value, usize)> {
    let mut cur = map;
    let mut key = path;
    let mut splits = 0;
    loop {
        if cur.contains_key(key) {
            return cur.remove(key).map(|v| (v, splits));
        }
        let (head, tail) = key.split_once('.')?;
        match cur.get_mut(head) {
            Some(Value::Object(next)) => {
                cur = next;
                key = tail;
                splits += 1;
            }
            _ => return None,
        }
    }
}

/// Puts a value back where [`remove_at`] took it from: `splits` levels down, under the
/// rest of the path as one key.
fn put_back(map: &mut Map<String, Value>, path: &str, splits: usize, value: Value) {
    let mut cur = map;
    let mut key = path;
    for _ in 0..splits {
        let Some((head, tail)) = key.split_once('.') else {
            return;
        };
        match cur.get_mut(head) {
            Some(Value::Object(next)) => {
                cur = next;
                key = tail;
            }
            _ => return,
        }
    }
    cur.insert(key.to_owned(), value);
}

/// `truncate_fields`: shortens string fields to a number of bytes or characters.
#[derive(Debug)]
pub(crate) struct TruncateFields {
    fields: Vec<String>,
    limit: Limit,
    ignore_missing: bool,
    fail_on_error: bool,
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    Bytes(usize),
    Chars(usize),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TruncateFieldsConfig {
    fields: StringList,
    #[serde(default)]
    max_bytes: Option<usize>,
    #[serde(default)]
    max_characters: Option<usize>,
    #[serde(default)]
    ignore_missing: bool,
    #[serde(default = "config::yes")]
    fail_on_error: bool,
    #[serde(default, rename = "when")]
    _when: IgnoredAny,
}

impl TruncateFields {
    pub(crate) fn build(options: &Value, path: &str) -> Result<Self> {
        let c: TruncateFieldsConfig = config::from_value(options, path)?;
        let limit = match (c.max_bytes, c.max_characters) {
            (Some(n), None) => Limit::Bytes(n),
            (None, Some(n)) => Limit::Chars(n),
            _ => {
                return Err(Error::InvalidConfig {
                    path: path.to_owned(),
                    reason: "exactly one of max_bytes and max_characters must be set".to_owned(),
                })
            }
        };
        Ok(TruncateFields {
            fields: c.fields.0,
            limit,
            ignore_missing: c.ignore_missing,
            fail_on_error: c.fail_on_error,
        })
    }

    /// With `fail_on_error`, a missing or non-string field fails the whole processor and
    /// the event is left unchanged; without it, the other fields are still truncated.
    /// Strings are cut at a character boundary, so `max_bytes` may keep a few bytes less.
    /// A truncated event gets `"truncated"` in `log.flags`.
    pub(crate) fn run(&self, event: &mut Event, report: &mut Report<'_>) {
        if self.fail_on_error {
            for field in &self.fields {
                if let Err(e) = self.check(event.get(field), field) {
                    report.error(e);
                    return;
                }
            }
        }
        let mut truncated = false;
        for field in &self.fields {
            match event.get_mut(field) {
                Some(Value::String(s)) => truncated |= self.limit.apply(s),
                other => {
                    if let Err(e) = self.check(other.map(|v| &*v), field) {
                        report.error(e);
                    }
                }
            }
        }
        if truncated {
            add_flag(event, report);
        }
    }

    fn check(&self, value: Option<&Value>, field: &str) -> Result<()> {
        match value {
            Some(Value::String(_)) => Ok(()),
            None if self.ignore_missing => Ok(()),
            None => Err(Error::MissingField {
                field: field.to_owned(),
            }),
            Some(other) => Err(Error::NotAString {
                field: field.to_owned(),
                found: json_type(other),
                value: go_value(other),
            }),
        }
    }
}

impl Limit {
    /// Shortens `s` to the limit; returns whether it was longer.
    fn apply(self, s: &mut String) -> bool {
        let end = match self {
            Limit::Bytes(max) => {
                if s.len() <= max {
                    return false;
                }
                let mut end = max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                end
            }
            Limit::Chars(max) => match s.char_indices().nth(max) {
                Some((end, _)) => end,
                None => return false,
            },
        };
        s.truncate(end);
        true
    }
}

/// Adds `"truncated"` to `log.flags` (once).
fn add_flag(event: &mut Event, report: &mut Report<'_>) {
    const FLAGS: &str = "log.flags";
    let flag = Value::String("truncated".to_owned());
    match event.get_mut(FLAGS) {
        None => {
            if let Err(e) = event.insert(FLAGS, Value::Array(vec![flag])) {
                report.error(e.into());
            }
        }
        Some(Value::Array(flags)) => {
            if !flags.contains(&flag) {
                flags.push(flag);
            }
        }
        Some(other) => report.error(Error::NotAnArray {
            field: FLAGS.to_owned(),
            found: json_type(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::Processors;
    use logtide_event::Event;
    use serde_json::{json, Value};

    /// Runs a one-processor chain; returns the event as JSON without `@timestamp`, and the
    /// errors' messages.
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
    fn drop_fields() {
        check(
            "drop_fields",
            vec![
                (
                    "named, nested, dotted and metadata fields",
                    json!({"fields": ["message", "a.b", "kubernetes.labels.app.kubernetes.io/name", "@metadata.x"]}),
                    json!({"message": "m", "a": {"b": 1, "c": 2}, "kubernetes": {"labels": {"app.kubernetes.io/name": "n", "k": "v"}}, "@metadata": {"x": 1, "y": 2}}),
                    json!({"a": {"c": 2}, "kubernetes": {"labels": {"k": "v"}}, "@metadata": {"y": 2}}),
                    vec![],
                ),
                (
                    "missing fields are errors",
                    json!({"fields": ["nope", "a.nope", "message"]}),
                    json!({"message": "m", "a": {}}),
                    json!({"a": {}}),
                    vec![
                        "failed to drop field [nope], error: key not found",
                        "failed to drop field [a.nope], error: key not found",
                    ],
                ),
                (
                    "unless ignore_missing",
                    json!({"fields": "nope", "ignore_missing": true}),
                    json!({"message": "m"}),
                    json!({"message": "m"}),
                    vec![],
                ),
                (
                    "@timestamp and type cannot be dropped",
                    json!({"fields": ["@timestamp", "type"]}),
                    json!({"type": "t"}),
                    json!({"type": "t"}),
                    vec![],
                ),
                (
                    "regexps match full dotted keys anywhere",
                    json!({"fields": ["/^kubernetes\\.labels\\./", "/_tmp$/"]}),
                    json!({"kubernetes": {"labels": {"a": 1, "b.c": 2}, "pod": {"name": "p"}}, "x_tmp": 1, "o": {"y_tmp": {"z": 1}, "keep": 1}}),
                    json!({"kubernetes": {"labels": {}, "pod": {"name": "p"}}, "o": {"keep": 1}}),
                    vec![],
                ),
                (
                    "a regexp matching a parent drops the subtree",
                    json!({"fields": ["/^kubernetes$/"]}),
                    json!({"kubernetes": {"labels": {"a": 1}}, "message": "m"}),
                    json!({"message": "m"}),
                    vec![],
                ),
                (
                    "empty list",
                    json!({"fields": []}),
                    json!({"message": "m"}),
                    json!({"message": "m"}),
                    vec![],
                ),
            ],
        );
    }

    #[test]
    fn include_fields() {
        check(
            "include_fields",
            vec![
                (
                    "keeps listed fields, type and metadata",
                    json!({"fields": ["message", "kubernetes.pod.name", "nope", "@metadata.x"]}),
                    json!({"message": "m", "type": "t", "other": 1, "kubernetes": {"pod": {"name": "p", "uid": "u"}, "ns": "n"}, "@metadata": {"x": 1}}),
                    json!({"message": "m", "kubernetes": {"pod": {"name": "p"}}, "type": "t", "@metadata": {"x": 1}}),
                    vec![],
                ),
                (
                    "a field and its parent",
                    json!({"fields": ["a.b", "a"]}),
                    json!({"a": {"b": {"x": 1}, "c": 2}, "d": 3}),
                    json!({"a": {"b": {"x": 1}, "c": 2}}),
                    vec![],
                ),
                (
                    "a dotted key under a kept scalar cannot be placed",
                    json!({"fields": ["a", "a.b"]}),
                    json!({"a": 1, "a.b": 2}),
                    json!({"a": 1}),
                    vec!["cannot set field a.b: a is a number, not an object"],
                ),
            ],
        );
    }

    #[test]
    fn rename() {
        check(
            "rename",
            vec![
                (
                    "nested, into new parents, and a into a.b",
                    json!({"fields": [{"from": "a.g", "to": "e.d"}, {"from": "x", "to": "x.value"}]}),
                    json!({"a": {"g": 1, "h": 2}, "x": 5}),
                    json!({"a": {"h": 2}, "e": {"d": 1}, "x": {"value": 5}}),
                    vec![],
                ),
                (
                    "metadata",
                    json!({"fields": [{"from": "@metadata.id", "to": "id"}]}),
                    json!({"@metadata": {"id": "i"}}),
                    json!({"id": "i"}),
                    vec![],
                ),
                (
                    "target exists: undo earlier renames and record the error",
                    json!({"fields": [{"from": "a", "to": "n.b"}, {"from": "c", "to": "d"}]}),
                    json!({"a": 1, "c": 2, "d": 3}),
                    json!({"c": 2, "d": 3, "a": 1, "error": {"message": "failed to rename fields in processor: target field d already exists, drop or rename this field first"}}),
                    vec![r#"target field d already exists, drop or rename this field first"#],
                ),
                (
                    "missing source with fail_on_error off: go on",
                    json!({"fields": [{"from": "nope", "to": "x"}, {"from": "a", "to": "b"}], "fail_on_error": false}),
                    json!({"a": 1}),
                    json!({"b": 1}),
                    vec!["could not fetch value for key: nope, Error: key not found"],
                ),
                (
                    "missing source ignored",
                    json!({"fields": [{"from": "nope", "to": "x"}, {"from": "a", "to": "b"}], "ignore_missing": true}),
                    json!({"a": 1}),
                    json!({"b": 1}),
                    vec![],
                ),
                (
                    "target under a scalar: value stays",
                    json!({"fields": [{"from": "a", "to": "s.x"}]}),
                    json!({"a": 1, "s": "str"}),
                    json!({"a": 1, "s": "str", "error": {"message": "failed to rename fields in processor: could not put value: s.x: 1, cannot set field s.x: s is a string, not an object"}}),
                    vec!["could not put value: s.x: 1, cannot set field s.x: s is a string, not an object"],
                ),
                (
                    "undo removes created parents",
                    json!({"fields": [{"from": "a", "to": "p.q.r"}, {"from": "nope", "to": "z"}]}),
                    json!({"a": 1, "p": {"keep": true}}),
                    json!({"p": {"keep": true}, "a": 1, "error": {"message": "failed to rename fields in processor: could not fetch value for key: nope, Error: key not found"}}),
                    vec!["could not fetch value for key: nope, Error: key not found"],
                ),
            ],
        );
    }

    #[test]
    fn copy_fields() {
        check(
            "copy_fields",
            vec![
                (
                    "copies deep values",
                    json!({"fields": [{"from": "message", "to": "event.original"}, {"from": "o", "to": "p"}]}),
                    json!({"message": "m", "o": {"a": [1]}}),
                    json!({"message": "m", "o": {"a": [1]}, "event": {"original": "m"}, "p": {"a": [1]}}),
                    vec![],
                ),
                (
                    "failure undoes earlier copies",
                    json!({"fields": [{"from": "message", "to": "x.y"}, {"from": "message", "to": "o"}]}),
                    json!({"message": "m", "o": 1}),
                    json!({"message": "m", "o": 1, "error": {"message": "failed to copy fields in copy_fields processor: target field o already exists, drop or rename this field first"}}),
                    vec![r#"target field o already exists, drop or rename this field first"#],
                ),
                (
                    "missing source ignored",
                    json!({"fields": [{"from": "nope", "to": "x"}], "ignore_missing": true}),
                    json!({"a": 1}),
                    json!({"a": 1}),
                    vec![],
                ),
            ],
        );
    }

    #[test]
    fn truncate_fields() {
        check(
            "truncate_fields",
            vec![
                (
                    "bytes, at a character boundary",
                    json!({"fields": ["a", "b", "c"], "max_bytes": 4}),
                    json!({"a": "héllo", "b": "abc", "c": "abcd"}),
                    json!({"a": "hél", "b": "abc", "c": "abcd", "log": {"flags": ["truncated"]}}),
                    vec![],
                ),
                (
                    "characters, flag added once to existing flags",
                    json!({"fields": ["a", "b"], "max_characters": 2}),
                    json!({"a": "héllo", "b": "日本語", "log": {"flags": ["multiline"]}}),
                    json!({"a": "hé", "b": "日本", "log": {"flags": ["multiline", "truncated"]}}),
                    vec![],
                ),
                (
                    "nothing to cut, no flag",
                    json!({"fields": ["a"], "max_characters": 5}),
                    json!({"a": "héllo"}),
                    json!({"a": "héllo"}),
                    vec![],
                ),
                (
                    "fail_on_error leaves the event unchanged",
                    json!({"fields": ["a", "n"], "max_bytes": 1}),
                    json!({"a": "abc", "n": 5}),
                    json!({"a": "abc", "n": 5}),
                    vec!["value cannot be truncated: 5"],
                ),
                (
                    "without fail_on_error the rest is truncated",
                    json!({"fields": ["missing", "a"], "max_bytes": 1, "fail_on_error": false}),
                    json!({"a": "abc"}),
                    json!({"a": "a", "log": {"flags": ["truncated"]}}),
                    vec!["could not fetch value for key: missing, Error: key not found"],
                ),
                (
                    "ignore_missing",
                    json!({"fields": ["missing", "a"], "max_bytes": 1, "ignore_missing": true}),
                    json!({"a": "abc"}),
                    json!({"a": "a", "log": {"flags": ["truncated"]}}),
                    vec![],
                ),
                (
                    "log.flags that is not an array",
                    json!({"fields": ["a"], "max_bytes": 0}),
                    json!({"a": "abc", "log": {"flags": "x"}}),
                    json!({"a": "", "log": {"flags": "x"}}),
                    vec![
                        r#"cannot add tags to field "log.flags": it holds a JSON string, not an array"#,
                    ],
                ),
            ],
        );
        let err = Processors::from_config(
            &json!([{"truncate_fields": {"fields": ["a"], "max_bytes": 1, "max_characters": 1}}]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "processors[0].truncate_fields: exactly one of max_bytes and max_characters must be set");
    }

    fn small_event() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec!["a", "b", "c", "a.b", "b.c"]);
        let leaf = prop_oneof![(0i64..3).prop_map(Value::from), Just(json!("s"))];
        let inner = prop::collection::btree_map(key.clone(), leaf.clone(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        let value = prop_oneof![leaf, inner];
        (prop::collection::btree_map(key, value, 0..5), any::<bool>()).prop_map(|(fields, meta)| {
            let mut m: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if meta {
                m.insert("@metadata".to_owned(), json!({"m": 1}));
            }
            Value::Object(m)
        })
    }

    fn pairs() -> impl proptest::strategy::Strategy<Value = Vec<Value>> {
        use proptest::prelude::*;
        let path = prop::sample::select(vec![
            "a",
            "b",
            "c",
            "a.b",
            "b.c",
            "a.b.c",
            "c.a",
            "x",
            "x.y",
            "@metadata.m",
            "@metadata.n.o",
        ]);
        prop::collection::vec((path.clone(), path), 1..4).prop_map(|v| {
            v.into_iter()
                .map(|(from, to)| json!({"from": from, "to": to}))
                .collect()
        })
    }

    proptest::proptest! {
        /// With fail_on_error, a failing rename or copy leaves the event's content as it
        /// was, apart from `error.message`.
        #[test]
        fn failed_moves_roll_back(input in small_event(), fields in pairs(), ignore_missing: bool, copy: bool) {
            let name = if copy { "copy_fields" } else { "rename" };
            let options = json!({"fields": fields, "ignore_missing": ignore_missing});
            let (mut got, errors) = run(name, options, input.clone());
            if !errors.is_empty() {
                let message = got.as_object_mut().unwrap().remove("error");
                proptest::prop_assert!(message.is_some());
                proptest::prop_assert_eq!(got, input);
            }
        }
    }
}
