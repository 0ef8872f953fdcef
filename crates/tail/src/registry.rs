//! The registry: where reading of each file resumes after a restart.
//!
//! One JSON document, `registry.json` in the registry directory, replaced atomically
//! (temporary file, fsync, rename, fsync of the directory) so that a crash leaves either
//! the old or the new registry, never a torn one.
//!
//! # Format, version 4 (written by this version)
//!
//! ```json
//! {"version": 4, "files": [{
//!   "path": "/var/log/pods/ns_pod_uid/app/0.log", "dev": 2049, "ino": 131,
//!   "shown_path": "/var/log/containers/app-7d9_ns_app-3f1c….log",   // log.file.path
//!   "fingerprint": {"len": 1024, "hash": "9f0c…"},   // first bytes of the file
//!   "offset": 52311,                                 // start of the first unacknowledged entry
//!   "size": 61020,                                   // the file's size when saved
//!   "open": ["stdout"],                              // entries going on in the next file
//!   "gap_before": true,                              // a file before this one was lost
//!   "prefix": {"len": 64, "hash": "77aa…"},          // the 64 bytes before `offset`
//!   "skip": [{"stream": "stdout", "start": 52001, "end": 53001}],   // see below
//!   "container": "3f1c…", "order": 42,              // read order in its container
//!   "updated": "2026-11-24T09:15:02.118340112Z", "removed": null }]}
//! ```
//!
//! `offset` is always the start of a line, and the start of an entry that is not yet
//! acknowledged (or the end of everything read). Entries of one stream are interleaved with
//! the other stream's, and an entry can start in a rotated file and end in its successor,
//! so lines after `offset` may belong to an entry that was already shipped but would only
//! partly be read again. `skip` lists, per stream, the byte ranges holding such chunks; on
//! resume the lines of that stream starting inside a range are skipped instead of being
//! shipped as broken entries.
//!
//! `size` is the file's size when the entry was saved, so that a file found gone after a
//! restart is counted lost with at least the bytes it had not shipped; `open` lists the
//! streams whose entry not yet acknowledged goes on in a later file, so that the rest of
//! such an entry is then shipped flagged partial instead of as a whole entry.
//!
//! `gap_before` (written only when true) marks a file read after a file of its rotation
//! sequence was lost (compressed or deleted before it was read): the entries open at the
//! end of the files before it were shipped flagged partial, cut there. A restart that reads
//! those entries again (they were not acknowledged) cuts them at the same place, instead of
//! joining them with this file's lines. It also marks the files after one whose entries were
//! not all acknowledged and whose inode, and so entry here, a new file took: after a
//! restart that file is not known any more, and the entries it held chunks of are cut
//! before the files after it. An entry with `gap_before` whose inode a new file took moves
//! its mark to the next file of its container, while a file before it is not finished. A
//! file found gone at a start with bytes it had not shipped (counted lost then) is saved
//! finished with `gap_before` too: a later start cuts there again, even when no file after
//! it existed yet, and does not count it again.
//!
//! A finished entry whose file is deleted is forgotten, unless it is the newest of its
//! container, it carries a gap still needed, or a compressed copy of the file (the same
//! first bytes) is in its directory: that is what tells the copy from a file lost unread.
//!
//! `order` is the order in which the files of one container are read, oldest first (the
//! numbers only compare; they grow across restarts). After a restart the files the
//! registry knows are put in that order, wherever they were renamed or compressed to:
//! names and times cannot tell it once a file is gone under a name a later rotation gave
//! to another file. Entries without it (older versions, Filebeat imports) are ordered by
//! their names and times.
//!
//! `shown_path` is the path the file was found through (the configured glob's match, e.g.
//! kubelet's `/var/log/containers` symlink): after a restart, a file that was rotated away
//! from it keeps its `log.file.path` and container id.
//!
//! # Format, version 4
//!
//! Version 5 without `order`. Read as it is; such entries are ordered by their names and
//! times until the first restart numbers them. (Version 5 is a version of its own for the
//! reason given under version 3.)
//!
//! # Format, version 3
//!
//! Version 4 without `gap_before`. Read as it is. (Version 4 is a version of its own so
//! that a binary that knows only version 3 refuses it by its version, instead of failing
//! on the new field and moving the registry aside.)
//!
//! # Format, version 2
//!
//! Version 3 without `shown_path`, `size` and `open`. Read as it is.
//!
//! # Format, version 1
//!
//! `{"version": 1, "files": [{"path": …, "dev": …, "ino": …, "offset": …}]}`: no
//! fingerprint, no check hash. Read for compatibility; on resume the offset is moved to
//! the next entry boundary when it does not sit on one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use logtide_container_log::Stream;
use logtide_event::Timestamp;

