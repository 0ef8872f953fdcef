//! Streaming alert rules, elastalert-like, evaluated on logtide events as they pass.
//!
//! The relay runs every event through an [`Engine`] holding [`Rule`]s; the engine keeps
//! each rule's windows by event time and produces [`Alert`]s, which a [`Deliverer`]
//! posts to Slack or a webhook on a thread of its own, so evaluation never waits on the
//! network. Rules come from YAML files (elastalert's keys; a [`RuleDir`] reloads them on
//! change) or from any JSON source, such as a Kubernetes resource's `spec`.
//!
//! - [`Rule`]: a validated rule; [`Rule::from_yaml`], [`Rule::load`], [`Rule::from_value`].
//! - [`Engine`]: [`Engine::process`] a batch, [`Engine::tick`] on a silent stream,
//!   [`Engine::finish`] at the end of a finite input; [`Engine::save_state`] and
//!   [`Engine::restore_state`] across restarts.
//! - [`Deliverer`]: a bounded queue and a thread that delivers each alert once.
//! - [`RuleDir`]: a directory of rule files, watched for changes.
//!
//! # Rules
//!
//! A rule file uses elastalert's keys:
//!
//! | key | meaning |
//! |---|---|
//! | `name` | unique name (required in files) |
//! | `type` | `any`, `frequency`, `flatline`, `spike`, `change`, `new_term` |
//! | `filter` | elastalert's list of query clauses, all required: `term`, `terms`, `match`, `match_phrase`, `range` (numbers), `exists`, `bool` (`must`, `filter`, `should`, `must_not`), `query_string` (`field:value`, `AND`/`OR`/`NOT`, quotes, wildcards, ranges), each optionally under `query:`. Other clauses are refused, naming the rule and the clause. |
//! | `when` | a logtide condition (`equals`, `contains`, `regexp`, `range`, `has_fields`, `and`, `or`, `not`), required as well |
//! | `query_key` | field (or list of fields) whose value keeps separate windows, silences and alerts |
//! | `timeframe`, `num_events` | `frequency`: at least `num_events` matching events less than `timeframe` apart (elastalert's window: an event exactly `timeframe` old has left it) |
//! | `timeframe`, `threshold`, `forget_keys` | `flatline`: fewer than `threshold` events within `timeframe` |
//! | `timeframe`, `spike_height`, `spike_type` (`up`/`down`/`both`), `threshold_ref`, `threshold_cur`, `alert_on_new_data` | `spike`: elastalert's sliding windows, re-evaluated at every event: the events of the last `timeframe` (current) against those of the `timeframe` before them (reference), once two timeframes have passed; `threshold_ref`/`threshold_cur` are minimum counts; after a match the reference starts again |
//! | `compare_key`, `ignore_null`, `timeframe` | `change`: the field's value differs from the previous event's of the same `query_key` (within `timeframe` if set) |
//! | `fields` (default: `query_key`), `terms_window_size` (30 days), `learning_period` (0), `alert_on_missing_field` | `new_term`: a value not seen in `terms_window_size`; during `learning_period` terms are only learnt; a missing or empty field is no term, and a match of its own with `alert_on_missing_field` |
//! | `realert` | after an alert, matches of the same query key within this time are suppressed (default 1 minute; 0 turns it off) |
//! | `aggregation`, `aggregation_key`, `summary_table_fields` | matches within this time from the first are sent as one alert |
//! | `alert_subject`, `alert_text` (+ `_args`), `alert_text_type`, `include` | the message; see below |
//! | `alert` | `slack`, `post` (generic webhook), `debug` (the log) |
//! | `slack_webhook_url` (or `_file`), `slack_channel_override`, `slack_username_override`, `slack_emoji_override`, `slack_icon_url_override`, `slack_msg_color` | Slack |
//! | `http_post_url` (or `_file`), `http_post_headers`, `http_post_payload`, `http_post_static_payload`, `http_post_all_values` | webhook |
//! | `is_enabled` | `false` keeps the rule loaded but idle |
//!
//! Durations are elastalert's maps (`{minutes: 5}`) or text (`5m`). Keys elastalert uses
//! for querying Elasticsearch (`index`, `es_host`, `buffer_time`, `timestamp_field`, …)
//! are accepted and ignored; any other unknown key is an error. Where logtide deliberately
//! differs from elastalert, `docs/compatibility.md` says so, with the reason.
//!
//! Webhook URLs and header values are secrets: `${NAME}` is taken from the environment,
//! `slack_webhook_url_file`/`http_post_url_file` read a file, and they never appear in
//! logs, errors or `Debug` output ([`Secret`]).
//!
//! # Alert text
//!
//! `alert_subject` (default: the rule's name and query key) and `alert_text` are
//! templates: `{field.path}` is an event field, `{0}`, `{1}`, … the fields listed in
//! `alert_subject_args`/`alert_text_args` (elastalert's form), and `{rule}`,
//! `{num_matches}`, `{query_key}`, `{timestamp}` the alert's own values; a missing field
//! reads `<MISSING VALUE>`. The text is followed by what happened and the event's fields
//! (only those in `include`, if set) unless `alert_text_type: alert_text_only`.
//!
//! # Time
//!
//! Windows are by event time (`@timestamp`). Events may arrive out of order within
//! [`EngineConfig::allowed_lateness`]; older ones are counted as late and left out of
//! windows. The watermark follows the newest event time less the allowed lateness and,
//! while the stream is silent, moves on with the wall clock, so a flatline is found
//! even when nothing arrives at all.
//!
//! # Example
//!
//! ```
//! use logtide_alert::{Engine, EngineConfig, Rule};
//! use logtide_event::{Event, Timestamp};
//! use serde_json::json;
//!
//! let rule = Rule::from_yaml(r#"
//! name: checkout errors
//! type: frequency
//! num_events: 3
//! timeframe: {minutes: 1}
//! query_key: kubernetes.pod.name
//! filter:
//! - term: {level: error}
//! alert_text: "{num_matches} alert: errors on {kubernetes.pod.name}"
//! alert: [debug]
//! "#, "rules/checkout.yaml")?;
//! let mut engine = Engine::new(EngineConfig::default(), vec![rule]);
//!
//! let events: Vec<Event> = (0..3)
//!     .map(|i| Event::from_json(json!({
//!         "@timestamp": format!("2026-01-01T00:00:0{i}Z"),
//!         "level": "error",
//!         "kubernetes": {"pod": {"name": "web-0"}},
//!     })))
//!     .collect::<Result<_, _>>()?;
//! let mut alerts = Vec::new();
//! engine.process(&events, Timestamp::now(), &mut alerts);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].query_key.as_deref(), Some("web-0"));
//! assert!(alerts[0].text.starts_with("1 alert: errors on web-0\n\nAt least 3 events"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod deliver;
mod dir;
mod duration;
mod engine;
mod error;
mod filter;
mod rule;
mod secret;
mod state;
mod template;

pub use config::{AlertsConfig, DeliveryOptions, KubernetesRules};
pub use deliver::{Deliverer, DeliveryConfig, DeliveryStats};
pub use dir::{load_rules, RuleDir};
pub use engine::{Alert, Engine, EngineConfig, EngineStats, RuleStats};
pub use error::{Error, Result};
pub use rule::{Destination, Rule, SlackTarget, WebhookTarget};
pub use secret::Secret;
pub use state::STATE_VERSION;
