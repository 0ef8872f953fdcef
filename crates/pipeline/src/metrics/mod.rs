//! The logtide-metrics agent: node and Kubernetes metricsets collected on aligned ticks
//! and written to the same outputs as logtide-files.
//!
//! Configuration (YAML, Metricbeat's conventions: dotted keys, `${VAR:default}`, unknown
//! keys refused with their path):
//!
//! ```yaml
//! metricsets: [cpu, load, memory, filesystem, diskio, network]   # node metricsets
//! period: 10s
//! hostfs: /                          # root of the host's /proc, /sys and mounts
//! filesystem.ignore_types: [tmpfs]   # default: the nodev types of /proc/filesystems
//! kubernetes:                        # pod/container/volume metricsets; omit to disable
//!   metricsets: [pod, container, volume]
//!   kubelet: https://${NODE_NAME}:10250
//!   ssl.verification_mode: full      # full | none
//!   ssl.certificate_authorities: []  # default: the service account's CA
//!   bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
//!   period: 10s                      # default: the top-level period
//!   timeout: 10s
//!   cgroup_fallback: true            # cgroup v2 files when the kubelet cannot be reached
//! output.console: {}                 # the same outputs as logtide-files
//! ```
//!
//! Running: one thread per collector (each node metricset, and one for the Kubernetes
//! metricsets, which share one kubelet request), so that a slow or hung collection (a
//! dead network mount) holds back only itself. Ticks are aligned to multiples of the
//! period on the wall clock, as Metricbeat aligns them; a tick missed because the
//! previous collection ran long is skipped and counted. Rates need a previous sample, so
//! collectors that compute them take one at start. Events go to one output thread
//! through a bounded queue; when it is full (the output is failing or slow), new batches
//! are dropped and counted, so memory stays bounded. A failing collection is logged and
//! counted, and the others go on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use logtide_config::duration;
use logtide_event::{Event, Timestamp};
use logtide_k8s_meta::{Enricher, K8sMetaConfig};
use logtide_procstat::{
    Collector, KubeletOptions, KubernetesCollector, KubernetesMetricset, KubernetesOptions, Limits,
    NodeCollector, NodeMetricset, NodeOptions, PodLimits, SampleTime, VerificationMode,
    SERVICE_ACCOUNT_TOKEN,
};
use serde_json::Value;

use crate::config::{document, invalid, load_file, typed};
use crate::http::{HttpConfig, HttpServer, METRICS_PORT};
use crate::output::{self, Output};
use crate::telemetry::Telemetry;
use crate::{Error, OutputConfig};

/// Batches queued between the collectors and the output: one tick of every collector
/// (aligned ticks arrive together), and a bound on memory while the output fails (a
/// 100-pod Kubernetes batch is about 0.8 MB).
const QUEUE: usize = 8;
/// How often the counters are logged.
const STATS_EVERY: Duration = Duration::from_secs(60);
/// Longest wait between retries of a failing output.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long shutdown waits for a collection still running.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest sleep before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(200);

fn default_metricsets() -> Vec<NodeMetricset> {
    NodeMetricset::ALL.to_vec()
}
fn default_period() -> Duration {
    Duration::from_secs(10)
}
fn default_hostfs() -> PathBuf {
    PathBuf::from("/")
}
fn default_k8s_metricsets() -> Vec<KubernetesMetricset> {
    vec![
        KubernetesMetricset::Pod,
        KubernetesMetricset::Container,
        KubernetesMetricset::Volume,
    ]
}
fn default_kubelet() -> String {
    "https://${NODE_NAME}:10250".into()
}
fn default_token() -> Option<PathBuf> {
    Some(PathBuf::from(SERVICE_ACCOUNT_TOKEN))
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_true() -> bool {
    true
}

/// `filesystem`: options of the filesystem metricset.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemSection {
    /// Filesystem types to leave out; default: the `nodev` types of `/proc/filesystems`.
    #[serde(default)]
    pub ignore_types: Option<Vec<String>>,
}

/// `kubernetes.ssl`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslSection {
    /// `full` (default) or `none`.
    #[serde(default)]
    pub verification_mode: VerificationMode,
    /// PEM files of the CAs to trust; default: the service account's CA.
    #[serde(default)]
    pub certificate_authorities: Vec<PathBuf>,
}

