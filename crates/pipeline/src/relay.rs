//! logtide-relay: Kinesis → S3, file, console.
//!
//! The loop: [`Consumer::poll`] hands out shard batches; each batch is written to the
//! file and console sinks (synchronously), then to the S3 archive, which accepts the
//! events' tokens once their object is stored (without S3 the tokens are accepted after
//! the file and console writes). So a shard's checkpoint passes a record only after
//! every configured sink took its events. On stop: no more fetching, S3 flushes, final
//! checkpoints, leases released.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logtide_event::{AckToken, Event};
use logtide_kinesis::{Consumer, ConsumerConfig, ConsumerStats};
use logtide_s3::{S3Config, S3Sink, S3Stats};
use serde::Deserialize;

use crate::config::{
    expand_dotted, expand_env, from_value, parse_yaml, ConsoleConfig, FileOutputConfig,
};
use crate::http::{HttpConfig, HttpServer, RELAY_PORT};
use crate::output::{ConsoleOutput, FileOutput, Output};
use crate::telemetry::Telemetry;
use crate::Error;

/// `source`: where the relay reads.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySource {
    /// `source.kinesis`: the stream and its checkpoints.
    pub kinesis: ConsumerConfig,
}

/// `sinks`: where the relay writes; each event goes to every sink configured.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySinks {
    /// The S3 archive.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// NDJSON files.
    #[serde(default)]
    pub file: Option<FileOutputConfig>,
    /// NDJSON on standard output.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
}

/// The configuration of logtide-relay.
///
/// ```yaml
/// source.kinesis:
///   stream_name: logs
///   region: ap-northeast-1
///   checkpoint: {path: /var/lib/logtide/relay}
/// sinks:
///   s3: {bucket: logs-archive, prefix: logtide, max_object_bytes: 64MiB, max_age: 60s}
///   file: {path: /tmp/relay-out, filename: events.ndjson}
///   console: {}
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `source`.
    pub source: RelaySource,
    /// `sinks`.
    pub sinks: RelaySinks,
    /// The self-monitoring endpoint (`http.enabled`, `http.host`, `http.port`).
    #[serde(default)]
    pub http: HttpConfig,
}

impl RelayConfig {
    /// Loads and validates a relay configuration file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_owned(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates configuration text (dotted keys, `${VAR:default}`, unknown
    /// keys refused with their path); `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, Error> {
        let bad = |message: String| Error::Config {
            file: origin.to_owned(),
            message,
        };
        let value = parse_yaml(text, origin)?;
        let mut value = expand_dotted(value, &[]).map_err(bad)?;
        expand_env(&mut value, "").map_err(bad)?;
        let config: RelayConfig = from_value(value, origin)?;
        config
            .source
            .kinesis
            .validate()
            .map_err(|e| bad(format!("source.kinesis: {e}")))?;
        if let Some(s3) = &config.sinks.s3 {
            s3.validate().map_err(|e| bad(format!("sinks.s3: {e}")))?;
        }
        let s = &config.sinks;
        if s.s3.is_none() && s.file.is_none() && s.console.is_none() {
            return Err(bad(
                "sinks: at least one of s3, file, console is required".into()
            ));
        }
        Ok(config)
    }
}

/// What a relay run did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RelaySummary {
    /// The consumer's counters.
    pub consumer: ConsumerStats,
    /// The S3 sink's counters, when configured.
    pub s3: Option<S3Stats>,
}

/// How long the final S3 flush keeps trying on stop.
const FLUSH_WINDOW: Duration = Duration::from_secs(30);

/// How often the consumer's counters and lag go to the self-metrics.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Hands the consumer's and the S3 sink's counters gained since the last call to the
/// self-metrics.
#[derive(Default)]
struct RelayPublisher {
    consumer: ConsumerStats,
    s3: S3Stats,
}

