//! The bulk sink: normalization, batching, per-item outcomes, dead letters.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use logtide_event::{AckToken, Event, Timestamp};
use logtide_mapping::{Action, IndexMapping, Normalizer, Stats};
use serde_json::{json, Value};

use crate::bulk::{self, ItemResult};
use crate::client::{preview, Client, Response, ServerVersion};
use crate::config::EsConfig;
use crate::index::{document_id, IndexPattern};
use crate::{Error, Result};

/// Index mappings kept in memory (one per daily index; the oldest are forgotten).
const MAX_MAPPINGS: usize = 16;
/// Attempts for an item answered 500 before it is dead-lettered.
const SERVER_ERROR_ATTEMPTS: u32 = 3;
/// Longest original kept in a dead letter for a document the server refused as too large.
const TRUNCATED_ORIGINAL_BYTES: usize = 64 << 10;
/// The reason dead-lettered events are discarded with.
pub const DEAD_LETTER_REASON: &str = "es_dead_letter";

/// Counters of an [`EsSink`]. Every document ends in exactly one of `indexed`,
/// `dead_lettered` or `failed`, or is still pending:
/// `documents == indexed + dead_lettered + failed + pending`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EsStats {
    /// Documents handed to the sink.
    pub documents: u64,
    /// Documents indexed (normalized or not).
    pub indexed: u64,
    /// Documents the normalizer changed before they were sent (first attempt or after a
    /// rejection).
    pub normalized: u64,
    /// Documents Elasticsearch rejected for their mapping and that were normalized again
    /// against the index's fresh mapping and sent again.
    pub mapping_retries: u64,
    /// Item attempts answered 429/502/503/504 (or 500) and sent again after a backoff.
    pub retried: u64,
    /// Whole `_bulk` requests that failed (unreachable, 429, 5xx) and were sent again.
    pub request_retries: u64,
    /// Items and requests sent again because the cluster answered 429.
    pub retried_throttled: u64,
    /// Items and requests sent again after a server error (500, 502, 503, 504).
    pub retried_server: u64,
    /// Requests sent again after a network failure (unreachable, reset, unreadable
    /// answer).
    pub retried_network: u64,
    /// Requests sent again after no answer came within `timeout`.
    pub retried_timeout: u64,
    /// Documents refused for their mapping, normalized again and sent again (the same
    /// as `mapping_retries`).
    pub retried_refused_record: u64,
    /// Documents stored in the dead-letter index.
    pub dead_lettered: u64,
    /// Documents whose dead letter was refused too (logged; their events are not
    /// acknowledged, so the source keeps them).
    pub failed: u64,
    /// `_bulk` requests sent.
    pub requests: u64,
    /// Bytes of `_bulk` bodies before compression.
    pub bytes: u64,
    /// Mapping refreshes (`GET <index>`) after a rejection.
    pub mapping_refreshes: u64,
    /// What the normalizer changed, per field.
    pub normalizer: Stats,
}

/// One document on its way.
struct Doc {
    /// The target index (the dead-letter index once `dead`).
    index: String,
    id: String,
    time: Timestamp,
    /// The event's JSON as it arrived, without `@metadata`.
    original: Vec<u8>,
    /// The index it was meant for.
    target: String,
    /// What is sent.
    body: Vec<u8>,
    token: Option<AckToken>,
    attempts: u32,
    rejections: u32,
    server_errors: u32,
    not_before: Option<Instant>,
    dead: bool,
}

/// The Elasticsearch / OpenSearch sink. Its methods block; requests of one round are
/// sent from `concurrency` threads at once.
///
/// Each event becomes a document with a deterministic `_id` in the index named by its
/// time. Before it is sent, the [`Normalizer`] resolves the type conflicts the index's
/// mapping (read with `GET <index>` the first time the index is used) would reject. An
/// event's [`AckToken`] is accepted once the document is indexed, or discarded with
/// [`DEAD_LETTER_REASON`] once it is stored in the dead-letter index; never before.
pub struct EsSink {
    client: Client,
    version: ServerVersion,
    config: EsConfig,
    index: IndexPattern,
    dead_letter: IndexPattern,
    normalizer: Normalizer,
    mappings: HashMap<String, IndexMapping>,
    mapping_order: VecDeque<String>,
    stale: BTreeSet<String>,
    queue: VecDeque<Doc>,
    max_bytes: usize,
    stats: EsStats,
    scratch: Vec<u8>,
    last_error: Option<String>,
}

