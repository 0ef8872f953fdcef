//! A small synchronous HTTPS client for the kubelet's Summary API.

use std::path::PathBuf;
use std::time::Duration;

use logtide_tls::{CaBundle, Trust};

use crate::{Error, Result};

/// Where a pod finds its service account's token.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where a pod finds its cluster's CA.
pub const SERVICE_ACCOUNT_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// How the kubelet's certificate is checked (`ssl.verification_mode`, as in Beats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMode {
    /// The chain must lead to a configured CA and the certificate must name the host.
    #[default]
    Full,
    /// Any certificate is accepted (the connection is encrypted, not authenticated).
    None,
}

/// How to reach the kubelet.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeletOptions {
    /// Base URL, e.g. `https://node-1:10250`.
    pub url: String,
    /// Bearer token file, read before every request (tokens are rotated); a missing file
    /// means no token.
    pub token_path: Option<PathBuf>,
    /// PEM files of the CAs to trust; empty: the service account's CA.
    pub certificate_authorities: Vec<PathBuf>,
    /// How the certificate is checked.
    pub verification_mode: VerificationMode,
    /// Longest time a request may take.
    pub timeout: Duration,
}

impl KubeletOptions {
    /// Options for `url` with the service account's token and CA, full verification and
    /// a 10-second timeout.
    pub fn new(url: impl Into<String>) -> Self {
        KubeletOptions {
            url: url.into(),
            token_path: Some(SERVICE_ACCOUNT_TOKEN.into()),
            certificate_authorities: Vec::new(),
            verification_mode: VerificationMode::Full,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Largest Summary document accepted (a node with hundreds of pods stays far below).
const MAX_BODY: u64 = 64 << 20;

/// A client of one kubelet.
#[derive(Debug)]
pub struct KubeletClient {
    agent: ureq::Agent,
    summary_url: String,
    token_path: Option<PathBuf>,
}

/// This crate's error for a CA file that cannot be used: an unreadable file is a
/// [`Error::Read`] (so [`Error::is_not_found`] sees a missing one), anything else a
/// [`Error::Config`] naming the key and the file.
fn ca_error(e: logtide_tls::Error) -> Error {
    match e {
        logtide_tls::Error::Read { path, source, .. } => Error::read(path, source),
        e => Error::Config(e.to_string()),
    }
}

impl KubeletClient {
    /// A client; fails when the CA files cannot be read.
    pub fn new(options: &KubeletOptions) -> Result<Self> {
        let base = options.url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::Config(format!(
                "kubernetes.kubelet: {:?} is not an http:// or https:// URL",
                options.url
            )));
        }
        let trust = match options.verification_mode {
            VerificationMode::None => Some(Trust::NoVerification),
            VerificationMode::Full if base.starts_with("https://") => {
                let cas = if options.certificate_authorities.is_empty() {
                    let sa = PathBuf::from(SERVICE_ACCOUNT_CA);
                    if !sa.exists() {
                        return Err(Error::Config(format!(
                            "kubernetes.ssl.certificate_authorities: none set and {SERVICE_ACCOUNT_CA} does not exist; set one, or ssl.verification_mode: none"
                        )));
                    }
                    vec![sa]
                } else {
                    options.certificate_authorities.clone()
                };
                let bundle = CaBundle::load("kubernetes.ssl.certificate_authorities", &cas)
                    .map_err(ca_error)?;
                Some(Trust::Bundle(bundle))
            }
            // Plain HTTP: no certificate to check; ureq's TLS defaults stay.
            VerificationMode::Full => None,
        };
        // The Summary API answers where it is asked; a redirect is reported as its status
        // rather than followed (from plain HTTP to HTTPS it would need TLS settings a
        // plain-HTTP client does not have).
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(trust) = trust {
            config = config.tls_config(trust.tls_config());
        }
        let agent = config.build().new_agent();
        Ok(KubeletClient {
            agent,
            summary_url: format!("{base}/stats/summary"),
            token_path: options.token_path.clone(),
        })
    }

    /// The Summary API URL.
    pub fn summary_url(&self) -> &str {
        &self.summary_url
    }

    fn token(&self) -> Result<Option<String>> {
        let Some(path) = &self.token_path else {
            return Ok(None);
        };
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(t.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::read(path, e)),
        }
    }

    /// Fetches the Summary document.
    pub fn fetch_summary(&self) -> Result<Vec<u8>> {
        let url = &self.summary_url;
        let fail = |message: String| Error::Kubelet {
            url: url.clone(),
            message,
        };
        let mut request = self.agent.get(url).header("Accept", "application/json");
        if let Some(token) = self.token()? {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(fail(format!("HTTP {status}: {}", text.trim())));
        }
        Ok(body)
    }
}
