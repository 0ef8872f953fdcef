//! Kubernetes metadata for container logs: Filebeat's `add_kubernetes_metadata`.
//!
//! A log shipper on a Kubernetes node reads the files kubelet and the container runtime
//! write, and each event should say which pod, namespace, container, node and workload it
//! came from. This crate is where that metadata comes from:
//!
//! - [`match_log_path`]: what a log file's path says (pod, namespace, container, container
//!   id, pod uid, restart count). Pure.
//! - [`Enricher`]: a cache of the pods on this node, kept by one watch on the API server,
//!   and the batch API that adds their metadata to events. Built from the processor's
//!   options with [`build_enricher`] or [`K8sMetaConfig`].
//! - [`ResourceWatcher`]: custom resources (such as `LogAlertRule`) watched on a thread of
//!   their own, their specs handed over as JSON and their status patched back.
//!
//! # The cache
//!
//! A thread owned by the [`Enricher`] runs a current-thread tokio runtime with kube's
//! watcher on the pods of this node (field selector `spec.nodeName=<node>`), one on
//! namespaces (labels; annotations opt-in) and an owner resolver. The watcher lists, then
//! watches from the list's resource version (with bookmarks), resumes a watch that ends,
//! and lists again after `410 Gone`, with kube's backoff between errors. Each pod is
//! reduced to what enrichment needs (names, uid, node, filtered and dedotted labels, the
//! included annotations, the controller, each container's name, image, id and runtime)
//! with repeated strings interned: no whole `Pod` object is kept, so 10,000 pods take a
//! few megabytes (see `benches/README.md`). A ReplicaSet's Deployment and a Job's
//! CronJob are read once per ReplicaSet or Job and cached while a pod refers to them;
//! nothing is ever asked of the API server per log line. Failed lookups are retried with
//! backoff.
//!
//! Pipeline threads read the cache through a `std::sync::RwLock`, once per batch; the
//! watch thread holds the write lock only to apply one event.
//!
//! Memory follows the pods watched, not the input: the live pods of the node, deleted
//! pods within the bounds below, at most 32 container ids per pod, owners only while a
//! pod refers to them, interned strings freed once unused, at most 4,096 unknown pods
//! waited for at once, and one entry per log file the tailer reports open.
//!
//! # Enriching a batch
//!
//! [`Enricher::enrich_batch`] takes a batch of events (each with `log.file.path`, as the
//! tailer makes them), matches each path and looks the pod up by container id, pod uid or
//! namespace and name, whichever the path carries. It never blocks:
//!
//! - found: the event gets the fields below;
//! - the pod is not known yet: the event is left untouched and listed in the returned
//!   [`Pending`]. Lines can arrive before the watch reports their pod (a new node whose
//!   first list is still loading, a container whose id the kubelet has not reported yet).
//!   Each unknown pod may be waited for up to `wait_for_metadata` (5 s), counted from the
//!   first line that asked for it, so a batch never waits longer and a pod that never
//!   shows up costs one wait, not one per batch;
//! - anything else is a counted miss ([`MissReason`]): the event gets the fields its path
//!   carries, or is left alone when its path is not a container log.
//!
//! A thread-per-stage pipeline either calls [`Enricher::enrich_batch_blocking`], which
//! waits for the cache to change and enriches the pending events again until none is
//! left, or drives [`Enricher::wait_for_change`] and [`Enricher::enrich_pending`] itself.
//!
//! Fields, as Filebeat names them: `kubernetes.pod.name`, `kubernetes.pod.uid`,
//! `kubernetes.namespace`, `kubernetes.namespace_uid`, `kubernetes.namespace_labels.*`,
//! `kubernetes.namespace_annotations.*` (opt-in), `kubernetes.node.name`,
//! `kubernetes.labels.*` (dots in keys become `_` unless `labels.dedot: false`),
//! `kubernetes.annotations.*` (only those `include_annotations` names; patterns may use
//! `*`), `kubernetes.replicaset.name`, `kubernetes.deployment.name`,
//! `kubernetes.statefulset.name`, `kubernetes.daemonset.name`, `kubernetes.job.name`,
//! `kubernetes.cronjob.name`, `kubernetes.container.name`, `kubernetes.container.image`,
//! `container.id` (from the path when it has one: after a restart that is the container
//! that wrote the line) and `container.runtime` (the scheme of the kubelet's container
//! id: `containerd`, `docker`, `cri-o`).
//!
//! # Deleted pods
//!
//! A deleted pod's files are often still being read: a short-lived job, or a shipper
//! that is behind. The cache keeps a deleted pod while the tailer reads any of its files,
//! which the tailer tells it with [`Enricher::file_opened`] and [`Enricher::file_closed`]
//! (by path; keyed by the container id, pod uid or name the path carries). Once no file
//! of it is open, it is kept `cleanup_timeout` (60 s, as in Filebeat) more, for files
//! not yet discovered. Two bounds apply whatever the tailer says: `max_deleted_age` (1 h)
//! and `max_deleted_pods` (5,000, oldest deletion dropped first). Each removal is counted
//! by reason in [`EnrichStats`]. A container that restarted keeps its old ids, so the
//! previous instance's lines still find the pod.
//!
//! # No cluster
//!
//! With no kubeconfig and no in-cluster service account (or an unreadable `kube_config`),
//! [`Enricher::cluster`] is [`ClusterStatus::NoCluster`] with the reason, a warning is
//! logged, and events get only the fields their paths carry (pod name, namespace,
//! container name, pod uid, container id), counted as [`MissReason::NoCluster`].
//!
//! The service account needs `get`, `list`, `watch` on pods and namespaces and `get` on
//! `replicasets` (apps) and `jobs` (batch).
//!
//! # Example
//!
//! ```no_run
//! use logtide_k8s_meta::build_enricher;
//! use serde_json::json;
//!
//! // The options of `- add_kubernetes_metadata: {...}` in a Filebeat processor list.
//! // The node comes from NODE_NAME (set it from the pod's spec.nodeName).
//! let options = json!({"labels.dedot": true,
//!                      "include_annotations": ["prometheus.io/*"]});
//! let enricher = build_enricher(&options, "processors[0].add_kubernetes_metadata")?;
//! let mut batch: Vec<logtide_event::Event> = Vec::new(); // events from the tailer
//! enricher.enrich_batch_blocking(&mut batch);
//! println!("{:?}", enricher.stats());
//! # Ok::<(), logtide_k8s_meta::Error>(())
//! ```
//!
//! The same over a fixed set of objects, with no cluster:
//!
//! ```
//! use logtide_event::{Event, Timestamp};
//! use logtide_k8s_meta::{Enricher, K8sMetaConfig};
//! use serde_json::json;
//!
//! let id = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
//! let pod = json!({"kind": "Pod", "metadata": {"name": "web-0", "namespace": "prod",
//!     "uid": "005f3b90-4b9d-12f8-acf0-31020a840133", "labels": {"app.kubernetes.io/name": "web"}},
//!     "spec": {"nodeName": "node-a", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
//!     "status": {"containerStatuses": [{"name": "nginx", "image": "nginx:1.27", "imageID": "",
//!         "ready": true, "restartCount": 0, "containerID": format!("containerd://{id}")}]}});
//! let config = K8sMetaConfig::from_value(&json!({"node": "node-a"}), "add_kubernetes_metadata")?;
//! let enricher = Enricher::from_objects(&config, [pod])?;
//!
//! let mut event = Event::new(Timestamp::UNIX_EPOCH);
//! event.insert("log.file.path", json!(format!("/var/log/containers/web-0_prod_nginx-{id}.log")))?;
//! let mut batch = vec![event];
//! assert!(enricher.enrich_batch(&mut batch).is_empty());
//! assert_eq!(batch[0].get("kubernetes.labels.app_kubernetes_io/name"), Some(&json!("web")));
//! assert_eq!(batch[0].get("container.runtime"), Some(&json!("containerd")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Log paths
//!
//! - [`match_log_path`] reads a log file's path, with no file system access, and returns
//!   a [`LogPathInfo`]: pod, namespace, container, container id, pod uid and restart
//!   count, each where the path's layout carries it, and the [`LogPathLayout`] matched.
//!   It returns `None` for a path in no known layout. The layouts are summarised below;
//!   [`match_log_path`] documents them and the matching policy in full.
//!
//! | path (any prefix before the layout directory) | gives |
//! |---|---|
//! | `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` | pod, namespace, container, container id |
//! | `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log[.<YYYYMMDD-HHMMSS>]` | pod, namespace, container, pod uid, restart count |
//! | `/var/lib/docker/containers/<id>/<id>-json.log[.<k>]` | container id |
//! | `/var/lib/kubelet/pods/<uid>/volumes/<plugin>/<volume>/…/<file>` | pod uid |
//!
//! Names are validated as Kubernetes validates them, container ids must be 64 lowercase
//! hex digits, and compressed rotated files (`.gz`) do not match.
//!
//! Path matching alone:
//!
//! ```
//! use logtide_k8s_meta::{match_log_path, LogPathLayout};
//!
//! let id = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
//! let path = format!("/var/log/containers/web-0_prod_nginx-{id}.log");
//! let info = match_log_path(&path).expect("a kubelet symlink");
//! assert_eq!(info.layout, LogPathLayout::ContainerLink);
//! assert_eq!(info.pod.as_deref(), Some("web-0"));
//! assert_eq!(info.container_id.as_deref(), Some(id));
//!
//! let uid = "005f3b90-4b9d-12f8-acf0-31020a840133";
//! let info = match_log_path(format!("/var/log/pods/prod_web-0_{uid}/nginx/2.log")).unwrap();
//! assert_eq!(
//!     serde_json::to_string(&info).unwrap(),
//!     format!(
//!         r#"{{"pod":"web-0","namespace":"prod","container":"nginx","container_id":null,"pod_uid":"{uid}","restart_count":"2"}}"#
//!     )
//! );
//!
//! // Not a container log, or a malformed one: no match.
//! assert!(match_log_path("/var/log/messages").is_none());
//! assert!(match_log_path("/var/lib/docker/containers/01234567/89abcdef-json.log").is_none());
//! ```

