//! `sinks.elasticsearch`: the sink's configuration.

use logtide_config::duration;
use std::path::PathBuf;
use std::time::Duration;

use logtide_mapping::MappingConfig;
use serde::Deserialize;

use crate::index::IndexPattern;
use crate::{Error, Result};

/// How server certificates are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMode {
    /// Verify the chain (against `certificate_authorities`, else the system's roots) and
    /// the host name.
    #[default]
    Full,
    /// Accept any certificate (for tests only).
    None,
}

/// `ssl`: TLS for `https://` hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslConfig {
    /// PEM files with the CA certificates to trust instead of the system's roots.
    #[serde(default)]
    pub certificate_authorities: Vec<PathBuf>,
    /// `full` (default) or `none`.
    #[serde(default)]
    pub verification_mode: VerificationMode,
}

/// `aws_sigv4`: sign every request for Amazon OpenSearch Service (or Amazon
/// Elasticsearch Service) with credentials from the AWS default chain.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigV4Config {
    /// The domain's region; default the AWS default chain's (`AWS_REGION`, profile, IMDS).
    #[serde(default)]
    pub region: Option<String>,
    /// The signing name: `es` (managed domains, default) or `aoss` (serverless).
    #[serde(default = "default_service")]
    pub service: String,
}

fn default_service() -> String {
    "es".into()
}

/// `setup`: what `logtide-relay setup` installs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupConfig {
    /// Name of the index template (and prefix of the other objects). Default `logtide`.
    #[serde(default = "default_template_name")]
    pub template_name: String,
    /// Priority of the index template; the dead-letter template gets one more. Default 200.
    #[serde(default = "default_priority")]
    pub priority: u64,
    /// Indices older than this are deleted by the ILM/ISM policy. Default `30d`; `0s`
    /// installs no policy.
    #[serde(
        default = "default_retention",
        deserialize_with = "duration::deserialize"
    )]
    pub retention: Duration,
}

fn default_template_name() -> String {
    "logtide".into()
}
fn default_priority() -> u64 {
    200
}
fn default_retention() -> Duration {
    Duration::from_secs(30 * 86_400)
}

impl Default for SetupConfig {
    fn default() -> Self {
        SetupConfig {
            template_name: default_template_name(),
            priority: default_priority(),
            retention: default_retention(),
        }
    }
}

/// The configuration of the Elasticsearch sink (`sinks.elasticsearch`).
///
/// ```yaml
/// sinks:
///   elasticsearch:
///     hosts: ["http://127.0.0.1:9200"]
///     index: "logtide-%{+yyyy.MM.dd}"             # or strftime: "logtide-%Y.%m.%d"
///     dead_letter_index: "logtide-deadletter-%{+yyyy.MM.dd}"
///     username: elastic                           # basic auth, with password or password_file
///     password: ${ES_PASSWORD}
///     # api_key: "id:key" (or its base64 form); api_key_file: /etc/logtide/es-api-key
///     ssl: {certificate_authorities: [/etc/logtide/ca.pem], verification_mode: full}
///     aws_sigv4: {region: ap-northeast-1, service: es}
///     bulk_max_docs: 1000
///     bulk_max_bytes: 5242880
///     concurrency: 2
///     compression: true
///     timeout: 60s
///     retry_backoff_min: 100ms
///     retry_backoff_max: 10s
///     max_retry_time: 5m
///     mapping:
///       default: coerce                           # coerce | rename | quarantine | stringify
///       rules: [{fields: "message-json.*", policy: stringify}]
///     setup: {template_name: logtide, priority: 200, retention: 30d}
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    /// Base URLs of the cluster's nodes; requests go to them in turn, and to the next one
    /// when a node cannot be reached.
    pub hosts: Vec<String>,
    /// Index name pattern, from the event time (UTC): `%{+yyyy.MM.dd}` (Beats, with
    /// `yyyy`, `yy`, `MM`, `dd`, `HH`) or `%Y`, `%m`, `%d`, `%H`. Default
    /// `logtide-%{+yyyy.MM.dd}`.
    #[serde(default = "default_index")]
    pub index: String,
    /// Index pattern of the dead-letter index. Default `logtide-deadletter-%{+yyyy.MM.dd}`.
    #[serde(default = "default_dead_letter_index")]
    pub dead_letter_index: String,
    /// Basic authentication user.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic authentication password.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// API key: `id:key`, or the base64 form Elasticsearch returns as `encoded`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// File holding the API key.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// TLS settings for `https://` hosts.
    #[serde(default)]
    pub ssl: SslConfig,
    /// Sign requests with AWS SigV4.
    #[serde(default)]
    pub aws_sigv4: Option<SigV4Config>,
    /// Most documents in one `_bulk` request. Default 1000.
    #[serde(default = "default_bulk_max_docs")]
    pub bulk_max_docs: usize,
    /// Most bytes (uncompressed) in one `_bulk` request. Default 5 MiB.
    #[serde(default = "default_bulk_max_bytes")]
    pub bulk_max_bytes: usize,
    /// `_bulk` requests in flight at once. Default 2.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Gzip request bodies. Default true.
    #[serde(default = "default_true")]
    pub compression: bool,
    /// Time limit of one request. Default 60 s.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
    /// First wait before a throttled document (429/503) is sent again. Default 100 ms.
    #[serde(
        default = "default_backoff_min",
        deserialize_with = "duration::deserialize"
    )]
    pub retry_backoff_min: Duration,
    /// Longest wait between attempts. Default 10 s.
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "duration::deserialize"
    )]
    pub retry_backoff_max: Duration,
    /// How long one call keeps retrying before it returns a retryable error (the
    /// documents stay queued for the next call). Default 5 min.
    #[serde(
        default = "default_max_retry_time",
        deserialize_with = "duration::deserialize"
    )]
    pub max_retry_time: Duration,
    /// Type-conflict policies.
    #[serde(default)]
    pub mapping: MappingConfig,
    /// What `setup` installs.
    #[serde(default)]
    pub setup: SetupConfig,
}

