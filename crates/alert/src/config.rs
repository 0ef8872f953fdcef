//! `alerts:`: the relay's alerting options.

use std::path::PathBuf;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

use crate::deliver::DeliveryConfig;
use crate::engine::EngineConfig;

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    crate::duration::parse(&v).map_err(de::Error::custom)
}

/// The relay's `alerts:` section.
///
/// ```yaml
/// alerts:
///   rules_dir: /etc/logtide/rules          # rule files, reloaded on change
///   kubernetes: {namespace: monitoring}    # LogAlertRule resources ({} for all namespaces)
///   state_file: /var/lib/logtide/alerts.state
///   allowed_lateness: 30s
///   delivery: {queue: 1000, max_retry_time: 5m}
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A directory of rule files (`*.yaml`, `*.yml`), reloaded on change.
    #[serde(default)]
    pub rules_dir: Option<PathBuf>,
    /// Rules from `LogAlertRule` resources; absent: none.
    #[serde(default)]
    pub kubernetes: Option<KubernetesRules>,
    /// Where the engine's state is kept across restarts; absent: not kept.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// How often the state is saved (default 10 s; also on stop).
    #[serde(default = "default_state_interval", deserialize_with = "duration")]
    pub state_interval: Duration,
    /// See [`EngineConfig::allowed_lateness`] (default 30 s).
    #[serde(default = "default_lateness", deserialize_with = "duration")]
    pub allowed_lateness: Duration,
    /// See [`EngineConfig::max_query_keys`] (default 10,000).
    #[serde(default = "default_max_query_keys")]
    pub max_query_keys: usize,
    /// See [`EngineConfig::max_terms`] (default 100,000).
    #[serde(default = "default_max_terms")]
    pub max_terms: usize,
    /// Delivery options.
    #[serde(default)]
    pub delivery: DeliveryOptions,
}

/// `alerts.kubernetes`: where `LogAlertRule` resources are watched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRules {
    /// The namespace to watch; absent: all namespaces.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A kubeconfig file; absent: the in-cluster service account, else `KUBECONFIG` or
    /// `~/.kube/config`.
    #[serde(default)]
    pub kube_config: Option<PathBuf>,
}

/// `alerts.delivery`: see [`DeliveryConfig`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryOptions {
    /// [`DeliveryConfig::queue`] (default 1,000).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// [`DeliveryConfig::request_timeout`] (default 10 s).
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// [`DeliveryConfig::max_retry_time`] (default 5 minutes).
    #[serde(default = "default_max_retry_time", deserialize_with = "duration")]
    pub max_retry_time: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            queue: default_queue(),
            request_timeout: default_request_timeout(),
            max_retry_time: default_max_retry_time(),
        }
    }
}

fn default_state_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_lateness() -> Duration {
    EngineConfig::default().allowed_lateness
}
fn default_max_query_keys() -> usize {
    EngineConfig::default().max_query_keys
}
fn default_max_terms() -> usize {
    EngineConfig::default().max_terms
}
fn default_queue() -> usize {
    DeliveryConfig::default().queue
}
fn default_request_timeout() -> Duration {
    DeliveryConfig::default().request_timeout
}
fn default_max_retry_time() -> Duration {
    DeliveryConfig::default().max_retry_time
}

impl AlertsConfig {
    /// Checks what serde cannot: at least one source of rules, sane limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.rules_dir.is_none() && self.kubernetes.is_none() {
            return Err("at least one of rules_dir, kubernetes is required".into());
        }
        if self.max_query_keys == 0 || self.max_terms == 0 || self.delivery.queue == 0 {
            return Err("max_query_keys, max_terms and delivery.queue must be at least 1".into());
        }
        Ok(())
    }

    /// The engine's options.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            allowed_lateness: self.allowed_lateness,
            max_query_keys: self.max_query_keys,
            max_terms: self.max_terms,
            ..EngineConfig::default()
        }
    }

    /// The delivery options.
    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            queue: self.delivery.queue,
            request_timeout: self.delivery.request_timeout,
            max_retry_time: self.delivery.max_retry_time,
            ..DeliveryConfig::default()
        }
    }
}
