//! The options of Filebeat's `add_kubernetes_metadata` processor, and logtide's own.

use std::path::PathBuf;
use std::time::Duration;

use logtide_config::duration;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::settings::{ClusterSource, Lookups, Matcher, Pattern, Settings};
use crate::{Enricher, Error, Result};

/// The options of the `add_kubernetes_metadata` processor, as Filebeat spells them, plus
/// logtide's lifetime and waiting options.
///
/// Read with [`K8sMetaConfig::from_value`] (dotted keys such as `labels.dedot` are
/// accepted, unknown keys are refused with their path), then [`K8sMetaConfig::build`].
///
/// | key | default | meaning |
/// |---|---|---|
/// | `in_cluster` | unset | `true`: only the pod's service account; `false`: only a kubeconfig; unset: a kubeconfig (`KUBECONFIG`, `~/.kube/config`) if there is one, else the service account |
/// | `kube_config` | unset | path of a kubeconfig file to use (wins over `in_cluster`) |
/// | `node`, `host` | env `NODE_NAME`, else the host name | the node whose pods are watched (`host` is Filebeat's older name) |
/// | `scope` | `node` | `cluster` watches the pods of every node |
/// | `namespace` | all | watch only this namespace |
/// | `default_indexers.enabled` | `true` | look pods up by container id, pod uid and namespace/name |
/// | `indexers` | `[]` | with default indexers off, the lookups to use: `container`, `pod_uid`, `pod_name` (`ip_port` is accepted; log paths carry no address) |
/// | `default_matchers.enabled` | `true` | match every path layout [`match_log_path`](crate::match_log_path) knows |
/// | `matchers` | `[]` | `- logs_path: {logs_path: <prefix>, resource_type: container\|pod}`: only paths under these prefixes; `pod` adds pod fields only |
/// | `labels.dedot`, `annotations.dedot` | `true` | replace `.` in label (annotation) keys with `_` |
/// | `include_labels`, `exclude_labels` | all, none | pod labels to keep (patterns, `*` is a wildcard) |
/// | `include_annotations` | none | pod annotations to add (patterns) |
/// | `add_resource_metadata.namespace` | enabled, all labels, no annotations | `enabled`, `include_labels`, `exclude_labels`, `include_annotations` for `kubernetes.namespace_labels` / `namespace_annotations` |
/// | `add_resource_metadata.deployment`, `.cronjob` | `true` | resolve a ReplicaSet's Deployment and a Job's CronJob (one API request per ReplicaSet or Job, cached) |
/// | `cleanup_timeout` | `60s` | how long a deleted pod whose files are all closed is kept |
/// | `sync_period`, `kube_client_options` | — | accepted for compatibility; the watch needs no resync |
/// | `wait_for_metadata` | `5s` | how long lines of a pod the cache does not know yet wait for the watch |
/// | `max_deleted_age` | `1h` | deleted pods are dropped after this even if a file of theirs is still open |
/// | `max_deleted_pods` | `5000` | at most this many deleted pods are kept (oldest dropped first) |
/// | `when` | none | a condition; kept in [`K8sMetaConfig::when`] for the caller to evaluate |
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct K8sMetaConfig {
    /// `true`: in-cluster service account only; `false`: kubeconfig only.
    #[serde(default)]
    pub in_cluster: Option<bool>,
    /// A kubeconfig file.
    #[serde(default)]
    pub kube_config: Option<PathBuf>,
    /// The node name (Filebeat's older option; `node` wins).
    #[serde(default)]
    pub host: Option<String>,
    /// The node whose pods are watched.
    #[serde(default)]
    pub node: Option<String>,
    /// `node` (default) or `cluster`.
    #[serde(default)]
    pub scope: Scope,
    /// Watch only this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `enabled: false` turns the default lookups off; `indexers` then names them.
    #[serde(default)]
    pub default_indexers: Enabled,
    /// `enabled: false` turns matching every layout off; `matchers` then names them.
    #[serde(default)]
    pub default_matchers: Enabled,
    /// Lookups to use (Filebeat's indexers).
    #[serde(default)]
    pub indexers: Vec<IndexerConfig>,
    /// Which paths to match (Filebeat's matchers).
    #[serde(default)]
    pub matchers: Vec<MatcherConfig>,
    /// `labels.dedot`.
    #[serde(default)]
    pub labels: Dedot,
    /// `annotations.dedot`.
    #[serde(default)]
    pub annotations: Dedot,
    /// Pod labels to keep; all when empty.
    #[serde(default)]
    pub include_labels: Vec<String>,
    /// Pod labels to drop.
    #[serde(default)]
    pub exclude_labels: Vec<String>,
    /// Pod annotations to add; none when empty.
    #[serde(default)]
    pub include_annotations: Vec<String>,
    /// Namespace, Deployment and CronJob metadata.
    #[serde(default)]
    pub add_resource_metadata: ResourceMetadata,
    /// How long a deleted pod whose files are all closed is kept.
    #[serde(default = "default_cleanup_timeout", with = "duration")]
    pub cleanup_timeout: Duration,
    /// Accepted for compatibility; no effect.
    #[serde(default, rename = "sync_period")]
    pub sync_period: Option<Value>,
    /// Accepted for compatibility; no effect.
    #[serde(default, rename = "kube_client_options")]
    pub kube_client_options: Option<Value>,
    /// How long lines of an unknown pod wait for the watch.
    #[serde(default = "default_wait", with = "duration")]
    pub wait_for_metadata: Duration,
    /// Deleted pods are dropped after this, files open or not.
    #[serde(default = "default_max_deleted_age", with = "duration")]
    pub max_deleted_age: Duration,
    /// At most this many deleted pods are kept.
    #[serde(default = "default_max_deleted_pods")]
    pub max_deleted_pods: usize,
    /// The processor's `when` condition, for the caller to evaluate.
    #[serde(default)]
    pub when: Option<Value>,
}

