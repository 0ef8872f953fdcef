//! logtide-relay: Kinesis → S3, Elasticsearch, file, console.
//!
//! The loop: [`Consumer::poll`] hands out shard batches; each batch is written to the
//! file and console sinks (synchronously), then to the S3 archive, which accepts the
//! events' tokens once their object is stored, and to Elasticsearch, which accepts them
//! once each document is indexed or dead-lettered (without either, the tokens are
//! accepted after the file and console writes). With both S3 and Elasticsearch, each
//! event's token is split in two (`fan_out`): the source hears of the event only after
//! both halves were reported. So a shard's checkpoint passes a record only after every
//! configured sink took its events. On stop: no more fetching, S3 and Elasticsearch
//! flush, final checkpoints, leases released.

pub mod alerts;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logtide_alert::AlertsConfig;
use logtide_es::{EsConfig, EsSink, EsStats};
use logtide_event::{AckOutcome, AckToken, Acknowledge, Event};
use logtide_kinesis::{Consumer, ConsumerConfig, ConsumerStats};
use logtide_s3::{S3Config, S3Sink, S3Stats};
use serde::Deserialize;

use crate::config::{document, invalid, load_file, typed, ConsoleConfig, FileOutputConfig};
use crate::http::{HttpConfig, HttpServer, RELAY_PORT};
use crate::output::{ConsoleOutput, FileOutput, Output};
use crate::telemetry::Telemetry;
use crate::Error;
use alerts::Alerts;

/// `source`: where the relay reads.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySource {
    /// `source.kinesis`: the stream and its checkpoints.
    pub kinesis: ConsumerConfig,
}

/// `sinks`: where the relay writes; each event goes to every sink configured.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySinks {
    /// The S3 archive.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Elasticsearch or OpenSearch.
    #[serde(default)]
    pub elasticsearch: Option<EsConfig>,
    /// NDJSON files.
    #[serde(default)]
    pub file: Option<FileOutputConfig>,
    /// NDJSON on standard output.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
}

/// The configuration of logtide-relay.
///
/// ```yaml
/// source.kinesis:
///   stream_name: logs
///   region: ap-northeast-1
///   checkpoint: {path: /var/lib/logtide/relay}
/// sinks:
///   s3: {bucket: logs-archive, prefix: logtide, max_object_bytes: 64MiB, max_age: 60s}
///   elasticsearch:
///     hosts: ["http://127.0.0.1:9200"]
///     index: "logtide-%{+yyyy.MM.dd}"
///     mapping: {default: coerce, rules: [{fields: "message-json.*", policy: stringify}]}
///   file: {path: /tmp/relay-out, filename: events.ndjson}
///   console: {}
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `source`.
    pub source: RelaySource,
    /// `sinks`.
    pub sinks: RelaySinks,
    /// The self-monitoring endpoint (`http.enabled`, `http.host`, `http.port`).
    #[serde(default)]
    pub http: HttpConfig,
    /// Alert rules evaluated on every event (see [`alerts`]).
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
}

impl RelayConfig {
    /// Loads and validates a relay configuration file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        load_file(path, Self::from_yaml)
    }

    /// Parses and validates configuration text (dotted keys, `${VAR:default}`, unknown
    /// keys refused with their path); `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, Error> {
        let bad = invalid(origin);
        let config: RelayConfig = typed(document(text, origin, &[])?, origin)?;
        config
            .source
            .kinesis
            .validate()
            .map_err(|e| bad(format!("source.kinesis: {e}")))?;
        if let Some(s3) = &config.sinks.s3 {
            s3.validate().map_err(|e| bad(format!("sinks.s3: {e}")))?;
        }
        if let Some(es) = &config.sinks.elasticsearch {
            es.validate()
                .map_err(|e| bad(format!("sinks.elasticsearch: {e}")))?;
        }
        if let Some(a) = &config.alerts {
            a.validate().map_err(|e| bad(format!("alerts: {e}")))?;
        }
        let s = &config.sinks;
        if s.s3.is_none() && s.elasticsearch.is_none() && s.file.is_none() && s.console.is_none() {
            return Err(bad(
                "sinks: at least one of s3, elasticsearch, file, console is required".into(),
            ));
        }
        Ok(config)
    }
}

