//! Node and container resource metrics with Metricbeat's field names.
//!
//! - Node metricsets ([`NodeMetricset`]: `cpu`, `load`, `memory`, `filesystem`, `diskio`,
//!   `network`) read `/proc` and `statvfs` below a configurable host root ([`HostFs`]),
//!   so that a DaemonSet that mounts the host's `/` at `/hostfs` reports the host.
//! - Pod, container and volume metricsets ([`KubernetesCollector`]) read the kubelet
//!   Summary API (`/stats/summary`) and fall back to cgroup v2 files when the kubelet
//!   cannot be reached.
//!
//! Parsing is pure: every file format has a function from text to values
//! ([`parse_stat`], [`parse_meminfo`], [`parse_mountinfo`], [`parse_diskstats`],
//! [`parse_netdev`], [`parse_summary`], …), and a [`Collector`] reads the files, keeps the
//! previous sample for rates, and builds [`Event`] values. Counters that
//! go down (a device re-created, a reboot) give no rate for that period instead of a bogus
//! one; a 32-bit counter that wraps is recognized.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use logtide_event::Timestamp;
//! use logtide_procstat::{Collector, NodeCollector, NodeMetricset, NodeOptions, SampleTime};
//!
//! let options = NodeOptions {
//!     hostfs: "/".into(),
//!     host_name: "node-1".into(),
//!     period: Duration::from_secs(10),
//!     filesystem_ignore_types: None,
//! };
//! let mut memory = NodeCollector::new(NodeMetricset::Memory, &options);
//! let collection = memory.collect(SampleTime::new(Timestamp::now(), Duration::ZERO))?;
//! let event = &collection.events[0];
//! assert_eq!(event.get("metricset.name"), Some(&"memory".into()));
//! assert!(event.get("system.memory.actual.used.pct").is_some());
//! # Ok::<(), logtide_procstat::Error>(())
//! ```

mod cgroup;
mod cpu;
mod diskio;
mod error;
mod fields;
mod filesystem;
mod kubelet;
mod kubernetes;
mod load;
mod memory;
mod network;
mod node;
mod summary;

use std::time::Duration;

pub use cgroup::{
    parse_cpu_max, parse_cpu_stat, parse_flat_keyed, parse_memory_max, scan_kubepods,
    CgroupContainer, CgroupPod, CgroupStats,
};
pub use cpu::{cpu_shares, parse_stat, CpuShares, CpuStat, CpuTimes};
pub use diskio::{parse_diskstats, DiskStat};
pub use error::{Error, Result};
pub use fields::SampleTime;
pub use filesystem::{parse_mountinfo, parse_nodev_types, select_mounts, statvfs, FsUsage, Mount};
pub use kubelet::{
    KubeletClient, KubeletOptions, VerificationMode, SERVICE_ACCOUNT_CA, SERVICE_ACCOUNT_TOKEN,
};
pub use kubernetes::{
    KubernetesCollector, KubernetesMetricset, KubernetesOptions, Limits, PodLimits, Source,
};
pub use load::{parse_loadavg, LoadAvg};
pub use memory::{parse_meminfo, Meminfo};
pub use network::{parse_netdev, NetDev};
pub use node::{kernel_host_name, HostFs, NodeCollector, NodeMetricset, NodeOptions};
pub use summary::{
    parse_summary, ContainerStats, CpuStats, FsStats, MemoryStats, NetworkStats, NodeStats, PodRef,
    PodStats, PvcRef, Summary, VolumeStats,
};

/// What one collection produced.
#[derive(Debug, Default)]
pub struct Collection {
    /// The events.
    pub events: Vec<Event>,
    /// Parts that failed while the rest was collected (a vanished mount, an unreachable
    /// kubelet replaced by the cgroup fallback).
    pub problems: Vec<Error>,
    /// Devices or interfaces whose counters went down since the previous sample, so
    /// that their rates were left out.
    pub counter_resets: u64,
}

use logtide_event::Event;

/// A metricset (or group of metricsets sharing one source) collected on a period.
pub trait Collector: Send {
    /// The name reported in logs and counters (`cpu`, `kubernetes`).
    fn name(&self) -> &str;
    /// How often it is collected.
    fn period(&self) -> Duration;
    /// Whether the first collection only primes the rates (produces less than later ones).
    fn needs_two_samples(&self) -> bool;
    /// Collects once. An error means nothing could be collected this time; partial
    /// failures are in [`Collection::problems`].
    fn collect(&mut self, at: SampleTime) -> Result<Collection>;
    /// Replaces the pod limits known from outside (a metadata cache), for collectors
    /// that report percentages of limits; others ignore them.
    fn set_limits(&mut self, limits: Limits) {
        let _ = limits;
    }
}
