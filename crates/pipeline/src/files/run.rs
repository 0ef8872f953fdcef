//! The logtide-files agent: tailer threads feeding one output thread through a bounded
//! queue of batches, with acknowledgements flowing back and a clean shutdown.
//!
//! Backpressure: when the output cannot keep up (or fails and retries), the queue fills
//! and the tailers stop reading; memory stays bounded by the queue length times the batch
//! size. Shutdown (the `stop` flag, set on SIGTERM/SIGINT): tailers stop reading, the output
//! writes what is queued, the tailers wait (up to `shutdown_timeout`) for acknowledgements
//! and write their registries one last time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use logtide_event::{AckToken, Event, Timestamp};
use logtide_tail::{FileChange, TailStats, Tailer, Watch};

use super::config::{build_processors_with, FilesConfig};
use super::hold::{Gate, Hold, HoldStats};
use super::k8s::Kubernetes;
use crate::http::{HttpServer, FILES_PORT};
use crate::output::{self, Output};
use crate::telemetry::Telemetry;
use crate::Error;
use logtide_json::{Outcome, Processors, Stats as ProcessorStats};

/// Events per batch handed from a tailer to the output.
const BATCH: usize = 512;
/// Batches queued between the tailers and the output.
const QUEUE: usize = 2;
/// Longest idle wait between polls when no file changes.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// A file created, removed or renamed (a rotation) triggers a scan at most this often.
const WAKE_SCAN_EVERY: Duration = Duration::from_millis(200);
/// After a wake-up from idle, how long writes are let in before the files are read, so
/// that many small writes are read together rather than one poll of every file each.
const WAKE_COALESCE: Duration = Duration::from_millis(25);
/// How often the watched directories are brought up to date (the directories of the files
/// being read: kubelet's pod log directories behind the /var/log/containers symlinks).
const WATCH_UPDATE_EVERY: Duration = Duration::from_secs(1);
/// How often counters are logged.
const STATS_EVERY: Duration = Duration::from_secs(30);
/// How often file progress goes to the self-metrics (the counters go as events pass).
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// The longest a line waits for its pod's metadata, whatever the enricher says.
const K8S_MAX_WAIT: Duration = Duration::from_secs(30);
/// The most lines of one input waiting for their pods' metadata.
const K8S_MAX_WAITING: usize = 4096;

/// What a run did, per input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// The tailer counters of each input, in configuration order.
    pub inputs: Vec<TailStats>,
    /// What waited for the [`Gate`] in each input, in configuration order.
    pub held: Vec<HoldStats>,
    /// The counters of each `add_kubernetes_metadata`, in configuration order.
    pub kubernetes: Vec<logtide_k8s_meta::EnrichStats>,
}

/// Told which log file paths the inputs start and finish reading.
pub trait FileObserver: Send + Sync {
    /// A path gained its first file, or the inputs are done with its last one.
    fn file_changed(&self, change: &FileChange);
}

/// What a run takes besides its configuration file.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Told of every [`FileChange`] of every input.
    pub files: Option<Arc<dyn FileObserver>>,
    /// Events wait in their input until this gate lets them go (see [`Gate`]), for at
    /// most `max_wait`, with at most `max_waiting` events waiting per input.
    pub gate: Option<Arc<dyn Gate>>,
    /// The longest an event waits for the gate.
    pub max_wait: Duration,
    /// The most events waiting for the gate in one input.
    pub max_waiting: usize,
    /// Where the run counts what it does (a new one when `None`); served on the
    /// configuration's `http` endpoint when enabled.
    pub telemetry: Option<Arc<Telemetry>>,
}

/// Runs logtide-files until `stop` is set, then shuts down cleanly.
pub fn run_files(config: &FilesConfig, stop: Arc<AtomicBool>) -> Result<RunSummary, Error> {
    run_files_with(config, stop, RunOptions::default())
}

