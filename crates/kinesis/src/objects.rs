//! The S3 calls of offloaded events (feature `offload`): the sink's PutObject of an
//! oversize event, the consumer's GetObject that restores it.
//!
//! Two calls on whole objects do not need the S3 SDK (whose checksums, streaming and
//! multipart machinery would add megabytes to every agent binary): each is one request,
//! SigV4-signed with the configuration's credentials (`logtide_aws::sigv4`) and sent over
//! the same rustls HTTP connector the SDK clients use. Without an endpoint the bucket is
//! addressed by virtual host (`https://{bucket}.s3.{region}.amazonaws.com/{key}`, or by
//! path when the bucket name has dots, which a wildcard certificate does not cover); with
//! one, by path (`{endpoint}/{bucket}/{key}`), as local emulators and VPC endpoints expect.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::http::Request;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use logtide_aws::sigv4::{Service, Signer};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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
/// Longest a connection to S3 may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a key keeps unencoded: RFC 3986's unreserved characters and the `/` between
/// segments, as S3's canonical URI has them.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

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
    http: aws_smithy_http_client::Connector,
    signer: Signer,
    /// The endpoint override (path-style addressing), without a trailing `/`.
    endpoint: Option<String>,
    attempt_timeout: Duration,
}

/// One response: status, `Content-Length` when sent, and the body not read yet.
struct Response {
    status: u16,
    /// Read by GetObject only.
    #[cfg_attr(not(feature = "consumer"), allow(dead_code))]
    length: Option<u64>,
    body: SdkBody,
}

impl Store {
    /// A client with the credentials, region and endpoint of `sdk` (its endpoint is
    /// `endpoint:` of the configuration, or `AWS_ENDPOINT_URL`); one attempt of a call
    /// takes at most `attempt_timeout`.
    pub(crate) fn new(
        sdk: &logtide_aws::SdkConfig,
        attempt_timeout: Duration,
    ) -> Result<Store, logtide_aws::Error> {
        let http = aws_smithy_http_client::Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build();
        Ok(Store {
            http,
            signer: Signer::new(sdk, Service::S3)?,
            endpoint: sdk
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_owned()),
            attempt_timeout,
        })
    }

    /// PutObject of one whole event.
    #[cfg(feature = "sink")]
    pub(crate) async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Failure> {
        let what = format!("PutObject s3://{bucket}/{key}");
        let response = self
            .call(
                "PUT",
                bucket,
                key,
                &[("content-type", "application/json")],
                body,
            )
            .await
            .map_err(|message| transient(&what, message))?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        Err(self.refusal(&what, response).await)
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
        let response = self
            .call("GET", bucket, key, &[], Vec::new())
            .await
            .map_err(|message| transient(&what, message))?;
        if !(200..300).contains(&response.status) {
            return Err(self.refusal(&what, response).await);
        }
        if response.length.is_some_and(|n| n > limit as u64) {
            return Err(Failure {
                transient: false,
                message: format!("{what}: the object is larger than {limit} bytes"),
            });
        }
        let body = self
            .read(response.body)
            .await
            .map_err(|e| transient(&what, format!("reading the body: {e}")))?;
        if body.len() > limit {
            return Err(Failure {
                transient: false,
                message: format!("{what}: the object is larger than {limit} bytes"),
            });
        }
        Ok(body)
    }

    /// The URL of an object.
    fn url(&self, bucket: &str, key: &str) -> String {
        let key = utf8_percent_encode(key, KEY_ENCODE);
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{bucket}/{key}"),
            None => {
                let region = self.signer.region();
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                if bucket.contains('.') {
                    format!("https://s3.{region}.{domain}/{bucket}/{key}")
                } else {
                    format!("https://{bucket}.s3.{region}.{domain}/{key}")
                }
            }
        }
    }

    /// Signs and sends one request; `Err` is a failure to get an answer (credentials,
    /// connection, timeout), which may pass.
    async fn call(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let url = self.url(bucket, key);
        let host = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let length = body.len().to_string();
        let mut all = vec![("host", host.as_str())];
        // A request with a body says how long it is; a GET sends none.
        if method != "GET" {
            all.push(("content-length", length.as_str()));
        }
        all.extend_from_slice(headers);
        let credentials = self.signer.credentials().await.map_err(|e| e.to_string())?;
        let signed = self
            .signer
            .sign(
                &credentials,
                &logtide_aws::sigv4::Request {
                    method,
                    url: &url,
                    headers: &all,
                    body: &body,
                },
            )
            .map_err(|e| e.to_string())?;
        let mut request = Request::new(SdkBody::from(body));
        request.set_method(method).map_err(|e| e.to_string())?;
        request.set_uri(url.as_str()).map_err(|e| e.to_string())?;
        let named = all
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .chain(signed);
        for (name, value) in named {
            request.headers_mut().insert(name, value);
        }
        let sent = tokio::time::timeout(self.attempt_timeout, self.http.call(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.attempt_timeout))?
            .map_err(|e| error_chain(&e))?;
        Ok(Response {
            status: sent.status().as_u16(),
            length: sent
                .headers()
                .get("content-length")
                .and_then(|v| v.parse().ok()),
            body: sent.into_body(),
        })
    }

    /// The whole body, within the attempt timeout.
    async fn read(&self, body: SdkBody) -> Result<Vec<u8>, String> {
        let bytes = tokio::time::timeout(self.attempt_timeout, ByteStream::new(body).collect())
            .await
            .map_err(|_| format!("not read within {:?}", self.attempt_timeout))?
            .map_err(|e| error_chain(&e))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// The failure an error answer stands for: S3's error code and message from its XML
    /// body, transient for throttling and server errors, and not for access, missing
    /// buckets or keys and bad requests, which need someone to act.
    async fn refusal(&self, what: &str, response: Response) -> Failure {
        let status = response.status;
        let body = self.read(response.body).await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        let code = xml_text(&body, "Code");
        let transient = status >= 500
            || status == 429
            || code.is_some_and(|c| {
                matches!(
                    c,
                    "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"
                )
            });
        let message = format!(
            "{what}: {}: {} (HTTP {status})",
            code.unwrap_or("unknown error"),
            xml_text(&body, "Message").unwrap_or("no message"),
        );
        Failure { transient, message }
    }
}