impl RelayPublisher {
    fn publish(&mut self, t: &Telemetry, consumer: &Consumer, s3: Option<&S3Sink>) {
        let (was, now) = (&self.consumer, consumer.stats());
        t.add_events("read", now.events - was.events);
        t.add_bytes("read", now.bytes - was.bytes);
        t.add_discarded_events(
            "undecodable",
            now.dead_letters_undecodable - was.dead_letters_undecodable,
        );
        t.add_discarded_events(
            "incomplete_entry",
            now.dead_letters_incomplete - was.dead_letters_incomplete,
        );
        t.add_source_errors(
            "kinesis",
            (now.errors + now.throttled) - (was.errors + was.throttled),
        );
        t.set_shard_lag(&consumer.lag());
        self.consumer = now;
        if let Some(s3) = s3 {
            let now = s3.stats().clone();
            t.add_events("shipped", now.events - self.s3.events);
            t.add_bytes("shipped", now.bytes - self.s3.bytes);
            t.add_retries("s3", now.retries - self.s3.retries);
            self.s3 = now;
        }
    }
}

/// Runs the relay until `stop` is set, then flushes, checkpoints and releases leases.
pub fn run_relay(config: &RelayConfig, stop: Arc<AtomicBool>) -> Result<RelaySummary, Error> {
    run_relay_with(config, stop, Arc::new(Telemetry::new()))
}

/// [`run_relay`], counting into `telemetry` (served on the configuration's `http`
/// endpoint when enabled).
pub fn run_relay_with(
    config: &RelayConfig,
    stop: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
) -> Result<RelaySummary, Error> {
    let relay_err = |e: logtide_kinesis::Error| Error::Output(format!("kinesis source: {e}"));
    let s3_err = |e: logtide_s3::Error| Error::Output(format!("sinks.s3: {e}"));
    let _http = HttpServer::start_if_enabled(&config.http, RELAY_PORT, telemetry.clone())?;
    let mut consumer = Consumer::connect(&config.source.kinesis).map_err(relay_err)?;
    telemetry.set_ready("source", Ok(()));
    let mut publisher = RelayPublisher::default();
    let mut last_publish = Instant::now();
    let mut s3 = config
        .sinks
        .s3
        .as_ref()
        .map(S3Sink::connect)
        .transpose()
        .map_err(s3_err)?;
    let mut outputs: Vec<Box<dyn Output>> = Vec::new();
    if let Some(f) = &config.sinks.file {
        outputs.push(Box::new(FileOutput::open(f.clone())?));
    }
    if let Some(c) = &config.sinks.console {
        outputs.push(Box::new(ConsoleOutput::new(c.clone())));
    }
    if s3.is_some() {
        telemetry.set_ready("s3", Ok(()));
    }
    tracing::info!(stream = %config.source.kinesis.stream_name, "relay running");
    let mut last_s3_error: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publisher.publish(&telemetry, &consumer, s3.as_ref());
        }
        let batches = match consumer.poll(Duration::from_millis(200)) {
            Ok(b) => {
                telemetry.set_ready("source", Ok(()));
                b
            }
            Err(e) if e.is_retryable() => {
                telemetry.set_ready("source", Err(e.to_string()));
                tracing::warn!(error = %e, "kinesis source failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(relay_err(e)),
        };
        for mut b in batches {
            for o in &mut outputs {
                o.write_batch(&b.events)
                    .map_err(|e| Error::Output(format!("cannot write events: {e}")))?;
                o.publish(&telemetry);
            }
            match &mut s3 {
                Some(s3) => {
                    let events = std::mem::take(&mut b.events);
                    if let Err(e) = s3.write(&b.shard_id, &b.first_sequence, events) {
                        if !e.is_retryable() {
                            return Err(s3_err(e));
                        }
                        tracing::warn!(error = %e, "s3 upload failed; the object is kept and tried again");
                        telemetry.set_ready("s3", Err(e.to_string()));
                        telemetry.add_output_errors("s3", "write", 1);
                        last_s3_error = Some(Instant::now());
                    }
                }
                None => {
                    telemetry.add_events("shipped", b.events.len() as u64);
                    accept(&mut b.events);
                }
            }
        }
        if let Some(s3) = &mut s3 {
            let wait_after_error =
                last_s3_error.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
            if !wait_after_error {
                match s3.tick() {
                    Ok(()) => {
                        if last_s3_error.take().is_some() {
                            telemetry.set_ready("s3", Ok(()));
                        }
                    }
                    Err(e) => {
                        if !e.is_retryable() {
                            return Err(s3_err(e));
                        }
                        tracing::warn!(error = %e, "s3 upload failed; the object is kept and tried again");
                        telemetry.set_ready("s3", Err(e.to_string()));
                        telemetry.add_output_errors("s3", "write", 1);
                        last_s3_error = Some(Instant::now());
                    }
                }
            }
        }
    }
    tracing::info!("stopping: flushing, checkpointing, releasing leases");
    consumer.stop_fetching();
    if let Some(s3) = &mut s3 {
        let deadline = Instant::now() + FLUSH_WINDOW;
        while let Err(e) = s3.flush() {
            if !e.is_retryable() || Instant::now() >= deadline {
                tracing::error!(error = %e, "s3 flush failed on stop; unacknowledged events are read again next time");
                break;
            }
        }
    }
    publisher.publish(&telemetry, &consumer, s3.as_ref());
    let consumer_stats = consumer.shutdown().map_err(relay_err)?;
    Ok(RelaySummary {
        consumer: consumer_stats,
        s3: s3.map(|s| s.stats().clone()),
    })
}

