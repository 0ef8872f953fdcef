//! The S3 calls of offloaded events (feature `offload`): the sink's PutObject of an
//! oversize event, the consumer's GetObject that restores it.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
#[cfg(feature = "sink")]
use aws_sdk_s3::primitives::ByteStream;

/// Longest one S3 write of an offloaded event may take (up to `max_entry_bytes` to move).
#[cfg(feature = "sink")]
pub(crate) const OBJECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one read of an offloaded event by the consumer may take: it reads inside
/// `poll`, which also renews the shard leases (10 s by default), so two tries of this
/// stay near one lease period.
#[cfg(feature = "consumer")]
pub(crate) const FETCH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a read that fails for a reason that may pass.
#[cfg(feature = "consumer")]
pub(crate) const FETCH_ATTEMPTS: u32 = 2;

/// Waits between attempts of an S3 call: 200 ms, doubling, at most 5 s.
pub(crate) fn retry_wait(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}

/// Why an S3 call failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) transient: bool,
    pub(crate) message: String,
}

/// S3 calls for offloaded events.
pub(crate) struct Store {
    client: aws_sdk_s3::Client,
}

impl Store {
    /// A client from the AWS configuration; path-style addressing with an endpoint.
    pub(crate) fn new(sdk: &logtide_aws::SdkConfig, endpoint: bool) -> Store {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(endpoint)
            .build();
        Store {
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    /// PutObject of one whole event.
    #[cfg(feature = "sink")]
    pub(crate) async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Failure> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(drop)
            .map_err(|e| failure(&e, &format!("PutObject s3://{bucket}/{key}")))
    }

    /// GetObject of one whole event, refused past `limit` bytes.
    #[cfg(feature = "consumer")]
    pub(crate) async fn get(
        &self,
        bucket: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<u8>, Failure> {
        let what = format!("GetObject s3://{bucket}/{key}");
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failure(&e, &what))?;
        if out
            .content_length()
            .is_some_and(|n| n < 0 || n as u64 > limit as u64)
        {
            return Err(Failure {
                transient: false,
                message: format!("{what}: the object is larger than {limit} bytes"),
            });
        }
        let body = out.body.collect().await.map_err(|e| Failure {
            transient: true,
            message: format!("{what}: reading the body: {e}"),
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

/// Classifies an SDK error: throttling, server errors and the network may pass; access,
/// missing buckets or keys and bad requests need someone to act.
fn failure<E, R>(e: &SdkError<E, R>, what: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown error");
            let transient = matches!(
                code,
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"
            );
            Failure {
                transient,
                message: format!(
                    "{what}: {code}: {}",
                    se.err().message().unwrap_or("no message")
                ),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let mut message = format!("{what}: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            Failure {
                transient: true,
                message,
            }
        }
        other => Failure {
            transient: false,
            message: format!("{what}: {other}"),
        },
    }
}
