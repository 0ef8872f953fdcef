//! Discovery: which files to read, and in what order.
//!
//! A scan lists the globs; a file not tracked yet is started, and a live file no longer
//! found was rotated away (renamed or deleted): it is drained, and the files after it in
//! its rotation sequence are started, oldest first ([`sequence_order`]), from where it
//! left off ([`After`]). A container seen for the first time has its rotated files read
//! before its current one.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::{stream_index, FileKey, FileState, Loss, Started, Status, Tailer};
use crate::container_of;
use crate::identity::{
    fingerprint, fingerprint_matches, gzip_content_len, gzip_head, FileId, RangeHash,
};
use crate::registry::RegistryEntry;
use crate::rotation::{self, Rank};

/// What a file started as part of a rotation sequence takes from the file it follows: the
/// path it is shown under (`log.file.path`) and its container.
#[derive(Clone, Debug)]
pub(super) struct Inherit {
    pub(super) shown_path: Arc<str>,
    pub(super) container: Arc<str>,
    pub(super) container_id: Option<Arc<str>>,
}

/// Which files of a rotation sequence to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum After {
    /// Those of a later rank than this one.
    Rank(Rank),
    /// Those written to after this time (the file they follow is gone).
    Modified(SystemTime),
    /// All of them (a container that appeared while logtide ran or was stopped).
    Start,
}

/// How a file comes to be read.
#[derive(Clone, Debug)]
pub(super) enum Via {
    /// Found by the globs, under the path it is shown as.
    Discovered,
    /// Part of a rotation sequence, not (or no longer) at a discovered path.
    Sequence {
        inherit: Inherit,
        /// Rotated files are `Gone` (drained, then finished); the current one is `Live`.
        current: bool,
        gap_before: bool,
        /// Streams whose entry's head was in the lost file before this one.
        lost_head: [bool; 2],
    },
}

/// A rotation sequence to start again: its directory, base name, and where to go on.
#[derive(Clone, Debug)]
pub(super) struct Refollow {
    pub(super) dir: PathBuf,
    pub(super) base: String,
    pub(super) after: After,
    pub(super) inherit: Inherit,
    pub(super) gap: bool,
    /// Streams whose entry's head was in a lost file (see [`super::FileState::lost_head`]).
    pub(super) lost_head: [bool; 2],
    /// Files just counted lost under the name the registry saved: the first compressed
    /// files of the sequence are those, under their rotated names, and are not counted
    /// again.
    pub(super) counted: u32,
    /// The file the sequence goes on after, when it is still in the directory: the
    /// compressed files that come before it in the sequence are older than it, whatever
    /// their times say (see [`Tailer::start_sequence`]).
    pub(super) from: Option<FileId>,
}

impl After {
    /// Whether a file of the sequence, of rank `rank` and last modified at `mtime`, comes
    /// after. Modification times are as coarse as the kernel's clock tick: a file written
    /// in the same tick is newer too (files already known are skipped, or resumed from the
    /// registry).
    pub(super) fn admits(&self, rank: &Rank, mtime: SystemTime) -> bool {
        match self {
            After::Rank(a) => rank > a,
            After::Modified(t) => mtime >= *t,
            After::Start => true,
        }
    }

    /// Where the sequence goes on after a file of rank `rank` rotated away: after its date
    /// when it was renamed to a dated name; else (deleted, renamed out of its directory, or
    /// numbered: `.1` is the newest in the usual schemes, the oldest in some) after its
    /// last modification while it was open (`written`, asked only then; `None` when it is
    /// closed), or after its rank when closed but renamed. `None`: closed and deleted,
    /// nothing tells.
    pub(super) fn after_rotated(
        rank: Rank,
        renamed: bool,
        written: impl FnOnce() -> Option<SystemTime>,
    ) -> Option<After> {
        Some(match rank {
            Rank::Dated(_) if renamed => After::Rank(rank),
            _ => match written() {
                Some(mtime) => After::Modified(mtime),
                None if renamed => After::Rank(rank),
                None => return None,
            },
        })
    }

    /// Where the sequence of a container with no live file goes on, from the newest file
    /// started of it: after it was deleted (`deleted`: its last modification), else after
    /// its rank, except that a numbered file goes by its modification time (`mtime`, asked
    /// only then). `None`: nothing to look for (the newest file is the current one, still
    /// there) or nothing tells (a numbered file that cannot be looked at).
    pub(super) fn after_idle(
        rank: Rank,
        deleted: Option<SystemTime>,
        mtime: impl FnOnce() -> Option<SystemTime>,
    ) -> Option<After> {
        match (rank, deleted) {
            (_, Some(mtime)) => Some(After::Modified(mtime)),
            (Rank::Current, None) => None,
            (Rank::Numbered(_), None) => mtime().map(After::Modified),
            (rank, None) => Some(After::Rank(rank)),
        }
    }