mod config;
mod enrich;
mod path;
mod quantity;
mod resources;
mod settings;
mod shared;
mod store;
mod worker;

#[cfg(test)]
mod tests;

pub use crate::config::{
    Dedot, Enabled, IndexerConfig, K8sMetaConfig, LogsPathMatcher, MatcherConfig,
    NamespaceMetadata, NoOptions, ResourceMetadata, ResourceType, Scope,
};
pub use crate::enrich::{
    ClusterStatus, EnrichStats, Enricher, MissReason, Pending, PodResourceLimits,
};
pub use crate::path::{match_log_path, LogPathInfo, LogPathLayout};
pub use crate::resources::{
    ObjectKey, ResourceEvent, ResourceKind, ResourceObject, ResourceWatchConfig, ResourceWatcher,
};

/// Builds the enricher of an `add_kubernetes_metadata` processor from its options (the
/// value under the processor's name; `null` for all defaults). `at` is the options' place
/// in the configuration, for errors (`processors[2].add_kubernetes_metadata`).
///
/// Errors are configuration errors only; an unreachable or unconfigured cluster gives a
/// path-only enricher (see [`Enricher::cluster`]). The `when` condition, if any, is in
/// [`K8sMetaConfig::when`]: read the config with [`K8sMetaConfig::from_value`] and
/// [`K8sMetaConfig::build`] it to get at it.
pub fn build_enricher(options: &serde_json::Value, at: &str) -> Result<Enricher> {
    K8sMetaConfig::from_value(options, at)?.build()
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is invalid; `path` is where it is (`processors[0].add_kubernetes_metadata.labels`).
    #[error("{path}: {message}")]
    Config {
        /// The option's path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An object given to [`Enricher::from_objects`] is not a valid Kubernetes object.
    #[error("object {index}: {message}")]
    Object {
        /// Its position in the input.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
