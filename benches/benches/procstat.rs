//! One full collection of logtide-metrics: every node metricset over this machine's
//! fixture `/proc` (two samples alternating, so rates are computed) and the pod,
//! container and volume events of a 100-pod kubelet Summary document (with pod limits
//! read from a cgroup v2 fixture). The kubelet request itself (TLS, HTTP) is not in it.
//! Dropping the events is (the output thread does it in the agent).

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use logtide_event::Timestamp;
use logtide_procstat::{
    Collector, KubeletOptions, KubernetesCollector, KubernetesMetricset, KubernetesOptions,
    NodeCollector, NodeMetricset, NodeOptions, SampleTime, VerificationMode,
};
use serde_json::Value;

/// The allocator logtide-metrics ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/procstat/tests/data")
        .join(rel)
}

/// The fixture summary with its 3 pods repeated to `n` (new names and UIDs).
fn summary(n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(data("kubelet/summary.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let templates = doc["pods"].as_array().unwrap().clone();
    let pods: Vec<Value> = (0..n)
        .map(|i| {
            let mut p = templates[i % templates.len()].clone();
            let r = &mut p["podRef"];
            r["name"] = format!("{}-{i}", r["name"].as_str().unwrap()).into();
            r["uid"] = format!("00000000-0000-4000-8000-{i:012}").into();
            p
        })
        .collect();
    doc["pods"] = Value::Array(pods);
    serde_json::to_vec(&doc).unwrap()
}

fn link(root: &Path, name: &str, target: &str) {
    let path = root.join(name);
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(data(target), path).unwrap();
}

fn collection(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    link(root, "proc", "node/t0/proc");
    link(root, "sys", "cgroup2/t1/sys");
    let node = NodeOptions {
        hostfs: root.to_owned(),
        host_name: "bench-node".into(),
        period: Duration::from_secs(10),
        filesystem_ignore_types: None,
    };
    let mut nodes: Vec<NodeCollector> = NodeMetricset::ALL
        .iter()
        .map(|m| NodeCollector::new(*m, &node))
        .collect();
    let mut kubelet = KubeletOptions::new("https://bench-node:10250");
    kubelet.verification_mode = VerificationMode::None;
    kubelet.token_path = None;
    let mut kube = KubernetesCollector::new(&KubernetesOptions {
        metricsets: vec![
            KubernetesMetricset::Pod,
            KubernetesMetricset::Container,
            KubernetesMetricset::Volume,
        ],
        kubelet,
        hostfs: root.to_owned(),
        host_name: "bench-node".into(),
        period: Duration::from_secs(10),
        cgroup_fallback: false,
    })
    .unwrap();
    let body = summary(100);
    let origin = Instant::now();
    let now = || SampleTime::new(Timestamp::now(), origin.elapsed() + Duration::from_secs(1));
    let mut flip = false;
    let mut flip_proc = |root: &Path| {
        flip = !flip;
        link(
            root,
            "proc",
            if flip { "node/t1/proc" } else { "node/t0/proc" },
        );
    };
    // Sanity: what one collection makes.
    flip_proc(root);
    let mut events = 0;
    for n in &mut nodes {
        events += n.collect(now()).unwrap().events.len();
    }
    let k = kube.events_from_summary(&body, now()).unwrap();
    assert!(k.problems.is_empty(), "{:?}", k.problems);
    assert_eq!(k.events.len(), 100 + 133 + 167, "pods, containers, volumes");
    eprintln!(
        "one collection: {events} node events, {} kubernetes events",
        k.events.len()
    );

    // CPU time rather than wall time: the machine is shared, and wall time under load
    // counts other processes' turns.
    let on_cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    };
    let rounds = 200;
    let before = on_cpu();
    for _ in 0..rounds {
        flip_proc(root);
        for n in &mut nodes {
            drop(n.collect(now()).unwrap());
        }
        drop(kube.events_from_summary(&body, now()).unwrap());
    }
    let per_ms = (on_cpu() - before) / f64::from(rounds) * 1e3;
    eprintln!("CPU time per full collection (node + 100 pods), {rounds} rounds: {per_ms:.2} ms");

    let mut g = c.benchmark_group("procstat");
    g.bench_function("node_all_metricsets", |b| {
        b.iter(|| {
            flip_proc(root);
            for n in &mut nodes {
                drop(n.collect(now()).unwrap());
            }
        })
    });
    g.bench_function("kubelet_summary_100_pods", |b| {
        b.iter(|| drop(kube.events_from_summary(&body, now()).unwrap()))
    });
    g.bench_function("full_collection_node_and_100_pods", |b| {
        b.iter(|| {
            flip_proc(root);
            for n in &mut nodes {
                n.collect(now()).unwrap();
            }
            drop(kube.events_from_summary(&body, now()).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, collection);
criterion_main!(benches);