    /// Where the sequence goes on after the newest file the registry knows, of rank
    /// `rank` and modified at `mtime`: numbered files go by time.
    pub(super) fn after_saved(rank: Rank, mtime: SystemTime) -> After {
        match rank {
            Rank::Numbered(_) => After::Modified(mtime),
            rank => After::Rank(rank),
        }
    }
}

/// What a compressed file of a rotation sequence (never read) means for the files after
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compressed {
    /// Its plain file is being read, or was read to its end: nothing.
    Read,
    /// The registry knows its plain file, not read to its end: counted lost where it was
    /// found gone. A gap, and the entries open at its end lost their head.
    Unfinished,
    /// One of the files just counted lost under the name the registry saved: a gap.
    Counted,
    /// Lost now, and a gap.
    Lost,
}

impl Compressed {
    /// `tracked`: its plain file is being read; `saved`: whether the registry knows its
    /// plain file, and if so whether that was finished; `counted`: files just counted lost
    /// (see [`Refollow::counted`]).
    pub(super) fn of(tracked: bool, saved: Option<bool>, counted: u32) -> Compressed {
        match (tracked, saved) {
            (true, _) | (false, Some(true)) => Compressed::Read,
            (false, Some(false)) => Compressed::Unfinished,
            (false, None) if counted > 0 => Compressed::Counted,
            (false, None) => Compressed::Lost,
        }
    }
}

