//! Workloads for logtide's benchmarks.
//!
//! [`Workload::load`] generates container log files with the shared deterministic
//! generator (`../shared/bench/gen_cri.py`, run once and cached under the target
//! directory) and loads them into memory as lines, so that benchmarks measure parsing,
//! not disk reads.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines of generated container logs, held in one buffer.
#[derive(Debug)]
pub struct Workload {
    /// All file contents, concatenated.
    pub data: Vec<u8>,
    /// `(start, end)` of each line in `data`, terminator excluded.
    pub lines: Vec<(usize, usize)>,
    /// Logical messages the generator wrote (what reassembly must produce).
    pub messages: u64,
}

fn generator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_cri.py")
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

impl Workload {
    /// Generates (once) and loads `size` (e.g. `32M`) of logs in `format` (`cri` or
    /// `docker`) with the generator's standard message mix.
    ///
    /// # Panics
    ///
    /// When the generator cannot run or its output cannot be read: a benchmark without
    /// its workload has nothing to measure.
    pub fn load(format: &str, size: &str) -> Workload {
        let dir = cache_dir().join(format!("{format}-{size}"));
        let manifest = dir.join("manifest.json");
        if !manifest.exists() {
            let status = Command::new("python3")
                .arg(generator())
                .args([
                    "--out",
                    &dir.display().to_string(),
                    "--size",
                    size,
                    "--files",
                    "1",
                ])
                .args(["--format", format])
                .stdout(std::process::Stdio::null())
                .status()
                .expect("run python3 gen_cri.py");
            assert!(status.success(), "gen_cri.py failed: {status}");
        }
        let manifest_text = std::fs::read_to_string(&manifest).expect("read manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_str(&manifest_text).expect("manifest.json is JSON");
        let messages = manifest["files"]
            .as_object()
            .expect("manifest lists files")
            .values()
            .filter_map(|f| f["messages"].as_u64())
            .sum();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("read workload dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        paths.sort();
        let mut data = Vec::new();
        for p in paths {
            data.extend(std::fs::read(p).expect("read log file"));
        }
        let mut lines = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &data) {
            lines.push((start, end));
            start = end + 1;
        }
        Workload {
            data,
            lines,
            messages,
        }
    }

    /// The lines, terminator excluded.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines.iter().map(|&(s, e)| &self.data[s..e])
    }
}