/// `kubernetes`: the pod, container and volume metricsets.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSection {
    /// `pod`, `container`, `volume` (default: all three).
    #[serde(default = "default_k8s_metricsets")]
    pub metricsets: Vec<KubernetesMetricset>,
    /// The kubelet's base URL (default `https://${NODE_NAME}:10250`).
    #[serde(default = "default_kubelet")]
    pub kubelet: String,
    /// TLS options.
    #[serde(default)]
    pub ssl: SslSection,
    /// The service account token (default: the pod's own); a missing file means none.
    #[serde(default = "default_token")]
    pub bearer_token_file: Option<PathBuf>,
    /// Period of these metricsets (default: the top-level `period`).
    #[serde(default, with = "duration::option")]
    pub period: Option<Duration>,
    /// Longest time a kubelet request may take (default 10s).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Read cgroup v2 files when the kubelet cannot be reached (default true).
    #[serde(default = "default_true")]
    pub cgroup_fallback: bool,
    /// Add the Kubernetes metadata logs get (labels, annotations, owners, node, namespace
    /// metadata) to pod and container events, from a pod watch: `true` (the default, as
    /// Metricbeat's `add_metadata`), `false`, or `add_kubernetes_metadata`'s options
    /// (`kube_config`, `node`, `include_labels`, …).
    #[serde(default = "default_add_metadata")]
    pub add_metadata: Value,
}

fn default_add_metadata() -> Value {
    Value::Bool(true)
}

impl KubernetesSection {
    /// The enricher `add_metadata` asks for (starting its pod watch), or `None`.
    pub fn metadata_enricher(&self) -> Result<Option<Arc<Enricher>>, String> {
        const AT: &str = "kubernetes.add_metadata";
        let options = match &self.add_metadata {
            Value::Bool(false) => return Ok(None),
            Value::Bool(true) => Value::Object(serde_json::Map::new()),
            Value::Object(_) => self.add_metadata.clone(),
            other => {
                return Err(format!(
                    "{AT}: expected true, false or a map of options, got {other}"
                ))
            }
        };
        let config = K8sMetaConfig::from_value(&options, AT).map_err(|e| e.to_string())?;
        let enricher = config.build().map_err(|e| format!("{AT}: {e}"))?;
        tracing::info!(cluster = ?enricher.cluster(), "kubernetes metadata for pod metrics");
        Ok(Some(Arc::new(enricher)))
    }
}

/// The pod limits the metadata cache knows, as the Kubernetes collector takes them: a
/// pod's limit is the sum of its containers' when every container has one.
pub fn limits_from(enricher: &Enricher) -> Limits {
    let mut out = Limits::default();
    for pod in enricher.pod_limits() {
        let sum_cpu = pod.containers.iter().map(|c| c.1).sum::<Option<f64>>();
        let sum_memory = pod.containers.iter().map(|c| c.2).sum::<Option<u64>>();
        let containers = pod
            .containers
            .into_iter()
            .map(|(name, cpu, memory)| (name, (cpu, memory)))
            .collect();
        out.insert(
            pod.uid,
            PodLimits {
                cpu_cores: sum_cpu,
                memory_bytes: sum_memory,
                containers,
            },
        );
    }
    out
}

/// Adds Kubernetes metadata to the events of pods and containers (those with
/// `kubernetes.pod.*`); returns how many were enriched.
pub fn enrich_pod_events(enricher: &Enricher, events: &mut [Event]) -> usize {
    events
        .iter_mut()
        .filter(|e| e.get("kubernetes.pod").is_some())
        .map(|e| enricher.enrich_pod_metrics(e))
        .filter(|&found| found)
        .count()
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default = "default_metricsets")]
    metricsets: Vec<NodeMetricset>,
    #[serde(default = "default_period", with = "duration")]
    period: Duration,
    #[serde(default = "default_hostfs")]
    hostfs: PathBuf,
    #[serde(default)]
    filesystem: FilesystemSection,
    #[serde(default)]
    kubernetes: Option<KubernetesSection>,
    #[serde(default)]
    periods: BTreeMap<String, Value>,
    #[serde(default)]
    http: HttpConfig,
}