impl Tailer {
    /// Expands the globs and starts, follows or stops files accordingly. Also run by
    /// [`Tailer::poll`] every `scan_frequency`, and by the host when a watched directory
    /// changes.
    pub fn scan(&mut self, now: Instant) {
        self.last_scan = Some(now);
        self.deferred = false;
        self.core.stats.scans += 1;
        if !self.orphans_checked {
            self.orphans_checked = true;
            self.resume_orphans(now);
        }
        // Sequences that waited for a slot under harvester_limit go first: their files are
        // older than the current files found now.
        for r in std::mem::take(&mut self.refollow) {
            self.start_sequence(now, r);
        }
        let mut listed: Vec<(SystemTime, PathBuf)> = Vec::new();
        let patterns = self.config.paths.clone();
        for pattern in &patterns {
            let paths = match glob::glob(pattern) {
                Ok(p) => p,
                Err(e) => {
                    self.core.stats.scan_errors += 1;
                    tracing::warn!(pattern, error = %e, "invalid glob");
                    continue;
                }
            };
            for entry in paths {
                let shown = match entry {
                    Ok(p) => p,
                    Err(e) => {
                        self.core.stats.scan_errors += 1;
                        tracing::warn!(path = %e.path().display(), error = %e.error(), "cannot read while scanning");
                        continue;
                    }
                };
                if self.excluded(&shown)
                    || (self.config.skip_gzipped && shown.extension().is_some_and(|e| e == "gz"))
                {
                    continue;
                }
                let mtime = fs::metadata(&shown)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                listed.push((mtime, shown));
            }
        }
        // Files found together start oldest first, so that of a rotated file and its
        // successor the older one is read first.
        listed.sort();
        listed.dedup_by(|a, b| a.1 == b.1);
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut found: Vec<(PathBuf, fs::Metadata)> = Vec::new();
        for (_, shown) in listed {
            match fs::metadata(&shown) {
                Ok(m) if m.is_file() => {
                    if seen.insert(FileId::of(&m)) {
                        found.push((shown, m));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // Vanished between listing and stat, or a dangling symlink. A container
                    // unknown to the registry whose current file was rotated away while
                    // logtide was stopped has its rotated files read all the same.
                    self.core.stats.scan_errors += 1;
                    tracing::debug!(path = %shown.display(), error = %e, "file vanished while scanning");
                    if let Some(real) = dangling_target(&shown) {
                        self.follow_unknown(now, &shown, &real);
                    }
                }
            }
        }
        // Live files no longer found were rotated away or deleted: they are drained, and
        // the files that followed them are started before the current files found now.
        let gone: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, f)| f.status == Status::Live && !f.superseded && !seen.contains(&f.id))
            .map(|(&k, _)| k)
            .collect();
        for key in gone {
            self.rotated_away(now, key);
        }
        // Containers without a live file: a file may have been created and rotated away
        // since (between two scans, with no watch to tell).
        let live: HashSet<u32> = self
            .files
            .values()
            .filter(|f| f.status == Status::Live && !f.superseded)
            .map(|f| f.group)
            .collect();
        let idle: Vec<(u32, PathBuf, Option<SystemTime>, Inherit)> = self
            .newest
            .iter()
            .filter(|(g, _)| !live.contains(g))
            .map(|(g, (p, m, i))| (*g, p.clone(), *m, i.clone()))
            .collect();
        for (group, path, deleted, inherit) in idle {
            let (path, deleted) = match deleted {
                None => self.newest_now(group, path),
                Some(_) => (path, deleted),
            };
            let (Some(dir), Some(name)) =
                (path.parent(), path.file_name().and_then(|n| n.to_str()))
            else {
                continue;
            };
            if !dir.is_dir() {
                // The pod's log directory is gone: nothing more will come.
                self.newest.remove(&group);
                continue;
            }
            let r = rotation::parse(name);
            let Some(after) = After::after_idle(r.rank, deleted, || {
                fs::metadata(&path).and_then(|m| m.modified()).ok()
            }) else {
                continue;
            };
            self.start_sequence(
                now,
                Refollow {
                    dir: dir.to_owned(),
                    base: r.base.to_owned(),
                    after,
                    inherit,
                    gap: false,
                    lost_head: [false; 2],
                    counted: 0,
                    from: None,
                },
            );
        }
        for (shown, meta) in found {
            self.discovered(now, &shown, &meta);
        }
        self.first_scan_done = true;
    }

    /// Where the newest file started of container `group`, last seen at `path`, is now,
    /// and when it was last modified if it is gone. In a numbered sequence every rotation
    /// renames the rotated files too (`.1` to `.2`), so the file at `path` may be another
    /// one: the tracked file is looked up by identity in its directory (and by its first
    /// bytes: a file deleted may have given its inode to a new one). When it is no longer
    /// there (deleted, or compressed and then deleted) but still open, the sequence goes
    /// on after its last modification, as for a file deleted while it was read.
    fn newest_now(&mut self, group: u32, path: PathBuf) -> (PathBuf, Option<SystemTime>) {
        let Some(f) = self
            .files
            .values_mut()
            .filter(|f| f.group == group && !f.superseded && f.path == path)
            .max_by_key(|f| f.order)
        else {
            return (path, None);
        };
        let found = find_same(&path, f.id, f.fingerprint.as_ref());
        // Gone: after its last write, when it is still open to tell it. Closed, nothing
        // tells, and the sequence is not looked at (every older compressed file would be
        // taken for one lost).
        let deleted = match &found {
            Some(_) => None,
            None => f
                .reader
                .as_ref()
                .and_then(|r| r.file.metadata().ok())
                .and_then(|m| m.modified().ok()),
        };
        let now_at = match found {
            Some(found) if found != path => {
                self.core.stats.renames += 1;
                f.path.clone_from(&found);
                found
            }
            _ => path,
        };
        if let Some((newest, gone, _)) = self.newest.get_mut(&group) {
            newest.clone_from(&now_at);
            *gone = deleted;
        }
        (now_at, deleted)
    }

    /// A live file is no longer at its path: it is drained, then finished, and the files
    /// that follow it in its rotation sequence are started.
    pub(super) fn rotated_away(&mut self, now: Instant, key: FileKey) {
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        f.status = Status::Gone { since: now };
        let found = find_by_id(&f.path, f.id);
        if let Some(found) = &found {
            if *found != f.path {
                self.core.stats.renames += 1;
                if let Some((newest, _, _)) = self.newest.get_mut(&f.group) {
                    if *newest == f.path {
                        newest.clone_from(found);
                    }
                }
                f.path = found.clone();
            }
        } else if let Some((newest, deleted, _)) = self.newest.get_mut(&f.group) {
            if *newest == f.path {
                *deleted = Some(
                    f.reader
                        .as_ref()
                        .and_then(|r| r.file.metadata().ok())
                        .and_then(|m| m.modified().ok())
                        .unwrap_or(std::time::UNIX_EPOCH),
                );
            }
        }
        if f.reader.is_none() {
            // Closed after it was read to its end: read it again only if it grew since.
            let grew = found
                .as_ref()
                .and_then(|p| fs::metadata(p).ok())
                .is_some_and(|m| FileId::of(&m) == f.id && m.len() > f.read_offset);
            if grew {
                self.reopen(now, key);
            } else {
                f.status = Status::Finished;
            }
        }
        self.follow(now, key, found.is_some());
    }

    /// Starts the files that follow `key`'s file in its rotation sequence.
    fn follow(&mut self, now: Instant, key: FileKey, renamed: bool) {
        let Some(f) = self.files.get(&key) else {
            return;
        };
        let (Some(dir), Some(name)) =
            (f.path.parent(), f.path.file_name().and_then(|n| n.to_str()))
        else {
            return;
        };
        let r = rotation::parse(name);
        let written = || {
            let meta = f
                .reader
                .as_ref()
                .and_then(|reader| reader.file.metadata().ok())?;
            Some(meta.modified().unwrap_or(std::time::UNIX_EPOCH))
        };
        let Some(after) = After::after_rotated(r.rank, renamed, written) else {
            return;
        };
        let refollow = Refollow {
            dir: dir.to_owned(),
            base: r.base.to_owned(),
            after,
            inherit: Inherit {
                shown_path: f.shown_path.clone(),
                container: f.container.clone(),
                container_id: f.container_id.clone(),
            },
            gap: false,
            lost_head: [false; 2],
            counted: 0,
            from: renamed.then_some(f.id),
        };
        self.core.stats.rotations_followed += 1;
        self.start_sequence(now, refollow);
    }

    /// Starts, oldest first, the files of a rotation sequence after `r.after` that are not
    /// tracked yet: rotated files (drained, then finished) and the current one. A file of
    /// the sequence that cannot be read (gzipped or gone before it was opened) is counted
    /// as lost, and the next file read emits the container's pending entries as partial
    /// first, so that no entry is joined across the gap.
    pub(super) fn start_sequence(&mut self, now: Instant, mut r: Refollow) {
        let entries = match fs::read_dir(&r.dir) {
            Ok(e) => e,
            Err(e) => {
                self.core.stats.scan_errors += 1;
                tracing::debug!(dir = %r.dir.display(), error = %e, "cannot list a rotation sequence");
                return;
            }
        };
        let mut members: Vec<(Rank, SystemTime, PathBuf, bool, fs::Metadata)> = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let p = rotation::parse(name);
            if p.base != r.base {
                continue;
            }
            let Ok(meta) = e.metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            if r.after.admits(&p.rank, mtime) {
                members.push((p.rank, mtime, e.path(), p.gzipped, meta));
            }
        }
        // A compressed file's time is when it was compressed, later than the files after
        // it were written: numbered files go by number instead, in the direction the times
        // of the plain ones show.
        let counts_up = counts_up(members.iter().filter(|m| !m.3).map(|m| (&m.0, m.1)));
        members.sort_by(|a, b| match (&a.0, &b.0) {
            (Rank::Numbered(x), Rank::Numbered(y)) if counts_up => x.cmp(y),
            (Rank::Numbered(x), Rank::Numbered(y)) => y.cmp(x),
            _ => sequence_order(&a.0, a.1, &b.0, b.1),
        });
        // A compressed file's time is when it was compressed: one of an older file may be
        // later than the last write of the file the sequence goes on from. Those that come
        // before that file in the sequence are older than it, and not after it.
        if let Some(at) = r.from.and_then(|from| {
            members
                .iter()
                .position(|m| !m.3 && FileId::of(&m.4) == from)
        }) {
            let plain_before: Vec<_> = members.drain(..at).filter(|m| !m.3).collect();
            members.splice(..0, plain_before);
        }
        for (rank, _, path, gzipped, meta) in members {
            if gzipped {
                let judged = (FileId::of(&meta), meta.len());
                if self.judged_gz.insert(judged, path.clone()).is_some() {
                    continue;
                }
                // The file it was compressed from: known by its first bytes where they can
                // be read, since in a numbered sequence the names move at each rotation
                // (`.2.gz` may be the file read as `.1`); else by its name.
                let plain = path.with_extension("");
                let head = gzip_head(&path);
                let was = |fp: &Option<RangeHash>, at: &Path| match (&head, fp) {
                    (Some(head), Some(fp)) if fp.len > 0 => fp.starts(head),
                    _ => at == plain,
                };
                // A file of this container being read is known by its first bytes as they
                // are now (its fingerprint may be from when it was empty): one still empty is
                // not the file compressed when the compressed file has content, whatever the
                // name it was last seen under (numbered names move on). One closed is not it
                // while it is still on disk (compressing removes the plain file).
                let was_tracked = |f: &FileState| {
                    if f.container != r.inherit.container {
                        return false;
                    }
                    let now = f.reader.as_ref().and_then(|rd| fingerprint(&rd.file).ok());
                    match (&head, now) {
                        (Some(head), Some(now)) if now.len == 0 && !head.is_empty() => false,
                        (_, Some(now)) => was(&Some(now), &f.path),
                        (_, None) => {
                            was(&f.fingerprint, &f.path)
                                && find_same(&f.path, f.id, f.fingerprint.as_ref()).is_none()
                        }
                    }
                };
                let tracked = self.files.values().any(was_tracked);
                // A file saved while empty is known by its name only: not when it was empty
                // when finished, or is still there (numbered names move on), and the
                // compressed file has content.
                let was_saved = |e: &RegistryEntry| match (&head, &e.fingerprint) {
                    (Some(head), Some(fp)) if fp.len == 0 && !head.is_empty() => {
                        let finished_empty =
                            e.removed.is_some() && e.offset == 0 && e.size.unwrap_or(0) == 0;
                        e.path == plain && !finished_empty && find_by_id(&e.path, e.id()).is_none()
                    }
                    _ => was(&e.fingerprint, &e.path),
                };
                let saved = self
                    .registry
                    .entries()
                    .chain(&self.forgotten)
                    .find(|e| was_saved(e))
                    .cloned();
                // The registry's size is from its last write: a file that grew after it, and
                // was then rotated and compressed before it was read again, lost what it grew
                // by (its content's size is in the gzip trailer).
                let grown = saved
                    .as_ref()
                    .filter(|e| {
                        !tracked && find_same(&e.path, e.id(), e.fingerprint.as_ref()).is_none()
                    })
                    .and_then(|e| {
                        let len = gzip_content_len(&path)?;
                        let seen = e.offset.max(e.size.unwrap_or(0));
                        (len > seen).then(|| (len - seen, e.open.clone()))
                    });
                if let Some((bytes, open)) = grown {
                    self.lose(&path, bytes, "gzipped_before_read");
                    r.gap = true;
                    for st in open {
                        r.lost_head[stream_index(st)] = true;
                    }
                }
                match Compressed::of(
                    tracked,
                    saved.as_ref().map(|e| e.removed.is_some()),
                    r.counted,
                ) {
                    Compressed::Read => {}
                    Compressed::Unfinished => {
                        r.gap = true;
                        for st in saved.iter().flat_map(|e| &e.open) {
                            r.lost_head[stream_index(*st)] = true;
                        }
                    }
                    Compressed::Counted => {
                        r.counted -= 1;
                        r.gap = true;
                    }
                    // An empty file compressed lost nothing (a file truncated, then
                    // rotated), and cuts nothing.
                    Compressed::Lost if gzip_content_len(&path) == Some(0) => {}
                    Compressed::Lost => {
                        let bytes = gzip_content_len(&path).unwrap_or(meta.len());
                        self.lose(&path, bytes, "gzipped_before_read");
                        r.gap = true;
                    }
                }
                continue;
            }
            let id = FileId::of(&meta);
            // Tracked already, unless the file with that identity is finished: its
            // descriptor is closed, and a new file may have got the inode. A finished file
            // that is still the one read (same first bytes, same length) is known too: a
            // numbered sequence (`.1` is the newest) goes on after its last write, which
            // takes the file itself, and started again it would be read again from the
            // registry's offset, behind the entries still on their way to the output.
            let tracked = self
                .by_id
                .get(&id)
                .and_then(|k| self.files.get(k))
                .is_some_and(|f| f.status != Status::Finished || still_read(f, &path, &meta));
            if tracked || self.excluded(&path) {
                continue;
            }
            let via = Via::Sequence {
                inherit: r.inherit.clone(),
                current: rank == Rank::Current,
                gap_before: r.gap,
                lost_head: r.lost_head,
            };
            let mut started = self.start_file(now, &path, id, meta.len(), via.clone());
            if started == Started::Vanished {
                // Renamed between listing and opening (rotated once more): open it there.
                if let Some(moved) = find_by_id(&path, id) {
                    started = self.start_file(now, &moved, id, meta.len(), via);
                }
            }
            match started {
                Started::Yes => {
                    r.gap = false;
                    r.lost_head = [false; 2];
                    r.counted = 0;
                }
                Started::Vanished => {
                    self.lose(&path, meta.len(), "deleted_before_read");
                    r.gap = true;
                }
                Started::Failed => r.gap = true,
                Started::Deferred => {
                    // The rest waits for a slot, in order.
                    self.refollow.push(r);
                    return;
                }
            }
            r.after = After::Rank(rank);
        }
        // The sequence ends with a file lost (compressed or deleted unread) and none after
        // it yet: the gap goes before the next file of the container, whenever it comes.
        if r.gap {
            let group = self.core.group_of(&r.inherit.container);
            let lost = self.gap_next.entry(group).or_insert([false; 2]);
            lost[0] |= r.lost_head[0];
            lost[1] |= r.lost_head[1];
        }
    }

    /// Counts a file of a rotation sequence that could not be read.
    pub(super) fn lose(&mut self, path: &Path, bytes: u64, reason: &'static str) {
        self.core.stats.files_lost += 1;
        self.core.stats.bytes_lost_rotated += bytes;
        tracing::error!(file = %path.display(), lost_bytes = bytes, reason,
            "a file of a rotation sequence could not be read");
        self.losses.push(Loss {
            path: Arc::from(path.to_string_lossy().as_ref()),
            bytes,
            reason,
        });
    }

    fn discovered(&mut self, now: Instant, shown: &Path, meta: &fs::Metadata) {
        let id = FileId::of(meta);
        if let Some(&key) = self.by_id.get(&id) {
            let f = self
                .files
                .get_mut(&key)
                .expect("by_id points at a tracked file");
            if f.status != Status::Finished {
                // A live file is where it was; one found again is looked up.
                if f.status != Status::Live {
                    let real = fs::canonicalize(shown).unwrap_or_else(|_| shown.to_owned());
                    if real != f.path {
                        self.core.stats.renames += 1;
                        f.path = real;
                    }
                }
                f.status = Status::Live;
                if f.reader.is_none() && meta.len() != f.read_offset {
                    self.reopen(now, key);
                }
                return;
            }
            // A finished file is back at a discovered path: same inode, maybe a new file.
        }
        // A container that appeared while logtide ran (or was stopped, when the registry
        // has history): its rotated files are new data too, and are read first.
        let real = fs::canonicalize(shown).unwrap_or_else(|_| shown.to_owned());
        if let Some(container) = self.follow_unknown(now, shown, &real) {
            if self.by_id.contains_key(&id)
                || self
                    .refollow
                    .iter()
                    .any(|r| r.inherit.container == container)
            {
                return;
            }
        }
        self.start_file(now, shown, id, meta.len(), Via::Discovered);
    }

    /// A container neither read nor known to the registry, found at `shown` (which leads to
    /// `real`), when the registry has history: its rotated files are new data too, and its
    /// sequence is started from the first. Returns the container if it was unknown.
    fn follow_unknown(&mut self, now: Instant, shown: &Path, real: &Path) -> Option<Arc<str>> {
        if !self.first_scan_done && self.registry_containers.is_empty() {
            return None;
        }
        let (container, container_id) = container_of(shown, real);
        if self.core.groups.contains_key(&container)
            || self.registry_containers.contains(&container)
        {
            return None;
        }
        if let (Some(dir), Some(name)) = (real.parent(), real.file_name().and_then(|n| n.to_str()))
        {
            let inherit = Inherit {
                shown_path: Arc::from(shown.to_string_lossy().as_ref()),
                container: container.clone(),
                container_id,
            };
            self.start_sequence(
                now,
                Refollow {
                    dir: dir.to_owned(),
                    base: rotation::parse(name).base.to_owned(),
                    after: After::Start,
                    inherit,
                    gap: false,
                    lost_head: [false; 2],
                    counted: 0,
                    from: None,
                },
            );
        }
        Some(container)
    }
}

