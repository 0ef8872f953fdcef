//! Configuration of the tailer, with Filebeat's option names where Filebeat has one.

use std::path::PathBuf;
use std::time::Duration;

use logtide_container_log::{DEFAULT_MAX_ENTRY_BYTES, DEFAULT_MAX_PENDING_BYTES};

use logtide_config::duration;

/// Which line format to expect (Filebeat's container input `format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Detect per line.
    #[default]
    Auto,
    /// CRI only.
    Cri,
    /// Docker json-file only.
    Docker,
}

impl InputFormat {
    pub(crate) fn to_format(self) -> logtide_container_log::Format {
        match self {
            InputFormat::Auto => logtide_container_log::Format::Auto,
            InputFormat::Cri => logtide_container_log::Format::Cri,
            InputFormat::Docker => logtide_container_log::Format::Docker,
        }
    }
}

/// Which streams to read (Filebeat's container input `stream`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamFilter {
    /// Both.
    #[default]
    All,
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
}

impl StreamFilter {
    pub(crate) fn accepts(self, s: logtide_container_log::Stream) -> bool {
        use logtide_container_log::Stream;
        matches!(
            (self, s),
            (StreamFilter::All, _)
                | (StreamFilter::Stdout, Stream::Stdout)
                | (StreamFilter::Stderr, Stream::Stderr)
        )
    }
}

/// What to tail and how.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Glob patterns of files to read; symlinks are followed.
    pub paths: Vec<String>,
    /// Regular expressions; a file whose path matches any of them is not read.
    pub exclude_files: Vec<String>,
    /// Line format.
    pub format: InputFormat,
    /// Streams to read; lines of the other stream are counted and skipped.
    pub stream: StreamFilter,
    /// How often the globs are expanded again (inotify wakes the tailer sooner).
    #[serde(with = "duration")]
    pub scan_frequency: Duration,
    /// Bytes read from a file at once.
    pub read_buffer_bytes: usize,
    /// Longest line kept; the rest up to the next newline is skipped and counted.
    pub max_line_bytes: usize,
    /// Longest joined entry; the rest is cut and the entry flagged truncated. Default
    /// 16 MiB, so large entries pass whole.
    pub max_entry_bytes: usize,
    /// Most bytes held by all partial entries waiting for their last chunk, across all
    /// files; beyond it the oldest is emitted as partial and counted. Default 64 MiB.
    pub max_pending_bytes: usize,
    /// A pending partial entry whose first chunk is older than this is emitted as partial.
    #[serde(with = "duration")]
    pub flush_partial_after: Duration,
    /// A file that has not grown for this long is closed; it is reopened when it grows.
    #[serde(with = "duration")]
    pub close_inactive: Duration,
    /// A deleted file is kept open to be drained for at most this long; giving up is counted.
    #[serde(with = "duration")]
    pub close_removed_after: Duration,
    /// Most files open at once (Filebeat's `harvester_limit`).
    pub harvester_limit: usize,
    /// Log files of kubelet's rotation scheme (`0.log.<timestamp>`) that are gzipped are
    /// skipped; other rotated files are read when they match `paths`.
    pub skip_gzipped: bool,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            paths: vec!["/var/log/containers/*.log".into()],
            exclude_files: Vec::new(),
            format: InputFormat::Auto,
            stream: StreamFilter::All,
            scan_frequency: Duration::from_secs(10),
            read_buffer_bytes: 256 * 1024,
            max_line_bytes: 4 * 1024 * 1024,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            flush_partial_after: Duration::from_secs(5),
            close_inactive: Duration::from_secs(5 * 60),
            close_removed_after: Duration::from_secs(5 * 60),
            harvester_limit: 1024,
            skip_gzipped: true,
        }
    }
}

/// Where and how often the registry (saved read positions) is written.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Directory holding `registry.json`.
    pub path: PathBuf,
    /// How often the registry is written when positions changed (and always at shutdown).
    #[serde(with = "duration")]
    pub flush: Duration,
    /// Entries of files that are gone for longer than this are removed.
    #[serde(with = "duration")]
    pub clean_removed_after: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            path: PathBuf::from("/var/lib/logtide/registry"),
            flush: Duration::from_secs(1),
            clean_removed_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_text_and_seconds() {
        let c: RegistryConfig =
            serde_json::from_str(r#"{"flush": "250ms", "clean_removed_after": 60}"#).unwrap();
        assert_eq!(c.flush, Duration::from_millis(250));
        assert_eq!(c.clean_removed_after, Duration::from_secs(60));
        let c: TailConfig = serde_json::from_str(r#"{"scan_frequency": "1m30s"}"#).unwrap();
        assert_eq!(c.scan_frequency, Duration::from_secs(90));
        let err = serde_json::from_str::<TailConfig>(r#"{"scan_frequency": "soon"}"#).unwrap_err();
        assert!(
            err.to_string().contains("invalid duration \"soon\""),
            "{err}"
        );
        let err = serde_json::from_str::<TailConfig>(r#"{"pathz": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `pathz`"), "{err}");
    }

    #[test]
    fn entry_limits_default_to_whole_large_entries_within_a_budget() {
        let c = TailConfig::default();
        assert_eq!(
            (c.max_entry_bytes, c.max_pending_bytes),
            (16 << 20, 64 << 20)
        );
        let c: TailConfig = serde_json::from_str(r#"{"max_pending_bytes": 1048576}"#).unwrap();
        assert_eq!(c.max_pending_bytes, 1 << 20);
    }
}
