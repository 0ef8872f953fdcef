//! Processor chains: building them from configuration and running them over events.

use std::fmt;
use std::sync::Arc;

use logtide_event::path::json_type;
use logtide_event::Event;
use serde_json::{Map, Value};

use crate::add::{AddFields, AddTags};
use crate::condition::{condition_at, Condition};
use crate::decode::DecodeJsonFields;
use crate::fields::{CopyFields, DropFields, IncludeFields, Rename, TruncateFields};
use crate::{config, dotted, Error, Result};

/// A validated list of processors, run in order over each event.
///
/// Built once from the `processors:` configuration with [`Processors::from_config`];
/// everything that can be checked (names, options, types, regular expressions) is checked
/// then. Running never panics and never stops on a processor error: as in Filebeat, the
/// error is reported in the [`Outcome`] and the event goes on to the next processor.
///
/// A chain is immutable, `Send` and `Sync`: share one between workers.
#[derive(Debug, Default)]
pub struct Processors {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    name: &'static str,
    when: Option<Condition>,
    processor: Processor,
}

/// A processor whose work lives outside this crate, such as `add_kubernetes_metadata`,
/// which needs a Kubernetes client: the host supplies it through [`Extensions`] and the
/// chain runs it at its place in the list, under its `when` condition, like any other.
pub trait Extension: Send + Sync + fmt::Debug {
    /// Runs over one event. An error is reported in the [`Outcome`] and the event goes on
    /// to the next processor, as with the built-in processors.
    fn run(&self, event: &mut Event) -> std::result::Result<(), String>;
}

