//! The state the watch thread writes and the pipeline threads read: the store behind a
//! read-write lock, a generation counter that waiters sleep on, and the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::store::Store;

/// Most pods lines can be waiting for at once; beyond it new unknown pods do not wait.
pub(crate) const MAX_WAITING_KEYS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Shared {
    store: RwLock<Store>,
    /// Bumped under `signal`'s lock, read without it.
    generation: AtomicU64,
    signal: Mutex<()>,
    changed: Condvar,
    /// When each unknown pod (by lookup key) was first asked for.
    waits: Mutex<FxHashMap<Box<str>, Instant>>,
    /// Whether `waits` may be non-empty (saves the lock on every hit).
    any_waits: AtomicBool,
    pub(crate) counters: Counters,
}

/// Monotonic counters; [`crate::EnrichStats`] is their snapshot.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) enriched: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) no_path_match: AtomicU64,
    pub(crate) pod_unknown: AtomicU64,
    pub(crate) container_not_in_pod: AtomicU64,
    pub(crate) no_cluster: AtomicU64,
    pub(crate) purged_drained: AtomicU64,
    pub(crate) purged_expired: AtomicU64,
    pub(crate) purged_over_cap: AtomicU64,
    pub(crate) relists: AtomicU64,
    pub(crate) watch_errors: AtomicU64,
    pub(crate) owner_lookups: AtomicU64,
    pub(crate) owner_lookup_errors: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Shared {
    /// The store for reading. A panic elsewhere while writing leaves a usable store (each
    /// update is a complete record replacement), so poisoning is ignored.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the store and wakes the threads waiting for it.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let result = f(&mut self.write());
        self.bump();
        result
    }

    /// Changes the store without waking anyone (the change adds nothing to look up).
    pub(crate) fn update_quietly<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.write())
    }

    fn bump(&self) {
        let _guard = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Blocks until the store changes after `since`, or until `deadline`; returns whether
    /// it changed.
    pub(crate) fn wait_for_change(&self, since: u64, deadline: Instant) -> bool {
        let mut guard = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            // Bumps happen under the lock held here, so none is missed between this check
            // and the wait.
            if self.generation.load(Ordering::Acquire) != since {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Until when lines for `key` may wait: from the first time it was asked for, plus
    /// `budget`. `None` when they may not wait (any more): the budget is spent, too many
    /// pods are waiting already, or `first_ask` is false and the key is not waiting.
    pub(crate) fn wait_deadline(
        &self,
        key: &str,
        now: Instant,
        budget: Duration,
        first_ask: bool,
    ) -> Option<Instant> {
        if budget.is_zero() {
            return None;
        }
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        let since = match waits.get(key) {
            Some(since) => *since,
            None if first_ask && waits.len() < MAX_WAITING_KEYS => {
                waits.insert(Box::from(key), now);
                self.any_waits.store(true, Ordering::Relaxed);
                now
            }
            None => return None,
        };
        let deadline = since + budget;
        (now < deadline).then_some(deadline)
    }

    /// Forgets that `key` was waited for: its pod is known now.
    pub(crate) fn found(&self, key: &str) {
        if self.any_waits.load(Ordering::Relaxed) {
            let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
            waits.remove(key);
            if waits.is_empty() {
                self.any_waits.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Drops wait records older than `keep`: their lines have gone without metadata, and
    /// a pod that shows up much later should not make new lines wait again.
    pub(crate) fn forget_waits(&self, now: Instant, keep: Duration) {
        if !self.any_waits.load(Ordering::Relaxed) {
            return;
        }
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        waits.retain(|_, since| now.saturating_duration_since(*since) < keep);
        if waits.is_empty() {
            self.any_waits.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_per_key() {
        let shared = Shared::default();
        let t0 = Instant::now();
        let budget = Duration::from_secs(5);
        assert_eq!(
            shared.wait_deadline("a", t0, budget, true),
            Some(t0 + budget)
        );
        // A later batch gets the same deadline, not a new budget.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(
            shared.wait_deadline("a", t1, budget, true),
            Some(t0 + budget)
        );
        assert_eq!(shared.wait_deadline("a", t0 + budget, budget, true), None);
        // A retry never starts a wait.
        assert_eq!(shared.wait_deadline("b", t0, budget, false), None);
        assert_eq!(shared.wait_deadline("c", t0, Duration::ZERO, true), None);
        shared.found("a");
        assert_eq!(
            shared.wait_deadline("a", t1, budget, true),
            Some(t1 + budget)
        );
        shared.forget_waits(t1 + budget * 2, budget * 2);
        assert!(!shared.any_waits.load(Ordering::Relaxed));
    }

    #[test]
    fn waiters_wake_on_change_or_deadline() {
        let shared = std::sync::Arc::new(Shared::default());
        let since = shared.generation();
        let past = Instant::now();
        assert!(!shared.wait_for_change(since, past));
        let writer = std::sync::Arc::clone(&shared);
        let t = std::thread::spawn(move || writer.update(|_| ()));
        assert!(shared.wait_for_change(since, Instant::now() + Duration::from_secs(30)));
        t.join().unwrap();
    }
}