/// Whether the finished file `f` is the file at `path` as it was read: not grown nor cut,
/// and its first bytes unchanged (not a new file that got the inode).
fn still_read(f: &super::FileState, path: &Path, meta: &fs::Metadata) -> bool {
    meta.len() == f.read_offset && starts_as(path, f.fingerprint.as_ref())
}

/// Whether the file at `path` starts with the bytes the fingerprint `fp` was taken over.
pub(super) fn starts_as(path: &Path, fp: Option<&RangeHash>) -> bool {
    fp.is_some_and(|fp| {
        fs::File::open(path)
            .and_then(|file| fingerprint_matches(&file, fp))
            .unwrap_or(false)
    })
}

/// Where a dangling symlink found by a glob leads, when that directory exists: the
/// container's current file was rotated away and no new one is there yet.
fn dangling_target(shown: &Path) -> Option<PathBuf> {
    let target = fs::read_link(shown).ok()?;
    let target = match shown.parent() {
        Some(dir) if target.is_relative() => dir.join(target),
        _ => target,
    };
    target.parent().is_some_and(Path::is_dir).then_some(target)
}

/// The directory to watch for a glob: its leading components without wildcards (for a
/// pattern without any, the directory of the file it names).
pub(super) fn glob_base(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    let mut literal = true;
    for c in Path::new(pattern).components() {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            literal = false;
            break;
        }
        base.push(c);
    }
    if literal {
        base.pop();
    }
    base
}