/// [`run_files`] with [`RunOptions`].
pub fn run_files_with(
    config: &FilesConfig,
    stop: Arc<AtomicBool>,
    options: RunOptions,
) -> Result<RunSummary, Error> {
    let origin = std::path::Path::new("configuration");
    let telemetry = options.telemetry.clone().unwrap_or_default();
    telemetry.set_stalled_after(config.http.stalled_after());
    let _http = HttpServer::start_if_enabled(&config.http, FILES_PORT, telemetry.clone())?;
    let started = super::k8s::Started::default();
    let global = Arc::new(build_processors_with(
        &config.processors,
        "processors",
        origin,
        &started,
    )?);
    let global_enrichers = started.enrichers().len();
    let mut tailers = Vec::new();
    for (i, input) in config.inputs.iter().enumerate() {
        let tailer = Tailer::open(input.tail_config(), config.registry_config(i))?;
        let before = started.enrichers().len();
        let report = tailer.load_report();
        tracing::info!(input = i, registry_version = ?report.version, "input started");
        let chain = Chain {
            input: build_processors_with(
                &input.processors,
                &format!("inputs[{i}].processors"),
                origin,
                &started,
            )?,
            global: global.clone(),
            input_stats: ProcessorStats::default(),
            global_stats: ProcessorStats::default(),
        };
        // The enrichers this input's events meet: the global list's and its own.
        let all = started.enrichers();
        let mut mine = all[..global_enrichers].to_vec();
        mine.extend_from_slice(&all[before..]);
        tailers.push((tailer, chain, mine));
    }
    telemetry.set_ready("inputs", Ok(()));
    let enrichers = started.enrichers();
    for (i, e) in enrichers.iter().enumerate() {
        let e = e.clone();
        telemetry.add_check(&format!("kubernetes[{i}]"), move || {
            if e.is_synced() {
                Ok(())
            } else {
                Err("the first list of pods has not arrived".into())
            }
        });
    }
    let kubernetes = (!enrichers.is_empty()).then(|| Kubernetes { enrichers });
    let tailers: Vec<_> = tailers
        .into_iter()
        .map(|(tailer, chain, mine)| {
            let k8s = (!mine.is_empty()).then(|| Arc::new(Kubernetes { enrichers: mine }));
            // Lines of a pod the watch has not reported yet wait for it; the enricher
            // lets them go when its own wait (`wait_for_metadata`) runs out, and these
            // bounds are only a safety net.
            let hold = match (&options.gate, &k8s) {
                (Some(gate), _) => Some(Hold::new(
                    gate.clone(),
                    options.max_wait,
                    options.max_waiting,
                )),
                (None, Some(k)) => Some(Hold::new(k.clone(), K8S_MAX_WAIT, K8S_MAX_WAITING)),
                (None, None) => None,
            };
            let files = match (&options.files, k8s) {
                (Some(files), _) => Some(files.clone()),
                (None, Some(k)) => Some(k as Arc<dyn FileObserver>),
                (None, None) => None,
            };
            (tailer, chain, hold, files)
        })
        .collect();
    let out = output::build(&config.output)?;
    // Ready while the output makes progress, whatever errors it meets on the way.
    telemetry.set_ready("output", Ok(()));
    telemetry.watch_output("output", out.name());
    let (tx, rx) = sync_channel::<Batch>(QUEUE);
    let room = Arc::new(Room::default());
    let timeout = config.shutdown_timeout;
    let output_stop = stop.clone();
    let output_telemetry = telemetry.clone();
    let output_room = room.clone();
    let output_thread = thread::Builder::new()
        .name("output".into())
        .spawn(move || {
            output_loop(
                rx,
                out,
                &output_room,
                &output_stop,
                timeout,
                &output_telemetry,
            )
        })
        .map_err(|e| Error::Output(format!("cannot start the output thread: {e}")))?;
    let mut handles = Vec::new();
    for (i, (tailer, chain, hold, files)) in tailers.into_iter().enumerate() {
        let tx = Queue {
            tx: tx.clone(),
            room: room.clone(),
        };
        let stop = stop.clone();
        let stages = Stages {
            chain,
            hold,
            files,
            telemetry: telemetry.clone(),
        };
        let h = thread::Builder::new()
            .name(format!("input-{i}"))
            .spawn(move || tail_loop(i, tailer, stages, tx, &stop, timeout))
            .map_err(|e| Error::Output(format!("cannot start an input thread: {e}")))?;
        handles.push(h);
    }
    drop(tx);
    let mut summary = RunSummary::default();
    for h in handles {
        let (tail, held) = h.join().unwrap_or_default();
        summary.inputs.push(tail);
        summary.held.push(held);
    }
    let _ = output_thread.join();
    if let Some(k) = &kubernetes {
        summary.kubernetes = k.stats();
        for (i, s) in summary.kubernetes.iter().enumerate() {
            tracing::info!(processor = i, stats = ?s, "add_kubernetes_metadata counters");
        }
    }
    Ok(summary)
}

