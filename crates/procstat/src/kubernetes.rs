//! The pod, container and volume metricsets: the kubelet Summary API, with cgroup v2
//! files as the fallback when the kubelet cannot be reached.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use logtide_event::{Event, Timestamp};

use crate::cgroup::{scan_kubepods, CgroupPod, CgroupStats};
use crate::fields::{counter_delta, put, ratio, Common, SampleTime};
use crate::kubelet::{KubeletClient, KubeletOptions};
use crate::node::HostFs;
use crate::summary::{parse_summary, summary_events, Sets};
use crate::{Collection, Collector, Error, Result};

/// A Kubernetes metricset, named as in Metricbeat's kubernetes module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesMetricset {
    /// One event per pod (`kubernetes.pod.*`).
    Pod,
    /// One event per container (`kubernetes.container.*`).
    Container,
    /// One event per pod volume (`kubernetes.volume.*`).
    Volume,
}

/// Options of the Kubernetes collector.
#[derive(Clone, Debug, PartialEq)]
pub struct KubernetesOptions {
    /// The metricsets to build.
    pub metricsets: Vec<KubernetesMetricset>,
    /// How to reach the kubelet.
    pub kubelet: KubeletOptions,
    /// Root of the host's `/proc` and `/sys` (node capacity, cgroup v2 files).
    pub hostfs: PathBuf,
    /// `host.name` of the events.
    pub host_name: String,
    /// The collection period (`metricset.period`).
    pub period: Duration,
    /// Whether to read cgroup v2 files when the kubelet cannot be reached.
    pub cgroup_fallback: bool,
}

/// Which source the last collection used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The kubelet Summary API.
    Kubelet,
    /// cgroup v2 files.
    Cgroup,
}

/// Resource limits of a pod and its containers. `None` means unlimited: the percentage of
/// the limit is then the percentage of the node, as Metricbeat reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodLimits {
    /// CPU limit of the pod in cores (the sum of its containers' when all have one).
    pub cpu_cores: Option<f64>,
    /// Memory limit of the pod in bytes.
    pub memory_bytes: Option<u64>,
    /// Container name → (CPU cores, memory bytes). A container not listed has unknown
    /// limits, and its events carry no `limit.pct`.
    pub containers: BTreeMap<String, (Option<f64>, Option<u64>)>,
}

/// Limits known for pods, by pod UID, from outside this crate (for example a pod
/// metadata cache). They take precedence over the pod-level limits read from cgroups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pods: HashMap<String, PodLimits>,
}

impl Limits {
    /// Sets the limits of a pod.
    pub fn insert(&mut self, uid: impl Into<String>, limits: PodLimits) {
        self.pods.insert(uid.into(), limits);
    }

    /// Forgets a pod.
    pub fn remove(&mut self, uid: &str) {
        self.pods.remove(uid);
    }

    /// The limits of a pod.
    pub fn get(&self, uid: &str) -> Option<&PodLimits> {
        self.pods.get(uid)
    }
}

/// Limits from both sources.
pub(crate) struct LimitsView<'a> {
    pub external: &'a Limits,
    pub cgroup: &'a HashMap<String, PodLimits>,
}

impl LimitsView<'_> {
    pub(crate) fn pod(&self, uid: &str) -> Option<&PodLimits> {
        self.external.get(uid).or_else(|| self.cgroup.get(uid))
    }
}

/// The node's size, for `node.pct` and for the limit percentages of unlimited pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Capacity {
    pub cores: f64,
    pub memory: u64,
}

/// CPU and memory use of a pod or container.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Usage {
    pub nanocores: Option<f64>,
    pub core_ns: Option<u64>,
    pub memory_usage: Option<u64>,
    pub working_set: Option<u64>,
    pub rss: Option<u64>,
    pub available: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// Writes the cpu and memory fields of a pod (`pod`: Metricbeat's pod names,
