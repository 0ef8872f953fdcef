//! Rules: elastalert's rule file keys, read into a validated [`Rule`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logtide_event::path::json_type;
use logtide_event::Condition;
use serde_json::{Map, Value};

use crate::duration;
use crate::filter::{self, At};
use crate::secret::Secret;
use crate::template::Template;
use crate::{Error, Result};

/// A validated alert rule.
///
/// Built from a rule file's text with [`Rule::from_yaml`], from its JSON with
/// [`Rule::from_value`] (a `LogAlertRule`'s `spec`), or from a file with
/// [`Rule::load`]. See the crate documentation for the keys.
#[derive(Debug)]
pub struct Rule {
    pub(crate) name: Arc<str>,
    pub(crate) origin: Arc<str>,
    pub(crate) enabled: bool,
    pub(crate) kind: RuleKind,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) query_key: Vec<String>,
    pub(crate) realert: Duration,
    pub(crate) aggregation: Option<Duration>,
    pub(crate) aggregation_key: Option<String>,
    pub(crate) summary_table_fields: Vec<String>,
    pub(crate) subject: Option<Template>,
    pub(crate) text: Option<Template>,
    pub(crate) text_only: bool,
    pub(crate) include: Vec<String>,
    pub(crate) destinations: Arc<[Destination]>,
    pub(crate) fingerprint: u64,
}

/// A rule's type and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RuleKind {
    Any,
    Frequency {
        num_events: usize,
        timeframe: Duration,
    },
    Flatline {
        threshold: usize,
        timeframe: Duration,
        forget_keys: bool,
    },
    Spike {
        spike_height: f64,
        spike_type: SpikeType,
        timeframe: Duration,
        threshold_ref: u64,
        threshold_cur: u64,
        alert_on_new_data: bool,
    },
    Change {
        compare_key: Vec<String>,
        ignore_null: bool,
        timeframe: Option<Duration>,
    },
    NewTerm {
        fields: Vec<Vec<String>>,
        terms_window_size: Duration,
        learning_period: Duration,
        /// A match when an event lacks a field (elastalert's `alert_on_missing_field`).
        alert_on_missing_field: bool,
    },
}

/// Which way a spike goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpikeType {
    Up,
    Down,
    Both,
}

/// Where an alert goes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Destination {
    /// A Slack incoming webhook.
    Slack(SlackTarget),
    /// A generic webhook: the alert as a JSON POST (elastalert's `post`).
    Webhook(WebhookTarget),
    /// The relay's log (elastalert's `debug`).
    Log,
}

/// A Slack incoming webhook and the message's look.
#[derive(Clone, Debug)]
pub struct SlackTarget {
    pub(crate) url: Secret,
    pub(crate) channel: Option<String>,
    pub(crate) username: String,
    pub(crate) icon_emoji: Option<String>,
    pub(crate) icon_url: Option<String>,
    pub(crate) color: String,
}

/// A generic webhook.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    pub(crate) url: Secret,
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) payload: BTreeMap<String, String>,
    pub(crate) static_payload: Map<String, Value>,
    pub(crate) all_values: bool,
}

impl Destination {
    /// A short name for logs and counters: `slack`, `post`, `debug`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Slack(_) => "slack",
            Destination::Webhook(_) => "post",
            Destination::Log => "debug",
        }
    }
}

/// Keys elastalert reads that have no meaning when rules run on the stream (index,
/// connection and query tuning, descriptive fields): accepted and ignored.
const IGNORED_KEYS: &[&str] = &[
    "es_host",
    "es_port",
    "es_username",
    "es_password",
    "es_url_prefix",
    "es_conn_timeout",
    "es_send_get_body_as",
    "use_ssl",
    "verify_certs",
    "ca_certs",
    "client_cert",
    "client_key",
    "index",
    "use_strftime_index",
    "doc_type",
    "timestamp_field",
    "timestamp_type",
    "timestamp_format",
    "timestamp_format_expr",
    "buffer_time",
    "query_delay",
    "max_query_size",
    "max_scrolling_count",
    "scroll_keepalive",
    "use_count_query",
    "use_terms_query",
    "use_local_time",
    "scan_entire_timeframe",
    "terms_size",
    "run_every",
    "generate_kibana_link",
    "use_kibana4_dashboard",
    "kibana_url",
    "kibana4_start_timedelta",
    "kibana4_end_timedelta",
    "kibana_discover_app_url",
    "generate_kibana_discover_url",
    "description",
    "owner",
    "priority",
    "category",
    "aggregate_by_match_time",
    "slack_timeout",
    "slack_proxy",
    "slack_ignore_ssl_errors",
    "slack_ca_certs",
    "slack_parse_override",
    "slack_text_string",
    "http_post_timeout",
    "http_post_proxy",
    "http_post_ca_certs",
    "http_post_ignore_ssl_errors",
    "top_count_keys",
    "top_count_number",
    "raw_count_keys",
    "realert_key",
    "match_enhancements",
    "run_enhancements_first",
    "query_key_fields",
];

