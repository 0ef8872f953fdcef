//! HTTP to the cluster: node rotation, authentication, gzip bodies, version detection.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use logtide_tls::{CaBundle, Trust};
use serde_json::Value;

use crate::config::{EsConfig, SigV4Config, VerificationMode};
use crate::{Error, Result};

/// Bodies smaller than this are sent as they are.
const GZIP_MIN_BYTES: usize = 1024;
/// Largest response body read.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// Which server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Elasticsearch (7, 8 or 9).
    Elasticsearch,
    /// OpenSearch (1, 2 or 3).
    OpenSearch,
}

/// The server's distribution and version, from `GET /`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// Elasticsearch or OpenSearch.
    pub distribution: Distribution,
    /// The major version.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// `version.number` as the server wrote it.
    pub number: String,
}

impl ServerVersion {
    /// Reads the `GET /` body; refuses versions this sink does not support.
    pub fn from_root(body: &Value) -> Result<ServerVersion> {
        let number = body["version"]["number"]
            .as_str()
            .ok_or_else(|| Error::Response {
                url: "/".into(),
                message: "no version.number in the answer to GET /".into(),
            })?
            .to_owned();
        let mut parts = number.split(['.', '-']).map(|p| p.parse::<u32>().ok());
        let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
            return Err(Error::Response {
                url: "/".into(),
                message: format!("version.number {number:?} is not a version"),
            });
        };
        let distribution = if body["version"]["distribution"] == "opensearch" {
            Distribution::OpenSearch
        } else {
            Distribution::Elasticsearch
        };
        let supported = match distribution {
            Distribution::Elasticsearch => (7..=9).contains(&major),
            Distribution::OpenSearch => (1..=3).contains(&major),
        };
        if !supported {
            return Err(Error::Unsupported(format!(
                "{distribution:?} {number}: logtide supports Elasticsearch 7 to 9 and OpenSearch 1 to 3"
            )));
        }
        Ok(ServerVersion {
            distribution,
            major,
            minor,
            number,
        })
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.distribution {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
        };
        write!(f, "{name} {}", self.number)
    }
}

/// An answer: status and (decompressed) body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) url: String,
}

impl Response {
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Response {
            url: self.url.clone(),
            message: format!("the body is not JSON ({e}): {}", preview(&self.body)),
        })
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An error for an unexpected status.
    pub(crate) fn status_error(&self, method: &str) -> Error {
        Error::Status {
            method: method.to_owned(),
            url: self.url.clone(),
            status: self.status,
            body: preview(&self.body),
        }
    }
}

/// The first 500 characters of a body, for messages.
pub(crate) fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// SigV4 signing with credentials from the AWS default chain (see `logtide_aws::sigv4`),
/// on a runtime of its own for the blocking client.
struct Signer {
    rt: tokio::runtime::Runtime,
    signer: logtide_aws::sigv4::Signer,
}

impl Signer {
    fn new(config: &SigV4Config) -> Result<Signer> {
        let config_error = |e: logtide_aws::Error| match e {
            logtide_aws::Error::NoRegion | logtide_aws::Error::NoCredentialsProvider => {
                Error::Config(format!("aws_sigv4.{e}"))
            }
            e => Error::Aws(e),
        };
        let (rt, sdk) = logtide_aws::connect(&logtide_aws::Options {
            region: config.region.as_deref(),
            ..logtide_aws::Options::default()
        })
        .map_err(config_error)?;
        let signer = logtide_aws::sigv4::Signer::new(
            &sdk,
            logtide_aws::sigv4::Service::Named(config.service.clone()),
        )
        .map_err(config_error)?;
        Ok(Signer { rt, signer })
    }

    /// The headers to add to a request with these headers and body.
    fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>> {
        let credentials = self.rt.block_on(self.signer.credentials())?;
        Ok(self.signer.sign(
            &credentials,
            &logtide_aws::sigv4::Request {
                method,
                url,
                headers,
                body,
            },
        )?)
    }
}

