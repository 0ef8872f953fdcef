//! Where reading starts in a file the registry knows, and what happens after a restart to
//! the files it knows that are no longer where discovery looks.
//!
//! [`resume_from`] decides, from a registry entry and what the file holds now
//! ([`FileFacts`]), whether reading goes on at the saved offset, at the next line start,
//! or from the start of a file that changed; [`skip_after`] tells from the lines before an
//! offset which streams are inside an entry there. [`Tailer::resume_orphans`] drains the
//! files rotated away while logtide was stopped, in the order [`saved_order`] gives.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use logtide_container_log::{parse_line, Format};
use logtide_event::Timestamp;

use super::discovery::{find_by_id, sequence_order, starts_as, After, Inherit, Refollow, Via};
use super::{stream_index, Started, Tailer};
use crate::identity::{fingerprint_matches, prefix_hash, read_range, FileId, RangeHash};
use crate::registry::{RegistryEntry, SkipRange};
use crate::rotation::{self, Rank};
use crate::{container_of, is_container_id};

/// How far back resume looks for the state of partial entries when it must infer it.
const LOOKBACK_BYTES: u64 = 64 * 1024;

/// Whether lines of a stream are skipped on resume because they continue an entry that
/// was shipped before the resume offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Skip {
    None,
    /// Skip lines up to and including the next full (`F`) chunk.
    UntilFull,
}

/// What resume needs to know about a file the registry knows. Each question is asked
/// only when the decision comes to it, as most need reads.
pub(super) trait FileFacts {
    /// The file's length.
    fn len(&self) -> u64;
    /// Whether the file still starts with the bytes `fingerprint` was taken from.
    fn starts_with(&self, fingerprint: &RangeHash) -> bool;
    /// Whether the byte before `offset` (at least 1) is a newline.
    fn newline_before(&self, offset: u64) -> bool;
    /// Whether the bytes just before `offset` still hash to `prefix`.
    fn prefix_is(&self, offset: u64, prefix: &RangeHash) -> bool;
    /// The offset just past the next newline at or after `from` (the length when none).
    fn next_line_start(&self, from: u64) -> u64;
    /// Per stream, whether `offset` is inside an entry (see [`skip_after`]).
    fn skip_at(&self, offset: u64) -> [Skip; 2];
}

/// Where reading a file the registry knows starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Resume {
    /// At `offset`, skipping the stream's next chunks up to a full one where `skip` says
    /// so, and the chunks in `skip_ranges`.
    At {
        offset: u64,
        skip: [Skip; 2],
        skip_ranges: Vec<SkipRange>,
    },
    /// At `offset`, the next line start after the saved offset, which was inside a line.
    Realigned { offset: u64, skip: [Skip; 2] },
    /// From the start: the inode holds a new file.
    InodeReused,
    /// From the start: the file is shorter than the saved offset.
    Truncated,
    /// From the start: the bytes before the saved offset changed.
    HashMismatch,
}

/// Decides where to resume reading a file from its registry entry.
///
/// A fingerprint that no longer matches means a new file got the inode; a file shorter
/// than the saved offset was truncated. A saved offset with a check hash at a line start
/// is trusted if the hash matches. Without a check hash (older registries and imports),
/// or when the offset is not at a line start, reading goes on at the next line start, and
/// the lines before it tell which streams are inside an entry.
pub(super) fn resume_from(entry: &RegistryEntry, file: &impl FileFacts) -> Resume {
    if let Some(fp) = &entry.fingerprint {
        if !file.starts_with(fp) {
            return Resume::InodeReused;
        }
    }
    if entry.offset > file.len() {
        return Resume::Truncated;
    }
    if entry.offset == 0 {
        return Resume::At {
            offset: 0,
            skip: [Skip::None; 2],
            skip_ranges: entry.skip.clone(),
        };
    }
    let at_line_start = file.newline_before(entry.offset);
    match &entry.prefix {
        Some(prefix) if at_line_start => {
            if file.prefix_is(entry.offset, prefix) {
                Resume::At {
                    offset: entry.offset,
                    skip: [Skip::None; 2],
                    skip_ranges: entry.skip.clone(),
                }
            } else {
                Resume::HashMismatch
            }
        }
        _ if at_line_start => Resume::At {
            offset: entry.offset,
            skip: file.skip_at(entry.offset),
            skip_ranges: Vec::new(),
        },
        _ => {
            let offset = file.next_line_start(entry.offset);
            Resume::Realigned {
                offset,
                skip: file.skip_at(offset),
            }
        }
    }
}

/// Per stream, whether an offset is inside an entry, from the bytes just before it: when
/// the stream's last chunk there is partial, its next chunks up to the full one belong to
/// an entry that started before, and are skipped. `cut`: `before` starts inside a line,
/// whose piece is ignored.
pub(super) fn skip_after(before: &[u8], cut: bool) -> [Skip; 2] {
    let mut lines = before.split(|&b| b == b'\n');
    if cut {
        lines.next();
    }
    let mut last: [Option<bool>; 2] = [None, None];
    for l in lines {
        if let Ok(p) = parse_line(l, Format::Auto) {
            last[stream_index(p.stream)] = Some(p.partial);
        }
    }
    last.map(|p| {
        if p == Some(true) {
            Skip::UntilFull
        } else {
            Skip::None
        }
    })
}

/// An open file and its length, answering [`FileFacts`] by reading it.
struct OnDisk<'a> {
    file: &'a File,
    len: u64,
}

