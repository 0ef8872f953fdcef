//! Importing a Filebeat registry, so that switching from Filebeat re-reads nothing.
//!
//! Two layouts are read:
//! - Filebeat 6.x: `data/registry`, one JSON array of file states
//!   (`source`, `offset`, `FileStateOS.inode`, `FileStateOS.device`);
//! - Filebeat 7.x and later: `data/registry/filebeat/` with a checkpoint (`<n>.json`,
//!   named by `active.dat`) and the operation log `log.json` (pairs of lines: an
//!   `{"op":"set"|"remove","id":n}` line and a `{"k":…,"v":…}` line), for both the `log`
//!   and container inputs (`offset`) and `filestream` (`cursor.offset`, `meta.source`).
//!
//! Filebeat saves offsets at line boundaries; they carry no fingerprint or check hash, so
//! on resume logtide verifies the line boundary and infers partial-entry state from the
//! lines before the offset.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use logtide_event::Timestamp;
use serde_json::Value;

use crate::registry::RegistryEntry;
use crate::Error;

/// One file state found in a Filebeat registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilebeatState {
    /// The file's path when Filebeat last saw it.
    pub source: PathBuf,
    /// Bytes Filebeat had read and acknowledged.
    pub offset: u64,
    /// Device number.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
}

impl FilebeatState {
    /// The registry entry logtide resumes from.
    pub fn to_entry(&self) -> RegistryEntry {
        RegistryEntry {
            shown_path: None,
            path: self.source.clone(),
            dev: self.device,
            ino: self.inode,
            fingerprint: None,
            offset: self.offset,
            size: None,
            open: Vec::new(),
            gap_before: false,
            prefix: None,
            skip: Vec::new(),
            container: None,
            order: None,
            updated: Timestamp::now(),
            removed: None,
        }
    }
}

fn import_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::FilebeatImport {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// Reads one state object (6.x entry, 7.x value or checkpoint item); `key` is the 7.x
/// registry key, whose `native::<inode>-<device>` suffix names the file when the value
/// does not.
fn state_of(v: &Value, key: Option<&str>) -> Option<FilebeatState> {
    let source = v
        .get("source")
        .or_else(|| v.pointer("/meta/source"))
        .and_then(Value::as_str)?;
    let offset = v
        .get("offset")
        .or_else(|| v.pointer("/cursor/offset"))
        .and_then(as_u64)?;
    let from_os = v
        .get("FileStateOS")
        .and_then(|os| Some((as_u64(os.get("device")?)?, as_u64(os.get("inode")?)?)));
    let from_key = key.and_then(|k| {
        let (ino, dev) = k.rsplit("::").next()?.split_once('-')?;
        Some((dev.parse().ok()?, ino.parse().ok()?))
    });
    let (device, inode) = from_os.or(from_key)?;
    Some(FilebeatState {
        source: PathBuf::from(source),
        offset,
        device,
        inode,
    })
}

/// Reads the file states of a Filebeat registry at `path`: the 6.x `data/registry` file,
/// or the 7.x+ registry directory (`data/registry`, `data/registry/filebeat`, or its
/// `log.json`).
pub fn read_filebeat_registry(path: &Path) -> Result<Vec<FilebeatState>, Error> {
    let dir = if path.is_dir() {
        if path.join("filebeat").is_dir() {
            path.join("filebeat")
        } else {
            path.to_owned()
        }
    } else if path.file_name().is_some_and(|n| n == "log.json") {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    } else {
        return read_v6(path);
    };
    read_v7(&dir)
}

fn read_v6(path: &Path) -> Result<Vec<FilebeatState>, Error> {
    let text = fs::read(path).map_err(|e| import_error(path, e.to_string()))?;
    let value: Value =
        serde_json::from_slice(&text).map_err(|e| import_error(path, format!("not JSON: {e}")))?;
    let list = value
        .as_array()
        .ok_or_else(|| import_error(path, "expected a JSON array of file states (Filebeat 6.x)"))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            state_of(v, None).ok_or_else(|| {
                import_error(
                    path,
                    format!("entry {i} lacks source, offset or FileStateOS"),
                )
            })
        })
        .collect()
}