use crate::identity::{FileId, RangeHash};
use crate::Error;

/// The registry format this version writes.
pub const REGISTRY_VERSION: u32 = 5;
/// File name of the registry inside the registry directory.
pub const REGISTRY_FILE: &str = "registry.json";

/// Lines of one stream, starting in `start..end`, that belong to an entry already shipped
/// and are skipped on resume.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct SkipRange {
    /// The stream whose lines are skipped.
    pub stream: Stream,
    /// First offset of the range.
    pub start: u64,
    /// Offset just past the range.
    pub end: u64,
}

/// The saved state of one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// Where the file was last seen.
    pub path: PathBuf,
    /// The path it was found through (`log.file.path`), when not `path` itself (absent
    /// before version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_path: Option<String>,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hash of the file's first bytes (absent in version 1 and Filebeat imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<RangeHash>,
    /// Where reading resumes.
    pub offset: u64,
    /// The file's size when the entry was saved (absent before version 3): after a
    /// restart that finds the file gone, at least `size - offset` bytes were lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Streams with an entry not yet acknowledged that goes on after this file: should the
    /// file be gone after a restart, the rest of those entries in the next file is shipped
    /// flagged partial (absent before version 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<Stream>,
    /// A file of the rotation sequence before this one could not be read (or one before it,
    /// not yet acknowledged, lost its entry to a new file that took its inode): after a
    /// restart, the entries read again from the files before it are not joined with this
    /// file's lines (absent before version 4, and when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gap_before: bool,
    /// Hash of the bytes just before `offset` (absent in version 1 and Filebeat imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<RangeHash>,
    /// Chunks after `offset` of entries already shipped, to skip on resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<SkipRange>,
    /// The container (stream group) the file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Where the file comes in its container's read order: a higher number was read after
    /// (absent before version 5, and in Filebeat imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    /// When the entry last changed.
    pub updated: Timestamp,
    /// When the file was found gone, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Timestamp>,
}

impl RegistryEntry {
    /// The identity of the file.
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: u32,
    files: Vec<RegistryEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    path: PathBuf,
    dev: u64,
    ino: u64,
    offset: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DocV1 {
    #[allow(dead_code)]
    version: u32,
    files: Vec<EntryV1>,
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    version: u32,
}

/// What loading the registry found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The format version read (`None` when there was no registry).
    pub version: Option<u32>,
    /// Where an unreadable registry was moved aside, if one was.
    pub moved_aside: Option<PathBuf>,
    /// Why it was unreadable.
    pub problem: Option<String>,
}

/// Saved read positions, by file identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    entries: BTreeMap<FileId, RegistryEntry>,
}

