//! What the registry saves for each file, from the entries not yet acknowledged.
//!
//! An entry holds, in every file it has chunks in, the offset where its first chunk there
//! starts ([`Holds`]); the hold goes when its event is acknowledged ([`Core::drain_acks`]).
//! The offset saved for a file is its lowest hold, or the end of what was read when there
//! is none ([`shipped`]). Acknowledged entries that a restart would read again in part
//! leave ranges of chunks to skip ([`carry_skips`]), and entries that may go on in a later
//! file mark their stream open there ([`open_streams`]).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::sync::Mutex;
use std::time::Instant;

use logtide_container_log::Stream;
use logtide_event::{AckOutcome, Acknowledge, Timestamp};
use rustc_hash::FxHashMap;

use super::discovery::{find_by_id, find_same};
use super::resume::Skip;
use super::{
    stream_index, AckedEntry, Core, FileKey, FileProgress, SkipRange, Status, Tailer, Track,
};
use crate::identity::{gzip_head, prefix_hash, FileId};
use crate::registry::{Registry, RegistryEntry};
use crate::Error;

/// How soon the registry is written after a rotated file was read to its end and
/// acknowledged (instead of `registry.flush`, when that is longer).
const URGENT_REGISTRY_WRITE: std::time::Duration = std::time::Duration::from_millis(200);

/// How often the registry forgets files that were finished and are deleted from disk.
const FORGET_DELETED_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Acknowledgements received from sinks, drained by [`Tailer::commit`].
///
/// Aligned to 128 bytes so that in its `Arc` the reference counts (changed by the input
/// thread for every event's token) and the lock (taken by the sinks' threads) are on
/// different cache lines: sharing one made each side's writes evict the other's.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct AckQueue {
    done: Mutex<Vec<(u64, AckOutcome)>>,
}

impl Acknowledge for AckQueue {
    fn acknowledge(&self, id: u64, outcome: AckOutcome) {
        // A poisoned lock only means another thread panicked while pushing; the data is a
        // plain vector and still usable.
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.push((id, outcome));
    }

    fn acknowledge_many(&self, ids: &[u64], outcome: AckOutcome) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.extend(ids.iter().map(|&id| (id, outcome)));
    }
}

/// Events in flight, by sequence number: a window that starts at the oldest event not yet
/// acknowledged (acknowledgements come mostly in order, so this stays small and needs no
/// hashing).
#[derive(Debug, Default)]
pub(super) struct Inflight {
    base: u64,
    slots: std::collections::VecDeque<Option<Track>>,
    len: usize,
}

impl Inflight {
    pub(super) fn insert(&mut self, seq: u64, track: Track) {
        if self.slots.is_empty() {
            self.base = seq;
        }
        // Sequence numbers are handed out in order, so `seq` is past the end.
        let index = (seq - self.base) as usize;
        while self.slots.len() < index {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(track));
        self.len += 1;
    }

    pub(super) fn remove(&mut self, seq: u64) -> Option<Track> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let track = self.slots.get_mut(index)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(track)
    }

    /// The tracks in flight, oldest first.
    pub(super) fn tracks(&self) -> impl Iterator<Item = &Track> + '_ {
        self.slots.iter().flatten()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Per file, the offsets where entries not yet acknowledged start, each counted once per
/// entry that holds it.
///
/// A file is read front to back, so its holds come in increasing order and are mostly
/// released in that order too: each file's are a sorted queue of `(offset, count)`, with
/// a hold added at the back and released in place. A count that drops to zero is removed
/// when it reaches the front, so the front is always the lowest offset held.
#[derive(Debug, Default)]
pub(super) struct Holds(FxHashMap<FileKey, VecDeque<(u64, u32)>>);

