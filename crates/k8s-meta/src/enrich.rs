//! The enricher: the handle the pipeline threads use, and the fields it adds.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use logtide_event::{Event, LogFile, SharedFields};
use serde_json::{Map, Value};

use crate::settings::Settings;
use crate::shared::{add, Shared};
use crate::store::{ContainerMeta, OwnerKind, OwnerState, PodMeta, Store};
use crate::worker::Worker;
use crate::LogPathLayout;
use crate::{match_log_path, Error, K8sMetaConfig, LogPathInfo, Result};

/// Where the enricher's metadata comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterStatus {
    /// A watch on this API server (its URL), of the pods of `node` (all nodes when
    /// `None`).
    Watching {
        /// The API server.
        url: String,
        /// The node whose pods are watched.
        node: Option<String>,
    },
    /// A fixed set of objects given to [`Enricher::from_objects`].
    Snapshot,
    /// No cluster could be reached or configured: events get only the fields their log
    /// paths carry.
    NoCluster {
        /// Why, for the startup message.
        reason: String,
    },
}

/// Why an event did not get the metadata of its pod. Each is counted in
/// [`EnrichStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissReason {
    /// The event has no `log.file.path`, or it is in no known layout, or no matcher
    /// takes it. The event is left as it was.
    NoPathMatch,
    /// The pod was still unknown when the wait for it ran out (or when no wait was
    /// possible). The event gets the fields its path carries.
    PodUnknown,
    /// The pod is known but has no container of the path's name. The event gets the pod's
    /// fields and the path's container name.
    ContainerNotInPod,
    /// There is no cluster to ask ([`ClusterStatus::NoCluster`]). The event gets the
    /// fields its path carries.
    NoCluster,
}

impl MissReason {
    /// Every reason, in a stable order.
    pub const ALL: [MissReason; 4] = [
        MissReason::NoPathMatch,
        MissReason::PodUnknown,
        MissReason::ContainerNotInPod,
        MissReason::NoCluster,
    ];

    /// A short name for metrics: `no_path_match`, `pod_unknown`, `container_not_in_pod`,
    /// `no_cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::NoPathMatch => "no_path_match",
            MissReason::PodUnknown => "pod_unknown",
            MissReason::ContainerNotInPod => "container_not_in_pod",
            MissReason::NoCluster => "no_cluster",
        }
    }
}

/// A snapshot of the enricher's counters (monotonic unless marked as a gauge).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnrichStats {
    /// Events that got their pod's metadata.
    pub enriched: u64,
    /// Times an event was held back because its pod was not known yet.
    pub waited: u64,
    /// Misses: [`MissReason::NoPathMatch`].
    pub no_path_match: u64,
    /// Misses: [`MissReason::PodUnknown`].
    pub pod_unknown: u64,
    /// Misses: [`MissReason::ContainerNotInPod`].
    pub container_not_in_pod: u64,
    /// Misses: [`MissReason::NoCluster`].
    pub no_cluster: u64,
    /// Gauge: pods cached, deleted ones included.
    pub pods: u64,
    /// Gauge: deleted pods kept for their files.
    pub deleted_pods: u64,
    /// Gauge: log files the tailer said it reads.
    pub open_files: u64,
    /// Deleted pods dropped once their files were closed and `cleanup_timeout` passed.
    pub purged_drained: u64,
    /// Deleted pods dropped after `max_deleted_age`.
    pub purged_expired: u64,
    /// Deleted pods dropped to stay within `max_deleted_pods`.
    pub purged_over_cap: u64,
    /// Complete relists after the first list (after `410 Gone` or a reconnect).
    pub relists: u64,
    /// Errors of the watches (each retried with backoff).
    pub watch_errors: u64,
    /// ReplicaSet and Job lookups made.
    pub owner_lookups: u64,
    /// ReplicaSet and Job lookups that failed (retried with backoff).
    pub owner_lookup_errors: u64,
    /// Whether the first complete list of pods has arrived.
    pub synced: bool,
}

