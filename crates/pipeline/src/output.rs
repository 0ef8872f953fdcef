//! Outputs of logtide-files: the console, rotating files, and an AWS Kinesis stream.
//!
//! An output writes a whole batch, flushes it, and only then are the batch's events
//! acknowledged (by the caller), so a crash never acknowledges unwritten events.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logtide_event::Event;
use logtide_kinesis::{KinesisConfig, Sink};

use crate::config::{ConsoleConfig, FileOutputConfig, OutputConfig};
use crate::telemetry::Telemetry;
use crate::Error;

/// Somewhere events go.
pub trait Output: Send {
    /// Writes and flushes every event of the batch, in order.
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()>;

    /// The output's name in the self-metrics (`output` label).
    fn name(&self) -> &'static str;

    /// Hands what the output counted since the last call to `telemetry` (bytes shipped,
    /// retries, errors, dead letters) and returns how many of the events written since
    /// then were dead-lettered instead of delivered.
    fn publish(&mut self, telemetry: &Telemetry) -> u64;
}

/// Builds the output a configuration selects.
pub fn build(config: &OutputConfig) -> Result<Box<dyn Output>, Error> {
    Ok(match config {
        OutputConfig::Console(c) => Box::new(ConsoleOutput::new(c.clone())),
        OutputConfig::File(f) => Box::new(FileOutput::open(f.clone())?),
        OutputConfig::Kinesis(k) => Box::new(KinesisOutput::connect(k)?),
    })
}

fn encode(events: &[Event], pretty: bool, buf: &mut Vec<u8>) {
    if !pretty {
        return Event::write_ndjson(events, buf);
    }
    for e in events {
        // Plain data: serialization cannot fail.
        let _ = serde_json::to_writer_pretty(&mut *buf, e);
        buf.push(b'\n');
    }
}

/// NDJSON on standard output.
#[derive(Debug)]
pub struct ConsoleOutput {
    config: ConsoleConfig,
    buf: Vec<u8>,
    /// Bytes written since the last [`Output::publish`].
    written: u64,
}

impl ConsoleOutput {
    /// A console output.
    pub fn new(config: ConsoleConfig) -> Self {
        ConsoleOutput {
            config,
            buf: Vec::new(),
            written: 0,
        }
    }
}

impl Output for ConsoleOutput {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        self.buf.clear();
        encode(events, self.config.pretty, &mut self.buf);
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        self.written += self.buf.len() as u64;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "console"
    }

    fn publish(&mut self, telemetry: &Telemetry) -> u64 {
        telemetry.add_bytes("shipped", std::mem::take(&mut self.written));
        0
    }
}

/// Cuts an unfinished last line (left by a crash in the middle of a write) so that the
/// file holds only whole events; those events were not acknowledged and are written
/// again. Returns the resulting size.
fn repair_torn_tail(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        tracing::warn!(dropped_bytes = len - end, "output file ended in an unfinished event (crash during a write): cut it; the event is written again");
        file.set_len(end)?;
    }
    Ok(end)
}

/// NDJSON in `path/filename`, rotated to `filename.1`, `filename.2`, … by size.
#[derive(Debug)]
pub struct FileOutput {
    config: FileOutputConfig,
    file: File,
    size: u64,
    buf: Vec<u8>,
    /// Bytes written since the last [`Output::publish`].
    written: u64,
}

impl FileOutput {
    /// Opens (appending to) the current file, creating the directory.
    pub fn open(config: FileOutputConfig) -> Result<Self, Error> {
        fs::create_dir_all(&config.path).map_err(|source| Error::Io {
            what: format!("cannot create {}", config.path.display()),
            source,
        })?;
        let path = config.path.join(&config.filename);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|source| Error::Io {
                what: format!("cannot open {}", path.display()),
                source,
            })?;
        let size = repair_torn_tail(&file).map_err(|source| Error::Io {
            what: format!("cannot check {}", path.display()),
            source,
        })?;
        Ok(FileOutput {
            config,
            file,
            size,
            buf: Vec::new(),
            written: 0,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        self.config
            .path
            .join(format!("{}.{n}", self.config.filename))
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.number_of_files.max(1);
        let oldest = self.rotated(keep - 1);
        if keep > 1 {
            let _ = fs::remove_file(&oldest);
            for n in (1..keep - 1).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            fs::rename(
                self.config.path.join(&self.config.filename),
                self.rotated(1),
            )?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.config.path.join(&self.config.filename))?;
        self.size = 0;
        Ok(())
    }
}

impl Output for FileOutput {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        self.buf.clear();
        encode(events, false, &mut self.buf);
        let limit = self.config.rotate_every_kb.saturating_mul(1024).max(1);
        if self.size > 0 && self.size + self.buf.len() as u64 > limit {
            self.rotate()?;
        }
        self.file.write_all(&self.buf)?;
        self.file.flush()?;
        self.size += self.buf.len() as u64;
        self.written += self.buf.len() as u64;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "file"
    }