impl Holds {
    pub(super) fn hold(&mut self, file: FileKey, offset: u64) {
        let q = self.0.entry(file).or_default();
        match q.back_mut() {
            Some(last) if last.0 == offset => last.1 += 1,
            Some(last) if last.0 > offset => {
                // An offset before the newest hold: a file read again from an earlier
                // point (a new generation keeps its own key, so this is rare).
                let at = q.partition_point(|&(o, _)| o < offset);
                match q.get_mut(at) {
                    Some(h) if h.0 == offset => h.1 += 1,
                    _ => q.insert(at, (offset, 1)),
                }
            }
            _ => q.push_back((offset, 1)),
        }
    }

    pub(super) fn release(&mut self, file: FileKey, offset: u64) {
        let Some(q) = self.0.get_mut(&file) else {
            return;
        };
        // Acknowledgements come mostly in order: the front first.
        let at = if q.front().is_some_and(|h| h.0 == offset) {
            0
        } else {
            q.partition_point(|&(o, _)| o < offset)
        };
        if let Some(h) = q.get_mut(at).filter(|h| h.0 == offset && h.1 > 0) {
            h.1 -= 1;
        }
        while q.front().is_some_and(|h| h.1 == 0) {
            q.pop_front();
        }
        if q.is_empty() {
            self.0.remove(&file);
        }
    }

    /// The lowest offset held in `file`.
    pub(super) fn lowest(&self, file: FileKey) -> Option<u64> {
        self.0.get(&file).and_then(|q| q.front()).map(|h| h.0)
    }

    /// Whether an entry not yet acknowledged holds `file`.
    pub(super) fn holds(&self, file: FileKey) -> bool {
        self.0.contains_key(&file)
    }

    /// How many holds there are, over all files.
    pub(super) fn count(&self) -> usize {
        self.0
            .values()
            .flat_map(|q| q.iter())
            .map(|&(_, n)| n as usize)
            .sum()
    }
}

/// Where a file would be read again from after a restart: its lowest hold, or the end of
/// what was read when nothing holds it.
pub(super) fn shipped(lowest_hold: Option<u64>, read_offset: u64) -> u64 {
    lowest_hold.map_or(read_offset, |h| h.min(read_offset))
}

/// Keeps the acknowledged entries that a restart, reading each file again from
/// `reread_from`, would read at least in part, and returns per file the ranges of their
/// chunks it would read again, to be skipped. An entry a restart would read whole is kept
/// (until reading passes it) but skips nothing: it is read and shipped again whole, unless
/// it stands for ranges carried over from the registry (`pseudo`), which are always skipped.
pub(super) fn carry_skips(
    acked: &mut Vec<AckedEntry>,
    reread_from: impl Fn(FileKey) -> u64,
) -> HashMap<FileKey, Vec<SkipRange>> {
    let mut skips: HashMap<FileKey, Vec<SkipRange>> = HashMap::new();
    acked.retain(|e| {
        let relevant = e.spans.iter().any(|s| s.end > reread_from(s.file));
        if !relevant {
            return false;
        }
        let whole = !e.pseudo && e.spans.iter().all(|s| s.start >= reread_from(s.file));
        if !whole {
            for s in e.spans.iter().filter(|s| s.end > reread_from(s.file)) {
                skips.entry(s.file).or_default().push(SkipRange {
                    stream: s.stream,
                    start: s.start,
                    end: s.end,
                });
            }
        }
        true
    });
    skips
}

/// Per file, the streams with an entry not yet acknowledged that may go on in a later
/// file: pending (every file it holds), or in flight with chunks in a later file (every
/// file but its last).
pub(super) fn open_streams<'a>(
    pending: impl IntoIterator<Item = (Stream, &'a Track)>,
    inflight: impl IntoIterator<Item = &'a Track>,
) -> HashMap<FileKey, [bool; 2]> {
    let mut open: HashMap<FileKey, [bool; 2]> = HashMap::new();
    for (stream, track) in pending {
        for (file, _) in &track.holds {
            open.entry(*file).or_default()[stream_index(stream)] = true;
        }
    }
    for track in inflight {
        if let Some((last, rest)) = track.spans.split_last() {
            for span in rest.iter().filter(|s| s.file != last.file) {
                open.entry(span.file).or_default()[stream_index(span.stream)] = true;
            }
        }
    }
    open
}

