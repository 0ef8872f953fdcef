//! Filebeat's event processors, starting with `decode_json_fields`.
//!
//! Container logs are often JSON inside a string: the runtime wraps each line in its own
//! format, and the application's JSON ends up in `message`. Filebeat configurations turn
//! it back into fields with `decode_json_fields` and tidy up with `drop_fields`, `rename`
//! and friends, each guarded by an optional `when:` condition. This crate runs such a
//! `processors:` list over [`Event`](logtide_event::Event)s, with Filebeat's names, options and semantics, so an
//! existing list works unchanged. It is pure and synchronous (no I/O, no runtime), so it
//! can be embedded, fuzzed and benchmarked on its own.
//!
//! - [`Processors`] is a validated chain, built once with [`Processors::from_config`] from
//!   the `processors:` list (YAML converted to JSON). Dotted keys are paths anywhere in
//!   the list, as Filebeat's loader reads them (`add_labels.labels: {…}`). Unknown
//!   processors, unknown keys, wrong types, missing options and bad regular expressions
//!   (including what Go's `regexp`, which Filebeat uses, refuses: `w++`) are rejected
//!   there, with the path of the offending key
//!   (`processors[1].drop_fields: unknown key "feilds"`).
//! - [`Processors::run`] runs the chain over one event in place and returns an
//!   [`Outcome`]: whether the event was dropped, the [`ProcessorError`]s reported on
//!   the way, and the fields `decode_json_fields` found not to be JSON. As in Filebeat,
//!   an error does not stop the chain.
//! - [`Stats`] counts outcomes: events in, events dropped, errors and fields not JSON
//!   per processor.
//! - [`Condition`] is a `when:` condition on its own.
//!
//! The processors are `decode_json_fields`, `drop_fields`, `drop_event`, `include_fields`,
//! `rename`, `copy_fields`, `add_fields`, `add_labels`, `add_tags` and `truncate_fields`
//! (see [`PROCESSOR_NAMES`]); the conditions are `has_fields`, `equals`, `contains`,
//! `regexp`, `range`, `and`, `or` and `not`.
//!
//! # Decoding
//!
//! `decode_json_fields` decodes each field once, straight into the event. Integers that fit
//! in an `i64` stay integers; fractions, exponents (`1e3`) and larger integers become
//! floats. A field that is not exactly one JSON value (trailing text, as in
//! `11:38:04,323 INFO`, counts as not JSON) is left unchanged. Plain text is what many
//! containers write, so it is not an error: it is an outcome of its own
//! ([`Outcome::not_json`]), unless the processor has `add_error_key: true`; then it is an
//! error, and the event carries it in `error.message` as Filebeat adds it.
//!
//! # Where this differs from Filebeat
//!
//! Filebeat's behaviour is the rule, error texts included (`failed to rename fields in
//! processor: target field b already exists, drop or rename this field first`); these
//! deliberate exceptions turn silent surprises into errors or make results well defined
//! (`docs/compatibility.md` lists them with the reasons):
//!
//! - A condition object must have exactly one key (Filebeat uses the first it recognizes
//!   and ignores the rest), and `equals`, `contains`, `regexp` and `range` need at least
//!   one field (Filebeat treats an empty one as always true).
//! - Problems Filebeat only logs are reported as processor errors too: dotted keys that
//!   cannot be expanded, unusable `@timestamp`/`@metadata`/`type` with `overwrite_keys`,
//!   `rename`/`copy_fields` failures with `fail_on_error: false`, tags added to a non-list.
//! - When `expand_keys` fails, nothing is written for that field, whatever the target.
//! - `add_fields` treats `target` as a field path (`a.b` is `b` inside `a`) and rejects
//!   `@timestamp` in `fields`.
//! - A `rename` whose target cannot be written leaves the field where it was (Filebeat
//!   deletes it first, so it is lost without `fail_on_error`).
//! - `truncate_fields` cuts at a character boundary (`max_bytes` may keep a few bytes
//!   less), and adds `"truncated"` to `log.flags` once per event.
//! - JSON nested deeper than 128 levels is not decoded.
//!
//! # Example
//!
//! ```
//! use logtide_event::Event;
//! use logtide_json::Processors;
//! use serde_json::json;
//!
//! let processors = Processors::from_config(&json!([
//!     {"decode_json_fields": {
//!         "fields": ["message"], "target": "message-json",
//!         "process_array": false, "max_depth": 5, "overwrite_keys": true,
//!     }},
//!     {"drop_fields": {"fields": ["message"], "when": {"has_fields": ["message-json"]}}},
//! ]))?;
//!
//! let mut event = Event::from_json(json!({"message": r#"{"level":"info","took_ms":12}"#}))?;
//! let outcome = processors.run(&mut event);
//! assert!(!outcome.is_dropped() && outcome.errors().is_empty());
//! assert_eq!(event.get("message-json.took_ms"), Some(&json!(12)));
//! assert!(!event.contains("message"));
//!
//! // Plain text stays as it is: not an error, counted as not JSON (processor 0).
//! let mut event = Event::from_json(json!({"message": "GET /healthz 200"}))?;
//! let outcome = processors.run(&mut event);
//! assert_eq!(event.get("message"), Some(&json!("GET /healthz 200")));
//! assert!(outcome.errors().is_empty());
//! assert_eq!(outcome.not_json(), [0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod add;
mod chain;
mod condition;
mod config;
mod decode;
mod dotted;
mod error;
mod fields;
mod goregexp;
mod merge;
mod raw;
mod scan;

pub use chain::{
    Extension, Extensions, Outcome, ProcessorError, Processors, Stats, PROCESSOR_NAMES,
};
pub use condition::Condition;
pub use error::{Error, Result};
