//! Acceptance tests of tailing under fast rotation, through the real `logtide-files`
//! binary with the default configuration: only `paths`, `registry.path` and the output are
//! set, so every timing (scan frequency, registry flush, partial flush, limits) is the one
//! a user gets.
//!
//! One writer serves every scenario (`Writer`, with a `Layout`):
//!
//! - kubelet: `containers/<pod>_<ns>_<container>-<id>.log` is a symlink to
//!   `pods/<ns>_<pod>_<uid>/<container>/0.log`, CRI lines, entries split into `P`,…,`F`
//!   chunks, rotation as kubelet's container log manager does it (remove the excess, gzip
//!   every rotated file but the newest through `<name>.tmp`, rename `0.log` to
//!   `0.log.<YYYYMMDD-HHMMSS>`, reopen);
//! - docker: `docker/containers/<id>/<id>-json.log`, json-file lines, entries over 16 KiB
//!   written as 16 KiB pieces, rotation as dockerd's json-file driver does it with
//!   `max-file: 5` (`.3` → `.4` … current → `.1`, reopen).
//!
//! At every rotation an entry is open on one of the container's streams, so its chunks
//! land on both sides of the rotation. An entry counts as written once its last chunk is.
//! One verifier (`verify`) counts, from the output, the entries lost, the events that are
//! not exactly one written entry (corrupted), the events flagged partial (split), the
//! entries shipped more than once, and the events whose `container.id`, `log.file.path` or
//! `log.offset` is not the entry's. Every test prints its counts before asserting them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bin;
use logtide_testkit::Rng;
use serde_json::Value;

/// Files kept per container, the current one included (kubelet's default
/// `containerLogMaxFiles`; docker's `max-file` as configured on many nodes).
const MAX_FILES: usize = 5;
/// Docker's log copier cuts a longer message into pieces of this size.
const DOCKER_PIECE: usize = 16 * 1024;
/// SIGKILLs in the restart scenarios.
const KILLS: usize = 10;
/// After the writer stopped: how long the agent gets to ship everything…
const CATCH_UP: Duration = Duration::from_secs(60);
/// …and how long the output may stay unchanged before waiting longer is pointless (longer
/// than the default scan frequency, 10 s).
const STALL: Duration = Duration::from_secs(15);
/// Descriptors the agent may hold beyond its baseline and its harvesters.
const FD_OVERHEAD: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Kubelet,
    Docker,
}

impl Layout {
    /// The `paths` glob, as a DaemonSet would configure it.
    fn glob(self, root: &Path) -> String {
        match self {
            Layout::Kubelet => format!("{}/containers/*.log", root.display()),
            Layout::Docker => format!("{}/docker/containers/*/*-json.log", root.display()),
        }
    }
}

/// What the writer does.
#[derive(Clone, Copy)]
struct Plan {
    layout: Layout,
    containers: usize,
    /// Entries per second, all containers together.
    entries_per_sec: u64,
    /// Each container rotates this often (staggered across containers).
    rotate_every: Duration,
    /// Share of entries (percent) written in several chunks: CRI `P` lines, or docker
    /// messages over 16 KiB.
    split_percent: u64,
    seed: u64,
}

const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// A written entry, by its text.
struct Written {
    id: u64,
    container: usize,
    stream: usize,
    /// The file (inode) and offset of the entry's first chunk.
    ino: u64,
    offset: u64,
    /// Kills that had happened before its first chunk was written.
    kills_before: usize,
}

/// What the writer wrote.
#[derive(Default)]
struct Ledger {
    entries: HashMap<String, Written>,
    /// Per container: its id and the path events must carry as `log.file.path`.
    containers: Vec<(String, String)>,
    rotations: u64,
    /// Entries whose chunks are in more than one file.
    straddling: u64,
}

/// An entry whose last chunk is not written yet.
struct Open {
    id: u64,
    text: String,
    chunks: Vec<std::ops::Range<usize>>,
    next: usize,
    ino: u64,
    offset: u64,
    last_ino: u64,
    files: u32,
    kills_before: usize,
}

