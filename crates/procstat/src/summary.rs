//! The kubelet Summary API document (`/stats/summary`, `stats/v1alpha1`) and the pod,
//! container and volume events built from it.

use logtide_event::{Event, Timestamp};
use serde::Deserialize;

use crate::fields::{put, ratio, Common};
use crate::kubernetes::{put_usage, Capacity, LimitsView, Usage};
use crate::{Error, Result};

/// The parts of a Summary document that the metricsets use. Fields the kubelet leaves
/// out are `None`; fields this crate does not use are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The node.
    pub node: NodeStats,
    /// The pods on the node.
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

/// Node part of the summary.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// The node's name.
    #[serde(default)]
    pub node_name: String,
}

/// Identity of a pod.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PodRef {
    /// Pod name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Pod UID.
    #[serde(default)]
    pub uid: String,
}

/// One pod of the summary.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    /// Which pod.
    pub pod_ref: PodRef,
    /// When the pod started (RFC 3339).
    pub start_time: Option<String>,
    /// Its containers.
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
    /// CPU of the whole pod (kubelet 1.20+).
    pub cpu: Option<CpuStats>,
    /// Memory of the whole pod (kubelet 1.20+).
    pub memory: Option<MemoryStats>,
    /// Network of the pod's default interface.
    pub network: Option<NetworkStats>,
    /// Its volumes.
    #[serde(default, rename = "volume")]
    pub volumes: Vec<VolumeStats>,
}

/// One container of a pod.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    /// Container name.
    #[serde(default)]
    pub name: String,
    /// When it started (RFC 3339).
    pub start_time: Option<String>,
    /// CPU.
    pub cpu: Option<CpuStats>,
    /// Memory.
    pub memory: Option<MemoryStats>,
    /// Writable layer.
    pub rootfs: Option<FsStats>,
    /// Log files.
    pub logs: Option<FsStats>,
}

/// CPU usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// Average usage over the kubelet's sampling window, in billionths of a core.
    pub usage_nano_cores: Option<u64>,
    /// Cumulative CPU time, in nanoseconds.
    pub usage_core_nano_seconds: Option<u64>,
}

/// Memory usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Memory left before the limit.
    pub available_bytes: Option<u64>,
    /// All memory in use, page cache included.
    pub usage_bytes: Option<u64>,
    /// Usage less inactive page cache: what the kubelet evicts on.
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory and swap cache.
    pub rss_bytes: Option<u64>,
    /// Page faults.
    pub page_faults: Option<u64>,
    /// Major page faults.
    pub major_page_faults: Option<u64>,
}

/// Network counters of an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStats {
    /// Bytes received.
    pub rx_bytes: Option<u64>,
    /// Receive errors.
    pub rx_errors: Option<u64>,
    /// Bytes sent.
    pub tx_bytes: Option<u64>,
    /// Send errors.
    pub tx_errors: Option<u64>,
}

/// Filesystem usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    /// Bytes available.
    pub available_bytes: Option<u64>,
    /// Size.
    pub capacity_bytes: Option<u64>,
    /// Bytes used.
    pub used_bytes: Option<u64>,
    /// Free inodes.
    pub inodes_free: Option<u64>,
    /// Inodes.
    pub inodes: Option<u64>,
    /// Inodes used.
    pub inodes_used: Option<u64>,
}

/// A persistent volume claim.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PvcRef {
    /// Claim name.
    #[serde(default)]
    pub name: String,
}

/// One volume of a pod.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStats {
    /// Volume name in the pod spec.
    #[serde(default)]
    pub name: String,
    /// The claim, for a persistent volume.
    pub pvc_ref: Option<PvcRef>,
    /// Bytes available.
    pub available_bytes: Option<u64>,
    /// Size.
    pub capacity_bytes: Option<u64>,
    /// Bytes used.
    pub used_bytes: Option<u64>,
    /// Free inodes.
    pub inodes_free: Option<u64>,
    /// Inodes.
    pub inodes: Option<u64>,
    /// Inodes used.
    pub inodes_used: Option<u64>,
}

