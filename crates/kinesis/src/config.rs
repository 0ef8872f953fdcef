//! `output.kinesis`: the sink's configuration.

use std::path::PathBuf;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::format::{Compression, RecordFormat};
use crate::offload::OffloadConfig;
use crate::pack::{OversizePolicy, PackConfig, DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT};
use crate::Error;

/// The smallest `max_record_bytes` accepted (Kinesis' own limit is at least 1 MiB; smaller
/// values only make smaller records).
pub const MIN_RECORD_BYTES: usize = 4096;

/// The configuration of the Kinesis sink (`output.kinesis`). Credentials are not part of
/// it: they come from the AWS default chain (environment, profile, web identity, IMDS).
///
/// ```yaml
/// output.kinesis:
///   stream_name: logs
///   region: ap-northeast-1
///   endpoint: http://127.0.0.1:5000     # optional, for local testing
///   attempt_timeout: 10s                # longest one PutRecords attempt may take
///   partition_key: container_id         # container_id | random | a field path
///   max_record_bytes: 1048576           # data + partition key; or `auto`
///   format: logtide                     # logtide | json
///   oversize: split                     # split | truncate | dead_letter | offload
///   offload: {bucket: logs-offload}     # with oversize: offload
///   dead_letter_path: /var/lib/logtide/dead-letter
///   aggregate: true
///   compression: none                   # none | gzip | zstd
/// ```
///
/// With `format: json` each record is one event as JSON plus `\n`: `aggregate` and
/// `compression` must stay off, and `oversize` is `truncate` unless set to `offload` or
/// `dead_letter` (`split` writes chunks only logtide-relay can join, so it is refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The stream's name (required).
    pub stream_name: String,
    /// AWS region; default: the AWS default chain's (`AWS_REGION`, the profile, IMDS).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's (local testing); default: none.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Longest one PutRecords attempt may take, from connecting to the last byte of the
    /// answer; a connection that is never answered is given up after it and the request
    /// sent again (counted in `logtide_output_retries_total{reason="timeout"}`). Default
    /// `10s`: well within `http.stalled_after`, and enough to upload 5 MiB.
    #[serde(
        default = "default_attempt_timeout",
        deserialize_with = "logtide_config::duration::positive::deserialize"
    )]
    pub attempt_timeout: std::time::Duration,
    /// Partition key of each event; default `container_id`.
    #[serde(default)]
    pub partition_key: PartitionKey,
    /// Largest record (data plus partition key); default 1048576 (1 MiB), at most 10 MiB
    /// (10485760), or `auto` for the stream's own limit read with DescribeStreamSummary.
    #[serde(default)]
    pub max_record_bytes: MaxRecordBytes,
    /// How events are written into records: `logtide` (the versioned format, several
    /// events per record, compressed or not) or `json` (one event per record, readable
    /// by any consumer); default `logtide`.
    #[serde(default)]
    pub format: RecordFormat,
    /// What happens to an event larger than a record: `split`, `truncate`,
    /// `dead_letter` or `offload`; default `split` with `format: logtide`, `truncate`
    /// with `format: json`. See [`KinesisConfig::oversize`].
    #[serde(default)]
    pub oversize: Option<OversizePolicy>,
    /// Where `oversize: offload` writes whole events (required with it).
    #[serde(default)]
    pub offload: Option<OffloadConfig>,
    /// Directory of the dead-letter files; default `/var/lib/logtide/dead-letter`.
    #[serde(default = "default_dead_letter_path")]
    pub dead_letter_path: PathBuf,
    /// Put several events of one partition key in one record; default `true` with
    /// `format: logtide`, `false` (and only `false`) with `format: json`.
    #[serde(default)]
    pub aggregate: Option<bool>,
    /// Compression of record bodies; default `none`.
    #[serde(default)]
    pub compression: Compression,
}

fn default_dead_letter_path() -> PathBuf {
    PathBuf::from("/var/lib/logtide/dead-letter")
}

/// Default of `attempt_timeout`.
const DEFAULT_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn default_attempt_timeout() -> std::time::Duration {
    DEFAULT_ATTEMPT_TIMEOUT
}

impl KinesisConfig {
    /// A configuration for `stream_name` with every other option at its default.
    pub fn new(stream_name: impl Into<String>) -> Self {
        KinesisConfig {
            stream_name: stream_name.into(),
            region: None,
            endpoint: None,
            attempt_timeout: default_attempt_timeout(),
            partition_key: PartitionKey::default(),
            max_record_bytes: MaxRecordBytes::default(),
            format: RecordFormat::default(),
            oversize: None,
            offload: None,
            dead_letter_path: default_dead_letter_path(),
            aggregate: None,
            compression: Compression::default(),
        }
    }

