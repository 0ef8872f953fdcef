//! The pod metadata cache: what enrichment needs of each pod, namespace and owner, and
//! nothing else.
//!
//! The store is plain synchronous data. The watch tasks turn API objects into the lean
//! records below and apply them under a write lock; enrichment reads them under a read
//! lock taken once per batch. Repeated strings (label keys and values, namespaces, node
//! names, images) are interned, so ten replicas of a deployment share one copy of their
//! labels' text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::settings::{Pattern, Settings};

/// Interned strings: one `Arc<str>` per distinct text. [`Interner::collect`] frees the
/// strings nothing else holds any more.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: FxHashSet<Arc<str>>,
    /// How many strings the last collection left.
    kept: usize,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.set.get(s) {
            return Arc::clone(found);
        }
        let new: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&new));
        new
    }

    /// Drops the strings only the interner holds; returns how many.
    pub(crate) fn collect(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|s| Arc::strong_count(s) > 1);
        self.kept = self.set.len();
        before - self.set.len()
    }

    /// Collects once the set has doubled since the last collection (pods that change
    /// labels or images leave strings behind without any pod being removed).
    pub(crate) fn collect_if_grown(&mut self) -> usize {
        if self.set.len() > 2 * self.kept.max(1024) {
            self.collect()
        } else {
            0
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

/// Kinds of controller a pod can name as its owner, and those of their owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OwnerKind {
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
}

impl OwnerKind {
    fn from_kind(kind: &str) -> Option<OwnerKind> {
        Some(match kind {
            "ReplicaSet" => OwnerKind::ReplicaSet,
            "StatefulSet" => OwnerKind::StatefulSet,
            "DaemonSet" => OwnerKind::DaemonSet,
            "Job" => OwnerKind::Job,
            _ => return None,
        })
    }
}

/// A ReplicaSet or Job whose own owner (Deployment, CronJob) is looked up once.
pub(crate) type OwnerKey = (OwnerKind, Arc<str>, Arc<str>);

/// What is known of a ReplicaSet's or Job's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OwnerState {
    /// Asked for, no answer yet.
    Pending,
    /// The Deployment (for a ReplicaSet) or CronJob (for a Job), or `None` when it has none.
    Resolved(Option<Arc<str>>),
    /// The last lookup failed; retried from `retry_at`.
    Failed { attempts: u32, retry_at: Instant },
    /// Asked for again after `attempts` failures.
    Retrying { attempts: u32 },
}

/// One container of a pod: regular, init or ephemeral.
#[derive(Debug)]
pub(crate) struct ContainerMeta {
    pub(crate) name: Arc<str>,
    pub(crate) image: Option<Arc<str>>,
    /// The current container id (without the runtime prefix), once the kubelet reports it.
    pub(crate) id: Option<Arc<str>>,
    /// `containerd`, `docker`, `cri-o`: the scheme of the reported container id.
    pub(crate) runtime: Option<Arc<str>>,
    /// `resources.limits`: CPU in cores and memory in bytes (none for ephemeral containers).
    pub(crate) limits: (Option<f64>, Option<u64>),
}

/// What enrichment needs of one pod.
#[derive(Debug)]
pub(crate) struct PodMeta {
    pub(crate) uid: Arc<str>,
    pub(crate) name: Box<str>,
    pub(crate) namespace: Arc<str>,
    pub(crate) node: Option<Arc<str>>,
    /// Filtered and, when configured, dedotted at insertion.
    pub(crate) labels: Box<[(Arc<str>, Arc<str>)]>,
    /// Only the included annotations, dedotted when configured.
    pub(crate) annotations: Box<[(Arc<str>, Arc<str>)]>,
    pub(crate) owner: Option<(OwnerKind, Arc<str>)>,
    /// Regular containers, then init containers, then ephemeral ones: the first two never
    /// change for a pod and ephemeral containers are only appended, so an index is stable.
    pub(crate) containers: Box<[ContainerMeta]>,
    /// Every container id this pod has had (restarts change it), oldest first, at most
    /// [`MAX_IDS_PER_POD`]: lines of a previous container instance still find the pod.
    ids: Vec<Arc<str>>,
    /// When the API server reported the pod deleted.
    pub(crate) deleted_at: Option<Instant>,
    /// When the last tracked file of the deleted pod was closed.
    files_closed_at: Option<Instant>,
}

