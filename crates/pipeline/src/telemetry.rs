//! Self-monitoring: the counters and gauges a binary serves on `/metrics`, and the
//! readiness of its sources and sinks served on `/readyz` (see [`crate::http`]).
//!
//! Every event a binary takes in is accounted for: `logtide_events_total{stage="read"}`
//! equals `shipped` plus every `logtide_discarded_events_total{reason}` plus what is still
//! on its way (queued, waiting for metadata or for the sink). Lines that never became
//! events and bytes never read have their own counters, by reason:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `logtide_events_total` | `stage`: `read`, `processed`, `shipped` | events taken in, past the processors, accepted by the sink |
//! | `logtide_bytes_total` | `stage`: `read`, `shipped` | bytes read from files or records; bytes the sink accepted |
//! | `logtide_discarded_events_total` | `reason` | events that will never be shipped: `processor_drop`, `dead_letter`, `oversize_dead_letter`, `offload_dead_letter`, `undecodable`, `incomplete_entry`, `es_dead_letter`; logtide-metrics: `priming_sample` (the first sample of a rate), `queue_full`, `output_failed_at_stop` |
//! | `logtide_modified_events_total` | `reason` | events shipped changed: `oversize_truncated`, `oversize_split`, `oversize_offloaded`, `offload_restored`, `offload_not_restored`, `entry_truncated`, `partial_flushed` (every event flagged partial), among them `partial_evicted` (`max_pending` entries were pending) and `partial_over_budget` (the pending entries held `max_pending_bytes`), `mapping_normalized` |
//! | `logtide_discarded_lines_total` | `reason` | lines that never became events: `parse_error`, `stream_filtered` |
//! | `logtide_lost_bytes_total` | `reason` | bytes never read: `deleted_before_read`, `gzipped_before_read` (the bytes of its content), `line_too_long` |
//! | `logtide_file_lost_bytes_total` | `path`, `reason` | the same, per file (`deleted_before_read`, `gzipped_before_read`, `gone_while_stopped` with 0: size unknown) |
//! | `logtide_lost_files_total` | `reason` | files of a container's rotation sequence not read to their end, by the reasons above |
//! | `logtide_file_truncations_total` | | files truncated in place (copytruncate): lines written just before may be lost |
//! | `logtide_watch_failures_total` | | directories that could not be watched (out of inotify watches): their rotations are found at each end of file and every `scan_frequency` instead |
//! | `logtide_processor_errors_total` | | processor errors (the event goes on, with `error.message`) |
//! | `logtide_processor_not_json_total` | | fields `decode_json_fields` left as text because they are not JSON, without `add_error_key` (not errors, as in Filebeat) |
//! | `logtide_source_errors_total` | `source` | failed reads of a source: a metricset's collection (or part of it), a shard's GetRecords |
//! | `logtide_source_records_total` | `source`, `format` | records the relay read, by what they held: `logtide` (logtide's format), `json` (one JSON object: `format: json`, or another producer's), `text` (anything else, handed on as `message`) |
//! | `logtide_output_retries_total` | `output`, `reason` | records or requests sent again, by why the first try failed: `throttled`, `refused_record` (a record refused inside a successful call, or a request cut in halves to find it), `network`, `timeout` (an attempt longer than its timeout), `server` (5xx), `denied` (access, missing stream or bucket: retried until fixed); alerts: `delivery` |
//! | `logtide_output_errors_total` | `output`, `kind` | failed requests: `throttled`, `server`, `network`, `denied`, `refused`, `write` |
//! | `logtide_output_reordered_records_total` | `output` | records accepted ahead of an earlier record of their partition key that failed in the same request (Kinesis without aggregation: `format: json`) |
//! | `logtide_output_latency_seconds` | `output` | time to write a batch, retries included (histogram) |
//! | `logtide_output_oldest_unacked_seconds` | `output` | age of the oldest entry the output holds and has not had acknowledged, from the entry's own time (so it goes on growing across restarts; logtide-metrics: since it took the batch; 0 when none) |
//! | `logtide_output_stalled_seconds` | `output` | how long an output with work waiting has gone without acknowledging anything (0 when idle or moving); past `http.stalled_after` it is not ready |
//! | `logtide_file_bytes_behind` | `path` | bytes written to a file and not yet shipped |
//! | `logtide_file_oldest_unshipped_seconds` | `path` | age of the oldest entry read from a file and not yet acknowledged, from the time the runtime wrote it (so it goes on growing across restarts); published every second, like the other per-file series |
//! | `logtide_files_open` | | files open for reading |
//! | `logtide_relay_millis_behind_latest` | `shard` | how far the relay's reading is behind the tip of each shard it owns |
//! | `logtide_ready` | | 1 when every source is connected and no output is stalled (as `/readyz`) |

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use logtide_event::Timestamp;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;
type Seconds = Family<Labels, Gauge<f64, AtomicU64>>;
type Latency = Family<Labels, Histogram, fn() -> Histogram>;

