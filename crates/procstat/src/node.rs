//! Node metricsets read from a host root: files under `<hostfs>/proc`, `statvfs` below it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cpu::{cpu_events, parse_stat, CpuStat};
use crate::diskio::{diskio_event, parse_diskstats, DiskStat};
use crate::fields::{Common, SampleTime};
use crate::filesystem::{
    filesystem_event, parse_mountinfo, parse_nodev_types, select_mounts, statvfs,
};
use crate::load::{load_event, parse_loadavg};
use crate::memory::{memory_event, parse_meminfo, Meminfo};
use crate::network::{network_event, parse_netdev, NetDev};
use crate::{Collection, Collector, Error, Result};

/// A node metricset, named as in Metricbeat's system module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeMetricset {
    /// CPU time shares of the host (`system.cpu.*`) and of each core (`system.core.*`).
    Cpu,
    /// Load averages (`system.load.*`).
    Load,
    /// Memory and swap (`system.memory.*`).
    Memory,
    /// One event per mounted filesystem (`system.filesystem.*`).
    Filesystem,
    /// One event per block device (`system.diskio.*`).
    Diskio,
    /// One event per network interface (`system.network.*`).
    Network,
}

impl NodeMetricset {
    /// Every node metricset, in the order of the default configuration.
    pub const ALL: [NodeMetricset; 6] = [
        NodeMetricset::Cpu,
        NodeMetricset::Load,
        NodeMetricset::Memory,
        NodeMetricset::Filesystem,
        NodeMetricset::Diskio,
        NodeMetricset::Network,
    ];

    /// The metricset's name.
    pub fn name(self) -> &'static str {
        match self {
            NodeMetricset::Cpu => "cpu",
            NodeMetricset::Load => "load",
            NodeMetricset::Memory => "memory",
            NodeMetricset::Filesystem => "filesystem",
            NodeMetricset::Diskio => "diskio",
            NodeMetricset::Network => "network",
        }
    }

    /// Whether its events need two samples (rates over the period).
    pub fn needs_two_samples(self) -> bool {
        matches!(
            self,
            NodeMetricset::Cpu | NodeMetricset::Diskio | NodeMetricset::Network
        )
    }
}

/// Where the host's files are, seen from this process.
///
/// With the root `/`, this process's own view is used (`/proc/self/mountinfo`,
/// `/proc/net/dev`). With another root (a DaemonSet mounting the host's `/` at
/// `/hostfs`), the mounts and network interfaces are those of the host's init process
/// (`<hostfs>/proc/1/mountinfo`, `<hostfs>/proc/1/net/dev`), and `statvfs` is asked below
/// the root (`<hostfs>/<mount point>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFs {
    root: PathBuf,
}

impl HostFs {
    /// The host root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostFs { root: root.into() }
    }

    /// The host root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn is_own(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `<root>/proc/<rel>`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.root.join("proc").join(rel)
    }

    /// `<root>/sys/<rel>`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    fn host_process(&self, rel: &str) -> PathBuf {
        if self.is_own() {
            self.proc(&format!("self/{rel}"))
        } else {
            self.proc(&format!("1/{rel}"))
        }
    }

    /// A path of the host (a mount point), below the root.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Reads a file below the root.
    pub fn read(&self, path: &Path) -> Result<String> {
        std::fs::read_to_string(path).map_err(|e| Error::read(path, e))
    }

    /// The number of CPUs (`cpuN` lines of `/proc/stat`) and the memory (`MemTotal`) of
    /// the host.
    pub fn capacity(&self) -> Result<(usize, u64)> {
        let path = self.proc("stat");
        let stat = parse_stat(&self.read(&path)?, &path)?;
        let path = self.proc("meminfo");
        let mem = parse_meminfo(&self.read(&path)?, &path)?;
        Ok((stat.cores.len(), mem.total))
    }
}

/// The host name this process runs under (the kernel's node name).
pub fn kernel_host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Options of a node metricset collector.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOptions {
    /// Root of the host's `/proc`, `/sys` and mounts.
    pub hostfs: PathBuf,
    /// `host.name` of the events.
    pub host_name: String,
    /// The collection period (`metricset.period`).
    pub period: Duration,
    /// Filesystem types to leave out; `None`: the `nodev` types of `/proc/filesystems`.
    pub filesystem_ignore_types: Option<Vec<String>>,
}

/// Collects one node metricset, keeping the previous sample for rates.
#[derive(Debug)]
pub struct NodeCollector {
    metricset: NodeMetricset,
    host: HostFs,
    common: Common,
    period: Duration,
    ignore_types: Option<BTreeSet<String>>,
    prev_cpu: Option<CpuStat>,
    prev_disks: Option<(Duration, Vec<DiskStat>)>,
    prev_net: Option<(Duration, Vec<NetDev>)>,
}

