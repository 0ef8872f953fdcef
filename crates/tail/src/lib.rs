//! Rotation-proof, crash-proof tailing of container log files.
//!
//! [`Tailer`] finds files by glob (symlinks followed, as kubelet's `/var/log/containers`
//! entries link into `/var/log/pods`), reads them in large chunks, parses each line as CRI
//! or docker json-file, joins partial chunks per container stream (so an entry split by a
//! rotation is still one entry) and turns entries into [`logtide_event::Event`]s with
//! Filebeat's field names (`message`, `stream`, `log.file.path`, `log.offset`,
//! `container.id`, `input.type`). Each event carries an [`logtide_event::AckToken`]; the
//! [`Registry`] saves, per file, the start of the first entry not yet acknowledged, with a
//! hash of the bytes before it, written atomically on an interval.
//!
//! What the tailer guarantees:
//! - a saved offset is always the start of an entry that is not fully acknowledged, so a
//!   restart never lands inside an entry and re-reads (at least once) whatever was not
//!   acknowledged;
//! - renamed files are drained before the file that replaced them; copytruncate restarts
//!   at 0 (counted as possible loss); deleted files are drained for `close_removed_after`;
//! - a bad line is counted and reported, never stops a file; over-long lines are cut;
//! - memory is bounded by configuration, not by input: one read buffer
//!   (`read_buffer_bytes`), lines of at most `max_line_bytes`, at most 4096 entries being
//!   joined of at most `max_entry_bytes` each (16 MiB, so large entries pass whole) and of
//!   at most `max_pending_bytes` together (64 MiB; beyond it the oldest is emitted as
//!   partial and counted), `harvester_limit` open files, and the events in flight (the
//!   host's queue).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Instant;
//! use logtide_tail::{RegistryConfig, TailConfig, Tailer};
//!
//! let mut tailer = Tailer::open(TailConfig::default(), RegistryConfig::default())?;
//! let mut batch = Vec::new();
//! loop {
//!     tailer.poll(Instant::now(), &mut batch, 4096);
//!     for mut event in batch.drain(..) {
//!         // ... ship the event, then:
//!         if let Some(token) = event.take_ack() {
//!             token.accept();
//!         }
//!     }
//!     tailer.commit(Instant::now(), false)?;
//!     std::thread::sleep(std::time::Duration::from_millis(100));
//! }
//! # Ok::<(), logtide_tail::Error>(())
//! ```

