//! Waking the tailer when files change (inotify where available), with the scan interval
//! as the fallback.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// Watches directories and wakes a waiting thread when something in them changes.
///
/// When the platform offers no watcher (or it runs out of watches) the tailer still works:
/// [`Watch::wait`] then simply waits for its timeout.
pub struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    rx: Receiver<()>,
    watched: BTreeSet<PathBuf>,
    /// Watches that could not be added (counted for self-monitoring).
    pub failures: u64,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("active", &self.watcher.is_some())
            .field("watched", &self.watched.len())
            .finish()
    }
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new()
    }
}

impl Watch {
    /// A watcher with nothing watched yet.
    pub fn new() -> Self {
        let (tx, rx) = sync_channel(1);
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            // One pending wake-up is enough; more would only repeat it.
            let _ = tx.try_send(());
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher available: relying on the scan interval");
                None
            }
        };
        Watch {
            watcher,
            rx,
            watched: BTreeSet::new(),
            failures: 0,
        }
    }

    /// Watches exactly `dirs` (non-recursively) from now on.
    pub fn update(&mut self, dirs: &[PathBuf]) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        let wanted: BTreeSet<PathBuf> = dirs.iter().filter(|d| d.is_dir()).cloned().collect();
        for gone in self
            .watched
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            let _ = w.unwatch(&gone);
            self.watched.remove(&gone);
        }
        for new in wanted.difference(&self.watched.clone()) {
            match w.watch(new, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(new.clone());
                }
                Err(e) => {
                    self.failures += 1;
                    tracing::debug!(dir = %new.display(), error = %e, "cannot watch directory");
                }
            }
        }
    }

    /// Waits until something changes or `timeout` passes; returns whether woken by a change.
    pub fn wait(&self, timeout: Duration) -> bool {
        match self.rx.recv_timeout(timeout) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_in_a_watched_directory_wakes_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Watch::new();
        w.update(&[dir.path().to_owned()]);
        assert!(!w.wait(Duration::from_millis(10)));
        std::fs::write(dir.path().join("x.log"), b"hello\n").unwrap();
        assert!(
            w.wait(Duration::from_secs(5)),
            "inotify must report the new file"
        );
        w.update(&[]);
        assert!(w.watched.is_empty());
    }
}
