//! `output.kinesis`: the sink's configuration.

use std::path::PathBuf;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::format::Compression;
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
///   partition_key: container_id         # container_id | random | a field path
///   max_record_bytes: 1048576           # data + partition key; or `auto`
///   oversize: split                     # split | truncate | dead_letter
///   dead_letter_path: /var/lib/logtide/dead-letter
///   aggregate: true
///   compression: none                   # none | gzip | zstd
/// ```
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
    /// Partition key of each event; default `container_id`.
    #[serde(default)]
    pub partition_key: PartitionKey,
    /// Largest record (data plus partition key); default 1048576 (1 MiB), at most 10 MiB
    /// (10485760), or `auto` for the stream's own limit read with DescribeStreamSummary.
    #[serde(default)]
    pub max_record_bytes: MaxRecordBytes,
    /// What happens to an event larger than a record; default `split`.
    #[serde(default)]
    pub oversize: OversizePolicy,
    /// Directory of the dead-letter files; default `/var/lib/logtide/dead-letter`.
    #[serde(default = "default_dead_letter_path")]
    pub dead_letter_path: PathBuf,
    /// Put several events of one partition key in one record; default `true`.
    #[serde(default = "default_aggregate")]
    pub aggregate: bool,
    /// Compression of record bodies; default `none`.
    #[serde(default)]
    pub compression: Compression,
}

fn default_dead_letter_path() -> PathBuf {
    PathBuf::from("/var/lib/logtide/dead-letter")
}

fn default_aggregate() -> bool {
    true
}

impl KinesisConfig {
    /// A configuration for `stream_name` with every other option at its default.
    pub fn new(stream_name: impl Into<String>) -> Self {
        KinesisConfig {
            stream_name: stream_name.into(),
            region: None,
            endpoint: None,
            partition_key: PartitionKey::default(),
            max_record_bytes: MaxRecordBytes::default(),
            oversize: OversizePolicy::default(),
            dead_letter_path: default_dead_letter_path(),
            aggregate: default_aggregate(),
            compression: Compression::default(),
        }
    }

    /// Checks every option without contacting AWS; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
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
        Ok(())
    }

    /// The packer's configuration, with the stream's record limit once known.
    pub fn pack_config(&self, max_record_bytes: usize) -> PackConfig {
        PackConfig {
            max_record_bytes,
            aggregate: self.aggregate,
            compression: self.compression,
            oversize: self.oversize,
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
        assert_eq!(c.oversize, OversizePolicy::Split);
        assert!(c.aggregate);
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
        assert_eq!(c.oversize, OversizePolicy::DeadLetter);
        assert_eq!(c.compression, Compression::Zstd);
        let p = c.pack_config(2 << 20);
        assert_eq!((p.aggregate, p.max_record_bytes), (false, 2 << 20));

        let c =
            parse(r#"{"stream_name":"logs","partition_key":"random","max_record_bytes":"auto"}"#)
                .unwrap();
        assert_eq!(c.partition_key, PartitionKey::Random);
        assert_eq!(c.partition_key.field(), None);
        assert_eq!(c.max_record_bytes, MaxRecordBytes::FromStream);
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
