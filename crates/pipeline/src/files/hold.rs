//! Holding back events whose metadata is not known yet.
//!
//! Kubernetes metadata comes from a watch, which can lag behind the logs: on a new node
//! the cache is empty for the first second, and a new pod can write its first lines before
//! the watch reports it. Rather than ship those lines bare, an input holds them for a
//! bounded time. A [`Gate`] says whether an event can go on; events that cannot wait in
//! the input, per log file, in order, so that lines of one container never overtake each
//! other: once a file has a waiting event, its later events wait behind it.
//!
//! A file's events are released as soon as its first waiting event is ready, or when it
//! has waited `max_wait` (they then go on without the metadata, and the processor that
//! adds it counts the miss). At most `max_events` events wait in an input; beyond that the
//! longest-waiting file is released early, so memory stays bounded whatever the input.
//! Held events are not acknowledged, so a stop while they wait loses nothing: they are
//! read again at the next start.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logtide_event::Event;

/// Decides whether an event can go on to the processors now.
pub trait Gate: Send + Sync {
    /// Whether `event` can go on: what it waits for is known, or never will be.
    fn ready(&self, event: &Event) -> bool;
}

/// Counters of the events that waited for a [`Gate`] in one input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HoldStats {
    /// Events that had to wait.
    pub held: u64,
    /// Events released because their file's first waiting event became ready.
    pub released_ready: u64,
    /// Events released because they had waited the longest allowed time.
    pub released_timeout: u64,
    /// Events released early because too many were waiting.
    pub released_full: u64,
}

struct Waiting {
    since: Instant,
    events: VecDeque<Event>,
}

/// The events of one input that wait for a [`Gate`].
pub(crate) struct Hold {
    gate: Arc<dyn Gate>,
    max_wait: Duration,
    max_events: usize,
    /// Waiting events by the path of the file they were read from.
    waiting: HashMap<Arc<str>, Waiting>,
    len: usize,
    stats: HoldStats,
}

/// The key events wait under: their file, so that a file's lines stay in order (for a
/// tailed entry, a shared reference to its path, not a copy).
fn key_of(event: &Event) -> Arc<str> {
    match event.log_entry() {
        Some(entry) => entry.file.path.clone(),
        None => Arc::from(event.get_str("log.file.path").unwrap_or_default()),
    }
}

impl Hold {
    pub(crate) fn new(gate: Arc<dyn Gate>, max_wait: Duration, max_events: usize) -> Self {
        Hold {
            gate,
            max_wait,
            max_events: max_events.max(1),
            waiting: HashMap::new(),
            len: 0,
            stats: HoldStats::default(),
        }
    }

