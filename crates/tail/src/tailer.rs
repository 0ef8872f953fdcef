//! The tailing engine: discovery, harvesting, rotation, reassembly across files,
//! acknowledgements and the registry.
//!
//! The engine is synchronous and driven from outside ([`Tailer::scan`], [`Tailer::poll`],
//! [`Tailer::commit`]), so that tests can step it deterministically and a host can run it
//! on a thread of its own.
//!
//! # How offsets stay safe
//!
//! Every line handed to the reassembler places a *hold* on its file at the offset where
//! the line starts, owned by the entry the line belongs to (an entry that spans a rotation
//! holds both files). A hold is released when the event built from the entry is
//! acknowledged. The offset saved for a file is the lowest hold, or the end of what was
//! read when there is none: always the start of an unacknowledged entry (invariant 1), and
//! a restart re-reads every chunk of every entry not yet acknowledged (invariant 2).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use logtide_container_log::{parse_line, Entry, Format, Reassembler, ReassemblerConfig, Stream};
use logtide_event::{AckOutcome, AckToken, Acknowledge, Event, LogEntry, Source, Timestamp};
use regex::Regex;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::config::{RegistryConfig, StreamFilter, TailConfig};
use crate::identity::{
    fingerprint, fingerprint_matches, prefix_hash, read_range, FileId, RangeHash, FINGERPRINT_BYTES,
};
use crate::reader::{LineAt, Reader};
use crate::registry::{LoadReport, Registry, RegistryEntry, SkipRange};
use crate::{container_of, Error, TailStats};

/// Internal number of a file generation (a copytruncate starts a new one).
type FileKey = u64;

/// How soon a scan is repeated while files wait for a slot under `harvester_limit`.
const DEFERRED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// How far back resume looks for the state of partial entries when it must infer it.
const LOOKBACK_BYTES: u64 = 64 * 1024;

/// Acknowledgements received from sinks, drained by [`Tailer::commit`].
#[derive(Debug, Default)]
struct AckQueue {
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

/// Whether lines of a stream are skipped on resume because they continue an entry that
/// was shipped before the resume offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    None,
    /// Skip lines up to and including the next full (`F`) chunk.
    UntilFull,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Found by discovery at its path.
    Live,
    /// No longer at a discovered path (renamed or deleted); drained, then finished.
    Gone { since: Instant },
    /// Read to the end and closed for good.
    Finished,
}

#[derive(Debug)]
struct FileState {
    id: FileId,
    /// Real path (symlinks resolved) where the file was last seen.
    path: PathBuf,
    /// The path as discovered (e.g. the /var/log/containers symlink): `log.file.path`.
    shown_path: Arc<str>,
    /// `dev:ino` plus the fingerprint: the event source identity.
    source_id: Option<Arc<str>>,
    container: Arc<str>,
    /// `container` as a small number, the key under which chunks are joined.
    group: u32,
    container_id: Option<Arc<str>>,
    reader: Option<Reader>,
    fingerprint: Option<RangeHash>,
    /// End of the last line handed out.
    read_offset: u64,
    status: Status,
    last_growth: Instant,
    skip: [Skip; 2],
    /// Replaced by a newer generation after a copytruncate: kept only for its holds.
    superseded: bool,
    /// Saved (offset, skip ranges) last written to the registry.
    saved: Option<(u64, Vec<SkipRange>)>,
    /// Ranges of lines to skip on resume (chunks of entries already shipped).
    skip_ranges: Vec<SkipRange>,
    /// The last read reached the end: before reading on, check for truncation.
    was_at_eof: bool,
    /// Read order among the files of a container: older files first. A new generation
    /// after a truncation keeps the order of the file it replaces.
    order: u64,
}

impl FileState {
    fn at_eof_and_idle(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.buffered() == 0)
    }
}

/// Where a chunk came from; the reassembler reports it for an entry's first chunk.
#[derive(Clone, Debug)]
struct Chunk {
    offset: u64,
    path: Arc<str>,
    source: Arc<str>,
    container_id: Option<Arc<str>>,
}

/// A span of one entry inside one file: the lines from its first to its last chunk there.
#[derive(Clone, Copy, Debug)]
struct Span {
    file: FileKey,
    start: u64,
    end: u64,
    stream: Stream,
}

/// An acknowledged entry of several chunks, remembered while a restart could read some of
/// its chunks again; `pseudo` entries stand for skip ranges carried over from the registry.
#[derive(Debug)]
struct AckedEntry {
    spans: Vec<Span>,
    pseudo: bool,
}

/// What an entry holds while it is pending or in flight.
#[derive(Debug)]
struct Track {
    holds: Vec<(FileKey, u64)>,
    spans: Vec<Span>,
    chunks: u32,
    cut: bool,
    end: u64,
    since: Instant,
}

/// Events in flight, by sequence number: a window that starts at the oldest event not yet
/// acknowledged (acknowledgements come mostly in order, so this stays small and needs no
/// hashing).
#[derive(Debug, Default)]
struct Inflight {
    base: u64,
    slots: std::collections::VecDeque<Option<Track>>,
    len: usize,
}

