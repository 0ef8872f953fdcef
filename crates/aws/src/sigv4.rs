//! SigV4 signing of requests sent without an SDK client (feature `sigv4`): the
//! Elasticsearch client's requests to Amazon OpenSearch Service, and the S3 object calls of
//! offloaded Kinesis events. Credentials come from the configuration's provider (the AWS
//! default chain) and are kept until five minutes before they expire.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use logtide_aws::sigv4::{sign, Credentials, Request, Service};
//!
//! let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "example");
//! let headers = sign(
//!     &credentials,
//!     "eu-west-1",
//!     Service::S3,
//!     SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_550_400),
//!     &Request {
//!         method: "PUT",
//!         url: "https://logs.s3.eu-west-1.amazonaws.com/big/one%20event.json",
//!         headers: &[("host", "logs.s3.eu-west-1.amazonaws.com")],
//!         body: b"{}",
//!     },
//! )?;
//! assert!(headers.iter().any(|(name, _)| name == "authorization"));
//! # Ok::<(), logtide_aws::sigv4::SignError>(())
//! ```

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
pub use aws_credential_types::Credentials;

use crate::{Error, SdkConfig};

/// Credentials closer than this to their expiry are fetched again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The service a request goes to, which decides how its path is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3: the path is signed as sent (encoded once, not normalized).
    S3,
    /// Any other service by its signing name (`es`, `aoss`): the path is normalized and
    /// encoded twice, as SigV4 prescribes.
    Named(String),
}

impl Service {
    fn name(&self) -> &str {
        match self {
            Service::S3 => "s3",
            Service::Named(name) => name,
        }
    }
}

/// One request to sign: its URL with the path already percent-encoded, the headers it
/// will be sent with, and its whole body.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `PUT`, `POST`, ...
    pub method: &'a str,
    /// The full URL.
    pub url: &'a str,
    /// Headers that are part of the signature (`host` at least).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; its SHA-256 goes into `x-amz-content-sha256` and the signature.
    pub body: &'a [u8],
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The credentials provider failed (no credentials anywhere in the chain, IMDS or
    /// STS unreachable, an expired profile session).
    #[error("cannot get AWS credentials: {detail}")]
    Credentials {
        /// The provider's error with its causes.
        detail: String,
        /// The provider's error.
        #[source]
        source: CredentialsError,
    },
    /// The request itself cannot be signed (a URL or header SigV4 refuses).
    #[error("cannot sign {url}: {message}")]
    Request {
        /// The request's URL.
        url: String,
        /// What SigV4 refused.
        message: String,
    },
}

impl SignError {
    /// Whether trying again may succeed: a credentials provider may answer later (IMDS,
    /// STS); a request that cannot be signed never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SignError::Credentials { .. })
    }
}

/// Signs requests for one service in one region, with cached credentials.
#[derive(Debug)]
pub struct Signer {
    provider: SharedCredentialsProvider,
    region: String,
    service: Service,
    cached: Mutex<Option<Credentials>>,
}