/// `working_set`, `page_faults`) or container (`workingset`, `pagefaults`). `limit` is
/// `None` when the limits are unknown (no `limit.pct`).
pub(crate) fn put_usage(
    e: &mut Event,
    prefix: &str,
    pod: bool,
    u: &Usage,
    capacity: Option<Capacity>,
    limit: Option<(Option<f64>, Option<u64>)>,
) {
    if let Some(nc) = u.nanocores {
        let cores = nc / 1e9;
        put(
            e,
            &format!("{prefix}.cpu.usage.nanocores"),
            nc.round() as u64,
        );
        if let Some(cap) = capacity {
            put(
                e,
                &format!("{prefix}.cpu.usage.node.pct"),
                ratio(cores, cap.cores),
            );
        }
        let cpu_limit = match limit {
            Some((Some(l), _)) => Some(l),
            Some((None, _)) => capacity.map(|c| c.cores),
            None => None,
        };
        if let Some(l) = cpu_limit {
            put(e, &format!("{prefix}.cpu.usage.limit.pct"), ratio(cores, l));
        }
    }
    if !pod {
        if let Some(ns) = u.core_ns {
            put(e, &format!("{prefix}.cpu.usage.core.ns"), ns);
        }
    }
    let mem_limit = match limit {
        Some((_, Some(l))) => Some(l as f64),
        Some((_, None)) => capacity.map(|c| c.memory as f64),
        None => None,
    };
    if let Some(usage) = u.memory_usage {
        put(e, &format!("{prefix}.memory.usage.bytes"), usage);
        if let Some(cap) = capacity {
            put(
                e,
                &format!("{prefix}.memory.usage.node.pct"),
                ratio(usage as f64, cap.memory as f64),
            );
        }
        if let Some(l) = mem_limit {
            put(
                e,
                &format!("{prefix}.memory.usage.limit.pct"),
                ratio(usage as f64, l),
            );
        }
    }
    let ws = if pod { "working_set" } else { "workingset" };
    if let Some(w) = u.working_set {
        put(e, &format!("{prefix}.memory.{ws}.bytes"), w);
        if let Some(l) = mem_limit {
            put(
                e,
                &format!("{prefix}.memory.{ws}.limit.pct"),
                ratio(w as f64, l),
            );
        }
    }
    if let Some(v) = u.rss {
        put(e, &format!("{prefix}.memory.rss.bytes"), v);
    }
    if let Some(v) = u.available {
        put(e, &format!("{prefix}.memory.available.bytes"), v);
    }
    let (pf, mpf) = if pod {
        ("page_faults", "major_page_faults")
    } else {
        ("pagefaults", "majorpagefaults")
    };
    if let Some(v) = u.page_faults {
        put(e, &format!("{prefix}.memory.{pf}"), v);
    }
    if let Some(v) = u.major_page_faults {
        put(e, &format!("{prefix}.memory.{mpf}"), v);
    }
}

/// Previous CPU times of the cgroup fallback, by `pod:<uid>` / `container:<id>`.
type CpuTimes = HashMap<String, u64>;

fn cgroup_usage(
    key: &str,
    s: &CgroupStats,
    prev: Option<(f64, &CpuTimes)>,
    resets: &mut u64,
) -> Usage {
    let nanocores = prev.and_then(|(secs, times)| {
        let before = *times.get(key)?;
        match counter_delta(before, s.cpu_usage_ns) {
            Some(d) => Some(d as f64 / secs),
            None => {
                *resets += 1;
                None
            }
        }
    });
    let working_set = s.working_set();
    Usage {
        nanocores,
        core_ns: Some(s.cpu_usage_ns),
        memory_usage: Some(s.memory_current),
        working_set: Some(working_set),
        rss: Some(s.anon),
        available: s.memory_limit.map(|l| l.saturating_sub(working_set)),
        page_faults: Some(s.pgfault),
        major_page_faults: Some(s.pgmajfault),
    }
}