/// Alerters this crate delivers to.
const ALERTERS: &str = "slack, post, debug";

impl Rule {
    /// Reads a rule file.
    pub fn load(path: &Path) -> Result<Rule> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Rule::from_yaml(&text, &path.display().to_string())
    }

    /// Reads a rule from YAML text; `origin` names it in errors (a file path).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Rule> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| Error::Yaml {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Rule::from_value(&value, origin, None)
    }

    /// Reads a rule from its JSON form; `origin` names it in errors, `default_name` is the
    /// name when the rule has no `name` key (a resource's namespace/name).
    pub fn from_value(value: &Value, origin: &str, default_name: Option<&str>) -> Result<Rule> {
        let Value::Object(map) = value else {
            return Err(Error::Rule {
                origin: origin.to_owned(),
                key: "(rule)".into(),
                reason: format!(
                    "expected a map of rule keys, found a JSON {}",
                    json_type(value)
                ),
            });
        };
        let mut r = Reader {
            origin,
            map: map.clone(),
        };
        let name = match r.string("name")? {
            Some(n) if !n.trim().is_empty() => n,
            Some(_) => return Err(r.err("name", "must not be empty")),
            None => match default_name {
                Some(n) => n.to_owned(),
                None => return Err(r.err("name", "missing required key")),
            },
        };
        let enabled = r.bool("is_enabled")?.unwrap_or(true);
        let type_name = r
            .string("type")?
            .ok_or_else(|| r.err("type", "missing required key"))?;
        let fingerprint_keys = fingerprint_source(map);
        let kind = match type_name.as_str() {
            "any" => RuleKind::Any,
            "frequency" => RuleKind::Frequency {
                num_events: r.count("num_events")?,
                timeframe: r.required_duration("timeframe")?,
            },
            "flatline" => RuleKind::Flatline {
                threshold: r.count("threshold")?,
                timeframe: r.required_duration("timeframe")?,
                forget_keys: r.bool("forget_keys")?.unwrap_or(false),
            },
            "spike" => {
                let spike_height = r
                    .number("spike_height")?
                    .ok_or_else(|| r.err("spike_height", "missing required key"))?;
                if spike_height.is_nan() || spike_height <= 0.0 {
                    return Err(r.err("spike_height", "must be greater than 0"));
                }
                let spike_type = match r.string("spike_type")?.as_deref() {
                    Some("up") => SpikeType::Up,
                    Some("down") => SpikeType::Down,
                    Some("both") => SpikeType::Both,
                    Some(other) => {
                        return Err(r.err("spike_type", format!("\"{other}\" is not up, down or both")))
                    }
                    None => return Err(r.err("spike_type", "missing required key")),
                };
                RuleKind::Spike {
                    spike_height,
                    spike_type,
                    timeframe: r.required_duration("timeframe")?,
                    threshold_ref: r.number("threshold_ref")?.unwrap_or(0.0) as u64,
                    threshold_cur: r.number("threshold_cur")?.unwrap_or(0.0) as u64,
                    alert_on_new_data: r.bool("alert_on_new_data")?.unwrap_or(false),
                }
            }
            "change" => {
                let compare_key = r.string_list("compare_key")?;
                if compare_key.is_empty() {
                    return Err(r.err("compare_key", "missing required key"));
                }
                if !r.map.contains_key("query_key") {
                    return Err(r.err("query_key", "a change rule needs a query_key"));
                }
                RuleKind::Change {
                    compare_key,
                    ignore_null: r.bool("ignore_null")?.unwrap_or(false),
                    timeframe: r.duration("timeframe")?,
                }
            }
            "new_term" => {
                let fields = match r.map.remove("fields") {
                    Some(Value::String(s)) => vec![vec![s]],
                    Some(Value::Array(items)) if !items.is_empty() => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| match v {
                            Value::String(s) => Ok(vec![s]),
                            Value::Array(parts) => parts
                                .into_iter()
                                .map(|p| match p {
                                    Value::String(s) => Ok(s),
                                    _ => Err(r.err(&format!("fields[{i}]"), "expected field names")),
                                })
                                .collect(),
                            _ => Err(r.err(&format!("fields[{i}]"), "expected a field name or a list of them")),
                        })
                        .collect::<Result<Vec<_>>>()?,
                    Some(_) => return Err(r.err("fields", "expected a field name or a list")),
                    // As elastalert: without `fields`, the terms are the query key's.
                    None => match r.map.get("query_key") {
                        Some(Value::String(s)) => vec![vec![s.clone()]],
                        Some(Value::Array(parts)) if !parts.is_empty() => vec![parts
                            .iter()
                            .map(|p| match p {
                                Value::String(s) => Ok(s.clone()),
                                _ => Err(r.err("query_key", "expected field names")),
                            })
                            .collect::<Result<Vec<_>>>()?],
                        _ => return Err(r.err("fields", "missing required key (or a query_key to use instead)")),
                    },
                };
                RuleKind::NewTerm {
                    fields,
                    terms_window_size: r
                        .duration("terms_window_size")?
                        .unwrap_or(Duration::from_secs(30 * 86_400)),
                    learning_period: r.duration("learning_period")?.unwrap_or_default(),
                    alert_on_missing_field: r.bool("alert_on_missing_field")?.unwrap_or(false),
                }
            }
            other => {
                return Err(r.err(
                    "type",
                    format!("\"{other}\" is not a rule type (any, frequency, flatline, spike, change, new_term)"),
                ))
            }
        };
        let mut conditions = Vec::new();
        if let Some(f) = r.map.remove("filter") {
            let at = At {
                origin,
                rule: &name,
            };
            for c in filter::translate_list(&f, &at)? {
                conditions.push(build_condition(&c, origin, "filter")?);
            }
        }
        if let Some(w) = r.map.remove("when") {
            conditions.push(build_condition(&w, origin, "when")?);
        }
        let query_key = r.string_list("query_key")?;
        let realert = r.duration("realert")?.unwrap_or(Duration::from_secs(60));
        let aggregation = match r.map.get("aggregation") {
            Some(Value::Object(m)) if m.contains_key("schedule") => {
                return Err(r.err(
                    "aggregation.schedule",
                    "cron schedules are not supported; use a duration",
                ))
            }
            _ => r.duration("aggregation")?.filter(|d| !d.is_zero()),
        };
        let aggregation_key = r.string("aggregation_key")?;
        let summary_table_fields = r.string_list("summary_table_fields")?;
        let include = r.string_list("include")?;
        let subject_args = r.string_list("alert_subject_args")?;
        let text_args = r.string_list("alert_text_args")?;
        let subject = r
            .string("alert_subject")?
            .map(|t| Template::parse(&t, &subject_args).map_err(|e| r.err("alert_subject", e)))
            .transpose()?;
        let text = r
            .string("alert_text")?
            .map(|t| Template::parse(&t, &text_args).map_err(|e| r.err("alert_text", e)))
            .transpose()?;
        let text_only = match r.string("alert_text_type")?.as_deref() {
            None | Some("exclude_fields") | Some("aggregation_summary_only") => false,
            Some("alert_text_only") => true,
            Some(other) => {
                return Err(r.err(
                    "alert_text_type",
                    format!("\"{other}\" is not supported (alert_text_only, exclude_fields)"),
                ))
            }
        };
        let destinations = destinations(&mut r)?;
        r.finish()?;
        Ok(Rule {
            name: Arc::from(name),
            origin: Arc::from(origin),
            enabled,
            kind,
            conditions,
            query_key,
            realert,
            aggregation,
            aggregation_key,
            summary_table_fields,
            subject,
            text,
            text_only,
            include,
            destinations: destinations.into(),
            fingerprint: fingerprint_keys,
        })
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the rule came from (a file path or a resource).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the rule is evaluated (`is_enabled`, true unless set false).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The rule's type as written (`frequency`, …).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            RuleKind::Any => "any",
            RuleKind::Frequency { .. } => "frequency",
            RuleKind::Flatline { .. } => "flatline",
            RuleKind::Spike { .. } => "spike",
            RuleKind::Change { .. } => "change",
            RuleKind::NewTerm { .. } => "new_term",
        }
    }

    /// Where its alerts go.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Whether `event` passes the rule's `filter` and `when`.
    pub fn matches(&self, event: &logtide_event::Event) -> bool {
        self.conditions.iter().all(|c| c.check(event))
    }
}

