//! Alert rules in the relay: the engine over every batch, delivery on its own thread,
//! rules from a directory and from `LogAlertRule` resources, state across restarts; and
//! `rules test`, which runs rule files over NDJSON events without delivering.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logtide_alert::{
    Alert, AlertsConfig, Deliverer, DeliveryStats, Engine, EngineConfig, Rule, RuleDir, RuleStats,
};
use logtide_event::{Event, Timestamp};
use logtide_k8s_meta::{
    ObjectKey, ResourceEvent, ResourceKind, ResourceWatchConfig, ResourceWatcher,
};
use serde_json::{json, Value};

use crate::{Error, Telemetry};

/// How often rule sources are looked at and time moves on without events.
const TICK: Duration = Duration::from_millis(200);
/// How often resource statuses are written at most.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// How long delivery may finish its queue on stop.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// The relay's alerting: call [`Alerts::observe`] with each batch, [`Alerts::tick`] on
/// every loop, [`Alerts::stop`] at the end.
pub struct Alerts {
    engine: Engine,
    deliverer: Deliverer,
    dir: Option<RuleDir>,
    resources: Option<(ResourceWatcher, ResourceRules)>,
    state_file: Option<PathBuf>,
    state_interval: Duration,
    last_save: Instant,
    last_tick: Instant,
    last_status: Instant,
    reported: BTreeMap<String, u64>,
    published: DeliveryStats,
    out: Vec<Alert>,
}

impl Alerts {
    /// Loads the rules (a bad rule file is an error at start; later edits are reported
    /// and the previous rule kept), restores the state and starts delivery.
    pub fn start(config: &AlertsConfig) -> Result<Alerts, Error> {
        let err = Error::Alerts;
        let dir = match &config.rules_dir {
            Some(path) => {
                let dir = RuleDir::open(path).map_err(|e| err(format!("alerts.rules_dir: {e}")))?;
                if let Some(e) = dir.errors().first() {
                    return Err(err(format!("alerts.rules_dir: {e}")));
                }
                Some(dir)
            }
            None => None,
        };
        let resources = match &config.kubernetes {
            Some(k) => {
                let watcher = ResourceWatcher::start(ResourceWatchConfig {
                    kind: ResourceKind::log_alert_rule(),
                    namespace: k.namespace.clone(),
                    kube_config: k.kube_config.clone(),
                    connect_timeout: Duration::from_secs(10),
                })
                .map_err(|e| err(format!("alerts.kubernetes: {e}")))?;
                tracing::info!(url = watcher.url(), "watching LogAlertRule resources");
                Some((watcher, ResourceRules::default()))
            }
            None => None,
        };
        let deliverer = Deliverer::start(config.delivery()).map_err(|e| err(e.to_string()))?;
        let mut alerts = Alerts {
            engine: Engine::new(config.engine(), Vec::<Arc<Rule>>::new()),
            deliverer,
            dir,
            resources,
            state_file: config.state_file.clone(),
            state_interval: config.state_interval,
            last_save: Instant::now(),
            last_tick: Instant::now(),
            last_status: Instant::now(),
            reported: BTreeMap::new(),
            published: DeliveryStats::default(),
            out: Vec::new(),
        };
        alerts.set_rules();
        if let Some(path) = &alerts.state_file {
            match alerts.engine.restore_state(path, Timestamp::now()) {
                Ok(true) => tracing::info!(path = %path.display(), "alert state restored"),
                Ok(false) => {}
                // A state that cannot be read is not a reason to stop relaying.
                Err(e) => tracing::error!(error = %e, "alert state not restored; starting afresh"),
            }
        }
        tracing::info!(rules = alerts.engine.rules().count(), "alert rules loaded");
        Ok(alerts)
    }

    /// Evaluates a batch and queues its alerts.
    pub fn observe(&mut self, events: &[Event]) {
        self.engine.process(events, Timestamp::now(), &mut self.out);
        self.deliver();
    }