enum Auth {
    None,
    Header(String),
    SigV4(Box<Signer>),
}

/// The HTTP client of one cluster. Shared by the threads that send requests.
pub(crate) struct Client {
    agent: ureq::Agent,
    hosts: Vec<String>,
    next: AtomicUsize,
    auth: Auth,
    compression: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.hosts)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

fn read_secret(key: &str, path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{key}: cannot read {}: {e}", path.display())))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        return Err(Error::Config(format!("{key}: {} is empty", path.display())));
    }
    Ok(text)
}

/// The `Authorization` value for an API key given as `id:key` or already encoded.
pub(crate) fn api_key_header(key: &str) -> String {
    if key.contains(':') {
        format!(
            "ApiKey {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    } else {
        format!("ApiKey {key}")
    }
}

impl Client {
    pub(crate) fn new(config: &EsConfig) -> Result<Client> {
        let auth = if let Some(user) = &config.username {
            let password = match (&config.password, &config.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(path)) => read_secret("password_file", path)?,
                (None, None) => String::new(),
            };
            let pair = format!("{user}:{password}");
            Auth::Header(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        } else if let Some(key) = &config.api_key {
            Auth::Header(api_key_header(key))
        } else if let Some(path) = &config.api_key_file {
            Auth::Header(api_key_header(&read_secret("api_key_file", path)?))
        } else if let Some(s) = &config.aws_sigv4 {
            Auth::SigV4(Box::new(Signer::new(s)?))
        } else {
            Auth::None
        };
        let trust = match config.ssl.verification_mode {
            VerificationMode::None => Trust::NoVerification,
            VerificationMode::Full if !config.ssl.certificate_authorities.is_empty() => {
                Trust::Bundle(
                    CaBundle::load(
                        "ssl.certificate_authorities",
                        &config.ssl.certificate_authorities,
                    )
                    .map_err(|e| Error::Config(e.to_string()))?,
                )
            }
            VerificationMode::Full => Trust::Platform,
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_idle_connections_per_host(config.concurrency.max(2))
            .tls_config(trust.tls_config())
            .build()
            .new_agent();
        Ok(Client {
            agent,
            hosts: config
                .hosts
                .iter()
                .map(|h| h.trim_end_matches('/').to_owned())
                .collect(),
            next: AtomicUsize::new(0),
            auth,
            compression: config.compression,
        })
    }

    /// Sends a request to the next node, and to the following ones when a node cannot be
    /// reached. `body` is JSON or NDJSON (gzipped when compression is on and it is not
    /// tiny).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &'static str)>,
    ) -> Result<Response> {
        let gzipped;
        let (payload, content_type, encoding) = match body {
            Some((b, ct)) if self.compression && b.len() >= GZIP_MIN_BYTES => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(b.len() / 4),
                    flate2::Compression::fast(),
                );
                gzipped = enc
                    .write_all(b)
                    .and_then(|()| enc.finish())
                    .map_err(|e| Error::Setup(format!("gzip: {e}")))?;
                (Some(gzipped.as_slice()), Some(ct), Some("gzip"))
            }
            Some((b, ct)) => (Some(b), Some(ct), None),
            None => (None, None, None),
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for i in 0..self.hosts.len() {
            let host = &self.hosts[(start + i) % self.hosts.len()];
            let url = format!("{host}{path}");
            match self.send_once(method, &url, payload, content_type, encoding) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(%url, error = %e, "node unreachable; trying the next one");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("hosts: none configured".into())))
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        payload: Option<&[u8]>,
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) -> Result<Response> {
        let http_err = |message: String| Error::Http {
            url: url.to_owned(),
            message,
            source: None,
        };
        let ureq_err = |what: &str, e: ureq::Error| match e {
            ureq::Error::Timeout(_) => Error::Timeout {
                url: url.to_owned(),
                message: format!("{what}{e}"),
                source: e,
            },
            e => Error::Http {
                url: url.to_owned(),
                message: format!("{what}{e}"),
                source: Some(e),
            },
        };
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(4);
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        if let Some(enc) = encoding {
            headers.push(("content-encoding", enc));
        }
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .unwrap_or_default();
        let signed;
        match &self.auth {
            Auth::None => {}
            Auth::Header(value) => req = req.header("authorization", value.as_str()),
            Auth::SigV4(signer) => {
                let mut to_sign = headers.clone();
                to_sign.push(("host", host));
                signed = signer.sign(method, url, &to_sign, payload.unwrap_or_default())?;
                for (k, v) in &signed {
                    req = req.header(k.as_str(), v.as_str());
                }
            }
        }
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let result = match payload {
            Some(p) => req
                .body(p)
                .map_err(|e| http_err(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| ureq_err("", e))),
            None => req
                .body(())
                .map_err(|e| http_err(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| ureq_err("", e))),
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let gzipped = resp
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let raw = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| ureq_err("reading the answer: ", e))?;
        let body = if gzipped {
            let mut out = Vec::with_capacity(raw.len() * 4);
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)
                .map_err(|e| http_err(format!("gunzip of the answer: {e}")))?;
            out
        } else {
            raw
        };
        Ok(Response {
            status,
            body,
            url: url.to_owned(),
        })
    }

    /// `GET /`: which server and version answers.
    pub(crate) fn version(&self) -> Result<ServerVersion> {
        let r = self.request("GET", "/", None)?;
        if !r.is_success() {
            return Err(r.status_error("GET"));
        }
        ServerVersion::from_root(&r.json()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_detected() {
        let es = ServerVersion::from_root(&json!({"version": {"number": "8.15.3"}})).unwrap();
        assert_eq!(
            (es.distribution, es.major, es.minor),
            (Distribution::Elasticsearch, 8, 15)
        );
        let os = ServerVersion::from_root(
            &json!({"version": {"number": "2.19.1", "distribution": "opensearch"}}),
        )
        .unwrap();
        assert_eq!((os.distribution, os.major), (Distribution::OpenSearch, 2));
        assert_eq!(os.to_string(), "OpenSearch 2.19.1");
        let seven = ServerVersion::from_root(&json!({"version": {"number": "7.17.0-SNAPSHOT"}}));
        assert_eq!(seven.unwrap().major, 7);
        for (body, want) in [
            (
                json!({"version": {"number": "6.8.0"}}),
                "supports Elasticsearch 7 to 9",
            ),
            (
                json!({"version": {"number": "4.0.0", "distribution": "opensearch"}}),
                "OpenSearch 1 to 3",
            ),
            (json!({"tagline": "hi"}), "no version.number"),
            (json!({"version": {"number": "eight"}}), "is not a version"),
        ] {
            let err = ServerVersion::from_root(&body).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn api_keys_are_encoded_once() {
        assert_eq!(api_key_header("id:secret"), "ApiKey aWQ6c2VjcmV0");
        assert_eq!(api_key_header("aWQ6c2VjcmV0"), "ApiKey aWQ6c2VjcmV0");
    }

    #[test]
    fn bad_ca_files_are_named() {
        let dir = std::env::temp_dir().join(format!("logtide-es-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let mut config = EsConfig::new(["https://127.0.0.1:9200"]);
        config.ssl.certificate_authorities = vec![empty.clone()];
        let err = Client::new(&config).unwrap_err().to_string();
        assert!(
            err.contains("no PEM certificate") && err.contains("empty.pem"),
            "{err}"
        );
        config.ssl.certificate_authorities = vec![dir.join("missing.pem")];
        let err = Client::new(&config).unwrap_err().to_string();
        assert!(
            err.contains("cannot read") && err.contains("missing.pem"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