/// What a relay run did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RelaySummary {
    /// The consumer's counters.
    pub consumer: ConsumerStats,
    /// The S3 sink's counters, when configured.
    pub s3: Option<S3Stats>,
    /// The Elasticsearch sink's counters, when configured.
    pub es: Option<EsStats>,
}

/// How long the final S3 and Elasticsearch flushes keep trying on stop.
const FLUSH_WINDOW: Duration = Duration::from_secs(30);

/// How often the consumer's counters and lag go to the self-metrics.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Hands the consumer's, the S3 sink's and the Elasticsearch sink's counters gained since
/// the last call to the self-metrics.
#[derive(Default)]
struct RelayPublisher {
    consumer: ConsumerStats,
    s3: S3Stats,
    es: EsStats,
}

impl RelayPublisher {
    /// Called as soon as records are read (before their events reach a sink), so that a
    /// scrape never finds an event shipped that is not yet counted read; the shards' lag
    /// goes when `lag`.
    fn publish(
        &mut self,
        t: &Telemetry,
        consumer: &Consumer,
        s3: Option<&S3Sink>,
        es: Option<&EsSink>,
        lag: bool,
    ) {
        let (was, now) = (&self.consumer, consumer.stats());
        t.add_events("read", now.events - was.events);
        t.add_bytes("read", now.bytes - was.bytes);
        t.add_discarded_events(
            "undecodable",
            now.dead_letters_undecodable - was.dead_letters_undecodable,
        );
        t.add_discarded_events(
            "incomplete_entry",
            now.dead_letters_incomplete - was.dead_letters_incomplete,
        );
        t.add_source_errors(
            "kinesis",
            (now.errors + now.throttled) - (was.errors + was.throttled),
        );
        for (format, now, was) in [
            ("logtide", now.records_logtide, was.records_logtide),
            ("json", now.records_json, was.records_json),
            ("text", now.records_text, was.records_text),
        ] {
            t.add_source_records("kinesis", format, now - was);
        }
        t.add_modified_events(
            "offload_restored",
            now.events_restored - was.events_restored,
        );
        t.add_modified_events(
            "offload_not_restored",
            now.offloaded_not_restored - was.offloaded_not_restored,
        );
        if lag {
            t.set_shard_lag(&consumer.lag());
        }
        self.consumer = now;
        if let Some(s3) = s3 {
            let now = s3.stats().clone();
            t.add_events("shipped", now.events - self.s3.events);
            t.add_bytes("shipped", now.bytes - self.s3.bytes);
            for ((reason, n), (_, was)) in now
                .retries_by_reason()
                .into_iter()
                .zip(self.s3.retries_by_reason())
            {
                t.add_retries("s3", reason, n - was);
            }
            self.s3 = now;
        }
        if let Some(es) = es {
            let (was, now) = (&self.es, es.stats().clone());
            // Without S3, an event is shipped once indexed; a dead-lettered one is counted
            // as a discard below, so that read = shipped + discards still holds.
            if s3.is_none() {
                t.add_events("shipped", now.indexed - was.indexed);
            }
            for ((reason, n), (_, before)) in now
                .retries_by_reason()
                .into_iter()
                .zip(was.retries_by_reason())
            {
                t.add_retries("elasticsearch", reason, n - before);
            }
            t.add_modified_events("mapping_normalized", now.normalized - was.normalized);
            t.add_discarded_events("es_dead_letter", now.dead_lettered - was.dead_lettered);
            self.es = now;
        }
    }
}

/// How long one Elasticsearch call may wait for retries inside the relay's loop, which
/// must come back to the consumer to renew its shard leases. Documents still waiting stay
/// queued in the sink (the consumer's `max_unacked_records` bounds them) and are sent on
/// the next turns.
const ES_BUDGET: Duration = Duration::from_secs(1);

/// Since when Elasticsearch has had documents waiting, and when that was last logged.
#[derive(Default)]
struct EsTrouble {
    since: Option<Instant>,
    logged: Option<Instant>,
}

