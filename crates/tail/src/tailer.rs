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
use std::time::{Instant, SystemTime};

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
use crate::rotation::{self, Rank};
use crate::{container_of, is_container_id, Error, TailStats};

/// Internal number of a file generation (a copytruncate starts a new one).
type FileKey = u64;

/// How soon a scan is repeated while files wait for a slot under `harvester_limit`.
const DEFERRED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a live file read to its end is checked for having been rotated away.
const ROTATION_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How soon the registry is written after a rotated file was read to its end and
/// acknowledged (instead of `registry.flush`, when that is longer).
const URGENT_REGISTRY_WRITE: std::time::Duration = std::time::Duration::from_millis(200);

/// How often the registry forgets files that were finished and are deleted from disk.
const FORGET_DELETED_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// A file of the rotation sequence before this one could not be read: before its
    /// first line, the container's pending entries are emitted as partial.
    gap_before: bool,
    /// Gone, and a later file of its container had data when the last read started: the
    /// writer has moved on, so the end of that read is the end of this file.
    successor_has_data: bool,
    /// When reaching the end of the file last checked whether it was rotated away.
    rotation_checked: Option<Instant>,
    /// Per stream: the file before this one in its sequence could not be read and held
    /// the first chunks of an entry that goes on here.
    lost_head: [bool; 2],
}

/// What a file started as part of a rotation sequence takes from the file it follows: the
/// path it is shown under (`log.file.path`) and its container.
#[derive(Clone, Debug)]
struct Inherit {
    shown_path: Arc<str>,
    container: Arc<str>,
    container_id: Option<Arc<str>>,
}

/// Which files of a rotation sequence to start.
#[derive(Clone, Debug)]
enum After {
    /// Those of a later rank than this one.
    Rank(Rank),
    /// Those written to after this time (the file they follow is gone).
    Modified(SystemTime),
    /// All of them (a container that appeared while logtide ran or was stopped).
    Start,
}

