//! The AWS setup the sink and the consumer share (see `logtide_aws`).

use std::time::Duration;

use crate::Error;

/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
#[cfg(feature = "consumer")]
/// Longest one call of the consumer or the lease table may take (GetRecords answers with up
/// to 10 MiB); the sink's own is `attempt_timeout`.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A one-thread runtime for the blocking API, and [`sdk_config`] loaded on it.
#[cfg(feature = "consumer")]
pub(crate) fn runtime_and_sdk(
    region: Option<&str>,
    endpoint: Option<&str>,
) -> Result<(tokio::runtime::Runtime, logtide_aws::SdkConfig), Error> {
    runtime_and_sdk_with(region, endpoint, ATTEMPT_TIMEOUT)
}

/// [`runtime_and_sdk`] with its own attempt timeout.
pub(crate) fn runtime_and_sdk_with(
    region: Option<&str>,
    endpoint: Option<&str>,
    attempt_timeout: Duration,
) -> Result<(tokio::runtime::Runtime, logtide_aws::SdkConfig), Error> {
    Ok(logtide_aws::connect(&aws_options(
        region,
        endpoint,
        attempt_timeout,
    ))?)
}

/// The AWS configuration shared by the sink, the consumer and the lease table: the SDK's
/// own retries off (callers retry with their own backoff), connect and attempt timeouts,
/// optional region and endpoint.
#[cfg(any(feature = "consumer", feature = "offload"))]
pub(crate) async fn sdk_config(
    region: Option<&str>,
    endpoint: Option<&str>,
    attempt_timeout: Duration,
) -> Result<logtide_aws::SdkConfig, Error> {
    Ok(logtide_aws::load(&aws_options(region, endpoint, attempt_timeout)).await?)
}

fn aws_options<'a>(
    region: Option<&'a str>,
    endpoint: Option<&'a str>,
    attempt_timeout: Duration,
) -> logtide_aws::Options<'a> {
    logtide_aws::Options {
        region,
        endpoint,
        own_retries: Some(logtide_aws::Timeouts {
            connect: CONNECT_TIMEOUT,
            attempt: attempt_timeout,
        }),
    }
}