/// Container ids remembered per pod (a crash-looping container gets a new id each time).
const MAX_IDS_PER_POD: usize = 32;

/// What enrichment needs of one namespace.
#[derive(Debug)]
pub(crate) struct NamespaceMeta {
    pub(crate) uid: Option<Box<str>>,
    pub(crate) labels: Box<[(Arc<str>, Arc<str>)]>,
    pub(crate) annotations: Box<[(Arc<str>, Arc<str>)]>,
}

/// Which files of which pods the tailer still reads (see [`Store::file_opened`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FileKey {
    ContainerId(Box<str>),
    PodUid(Box<str>),
    /// `namespace/name`.
    PodName(Box<str>),
}

/// How many pods a sweep removed, and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sweep {
    /// Deleted, no file of theirs open, and `cleanup_timeout` passed.
    pub(crate) drained: u64,
    /// Deleted longer ago than `max_deleted_age`, files open or not.
    pub(crate) expired: u64,
    /// Removed, oldest deletion first, to keep at most `max_deleted_pods`.
    pub(crate) over_cap: u64,
}

/// The cache. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pods: FxHashMap<Arc<str>, PodMeta>,
    /// `namespace/name` to the uid of the newest pod of that name.
    by_name: FxHashMap<Box<str>, Arc<str>>,
    /// Container id to the pod uid and the container's index in it.
    by_container: FxHashMap<Arc<str>, (Arc<str>, u16)>,
    namespaces: FxHashMap<Arc<str>, NamespaceMeta>,
    owners: FxHashMap<OwnerKey, OwnerState>,
    /// ReplicaSets and Jobs to look up, drained by the watch side.
    owner_queue: Vec<OwnerKey>,
    /// Files the tailer reads, by path, and how many per key.
    open_files: FxHashMap<Box<str>, FileKey>,
    open_counts: FxHashMap<FileKey, u32>,
    strings: Interner,
    /// A relist in progress: the uids listed so far.
    relist: Option<FxHashSet<Arc<str>>>,
    /// The first complete pod list has arrived.
    pods_synced: bool,
    deleted: usize,
}

impl Store {
    /// Whether the first complete list of pods has been applied.
    pub(crate) fn pods_synced(&self) -> bool {
        self.pods_synced
    }

    /// Pods cached, deleted ones included.
    pub(crate) fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Deleted pods still kept.
    pub(crate) fn deleted_count(&self) -> usize {
        self.deleted
    }