impl FileFacts for OnDisk<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn starts_with(&self, fingerprint: &RangeHash) -> bool {
        fingerprint_matches(self.file, fingerprint).unwrap_or(false)
    }

    fn newline_before(&self, offset: u64) -> bool {
        read_range(self.file, offset - 1, 1).is_ok_and(|b| b == b"\n")
    }

    fn prefix_is(&self, offset: u64, prefix: &RangeHash) -> bool {
        prefix_hash(self.file, offset).is_ok_and(|h| h == *prefix)
    }

    fn next_line_start(&self, from: u64) -> u64 {
        next_line_start(self.file, from, self.len)
    }

    fn skip_at(&self, offset: u64) -> [Skip; 2] {
        infer_skip(self.file, offset)
    }
}

/// Where a file the registry knows goes in its rotation sequence (see [`saved_order`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Place {
    /// Its rank, by the name it was found under (saved under, when gone).
    pub(super) rank: Rank,
    /// Its modification time, or when gone, the registry's last update of it.
    pub(super) time: SystemTime,
    /// Not found any more.
    pub(super) gone: bool,
    /// The path saved, to order files that tie.
    pub(super) saved: PathBuf,
    /// The read order saved (version 5 on).
    pub(super) order: Option<u64>,
}

impl Place {
    /// The rank of the name it was saved under.
    fn saved_rank(&self) -> Rank {
        let name = self
            .saved
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        rotation::parse(name).rank
    }
}

/// Orders the files the registry knows of one container oldest first, so that a gap is
/// marked before the file that follows it: in the read order saved, when every one has it.
/// Otherwise (entries saved before version 5) by rank and time ([`sequence_order`]), then
/// by saved path; except that a file gone under its base name (it was the current file
/// when saved) has no rank that tells, and goes by its last update among the others, and
/// before the file found current now (which came after it: the registry may have updated
/// the gone file after it was rotated away, and before it was deleted).
pub(super) fn saved_order<T>(mut known: Vec<(Place, T)>) -> Vec<T> {
    if known.iter().all(|(p, _)| p.order.is_some()) {
        known.sort_by_key(|(p, _)| p.order);
        return known.into_iter().map(|(_, k)| k).collect();
    }
    let (mut unplaced, mut ordered): (Vec<_>, Vec<_>) = known
        .into_iter()
        .partition(|(p, _)| p.gone && p.rank == Rank::Current);
    ordered.sort_by(|(a, _), (b, _)| {
        sequence_order(&a.rank, a.time, &b.rank, b.time).then_with(|| a.saved.cmp(&b.saved))
    });
    // A numbered file gone was saved under a name that later rotations moved on (`.1` to
    // `.2`), and its time is the registry's: it goes before the first file found whose
    // saved name was newer than its own.
    for i in 0..ordered.len() {
        let k = &ordered[i].0;
        if !k.gone || !matches!(k.rank, Rank::Numbered(_)) {
            continue;
        }
        let saved = k.saved_rank();
        let newer = ordered[..i].iter().position(|(o, _)| {
            !o.gone
                && sequence_order(&o.saved_rank(), k.time, &saved, k.time)
                    == std::cmp::Ordering::Greater
        });
        if let Some(at) = newer {
            let moved = ordered.remove(i);
            ordered.insert(at, moved);
        }
    }
    unplaced.sort_by_key(|(p, _)| p.time);
    for k in unplaced {
        let by_time = ordered.iter().position(|(o, _)| o.time > k.0.time);
        let current = ordered
            .iter()
            .position(|(o, _)| !o.gone && o.rank == Rank::Current);
        let at = by_time
            .into_iter()
            .chain(current)
            .min()
            .unwrap_or(ordered.len());
        ordered.insert(at, k);
    }
    ordered.into_iter().map(|(_, k)| k).collect()
}

/// Whether `found` can be the file saved at `saved`: a file of another sequence (or a
/// compressed copy) that got the inode is not.
pub(super) fn same_sequence(saved: &Path, found: &Path) -> bool {
    let base = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).map(|n| {
            let r = rotation::parse(n);
            (r.base.to_owned(), r.gzipped)
        })
    };
    base(found) == base(saved).map(|(b, _)| (b, false))
}

/// Whether the file with a saved entry's identity, found at `found`, is still the file
/// saved: it starts with the saved fingerprint (`starts_with`, asked only when needed). An
/// empty fingerprint (the file was empty) proves nothing: then the same path does, unless
/// the file was created after the entry was saved (`created`, where the file system keeps
/// it): a new file at the same path got the inode back, and the files rotated in between
/// come before it.
pub(super) fn same_file(
    e: &RegistryEntry,
    found: &Path,
    created: Option<SystemTime>,
    starts_with: impl FnOnce(&RangeHash) -> bool,
) -> bool {
    e.fingerprint.as_ref().is_none_or(|fp| {
        if fp.len == 0 {
            return found == e.path && created.is_none_or(|c| c <= system_time(e.updated));
        }
        starts_with(fp)
    })
}

/// The bytes lost with a file found gone after a restart: `None` when none were (it was
/// finished, or saved at its end), 0 when its size was not saved.
pub(super) fn lost_while_stopped(e: &RegistryEntry) -> Option<u64> {
    let unshipped = e.size.map(|size| size.saturating_sub(e.offset));
    (e.removed.is_none() && unshipped != Some(0)).then(|| unshipped.unwrap_or(0))
}