/// The processors a host adds to the built-in ones (see [`Processors::from_config_with`]).
pub trait Extensions {
    /// The names it builds, e.g. `["add_kubernetes_metadata"]`.
    fn names(&self) -> &[&'static str];

    /// Builds the processor `name` from its options (the `when` key already taken out);
    /// errors name `path` (e.g. `processors[0].add_kubernetes_metadata`) and the key.
    fn build(&self, name: &'static str, options: &Value, path: &str) -> Result<Arc<dyn Extension>>;
}

/// No extensions: only the built-in processors.
struct BuiltinOnly;

impl Extensions for BuiltinOnly {
    fn names(&self) -> &[&'static str] {
        &[]
    }

    fn build(&self, name: &'static str, _: &Value, path: &str) -> Result<Arc<dyn Extension>> {
        Err(Error::UnknownProcessor {
            path: path.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[derive(Debug)]
enum Processor {
    Extension(Arc<dyn Extension>),
    DecodeJsonFields(DecodeJsonFields),
    DropFields(DropFields),
    DropEvent,
    IncludeFields(IncludeFields),
    Rename(Rename),
    CopyFields(CopyFields),
    AddFields(AddFields),
    AddTags(AddTags),
    TruncateFields(TruncateFields),
}

/// The processor names [`Processors::from_config`] accepts.
pub const PROCESSOR_NAMES: &[&str] = &[
    "add_fields",
    "add_labels",
    "add_tags",
    "copy_fields",
    "decode_json_fields",
    "drop_event",
    "drop_fields",
    "include_fields",
    "rename",
    "truncate_fields",
];

impl Processors {
    /// Builds a chain from the `processors:` list as JSON (YAML converted): a list of
    /// single-key objects `{"<name>": {<options>..., "when": <condition>}}`. `null` is an
    /// empty chain, and so is an empty list.
    ///
    /// Errors name the position and key of what is wrong, e.g.
    /// `processors[1].drop_fields: unknown key "feilds"`.
    pub fn from_config(config: &Value) -> Result<Processors> {
        Processors::from_config_at(config, "processors")
    }

    /// [`Processors::from_config`] for a list found at `path` in a larger configuration,
    /// e.g. `inputs[0].processors`; errors start with that path.
    pub fn from_config_at(config: &Value, path: &str) -> Result<Processors> {
        Processors::from_config_with(config, path, &BuiltinOnly)
    }

    /// [`Processors::from_config_at`] that also accepts the processors `extensions`
    /// builds, each at its place in the list.
    pub fn from_config_with(
        config: &Value,
        path: &str,
        extensions: &dyn Extensions,
    ) -> Result<Processors> {
        let list = match config {
            Value::Null => return Ok(Processors::default()),
            Value::Array(list) => list,
            other => {
                return Err(Error::InvalidConfig {
                    path: path.to_owned(),
                    reason: format!(
                        "expected a list of processors, found a JSON {}",
                        json_type(other)
                    ),
                })
            }
        };
        let mut entries = Vec::with_capacity(list.len());
        for (index, item) in list.iter().enumerate() {
            entries.push(Entry::build(format!("{path}[{index}]"), item, extensions)?);
        }
        Ok(Processors { entries })
    }

    /// Runs the chain over `event`, in place.
    ///
    /// A processor with a `when` condition runs only if the condition holds. Processing
    /// stops when a processor drops the event; the outcome then says so and the event
    /// should be discarded (its acknowledgement still has to be reported).
    pub fn run(&self, event: &mut Event) -> Outcome {
        let mut outcome = Outcome::default();
        self.run_into(event, &mut outcome);
        outcome
    }

    /// [`Processors::run`] into an outcome the caller keeps: it is cleared first and its
    /// room reused, so that running over many events allocates nothing for outcomes.
    pub fn run_into(&self, event: &mut Event, outcome: &mut Outcome) {
        outcome.dropped_by = None;
        outcome.errors.clear();
        outcome.not_json.clear();
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(when) = &entry.when {
                if !when.check(event) {
                    continue;
                }
            }
            let mut report = Report {
                index,
                name: entry.name,
                errors: &mut outcome.errors,
                not_json: &mut outcome.not_json,
            };
            let flow = entry.processor.run(event, &mut report);
            if let Flow::Drop = flow {
                outcome.dropped_by = Some(index);
                break;
            }
        }
    }

    /// The number of processors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the chain has no processors (running it changes nothing).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The processors' names, in order (`add_labels` shows as itself).
    pub fn names(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.name)
    }

    /// Zeroed counters sized for this chain, to [`Stats::record`] outcomes into.
    pub fn stats(&self) -> Stats {
        Stats {
            events_in: 0,
            dropped: 0,
            errors: vec![0; self.entries.len()],
            not_json: vec![0; self.entries.len()],
        }
    }
}

impl Entry {
    /// Builds the processor at `at` (e.g. `processors[1]`).
    fn build(at: String, item: &Value, extensions: &dyn Extensions) -> Result<Entry> {
        // Dotted keys are paths everywhere in the entry, as Filebeat's loader reads them.
        let item = &dotted::expand(item, &at)?;
        let Value::Object(item) = item else {
            return Err(Error::InvalidConfig {
                path: at,
                reason: format!(
                    "expected an object with a processor name as its only key, found a JSON {}",
                    json_type(item)
                ),
            });
        };
        let mut keys = item.iter();
        let (Some((name, options)), None) = (keys.next(), keys.next()) else {
            let names: Vec<&str> = item.keys().map(String::as_str).collect();
            return Err(Error::InvalidConfig {
                path: at,
                reason: format!(
                    "each processor must have exactly one name as its key, found {} ({})",
                    names.len(),
                    names.join(", ")
                ),
            });
        };
        let path = format!("{at}.{name}");
        let empty;
        let options = match options {
            Value::Object(_) => options,
            Value::Null => {
                empty = Value::Object(Map::new());
                &empty
            }
            other => {
                return Err(Error::InvalidConfig {
                    path,
                    reason: format!(
                        "expected an object of options, found a JSON {}",
                        json_type(other)
                    ),
                })
            }
        };
        let (name, processor) = match name.as_str() {
            "decode_json_fields" => (
                "decode_json_fields",
                Processor::DecodeJsonFields(DecodeJsonFields::build(options, &path)?),
            ),
            "drop_fields" => (
                "drop_fields",
                Processor::DropFields(DropFields::build(options, &path)?),
            ),
            "drop_event" => {
                drop_event_options(options, &path)?;
                ("drop_event", Processor::DropEvent)
            }
            "include_fields" => (
                "include_fields",
                Processor::IncludeFields(IncludeFields::build(options, &path)?),
            ),
            "rename" => ("rename", Processor::Rename(Rename::build(options, &path)?)),
            "copy_fields" => (
                "copy_fields",
                Processor::CopyFields(CopyFields::build(options, &path)?),
            ),
            "add_fields" => (
                "add_fields",
                Processor::AddFields(AddFields::build(options, &path)?),
            ),
            "add_labels" => (
                "add_labels",
                Processor::AddFields(AddFields::build_labels(options, &path)?),
            ),
            "add_tags" => (
                "add_tags",
                Processor::AddTags(AddTags::build(options, &path)?),
            ),
            "truncate_fields" => (
                "truncate_fields",
                Processor::TruncateFields(TruncateFields::build(options, &path)?),
            ),
            other => match extensions.names().iter().find(|n| **n == other) {
                Some(&name) => {
                    let mut options = options.clone();
                    if let Value::Object(o) = &mut options {
                        o.remove("when");
                    }
                    let extension = extensions.build(name, &options, &path)?;
                    (name, Processor::Extension(extension))
                }
                None => {
                    return Err(Error::UnknownProcessor {
                        path: at,
                        name: name.clone(),
                    })
                }
            },
        };
        let when = match options.get("when") {
            None | Some(Value::Null) => None,
            Some(when) => Some(condition_at(when, &format!("{path}.when"))?),
        };
        Ok(Entry {
            name,
            when,
            processor,
        })
    }
}

impl Processor {
    fn run(&self, event: &mut Event, report: &mut Report<'_>) -> Flow {
        match self {
            Processor::Extension(p) => {
                if let Err(reason) = p.run(event) {
                    report.error(Error::Extension { reason });
                }
            }
            Processor::DecodeJsonFields(p) => p.run(event, report),
            Processor::DropFields(p) => p.run(event, report),
            Processor::DropEvent => return Flow::Drop,
            Processor::IncludeFields(p) => p.run(event, report),
            Processor::Rename(p) => p.run(event, report),
            Processor::CopyFields(p) => p.run(event, report),
            Processor::AddFields(p) => p.run(event, report),
            Processor::AddTags(p) => p.run(event, report),
            Processor::TruncateFields(p) => p.run(event, report),
        }
        Flow::Continue
    }
}

/// `drop_event` takes no options but `when`.
fn drop_event_options(options: &Value, path: &str) -> Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DropEventConfig {
        #[serde(default, rename = "when")]
        _when: serde::de::IgnoredAny,
    }
    config::from_value::<DropEventConfig>(options, path).map(|_| ())
}

/// Whether the chain goes on after a processor.
enum Flow {
    Continue,
    Drop,
}

/// Where a running processor reports its errors.
pub(crate) struct Report<'a> {
    index: usize,
    name: &'static str,
    errors: &'a mut Vec<ProcessorError>,
    not_json: &'a mut Vec<usize>,
}

impl Report<'_> {
    pub(crate) fn error(&mut self, error: Error) {
        self.errors.push(ProcessorError {
            index: self.index,
            processor: self.name,
            error,
        });
    }

    /// A field `decode_json_fields` was asked to decode does not hold JSON (plain text,
    /// most often), and no `error` key was asked for: not an error, an outcome of its own.
    pub(crate) fn not_json(&mut self) {
        self.not_json.push(self.index);
    }
}

/// What happened to an event in [`Processors::run`].
#[derive(Debug, Default)]
#[must_use]
pub struct Outcome {
    dropped_by: Option<usize>,
    errors: Vec<ProcessorError>,
    not_json: Vec<usize>,
}

impl Outcome {
    /// Whether a processor dropped the event.
    pub fn is_dropped(&self) -> bool {
        self.dropped_by.is_some()
    }

