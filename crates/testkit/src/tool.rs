//! Stream chores with boto3 (`scripts/kinesis_tool.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One record read back from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// The shard it is on.
    pub shard: String,
    /// Its sequence number.
    pub sequence: String,
    /// Its partition key.
    pub partition_key: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// Runs `scripts/kinesis_tool.py` against one endpoint (`LOGTIDE_PYTHON` names the
/// interpreter; default `python3`, with boto3 installed).
#[derive(Clone, Debug)]
pub struct KinesisTool {
    endpoint: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kinesis_tool.py")
}

impl KinesisTool {
    /// A tool for the service at `endpoint`.
    pub fn new(endpoint: &str) -> KinesisTool {
        KinesisTool {
            endpoint: endpoint.to_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let python = std::env::var("LOGTIDE_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&python)
            .arg(script())
            .arg(&self.endpoint)
            .args(args)
            .envs(crate::AWS_ENV)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; install Python 3 with boto3"));
        assert!(
            out.status.success(),
            "kinesis_tool.py {args:?} failed ({}): {}\n(install boto3: pip install boto3; scripts/test installs it)",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Creates a stream and waits until it is active.
    pub fn create_stream(&self, name: &str, shards: u32) {
        self.run(&["create", name, &shards.to_string()]);
    }

    /// Waits until a stream is active.
    pub fn wait_active(&self, name: &str) {
        self.run(&["wait", name]);
    }

    /// Sets a stream's maximum record size (UpdateMaxRecordSize); returns what
    /// DescribeStreamSummary says afterwards.
    pub fn set_max_record_size(&self, name: &str, kib: u32) -> Option<u64> {
        let out = self.run(&["max-record-size", name, &kib.to_string()]);
        let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
        v["MaxRecordSizeInKiB"].as_u64()
    }

    /// Splits the first open shard at the middle of its hash key range (SplitShard) and
    /// waits until the stream is active; returns the parent shard's id.
    pub fn split_shard(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.run(&["split", name]))
            .trim()
            .to_owned()
    }

    /// Sets the stream's open shard count (UpdateShardCount, uniform scaling) and waits
    /// until the stream is active.
    pub fn update_shard_count(&self, name: &str, shards: u32) {
        self.run(&["shard-count", name, &shards.to_string()]);
    }

    /// Puts one record (PutRecord), as a producer other than logtide would.
    pub fn put(&self, name: &str, partition_key: &str, data: &[u8]) {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        self.run(&["put", name, partition_key, &hex]);
    }

    /// Every record of every shard, each shard oldest first.
    pub fn read_all(&self, name: &str) -> Vec<StreamRecord> {
        let out = self.run(&["read", name]);
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("kinesis_tool.py printed a bad line: {e}"));
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                StreamRecord {
                    shard: s("shard"),
                    sequence: s("seq"),
                    partition_key: s("key"),
                    data: from_hex(v["data"].as_str().unwrap_or_default()),
                }
            })
            .collect()
    }
}

fn from_hex(s: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("kinesis_tool.py printed a bad hex digit {c:?}"),
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| digit(p[0]) << 4 | digit(p.get(1).copied().unwrap_or(b'0')))
        .collect()
}