impl EsStats {
    /// The documents and requests sent again, by reason (the `reason` label of
    /// `logtide_output_retries_total`).
    pub fn retries_by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("throttled", self.retried_throttled),
            ("refused_record", self.retried_refused_record),
            ("network", self.retried_network),
            ("timeout", self.retried_timeout),
            ("server", self.retried_server),
        ]
    }
}

/// Why a request or an item is sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    Throttled,
    Server,
    Network,
    Timeout,
}

impl Retry {
    fn of_status(status: u16) -> Retry {
        if status == 429 {
            Retry::Throttled
        } else {
            Retry::Server
        }
    }
}

impl std::fmt::Debug for EsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsSink")
            .field("version", &self.version)
            .field("pending", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl EsSink {
    /// Validates `config`, sets up the client and asks the cluster for its version
    /// (`GET /`).
    pub fn connect(config: &EsConfig) -> Result<EsSink> {
        config.validate()?;
        let client = Client::new(config)?;
        let version = client.version()?;
        tracing::info!(%version, hosts = ?config.hosts, "elasticsearch sink connected");
        let normalizer = config
            .mapping
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(EsSink {
            client,
            version,
            index: IndexPattern::parse(&config.index).map_err(Error::Config)?,
            dead_letter: IndexPattern::parse(&config.dead_letter_index).map_err(Error::Config)?,
            normalizer,
            mappings: HashMap::new(),
            mapping_order: VecDeque::new(),
            stale: BTreeSet::new(),
            queue: VecDeque::new(),
            max_bytes: config.bulk_max_bytes,
            stats: EsStats::default(),
            scratch: Vec::new(),
            last_error: None,
            config: config.clone(),
        })
    }

    /// The server's distribution and version.
    pub fn version(&self) -> &ServerVersion {
        &self.version
    }

    /// The counters.
    pub fn stats(&self) -> &EsStats {
        &self.stats
    }

    /// Documents accepted by [`write`](EsSink::write) but not yet indexed or
    /// dead-lettered.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The index an event goes to.
    pub fn index_for(&self, event: &Event) -> String {
        self.index.format(event.timestamp())
    }

    /// Normalizes and sends `events`, retrying throttled items, until every document is
    /// indexed or dead-lettered. After `max_retry_time` of failures it returns a
    /// retryable error; the documents stay queued for the next call.
    pub fn write(&mut self, events: Vec<Event>) -> Result<()> {
        self.write_within(events, self.config.max_retry_time)
    }

    /// Like [`write`](EsSink::write), but returns [`Error::Pending`] once `budget` is
    /// spent with documents still waiting for a retry (they stay queued; send them with
    /// [`flush_within`](EsSink::flush_within)). A caller that must stay responsive (the
    /// relay renews its shard leases between calls) gives a short budget; a request
    /// already sent is always waited for.
    pub fn write_within(&mut self, events: Vec<Event>, budget: Duration) -> Result<()> {
        for event in events {
            self.enqueue(event);
        }
        self.drive(Instant::now() + budget)
    }

    /// Sends what is still queued (after an error), for up to `max_retry_time`.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_within(self.config.max_retry_time)
    }

    /// Sends what is still queued, for up to `budget`.
    pub fn flush_within(&mut self, budget: Duration) -> Result<()> {
        self.drive(Instant::now() + budget)
    }

    fn enqueue(&mut self, mut event: Event) {
        self.stats.documents += 1;
        let token = event.take_ack();
        let id = document_id(&event, &mut self.scratch);
        drop(std::mem::take(event.metadata_mut()));
        let mut original = Vec::with_capacity(512);
        event.write_json(&mut original);
        let index = self.index.format(event.timestamp());
        let mut doc = Doc {
            index: index.clone(),
            id,
            time: event.timestamp(),
            original,
            target: index,
            body: Vec::new(),
            token,
            attempts: 0,
            rejections: 0,
            server_errors: 0,
            not_before: None,
            dead: false,
        };
        self.normalize(&mut doc, event);
        self.queue.push_back(doc);
    }

    /// Normalizes `event` against its index's mapping and sets the body (or turns the
    /// document into a dead letter when no change can make it acceptable).
    fn normalize(&mut self, doc: &mut Doc, mut event: Event) {
        self.load_mapping(&doc.target);
        let mapping = self.mappings.entry(doc.target.clone()).or_default();
        let outcome = self.normalizer.normalize_event(mapping, &mut event);
        self.stats.normalizer.record(&outcome);
        if let Some(rejection) = &outcome.unresolved {
            let reason = rejection.reason.clone();
            self.to_dead_letter(doc, rejection.error_type, &reason, 400, "normalize");
            return;
        }
        if !outcome.is_lossless() {
            // Values would be removed without a record of them in the document: keep the
            // original whole in the dead-letter index instead.
            let dropped: Vec<&str> = outcome
                .changes
                .iter()
                .filter(|c| c.action == Action::Drop)
                .map(|c| c.field.as_str())
                .collect();
            let reason = format!(
                "the mapping leaves no room for {} values ({}{}) nor for the record of the change",
                dropped.len(),
                dropped[..dropped.len().min(5)].join(", "),
                if dropped.len() > 5 { ", …" } else { "" }
            );
            self.to_dead_letter(
                doc,
                "logtide_lossy_normalization",
                &reason,
                400,
                "normalize",
            );
            return;
        }
        if outcome.is_changed() {
            self.stats.normalized += 1;
        }
        doc.body.clear();
        event.write_json(&mut doc.body);
    }

    fn to_dead_letter(&self, doc: &mut Doc, kind: &str, reason: &str, status: u16, stage: &str) {
        let mut original = String::from_utf8_lossy(&doc.original).into_owned();
        let truncated = status == 413 && original.len() > TRUNCATED_ORIGINAL_BYTES;
        if truncated {
            let mut end = TRUNCATED_ORIGINAL_BYTES;
            while !original.is_char_boundary(end) {
                end -= 1;
            }
            original.truncate(end);
        }
        let mut ts = Vec::with_capacity(32);
        doc.time.write_rfc3339(&mut ts);
        let letter = json!({
            "@timestamp": String::from_utf8_lossy(&ts),
            "error": {"type": kind, "reason": reason, "status": status, "stage": stage},
            "event": {"original": original, "original_truncated": truncated},
            "target": {"index": doc.target, "id": doc.id},
        });
        doc.body = serde_json::to_vec(&letter).unwrap_or_default();
        doc.index = self.dead_letter.format(doc.time);
        doc.dead = true;
        doc.not_before = None;
        tracing::warn!(index = %doc.target, id = %doc.id, error_type = kind, %reason, "document dead-lettered");
    }

    /// Reads the mapping of `index` the first time it is used: the index's own, or the
    /// index template's for an index that does not exist yet.
    fn load_mapping(&mut self, index: &str) {
        if self.mappings.contains_key(index) {
            return;
        }
        let mapping = match self.fetch_mapping(index) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%index, error = %e, "cannot read the index mapping; starting from dynamic defaults and reading it again later");
                self.stale.insert(index.to_owned());
                IndexMapping::default()
            }
        };
        self.remember(index, mapping);
    }

    /// Keeps `mapping` for `index`, forgetting the oldest index beyond [`MAX_MAPPINGS`].
    fn remember(&mut self, index: &str, mapping: IndexMapping) {
        if self.mappings.insert(index.to_owned(), mapping).is_some() {
            return;
        }
        self.mapping_order.push_back(index.to_owned());
        while self.mapping_order.len() > MAX_MAPPINGS {
            if let Some(old) = self.mapping_order.pop_front() {
                self.mappings.remove(&old);
            }
        }
    }

    fn fetch_mapping(&self, index: &str) -> Result<IndexMapping> {
        let bad = |e: logtide_mapping::Error| Error::Response {
            url: format!("/{index}"),
            message: e.to_string(),
        };
        let r = self.client.request("GET", &format!("/{index}"), None)?;
        if r.is_success() {
            let v = r.json()?;
            // An alias answers with the concrete index's name.
            let name = if v.get(index).is_some() {
                Some(index)
            } else {
                None
            };
            return IndexMapping::from_get_mapping(&v, name).map_err(bad);
        }
        if r.status != 404 {
            return Err(r.status_error("GET"));
        }
        let name = &self.config.setup.template_name;
        let t = self
            .client
            .request("GET", &format!("/_index_template/{name}"), None)?;
        if t.status == 404 {
            return Ok(IndexMapping::default());
        }
        if !t.is_success() {
            return Err(t.status_error("GET"));
        }
        let v = t.json()?;
        match v["index_templates"][0].get("index_template") {
            Some(body) => IndexMapping::from_index_template(body).map_err(bad),
            None => Ok(IndexMapping::default()),
        }
    }

    fn refresh_stale(&mut self) {
        for index in std::mem::take(&mut self.stale) {
            match self.fetch_mapping(&index) {
                Ok(m) => {
                    self.stats.mapping_refreshes += 1;
                    self.remember(&index, m);
                }
                Err(e) => {
                    tracing::warn!(%index, error = %e, "cannot read the index mapping; trying again later");
                    self.stale.insert(index);
                    break;
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let min = self.config.retry_backoff_min;
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        let base = min
            .saturating_mul(factor)
            .min(self.config.retry_backoff_max);
        // Jitter of up to a quarter, from the clock, so that throttled items spread out.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    fn drive(&mut self, deadline: Instant) -> Result<()> {
        loop {
            if !self.stale.is_empty() {
                self.refresh_stale();
            }
            let now = Instant::now();
            let mut ready = Vec::new();
            let mut waiting = VecDeque::new();
            for d in self.queue.drain(..) {
                if d.not_before.is_none_or(|t| t <= now) {
                    ready.push(d);
                } else {
                    waiting.push_back(d);
                }
            }
            self.queue = waiting;
            if ready.is_empty() {
                let Some(next) = self.queue.iter().filter_map(|d| d.not_before).min() else {
                    return Ok(());
                };
                if next > deadline {
                    return Err(self.pending_error());
                }
                std::thread::sleep(next.saturating_duration_since(now));
                continue;
            }
            if now > deadline {
                self.queue.extend(ready);
                return Err(self.pending_error());
            }
            self.round(ready);
        }
    }

    fn pending_error(&self) -> Error {
        Error::Pending {
            documents: self.queue.len(),
            last_error: self
                .last_error
                .clone()
                .unwrap_or_else(|| "documents are still being retried".into()),
        }
    }

    /// Sends `ready` in batches, `concurrency` requests at a time, and handles each
    /// item's result.
    fn round(&mut self, ready: Vec<Doc>) {
        let mut batches: Vec<Vec<Doc>> = Vec::new();
        let mut bytes = 0;
        for d in ready {
            let size = d.body.len() + d.index.len() + d.id.len() + 40;
            let start_new = match batches.last() {
                None => true,
                Some(b) => b.len() >= self.config.bulk_max_docs || bytes + size > self.max_bytes,
            };
            if start_new {
                batches.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            if let Some(b) = batches.last_mut() {
                b.push(d);
            }
        }
        let mut renormalize = Vec::new();
        let mut group = Vec::new();
        let mut it = batches.into_iter().peekable();
        while it.peek().is_some() {
            group.clear();
            group.extend(it.by_ref().take(self.config.concurrency));
            let bodies: Vec<Vec<u8>> = group
                .iter()
                .map(|b| {
                    let mut body = Vec::with_capacity(b.iter().map(|d| d.body.len() + 100).sum());
                    for d in b {
                        bulk::push_index(&mut body, &d.index, &d.id, &d.body);
                    }
                    body
                })
                .collect();
            let client = &self.client;
            let results: Vec<Result<Response>> = if bodies.len() == 1 {
                vec![send_bulk(client, &bodies[0])]
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = bodies
                        .iter()
                        .map(|b| s.spawn(move || send_bulk(client, b)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(Error::Setup("a bulk request thread panicked".into()))
                            })
                        })
                        .collect()
                })
            };
            for ((docs, body), result) in group.drain(..).zip(&bodies).zip(results) {
                self.stats.requests += 1;
                self.stats.bytes += body.len() as u64;
                self.handle(docs, result, &mut renormalize);
            }
        }
        if !renormalize.is_empty() {
            self.refresh_stale();
            for mut d in renormalize {
                match serde_json::from_slice::<Value>(&d.original)
                    .map_err(|e| e.to_string())
                    .and_then(|v| Event::from_json(v).map_err(|e| e.to_string()))
                {
                    Ok(event) => {
                        self.normalize(&mut d, event);
                        if !d.dead {
                            self.stats.mapping_retries += 1;
                            self.stats.retried_refused_record += 1;
                        }
                    }
                    Err(e) => {
                        self.to_dead_letter(&mut d, "logtide_reparse", &e, 400, "normalize");
                    }
                }
                self.queue.push_back(d);
            }
        }
    }

    fn handle(&mut self, docs: Vec<Doc>, result: Result<Response>, renormalize: &mut Vec<Doc>) {
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let why = match e {
                    Error::Timeout { .. } => Retry::Timeout,
                    _ => Retry::Network,
                };
                return self.retry_request(docs, why, e.to_string());
            }
        };
        if matches!(response.status, 429 | 500 | 502 | 503 | 504) {
            let why = Retry::of_status(response.status);
            return self.retry_request(docs, why, response.status_error("POST").to_string());
        }
        if response.status == 413 {
            if docs.len() > 1 {
                self.max_bytes = (self.max_bytes / 2).max(1024);
                tracing::warn!(
                    max_bytes = self.max_bytes,
                    "the server refused a _bulk request as too large; sending smaller ones"
                );
                self.queue.extend(docs);
                return;
            }
            let reason = response.status_error("POST").to_string();
            for d in docs {
                self.dead_or_fail(d, "request_entity_too_large", &reason, 413);
            }
            return;
        }
        if !response.is_success() {
            let reason = response.status_error("POST").to_string();
            tracing::error!(%reason, "the _bulk request was refused");
            for d in docs {
                self.dead_or_fail(d, "bulk_request_refused", &reason, response.status);
            }
            return;
        }
        let items = match bulk::parse_response(&response.body, docs.len()) {
            Ok(items) => items,
            Err(e) => {
                let message = format!("{}: {e}: {}", response.url, preview(&response.body));
                return self.retry_request(docs, Retry::Network, message);
            }
        };
        for (d, item) in docs.into_iter().zip(items) {
            self.item(d, &item, renormalize);
        }
    }

    fn item(&mut self, mut d: Doc, item: &ItemResult, renormalize: &mut Vec<Doc>) {
        let reason = item.reason.as_deref().unwrap_or("no reason given");
        let kind = item.error_type.as_deref().unwrap_or("error");
        match item.status {
            200..=299 => {
                if let Some(t) = d.token.take() {
                    if d.dead {
                        t.discard(DEAD_LETTER_REASON);
                    } else {
                        t.accept();
                    }
                }
                if d.dead {
                    self.stats.dead_lettered += 1;
                } else {
                    self.stats.indexed += 1;
                }
            }
            429 | 502 | 503 | 504 => self.retry_item(
                d,
                Retry::of_status(item.status),
                format!("{kind}: {reason}"),
            ),
            500 if d.server_errors + 1 < SERVER_ERROR_ATTEMPTS => {
                d.server_errors += 1;
                self.retry_item(d, Retry::Server, format!("{kind}: {reason}"));
            }
            400 if !d.dead
                && d.rejections == 0
                && bulk::is_mapping_error(item.error_type.as_deref()) =>
            {
                d.rejections += 1;
                self.stale.insert(d.target.clone());
                tracing::debug!(index = %d.target, id = %d.id, %reason, "mapping rejection; reading the mapping again");
                renormalize.push(d);
            }
            status => self.dead_or_fail(d, kind, reason, status),
        }
    }

    fn dead_or_fail(&mut self, mut d: Doc, kind: &str, reason: &str, status: u16) {
        if d.dead {
            self.stats.failed += 1;
            tracing::error!(index = %d.index, id = %d.id, error_type = kind, %reason, "the dead letter was refused too; the event stays unacknowledged");
            drop(d.token.take());
            return;
        }
        self.to_dead_letter(&mut d, kind, reason, status, "index");
        self.queue.push_back(d);
    }

    fn count_retry(&mut self, why: Retry) {
        let s = &mut self.stats;
        match why {
            Retry::Throttled => s.retried_throttled += 1,
            Retry::Server => s.retried_server += 1,
            Retry::Network => s.retried_network += 1,
            Retry::Timeout => s.retried_timeout += 1,
        }
    }

    fn retry_item(&mut self, mut d: Doc, why: Retry, message: String) {
        self.stats.retried += 1;
        self.count_retry(why);
        d.attempts += 1;
        d.not_before = Some(Instant::now() + self.backoff(d.attempts));
        self.last_error = Some(message);
        self.queue.push_back(d);
    }

    fn retry_request(&mut self, docs: Vec<Doc>, why: Retry, message: String) {
        self.stats.request_retries += 1;
        self.count_retry(why);
        tracing::debug!(error = %message, documents = docs.len(), "_bulk request failed; retrying after a backoff");
        // One wait for the whole batch, so that it is sent again as one.
        let attempts = docs.iter().map(|d| d.attempts).max().unwrap_or(0) + 1;
        let at = Instant::now() + self.backoff(attempts);
        for mut d in docs {
            d.attempts += 1;
            d.not_before = Some(at);
            self.queue.push_back(d);
        }
        self.last_error = Some(message);
    }
}

fn send_bulk(client: &Client, body: &[u8]) -> Result<Response> {
    client.request("POST", "/_bulk", Some((body, "application/x-ndjson")))
}