/// The order of two files of one rotation sequence, oldest first: by name, except that
/// numbered files go by modification time (`.1` is the newest file where rotation shifts
/// the numbers, as dockerd and logrotate do, and the oldest where it counts up).
pub(super) fn sequence_order(
    a: &Rank,
    a_mtime: SystemTime,
    b: &Rank,
    b_mtime: SystemTime,
) -> std::cmp::Ordering {
    match (a, b) {
        (Rank::Numbered(x), Rank::Numbered(y)) => a_mtime.cmp(&b_mtime).then(y.cmp(x)),
        _ => a.cmp(b).then(a_mtime.cmp(&b_mtime)),
    }
}

/// Whether a numbered sequence counts up (`.1` the oldest), from its plain files' numbers
/// and modification times; else it shifts (`.1` the newest: dockerd, logrotate), which is
/// also what is taken when fewer than two plain numbered files tell.
fn counts_up<'a>(plain: impl Iterator<Item = (&'a Rank, SystemTime)>) -> bool {
    let mut numbered: Vec<(u32, SystemTime)> = plain
        .filter_map(|(r, t)| match r {
            Rank::Numbered(n) => Some((*n, t)),
            _ => None,
        })
        .collect();
    numbered.sort_unstable();
    match (numbered.first(), numbered.last()) {
        (Some((lo, t_lo)), Some((hi, t_hi))) if lo != hi => t_lo < t_hi,
        _ => false,
    }
}