/// Whether a file the registry knows, found with `len` bytes, was read to its end.
pub(super) fn read_to_end(e: &RegistryEntry, len: u64) -> bool {
    len == e.offset && e.fingerprint.is_some()
}

/// When every file a container had in the registry is gone, the files written since its
/// last update follow; a second earlier, for the kernel's coarse file times.
pub(super) fn written_since(last_update: Timestamp) -> SystemTime {
    system_time(last_update)
        .checked_sub(std::time::Duration::from_secs(1))
        .unwrap_or(std::time::UNIX_EPOCH)
}

impl Tailer {
    /// Where to start reading a file the registry may know, which continuation chunks to
    /// skip there, and whether the registry saved a gap before it (the file it knows is
    /// this one).
    pub(super) fn resume_point(
        &mut self,
        file: &File,
        id: FileId,
        len: u64,
        real: &Path,
        container: &str,
    ) -> (u64, [Skip; 2], Vec<SkipRange>, bool) {
        let Some(entry) = self.registry.get(id) else {
            return (0, [Skip::None; 2], Vec::new(), false);
        };
        if entry.container.as_deref().is_some_and(|c| c != container) {
            // Another container's file had the inode (an empty one proves nothing by its
            // first bytes): this one is new, and the other's gap is not its own.
            self.core.stats.inode_reused += 1;
            tracing::info!(path = %real.display(), saved_path = %entry.path.display(),
                "inode reused by another container's file: reading it from the start");
            return (0, [Skip::None; 2], Vec::new(), false);
        }
        let gap_before = entry.gap_before;
        let (offset, skip, skip_ranges) = match resume_from(entry, &OnDisk { file, len }) {
            Resume::At {
                offset,
                skip,
                skip_ranges,
            } => (offset, skip, skip_ranges),
            Resume::Realigned { offset, skip } => {
                self.core.stats.resume_realigned += 1;
                tracing::warn!(path = %real.display(), saved = entry.offset, resumed = offset,
                    "saved offset is inside a line: resuming at the next line");
                (offset, skip, Vec::new())
            }
            Resume::InodeReused => {
                // Same inode, different file: the old one was deleted (whatever of it was
                // not read is gone, and cannot be told from a file that was finished).
                self.core.stats.inode_reused += 1;
                tracing::info!(path = %real.display(), saved_path = %entry.path.display(),
                    "inode reused by a new file: reading it from the start");
                return (0, [Skip::None; 2], Vec::new(), false);
            }
            Resume::Truncated => {
                self.core.stats.truncations += 1;
                self.core.discontinuity = true;
                tracing::warn!(path = %real.display(), saved = entry.offset, size = len,
                    "file is shorter than its saved offset (truncated while stopped): reading from the start");
                (0, [Skip::None; 2], Vec::new())
            }
            Resume::HashMismatch => {
                self.core.stats.resume_hash_mismatch += 1;
                self.core.discontinuity = true;
                tracing::warn!(path = %real.display(), offset = entry.offset,
                    "bytes before the saved offset changed: reading the file from the start");
                (0, [Skip::None; 2], Vec::new())
            }
        };
        (offset, skip, skip_ranges, gap_before)
    }