    /// Events waiting now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn stats(&self) -> HoldStats {
        self.stats
    }

    /// Moves the events of `batch` that must wait, and every later event of their files,
    /// into the hold; the others stay in `batch`, in order.
    pub(crate) fn admit(&mut self, batch: &mut Vec<Event>, now: Instant) {
        // Nothing waits and the gate lets every event through (the common case): they
        // stay where they are. (Asking the gate again below is harmless: a pod's wait
        // starts once.)
        if self.waiting.is_empty() && batch.iter().all(|e| self.gate.ready(e)) {
            return;
        }
        let mut kept = Vec::with_capacity(batch.len());
        for event in batch.drain(..) {
            let key = key_of(&event);
            if let Some(w) = self.waiting.get_mut(&key) {
                w.events.push_back(event);
            } else if self.gate.ready(&event) {
                kept.push(event);
                continue;
            } else {
                self.waiting.insert(
                    key,
                    Waiting {
                        since: now,
                        events: VecDeque::from([event]),
                    },
                );
            }
            self.len += 1;
            self.stats.held += 1;
        }
        *batch = kept;
    }

    /// Appends to `batch` the waiting events that may go now: whole files whose first
    /// waiting event is ready or has waited `max_wait`, then, while too many wait, the
    /// files that have waited longest.
    pub(crate) fn release(&mut self, batch: &mut Vec<Event>, now: Instant) {
        if self.len == 0 {
            return;
        }
        let gate = &self.gate;
        let max_wait = self.max_wait;
        let mut go: Vec<(Arc<str>, bool)> = Vec::new();
        for (key, w) in &self.waiting {
            let timed_out = now.duration_since(w.since) >= max_wait;
            if timed_out || w.events.front().is_none_or(|e| gate.ready(e)) {
                go.push((key.clone(), timed_out));
            }
        }
        for (key, timed_out) in go {
            if let Some(w) = self.waiting.remove(&key) {
                let n = w.events.len() as u64;
                if timed_out {
                    self.stats.released_timeout += n;
                } else {
                    self.stats.released_ready += n;
                }
                self.take(w, batch);
            }
        }
        while self.len > self.max_events {
            let Some(oldest) = self
                .waiting
                .iter()
                .min_by_key(|(_, w)| w.since)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(w) = self.waiting.remove(&oldest) {
                self.stats.released_full += w.events.len() as u64;
                self.take(w, batch);
            }
        }
    }

    fn take(&mut self, w: Waiting, batch: &mut Vec<Event>) {
        self.len -= w.events.len();
        batch.extend(w.events);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use logtide_event::{LogEntry, LogFile, Timestamp};

    use super::*;

    /// Files known to the gate; the others wait.
    #[derive(Default)]
    struct Known(Mutex<Vec<String>>);

    impl Gate for Known {
        fn ready(&self, event: &Event) -> bool {
            let path = key_of(event);
            self.0.lock().unwrap().iter().any(|k| **k == *path)
        }
    }

    fn event(path: &str, offset: u64) -> Event {
        Event::from_log_entry(
            Timestamp::UNIX_EPOCH,
            LogEntry {
                message: format!("{path}@{offset}"),
                stream: "stdout",
                file: LogFile::named(path, None),
                offset,
                partial: false,
                truncated: false,
                docker_attrs: None,
                input_type: "container",
            },
        )
    }

    fn messages(batch: &[Event]) -> Vec<String> {
        batch
            .iter()
            .map(|e| e.log_entry().unwrap().message.clone())
            .collect()
    }

    #[test]
    fn unknown_files_wait_in_order_until_ready() {
        let gate = Arc::new(Known::default());
        gate.0.lock().unwrap().push("a".into());
        let mut hold = Hold::new(gate.clone(), Duration::from_secs(5), 100);
        let t0 = Instant::now();
        let mut batch = vec![event("a", 0), event("b", 0), event("a", 1), event("b", 1)];
        hold.admit(&mut batch, t0);
        assert_eq!(messages(&batch), ["a@0", "a@1"]);
        assert_eq!(hold.len(), 2);

        // "b" becomes known: its events go, in order, before anything newer of "b".
        gate.0.lock().unwrap().push("b".into());
        let mut batch = vec![event("b", 2)];
        hold.admit(&mut batch, t0);
        assert!(
            batch.is_empty(),
            "a newer line of a waiting file waits behind it"
        );
        hold.release(&mut batch, t0);
        assert_eq!(messages(&batch), ["b@0", "b@1", "b@2"]);
        assert_eq!(hold.len(), 0);
        let s = hold.stats();
        assert_eq!((s.held, s.released_ready, s.released_timeout), (3, 3, 0));
    }

    #[test]
    fn waiting_is_bounded_in_time_and_count() {
        let gate = Arc::new(Known::default());
        let mut hold = Hold::new(gate, Duration::from_secs(5), 3);
        let t0 = Instant::now();
        let mut batch = vec![event("old", 0), event("old", 1)];
        hold.admit(&mut batch, t0);
        let mut batch = vec![event("new", 0)];
        hold.admit(&mut batch, t0 + Duration::from_secs(1));
        hold.release(&mut batch, t0 + Duration::from_secs(2));
        assert!(batch.is_empty(), "nothing is ready or late yet");

        // Too many waiting: the file waiting longest goes first.
        let mut batch = vec![event("newer", 0)];
        hold.admit(&mut batch, t0 + Duration::from_secs(3));
        hold.release(&mut batch, t0 + Duration::from_secs(3));
        assert_eq!(messages(&batch), ["old@0", "old@1"]);
        assert_eq!(hold.stats().released_full, 2);

        // Past the longest wait, the rest go without what they waited for.
        let mut batch = Vec::new();
        hold.release(&mut batch, t0 + Duration::from_secs(6));
        assert_eq!(messages(&batch), ["new@0"]);
        hold.release(&mut batch, t0 + Duration::from_secs(8));
        assert_eq!(messages(&batch), ["new@0", "newer@0"]);
        let s = hold.stats();
        assert_eq!((s.held, s.released_timeout, s.released_full), (4, 2, 2));
        assert_eq!(hold.len(), 0);
    }
}
