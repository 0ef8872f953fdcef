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
//!
//! # Layout
//!
//! This module reads files and turns their lines into events. Which files to read and in
//! what order is [`discovery`]'s; where to start reading a file the registry knows is
//! [`resume`]'s; what to save to the registry, from holds and acknowledgements, is
//! [`commit`]'s. Each keeps its decisions in plain functions, tested without files.

mod commit;
mod discovery;
mod resume;

use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use logtide_container_log::{parse_line, Entry, Format, Reassembler, ReassemblerConfig, Stream};
use logtide_event::{AckToken, Acknowledge, Event, LogEntry, LogFile, Timestamp};
use regex::Regex;
use rustc_hash::FxHashMap;
use serde_json::Value;

use self::commit::{AckQueue, Holds, Inflight};
use self::discovery::{glob_base, Inherit, Refollow, Via};
use self::resume::Skip;
use crate::config::{RegistryConfig, StreamFilter, TailConfig};
use crate::identity::{
    fingerprint, fingerprint_matches, read_range, FileId, RangeHash, FINGERPRINT_BYTES,
};
use crate::reader::{LineAt, Reader};
use crate::registry::{LoadReport, Registry, RegistryEntry, SkipRange};
use crate::{container_of, Error, TailStats};

/// Internal number of a file generation (a copytruncate starts a new one).
type FileKey = u64;

/// How soon a scan is repeated while files wait for a slot under `harvester_limit`.
const DEFERRED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a live file read to its end is checked for having been rotated away.
const ROTATION_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
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
    /// The names its entries carry, made at the first line after `source_id` changed.
    log_file: Option<Arc<LogFile>>,
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
    /// Read order among the files of a container: older files first (saved, so that it
    /// grows across restarts: see [`Tailer::resume_orphans`]). A new generation after a
    /// truncation keeps the order of the file it replaces.
    order: u64,
    /// A file of the rotation sequence before this one could not be read: before its
    /// first line, the container's pending entries are emitted as partial.
    gap_before: bool,
    /// Kept in the registry: after a restart, entries read again from the files before it
    /// are cut there. Set with `gap_before`, and on every file of a container after one of
    /// its files still held whose inode (and so registry entry) a new file took.
    after_gap: bool,
    /// Gone, and a later file of its container had data when the last read started: the
    /// writer has moved on, so the end of that read is the end of this file.
    successor_has_data: bool,
    /// When reaching the end of the file last checked whether it was rotated away.
    rotation_checked: Option<Instant>,
    /// Per stream: the file before this one in its sequence could not be read and held
    /// the first chunks of an entry that goes on here.
    lost_head: [bool; 2],
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

    /// Sets the source identity (worked out while it is not known), and with it the
    /// names of the entries to come.
    fn set_source_id(&mut self, id: Option<Arc<str>>) {
        if self.source_id != id {
            self.source_id = id;
            self.log_file = None;
        }
    }

    /// The names its entries carry, one `Arc` shared by all of them.
    fn log_file(&mut self) -> Arc<LogFile> {
        let file = self.log_file.get_or_insert_with(|| {
            Arc::new(LogFile {
                path: self.shown_path.clone(),
                container_id: self.container_id.clone(),
                source_id: self
                    .source_id
                    .clone()
                    .unwrap_or_else(|| Arc::from(self.id.to_string())),
            })
        });
        Arc::clone(file)
    }
}

/// Where a chunk came from; the reassembler reports it for an entry's first chunk.
#[derive(Clone, Debug)]
struct Chunk {
    offset: u64,
    file: Arc<LogFile>,
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
    /// Per file, where the entry's first chunk there starts (one file but across a
    /// rotation, so kept inline).
    holds: SmallVec<[(FileKey, u64); 1]>,
    spans: SmallVec<[Span; 1]>,
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
/// The parts of the engine that process lines, apart from the file table.
struct Core {
    reassembler: Reassembler<u32, Chunk>,
    pending: FxHashMap<(u32, Stream), Track>,
    /// Containers numbered, so that joining keys are cheap to hash.
    groups: HashMap<Arc<str>, u32>,
    holds: Holds,
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
        Cow::Borrowed(b) => match simdutf8::basic::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        Cow::Owned(v) => String::from_utf8(v)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

impl Core {
    fn new(config: &TailConfig) -> Core {
        let acks = Arc::new(AckQueue::default());
        let ack_target: Arc<dyn Acknowledge> = acks.clone();
        Core {
            reassembler: Reassembler::new(ReassemblerConfig {
                max_entry_bytes: config.max_entry_bytes,
                max_pending_bytes: config.max_pending_bytes,
                ..ReassemblerConfig::default()
            }),
            pending: FxHashMap::default(),
            groups: HashMap::new(),
            holds: Holds::default(),
            acked: Vec::new(),
            inflight: Inflight::default(),
            acks,
            ack_target,
            next_event: 0,
            stats: TailStats::default(),
            discontinuity: false,
            deferred: Vec::new(),
            format: config.format.to_format(),
            streams: config.stream,
        }
    }

