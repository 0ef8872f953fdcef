//! Mounted filesystems: `/proc/<pid>/mountinfo`, `/proc/filesystems`, and `statvfs`.

use std::collections::BTreeSet;
use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{put, ratio, Common};
use crate::{Error, Result};

/// One line of `mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount source (`/dev/vda`, `tmpfs`, `server:/export`).
    pub device: String,
    /// Where it is mounted, as the host sees it.
    pub mount_point: String,
    /// Filesystem type (`ext4`, `xfs`, `tmpfs`).
    pub fs_type: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
}

/// Undoes the octal escapes of `mountinfo` (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `mountinfo` (`origin` names the file in errors).
pub fn parse_mountinfo(text: &str, origin: &Path) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| Error::parse(origin, i + 1, "no ' - ' separator"))?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 2 {
            return Err(Error::parse(origin, i + 1, "too few fields"));
        }
        mounts.push(Mount {
            device: unescape(right[1]),
            mount_point: unescape(left[4]),
            fs_type: unescape(right[0]),
            options: left[5].to_owned(),
        });
    }
    Ok(mounts)
}

/// The filesystem types marked `nodev` in `/proc/filesystems`: filesystems with no
/// backing device (proc, sysfs, tmpfs, overlay, cgroup, …), which Metricbeat leaves out
/// by default.
pub fn parse_nodev_types(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("nodev"))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The mounts to report: those whose type is not ignored, one per mount point (the last
/// one mounted there, which is the one visible).
pub fn select_mounts(mounts: Vec<Mount>, ignore_types: &BTreeSet<String>) -> Vec<Mount> {
    let mut selected: Vec<Mount> = Vec::new();
    for m in mounts {
        if ignore_types.contains(&m.fs_type) {
            continue;
        }
        selected.retain(|s| s.mount_point != m.mount_point);
        selected.push(m);
    }
    selected
}

/// What `statvfs` says about a filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// Size in fragments (`f_blocks`).
    pub blocks: u64,
    /// Free fragments (`f_bfree`).
    pub blocks_free: u64,
    /// Fragments free for unprivileged users (`f_bavail`).
    pub blocks_available: u64,
    /// Fragment size in bytes (`f_frsize`).
    pub fragment_size: u64,
    /// Inodes (`f_files`).
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub files_free: u64,
}

/// `statvfs` of a path.
pub fn statvfs(path: &Path) -> std::io::Result<FsUsage> {
    let s = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(FsUsage {
        blocks: s.f_blocks,
        blocks_free: s.f_bfree,
        blocks_available: s.f_bavail,
        fragment_size: s.f_frsize,
        files: s.f_files,
        files_free: s.f_ffree,
    })
}

/// The `filesystem` event of one mount. `used.pct` is used / (used + available), as `df`
/// and Metricbeat compute it: the space reserved for root counts as neither.
pub(crate) fn filesystem_event(common: &Common, at: Timestamp, m: &Mount, u: &FsUsage) -> Event {
    let mut e = common.event(at, "system", "filesystem");
    let total = u.blocks.saturating_mul(u.fragment_size);
    let free = u.blocks_free.saturating_mul(u.fragment_size);
    let available = u.blocks_available.saturating_mul(u.fragment_size);
    let used = total.saturating_sub(free);
    put(&mut e, "system.filesystem.device_name", m.device.as_str());
    put(
        &mut e,
        "system.filesystem.mount_point",
        m.mount_point.as_str(),
    );
    put(&mut e, "system.filesystem.type", m.fs_type.as_str());
    put(&mut e, "system.filesystem.options", m.options.as_str());
    put(&mut e, "system.filesystem.total", total);
    put(&mut e, "system.filesystem.free", free);
    put(&mut e, "system.filesystem.available", available);
    put(&mut e, "system.filesystem.used.bytes", used);
    put(
        &mut e,
        "system.filesystem.used.pct",
        ratio(used as f64, used.saturating_add(available) as f64),
    );
    put(&mut e, "system.filesystem.files", u.files);
    put(&mut e, "system.filesystem.free_files", u.files_free);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
        assert_eq!(unescape(r"/x\999"), r"/x\999");
    }

    #[test]
    fn parses_lines_and_names_bad_ones() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n36 27 0:50 / /var/lib/kubelet/pods/x/volumes/a\\040b rw,relatime shared:5 - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(text, Path::new("mountinfo")).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].device, "/dev/vda");
        assert_eq!(m[1].mount_point, "/var/lib/kubelet/pods/x/volumes/a b");
        assert_eq!(m[1].fs_type, "tmpfs");
        let err = parse_mountinfo("27 1 254:0 / / rw ext4\n", Path::new("mountinfo")).unwrap_err();
        assert_eq!(err.to_string(), "mountinfo:1: no ' - ' separator");
        let err = parse_mountinfo("1 2 - ext4 /dev/x rw\n", Path::new("mi")).unwrap_err();
        assert_eq!(err.to_string(), "mi:1: too few fields");
    }

    #[test]
    fn selection_skips_pseudo_and_keeps_the_visible_mount() {
        let mk = |p: &str, t: &str, d: &str| Mount {
            device: d.into(),
            mount_point: p.into(),
            fs_type: t.into(),
            options: "rw".into(),
        };
        let ignore = parse_nodev_types("nodev\tproc\nnodev\ttmpfs\n\text4\n");
        assert_eq!(ignore.iter().collect::<Vec<_>>(), ["proc", "tmpfs"]);
        let got = select_mounts(
            vec![
                mk("/", "ext4", "/dev/a"),
                mk("/proc", "proc", "proc"),
                mk("/data", "ext4", "/dev/b"),
                mk("/data", "xfs", "/dev/c"),
            ],
            &ignore,
        );
        assert_eq!(
            got,
            vec![mk("/", "ext4", "/dev/a"), mk("/data", "xfs", "/dev/c")]
        );
    }

    #[test]
    fn event_from_statvfs() {
        let common = Common {
            host_name: "n1".into(),
            period_ms: 10_000,
        };
        let mount = Mount {
            device: "/dev/vda".into(),
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            options: "rw,relatime".into(),
        };
        // 100 blocks of 4 KiB: 40 free, 30 of them available to users.
        let usage = FsUsage {
            blocks: 100,
            blocks_free: 40,
            blocks_available: 30,
            fragment_size: 4096,
            files: 1000,
            files_free: 900,
        };
        let e = filesystem_event(&common, Timestamp::UNIX_EPOCH, &mount, &usage);
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"@timestamp":"1970-01-01T00:00:00.000000000Z","event":{"dataset":"system.filesystem","module":"system"},"host":{"name":"n1"},"metricset":{"name":"filesystem","period":10000},"service":{"type":"system"},"system":{"filesystem":{"available":122880,"device_name":"/dev/vda","files":1000,"free":163840,"free_files":900,"mount_point":"/","options":"rw,relatime","total":409600,"type":"ext4","used":{"bytes":245760,"pct":0.6667}}}}"#
        );
    }
}