struct Container {
    id: String,
    /// The path events carry: the symlink (kubelet) or the glob's match (docker).
    shown: PathBuf,
    /// The current file's real path.
    current: PathBuf,
    file: File,
    ino: u64,
    len: u64,
    next_rotation: Instant,
    /// Kubelet: rotated files, oldest first, and whether they were gzipped.
    rotated: VecDeque<(PathBuf, bool)>,
    open: [Option<Open>; 2],
}

struct Writer {
    plan: Plan,
    rng: Rng,
    containers: Vec<Container>,
    /// Handles of every file ever created, so that no inode is reused while the writer
    /// runs and an inode in a registry snapshot names one file.
    pinned: Vec<File>,
    /// Seconds of the fake clock naming kubelet's rotated files.
    clock: u64,
    next_id: u64,
    started: Instant,
    completed: u64,
    kills: Arc<AtomicUsize>,
    ledger: Ledger,
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `2024-01-01T…Z` with nanoseconds, `d` after midnight.
fn rfc3339_nano(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "2024-01-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        1 + s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        d.subsec_nanos()
    )
}

/// kubelet's rotated-file suffix (`20060102-150405`), `secs` after 2024-01-01.
fn kubelet_stamp(secs: u64) -> String {
    format!(
        "202401{:02}-{:02}{:02}{:02}",
        1 + secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// kubelet's `compressLog`: gzip into `<name>.tmp`, rename it to `<name>.gz`, remove
/// `<name>`.
fn kubelet_gzip(path: &Path) {
    let data = fs::read(path).unwrap();
    let tmp = with_suffix(path, ".tmp");
    let mut gz =
        flate2::write::GzEncoder::new(File::create(&tmp).unwrap(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    gz.finish().unwrap();
    fs::rename(&tmp, with_suffix(path, ".gz")).unwrap();
    fs::remove_file(path).unwrap();
}

impl Writer {
    /// Creates the containers' directories and first files.
    fn new(plan: Plan, root: &Path, kills: Arc<AtomicUsize>) -> Writer {
        let mut rng = Rng(plan.seed);
        let started = Instant::now();
        let mut containers = Vec::new();
        let mut pinned = Vec::new();
        for c in 0..plan.containers {
            let id = rng.hex64();
            let (dir, current, shown) = match plan.layout {
                Layout::Kubelet => {
                    let (ns, pod, name) = ("shop", format!("web-{c}-7d9f8b6c5-x2x7q"), "app");
                    let u = rng.next();
                    let uid = format!(
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        u >> 32,
                        (u >> 16) & 0xffff,
                        u & 0xffff,
                        c,
                        rng.next() >> 16
                    );
                    let dir = root.join(format!("pods/{ns}_{pod}_{uid}/{name}"));
                    let shown = root.join(format!("containers/{pod}_{ns}_{name}-{id}.log"));
                    (dir.clone(), dir.join("0.log"), shown)
                }
                Layout::Docker => {
                    let dir = root.join(format!("docker/containers/{id}"));
                    let current = dir.join(format!("{id}-json.log"));
                    (dir, current.clone(), current)
                }
            };
            fs::create_dir_all(&dir).unwrap();
            fs::create_dir_all(shown.parent().unwrap()).unwrap();
            let file = open_append(&current);
            if plan.layout == Layout::Kubelet {
                std::os::unix::fs::symlink(&current, &shown).unwrap();
            }
            let ino = file.metadata().unwrap().ino();
            pinned.push(file.try_clone().unwrap());
            containers.push(Container {
                id,
                shown,
                current,
                file,
                ino,
                len: 0,
                next_rotation: started,
                rotated: VecDeque::new(),
                open: [None, None],
            });
        }
        let ledger = Ledger {
            containers: containers
                .iter()
                .map(|c| (c.id.clone(), c.shown.to_string_lossy().into_owned()))
                .collect(),
            ..Ledger::default()
        };
        Writer {
            plan,
            rng,
            containers,
            pinned,
            clock: 0,
            next_id: 0,
            started,
            completed: 0,
            kills,
            ledger,
        }
    }

    /// Writes at the plan's rate and rotates on time until `stop`, then finishes every
    /// open entry.
    fn run(mut self, stop: &AtomicBool) -> Ledger {
        self.started = Instant::now();
        for (c, cont) in self.containers.iter_mut().enumerate() {
            cont.next_rotation = self.started
                + self
                    .plan
                    .rotate_every
                    .mul_f64((c + 1) as f64 / self.plan.containers as f64);
        }
        let n = self.plan.containers as u64;
        while !stop.load(Ordering::Relaxed) {
            let due =
                (self.started.elapsed().as_secs_f64() * self.plan.entries_per_sec as f64) as u64;
            // Bounded, so that rotations stay on time when the writer falls behind.
            for _ in 0..500 {
                if self.completed >= due {
                    break;
                }
                let (c, s) = (self.rng.below(n) as usize, self.rng.below(2) as usize);
                self.write_chunk(c, s, false);
            }
            let now = Instant::now();
            for c in 0..self.containers.len() {
                if now >= self.containers[c].next_rotation {
                    self.rotate(c);
                    self.containers[c].next_rotation += self.plan.rotate_every;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for c in 0..self.containers.len() {
            for s in 0..2 {
                while self.containers[c].open[s].is_some() {
                    self.write_chunk(c, s, false);
                }
            }
        }
        self.pinned.clear();
        self.ledger
    }

    /// A new entry's text, cut into chunks; `split` forces several chunks.
    fn new_entry(&mut self, c: usize, split: bool) -> (u64, String, Vec<std::ops::Range<usize>>) {
        self.next_id += 1;
        let id = self.next_id;
        let rng = &mut self.rng;
        let split = split || rng.percent(self.plan.split_percent);
        let len = match self.plan.layout {
            // A whole number of pieces now and then: docker's last piece is then the
            // newline alone.
            Layout::Docker if split && rng.percent(20) => {
                DOCKER_PIECE * (1 + rng.below(3) as usize)
            }
            Layout::Docker if split => {
                DOCKER_PIECE + 1 + rng.below(3 * DOCKER_PIECE as u64 - 2) as usize
            }
            _ => 20 + rng.below(200) as usize,
        };
        let json = rng.percent(40);
        let (head, tail, alphabet): (String, &str, &[u8]) = if json {
            // Valid JSON: the padding needs no escaping.
            let head = format!(r#"{{"id":{id},"container":{c},"level":"info","msg":""#);
            (head, "\"}", b"abcdefghijklmnopqrstuvwxyz0123456789 ")
        } else {
            let head = format!("entry id={id} container={c} ");
            (
                head,
                " end",
                b"abcdefghijklmnopqrstuvwxyz0123456789 -_.,:;'\"\\/\t{}[]",
            )
        };
        let mut text = head;
        for _ in 0..len.saturating_sub(text.len() + tail.len()) {
            text.push(alphabet[rng.below(alphabet.len() as u64) as usize] as char);
        }
        text.push_str(tail);
        let mut chunks = Vec::new();
        match self.plan.layout {
            Layout::Kubelet if split => {
                let mut cuts: Vec<usize> = (0..1 + rng.below(3))
                    .map(|_| 1 + rng.below(text.len() as u64 - 1) as usize)
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut at = 0;
                for cut in cuts {
                    chunks.push(at..cut);
                    at = cut;
                }
                chunks.push(at..text.len());
            }
            Layout::Docker => {
                // Pieces of 16 KiB of the text and its newline; the newline is added to
                // the last piece when it is written.
                for i in 0..=text.len() / DOCKER_PIECE {
                    chunks.push(i * DOCKER_PIECE..((i + 1) * DOCKER_PIECE).min(text.len()));
                }
            }
            Layout::Kubelet => chunks.push(0..text.len()),
        }
        (id, text, chunks)
    }

    /// Writes the next chunk of `(c, s)`'s open entry, or the first of a new one; returns
    /// whether that completed an entry.
    fn write_chunk(&mut self, c: usize, s: usize, split: bool) -> bool {
        let mut open = match self.containers[c].open[s].take() {
            Some(open) => open,
            None => {
                let (id, text, chunks) = self.new_entry(c, split);
                let cont = &self.containers[c];
                Open {
                    id,
                    text,
                    chunks,
                    next: 0,
                    ino: cont.ino,
                    offset: cont.len,
                    last_ino: cont.ino,
                    files: 1,
                    kills_before: self.kills.load(Ordering::SeqCst),
                }
            }
        };
        let time = rfc3339_nano(self.started.elapsed());
        let piece = &open.text[open.chunks[open.next].clone()];
        let last = open.next + 1 == open.chunks.len();
        let stream = STREAMS[s];
        let line = match self.plan.layout {
            Layout::Kubelet => {
                let tag = if last { "F" } else { "P" };
                format!("{time} {stream} {tag} {piece}\n")
            }
            Layout::Docker => {
                let log = if last {
                    format!("{piece}\n")
                } else {
                    piece.to_owned()
                };
                format!(
                    "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n",
                    serde_json::to_string(&log).unwrap()
                )
            }
        };
        let cont = &mut self.containers[c];
        cont.file.write_all(line.as_bytes()).unwrap();
        cont.len += line.len() as u64;
        if open.last_ino != cont.ino {
            open.last_ino = cont.ino;
            open.files += 1;
        }
        open.next += 1;
        if !last {
            cont.open[s] = Some(open);
            return false;
        }
        self.completed += 1;
        if open.files > 1 {
            self.ledger.straddling += 1;
        }
        let written = Written {
            id: open.id,
            container: c,
            stream: s,
            ino: open.ino,
            offset: open.offset,
            kills_before: open.kills_before,
        };
        assert!(self.ledger.entries.insert(open.text, written).is_none());
        true
    }

    fn rotate(&mut self, c: usize) {
        // Rotate while an entry is open, so that its chunks land on both sides.
        if self.containers[c].open.iter().all(Option::is_none) {
            let s = self.rng.below(2) as usize;
            self.write_chunk(c, s, true);
        }
        let layout = self.plan.layout;
        let stamp = kubelet_stamp(self.clock);
        self.clock += 1 + self.rng.below(2);
        let cont = &mut self.containers[c];
        match layout {
            Layout::Kubelet => {
                // kubelet's rotateLog: removeExcessLogs, compressLog, rotateLatestLog.
                while cont.rotated.len() > MAX_FILES - 2 {
                    let (path, gz) = cont.rotated.pop_front().unwrap();
                    let path = if gz { with_suffix(&path, ".gz") } else { path };
                    fs::remove_file(path).unwrap();
                }
                for (path, gz) in cont.rotated.iter_mut().filter(|(_, gz)| !*gz) {
                    kubelet_gzip(path);
                    *gz = true;
                }
                let to = with_suffix(&cont.current, &format!(".{stamp}"));
                fs::rename(&cont.current, &to).unwrap();
                cont.rotated.push_back((to, false));
            }
            Layout::Docker => {
                // moby's loggerutils rotate with max-file 5, then the current file to `.1`.
                let _ = fs::remove_file(with_suffix(&cont.current, &format!(".{}", MAX_FILES - 1)));
                for i in (2..MAX_FILES).rev() {
                    let from = with_suffix(&cont.current, &format!(".{}", i - 1));
                    if from.exists() {
                        fs::rename(&from, with_suffix(&cont.current, &format!(".{i}"))).unwrap();
                    }
                }
                fs::rename(&cont.current, with_suffix(&cont.current, ".1")).unwrap();
            }
        }
        cont.file = open_append(&cont.current);
        cont.ino = cont.file.metadata().unwrap().ino();
        cont.len = 0;
        self.pinned.push(cont.file.try_clone().unwrap());
        self.ledger.rotations += 1;
    }
}

/// One event of the output, the fields the checks look at.
struct OutEvent {
    message: Option<String>,
    path: Option<String>,
    offset: Option<u64>,
    container_id: Option<String>,
    stream: Option<String>,
    partial: bool,
}

/// The output file, read as it grows.
struct Output {
    file: PathBuf,
    pos: u64,
    events: Vec<OutEvent>,
    /// Lines that are not JSON events.
    garbled: Vec<String>,
}

impl Output {
    fn new(file: PathBuf) -> Output {
        Output {
            file,
            pos: 0,
            events: Vec::new(),
            garbled: Vec::new(),
        }
    }

    /// Reads the complete lines written since the last call; returns how many.
    fn poll(&mut self) -> usize {
        let Ok(mut f) = File::open(&self.file) else {
            return 0;
        };
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(self.pos)).unwrap();
        f.read_to_end(&mut buf).unwrap();
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return 0;
        };
        self.pos += end as u64 + 1;
        let before = self.events.len();
        for line in buf[..end].split(|&b| b == b'\n') {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                self.garbled
                    .push(String::from_utf8_lossy(line).into_owned());
                continue;
            };
            let flags = v.pointer("/log/flags").and_then(Value::as_array);
            self.events.push(OutEvent {
                message: v["message"].as_str().map(str::to_owned),
                path: v
                    .pointer("/log/file/path")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                offset: v.pointer("/log/offset").and_then(Value::as_u64),
                container_id: v
                    .pointer("/container/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                stream: v["stream"].as_str().map(str::to_owned),
                partial: flags.is_some_and(|f| f.iter().any(|f| f == "partial")),
            });
        }
        self.events.len() - before
    }
}

/// A file's saved state in a registry snapshot.
struct Saved {
    offset: u64,
    /// `(stream, start, end)`: chunks of shipped entries, skipped on resume.
    skip: Vec<(String, u64, u64)>,
}

/// The registry on disk after a kill, by inode.
type Snapshot = HashMap<u64, Vec<Saved>>;

fn registry_snapshot(dir: &Path) -> Snapshot {
    let mut snap = Snapshot::new();
    let Ok(text) = fs::read(dir.join("registry.json")) else {
        return snap;
    };
    let doc: Value = serde_json::from_slice(&text).expect("the registry on disk is always whole");
    for f in doc["files"].as_array().expect("registry files") {
        let skip = f["skip"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        let n = |k: &str| r[k].as_u64().unwrap();
                        (
                            r["stream"].as_str().unwrap().to_owned(),
                            n("start"),
                            n("end"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        snap.entry(f["ino"].as_u64().unwrap())
            .or_default()
            .push(Saved {
                offset: f["offset"].as_u64().unwrap(),
                skip,
            });
    }
    snap
}

/// Whether the registry in `snap` has `w` acknowledged: its file's offset is past the
/// entry's start, or the entry's first chunk is in a range skipped as already shipped.
fn acknowledged(snap: &Snapshot, w: &Written) -> bool {
    snap.get(&w.ino).is_some_and(|saved| {
        saved.iter().any(|s| {
            s.offset > w.offset
                || s.skip.iter().any(|(stream, start, end)| {
                    stream == STREAMS[w.stream] && (*start..*end).contains(&w.offset)
                })
        })
    })
}

#[derive(Default)]
struct Verdict {
    entries: usize,
    lost: usize,
    corrupted: usize,
    split: usize,
    /// Entries shipped more than once.
    duplicates: usize,
    /// Duplicates acknowledged in the registry at every kill after they were written.
    unjustified: usize,
    /// Duplicates whose copies differ in `log.offset`, `log.file.path` or `container.id`.
    unstable: usize,
    /// Events whose `container.id`, `log.file.path`, `log.offset` or `stream` is not the
    /// entry's.
    misattributed: usize,
    examples: Vec<String>,
}

impl Verdict {
    fn example(&mut self, what: &str, detail: String) {
        if self.examples.iter().filter(|e| e.starts_with(what)).count() < 3 {
            self.examples.push(format!("{what}: {detail}"));
        }
    }
}

fn identity(e: &OutEvent) -> (Option<u64>, Option<&str>, Option<&str>) {
    (e.offset, e.path.as_deref(), e.container_id.as_deref())
}

/// Checks the output against what was written; `snapshots` are the registry after each
/// kill (none: no duplicate is allowed).
fn verify(ledger: &Ledger, out: &Output, snapshots: &[Snapshot]) -> Verdict {
    let mut v = Verdict {
        entries: ledger.entries.len(),
        corrupted: out.garbled.len(),
        ..Verdict::default()
    };
    for line in &out.garbled {
        v.example("not JSON", line.chars().take(200).collect());
    }
    let mut copies: HashMap<u64, Vec<&OutEvent>> = HashMap::new();
    for e in &out.events {
        if e.partial {
            v.split += 1;
            v.example("split", format!("{:?}", e.message.as_deref().map(short)));
        }
        let Some(w) = e.message.as_deref().and_then(|m| ledger.entries.get(m)) else {
            v.corrupted += 1;
            v.example(
                "corrupted",
                format!("{:?}", e.message.as_deref().map(short)),
            );
            continue;
        };
        let (id, shown) = &ledger.containers[w.container];
        let want = (Some(w.offset), Some(shown.as_str()), Some(id.as_str()));
        if identity(e) != want || e.stream.as_deref() != Some(STREAMS[w.stream]) {
            v.misattributed += 1;
            v.example(
                "misattributed",
                format!(
                    "entry {} has {:?} on {:?}, expected {want:?} on {}",
                    w.id,
                    identity(e),
                    e.stream,
                    STREAMS[w.stream]
                ),
            );
        }
        copies.entry(w.id).or_default().push(e);
    }
    for (text, w) in &ledger.entries {
        let Some(c) = copies.get(&w.id) else {
            v.lost += 1;
            v.example("lost", format!("entry {} ({})", w.id, short(text)));
            continue;
        };
        if c.len() < 2 {
            continue;
        }
        v.duplicates += 1;
        if c.iter().any(|e| identity(e) != identity(c[0])) {
            v.unstable += 1;
            v.example(
                "unstable",
                format!(
                    "entry {}: {:?}",
                    w.id,
                    c.iter().map(|e| identity(e)).collect::<Vec<_>>()
                ),
            );
        }
        let kills_after = snapshots.get(w.kills_before..).unwrap_or_default();
        if !kills_after.iter().any(|s| !acknowledged(s, w)) {
            v.unjustified += 1;
            v.example(
                "unjustified duplicate",
                format!(
                    "entry {} x{} (ino {} offset {})",
                    w.id,
                    c.len(),
                    w.ino,
                    w.offset
                ),
            );
        }
    }
    v
}

fn short(s: &str) -> String {
    if s.len() <= 120 {
        s.to_owned()
    } else {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(120)], s.len())
    }
}

/// A temporary root with the log layout, the registry, the output and the agent's config.
struct Harness {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
    registry: PathBuf,
    config: PathBuf,
    stderr: PathBuf,
}

impl Harness {
    fn new(layout: Layout) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("node");
        match layout {
            Layout::Kubelet => {
                fs::create_dir_all(root.join("containers")).unwrap();
                fs::create_dir_all(root.join("pods")).unwrap();
            }
            Layout::Docker => fs::create_dir_all(root.join("docker/containers")).unwrap(),
        }
        let registry = base.join("registry");
        let config = base.join("logtide-files.yml");
        // Defaults for everything but where to read, where to keep the registry and where
        // to write (one output file, never rotated, so the test can read it as it grows).
        fs::write(
            &config,
            format!(
                "inputs:\n  - type: container\n    paths: ['{}']\nregistry: {{path: {}}}\noutput.file: {{path: {}, filename: events.ndjson, rotate_every_kb: 1048576}}\n",
                layout.glob(&root),
                registry.display(),
                base.join("out").display()
            ),
        )
        .unwrap();
        Harness {
            stderr: base.join("agent.stderr"),
            out: base.join("out"),
            _tmp: tmp,
            root,
            registry,
            config,
        }
    }

    fn output(&self) -> Output {
        Output::new(self.out.join("events.ndjson"))
    }

    fn start(&self) -> Child {
        Command::new(bin())
            .args(["run", "-c", self.config.to_str().unwrap()])
            .env("LOGTIDE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(open_append(&self.stderr))
            .spawn()
            .unwrap()
    }

    /// The last lines the agent wrote to stderr, over all its runs.
    fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// SIGTERM, then up to 30 s for a clean exit (SIGKILL after that).
fn terminate(child: &mut Child) -> Option<ExitStatus> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// User plus system CPU time of a process.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

/// How a scenario runs the agent.
#[derive(Clone, Copy)]
enum Mode {
    /// One run while the writer writes for this long.
    Steady(Duration),
    /// `KILLS` runs killed at random moments while the writer writes, then a last run.
    Kills,
    /// As `Steady`, with the agent started before any file exists, its descriptors sampled
    /// and its CPU time read.
    Observed(Duration),
}

struct Outcome {
    ledger: Ledger,
    verdict: Verdict,
    kills: usize,
    exit: Option<ExitStatus>,
    stderr_tail: String,
    baseline_fds: usize,
    max_fds: usize,
    cpu: Duration,
    events: usize,
}

fn scenario(plan: Plan, mode: Mode) -> Outcome {
    let h = Harness::new(plan.layout);
    let kills = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = Rng(plan.seed ^ 0xA5A5_5A5A_DEAD_BEEF);

    let mut agent = None;
    let mut baseline_fds = 0;
    if let Mode::Observed(_) = mode {
        let child = h.start();
        std::thread::sleep(Duration::from_secs(1));
        baseline_fds = fd_count(child.id());
        agent = Some(child);
    }
    let writer = Writer::new(plan, &h.root, kills.clone());
    let writer: JoinHandle<Ledger> = {
        let stop = stop.clone();
        std::thread::spawn(move || writer.run(&stop))
    };
    let sampler = agent.as_ref().map(|child| {
        let (pid, stop) = (child.id(), stop.clone());
        std::thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::Relaxed) {
                max = max.max(fd_count(pid));
                std::thread::sleep(Duration::from_millis(200));
            }
            max
        })
    });

    let mut snapshots = Vec::new();
    let mut agent = match mode {
        Mode::Steady(d) => {
            let child = h.start();
            std::thread::sleep(d);
            child
        }
        Mode::Observed(d) => {
            std::thread::sleep(d);
            agent.take().unwrap()
        }
        Mode::Kills => {
            for _ in 0..KILLS {
                let mut child = h.start();
                std::thread::sleep(Duration::from_millis(900 + rng.below(1600)));
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                snapshots.push(registry_snapshot(&h.registry));
                kills.fetch_add(1, Ordering::SeqCst);
            }
            // The last run starts while the writer still writes and rotates.
            let child = h.start();
            std::thread::sleep(Duration::from_secs(2));
            child
        }
    };
    stop.store(true, Ordering::Relaxed);
    let ledger = writer.join().expect("writer");

    // Wait until every entry is out, the output stalls, or the deadline passes.
    let mut out = h.output();
    let mut seen = HashSet::new();
    let (deadline, mut last_growth) = (Instant::now() + CATCH_UP, Instant::now());
    let mut max_fds = 0;
    loop {
        let before = out.events.len();
        if out.poll() > 0 {
            last_growth = Instant::now();
        }
        for e in &out.events[before..] {
            if let Some(w) = e.message.as_deref().and_then(|m| ledger.entries.get(m)) {
                seen.insert(w.id);
            }
        }
        if let Mode::Observed(_) = mode {
            max_fds = max_fds.max(fd_count(agent.id()));
        }
        if seen.len() >= ledger.entries.len()
            || Instant::now() > deadline
            || last_growth.elapsed() > STALL
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let cpu = match mode {
        Mode::Observed(_) => cpu_time(agent.id()),
        _ => Duration::ZERO,
    };
    let exit = terminate(&mut agent);
    if let Some(s) = sampler {
        max_fds = max_fds.max(s.join().unwrap());
    }
    out.poll();
    let verdict = verify(&ledger, &out, &snapshots);
    Outcome {
        verdict,
        kills: snapshots.len(),
        exit,
        stderr_tail: h.stderr_tail(),
        baseline_fds,
        max_fds,
        cpu,
        events: out.events.len(),
        ledger,
    }
}

impl Outcome {
    /// The summary line, then the examples and the agent's stderr when something is wrong.
    fn report(&self, name: &str, extra: &str) {
        let v = &self.verdict;
        eprintln!(
            "rotation {name}: entries={} lost={} corrupted={} split={} duplicates={} kills={} unjustified_duplicates={} unstable_duplicates={} misattributed={} rotations={} straddling={}{extra}",
            v.entries,
            v.lost,
            v.corrupted,
            v.split,
            v.duplicates,
            self.kills,
            v.unjustified,
            v.unstable,
            v.misattributed,
            self.ledger.rotations,
            self.ledger.straddling,
        );
        if !v.examples.is_empty() || self.exit.is_none_or(|s| !s.success()) {
            for e in &v.examples {
                eprintln!("  {e}");
            }
            eprintln!(
                "  agent exit: {:?}; its stderr ends with:\n{}",
                self.exit, self.stderr_tail
            );
        }
    }

    /// The assertions every scenario shares; `duplicates_allowed`: only those the registry
    /// on disk had not acknowledged at a kill.
    fn assert_clean(&self, min_entries: usize, duplicates_allowed: bool) {
        let v = &self.verdict;
        // The writer did what the scenario needs.
        assert!(
            v.entries >= min_entries,
            "the writer wrote only {} entries",
            v.entries
        );
        assert!(
            self.ledger.straddling * 2 >= self.ledger.rotations && self.ledger.rotations > 0,
            "too few entries straddle a rotation"
        );
        assert_eq!(v.lost, 0, "entries lost");
        assert_eq!(
            v.corrupted, 0,
            "events that are not exactly one written entry"
        );
        assert_eq!(v.split, 0, "events flagged partial");
        assert_eq!(
            v.misattributed, 0,
            "events with another container.id, log.file.path, log.offset or stream"
        );
        assert_eq!(v.unstable, 0, "duplicates whose identity changed");
        if duplicates_allowed {
            assert_eq!(
                v.unjustified, 0,
                "duplicates of entries acknowledged at every kill"
            );
        } else {
            assert_eq!(v.duplicates, 0, "duplicates without a restart");
        }
        assert!(
            self.exit.is_some_and(|s| s.success()),
            "the agent did not stop cleanly on SIGTERM: {:?}",
            self.exit
        );
    }
}

fn kubelet(seed: u64) -> Plan {
    Plan {
        layout: Layout::Kubelet,
        containers: 5,
        entries_per_sec: 1200,
        rotate_every: Duration::from_millis(1500),
        split_percent: 30,
        seed,
    }
}

fn docker(seed: u64) -> Plan {
    Plan {
        layout: Layout::Docker,
        containers: 5,
        entries_per_sec: 1200,
        rotate_every: Duration::from_secs(1),
        split_percent: 1,
        seed,
    }
}

#[test]
fn kubelet_fast_rotation_loses_and_breaks_nothing() {
    let _one = crate::one_at_a_time();
    let o = scenario(
        kubelet(0x9E37_79B9_7F4A_7C15),
        Mode::Steady(Duration::from_secs(15)),
    );
    o.report("kubelet", "");
    o.assert_clean(12_000, false);
}

#[test]
fn kubelet_fast_rotation_with_sigkills_loses_and_breaks_nothing() {
    let _one = crate::one_at_a_time();
    let o = scenario(kubelet(0x2545_F491_4F6C_DD1D), Mode::Kills);
    o.report("kubelet restarts", "");
    o.assert_clean(12_000, true);
}

#[test]
fn docker_fast_rotation_loses_and_breaks_nothing() {
    let _one = crate::one_at_a_time();
    let o = scenario(
        docker(0xD0CC_E4D0_CCE4_0001),
        Mode::Steady(Duration::from_secs(15)),
    );
    o.report("docker", "");
    o.assert_clean(12_000, false);
}

#[test]
fn docker_fast_rotation_with_sigkills_loses_and_breaks_nothing() {
    let _one = crate::one_at_a_time();
    let o = scenario(docker(0xD0CC_E4D0_CCE4_0002), Mode::Kills);
    o.report("docker restarts", "");
    o.assert_clean(12_000, true);
}

#[test]
fn storm_of_fifty_containers_rotating_every_second_stays_within_the_harvester_limit() {
    let _one = crate::one_at_a_time();
    let plan = Plan {
        layout: Layout::Kubelet,
        containers: 50,
        entries_per_sec: 50 * 25,
        rotate_every: Duration::from_secs(1),
        split_percent: 30,
        seed: 0x5709_3000_0000_0001,
    };
    let o = scenario(plan, Mode::Observed(Duration::from_secs(60)));
    let limit = logtide_tail::TailConfig::default().harvester_limit;
    let per_event = o.cpu.as_secs_f64() * 1e6 / o.events.max(1) as f64;
    o.report(
        "storm",
        &format!(
            " baseline_fds={} max_fds={} harvester_limit={limit} cpu_ms={} events={} cpu_us_per_event={per_event:.1}",
            o.baseline_fds,
            o.max_fds,
            o.cpu.as_millis(),
            o.events,
        ),
    );
    o.assert_clean(60_000, false);
    assert!(
        o.max_fds <= o.baseline_fds + limit + FD_OVERHEAD,
        "the agent held {} descriptors (baseline {}, harvester_limit {limit})",
        o.max_fds,
        o.baseline_fds
    );
}