/// `scope`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The pods of this node.
    #[default]
    Node,
    /// The pods of every node.
    Cluster,
}

/// `{enabled: bool}`, default `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    /// Whether it is on.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Enabled {
    fn default() -> Self {
        Enabled { enabled: true }
    }
}

/// `{dedot: bool}`, default `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedot {
    /// Replace `.` in keys with `_`.
    #[serde(default = "yes")]
    pub dedot: bool,
}

impl Default for Dedot {
    fn default() -> Self {
        Dedot { dedot: true }
    }
}

/// An empty options object (`container: {}` or `container: ~`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// One of Filebeat's indexers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexerConfig {
    /// By container id.
    Container(Option<NoOptions>),
    /// By namespace and pod name.
    PodName(Option<NoOptions>),
    /// By pod uid.
    PodUid(Option<NoOptions>),
    /// By pod IP and port: accepted, matches nothing (log paths carry no address).
    IpPort(Option<NoOptions>),
}

/// One of Filebeat's matchers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatcherConfig {
    /// `logs_path: {logs_path: <prefix>, resource_type: container|pod}`.
    LogsPath(LogsPathMatcher),
}

/// The `logs_path` matcher's options.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsPathMatcher {
    /// Only paths under this prefix match.
    #[serde(default = "default_logs_path")]
    pub logs_path: String,
    /// `container` (default) or `pod` (pod fields only).
    #[serde(default)]
    pub resource_type: ResourceType,
}

/// `resource_type` of the `logs_path` matcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// Pod and container fields.
    #[default]
    Container,
    /// Pod fields only.
    Pod,
}

/// `add_resource_metadata`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceMetadata {
    /// Namespace labels and annotations.
    #[serde(default)]
    pub namespace: NamespaceMetadata,
    /// Resolve a ReplicaSet's Deployment.
    #[serde(default = "yes")]
    pub deployment: bool,
    /// Resolve a Job's CronJob.
    #[serde(default = "yes")]
    pub cronjob: bool,
}

impl Default for ResourceMetadata {
    fn default() -> Self {
        ResourceMetadata {
            namespace: NamespaceMetadata::default(),
            deployment: true,
            cronjob: true,
        }
    }
}