/// Parses a Summary document; `url` names it in errors.
pub fn parse_summary(body: &[u8], url: &str) -> Result<Summary> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        Error::Summary {
            url: url.to_owned(),
            line: e.line(),
            column: e.column(),
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_owned(),
        }
    })
}

fn put_opt(e: &mut Event, path: &str, v: Option<u64>) {
    if let Some(v) = v {
        put(e, path, v);
    }
}

fn put_fs(e: &mut Event, prefix: &str, fs: &FsStats, inode_counts: bool) {
    put_opt(e, &format!("{prefix}.available.bytes"), fs.available_bytes);
    put_opt(e, &format!("{prefix}.capacity.bytes"), fs.capacity_bytes);
    put_opt(e, &format!("{prefix}.used.bytes"), fs.used_bytes);
    put_opt(e, &format!("{prefix}.inodes.used"), fs.inodes_used);
    if inode_counts {
        put_opt(e, &format!("{prefix}.inodes.count"), fs.inodes);
        put_opt(e, &format!("{prefix}.inodes.free"), fs.inodes_free);
    }
}

fn usage_of(cpu: Option<&CpuStats>, mem: Option<&MemoryStats>) -> Usage {
    let mem = mem.copied().unwrap_or_default();
    Usage {
        nanocores: cpu.and_then(|c| c.usage_nano_cores).map(|n| n as f64),
        core_ns: cpu.and_then(|c| c.usage_core_nano_seconds),
        memory_usage: mem.usage_bytes,
        working_set: mem.working_set_bytes,
        rss: mem.rss_bytes,
        available: mem.available_bytes,
        page_faults: mem.page_faults,
        major_page_faults: mem.major_page_faults,
    }
}

/// Adds two optional counters; `None` only when both are missing.
fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// The pod's usage: the pod-level stats when the kubelet gives them, else the sum of its
/// containers'.
fn pod_usage(pod: &PodStats) -> Usage {
    let mut u = usage_of(pod.cpu.as_ref(), pod.memory.as_ref());
    if pod.cpu.is_none() {
        for c in &pod.containers {
            let cu = usage_of(c.cpu.as_ref(), None);
            u.nanocores = match (u.nanocores, cu.nanocores) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            };
            u.core_ns = add(u.core_ns, cu.core_ns);
        }
    }
    if pod.memory.is_none() {
        for c in &pod.containers {
            let cu = usage_of(None, c.memory.as_ref());
            u.memory_usage = add(u.memory_usage, cu.memory_usage);
            u.working_set = add(u.working_set, cu.working_set);
            u.rss = add(u.rss, cu.rss);
            u.page_faults = add(u.page_faults, cu.page_faults);
            u.major_page_faults = add(u.major_page_faults, cu.major_page_faults);
        }
    }
    u
}

/// Which of the kubernetes metricsets to build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sets {
    pub pod: bool,
    pub container: bool,
    pub volume: bool,
}

fn base(common: &Common, at: Timestamp, set: &str, node: &str, pod: &PodRef) -> Event {
    let mut e = common.event(at, "kubernetes", set);
    put(&mut e, "kubernetes.node.name", node);
    put(&mut e, "kubernetes.namespace", pod.namespace.as_str());
    put(&mut e, "kubernetes.pod.name", pod.name.as_str());
    put(&mut e, "kubernetes.pod.uid", pod.uid.as_str());
    e
}