/// Reports an Elasticsearch call to the self-metrics; a retryable error is swallowed (the
/// documents stay queued in the sink) and logged at most every 10 s, any other is
/// returned.
fn es_result(
    t: &Telemetry,
    result: logtide_es::Result<()>,
    trouble: &mut EsTrouble,
) -> logtide_es::Result<()> {
    match result {
        Ok(()) => {
            if trouble.since.take().is_some() {
                tracing::info!("elasticsearch takes documents again");
            }
            Ok(())
        }
        Err(e) if e.is_retryable() => {
            let now = Instant::now();
            let since = *trouble.since.get_or_insert(now);
            if trouble
                .logged
                .is_none_or(|l| now.duration_since(l) >= Duration::from_secs(10))
            {
                trouble.logged = Some(now);
                tracing::warn!(error = %e, waiting_for = ?now.duration_since(since), "elasticsearch is not taking every document; they are kept and tried again");
            }
            t.output_error("elasticsearch", e.to_string());
            t.add_output_errors("elasticsearch", "write", 1);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Runs the relay until `stop` is set, then flushes, checkpoints and releases leases.
pub fn run_relay(config: &RelayConfig, stop: Arc<AtomicBool>) -> Result<RelaySummary, Error> {
    run_relay_with(config, stop, Arc::new(Telemetry::new()))
}

/// [`run_relay`], counting into `telemetry` (served on the configuration's `http`
/// endpoint when enabled).
pub fn run_relay_with(
    config: &RelayConfig,
    stop: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
) -> Result<RelaySummary, Error> {
    let relay_err = |source: logtide_kinesis::Error| Error::Kinesis {
        context: "source.kinesis",
        source,
    };
    let s3_err = Error::S3;
    telemetry.set_stalled_after(config.http.stalled_after());
    let _http = HttpServer::start_if_enabled(&config.http, RELAY_PORT, telemetry.clone())?;
    let mut consumer = Consumer::connect(&config.source.kinesis).map_err(relay_err)?;
    telemetry.set_ready("source", Ok(()));
    let mut publisher = RelayPublisher::default();
    let mut last_publish = Instant::now();
    let mut s3 = config
        .sinks
        .s3
        .as_ref()
        .map(S3Sink::connect)
        .transpose()
        .map_err(s3_err)?;
    let es_err = Error::Elasticsearch;
    let mut es = config
        .sinks
        .elasticsearch
        .as_ref()
        .map(EsSink::connect)
        .transpose()
        .map_err(es_err)?;
    let mut outputs: Vec<Box<dyn Output>> = Vec::new();
    if let Some(f) = &config.sinks.file {
        outputs.push(Box::new(FileOutput::open(f.clone())?));
    }
    if let Some(c) = &config.sinks.console {
        outputs.push(Box::new(ConsoleOutput::new(c.clone())));
    }
    // Each sink is ready while it makes progress, whatever errors it meets on the way;
    // the age of its oldest entry comes from the entries it has not acknowledged.
    let s3_backlog = s3.as_ref().map(|_| Backlog::watch("s3", telemetry.clone()));
    let es_backlog = es
        .as_ref()
        .map(|_| Backlog::watch("elasticsearch", telemetry.clone()));
    let mut alerts = config.alerts.as_ref().map(Alerts::start).transpose()?;
    tracing::info!(stream = %config.source.kinesis.stream_name, "relay running");
    let mut last_s3_error: Option<Instant> = None;
    let mut es_trouble = EsTrouble::default();
    while !stop.load(Ordering::Relaxed) {
        let batches = match consumer.poll(Duration::from_millis(200)) {
            Ok(b) => {
                telemetry.set_ready("source", Ok(()));
                let lag = last_publish.elapsed() >= PUBLISH_EVERY;
                if lag {
                    last_publish = Instant::now();
                }
                publisher.publish(&telemetry, &consumer, s3.as_ref(), es.as_ref(), lag);
                b
            }
            Err(e) if e.is_retryable() => {
                telemetry.set_ready("source", Err(e.to_string()));
                tracing::warn!(error = %e, "kinesis source failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(relay_err(e)),
        };
        for mut b in batches {
            if let Some(a) = &mut alerts {
                a.observe(&b.events);
            }
            for o in &mut outputs {
                o.write_batch(&b.events)
                    .map_err(|e| Error::Output(format!("cannot write events: {e}")))?;
                o.publish(&telemetry);
            }
            let events = std::mem::take(&mut b.events);
            let (for_s3, for_es) = match (&s3_backlog, &es_backlog) {
                (Some(_), Some(_)) => {
                    let (a, b) = fan_out(events);
                    (Some(a), Some(b))
                }
                (Some(_), None) => (Some(events), None),
                (None, Some(_)) => (None, Some(events)),
                (None, None) => {
                    let mut events = events;
                    telemetry.add_events("shipped", events.len() as u64);
                    accept(&mut events);
                    (None, None)
                }
            };
            if let (Some(s3), Some(backlog), Some(mut events)) = (&mut s3, &s3_backlog, for_s3) {
                backlog.track(&mut events);
                backlog.busy();
                let result = s3.write(&b.shard_id, &b.first_sequence, events);
                backlog.idle_if(s3.unstored_objects() == 0);
                if let Err(e) = result {
                    if !e.is_retryable() {
                        return Err(s3_err(e));
                    }
                    tracing::warn!(error = %e, "s3 upload failed; the object is kept and tried again");
                    telemetry.output_error("s3", e.to_string());
                    telemetry.add_output_errors("s3", "write", 1);
                    last_s3_error = Some(Instant::now());
                }
            }
            if let (Some(es), Some(backlog), Some(mut events)) = (&mut es, &es_backlog, for_es) {
                backlog.track(&mut events);
                backlog.busy();
                let result = es.write_within(events, ES_BUDGET);
                backlog.idle_if(es.pending() == 0);
                es_result(&telemetry, result, &mut es_trouble).map_err(es_err)?;
            }
        }
        if let Some(es) = es.as_mut().filter(|es| es.pending() > 0) {
            let result = es.flush_within(ES_BUDGET);
            if let Some(backlog) = &es_backlog {
                backlog.idle_if(es.pending() == 0);
            }
            es_result(&telemetry, result, &mut es_trouble).map_err(es_err)?;
        }
        if let Some(a) = &mut alerts {
            a.tick(&telemetry);
        }
        if let Some(s3) = &mut s3 {
            let wait_after_error =
                last_s3_error.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
            if !wait_after_error {
                if let Some(backlog) = &s3_backlog {
                    backlog.busy();
                }
                let result = s3.tick();
                if let Some(backlog) = &s3_backlog {
                    backlog.idle_if(s3.unstored_objects() == 0);
                }
                match result {
                    Ok(()) => {
                        last_s3_error = None;
                    }
                    Err(e) => {
                        if !e.is_retryable() {
                            return Err(s3_err(e));
                        }
                        tracing::warn!(error = %e, "s3 upload failed; the object is kept and tried again");
                        telemetry.output_error("s3", e.to_string());
                        telemetry.add_output_errors("s3", "write", 1);
                        last_s3_error = Some(Instant::now());
                    }
                }
            }
        }
    }
    tracing::info!("stopping: flushing, checkpointing, releasing leases");
    if let Some(a) = alerts {
        a.stop();
    }
    consumer.stop_fetching();
    if let Some(s3) = &mut s3 {
        let deadline = Instant::now() + FLUSH_WINDOW;
        while let Err(e) = s3.flush() {
            if !e.is_retryable() || Instant::now() >= deadline {
                tracing::error!(error = %e, "s3 flush failed on stop; unacknowledged events are read again next time");
                break;
            }
        }
    }
    if let Some(es) = &mut es {
        let deadline = Instant::now() + FLUSH_WINDOW;
        while let Err(e) = es.flush() {
            if !e.is_retryable() || Instant::now() >= deadline {
                tracing::error!(error = %e, "elasticsearch flush failed on stop; unacknowledged events are read again next time");
                break;
            }
        }
    }
    publisher.publish(&telemetry, &consumer, s3.as_ref(), es.as_ref(), true);
    let consumer_stats = consumer.shutdown().map_err(relay_err)?;
    Ok(RelaySummary {
        consumer: consumer_stats,
        s3: s3.map(|s| s.stats().clone()),
        es: es.map(|s| s.stats().clone()),
    })
}

/// The events a sink holds and has not acknowledged: each event's token is replaced by
/// one of the backlog's, which passes the outcome on to the original and tells the
/// self-metrics that the sink made progress. It gives `/readyz` and
/// `logtide_output_oldest_unacked_seconds` the sink's oldest entry, from the entry's own
/// time (so the age goes on growing when the relay restarts and reads it again).
struct Backlog {
    output: &'static str,
    telemetry: Arc<Telemetry>,
    state: Mutex<BacklogState>,
    /// The handle its tokens point to (the backlog itself).
    this: std::sync::Weak<Backlog>,
}

#[derive(Default)]
struct BacklogState {
    next: u64,
    tokens: std::collections::HashMap<u64, (AckToken, logtide_event::Timestamp)>,
    /// The times of the entries held, with how many have each.
    times: std::collections::BTreeMap<logtide_event::Timestamp, u32>,
}

impl Backlog {
    /// A backlog for `output`, made part of readiness under the same name.
    fn watch(output: &'static str, telemetry: Arc<Telemetry>) -> Arc<Backlog> {
        let backlog = Arc::new_cyclic(|this| Backlog {
            output,
            telemetry: telemetry.clone(),
            state: Mutex::new(BacklogState::default()),
            this: this.clone(),
        });
        telemetry.watch_output(output, output);
        let weak = Arc::downgrade(&backlog);
        telemetry.output_backlog_from(output, move || {
            weak.upgrade().map_or((0, None), |b| {
                let state = b.lock();
                (
                    state.tokens.len() as u64,
                    state.times.keys().next().copied(),
                )
            })
        });
        backlog
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BacklogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `events` in the backlog, their tokens replaced by its own.
    fn track(&self, events: &mut [Event]) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let target: Arc<dyn Acknowledge> = this;
        let mut state = self.lock();
        for e in events.iter_mut() {
            let Some(token) = e.take_ack() else {
                continue;
            };
            let id = state.next;
            state.next += 1;
            let time = e.timestamp();
            state.tokens.insert(id, (token, time));
            *state.times.entry(time).or_default() += 1;
            e.set_ack(AckToken::new(target.clone(), id));
        }
    }

    /// The sink is about to work on what it holds.
    fn busy(&self) {
        self.telemetry.output_busy(self.output, 0, None);
    }

    /// The sink is done working, if `done` (nothing left that it should be sending).
    fn idle_if(&self, done: bool) {
        if done {
            self.telemetry.output_idle(self.output);
        }
    }
}

impl Acknowledge for Backlog {
    fn acknowledge(&self, id: u64, outcome: AckOutcome) {
        let taken = {
            let mut state = self.lock();
            let taken = state.tokens.remove(&id);
            if let Some((_, time)) = &taken {
                if let Some(n) = state.times.get_mut(time) {
                    *n -= 1;
                    if *n == 0 {
                        state.times.remove(time);
                    }
                }
            }
            taken
        };
        // Outside the lock: the original token's target and the self-metrics have locks
        // of their own.
        let Some((token, _)) = taken else {
            return;
        };
        match outcome {
            AckOutcome::Accepted => token.accept(),
            AckOutcome::Discarded { reason } => token.discard(reason),
            _ => {
                drop(token);
                return;
            }
        }
        self.telemetry.output_progress(self.output);
    }
}

/// Splits a batch for two sinks: the events themselves for the first, copies for the
/// second, each with its part of the event's token ([`AckToken::split`]): the source
/// hears of an event once both sinks reported it.
fn fan_out(mut events: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    let copies = events
        .iter_mut()
        .map(|e| {
            let mut copy = e.clone_unacked();
            if let Some(token) = e.take_ack() {
                let [mine, theirs] = token.split();
                e.set_ack(mine);
                copy.set_ack(theirs);
            }
            copy
        })
        .collect();
    (events, copies)
}

/// Installs the Elasticsearch index templates and lifecycle policy of
/// `sinks.elasticsearch` (`logtide-relay setup`).
pub fn setup_elasticsearch(config: &RelayConfig) -> Result<logtide_es::SetupReport, Error> {
    let es = config.sinks.elasticsearch.as_ref().ok_or_else(|| {
        Error::Output("setup: the configuration has no sinks.elasticsearch".into())
    })?;
    logtide_es::setup(es).map_err(Error::Elasticsearch)
}

/// What [`mapping_check`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MappingCheckSummary {
    /// Documents read.
    pub documents: u64,
    /// Documents Elasticsearch would accept as they are.
    pub accepted: u64,
    /// Documents the normalizer changes.
    pub changed: u64,
    /// Documents still rejected after normalization (the sink dead-letters them).
    pub unresolved: u64,
    /// Lines that are not a JSON document.
    pub not_json: u64,
}

/// `logtide-relay mapping check`: reads one JSON document per line from `input` and
/// writes, for each, one JSON object to `output`: `{"doc": n, "accepted": bool,
/// "field": …, "reason": …, "error_type": …, "status": …, "changes": [...],
/// "normalized_accepted": bool}` — whether Elasticsearch with dynamic mapping would index
/// it as it is (after the documents before it), and what the normalizer of `mapping`
/// would change. `template` is the index template or index creation body the index
/// starts from (none: an empty index with default settings). A line that is not JSON is
/// reported with `error_type: "not_json"` and the check goes on.
pub fn mapping_check(
    mapping: &logtide_es::MappingConfig,
    template: Option<&serde_json::Value>,
    input: impl std::io::BufRead,
    mut output: impl std::io::Write,
) -> Result<MappingCheckSummary, Error> {
    let normalizer = mapping
        .build()
        .map_err(|e| Error::Output(format!("mapping: {e}")))?;
    let start = match template {
        Some(t) => logtide_mapping::IndexMapping::from_index_template(t)
            .map_err(|e| Error::Output(format!("--template: {e}")))?,
        None => logtide_mapping::IndexMapping::default(),
    };
    let mut checker = logtide_mapping::Checker::new(normalizer, start);
    let mut summary = MappingCheckSummary::default();
    let write_err = |e: std::io::Error| Error::Output(format!("cannot write the report: {e}"));
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::Output(format!("reading line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.documents += 1;
        let report = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(doc) => {
                let mut r = checker.check(&doc);
                // Numbered by line, not-JSON lines included.
                r.doc = summary.documents as usize;
                summary.accepted += u64::from(r.accepted);
                summary.changed += u64::from(!r.changes.is_empty());
                summary.unresolved += u64::from(!r.normalized_accepted);
                serde_json::to_value(&r).unwrap_or_default()
            }
            Err(e) => {
                summary.not_json += 1;
                serde_json::json!({
                    "doc": summary.documents, "accepted": false, "field": null,
                    "reason": format!("line {} is not JSON: {e}", i + 1),
                    "error_type": "not_json", "status": null, "changes": [],
                    "normalized_accepted": false
                })
            }
        };
        serde_json::to_writer(&mut output, &report)
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        output.write_all(b"\n").map_err(write_err)?;
    }
    output.flush().map_err(write_err)?;
    Ok(summary)
}

fn accept(events: &mut [Event]) {
    AckToken::accept_all(events.iter_mut().filter_map(Event::take_ack));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_as_documented() {
        let yaml = r#"
source.kinesis:
  stream_name: logs
  region: ap-northeast-1
  endpoint: http://127.0.0.1:5000
  start_position: latest
  checkpoint:
    dynamodb: {table: logtide-leases, lease_duration: 10s}
sinks:
  s3:
    bucket: logs-archive
    prefix: logtide
    region: ap-northeast-1
    endpoint: http://127.0.0.1:5000
    max_object_bytes: 64MiB
    max_age: 60s
  file: {path: /tmp/relay-out, filename: events.ndjson}
  console: {}
"#;
        let c = RelayConfig::from_yaml(yaml, Path::new("relay.yml")).unwrap();
        assert_eq!(c.source.kinesis.stream_name, "logs");
        assert_eq!(
            c.source.kinesis.start_position,
            logtide_kinesis::StartPosition::Latest
        );
        let d = c.source.kinesis.checkpoint.dynamodb.as_ref().unwrap();
        assert_eq!(d.lease_duration, Duration::from_secs(10));
        let s3 = c.sinks.s3.as_ref().unwrap();
        assert_eq!(s3.max_object_bytes, 64 << 20);
        assert_eq!(s3.max_age, Duration::from_secs(60));
        assert!(c.sinks.file.is_some() && c.sinks.console.is_some());
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, want) in [
            (
                "source.kinesis: {stream_name: logs}\nsinks: {s3: {bucket: b-b-b, colour: red}}",
                "sinks.s3.colour: unknown field `colour`",
            ),
            (
                "source.kinesis: {stream_name: logs}\nsinks: {s3: {bucket: b-b-b, max_object_bytes: lots}}",
                "sinks.s3.max_object_bytes",
            ),
            ("source.kinesis: {stream_name: logs}\nsinks: {}", "sinks: at least one"),
            (
                "source.kinesis: {stream_name: 'bad name'}\nsinks: {console: {}}",
                "source.kinesis: invalid kinesis configuration: stream_name",
            ),
            (
                "source.kinesis: {stream_name: logs, checkpoint: {dynamodb: {table: t1t, lease_duration: soon}}}\nsinks: {console: {}}",
                "source.kinesis.checkpoint.dynamodb.lease_duration",
            ),
        ] {
            let err = RelayConfig::from_yaml(yaml, Path::new("relay.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<(u64, AckOutcome)>>);

    impl Acknowledge for Log {
        fn acknowledge(&self, id: u64, outcome: AckOutcome) {
            self.0.lock().unwrap().push((id, outcome));
        }
    }

    #[test]
    fn a_fanned_out_event_is_reported_once_both_sinks_reported() {
        let log = Arc::new(Log::default());
        let target: Arc<dyn Acknowledge> = log.clone();
        let events: Vec<Event> = (0..2)
            .map(|i| {
                let mut e = Event::new(logtide_event::Timestamp::new(1_700_000_000, 0).unwrap());
                e.insert("n", serde_json::json!(i)).unwrap();
                e.set_ack(AckToken::new(target.clone(), 10 + i));
                e
            })
            .collect();
        let (mut a, mut b) = fan_out(events);
        assert_eq!(a.len(), 2);
        assert_eq!(a, b, "the copies hold the same events");
        let mut ta: Vec<AckToken> = a.iter_mut().map(|e| e.take_ack().unwrap()).collect();
        let mut tb: Vec<AckToken> = b.iter_mut().map(|e| e.take_ack().unwrap()).collect();
        // Event 10: both sinks accept it, in either order. (Every combination of
        // outcomes is tested with `AckToken::split`.)
        tb.remove(0).accept();
        assert!(log.0.lock().unwrap().is_empty(), "one sink is not enough");
        ta.remove(0).accept();
        // Event 11: one sink gives up on it.
        ta.remove(0).accept();
        drop(tb);
        assert_eq!(
            *log.0.lock().unwrap(),
            [(10, AckOutcome::Accepted), (11, AckOutcome::Abandoned)]
        );
    }

    #[test]
    fn elasticsearch_keys_are_checked() {
        let yaml = r#"
source.kinesis: {stream_name: logs}
sinks:
  elasticsearch:
    hosts: ["http://127.0.0.1:9200"]
    index: "logtide-%{+yyyy.MM.dd}"
    username: elastic
    password: changeme
    mapping:
      default: coerce
      rules: [{fields: "message-json.*", policy: stringify}]
"#;
        let c = RelayConfig::from_yaml(yaml, Path::new("relay.yml")).unwrap();
        let es = c.sinks.elasticsearch.unwrap();
        assert_eq!(es.hosts, ["http://127.0.0.1:9200"]);
        assert_eq!(es.mapping.rules.len(), 1);
        for (yaml, want) in [
            (
                "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [x], colour: red}",
                "sinks.elasticsearch.colour: unknown field",
            ),
            (
                "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: [ftp://x]}",
                "sinks.elasticsearch: invalid elasticsearch configuration: hosts[0]",
            ),
            (
                "source.kinesis: {stream_name: logs}\nsinks.elasticsearch: {hosts: ['http://x'], mapping: {default: strngify}}",
                "sinks.elasticsearch.mapping.default",
            ),
        ] {
            let err = RelayConfig::from_yaml(yaml, Path::new("relay.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn environment_variables_expand() {
        std::env::set_var("LOGTIDE_RELAY_TEST_BUCKET", "from-env");
        let c = RelayConfig::from_yaml(
            "source.kinesis.stream_name: ${LOGTIDE_RELAY_TEST_STREAM:logs}\nsinks.s3.bucket: ${LOGTIDE_RELAY_TEST_BUCKET}",
            Path::new("relay.yml"),
        )
        .unwrap();
        assert_eq!(c.source.kinesis.stream_name, "logs");
        assert_eq!(c.sinks.s3.unwrap().bucket, "from-env");
    }
}
