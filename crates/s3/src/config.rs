//! `sinks.s3`: the archive's configuration.

use logtide_config::duration;
use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

use crate::Error;

pub use logtide_config::ByteSize;

/// The configuration of the S3 archive (`sinks.s3`). Credentials come from the AWS
/// default chain.
///
/// ```yaml
/// sinks:
///   s3:
///     bucket: logs-archive
///     prefix: logtide
///     region: ap-northeast-1
///     endpoint: http://127.0.0.1:5000   # optional; path-style addressing then
///     max_object_bytes: 64MiB           # compressed size at which an object is cut
///     max_age: 60s                      # oldest event an open object may hold
///     key_template: "{prefix}/%Y/%m/%d/%H/{shard}-{sequence}.ndjson.gz"
///     multipart_part_bytes: 8MiB        # objects larger than this use a multipart upload
///     attempt_timeout: 30s              # longest one upload call (or part) may take
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket (required).
    pub bucket: String,
    /// Key prefix (`{prefix}` in the template); default `logtide`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// AWS region; default: the AWS default chain's.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's (local testing, S3-compatible stores); path
    /// style addressing is used with it. Default none.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Compressed size at which an object is cut; default 64 MiB.
    #[serde(default = "default_max_object_bytes", deserialize_with = "bytes_field")]
    pub max_object_bytes: u64,
    /// Longest an object stays open; default `60s`.
    #[serde(
        default = "default_max_age",
        deserialize_with = "duration::deserialize"
    )]
    pub max_age: Duration,
    /// Key template: `{prefix}`, `{shard}`, `{sequence}` and `%Y %m %d %H %M` (UTC, of the
    /// object's first event); default `{prefix}/%Y/%m/%d/%H/{shard}-{sequence}.ndjson.gz`.
    #[serde(default = "default_key_template")]
    pub key_template: String,
    /// Part size of multipart uploads (at least 5 MiB); objects larger than one part are
    /// uploaded in parts. Default 8 MiB.
    #[serde(default = "default_part_bytes", deserialize_with = "bytes_field")]
    pub multipart_part_bytes: u64,
    /// Longest one S3 call (a PutObject, or one part of a multipart upload) may take, from
    /// connecting to the last byte of the answer; a connection that is never answered is
    /// given up after it and the call tried again (counted in
    /// `logtide_output_retries_total{reason="timeout"}`). Default `30s`: within a minute
    /// for the relay loop, and enough for one 8 MiB part over a slow link.
    #[serde(
        default = "default_attempt_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub attempt_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct Sized(ByteSize);

fn default_prefix() -> String {
    "logtide".into()
}
fn default_max_object_bytes() -> u64 {
    64 << 20
}
fn default_max_age() -> Duration {
    Duration::from_secs(60)
}
fn default_key_template() -> String {
    "{prefix}/%Y/%m/%d/%H/{shard}-{sequence}.ndjson.gz".into()
}
fn default_part_bytes() -> u64 {
    8 << 20
}
fn default_attempt_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The smallest part S3 accepts (but the last).
pub(crate) const MIN_PART_BYTES: u64 = 5 << 20;

impl S3Config {
    /// A configuration for `bucket` with every other option at its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            prefix: default_prefix(),
            region: None,
            endpoint: None,
            max_object_bytes: default_max_object_bytes(),
            max_age: default_max_age(),
            key_template: default_key_template(),
            multipart_part_bytes: default_part_bytes(),
            attempt_timeout: default_attempt_timeout(),
        }
    }

    /// Checks every option without contacting AWS; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        {
            return Err(Error::Config(format!(
                "bucket: {b:?} is not a bucket name (3 to 63 of a-z, 0-9, - .)"
            )));
        }
        if self.region.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("region: must not be empty".into()));
        }
        if self.attempt_timeout.is_zero() {
            return Err(Error::Config("attempt_timeout: must be above zero".into()));
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "endpoint: {e:?} is not an http:// or https:// URL"
                )));
            }
        }
        if self.max_object_bytes < 1024 {
            return Err(Error::Config(
                "max_object_bytes: must be at least 1KiB".into(),
            ));
        }
        if self.max_age.is_zero() {
            return Err(Error::Config("max_age: must be more than 0s".into()));
        }
        if !self.key_template.contains("{sequence}") || !self.key_template.contains("{shard}") {
            return Err(Error::Config(format!(
                "key_template: {:?} must contain {{shard}} and {{sequence}} (so that a batch delivered again overwrites its object)",
                self.key_template
            )));
        }
        if self.multipart_part_bytes < MIN_PART_BYTES {
            return Err(Error::Config(
                "multipart_part_bytes: must be at least 5MiB (S3's smallest part)".into(),
            ));
        }
        Ok(())
    }
}

fn bytes_field<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Sized::deserialize(d)?.0 .0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, n) in [
            ("64MiB", 64 << 20),
            ("512 KiB", 512 << 10),
            ("1048576", 1 << 20),
            ("10MB", 10_000_000),
        ] {
            assert_eq!(ByteSize::parse(s), Some(ByteSize(n)), "{s}");
        }
        for s in ["", "MiB", "12 parsecs", "99999999999999999999GiB"] {
            assert_eq!(ByteSize::parse(s), None, "{s}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = S3Config::new("Bad_Bucket");
        assert!(c.validate().unwrap_err().to_string().contains("bucket:"));
        c = S3Config::new("ok-bucket");
        c.validate().unwrap();
        c.key_template = "{prefix}/x.gz".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("key_template:"));
        c = S3Config::new("ok-bucket");
        c.multipart_part_bytes = 1 << 20;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("multipart_part_bytes:"));
        c = S3Config::new("ok-bucket");
        assert_eq!(c.attempt_timeout, Duration::from_secs(30));
        c.attempt_timeout = Duration::ZERO;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("attempt_timeout: must be above zero"));
    }
}