fn read_v7(dir: &Path) -> Result<Vec<FilebeatState>, Error> {
    let mut states: BTreeMap<String, Value> = BTreeMap::new();
    let mut checkpoint_id = 0u64;
    // The checkpoint, when there is one.
    let active = dir.join("active.dat");
    if let Ok(name) = fs::read_to_string(&active) {
        let cp = PathBuf::from(name.trim());
        let cp = if cp.is_absolute() {
            cp
        } else {
            dir.join(cp.file_name().unwrap_or_default())
        };
        let cp = if cp.exists() {
            cp
        } else {
            dir.join(cp.file_name().unwrap_or_default())
        };
        if let Ok(bytes) = fs::read(&cp) {
            let list: Value = serde_json::from_slice(&bytes)
                .map_err(|e| import_error(&cp, format!("checkpoint is not JSON: {e}")))?;
            for item in list
                .as_array()
                .ok_or_else(|| import_error(&cp, "checkpoint is not a JSON array"))?
            {
                if let Some(k) = item.get("_key").and_then(Value::as_str) {
                    states.insert(k.to_owned(), item.clone());
                }
            }
            checkpoint_id = cp
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
    }
    let log = dir.join("log.json");
    match fs::read_to_string(&log) {
        Ok(text) => {
            let mut lines = text.lines().filter(|l| !l.trim().is_empty()).enumerate();
            while let Some((n, op_line)) = lines.next() {
                let op: Value = serde_json::from_str(op_line)
                    .map_err(|e| import_error(&log, format!("line {}: {e}", n + 1)))?;
                let Some((n2, kv_line)) = lines.next() else {
                    // A torn last operation (Filebeat stopped mid-write) carries nothing.
                    break;
                };
                let kv: Value = match serde_json::from_str(kv_line) {
                    Ok(v) => v,
                    Err(_) => break, // torn write at the end
                };
                let id = op.get("id").and_then(as_u64).unwrap_or(u64::MAX);
                if id <= checkpoint_id && checkpoint_id > 0 {
                    continue;
                }
                let Some(k) = kv.get("k").and_then(Value::as_str) else {
                    return Err(import_error(
                        &log,
                        format!("line {}: operation without a key", n2 + 1),
                    ));
                };
                match op.get("op").and_then(Value::as_str) {
                    Some("set") => {
                        states.insert(k.to_owned(), kv.get("v").cloned().unwrap_or(Value::Null));
                    }
                    Some("remove") => {
                        states.remove(k);
                    }
                    other => {
                        return Err(import_error(
                            &log,
                            format!("line {}: unknown operation {other:?}", n + 1),
                        ))
                    }
                }
            }
        }
        Err(e) if states.is_empty() => return Err(import_error(&log, e.to_string())),
        Err(_) => {}
    }
    Ok(states
        .iter()
        .filter_map(|(k, v)| state_of(v, Some(k)))
        .collect())
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
    fn reads_a_6x_registry() {
        let states = read_filebeat_registry(&data("filebeat-6.x/registry")).unwrap();
        assert_eq!(
            states,
            [
                FilebeatState {
                    source: "/var/log/containers/a.log".into(),
                    offset: 1024,
                    device: 2049,
                    inode: 131
                },
                FilebeatState {
                    source: "/var/log/containers/b.log".into(),
                    offset: 0,
                    device: 2049,
                    inode: 132
                },
            ]
        );
    }

    #[test]
    fn reads_a_7x_registry_with_checkpoint_and_log() {
        let mut states = read_filebeat_registry(&data("filebeat-7.x/registry")).unwrap();
        states.sort_by_key(|s| s.inode);
        assert_eq!(
            states,
            [
                // From the checkpoint, then advanced by the log.
                FilebeatState {
                    source: "/var/log/containers/a.log".into(),
                    offset: 2048,
                    device: 2049,
                    inode: 131
                },
                // filestream: offset in cursor, path in meta, identity from the key.
                FilebeatState {
                    source: "/var/log/containers/c.log".into(),
                    offset: 77,
                    device: 2049,
                    inode: 140
                },
            ]
        );
    }

    #[test]
    fn bad_input_names_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry");
        fs::write(&p, b"{\"not\": \"a list\"}").unwrap();
        let err = read_filebeat_registry(&p).unwrap_err().to_string();
        assert!(err.contains("expected a JSON array"), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
    }
}