impl Inflight {
    fn insert(&mut self, seq: u64, track: Track) {
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

    fn remove(&mut self, seq: u64) -> Option<Track> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let track = self.slots.get_mut(index)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(track)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The parts of the engine that process lines, apart from the file table.
struct Core {
    reassembler: Reassembler<u32, Chunk>,
    pending: FxHashMap<(u32, Stream), Track>,
    /// Containers numbered, so that joining keys are cheap to hash.
    groups: HashMap<Arc<str>, u32>,
    holds: FxHashMap<FileKey, BTreeMap<u64, u32>>,
    /// Acknowledged entries of several chunks that a restart could read only partly.
    acked: Vec<AckedEntry>,
    inflight: Inflight,
    acks: Arc<AckQueue>,
    ack_target: Arc<dyn Acknowledge>,
    next_event: u64,
    stats: TailStats,
    /// Set by a resume that found a file rewritten while logtide was stopped.
    discontinuity: bool,
    /// Events produced outside a poll (flushed on a discontinuity), handed out by the next.
    deferred: Vec<Event>,
    format: Format,
    streams: StreamFilter,
}

fn stream_index(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn into_string(bytes: Cow<'_, [u8]>) -> String {
    match bytes {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        Cow::Owned(v) => String::from_utf8(v)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

impl Core {
    /// The number of a container, given on first sight.
    fn group_of(&mut self, container: &Arc<str>) -> u32 {
        let next = self.groups.len() as u32;
        *self.groups.entry(container.clone()).or_insert(next)
    }

    fn hold(&mut self, file: FileKey, offset: u64) {
        *self
            .holds
            .entry(file)
            .or_default()
            .entry(offset)
            .or_insert(0) += 1;
    }

    fn release(&mut self, file: FileKey, offset: u64) {
        if let Some(h) = self.holds.get_mut(&file) {
            if let Some(n) = h.get_mut(&offset) {
                *n -= 1;
                if *n == 0 {
                    h.remove(&offset);
                }
            }
            if h.is_empty() {
                self.holds.remove(&file);
            }
        }
    }

    fn lowest_hold(&self, file: FileKey) -> Option<u64> {
        self.holds.get(&file).and_then(|h| h.keys().next().copied())
    }

    /// Handles one line read from `file`.
    fn line(
        &mut self,
        now: Instant,
        key: FileKey,
        f: &mut FileState,
        at: &LineAt,
        bytes: &[u8],
        out: &mut Vec<Event>,
    ) {
        self.stats.lines += 1;
        self.stats.bytes += at.end - at.start;
        if at.cut {
            self.stats.lines_too_long += 1;
        }
        let line = match parse_line(bytes, self.format) {
            Ok(l) => l,
            Err(e) => {
                self.stats.parse_errors += 1;
                tracing::warn!(file = %f.shown_path, offset = at.start, error = %e, "skipping a line that cannot be parsed");
                return;
            }
        };
        if !self.streams.accepts(line.stream) {
            self.stats.lines_filtered += 1;
            return;
        }
        let si = stream_index(line.stream);
        let in_range = f
            .skip_ranges
            .iter()
            .any(|r| r.stream == line.stream && r.start <= at.start && at.start < r.end);
        if in_range {
            self.stats.resume_skipped_chunks += 1;
            return;
        }
        if f.skip[si] == Skip::UntilFull {
            if !line.partial {
                f.skip[si] = Skip::None;
                // The end of the shipped entry is known now: keep it in the registry until
                // reading passes it.
                self.acked.push(AckedEntry {
                    spans: vec![Span {
                        file: key,
                        start: 0,
                        end: at.end,
                        stream: line.stream,
                    }],
                    pseudo: true,
                });
            }
            self.stats.resume_skipped_chunks += 1;
            return;
        }
        let group = f.group;
        let pkey = (group, line.stream);
        let track = self.pending.entry(pkey).or_insert_with(|| Track {
            holds: Vec::with_capacity(1),
            spans: Vec::new(),
            chunks: 0,
            cut: false,
            end: at.end,
            since: now,
        });
        track.chunks += 1;
        track.cut |= at.cut;
        track.end = at.end;
        let new_file = !track.holds.iter().any(|(k, _)| *k == key);
        if new_file {
            track.holds.push((key, at.start));
            track.spans.push(Span {
                file: key,
                start: at.start,
                end: at.end,
                stream: line.stream,
            });
        } else if let Some(s) = track.spans.iter_mut().rev().find(|s| s.file == key) {
            s.end = at.end;
        }
        if new_file {
            self.hold(key, at.start);
        }
        let chunk = Chunk {
            offset: at.start,
            path: f.shown_path.clone(),
            source: f
                .source_id
                .clone()
                .unwrap_or_else(|| Arc::from(f.id.to_string())),
            container_id: f.container_id.clone(),
        };
        let mut finished: Vec<Entry<'_, u32, Chunk>> = Vec::new();
        self.reassembler
            .push(&group, &line, chunk, |e| finished.push(e));
        for entry in finished {
            self.finish(entry, out);
        }
    }

    /// Turns a finished (or flushed) entry into an event that carries its holds.
    fn finish(&mut self, entry: Entry<'_, u32, Chunk>, out: &mut Vec<Event>) {
        let Some(track) = self.pending.remove(&(entry.key, entry.stream)) else {
            return;
        };
        if entry.partial {
            self.stats.partial_flushed += 1;
        }
        let truncated = entry.truncated || track.cut;
        if truncated {
            self.stats.entries_truncated += 1;
        }
        let chunk = &entry.start;
        let docker_attrs = entry
            .attrs
            .as_deref()
            .and_then(|a| serde_json::from_slice::<Value>(a).ok());
        let fields = LogEntry {
            message: into_string(entry.message),
            stream: entry.stream.as_str(),
            path: chunk.path.clone(),
            offset: chunk.offset,
            partial: entry.partial,
            truncated,
            container_id: chunk.container_id.clone(),
            docker_attrs,
            input_type: "container",
        };
        let mut event = Event::from_log_entry(entry.time, fields);
        event.set_source(Source {
            id: chunk.source.clone(),
            start: chunk.offset,
            end: track.end,
        });
        let seq = self.next_event;
        self.next_event += 1;
        event.set_ack(AckToken::new(self.ack_target.clone(), seq));
        self.inflight.insert(seq, track);
        self.stats.events += 1;
        out.push(event);
    }

    /// Applies acknowledgements received so far.
    fn drain_acks(&mut self) {
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
                self.release(*file, *offset);
            }
            if track.chunks > 1 {
                self.acked.push(AckedEntry {
                    spans: track.spans,
                    pseudo: false,
                });
            }
        }
    }
}

/// Tails container log files; see the [crate documentation](crate).
pub struct Tailer {
    config: TailConfig,
    registry_config: RegistryConfig,
    exclude: Vec<Regex>,
    files: BTreeMap<FileKey, FileState>,
    by_id: HashMap<FileId, FileKey>,
    core: Core,
    registry: Registry,
    registry_dirty: bool,
    last_registry_write: Option<Instant>,
    last_scan: Option<Instant>,
    orphans_checked: bool,
    next_key: FileKey,
    load_report: LoadReport,
    /// The read buffer, lent to each file in turn while it is read.
    shared: Vec<u8>,
    /// Files are waiting for a slot under `harvester_limit`: scan again soon.
    deferred: bool,
    /// How many tracked files each path (`log.file.path`) has.
    path_files: HashMap<Arc<str>, usize>,
    /// Paths that gained their first or lost their last file, not yet taken.
    changes: Vec<FileChange>,
    /// Bytes lost, not yet taken.
    losses: Vec<Loss>,
}

/// How far one file is read and shipped (see [`Tailer::progress`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileProgress {
    /// The path as discovered (`log.file.path`).
    pub path: Arc<str>,
    /// The file's size now; `None` when it is gone from its path.
    pub size: Option<u64>,
    /// The end of the last line read.
    pub read: u64,
    /// Where a restart would read from: every entry before it is acknowledged.
    pub shipped: u64,
    /// When the oldest entry of this file still waiting for acknowledgement was read.
    pub oldest_unshipped: Option<Instant>,
}

impl FileProgress {
    /// Bytes written to the file but not yet shipped (read or not).
    pub fn behind(&self) -> u64 {
        self.size.unwrap_or(self.read).saturating_sub(self.shipped)
    }
}

/// Bytes of a file that will never be read (see [`Tailer::take_losses`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loss {
    /// The path as discovered (`log.file.path`).
    pub path: Arc<str>,
    /// How many bytes.
    pub bytes: u64,
    /// Why: `deleted_before_read` (the file was deleted or rotated away and given up on
    /// before it was read to its end).
    pub reason: &'static str,
}

/// A change in the set of paths the tailer reads, for whoever keeps something per file
/// (see [`Tailer::take_file_changes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// The tailer started reading a file at this path (`log.file.path`).
    Started(Arc<str>),
    /// The tailer is done with every file at this path: read to its end after it was
    /// deleted or rotated away and every line acknowledged, or given up on.
    Finished(Arc<str>),
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("files", &self.files.len())
            .field("stats", &self.core.stats)
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// Validates the configuration and loads the registry.
    pub fn open(config: TailConfig, registry_config: RegistryConfig) -> Result<Self, Error> {
        if config.paths.is_empty() {
            return Err(Error::Config("paths: at least one glob is required".into()));
        }
        for (i, p) in config.paths.iter().enumerate() {
            glob::Pattern::new(p)
                .map_err(|e| Error::Config(format!("paths[{i}]: invalid glob {p:?}: {e}")))?;
        }
        let exclude = config
            .exclude_files
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Regex::new(r).map_err(|e| {
                    Error::Config(format!("exclude_files[{i}]: invalid regexp {r:?}: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if config.max_line_bytes == 0
            || config.read_buffer_bytes == 0
            || config.harvester_limit == 0
        {
            return Err(Error::Config(
                "max_line_bytes, read_buffer_bytes and harvester_limit must be at least 1".into(),
            ));
        }
        let (registry, load_report) = Registry::load(&registry_config.path)?;
        if let Some(aside) = &load_report.moved_aside {
            tracing::error!(moved_to = %aside.display(), problem = ?load_report.problem,
                "registry unreadable: moved aside, files are read from their start");
        }
        let acks = Arc::new(AckQueue::default());
        let ack_target: Arc<dyn Acknowledge> = acks.clone();
        let (format, streams) = (config.format.to_format(), config.stream);
        let reassembler = Reassembler::new(ReassemblerConfig {
            max_entry_bytes: config.max_entry_bytes,
            ..ReassemblerConfig::default()
        });
        Ok(Tailer {
            config,
            registry_config,
            exclude,
            files: BTreeMap::new(),
            by_id: HashMap::new(),
            core: Core {
                reassembler,
                pending: FxHashMap::default(),
                groups: HashMap::new(),
                holds: FxHashMap::default(),
                acked: Vec::new(),
                inflight: Inflight::default(),
                acks,
                ack_target,
                next_event: 0,
                stats: TailStats::default(),
                discontinuity: false,
                deferred: Vec::new(),
                format,
                streams,
            },
            registry,
            registry_dirty: false,
            last_registry_write: None,
            last_scan: None,
            orphans_checked: false,
            next_key: 0,
            load_report,
            shared: Vec::new(),
            deferred: false,
            path_files: HashMap::new(),
            changes: Vec::new(),
            losses: Vec::new(),
        })
    }

    /// What loading the registry found.
    pub fn load_report(&self) -> &LoadReport {
        &self.load_report
    }

    /// Counters so far.
    pub fn stats(&self) -> TailStats {
        let mut s = self.core.stats;
        let r = self.core.reassembler.stats();
        s.entries_joined = r.joined;
        s.partial_evicted = r.evicted;
        s.open_files = self.files.values().filter(|f| f.reader.is_some()).count() as u64;
        s.tracked_files = self.files.len() as u64;
        s.pending_entries = self.core.reassembler.pending_len() as u64;
        s.inflight_events = self.core.inflight.len() as u64;
        s
    }

    /// The saved positions (as of the last commit).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Directories worth watching for changes: the fixed part of each glob and the
    /// directories of the files being read.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .config
            .paths
            .iter()
            .map(|p| glob_base(p))
            .chain(
                self.files
                    .values()
                    .filter_map(|f| f.path.parent().map(Path::to_owned)),
            )
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn excluded(&self, path: &Path) -> bool {
        let s = path.to_string_lossy();
        self.exclude.iter().any(|r| r.is_match(&s))
    }

    fn open_count(&self) -> usize {
        self.files.values().filter(|f| f.reader.is_some()).count()
    }

    /// Makes room for one more open file when at the limit, by closing the idlest live
    /// file that was read to its end and has nothing unacknowledged (never one opened but
    /// not read yet). Returns whether there is room.
    fn make_room(&mut self) -> bool {
        if self.open_count() < self.config.harvester_limit {
            return true;
        }
        let victim = self
            .files
            .iter()
            .filter(|(k, f)| {
                f.reader.is_some()
                    && f.status == Status::Live
                    && f.was_at_eof
                    && f.at_eof_and_idle()
                    && !self.core.holds.contains_key(k)
            })
            .min_by_key(|(_, f)| f.last_growth)
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                if let Some(f) = self.files.get_mut(&k) {
                    f.reader = None;
                    self.core.stats.files_closed_inactive += 1;
                }
                true
            }
            None => false,
        }
    }

    /// Expands the globs and starts, follows or stops files accordingly. Also run by
    /// [`Tailer::poll`] every `scan_frequency`.
    pub fn scan(&mut self, now: Instant) {
        self.last_scan = Some(now);
        self.deferred = false;
        self.core.stats.scans += 1;
        if !self.orphans_checked {
            self.orphans_checked = true;
            self.resume_orphans(now);
        }
        let mut seen: HashSet<FileId> = HashSet::new();
        let mut listed: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
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
        for (_, shown) in listed {
            self.discovered(now, &shown, &mut seen);
        }
        // Live files no longer found are renamed or deleted: drain them.
        for f in self.files.values_mut() {
            if f.status == Status::Live && !f.superseded && !seen.contains(&f.id) {
                f.status = Status::Gone { since: now };
                if let Some(found) = find_by_id(&f.path, f.id) {
                    if found != f.path {
                        self.core.stats.renames += 1;
                        f.path = found;
                    }
                }
            }
        }
    }

    fn discovered(&mut self, now: Instant, shown: &Path, seen: &mut HashSet<FileId>) {
        let meta = match fs::metadata(shown) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return,
            Err(e) => {
                // Vanished between listing and stat, or a dangling symlink.
                self.core.stats.scan_errors += 1;
                tracing::debug!(path = %shown.display(), error = %e, "file vanished while scanning");
                return;
            }
        };
        let id = FileId::of(&meta);
        if !seen.insert(id) {
            return;
        }
        if let Some(&key) = self.by_id.get(&id) {
            let f = self
                .files
                .get_mut(&key)
                .expect("by_id points at a tracked file");
            if f.status != Status::Finished {
                let real = fs::canonicalize(shown).unwrap_or_else(|_| shown.to_owned());
                if real != f.path {
                    self.core.stats.renames += 1;
                    f.path = real;
                }
                f.status = Status::Live;
                if f.reader.is_none() && meta.len() != f.read_offset {
                    self.reopen(now, key);
                }
                return;
            }
            // A finished file is back at a discovered path: same inode, maybe a new file.
        }
        self.start_file(now, shown, id, meta.len());
    }

    /// Reopens a closed live file that grew (or shrank: then it starts over).
    fn reopen(&mut self, now: Instant, key: FileKey) {
        if !self.make_room() {
            self.core.stats.open_deferred += 1;
            self.deferred = true;
            return;
        }
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        match File::open(&f.path) {
            Ok(file) if FileId::of_file(&file).is_ok_and(|id| id == f.id) => {
                let still_same = f
                    .fingerprint
                    .as_ref()
                    .is_none_or(|fp| fingerprint_matches(&file, fp).unwrap_or(false));
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if !still_same || len < f.read_offset {
                    // Rewritten in place while closed: start over (possible loss counted).
                    self.core.stats.truncations += 1;
                    f.read_offset = 0;
                    f.fingerprint = None;
                    f.skip = [Skip::None; 2];
                }
                f.reader = Some(Reader::new(file, f.read_offset));
                f.last_growth = now;
                self.core.stats.files_opened += 1;
            }
            Ok(_) | Err(_) => {
                self.core.stats.open_errors += 1;
            }
        }
    }

    fn new_key(&mut self) -> FileKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    /// Starts reading a newly discovered file, resuming from the registry when it knows it.
    fn start_file(&mut self, now: Instant, shown: &Path, id: FileId, len: u64) {
        if !self.make_room() {
            self.core.stats.open_deferred += 1;
            self.deferred = true;
            return;
        }
        let file = match File::open(shown) {
            Ok(f) => f,
            Err(e) => {
                self.core.stats.open_errors += 1;
                tracing::warn!(path = %shown.display(), error = %e, "cannot open file");
                return;
            }
        };
        match FileId::of_file(&file) {
            Ok(opened) if opened == id => {}
            _ => {
                // Replaced between stat and open; the next scan sees the new one.
                self.core.stats.scan_errors += 1;
                return;
            }
        }
        let real = fs::canonicalize(shown).unwrap_or_else(|_| shown.to_owned());
        let (container, container_id) = container_of(shown, &real);
        let group = self.core.group_of(&container);
        let fp = fingerprint(&file).ok();
        self.core.discontinuity = false;
        let (offset, skip, skip_ranges) = self.resume_point(&file, id, len, &real);
        if std::mem::take(&mut self.core.discontinuity) {
            // The bytes that would have continued this container's pending entries are
            // gone: emit those entries as partial instead of joining them with new content.
            let mut flushed = Vec::new();
            self.core.reassembler.flush_key(&group, |e| flushed.push(e));
            let mut out = std::mem::take(&mut self.core.deferred);
            for e in flushed {
                self.core.finish(e, &mut out);
            }
            self.core.deferred = out;
        }
        self.core.stats.files_opened += 1;
        let key = self.new_key();
        // Ranges to skip stay recorded until reading passes them, so that another restart
        // skips them too.
        for r in &skip_ranges {
            self.core.acked.push(AckedEntry {
                spans: vec![Span {
                    file: key,
                    start: r.start,
                    end: r.end,
                    stream: r.stream,
                }],
                pseudo: true,
            });
        }
        let state = FileState {
            id,
            path: real,
            shown_path: Arc::from(shown.to_string_lossy().as_ref()),
            source_id: source_id(&file, id),
            container,
            group,
            container_id,
            reader: Some(Reader::new(file, offset)),
            fingerprint: fp,
            read_offset: offset,
            status: Status::Live,
            last_growth: now,
            skip,
            superseded: false,
            saved: None,
            skip_ranges,
            was_at_eof: false,
            order: key,
        };
        if let Some(old) = self.by_id.insert(id, key) {
            if let Some(f) = self.files.get_mut(&old) {
                f.superseded = true;
                f.reader = None;
                f.status = Status::Finished;
            }
        }
        self.track(&state.shown_path);
        self.files.insert(key, state);
    }

    /// Counts one more file at `path`.
    fn track(&mut self, path: &Arc<str>) {
        let n = self.path_files.entry(path.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.changes.push(FileChange::Started(path.clone()));
        }
    }

    /// Counts one file fewer at `path`.
    fn untrack(&mut self, path: &Arc<str>) {
        if let Some(n) = self.path_files.get_mut(path) {
            *n -= 1;
            if *n == 0 {
                self.path_files.remove(path);
                self.changes.push(FileChange::Finished(path.clone()));
            }
        }
    }

    /// The bytes given up on since the last call, per file (also counted in
    /// [`TailStats::bytes_lost_removed`]).
    pub fn take_losses(&mut self) -> Vec<Loss> {
        std::mem::take(&mut self.losses)
    }

    /// The paths that gained their first tracked file or lost their last one since the
    /// last call, in order. A path is `Started` again if a file appears there after it
    /// was `Finished`.
    pub fn take_file_changes(&mut self) -> Vec<FileChange> {
        std::mem::take(&mut self.changes)
    }

    /// Where to start reading a file the registry may know, and which continuation chunks
    /// to skip there.
    fn resume_point(
        &mut self,
        file: &File,
        id: FileId,
        len: u64,
        real: &Path,
    ) -> (u64, [Skip; 2], Vec<SkipRange>) {
        let Some(entry) = self.registry.get(id).cloned() else {
            return (0, [Skip::None; 2], Vec::new());
        };
        if let Some(fp) = &entry.fingerprint {
            if !fingerprint_matches(file, fp).unwrap_or(false) {
                // Same inode, different file: the old one was deleted (whatever of it was
                // not read is gone, and cannot be told from a file that was finished).
                self.core.stats.inode_reused += 1;
                return (0, [Skip::None; 2], Vec::new());
            }
        }
        if entry.offset > len {
            self.core.stats.truncations += 1;
            self.core.discontinuity = true;
            tracing::warn!(path = %real.display(), saved = entry.offset, size = len,
                "file is shorter than its saved offset (truncated while stopped): reading from the start");
            return (0, [Skip::None; 2], Vec::new());
        }
        if entry.offset == 0 {
            return (0, [Skip::None; 2], entry.skip);
        }
        let at_line_start = read_range(file, entry.offset - 1, 1).is_ok_and(|b| b == b"\n");
        match entry.prefix {
            Some(prefix) if at_line_start => {
                if prefix_hash(file, entry.offset).is_ok_and(|h| h == prefix) {
                    return (entry.offset, [Skip::None; 2], entry.skip);
                }
                self.core.stats.resume_hash_mismatch += 1;
                self.core.discontinuity = true;
                tracing::warn!(path = %real.display(), offset = entry.offset,
                    "bytes before the saved offset changed: reading the file from the start");
                (0, [Skip::None; 2], Vec::new())
            }
            _ => {
                // Older registries and imports carry no check hash; their offset may also
                // point inside a line. Move to the next line start and infer which streams
                // are inside an entry there.
                let offset = if at_line_start {
                    entry.offset
                } else {
                    self.core.stats.resume_realigned += 1;
                    let next = next_line_start(file, entry.offset, len);
                    tracing::warn!(path = %real.display(), saved = entry.offset, resumed = next,
                        "saved offset is inside a line: resuming at the next line");
                    next
                };
                (offset, infer_skip(file, offset), Vec::new())
            }
        }
    }

    /// After a restart, files the registry still has unread or unacknowledged data for
    /// that are no longer at a discovered path (rotated away) are drained first.
    fn resume_orphans(&mut self, now: Instant) {
        let mut found: Vec<(std::time::SystemTime, PathBuf, RegistryEntry, u64)> = Vec::new();
        for e in self.registry.entries() {
            // `removed` only means "no longer at a discovered path": a rotated file can
            // still hold the head of an entry that is not acknowledged.
            if self.by_id.contains_key(&e.id()) {
                continue;
            }
            let Some(path) = find_by_id(&e.path, e.id()) else {
                continue;
            };
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let unchanged = e.fingerprint.as_ref().is_none_or(|fp| {
                File::open(&path).is_ok_and(|f| fingerprint_matches(&f, fp).unwrap_or(false))
            });
            if !unchanged {
                // Rewritten in place (then read again from the start), or another file that
                // got the inode: only a file of the same container can be the former.
                let (container, _) = container_of(&path, &path);
                if e.container.as_deref() != Some(&*container) {
                    continue;
                }
            }
            // Read to its end already.
            if meta.len() == e.offset && unchanged {
                continue;
            }
            let is_discovered = self
                .config
                .paths
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .any(|p| p.matches_path(&path));
            if !is_discovered {
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((mtime, path, e.clone(), meta.len()));
            }
        }
        // Older files first: an entry that spans a rotation starts in the older file, and
        // inode numbers say nothing about age.
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (_, path, e, len) in found {
            self.start_file(now, &path, e.id(), len);
            if let Some(&key) = self.by_id.get(&e.id()) {
                if let Some(f) = self.files.get_mut(&key) {
                    f.status = Status::Gone { since: now };
                    // The container it was read under (a rotated file's path may no longer
                    // name it, e.g. when it was found through a /var/log/containers link).
                    if let Some(c) = &e.container {
                        f.container = Arc::from(c.as_str());
                        f.group = self.core.group_of(&f.container);
                    }
                }
            }
        }
    }

    /// Reads what is available, up to about `budget` events, into `out`. Scans first when
    /// a scan is due. Returns the number of events added.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Event>, budget: usize) -> usize {
        // Files waiting for a slot under harvester_limit are retried soon, not only at
        // the next regular scan.
        let retry = if self.deferred {
            DEFERRED_RETRY
        } else {
            self.config.scan_frequency
        };
        let due = self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= retry.min(self.config.scan_frequency));
        if due {
            self.scan(now);
        }
        out.append(&mut self.core.deferred);
        let before = out.len();
        let mut blocked: HashSet<u32> = HashSet::new();
        let mut order: Vec<(u64, FileKey)> =
            self.files.iter().map(|(&k, f)| (f.order, k)).collect();
        order.sort_unstable();
        for (_, key) in order {
            if out.len() - before >= budget {
                break;
            }
            let Some(group) = self.files.get(&key).map(|f| f.group) else {
                continue;
            };
            if blocked.contains(&group) {
                continue;
            }
            let remaining = budget - (out.len() - before);
            let has_more = self.read_file(now, key, out, remaining);
            if has_more {
                // Later files of the same container wait until this one is drained.
                blocked.insert(group);
            }
        }
        self.flush_stale_partials(now, out);
        out.len() - before
    }

    /// Reads one file; returns whether it may have more to read right away.
    fn read_file(
        &mut self,
        now: Instant,
        key: FileKey,
        out: &mut Vec<Event>,
        budget: usize,
    ) -> bool {
        // A file that was idle may have been truncated or rewritten since: check before
        // reading what looks like new data at the old offset.
        let stale = self
            .files
            .get(&key)
            .is_some_and(|f| f.was_at_eof && rewritten_in_place(f));
        if stale {
            self.restart_generation(now, key);
            return true;
        }
        let chunk = self.config.read_buffer_bytes;
        let max_line = self.config.max_line_bytes;
        let Tailer {
            files,
            core,
            shared,
            ..
        } = self;
        let Some(f) = files.get_mut(&key) else {
            return false;
        };
        f.was_at_eof = false;
        let Some(mut reader) = f.reader.take() else {
            return false;
        };
        reader.attach(shared);
        let start_len = out.len();
        let mut more = false;
        let mut eof = false;
        loop {
            while let Some(at) = reader.next_line(max_line) {
                if f.source_id.is_none() {
                    f.source_id = source_id(&reader.file, f.id);
                }
                f.read_offset = at.end;
                let bytes = reader.bytes(at.range.clone());
                core.line(now, key, f, &at, bytes, out);
            }
            if out.len() - start_len >= budget {
                more = true;
                break;
            }
            match reader.fill(chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => f.last_growth = now,
                Err(e) => {
                    core.stats.read_errors += 1;
                    tracing::warn!(file = %f.shown_path, error = %e, "read failed; retrying later");
                    break;
                }
            }
        }
        if reader.skipped > 0 {
            core.stats.bytes_skipped_too_long += reader.skipped;
            reader.skipped = 0;
        }
        reader.detach(shared);
        f.reader = Some(reader);
        if eof {
            self.at_eof(now, key, out);
        }
        more
    }

    /// The file was truncated or rewritten in place (copytruncate): its old generation
    /// keeps only its holds, and a new generation is read from offset 0.
    fn restart_generation(&mut self, now: Instant, key: FileKey) {
        let new_key = self.new_key();
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        let Some(reader) = f.reader.take() else {
            return;
        };
        self.core.stats.truncations += 1;
        tracing::warn!(file = %f.shown_path, offset = reader.offset(),
            "file truncated (copytruncate): reading it again from the start; lines written just before the truncation may be lost");
        f.superseded = true;
        f.status = Status::Finished;
        let fp = fingerprint(&reader.file).ok();
        let state = FileState {
            id: f.id,
            path: f.path.clone(),
            shown_path: f.shown_path.clone(),
            source_id: source_id(&reader.file, f.id),
            container: f.container.clone(),
            group: f.group,
            container_id: f.container_id.clone(),
            reader: Some(Reader::new(reader.file, 0)),
            fingerprint: fp,
            read_offset: 0,
            status: Status::Live,
            last_growth: now,
            skip: [Skip::None; 2],
            superseded: false,
            saved: None,
            skip_ranges: Vec::new(),
            was_at_eof: false,
            order: f.order,
        };
        self.by_id.insert(state.id, new_key);
        self.track(&state.shown_path);
        self.files.insert(new_key, state);
    }

    /// Decides what happens to a file that has nothing more to read right now.
    fn at_eof(&mut self, now: Instant, key: FileKey, out: &mut Vec<Event>) {
        if self.files.get(&key).is_some_and(rewritten_in_place) {
            self.restart_generation(now, key);
            return;
        }
        let Tailer {
            files,
            core,
            config,
            ..
        } = self;
        let Some(f) = files.get_mut(&key) else { return };
        let Some(reader) = f.reader.as_ref() else {
            return;
        };
        let (len, nlink) = match reader.file.metadata() {
            Ok(m) => (m.len(), std::os::unix::fs::MetadataExt::nlink(&m)),
            Err(_) => (0, 1),
        };
        f.was_at_eof = true;
        // Keep the fingerprint growing until it covers its full length.
        if f.fingerprint
            .is_none_or(|fp| (fp.len as usize) < FINGERPRINT_BYTES && len > u64::from(fp.len))
        {
            if let Some(r) = f.reader.as_ref() {
                if let Ok(fp) = fingerprint(&r.file) {
                    f.fingerprint = Some(fp);
                    if f.source_id.is_none() {
                        f.source_id = source_id(&r.file, f.id);
                    }
                }
            }
        }
        match f.status {
            Status::Gone { since } => {
                let deleted = nlink == 0;
                let settled =
                    deleted || now.duration_since(since) >= std::time::Duration::from_secs(1);
                if settled {
                    // Nothing more will be written: a last unterminated line is still a line.
                    if let Some(mut r) = f.reader.take() {
                        if let Some(at) = r.take_rest() {
                            f.read_offset = at.end;
                            let bytes = r.bytes(at.range.clone()).to_vec();
                            core.line(now, key, f, &at, &bytes, out);
                        }
                    }
                    f.status = Status::Finished;
                    core.stats.files_drained += 1;
                }
            }
            Status::Live => {
                let idle = now.duration_since(f.last_growth) >= config.close_inactive;
                if idle && !core.holds.contains_key(&key) {
                    f.reader = None;
                    core.stats.files_closed_inactive += 1;
                }
            }
            Status::Finished => {}
        }
    }

    /// Emits, as partial, entries whose last chunk has not come for `flush_partial_after`.
    fn flush_stale_partials(&mut self, now: Instant, out: &mut Vec<Event>) {
        let wait = self.config.flush_partial_after;
        let stale: Vec<(u32, Stream)> = self
            .core
            .pending
            .iter()
            .filter(|(_, t)| now.duration_since(t.since) >= wait)
            .map(|(k, _)| *k)
            .collect();
        for (group, stream) in stale {
            let mut flushed = Vec::new();
            self.core
                .reassembler
                .flush(&group, stream, |e| flushed.push(e));
            for e in flushed {
                self.core.finish(e, out);
            }
        }
    }

    /// Gives up on deleted files that could not be drained within `close_removed_after`.
    fn give_up_on_removed(&mut self, now: Instant) {
        for f in self.files.values_mut() {
            if let Status::Gone { since } = f.status {
                if now.duration_since(since) >= self.config.close_removed_after {
                    if let Some(r) = f.reader.take() {
                        let len = r.file.metadata().map(|m| m.len()).unwrap_or(0);
                        let lost = len.saturating_sub(r.offset());
                        self.core.stats.removed_gave_up += 1;
                        self.core.stats.bytes_lost_removed += lost;
                        self.losses.push(Loss {
                            path: f.shown_path.clone(),
                            bytes: lost,
                            reason: "deleted_before_read",
                        });
                        tracing::error!(file = %f.shown_path, lost_bytes = lost,
                            "gave up draining a removed file (close_removed_after)");
                    }
                    f.status = Status::Finished;
                }
            }
        }
    }

    /// Applies acknowledgements, updates the registry and writes it when `flush` has
    /// elapsed (or `force`). Also cleans the registry and forgets finished files.
    pub fn commit(&mut self, now: Instant, force: bool) -> Result<(), Error> {
        self.core.drain_acks();
        self.give_up_on_removed(now);
        let wall = Timestamp::now();

        // Where each file would be read again from after a restart. Old generations
        // (copytruncate) are never read again.
        let offsets: HashMap<FileKey, u64> = self
            .files
            .iter()
            .filter(|(_, f)| !f.superseded)
            .map(|(&k, f)| {
                let held = self
                    .core
                    .lowest_hold(k)
                    .map_or(f.read_offset, |h| h.min(f.read_offset));
                (k, held)
            })
            .collect();
        let reread_from = |file: FileKey| offsets.get(&file).copied().unwrap_or(u64::MAX);
        // Acknowledged entries that a restart would read only partly: skip their chunks.
        let mut skips: HashMap<FileKey, Vec<SkipRange>> = HashMap::new();
        self.core.acked.retain(|e| {
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

        let mut finished_done = Vec::new();
        for (&key, f) in self.files.iter_mut() {
            if f.superseded {
                if !self.core.holds.contains_key(&key) {
                    finished_done.push(key);
                }
                continue;
            }
            let offset = offsets.get(&key).copied().unwrap_or(f.read_offset);
            let mut skip = skips.remove(&key).unwrap_or_default();
            skip.sort_unstable();
            skip.dedup();
            let removed = matches!(f.status, Status::Finished | Status::Gone { .. });
            let changed = f.saved.as_ref() != Some(&(offset, skip.clone()));
            // While a skip inferred on resume has not found its end, the registry keeps no
            // check hash, so that the next start infers again from the same offset.
            let inferring = f.skip.contains(&Skip::UntilFull);
            if changed {
                let prefix = match f.reader.as_ref() {
                    _ if inferring => None,
                    Some(r) => prefix_hash(&r.file, offset).ok(),
                    None => File::open(&f.path)
                        .ok()
                        .filter(|file| FileId::of_file(file).is_ok_and(|id| id == f.id))
                        .and_then(|file| prefix_hash(&file, offset).ok()),
                };
                let previous_removed = self.registry.get(f.id).and_then(|e| e.removed);
                self.registry.insert(RegistryEntry {
                    path: f.path.clone(),
                    dev: f.id.dev,
                    ino: f.id.ino,
                    fingerprint: f.fingerprint,
                    offset,
                    prefix,
                    skip: skip.clone(),
                    container: Some(f.container.to_string()),
                    updated: wall,
                    removed: if removed {
                        previous_removed.or(Some(wall))
                    } else {
                        None
                    },
                });
                f.saved = Some((offset, skip));
                self.registry_dirty = true;
            }
            if f.status == Status::Finished && !self.core.holds.contains_key(&key) {
                if let Some(e) = self.registry.get(f.id) {
                    if e.removed.is_none() {
                        let mut e = e.clone();
                        e.removed = Some(wall);
                        self.registry.insert(e);
                        self.registry_dirty = true;
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
            .registry
            .clean(wall, self.registry_config.clean_removed_after)
            > 0
        {
            self.registry_dirty = true;
        }
        let due = self
            .last_registry_write
            .is_none_or(|t| now.duration_since(t) >= self.registry_config.flush);
        if self.registry_dirty && (due || force) {
            match self.registry.save(&self.registry_config.path) {
                Ok(()) => {
                    self.registry_dirty = false;
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
        self.core
            .holds
            .values()
            .flat_map(|h| h.values())
            .map(|&n| n as usize)
            .sum()
    }

    /// Whether events are still waiting for acknowledgement.
    pub fn has_inflight(&self) -> bool {
        !self.core.inflight.is_empty()
    }

    /// How far each file being read is shipped, for self-monitoring. Costs one `fstat`
    /// per file and a walk over the events in flight: call it every few seconds, not per
    /// batch.
    pub fn progress(&self) -> Vec<FileProgress> {
        // The oldest event in flight holding each file: tracks are in read order.
        let mut oldest: HashMap<FileKey, Instant> = HashMap::new();
        for track in self.core.inflight.slots.iter().flatten() {
            for (file, _) in &track.holds {
                oldest.entry(*file).or_insert(track.since);
            }
        }
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
                let shipped = self
                    .core
                    .lowest_hold(key)
                    .map_or(f.read_offset, |h| h.min(f.read_offset));
                FileProgress {
                    path: f.shown_path.clone(),
                    size,
                    read: f.read_offset,
                    shipped,
                    oldest_unshipped: oldest.get(&key).copied(),
                }
            })
            .collect()
    }
}

impl FileId {
    /// The identity of an open file.
    pub fn of_file(file: &File) -> io::Result<FileId> {
        file.metadata().map(|m| FileId::of(&m))
    }
}

/// The identity of a file's events: device, inode and a hash of the file's first line.
/// The first line is complete before any event of the file exists and never changes, so
/// the identity is the same across restarts (unlike a fingerprint that grows with a young
/// file); it differs for a new file that reuses the inode. `None` while the file has no
/// complete first line yet.
fn source_id(file: &File, id: FileId) -> Option<Arc<str>> {
    let head = read_range(file, 0, FINGERPRINT_BYTES).ok()?;
    let first = match memchr::memchr(b'\n', &head) {
        Some(nl) => &head[..=nl],
        None if head.len() == FINGERPRINT_BYTES => &head[..],
        None => return None,
    };
    Some(Arc::from(format!(
        "{id}:{:016x}",
        RangeHash::of(first).hash
    )))
}

/// The directory to watch for a glob: its leading components without wildcards (for a
/// pattern without any, the directory of the file it names).
fn glob_base(pattern: &str) -> PathBuf {
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

/// Whether an open file was truncated below what was read, or its first bytes changed.
fn rewritten_in_place(f: &FileState) -> bool {
    let Some(reader) = f.reader.as_ref() else {
        return false;
    };
    let Ok(meta) = reader.file.metadata() else {
        return false;
    };
    meta.len() < reader.offset()
        || f.fingerprint
            .as_ref()
            .is_some_and(|fp| !fingerprint_matches(&reader.file, fp).unwrap_or(true))
}

/// Finds the file with identity `id`: at `path`, or renamed within its directory.
fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
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

/// Looks at the lines before `offset` to tell, per stream, whether `offset` is inside an
/// entry (the stream's last chunk before it is partial): then its next chunks up to the
/// full one belong to an entry that started before and are skipped.
fn infer_skip(file: &File, offset: u64) -> [Skip; 2] {
    let start = offset.saturating_sub(LOOKBACK_BYTES);
    let Ok(bytes) = read_range(file, start, (offset - start) as usize) else {
        return [Skip::None; 2];
    };
    let mut lines = bytes.split(|&b| b == b'\n');
    if start > 0 {
        lines.next(); // probably a piece of a line
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