/// The pod, container and volume events of a summary.
pub(crate) fn summary_events(
    common: &Common,
    at: Timestamp,
    summary: &Summary,
    sets: Sets,
    capacity: Option<Capacity>,
    limits: &LimitsView<'_>,
    out: &mut Vec<Event>,
) {
    let node = summary.node.node_name.as_str();
    for pod in &summary.pods {
        let pod_limits = limits.pod(&pod.pod_ref.uid);
        if sets.pod {
            let mut e = base(common, at, "pod", node, &pod.pod_ref);
            if let Some(t) = &pod.start_time {
                put(&mut e, "kubernetes.pod.start_time", t.as_str());
            }
            let usage = pod_usage(pod);
            let limit = pod_limits.map(|l| (l.cpu_cores, l.memory_bytes));
            put_usage(&mut e, "kubernetes.pod", true, &usage, capacity, limit);
            if let Some(n) = &pod.network {
                put_opt(&mut e, "kubernetes.pod.network.rx.bytes", n.rx_bytes);
                put_opt(&mut e, "kubernetes.pod.network.rx.errors", n.rx_errors);
                put_opt(&mut e, "kubernetes.pod.network.tx.bytes", n.tx_bytes);
                put_opt(&mut e, "kubernetes.pod.network.tx.errors", n.tx_errors);
            }
            out.push(e);
        }
        if sets.container {
            for c in &pod.containers {
                let mut e = base(common, at, "container", node, &pod.pod_ref);
                put(&mut e, "kubernetes.container.name", c.name.as_str());
                if let Some(t) = &c.start_time {
                    put(&mut e, "kubernetes.container.start_time", t.as_str());
                }
                let usage = usage_of(c.cpu.as_ref(), c.memory.as_ref());
                let limit = pod_limits.and_then(|l| l.containers.get(&c.name).copied());
                put_usage(
                    &mut e,
                    "kubernetes.container",
                    false,
                    &usage,
                    capacity,
                    limit,
                );
                if let Some(fs) = &c.rootfs {
                    put_fs(&mut e, "kubernetes.container.rootfs", fs, false);
                }
                if let Some(fs) = &c.logs {
                    put_fs(&mut e, "kubernetes.container.logs", fs, true);
                }
                out.push(e);
            }
        }
        if sets.volume {
            for v in &pod.volumes {
                let mut e = base(common, at, "volume", node, &pod.pod_ref);
                put(&mut e, "kubernetes.volume.name", v.name.as_str());
                let fs = FsStats {
                    available_bytes: v.available_bytes,
                    capacity_bytes: v.capacity_bytes,
                    used_bytes: v.used_bytes,
                    inodes_free: v.inodes_free,
                    inodes: v.inodes,
                    inodes_used: v.inodes_used,
                };
                put_fs(&mut e, "kubernetes.volume.fs", &fs, true);
                if let (Some(used), Some(cap)) = (v.used_bytes, v.capacity_bytes) {
                    put(
                        &mut e,
                        "kubernetes.volume.fs.used.pct",
                        ratio(used as f64, cap as f64),
                    );
                }
                if let (Some(used), Some(count)) = (v.inodes_used, v.inodes) {
                    put(
                        &mut e,
                        "kubernetes.volume.fs.inodes.pct",
                        ratio(used as f64, count as f64),
                    );
                }
                if let Some(pvc) = &v.pvc_ref {
                    put(
                        &mut e,
                        "kubernetes.persistentvolumeclaim.name",
                        pvc.name.as_str(),
                    );
                }
                out.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_give_line_and_column() {
        let err = parse_summary(
            b"{\"node\": {\"nodeName\": 5}}",
            "https://n:10250/stats/summary",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubelet https://n:10250/stats/summary: invalid summary JSON at line 1 column 23: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn pod_usage_sums_containers_when_the_pod_has_none() {
        let pod = PodStats {
            containers: vec![
                ContainerStats {
                    cpu: Some(CpuStats {
                        usage_nano_cores: Some(10),
                        usage_core_nano_seconds: Some(100),
                    }),
                    memory: Some(MemoryStats {
                        usage_bytes: Some(1000),
                        ..MemoryStats::default()
                    }),
                    ..ContainerStats::default()
                },
                ContainerStats {
                    cpu: Some(CpuStats {
                        usage_nano_cores: Some(5),
                        usage_core_nano_seconds: None,
                    }),
                    ..ContainerStats::default()
                },
            ],
            ..PodStats::default()
        };
        let u = pod_usage(&pod);
        assert_eq!(u.nanocores, Some(15.0));
        assert_eq!(u.core_ns, Some(100));
        assert_eq!(u.memory_usage, Some(1000));
        assert_eq!(u.rss, None);
    }
}
