//! Delivery of alerts to Slack and webhooks, on a thread of its own.
//!
//! The HTTP client is `ureq`: small, synchronous (delivery is one thread doing one POST
//! at a time, so an async runtime would buy nothing), with TLS through rustls and the
//! platform's certificate verifier ([`logtide_tls::Trust::Platform`]), as the other
//! HTTP clients of the workspace.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use logtide_tls::Trust;
use serde_json::{json, Map, Value};

use crate::engine::Alert;
use crate::rule::{Destination, SlackTarget, WebhookTarget};
use crate::secret::Secret;
use crate::{Error, Result};

/// How delivery behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryConfig {
    /// Alerts waiting for delivery (default 1,000); beyond, new alerts are dropped and
    /// counted ([`DeliveryStats::dropped`]).
    pub queue: usize,
    /// Time allowed for one request (default 10 s).
    pub request_timeout: Duration,
    /// How long one alert is retried (default 5 minutes), and never longer than its
    /// rule's `realert`: an alert is delivered at most once per suppression window.
    pub max_retry_time: Duration,
    /// The first wait after a 5xx or a connection error (default 1 s), doubling up to
    /// `max_backoff` (default 60 s).
    pub min_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue: 1_000,
            request_timeout: Duration::from_secs(10),
            max_retry_time: Duration::from_secs(300),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Delivery counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryStats {
    /// Alerts taken into the queue.
    pub queued: u64,
    /// Deliveries accepted by their destination (one per alert and destination).
    pub delivered: u64,
    /// Deliveries given up (refused, or still failing at the end of the retry time).
    pub failed: u64,
    /// Attempts repeated after a 5xx, a 429 or a connection error.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    /// The last delivery error per rule, until taken.
    errors: Mutex<BTreeMap<String, String>>,
}

/// A queue of alerts and the thread that delivers them.
///
/// Each alert goes to each of its rule's destinations once: a `429` waits as long as
/// `Retry-After` says, a `5xx` or a connection error waits with exponential backoff, and
/// the alert is retried until accepted or until the retry time ends (then counted as
/// failed, and not sent again). Other `4xx` answers are failures at once. URLs never
/// appear in logs or errors.
pub struct Deliverer {
    tx: Option<SyncSender<Alert>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Deliverer {
    /// Starts the delivery thread.
    pub fn start(config: DeliveryConfig) -> Result<Deliverer> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.request_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(Trust::Platform.tls_config())
            .build()
            .new_agent();
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            agent,
            config,
            counters: Arc::clone(&counters),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("alert-delivery".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| Error::Start {
                what: "alert delivery thread",
                message: e.to_string(),
            })?;
        Ok(Deliverer {
            tx: Some(tx),
            thread: Some(thread),
            counters,
            stop,
        })
    }