/// The configuration of `logtide-metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsConfig {
    /// Node metricsets.
    pub metricsets: Vec<NodeMetricset>,
    /// Collection period.
    pub period: Duration,
    /// Root of the host's `/proc`, `/sys` and mounts.
    pub hostfs: PathBuf,
    /// Filesystem metricset options.
    pub filesystem: FilesystemSection,
    /// Kubernetes metricsets, when enabled.
    pub kubernetes: Option<KubernetesSection>,
    /// The output.
    pub output: OutputConfig,
    /// The self-monitoring endpoint (`http.enabled`, `http.host`, `http.port`).
    pub http: HttpConfig,
    /// Periods of node metricsets that differ from `period`, e.g.
    /// `periods: {filesystem: 1m, diskio: 30s}` (the Kubernetes metricsets have
    /// `kubernetes.period`).
    pub periods: BTreeMap<NodeMetricset, Duration>,
}

impl MetricsConfig {
    /// Loads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        load_file(path, Self::from_yaml)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, Error> {
        let bad = invalid(origin);
        let value = document(text, origin, &[])?;
        let Value::Object(mut root) = value else {
            return Err(bad("the configuration must be a map of keys".into()));
        };
        let output = root.remove("output");
        let raw: RawMetrics = typed(Value::Object(root), origin)?;
        let output = crate::config::output_from_section(output, origin)?;
        if raw.period.is_zero() {
            return Err(bad("period: must be more than 0".into()));
        }
        if raw.metricsets.is_empty() && raw.kubernetes.is_none() {
            return Err(bad(
                "metricsets: nothing to collect (no node metricset and no kubernetes section)"
                    .into(),
            ));
        }
        for (i, m) in raw.metricsets.iter().enumerate() {
            if raw.metricsets[..i].contains(m) {
                return Err(bad(format!(
                    "metricsets[{i}]: {} is listed twice",
                    m.name()
                )));
            }
        }
        let mut periods = BTreeMap::new();
        for (name, value) in &raw.periods {
            let Some(m) = raw.metricsets.iter().find(|m| m.name() == name) else {
                return Err(bad(format!(
                    "periods.{name}: not one of the configured metricsets"
                )));
            };
            let period = duration::deserialize(value.clone())
                .map_err(|e| bad(format!("periods.{name}: {e}")))?;
            if period.is_zero() {
                return Err(bad(format!("periods.{name}: must be more than 0")));
            }
            periods.insert(*m, period);
        }
        if let Some(k) = &raw.kubernetes {
            if k.metricsets.is_empty() {
                return Err(bad("kubernetes.metricsets: at least one is required".into()));
            }
            if k.period.is_some_and(|p| p.is_zero()) {
                return Err(bad("kubernetes.period: must be more than 0".into()));
            }
            if !(k.kubelet.starts_with("https://") || k.kubelet.starts_with("http://")) {
                return Err(bad(format!(
                    "kubernetes.kubelet: {:?} is not an http:// or https:// URL",
                    k.kubelet
                )));
            }
        }
        Ok(MetricsConfig {
            metricsets: raw.metricsets,
            period: raw.period,
            hostfs: raw.hostfs,
            filesystem: raw.filesystem,
            kubernetes: raw.kubernetes,
            output,
            http: raw.http,
            periods,
        })
    }

    /// Builds one collector per node metricset and one for the Kubernetes metricsets.
    pub fn collectors(&self) -> Result<Vec<Box<dyn Collector>>, Error> {
        let host_name = logtide_procstat::kernel_host_name();
        let node = NodeOptions {
            hostfs: self.hostfs.clone(),
            host_name: host_name.clone(),
            period: self.period,
            filesystem_ignore_types: self.filesystem.ignore_types.clone(),
        };
        let mut out: Vec<Box<dyn Collector>> = self
            .metricsets
            .iter()
            .map(|m| {
                let node = NodeOptions {
                    period: self.periods.get(m).copied().unwrap_or(self.period),
                    ..node.clone()
                };
                Box::new(NodeCollector::new(*m, &node)) as Box<dyn Collector>
            })
            .collect();
        if let Some(k) = &self.kubernetes {
            let mut kubelet = KubeletOptions::new(k.kubelet.clone());
            kubelet.token_path = k.bearer_token_file.clone();
            kubelet.certificate_authorities = k.ssl.certificate_authorities.clone();
            kubelet.verification_mode = k.ssl.verification_mode;
            kubelet.timeout = k.timeout;
            let options = KubernetesOptions {
                metricsets: k.metricsets.clone(),
                kubelet,
                hostfs: self.hostfs.clone(),
                host_name,
                period: k.period.unwrap_or(self.period),
                cgroup_fallback: k.cgroup_fallback,
            };
            let c = KubernetesCollector::new(&options).map_err(|e| Error::Config {
                file: PathBuf::from("configuration"),
                message: e.to_string(),
            })?;
            out.push(Box::new(c));
        }
        Ok(out)
    }
}