    fn publish(&mut self, telemetry: &Telemetry) -> u64 {
        telemetry.add_bytes("shipped", std::mem::take(&mut self.written));
        0
    }
}

/// How long one `write_batch` keeps retrying before it reports the failure to its caller
/// (who tries again, or gives up when shutting down); the sink keeps its progress.
const KINESIS_PUT_WINDOW: Duration = Duration::from_secs(5);
/// How often the Kinesis counters are logged.
const KINESIS_STATS_EVERY: Duration = Duration::from_secs(30);

/// Events to an AWS Kinesis stream, through [`logtide_kinesis::Sink`].
///
/// `write_batch` returns once every event of the batch was accepted by Kinesis or
/// dead-lettered (counted, with its reason). While Kinesis fails it retries for a few
/// seconds, then returns the error so that the caller can decide (retry, or give up at
/// shutdown); the records already accepted are remembered, so when the caller hands the
/// same batch again only the rest is sent.
pub struct KinesisOutput {
    sink: Sink,
    /// The batch left unfinished by the last error, with a fingerprint of its events.
    unfinished: Option<(u128, logtide_kinesis::Batch)>,
    last_stats: Instant,
    /// The counters as of the last [`Output::publish`].
    published: logtide_kinesis::SinkStats,
}

impl std::fmt::Debug for KinesisOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisOutput")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// Identifies a batch by its events' contents (computed only after a failure).
fn fingerprint(events: &[Event]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = Vec::new();
    for e in events {
        buf.clear();
        e.write_json(&mut buf);
        h.update(&buf);
        h.update(b"\n");
    }
    h.digest128()
}

impl KinesisOutput {
    /// Connects to the stream (credentials from the AWS default chain).
    pub fn connect(config: &KinesisConfig) -> Result<Self, Error> {
        let sink = Sink::connect(config).map_err(|source| Error::Kinesis {
            context: "output.kinesis",
            source,
        })?;
        Ok(KinesisOutput {
            sink,
            unfinished: None,
            last_stats: Instant::now(),
            published: logtide_kinesis::SinkStats::default(),
        })
    }

    /// The sink's counters.
    pub fn stats(&self) -> &logtide_kinesis::SinkStats {
        self.sink.stats()
    }

    fn log_stats(&self) {
        let s = self.sink.stats();
        tracing::info!(
            events = s.events,
            records = s.records,
            bytes = s.bytes,
            requests = s.requests,
            records_retried = s.records_retried,
            requests_throttled = s.requests_throttled,
            requests_server_errors = s.requests_server_errors,
            requests_network_errors = s.requests_network_errors,
            requests_denied = s.requests_denied,
            requests_refused = s.requests_refused,
            events_split = s.events_split,
            events_truncated = s.events_truncated,
            records_reordered = s.records_reordered,
            events_offloaded = s.events_offloaded,
            offload_bytes = s.offload_bytes,
            dead_letters_offload = s.dead_letters_offload,
            dead_letters_oversize = s.dead_letters_oversize,
            dead_letters_rejected = s.dead_letters_rejected,
            chunks_abandoned = s.chunks_abandoned,
            partition_key_fallbacks = s.partition_key_fallbacks,
            backoff_ms = s.backoff.as_millis() as u64,
            "kinesis counters"
        );
    }
}