mod config;
pub mod filebeat;
mod identity;
mod reader;
pub mod registry;
mod rotation;
mod tailer;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{InputFormat, RegistryConfig, StreamFilter, TailConfig};
pub use identity::{FileId, RangeHash, FINGERPRINT_BYTES, PREFIX_BYTES};
pub use registry::{Registry, RegistryEntry, REGISTRY_VERSION};
pub use tailer::{FileChange, FileProgress, Loss, Tailer};
pub use watch::Watch;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the message names the key.
    #[error("invalid tail configuration: {0}")]
    Config(String),
    /// An I/O operation on a path failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The registry is not valid JSON of a known shape.
    #[error("unreadable registry {}: {reason}", path.display())]
    RegistryFormat {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The registry was written by a newer version.
    #[error("registry {} has registry format version {found}; this version reads up to {supported}", path.display())]
    RegistryVersion {
        /// The registry file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A Filebeat registry could not be imported.
    #[error("cannot import Filebeat registry {}: {reason}", path.display())]
    FilebeatImport {
        /// The file being imported.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file watcher could not be set up.
    #[error("cannot watch for file changes: {0}")]
    Watch(String),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Counters of the tailer, for self-monitoring. Every line read is either part of an
/// event, a counted parse error, or a counted skipped continuation chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TailStats {
    /// Lines read.
    pub lines: u64,
    /// Bytes read (lines with terminators).
    pub bytes: u64,
    /// Events produced.
    pub events: u64,
    /// Lines that could not be parsed (reported and skipped).
    pub parse_errors: u64,
    /// Lines of a stream the input does not read (`stream` option).
    pub lines_filtered: u64,
    /// Lines longer than `max_line_bytes` (cut; the rest skipped).
    pub lines_too_long: u64,
    /// Bytes skipped after the cut of over-long lines.
    pub bytes_skipped_too_long: u64,
    /// Entries cut at `max_entry_bytes` or made of a cut line.
    pub entries_truncated: u64,
    /// Entries joined from several chunks.
    pub entries_joined: u64,
    /// Entries emitted as partial because their last chunk did not come in time.
    pub partial_flushed: u64,
    /// Entries emitted as partial because too many were pending.
    pub partial_evicted: u64,
    /// Entries emitted as partial because the entries pending held `max_pending_bytes`
    /// (also in `partial_flushed`).
    pub partial_over_budget: u64,
    /// Entries emitted as partial because a file of their rotation sequence could not be
    /// read (also in `partial_flushed`).
    pub partial_gap: u64,
    /// Rotations followed: a file renamed or deleted at its path, and the files after it
    /// in its sequence looked for.
    pub rotations_followed: u64,
    /// Files of rotation sequences that could not be read (gzipped or gone first).
    pub files_lost: u64,
    /// Their bytes, where known (see [`Loss`]).
    pub bytes_lost_rotated: u64,
    /// Files truncated in place (copytruncate) or rewritten: read again from 0; lines
    /// written just before the truncation may be lost.
    pub truncations: u64,
    /// Files found under a new name.
    pub renames: u64,
    /// Renamed or deleted files read to their end.
    pub files_drained: u64,
    /// Deleted files given up on before they were drained.
    pub removed_gave_up: u64,
    /// Bytes never read from files given up on.
    pub bytes_lost_removed: u64,
    /// Resumes whose saved offset was moved to the next line start.
    pub resume_realigned: u64,
    /// Resumes whose check hash did not match (file read from the start).
    pub resume_hash_mismatch: u64,
    /// Continuation chunks of already shipped entries skipped on resume.
    pub resume_skipped_chunks: u64,
    /// Files whose inode was reused by a different file.
    pub inode_reused: u64,
    /// Files opened.
    pub files_opened: u64,
    /// Files closed after `close_inactive` or to stay within `harvester_limit`.
    pub files_closed_inactive: u64,
    /// Opens postponed because `harvester_limit` was reached.
    pub open_deferred: u64,
    /// Files that could not be opened.
    pub open_errors: u64,
    /// Paths that failed during a scan (vanished, unreadable directory).
    pub scan_errors: u64,
    /// Failed reads (retried later).
    pub read_errors: u64,
    /// Scans run.
    pub scans: u64,
    /// Events acknowledged as accepted.
    pub acks_accepted: u64,
    /// Events acknowledged as discarded on purpose.
    pub acks_discarded: u64,
    /// Events whose token was dropped undecided (their offset stays held).
    pub acks_abandoned: u64,
    /// Registry writes.
    pub registry_writes: u64,
    /// Failed registry writes.
    pub registry_write_errors: u64,
    /// Files open now.
    pub open_files: u64,
    /// Files tracked now.
    pub tracked_files: u64,
    /// Entries waiting for more chunks now.
    pub pending_entries: u64,
    /// Events waiting for acknowledgement now.
    pub inflight_events: u64,
}

/// The container a file belongs to, as a key for joining partial entries, and its
/// container id when the path names one.
///
/// `/var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log` and
/// `/var/lib/docker/containers/<id>/<id>-json.log` give the container id. Any other file
/// is keyed by its real path without kubelet's rotation suffix (`0.log.<timestamp>` →
/// `0.log`), so a rotated file and its successor share the key.
pub fn container_of(shown: &Path, real: &Path) -> (Arc<str>, Option<Arc<str>>) {
    let is_id = is_container_id;
    for p in [shown, real] {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Some((_, id)) = stem.rsplit_once('-') {
                if is_id(id) && stem.matches('_').count() >= 2 {
                    let id: Arc<str> = Arc::from(id);
                    return (id.clone(), Some(id));
                }
            }
        }
        if let Some(id) = name.strip_suffix("-json.log") {
            if is_id(id) {
                let id: Arc<str> = Arc::from(id);
                return (id.clone(), Some(id));
            }
        }
    }
    let text = real.to_string_lossy();
    let key = match text.rfind(".log.") {
        Some(i) if !text[i + 5..].contains('/') => &text[..i + 4],
        _ => &text,
    };
    (Arc::from(key), None)
}

/// Whether `s` is a container id: 64 hex digits.
pub(crate) fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_keys_table() {
        let id = "3f1c2e9a7b6d4c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";
        let cases: Vec<(String, String, String, Option<&str>)> = vec![
            (
                format!("/var/log/containers/web-7d9_shop_app-{id}.log"),
                "/var/log/pods/shop_web_u/app/0.log".into(),
                id.into(),
                Some(id),
            ),
            (
                format!("/var/lib/docker/containers/{id}/{id}-json.log"),
                format!("/var/lib/docker/containers/{id}/{id}-json.log"),
                id.into(),
                Some(id),
            ),
            (
                "/var/log/pods/shop_web_u/app/0.log.20261124-091500".into(),
                "/var/log/pods/shop_web_u/app/0.log.20261124-091500".into(),
                "/var/log/pods/shop_web_u/app/0.log".into(),
                None,
            ),
            (
                "/var/log/app.log".into(),
                "/var/log/app.log".into(),
                "/var/log/app.log".into(),
                None,
            ),
            (
                "/x/a_b_c-notanid.log".into(),
                "/x/a_b_c-notanid.log".into(),
                "/x/a_b_c-notanid.log".into(),
                None,
            ),
        ];
        for (shown, real, key, cid) in cases {
            let (k, c) = container_of(Path::new(&shown), Path::new(&real));
            assert_eq!(&*k, key, "{shown}");
            assert_eq!(c.as_deref(), cid, "{shown}");
        }
    }
}