/// Counters of one collector.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// Collections that produced something.
    pub collections: AtomicU64,
    /// Collections that failed as a whole.
    pub failures: AtomicU64,
    /// Parts of collections that failed (a vanished mount, a kubelet replaced by cgroups).
    pub problems: AtomicU64,
    /// Counters found reset, whose rates were left out.
    pub counter_resets: AtomicU64,
    /// Ticks skipped because the previous collection was still running.
    pub ticks_missed: AtomicU64,
    /// Events handed to the output queue.
    pub events: AtomicU64,
    /// Events dropped because the output queue was full.
    pub events_dropped: AtomicU64,
}

/// Counters of the output.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Events written.
    pub events: AtomicU64,
    /// Failed writes (each retried).
    pub write_errors: AtomicU64,
    /// Events given up at shutdown because the output kept failing.
    pub events_dropped: AtomicU64,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct MetricsSummary {
    /// (collector name, its counters), in configuration order.
    pub collectors: Vec<(String, Arc<CollectorStats>)>,
    /// The output's counters.
    pub output: Arc<OutputStats>,
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl MetricsSummary {
    fn log(&self) {
        for (name, s) in &self.collectors {
            tracing::info!(
                metricset = %name,
                collections = load(&s.collections),
                failures = load(&s.failures),
                problems = load(&s.problems),
                counter_resets = load(&s.counter_resets),
                ticks_missed = load(&s.ticks_missed),
                events = load(&s.events),
                events_dropped = load(&s.events_dropped),
                "metricset counters"
            );
        }
        tracing::info!(
            events = load(&self.output.events),
            write_errors = load(&self.output.write_errors),
            events_dropped = load(&self.output.events_dropped),
            "output counters"
        );
    }
}

/// The sample time now.
fn sample_time(origin: Instant) -> SampleTime {
    SampleTime::new(Timestamp::now(), origin.elapsed())
}

/// Time from `now` (nanoseconds since the epoch) to the next multiple of `period`.
fn until_next_tick(now_nanos: i128, period: Duration) -> Duration {
    let p = period.as_nanos().max(1) as i128;
    let rem = now_nanos.rem_euclid(p);
    Duration::from_nanos((p - rem) as u64)
}

/// Sleeps `d` in short steps; false when `stop` was set meanwhile.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep((end - now).min(POLL));
    }
}

/// Runs one collection and reports it; the events, when there are some.
fn collect_and_report(
    collector: &mut dyn Collector,
    origin: Instant,
    stats: &CollectorStats,
    telemetry: &Telemetry,
) -> Option<Vec<Event>> {
    let name = collector.name().to_owned();
    let component = format!("metricset {name}");
    match collector.collect(sample_time(origin)) {
        Ok(c) => {
            telemetry.set_ready(&component, Ok(()));
            telemetry.add_source_errors(&name, c.problems.len() as u64);
            telemetry.add_events("read", c.events.len() as u64);
            add(&stats.collections, 1);
            add(&stats.problems, c.problems.len() as u64);
            add(&stats.counter_resets, c.counter_resets);
            for p in &c.problems {
                tracing::warn!(metricset = %name, error = %p, "part of a collection failed");
            }
            Some(c.events)
        }
        Err(e) => {
            add(&stats.failures, 1);
            telemetry.add_source_errors(&name, 1);
            telemetry.set_ready(&component, Err(e.to_string()));
            tracing::warn!(metricset = %name, error = %e, "collection failed");
            None
        }
    }
}