/// Per file, when the oldest event in flight that holds it was read, and when the oldest
/// line among those events was written. `inflight` is in read order.
pub(super) fn oldest_inflight<'a>(
    inflight: impl IntoIterator<Item = &'a Track>,
) -> HashMap<FileKey, (Instant, Timestamp)> {
    let mut oldest: HashMap<FileKey, (Instant, Timestamp)> = HashMap::new();
    for track in inflight {
        for (file, _) in &track.holds {
            let o = oldest.entry(*file).or_insert((track.since, track.written));
            o.1 = o.1.min(track.written);
        }
    }
    oldest
}

/// Whether a compressed file of `e`'s rotation sequence, in its directory, holds the file
/// `e` saved (its first bytes are the saved fingerprint).
fn compressed_copy_exists(e: &RegistryEntry) -> bool {
    let Some(fp) = e.fingerprint.as_ref().filter(|fp| fp.len > 0) else {
        return false;
    };
    let (Some(dir), Some(name)) = (e.path.parent(), e.path.file_name().and_then(|n| n.to_str()))
    else {
        return false;
    };
    let base = crate::rotation::parse(name).base.to_owned();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|d| {
        let name = d.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        let r = crate::rotation::parse(name);
        r.gzipped && r.base == base && gzip_head(&d.path()).is_some_and(|head| fp.starts(&head))
    })
}

/// The entries the registry may forget once their file is also deleted from disk: those of
/// finished files (`removed`) that are not being read (`tracked`), except the newest entry
/// of each container, from which a restart follows the container's sequence, and an entry
/// with a gap before it while a file of its container read before it is not finished (a
/// restart reads that file's entries again, and cuts them at the gap).
pub(super) fn forgettable(
    registry: &Registry,
    tracked: impl Fn(FileId) -> bool,
) -> Vec<&RegistryEntry> {
    let mut newest: HashMap<&str, Timestamp> = HashMap::new();
    for e in registry.entries() {
        let c = e.container.as_deref().unwrap_or("");
        let t = newest.entry(c).or_insert(e.updated);
        *t = (*t).max(e.updated);
    }
    let gaps = registry.gaps_needed();
    registry
        .entries()
        .filter(|e| e.removed.is_some() && !tracked(e.id()))
        .filter(|e| newest.get(e.container.as_deref().unwrap_or("")) != Some(&e.updated))
        .filter(|e| !gaps.contains(&e.id()))
        .collect()
}

impl Core {
    /// Applies acknowledgements received so far.
    pub(super) fn drain_acks(&mut self) {
        let done = std::mem::take(&mut *self.acks.done.lock().unwrap_or_else(|p| p.into_inner()));
        for (seq, outcome) in done {
            let Some(track) = self.inflight.remove(seq) else {
                continue;
            };
            match outcome {
                AckOutcome::Abandoned => {
                    // The event is not done: its holds stay, so its offset is re-read after
                    // a restart.
                    self.stats.acks_abandoned += 1;
                    continue;
                }
                AckOutcome::Discarded { .. } => self.stats.acks_discarded += 1,
                _ => self.stats.acks_accepted += 1,
            }
            for (file, offset) in &track.holds {
                self.holds.release(*file, *offset);
            }
            if track.chunks > 1 {
                self.acked.push(AckedEntry {
                    spans: track.spans.into_vec(),
                    pseudo: false,
                });
            }
        }
    }
}

impl Tailer {
    /// Whether the registry's flush interval (shorter when a write is urgent) has passed
    /// since it was last written.
    fn registry_write_due(&self, now: Instant) -> bool {
        let every = if self.urgent_write {
            self.registry_config.flush.min(URGENT_REGISTRY_WRITE)
        } else {
            self.registry_config.flush
        };
        self.last_registry_write
            .is_none_or(|t| now.duration_since(t) >= every)
    }