    /// After a restart, per container: the files the registry knows that are no longer at
    /// a discovered path (rotated away) and still have unread or unacknowledged data are
    /// drained first, oldest first; then the files rotated in while logtide was stopped,
    /// which the registry never saw, are started after the newest file it knows. Files the
    /// registry had not seen to their end and that are gone now are counted as lost.
    pub(super) fn resume_orphans(&mut self, now: Instant) {
        let patterns: Vec<glob::Pattern> = self
            .config
            .paths
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        type Known = (RegistryEntry, Inherit, Option<(PathBuf, fs::Metadata)>);
        let mut by_container: BTreeMap<Arc<str>, Vec<Known>> = BTreeMap::new();
        // Entries whose inode now holds another file: that file is read from the start
        // where it comes in its sequence, and saved anew.
        let mut reused: Vec<FileId> = Vec::new();
        for e in self.registry.entries() {
            if self.by_id.contains_key(&e.id()) {
                continue;
            }
            let mut found = find_by_id(&e.path, e.id())
                .and_then(|p| fs::metadata(&p).ok().map(|m| (p, m)))
                .filter(|(_, m)| m.is_file())
                .filter(|(p, _)| same_sequence(&e.path, p));
            let inherit = inherit_from_registry(e, found.as_ref().map(|(p, _)| p.as_path()));
            if let Some((path, meta)) = &found {
                let unchanged =
                    same_file(e, path, meta.created().ok(), |fp| starts_as(path, Some(fp)));
                // Another file that got the inode (or this one rewritten in place): the file
                // the registry knew is gone, and this one is read from the start where it
                // comes in its sequence.
                if !unchanged {
                    self.core.stats.inode_reused += 1;
                    reused.push(e.id());
                    found = None;
                }
            }
            by_container
                .entry(inherit.container.clone())
                .or_default()
                .push((e.clone(), inherit, found));
        }
        for id in &reused {
            self.forgotten.extend(self.registry.remove(*id));
            self.registry_dirty = true;
        }
        for (_, known) in by_container {
            // Older files first: an entry that spans a rotation starts in the older file,
            // and inode numbers say nothing about age.
            let known = saved_order(
                known
                    .into_iter()
                    .map(|k| {
                        let (e, _, found) = &k;
                        let at = found.as_ref().map_or(&e.path, |(p, _)| p);
                        let name = at.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        let place = Place {
                            rank: rotation::parse(name).rank,
                            time: match found {
                                Some((_, m)) => m.modified().unwrap_or(std::time::UNIX_EPOCH),
                                None => system_time(e.updated),
                            },
                            gone: found.is_none(),
                            saved: e.path.clone(),
                            order: e.order,
                        };
                        (place, k)
                    })
                    .collect(),
            );
            let mut gap = false;
            let mut lost_head = [false; 2];
            let mut counted = 0;
            let mut newest: Option<(Rank, SystemTime, PathBuf, Inherit, FileId)> = None;
            let mut sequence: Option<(PathBuf, String)> = None;
            let mut last_update = Timestamp::UNIX_EPOCH;
            let mut any_inherit: Option<Inherit> = None;
            for (e, inherit, found) in known {
                // Numbered again in this order, before the files started from here on (a
                // file started here takes a later number when it is saved), so that
                // entries not read again keep their place among the others.
                let e = RegistryEntry {
                    order: Some(self.new_key()),
                    ..e
                };
                if !reused.contains(&e.id()) {
                    self.registry.insert(e.clone());
                    self.registry_dirty = true;
                }
                last_update = last_update.max(e.updated);
                // A gap saved before this file cuts the entries read again from the files
                // before it, even if this one is not read again (read to its end, or gone):
                // then at the next file started.
                gap |= e.gap_before;
                any_inherit.get_or_insert_with(|| inherit.clone());
                let at = found
                    .as_ref()
                    .map_or_else(|| e.path.clone(), |(p, _)| p.clone());
                let (Some(dir), Some(name)) =
                    (at.parent(), at.file_name().and_then(|n| n.to_str()))
                else {
                    continue;
                };
                let r = rotation::parse(name);
                sequence.get_or_insert_with(|| (dir.to_owned(), r.base.to_owned()));
                let Some((path, meta)) = found else {
                    // Gone while logtide was stopped: what it had not shipped is lost (at
                    // least its size when last saved less the saved offset).
                    let lost = lost_while_stopped(&e);
                    if let Some(lost) = lost {
                        self.lose(&e.path, lost, "gone_while_stopped");
                        gap = true;
                        counted += 1;
                    }
                    // Its entries open at its end lost their rest: when counted now, or at
                    // an earlier start (its gap is kept, below).
                    if lost.is_some() || (e.gap_before && e.removed.is_some()) {
                        for st in &e.open {
                            lost_head[stream_index(*st)] = true;
                        }
                    }
                    // Counted once: from now on the entry only anchors the container's
                    // sequence (the registry forgets it once a newer file is saved). One
                    // whose inode another file took is kept aside done too, so that its
                    // compressed copy is known as read. One counted lost keeps the gap it
                    // makes, as a gap before it: a file after it may not exist yet, and
                    // another restart before that file reads the files before it again.
                    if e.removed.is_none() {
                        let mut done = e.clone();
                        done.removed = Some(Timestamp::now());
                        done.gap_before |= lost.is_some();
                        if reused.contains(&e.id()) {
                            for f in self.forgotten.iter_mut().filter(|f| f.id() == e.id()) {
                                f.removed = done.removed;
                            }
                        } else {
                            self.registry.insert(done);
                            self.registry_dirty = true;
                        }
                    }
                    continue;
                };
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                if newest.as_ref().is_none_or(|(n, m, _, _, _)| {
                    sequence_order(&r.rank, mtime, n, *m) == std::cmp::Ordering::Greater
                }) {
                    newest = Some((r.rank.clone(), mtime, path.clone(), inherit.clone(), e.id()));
                }
                // A file at a path the globs match is started here too, in its place in
                // the sequence: left to the scan that follows, it would be missed if it
                // were rotated away in between (the scan would find only its successor).
                // One read to its end is started too after a gap: what comes next in it must
                // not be joined with the entries cut by the gap (left to the scan, it would
                // be started without the gap).
                let discovered = patterns.iter().any(|p| p.matches_path(&path));
                if (read_to_end(&e, meta.len()) && !gap) || (discovered && self.excluded(&path)) {
                    continue;
                }
                let via = |at: &Path| Via::Sequence {
                    inherit: inherit.clone(),
                    current: at
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| rotation::parse(n).rank == Rank::Current),
                    gap_before: gap,
                    lost_head,
                };
                let mut started = self.start_file(now, &path, e.id(), meta.len(), via(&path));
                if started == Started::Vanished {
                    // Rotated between listing and opening: open it where it went.
                    if let Some(moved) = find_by_id(&path, e.id()) {
                        started = self.start_file(now, &moved, e.id(), meta.len(), via(&moved));
                    }
                }
                if started == Started::Yes {
                    gap = false;
                    lost_head = [false; 2];
                    counted = 0;
                }
            }
            let Some((dir, base)) = sequence else {
                continue;
            };
            // Files rotated in while logtide was stopped.
            let (after, inherit, from) = match newest {
                Some((rank, mtime, path, inherit, id)) => {
                    // Until a file is started after it, the newest file known is where the
                    // container's sequence goes on from.
                    let group = self.core.group_of(&inherit.container);
                    self.newest
                        .entry(group)
                        .or_insert_with(|| (path, None, inherit.clone()));
                    (After::after_saved(rank, mtime), inherit, Some(id))
                }
                None => {
                    // Every file the registry knew is gone: what was written since its last
                    // update follows.
                    let since = written_since(last_update);
                    let Some(inherit) = any_inherit else {
                        continue;
                    };
                    let group = self.core.group_of(&inherit.container);
                    self.newest
                        .entry(group)
                        .or_insert_with(|| (dir.join(&base), Some(since), inherit.clone()));
                    (After::Modified(since), inherit, None)
                }
            };
            self.start_sequence(
                now,
                Refollow {
                    dir,
                    base,
                    after,
                    inherit,
                    gap,
                    lost_head,
                    counted,
                    from,
                },
            );
        }
    }
}