    /// The position of the processor that dropped the event.
    pub fn dropped_by(&self) -> Option<usize> {
        self.dropped_by
    }

    /// The errors processors reported, in the order they happened. The event went on
    /// after each of them.
    pub fn errors(&self) -> &[ProcessorError] {
        &self.errors
    }

    /// Takes the errors out.
    pub fn into_errors(self) -> Vec<ProcessorError> {
        self.errors
    }

    /// The positions of the `decode_json_fields` processors that found a field that is
    /// not JSON, once per field, when they have no `add_error_key`: the field is left as
    /// it was and the event goes on. With `add_error_key: true` the same field is an
    /// error instead (in [`Outcome::errors`], and in the event's `error` field).
    pub fn not_json(&self) -> &[usize] {
        &self.not_json
    }
}

/// An error one processor reported while running over an event.
#[derive(Debug, thiserror::Error)]
#[error("processors[{index}].{processor}: {error}")]
pub struct ProcessorError {
    index: usize,
    processor: &'static str,
    error: Error,
}

impl ProcessorError {
    /// The processor's position in the chain.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The processor's name, e.g. `decode_json_fields`.
    pub fn processor(&self) -> &'static str {
        self.processor
    }

    /// What went wrong; names the field involved.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Takes the error out.
    pub fn into_error(self) -> Error {
        self.error
    }
}