fn accept(events: &mut [Event]) {
    AckToken::accept_all(events.iter_mut().filter_map(Event::take_ack));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_as_documented() {
        let yaml = r#"
source.kinesis:
  stream_name: logs
  region: ap-northeast-1
  endpoint: http://127.0.0.1:5000
  start_position: latest
  checkpoint:
    dynamodb: {table: logtide-leases, lease_duration: 10s}
sinks:
  s3:
    bucket: logs-archive
    prefix: logtide
    region: ap-northeast-1
    endpoint: http://127.0.0.1:5000
    max_object_bytes: 64MiB
    max_age: 60s
  file: {path: /tmp/relay-out, filename: events.ndjson}
  console: {}
"#;
        let c = RelayConfig::from_yaml(yaml, Path::new("relay.yml")).unwrap();
        assert_eq!(c.source.kinesis.stream_name, "logs");
        assert_eq!(
            c.source.kinesis.start_position,
            logtide_kinesis::StartPosition::Latest
        );
        let d = c.source.kinesis.checkpoint.dynamodb.as_ref().unwrap();
        assert_eq!(d.lease_duration, Duration::from_secs(10));
        let s3 = c.sinks.s3.as_ref().unwrap();
        assert_eq!(s3.max_object_bytes, 64 << 20);
        assert_eq!(s3.max_age, Duration::from_secs(60));
        assert!(c.sinks.file.is_some() && c.sinks.console.is_some());
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, want) in [
            (
                "source.kinesis: {stream_name: logs}\nsinks: {s3: {bucket: b-b-b, colour: red}}",
                "sinks.s3.colour: unknown field `colour`",
            ),
            (
                "source.kinesis: {stream_name: logs}\nsinks: {s3: {bucket: b-b-b, max_object_bytes: lots}}",
                "sinks.s3.max_object_bytes",
            ),
            ("source.kinesis: {stream_name: logs}\nsinks: {}", "sinks: at least one"),
            (
                "source.kinesis: {stream_name: 'bad name'}\nsinks: {console: {}}",
                "source.kinesis: invalid kinesis configuration: stream_name",
            ),
            (
                "source.kinesis: {stream_name: logs, checkpoint: {dynamodb: {table: t1t, lease_duration: soon}}}\nsinks: {console: {}}",
                "source.kinesis.checkpoint.dynamodb.lease_duration",
            ),
        ] {
            let err = RelayConfig::from_yaml(yaml, Path::new("relay.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn environment_variables_expand() {
        std::env::set_var("LOGTIDE_RELAY_TEST_BUCKET", "from-env");
        let c = RelayConfig::from_yaml(
            "source.kinesis.stream_name: ${LOGTIDE_RELAY_TEST_STREAM:logs}\nsinks.s3.bucket: ${LOGTIDE_RELAY_TEST_BUCKET}",
            Path::new("relay.yml"),
        )
        .unwrap();
        assert_eq!(c.source.kinesis.stream_name, "logs");
        assert_eq!(c.sinks.s3.unwrap().bucket, "from-env");
    }
}
