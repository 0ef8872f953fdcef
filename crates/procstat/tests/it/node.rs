//! Node metricsets over fixture `/proc` files from a real machine (this one: 2 cores,
//! virtio disk, cgroup v1 hybrid), sampled twice one second apart.

use std::time::Duration;

use crate::common::{at, data, golden, ndjson, FixtureRoot};
use logtide_procstat::{Collector, Error, NodeCollector, NodeMetricset, NodeOptions};
use serde_json::json;

fn options(root: &std::path::Path) -> NodeOptions {
    NodeOptions {
        hostfs: root.to_owned(),
        host_name: "test-node".into(),
        period: Duration::from_secs(10),
        filesystem_ignore_types: None,
    }
}

#[test]
fn two_samples_give_golden_events() {
    let root = FixtureRoot::new();
    let sets = [
        NodeMetricset::Cpu,
        NodeMetricset::Load,
        NodeMetricset::Memory,
        NodeMetricset::Diskio,
        NodeMetricset::Network,
    ];
    let mut collectors: Vec<NodeCollector> = sets
        .iter()
        .map(|s| NodeCollector::new(*s, &options(root.path())))
        .collect();
    let mut events = Vec::new();
    for (n, sample) in ["node/t0/proc", "node/t1/proc"].iter().enumerate() {
        root.link("proc", sample);
        for c in &mut collectors {
            let got = c.collect(at(n as u64)).unwrap();
            assert!(got.problems.is_empty(), "{:?}", got.problems);
            assert_eq!(got.counter_resets, 0);
            events.extend(got.events);
        }
    }
    // cpu: nothing from the first sample, then the host and its 2 cores.
    let cpu: Vec<_> = events
        .iter()
        .filter(|e| e.get("event.dataset") == Some(&json!("system.cpu")))
        .collect();
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].get("system.cpu.cores"), Some(&json!(2)));
    golden("node/expected.ndjson", &ndjson(&events));
}

#[test]
fn cpu_shares_match_a_hand_computation() {
    // From the t0 and t1 fixtures' "cpu" lines (user nice system idle iowait irq softirq steal).
    let t0 = std::fs::read_to_string(data("node/t0/proc/stat")).unwrap();
    let t1 = std::fs::read_to_string(data("node/t1/proc/stat")).unwrap();
    let a = logtide_procstat::parse_stat(&t0, "t0".as_ref())
        .unwrap()
        .total;
    let b = logtide_procstat::parse_stat(&t1, "t1".as_ref())
        .unwrap()
        .total;
    let span = (b.total() - a.total()) as f64;
    let idle = (b.idle - a.idle) as f64 / span;
    let iowait = (b.iowait - a.iowait) as f64 / span;
    let shares = logtide_procstat::cpu_shares(&a, &b, 2.0).unwrap();
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    assert_eq!(shares.states[3].1, round(idle * 2.0));
    assert_eq!(
        shares.total,
        round(2.0 - round(idle * 2.0) - round(iowait * 2.0))
    );
}

/// Writes `files` (path below the root, contents) into a plain directory root.
fn write_root(root: &std::path::Path, files: &[(&str, String)]) {
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const NET_HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

fn netdev(lines: &[(&str, [u64; 16])]) -> String {
    let mut s = NET_HEADER.to_owned();
    for (name, v) in lines {
        let nums: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!("{name:>6}: {}\n", nums.join(" ")));
    }
    s
}

fn diskstats(lines: &[(&str, [u64; 11])]) -> String {
    let mut s = String::new();
    for (i, (name, v)) in lines.iter().enumerate() {
        let nums: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!(" 8 {i} {name} {} 0 0 0 0 0 0\n", nums.join(" ")));
    }
    s
}

