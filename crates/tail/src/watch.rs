//! Waking the tailer when files change (inotify where available), with the scan interval
//! as the fallback.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};

/// Watches directories and wakes a waiting thread when something in them changes.
///
/// Besides waking, it tells whether a file was created, removed or renamed
/// ([`Watch::take_structural`]): a rotation, after which the tailer scans at once.
///
/// When the platform offers no watcher (or it runs out of watches) the tailer still works:
/// [`Watch::wait`] then simply waits for its timeout, and rotations are found when a file
/// is read to its end and at the scan interval.
pub struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    rx: Receiver<()>,
    structural: Arc<AtomicBool>,
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
        let structural = Arc::new(AtomicBool::new(false));
        let flag = structural.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Files created, removed or renamed (or events lost: the queue overflowed).
            let changed = match event {
                Ok(e) => {
                    e.need_rescan()
                        || matches!(
                            e.kind,
                            EventKind::Create(_)
                                | EventKind::Remove(_)
                                | EventKind::Modify(ModifyKind::Name(_))
                                | EventKind::Any
                                | EventKind::Other
                        )
                }
                Err(_) => true,
            };
            if changed {
                flag.store(true, Ordering::Relaxed);
            }
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
            structural,
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
                    if self.failures == 0 {
                        tracing::warn!(dir = %new.display(), error = %e,
                            "cannot watch a directory (out of inotify watches?): its rotations are found at each end of file and at the scan interval");
                    } else {
                        tracing::debug!(dir = %new.display(), error = %e, "cannot watch directory");
                    }
                    self.failures += 1;
                }
            }
        }
    }

    /// Whether a file was created, removed or renamed in a watched directory since the last
    /// call (and whether events were lost).
    pub fn take_structural(&self) -> bool {
        self.structural.swap(false, Ordering::Relaxed)
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
        assert!(w.take_structural(), "a created file is a structural change");
        assert!(!w.take_structural());
        // A write to an existing file wakes, but is no structural change.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("x.log"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"more\n").unwrap();
        assert!(w.wait(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!w.take_structural(), "an append is not a rotation");
        std::fs::rename(dir.path().join("x.log"), dir.path().join("x.log.1")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !w.take_structural() {
            assert!(std::time::Instant::now() < deadline, "a rename is reported");
            w.wait(Duration::from_millis(50));
        }
        w.update(&[]);
        assert!(w.watched.is_empty());
    }
}