/// A failure to get an answer at all, which may pass.
fn transient(what: &str, message: String) -> Failure {
    Failure {
        transient: true,
        message: format!("{what}: {message}"),
    }
}

/// An error and its causes, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The text of the first `<tag>` element of an S3 error document, which holds no nested
/// elements or entities in `Code`; `Message` may hold entities, kept as sent.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with fixed credentials, so that no test asks the default chain.
    fn store(endpoint: Option<&str>, region: &str) -> Store {
        store_with(endpoint, region, ("AKID", "secret"))
    }

    fn store_with(endpoint: Option<&str>, region: &str, key: (&str, &str)) -> Store {
        let (_rt, sdk) = logtide_aws::connect(&logtide_aws::Options {
            region: Some(region),
            endpoint,
            own_retries: None,
        })
        .unwrap();
        let sdk = sdk
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(key.0, key.1, None, None, "t"),
                ),
            )
            .build();
        Store::new(&sdk, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn objects_are_addressed_by_host_or_by_path() {
        let aws = store(None, "eu-west-1");
        assert_eq!(
            aws.url("logs", "big/2026/12/07/ab.json"),
            "https://logs.s3.eu-west-1.amazonaws.com/big/2026/12/07/ab.json"
        );
        assert_eq!(
            aws.url("logs.example.com", "k"),
            "https://s3.eu-west-1.amazonaws.com/logs.example.com/k"
        );
        assert_eq!(
            store(None, "cn-north-1").url("logs", "k"),
            "https://logs.s3.cn-north-1.amazonaws.com.cn/k"
        );
        let local = store(Some("http://127.0.0.1:5000/"), "us-east-1");
        assert_eq!(
            local.url("logs", "a b/ü+x~_.-"),
            "http://127.0.0.1:5000/logs/a%20b/%C3%BC%2Bx~_.-"
        );
    }

    #[test]
    fn error_documents_give_code_message_and_whether_to_retry() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_text(xml, "Code"), Some("NoSuchBucket"));
        assert_eq!(
            xml_text(xml, "Message"),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_text(xml, "RequestId"), None);
        assert_eq!(xml_text("<Code>unclosed", "Code"), None);
        let rt = logtide_aws::runtime().unwrap();
        let s = store(Some("http://127.0.0.1:1"), "us-east-1");
        let refusal = |status, body: &str| {
            rt.block_on(s.refusal(
                "PutObject s3://b/k",
                Response {
                    status,
                    length: None,
                    body: SdkBody::from(body.to_owned()),
                },
            ))
        };
        let f = refusal(404, xml);
        assert!(!f.transient);
        assert_eq!(
            f.message,
            "PutObject s3://b/k: NoSuchBucket: The specified bucket does not exist (HTTP 404)"
        );
        assert!(refusal(503, "<Error><Code>SlowDown</Code></Error>").transient);
        assert!(refusal(400, "<Error><Code>RequestTimeout</Code></Error>").transient);
        assert!(!refusal(403, "<Error><Code>AccessDenied</Code></Error>").transient);
        let empty = refusal(500, "");
        assert!(empty.transient);
        assert!(empty
            .message
            .contains("unknown error: no message (HTTP 500)"));
    }

    #[cfg(feature = "sink")]
    #[test]
    fn no_listener_is_a_transient_failure() {
        let rt = logtide_aws::runtime().unwrap();
        let s = store(Some("http://127.0.0.1:1"), "us-east-1");
        let err = rt.block_on(s.put("b", "k", b"{}".to_vec())).unwrap_err();
        assert!(err.transient, "{err:?}");
        assert!(err.message.starts_with("PutObject s3://b/k: "), "{err:?}");
    }

    /// Against a moto_server that checks every signature as S3 does: objects written
    /// and read back under keys that need encoding, and a wrong secret refused for good.
    #[cfg(all(feature = "sink", feature = "consumer"))]
    #[test]
    fn moto_checking_signatures_takes_ours() {
        // Three IAM calls and the bucket go unsigned; every later call is checked.
        let moto = logtide_testkit::MotoServer::start_checking_signatures(4);
        let tool = logtide_testkit::S3Tool::new(&moto.endpoint());
        let (id, secret) = tool.create_iam_user("agent");
        tool.create_bucket("offload");
        let rt = logtide_aws::runtime().unwrap();
        let s = store_with(Some(&moto.endpoint()), "us-east-1", (&id, &secret));
        let body = br#"{"message":"ship me whole"}"#.to_vec();
        for key in ["big/2026/12/07/ab.json", "a b/ü+x=y&z~.json"] {
            rt.block_on(s.put("offload", key, body.clone()))
                .unwrap_or_else(|f| panic!("{key}: {f:?}"));
            assert_eq!(rt.block_on(s.get("offload", key, 1 << 20)).unwrap(), body);
        }
        // boto3 finds them under the keys as given, not as encoded.
        let objects = tool.with_key((&id, &secret)).objects("offload", "");
        let expected = r#"{"message":"ship me whole"}"#.to_owned();
        assert_eq!(
            objects,
            [
                ("a b/ü+x=y&z~.json".to_owned(), expected.clone()),
                ("big/2026/12/07/ab.json".to_owned(), expected),
            ]
        );
        let too_small = rt.block_on(s.get("offload", "a b/ü+x=y&z~.json", 4));
        assert!(too_small.is_err_and(|f| !f.transient && f.message.contains("larger than 4")));

        let wrong = store_with(Some(&moto.endpoint()), "us-east-1", (&id, "not the secret"));
        let f = rt.block_on(wrong.put("offload", "k", body)).unwrap_err();
        assert!(!f.transient, "{f:?}");
        assert!(f.message.contains("SignatureDoesNotMatch"), "{f:?}");
    }
}