impl EnrichStats {
    /// The miss count for one reason.
    pub fn misses(&self, reason: MissReason) -> u64 {
        match reason {
            MissReason::NoPathMatch => self.no_path_match,
            MissReason::PodUnknown => self.pod_unknown,
            MissReason::ContainerNotInPod => self.container_not_in_pod,
            MissReason::NoCluster => self.no_cluster,
        }
    }
}

/// Events of a batch whose pods the cache does not know yet, returned by
/// [`Enricher::enrich_batch`]. They are untouched; enrich them again with
/// [`Enricher::enrich_pending`] after [`Enricher::wait_for_change`], or let
/// [`Enricher::enrich_batch_blocking`] do both.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[must_use]
pub struct Pending {
    indices: Vec<usize>,
    deadline: Option<Instant>,
    generation: u64,
}

impl Pending {
    /// Whether every event is done.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// The positions, in the batch, of the events that wait.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// When the earliest of their waits runs out: enriching them again at or after it
    /// finishes at least that pod's events (with what their paths carry).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Adds Kubernetes metadata to events, as Filebeat's `add_kubernetes_metadata` does.
///
/// Built by [`K8sMetaConfig::build`] (or [`build_enricher`](crate::build_enricher)); it
/// owns a thread running a small tokio runtime with the watches, and reads the shared
/// cache from any thread. Share it (`&Enricher` or `Arc<Enricher>`): every method takes
/// `&self`. Dropping it stops the watches.
///
/// See the [crate documentation](crate) for the fields added, the waiting and the
/// lifetime of deleted pods.
pub struct Enricher {
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    status: ClusterStatus,
    worker: Option<Worker>,
    /// Names this enricher's [`Memo`] in each thread's [`MEMOS`]; never reused.
    id: u64,
}

/// A path's match and what its lines got, valid while the store is at `generation`:
/// what the last path of the last call resolved to, for the next call. The processor
/// runs once per event, and consecutive events mostly come from one file.
#[derive(Default)]
struct Memo {
    generation: u64,
    path: PathCache,
    /// The file the path was last read from, when the event was an entry: a next entry
    /// of the same file has the same path, known without comparing it.
    file: Option<Arc<LogFile>>,
    state: Option<RunState>,
}

thread_local! {
    /// Each thread's memos, by enricher id. Each input runs the processors on its own
    /// thread, so a memo per thread needs no lock (a lock and an unlock for every event
    /// were 39 % of the Kubernetes step's samples in the seed chain), and inputs reading
    /// different files do not take each other's.
    static MEMOS: RefCell<Vec<(u64, Memo)>> = const { RefCell::new(Vec::new()) };
}

/// Memos a thread keeps, the oldest dropped first: a memo is only a shortcut, and a
/// process runs one enricher per processor list.
const MEMOS_KEPT: usize = 4;

/// The next enricher's id.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` with this thread's memo of enricher `id`, made empty if there is none.
fn with_memo<T>(id: u64, f: impl FnOnce(&mut Memo) -> T) -> T {
    MEMOS.with_borrow_mut(|memos| {
        let at = match memos.iter().position(|(of, _)| *of == id) {
            Some(at) => at,
            None => {
                if memos.len() >= MEMOS_KEPT {
                    memos.remove(0);
                }
                memos.push((id, Memo::default()));
                memos.len() - 1
            }
        };
        f(&mut memos[at].1)
    })
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("status", &self.status)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How one event's lookup came out.
enum Lookup<'s> {
    Found(&'s PodMeta, Option<usize>),
    NoContainer(&'s PodMeta),
    Unknown,
}

/// Per batch: what the last path resolved to (its layout match and whether only pod
/// fields are wanted), so a run of events from one file matches the path once.
type PathCache = Option<(String, Option<(LogPathInfo, bool)>)>;

/// What the lines of one file get: fields and a miss reason, or a wait until a deadline.
enum RunState {
    Done(Arc<SharedFields>, Option<MissReason>),
    Waiting(Instant),
}

/// The objects merged into an event: `kubernetes` and `container`.
struct Fields {
    kubernetes: Map<String, Value>,
    container: Map<String, Value>,
}

impl Fields {
    /// The fields to merge into events: `kubernetes` and `container` when not empty, each
    /// merged into an object the event has at every depth (a metrics event's
    /// `kubernetes.pod.cpu`, say, stays beside what enrichment adds).
    fn share(self) -> Arc<SharedFields> {
        let mut fields = Map::new();
        if !self.kubernetes.is_empty() {
            fields.insert("kubernetes".to_owned(), Value::Object(self.kubernetes));
        }
        if !self.container.is_empty() {
            fields.insert("container".to_owned(), Value::Object(self.container));
        }
        Arc::new(SharedFields::new(fields))
    }
}

#[derive(Default)]
struct Tally {
    enriched: u64,
    waited: u64,
    misses: [u64; 4],
}

impl Tally {
    fn miss(&mut self, reason: MissReason) {
        self.misses[reason as usize] += 1;
    }
}

impl Enricher {
    /// Starts the watch thread, connects and returns; with no cluster, returns a
    /// path-only enricher and logs why.
    pub(crate) fn start(settings: Settings) -> Enricher {
        let settings = Arc::new(settings);
        let shared = Arc::new(Shared::default());
        let (worker, status) = Worker::start(Arc::clone(&settings), Arc::clone(&shared));
        if let ClusterStatus::NoCluster { reason } = &status {
            tracing::warn!(
                "add_kubernetes_metadata: no Kubernetes cluster ({reason}); events get only the fields their log paths carry (pod, namespace, container, pod uid, container id)"
            );
        }
        Enricher {
            shared,
            settings,
            status,
            worker,
            id: next_id(),
        }
    }

    /// An enricher reading a store that something else fills (the tests' mock watches).
    #[cfg(test)]
    pub(crate) fn attached(
        settings: Arc<Settings>,
        shared: Arc<Shared>,
        status: ClusterStatus,
    ) -> Enricher {
        Enricher {
            shared,
            settings,
            status,
            worker: None,
            id: next_id(),
        }
    }

    /// An enricher over a fixed set of Kubernetes objects (JSON as the API serves them,
    /// each with its `kind`: `Pod`, `Namespace`, `ReplicaSet` or `Job`), with no cluster
    /// and no waiting. For tests, benchmarks and replaying a cluster's state.
    pub fn from_objects(
        config: &K8sMetaConfig,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<Enricher> {
        let mut settings = config.settings("add_kubernetes_metadata")?;
        settings.wait_for_metadata = Duration::ZERO;
        let shared = Arc::new(Shared::default());
        let mut owners = Vec::new();
        let mut namespaces = Vec::new();
        shared.update(|store| -> Result<()> {
            store.start_relist();
            for (index, object) in objects.into_iter().enumerate() {
                let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
                let bad = |e: serde_json::Error| Error::Object {
                    index,
                    message: e.to_string(),
                };
                match kind {
                    "Pod" => {
                        let pod: Pod = serde_json::from_value(object).map_err(bad)?;
                        if !store.apply_pod(&pod, &settings) {
                            return Err(Error::Object {
                                index,
                                message: "a pod needs metadata.uid, .name and .namespace".into(),
                            });
                        }
                    }
                    "Namespace" => {
                        namespaces.push(serde_json::from_value::<Namespace>(object).map_err(bad)?)
                    }
                    "ReplicaSet" => {
                        let rs: ReplicaSet = serde_json::from_value(object).map_err(bad)?;
                        owners.push((OwnerKind::ReplicaSet, rs.metadata, "Deployment"));
                    }
                    "Job" => {
                        let job: Job = serde_json::from_value(object).map_err(bad)?;
                        owners.push((OwnerKind::Job, job.metadata, "CronJob"));
                    }
                    other => {
                        return Err(Error::Object {
                            index,
                            message: format!(
                                "kind {other:?} is not one of Pod, Namespace, ReplicaSet, Job"
                            ),
                        })
                    }
                }
            }
            store.finish_relist(Instant::now());
            store.replace_namespaces(&namespaces, &settings);
            store.take_owner_queue();
            for (kind, meta, parent_kind) in owners {
                let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref())
                else {
                    continue;
                };
                let parent = crate::worker::controller_of(&meta, parent_kind);
                store.set_owner(
                    (kind, Arc::from(ns), Arc::from(name)),
                    OwnerState::Resolved(parent.map(Arc::from)),
                );
            }
            Ok(())
        })?;
        Ok(Enricher {
            shared,
            settings: Arc::new(settings),
            status: ClusterStatus::Snapshot,
            worker: None,
            id: next_id(),
        })
    }

    /// Where the metadata comes from; [`ClusterStatus::NoCluster`] says why there is none.
    pub fn cluster(&self) -> &ClusterStatus {
        &self.status
    }

    /// Whether the first complete list of pods has arrived (always true for a snapshot).
    pub fn is_synced(&self) -> bool {
        self.shared.read().pods_synced()
    }

    /// Blocks until the first complete list of pods has arrived or `timeout` passes;
    /// returns [`Enricher::is_synced`]. Never waits without a cluster.
    pub fn wait_until_synced(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let since = self.shared.generation();
            if self.is_synced() {
                return true;
            }
            if !matches!(self.status, ClusterStatus::Watching { .. })
                || !self.shared.wait_for_change(since, deadline)
            {
                return self.is_synced();
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> EnrichStats {
        let c = &self.shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let store = self.shared.read();
        EnrichStats {
            enriched: get(&c.enriched),
            waited: get(&c.waited),
            no_path_match: get(&c.no_path_match),
            pod_unknown: get(&c.pod_unknown),
            container_not_in_pod: get(&c.container_not_in_pod),
            no_cluster: get(&c.no_cluster),
            pods: store.pod_count() as u64,
            deleted_pods: store.deleted_count() as u64,
            open_files: store.open_file_count() as u64,
            purged_drained: get(&c.purged_drained),
            purged_expired: get(&c.purged_expired),
            purged_over_cap: get(&c.purged_over_cap),
            relists: get(&c.relists),
            watch_errors: get(&c.watch_errors),
            owner_lookups: get(&c.owner_lookups),
            owner_lookup_errors: get(&c.owner_lookup_errors),
            synced: store.pods_synced(),
        }
    }

    /// Tells the enricher the tailer reads this log file. While a deleted pod has a file
    /// the tailer reads, its metadata is kept (up to `max_deleted_age`). Calling it again
    /// for the same path does nothing; paths of no known layout are ignored.
    pub fn file_opened(&self, path: &Path) {
        if let Some(path) = path.to_str() {
            self.shared.update_quietly(|s| s.file_opened(path));
        }
    }

    /// Tells the enricher the tailer is done with this log file (read to its end after the
    /// file was removed, or given up). A deleted pod with no file left is dropped
    /// `cleanup_timeout` later.
    pub fn file_closed(&self, path: &Path) {
        if let Some(path) = path.to_str() {
            let now = Instant::now();
            self.shared.update_quietly(|s| s.file_closed(path, now));
        }
    }

    /// Enriches every event of a batch from the cache, without blocking. Events whose pod
    /// the cache does not know yet, and whose wait has not run out, are left untouched
    /// and listed in the returned [`Pending`].
    pub fn enrich_batch(&self, events: &mut [Event]) -> Pending {
        self.enrich_batch_where(events, |_| true)
    }

    /// [`Enricher::enrich_batch`] for the events `select` accepts (the processor's `when`
    /// condition); the others are left as they are and not counted.
    pub fn enrich_batch_where(
        &self,
        events: &mut [Event],
        select: impl Fn(&Event) -> bool,
    ) -> Pending {
        let mut pending = Pending {
            generation: self.shared.generation(),
            ..Pending::default()
        };
        let all = 0..events.len();
        self.run(events, all, select, &mut pending, true);
        pending
    }

    /// Enriches again the events `pending` lists (after a wait): found ones get their
    /// metadata, those whose wait ran out get their path's fields, and the rest stay in
    /// `pending`.
    pub fn enrich_pending(&self, events: &mut [Event], pending: &mut Pending) {
        let indices = std::mem::take(&mut pending.indices);
        pending.deadline = None;
        pending.generation = self.shared.generation();
        self.run(events, indices, |_| true, pending, false);
    }

    /// Blocks until the cache changes or `pending`'s deadline passes; returns whether it
    /// changed. Returns at once when nothing is pending.
    pub fn wait_for_change(&self, pending: &Pending) -> bool {
        match pending.deadline {
            Some(deadline) if !pending.is_empty() => {
                self.shared.wait_for_change(pending.generation, deadline)
            }
            _ => false,
        }
    }

    /// Enriches a batch, waiting (at most `wait_for_metadata` per unknown pod) for the
    /// watch to learn pods it does not know yet. Returns once every event is done.
    pub fn enrich_batch_blocking(&self, events: &mut [Event]) {
        let mut pending = self.enrich_batch(events);
        while !pending.is_empty() {
            self.wait_for_change(&pending);
            self.enrich_pending(events, &mut pending);
        }
    }

    /// Whether `event` can be enriched now without waiting: its pod is known, or it never
    /// will be (no container log path, no cluster, or its pod's wait has run out). For a
    /// host that holds events itself (a gate in front of the processors) and then calls
    /// [`Enricher::enrich_event`] or [`Enricher::enrich_batch`]. The first call for an
    /// unknown pod starts its wait, as enriching would.
    pub fn ready(&self, event: &Event) -> bool {
        if !matches!(self.status, ClusterStatus::Watching { .. }) {
            return true;
        }
        let Some(path) = event.get_str("log.file.path") else {
            return true;
        };
        let Some(info) = match_log_path(path) else {
            return true;
        };
        let Some(pod_only) = self.settings.matcher_for(path, info.layout) else {
            return true;
        };
        let known = !matches!(
            lookup(&self.shared.read(), &self.settings, &info, pod_only),
            Lookup::Unknown
        );
        known
            || wait_key(&info)
                .and_then(|key| {
                    self.shared.wait_deadline(
                        key,
                        Instant::now(),
                        self.settings.wait_for_metadata,
                        true,
                    )
                })
                .is_none()
    }

    /// What the lines of one path get from the store now.
    fn resolve(
        &self,
        store: &Store,
        info: &LogPathInfo,
        pod_only: bool,
        cluster: bool,
        now: Instant,
        first: bool,
    ) -> RunState {
        let settings = &*self.settings;
        if !cluster {
            return RunState::Done(
                path_fields(info, pod_only).share(),
                Some(MissReason::NoCluster),
            );
        }
        match lookup(store, settings, info, pod_only) {
            Lookup::Found(pod, container) => {
                if let Some(key) = wait_key(info) {
                    self.shared.found(key);
                }
                let container = container.and_then(|c| pod.containers.get(c));
                RunState::Done(
                    render(store, settings, pod, container, info, pod_only).share(),
                    None,
                )
            }
            Lookup::NoContainer(pod) => RunState::Done(
                render(store, settings, pod, None, info, pod_only).share(),
                Some(MissReason::ContainerNotInPod),
            ),
            Lookup::Unknown => {
                let deadline = wait_key(info).and_then(|key| {
                    self.shared
                        .wait_deadline(key, now, settings.wait_for_metadata, first)
                });
                match deadline {
                    Some(deadline) => RunState::Waiting(deadline),
                    None => RunState::Done(
                        path_fields(info, pod_only).share(),
                        Some(MissReason::PodUnknown),
                    ),
                }
            }
        }
    }

    /// Enriches the metrics event of a pod, or of one of its containers, found by the
    /// fields it already has: `kubernetes.pod.uid`, or `kubernetes.namespace` and
    /// `kubernetes.pod.name` (as the kubelet's Summary API names pods), or `container.id`;
    /// and `kubernetes.container.name` for a container's event. It gets the same
    /// Kubernetes fields a log line of that pod gets (labels, annotations, node, owners,
    /// namespace metadata, container image and id). Never waits: a pod the cache does not
    /// know gets nothing and `false` is returned (counted as `pod_unknown`).
    pub fn enrich_pod_metrics(&self, event: &mut Event) -> bool {
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        let container = text("kubernetes.container.name");
        let info = LogPathInfo {
            pod: text("kubernetes.pod.name"),
            namespace: text("kubernetes.namespace"),
            container: container.clone(),
            container_id: text("container.id"),
            pod_uid: text("kubernetes.pod.uid"),
            restart_count: None,
            layout: LogPathLayout::ContainerLink,
        };
        let pod_only = container.is_none() && info.container_id.is_none();
        let store = self.shared.read();
        let c = &self.shared.counters;
        match lookup(&store, &self.settings, &info, pod_only) {
            Lookup::Found(found, index) => {
                let container = index.and_then(|i| found.containers.get(i));
                let fields = render(&store, &self.settings, found, container, &info, pod_only);
                event.merge_shared(&fields.share());
                add(&c.enriched, 1);
                true
            }
            Lookup::NoContainer(found) => {
                let fields = render(&store, &self.settings, found, None, &info, pod_only);
                event.merge_shared(&fields.share());
                add(&c.container_not_in_pod, 1);
                true
            }
            Lookup::Unknown => {
                add(&c.pod_unknown, 1);
                false
            }
        }
    }

    /// The resource limits of every pod the cache holds (not deleted), from their specs'
    /// `resources.limits`: what the kubelet's Summary API leaves out and the
    /// `limit.pct` metrics need.
    pub fn pod_limits(&self) -> Vec<PodResourceLimits> {
        let store = self.shared.read();
        store
            .live_pods()
            .map(|p| PodResourceLimits {
                uid: p.uid.to_string(),
                containers: p
                    .containers
                    .iter()
                    .map(|c| (c.name.to_string(), c.limits.0, c.limits.1))
                    .collect(),
            })
            .collect()
    }

    /// Enriches one event, waiting as [`Enricher::enrich_batch_blocking`] does. For
    /// callers that see one event at a time; batches are cheaper (one lock per batch).
    pub fn enrich_event(&self, event: &mut Event) {
        self.enrich_batch_blocking(std::slice::from_mut(event));
    }

    fn run(
        &self,
        events: &mut [Event],
        indices: impl IntoIterator<Item = usize>,
        select: impl Fn(&Event) -> bool,
        pending: &mut Pending,
        first: bool,
    ) {
        let settings = &*self.settings;
        let cluster = !matches!(self.status, ClusterStatus::NoCluster { .. });
        let mut tally = Tally::default();
        // Read before the store: a change in between only makes the memo stale sooner.
        let generation = self.shared.generation();
        with_memo(self.id, |memo| {
            let Memo {
                generation: valid_for,
                path: cache,
                file: cached_file,
                state: run_state,
            } = memo;
            if *valid_for != generation {
                *valid_for = generation;
                *run_state = None;
            }
            // A wait is decided anew at each call.
            if matches!(run_state, Some(RunState::Waiting(_))) {
                *run_state = None;
            }
            // Taken only to resolve a path: a run of lines from one file, resolved before,
            // costs no lock.
            let mut store = None;
            for i in indices {
                let Some(event) = events.get_mut(i) else {
                    continue;
                };
                if !select(event) {
                    continue;
                }
                let file = event.log_entry().map(|e| &e.file);
                let same_file = cache.is_some()
                    && file
                        .zip(cached_file.as_ref())
                        .is_some_and(|(f, c)| Arc::ptr_eq(f, c));
                if !same_file {
                    let Some(path) = event.get_str("log.file.path") else {
                        tally.miss(MissReason::NoPathMatch);
                        continue;
                    };
                    if cache.as_ref().is_none_or(|(last, _)| last != path) {
                        let info = match_log_path(path).and_then(|info| {
                            let pod_only = settings.matcher_for(path, info.layout)?;
                            Some((info, pod_only))
                        });
                        *cache = Some((path.to_owned(), info));
                        *run_state = None;
                    }
                    *cached_file = file.cloned();
                }
                let Some((_, Some((info, pod_only)))) = &*cache else {
                    tally.miss(MissReason::NoPathMatch);
                    continue;
                };
                // The store does not change during the batch, so every line of a run from one
                // file comes out the same: look up and render once per run.
                let state = run_state.get_or_insert_with(|| {
                    let store = store.get_or_insert_with(|| self.shared.read());
                    self.resolve(store, info, *pod_only, cluster, Instant::now(), first)
                });
                match state {
                    RunState::Done(fields, miss) => {
                        event.merge_shared(fields);
                        match miss {
                            None => tally.enriched += 1,
                            Some(reason) => tally.miss(*reason),
                        }
                    }
                    RunState::Waiting(deadline) => {
                        pending.indices.push(i);
                        pending.deadline =
                            Some(pending.deadline.map_or(*deadline, |d| d.min(*deadline)));
                        if first {
                            tally.waited += 1;
                        }
                    }
                }
            }
        });
        let c = &self.shared.counters;
        add(&c.enriched, tally.enriched);
        add(&c.waited, tally.waited);
        for reason in MissReason::ALL {
            let n = tally.misses[reason as usize];
            let counter = match reason {
                MissReason::NoPathMatch => &c.no_path_match,
                MissReason::PodUnknown => &c.pod_unknown,
                MissReason::ContainerNotInPod => &c.container_not_in_pod,
                MissReason::NoCluster => &c.no_cluster,
            };
            add(counter, n);
        }
    }
}

impl Drop for Enricher {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
    }
}

/// The key an unknown pod waits under: what the path identifies it by.
fn wait_key(info: &LogPathInfo) -> Option<&str> {
    info.container_id
        .as_deref()
        .or(info.pod_uid.as_deref())
        .or(info.pod.as_deref())
}

fn lookup<'s>(
    store: &'s Store,
    settings: &Settings,
    info: &LogPathInfo,
    pod_only: bool,
) -> Lookup<'s> {
    let ways = settings.lookups;
    if let (true, Some(id)) = (ways.container_id, info.container_id.as_deref()) {
        if let Some((pod, index)) = store.pod_by_container(id) {
            return Lookup::Found(pod, (!pod_only).then_some(index));
        }
    }
    let by_uid = match (ways.pod_uid, info.pod_uid.as_deref()) {
        (true, Some(uid)) => store.pod(uid),
        _ => None,
    };
    let pod = by_uid.or_else(|| match (ways.pod_name, &info.namespace, &info.pod) {
        (true, Some(ns), Some(name)) => store.pod_by_name(&format!("{ns}/{name}")),
        _ => None,
    });
    let Some(pod) = pod else {
        return Lookup::Unknown;
    };
    match (&info.container, pod_only) {
        (Some(name), false) => match pod.containers.iter().position(|c| *c.name == **name) {
            Some(index) => Lookup::Found(pod, Some(index)),
            None => Lookup::NoContainer(pod),
        },
        _ => Lookup::Found(pod, None),
    }
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn pairs(list: &[(Arc<str>, Arc<str>)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.to_string(), string(v)))
            .collect(),
    )
}

/// The fields the path carries, for events without the pod's metadata.
fn path_fields(info: &LogPathInfo, pod_only: bool) -> Fields {
    let mut k8s = Map::new();
    let mut pod = Map::new();
    if let Some(name) = &info.pod {
        pod.insert("name".into(), string(name));
    }
    if let Some(uid) = &info.pod_uid {
        pod.insert("uid".into(), string(uid));
    }
    if !pod.is_empty() {
        k8s.insert("pod".into(), Value::Object(pod));
    }
    if let Some(ns) = &info.namespace {
        k8s.insert("namespace".into(), string(ns));
    }
    if let (Some(name), false) = (&info.container, pod_only) {
        k8s.insert("container".into(), object([("name", string(name))]));
    }
    let mut container = Map::new();
    if let (Some(id), false) = (&info.container_id, pod_only) {
        container.insert("id".into(), string(id));
    }
    Fields {
        kubernetes: k8s,
        container,
    }
}

/// Adds the pod's metadata with Filebeat's field names.
fn render(
    store: &Store,
    settings: &Settings,
    pod: &PodMeta,
    container: Option<&ContainerMeta>,
    info: &LogPathInfo,
    pod_only: bool,
) -> Fields {
    let mut k8s = Map::new();
    k8s.insert(
        "pod".into(),
        object([("name", string(&pod.name)), ("uid", string(&pod.uid))]),
    );
    k8s.insert("namespace".into(), string(&pod.namespace));
    if let Some(ns) = store.namespace(&pod.namespace) {
        if let Some(uid) = &ns.uid {
            k8s.insert("namespace_uid".into(), string(uid));
        }
        if !ns.labels.is_empty() {
            k8s.insert("namespace_labels".into(), pairs(&ns.labels));
        }
        if !ns.annotations.is_empty() {
            k8s.insert("namespace_annotations".into(), pairs(&ns.annotations));
        }
    }
    if let Some(node) = &pod.node {
        k8s.insert("node".into(), object([("name", string(node))]));
    }
    if !pod.labels.is_empty() {
        k8s.insert("labels".into(), pairs(&pod.labels));
    }
    if !pod.annotations.is_empty() {
        k8s.insert("annotations".into(), pairs(&pod.annotations));
    }
    if let Some((kind, name)) = &pod.owner {
        let named = |n: &str| object([("name", string(n))]);
        let parent = || store.owner_of(&(*kind, Arc::clone(&pod.namespace), Arc::clone(name)));
        match kind {
            OwnerKind::ReplicaSet => {
                k8s.insert("replicaset".into(), named(name));
                if let (true, Some(d)) = (settings.resolve_deployment, parent()) {
                    k8s.insert("deployment".into(), named(d));
                }
            }
            OwnerKind::StatefulSet => {
                k8s.insert("statefulset".into(), named(name));
            }
            OwnerKind::DaemonSet => {
                k8s.insert("daemonset".into(), named(name));
            }
            OwnerKind::Job => {
                k8s.insert("job".into(), named(name));
                if let (true, Some(c)) = (settings.resolve_cronjob, parent()) {
                    k8s.insert("cronjob".into(), named(c));
                }
            }
        }
    }
    let container_name = container
        .map(|c| &*c.name)
        .or(info.container.as_deref())
        .filter(|_| !pod_only);
    if let Some(name) = container_name {
        let mut c = Map::new();
        c.insert("name".into(), string(name));
        if let Some(image) = container.and_then(|c| c.image.as_deref()) {
            c.insert("image".into(), string(image));
        }
        k8s.insert("container".into(), Value::Object(c));
    }
    let mut fields = Map::new();
    if pod_only {
        return Fields {
            kubernetes: k8s,
            container: fields,
        };
    }
    // The path's id is the container that wrote the line; after a restart the pod's
    // current id is another one.
    let id = info
        .container_id
        .as_deref()
        .or(container.and_then(|c| c.id.as_deref()));
    if let Some(id) = id {
        fields.insert("id".into(), string(id));
    }
    if let Some(runtime) = container.and_then(|c| c.runtime.as_deref()) {
        fields.insert("runtime".into(), string(runtime));
    }
    Fields {
        kubernetes: k8s,
        container: fields,
    }
}

/// Resource limits of a pod's containers (see [`Enricher::pod_limits`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PodResourceLimits {
    /// The pod's uid.
    pub uid: String,
    /// (container name, CPU limit in cores, memory limit in bytes), `None` where the
    /// container sets no limit.
    pub containers: Vec<(String, Option<f64>, Option<u64>)>,
}