fn default_index() -> String {
    "logtide-%{+yyyy.MM.dd}".into()
}
fn default_dead_letter_index() -> String {
    "logtide-deadletter-%{+yyyy.MM.dd}".into()
}
fn default_bulk_max_docs() -> usize {
    1000
}
fn default_bulk_max_bytes() -> usize {
    5 << 20
}
fn default_concurrency() -> usize {
    2
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_backoff_min() -> Duration {
    Duration::from_millis(100)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(10)
}
fn default_max_retry_time() -> Duration {
    Duration::from_secs(300)
}

impl EsConfig {
    /// A configuration with every default, for `hosts`.
    pub fn new(hosts: impl IntoIterator<Item = impl Into<String>>) -> EsConfig {
        EsConfig {
            hosts: hosts.into_iter().map(Into::into).collect(),
            index: default_index(),
            dead_letter_index: default_dead_letter_index(),
            username: None,
            password: None,
            password_file: None,
            api_key: None,
            api_key_file: None,
            ssl: SslConfig::default(),
            aws_sigv4: None,
            bulk_max_docs: default_bulk_max_docs(),
            bulk_max_bytes: default_bulk_max_bytes(),
            concurrency: default_concurrency(),
            compression: true,
            timeout: default_timeout(),
            retry_backoff_min: default_backoff_min(),
            retry_backoff_max: default_backoff_max(),
            max_retry_time: default_max_retry_time(),
            mapping: MappingConfig::default(),
            setup: SetupConfig::default(),
        }
    }

    /// Checks every value; errors name the key (`hosts[1]: …`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(Error::Config(format!("{key}: {message}")));
        if self.hosts.is_empty() {
            return bad("hosts", "at least one host is required".into());
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if !(h.starts_with("http://") || h.starts_with("https://")) {
                return bad(
                    &format!("hosts[{i}]"),
                    format!("{h:?} is not an http:// or https:// URL"),
                );
            }
        }
        IndexPattern::parse(&self.index).map_err(|e| Error::Config(format!("index: {e}")))?;
        IndexPattern::parse(&self.dead_letter_index)
            .map_err(|e| Error::Config(format!("dead_letter_index: {e}")))?;
        if self.password.is_some() && self.password_file.is_some() {
            return bad(
                "password_file",
                "set either password or password_file".into(),
            );
        }
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return bad("api_key_file", "set either api_key or api_key_file".into());
        }
        let has_password = self.password.is_some() || self.password_file.is_some();
        if has_password && self.username.is_none() {
            return bad("username", "a password needs a username".into());
        }
        if self.username.is_some() && !has_password {
            return bad(
                "password",
                "username is set but no password or password_file".into(),
            );
        }
        let has_key = self.api_key.is_some() || self.api_key_file.is_some();
        let schemes = [self.username.is_some(), has_key, self.aws_sigv4.is_some()];
        if schemes.iter().filter(|s| **s).count() > 1 {
            return bad(
                "username",
                "choose one authentication: username/password, api_key or aws_sigv4".into(),
            );
        }
        if let Some(s) = &self.aws_sigv4 {
            if s.service.is_empty() {
                return bad("aws_sigv4.service", "must not be empty".into());
            }
        }
        if self.bulk_max_docs == 0 {
            return bad("bulk_max_docs", "must be at least 1".into());
        }
        if self.bulk_max_bytes < 1024 {
            return bad("bulk_max_bytes", "must be at least 1024".into());
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return bad("concurrency", "must be between 1 and 64".into());
        }
        if self.retry_backoff_min.is_zero() || self.retry_backoff_min > self.retry_backoff_max {
            return bad(
                "retry_backoff_min",
                "must be above zero and at most retry_backoff_max".into(),
            );
        }
        if self.setup.template_name.is_empty()
            || self
                .setup
                .template_name
                .chars()
                .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'))
        {
            return bad(
                "setup.template_name",
                format!(
                    "{:?} must be lowercase letters, digits, '-' or '_'",
                    self.setup.template_name
                ),
            );
        }
        self.mapping
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(())
    }
}