/// `add_resource_metadata.namespace`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceMetadata {
    /// Watch namespaces for their labels (and annotations).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Namespace labels to keep; all when empty.
    #[serde(default)]
    pub include_labels: Vec<String>,
    /// Namespace labels to drop.
    #[serde(default)]
    pub exclude_labels: Vec<String>,
    /// Namespace annotations to add; none when empty.
    #[serde(default)]
    pub include_annotations: Vec<String>,
}

impl Default for NamespaceMetadata {
    fn default() -> Self {
        NamespaceMetadata {
            enabled: true,
            include_labels: Vec::new(),
            exclude_labels: Vec::new(),
            include_annotations: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_logs_path() -> String {
    "/var/lib/docker/containers/".to_owned()
}

fn default_cleanup_timeout() -> Duration {
    crate::store::DEFAULT_CLEANUP_TIMEOUT
}

fn default_wait() -> Duration {
    Duration::from_secs(5)
}

fn default_max_deleted_age() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_deleted_pods() -> usize {
    5000
}

fn config_error(e: logtide_config::Error) -> Error {
    Error::Config {
        path: e.path,
        message: e.message,
    }
}

impl K8sMetaConfig {
    /// Reads the processor's options (the value under `add_kubernetes_metadata`; `null`
    /// is all defaults). `at` is where they are in the configuration, for errors, e.g.
    /// `processors[2].add_kubernetes_metadata`.
    ///
    /// Dotted keys are paths (`labels.dedot: false` is `labels: {dedot: false}`), except
    /// inside `when`. Unknown keys are refused: the error names the key's path.
    pub fn from_value(options: &Value, at: &str) -> Result<K8sMetaConfig> {
        let expanded = match options {
            Value::Null => Value::Object(Map::new()),
            Value::Object(map) => {
                logtide_config::expand_dotted(Value::Object(map.clone()), at, &["when"])
                    .map_err(config_error)?
            }
            other => {
                return Err(Error::Config {
                    path: at.to_owned(),
                    message: format!(
                        "expected an object of options, found {}",
                        logtide_event::path::json_type(other)
                    ),
                })
            }
        };
        let config: K8sMetaConfig =
            logtide_config::from_value(expanded, at).map_err(config_error)?;
        config.settings(at)?;
        Ok(config)
    }

    /// Checks the options and starts the enricher: see [`Enricher`]. With no cluster to
    /// reach, the enricher adds only the fields the log paths carry, and says so with a
    /// warning (and in [`Enricher::cluster`]).
    pub fn build(&self) -> Result<Enricher> {
        let settings = self.settings("add_kubernetes_metadata")?;
        Ok(Enricher::start(settings))
    }

    /// The runtime settings; `at` prefixes error paths.
    pub(crate) fn settings(&self, at: &str) -> Result<Settings> {
        let bad = |key: &str, message: String| Error::Config {
            path: format!("{at}.{key}"),
            message,
        };
        let source = match (&self.kube_config, self.in_cluster) {
            (Some(path), _) if path.as_os_str().is_empty() => {
                return Err(bad("kube_config", "must not be empty".into()))
            }
            (Some(path), _) => ClusterSource::Kubeconfig(path.clone()),
            (None, Some(true)) => ClusterSource::InCluster,
            (None, Some(false)) => ClusterSource::DefaultKubeconfig,
            (None, None) => ClusterSource::Infer,
        };
        let node = match self.scope {
            Scope::Cluster => None,
            Scope::Node => Some(
                non_empty(self.node.as_deref())
                    .or(non_empty(self.host.as_deref()))
                    .map(str::to_owned)
                    .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
                    .or_else(host_name)
                    .ok_or_else(|| {
                        bad(
                            "node",
                            "no node name: set `node`, or NODE_NAME from the pod's spec.nodeName, or use `scope: cluster`".into(),
                        )
                    })?,
            ),
        };
        let mut lookups = Lookups {
            container_id: self.default_indexers.enabled,
            pod_uid: self.default_indexers.enabled,
            pod_name: self.default_indexers.enabled,
        };
        for indexer in &self.indexers {
            match indexer {
                IndexerConfig::Container(_) => lookups.container_id = true,
                IndexerConfig::PodUid(_) => lookups.pod_uid = true,
                IndexerConfig::PodName(_) => lookups.pod_name = true,
                IndexerConfig::IpPort(_) => {}
            }
        }
        let mut matchers = Vec::new();
        for (i, MatcherConfig::LogsPath(m)) in self.matchers.iter().enumerate() {
            if m.logs_path.is_empty() {
                return Err(bad(
                    &format!("matchers[{i}].logs_path.logs_path"),
                    "must not be empty".into(),
                ));
            }
            matchers.push(Matcher {
                prefix: m.logs_path.clone(),
                pod_only: m.resource_type == ResourceType::Pod,
            });
        }
        if !self.default_matchers.enabled && matchers.is_empty() {
            return Err(bad(
                "matchers",
                "default_matchers is disabled and no matcher is configured: no event could be enriched".into(),
            ));
        }
        let patterns = |list: &[String]| list.iter().map(|s| Pattern::new(s)).collect();
        let ns = &self.add_resource_metadata.namespace;
        Ok(Settings {
            source,
            node,
            namespace: non_empty(self.namespace.as_deref()).map(str::to_owned),
            labels_dedot: self.labels.dedot,
            annotations_dedot: self.annotations.dedot,
            include_labels: patterns(&self.include_labels),
            exclude_labels: patterns(&self.exclude_labels),
            include_annotations: patterns(&self.include_annotations),
            namespace_meta: ns.enabled,
            namespace_include_labels: patterns(&ns.include_labels),
            namespace_exclude_labels: patterns(&ns.exclude_labels),
            namespace_annotations: if ns.enabled {
                patterns(&ns.include_annotations)
            } else {
                Vec::new()
            },
            resolve_deployment: self.add_resource_metadata.deployment,
            resolve_cronjob: self.add_resource_metadata.cronjob,
            matchers,
            default_matcher: self.default_matchers.enabled,
            lookups,
            wait_for_metadata: self.wait_for_metadata,
            cleanup_timeout: self.cleanup_timeout,
            max_deleted_age: self.max_deleted_age,
            max_deleted_pods: self.max_deleted_pods,
            connect_timeout: Duration::from_secs(30),
        })
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The kernel's host name, which is the node name on most clusters.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const AT: &str = "processors[0].add_kubernetes_metadata";

    fn settings(v: Value) -> Settings {
        K8sMetaConfig::from_value(&v, AT)
            .unwrap()
            .settings(AT)
            .unwrap()
    }

    fn error(v: Value) -> String {
        K8sMetaConfig::from_value(&v, AT).unwrap_err().to_string()
    }

    #[test]
    fn filebeat_daemonset_options_map() {
        let s = settings(json!({
            "host": "node-a",
            "in_cluster": true,
            "default_indexers.enabled": false,
            "default_matchers.enabled": false,
            "indexers": [{"container": null}],
            "matchers": [{"logs_path": {"logs_path": "/var/log/containers/"}}],
            "labels.dedot": false,
            "annotations": {"dedot": false},
            "include_annotations": ["prometheus.io/*"],
            "namespace": "prod",
            "add_resource_metadata": {"namespace": {"include_annotations": ["team"]}, "deployment": false},
            "cleanup_timeout": "2m",
            "sync_period": "10m",
            "when": {"has_fields": ["log.file.path"]},
        }));
        assert_eq!(s.node.as_deref(), Some("node-a"));
        assert_eq!(s.source, ClusterSource::InCluster);
        assert_eq!(
            s.lookups,
            Lookups {
                container_id: true,
                pod_uid: false,
                pod_name: false
            }
        );
        assert_eq!(
            s.matchers,
            [Matcher {
                prefix: "/var/log/containers/".into(),
                pod_only: false
            }]
        );
        assert!(!s.labels_dedot && !s.annotations_dedot);
        assert!(Pattern::any_matches(
            &s.include_annotations,
            "prometheus.io/port"
        ));
        assert_eq!(s.namespace.as_deref(), Some("prod"));
        assert!(!s.resolve_deployment && s.resolve_cronjob && s.namespace_meta);
        assert_eq!(s.namespace_annotations, [Pattern::new("team")]);
        assert_eq!(s.cleanup_timeout, Duration::from_secs(120));
    }

    #[test]
    fn defaults_follow_filebeat() {
        let s = settings(json!({"node": "n1", "kube_config": "/etc/kube.conf"}));
        assert_eq!(s.source, ClusterSource::Kubeconfig("/etc/kube.conf".into()));
        assert!(s.labels_dedot && s.annotations_dedot);
        assert!(s.include_annotations.is_empty());
        assert!(s.matchers.is_empty() && s.default_matcher);
        assert!(s.lookups.container_id && s.lookups.pod_uid && s.lookups.pod_name);
        assert!(s.resolve_deployment && s.resolve_cronjob);
        assert_eq!(s.cleanup_timeout, Duration::from_secs(60));
        assert_eq!(s.wait_for_metadata, Duration::from_secs(5));
        assert!(s.keeps_label("app.kubernetes.io/name"));
        let cluster = settings(json!({"scope": "cluster", "in_cluster": false}));
        assert_eq!(cluster.node, None);
        assert_eq!(cluster.source, ClusterSource::DefaultKubeconfig);
        let null = K8sMetaConfig::from_value(&Value::Null, AT).unwrap();
        assert_eq!(null.scope, Scope::Node);
    }

    #[test]
    fn label_filters() {
        let s = settings(json!({
            "node": "n",
            "include_labels": ["app*", "tier"],
            "exclude_labels": ["app.kubernetes.io/version"],
        }));
        assert!(s.keeps_label("app"));
        assert!(s.keeps_label("app.kubernetes.io/name"));
        assert!(!s.keeps_label("app.kubernetes.io/version"));
        assert!(s.keeps_label("tier"));
        assert!(!s.keeps_label("pod-template-hash"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (json!({"node": "n", "lables": {}}), "processors[0].add_kubernetes_metadata.lables: unknown field `lables`, expected one of `in_cluster`"),
            (json!({"node": "n", "labels.dedott": true}), "processors[0].add_kubernetes_metadata.labels.dedott: unknown field `dedott`, expected `dedot`"),
            (json!({"node": "n", "matchers": [{"logs_path": {"logs_path": "/x", "resource": "pod"}}]}), "processors[0].add_kubernetes_metadata.matchers[0].logs_path.resource: unknown field `resource`"),
            (json!({"node": "n", "matchers": [{"fields": {"lookup_fields": ["ip"]}}]}), "processors[0].add_kubernetes_metadata.matchers[0]: unknown variant `fields`, expected `logs_path`"),
            (json!({"node": "n", "indexers": [{"ip_port": {"x": 1}}]}), "processors[0].add_kubernetes_metadata.indexers[0].ip_port.x: unknown field `x`"),
            (json!({"node": "n", "cleanup_timeout": "soon"}), "processors[0].add_kubernetes_metadata.cleanup_timeout: invalid duration \"soon\""),
            (json!({"node": "n", "scope": "galaxy"}), "processors[0].add_kubernetes_metadata.scope: unknown variant `galaxy`, expected `node` or `cluster`"),
            (json!({"node": "n", "default_matchers.enabled": false}), "processors[0].add_kubernetes_metadata.matchers: default_matchers is disabled and no matcher is configured"),
            (json!({"node": "n", "labels": 1, "labels.dedot": true}), "processors[0].add_kubernetes_metadata.labels.dedot: labels is set both as a value and as a section"),
            (json!({"node": "n", "add_resource_metadata": {"node": {"enabled": true}}}), "processors[0].add_kubernetes_metadata.add_resource_metadata.node: unknown field `node`"),
            (json!({"node": "n", "kube_config": ""}), "processors[0].add_kubernetes_metadata.kube_config: must not be empty"),
            (json!("yes"), "processors[0].add_kubernetes_metadata: expected an object of options, found string"),
        ];
        for (value, want) in cases {
            let got = error(value.clone());
            assert!(got.starts_with(want), "{value}: got {got:?}, want {want:?}");
        }
    }
}