fn build_condition(config: &Value, origin: &str, key: &str) -> Result<Condition> {
    Condition::from_config_at(config, key).map_err(|e| match e {
        logtide_event::Error::Condition { path, reason } => Error::Rule {
            origin: origin.to_owned(),
            key: path,
            reason,
        },
        other => Error::Rule {
            origin: origin.to_owned(),
            key: key.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// A hash of the keys that shape a rule's state: a reloaded rule whose hash is unchanged
/// keeps its windows and terms.
fn fingerprint_source(map: &Map<String, Value>) -> u64 {
    const KEYS: &[&str] = &[
        "type",
        "num_events",
        "timeframe",
        "threshold",
        "query_key",
        "compare_key",
        "fields",
        "spike_height",
        "spike_type",
        "threshold_ref",
        "threshold_cur",
        "filter",
        "when",
        "ignore_null",
        "terms_window_size",
        "alert_on_missing_field",
        "alert_on_new_data",
    ];
    let mut picked = Map::new();
    for k in KEYS {
        if let Some(v) = map.get(*k) {
            picked.insert((*k).to_owned(), v.clone());
        }
    }
    let text = Value::Object(picked).to_string();
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The `alert` list and each alerter's keys.
fn destinations(r: &mut Reader<'_>) -> Result<Vec<Destination>> {
    let names: Vec<(String, Option<Map<String, Value>>)> = match r.map.remove("alert") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![(s, None)],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok((s, None)),
                // elastalert's `- slack: {slack_webhook_url: …}` form.
                Value::Object(m) if m.len() == 1 => {
                    let (k, v) = m.into_iter().next().unwrap_or_default();
                    match v {
                        Value::Object(opts) => Ok((k, Some(opts))),
                        Value::Null => Ok((k, None)),
                        _ => Err(r.err(&format!("alert[{i}].{k}"), "expected a map of options")),
                    }
                }
                _ => Err(r.err(
                    &format!("alert[{i}]"),
                    format!("expected an alerter name ({ALERTERS})"),
                )),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(r.err("alert", format!("expected a list of alerters ({ALERTERS})"))),
    };
    let mut out = Vec::new();
    for (i, (name, options)) in names.into_iter().enumerate() {
        if let Some(opts) = options {
            for (k, v) in opts {
                r.map.insert(k, v);
            }
        }
        match name.as_str() {
            "slack" => {
                let urls = r.secrets("slack_webhook_url")?;
                if urls.is_empty() {
                    return Err(r.err(
                        "slack_webhook_url",
                        "the slack alerter needs slack_webhook_url or slack_webhook_url_file",
                    ));
                }
                let channel = r.string("slack_channel_override")?;
                let username = r
                    .string("slack_username_override")?
                    .unwrap_or_else(|| "logtide".into());
                let icon_emoji = r.string("slack_emoji_override")?;
                let icon_url = r.string("slack_icon_url_override")?;
                let color = r
                    .string("slack_msg_color")?
                    .unwrap_or_else(|| "danger".into());
                for url in urls {
                    out.push(Destination::Slack(SlackTarget {
                        url,
                        channel: channel.clone(),
                        username: username.clone(),
                        icon_emoji: icon_emoji.clone(),
                        icon_url: icon_url.clone(),
                        color: color.clone(),
                    }));
                }
            }
            "post" | "post2" => {
                let urls = r.secrets("http_post_url")?;
                if urls.is_empty() {
                    return Err(r.err(
                        "http_post_url",
                        "the post alerter needs http_post_url or http_post_url_file",
                    ));
                }
                let mut headers = Vec::new();
                if let Some(h) = r.map.remove("http_post_headers") {
                    let Value::Object(h) = h else {
                        return Err(r.err("http_post_headers", "expected a map of header: value"));
                    };
                    for (k, v) in h {
                        let Value::String(v) = v else {
                            return Err(
                                r.err(&format!("http_post_headers.{k}"), "expected a string")
                            );
                        };
                        headers.push((
                            k.clone(),
                            Secret::new(
                                logtide_config::expand_env_text(&v)
                                    .map_err(|e| r.err(&format!("http_post_headers.{k}"), e))?,
                            ),
                        ));
                    }
                }
                let mut payload = BTreeMap::new();
                if let Some(p) = r.map.remove("http_post_payload") {
                    let Value::Object(p) = p else {
                        return Err(r.err("http_post_payload", "expected a map of name: field"));
                    };
                    for (k, v) in p {
                        let Value::String(field) = v else {
                            return Err(
                                r.err(&format!("http_post_payload.{k}"), "expected a field name")
                            );
                        };
                        payload.insert(k, field);
                    }
                }
                let static_payload = match r.map.remove("http_post_static_payload") {
                    None => Map::new(),
                    Some(Value::Object(m)) => m,
                    Some(_) => return Err(r.err("http_post_static_payload", "expected a map")),
                };
                let all_values = r
                    .bool("http_post_all_values")?
                    .unwrap_or(payload.is_empty());
                for url in urls {
                    out.push(Destination::Webhook(WebhookTarget {
                        url,
                        headers: headers.clone(),
                        payload: payload.clone(),
                        static_payload: static_payload.clone(),
                        all_values,
                    }));
                }
            }
            "debug" => out.push(Destination::Log),
            other => {
                return Err(r.err(
                    &format!("alert[{i}]"),
                    format!("alerter \"{other}\" is not supported ({ALERTERS})"),
                ))
            }
        }
    }
    Ok(out)
}

/// Takes keys out of a rule's map; what is left at the end is unknown.
struct Reader<'a> {
    origin: &'a str,
    map: Map<String, Value>,
}

impl Reader<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::Rule {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(
                key,
                format!("expected a string, found a JSON {}", json_type(&v)),
            )),
        }
    }

    fn string_list(&mut self, key: &str) -> Result<Vec<String>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    v => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a string, found a JSON {}", json_type(&v)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(
                key,
                format!(
                    "expected a string or a list of strings, found a JSON {}",
                    json_type(&v)
                ),
            )),
        }
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    fn number(&mut self, key: &str) -> Result<Option<f64>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v) => Err(self.err(key, format!("expected a number, found {v}"))),
        }
    }

    fn count(&mut self, key: &str) -> Result<usize> {
        match self.map.remove(key) {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(c) if c >= 1 => Ok(c as usize),
                _ => Err(self.err(
                    key,
                    format!("expected a whole number of at least 1, found {n}"),
                )),
            },
            None | Some(Value::Null) => Err(self.err(key, "missing required key")),
            Some(v) => Err(self.err(key, format!("expected a number, found {v}"))),
        }
    }

    fn duration(&mut self, key: &str) -> Result<Option<Duration>> {
        match self.map.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => duration::parse(&v).map(Some).map_err(|e| self.err(key, e)),
        }
    }

    fn required_duration(&mut self, key: &str) -> Result<Duration> {
        match self.duration(key)? {
            Some(d) if !d.is_zero() => Ok(d),
            Some(_) => Err(self.err(key, "must be longer than zero")),
            None => Err(self.err(key, "missing required key")),
        }
    }

    /// `key` (a string or a list, `${ENV}` expanded) and `key_file` (a file holding the
    /// secret, trimmed).
    fn secrets(&mut self, key: &str) -> Result<Vec<Secret>> {
        let mut out = Vec::new();
        for v in self.string_list(key)? {
            let v = logtide_config::expand_env_text(&v).map_err(|e| self.err(key, e))?;
            out.push(Secret::new(v.trim()));
        }
        let file_key = format!("{key}_file");
        if let Some(path) = self.string(&file_key)? {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.err(&file_key, format!("cannot read {path}: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(self.err(&file_key, format!("{path} is empty")));
            }
            out.push(Secret::new(text));
        }
        for s in &out {
            let url = s.expose();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(self.err(key, "expected an http:// or https:// URL"));
            }
        }
        Ok(out)
    }

    fn finish(self) -> Result<()> {
        let unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !IGNORED_KEYS.contains(&k.as_str()))
            .collect();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(self.err(k, "unknown key")),
        }
    }
}