impl Output for KinesisOutput {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        let mut batch = match self.unfinished.take() {
            Some((fp, batch)) if fp == fingerprint(events) => batch,
            other => {
                if other.is_some() {
                    tracing::warn!("a batch left unfinished was given up by the caller; its events were not acknowledged and will be read again");
                }
                self.sink.prepare(events).map_err(io::Error::other)?
            }
        };
        let result = self
            .sink
            .put(&mut batch, Some(Instant::now() + KINESIS_PUT_WINDOW));
        if self.last_stats.elapsed() >= KINESIS_STATS_EVERY {
            self.last_stats = Instant::now();
            self.log_stats();
        }
        result.map_err(|e| {
            self.unfinished = Some((fingerprint(events), batch));
            io::Error::other(e)
        })
    }

    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn publish(&mut self, t: &Telemetry) -> u64 {
        let now = self.sink.stats().clone();
        let was = std::mem::replace(&mut self.published, now.clone());
        let name = self.name();
        t.add_bytes("shipped", now.bytes - was.bytes);
        for ((reason, n), (_, before)) in now
            .retries_by_reason()
            .into_iter()
            .zip(was.retries_by_reason())
        {
            t.add_retries(name, reason, n - before);
        }
        for (kind, n) in [
            ("throttled", now.requests_throttled - was.requests_throttled),
            (
                "server",
                now.requests_server_errors - was.requests_server_errors,
            ),
            (
                "network",
                now.requests_network_errors - was.requests_network_errors,
            ),
            ("denied", now.requests_denied - was.requests_denied),
            ("refused", now.requests_refused - was.requests_refused),
        ] {
            t.add_output_errors(name, kind, n);
        }
        t.add_modified_events("oversize_split", now.events_split - was.events_split);
        t.add_modified_events(
            "oversize_truncated",
            now.events_truncated - was.events_truncated,
        );
        t.add_reordered_records(name, now.records_reordered - was.records_reordered);
        t.add_modified_events(
            "oversize_offloaded",
            now.events_offloaded - was.events_offloaded,
        );
        // S3 writes of offloaded events, sent again after throttling, a 5xx or the network.
        t.add_retries(
            "kinesis_offload",
            "transient",
            now.offload_retries - was.offload_retries,
        );
        let oversize = now.dead_letters_oversize - was.dead_letters_oversize;
        let rejected = now.dead_letters_rejected - was.dead_letters_rejected;
        let offload = now.dead_letters_offload - was.dead_letters_offload;
        t.add_discarded_events("oversize_dead_letter", oversize);
        t.add_discarded_events("dead_letter", rejected);
        t.add_discarded_events("offload_dead_letter", offload);
        oversize + rejected + offload
    }
}

impl Drop for KinesisOutput {
    fn drop(&mut self) {
        self.log_stats();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::Timestamp;
    use serde_json::json;

    fn event(msg: &str) -> Event {
        let mut e = Event::new(Timestamp::UNIX_EPOCH);
        e.insert("message", json!(msg)).unwrap();
        e
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileOutputConfig {
            path: dir.path().to_owned(),
            filename: "e.ndjson".into(),
            rotate_every_kb: 1024,
            number_of_files: 2,
        };
        fs::write(dir.path().join("e.ndjson"), b"{\"a\":1}\n{\"b\":").unwrap();
        let mut out = FileOutput::open(cfg.clone()).unwrap();
        out.write_batch(&[event("next")]).unwrap();
        let text = fs::read_to_string(dir.path().join("e.ndjson")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "{\"a\":1}");
        assert!(lines[1].contains("next"));
        fs::write(dir.path().join("e.ndjson"), b"no newline at all").unwrap();
        FileOutput::open(cfg).unwrap();
        assert_eq!(fs::read(dir.path().join("e.ndjson")).unwrap(), b"");
    }

    #[test]
    fn file_output_rotates_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = FileOutput::open(FileOutputConfig {
            path: dir.path().to_owned(),
            filename: "e.ndjson".into(),
            rotate_every_kb: 1,
            number_of_files: 3,
        })
        .unwrap();
        let big = "x".repeat(700);
        for i in 0..6 {
            out.write_batch(&[event(&format!("{i}{big}"))]).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["e.ndjson", "e.ndjson.1", "e.ndjson.2"]);
        let current = fs::read_to_string(dir.path().join("e.ndjson")).unwrap();
        assert!(current.contains("\"5xxx"));
        let one = fs::read_to_string(dir.path().join("e.ndjson.1")).unwrap();
        assert!(one.contains("\"4xxx"));
        let line: serde_json::Value =
            serde_json::from_str(current.lines().next().unwrap()).unwrap();
        assert_eq!(line["@timestamp"], "1970-01-01T00:00:00.000000000Z");
    }
}
