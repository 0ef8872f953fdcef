//! Shared by the Kinesis tests of logtide-files: generated CRI logs, running the agent
//! until everything is acknowledged, and decoding what a real client read back.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use logtide_kinesis::{peek_header, Decoder};
use logtide_testkit::{StreamRecord, AWS_ENV};
use serde_json::Value;

/// kubelet cuts container output into CRI lines of at most this many bytes.
const CRI_CHUNK: usize = 16 * 1024;

/// A container's log file in kubelet's naming, and what was written to it.
pub struct Container {
    pub id: String,
    pub file: PathBuf,
    pub messages: Vec<String>,
}

/// A 64-hex container id from a number.
pub fn container_id(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut id = String::new();
    for _ in 0..4 {
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        id.push_str(&format!("{x:016x}"));
    }
    id
}

impl Container {
    pub fn new(dir: &Path, n: u64) -> Container {
        let id = container_id(n);
        let file = dir.join(format!("app-{n}-7d9f8b6c5-x2x7q_default_app-{id}.log"));
        Container {
            id,
            file,
            messages: Vec::new(),
        }
    }

    /// Appends one entry as kubelet writes it: `P` lines of 16 KiB, then an `F` line.
    pub fn write(&mut self, message: String) {
        let mut text = Vec::with_capacity(message.len() + 64);
        let bytes = message.as_bytes();
        let mut start = 0;
        loop {
            let mut end = (start + CRI_CHUNK).min(bytes.len());
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let tag = if end == bytes.len() { "F" } else { "P" };
            text.extend_from_slice(b"2024-06-01T00:36:59.526712987Z stdout ");
            text.extend_from_slice(tag.as_bytes());
            text.push(b' ');
            text.extend_from_slice(&bytes[start..end]);
            text.push(b'\n');
            if end == bytes.len() {
                break;
            }
            start = end;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .unwrap();
        f.write_all(&text).unwrap();
        self.messages.push(message);
    }
}

/// A message of about `len` bytes that names its container and number and holds text
/// JSON writers must escape.
pub fn message(container: u64, n: usize, len: usize) -> String {
    let mut m = format!("c{container} #{n:06} \"quoted\" tab\there ünïcödé \\ ");
    let filler = "the quick brown fox jumps over the lazy dog 0123456789 ";
    while m.len() < len {
        m.push_str(filler);
    }
    m.truncate(len.max(40));
    while !m.is_char_boundary(m.len()) {
        m.pop();
    }
    m
}

/// A logtide-files configuration reading `logs/*.log` and shipping to `endpoint`, with the
/// defaults for everything else.
pub fn config(dir: &Path, endpoint: &str, stream: &str, extra_kinesis: &str) -> PathBuf {
    let text = format!(
        "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\nregistry:\n  path: {reg}\noutput.kinesis:\n  stream_name: {stream}\n  region: us-east-1\n  endpoint: {endpoint}\n  dead_letter_path: {dl}\n{extra_kinesis}",
        logs = dir.join("logs").display(),
        reg = dir.join("registry").display(),
        dl = dir.join("dead-letter").display(),
    );
    let path = dir.join("logtide-files.yml");
    fs::write(&path, text).unwrap();
    path
}

/// Starts `logtide-files run` with fake AWS credentials.
pub fn start(config: &Path) -> Child {
    Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether the registry says every file was acknowledged to its end.
pub fn all_acknowledged(config: &Path, files: &[&Path]) -> bool {
    let out = Command::new(bin())
        .args(["registry", "show", "--json", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    if !out.status.success() {
        return false;
    }
    let entries: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    files.iter().all(|f| {
        let size = fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        entries.iter().any(|e| {
            e["offset"].as_u64() == Some(size)
                && e.to_string()
                    .contains(f.file_name().unwrap().to_str().unwrap())
        })
    })
}

/// Waits (up to `timeout`) until every file is acknowledged to its end; then stops the
/// agent with SIGTERM and returns its standard error.
pub fn run_until_acknowledged(config: &Path, files: &[&Path], timeout: Duration) -> String {
    let mut child = start(config);
    let deadline = Instant::now() + timeout;
    let mut done = false;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "logtide-files exited early: {status}: {}",
                stderr(&mut child)
            );
        }
        if all_acknowledged(config, files) {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let err = stderr(&mut child);
    assert!(
        done,
        "not everything was acknowledged within {timeout:?}\n{err}"
    );
    assert!(status.success(), "logtide-files: {status}\n{err}");
    err
}

pub fn stderr(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

/// Events decoded from records read back, with the record each came in (the last chunk's
/// for a split event). Records are decoded shard by shard, oldest first.
pub struct Decoded {
    /// (container id, message, partition key, index of the record) in stream order per shard.
    pub entries: Vec<(String, String, String, usize)>,
    /// Records that were chunks of a split event.
    pub chunks: usize,
}

pub fn decode(records: &[StreamRecord]) -> Decoded {
    let mut decoder = Decoder::default();
    let mut entries = Vec::new();
    let mut chunks = 0;
    for (i, r) in records.iter().enumerate() {
        if peek_header(&r.data)
            .unwrap()
            .is_some_and(|h| h.split.is_some())
        {
            chunks += 1;
        }
        let out = decoder
            .decode(&r.data, 0)
            .unwrap_or_else(|e| panic!("record {i} ({}): {e}", r.sequence));
        assert!(out.incomplete.is_empty());
        for e in out.events {
            let id = e
                .get("container.id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            entries.push((id, msg, r.partition_key.clone(), i));
        }
    }
    assert_eq!(
        decoder.pending_events(),
        0,
        "a split event was not completed"
    );
    Decoded { entries, chunks }
}

/// Per container, the messages in stream order.
pub fn by_container(d: &Decoded) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (id, msg, key, _) in &d.entries {
        assert_eq!(id, key, "partition key is the container id");
        out.entry(id.clone()).or_default().push(msg.clone());
    }
    out
}