/// A registry time as a file time.
fn system_time(t: Timestamp) -> SystemTime {
    let secs = u64::try_from(t.unix_secs()).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::new(secs, t.subsec_nanos())
}

/// What a file the registry knows takes into its events: the path it was shown under and
/// its container, as saved (older registries have no shown path: then the file's own).
pub(super) fn inherit_from_registry(e: &RegistryEntry, found: Option<&Path>) -> Inherit {
    let real = found.unwrap_or(&e.path);
    // Without a shown path, the file was shown under its path as saved (it may have been
    // renamed since).
    let shown = e
        .shown_path
        .as_deref()
        .map_or_else(|| e.path.clone(), PathBuf::from);
    let (key, container_id) = container_of(&shown, real);
    let container: Arc<str> = e.container.as_deref().map_or(key, Arc::from);
    let container_id =
        container_id.or_else(|| is_container_id(&container).then(|| container.clone()));
    Inherit {
        shown_path: Arc::from(shown.to_string_lossy().as_ref()),
        container,
        container_id,
    }
}

/// The offset just past the next newline at or after `from` (or `len` when none).
fn next_line_start(file: &File, from: u64, len: u64) -> u64 {
    let mut pos = from;
    while pos < len {
        let Ok(chunk) = read_range(file, pos, 64 * 1024) else {
            return len;
        };
        if chunk.is_empty() {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', &chunk) {
            return pos + i as u64 + 1;
        }
        pos += chunk.len() as u64;
    }
    len
}