    /// Checks every option without contacting AWS; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        #[cfg(not(feature = "offload"))]
        if self.oversize() == OversizePolicy::Offload {
            return Err(Error::Config(
                "oversize: offload is not available in this program: it makes no S3 calls \
                 (logtide-kinesis feature `offload`); use split, truncate or dead_letter"
                    .into(),
            ));
        }
        let name = &self.stream_name;
        if name.is_empty()
            || name.len() > 128
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(Error::Config(format!(
                "stream_name: {name:?} is not a stream name (1 to 128 of a-z, A-Z, 0-9, _ . -)"
            )));
        }
        if self.region.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("region: must not be empty".into()));
        }
        if let Some(e) = &self.endpoint {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                return Err(Error::Config(format!(
                    "endpoint: {e:?} is not an http:// or https:// URL"
                )));
            }
        }
        if let PartitionKey::Field(path) = &self.partition_key {
            if path.split('.').any(str::is_empty) {
                return Err(Error::Config(format!(
                    "partition_key: {path:?} is not a field path (container_id, random, or a dotted path such as kubernetes.pod.uid)"
                )));
            }
        }
        if let MaxRecordBytes::Bytes(n) = self.max_record_bytes {
            if !(MIN_RECORD_BYTES..=MAX_RECORD_BYTES_LIMIT).contains(&n) {
                return Err(Error::Config(format!(
                    "max_record_bytes: {n} is outside {MIN_RECORD_BYTES}..={MAX_RECORD_BYTES_LIMIT}"
                )));
            }
        }
        if self.dead_letter_path.as_os_str().is_empty() {
            return Err(Error::Config("dead_letter_path: must not be empty".into()));
        }
        match (&self.offload, self.oversize()) {
            (None, OversizePolicy::Offload) => {
                return Err(Error::Config(
                    "offload: oversize: offload needs the bucket to write whole events to (offload: {bucket: ...})".into(),
                ))
            }
            (Some(o), _) => o.validate()?,
            (None, _) => {}
        }
        // The format's rules (json: one event per record, uncompressed, not split).
        let limit = match self.max_record_bytes {
            MaxRecordBytes::Bytes(n) => n,
            MaxRecordBytes::FromStream => DEFAULT_MAX_RECORD_BYTES,
        };
        self.pack_config(limit).validate()
    }

    /// The oversize policy in force: the configured one, else `split` with
    /// `format: logtide` and `truncate` with `format: json`.
    pub fn oversize(&self) -> OversizePolicy {
        self.oversize.unwrap_or(match self.format {
            RecordFormat::Logtide => OversizePolicy::Split,
            RecordFormat::Json => OversizePolicy::Truncate,
        })
    }

    /// Whether records aggregate events: the configured value, else `true` with
    /// `format: logtide` and `false` with `format: json`.
    pub fn aggregate(&self) -> bool {
        self.aggregate
            .unwrap_or(self.format == RecordFormat::Logtide)
    }

    /// The packer's configuration, with the stream's record limit once known.
    pub fn pack_config(&self, max_record_bytes: usize) -> PackConfig {
        PackConfig {
            max_record_bytes,
            aggregate: self.aggregate(),
            compression: self.compression,
            oversize: self.oversize(),
            format: self.format,
        }
    }
}

/// How an event's partition key is chosen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PartitionKey {
    /// `container_id`: the event's `container.id`, so that one container's logs stay
    /// ordered on one shard (the default).
    #[default]
    ContainerId,
    /// `random`: a new random key for each batch handed to the sink; batches spread over
    /// the shards, and order is kept only within a batch.
    Random,
    /// Any other value: the field at this path, such as `kubernetes.pod.uid`.
    Field(String),
}

impl PartitionKey {
    /// The field path the key is read from, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            PartitionKey::ContainerId => Some("container.id"),
            PartitionKey::Random => None,
            PartitionKey::Field(f) => Some(f),
        }
    }
}

impl<'de> Deserialize<'de> for PartitionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "container_id" => PartitionKey::ContainerId,
            "random" => PartitionKey::Random,
            _ => PartitionKey::Field(s),
        })
    }
}

/// The record size limit: a number of bytes, or the stream's own (`auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxRecordBytes {
    /// This many bytes (data plus partition key).
    Bytes(usize),
    /// `auto`: the stream's `MaxRecordSizeInKiB` from DescribeStreamSummary, read when the
    /// sink starts (1 MiB when the stream does not say).
    FromStream,
}

impl Default for MaxRecordBytes {
    fn default() -> Self {
        MaxRecordBytes::Bytes(DEFAULT_MAX_RECORD_BYTES)
    }
}