/// How a file comes to be read.
#[derive(Clone, Debug)]
enum Via {
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

/// What came of starting a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Started {
    Yes,
    /// No slot under `harvester_limit`: try again soon.
    Deferred,
    /// Gone between listing and opening.
    Vanished,
    /// Could not be opened (counted).
    Failed,
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
    /// When the runtime wrote the entry's first chunk (the line's own time).
    written: Timestamp,
    /// The entry's first chunks were in a file that could not be read: it is shipped
    /// flagged partial.
    lost_head: bool,
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
        // The first chunks of this stream after a lost file may end an entry whose head
        // was in it: up to the stream's next full chunk they make an entry flagged partial.
        let lost_head = std::mem::take(&mut f.lost_head[si]);
        if lost_head && line.partial {
            f.lost_head[si] = true;
        }
        let track = self.pending.entry(pkey).or_insert_with(|| Track {
            holds: Vec::with_capacity(1),
            spans: Vec::new(),
            chunks: 0,
            cut: false,
            end: at.end,
            since: now,
            written: line.time,
            lost_head,
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
        // A line finishes at most one entry but for rare evictions: the first is kept
        // without a vector.
        let mut first: Option<Entry<'_, u32, Chunk>> = None;
        let mut more: Vec<Entry<'_, u32, Chunk>> = Vec::new();
        self.reassembler
            .push(&group, &line, chunk, |e| match first {
                None => first = Some(e),
                Some(_) => more.push(e),
            });
        for entry in first.into_iter().chain(more) {
            self.finish(entry, out);
        }
    }

    /// Emits the pending entries of `group` as partial: a file of its rotation sequence
    /// could not be read, so their next chunks are lost.
    fn flush_gap(&mut self, group: u32, out: &mut Vec<Event>) {
        let mut flushed = Vec::new();
        self.reassembler.flush_key(&group, |e| flushed.push(e));
        for e in flushed {
            self.stats.partial_gap += 1;
            tracing::warn!(file = %e.start.path, offset = e.start.offset,
                "emitting an entry as partial: a file of its rotation sequence could not be read");
            self.finish(e, out);
        }
    }

    /// Turns a finished (or flushed) entry into an event that carries its holds.
    fn finish(&mut self, entry: Entry<'_, u32, Chunk>, out: &mut Vec<Event>) {
        let Some(track) = self.pending.remove(&(entry.key, entry.stream)) else {
            return;
        };
        if track.lost_head {
            self.stats.partial_gap += 1;
            tracing::warn!(file = %entry.start.path, offset = entry.start.offset,
                "shipping the end of an entry flagged partial: its first chunks were in a file that could not be read");
        }
        if entry.partial || track.lost_head {
            self.stats.partial_flushed += 1;
        }
        let truncated = entry.truncated || track.cut;
        if truncated {
            self.stats.entries_truncated += 1;
        }
        let docker_attrs = entry
            .attrs
            .as_deref()
            .and_then(|a| serde_json::from_slice::<Value>(a).ok());
        // The first chunk's shared strings move into the event.
        let Chunk {
            offset,
            path,
            source,
            container_id,
        } = entry.start;
        let fields = LogEntry {
            message: into_string(entry.message),
            stream: entry.stream.as_str(),
            path,
            offset,
            partial: entry.partial || track.lost_head,
            truncated,
            container_id,
            docker_attrs,
            input_type: "container",
        };
        let mut event = Event::from_log_entry(entry.time, fields);
        event.set_source(Source {
            id: source,
            start: offset,
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
    /// Rotation sequences whose files could not all be started (`harvester_limit`).
    refollow: Vec<Refollow>,
    /// Containers the registry knew when it was loaded.
    registry_containers: HashSet<Arc<str>>,
    /// When the registry last forgot deleted files.
    last_forget: Option<Instant>,
    /// A file was done with since the last registry write: write soon.
    urgent_write: bool,
    /// Per container, the newest file of its rotation sequence started so far (where it is
    /// now) and what its files inherit: while the container has no live file, each scan
    /// looks for files rotated in after it (after its name, or, when it was deleted rather
    /// than renamed, after its last modification time, kept here).
    newest: FxHashMap<u32, (PathBuf, Option<SystemTime>, Inherit)>,
    /// The first scan is done: a container found from now on is new, and the rotated
    /// files it already has are read too.
    first_scan_done: bool,
}

/// A rotation sequence to start again: its directory, base name, and where to go on.
#[derive(Clone, Debug)]
struct Refollow {
    dir: PathBuf,
    base: String,
    after: After,
    inherit: Inherit,
    gap: bool,
    /// Streams whose entry's head was in a lost file (see [`FileState::lost_head`]).
    lost_head: [bool; 2],
    /// Files just counted lost under the name the registry saved: the first compressed
    /// files of the sequence are those, under their rotated names, and are not counted
    /// again.
    counted: u32,
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
    /// When the runtime wrote the oldest entry of this file still waiting for
    /// acknowledgement (the line's own time): unlike `oldest_unshipped`, the same after a
    /// restart that reads the entry again.
    pub oldest_written: Option<Timestamp>,
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
    /// Why:
    /// - `deleted_before_read`: the file was deleted or rotated away and given up on
    ///   before it was read to its end (`close_removed_after`), or vanished between being
    ///   listed and being opened;
    /// - `gzipped_before_read`: a rotated file of a container's sequence was compressed
    ///   before it was read (`bytes` are the compressed bytes);
    /// - `gone_while_stopped`: a file the registry had not seen to its end was gone at
    ///   the start (`bytes` unknown: 0).
    ///
    /// For the last two, `path` is the lost file's own path.
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
        let registry_containers = registry
            .entries()
            .filter_map(|e| e.container.as_deref())
            .map(Arc::from)
            .collect();
        let acks = Arc::new(AckQueue::default());
        let ack_target: Arc<dyn Acknowledge> = acks.clone();
        let (format, streams) = (config.format.to_format(), config.stream);
        let reassembler = Reassembler::new(ReassemblerConfig {
            max_entry_bytes: config.max_entry_bytes,
            max_pending_bytes: config.max_pending_bytes,
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
            refollow: Vec::new(),
            registry_containers,
            last_forget: None,
            urgent_write: false,
            newest: FxHashMap::default(),
            first_scan_done: false,
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
        s.partial_over_budget = r.evicted_over_budget;
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
                    // Vanished between listing and stat, or a dangling symlink.
                    self.core.stats.scan_errors += 1;
                    tracing::debug!(path = %shown.display(), error = %e, "file vanished while scanning");
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
            let after = match (r.rank, deleted) {
                (_, Some(mtime)) => After::Modified(mtime),
                (Rank::Current, None) => continue,
                (Rank::Numbered(_), None) => match fs::metadata(&path).and_then(|m| m.modified()) {
                    Ok(mtime) => After::Modified(mtime),
                    Err(_) => continue,
                },
                (rank, None) => After::Rank(rank),
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
                },
            );
        }
        for (shown, meta) in found {
            self.discovered(now, &shown, &meta);
        }
        self.first_scan_done = true;
    }

    /// A live file is no longer at its path: it is drained, then finished, and the files
    /// that follow it in its rotation sequence are started.
    fn rotated_away(&mut self, now: Instant, key: FileKey) {
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
        let after = match r.rank {
            Rank::Dated(_) if renamed => After::Rank(r.rank),
            // Deleted (or renamed out of its directory), or numbered (`.1` is the newest
            // in the usual schemes, the oldest in some): what was written after it.
            _ => match f.reader.as_ref().and_then(|r| r.file.metadata().ok()) {
                Some(m) => After::Modified(m.modified().unwrap_or(std::time::UNIX_EPOCH)),
                None if renamed => After::Rank(r.rank),
                None => return,
            },
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
        };
        self.core.stats.rotations_followed += 1;
        self.start_sequence(now, refollow);
    }

    /// Starts, oldest first, the files of a rotation sequence after `r.after` that are not
    /// tracked yet: rotated files (drained, then finished) and the current one. A file of
    /// the sequence that cannot be read (gzipped or gone before it was opened) is counted
    /// as lost, and the next file read emits the container's pending entries as partial
    /// first, so that no entry is joined across the gap.
    fn start_sequence(&mut self, now: Instant, mut r: Refollow) {
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
            // Modification times are as coarse as the kernel's clock tick: a file written
            // in the same tick is newer too (files already known are skipped below, or
            // resumed from the registry).
            let newer = match &r.after {
                After::Rank(a) => p.rank > *a,
                After::Modified(t) => mtime >= *t,
                After::Start => true,
            };
            if newer {
                members.push((p.rank, mtime, e.path(), p.gzipped, meta));
            }
        }
        members.sort_by(|a, b| sequence_order(&a.0, a.1, &b.0, b.1));
        for (rank, _, path, gzipped, meta) in members {
            if gzipped {
                let plain = path.with_extension("");
                let tracked = self.files.values().any(|f| f.path == plain);
                let saved = self
                    .registry
                    .entries()
                    .find(|e| e.path == plain)
                    .map(|e| e.removed.is_some());
                match (tracked, saved) {
                    // Being read (the plain file is still open), or read to its end.
                    (true, _) | (false, Some(true)) => {}
                    // Known but not read to its end: counted where it was found gone.
                    (false, Some(false)) => {
                        r.gap = true;
                        if let Some(e) = self.registry.entries().find(|e| e.path == plain) {
                            for st in &e.open {
                                r.lost_head[stream_index(*st)] = true;
                            }
                        }
                    }
                    (false, None) if r.counted > 0 => {
                        r.counted -= 1;
                        r.gap = true;
                    }
                    (false, None) => {
                        self.lose(&path, meta.len(), "gzipped_before_read");
                        r.gap = true;
                    }
                }
                continue;
            }
            let id = FileId::of(&meta);
            // Tracked already, unless the file with that identity is finished: its
            // descriptor is closed, and a new file may have got the inode.
            let tracked = self
                .by_id
                .get(&id)
                .and_then(|k| self.files.get(k))
                .is_some_and(|f| f.status != Status::Finished);
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
    }

    /// Counts a file of a rotation sequence that could not be read.
    fn lose(&mut self, path: &Path, bytes: u64, reason: &'static str) {
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
        if self.first_scan_done || !self.registry_containers.is_empty() {
            let real = fs::canonicalize(shown).unwrap_or_else(|_| shown.to_owned());
            let (container, container_id) = container_of(shown, &real);
            let known = self.core.groups.contains_key(&container)
                || self.registry_containers.contains(&container);
            if !known {
                if let (Some(dir), Some(name)) =
                    (real.parent(), real.file_name().and_then(|n| n.to_str()))
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
                        },
                    );
                }
                if self.by_id.contains_key(&id)
                    || self
                        .refollow
                        .iter()
                        .any(|r| r.inherit.container == container)
                {
                    return;
                }
            }
        }
        self.start_file(now, shown, id, meta.len(), Via::Discovered);
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

    /// Starts reading a file at `path`, resuming from the registry when it knows it.
    fn start_file(&mut self, now: Instant, path: &Path, id: FileId, len: u64, via: Via) -> Started {
        if !self.make_room() {
            self.core.stats.open_deferred += 1;
            self.deferred = true;
            return Started::Deferred;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Started::Vanished,
            Err(e) => {
                self.core.stats.open_errors += 1;
                tracing::warn!(path = %path.display(), error = %e, "cannot open file");
                return Started::Failed;
            }
        };
        match FileId::of_file(&file) {
            Ok(opened) if opened == id => {}
            _ => {
                // Replaced between stat and open; a scan sees the new one.
                self.core.stats.scan_errors += 1;
                return Started::Vanished;
            }
        }
        let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let (shown_path, container, container_id, status, mut gap_before, lost_head) = match via {
            Via::Discovered => {
                let (container, container_id) = container_of(path, &real);
                let shown: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
                (
                    shown,
                    container,
                    container_id,
                    Status::Live,
                    false,
                    [false; 2],
                )
            }
            Via::Sequence {
                inherit,
                current,
                gap_before,
                lost_head,
            } => {
                let status = if current {
                    Status::Live
                } else {
                    Status::Gone { since: now }
                };
                let Inherit {
                    shown_path,
                    container,
                    container_id,
                } = inherit;
                (
                    shown_path,
                    container,
                    container_id,
                    status,
                    gap_before,
                    lost_head,
                )
            }
        };
        let group = self.core.group_of(&container);
        let fp = fingerprint(&file).ok();
        self.core.discontinuity = false;
        let (offset, skip, skip_ranges) = self.resume_point(&file, id, len, &real);
        // The bytes that would have continued this container's pending entries are gone:
        // those entries are emitted as partial before this file is read, instead of being
        // joined with new content.
        gap_before |= std::mem::take(&mut self.core.discontinuity);
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
            shown_path,
            source_id: source_id(&file, id),
            container,
            group,
            container_id,
            reader: Some(Reader::new(file, offset)),
            fingerprint: fp,
            read_offset: offset,
            status,
            last_growth: now,
            skip,
            superseded: false,
            saved: None,
            skip_ranges,
            was_at_eof: false,
            order: key,
            gap_before,
            successor_has_data: false,
            rotation_checked: None,
            lost_head,
        };
        if let Some(old) = self.by_id.insert(id, key) {
            if let Some(f) = self.files.get_mut(&old) {
                f.superseded = true;
                f.reader = None;
                f.status = Status::Finished;
            }
        }
        self.track(&state.shown_path);
        self.newest.insert(
            state.group,
            (
                state.path.clone(),
                None,
                Inherit {
                    shown_path: state.shown_path.clone(),
                    container: state.container.clone(),
                    container_id: state.container_id.clone(),
                },
            ),
        );
        self.files.insert(key, state);
        Started::Yes
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
                tracing::info!(path = %real.display(), saved_path = %entry.path.display(),
                    "inode reused by a new file: reading it from the start");
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

    /// After a restart, per container: the files the registry knows that are no longer at
    /// a discovered path (rotated away) and still have unread or unacknowledged data are
    /// drained first, oldest first; then the files rotated in while logtide was stopped,
    /// which the registry never saw, are started after the newest file it knows. Files the
    /// registry had not seen to their end and that are gone now are counted as lost.
    fn resume_orphans(&mut self, now: Instant) {
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
                .filter(|(_, m)| m.is_file());
            // A file of another sequence (or a compressed copy) that got the inode is not
            // this file.
            let base = |p: &Path| {
                p.file_name().and_then(|n| n.to_str()).map(|n| {
                    (
                        rotation::parse(n).base.to_owned(),
                        rotation::parse(n).gzipped,
                    )
                })
            };
            let own_base = base(&e.path).map(|(b, _)| b);
            found = found.filter(|(p, _)| base(p) == own_base.clone().map(|b| (b, false)));
            let inherit = inherit_from_registry(e, found.as_ref().map(|(p, _)| p.as_path()));
            if let Some((path, _)) = &found {
                // An empty fingerprint (the file was empty) proves nothing: then only the
                // same path does.
                let unchanged = e.fingerprint.as_ref().is_none_or(|fp| {
                    if fp.len == 0 {
                        return *path == e.path;
                    }
                    File::open(path).is_ok_and(|f| fingerprint_matches(&f, fp).unwrap_or(false))
                });
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
            self.registry.remove(*id);
            self.registry_dirty = true;
        }
        for (_, known) in by_container {
            // Older files first: an entry that spans a rotation starts in the older file,
            // and inode numbers say nothing about age.
            // In the order of the sequence, so that a gap is marked before the file that
            // follows it: by name and time, except that a file gone under the base name (it
            // was the current file when saved) goes by its last update among the others.
            let place = |(e, _, found): &Known| {
                let at = found.as_ref().map_or(&e.path, |(p, _)| p);
                let name = at.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let time = match found {
                    Some((_, m)) => m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    None => system_time(e.updated),
                };
                (rotation::parse(name).rank, time)
            };
            let (mut unplaced, mut ordered): (Vec<Known>, Vec<Known>) = known
                .into_iter()
                .partition(|k| k.2.is_none() && place(k).0 == Rank::Current);
            ordered.sort_by(|a, b| {
                let ((ra, ta), (rb, tb)) = (place(a), place(b));
                sequence_order(&ra, ta, &rb, tb).then_with(|| a.0.path.cmp(&b.0.path))
            });
            unplaced.sort_by_key(|k| place(k).1);
            for k in unplaced {
                let time = place(&k).1;
                let at = ordered
                    .iter()
                    .position(|o| place(o).1 > time)
                    .unwrap_or(ordered.len());
                ordered.insert(at, k);
            }
            let known = ordered;
            let mut gap = false;
            let mut lost_head = [false; 2];
            let mut counted = 0;
            let mut newest: Option<(Rank, SystemTime, PathBuf, Inherit)> = None;
            let mut sequence: Option<(PathBuf, String)> = None;
            let mut last_update = Timestamp::UNIX_EPOCH;
            let mut any_inherit: Option<Inherit> = None;
            for (e, inherit, found) in known {
                last_update = last_update.max(e.updated);
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
                    let unshipped = e.size.map(|size| size.saturating_sub(e.offset));
                    if e.removed.is_none() && unshipped != Some(0) {
                        self.lose(&e.path, unshipped.unwrap_or(0), "gone_while_stopped");
                        gap = true;
                        counted += 1;
                        for st in &e.open {
                            lost_head[stream_index(*st)] = true;
                        }
                    }
                    // Counted once: from now on the entry only anchors the container's
                    // sequence (the registry forgets it once a newer file is saved).
                    if e.removed.is_none() && !reused.contains(&e.id()) {
                        let mut done = e.clone();
                        done.removed = Some(Timestamp::now());
                        self.registry.insert(done);
                        self.registry_dirty = true;
                    }
                    continue;
                };
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                if newest.as_ref().is_none_or(|(n, m, _, _)| {
                    sequence_order(&r.rank, mtime, n, *m) == std::cmp::Ordering::Greater
                }) {
                    newest = Some((r.rank.clone(), mtime, path.clone(), inherit.clone()));
                }
                let read_to_end = meta.len() == e.offset && e.fingerprint.is_some();
                // A file at a path the globs match is started here too, in its place in
                // the sequence: left to the scan that follows, it would be missed if it
                // were rotated away in between (the scan would find only its successor).
                let discovered = patterns.iter().any(|p| p.matches_path(&path));
                if read_to_end || (discovered && self.excluded(&path)) {
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
            let (after, inherit) = match newest {
                Some((rank, mtime, path, inherit)) => {
                    // Until a file is started after it, the newest file known is where the
                    // container's sequence goes on from.
                    let group = self.core.group_of(&inherit.container);
                    self.newest
                        .entry(group)
                        .or_insert_with(|| (path, None, inherit.clone()));
                    let after = match rank {
                        Rank::Numbered(_) => After::Modified(mtime),
                        rank => After::Rank(rank),
                    };
                    (after, inherit)
                }
                None => {
                    // Every file the registry knew is gone: what was written since its last
                    // update (less a second, for the kernel's coarse file times) follows.
                    let since = system_time(last_update)
                        .checked_sub(std::time::Duration::from_secs(1))
                        .unwrap_or(std::time::UNIX_EPOCH);
                    let Some(inherit) = any_inherit else {
                        continue;
                    };
                    let group = self.core.group_of(&inherit.container);
                    self.newest
                        .entry(group)
                        .or_insert_with(|| (dir.join(&base), Some(since), inherit.clone()));
                    (After::Modified(since), inherit)
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
                },
            );
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
            // Later files of the same container wait until this one is drained, and until
            // a rotated one is finished (its writer may still append to it).
            let unsettled = self
                .files
                .get(&key)
                .is_some_and(|f| matches!(f.status, Status::Gone { .. }) && f.reader.is_some());
            if has_more || unsettled {
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
        if self
            .files
            .get(&key)
            .is_some_and(|f| matches!(f.status, Status::Gone { .. }))
        {
            let moved_on = self.successor_has_data(key);
            if let Some(f) = self.files.get_mut(&key) {
                f.successor_has_data = moved_on;
            }
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
        if std::mem::take(&mut f.gap_before) {
            core.flush_gap(f.group, out);
        }
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
            gap_before: false,
            successor_has_data: false,
            rotation_checked: None,
            lost_head: [false; 2],
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
        let mut rotated = false;
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
                let settled = deleted
                    || f.successor_has_data
                    || now.duration_since(since) >= std::time::Duration::from_secs(1);
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
                // Renamed or deleted at its path: rotated. Checked at the end of the file
                // (at most every ROTATION_CHECK_EVERY; a watched directory's change checks
                // at once), so that the next file is read as soon as this one is drained.
                let due = f
                    .rotation_checked
                    .is_none_or(|t| now.duration_since(t) >= ROTATION_CHECK_EVERY);
                if due {
                    f.rotation_checked = Some(now);
                }
                rotated = due
                    && !f.superseded
                    && match fs::metadata(&f.path) {
                        Ok(m) => FileId::of(&m) != f.id,
                        Err(e) => e.kind() == io::ErrorKind::NotFound,
                    };
                let idle = now.duration_since(f.last_growth) >= config.close_inactive;
                if !rotated && idle && !core.holds.contains_key(&key) {
                    f.reader = None;
                    core.stats.files_closed_inactive += 1;
                }
            }
            Status::Finished => {}
        }
        if rotated {
            self.rotated_away(now, key);
        }
    }

    /// Whether a later file of `key`'s container has data: its writer has moved on.
    fn successor_has_data(&self, key: FileKey) -> bool {
        let Some(f) = self.files.get(&key) else {
            return false;
        };
        self.files.values().any(|g| {
            g.group == f.group
                && g.order > f.order
                && !g.superseded
                && g.reader
                    .as_ref()
                    .is_some_and(|r| r.file.metadata().is_ok_and(|m| m.len() > 0))
        })
    }

    /// Whether a file of `group` has bytes not read yet: a pending entry of the group may
    /// still get its last chunk from them.
    fn has_unread(&self, group: u32) -> bool {
        self.files.values().any(|f| {
            f.group == group
                && !f.superseded
                && f.reader.as_ref().is_some_and(|r| {
                    r.file
                        .metadata()
                        .is_ok_and(|m| m.len() > r.offset() + r.buffered() as u64)
                })
        })
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
        // Not while the container's files still have bytes to read: then it is logtide
        // that is behind, not the writer.
        let stale: Vec<(u32, Stream)> = stale
            .into_iter()
            .filter(|(group, _)| !self.has_unread(*group))
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
        let mut cut: Vec<u32> = Vec::new();
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
                        cut.push(f.group);
                    }
                    f.status = Status::Finished;
                }
            }
        }
        // The rest of the file may have held the last chunks of pending entries.
        let mut out = std::mem::take(&mut self.core.deferred);
        for group in cut {
            self.core.flush_gap(group, &mut out);
        }
        self.core.deferred = out;
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

