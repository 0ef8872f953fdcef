//! cgroup v2 files of the kubelet's pods: the fallback when the kubelet cannot be reached,
//! and the source of pod-level limits.
//!
//! The kubelet puts each pod in a cgroup under `kubepods.slice` (systemd driver:
//! `kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`)
//! or `kubepods` (cgroupfs driver: `kubepods/burstable/pod<uid>/<id>`). Guaranteed pods
//! sit directly below the root, the others below their QoS class.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// `key value` lines (`cpu.stat`, `memory.stat`); `origin` names the file in errors.
pub fn parse_flat_keyed<'a>(text: &'a str, origin: &Path) -> Result<Vec<(&'a str, u64)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(' ')
            .ok_or_else(|| Error::parse(origin, i + 1, "expected 'key value'"))?;
        let value = value
            .trim()
            .parse()
            .map_err(|_| Error::parse(origin, i + 1, format!("{key}: value is not a number")))?;
        out.push((key, value));
    }
    Ok(out)
}

/// CPU time of a cgroup from `cpu.stat`, in nanoseconds (`usage_usec` × 1000).
pub fn parse_cpu_stat(text: &str, origin: &Path) -> Result<u64> {
    parse_flat_keyed(text, origin)?
        .into_iter()
        .find(|(k, _)| *k == "usage_usec")
        .map(|(_, v)| v.saturating_mul(1000))
        .ok_or_else(|| Error::parse(origin, 0, "no usage_usec"))
}

/// `memory.max`: `None` for `max` (no limit).
pub fn parse_memory_max(text: &str, origin: &Path) -> Result<Option<u64>> {
    match text.trim() {
        "max" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| Error::parse(origin, 1, format!("limit {v:?} is not a number"))),
    }
}

/// `cpu.max` (`quota period`) as a number of cores: `None` for `max` (no limit).
pub fn parse_cpu_max(text: &str, origin: &Path) -> Result<Option<f64>> {
    let mut words = text.split_ascii_whitespace();
    let bad = || {
        Error::parse(
            origin,
            1,
            format!("expected 'quota period', found {text:?}"),
        )
    };
    let quota = words.next().ok_or_else(bad)?;
    let period: u64 = words
        .next()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    if quota == "max" {
        return Ok(None);
    }
    let quota: u64 = quota.parse().map_err(|_| bad())?;
    Ok(Some(quota as f64 / period as f64))
}

/// What the cgroup files of a pod or container say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CgroupStats {
    /// Cumulative CPU time in nanoseconds (`cpu.stat` `usage_usec`).
    pub cpu_usage_ns: u64,
    /// Memory in use, page cache included (`memory.current`).
    pub memory_current: u64,
    /// Anonymous memory (`memory.stat` `anon`): what the kubelet calls rss.
    pub anon: u64,
    /// Inactive page cache (`memory.stat` `inactive_file`).
    pub inactive_file: u64,
    /// Page faults (`memory.stat` `pgfault`).
    pub pgfault: u64,
    /// Major page faults (`memory.stat` `pgmajfault`).
    pub pgmajfault: u64,
    /// `memory.max`; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// `cpu.max` in cores; `None` when unlimited.
    pub cpu_limit: Option<f64>,
}

impl CgroupStats {
    /// The working set as the kubelet computes it: usage less inactive page cache.
    pub fn working_set(&self) -> u64 {
        self.memory_current.saturating_sub(self.inactive_file)
    }
}

fn read(path: PathBuf) -> Result<(String, PathBuf)> {
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((t, path)),
        Err(e) => Err(Error::read(path, e)),
    }
}

/// The limits of a cgroup only (`memory.max`, `cpu.max`).
pub(crate) fn read_limits(dir: &Path) -> Result<(Option<u64>, Option<f64>)> {
    let (t, p) = read(dir.join("memory.max"))?;
    let mem = parse_memory_max(&t, &p)?;
    let (t, p) = read(dir.join("cpu.max"))?;
    let cpu = parse_cpu_max(&t, &p)?;
    Ok((mem, cpu))
}

/// Reads the stats of one cgroup directory.
pub(crate) fn read_stats(dir: &Path) -> Result<CgroupStats> {
    let (t, p) = read(dir.join("cpu.stat"))?;
    let cpu_usage_ns = parse_cpu_stat(&t, &p)?;
    let (t, p) = read(dir.join("memory.current"))?;
    let memory_current = t
        .trim()
        .parse()
        .map_err(|_| Error::parse(&p, 1, format!("{:?} is not a number", t.trim())))?;
    let (t, p) = read(dir.join("memory.stat"))?;
    let mut s = CgroupStats {
        cpu_usage_ns,
        memory_current,
        ..CgroupStats::default()
    };
    for (k, v) in parse_flat_keyed(&t, &p)? {
        match k {
            "anon" => s.anon = v,
            "inactive_file" => s.inactive_file = v,
            "pgfault" => s.pgfault = v,
            "pgmajfault" => s.pgmajfault = v,
            _ => {}
        }
    }
    let (mem, cpu) = read_limits(dir)?;
    s.memory_limit = mem;
    s.cpu_limit = cpu;
    Ok(s)
}

/// A pod's cgroup.
#[derive(Clone, Debug, PartialEq)]
pub struct CgroupPod {
    /// Pod UID.
    pub uid: String,
    /// The pod's cgroup directory.
    pub dir: PathBuf,
    /// Its stats (only the limits are set by a limits-only scan).
    pub stats: CgroupStats,
    /// Its containers (empty after a limits-only scan). The pod sandbox ("pause")
    /// container is among them: cgroups do not tell it apart.
    pub containers: Vec<CgroupContainer>,
}