/// Events on their way to the output, with the way back to the input thread that made
/// them: written events are dropped there, so memory is freed by the thread that
/// allocated it (cheaper, and it keeps the heap of each thread compact).
struct Batch {
    events: Vec<Event>,
    back: Sender<Vec<Event>>,
}

/// How often an input waiting for room in the queue looks after its files.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Longest wait of an input for room in the queue before it checks the stop flag and its
/// housekeeping clock again.
const ROOM_WAIT: Duration = Duration::from_millis(50);

/// Tells the inputs waiting on a full queue that the output took a batch: they send at
/// once instead of sleeping a fixed time (which, without processors, left the output idle
/// for most of each sleep).
#[derive(Default)]
struct Room {
    /// Batches the output has taken so far.
    taken: Mutex<u64>,
    cv: Condvar,
}

impl Room {
    fn taken(&self) -> u64 {
        *self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the output for each batch it receives.
    fn took_one(&self) {
        *self.taken.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_all();
    }

    /// Waits up to `limit` for the output to take a batch after it had taken `seen`.
    fn wait_after(&self, seen: u64, limit: Duration) {
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .cv
            .wait_timeout_while(taken, limit, |taken| *taken == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// An input's end of the queue to the output.
struct Queue {
    tx: SyncSender<Batch>,
    room: Arc<Room>,
}

/// Hands a batch to the output, waiting while the queue is full; gives up (the events
/// are then not acknowledged and are read again after a restart) when stopping. While
/// it waits (the output is slow or failing), `housekeeping` runs every second, so that
/// acknowledgements still reach the registry and deleted files are still given up on
/// after `close_removed_after` instead of holding their disk space.
fn send(
    queue: &Queue,
    mut batch: Batch,
    stop: &AtomicBool,
    mut housekeeping: impl FnMut(Instant),
) -> bool {
    let mut last = Instant::now();
    loop {
        // Read before trying, so that a batch taken between the try and the wait ends
        // the wait at once.
        let seen = queue.room.taken();
        match queue.tx.try_send(batch) {
            Ok(()) => return true,
            Err(TrySendError::Full(b)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                batch = b;
                queue.room.wait_after(seen, ROOM_WAIT);
                let now = Instant::now();
                if now.duration_since(last) >= HOUSEKEEPING_EVERY {
                    last = now;
                    housekeeping(now);
                }
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// The processors an input's events go through: its own, then the global ones.
struct Chain {
    input: Processors,
    global: Arc<Processors>,
    input_stats: ProcessorStats,
    global_stats: ProcessorStats,
}

impl Chain {
    /// Runs the processors over a batch; dropped events are acknowledged as discarded
    /// (and counted), so their offsets are not held back. Returns the number of events
    /// dropped, of processor errors, and of fields `decode_json_fields` left as text.
    fn apply(&mut self, input: usize, batch: &mut Vec<Event>) -> (u64, u64, u64) {
        if self.input.is_empty() && self.global.is_empty() {
            return (0, 0, 0);
        }
        let before = batch.len();
        let mut errors = 0;
        let mut not_json = 0;
        let mut outcome = Outcome::default();
        let Chain {
            input: own,
            global,
            input_stats,
            global_stats,
        } = self;
        batch.retain_mut(|event| {
            for (chain, stats) in [(&*own, &mut *input_stats), (&**global, &mut *global_stats)] {
                if chain.is_empty() {
                    continue;
                }
                chain.run_into(event, &mut outcome);
                stats.record(&outcome);
                not_json += outcome.not_json().len() as u64;
                for e in outcome.errors() {
                    errors += 1;
                    tracing::debug!(input, error = %e, "processor error");
                }
                if outcome.is_dropped() {
                    if let Some(token) = event.take_ack() {
                        token.discard("dropped_by_processor");
                    }
                    return false;
                }
            }
            true
        });
        ((before - batch.len()) as u64, errors, not_json)
    }
}

/// What an input's events go through between the tailer and the output.
struct Stages {
    chain: Chain,
    hold: Option<Hold>,
    files: Option<Arc<dyn FileObserver>>,
    telemetry: Arc<Telemetry>,
}

/// Hands an input's counters, file progress and losses to the self-metrics.
struct Publisher {
    input: usize,
    telemetry: Arc<Telemetry>,
    /// The counters as of the last publication.
    published: TailStats,
    last: Instant,
}

impl Publisher {
    /// Losses and counters go at once; file progress every [`PUBLISH_EVERY`], or now
    /// when `force`.
    fn publish(&mut self, tailer: &mut Tailer, now: Instant, force: bool) {
        for loss in tailer.take_losses() {
            self.telemetry
                .add_file_lost_bytes(&loss.path, loss.reason, loss.bytes);
        }
        let open = self.count(tailer);
        if !force && now.duration_since(self.last) < PUBLISH_EVERY {
            return;
        }
        self.last = now;
        self.telemetry
            .set_files(self.input, &tailer.progress(), open, Timestamp::now());
    }

    /// Counts what the tailer did since the last call; called as soon as events are
    /// read, before they go on, so that a scrape never finds an event shipped or
    /// discarded that is not yet counted read. Returns the files open.
    fn count(&mut self, tailer: &Tailer) -> u64 {
        let t = &*self.telemetry;
        let (was, now_stats) = (self.published, tailer.stats());
        t.add_events("read", now_stats.events - was.events);
        t.add_bytes("read", now_stats.bytes - was.bytes);
        t.add_discarded_lines("parse_error", now_stats.parse_errors - was.parse_errors);
        t.add_discarded_lines(
            "stream_filtered",
            now_stats.lines_filtered - was.lines_filtered,
        );
        t.add_lost_bytes(
            "line_too_long",
            now_stats.bytes_skipped_too_long - was.bytes_skipped_too_long,
        );
        t.add_modified_events(
            "entry_truncated",
            now_stats.entries_truncated - was.entries_truncated,
        );
        t.add_modified_events(
            "partial_flushed",
            now_stats.partial_flushed - was.partial_flushed,
        );
        // Among the partial events, those emitted before their last chunk could come: to
        // stay within `max_pending` entries, or within `max_pending_bytes`.
        t.add_modified_events(
            "partial_evicted",
            now_stats.partial_evicted - was.partial_evicted,
        );
        t.add_modified_events(
            "partial_over_budget",
            now_stats.partial_over_budget - was.partial_over_budget,
        );
        t.add_modified_events("partial_gap", now_stats.partial_gap - was.partial_gap);
        t.add_truncations(now_stats.truncations - was.truncations);
        self.published = now_stats;
        now_stats.open_files
    }
}

fn tail_loop(
    input: usize,
    mut tailer: Tailer,
    stages: Stages,
    tx: Queue,
    stop: &AtomicBool,
    timeout: Duration,
) -> (TailStats, HoldStats) {
    let Stages {
        mut chain,
        mut hold,
        files,
        telemetry,
    } = stages;
    let mut publisher = Publisher {
        input,
        telemetry: telemetry.clone(),
        published: TailStats::default(),
        last: Instant::now(),
    };
    let report_files = |tailer: &mut Tailer| {
        let changes = tailer.take_file_changes();
        if let Some(files) = &files {
            for change in &changes {
                files.file_changed(change);
            }
        }
    };
    let (back, returned) = channel::<Vec<Event>>();
    let mut spare: Vec<Vec<Event>> = Vec::new();
    let mut watch = Watch::new();
    let mut last_watch_update: Option<Instant> = None;
    let mut last_wake_scan = Instant::now();
    let mut last_stats = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if last_watch_update.is_none_or(|t| now.duration_since(t) >= WATCH_UPDATE_EVERY) {
            let failed = watch.failures;
            watch.update(&tailer.watch_dirs());
            telemetry.add_watch_failures(watch.failures - failed);
            last_watch_update = Some(now);
        }
        // Written batches come back to be dropped here and their vectors reused.
        while let Ok(mut done) = returned.try_recv() {
            done.clear();
            if spare.len() < QUEUE + 1 {
                spare.push(done);
            }
        }
        let n = tailer.poll(now, &mut batch, BATCH);
        if !batch.is_empty() {
            // Counted read before they can be counted shipped or discarded.
            publisher.count(&tailer);
        }
        report_files(&mut tailer);
        if let Some(hold) = &mut hold {
            hold.admit(&mut batch, now);
            hold.release(&mut batch, now);
        }
        let (dropped, errors, not_json) = chain.apply(input, &mut batch);
        telemetry.add_discarded_events("processor_drop", dropped);
        telemetry.add_processor_errors(errors);
        telemetry.add_processor_not_json(not_json);
        telemetry.add_events("processed", batch.len() as u64);
        if !batch.is_empty() {
            let next = spare.pop().unwrap_or_else(|| Vec::with_capacity(BATCH));
            let full = Batch {
                events: std::mem::replace(&mut batch, next),
                back: back.clone(),
            };
            let waiting = |now: Instant| {
                tailer.scan(now);
                report_files(&mut tailer);
                if let Err(e) = tailer.commit(now, false) {
                    tracing::error!(input, error = %e, "cannot write the registry; retrying");
                }
                report_files(&mut tailer);
                publisher.publish(&mut tailer, now, false);
            };
            if !send(&tx, full, stop, waiting) {
                break;
            }
        }
        if let Err(e) = tailer.commit(now, false) {
            tracing::error!(input, error = %e, "cannot write the registry; retrying");
        }
        report_files(&mut tailer);
        publisher.publish(&mut tailer, now, false);
        if now.duration_since(last_stats) >= STATS_EVERY {
            last_stats = now;
            let s = tailer.stats();
            tracing::info!(
                input,
                events = s.events,
                lines = s.lines,
                parse_errors = s.parse_errors,
                open_files = s.open_files,
                inflight = s.inflight_events,
                truncations = s.truncations,
                waiting_for_metadata = hold.as_ref().map_or(0, Hold::len),
                dropped_by_processors = chain.input_stats.dropped() + chain.global_stats.dropped(),
                processor_errors = chain
                    .input_stats
                    .errors()
                    .iter()
                    .chain(chain.global_stats.errors())
                    .sum::<u64>(),
                // Fields decode_json_fields left as text (no add_error_key): not errors.
                not_json = chain
                    .input_stats
                    .not_json()
                    .iter()
                    .chain(chain.global_stats.not_json())
                    .sum::<u64>(),
                "tail counters"
            );
        }
        if n == 0 && watch.wait(IDLE_WAIT) {
            thread::sleep(WAKE_COALESCE);
        }
        // A rotation (a file created, removed or renamed in a watched directory) is
        // followed at once, not at the next scan interval, busy or not.
        if now.duration_since(last_wake_scan) >= WAKE_SCAN_EVERY && watch.take_structural() {
            last_wake_scan = Instant::now();
            tailer.scan(last_wake_scan);
            let failed = watch.failures;
            watch.update(&tailer.watch_dirs());
            telemetry.add_watch_failures(watch.failures - failed);
            last_watch_update = Some(last_wake_scan);
        }
    }
    drop(tx);
    // Events still waiting were not shipped: dropping them leaves their offsets where
    // they are, and they are read again at the next start.
    let held = hold.as_ref().map(Hold::stats).unwrap_or_default();
    if let Some(waiting) = hold.as_ref().map(Hold::len).filter(|&n| n > 0) {
        tracing::info!(
            input,
            waiting,
            "events still waiting for metadata will be read again at the next start"
        );
    }
    drop(hold);
    let deadline = Instant::now() + timeout;
    while tailer.has_inflight() && Instant::now() < deadline {
        let _ = tailer.commit(Instant::now(), false);
        thread::sleep(Duration::from_millis(10));
    }
    if tailer.has_inflight() {
        tracing::warn!(
            input,
            "shutdown timeout: unacknowledged events will be read again at the next start"
        );
    }
    if let Err(e) = tailer.commit(Instant::now(), true) {
        tracing::error!(input, error = %e, "cannot write the registry at shutdown");
    }
    publisher.publish(&mut tailer, Instant::now(), true);
    let stats = tailer.stats();
    tracing::info!(
        input,
        events = stats.events,
        lines = stats.lines,
        parse_errors = stats.parse_errors,
        held = held.held,
        "input stopped"
    );
    (stats, held)
}

fn output_loop(
    rx: Receiver<Batch>,
    mut out: Box<dyn Output>,
    room: &Room,
    stop: &AtomicBool,
    timeout: Duration,
    telemetry: &Telemetry,
) {
    let name = out.name();
    for Batch {
        events: mut batch,
        back,
    } in rx
    {
        room.took_one();
        let mut backoff = Duration::from_millis(100);
        let mut stopping_since: Option<Instant> = None;
        let started = Instant::now();
        telemetry.batch_started(name, started);
        let oldest = batch.iter().map(Event::timestamp).min();
        telemetry.output_busy(name, batch.len() as u64, oldest);
        let mut dead_lettered = 0;
        loop {
            let result = out.write_batch(&batch);
            dead_lettered += out.publish(telemetry);
            match result {
                Ok(()) => {
                    // Idle before shipped: a scrape that finds nothing in flight finds no
                    // batch either.
                    telemetry.batch_done(name, started.elapsed());
                    telemetry.add_events("shipped", batch.len() as u64 - dead_lettered);
                    AckToken::accept_all_in_place(batch.iter_mut().filter_map(Event::ack_mut));
                    // Dropped by the input thread (tokens included), or here when it is gone.
                    let _ = back.send(std::mem::take(&mut batch));
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.len(), "output failed; retrying");
                    telemetry.add_output_errors(name, "write", 1);
                    telemetry.output_error(name, e.to_string());
                    if stop.load(Ordering::Relaxed) {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= timeout {
                            tracing::warn!(events = batch.len(), "giving up at shutdown; the events will be read again at the next start");
                            break;
                        }
                    }
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far longer than a wake-up takes: a wait that lasts this long was not woken.
    const NEVER: Duration = Duration::from_secs(60);

    #[test]
    fn a_waiting_input_wakes_when_the_output_takes_a_batch() {
        let room = Arc::new(Room::default());
        let seen = room.taken();
        let output = {
            let room = room.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                room.took_one();
            })
        };
        let started = Instant::now();
        room.wait_after(seen, NEVER);
        assert!(
            started.elapsed() < NEVER,
            "the wait ran out instead of waking"
        );
        assert_eq!(room.taken(), seen + 1);
        output.join().unwrap();
    }

    #[test]
    fn a_batch_taken_before_the_wait_ends_it_at_once() {
        // The output takes a batch between the input's failed try and its wait.
        let room = Room::default();
        let seen = room.taken();
        room.took_one();
        let started = Instant::now();
        room.wait_after(seen, NEVER);
        assert!(
            started.elapsed() < NEVER,
            "the wait missed the batch taken before it"
        );
    }

    #[test]
    fn a_full_queue_sends_as_soon_as_the_output_takes_a_batch() {
        let (tx, rx) = sync_channel::<Batch>(1);
        let queue = Queue {
            tx,
            room: Arc::new(Room::default()),
        };
        let (back, _returned) = channel();
        let batch = |n| Batch {
            events: Vec::with_capacity(n),
            back: back.clone(),
        };
        let stop = AtomicBool::new(false);
        assert!(send(&queue, batch(1), &stop, |_| {}));
        let room = queue.room.clone();
        let output = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            let first = rx.recv().unwrap();
            room.took_one();
            let second = rx.recv_timeout(NEVER).unwrap();
            (first.events.capacity(), second.events.capacity())
        });
        let mut housekeeping = 0;
        let started = Instant::now();
        assert!(send(&queue, batch(2), &stop, |_| housekeeping += 1));
        assert!(started.elapsed() < NEVER);
        assert_eq!(output.join().unwrap(), (1, 2), "both batches, in order");
        // Woken, not timed out: the housekeeping of a long wait did not run.
        assert_eq!(housekeeping, 0);
    }
}