impl Registry {
    /// Parses a registry document of any supported version.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<(Registry, u32), Error> {
        let bad = |e: serde_json::Error| Error::RegistryFormat {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let version = serde_json::from_slice::<VersionOnly>(bytes)
            .map_err(bad)?
            .version;
        let entries: Vec<RegistryEntry> = match version {
            1 => serde_json::from_slice::<DocV1>(bytes)
                .map_err(bad)?
                .files
                .into_iter()
                .map(|e| RegistryEntry {
                    path: e.path,
                    shown_path: None,
                    dev: e.dev,
                    ino: e.ino,
                    fingerprint: None,
                    offset: e.offset,
                    size: None,
                    open: Vec::new(),
                    gap_before: false,
                    prefix: None,
                    skip: Vec::new(),
                    container: None,
                    order: None,
                    updated: Timestamp::UNIX_EPOCH,
                    removed: None,
                })
                .collect(),
            2..=REGISTRY_VERSION => serde_json::from_slice::<Doc>(bytes).map_err(bad)?.files,
            other => {
                return Err(Error::RegistryVersion {
                    path: path.to_owned(),
                    found: other,
                    supported: REGISTRY_VERSION,
                })
            }
        };
        let mut reg = Registry::default();
        for e in entries {
            reg.insert(e);
        }
        Ok((reg, version))
    }

    /// The registry as a JSON document of the current version.
    pub fn to_json(&self) -> Vec<u8> {
        let doc = Doc {
            version: REGISTRY_VERSION,
            files: self.entries.values().cloned().collect(),
        };
        // Plain data: serialization cannot fail.
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }

    /// Loads `registry.json` from `dir`. A missing registry is empty. An unreadable one is
    /// moved aside (so nothing is lost for inspection) and reading starts afresh, which
    /// can duplicate but never lose data; the report says so.
    pub fn load(dir: &Path) -> Result<(Registry, LoadReport), Error> {
        let path = dir.join(REGISTRY_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Registry::default(), LoadReport::default()))
            }
            Err(e) => return Err(Error::io("read registry", &path, e)),
        };
        match Registry::from_json(&bytes, &path) {
            Ok((reg, version)) => Ok((
                reg,
                LoadReport {
                    version: Some(version),
                    ..LoadReport::default()
                },
            )),
            Err(e @ Error::RegistryVersion { .. }) => Err(e),
            Err(e) => {
                let aside = dir.join(format!(
                    "{REGISTRY_FILE}.unreadable-{}",
                    Timestamp::now().unix_secs()
                ));
                fs::rename(&path, &aside)
                    .map_err(|io| Error::io("move aside registry", &path, io))?;
                Ok((
                    Registry::default(),
                    LoadReport {
                        version: None,
                        moved_aside: Some(aside),
                        problem: Some(e.to_string()),
                    },
                ))
            }
        }
    }

    /// Writes the registry into `dir` atomically: temporary file, fsync, rename, fsync of
    /// the directory.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create registry directory", dir, e))?;
        let path = dir.join(REGISTRY_FILE);
        let tmp = dir.join(format!("{REGISTRY_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&self.to_json())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| Error::io("write registry", &path, e))
    }

    /// All entries, by identity.
    pub fn entries(&self) -> impl Iterator<Item = &RegistryEntry> + '_ {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of a file identity.
    pub fn get(&self, id: FileId) -> Option<&RegistryEntry> {
        self.entries.get(&id)
    }

    /// Adds or replaces the entry of its file identity.
    pub fn insert(&mut self, entry: RegistryEntry) {
        self.entries.insert(entry.id(), entry);
    }

    /// Removes the entry of a file identity.
    pub fn remove(&mut self, id: FileId) -> Option<RegistryEntry> {
        self.entries.remove(&id)
    }

    /// Removes entries of files gone for longer than `ttl`; returns how many. An entry
    /// with a gap before it stays while a file read before it is not finished (see
    /// [`Registry::gaps_needed`]).
    pub fn clean(&mut self, now: Timestamp, ttl: std::time::Duration) -> usize {
        let before = self.entries.len();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let needed = self.gaps_needed();
        self.entries.retain(|id, e| {
            needed.contains(id)
                || e.removed
                    .is_none_or(|r| now.unix_secs().saturating_sub(r.unix_secs()) < ttl_secs)
        });
        before - self.entries.len()
    }

    /// The entries with a gap before them that a restart still needs: a file of their
    /// container read before them (lower `order`; an entry without one is taken for the
    /// oldest) is not finished, so its entries are read again and cut at the gap.
    pub fn gaps_needed(&self) -> HashSet<FileId> {
        let container = |e: &RegistryEntry| e.container.clone().unwrap_or_default();
        let mut oldest_open: HashMap<String, u64> = HashMap::new();
        for e in self.entries.values().filter(|e| e.removed.is_none()) {
            let o = oldest_open.entry(container(e)).or_insert(u64::MAX);
            *o = (*o).min(e.order.unwrap_or(0));
        }
        self.entries
            .iter()
            .filter(|(_, e)| e.gap_before)
            .filter(|(_, e)| {
                oldest_open
                    .get(&container(e))
                    .is_some_and(|&o| o < e.order.unwrap_or(u64::MAX))
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn golden_v1_reads_as_entries_without_hashes() {
        let path = data("registry-v1.json");
        let (reg, version) = Registry::from_json(&fs::read(&path).unwrap(), &path).unwrap();
        assert_eq!(version, 1);
        assert_eq!(reg.len(), 2);
        let e = reg
            .get(FileId {
                dev: 2049,
                ino: 131,
            })
            .unwrap();
        assert_eq!(e.offset, 1234);
        assert_eq!(e.fingerprint, None);
        assert_eq!(e.prefix, None);
    }

    #[test]
    fn golden_v2_reads_without_shown_paths() {
        let path = data("registry-v2.json");
        let (reg, version) = Registry::from_json(&fs::read(&path).unwrap(), &path).unwrap();
        assert_eq!(version, 2);
        assert_eq!(reg.len(), 2);
        assert!(reg.entries().all(|e| e.shown_path.is_none()));
        let v3 = data("registry-v3.json");
        let (reg3, version) = Registry::from_json(&fs::read(&v3).unwrap(), &v3).unwrap();
        assert_eq!(version, 3);
        let mut without: Vec<RegistryEntry> = reg3.entries().cloned().collect();
        for e in &mut without {
            e.shown_path = None;
            e.size = None;
            e.open = Vec::new();
        }
        assert_eq!(reg.entries().cloned().collect::<Vec<_>>(), without);
    }

    #[test]
    fn golden_v3_reads_as_v4_without_gaps() {
        let v3 = data("registry-v3.json");
        let (reg3, version) = Registry::from_json(&fs::read(&v3).unwrap(), &v3).unwrap();
        assert_eq!(version, 3);
        let v4 = data("registry-v4.json");
        let (reg4, _) = Registry::from_json(&fs::read(&v4).unwrap(), &v4).unwrap();
        let gapped: Vec<FileId> = reg4
            .entries()
            .filter(|e| e.gap_before)
            .map(RegistryEntry::id)
            .collect();
        assert_eq!(gapped.len(), 1);
        let rest: Vec<RegistryEntry> = reg4.entries().filter(|e| !e.gap_before).cloned().collect();
        assert_eq!(reg3.entries().cloned().collect::<Vec<_>>(), rest);
    }

    #[test]
    fn golden_v5_round_trips_byte_for_byte() {
        let path = data("registry-v5.json");
        let bytes = fs::read(&path).unwrap();
        let (reg, version) = Registry::from_json(&bytes, &path).unwrap();
        assert_eq!(version, 5);
        assert_eq!(e_order(&reg, 131), Some(18));
        assert!(reg.entries().any(|e| e.gap_before));
        let e = reg
            .get(FileId {
                dev: 2049,
                ino: 131,
            })
            .unwrap();
        assert_eq!(
            e.skip,
            [SkipRange {
                stream: Stream::Stdout,
                start: 52001,
                end: 53001
            }]
        );
        assert_eq!(e.prefix.map(|p| p.len), Some(64));
        assert!(e
            .shown_path
            .as_deref()
            .unwrap()
            .starts_with("/var/log/containers/"));
        assert_eq!(
            String::from_utf8(reg.to_json()).unwrap().trim_end(),
            String::from_utf8(bytes).unwrap().trim_end()
        );
    }

    fn e_order(reg: &Registry, ino: u64) -> Option<u64> {
        reg.get(FileId { dev: 2049, ino }).and_then(|e| e.order)
    }

    #[test]
    fn golden_v4_reads_as_v5_without_orders() {
        let v4 = data("registry-v4.json");
        let (reg4, version) = Registry::from_json(&fs::read(&v4).unwrap(), &v4).unwrap();
        assert_eq!(version, 4);
        let v5 = data("registry-v5.json");
        let (reg5, _) = Registry::from_json(&fs::read(&v5).unwrap(), &v5).unwrap();
        let mut without: Vec<RegistryEntry> = reg5.entries().cloned().collect();
        assert!(without.iter().any(|e| e.order.is_some()));
        for e in &mut without {
            e.order = None;
        }
        assert_eq!(reg4.entries().cloned().collect::<Vec<_>>(), without);
    }

    #[test]
    fn unknown_version_is_refused_and_garbage_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(REGISTRY_FILE),
            br#"{"version": 9, "files": []}"#,
        )
        .unwrap();
        let err = Registry::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("registry format version 9"),
            "{err}"
        );

        fs::write(dir.path().join(REGISTRY_FILE), b"{\"version\": 2, \"fil").unwrap();
        let (reg, report) = Registry::load(dir.path()).unwrap();
        assert!(reg.is_empty());
        let aside = report.moved_aside.expect("moved aside");
        assert!(aside.exists());
        assert!(report.problem.unwrap().contains("registry"));
    }

    #[test]
    fn save_is_atomic_and_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::default();
        reg.insert(RegistryEntry {
            path: "/x.log".into(),
            shown_path: Some("/link.log".into()),
            dev: 1,
            ino: 2,
            fingerprint: Some(RangeHash::of(b"abc")),
            offset: 3,
            size: Some(3),
            open: vec![Stream::Stderr],
            gap_before: true,
            prefix: Some(RangeHash::of(b"abc")),
            skip: Vec::new(),
            container: Some("c".into()),
            order: Some(7),
            updated: Timestamp::UNIX_EPOCH,
            removed: None,
        });
        reg.save(dir.path()).unwrap();
        assert!(!dir.path().join("registry.json.tmp").exists());
        let (back, report) = Registry::load(dir.path()).unwrap();
        assert_eq!(back, reg);
        assert_eq!(report.version, Some(REGISTRY_VERSION));
    }

    #[test]
    fn clean_drops_long_gone_files_only() {
        let mut reg = Registry::default();
        let mk = |ino, removed: Option<i64>| RegistryEntry {
            path: "/x".into(),
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
            container: None,
            order: None,
            updated: Timestamp::UNIX_EPOCH,
            removed: removed.map(|s| Timestamp::new(s, 0).unwrap()),
        };
        reg.insert(mk(1, None));
        reg.insert(mk(2, Some(1000)));
        reg.insert(mk(3, Some(1990)));
        let removed = reg.clean(
            Timestamp::new(2000, 0).unwrap(),
            std::time::Duration::from_secs(60),
        );
        assert_eq!(removed, 1);
        assert!(reg.get(FileId { dev: 1, ino: 2 }).is_none());
        assert_eq!(reg.len(), 2);
        // A gap gone for long stays while the file read before it is not finished.
        let gap = RegistryEntry {
            gap_before: true,
            order: Some(2),
            ..mk(4, Some(1000))
        };
        reg.insert(gap.clone());
        reg.insert(RegistryEntry {
            order: Some(1),
            ..mk(1, None)
        });
        let at = Timestamp::new(2000, 0).unwrap();
        let ttl = std::time::Duration::from_secs(60);
        assert_eq!(reg.clean(at, ttl), 0);
        assert_eq!(reg.get(gap.id()), Some(&gap));
        reg.insert(RegistryEntry {
            order: Some(1),
            ..mk(1, Some(1990))
        });
        assert_eq!(reg.clean(at, ttl), 1);
        assert!(reg.get(gap.id()).is_none());
    }
}