    /// The number of a container, given on first sight.
    fn group_of(&mut self, container: &Arc<str>) -> u32 {
        let next = self.groups.len() as u32;
        *self.groups.entry(container.clone()).or_insert(next)
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
        // Held where the parser wrote it: a copy of the parsed line would read back what
        // was just stored field by field, wider than it was stored, and wait for it.
        let parsed = parse_line(bytes, self.format);
        let line = match &parsed {
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
        // The file's names, taken before the entry's bookkeeping stores (a locked
        // increment waits for the stores before it).
        let chunk = Chunk {
            offset: at.start,
            file: f.log_file(),
        };
        let group = f.group;
        let pkey = (group, line.stream);
        // The first chunks of this stream after a lost file may end an entry whose head
        // was in it: up to the stream's next full chunk they make an entry flagged partial.
        let lost_head = std::mem::take(&mut f.lost_head[si]);
        if lost_head && line.partial {
            f.lost_head[si] = true;
        }
        let new_track = || Track {
            holds: SmallVec::new(),
            spans: SmallVec::new(),
            chunks: 0,
            cut: false,
            end: at.end,
            since: now,
            written: line.time,
            lost_head,
        };
        // A whole entry in one line with nothing pending for its stream (most lines) is
        // tracked here, not in the pending map it would leave again at once.
        let mut single: Option<Track> = None;
        let track = if !line.partial && !self.pending.contains_key(&pkey) {
            single.insert(new_track())
        } else {
            self.pending.entry(pkey).or_insert_with(new_track)
        };
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
            self.holds.hold(key, at.start);
        }
        // A line finishes at most one entry but for rare evictions: the first is kept
        // without a vector.
        let mut first: Option<Entry<'_, u32, Chunk>> = None;
        let mut more: Vec<Entry<'_, u32, Chunk>> = Vec::new();
        self.reassembler.push(&group, line, chunk, |e| match first {
            None => first = Some(e),
            Some(_) => more.push(e),
        });
        for entry in first.into_iter().chain(more) {
            let track = match single.take() {
                Some(t) if (entry.key, entry.stream) == pkey => Some(t),
                other => {
                    single = other;
                    self.pending.remove(&(entry.key, entry.stream))
                }
            };
            self.finish(entry, track, out);
        }
    }

    /// Emits the pending entries of `group` as partial: a file of its rotation sequence
    /// could not be read, so their next chunks are lost.
    fn flush_gap(&mut self, group: u32, out: &mut Vec<Event>) {
        let mut flushed = Vec::new();
        self.reassembler.flush_key(&group, |e| flushed.push(e));
        for e in flushed {
            self.stats.partial_gap += 1;
            tracing::warn!(file = %e.start.file.path, offset = e.start.offset,
                "emitting an entry as partial: a file of its rotation sequence could not be read");
            let track = self.pending.remove(&(e.key, e.stream));
            self.finish(e, track, out);
        }
    }