    /// Picks up rule changes, moves time on, writes statuses and saves the state when
    /// due; counts delivery retries and failures into `telemetry` (output `alerts`).
    pub fn tick(&mut self, telemetry: &Telemetry) {
        if self.last_tick.elapsed() < TICK {
            return;
        }
        self.last_tick = Instant::now();
        let d = self.deliverer.stats();
        let p = &self.published;
        telemetry.add_retries("alerts", "delivery", d.retries - p.retries);
        telemetry.add_output_errors("alerts", "delivery", d.failed - p.failed);
        telemetry.add_output_errors("alerts", "queue_full", d.dropped - p.dropped);
        self.published = d;
        let mut changed = false;
        if let Some(dir) = &mut self.dir {
            match dir.reload_if_changed() {
                Ok(true) => changed = true,
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "cannot read the rules directory"),
            }
        }
        if let Some((watcher, rules)) = &mut self.resources {
            for event in watcher.try_events() {
                for (key, status) in rules.apply(event) {
                    watcher.patch_status(&key, status);
                }
                changed = true;
            }
        }
        if changed {
            self.set_rules();
        }
        self.engine.tick(Timestamp::now(), &mut self.out);
        self.deliver();
        if self.last_status.elapsed() >= STATUS_EVERY {
            self.last_status = Instant::now();
            self.write_statuses();
        }
        if self.last_save.elapsed() >= self.state_interval {
            self.last_save = Instant::now();
            self.save();
        }
    }

    /// Saves the state and lets delivery finish its queue (for a short while).
    pub fn stop(self) {
        self.save();
        let stats = self.deliverer.shutdown(DELIVERY_GRACE);
        tracing::info!(
            alerts = self.engine.stats().alerts,
            delivered = stats.delivered,
            failed = stats.failed,
            dropped = stats.dropped,
            "alerting stopped"
        );
    }

    fn deliver(&mut self) {
        for alert in self.out.drain(..) {
            self.deliverer.send(alert);
        }
    }

    fn save(&self) {
        if let Some(path) = &self.state_file {
            if let Err(e) = self.engine.save_state(path) {
                tracing::error!(error = %e, "cannot save the alert state");
            }
        }
    }

    /// Files first, then resources; a resource rule whose name a file already uses is
    /// refused in its status.
    fn set_rules(&mut self) {
        let mut rules: Vec<Arc<Rule>> = self.dir.as_ref().map(RuleDir::rules).unwrap_or_default();
        if let Some((watcher, resources)) = &mut self.resources {
            for (key, rule) in resources.rules() {
                if let Some(first) = rules.iter().find(|r| r.name() == rule.name()) {
                    let message = format!(
                        "rule \"{}\" is already defined in {}",
                        rule.name(),
                        first.origin()
                    );
                    if resources.set_error(&key, &message) {
                        watcher.patch_status(&key, json!({"loaded": false, "lastError": message}));
                    }
                    continue;
                }
                rules.push(rule);
            }
        }
        self.engine.set_rules(rules);
    }

    /// The resource rules' last match and delivery errors.
    fn write_statuses(&mut self) {
        let Some((watcher, resources)) = &mut self.resources else {
            return;
        };
        let errors = self.deliverer.take_errors();
        let stats = self.engine.stats();
        for (key, rule) in resources.rules() {
            let name = rule.name();
            let s: RuleStats = stats.rules.get(name).cloned().unwrap_or_default();
            let mut status = serde_json::Map::new();
            if self.reported.get(name) != Some(&s.matches) {
                self.reported.insert(name.to_owned(), s.matches);
                if let Some(t) = s.last_match {
                    let t = Timestamp::new(
                        t.div_euclid(1_000_000_000),
                        t.rem_euclid(1_000_000_000) as u32,
                    )
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                    status.insert("lastMatch".into(), json!(t.to_string()));
                    status.insert("matches".into(), json!(s.matches));
                }
            }
            if let Some(e) = errors.get(name) {
                status.insert("lastError".into(), json!(e));
            }
            if !status.is_empty() {
                watcher.patch_status(&key, Value::Object(status));
            }
        }
    }
}

/// The rules defined by `LogAlertRule` resources, kept from the watch's events.
///
/// A resource whose spec is not a valid rule keeps the rule it had before (if any) and
/// reports the error in its status, as a rule file does.
#[derive(Default)]
pub struct ResourceRules {
    entries: BTreeMap<ObjectKey, ResourceEntry>,
}

struct ResourceEntry {
    rule: Option<Arc<Rule>>,
    error: Option<String>,
}

impl ResourceRules {
    /// Applies a change; returns the statuses to write.
    pub fn apply(&mut self, event: ResourceEvent) -> Vec<(ObjectKey, Value)> {
        match event {
            ResourceEvent::Listed(objects) => {
                let keep: Vec<ObjectKey> = objects.iter().map(|o| o.key.clone()).collect();
                self.entries.retain(|k, _| keep.contains(k));
                objects
                    .into_iter()
                    .map(|o| self.applied(o.key, o.generation, &o.spec))
                    .collect()
            }
            ResourceEvent::Applied(o) => vec![self.applied(o.key, o.generation, &o.spec)],
            ResourceEvent::Deleted(key) => {
                self.entries.remove(&key);
                Vec::new()
            }
            ResourceEvent::Error(e) => {
                tracing::warn!(error = %e, "LogAlertRule watch failed; retrying");
                Vec::new()
            }
        }
    }

