//! The watch thread: a current-thread tokio runtime running the pod and namespace
//! watches, the owner lookups and the periodic sweep, writing into the shared store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Config};
use tokio::sync::{mpsc, oneshot};

use crate::enrich::ClusterStatus;
use crate::settings::{ClusterSource, Settings};
use crate::shared::{add, Shared};
use crate::store::{OwnerKey, OwnerKind, OwnerState};

/// How often deleted pods, owner retries and wait records are looked at.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Owner lookups that fail are retried after 2 s, 4 s, … up to this.
const MAX_OWNER_RETRY: Duration = Duration::from_secs(300);

/// The runtime's clock as a std instant (the same as `Instant::now()` except under a
/// test's paused clock, where the sweep and the retries follow the paused time).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The running watch thread.
pub(crate) struct Worker {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Starts the thread and waits until it has a client (or knows there is none).
    pub(crate) fn start(
        settings: Arc<Settings>,
        shared: Arc<Shared>,
    ) -> (Option<Worker>, ClusterStatus) {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel();
        let thread_settings = Arc::clone(&settings);
        let spawned = std::thread::Builder::new()
            .name("k8s-meta".into())
            .spawn(move || thread_main(thread_settings, shared, ready_tx, stop_rx));
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => {
                return (
                    None,
                    ClusterStatus::NoCluster {
                        reason: format!("cannot start the watch thread: {e}"),
                    },
                )
            }
        };
        let status = match ready_rx.recv_timeout(settings.connect_timeout) {
            Ok(Ok(url)) => ClusterStatus::Watching {
                url,
                node: settings.node.clone(),
            },
            Ok(Err(reason)) => ClusterStatus::NoCluster { reason },
            Err(_) => {
                // The thread ends by itself when it finds nobody to report to.
                let _ = stop.send(());
                return (
                    None,
                    ClusterStatus::NoCluster {
                        reason: format!(
                            "no client configuration after {:?}",
                            settings.connect_timeout
                        ),
                    },
                );
            }
        };
        (Some(Worker { stop, thread }), status)
    }

    /// Stops the watches and waits for the thread.
    pub(crate) fn stop(self) {
        // The thread may have ended already (no cluster): nothing to tell then.
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("add_kubernetes_metadata: the watch thread panicked");
        }
    }
}

type Ready = std::sync::mpsc::Sender<Result<String, String>>;

fn thread_main(
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    ready: Ready,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the tokio runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let client = match connect(&settings.source).await {
            Ok((client, url)) => {
                if ready.send(Ok(url)).is_err() {
                    return;
                }
                client
            }
            Err(reason) => {
                let _ = ready.send(Err(reason));
                return;
            }
        };
        tokio::select! {
            () = run(client, settings, shared) => {}
            _ = stop => {}
        }
    });
}

/// A client for the configured cluster, and its URL.
pub(crate) async fn connect(source: &ClusterSource) -> Result<(Client, String), String> {
    let config = match source {
        ClusterSource::Infer => Config::infer().await.map_err(|e| {
            format!("no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a pod: {e}")
        })?,
        ClusterSource::InCluster => Config::incluster()
            .map_err(|e| format!("in_cluster is set but this is not a pod: {e}"))?,
        ClusterSource::DefaultKubeconfig => Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .map_err(|e| format!("in_cluster is false but there is no usable kubeconfig: {e}"))?,
        ClusterSource::Kubeconfig(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("kube_config {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kube_config {}: {e}", path.display()))?
        }
    };
    let url = config.cluster_url.to_string();
    let client =
        Client::try_from(config).map_err(|e| format!("cannot build a client for {url}: {e}"))?;
    Ok((client, url))
}

/// Runs the watches, the owner lookups and the sweep until dropped.
pub(crate) async fn run(client: Client, settings: Arc<Settings>, shared: Arc<Shared>) {
    let (owner_tx, owner_rx) = mpsc::unbounded_channel();
    let pods_api: Api<Pod> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut pod_config = watcher::Config::default();
    if let Some(node) = &settings.node {
        pod_config = pod_config.fields(&format!("spec.nodeName={node}"));
    }
    let pods = watch_pods(
        watcher(pods_api, pod_config),
        Arc::clone(&settings),
        Arc::clone(&shared),
        owner_tx.clone(),
    );
    let namespaces = async {
        if settings.namespace_meta {
            let mut ns_config = watcher::Config::default();
            if let Some(ns) = &settings.namespace {
                ns_config = ns_config.fields(&format!("metadata.name={ns}"));
            }
            let api: Api<Namespace> = Api::all(client.clone());
            watch_namespaces(watcher(api, ns_config), &settings, &shared).await;
        }
    };
    let owners = resolve_owners(client.clone(), owner_rx, &shared);
    let sweep = sweep(&settings, &shared, owner_tx);
    tokio::join!(pods, namespaces, owners, sweep);
}

/// kube's watcher (list, then watch; relists on `410 Gone`) with its default backoff
/// between errors.
fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config).default_backoff()
}