/// A container's cgroup.
#[derive(Clone, Debug, PartialEq)]
pub struct CgroupContainer {
    /// Container ID (the runtime's, without the `containerd://` prefix).
    pub id: String,
    /// Its stats.
    pub stats: CgroupStats,
}

/// The pod UID in a pod cgroup directory name, if it is one:
/// `kubepods-burstable-pod1234_5678.slice` (systemd) or `pod1234-5678` (cgroupfs).
pub(crate) fn pod_uid(name: &str) -> Option<String> {
    let last = match name.strip_suffix(".slice") {
        Some(stem) => stem.rsplit('-').next()?,
        None => name,
    };
    let uid = last.strip_prefix("pod")?;
    if uid.is_empty()
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    Some(uid.replace('_', "-"))
}

/// The container ID in a container cgroup directory name, if it is one:
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` (systemd) or
/// `<id>` (cgroupfs). Runtime monitor cgroups (`crio-conmon-<id>.scope`) are not.
pub(crate) fn container_id(name: &str) -> Option<&str> {
    let id = match name.strip_suffix(".scope") {
        Some(stem) => {
            let (prefix, id) = stem.rsplit_once('-')?;
            if prefix.contains("conmon") {
                return None;
            }
            id
        }
        None => name,
    };
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::read(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::read(dir, e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_owned(), entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Finds the kubelet's pod cgroups below a cgroup v2 root (`<hostfs>/sys/fs/cgroup`).
///
/// With `full`, reads every pod's and container's stats; without, only each pod's limits
/// (two small files a pod). A pod or container whose files cannot be read (it just went
/// away) is left out and its error added to `problems`.
pub fn scan_kubepods(root: &Path, full: bool, problems: &mut Vec<Error>) -> Result<Vec<CgroupPod>> {
    let base = ["kubepods.slice", "kubepods"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            Error::read(
                root.join("kubepods.slice"),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no kubepods.slice or kubepods cgroup",
                ),
            )
        })?;
    let mut pod_dirs = Vec::new();
    for (name, path) in subdirs(&base)? {
        if let Some(uid) = pod_uid(&name) {
            pod_dirs.push((uid, path));
        } else if name.contains("burstable") || name.contains("besteffort") {
            for (name, path) in subdirs(&path)? {
                if let Some(uid) = pod_uid(&name) {
                    pod_dirs.push((uid, path));
                }
            }
        }
    }
    let mut pods = Vec::with_capacity(pod_dirs.len());
    for (uid, dir) in pod_dirs {
        let pod = if full {
            read_stats(&dir).and_then(|stats| {
                let mut containers = Vec::new();
                for (name, path) in subdirs(&dir)? {
                    let Some(id) = container_id(&name) else {
                        continue;
                    };
                    match read_stats(&path) {
                        Ok(stats) => containers.push(CgroupContainer {
                            id: id.to_owned(),
                            stats,
                        }),
                        Err(e) => problems.push(e),
                    }
                }
                Ok((stats, containers))
            })
        } else {
            read_limits(&dir).map(|(memory_limit, cpu_limit)| {
                let stats = CgroupStats {
                    memory_limit,
                    cpu_limit,
                    ..CgroupStats::default()
                };
                (stats, Vec::new())
            })
        };
        match pod {
            Ok((stats, containers)) => pods.push(CgroupPod {
                uid,
                dir,
                stats,
                containers,
            }),
            Err(e) => problems.push(e),
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names() {
        let uids = [
            (
                "kubepods-burstable-pod6e1d9f2c_3b7a_4c1e_9a55_0f2b8d7c1a10.slice",
                Some("6e1d9f2c-3b7a-4c1e-9a55-0f2b8d7c1a10"),
            ),
            ("kubepods-podabc_def.slice", Some("abc-def")),
            ("pod6e1d9f2c-3b7a", Some("6e1d9f2c-3b7a")),
            ("kubepods-burstable.slice", None),
            ("burstable", None),
            ("pod", None),
            ("pod../x", None),
        ];
        for (name, want) in uids {
            assert_eq!(pod_uid(name).as_deref(), want, "{name}");
        }
        let id = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
        let ids = [
            (format!("cri-containerd-{id}.scope"), Some(id)),
            (format!("crio-{id}.scope"), Some(id)),
            (format!("crio-conmon-{id}.scope"), None),
            (id.to_owned(), Some(id)),
            ("cgroup.procs".to_owned(), None),
            ("init.scope".to_owned(), None),
        ];
        for (name, want) in ids {
            assert_eq!(container_id(&name), want, "{name}");
        }
    }

    #[test]
    fn limit_files() {
        let p = Path::new("cpu.max");
        assert_eq!(parse_cpu_max("max 100000\n", p).unwrap(), None);
        assert_eq!(parse_cpu_max("50000 100000\n", p).unwrap(), Some(0.5));
        assert_eq!(
            parse_cpu_max("50000\n", p).unwrap_err().to_string(),
            "cpu.max:1: expected 'quota period', found \"50000\\n\""
        );
        let p = Path::new("memory.max");
        assert_eq!(parse_memory_max("max\n", p).unwrap(), None);
        assert_eq!(
            parse_memory_max("134217728\n", p).unwrap(),
            Some(134_217_728)
        );
        assert!(parse_memory_max("lots\n", p).is_err());
        let p = Path::new("cpu.stat");
        assert_eq!(
            parse_cpu_stat("usage_usec 12\nuser_usec 10\n", p).unwrap(),
            12_000
        );
        assert_eq!(
            parse_cpu_stat("user_usec 10\n", p).unwrap_err().to_string(),
            "cpu.stat:0: no usage_usec"
        );
        assert_eq!(
            parse_flat_keyed("anon 1\nfile x\n", Path::new("memory.stat"))
                .unwrap_err()
                .to_string(),
            "memory.stat:2: file: value is not a number"
        );
    }
}