    pub(crate) fn live_pods(&self) -> impl Iterator<Item = &PodMeta> + '_ {
        self.pods.values().filter(|p| p.deleted_at.is_none())
    }

    pub(crate) fn pod(&self, uid: &str) -> Option<&PodMeta> {
        self.pods.get(uid)
    }

    pub(crate) fn pod_by_name(&self, namespace_name: &str) -> Option<&PodMeta> {
        self.by_name
            .get(namespace_name)
            .and_then(|uid| self.pods.get(uid))
    }

    /// The pod and container index a container id belongs to.
    pub(crate) fn pod_by_container(&self, id: &str) -> Option<(&PodMeta, usize)> {
        let (uid, index) = self.by_container.get(id)?;
        Some((self.pods.get(uid)?, usize::from(*index)))
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<&NamespaceMeta> {
        self.namespaces.get(name)
    }

    /// The Deployment or CronJob above a ReplicaSet or Job, when known.
    pub(crate) fn owner_of(&self, key: &OwnerKey) -> Option<&Arc<str>> {
        match self.owners.get(key) {
            Some(OwnerState::Resolved(parent)) => parent.as_ref(),
            _ => None,
        }
    }

    /// Starts a relist: pods applied until [`Store::finish_relist`] make up the new list.
    pub(crate) fn start_relist(&mut self) {
        self.relist = Some(FxHashSet::default());
    }

    /// Ends a relist: live pods that were not listed are marked deleted (at `now`), so
    /// their files still drain with their metadata.
    pub(crate) fn finish_relist(&mut self, now: Instant) {
        let Some(listed) = self.relist.take() else {
            return;
        };
        let gone: Vec<Arc<str>> = self
            .pods
            .iter()
            .filter(|(uid, p)| p.deleted_at.is_none() && !listed.contains(*uid))
            .map(|(uid, _)| Arc::clone(uid))
            .collect();
        for uid in gone {
            self.mark_deleted(&uid, now);
        }
        self.pods_synced = true;
    }

    /// Adds or replaces a pod. Returns `false` (and changes nothing) for a pod without a
    /// uid, name or namespace, which the API server never sends.
    pub(crate) fn apply_pod(&mut self, pod: &Pod, settings: &Settings) -> bool {
        let meta = &pod.metadata;
        let (Some(uid), Some(name), Some(namespace)) = (
            meta.uid.as_deref(),
            meta.name.as_deref(),
            meta.namespace.as_deref(),
        ) else {
            return false;
        };
        let uid = self
            .pods
            .get_key_value(uid)
            .map(|(k, _)| Arc::clone(k))
            .unwrap_or_else(|| Arc::from(uid));
        if let Some(listed) = &mut self.relist {
            listed.insert(Arc::clone(&uid));
        }
        let namespace = self.strings.intern(namespace);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .map(|n| self.strings.intern(n));
        let labels = filtered(
            &mut self.strings,
            meta.labels.as_ref(),
            |k| settings.keeps_label(k),
            settings.labels_dedot,
        );
        let annotations = filtered(
            &mut self.strings,
            meta.annotations.as_ref(),
            |k| Pattern::any_matches(&settings.include_annotations, k),
            settings.annotations_dedot,
        );
        let owner = controller(meta.owner_references.as_deref())
            .and_then(|o| Some((OwnerKind::from_kind(&o.kind)?, self.strings.intern(&o.name))));
        let containers = self.containers(pod);

        if let Some((kind @ (OwnerKind::ReplicaSet | OwnerKind::Job), owner_name)) = &owner {
            let wanted = match kind {
                OwnerKind::ReplicaSet => settings.resolve_deployment,
                _ => settings.resolve_cronjob,
            };
            let key = (*kind, Arc::clone(&namespace), Arc::clone(owner_name));
            if wanted && !self.owners.contains_key(&key) {
                self.owners.insert(key.clone(), OwnerState::Pending);
                self.owner_queue.push(key);
            }
        }

        let previous = self.pods.remove(&uid);
        let mut ids = Vec::new();
        let mut was_deleted = None;
        if let Some(previous) = previous {
            ids = previous.ids;
            was_deleted = previous.deleted_at.map(|d| (d, previous.files_closed_at));
        }
        for (index, c) in containers.iter().enumerate() {
            let (Some(id), Ok(index)) = (&c.id, u16::try_from(index)) else {
                continue;
            };
            if !ids.iter().any(|known| known == id) {
                if ids.len() == MAX_IDS_PER_POD {
                    let oldest = ids.remove(0);
                    if self
                        .by_container
                        .get(&oldest)
                        .is_some_and(|(u, _)| *u == uid)
                    {
                        self.by_container.remove(&oldest);
                    }
                }
                ids.push(Arc::clone(id));
            }
            self.by_container
                .insert(Arc::clone(id), (Arc::clone(&uid), index));
        }
        // Uids are never reused: a deleted pod stays deleted whatever a later event says.
        let deleted_at = was_deleted.map(|(at, _)| at);
        let files_closed_at = was_deleted.and_then(|(_, closed)| closed);
        let key = format!("{namespace}/{name}");
        let newest = match self.by_name.get(key.as_str()) {
            Some(other) => self.pods.get(other).is_none_or(|p| p.deleted_at.is_some()),
            None => true,
        };
        if deleted_at.is_none() && newest {
            self.by_name.insert(key.into_boxed_str(), Arc::clone(&uid));
        }
        self.pods.insert(
            Arc::clone(&uid),
            PodMeta {
                uid,
                name: Box::from(name),
                namespace,
                node,
                labels,
                annotations,
                owner,
                containers,
                ids,
                deleted_at,
                files_closed_at,
            },
        );
        true
    }

    fn containers(&mut self, pod: &Pod) -> Box<[ContainerMeta]> {
        let mut out = Vec::new();
        if let Some(spec) = &pod.spec {
            let regular = spec.containers.iter();
            let init = spec.init_containers.iter().flatten();
            for c in regular.chain(init) {
                let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
                let limit = |name: &str| limits.and_then(|l| l.get(name)).map(|q| q.0.as_str());
                out.push(ContainerMeta {
                    name: self.strings.intern(&c.name),
                    image: c.image.as_deref().map(|i| self.strings.intern(i)),
                    id: None,
                    runtime: None,
                    limits: (
                        limit("cpu").and_then(crate::quantity::cpu_cores),
                        limit("memory").and_then(crate::quantity::bytes),
                    ),
                });
            }
            for c in spec.ephemeral_containers.iter().flatten() {
                out.push(ContainerMeta {
                    name: self.strings.intern(&c.name),
                    image: c.image.as_deref().map(|i| self.strings.intern(i)),
                    id: None,
                    runtime: None,
                    limits: (None, None),
                });
            }
        }
        if let Some(status) = &pod.status {
            let statuses = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten())
                .chain(status.ephemeral_container_statuses.iter().flatten());
            for s in statuses {
                let Some((runtime, id)) = s.container_id.as_deref().and_then(split_container_id)
                else {
                    continue;
                };
                if let Some(c) = out.iter_mut().find(|c| *c.name == *s.name) {
                    c.runtime = Some(self.strings.intern(runtime));
                    c.id = Some(Arc::from(id));
                }
            }
        }
        out.into_boxed_slice()
    }

    /// Marks a pod deleted (the API server deleted it); it stays until [`Store::sweep`]
    /// finds it drained or too old.
    pub(crate) fn delete_pod(&mut self, pod: &Pod, settings: &Settings, now: Instant) {
        // The last state may carry container ids the cache has not seen yet.
        if self.apply_pod(pod, settings) {
            if let Some(uid) = pod.metadata.uid.as_deref() {
                let uid: Arc<str> = Arc::from(uid);
                self.mark_deleted(&uid, now);
            }
        }
    }

    fn mark_deleted(&mut self, uid: &Arc<str>, now: Instant) {
        let Some(pod) = self.pods.get_mut(uid) else {
            return;
        };
        if pod.deleted_at.is_none() {
            pod.deleted_at = Some(now);
            self.deleted += 1;
        }
    }

    /// Adds or replaces a namespace.
    pub(crate) fn apply_namespace(&mut self, ns: &Namespace, settings: &Settings) {
        let Some(name) = ns.metadata.name.as_deref() else {
            return;
        };
        let name = self.strings.intern(name);
        let labels = filtered(
            &mut self.strings,
            ns.metadata.labels.as_ref(),
            |k| settings.keeps_namespace_label(k),
            settings.labels_dedot,
        );
        let annotations = filtered(
            &mut self.strings,
            ns.metadata.annotations.as_ref(),
            |k| Pattern::any_matches(&settings.namespace_annotations, k),
            settings.annotations_dedot,
        );
        self.namespaces.insert(
            name,
            NamespaceMeta {
                uid: ns.metadata.uid.as_deref().map(Box::from),
                labels,
                annotations,
            },
        );
    }

    /// Forgets a namespace. Its pods are deleted with it, and their lines are rare enough
    /// by then that they go without namespace labels.
    pub(crate) fn delete_namespace(&mut self, ns: &Namespace) {
        if let Some(name) = ns.metadata.name.as_deref() {
            self.namespaces.remove(name);
        }
    }

    /// Replaces all namespaces (after a complete list).
    pub(crate) fn replace_namespaces(&mut self, list: &[Namespace], settings: &Settings) {
        self.namespaces.clear();
        for ns in list {
            self.apply_namespace(ns, settings);
        }
    }

    /// The ReplicaSets and Jobs to look up since the last call.
    pub(crate) fn take_owner_queue(&mut self) -> Vec<OwnerKey> {
        std::mem::take(&mut self.owner_queue)
    }

    /// Records the answer of an owner lookup.
    pub(crate) fn set_owner(&mut self, key: OwnerKey, state: OwnerState) {
        // A key no pod refers to any more was removed by a sweep: do not bring it back.
        if let Some(slot) = self.owners.get_mut(&key) {
            *slot = state;
        }
    }

    /// Owner lookups that failed and are due again at `now`; they become pending.
    pub(crate) fn owners_to_retry(&mut self, now: Instant) -> Vec<OwnerKey> {
        let mut due = Vec::new();
        for (key, state) in &mut self.owners {
            if matches!(state, OwnerState::Failed { retry_at, .. } if *retry_at <= now) {
                due.push(key.clone());
            }
        }
        for key in &due {
            if let Some(state) = self.owners.get_mut(key) {
                if let OwnerState::Failed { attempts, .. } = *state {
                    *state = OwnerState::Retrying { attempts };
                }
            }
        }
        due
    }

    /// How many times the lookup of `key` failed so far.
    pub(crate) fn owner_attempts(&self, key: &OwnerKey) -> u32 {
        match self.owners.get(key) {
            Some(OwnerState::Failed { attempts, .. } | OwnerState::Retrying { attempts }) => {
                *attempts
            }
            _ => 0,
        }
    }

    /// Starts tracking a file the tailer reads; a deleted pod with a tracked file is kept
    /// (up to `max_deleted_age`). Returns whether the path is a container log path.
    pub(crate) fn file_opened(&mut self, path: &str) -> bool {
        if self.open_files.contains_key(path) {
            return true;
        }
        let Some(key) = file_key(path) else {
            return false;
        };
        *self.open_counts.entry(key.clone()).or_insert(0) += 1;
        self.open_files.insert(Box::from(path), key);
        true
    }

    /// Stops tracking a file: the tailer has read it to its end and will not read it again.
    pub(crate) fn file_closed(&mut self, path: &str, now: Instant) {
        let Some(key) = self.open_files.remove(path) else {
            return;
        };
        if let Some(count) = self.open_counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.open_counts.remove(&key);
            }
        }
        let uid = match &key {
            FileKey::ContainerId(id) => self.by_container.get(&**id).map(|(u, _)| Arc::clone(u)),
            FileKey::PodUid(uid) => self.pods.get_key_value(&**uid).map(|(u, _)| Arc::clone(u)),
            FileKey::PodName(name) => self.by_name.get(name).cloned(),
        };
        if let Some(pod) = uid.and_then(|u| self.pods.get_mut(&u)) {
            if pod.deleted_at.is_some() {
                pod.files_closed_at = Some(now);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn interned(&self) -> usize {
        self.strings.len()
    }

    /// Files tracked now.
    pub(crate) fn open_file_count(&self) -> usize {
        self.open_files.len()
    }

    fn has_open_files(&self, pod: &PodMeta) -> bool {
        if self.open_counts.is_empty() {
            return false;
        }
        let by_uid = FileKey::PodUid(Box::from(&*pod.uid));
        let by_name = FileKey::PodName(format!("{}/{}", pod.namespace, pod.name).into());
        self.open_counts.contains_key(&by_uid)
            || self.open_counts.contains_key(&by_name)
            || pod.ids.iter().any(|id| {
                self.open_counts
                    .contains_key(&FileKey::ContainerId(Box::from(&**id)))
            })
    }

    /// Removes deleted pods that are drained (no tracked file open and `cleanup_timeout`
    /// passed since the deletion or the last file closed), older than `max_deleted_age`,
    /// or over `max_deleted_pods` (oldest first). Also forgets owners no pod refers to and
    /// frees unused interned strings.
    pub(crate) fn sweep(&mut self, now: Instant, settings: &Settings) -> Sweep {
        let mut report = Sweep::default();
        let mut doomed: Vec<(Arc<str>, bool)> = Vec::new();
        let mut survivors: Vec<(Instant, Arc<str>)> = Vec::new();
        for pod in self.pods.values() {
            let Some(deleted_at) = pod.deleted_at else {
                continue;
            };
            let age = now.saturating_duration_since(deleted_at);
            if age >= settings.max_deleted_age {
                doomed.push((Arc::clone(&pod.uid), false));
                continue;
            }
            let quiet_since = pod
                .files_closed_at
                .map_or(deleted_at, |c| c.max(deleted_at));
            if !self.has_open_files(pod)
                && now.saturating_duration_since(quiet_since) >= settings.cleanup_timeout
            {
                doomed.push((Arc::clone(&pod.uid), true));
            } else {
                survivors.push((deleted_at, Arc::clone(&pod.uid)));
            }
        }
        for (uid, drained) in doomed {
            if drained {
                report.drained += 1;
            } else {
                report.expired += 1;
            }
            self.purge(&uid);
        }
        if survivors.len() > settings.max_deleted_pods {
            survivors.sort_unstable();
            let excess = survivors.len() - settings.max_deleted_pods;
            for (_, uid) in survivors.into_iter().take(excess) {
                report.over_cap += 1;
                self.purge(&uid);
            }
        }
        if report != Sweep::default() {
            self.forget_unused_owners();
            self.strings.collect();
        } else {
            self.strings.collect_if_grown();
        }
        report
    }

    fn purge(&mut self, uid: &Arc<str>) {
        let Some(pod) = self.pods.remove(uid) else {
            return;
        };
        if pod.deleted_at.is_some() {
            self.deleted -= 1;
        }
        let key = format!("{}/{}", pod.namespace, pod.name);
        if self.by_name.get(key.as_str()) == Some(uid) {
            self.by_name.remove(key.as_str());
        }
        for id in &pod.ids {
            if self.by_container.get(id).is_some_and(|(u, _)| u == uid) {
                self.by_container.remove(id);
            }
        }
    }

    fn forget_unused_owners(&mut self) {
        let used: FxHashSet<OwnerKey> = self
            .pods
            .values()
            .filter_map(|p| {
                let (kind, name) = p.owner.as_ref()?;
                Some((*kind, Arc::clone(&p.namespace), Arc::clone(name)))
            })
            .collect();
        self.owners.retain(|key, _| used.contains(key));
        self.owner_queue.retain(|key| used.contains(key));
    }
}

/// The owner reference marked as the controller, or the only one.
fn controller(refs: Option<&[OwnerReference]>) -> Option<&OwnerReference> {
    let refs = refs?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or(match refs {
            [only] => Some(only),
            _ => None,
        })
}

/// Keeps the entries whose key `keep` accepts, interned, keys dedotted when asked.
fn filtered(
    strings: &mut Interner,
    map: Option<&BTreeMap<String, String>>,
    keep: impl Fn(&str) -> bool,
    dedot: bool,
) -> Box<[(Arc<str>, Arc<str>)]> {
    let Some(map) = map else {
        return Box::default();
    };
    map.iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| {
            let key = if dedot && k.contains('.') {
                strings.intern(&k.replace('.', "_"))
            } else {
                strings.intern(k)
            };
            (key, strings.intern(v))
        })
        .collect()
}

/// `containerd://<id>` → (`containerd`, `<id>`).
pub(crate) fn split_container_id(s: &str) -> Option<(&str, &str)> {
    let (runtime, id) = s.split_once("://")?;
    (!runtime.is_empty() && !id.is_empty()).then_some((runtime, id))
}

/// The key a log file's path is tracked under, if it is a container log path.
fn file_key(path: &str) -> Option<FileKey> {
    let info = crate::match_log_path(path)?;
    if let Some(id) = info.container_id {
        return Some(FileKey::ContainerId(id.into_boxed_str()));
    }
    if let Some(uid) = info.pod_uid {
        return Some(FileKey::PodUid(uid.into_boxed_str()));
    }
    match (info.namespace, info.pod) {
        (Some(ns), Some(pod)) => Some(FileKey::PodName(format!("{ns}/{pod}").into())),
        _ => None,
    }
}

/// The default `cleanup_timeout`: how long a deleted pod with no open file is kept.
pub(crate) const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);