/// How long an output with work waiting may go without acknowledging anything before it
/// is not ready (`http.stalled_after`).
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(15);

/// Paths kept in `logtide_file_lost_bytes_total`; losses of further paths count under
/// the path `other`, so a storm of deleted files cannot grow the endpoint without bound.
const MAX_LOSS_PATHS: usize = 1000;

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_owned())]
}

/// The self-metrics of one process; cheap to share (`Arc`) between its threads.
pub struct Telemetry {
    registry: Registry,
    events: Counters,
    bytes: Counters,
    discarded_events: Counters,
    modified_events: Counters,
    discarded_lines: Counters,
    lost_bytes: Counters,
    file_lost_bytes: Counters,
    lost_files: Counters,
    truncations: Counter,
    watch_failures: Counter,
    processor_errors: Counter,
    processor_not_json: Counter,
    source_errors: Counters,
    source_records: Counters,
    retries: Counters,
    output_errors: Counters,
    reordered: Counters,
    latency: Latency,
    oldest_unacked: Seconds,
    stalled: Seconds,
    file_behind: Family<Labels, Gauge>,
    file_oldest: Seconds,
    files_open: Gauge,
    relay_behind: Family<Labels, Gauge>,
    ready: Gauge,
    state: Mutex<State>,
    /// Held (shared) while the stage counters change and (exclusively) while they are
    /// encoded, so that a scrape never sees an event counted at one stage and not yet at
    /// the stage that counted it first.
    accounting: RwLock<()>,
}

/// A readiness check asked at each `/readyz` or scrape.
type Check = Box<dyn Fn() -> Result<(), String> + Send>;

#[derive(Default)]
struct State {
    /// Per component: `None` when ready, else why not.
    readiness: BTreeMap<String, Option<String>>,
    /// Components asked when readiness is read.
    checks: Vec<(String, Check)>,
    /// The paths each input last reported, so that paths gone are removed.
    #[cfg(feature = "files")]
    paths: std::collections::HashMap<usize, HashSet<std::sync::Arc<str>>>,
    /// Files each input has open.
    #[cfg(feature = "files")]
    open: std::collections::HashMap<usize, u64>,
    /// The paths in `logtide_file_lost_bytes_total`.
    loss_paths: HashSet<String>,
    /// The shards the relay last reported.
    shards: HashSet<String>,
    /// The progress of each output.
    outputs: BTreeMap<String, OutputProgress>,
    /// See [`DEFAULT_STALLED_AFTER`].
    stalled_after: Option<Duration>,
}

/// The entries an output holds and the time the oldest was written, asked when the
/// metrics or readiness are read.
type BacklogCheck = Box<dyn Fn() -> (u64, Option<Timestamp>) + Send>;

/// What an output is doing, for readiness and the age gauges.
#[derive(Default)]
struct OutputProgress {
    /// The readiness component it answers for (`output`, `s3`, `elasticsearch`); `None`:
    /// not part of readiness.
    component: Option<String>,
    /// Since when it has had work it has not finished; `None` when idle.
    busy_since: Option<Instant>,
    /// When it last had something acknowledged.
    progressed: Option<Instant>,
    /// Entries waiting, as last reported.
    waiting: u64,
    /// When the oldest entry waiting was written, as last reported.
    oldest: Option<Timestamp>,
    /// Both, asked when read (overrides `waiting` and `oldest`).
    backlog_check: Option<BacklogCheck>,
    /// The last failure, cleared by progress.
    last_error: Option<String>,
}

impl OutputProgress {
    /// How long it has had work and no progress.
    fn stalled_for(&self, now: Instant) -> Duration {
        match self.busy_since {
            None => Duration::ZERO,
            Some(busy) => {
                let from = self.progressed.map_or(busy, |p| p.max(busy));
                now.saturating_duration_since(from)
            }
        }
    }

    fn backlog(&self) -> (u64, Option<Timestamp>) {
        match &self.backlog_check {
            Some(check) => check(),
            None => (self.waiting, self.oldest),
        }
    }
}