impl NodeCollector {
    /// A collector of `metricset`.
    pub fn new(metricset: NodeMetricset, options: &NodeOptions) -> Self {
        NodeCollector {
            metricset,
            host: HostFs::new(&options.hostfs),
            common: Common {
                host_name: options.host_name.clone(),
                period_ms: options.period.as_millis() as u64,
            },
            period: options.period,
            ignore_types: options
                .filesystem_ignore_types
                .as_ref()
                .map(|t| t.iter().cloned().collect()),
            prev_cpu: None,
            prev_disks: None,
            prev_net: None,
        }
    }

    /// The metricset collected.
    pub fn metricset(&self) -> NodeMetricset {
        self.metricset
    }

    fn read(&self, path: &Path) -> Result<String> {
        self.host.read(path)
    }

    fn cpu(&mut self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.proc("stat");
        let stat = parse_stat(&self.read(&path)?, &path)?;
        if let Some(prev) = &self.prev_cpu {
            cpu_events(&self.common, at.wall, prev, &stat, &mut c.events);
        }
        self.prev_cpu = Some(stat);
        Ok(())
    }

    fn load(&self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.proc("loadavg");
        let load = parse_loadavg(&self.read(&path)?, &path)?;
        let stat_path = self.host.proc("stat");
        let cores = parse_stat(&self.read(&stat_path)?, &stat_path)?.cores.len();
        c.events
            .push(load_event(&self.common, at.wall, &load, cores));
        Ok(())
    }

    fn memory(&self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.proc("meminfo");
        let m: Meminfo = parse_meminfo(&self.read(&path)?, &path)?;
        c.events.push(memory_event(&self.common, at.wall, &m));
        Ok(())
    }

    fn filesystem(&self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.host_process("mountinfo");
        let mounts = parse_mountinfo(&self.read(&path)?, &path)?;
        let nodev;
        let ignore = match &self.ignore_types {
            Some(t) => t,
            None => {
                let path = self.host.proc("filesystems");
                nodev = parse_nodev_types(&self.read(&path)?);
                &nodev
            }
        };
        for m in select_mounts(mounts, ignore) {
            let path = self.host.host_path(&m.mount_point);
            match statvfs(&path) {
                Ok(usage) => c
                    .events
                    .push(filesystem_event(&self.common, at.wall, &m, &usage)),
                Err(source) => c.problems.push(Error::Statvfs {
                    mount_point: m.mount_point.clone(),
                    path,
                    source,
                }),
            }
        }
        Ok(())
    }

    fn diskio(&mut self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.proc("diskstats");
        let disks = parse_diskstats(&self.read(&path)?, &path)?;
        for d in &disks {
            let prev = self.prev_disks.as_ref().and_then(|(t, list)| {
                let p = list.iter().find(|p| p.name == d.name)?;
                Some((p, at.mono.checked_sub(*t)?.as_secs_f64()))
            });
            if diskio_event(&self.common, at.wall, d, prev, &mut c.events) {
                c.counter_resets += 1;
            }
        }
        self.prev_disks = Some((at.mono, disks));
        Ok(())
    }

    fn network(&mut self, at: SampleTime, c: &mut Collection) -> Result<()> {
        let path = self.host.host_process("net/dev");
        let devs = parse_netdev(&self.read(&path)?, &path)?;
        for d in &devs {
            let prev = self.prev_net.as_ref().and_then(|(t, list)| {
                let p = list.iter().find(|p| p.name == d.name)?;
                Some((p, at.mono.checked_sub(*t)?.as_secs_f64()))
            });
            if network_event(&self.common, at.wall, d, prev, &mut c.events) {
                c.counter_resets += 1;
            }
        }
        self.prev_net = Some((at.mono, devs));
        Ok(())
    }
}

impl Collector for NodeCollector {
    fn name(&self) -> &str {
        self.metricset.name()
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn needs_two_samples(&self) -> bool {
        self.metricset.needs_two_samples()
    }

    fn collect(&mut self, at: SampleTime) -> Result<Collection> {
        let mut c = Collection::default();
        match self.metricset {
            NodeMetricset::Cpu => self.cpu(at, &mut c)?,
            NodeMetricset::Load => self.load(at, &mut c)?,
            NodeMetricset::Memory => self.memory(at, &mut c)?,
            NodeMetricset::Filesystem => self.filesystem(at, &mut c)?,
            NodeMetricset::Diskio => self.diskio(at, &mut c)?,
            NodeMetricset::Network => self.network(at, &mut c)?,
        }
        Ok(c)
    }
}