/// Reads the lines before `offset` to tell, per stream, whether `offset` is inside an
/// entry (see [`skip_after`]).
fn infer_skip(file: &File, offset: u64) -> [Skip; 2] {
    let start = offset.saturating_sub(LOOKBACK_BYTES);
    let Ok(bytes) = read_range(file, start, (offset - start) as usize) else {
        return [Skip::None; 2];
    };
    skip_after(&bytes, start > 0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use logtide_container_log::Stream;

    use super::*;
    use crate::{RegistryConfig, TailConfig};

    /// File facts given outright; `skip_at` says stdout is inside an entry at `open_at`.
    #[derive(Clone, Copy)]
    struct Given {
        len: u64,
        same_start: bool,
        newline_before: bool,
        same_prefix: bool,
        next_line: u64,
        open_at: u64,
    }

    impl FileFacts for Given {
        fn len(&self) -> u64 {
            self.len
        }

        fn starts_with(&self, _: &RangeHash) -> bool {
            self.same_start
        }

        fn newline_before(&self, _: u64) -> bool {
            self.newline_before
        }

        fn prefix_is(&self, _: u64, _: &RangeHash) -> bool {
            self.same_prefix
        }

        fn next_line_start(&self, _: u64) -> u64 {
            self.next_line
        }

        fn skip_at(&self, offset: u64) -> [Skip; 2] {
            if offset == self.open_at {
                [Skip::UntilFull, Skip::None]
            } else {
                [Skip::None; 2]
            }
        }
    }

    /// A file of 1000 bytes, unchanged, with a line start at the saved offset.
    const UNCHANGED: Given = Given {
        len: 1000,
        same_start: true,
        newline_before: true,
        same_prefix: true,
        next_line: 600,
        open_at: u64::MAX,
    };

    fn entry(offset: u64) -> RegistryEntry {
        RegistryEntry {
            path: PathBuf::from("/var/log/app.log"),
            shown_path: None,
            dev: 1,
            ino: 2,
            fingerprint: Some(RangeHash::of(b"first line\n")),
            offset,
            size: Some(1000),
            open: Vec::new(),
            gap_before: false,
            prefix: Some(RangeHash::of(b"end of the line before\n")),
            skip: vec![SkipRange {
                stream: Stream::Stdout,
                start: offset,
                end: offset + 10,
            }],
            container: None,
            order: None,
            updated: Timestamp::UNIX_EPOCH,
            removed: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_checked_offset_resumes_where_it_was_saved() {
        let e = entry(500);
        assert_eq!(
            resume_from(&e, &UNCHANGED),
            Resume::At {
                offset: 500,
                skip: [Skip::None; 2],
                skip_ranges: e.skip.clone(),
            }
        );
        // At the very end of the file too.
        let e = entry(1000);
        assert!(matches!(
            resume_from(&e, &UNCHANGED),
            Resume::At { offset: 1000, .. }
        ));
        // Offset 0 needs no check, and keeps its skip ranges.
        let e = entry(0);
        let mid_line = Given {
            newline_before: false,
            same_prefix: false,
            ..UNCHANGED
        };
        assert_eq!(
            resume_from(&e, &mid_line),
            Resume::At {
                offset: 0,
                skip: [Skip::None; 2],
                skip_ranges: e.skip.clone(),
            }
        );
    }

    #[test]
    fn a_changed_file_is_read_from_the_start() {
        let other = Given {
            same_start: false,
            ..UNCHANGED
        };
        assert_eq!(resume_from(&entry(500), &other), Resume::InodeReused);
        // The fingerprint is checked first.
        assert_eq!(resume_from(&entry(5000), &other), Resume::InodeReused);
        // Without a fingerprint, nothing tells.
        let unprinted = RegistryEntry {
            fingerprint: None,
            ..entry(500)
        };
        assert!(matches!(
            resume_from(&unprinted, &other),
            Resume::At { offset: 500, .. }
        ));

        assert_eq!(resume_from(&entry(1001), &UNCHANGED), Resume::Truncated);

        let rewritten = Given {
            same_prefix: false,
            ..UNCHANGED
        };
        assert_eq!(resume_from(&entry(500), &rewritten), Resume::HashMismatch);
    }

    #[test]
    fn without_a_check_hash_open_entries_are_inferred() {
        let unchecked = RegistryEntry {
            prefix: None,
            ..entry(500)
        };
        // Saved ranges come with a check hash only: inferred skips replace them.
        let open = Given {
            open_at: 500,
            ..UNCHANGED
        };
        assert_eq!(
            resume_from(&unchecked, &open),
            Resume::At {
                offset: 500,
                skip: [Skip::UntilFull, Skip::None],
                skip_ranges: Vec::new(),
            }
        );
    }

    #[test]
    fn an_offset_inside_a_line_moves_to_the_next_line() {
        let mid_line = Given {
            newline_before: false,
            open_at: 600,
            ..UNCHANGED
        };
        let want = Resume::Realigned {
            offset: 600,
            skip: [Skip::UntilFull, Skip::None],
        };
        let unchecked = RegistryEntry {
            prefix: None,
            ..entry(500)
        };
        assert_eq!(resume_from(&unchecked, &mid_line), want);
        // A check hash is not checked there: the offset was not saved by this version.
        let mid_line = Given {
            same_prefix: false,
            ..mid_line
        };
        assert_eq!(resume_from(&entry(500), &mid_line), want);
    }

    #[test]
    fn skip_after_tells_which_streams_are_inside_an_entry() {
        let out_p = "2024-01-01T00:00:00.000000000Z stdout P head of an entry\n";
        let out_f = "2024-01-01T00:00:01.000000000Z stdout F end of an entry\n";
        let err_p = "2024-01-01T00:00:02.000000000Z stderr P head of an entry\n";
        let err_f = "2024-01-01T00:00:03.000000000Z stderr F end of an entry\n";
        let docker_p =
            "{\"log\":\"head\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n";
        let docker_f =
            "{\"log\":\"whole\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n";
        let (none, until) = (Skip::None, Skip::UntilFull);
        let cases: Vec<(Vec<&str>, bool, [Skip; 2])> = vec![
            (vec![], false, [none, none]),
            (vec![out_p], false, [until, none]),
            (vec![out_p, out_f], false, [none, none]),
            (vec![out_f, out_p], false, [until, none]),
            (vec![out_p, err_f], false, [until, none]),
            (vec![err_p, out_f], false, [none, until]),
            (vec![out_p, err_p], false, [until, until]),
            (vec![out_p, "not a log line\n"], false, [until, none]),
            (vec![docker_p], false, [until, none]),
            (vec![docker_p, docker_f], false, [none, none]),
            // The first piece of a cut read is not a line, whatever it looks like.
            (vec![out_p], true, [none, none]),
            (vec![out_p, err_p], true, [none, until]),
        ];
        for (lines, cut, want) in cases {
            assert_eq!(
                skip_after(lines.concat().as_bytes(), cut),
                want,
                "{lines:?}, cut: {cut}"
            );
        }
    }

    fn place(name: &str, secs: u64, gone: bool) -> (Place, String) {
        let place = Place {
            rank: rotation::parse(name).rank,
            time: at(secs),
            gone,
            saved: PathBuf::from("/d").join(name),
            order: None,
        };
        (place, name.to_owned())
    }

    #[test]
    fn saved_files_go_in_their_saved_read_order() {
        // Saved as `.1`, and gone (rotated on, then compressed): its time is the registry's
        // last update of it, later than the last write of the file after it (saved as `.1`
        // too, when that name had moved on to it), so names and times put it after that
        // file. The read order saved does not.
        let numbered = |saved: &str, found: &str, time, gone, order| {
            let (mut p, _) = place(found, time, gone);
            p.saved = PathBuf::from(format!("/d/{saved}"));
            p.order = order;
            p
        };
        let known = || {
            vec![
                (
                    numbered("a-json.log.1", "a-json.log.3", 10, false, Some(4)),
                    "first",
                ),
                (
                    numbered("a-json.log.1", "a-json.log.1", 35, true, Some(7)),
                    "gone",
                ),
                (
                    numbered("a-json.log.1", "a-json.log.1", 30, false, Some(9)),
                    "third",
                ),
                (
                    numbered("a-json.log", "a-json.log", 25, false, Some(12)),
                    "current",
                ),
            ]
        };
        assert_eq!(saved_order(known()), ["first", "gone", "third", "current"]);
        // One entry without an order (saved by an older version): all go by names and
        // times.
        let mut mixed = known();
        mixed[0].0.order = None;
        assert_eq!(saved_order(mixed), ["first", "third", "gone", "current"]);
    }

    #[test]
    fn saved_files_are_ordered_oldest_first() {
        let cases = [
            // By date, whatever the times.
            (
                vec![
                    place("0.log.20240102-000000", 10, false),
                    place("0.log.20240101-000000", 20, false),
                    place("0.log", 5, false),
                ],
                vec!["0.log.20240101-000000", "0.log.20240102-000000", "0.log"],
            ),
            // Numbered files by time.
            (
                vec![
                    place("app.log.1", 30, false),
                    place("app.log", 40, false),
                    place("app.log.2", 20, false),
                ],
                vec!["app.log.2", "app.log.1", "app.log"],
            ),
            // The current file when saved, gone: by its last update among the others.
            (
                vec![
                    place("0.log.20240102-000000", 20, false),
                    place("0.log", 15, true),
                    place("0.log.20240101-000000", 10, false),
                ],
                vec!["0.log.20240101-000000", "0.log", "0.log.20240102-000000"],
            ),
            // After those of the same time.
            (
                vec![
                    place("0.log", 10, true),
                    place("0.log.20240101-000000", 10, false),
                ],
                vec!["0.log.20240101-000000", "0.log"],
            ),
            // A rotated file gone keeps its place by name.
            (
                vec![
                    place("0.log.20240102-000000", 20, false),
                    place("0.log.20240101-000000", 50, true),
                ],
                vec!["0.log.20240101-000000", "0.log.20240102-000000"],
            ),
        ];
        for (known, want) in cases {
            let names: Vec<String> = known.iter().map(|(_, n)| n.clone()).collect();
            assert_eq!(saved_order(known), want, "{names:?}");
        }
        // Files that tie go by saved path.
        let (mut b, _) = place("0.log", 10, false);
        b.saved = PathBuf::from("/d/b/0.log");
        let (mut a, _) = place("0.log", 10, false);
        a.saved = PathBuf::from("/d/a/0.log");
        assert_eq!(saved_order(vec![(b, "b"), (a, "a")]), ["a", "b"]);
        // Gone under the base name, updated after the file found there now was last
        // written: it was the current file before that one.
        let (gone, _) = place("0.log", 50, true);
        let (found, _) = place("0.log", 40, false);
        let (rotated, _) = place("0.log.20240101-000000", 30, false);
        assert_eq!(
            saved_order(vec![(found, "found"), (gone, "gone"), (rotated, "rotated")]),
            ["rotated", "gone", "found"]
        );
        // Numbered names move at each rotation: a file gone, saved as `.1` when the file
        // found at `.1` now was the current one, is older than that file.
        let numbered = |saved: &str, found: &str, time, gone| {
            let (mut p, _) = place(found, time, gone);
            p.saved = PathBuf::from(format!("/d/{saved}"));
            p
        };
        let known = vec![
            (
                numbered("a-json.log", "a-json.log.1", 30, false),
                "was current",
            ),
            (numbered("a-json.log.1", "a-json.log.1", 50, true), "gone"),
            (
                numbered("a-json.log.2", "a-json.log.3", 10, false),
                "oldest",
            ),
        ];
        assert_eq!(saved_order(known), ["oldest", "gone", "was current"]);
    }

    #[test]
    fn a_file_at_the_inode_is_the_saved_one_only_in_its_sequence() {
        let cases = [
            ("/d/0.log", "/d/0.log", true),
            ("/d/0.log", "/d/0.log.20240101-000000", true),
            ("/d/0.log.20240101-000000", "/d/0.log", true),
            ("/d/app.log", "/d/app.log.1", true),
            ("/d/0.log", "/d/0.log.20240101-000000.gz", false),
            ("/d/0.log", "/d/1.log", false),
            ("/d/app.log.1", "/d/other.log.2", false),
        ];
        for (saved, found, want) in cases {
            assert_eq!(
                same_sequence(Path::new(saved), Path::new(found)),
                want,
                "{saved} -> {found}"
            );
        }
    }

    #[test]
    fn a_file_at_the_inode_is_the_saved_one_if_it_starts_the_same() {
        let e = entry(500);
        let here = Path::new("/var/log/app.log");
        let elsewhere = Path::new("/var/log/app.log.1");
        let not_asked = |_: &RangeHash| -> bool { panic!("the file was read") };
        assert!(same_file(&e, elsewhere, None, |fp| {
            assert_eq!(Some(*fp), e.fingerprint);
            true
        }));
        assert!(!same_file(&e, here, None, |_| false));
        // No fingerprint: nothing tells otherwise.
        let unprinted = RegistryEntry {
            fingerprint: None,
            ..entry(500)
        };
        assert!(same_file(&unprinted, elsewhere, None, not_asked));
        // The file was empty: only its path tells.
        let empty = RegistryEntry {
            fingerprint: Some(RangeHash::of(b"")),
            ..entry(0)
        };
        assert!(same_file(&empty, here, None, not_asked));
        assert!(!same_file(&empty, elsewhere, None, not_asked));
        // Unless it was created after the entry was saved: a new file got the inode.
        let saved_at = system_time(empty.updated);
        let later = saved_at + std::time::Duration::from_millis(1);
        assert!(same_file(&empty, here, Some(saved_at), not_asked));
        assert!(!same_file(&empty, here, Some(later), not_asked));
    }

    #[test]
    fn a_file_gone_while_stopped_lost_what_was_not_shipped() {
        let saved = |offset, size| RegistryEntry {
            size,
            ..entry(offset)
        };
        assert_eq!(lost_while_stopped(&saved(40, Some(100))), Some(60));
        assert_eq!(lost_while_stopped(&saved(100, Some(100))), None);
        // Saved with an offset past the size it saw: nothing known lost.
        assert_eq!(lost_while_stopped(&saved(120, Some(100))), None);
        // The size is unknown (older registries): lost, by how much unknown.
        assert_eq!(lost_while_stopped(&saved(40, None)), Some(0));
        let finished = RegistryEntry {
            removed: Some(Timestamp::UNIX_EPOCH),
            ..saved(40, Some(100))
        };
        assert_eq!(lost_while_stopped(&finished), None);
    }

    #[test]
    fn a_saved_file_is_read_to_its_end_at_its_saved_length_with_a_fingerprint() {
        assert!(read_to_end(&entry(500), 500));
        assert!(!read_to_end(&entry(500), 501));
        let unprinted = RegistryEntry {
            fingerprint: None,
            ..entry(500)
        };
        assert!(!read_to_end(&unprinted, 500));
    }

    #[test]
    fn files_written_since_a_last_update_are_looked_for_from_a_second_before() {
        let t = Timestamp::new(100, 5).unwrap();
        assert_eq!(written_since(t), UNIX_EPOCH + Duration::new(99, 5));
        // Registry times before the epoch count as the epoch.
        assert_eq!(
            written_since(Timestamp::new(-5, 0).unwrap()),
            written_since(Timestamp::UNIX_EPOCH)
        );
    }

    #[test]
    fn saved_files_inherit_their_shown_path_and_container() {
        let id = "3f1c2e9a7b6d4c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";
        let shown = format!("/var/log/containers/web-7d9_shop_app-{id}.log");
        let kubelet = RegistryEntry {
            path: PathBuf::from("/var/log/pods/shop_web_u/app/0.log"),
            shown_path: Some(shown.clone()),
            container: Some(id.to_owned()),
            ..entry(0)
        };
        let i = inherit_from_registry(
            &kubelet,
            Some(Path::new(
                "/var/log/pods/shop_web_u/app/0.log.20240101-000000",
            )),
        );
        assert_eq!(&*i.shown_path, shown);
        assert_eq!(&*i.container, id);
        assert_eq!(i.container_id.as_deref(), Some(id));

        // No shown path saved: shown under the path saved, keyed without the rotation
        // suffix.
        let plain = RegistryEntry {
            path: PathBuf::from("/var/log/pods/shop_web_u/app/0.log.20240101-000000"),
            ..entry(0)
        };
        let i = inherit_from_registry(&plain, None);
        assert_eq!(
            &*i.shown_path,
            "/var/log/pods/shop_web_u/app/0.log.20240101-000000"
        );
        assert_eq!(&*i.container, "/var/log/pods/shop_web_u/app/0.log");
        assert_eq!(i.container_id, None);

        // A container saved as an id is the container id, whatever the paths say.
        let by_id = RegistryEntry {
            container: Some(id.to_owned()),
            ..entry(0)
        };
        let i = inherit_from_registry(&by_id, Some(Path::new("/var/log/app.log.1")));
        assert_eq!(&*i.shown_path, "/var/log/app.log");
        assert_eq!(i.container_id.as_deref(), Some(id));
    }

    /// A docker line of `log` on stdout.
    fn docker_line(log: &str) -> String {
        format!(
            "{{\"log\":{},\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}}\n",
            serde_json::to_string(log).unwrap()
        )
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Polls until nothing more comes; acknowledges every event when `ack`.
    fn drain(tailer: &mut Tailer, now: &mut Instant, ack: bool) -> Vec<String> {
        let mut messages = Vec::new();
        for _ in 0..20 {
            *now += std::time::Duration::from_millis(100);
            let mut batch = Vec::new();
            tailer.poll(*now, &mut batch, 10_000);
            for mut e in batch {
                if let Some(m) = e.get("message").and_then(|v| v.as_str().map(str::to_owned)) {
                    messages.push(m);
                }
                if let Some(tok) = e.take_ack().filter(|_| ack) {
                    tok.accept();
                }
            }
            tailer.commit(*now, true).unwrap();
        }
        messages
    }

    /// After a restart, the file the registry saved as current may be rotated away between
    /// the registry's files being resumed and the globs being listed. It must still be
    /// read, before its successor: the entry it ends with goes on there.
    #[test]
    fn a_saved_current_file_rotated_during_the_first_scan_is_read_before_its_successor() {
        let root = tempfile::tempdir().unwrap();
        let cid = "a".repeat(64);
        let dir = root.path().join(&cid);
        fs::create_dir_all(&dir).unwrap();
        let current = dir.join(format!("{cid}-json.log"));
        let config = || {
            (
                TailConfig {
                    paths: vec![format!("{}/*/*-json.log", root.path().display())],
                    ..TailConfig::default()
                },
                RegistryConfig {
                    path: root.path().join("registry"),
                    flush: std::time::Duration::ZERO,
                    ..RegistryConfig::default()
                },
            )
        };
        append(&current, &docker_line("before\n"));
        append(&current, &docker_line("first piece "));
        let mut now = Instant::now();
        {
            let (t, r) = config();
            let mut tailer = Tailer::open(t, r).unwrap();
            assert_eq!(drain(&mut tailer, &mut now, true), ["before"]);
        }
        // Restarted: the registry's files are resumed, then the file is rotated before the
        // globs are listed.
        let (t, r) = config();
        let mut tailer = Tailer::open(t, r).unwrap();
        tailer.orphans_checked = true;
        tailer.resume_orphans(now);
        fs::rename(&current, dir.join(format!("{cid}-json.log.1"))).unwrap();
        append(&current, &docker_line("last piece\n"));
        append(&current, &docker_line("after\n"));
        assert_eq!(
            drain(&mut tailer, &mut now, true),
            ["first piece last piece", "after"]
        );
    }
}