fn collector_loop(
    mut collector: Box<dyn Collector>,
    tx: SyncSender<Vec<Event>>,
    stats: Arc<CollectorStats>,
    stop: Arc<AtomicBool>,
    origin: Instant,
    telemetry: Arc<Telemetry>,
    enricher: Option<Arc<Enricher>>,
) {
    let period = collector.period();
    // The Kubernetes collector reports percentages of the limits in the pod specs.
    let wants_limits = enricher.is_some() && collector.name() == "kubernetes";
    let refresh_limits = |collector: &mut Box<dyn Collector>| {
        if let (true, Some(e)) = (wants_limits, &enricher) {
            collector.set_limits(limits_from(e));
        }
    };
    refresh_limits(&mut collector);
    if collector.needs_two_samples() {
        // The first sample only primes the rates: its events are not shipped.
        if let Some(events) = collect_and_report(collector.as_mut(), origin, &stats, &telemetry) {
            telemetry.add_discarded_events("priming_sample", events.len() as u64);
        }
    }
    loop {
        let wait = until_next_tick(Timestamp::now().unix_nanos(), period);
        if !sleep_unless_stopped(wait, &stop) {
            return;
        }
        let started = Instant::now();
        refresh_limits(&mut collector);
        if let Some(mut events) = collect_and_report(collector.as_mut(), origin, &stats, &telemetry)
        {
            if let Some(enricher) = &enricher {
                enrich_pod_events(enricher, &mut events);
            }
            let n = events.len() as u64;
            if n > 0 {
                match tx.try_send(events) {
                    Ok(()) => {
                        add(&stats.events, n);
                        telemetry.add_events("processed", n);
                    }
                    Err(TrySendError::Full(_)) => {
                        add(&stats.events_dropped, n);
                        telemetry.add_discarded_events("queue_full", n);
                        tracing::warn!(
                            metricset = collector.name(),
                            events = n,
                            "output queue full: events dropped"
                        );
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
        }
        let took = started.elapsed();
        if took >= period {
            add(
                &stats.ticks_missed,
                took.as_nanos() as u64 / period.as_nanos() as u64,
            );
        }
    }
}

fn output_loop(
    rx: Receiver<Vec<Event>>,
    mut out: Box<dyn Output>,
    stats: Arc<OutputStats>,
    stop: Arc<AtomicBool>,
    summary: Arc<MetricsSummary>,
    telemetry: Arc<Telemetry>,
) {
    let mut last_stats = Instant::now();
    let name = out.name();
    loop {
        let batch = match rx.recv_timeout(POLL) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                // Stopping, and what was queued is written.
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if last_stats.elapsed() >= STATS_EVERY {
                    last_stats = Instant::now();
                    summary.log();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut backoff = Duration::from_secs(1);
        let started = Instant::now();
        telemetry.batch_started(name, started);
        let mut dead_lettered = 0;
        loop {
            let result = out.write_batch(&batch);
            dead_lettered += out.publish(&telemetry);
            match result {
                Ok(()) => {
                    add(&stats.events, batch.len() as u64);
                    telemetry.batch_done(name, started.elapsed());
                    telemetry.add_events("shipped", batch.len() as u64 - dead_lettered);
                    break;
                }
                Err(e) => {
                    add(&stats.write_errors, 1);
                    telemetry.add_output_errors(name, "write", 1);
                    telemetry.output_error(name, e.to_string());
                    if stop.load(Ordering::Relaxed) {
                        add(&stats.events_dropped, batch.len() as u64);
                        telemetry.add_discarded_events("output_failed_at_stop", batch.len() as u64);
                        tracing::warn!(error = %e, events = batch.len(), "output failed while stopping: events dropped");
                        break;
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "output failed");
                    sleep_unless_stopped(backoff, &stop);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Runs logtide-metrics until `stop` is set; returns the counters.
pub fn run_metrics(config: &MetricsConfig, stop: Arc<AtomicBool>) -> Result<MetricsSummary, Error> {
    run_metrics_with(config, stop, Arc::new(Telemetry::new()))
}

/// [`run_metrics`], counting into `telemetry` (served on the configuration's `http`
/// endpoint when enabled).
pub fn run_metrics_with(
    config: &MetricsConfig,
    stop: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
) -> Result<MetricsSummary, Error> {
    let _http = HttpServer::start_if_enabled(&config.http, METRICS_PORT, telemetry.clone())?;
    let collectors = config.collectors()?;
    let enricher = match &config.kubernetes {
        Some(k) => k.metadata_enricher().map_err(|message| Error::Config {
            file: "configuration".into(),
            message,
        })?,
        None => None,
    };
    if let Some(e) = &enricher {
        let e = e.clone();
        telemetry.add_check("kubernetes metadata", move || {
            if e.is_synced() {
                Ok(())
            } else {
                Err("the first list of pods has not arrived".into())
            }
        });
    }
    let out = output::build(&config.output)?;
    telemetry.set_ready("output", Ok(()));
    // Ready from progress, as logtide-files: not ready once a batch has waited
    // `http.stalled_after` without being accepted.
    telemetry.set_stalled_after(config.http.stalled_after());
    telemetry.watch_output("output", out.name());
    let output_stats = Arc::new(OutputStats::default());
    let names: Vec<(String, Arc<CollectorStats>)> = collectors
        .iter()
        .map(|c| (c.name().to_owned(), Arc::new(CollectorStats::default())))
        .collect();
    let summary = Arc::new(MetricsSummary {
        collectors: names.clone(),
        output: output_stats.clone(),
    });
    let (tx, rx) = sync_channel::<Vec<Event>>(QUEUE);
    let origin = Instant::now();
    let mut handles = Vec::new();
    for (c, (name, stats)) in collectors.into_iter().zip(&names) {
        tracing::info!(metricset = %name, period = ?c.period(), "collector started");
        let (tx, stats, stop) = (tx.clone(), stats.clone(), stop.clone());
        let (telemetry, enricher) = (telemetry.clone(), enricher.clone());
        let h = thread::Builder::new()
            .name(format!("metrics-{name}"))
            .spawn(move || collector_loop(c, tx, stats, stop, origin, telemetry, enricher))
            .map_err(|e| Error::Output(format!("cannot start a collector thread: {e}")))?;
        handles.push((name.clone(), h));
    }
    drop(tx);
    let output_thread = {
        let (stats, stop, summary) = (output_stats.clone(), stop.clone(), summary.clone());
        let telemetry = telemetry.clone();
        thread::Builder::new()
            .name("output".into())
            .spawn(move || output_loop(rx, out, stats, stop, summary, telemetry))
            .map_err(|e| Error::Output(format!("cannot start the output thread: {e}")))?
    };
    // Wait for the collectors; once stopping, a collection stuck in the kernel (a dead
    // network mount) is given STOP_GRACE and then left behind.
    let mut stopping_since: Option<Instant> = None;
    while handles.iter().any(|(_, h)| !h.is_finished()) {
        if stop.load(Ordering::Relaxed) {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STOP_GRACE {
                for (name, h) in &handles {
                    if !h.is_finished() {
                        tracing::warn!(metricset = %name, "collection still running at shutdown: left behind");
                    }
                }
                break;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    // The output writes what is queued, then ends.
    let _ = output_thread.join();
    summary.log();
    Ok(MetricsSummary {
        collectors: names,
        output: output_stats,
    })
}

/// What `--once` found.
#[derive(Debug, Default)]
pub struct OnceReport {
    /// Every event collected.
    pub events: Vec<Event>,
    /// (collector name, error) of each failure, whole or partial.
    pub errors: Vec<(String, logtide_procstat::Error)>,
}

/// How long `--once` waits for the pod watch's first list before collecting.
const ONCE_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Collects every metricset once: collectors that compute rates are sampled twice,
/// `interval` apart (one second for `logtide-metrics --once`).
pub fn collect_once(config: &MetricsConfig, interval: Duration) -> Result<OnceReport, Error> {
    let mut collectors = config.collectors()?;
    let origin = Instant::now();
    let mut report = OnceReport::default();
    let mut primed = false;
    for c in collectors.iter_mut().filter(|c| c.needs_two_samples()) {
        // Errors of the first sample show again in the second.
        let _ = c.collect(sample_time(origin));
        primed = true;
    }
    if primed {
        thread::sleep(interval);
    }
    let enricher = match &config.kubernetes {
        Some(k) => k.metadata_enricher().map_err(|message| Error::Config {
            file: "configuration".into(),
            message,
        })?,
        None => None,
    };
    if let Some(e) = &enricher {
        e.wait_until_synced(ONCE_SYNC_WAIT);
        for c in &mut collectors {
            c.set_limits(limits_from(e));
        }
    }
    for c in &mut collectors {
        match c.collect(sample_time(origin)) {
            Ok(mut got) => {
                if let Some(e) = &enricher {
                    enrich_pod_events(e, &mut got.events);
                }
                report.events.extend(got.events);
                let name = c.name().to_owned();
                report
                    .errors
                    .extend(got.problems.into_iter().map(|p| (name.clone(), p)));
            }
            Err(e) => report.errors.push((c.name().to_owned(), e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleConfig;

    fn load(text: &str) -> Result<MetricsConfig, String> {
        MetricsConfig::from_yaml(text, Path::new("m.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn pod_and_container_events_get_kubernetes_metadata() {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                         "resourceVersion": "1", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            "status": {"containerStatuses": [{"name": "nginx", "image": "nginx:1.27", "imageID": "",
                "ready": true, "restartCount": 0, "containerID": "containerd://abc"}]}
        });
        let config =
            K8sMetaConfig::from_value(&serde_json::json!({"node": "node-a"}), "k").unwrap();
        let enricher = Enricher::from_objects(&config, [pod]).unwrap();
        let event = |fields: &[(&str, &str)]| {
            let mut e = Event::new(Timestamp::UNIX_EPOCH);
            for (k, v) in fields {
                e.insert(k, Value::String((*v).to_owned())).unwrap();
            }
            e
        };
        let mut events = vec![
            event(&[
                ("metricset.name", "container"),
                ("kubernetes.namespace", "shop"),
                ("kubernetes.pod.name", "web-1"),
                ("kubernetes.container.name", "nginx"),
            ]),
            event(&[("metricset.name", "pod"), ("kubernetes.pod.uid", "u-1")]),
            event(&[("metricset.name", "cpu")]),
            event(&[
                ("metricset.name", "pod"),
                ("kubernetes.namespace", "shop"),
                ("kubernetes.pod.name", "unknown"),
            ]),
        ];
        assert_eq!(enrich_pod_events(&enricher, &mut events), 2);
        assert_eq!(
            events[0].get("kubernetes.labels.app"),
            Some(&Value::from("web"))
        );
        assert_eq!(
            events[0].get("kubernetes.container.image"),
            Some(&Value::from("nginx:1.27"))
        );
        assert_eq!(
            events[1].get("kubernetes.pod.name"),
            Some(&Value::from("web-1"))
        );
        assert_eq!(
            events[1].get("kubernetes.node.name"),
            Some(&Value::from("node-a"))
        );
        assert_eq!(
            events[2].get("kubernetes"),
            None,
            "node events are left alone"
        );
        assert_eq!(events[3].get("kubernetes.labels"), None);
    }

    #[test]
    fn periods_per_metricset() {
        let c = load(
            "metricsets: [cpu, filesystem]\nperiod: 10s\nperiods: {filesystem: 1m}\noutput.console: {}",
        )
        .unwrap();
        let periods: Vec<(String, Duration)> = c
            .collectors()
            .unwrap()
            .iter()
            .map(|c| (c.name().to_owned(), c.period()))
            .collect();
        assert_eq!(
            periods,
            [
                ("cpu".to_owned(), Duration::from_secs(10)),
                ("filesystem".to_owned(), Duration::from_secs(60))
            ]
        );
        for (yaml, want) in [
            (
                "periods: {load: 1m}",
                "periods.load: not one of the configured metricsets",
            ),
            ("periods: {cpu: soon}", "periods.cpu: "),
            ("periods: {cpu: 0s}", "periods.cpu: must be more than 0"),
        ] {
            let err =
                load(&format!("metricsets: [cpu]\noutput.console: {{}}\n{yaml}")).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn add_metadata_is_true_false_or_options() {
        let base = "metricsets: []\noutput.console: {}\nkubernetes:\n  kubelet: https://n:10250\n";
        let c = load(base).unwrap();
        assert_eq!(c.kubernetes.unwrap().add_metadata, Value::Bool(true));
        let off = load(&format!("{base}  add_metadata: false\n")).unwrap();
        assert!(off
            .kubernetes
            .unwrap()
            .metadata_enricher()
            .unwrap()
            .is_none());
        let bad = load(&format!("{base}  add_metadata: {{colour: red}}\n")).unwrap();
        let err = bad.kubernetes.unwrap().metadata_enricher().unwrap_err();
        assert!(err.contains("kubernetes.add_metadata.colour"), "{err}");
        let wrong = load(&format!("{base}  add_metadata: 3\n")).unwrap();
        let err = wrong.kubernetes.unwrap().metadata_enricher().unwrap_err();
        assert!(err.contains("expected true, false or a map"), "{err}");
    }

    #[test]
    fn defaults_and_the_issue_example() {
        let c = load("output.console: {}\n").unwrap();
        assert_eq!(c.metricsets, NodeMetricset::ALL);
        assert_eq!(c.period, Duration::from_secs(10));
        assert_eq!(c.hostfs, PathBuf::from("/"));
        assert_eq!(c.kubernetes, None);
        assert_eq!(c.output, OutputConfig::Console(ConsoleConfig::default()));

        std::env::set_var("LOGTIDE_TEST_NODE_NAME", "node-7");
        let text = "metricsets: [cpu, load, memory, filesystem, diskio, network]\nperiod: 10s\nhostfs: /hostfs\nkubernetes:\n  metricsets: [pod, container, volume]\n  kubelet: https://${LOGTIDE_TEST_NODE_NAME}:10250\n  ssl.verification_mode: none\noutput.console: {}\n";
        let c = load(text).unwrap();
        let k = c.kubernetes.clone().unwrap();
        assert_eq!(k.kubelet, "https://node-7:10250");
        assert_eq!(k.ssl.verification_mode, VerificationMode::None);
        assert_eq!(k.bearer_token_file, default_token());
        assert_eq!(k.period, None);
        assert!(k.cgroup_fallback);
        assert_eq!(c.hostfs, PathBuf::from("/hostfs"));
        // Nested and dotted keys are the same configuration.
        let nested = "metricsets: [cpu, load, memory, filesystem, diskio, network]\nperiod: 10s\nhostfs: /hostfs\nkubernetes:\n  metricsets: [pod, container, volume]\n  kubelet: https://node-7:10250\n  ssl:\n    verification_mode: none\noutput:\n  console: {}\n";
        assert_eq!(load(nested).unwrap(), c);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("metricsets: [cpu, gpu]\noutput.console: {}\n", "m.yml: metricsets[1]: unknown variant `gpu`"),
            ("metricsets: [cpu, cpu]\noutput.console: {}\n", "metricsets[1]: cpu is listed twice"),
            ("period: soon\noutput.console: {}\n", "period: invalid duration \"soon\""),
            ("period: 0s\noutput.console: {}\n", "period: must be more than 0"),
            ("perod: 10s\noutput.console: {}\n", "m.yml: perod: unknown field `perod`"),
            ("kubernetes:\n  ssl.verification_mode: half\noutput.console: {}\n", "kubernetes.ssl.verification_mode: unknown variant `half`"),
            ("kubernetes:\n  kubelet: node:10250\noutput.console: {}\n", "kubernetes.kubelet: \"node:10250\" is not an http:// or https:// URL"),
            ("kubernetes:\n  metricsets: []\noutput.console: {}\n", "kubernetes.metricsets: at least one is required"),
            ("kubernetes:\n  kubelet: https://${LOGTIDE_SURELY_UNSET}:10250\noutput.console: {}\n", "kubernetes.kubelet: environment variable LOGTIDE_SURELY_UNSET is not set"),
            ("metricsets: []\noutput.console: {}\n", "metricsets: nothing to collect"),
            ("metricsets: [cpu]\n", "output: one output must be set"),
            ("output.console: {pretty: maybe}\n", "output.console.pretty: invalid type"),
            ("output.console: {}\noutput.file: {path: /tmp/x}\n", "only one output may be set"),
        ];
        for (text, want) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn outputs_are_those_of_logtide_files() {
        let c = load("output.kinesis:\n  stream_name: metrics\n  region: eu-west-1\n").unwrap();
        match c.output {
            OutputConfig::Kinesis(k) => {
                assert_eq!(k.stream_name, "metrics");
                assert_eq!(k.region.as_deref(), Some("eu-west-1"));
            }
            other => panic!("{other:?}"),
        }
        let c = load("output.file.path: /tmp/m\noutput.file.filename: m.ndjson\n").unwrap();
        match c.output {
            OutputConfig::File(f) => assert_eq!(f.filename, "m.ndjson"),
            other => panic!("{other:?}"),
        }
        let err = load("output.kinesis: {region: x}\n").unwrap_err();
        assert!(err.contains("output.kinesis"), "{err}");
    }

    #[test]
    fn ticks_align_to_the_period() {
        let ten = Duration::from_secs(10);
        assert_eq!(until_next_tick(23_000_000_000, ten), Duration::from_secs(7));
        assert_eq!(until_next_tick(30_000_000_000, ten), ten);
        assert_eq!(
            until_next_tick(29_999_999_999, ten),
            Duration::from_nanos(1)
        );
    }
}