/// Pod and container events from cgroup files. They carry pod UIDs and container IDs
/// only: names, namespaces, network and volumes are not in cgroups.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cgroup_events(
    common: &Common,
    at: Timestamp,
    address: &str,
    pods: &[CgroupPod],
    sets: Sets,
    capacity: Option<Capacity>,
    prev: Option<(f64, &CpuTimes)>,
    out: &mut Vec<Event>,
) -> u64 {
    let mut resets = 0;
    let base = |set: &str, uid: &str| {
        let mut e = common.event(at, "kubernetes", set);
        put(&mut e, "service.address", address);
        put(&mut e, "kubernetes.node.name", common.host_name.as_str());
        put(&mut e, "kubernetes.pod.uid", uid);
        e
    };
    for pod in pods {
        if sets.pod {
            let mut e = base("pod", &pod.uid);
            let u = cgroup_usage(&format!("pod:{}", pod.uid), &pod.stats, prev, &mut resets);
            let limit = Some((pod.stats.cpu_limit, pod.stats.memory_limit));
            put_usage(&mut e, "kubernetes.pod", true, &u, capacity, limit);
            out.push(e);
        }
        if sets.container {
            for c in &pod.containers {
                let mut e = base("container", &pod.uid);
                put(&mut e, "kubernetes.container.id", c.id.as_str());
                put(&mut e, "container.id", c.id.as_str());
                let u = cgroup_usage(&format!("container:{}", c.id), &c.stats, prev, &mut resets);
                let limit = Some((c.stats.cpu_limit, c.stats.memory_limit));
                put_usage(&mut e, "kubernetes.container", false, &u, capacity, limit);
                out.push(e);
            }
        }
    }
    resets
}

fn cpu_times(pods: &[CgroupPod]) -> CpuTimes {
    let mut times = HashMap::new();
    for p in pods {
        times.insert(format!("pod:{}", p.uid), p.stats.cpu_usage_ns);
        for c in &p.containers {
            times.insert(format!("container:{}", c.id), c.stats.cpu_usage_ns);
        }
    }
    times
}

/// Collects the pod, container and volume metricsets.
#[derive(Debug)]
pub struct KubernetesCollector {
    client: KubeletClient,
    host: HostFs,
    common: Common,
    period: Duration,
    sets: Sets,
    fallback: bool,
    limits: Limits,
    cgroup_limits: HashMap<String, PodLimits>,
    prev_cgroup: Option<(Duration, CpuTimes)>,
    last_source: Option<Source>,
}

impl KubernetesCollector {
    /// A collector; fails when the kubelet options are invalid (a bad URL, unreadable CA
    /// files).
    pub fn new(options: &KubernetesOptions) -> Result<Self> {
        let has = |m| options.metricsets.contains(&m);
        Ok(KubernetesCollector {
            client: KubeletClient::new(&options.kubelet)?,
            host: HostFs::new(&options.hostfs),
            common: Common {
                host_name: options.host_name.clone(),
                period_ms: options.period.as_millis() as u64,
            },
            period: options.period,
            sets: Sets {
                pod: has(KubernetesMetricset::Pod),
                container: has(KubernetesMetricset::Container),
                volume: has(KubernetesMetricset::Volume),
            },
            fallback: options.cgroup_fallback,
            limits: Limits::default(),
            cgroup_limits: HashMap::new(),
            prev_cgroup: None,
            last_source: None,
        })
    }

    /// Limits set from outside (they take precedence over those read from cgroups).
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// The source of the last successful collection.
    pub fn last_source(&self) -> Option<Source> {
        self.last_source
    }

    fn capacity(&self, c: &mut Collection) -> Option<Capacity> {
        match self.host.capacity() {
            Ok((cores, memory)) => Some(Capacity {
                cores: cores.max(1) as f64,
                memory,
            }),
            Err(e) => {
                c.problems.push(e);
                None
            }
        }
    }

    fn cgroup_root(&self) -> Option<PathBuf> {
        let root = self.host.sys("fs/cgroup");
        root.join("cgroup.controllers").is_file().then_some(root)
    }

