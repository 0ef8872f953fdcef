//! A live run over this machine's own /proc: every node metricset, two samples one second
//! apart, values within physical bounds.

use std::time::{Duration, Instant};

use logtide_event::{Event, Timestamp};
use logtide_procstat::{Collector, NodeCollector, NodeMetricset, NodeOptions, SampleTime};
use serde_json::Value;

fn num(e: &Event, path: &str) -> f64 {
    e.get(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {:?}", e.fields()))
}

/// Every number below `prefix` (recursively) whose key ends with `pct`.
fn pcts<'a>(v: &'a Value, key: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                pcts(v, &format!("{key}.{k}"), out);
            }
        }
        _ if key.ends_with(".pct") => out.push((key.to_owned(), v)),
        _ => {}
    }
}

#[test]
fn this_machine_within_physical_bounds() {
    let options = NodeOptions {
        hostfs: "/".into(),
        host_name: logtide_procstat::kernel_host_name(),
        period: Duration::from_secs(1),
        filesystem_ignore_types: None,
    };
    let origin = Instant::now();
    let now = || SampleTime::new(Timestamp::now(), origin.elapsed());
    let mut collectors: Vec<NodeCollector> = NodeMetricset::ALL
        .iter()
        .map(|s| NodeCollector::new(*s, &options))
        .collect();
    for c in &mut collectors {
        c.collect(now()).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut events = Vec::new();
    for c in &mut collectors {
        let got = c.collect(now()).unwrap();
        assert!(got.problems.is_empty(), "{}: {:?}", c.name(), got.problems);
        events.extend(got.events);
    }
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let of = |set: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.get("metricset.name").and_then(Value::as_str) == Some(set))
            .collect()
    };
    let cpu = of("cpu");
    assert_eq!(cpu.len(), 1);
    assert!(num(cpu[0], "system.cpu.cores") >= cores);
    let host_cores = num(cpu[0], "system.cpu.cores");
    let mut all = Vec::new();
    pcts(cpu[0].get("system.cpu").unwrap(), "system.cpu", &mut all);
    assert_eq!(all.len(), 18, "9 states, pct and norm.pct");
    for (k, v) in all {
        let v = v.as_f64().unwrap();
        let max = if k.ends_with("norm.pct") {
            1.0
        } else {
            host_cores
        };
        assert!((0.0..=max).contains(&v), "{k} = {v}");
    }
    // The state shares add up to all the cores (within rounding).
    let sum: f64 = [
        "user", "system", "nice", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .map(|s| num(cpu[0], &format!("system.cpu.{s}.pct")))
    .sum();
    assert!((sum - host_cores).abs() < 0.001 * 8.0, "sum {sum}");
    let core = of("core");
    assert_eq!(core.len() as f64, host_cores);
    for e in core {
        let t = num(e, "system.core.total.pct");
        assert!((0.0..=1.0).contains(&t), "core total {t}");
    }

    let load = of("load")[0];
    assert!(num(load, "system.load.1") >= 0.0);
    assert_eq!(
        num(load, "system.load.norm.5"),
        (num(load, "system.load.5") / host_cores * 10_000.0).round() / 10_000.0
    );

    let mem = of("memory")[0];
    let total = num(mem, "system.memory.total");
    assert!(total > 0.0);
    for used in [
        "system.memory.used.bytes",
        "system.memory.actual.used.bytes",
    ] {
        assert!(num(mem, used) <= total, "{used}");
    }
    for pct in ["system.memory.used.pct", "system.memory.actual.used.pct"] {
        assert!((0.0..=1.0).contains(&num(mem, pct)), "{pct}");
    }
    assert!(num(mem, "system.memory.swap.used.bytes") <= num(mem, "system.memory.swap.total"));

    let fs = of("filesystem");
    assert!(
        fs.iter()
            .any(|e| e.get("system.filesystem.mount_point") == Some(&Value::from("/"))),
        "/ is a real filesystem"
    );
    for e in fs {
        let total = num(e, "system.filesystem.total");
        assert!(num(e, "system.filesystem.used.bytes") <= total);
        assert!(num(e, "system.filesystem.available") <= num(e, "system.filesystem.free"));
        assert!((0.0..=1.0).contains(&num(e, "system.filesystem.used.pct")));
        assert!(num(e, "system.filesystem.free_files") <= num(e, "system.filesystem.files"));
    }

    let disks = of("diskio");
    assert!(!disks.is_empty());
    for e in disks {
        let busy = num(e, "system.diskio.iostat.busy");
        assert!((0.0..=100.0).contains(&busy), "busy {busy}");
    }

    let nets = of("network");
    let lo = nets
        .iter()
        .find(|e| e.get("system.network.name") == Some(&Value::from("lo")))
        .expect("lo is there");
    assert!(num(lo, "system.network.in.per_sec.bytes") >= 0.0);
    assert!(num(lo, "host.network.ingress.bytes") >= 0.0);
}