/// Finds the file with identity `id` that still starts with the bytes of its fingerprint
/// `fp` (not a new file that got the inode): at `path`, or renamed within its directory.
pub(super) fn find_same(path: &Path, id: FileId, fp: Option<&RangeHash>) -> Option<PathBuf> {
    find_by_id(path, id).filter(|p| starts_as(p, fp))
}

/// Finds the file with identity `id`: at `path`, or renamed within its directory.
pub(super) fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
    if fs::metadata(path).is_ok_and(|m| FileId::of(&m) == id) {
        return Some(path.to_owned());
    }
    let dir = path.parent()?;
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && FileId::of(&m) == id))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::{Greater, Less};
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn dated(suffix: &str) -> Rank {
        Rank::Dated(suffix.to_owned())
    }

    /// For a time that must not be asked for.
    fn not_asked() -> Option<SystemTime> {
        panic!("the modification time was looked up")
    }

    #[test]
    fn glob_bases_table() {
        let cases = [
            ("/var/log/containers/*.log", "/var/log/containers"),
            ("/var/log/pods/*/*/*.log", "/var/log/pods"),
            (
                "/var/lib/docker/containers/*/*-json.log",
                "/var/lib/docker/containers",
            ),
            ("/var/log/app.log", "/var/log"),
            ("/var/log/app-[0-9].log", "/var/log"),
            ("logs/*.log", "logs"),
        ];
        for (pattern, want) in cases {
            assert_eq!(glob_base(pattern), PathBuf::from(want), "{pattern}");
        }
    }

    #[test]
    fn numbered_files_count_up_only_when_their_times_say_so() {
        let n = Rank::Numbered;
        // dockerd, logrotate: `.1` is the newest.
        assert!(!counts_up([(&n(1), at(20)), (&n(2), at(10))].into_iter()));
        assert!(counts_up(
            [(&n(1), at(10)), (&n(3), at(30)), (&Rank::Current, at(5))].into_iter()
        ));
        // Nothing tells: shifting, the usual scheme.
        assert!(!counts_up([(&n(4), at(10))].into_iter()));
        assert!(!counts_up(std::iter::empty()));
    }

    #[test]
    fn sequence_order_puts_older_files_first() {
        let cases = [
            // Dated files go by date, whatever their times.
            (
                dated("20240101-000000"),
                at(9),
                dated("20240102-000000"),
                at(1),
                Less,
            ),
            // Dated files come before numbered ones, and both before the current file.
            (
                dated("20240101-000000"),
                at(9),
                Rank::Numbered(3),
                at(1),
                Less,
            ),
            (
                Rank::Current,
                at(1),
                dated("20240102-000000"),
                at(9),
                Greater,
            ),
            (Rank::Current, at(1), Rank::Numbered(1), at(9), Greater),
            // Numbered files go by time: `.1` is the newest where rotation shifts the
            // numbers, the oldest where it counts up.
            (Rank::Numbered(1), at(9), Rank::Numbered(2), at(1), Greater),
            (Rank::Numbered(1), at(1), Rank::Numbered(2), at(9), Less),
            // Written in the same tick: the higher number is the older.
            (Rank::Numbered(1), at(5), Rank::Numbered(2), at(5), Greater),
            (Rank::Numbered(3), at(5), Rank::Numbered(2), at(5), Less),
            // The same rank goes by time.
            (Rank::Current, at(1), Rank::Current, at(2), Less),
        ];
        for (a, a_time, b, b_time, want) in cases {
            assert_eq!(
                sequence_order(&a, a_time, &b, b_time),
                want,
                "{a:?} at {a_time:?} vs {b:?} at {b_time:?}"
            );
            assert_eq!(
                sequence_order(&b, b_time, &a, a_time),
                want.reverse(),
                "{b:?} at {b_time:?} vs {a:?} at {a_time:?}"
            );
        }
    }

    #[test]
    fn after_admits_only_the_files_that_come_later() {
        let by_rank = After::Rank(dated("20240102-000000"));
        assert!(!by_rank.admits(&dated("20240101-000000"), at(9)));
        assert!(!by_rank.admits(&dated("20240102-000000"), at(9)));
        assert!(by_rank.admits(&dated("20240103-000000"), at(0)));
        assert!(by_rank.admits(&Rank::Current, at(0)));

        let by_time = After::Modified(at(5));
        assert!(!by_time.admits(&Rank::Current, at(4)));
        // Written in the same clock tick: it may be the newer one.
        assert!(by_time.admits(&Rank::Numbered(1), at(5)));
        assert!(by_time.admits(&dated("19700101-000000"), at(6)));

        assert!(After::Start.admits(&dated("19700101-000000"), at(0)));
    }

    #[test]
    fn a_rotated_file_is_followed_by_name_or_by_time() {
        let day = dated("20240102-000000");
        // Renamed to a dated name: the later dates, without looking at the file.
        assert_eq!(
            After::after_rotated(day.clone(), true, not_asked),
            Some(After::Rank(day.clone()))
        );
        // Numbered, deleted, or renamed out of its directory: what was written after it.
        for (rank, renamed) in [
            (Rank::Numbered(1), true),
            (Rank::Current, false),
            (Rank::Current, true),
            (day.clone(), false),
        ] {
            assert_eq!(
                After::after_rotated(rank.clone(), renamed, || Some(at(5))),
                Some(After::Modified(at(5))),
                "{rank:?} renamed: {renamed}"
            );
        }
        // Closed: by its name when renamed; when deleted, nothing tells.
        assert_eq!(
            After::after_rotated(Rank::Numbered(1), true, || None),
            Some(After::Rank(Rank::Numbered(1)))
        );
        assert_eq!(After::after_rotated(Rank::Current, false, || None), None);
    }

    #[test]
    fn an_idle_container_goes_on_after_its_newest_file() {
        let day = dated("20240102-000000");
        // Deleted: what was written since, whatever its name.
        assert_eq!(
            After::after_idle(Rank::Current, Some(at(5)), not_asked),
            Some(After::Modified(at(5)))
        );
        assert_eq!(
            After::after_idle(day.clone(), Some(at(5)), not_asked),
            Some(After::Modified(at(5)))
        );
        // The current file, still there: nothing to look for.
        assert_eq!(After::after_idle(Rank::Current, None, not_asked), None);
        // Dated: the later dates.
        assert_eq!(
            After::after_idle(day.clone(), None, not_asked),
            Some(After::Rank(day))
        );
        // Numbered: by its time, when it can be looked at.
        assert_eq!(
            After::after_idle(Rank::Numbered(2), None, || Some(at(7))),
            Some(After::Modified(at(7)))
        );
        assert_eq!(After::after_idle(Rank::Numbered(2), None, || None), None);
    }

    #[test]
    fn the_newest_saved_file_is_followed_by_name_unless_numbered() {
        let day = dated("20240102-000000");
        assert_eq!(
            After::after_saved(Rank::Numbered(3), at(7)),
            After::Modified(at(7))
        );
        assert_eq!(After::after_saved(day.clone(), at(7)), After::Rank(day));
        assert_eq!(
            After::after_saved(Rank::Current, at(7)),
            After::Rank(Rank::Current)
        );
    }

    #[test]
    fn compressed_files_are_lost_unless_read_or_counted() {
        use Compressed::*;
        let cases = [
            // (plain file being read, registry knows it (finished?), counted, what)
            (true, None, 0, Read),
            (true, Some(false), 1, Read),
            (false, Some(true), 0, Read),
            (false, Some(true), 1, Read),
            (false, Some(false), 0, Unfinished),
            (false, Some(false), 2, Unfinished),
            (false, None, 1, Counted),
            (false, None, 0, Lost),
        ];
        for (tracked, saved, counted, want) in cases {
            assert_eq!(
                Compressed::of(tracked, saved, counted),
                want,
                "tracked {tracked}, saved {saved:?}, counted {counted}"
            );
        }
    }
}