    fn refresh_cgroup_limits(&mut self, problems: &mut Vec<Error>) {
        let Some(root) = self.cgroup_root() else {
            return;
        };
        match scan_kubepods(&root, false, problems) {
            Ok(pods) => {
                self.cgroup_limits = pods
                    .into_iter()
                    .map(|p| {
                        let limits = PodLimits {
                            cpu_cores: p.stats.cpu_limit,
                            memory_bytes: p.stats.memory_limit,
                            containers: BTreeMap::new(),
                        };
                        (p.uid, limits)
                    })
                    .collect();
            }
            Err(e) if e.is_not_found() => self.cgroup_limits.clear(),
            Err(e) => problems.push(e),
        }
    }

    fn collect_kubelet(&mut self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let body = self.client.fetch_summary()?;
        let got = self.events_from_summary(&body, at)?;
        c.events = got.events;
        c.problems = got.problems;
        Ok(())
    }

    /// The events of a Summary document, as a collection from the kubelet would make
    /// them (node capacity and cgroup limits read from the host root): the collector's
    /// work without the request, for replaying a saved document.
    pub fn events_from_summary(&mut self, body: &[u8], at: SampleTime) -> Result<Collection> {
        let mut c = Collection::default();
        let summary = parse_summary(body, self.client.summary_url())?;
        let capacity = self.capacity(&mut c);
        self.refresh_cgroup_limits(&mut c.problems);
        let view = LimitsView {
            external: &self.limits,
            cgroup: &self.cgroup_limits,
        };
        summary_events(
            &self.common,
            at.wall,
            &summary,
            self.sets,
            capacity,
            &view,
            &mut c.events,
        );
        let address = self.client.summary_url().trim_end_matches("/stats/summary");
        for e in &mut c.events {
            put(e, "service.address", address);
        }
        Ok(c)
    }

    fn collect_cgroups(&mut self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let root = self.cgroup_root().ok_or_else(|| {
            Error::Config(format!(
                "no cgroup v2 hierarchy at {} (cgroup.controllers is missing)",
                self.host.sys("fs/cgroup").display()
            ))
        })?;
        let pods = scan_kubepods(&root, true, &mut c.problems)?;
        let capacity = self.capacity(c);
        let prev = self.prev_cgroup.as_ref().and_then(|(t, times)| {
            let secs = at.mono.checked_sub(*t)?.as_secs_f64();
            (secs > 0.0).then_some((secs, times))
        });
        let address = format!(
            "/{}",
            root.strip_prefix(self.host.root())
                .unwrap_or(&root)
                .display()
        );
        c.counter_resets += cgroup_events(
            &self.common,
            at.wall,
            &address,
            &pods,
            self.sets,
            capacity,
            prev,
            &mut c.events,
        );
        self.prev_cgroup = Some((at.mono, cpu_times(&pods)));
        Ok(())
    }
}

impl Collector for KubernetesCollector {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn needs_two_samples(&self) -> bool {
        // Only the cgroup fallback computes CPU rates itself.
        self.fallback && self.last_source != Some(Source::Kubelet)
    }

    fn collect(&mut self, at: SampleTime) -> Result<Collection> {
        let mut c = Collection::default();
        match self.collect_kubelet(at, &mut c) {
            Ok(()) => {
                self.last_source = Some(Source::Kubelet);
                Ok(c)
            }
            Err(kubelet) if self.fallback => {
                let mut fallback = Collection::default();
                match self.collect_cgroups(at, &mut fallback) {
                    Ok(()) => {
                        fallback.problems.insert(0, kubelet);
                        self.last_source = Some(Source::Cgroup);
                        Ok(fallback)
                    }
                    Err(cgroup) => Err(Error::Kubelet {
                        url: self.client.summary_url().to_owned(),
                        message: format!(
                            "{}; cgroup v2 fallback: {cgroup}",
                            match &kubelet {
                                Error::Kubelet { message, .. } => message.clone(),
                                other => other.to_string(),
                            }
                        ),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }
}
