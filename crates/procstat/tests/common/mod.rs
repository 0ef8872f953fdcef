//! Helpers shared by the integration tests: fixture host roots and golden files.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use logtide_event::{Event, Timestamp};
use logtide_procstat::SampleTime;

/// `tests/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A host root made of symbolic links to fixture directories, switchable between
/// samples.
pub struct FixtureRoot {
    pub dir: tempfile::TempDir,
}

impl FixtureRoot {
    pub fn new() -> Self {
        FixtureRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Points `<root>/<name>` (`proc`, `sys`) at `tests/data/<target>`.
    pub fn link(&self, name: &str, target: &str) {
        let link = self.dir.path().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(data(target), link).unwrap();
    }
}

/// Sample `n` of a test: 2024-05-01T10:00:00Z plus `n` seconds, monotonic `n` seconds.
pub fn at(n: u64) -> SampleTime {
    let wall = Timestamp::parse_rfc3339(b"2024-05-01T10:00:00Z").unwrap();
    let wall = Timestamp::new(wall.unix_secs() + n as i64, 0).unwrap();
    SampleTime::new(wall, Duration::from_secs(n))
}

/// The events as NDJSON.
pub fn ndjson(events: &[Event]) -> String {
    let mut out = Vec::new();
    for e in events {
        e.write_json(&mut out);
        out.push(b'\n');
    }
    String::from_utf8(out).unwrap()
}

/// Compares `actual` with the golden file `tests/data/<rel>`; with `UPDATE_GOLDEN=1` in
/// the environment, writes it instead.
pub fn golden(rel: &str, actual: &str) {
    let path = data(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != actual {
        for (i, (w, a)) in want.lines().zip(actual.lines()).enumerate() {
            assert_eq!(w, a, "{}: line {} differs", path.display(), i + 1);
        }
        assert_eq!(
            want.lines().count(),
            actual.lines().count(),
            "{}: line count differs",
            path.display()
        );
    }
}