#[test]
fn wrapped_counters_give_rates_and_reset_ones_give_none() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let near_wrap = (1u64 << 32) - 1000;
    write_root(
        root,
        &[
            (
                "proc/1/net/dev",
                netdev(&[
                    // A 32-bit driver counter about to wrap.
                    (
                        "eth0",
                        [near_wrap, 100, 0, 0, 0, 0, 0, 0, 5000, 50, 0, 0, 0, 0, 0, 0],
                    ),
                    // An interface about to be re-created.
                    (
                        "veth1",
                        [
                            9_000_000_000,
                            900,
                            1,
                            2,
                            0,
                            0,
                            0,
                            0,
                            8_000_000,
                            800,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                        ],
                    ),
                ]),
            ),
            (
                "proc/diskstats",
                diskstats(&[
                    ("sda", [100, 10, 2000, 50, 200, 20, 4000, 80, 0, 90, 130]),
                    (
                        "sdb",
                        [5_000_000, 0, 80_000_000, 9000, 1, 0, 8, 1, 0, 9001, 9002],
                    ),
                ]),
            ),
        ],
    );
    let mut net = NodeCollector::new(NodeMetricset::Network, &options(root));
    let mut disk = NodeCollector::new(NodeMetricset::Diskio, &options(root));
    assert_eq!(net.collect(at(0)).unwrap().events.len(), 2);
    assert_eq!(disk.collect(at(0)).unwrap().events.len(), 2);
    write_root(
        root,
        &[
            (
                "proc/1/net/dev",
                netdev(&[
                    (
                        "eth0",
                        [3000, 120, 0, 0, 0, 0, 0, 0, 9000, 90, 0, 0, 0, 0, 0, 0],
                    ),
                    ("veth1", [10, 1, 0, 0, 0, 0, 0, 0, 20, 2, 0, 0, 0, 0, 0, 0]),
                ]),
            ),
            (
                "proc/diskstats",
                diskstats(&[
                    // 2 s later: 100 more reads of 8 sectors, 50 more writes of 16 sectors.
                    ("sda", [200, 20, 2800, 250, 250, 30, 4800, 180, 1, 490, 930]),
                    // sdb was detached and attached again: its counters started over.
                    ("sdb", [10, 0, 80, 3, 0, 0, 0, 0, 0, 3, 3]),
                ]),
            ),
        ],
    );
    let n = net.collect(at(2)).unwrap();
    assert_eq!(n.counter_resets, 1);
    let eth0 = &n.events[0];
    // 1000 to reach 2^32, 3000 after: 4000 bytes in 2 s.
    assert_eq!(eth0.get("host.network.ingress.bytes"), Some(&json!(4000)));
    assert_eq!(
        eth0.get("system.network.in.per_sec.bytes"),
        Some(&json!(2000.0))
    );
    assert_eq!(
        eth0.get("system.network.out.per_sec.packets"),
        Some(&json!(20.0))
    );
    let veth1 = &n.events[1];
    assert_eq!(veth1.get("system.network.in.bytes"), Some(&json!(10)));
    assert!(
        veth1.get("host.network").is_none(),
        "a reset gives no delta"
    );
    assert!(
        veth1.get("system.network.in.per_sec").is_none(),
        "a reset gives no rate"
    );

    let d = disk.collect(at(2)).unwrap();
    assert_eq!(d.counter_resets, 1);
    let sda = d.events[0].get("system.diskio").unwrap().clone();
    assert_eq!(
        sda["iostat"],
        json!({
            "await": 2.0,
            "busy": 20.0,
            "queue": {"avg_size": 0.4},
            "read": {"await": 2.0, "per_sec": {"bytes": 204800.0}, "request": {"merges_per_sec": 5.0, "per_sec": 50.0}},
            "request": {"avg_size": 10.6667},
            "service_time": 2.6667,
            "write": {"await": 2.0, "per_sec": {"bytes": 204800.0}, "request": {"merges_per_sec": 5.0, "per_sec": 25.0}},
        })
    );
    assert_eq!(
        d.events[0].get("host.disk.read.bytes"),
        Some(&json!(409600))
    );
    assert!(d.events[1].get("system.diskio.iostat").is_none());
    assert!(d.events[1].get("host.disk").is_none());
    assert_eq!(
        d.events[1].get("system.diskio.read.count"),
        Some(&json!(10))
    );
}

#[test]
fn a_vanished_mount_is_reported_and_the_others_collected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_root(
        root,
        &[
            (
                "proc/1/mountinfo",
                "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                 28 27 0:21 / /proc rw - proc proc rw\n\
                 29 27 254:16 / /data rw,relatime - xfs /dev/vdb rw\n\
                 30 27 0:40 / /run rw - tmpfs tmpfs rw\n"
                    .to_owned(),
            ),
            (
                "proc/filesystems",
                "nodev\tproc\nnodev\ttmpfs\n\text4\n\txfs\n".to_owned(),
            ),
        ],
    );
    let mut fs = NodeCollector::new(NodeMetricset::Filesystem, &options(root));
    let got = fs.collect(at(0)).unwrap();
    assert_eq!(got.events.len(), 1, "only / is there");
    let e = &got.events[0];
    assert_eq!(e.get("system.filesystem.mount_point"), Some(&json!("/")));
    assert_eq!(
        e.get("system.filesystem.device_name"),
        Some(&json!("/dev/vda"))
    );
    let total = e.get("system.filesystem.total").unwrap().as_u64().unwrap();
    let free = e.get("system.filesystem.free").unwrap().as_u64().unwrap();
    let used = e
        .get("system.filesystem.used.bytes")
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(total > 0 && used == total - free);
    assert_eq!(got.problems.len(), 1);
    let problem = &got.problems[0];
    assert!(problem.is_not_found());
    assert!(matches!(problem, Error::Statvfs { mount_point, .. } if mount_point == "/data"));
    assert!(
        problem
            .to_string()
            .starts_with("filesystem /data: statvfs "),
        "{problem}"
    );

    // ignore_types replaces the nodev list: tmpfs is now collected, ext4 is not.
    let mut opts = options(root);
    opts.filesystem_ignore_types = Some(vec!["ext4".into(), "xfs".into(), "proc".into()]);
    std::fs::create_dir_all(root.join("run")).unwrap();
    let got = NodeCollector::new(NodeMetricset::Filesystem, &opts)
        .collect(at(0))
        .unwrap();
    let points: Vec<_> = got
        .events
        .iter()
        .map(|e| e.get("system.filesystem.mount_point").unwrap().clone())
        .collect();
    assert_eq!(points, [json!("/run")]);
}

#[test]
fn an_unreadable_file_fails_the_collection_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut mem = NodeCollector::new(NodeMetricset::Memory, &options(dir.path()));
    let err = mem.collect(at(0)).unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read {}/proc/meminfo: ",
            dir.path().display()
        )),
        "{err}"
    );
    write_root(
        dir.path(),
        &[(
            "proc/meminfo",
            "MemTotal: 10 kB\nMemFree: x kB\n".to_owned(),
        )],
    );
    let err = mem.collect(at(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}/proc/meminfo:2: MemFree: value is not a number",
            dir.path().display()
        )
    );
}