    /// Applies acknowledgements; when `flush` has elapsed (or `force`, or a file is done
    /// with) updates the registry and writes it. Also cleans the registry and forgets
    /// finished files.
    pub fn commit(&mut self, now: Instant, force: bool) -> Result<(), Error> {
        self.core.drain_acks();
        self.give_up_on_removed(now);
        // The registry is brought up to date when it is written: between writes nothing
        // reads the entries of the files being tracked, so working them out at every poll
        // (a read of each file's prefix, a stat, the open streams of every entry in flight)
        // was done again before anything used it. A file done with is dealt with at once.
        let finishing = self.files.iter().any(|(&key, f)| {
            (f.superseded || f.status == Status::Finished) && !self.core.holds.holds(key)
        });
        if !(force || finishing || self.registry_write_due(now)) {
            return Ok(());
        }
        let wall = Timestamp::now();

        // Where each file would be read again from after a restart. Old generations
        // (copytruncate) are never read again.
        let offsets: HashMap<FileKey, u64> = self
            .files
            .iter()
            .filter(|(_, f)| !f.superseded)
            .map(|(&k, f)| (k, shipped(self.core.holds.lowest(k), f.read_offset)))
            .collect();
        let reread_from = |file: FileKey| offsets.get(&file).copied().unwrap_or(u64::MAX);
        // Acknowledged entries that a restart would read only partly: skip their chunks.
        let mut skips = carry_skips(&mut self.core.acked, reread_from);
        let open = open_streams(
            self.core
                .pending
                .iter()
                .map(|((_, stream), t)| (*stream, t)),
            self.core.inflight.tracks(),
        );
        let mut urgent = false;
        let mut finished_done = Vec::new();
        for (&key, f) in self.files.iter_mut() {
            if f.superseded {
                if !self.core.holds.holds(key) {
                    finished_done.push(key);
                }
                continue;
            }
            let offset = offsets.get(&key).copied().unwrap_or(f.read_offset);
            let mut skip = skips.remove(&key).unwrap_or_default();
            skip.sort_unstable();
            skip.dedup();
            // Removed: finished (read to its end after it was rotated away) and every entry
            // of it acknowledged. A file rotated away but not yet drained is not, so that a
            // restart that finds it deleted counts it as lost.
            let removed = f.status == Status::Finished && !self.core.holds.holds(key);
            // Also when the file was renamed (rotated) or its fingerprint grew, so that a
            // restart finds it where it is and knows it.
            let open_streams: Vec<Stream> = [Stream::Stdout, Stream::Stderr]
                .into_iter()
                .filter(|st| open.get(&key).is_some_and(|o| o[stream_index(*st)]))
                .collect();
            let changed = f.saved.as_ref() != Some(&(offset, skip.clone()))
                || self.registry.get(f.id).is_none_or(|e| {
                    e.path != f.path
                        || e.fingerprint != f.fingerprint
                        || e.open != open_streams
                        || e.gap_before != f.after_gap
                        || e.order != Some(f.order)
                });
            // While a skip inferred on resume has not found its end, the registry keeps no
            // check hash, so that the next start infers again from the same offset.
            let inferring = f.skip.contains(&Skip::UntilFull);
            if changed {
                if f.reader.is_none() {
                    // Closed: where it is now. A numbered rotation renames rotated files
                    // too, and its name may now be another file's.
                    if let Some(moved) =
                        find_same(&f.path, f.id, f.fingerprint.as_ref()).filter(|p| *p != f.path)
                    {
                        f.path = moved;
                    }
                }
                let prefix = match f.reader.as_ref() {
                    _ if inferring => None,
                    Some(r) => prefix_hash(&r.file, offset).ok(),
                    None => File::open(&f.path)
                        .ok()
                        .filter(|file| FileId::of_file(file).is_ok_and(|id| id == f.id))
                        .and_then(|file| prefix_hash(&file, offset).ok()),
                };
                let previous_removed = self.registry.get(f.id).and_then(|e| e.removed);
                let size = f
                    .reader
                    .as_ref()
                    .and_then(|r| r.file.metadata().ok())
                    .map(|m| m.len());
                let shown_path =
                    (*f.shown_path != *f.path.to_string_lossy()).then(|| f.shown_path.to_string());
                self.registry.insert(RegistryEntry {
                    path: f.path.clone(),
                    shown_path,
                    dev: f.id.dev,
                    ino: f.id.ino,
                    fingerprint: f.fingerprint,
                    offset,
                    size,
                    open: open_streams,
                    gap_before: f.after_gap,
                    prefix,
                    skip: skip.clone(),
                    container: Some(f.container.to_string()),
                    order: Some(f.order),
                    updated: wall,
                    removed: if removed {
                        previous_removed.or(Some(wall))
                    } else {
                        None
                    },
                });
                // A file done with is saved soon: a restart must not look for it after the
                // runtime has compressed or deleted it.
                urgent |= removed && previous_removed.is_none();
                f.saved = Some((offset, skip));
                self.registry_dirty = true;
            }
            if f.status == Status::Finished && !self.core.holds.holds(key) {
                if let Some(e) = self.registry.get(f.id) {
                    if e.removed.is_none() {
                        let mut e = e.clone();
                        e.removed = Some(wall);
                        self.registry.insert(e);
                        self.registry_dirty = true;
                        urgent = true;
                    }
                }
                finished_done.push(key);
            }
        }
        for key in finished_done {
            if let Some(f) = self.files.remove(&key) {
                if self.by_id.get(&f.id) == Some(&key) {
                    self.by_id.remove(&f.id);
                }
                self.untrack(&f.shown_path);
            }
        }
        if self
            .last_forget
            .is_none_or(|t| now.duration_since(t) >= FORGET_DELETED_EVERY)
        {
            self.last_forget = Some(now);
            let mut dropped = self
                .registry
                .clean(wall, self.registry_config.clean_removed_after);
            // Files finished and deleted from disk (rotated out) need no saved position:
            // forgetting them keeps the registry the size of what is on disk, and a new file
            // that gets the inode is never taken for the old one. One whose compressed copy
            // is still there is kept until that goes too: it is what tells the copy from a
            // file lost before it was read.
            let deleted: Vec<FileId> =
                forgettable(&self.registry, |id| self.by_id.contains_key(&id))
                    .into_iter()
                    .filter(|e| find_by_id(&e.path, e.id()).is_none())
                    .filter(|e| !compressed_copy_exists(e))
                    .map(RegistryEntry::id)
                    .collect();
            for id in deleted {
                self.registry.remove(id);
                dropped += 1;
            }
            // Compressed files looked at and deleted since (renamed ones are looked up).
            self.judged_gz
                .retain(|(id, _), path| match find_by_id(path, *id) {
                    Some(at) => {
                        *path = at;
                        true
                    }
                    None => false,
                });
            if dropped > 0 {
                self.registry_dirty = true;
            }
        }
        self.urgent_write |= urgent;
        if self.registry_dirty && (force || self.registry_write_due(now)) {
            match self.registry.save(&self.registry_config.path) {
                Ok(()) => {
                    self.registry_dirty = false;
                    self.urgent_write = false;
                    self.last_registry_write = Some(now);
                    self.core.stats.registry_writes += 1;
                }
                Err(e) => {
                    self.core.stats.registry_write_errors += 1;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Positions held by entries that are pending, in flight, or were abandoned undecided:
    /// zero means everything read so far is acknowledged.
    pub fn held_positions(&self) -> usize {
        self.core.holds.count()
    }

    /// Whether events are still waiting for acknowledgement.
    pub fn has_inflight(&self) -> bool {
        !self.core.inflight.is_empty()
    }

    /// How far each file being read is shipped, for self-monitoring. Costs one `fstat`
    /// per file and a walk over the events in flight: call it every few seconds, not per
    /// batch.
    pub fn progress(&self) -> Vec<FileProgress> {
        let oldest = oldest_inflight(self.core.inflight.tracks());
        self.files
            .iter()
            .filter(|(_, f)| !f.superseded)
            .map(|(&key, f)| {
                let size = match &f.reader {
                    Some(r) => r.file.metadata().ok().map(|m| m.len()),
                    None => std::fs::metadata(&f.path)
                        .ok()
                        .filter(|m| FileId::of(m) == f.id)
                        .map(|m| m.len()),
                };
                FileProgress {
                    path: f.shown_path.clone(),
                    size,
                    read: f.read_offset,
                    shipped: shipped(self.core.holds.lowest(key), f.read_offset),
                    oldest_unshipped: oldest.get(&key).map(|o| o.0),
                    oldest_written: oldest.get(&key).map(|o| o.1),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::Span;
    use super::*;
    use crate::TailConfig;

    /// A track that holds `holds`, with spans `(file, start, end, stream)`; `end` tells
    /// tracks apart.
    fn track(holds: &[(FileKey, u64)], spans: &[(FileKey, u64, u64, Stream)], end: u64) -> Track {
        Track {
            holds: holds.iter().copied().collect(),
            spans: spans
                .iter()
                .map(|&(file, start, end, stream)| Span {
                    file,
                    start,
                    end,
                    stream,
                })
                .collect(),
            chunks: spans.len() as u32,
            cut: false,
            end,
            since: Instant::now(),
            written: Timestamp::UNIX_EPOCH,
            lost_head: false,
        }
    }

    fn acked(spans: &[(FileKey, u64, u64)], pseudo: bool) -> AckedEntry {
        AckedEntry {
            spans: spans
                .iter()
                .map(|&(file, start, end)| Span {
                    file,
                    start,
                    end,
                    stream: Stream::Stdout,
                })
                .collect(),
            pseudo,
        }
    }

    fn range(start: u64, end: u64) -> SkipRange {
        SkipRange {
            stream: Stream::Stdout,
            start,
            end,
        }
    }

    proptest::proptest! {
        /// The queue gives what a sorted map of counts gives, whatever the order of holds
        /// and releases (a release of an offset not held is ignored by both).
        #[test]
        fn holds_agree_with_a_sorted_map(ops in proptest::collection::vec((proptest::bool::ANY, 0u64..12), 0..200)) {
            let (mut holds, mut model) = (Holds::default(), std::collections::BTreeMap::<u64, u32>::new());
            for (hold, offset) in ops {
                if hold {
                    holds.hold(3, offset);
                    *model.entry(offset).or_insert(0) += 1;
                } else {
                    holds.release(3, offset);
                    if let Some(n) = model.get_mut(&offset) {
                        *n -= 1;
                        if *n == 0 {
                            model.remove(&offset);
                        }
                    }
                }
                proptest::prop_assert_eq!(holds.lowest(3), model.keys().next().copied());
                proptest::prop_assert_eq!(holds.holds(3), !model.is_empty());
                proptest::prop_assert_eq!(holds.count(), model.values().map(|&n| n as usize).sum::<usize>());
            }
        }
    }

    #[test]
    fn holds_count_each_entry_and_give_the_lowest() {
        let mut holds = Holds::default();
        holds.hold(1, 10);
        holds.hold(1, 10);
        holds.hold(1, 5);
        holds.hold(2, 7);
        assert_eq!(holds.count(), 4);
        assert_eq!(holds.lowest(1), Some(5));
        holds.release(1, 5);
        assert_eq!(holds.lowest(1), Some(10));
        // Held by two entries: one release leaves it held.
        holds.release(1, 10);
        assert_eq!(holds.lowest(1), Some(10));
        assert!(holds.holds(1));
        holds.release(1, 10);
        assert_eq!(holds.lowest(1), None);
        assert!(!holds.holds(1));
        // Releasing what is not held changes nothing.
        holds.release(1, 10);
        holds.release(2, 8);
        assert_eq!(holds.lowest(2), Some(7));
        assert_eq!(holds.count(), 1);
    }

    #[test]
    fn the_saved_offset_is_the_lowest_hold_or_what_was_read() {
        assert_eq!(shipped(None, 100), 100);
        assert_eq!(shipped(Some(40), 100), 40);
        assert_eq!(shipped(Some(100), 100), 100);
        assert_eq!(shipped(Some(0), 100), 0);
        // Never past what was read.
        assert_eq!(shipped(Some(120), 100), 100);
    }

    #[test]
    fn inflight_removes_in_any_order() {
        let mut inflight = Inflight::default();
        for seq in 5..8 {
            inflight.insert(seq, track(&[], &[], seq));
        }
        assert_eq!(inflight.len(), 3);
        assert_eq!(inflight.remove(6).map(|t| t.end), Some(6));
        assert!(inflight.remove(6).is_none());
        let ends: Vec<u64> = inflight.tracks().map(|t| t.end).collect();
        assert_eq!(ends, [5, 7]);
        assert_eq!(inflight.remove(5).map(|t| t.end), Some(5));
        assert!(inflight.remove(4).is_none());
        assert!(inflight.remove(8).is_none());
        assert_eq!(inflight.len(), 1);
        assert_eq!(inflight.remove(7).map(|t| t.end), Some(7));
        assert!(inflight.is_empty());
        // Empty, it starts again at the next number.
        inflight.insert(9, track(&[], &[], 9));
        inflight.insert(11, track(&[], &[], 11));
        assert_eq!(inflight.remove(11).map(|t| t.end), Some(11));
        assert_eq!(inflight.remove(9).map(|t| t.end), Some(9));
        assert!(inflight.is_empty());
    }

    #[test]
    fn acknowledged_entries_read_again_in_part_leave_ranges_to_skip() {
        // File 1 is read again from 100, file 2 from 0, file 3 never.
        let reread_from = |file: FileKey| match file {
            1 => 100,
            2 => 0,
            _ => u64::MAX,
        };
        let mut entries = vec![
            // Before the offset: forgotten.
            acked(&[(1, 40, 100)], false),
            // In a file not read again: forgotten.
            acked(&[(3, 0, 50)], false),
            // After the offset: read again whole, nothing to skip.
            acked(&[(1, 100, 150)], false),
            // Across the offset: its chunks after it are skipped.
            acked(&[(1, 80, 120)], false),
            // Across files: what is in file 2 is skipped.
            acked(&[(1, 60, 90), (2, 0, 30)], false),
            // Ranges carried over from the registry are always skipped.
            acked(&[(1, 130, 140)], true),
        ];
        let skips = carry_skips(&mut entries, reread_from);
        assert_eq!(entries.len(), 4);
        assert_eq!(
            skips,
            HashMap::from([
                (1, vec![range(80, 120), range(130, 140)]),
                (2, vec![range(0, 30)]),
            ])
        );
    }

    #[test]
    fn streams_are_open_where_an_entry_may_go_on_in_a_later_file() {
        let (out, err) = (Stream::Stdout, Stream::Stderr);
        // Pending: every file it holds.
        let pending = track(&[(1, 10), (2, 0)], &[(1, 10, 20, out), (2, 0, 5, out)], 0);
        // In flight across files: every file but the last.
        let across = track(&[(2, 5), (3, 0)], &[(2, 5, 9, err), (3, 0, 4, err)], 0);
        // In flight within one file: none.
        let within = track(&[(4, 0)], &[(4, 0, 4, err), (4, 4, 8, err)], 0);
        let open = open_streams([(out, &pending)], [&across, &within]);
        assert_eq!(open, HashMap::from([(1, [true, false]), (2, [true, true])]));
    }

    #[test]
    fn the_oldest_event_in_flight_is_the_first_read_and_the_earliest_written() {
        let mut first = track(&[(1, 0)], &[], 0);
        first.written = Timestamp::new(20, 0).unwrap();
        let mut second = track(&[(1, 10), (2, 0)], &[], 1);
        second.since = first.since + std::time::Duration::from_secs(1);
        second.written = Timestamp::new(10, 0).unwrap();
        let oldest = oldest_inflight([&first, &second]);
        assert_eq!(oldest[&1], (first.since, second.written));
        assert_eq!(oldest[&2], (second.since, second.written));
        assert_eq!(oldest.len(), 2);
    }

    #[test]
    fn finished_files_are_forgotten_but_the_newest_of_each_container_and_needed_gaps() {
        let entry = |ino, container: Option<&str>, updated, removed: bool| RegistryEntry {
            path: PathBuf::from(format!("/d/{ino}.log")),
            shown_path: None,
            dev: 1,
            ino,
            fingerprint: None,
            offset: 0,
            size: None,
            open: Vec::new(),
            gap_before: false,
            prefix: None,
            skip: Vec::new(),
            container: container.map(str::to_owned),
            order: None,
            updated: Timestamp::new(updated, 0).unwrap(),
            removed: removed.then_some(Timestamp::new(updated, 0).unwrap()),
        };
        let mut registry = Registry::default();
        for e in [
            // Container a: finished, then finished and newest.
            entry(1, Some("a"), 10, true),
            entry(2, Some("a"), 20, true),
            // Container b: finished but still read, and not finished.
            entry(3, Some("b"), 10, true),
            entry(4, Some("b"), 20, false),
            // No container: finished, and not finished but newer.
            entry(5, None, 10, true),
            entry(6, None, 20, false),
        ] {
            registry.insert(e);
        }
        let tracked = |id: FileId| id.ino == 3;
        let inos: Vec<u64> = forgettable(&registry, tracked)
            .iter()
            .map(|e| e.ino)
            .collect();
        assert_eq!(inos, [1, 5]);

        // Container c: a file not finished (its entries not all acknowledged), then a
        // finished one with a gap before it (a file between them was lost), then the
        // newest. The gap stays while the file before it is not finished.
        let ordered = |ino, updated, removed, order, gap_before| RegistryEntry {
            order: Some(order),
            gap_before,
            ..entry(ino, Some("c"), updated, removed)
        };
        let mut registry = Registry::default();
        registry.insert(ordered(7, 10, false, 1, false));
        registry.insert(ordered(8, 20, true, 3, true));
        registry.insert(ordered(9, 30, false, 4, false));
        assert!(forgettable(&registry, |_| false).is_empty());
        // Once the file before the gap is finished, the gap goes with its entry.
        registry.insert(ordered(7, 10, true, 1, false));
        let inos: Vec<u64> = forgettable(&registry, |_| false)
            .iter()
            .map(|e| e.ino)
            .collect();
        assert_eq!(inos, [7, 8]);
    }

    #[test]
    fn acknowledgements_release_holds_unless_abandoned() {
        let mut core = Core::new(&TailConfig::default());
        let out = Stream::Stdout;
        let entries = [
            track(&[(1, 0)], &[(1, 0, 10, out), (1, 10, 20, out)], 0),
            track(&[(1, 20)], &[(1, 20, 30, out)], 1),
            track(&[(2, 0)], &[(2, 0, 10, out)], 2),
        ];
        for (seq, t) in (0..).zip(entries) {
            for &(file, offset) in &t.holds {
                core.holds.hold(file, offset);
            }
            core.inflight.insert(seq, t);
        }
        core.acks.acknowledge(0, AckOutcome::Accepted);
        core.acks.acknowledge(1, AckOutcome::Abandoned);
        core.acks
            .acknowledge_many(&[2, 9], AckOutcome::Discarded { reason: "test" });
        core.drain_acks();
        assert!(core.inflight.is_empty());
        // The abandoned entry still holds its offset: a restart reads it again.
        assert_eq!(core.holds.lowest(1), Some(20));
        assert!(!core.holds.holds(2));
        assert_eq!(core.holds.count(), 1);
        // Of the entries done, the one of several chunks is remembered.
        assert_eq!(core.acked.len(), 1);
        assert_eq!(core.acked[0].spans.len(), 2);
        assert!(!core.acked[0].pseudo);
        let s = core.stats;
        assert_eq!(
            (s.acks_accepted, s.acks_abandoned, s.acks_discarded),
            (1, 1, 1)
        );
        // Acknowledgements are taken once.
        core.drain_acks();
        assert_eq!(core.stats.acks_accepted, 1);
    }
}
