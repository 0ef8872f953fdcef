//! The AWS SDK configuration that logtide's AWS crates share (`logtide-kinesis`,
//! `logtide-s3`, and `logtide-es` for SigV4 signing), so that every client is set up the
//! same way:
//!
//! - TLS by rustls with the ring provider (no OpenSSL);
//! - credentials from the AWS default chain (environment, profile, web identity, IMDS);
//! - the region from the configuration, else from the default chain; none is an error;
//! - an endpoint override for every service (`endpoint:`), for local emulators and VPC
//!   endpoints;
//! - optionally, the SDK's own retries off and connect and per-attempt timeouts, for
//!   callers that retry with their own backoff;
//! - a one-thread tokio runtime for the blocking APIs built on it;
//! - SigV4 signing, with cached credentials, of requests sent without an SDK client
//!   ([`sigv4`], feature `sigv4`).
//!
//! ```no_run
//! let options = logtide_aws::Options {
//!     region: Some("eu-west-1"),
//!     endpoint: Some("http://127.0.0.1:4566"),
//!     own_retries: Some(logtide_aws::Timeouts::default()),
//! };
//! let (runtime, sdk) = logtide_aws::connect(&options)?;
//! assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
//! # drop(runtime);
//! # Ok::<(), logtide_aws::Error>(())
//! ```

use std::time::Duration;

pub use aws_config::SdkConfig;

#[cfg(feature = "sigv4")]
pub mod sigv4;

/// How to set up the SDK.
#[derive(Clone, Debug, Default)]
pub struct Options<'a> {
    /// The region; `None` takes the default chain's (`AWS_REGION`, profile, IMDS).
    pub region: Option<&'a str>,
    /// An endpoint URL for every service, instead of AWS's.
    pub endpoint: Option<&'a str>,
    /// The caller retries with its own backoff: the SDK's retries are turned off, and
    /// each attempt is bounded by these timeouts. `None` keeps the SDK's retries and
    /// timeouts.
    pub own_retries: Option<Timeouts>,
}

/// Connect and per-attempt timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest a connection may take to open.
    pub connect: Duration,
    /// Longest one attempt of an operation may take, connecting included.
    pub attempt: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 10 s an attempt.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(10),
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime could not be started (threads, the I/O driver).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No region in the configuration nor in the default chain.
    #[error("region: not set, and the AWS default chain (AWS_REGION, profile, IMDS) has none")]
    NoRegion,
    /// The configuration has no credentials provider to sign requests with.
    #[error("credentials: the AWS default chain offers no credentials provider")]
    NoCredentialsProvider,
}

impl Error {
    /// Whether trying again later may succeed: never, the setup is what is wrong.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A one-thread runtime with I/O and timers, for a blocking API over the SDK.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(Error::Runtime)
}

/// Loads the SDK configuration (see the crate documentation).
pub async fn load(options: &Options<'_>) -> Result<SdkConfig, Error> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(t) = options.own_retries {
        loader = loader
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(t.connect)
                    .operation_attempt_timeout(t.attempt)
                    .build(),
            );
    }
    if let Some(region) = options.region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    if let Some(endpoint) = options.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::NoRegion);
    }
    Ok(sdk)
}

/// [`runtime`] and the configuration [`load`]ed on it.
pub fn connect(options: &Options<'_>) -> Result<(tokio::runtime::Runtime, SdkConfig), Error> {
    let rt = runtime()?;
    let sdk = rt.block_on(load(options))?;
    Ok((rt, sdk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_reach_the_configuration() {
        let t = Timeouts {
            connect: Duration::from_millis(1500),
            attempt: Duration::from_secs(7),
        };
        let (_rt, sdk) = connect(&Options {
            region: Some("ap-south-2"),
            endpoint: Some("http://127.0.0.1:1"),
            own_retries: Some(t),
        })
        .unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("ap-south-2"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        let timeouts = sdk.timeout_config().unwrap();
        assert_eq!(timeouts.connect_timeout(), Some(t.connect));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(t.attempt));
        assert_eq!(sdk.retry_config().unwrap().max_attempts(), 1);
        assert!(sdk.credentials_provider().is_some());
    }

    #[test]
    fn the_sdks_own_retries_stay_when_the_caller_does_not_retry() {
        let (_rt, sdk) = connect(&Options {
            region: Some("eu-west-1"),
            ..Options::default()
        })
        .unwrap();
        assert!(sdk.retry_config().unwrap().max_attempts() > 1);
        assert_eq!(sdk.endpoint_url(), None);
    }
}
