//! The local checkpoint store: one file per stream, for a single relay instance.
//!
//! Format, version 1 (`<dir>/<stream>.checkpoints.json`):
//!
//! ```json
//! {"v":1,"stream":"logs","shards":{"shardId-000000000000":"4959…","shardId-000000000001":"SHARD_END"}}
//! ```
//!
//! A shard's value is the sequence number of the last record every sink acknowledged
//! (reading resumes `AFTER_SEQUENCE_NUMBER`), or [`SHARD_END`] once a closed shard was read
//! and acknowledged to its end. Writes are atomic: a temporary file is written and
//! synced, renamed over the old one, and the directory is synced.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The checkpoint of a closed shard read and acknowledged to its end (the KCL's sentinel).
pub const SHARD_END: &str = "SHARD_END";

/// The version of the checkpoint file format.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    v: u32,
    stream: String,
    shards: BTreeMap<String, String>,
}

/// Checkpoints of one stream's shards in a local file.
#[derive(Debug)]
pub struct FileCheckpoints {
    path: PathBuf,
    stream: String,
    shards: BTreeMap<String, String>,
    dirty: bool,
}

impl FileCheckpoints {
    /// Opens (or starts) the checkpoint file of `stream` in `dir`, creating `dir` when
    /// missing. A file of another version or another stream is an error, never ignored.
    pub fn open(dir: &Path, stream: &str) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::Checkpoint {
            message: format!("cannot create directory {}: {e}", dir.display()),
            source: Some(Box::new(e)),
        })?;
        let path = dir.join(format!("{stream}.checkpoints.json"));
        let shards = match fs::read(&path) {
            Ok(bytes) => parse(&bytes, stream).map_err(|m| Error::Checkpoint {
                message: format!("{}: {m}", path.display()),
                source: None,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::Checkpoint {
                    message: format!("cannot read {}: {e}", path.display()),
                    source: Some(Box::new(e)),
                })
            }
        };
        Ok(FileCheckpoints {
            path,
            stream: stream.to_owned(),
            shards,
            dirty: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A shard's checkpoint.
    pub fn get(&self, shard: &str) -> Option<&str> {
        self.shards.get(shard).map(String::as_str)
    }

    /// Every shard's checkpoint.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.shards
    }

    /// Sets a shard's checkpoint (written by [`FileCheckpoints::flush`]).
    pub fn set(&mut self, shard: &str, checkpoint: &str) {
        if self.get(shard) != Some(checkpoint) {
            self.shards.insert(shard.to_owned(), checkpoint.to_owned());
            self.dirty = true;
        }
    }

    /// Writes the checkpoints when they changed: temporary file, fsync, rename, fsync of
    /// the directory.
    pub fn flush(&mut self) -> Result<(), Error> {
        if !self.dirty {
            return Ok(());
        }
        let doc = FileV1 {
            v: CHECKPOINT_FORMAT_VERSION,
            stream: self.stream.clone(),
            shards: self.shards.clone(),
        };
        let mut bytes = serde_json::to_vec(&doc).map_err(|e| Error::Checkpoint {
            message: format!("cannot encode checkpoints: {e}"),
            source: Some(Box::new(e)),
        })?;
        bytes.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        let io = |what: &str, p: &Path, e: std::io::Error| Error::Checkpoint {
            message: format!("cannot {what} {}: {e}", p.display()),
            source: Some(Box::new(e)),
        };
        let mut f = File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| io("write", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(|e| io("rename to", &self.path, e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("sync directory", dir, e))?;
        }
        self.dirty = false;
        Ok(())
    }
}

fn parse(bytes: &[u8], stream: &str) -> Result<BTreeMap<String, String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a checkpoint file: {e}"))?;
    match v.get("v").and_then(serde_json::Value::as_u64) {
        Some(1) => {}
        Some(other) => return Err(format!("checkpoint format version {other} is not known")),
        None => return Err("checkpoint file without a version (\"v\")".into()),
    }
    let doc: FileV1 = serde_json::from_value(v).map_err(|e| format!("bad checkpoint file: {e}"))?;
    if doc.stream != stream {
        return Err(format!(
            "holds the checkpoints of stream {:?}, not {stream:?}",
            doc.stream
        ));
    }
    Ok(doc.shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FileCheckpoints::open(dir.path(), "logs").unwrap();
        assert_eq!(c.get("shardId-0"), None);
        c.set("shardId-0", "123");
        c.set("shardId-1", SHARD_END);
        c.flush().unwrap();
        c.set("shardId-0", "456");
        c.flush().unwrap();
        let again = FileCheckpoints::open(dir.path(), "logs").unwrap();
        assert_eq!(again.get("shardId-0"), Some("456"));
        assert_eq!(again.get("shardId-1"), Some(SHARD_END));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["logs.checkpoints.json"]);
    }

    #[test]
    fn golden_v1() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoint-v1");
        let c = FileCheckpoints::open(&golden, "logs").unwrap();
        assert_eq!(
            c.get("shardId-000000000000"),
            Some("49590338271490256608559692538361571095921575989136588898")
        );
        assert_eq!(c.get("shardId-000000000001"), Some(SHARD_END));
    }

    #[test]
    fn refuses_other_versions_streams_and_garbage() {
        for (body, want) in [
            (r#"{"v":2,"stream":"logs","shards":{}}"#, "version 2"),
            (r#"{"v":1,"stream":"other","shards":{}}"#, "\"other\""),
            (r#"{"stream":"logs","shards":{}}"#, "without a version"),
            ("not json", "not a checkpoint file"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("logs.checkpoints.json"), body).unwrap();
            let err = FileCheckpoints::open(dir.path(), "logs").unwrap_err();
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }
}