impl Signer {
    /// A signer with the credentials provider and the region of `sdk`.
    pub fn new(sdk: &SdkConfig, service: Service) -> Result<Signer, Error> {
        let region = sdk.region().map(|r| r.to_string()).ok_or(Error::NoRegion)?;
        let provider = sdk
            .credentials_provider()
            .ok_or(Error::NoCredentialsProvider)?;
        Ok(Signer {
            provider,
            region,
            service,
            cached: Mutex::new(None),
        })
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The cached credentials, or fresh ones from the provider when they are missing or
    /// expire within five minutes.
    pub async fn credentials(&self) -> Result<Credentials, SignError> {
        let fresh_enough = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(c) = self.lock().as_ref().filter(|c| fresh_enough(c)) {
            return Ok(c.clone());
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|source| SignError::Credentials {
                detail: format!("{source}: {source:?}"),
                source,
            })?;
        *self.lock() = Some(c.clone());
        Ok(c)
    }

    /// The headers to add to `request`, signed now with `credentials`.
    pub fn sign(
        &self,
        credentials: &Credentials,
        request: &Request<'_>,
    ) -> Result<Vec<(String, String)>, SignError> {
        sign(
            credentials,
            &self.region,
            self.service.clone(),
            SystemTime::now(),
            request,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Credentials>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Signs one request at `time`: the signature goes into headers (`authorization`,
/// `x-amz-date`, `x-amz-security-token` with session credentials), and the body's SHA-256
/// into `x-amz-content-sha256`, which S3 and Amazon OpenSearch Serverless require.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: Service,
    time: SystemTime,
    request: &Request<'_>,
) -> Result<Vec<(String, String)>, SignError> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SigningSettings, UriPathNormalizationMode,
    };
    let fail = |e: &dyn std::fmt::Display| SignError::Request {
        url: request.url.to_owned(),
        message: e.to_string(),
    };
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    if service == Service::S3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service.name())
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    let (signed, _) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_550_400)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    #[test]
    fn signs_host_body_and_time() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let sign = |body: &[u8]| {
            sign(
                &creds,
                "ap-northeast-1",
                Service::Named("es".into()),
                time(),
                &Request {
                    method: "POST",
                    url: "https://search.example.com/_bulk",
                    headers: &[
                        ("host", "search.example.com"),
                        ("content-type", "application/x-ndjson"),
                    ],
                    body,
                },
            )
            .unwrap()
        };
        let headers = sign(b"{}\n");
        let auth = header(&headers, "authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/ap-northeast-1/es/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{auth}"
        );
        assert_eq!(header(&headers, "x-amz-date"), "20240501T080000Z");
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
        );
        assert_ne!(sign(b"[]\n"), headers, "the body is part of the signature");
    }

    #[test]
    fn s3_paths_are_signed_as_sent_and_session_tokens_go_along() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t");
        let sign_path = |service: Service, path: &str| {
            let url = format!("https://b.s3.eu-west-1.amazonaws.com{path}");
            sign(
                &creds,
                "eu-west-1",
                service,
                time(),
                &Request {
                    method: "PUT",
                    url: &url,
                    headers: &[("host", "b.s3.eu-west-1.amazonaws.com")],
                    body: b"",
                },
            )
            .unwrap()
        };
        let s3 = sign_path(Service::S3, "/a/./b/%20c");
        assert_eq!(header(&s3, "x-amz-security-token"), "token");
        assert!(header(&s3, "authorization").contains("/eu-west-1/s3/aws4_request"));
        // S3 signs `a/./b` as is; other services normalize it to `a/b`.
        assert_ne!(
            header(&s3, "authorization"),
            header(&sign_path(Service::S3, "/a/b/%20c"), "authorization")
        );
        let named = |p| sign_path(Service::Named("s3".into()), p);
        assert_eq!(
            header(&named("/a/./b/%20c"), "authorization"),
            header(&named("/a/b/%20c"), "authorization")
        );
    }

    #[test]
    fn a_url_sigv4_refuses_is_named() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let err = sign(
            &creds,
            "eu-west-1",
            Service::S3,
            time(),
            &Request {
                method: "PUT",
                url: "not a url",
                headers: &[],
                body: b"",
            },
        )
        .unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string().starts_with("cannot sign not a url: "),
            "{err}"
        );
    }

    #[test]
    fn credentials_are_cached_until_near_expiry() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        #[derive(Debug)]
        struct Counting(Arc<AtomicU32>, Option<SystemTime>);
        impl ProvideCredentials for Counting {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                self.0.fetch_add(1, Ordering::SeqCst);
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                    Credentials::new("AKID", "secret", None, self.1, "counting"),
                ))
            }
        }
        let rt = crate::runtime().unwrap();
        for (expiry, calls) in [
            (None, 1),
            (Some(SystemTime::now() + Duration::from_secs(3600)), 1),
            (Some(SystemTime::now() + Duration::from_secs(60)), 3),
        ] {
            let count = Arc::new(AtomicU32::new(0));
            let signer = Signer {
                provider: SharedCredentialsProvider::new(Counting(count.clone(), expiry)),
                region: "eu-west-1".into(),
                service: Service::S3,
                cached: Mutex::new(None),
            };
            for _ in 0..3 {
                rt.block_on(signer.credentials()).unwrap();
            }
            assert_eq!(count.load(Ordering::SeqCst), calls, "expiry {expiry:?}");
        }
    }
}