impl<'de> Deserialize<'de> for MaxRecordBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = MaxRecordBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of bytes or \"auto\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                usize::try_from(v)
                    .map(MaxRecordBytes::Bytes)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is negative")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "auto" => Ok(MaxRecordBytes::FromStream),
                    _ => v
                        .parse::<u64>()
                        .map_err(|_| {
                            E::custom(format!("{v:?} is not a number of bytes or \"auto\""))
                        })
                        .and_then(|n| self.visit_u64(n)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<KinesisConfig, String> {
        let c: KinesisConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_every_key() {
        let c = parse(r#"{"stream_name":"logs"}"#).unwrap();
        assert_eq!(c, KinesisConfig::new("logs"));
        assert_eq!(c.partition_key, PartitionKey::ContainerId);
        assert_eq!(c.max_record_bytes, MaxRecordBytes::Bytes(1 << 20));
        assert_eq!(c.oversize(), OversizePolicy::Split);
        assert!(c.aggregate());
        assert_eq!(c.format, RecordFormat::Logtide);
        assert_eq!(c.compression, Compression::None);
        assert_eq!(
            c.dead_letter_path,
            PathBuf::from("/var/lib/logtide/dead-letter")
        );

        let c = parse(
            r#"{"stream_name":"logs","region":"ap-northeast-1","endpoint":"http://127.0.0.1:5000",
                "partition_key":"kubernetes.pod.uid","max_record_bytes":2097152,"oversize":"dead_letter",
                "dead_letter_path":"/tmp/dl","aggregate":false,"compression":"zstd"}"#,
        )
        .unwrap();
        assert_eq!(c.partition_key.field(), Some("kubernetes.pod.uid"));
        assert_eq!(c.max_record_bytes, MaxRecordBytes::Bytes(2 << 20));
        assert_eq!(c.oversize(), OversizePolicy::DeadLetter);
        assert_eq!(c.compression, Compression::Zstd);
        let p = c.pack_config(2 << 20);
        assert_eq!((p.aggregate, p.max_record_bytes), (false, 2 << 20));

        let c =
            parse(r#"{"stream_name":"logs","partition_key":"random","max_record_bytes":"auto"}"#)
                .unwrap();
        assert_eq!(c.partition_key, PartitionKey::Random);
        assert_eq!(c.partition_key.field(), None);
        assert_eq!(c.max_record_bytes, MaxRecordBytes::FromStream);

        let c = parse(r#"{"stream_name":"logs","format":"json"}"#).unwrap();
        assert_eq!(c.format, RecordFormat::Json);
        assert_eq!(c.oversize(), OversizePolicy::Truncate);
        assert!(!c.aggregate());
        let c = parse(
            r#"{"stream_name":"logs","format":"json","aggregate":false,"oversize":"offload",
                "offload":{"bucket":"logs-offload","prefix":"big","endpoint":"http://127.0.0.1:5000"}}"#,
        )
        .unwrap();
        assert_eq!(c.oversize(), OversizePolicy::Offload);
        assert_eq!(c.offload.as_ref().unwrap().target().prefix, "big");
        let c = parse(r#"{"stream_name":"logs","oversize":"offload","offload":{"bucket":"b-1"}}"#)
            .unwrap();
        assert_eq!(c.pack_config(1 << 20).format, RecordFormat::Logtide);
        assert!(c.aggregate());
    }

    #[test]
    fn json_records_refuse_what_would_not_be_json() {
        for (json, want) in [
            (
                r#"{"stream_name":"l","format":"json","aggregate":true}"#,
                "aggregate: true is refused with format: json: each json record holds one event",
            ),
            (
                r#"{"stream_name":"l","format":"json","compression":"gzip"}"#,
                "compression: gzip is refused with format: json",
            ),
            (
                r#"{"stream_name":"l","format":"json","oversize":"split"}"#,
                "oversize: split is refused with format: json: the chunks of a split event are not JSON",
            ),
            (
                r#"{"stream_name":"l","oversize":"offload"}"#,
                "offload: oversize: offload needs the bucket",
            ),
            (
                r#"{"stream_name":"l","format":"xml"}"#,
                "unknown variant `xml`, expected `logtide` or `json`",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                r#"{"stream_name":"logs","regoin":"x"}"#,
                "unknown field `regoin`",
            ),
            (r#"{"region":"x"}"#, "missing field `stream_name`"),
            (
                r#"{"stream_name":"no spaces"}"#,
                "stream_name: \"no spaces\" is not a stream name",
            ),
            (
                r#"{"stream_name":"l","max_record_bytes":100}"#,
                "max_record_bytes: 100 is outside 4096..=10485760",
            ),
            (
                r#"{"stream_name":"l","max_record_bytes":20971520}"#,
                "max_record_bytes: 20971520 is outside",
            ),
            (
                r#"{"stream_name":"l","max_record_bytes":"big"}"#,
                "\"big\" is not a number of bytes or \"auto\"",
            ),
            (
                r#"{"stream_name":"l","max_record_bytes":-1}"#,
                "-1 is negative",
            ),
            (
                r#"{"stream_name":"l","oversize":"drop"}"#,
                "unknown variant `drop`",
            ),
            (
                r#"{"stream_name":"l","compression":"lz4"}"#,
                "unknown variant `lz4`",
            ),
            (
                r#"{"stream_name":"l","endpoint":"127.0.0.1:5000"}"#,
                "endpoint: \"127.0.0.1:5000\" is not an http",
            ),
            (
                r#"{"stream_name":"l","partition_key":"a..b"}"#,
                "partition_key: \"a..b\" is not a field path",
            ),
            (
                r#"{"stream_name":"l","region":""}"#,
                "region: must not be empty",
            ),
        ];
        for (json, want) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}\n got: {err}\nwant: {want}");
        }
    }
}