    /// Queues an alert without waiting; returns false (and counts it) when the queue is
    /// full.
    pub fn send(&self, alert: Alert) -> bool {
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(alert) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(a) | TrySendError::Disconnected(a)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(rule = %a.rule, "alert queue full: alert dropped");
                false
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> DeliveryStats {
        let c = &self.counters;
        DeliveryStats {
            queued: c.queued.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// The last delivery error of each rule since the previous call (URLs redacted).
    pub fn take_errors(&self) -> BTreeMap<String, String> {
        match self.counters.errors.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Delivers what is queued, giving up retries after `grace`, and stops the thread.
    pub fn shutdown(mut self, grace: Duration) -> DeliveryStats {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + grace;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.stop.store(true, Ordering::Relaxed);
            if thread.join().is_err() {
                tracing::error!("the alert delivery thread panicked");
            }
        }
        self.stats()
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.tx = None;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    agent: ureq::Agent,
    config: DeliveryConfig,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

/// What one attempt came to.
enum Attempt {
    Done,
    /// 429: wait this long (or the backoff when the server did not say).
    RateLimited(Option<Duration>),
    /// 5xx or a connection error: retry after the backoff.
    Retry(String),
    /// Anything else: give up.
    Refused(String),
}

impl Worker {
    fn run(self, rx: Receiver<Alert>) {
        while let Ok(alert) = rx.recv() {
            for dest in alert.destinations.iter() {
                self.deliver(&alert, dest);
            }
        }
    }

    fn deliver(&self, alert: &Alert, dest: &Destination) {
        let (url, body, headers): (&Secret, Value, &[(String, Secret)]) = match dest {
            Destination::Log => {
                tracing::warn!(rule = %alert.rule, query_key = alert.query_key.as_deref(), subject = %alert.subject, text = %alert.text, "alert");
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Destination::Slack(s) => (&s.url, slack_body(alert, s), &[]),
            Destination::Webhook(w) => (&w.url, webhook_body(alert, w), &w.headers),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let window = if alert.realert.is_zero() {
            self.config.max_retry_time
        } else {
            alert.realert.min(self.config.max_retry_time)
        };
        let deadline = Instant::now() + window;
        let mut backoff = backon::ExponentialBuilder::new()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .without_max_times()
            .build();
        loop {
            let (wait, reason) = match self.attempt(url, &body, headers) {
                Attempt::Done => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Attempt::Refused(reason) => {
                    self.fail(alert, dest, &reason);
                    return;
                }
                Attempt::RateLimited(after) => {
                    self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let wait =
                        after.unwrap_or_else(|| backoff.next().unwrap_or(self.config.max_backoff));
                    (wait, "rate limited (429)".to_owned())
                }
                Attempt::Retry(reason) => {
                    (backoff.next().unwrap_or(self.config.max_backoff), reason)
                }
            };
            if self.stop.load(Ordering::Relaxed) || Instant::now() + wait > deadline {
                self.fail(
                    alert,
                    dest,
                    &format!("{reason}; gave up after the retry time"),
                );
                return;
            }
            tracing::debug!(rule = %alert.rule, destination = dest.kind(), %reason, ?wait, "alert delivery retried");
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            self.sleep(wait);
        }
    }

    /// Sleeps, waking early on stop.
    fn sleep(&self, wait: Duration) {
        let end = Instant::now() + wait;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    fn fail(&self, alert: &Alert, dest: &Destination, reason: &str) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        let message = format!("{} delivery failed: {reason}", dest.kind());
        tracing::error!(rule = %alert.rule, "{message}");
        if let Ok(mut errors) = self.counters.errors.lock() {
            errors.insert(alert.rule.to_string(), message);
        }
    }

    fn attempt(&self, url: &Secret, body: &[u8], headers: &[(String, Secret)]) -> Attempt {
        let mut req = self
            .agent
            .post(url.expose())
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.expose());
        }
        match req.send(body) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Attempt::Done,
                    429 => Attempt::RateLimited(
                        resp.headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs),
                    ),
                    500..=599 => Attempt::Retry(format!("server error {status}")),
                    _ => Attempt::Refused(format!("refused with {status}")),
                }
            }
            Err(e) => Attempt::Retry(url.redact(&e.to_string())),
        }
    }
}

/// Slack's incoming-webhook message: the subject as the attachment's title, the text as
/// its body.
fn slack_body(alert: &Alert, s: &SlackTarget) -> Value {
    let mut body = json!({
        "username": s.username,
        "text": "",
        "attachments": [{
            "color": s.color,
            "title": alert.subject,
            "text": alert.text,
            "fallback": alert.subject,
            "mrkdwn_in": ["text"],
        }],
    });
    if let Some(c) = &s.channel {
        body["channel"] = json!(c);
    }
    if let Some(e) = &s.icon_emoji {
        body["icon_emoji"] = json!(e);
    }
    if let Some(u) = &s.icon_url {
        body["icon_url"] = json!(u);
    }
    body
}

/// The generic webhook's JSON: the alert (with `http_post_all_values`), the fields named
/// by `http_post_payload` from the first event, then `http_post_static_payload`.
fn webhook_body(alert: &Alert, w: &WebhookTarget) -> Value {
    let mut out = Map::new();
    if w.all_values {
        out.insert("rule".into(), json!(&*alert.rule));
        out.insert("subject".into(), json!(alert.subject));
        out.insert("text".into(), json!(alert.text));
        out.insert("query_key".into(), json!(alert.query_key));
        out.insert("@timestamp".into(), json!(alert.time.to_string()));
        out.insert("num_matches".into(), json!(alert.num_matches));
        out.insert("events".into(), json!(alert.events));
    }
    let first = alert.events.first();
    for (name, field) in &w.payload {
        let v = first
            .and_then(|e| logtide_event::Event::from_json(e.clone()).ok())
            .and_then(|e| e.get(field).cloned())
            .unwrap_or(Value::Null);
        out.insert(name.clone(), v);
    }
    for (k, v) in &w.static_payload {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}