    fn applied(
        &mut self,
        key: ObjectKey,
        generation: Option<i64>,
        spec: &Value,
    ) -> (ObjectKey, Value) {
        let origin = format!("LogAlertRule {key}");
        let entry = self.entries.entry(key.clone()).or_insert(ResourceEntry {
            rule: None,
            error: None,
        });
        let status = match Rule::from_value(spec, &origin, Some(&key.to_string())) {
            Ok(rule) => {
                entry.rule = Some(Arc::new(rule));
                entry.error = None;
                json!({"loaded": true, "observedGeneration": generation, "lastError": ""})
            }
            Err(e) => {
                tracing::error!(error = %e, "LogAlertRule not loaded");
                entry.error = Some(e.to_string());
                json!({"loaded": entry.rule.is_some(), "observedGeneration": generation, "lastError": e.to_string()})
            }
        };
        (key, status)
    }

    /// Records an error found when combining rule sources; returns whether it is new.
    fn set_error(&mut self, key: &ObjectKey, message: &str) -> bool {
        match self.entries.get_mut(key) {
            Some(e) if e.error.as_deref() != Some(message) => {
                e.error = Some(message.to_owned());
                true
            }
            _ => false,
        }
    }

    /// The rules, by resource.
    pub fn rules(&self) -> Vec<(ObjectKey, Arc<Rule>)> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.rule.as_ref().map(|r| (k.clone(), Arc::clone(r))))
            .collect()
    }
}

/// What [`test_rules`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RulesTestSummary {
    /// Rules loaded.
    pub rules: usize,
    /// Events read.
    pub events: u64,
    /// Lines that were not events (each reported on standard error).
    pub bad_lines: u64,
    /// Alerts that would fire.
    pub alerts: u64,
}