        // Per file, the streams with an entry not yet acknowledged that may go on in a later
        // file: pending, or in flight with chunks in a later file.
        let mut open: HashMap<FileKey, [bool; 2]> = HashMap::new();
        for ((_, stream), track) in &self.core.pending {
            for (file, _) in &track.holds {
                open.entry(*file).or_default()[stream_index(*stream)] = true;
            }
        }
        for track in self.core.inflight.slots.iter().flatten() {
            if let Some((last, rest)) = track.spans.split_last() {
                for span in rest.iter().filter(|s| s.file != last.file) {
                    open.entry(span.file).or_default()[stream_index(span.stream)] = true;
                }
            }
        }
        let mut urgent = false;
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
            // Removed: finished (read to its end after it was rotated away) and every entry
            // of it acknowledged. A file rotated away but not yet drained is not, so that a
            // restart that finds it deleted counts it as lost.
            let removed = f.status == Status::Finished && !self.core.holds.contains_key(&key);
            // Also when the file was renamed (rotated) or its fingerprint grew, so that a
            // restart finds it where it is and knows it.
            let open_streams: Vec<Stream> = [Stream::Stdout, Stream::Stderr]
                .into_iter()
                .filter(|st| open.get(&key).is_some_and(|o| o[stream_index(*st)]))
                .collect();
            let changed = f.saved.as_ref() != Some(&(offset, skip.clone()))
                || self.registry.get(f.id).is_none_or(|e| {
                    e.path != f.path || e.fingerprint != f.fingerprint || e.open != open_streams
                });
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
                // A file done with is saved soon: a restart must not look for it after the
                // runtime has compressed or deleted it.
                urgent |= removed && previous_removed.is_none();
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
            // Files finished and deleted from disk (rotated out, compressed) need no saved
            // position: forgetting them keeps the registry the size of what is on disk, and
            // a new file that gets the inode is never taken for the old one. The newest
            // entry of each container stays: a restart follows its sequence from there.
            let mut newest: HashMap<&str, Timestamp> = HashMap::new();
            for e in self.registry.entries() {
                let c = e.container.as_deref().unwrap_or("");
                let t = newest.entry(c).or_insert(e.updated);
                *t = (*t).max(e.updated);
            }
            let deleted: Vec<FileId> = self
                .registry
                .entries()
                .filter(|e| e.removed.is_some() && !self.by_id.contains_key(&e.id()))
                .filter(|e| newest.get(e.container.as_deref().unwrap_or("")) != Some(&e.updated))
                .filter(|e| find_by_id(&e.path, e.id()).is_none())
                .map(RegistryEntry::id)
                .collect();
            for id in deleted {
                self.registry.remove(id);
                dropped += 1;
            }
            if dropped > 0 {
                self.registry_dirty = true;
            }
        }
        self.urgent_write |= urgent;
        let every = if self.urgent_write {
            self.registry_config.flush.min(URGENT_REGISTRY_WRITE)
        } else {
            self.registry_config.flush
        };
        let due = self
            .last_registry_write
            .is_none_or(|t| now.duration_since(t) >= every);
        if self.registry_dirty && (due || force) {
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
        let mut oldest: HashMap<FileKey, (Instant, Timestamp)> = HashMap::new();
        for track in self.core.inflight.slots.iter().flatten() {
            for (file, _) in &track.holds {
                let o = oldest.entry(*file).or_insert((track.since, track.written));
                o.1 = o.1.min(track.written);
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
                    oldest_unshipped: oldest.get(&key).map(|o| o.0),
                    oldest_written: oldest.get(&key).map(|o| o.1),
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

/// A registry time as a file time.
fn system_time(t: Timestamp) -> SystemTime {
    let secs = u64::try_from(t.unix_secs()).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::new(secs, t.subsec_nanos())
}

/// The order of two files of one rotation sequence, oldest first: by name, except that
/// numbered files go by modification time (`.1` is the newest file where rotation shifts
/// the numbers, as dockerd and logrotate do, and the oldest where it counts up).
fn sequence_order(
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

/// What a file the registry knows takes into its events: the path it was shown under and
/// its container, as saved (older registries have no shown path: then the file's own).
fn inherit_from_registry(e: &RegistryEntry, found: Option<&Path>) -> Inherit {
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