/// Applies pod watch events to the store: the reflector, keeping only what enrichment
/// needs of each pod.
pub(crate) async fn watch_pods(
    stream: impl Stream<Item = watcher::Result<Event<Pod>>>,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    owners: mpsc::UnboundedSender<OwnerKey>,
) {
    let mut stream = std::pin::pin!(stream);
    let mut lists = 0u64;
    while let Some(event) = stream.next().await {
        let queued = match event {
            Ok(Event::Init) => {
                if lists > 0 {
                    add(&shared.counters.relists, 1);
                    tracing::info!("add_kubernetes_metadata: listing pods again");
                }
                lists += 1;
                shared.update_quietly(|s| {
                    s.start_relist();
                    Vec::new()
                })
            }
            Ok(Event::InitApply(pod) | Event::Apply(pod)) => shared.update(|s| {
                s.apply_pod(&pod, &settings);
                s.take_owner_queue()
            }),
            Ok(Event::InitDone) => shared.update(|s| {
                s.finish_relist(now());
                s.take_owner_queue()
            }),
            Ok(Event::Delete(pod)) => shared.update(|s| {
                s.delete_pod(&pod, &settings, now());
                s.take_owner_queue()
            }),
            Err(e) => {
                add(&shared.counters.watch_errors, 1);
                tracing::warn!("add_kubernetes_metadata: pod watch: {e}; retrying with backoff");
                Vec::new()
            }
        };
        for key in queued {
            // The receiver lives as long as this task's siblings; if it is gone the
            // runtime is stopping.
            let _ = owners.send(key);
        }
    }
}

/// Applies namespace watch events to the store; a relist replaces them all at its end.
pub(crate) async fn watch_namespaces(
    stream: impl Stream<Item = watcher::Result<Event<Namespace>>>,
    settings: &Settings,
    shared: &Shared,
) {
    let mut stream = std::pin::pin!(stream);
    let mut listing: Vec<Namespace> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(ns)) => listing.push(ns),
            Ok(Event::InitDone) => {
                let list = std::mem::take(&mut listing);
                shared.update(|s| s.replace_namespaces(&list, settings));
            }
            Ok(Event::Apply(ns)) => shared.update(|s| s.apply_namespace(&ns, settings)),
            Ok(Event::Delete(ns)) => shared.update(|s| s.delete_namespace(&ns)),
            Err(e) => {
                add(&shared.counters.watch_errors, 1);
                tracing::warn!(
                    "add_kubernetes_metadata: namespace watch: {e}; retrying with backoff"
                );
            }
        }
    }
}

/// The name of the owner of kind `kind` marked as controller.
pub(crate) fn controller_of(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.kind == kind && r.controller != Some(false))
        .map(|r| r.name.clone())
}

/// Looks up each ReplicaSet's Deployment and each Job's CronJob, once per ReplicaSet or
/// Job (not per line, not per pod).
async fn resolve_owners(
    client: Client,
    mut keys: mpsc::UnboundedReceiver<OwnerKey>,
    shared: &Shared,
) {
    while let Some(key) = keys.recv().await {
        let (kind, ns, name) = &key;
        let answer = match kind {
            OwnerKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
                .map(|rs| rs.and_then(|rs| controller_of(&rs.metadata, "Deployment"))),
            OwnerKind::Job => Api::<Job>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
                .map(|job| job.and_then(|job| controller_of(&job.metadata, "CronJob"))),
            OwnerKind::StatefulSet | OwnerKind::DaemonSet => continue,
        };
        add(&shared.counters.owner_lookups, 1);
        let state = match answer {
            Ok(parent) => OwnerState::Resolved(parent.map(Arc::from)),
            Err(e) => {
                add(&shared.counters.owner_lookup_errors, 1);
                let attempts = shared.read().owner_attempts(&key) + 1;
                let delay = Duration::from_secs(1u64 << attempts.min(8)).min(MAX_OWNER_RETRY);
                tracing::warn!(
                    "add_kubernetes_metadata: cannot read {kind:?} {ns}/{name}: {e}; retrying in {delay:?}"
                );
                OwnerState::Failed {
                    attempts,
                    retry_at: now() + delay,
                }
            }
        };
        shared.update(|s| s.set_owner(key, state));
    }
}

/// Every second: drops drained and expired deleted pods, retries failed owner lookups,
/// forgets old wait records.
async fn sweep(settings: &Settings, shared: &Shared, owners: mpsc::UnboundedSender<OwnerKey>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = now();
        let (report, retry) =
            shared.update_quietly(|s| (s.sweep(now, settings), s.owners_to_retry(now)));
        let c = &shared.counters;
        add(&c.purged_drained, report.drained);
        add(&c.purged_expired, report.expired);
        add(&c.purged_over_cap, report.over_cap);
        for key in retry {
            let _ = owners.send(key);
        }
        shared.forget_waits(now, settings.wait_for_metadata * 2);
    }
}