/// Runs the rules of `paths` (files or directories) over NDJSON events from `input`,
/// writing the alerts that would fire to `out` (text, or one JSON object per line with
/// `json`), without delivering anything.
///
/// Time is the events' own: the clock follows the newest event time, so a stream of
/// yesterday's events behaves as it did then. At the end, waiting `change` events are
/// compared and pending aggregations are sent; windows still open are not closed (no
/// flatline is reported for the time after the last event).
pub fn test_rules(
    paths: &[PathBuf],
    input: impl BufRead,
    input_name: &str,
    out: &mut impl Write,
    json_lines: bool,
) -> Result<RulesTestSummary, Error> {
    let mut rules: Vec<Arc<Rule>> = Vec::new();
    for p in paths {
        let bad = |message: String| Error::Config {
            file: p.clone(),
            message,
        };
        if p.is_dir() {
            let (found, errors) = logtide_alert::load_rules(p).map_err(|e| bad(e.to_string()))?;
            if let Some(e) = errors.first() {
                return Err(Error::Unsupported(e.to_string()));
            }
            rules.extend(found);
        } else {
            rules.push(Arc::new(
                Rule::load(p).map_err(|e| Error::Unsupported(e.to_string()))?,
            ));
        }
    }
    let mut summary = RulesTestSummary {
        rules: rules.len(),
        ..RulesTestSummary::default()
    };
    let mut engine = Engine::new(EngineConfig::default(), rules);
    let mut alerts = Vec::new();
    let mut now = Timestamp::UNIX_EPOCH;
    let mut batch = Vec::new();
    let write_err = |e: std::io::Error| Error::Output(format!("cannot write the alerts: {e}"));
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::Output(format!("{input_name}: cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| Event::from_json(v).map_err(|e| e.to_string()));
        match event {
            Ok(e) => {
                summary.events += 1;
                now = now.max(e.timestamp());
                batch.push(e);
            }
            Err(e) => {
                summary.bad_lines += 1;
                eprintln!("{input_name} line {}: not an event: {e}", i + 1);
            }
        }
        if batch.len() >= 1024 {
            engine.process(&batch, now, &mut alerts);
            batch.clear();
            write_alerts(out, &mut alerts, json_lines, &mut summary).map_err(write_err)?;
        }
    }
    engine.process(&batch, now, &mut alerts);
    engine.finish(&mut alerts);
    write_alerts(out, &mut alerts, json_lines, &mut summary).map_err(write_err)?;
    Ok(summary)
}

fn write_alerts(
    out: &mut impl Write,
    alerts: &mut Vec<Alert>,
    json_lines: bool,
    summary: &mut RulesTestSummary,
) -> std::io::Result<()> {
    for a in alerts.drain(..) {
        summary.alerts += 1;
        if json_lines {
            serde_json::to_writer(&mut *out, &a)?;
            out.write_all(b"\n")?;
            continue;
        }
        let key = a
            .query_key
            .as_deref()
            .map(|k| format!(" [{k}]"))
            .unwrap_or_default();
        let to: Vec<&str> = a.destinations().iter().map(|d| d.kind()).collect();
        writeln!(
            out,
            "{} {}{key}: {} (to: {})",
            a.time_text(),
            a.rule,
            a.subject,
            to.join(", ")
        )?;
        for line in a.text.lines() {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use logtide_k8s_meta::ResourceObject;

    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            namespace: Some("monitoring".into()),
            name: name.into(),
        }
    }

    fn object(name: &str, generation: i64, spec: Value) -> ResourceObject {
        ResourceObject {
            key: key(name),
            generation: Some(generation),
            spec,
        }
    }

    fn names(r: &ResourceRules) -> Vec<String> {
        r.rules().iter().map(|(_, r)| r.name().to_owned()).collect()
    }

    #[test]
    fn resource_rules_follow_create_update_delete() {
        let mut rules = ResourceRules::default();
        let statuses = rules.apply(ResourceEvent::Listed(vec![object(
            "errors",
            1,
            json!({"type": "any", "filter": [{"term": {"level": "error"}}], "alert": "debug"}),
        )]));
        assert_eq!(names(&rules), ["monitoring/errors"]);
        assert_eq!(
            statuses,
            vec![(
                key("errors"),
                json!({"loaded": true, "observedGeneration": 1, "lastError": ""})
            )]
        );

        // Created with its own name; then a bad update keeps the previous rule.
        rules.apply(ResourceEvent::Applied(object(
            "quiet",
            1,
            json!({"name": "payments quiet", "type": "flatline", "threshold": 1, "timeframe": "5m"}),
        )));
        assert_eq!(names(&rules), ["monitoring/errors", "payments quiet"]);
        let statuses = rules.apply(ResourceEvent::Applied(object(
            "quiet",
            2,
            json!({"name": "payments quiet", "type": "flatline", "timeframe": "5m"}),
        )));
        assert_eq!(
            statuses,
            vec![(
                key("quiet"),
                json!({"loaded": true, "observedGeneration": 2,
                "lastError": "LogAlertRule monitoring/quiet: threshold: missing required key"})
            )]
        );
        assert_eq!(names(&rules), ["monitoring/errors", "payments quiet"]);

        // An update that changes the type is applied.
        rules.apply(ResourceEvent::Applied(object(
            "errors",
            2,
            json!({"type": "frequency", "num_events": 5, "timeframe": {"minutes": 1}}),
        )));
        let errors = rules
            .rules()
            .into_iter()
            .find(|(k, _)| k.name == "errors")
            .unwrap()
            .1;
        assert_eq!(errors.type_name(), "frequency");

        rules.apply(ResourceEvent::Deleted(key("quiet")));
        assert_eq!(names(&rules), ["monitoring/errors"]);
        // A relist replaces everything.
        rules.apply(ResourceEvent::Listed(vec![object(
            "other",
            1,
            json!({"type": "any"}),
        )]));
        assert_eq!(names(&rules), ["monitoring/other"]);
    }

    #[test]
    fn relay_configuration_alerts_section() {
        use std::path::Path;
        let base = "source.kinesis: {stream_name: logs}\nsinks: {console: {}}\n";
        let c = crate::RelayConfig::from_yaml(
            &format!("{base}alerts: {{rules_dir: /etc/logtide/rules, state_file: /var/lib/logtide/alerts.state, allowed_lateness: 1m, kubernetes: {{namespace: monitoring}}, delivery: {{queue: 10}}}}"),
            Path::new("relay.yml"),
        )
        .unwrap();
        let a = c.alerts.unwrap();
        assert_eq!(a.engine().allowed_lateness, Duration::from_secs(60));
        assert_eq!(a.delivery().queue, 10);
        assert_eq!(
            a.kubernetes.unwrap().namespace.as_deref(),
            Some("monitoring")
        );
        for (yaml, want) in [
            (
                "alerts: {state_file: /x}",
                "alerts: at least one of rules_dir, kubernetes is required",
            ),
            (
                "alerts: {rules_dir: /x, lateness: 1m}",
                "alerts.lateness: unknown field `lateness`",
            ),
            (
                "alerts: {rules_dir: /x, allowed_lateness: soon}",
                "alerts.allowed_lateness",
            ),
        ] {
            let err =
                crate::RelayConfig::from_yaml(&format!("{base}{yaml}"), Path::new("relay.yml"))
                    .unwrap_err()
                    .to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn rules_test_prints_what_would_fire() {
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("errors.yaml");
        std::fs::write(
            &rule,
            "name: errors\ntype: frequency\nnum_events: 2\ntimeframe: 1m\nquery_key: pod\nfilter: [{term: {level: error}}]\nalert_text: 'errors on {pod}'\nalert: [debug]\n",
        )
        .unwrap();
        let input = [
            r#"{"@timestamp":"2026-01-01T00:00:00Z","level":"error","pod":"a"}"#,
            r#"{"@timestamp":"2026-01-01T00:00:10Z","level":"info","pod":"a"}"#,
            "not json",
            r#"{"@timestamp":"2026-01-01T00:00:20Z","level":"error","pod":"a"}"#,
            r#"{"@timestamp":"2026-01-01T00:00:30Z","level":"error","pod":"b"}"#,
        ]
        .join("\n");
        let mut out = Vec::new();
        let summary =
            test_rules(&[rule], input.as_bytes(), "events.ndjson", &mut out, false).unwrap();
        assert_eq!(
            (
                summary.rules,
                summary.events,
                summary.bad_lines,
                summary.alerts
            ),
            (1, 4, 1, 1)
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("2026-01-01T00:00:20Z errors [a]: errors (a) (to: debug)\n    errors on a\n    \n    At least 2 events"),
            "{text}"
        );
    }

    /// Accepts HTTP requests and reports their bodies.
    fn receiver() -> (String, mpsc::Receiver<Value>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                        length = 0;
                        continue;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
        });
        (url, rx)
    }

    #[test]
    fn relay_alerting_delivers_saves_state_and_reloads_rules() {
        let (url, received) = receiver();
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::env::set_var("LOGTIDE_PIPELINE_TEST_HOOK", &url);
        std::fs::write(
            rules.join("errors.yaml"),
            "name: errors\ntype: any\nquery_key: pod\nrealert: 1h\nfilter: [{term: {level: error}}]\nalert: [post]\nhttp_post_url: ${LOGTIDE_PIPELINE_TEST_HOOK}\n",
        )
        .unwrap();
        let state = dir.path().join("alerts.state");
        let config: AlertsConfig = serde_json::from_value(json!({
            "rules_dir": rules, "state_file": state, "state_interval": "1h",
        }))
        .unwrap();
        let event = |pod: &str| Event::from_json(json!({"level": "error", "pod": pod})).unwrap();

        let mut alerts = Alerts::start(&config).unwrap();
        alerts.observe(&[event("a"), event("a"), event("b")]);
        let mut pods = vec![
            received.recv_timeout(Duration::from_secs(10)).unwrap()["query_key"].clone(),
            received.recv_timeout(Duration::from_secs(10)).unwrap()["query_key"].clone(),
        ];
        pods.sort_by_key(|v| v.to_string());
        assert_eq!(pods, [json!("a"), json!("b")]);
        alerts.stop();
        assert!(state.exists());

        // After a restart the silences hold: the same events send nothing.
        let telemetry = Telemetry::default();
        let mut alerts = Alerts::start(&config).unwrap();
        alerts.observe(&[event("a"), event("b")]);
        // A new rule file is picked up.
        std::fs::write(
            rules.join("warnings.yaml"),
            "name: warnings\ntype: any\nrealert: 0s\nfilter: [{term: {level: warn}}]\nalert: [post]\nhttp_post_url: ${LOGTIDE_PIPELINE_TEST_HOOK}\n",
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alerts.engine.rules().count() < 2 {
            assert!(
                Instant::now() < deadline,
                "the new rule file was not loaded"
            );
            std::thread::sleep(TICK);
            alerts.tick(&telemetry);
        }
        alerts.observe(&[Event::from_json(json!({"level": "warn"})).unwrap()]);
        let body = received.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(body["rule"], "warnings");
        alerts.stop();
        assert!(received.try_recv().is_err(), "nothing else was sent");
    }
}