/// Counters over the outcomes of one chain: events in, events dropped, and errors per
/// processor.
///
/// Each worker keeps its own (from [`Processors::stats`]) and records every outcome; the
/// host merges them and exports them. Nothing is shared, so counting costs no
/// synchronization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    events_in: u64,
    dropped: u64,
    errors: Vec<u64>,
    not_json: Vec<u64>,
}

impl Stats {
    /// Counts one event's outcome.
    pub fn record(&mut self, outcome: &Outcome) {
        self.events_in += 1;
        self.dropped += u64::from(outcome.is_dropped());
        for e in &outcome.errors {
            add_at(&mut self.errors, e.index, 1);
        }
        for &index in &outcome.not_json {
            add_at(&mut self.not_json, index, 1);
        }
    }

    /// Adds another worker's counters to these.
    pub fn merge(&mut self, other: &Stats) {
        self.events_in += other.events_in;
        self.dropped += other.dropped;
        for (index, &n) in other.errors.iter().enumerate() {
            add_at(&mut self.errors, index, n);
        }
        for (index, &n) in other.not_json.iter().enumerate() {
            add_at(&mut self.not_json, index, n);
        }
    }

    /// Events run through the chain.
    pub fn events_in(&self) -> u64 {
        self.events_in
    }

    /// Events a processor dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Errors reported by each processor, by position (one event can count several).
    pub fn errors(&self) -> &[u64] {
        &self.errors
    }

    /// Fields found not to be JSON by each `decode_json_fields` without `add_error_key`,
    /// by position (see [`Outcome::not_json`]).
    pub fn not_json(&self) -> &[u64] {
        &self.not_json
    }
}