/// Seconds from `then` to `now` (0 when `then` is later).
fn age(now: Timestamp, then: Timestamp) -> f64 {
    ((now.unix_nanos() - then.unix_nanos()).max(0) as f64) / 1e9
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Every metric at zero, every component ready until it says otherwise.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let t = Telemetry {
            events: Counters::default(),
            bytes: Counters::default(),
            discarded_events: Counters::default(),
            modified_events: Counters::default(),
            discarded_lines: Counters::default(),
            lost_bytes: Counters::default(),
            file_lost_bytes: Counters::default(),
            lost_files: Counters::default(),
            truncations: Counter::default(),
            watch_failures: Counter::default(),
            processor_errors: Counter::default(),
            processor_not_json: Counter::default(),
            source_errors: Counters::default(),
            source_records: Counters::default(),
            retries: Counters::default(),
            output_errors: Counters::default(),
            reordered: Counters::default(),
            latency: Latency::new_with_constructor(latency_histogram),
            oldest_unacked: Seconds::default(),
            stalled: Seconds::default(),
            file_behind: Family::default(),
            file_oldest: Seconds::default(),
            files_open: Gauge::default(),
            relay_behind: Family::default(),
            ready: Gauge::default(),
            state: Mutex::new(State::default()),
            accounting: RwLock::new(()),
            registry: Registry::default(),
        };
        registry.register(
            "logtide_events",
            "Events by stage: read, processed, shipped",
            t.events.clone(),
        );
        registry.register(
            "logtide_bytes",
            "Bytes by stage: read, shipped",
            t.bytes.clone(),
        );
        registry.register(
            "logtide_discarded_events",
            "Events that will never be shipped, by reason",
            t.discarded_events.clone(),
        );
        registry.register(
            "logtide_modified_events",
            "Events shipped changed (cut, split), by reason",
            t.modified_events.clone(),
        );
        registry.register(
            "logtide_discarded_lines",
            "Lines that never became events, by reason",
            t.discarded_lines.clone(),
        );
        registry.register(
            "logtide_lost_bytes",
            "Bytes never read, by reason",
            t.lost_bytes.clone(),
        );
        registry.register(
            "logtide_file_lost_bytes",
            "Bytes never read, by file and reason",
            t.file_lost_bytes.clone(),
        );
        registry.register(
            "logtide_lost_files",
            "Files not read to their end, by reason",
            t.lost_files.clone(),
        );
        registry.register(
            "logtide_file_truncations",
            "Files truncated in place (copytruncate); lines written just before may be lost",
            t.truncations.clone(),
        );
        registry.register(
            "logtide_watch_failures",
            "Directories that could not be watched (out of inotify watches)",
            t.watch_failures.clone(),
        );
        registry.register(
            "logtide_processor_errors",
            "Processor errors (the event goes on with error.message)",
            t.processor_errors.clone(),
        );
        registry.register(
            "logtide_processor_not_json",
            "Fields decode_json_fields left as text because they are not JSON (without add_error_key)",
            t.processor_not_json.clone(),
        );
        registry.register(
            "logtide_source_errors",
            "Failed reads of a source (a collection, a GetRecords call), by source",
            t.source_errors.clone(),
        );
        registry.register(
            "logtide_source_records",
            "Records read from a source, by what they held (logtide, json, text)",
            t.source_records.clone(),
        );
        registry.register(
            "logtide_output_retries",
            "Records or requests sent again, by output and reason",
            t.retries.clone(),
        );
        registry.register(
            "logtide_output_errors",
            "Failed output requests, by output and kind",
            t.output_errors.clone(),
        );
        registry.register(
            "logtide_output_reordered_records",
            "Records accepted ahead of an earlier record of their partition key, by output",
            t.reordered.clone(),
        );
        registry.register(
            "logtide_output_latency_seconds",
            "Time to write a batch, retries included",
            t.latency.clone(),
        );
        registry.register(
            "logtide_output_oldest_unacked_seconds",
            "Age of the oldest entry an output has not had acknowledged, from the entry's time (0 when none)",
            t.oldest_unacked.clone(),
        );
        registry.register(
            "logtide_output_stalled_seconds",
            "How long an output with work waiting has gone without progress (0 when idle or moving)",
            t.stalled.clone(),
        );
        registry.register(
            "logtide_file_bytes_behind",
            "Bytes written to a file and not yet shipped",
            t.file_behind.clone(),
        );
        registry.register(
            "logtide_file_oldest_unshipped_seconds",
            "Age of the oldest entry read from a file and not yet acknowledged",
            t.file_oldest.clone(),
        );
        registry.register(
            "logtide_files_open",
            "Files open for reading",
            t.files_open.clone(),
        );
        registry.register(
            "logtide_relay_millis_behind_latest",
            "How far the relay's reading is behind the tip of each shard it owns",
            t.relay_behind.clone(),
        );
        registry.register(
            "logtide_ready",
            "1 when every source is connected and no output is stalled",
            t.ready.clone(),
        );
        Telemetry { registry, ..t }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts events at a stage (`read`, `processed`, `shipped`). Count an event at a
    /// stage only after it was counted at the stages before it: a scrape then always
    /// finds `read` ≥ `shipped` + discarded.
    pub fn add_events(&self, stage: &str, n: u64) {
        if n > 0 {
            let _counting = self.accounting.read().unwrap_or_else(|p| p.into_inner());
            self.events.get_or_create(&label("stage", stage)).inc_by(n);
        }
    }

    /// Counts bytes at a stage (`read`, `shipped`).
    pub fn add_bytes(&self, stage: &str, n: u64) {
        if n > 0 {
            self.bytes.get_or_create(&label("stage", stage)).inc_by(n);
        }
    }

    /// Counts events that will never be shipped.
    pub fn add_discarded_events(&self, reason: &str, n: u64) {
        if n > 0 {
            let _counting = self.accounting.read().unwrap_or_else(|p| p.into_inner());
            self.discarded_events
                .get_or_create(&label("reason", reason))
                .inc_by(n);
        }
    }

    /// Counts events shipped changed.
    pub fn add_modified_events(&self, reason: &str, n: u64) {
        if n > 0 {
            self.modified_events
                .get_or_create(&label("reason", reason))
                .inc_by(n);
        }
    }

    /// Counts lines that never became events.
    pub fn add_discarded_lines(&self, reason: &str, n: u64) {
        if n > 0 {
            self.discarded_lines
                .get_or_create(&label("reason", reason))
                .inc_by(n);
        }
    }

    /// Counts bytes never read.
    pub fn add_lost_bytes(&self, reason: &str, n: u64) {
        if n > 0 {
            self.lost_bytes
                .get_or_create(&label("reason", reason))
                .inc_by(n);
        }
    }

    /// Counts one file not read to its end and its bytes never read (also counted by
    /// [`Self::add_lost_bytes`]; 0 when the size is unknown, which still shows the file).
    pub fn add_file_lost_bytes(&self, path: &str, reason: &str, n: u64) {
        self.add_lost_bytes(reason, n);
        self.lost_files
            .get_or_create(&label("reason", reason))
            .inc();
        let path = {
            let mut state = self.state();
            if state.loss_paths.contains(path) || state.loss_paths.len() < MAX_LOSS_PATHS {
                state.loss_paths.insert(path.to_owned());
                path
            } else {
                "other"
            }
        };
        self.file_lost_bytes
            .get_or_create(&vec![
                ("path", path.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc_by(n);
    }

    /// Counts files truncated in place.
    pub fn add_truncations(&self, n: u64) {
        self.truncations.inc_by(n);
    }

    /// Counts directories that could not be watched.
    pub fn add_watch_failures(&self, n: u64) {
        self.watch_failures.inc_by(n);
    }

    /// Counts processor errors.
    pub fn add_processor_errors(&self, n: u64) {
        self.processor_errors.inc_by(n);
    }

    /// Counts fields `decode_json_fields` left as text because they are not JSON.
    pub fn add_processor_not_json(&self, n: u64) {
        self.processor_not_json.inc_by(n);
    }

    /// Counts records read from a source by format.
    pub fn add_source_records(&self, source: &str, format: &str, n: u64) {
        if n > 0 {
            self.source_records
                .get_or_create(&vec![
                    ("source", source.to_owned()),
                    ("format", format.to_owned()),
                ])
                .inc_by(n);
        }
    }

    /// Counts failed reads of a source.
    pub fn add_source_errors(&self, source: &str, n: u64) {
        if n > 0 {
            self.source_errors
                .get_or_create(&label("source", source))
                .inc_by(n);
        }
    }

    /// Counts records or requests an output sent again, by why the first try failed
    /// (`throttled`, `refused_record`, `network`, `timeout`, `server`, `denied`).
    pub fn add_retries(&self, output: &str, reason: &str, n: u64) {
        if n > 0 {
            self.retries
                .get_or_create(&vec![
                    ("output", output.to_owned()),
                    ("reason", reason.to_owned()),
                ])
                .inc_by(n);
        }
    }

    /// Counts records an output had accepted ahead of an earlier one of their key.
    pub fn add_reordered_records(&self, output: &str, n: u64) {
        if n > 0 {
            self.reordered
                .get_or_create(&label("output", output))
                .inc_by(n);
        }
    }

    /// Counts failed requests of an output, by kind.
    pub fn add_output_errors(&self, output: &str, kind: &str, n: u64) {
        if n > 0 {
            self.output_errors
                .get_or_create(&vec![
                    ("output", output.to_owned()),
                    ("kind", kind.to_owned()),
                ])
                .inc_by(n);
        }
    }

    /// An output took a batch at `at`: it is busy until [`Self::batch_done`].
    pub fn batch_started(&self, output: &str, at: Instant) {
        let mut state = self.state();
        let o = state.outputs.entry(output.to_owned()).or_default();
        o.busy_since.get_or_insert(at);
    }

    /// An output is done with its batch, which took `took` (retries included): progress,
    /// and nothing left.
    pub fn batch_done(&self, output: &str, took: Duration) {
        self.output_progress(output);
        self.output_idle(output);
        self.latency
            .get_or_create(&label("output", output))
            .observe(took.as_secs_f64());
    }

    /// How long an output with work waiting may go without progress before readiness
    /// names it (default [`DEFAULT_STALLED_AFTER`]).
    pub fn set_stalled_after(&self, after: Duration) {
        self.state().stalled_after = Some(after);
    }

    /// Makes `output` part of readiness, under `component`: that component is not ready
    /// while the output has had work waiting and no progress for `http.stalled_after`.
    pub fn watch_output(&self, component: &str, output: &str) {
        let mut state = self.state();
        let o = state.outputs.entry(output.to_owned()).or_default();
        o.component = Some(component.to_owned());
    }

    /// `output` has `waiting` entries it has not had acknowledged, the oldest written at
    /// `oldest`: it is busy from now on if it was idle.
    pub fn output_busy(&self, output: &str, waiting: u64, oldest: Option<Timestamp>) {
        let mut state = self.state();
        let o = state.outputs.entry(output.to_owned()).or_default();
        o.busy_since.get_or_insert_with(Instant::now);
        o.waiting = waiting;
        o.oldest = oldest;
    }

    /// `output` had something acknowledged just now.
    pub fn output_progress(&self, output: &str) {
        let mut state = self.state();
        let o = state.outputs.entry(output.to_owned()).or_default();
        o.progressed = Some(Instant::now());
        o.last_error = None;
    }

    /// `output` has nothing waiting.
    pub fn output_idle(&self, output: &str) {
        let mut state = self.state();
        let o = state.outputs.entry(output.to_owned()).or_default();
        o.busy_since = None;
        o.waiting = 0;
        o.oldest = None;
    }

    /// `output` failed; readiness shows the error if the output stalls.
    pub fn output_error(&self, output: &str, error: String) {
        let mut state = self.state();
        state
            .outputs
            .entry(output.to_owned())
            .or_default()
            .last_error = Some(error);
    }

    /// The entries `output` has not had acknowledged and the time the oldest was written,
    /// asked when the metrics or readiness are read (instead of what
    /// [`Self::output_busy`] reports).
    pub fn output_backlog_from(
        &self,
        output: &str,
        check: impl Fn() -> (u64, Option<Timestamp>) + Send + 'static,
    ) {
        let mut state = self.state();
        state
            .outputs
            .entry(output.to_owned())
            .or_default()
            .backlog_check = Some(Box::new(check));
    }

    /// Replaces what input `input` reports of its files: their progress, and how many it
    /// has open. The age of a file's oldest unshipped entry is taken from the time the
    /// entry was written, `now` the current time.
    #[cfg(feature = "files")]
    pub fn set_files(
        &self,
        input: usize,
        files: &[logtide_tail::FileProgress],
        open: u64,
        now: Timestamp,
    ) {
        // Several generations of one path (a rotation) add up.
        let mut by_path: std::collections::HashMap<std::sync::Arc<str>, (u64, Option<Timestamp>)> =
            std::collections::HashMap::new();
        for f in files {
            let e = by_path.entry(f.path.clone()).or_default();
            e.0 += f.behind();
            e.1 = match (e.1, f.oldest_written) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut state = self.state();
        let previous = state.paths.insert(input, by_path.keys().cloned().collect());
        for gone in previous.iter().flatten() {
            if !by_path.contains_key(gone) {
                self.file_behind.remove(&label("path", gone));
                self.file_oldest.remove(&label("path", gone));
            }
        }
        for (path, (behind, oldest)) in by_path {
            let l = label("path", &path);
            self.file_behind
                .get_or_create(&l)
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
            let age = oldest.map_or(0.0, |t| age(now, t));
            self.file_oldest.get_or_create(&l).set(age);
        }
        state.open.insert(input, open);
        let open: u64 = state.open.values().sum();
        drop(state);
        self.files_open.set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Replaces the relay's lag per owned shard (milliseconds behind the shard's tip).
    pub fn set_shard_lag(&self, lag: &[(String, u64)]) {
        let mut state = self.state();
        let now: HashSet<String> = lag.iter().map(|(s, _)| s.clone()).collect();
        for gone in state.shards.difference(&now) {
            self.relay_behind.remove(&label("shard", gone));
        }
        for (shard, millis) in lag {
            self.relay_behind
                .get_or_create(&label("shard", shard))
                .set(i64::try_from(*millis).unwrap_or(i64::MAX));
        }
        state.shards = now;
    }

    /// Records whether a component (a source or sink, by name) is connected; `Err`
    /// says why not.
    pub fn set_ready(&self, component: &str, state: Result<(), String>) {
        self.state()
            .readiness
            .insert(component.to_owned(), state.err());
    }

    /// Adds a component whose readiness `check` tells when asked.
    pub fn add_check(
        &self,
        component: &str,
        check: impl Fn() -> Result<(), String> + Send + 'static,
    ) {
        self.state()
            .checks
            .push((component.to_owned(), Box::new(check)));
    }

    /// Whether every component is ready, and a line per component.
    pub fn readiness(&self) -> (bool, String) {
        self.readiness_at(Instant::now(), Timestamp::now())
    }

    fn readiness_at(&self, now: Instant, wall: Timestamp) -> (bool, String) {
        let state = self.state();
        let mut all = state.readiness.clone();
        for (name, check) in &state.checks {
            all.insert(name.clone(), check().err());
        }
        let after = state.stalled_after.unwrap_or(DEFAULT_STALLED_AFTER);
        for (output, o) in &state.outputs {
            let Some(component) = &o.component else {
                continue;
            };
            let stalled = o.stalled_for(now);
            let why = all.entry(component.clone()).or_default();
            if stalled < after || why.is_some() {
                continue;
            }
            let (waiting, oldest) = o.backlog();
            let mut text = format!(
                "{output}: no progress for {}s with {waiting} entries waiting",
                stalled.as_secs(),
            );
            if let Some(oldest) = oldest {
                text.push_str(&format!(
                    ", the oldest written {:.0}s ago",
                    age(wall, oldest).floor()
                ));
            }
            if let Some(e) = &o.last_error {
                text.push_str(&format!("; last error: {e}"));
            }
            *why = Some(text);
        }
        drop(state);
        let mut ok = true;
        let mut text = String::new();
        for (name, why) in &all {
            match why {
                None => text.push_str(&format!("{name}: ok\n")),
                Some(why) => {
                    ok = false;
                    text.push_str(&format!("{name}: not ready: {why}\n"));
                }
            }
        }
        (ok, text)
    }

    /// The metrics in the OpenMetrics text format (which Prometheus reads).
    pub fn encode(&self) -> String {
        self.encode_with(|| {})
    }

    /// [`Telemetry::encode`], running `between` after the outputs' state is read and
    /// before the counters are written (for a test to change things in between).
    fn encode_with(&self, between: impl FnOnce()) -> String {
        let (ready, _) = self.readiness();
        self.ready.set(i64::from(ready));
        // Held from before the outputs' state is read until the counters are written. An
        // output marks itself idle before it counts its batch shipped, so a scrape never
        // shows a batch both counted shipped and still waiting (read before, the state
        // could show a batch that was counted shipped before the counters were written).
        let _encoding = self.accounting.write().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let wall = Timestamp::now();
        for (output, o) in &self.state().outputs {
            let l = label("output", output);
            // From the entry's time; for an output that reports none (logtide-metrics),
            // from when it took its batch.
            let oldest = match (o.backlog().1, o.busy_since) {
                (Some(t), _) => age(wall, t),
                (None, Some(busy)) => now.saturating_duration_since(busy).as_secs_f64(),
                (None, None) => 0.0,
            };
            self.oldest_unacked.get_or_create(&l).set(oldest);
            self.stalled
                .get_or_create(&l)
                .set(o.stalled_for(now).as_secs_f64());
        }
        between();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One sample of a scraped metrics text: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series name (`logtide_events_total`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Reads the samples of a Prometheus or OpenMetrics text, as served on `/metrics`;
/// comments and lines that are not samples are skipped.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let (name, value) = line.split_once(' ')?;
            return Some(Sample {
                name: name.to_owned(),
                labels: BTreeMap::new(),
                value: value.split_whitespace().next()?.parse().ok()?,
            });
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    let end = loop {
        // key="value", … }
        let (start, c) = *chars.peek()?;
        if c == '}' {
            break start;
        }
        if c == ',' || c == ' ' {
            chars.next();
            continue;
        }
        let eq = rest[start..].find("=\"")? + start;
        let key = rest[start..eq].to_owned();
        while chars.next_if(|&(i, _)| i <= eq + 1).is_some() {}
        let mut value = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '"' => break,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.insert(key, value);
    };
    let value = rest[end + 1..].split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_gauges_are_served_by_label() {
        let t = Telemetry::new();
        t.add_events("read", 10);
        t.add_events("read", 5);
        t.add_events("shipped", 12);
        t.add_discarded_events("processor_drop", 3);
        t.add_discarded_lines("parse_error", 0);
        t.add_file_lost_bytes("/var/log/containers/a.log", "deleted_before_read", 77);
        t.add_output_errors("kinesis", "throttled", 2);
        let text = t.encode();
        assert_eq!(
            value(&text, r#"logtide_events_total{stage="read"}"#),
            Some(15.0)
        );
        assert_eq!(
            value(&text, r#"logtide_events_total{stage="shipped"}"#),
            Some(12.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_discarded_events_total{reason="processor_drop"}"#
            ),
            Some(3.0)
        );
        assert!(!text.contains("parse_error"), "zero adds create no series");
        assert_eq!(
            value(
                &text,
                r#"logtide_lost_bytes_total{reason="deleted_before_read"}"#
            ),
            Some(77.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_file_lost_bytes_total{path="/var/log/containers/a.log",reason="deleted_before_read"}"#
            ),
            Some(77.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_lost_files_total{reason="deleted_before_read"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_output_errors_total{output="kinesis",kind="throttled"}"#
            ),
            Some(2.0)
        );
        assert_eq!(value(&text, "logtide_ready"), Some(1.0));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn readiness_names_what_is_not_connected() {
        let t = Telemetry::new();
        t.set_ready("output", Ok(()));
        t.set_ready("kubernetes", Err("pod watch not synced".into()));
        let (ok, text) = t.readiness();
        assert!(!ok);
        assert_eq!(
            text,
            "kubernetes: not ready: pod watch not synced\noutput: ok\n"
        );
        assert_eq!(value(&t.encode(), "logtide_ready"), Some(0.0));
        t.set_ready("kubernetes", Ok(()));
        assert!(t.readiness().0);
        let synced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = synced.clone();
        t.add_check("watch", move || {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not synced".into())
            }
        });
        assert_eq!(
            t.readiness(),
            (
                false,
                "kubernetes: ok\noutput: ok\nwatch: not ready: not synced\n".into()
            )
        );
        synced.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(t.readiness().0);
    }

    #[test]
    fn shards_and_busy_outputs_come_and_go() {
        let t = Telemetry::new();
        t.set_shard_lag(&[("shardId-0".into(), 1500), ("shardId-1".into(), 0)]);
        t.set_shard_lag(&[("shardId-1".into(), 20)]);
        let text = t.encode();
        assert_eq!(
            value(
                &text,
                r#"logtide_relay_millis_behind_latest{shard="shardId-1"}"#
            ),
            Some(20.0)
        );
        assert!(
            !text.contains("shardId-0"),
            "a shard no longer owned is removed"
        );

        t.batch_started("kinesis", Instant::now() - Duration::from_secs(3));
        let written = Timestamp::new(Timestamp::now().unix_secs() - 40, 0).unwrap();
        t.output_busy("kinesis", 512, Some(written));
        let text = t.encode();
        let age = value(
            &text,
            r#"logtide_output_oldest_unacked_seconds{output="kinesis"}"#,
        )
        .unwrap();
        assert!((39.0..100.0).contains(&age), "from the entry's time: {age}");
        let stalled = value(&text, r#"logtide_output_stalled_seconds{output="kinesis"}"#).unwrap();
        assert!((3.0..60.0).contains(&stalled), "{stalled}");
        t.batch_done("kinesis", Duration::from_millis(20));
        let text = t.encode();
        for series in [
            r#"logtide_output_oldest_unacked_seconds{output="kinesis"}"#,
            r#"logtide_output_stalled_seconds{output="kinesis"}"#,
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series}");
        }
        assert_eq!(
            value(
                &text,
                r#"logtide_output_latency_seconds_count{output="kinesis"}"#
            ),
            Some(1.0)
        );
    }

    /// An output that finishes its batch while a scrape is being written: the scrape
    /// shows the batch either waiting and not shipped, or shipped and not waiting, never
    /// both shipped and waiting (which read as "everything shipped, and an entry 40 s
    /// old still unacknowledged").
    #[test]
    fn a_batch_finished_during_a_scrape_is_not_both_shipped_and_waiting() {
        let t = Arc::new(Telemetry::new());
        let written = Timestamp::new(Timestamp::now().unix_secs() - 40, 0).unwrap();
        t.add_events("read", 1);
        t.batch_started("kinesis", Instant::now());
        t.output_busy("kinesis", 1, Some(written));
        let (done_tx, done) = std::sync::mpsc::channel();
        let text = t.encode_with(|| {
            // The output finishes as it does in the output loop, on its own thread; it
            // is given time to, unless the scrape holds it back.
            let t = t.clone();
            std::thread::spawn(move || {
                t.batch_done("kinesis", Duration::from_millis(1));
                t.add_events("shipped", 1);
                let _ = done_tx.send(());
            });
            let _ = done.recv_timeout(Duration::from_millis(200));
        });
        // Finished by now (if it was held back, it goes on once the scrape is written).
        let _ = done.recv_timeout(Duration::from_secs(10));
        let read = value(&text, r#"logtide_events_total{stage="read"}"#);
        let shipped = value(&text, r#"logtide_events_total{stage="shipped"}"#).unwrap_or(0.0);
        let waiting = value(
            &text,
            r#"logtide_output_oldest_unacked_seconds{output="kinesis"}"#,
        )
        .unwrap();
        assert_eq!(read, Some(1.0));
        assert!(
            shipped == 0.0 || waiting == 0.0,
            "shipped {shipped} and an entry waiting for {waiting} s"
        );
        // Once it is done, the next scrape shows it shipped and nothing waiting.
        let text = t.encode();
        assert_eq!(
            value(&text, r#"logtide_events_total{stage="shipped"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_output_oldest_unacked_seconds{output="kinesis"}"#
            ),
            Some(0.0)
        );
    }

    #[test]
    fn an_output_without_progress_is_not_ready_after_stalled_after() {
        let t = Telemetry::new();
        t.set_stalled_after(Duration::from_secs(15));
        t.watch_output("output", "kinesis");
        let start = Instant::now();
        let wall = Timestamp::now();
        assert_eq!(t.readiness_at(start, wall), (true, "output: ok\n".into()));
        let written = Timestamp::new(wall.unix_secs() - 30, 0).unwrap();
        t.output_busy("kinesis", 1024, Some(written));
        t.output_error("kinesis", "dispatch failure: timeout".into());
        let busy = t.state().outputs["kinesis"].busy_since.unwrap();
        // Work waiting, but less than `stalled_after` without progress: ready.
        assert!(t.readiness_at(busy + Duration::from_secs(14), wall).0);
        let (ok, text) = t.readiness_at(busy + Duration::from_secs(16), wall);
        assert!(!ok);
        assert_eq!(
            text,
            "output: not ready: kinesis: no progress for 16s with 1024 entries waiting, \
             the oldest written 30s ago; last error: dispatch failure: timeout\n"
        );
        // Progress clears it: counted again from the last progress.
        t.output_progress("kinesis");
        let progressed = t.state().outputs["kinesis"].progressed.unwrap();
        assert!(t.readiness_at(progressed + Duration::from_secs(10), wall).0);
        assert!(!t.readiness_at(progressed + Duration::from_secs(15), wall).0);
        // Idle: nothing waiting, however long.
        t.output_idle("kinesis");
        assert!(
            t.readiness_at(progressed + Duration::from_secs(600), wall)
                .0
        );
        // A failure alone does not make an output unready.
        t.output_error("kinesis", "connection reset".into());
        assert!(
            t.readiness_at(progressed + Duration::from_secs(600), wall)
                .0
        );
    }

    #[test]
    fn a_scrape_never_finds_more_shipped_than_read() {
        // One thread counts events read, another ships exactly what was read (as the
        // output thread does after the input's send); scrapes in between must find
        // read ≥ shipped + discarded every time.
        let t = Arc::new(Telemetry::new());
        let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(4);
        let reader = {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    t.add_events("read", 3);
                    tx.send(3).unwrap();
                }
            })
        };
        let shipper = {
            let t = t.clone();
            std::thread::spawn(move || {
                for n in rx {
                    t.add_events("shipped", n - 1);
                    t.add_discarded_events("processor_drop", 1);
                }
            })
        };
        let mut scrapes = 0;
        while !shipper.is_finished() {
            let text = t.encode();
            let read = value(&text, r#"logtide_events_total{stage="read"}"#).unwrap_or(0.0);
            let shipped = value(&text, r#"logtide_events_total{stage="shipped"}"#).unwrap_or(0.0);
            let dropped = value(
                &text,
                r#"logtide_discarded_events_total{reason="processor_drop"}"#,
            )
            .unwrap_or(0.0);
            assert!(read >= shipped + dropped, "{read} < {shipped} + {dropped}");
            scrapes += 1;
        }
        reader.join().unwrap();
        shipper.join().unwrap();
        let text = t.encode();
        assert_eq!(
            value(&text, r#"logtide_events_total{stage="read"}"#),
            Some(60_000.0)
        );
        assert!(scrapes > 0);
    }

    #[test]
    fn oldest_entry_asked_when_read() {
        let t = Telemetry::new();
        let written = Timestamp::new(Timestamp::now().unix_secs() - 100, 0).unwrap();
        t.output_backlog_from("s3", move || (7, Some(written)));
        let age = value(
            &t.encode(),
            r#"logtide_output_oldest_unacked_seconds{output="s3"}"#,
        )
        .unwrap();
        assert!((99.0..200.0).contains(&age), "{age}");
        t.add_retries("s3", "timeout", 2);
        assert_eq!(
            value(
                &t.encode(),
                r#"logtide_output_retries_total{output="s3",reason="timeout"}"#
            ),
            Some(2.0)
        );
    }

    #[test]
    fn served_text_parses_back() {
        let t = Telemetry::new();
        t.add_file_lost_bytes("/a \"quoted\" \\ path", "deleted_before_read", 9);
        t.add_events("read", 3);
        let samples = parse_samples(&t.encode());
        let lost = samples
            .iter()
            .find(|s| s.name == "logtide_file_lost_bytes_total")
            .unwrap();
        assert_eq!(lost.labels["path"], "/a \"quoted\" \\ path");
        assert_eq!(lost.labels["reason"], "deleted_before_read");
        assert_eq!(lost.value, 9.0);
        let ready = samples.iter().find(|s| s.name == "logtide_ready").unwrap();
        assert!(ready.labels.is_empty());
        assert_eq!(ready.value, 1.0);
        assert!(samples
            .iter()
            .any(|s| s.name == "logtide_events_total" && s.value == 3.0));
    }

    #[test]
    fn lost_paths_are_bounded() {
        let t = Telemetry::new();
        for i in 0..MAX_LOSS_PATHS + 5 {
            t.add_file_lost_bytes(&format!("/p/{i}.log"), "deleted_before_read", 1);
        }
        let text = t.encode();
        assert_eq!(
            value(
                &text,
                r#"logtide_file_lost_bytes_total{path="other",reason="deleted_before_read"}"#
            ),
            Some(5.0)
        );
        assert_eq!(
            value(
                &text,
                r#"logtide_lost_bytes_total{reason="deleted_before_read"}"#
            ),
            Some((MAX_LOSS_PATHS + 5) as f64)
        );
    }
}