    /// Turns a finished (or flushed) entry into an event that carries its holds (its
    /// `track`, taken out of the pending map or never put there).
    fn finish(&mut self, entry: Entry<'_, u32, Chunk>, track: Option<Track>, out: &mut Vec<Event>) {
        let Some(track) = track else {
            return;
        };
        // A locked increment waits for the stores before it: taken first, before the
        // message is copied into new memory, it waits for little.
        let seq = self.next_event;
        self.next_event += 1;
        let ack = AckToken::new(self.ack_target.clone(), seq);
        if track.lost_head {
            self.stats.partial_gap += 1;
            tracing::warn!(file = %entry.start.file.path, offset = entry.start.offset,
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
        // The first chunk's file moves into the event.
        let Chunk { offset, file } = entry.start;
        let fields = LogEntry {
            message: into_string(entry.message),
            stream: entry.stream.as_str(),
            file,
            offset,
            partial: entry.partial || track.lost_head,
            truncated,
            docker_attrs,
            input_type: "container",
        };
        let mut event = Event::from_log_entry(entry.time, fields);
        event.set_entry_source(track.end);
        event.set_ack(ack);
        self.inflight.insert(seq, track);
        self.stats.events += 1;
        out.push(event);
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
    /// Per container: a file of its sequence was lost after the newest one started, and no
    /// file came after it yet: the next one started gets the gap (and the streams whose
    /// entries lost their head there).
    gap_next: HashMap<u32, [bool; 2]>,
    /// Per container: the registry's gap before a file done with was lost with its entry
    /// (a new file got the inode) and no later file of the container was known: the next
    /// one started keeps it in the registry (see [`Tailer::carry_taken_gap`]).
    gap_kept_next: HashSet<u32>,
    /// Compressed files of rotation sequences already looked at (identity and size, with
    /// where they were): a later look at the same sequence passes over them, so a loss is
    /// counted once. Forgotten once deleted.
    judged_gz: HashMap<(FileId, u64), PathBuf>,
    /// Files still held whose inode, and so registry entry, a new file took: every file of
    /// their container started meanwhile keeps a gap before it in the registry.
    entry_taken: Vec<FileKey>,
    /// Entries taken out of the registry at the start because their inode holds another
    /// file now: still what a compressed copy of the file they saved is known by.
    forgotten: Vec<RegistryEntry>,
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
    ///   before it was read (`bytes` are those of its content, from the gzip trailer, less
    ///   what the registry had seen of it when it knew it);
    /// - `gone_while_stopped`: a file the registry had not seen to its end was gone at
    ///   the start (`bytes`: its size at the registry's last write less the saved offset;
    ///   0 when that size was not saved).
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
        let core = Core::new(&config);
        // Files are numbered in read order across restarts (the registry's `order`).
        let next_key = registry
            .entries()
            .filter_map(|e| e.order)
            .max()
            .map_or(0, |o| o.saturating_add(1));
        Ok(Tailer {
            config,
            registry_config,
            exclude,
            files: BTreeMap::new(),
            by_id: HashMap::new(),
            core,
            registry,
            registry_dirty: false,
            last_registry_write: None,
            last_scan: None,
            orphans_checked: false,
            next_key,
            load_report,
            shared: Vec::new(),
            deferred: false,
            path_files: HashMap::new(),
            changes: Vec::new(),
            losses: Vec::new(),
            refollow: Vec::new(),
            registry_containers,
            gap_next: HashMap::new(),
            judged_gz: HashMap::new(),
            entry_taken: Vec::new(),
            gap_kept_next: HashSet::new(),
            forgotten: Vec::new(),
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
                    && !self.core.holds.holds(**k)
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

    /// The registry keeps a gap before a file done with while a file of its container read
    /// before it is not finished ([`Registry::gaps_needed`]): a restart reads that file's
    /// entries again, and cuts them there. A new file that got its inode takes its registry
    /// entry, and the gap moves to the next file of its container (`of`) after it (`order`)
    /// in read order: a tracked one, or one the registry knows; with none yet, the next one
    /// started, which is the new file when it is of that container (`container`; the
    /// return value says so).
    fn carry_taken_gap(&mut self, of: Option<&str>, order: Option<u64>, container: &str) -> bool {
        let of = of.unwrap_or("");
        let Some(order) = order else {
            return false;
        };
        let of_container = |c: Option<&str>| c.unwrap_or("") == of;
        let saved = self
            .registry
            .entries()
            .filter(|e| of_container(e.container.as_deref()))
            .filter(|e| e.order.is_some_and(|o| o > order))
            .min_by_key(|e| e.order)
            .cloned();
        let tracked = self
            .files
            .iter()
            .filter(|(_, f)| !f.superseded && of_container(Some(&f.container)) && f.order > order)
            .min_by_key(|(_, f)| f.order)
            .map(|(&k, f)| (k, f.order));
        match (tracked, saved) {
            (Some((k, o)), saved) if saved.as_ref().is_none_or(|e| e.order >= Some(o)) => {
                if let Some(f) = self.files.get_mut(&k) {
                    f.after_gap = true;
                }
            }
            (_, Some(mut e)) => {
                // Tracked but not saved since its number changed (at a start): the file's
                // state is what its next save writes.
                if let Some(f) = self.by_id.get(&e.id()).and_then(|k| self.files.get_mut(k)) {
                    f.after_gap = true;
                }
                if !e.gap_before {
                    e.gap_before = true;
                    self.registry.insert(e);
                    self.registry_dirty = true;
                }
            }
            (_, None) if of == container => return true,
            (_, None) => {
                let group = self.core.group_of(&Arc::from(of));
                self.gap_kept_next.insert(group);
            }
        }
        false
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
        let (shown_path, container, container_id, status, mut gap_before, mut lost_head) = match via
        {
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
        // A file of its sequence lost after the newest one read, before this one existed.
        if let Some(lost) = self.gap_next.remove(&group) {
            gap_before = true;
            lost_head = [lost_head[0] | lost[0], lost_head[1] | lost[1]];
        }
        let fp = fingerprint(&file).ok();
        self.core.discontinuity = false;
        let kept_gap = self
            .registry
            .get(id)
            .filter(|e| e.gap_before && e.removed.is_some() && !self.by_id.contains_key(&id))
            .filter(|_| self.registry.gaps_needed().contains(&id))
            .map(|e| (e.container.clone(), e.order));
        let (offset, skip, skip_ranges, saved_gap) =
            self.resume_point(&file, id, len, &real, &container);
        // The entry was another file's (a resumed one returns its gap): its gap moves on.
        let mut after_taken_gap = false;
        if let Some((of, order)) = kept_gap.filter(|_| !saved_gap) {
            after_taken_gap = self.carry_taken_gap(of.as_deref(), order, &container);
        }
        after_taken_gap |= self.gap_kept_next.remove(&group);
        // The bytes that would have continued this container's pending entries are gone:
        // those entries are emitted as partial before this file is read, instead of being
        // joined with new content.
        gap_before |= std::mem::take(&mut self.core.discontinuity) | saved_gap;
        // The registry keeps one entry per inode. A finished file whose inode this one got,
        // with entries not yet acknowledged, loses its entry to this one: after a restart
        // those entries would be read again from the files of its container before it and
        // joined with the lines of the files after it, without the chunks it held. The
        // registry keeps a gap before each file of that container after it instead (not
        // now: the chunks are read, and join as they should); this one included if it is
        // of that container, and each file of it started while that file is still held.
        // (The same file found again at a discovered path is no gap.)
        let held = self
            .by_id
            .get(&id)
            .and_then(|&old| self.files.get(&old).map(|f| (old, f)))
            .filter(|(old, f)| {
                self.core.holds.holds(*old)
                    && f.fingerprint
                        .as_ref()
                        .is_some_and(|fp| !fingerprint_matches(&file, fp).unwrap_or(true))
            })
            .map(|(old, f)| (old, f.group, f.order));
        if let Some((old, g, order)) = held {
            for f in self.files.values_mut() {
                if f.group == g && f.order > order {
                    f.after_gap = true;
                }
            }
            self.entry_taken.push(old);
        }
        let Tailer {
            entry_taken,
            files,
            core,
            ..
        } = self;
        entry_taken.retain(|k| core.holds.holds(*k));
        let after_taken = entry_taken
            .iter()
            .any(|k| files.get(k).is_some_and(|f| f.group == group));
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
            log_file: None,
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
            after_gap: gap_before || after_taken || after_taken_gap,
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
        // reading what looks like new data at the old offset. So may one not read yet past
        // its fingerprint (opened, then copytruncated and written again before its first
        // read): its next lines would be shipped under the old file's identity, then read
        // again once the change was seen.
        let stale = self.files.get(&key).is_some_and(|f| {
            let in_fingerprint = f
                .fingerprint
                .as_ref()
                .is_some_and(|fp| f.read_offset < u64::from(fp.len));
            (f.was_at_eof || in_fingerprint) && rewritten_in_place(f)
        });
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
                    f.set_source_id(source_id(&reader.file, f.id));
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
            log_file: None,
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
            after_gap: false,
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
                        let id = source_id(&r.file, f.id);
                        f.set_source_id(id);
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
                if !rotated && idle && !core.holds.holds(key) {
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
                let track = self.core.pending.remove(&(e.key, e.stream));
                self.core.finish(e, track, out);
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