/// Adds `n` to the counter at `index`, growing `counters` as needed.
fn add_at(counters: &mut Vec<u64>, index: usize, n: u64) {
    if counters.len() <= index {
        counters.resize(index + 1, 0);
    }
    counters[index] += n;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An extension that writes `node` from its `name` option, or fails on events that
    /// have `fail`.
    #[derive(Debug)]
    struct SetNode(String);

    impl Extension for SetNode {
        fn run(&self, event: &mut Event) -> std::result::Result<(), String> {
            if event.contains("fail") {
                return Err("cannot set node".to_owned());
            }
            event
                .insert("node", Value::String(self.0.clone()))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }

    struct Hosted;

    impl Extensions for Hosted {
        fn names(&self) -> &[&'static str] {
            &["set_node"]
        }

        fn build(
            &self,
            _: &'static str,
            options: &Value,
            path: &str,
        ) -> Result<Arc<dyn Extension>> {
            match options.get("name").and_then(Value::as_str) {
                Some(name) if options.as_object().is_some_and(|o| o.len() == 1) => {
                    Ok(Arc::new(SetNode(name.to_owned())))
                }
                _ => Err(Error::MissingKey {
                    path: path.to_owned(),
                    key: "name".to_owned(),
                }),
            }
        }
    }

    #[test]
    fn extensions_run_in_place_with_their_conditions() {
        let config = json!([
            {"add_fields": {"target": "", "fields": {"step": 1}}},
            {"set_node": {"name": "n1", "when": {"has_fields": ["step"]}}},
            {"copy_fields": {"fields": [{"from": "node", "to": "copied"}]}},
        ]);
        assert!(matches!(
            Processors::from_config(&config),
            Err(Error::UnknownProcessor { .. })
        ));
        let chain = Processors::from_config_with(&config, "processors", &Hosted).unwrap();
        assert_eq!(
            chain.names().collect::<Vec<_>>(),
            ["add_fields", "set_node", "copy_fields"]
        );
        let mut e = Event::new(logtide_event::Timestamp::UNIX_EPOCH);
        assert!(chain.run(&mut e).errors().is_empty());
        assert_eq!(e.get("copied"), Some(&json!("n1")));

        let mut failing = Event::new(logtide_event::Timestamp::UNIX_EPOCH);
        failing.insert("fail", json!(true)).unwrap();
        let outcome = chain.run(&mut failing);
        let errors: Vec<String> = outcome.errors().iter().map(|e| e.to_string()).collect();
        // The chain went on after the failure: copy_fields ran and found no `node`.
        assert_eq!(
            errors,
            [
                "processors[1].set_node: cannot set node",
                "processors[2].copy_fields: could not fetch value for key: node, Error: key not found"
            ]
        );
        assert!(!outcome.is_dropped());

        let bad = json!([{"set_node": {"when": {"has_fields": ["x"]}}}]);
        let err = Processors::from_config_with(&bad, "inputs[0].processors", &Hosted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "inputs[0].processors[0].set_node: missing required key \"name\""
        );
    }

    #[test]
    fn build_errors_name_position_and_key() {
        let cases = [
            (json!({"a": 1}), "processors: expected a list of processors, found a JSON object"),
            (json!([1]), "processors[0]: expected an object with a processor name as its only key, found a JSON number"),
            (json!([{}]), "processors[0]: each processor must have exactly one name as its key, found 0 ()"),
            (
                json!([{"drop_event": null}, {"drop_fields": {"fields": ["a"]}, "rename": {}}]),
                "processors[1]: each processor must have exactly one name as its key, found 2 (drop_fields, rename)",
            ),
            (json!([{"drop_event": {}}, {"decode_json": {}}]), r#"processors[1]: unknown processor "decode_json""#),
            (
                json!([{"drop_event": {}}, {"drop_fields": {"feilds": ["a"]}}]),
                r#"processors[1].drop_fields: unknown key "feilds""#,
            ),
            (json!([{"drop_fields": {}}]), r#"processors[0].drop_fields: missing required key "fields""#),
            (json!([{"drop_fields": []}]), "processors[0].drop_fields: expected an object of options, found a JSON array"),
            (
                json!([{"decode_json_fields": {"fields": ["m"], "max_depth": "2"}}]),
                r#"processors[0].decode_json_fields.max_depth: invalid type: string "2", expected usize"#,
            ),
            (
                json!([{"decode_json_fields": {"fields": ["m"], "max_depth": 0}}]),
                "processors[0].decode_json_fields.max_depth: must be at least 1",
            ),
            (
                json!([{"decode_json_fields": {"fields": ["m"], "overwrite_keys": "yes"}}]),
                r#"processors[0].decode_json_fields.overwrite_keys: invalid type: string "yes", expected a boolean"#,
            ),
            (
                json!([{"drop_event": {"fields": ["a"]}}]),
                r#"processors[0].drop_event: unknown key "fields""#,
            ),
            (
                json!([{"drop_event": {"when": {"equal": {"a": 1}}}}]),
                r#"processors[0].drop_event.when: unknown condition "equal""#,
            ),
            (
                json!([{"rename": {"fields": [{"from": "a", "to": "b"}, {"from": "c"}]}}]),
                r#"processors[0].rename.fields[1]: missing required key "to""#,
            ),
            (
                json!([{"drop_fields": {"fields": ["a", "/(/"]}}]),
                "processors[0].drop_fields.fields[1]: invalid regular expression: regex parse error:\n    (\n    ^\nerror: unclosed group",
            ),
        ];
        for (config, want) in cases {
            let err = Processors::from_config(&config).unwrap_err();
            assert_eq!(err.to_string(), want, "{config}");
        }
        let err = Processors::from_config_at(
            &json!([{"drop_fields": {"fields": 1}}]),
            "inputs[2].processors",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "inputs[2].processors[0].drop_fields.fields: invalid type: integer `1`, expected a string or a list of strings"
        );
    }

    #[test]
    fn a_reused_outcome_holds_only_the_last_event() {
        let chain = Processors::from_config(&json!([
            {"decode_json_fields": {"fields": ["message"], "target": "j"}},
            {"copy_fields": {"fields": [{"from": "nope", "to": "x"}]}},
            {"drop_event": {"when": {"has_fields": ["j.drop"]}}},
        ]))
        .unwrap();
        let event = |message: &str| {
            let mut e = Event::new(logtide_event::Timestamp::UNIX_EPOCH);
            e.insert("message", json!(message)).unwrap();
            e
        };
        let mut outcome = Outcome::default();
        chain.run_into(&mut event(r#"{"drop":1}"#), &mut outcome);
        assert_eq!((outcome.dropped_by(), outcome.errors().len()), (Some(2), 1));
        chain.run_into(&mut event("text"), &mut outcome);
        assert_eq!(
            (
                outcome.dropped_by(),
                outcome.errors().len(),
                outcome.not_json()
            ),
            (None, 1, &[0][..])
        );
        chain.run_into(&mut event(r#"{"a":1}"#), &mut outcome);
        assert_eq!(
            (
                outcome.dropped_by(),
                outcome.errors().len(),
                outcome.not_json()
            ),
            (None, 1, &[][..])
        );
    }

    #[test]
    fn chains_and_outcomes_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Processors>();
        send_sync::<Outcome>();
        send_sync::<Stats>();
    }

    #[test]
    fn every_processor_name_builds() {
        let options = |name: &str| match name {
            "add_fields" => json!({"fields": {"a": 1}}),
            "add_labels" => json!({"labels": {"a": 1}}),
            "add_tags" => json!({"tags": ["t"]}),
            "copy_fields" | "rename" => json!({"fields": [{"from": "a", "to": "b"}]}),
            "truncate_fields" => json!({"fields": ["a"], "max_bytes": 3}),
            "drop_event" => json!(null),
            _ => json!({"fields": ["a"], "when": {"has_fields": ["a"]}}),
        };
        let list: Vec<Value> = PROCESSOR_NAMES
            .iter()
            .map(|name| json!({ *name: options(name) }))
            .collect();
        let chain = Processors::from_config(&Value::Array(list)).unwrap();
        assert_eq!(chain.names().collect::<Vec<_>>(), PROCESSOR_NAMES);
        assert!(Processors::from_config(&json!(null)).unwrap().is_empty());
        assert_eq!(Processors::from_config(&json!([])).unwrap().len(), 0);
    }

    #[test]
    fn run_continues_after_errors_stops_at_drop_and_counts() {
        let chain = Processors::from_config(&json!([
            {"drop_fields": {"fields": ["missing"]}},
            {"add_tags": {"tags": ["seen"]}},
            {"drop_event": {"when": {"equals": {"level": "debug"}}}},
            {"add_tags": {"tags": ["kept"]}},
        ]))
        .unwrap();
        let mut stats = chain.stats();

        let mut event = Event::from_json(json!({"level": "info"})).unwrap();
        let outcome = chain.run(&mut event);
        assert!(!outcome.is_dropped());
        assert_eq!(event.get("tags"), Some(&json!(["seen", "kept"])));
        assert_eq!(outcome.errors().len(), 1);
        let e = &outcome.errors()[0];
        assert_eq!((e.index(), e.processor()), (0, "drop_fields"));
        assert_eq!(
            e.to_string(),
            "processors[0].drop_fields: failed to drop field [missing], error: key not found"
        );
        assert!(matches!(e.error(), Error::NotDropped { field } if field == "missing"));
        stats.record(&outcome);

        let mut event = Event::from_json(json!({"level": "debug"})).unwrap();
        let outcome = chain.run(&mut event);
        assert_eq!(outcome.dropped_by(), Some(2));
        assert_eq!(event.get("tags"), Some(&json!(["seen"])));
        stats.record(&outcome);

        assert_eq!((stats.events_in(), stats.dropped()), (2, 1));
        assert_eq!(stats.errors(), [2, 0, 0, 0]);
        let mut total = Stats::default();
        total.merge(&stats);
        total.merge(&stats);
        assert_eq!(
            (total.events_in(), total.dropped(), total.errors()),
            (4, 2, &[4, 0, 0, 0][..])
        );
    }
}
