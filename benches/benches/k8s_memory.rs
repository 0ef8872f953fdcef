//! Heap held by logtide-k8s-meta's pod cache: 10,000 pods (two containers, six labels,
//! four annotations, an owner each, plus the env, probes and statuses real pods carry),
//! their 100 namespaces and 2,500 ReplicaSets, measured with dhat's heap statistics.
//! For reference, the same pods held as parsed JSON (roughly what a reflector of whole
//! objects keeps). `LOGTIDE_BENCH_PODS` changes the pod count. Target: ≤ 20 MB.
//!
//! `cargo bench -p logtide-benches --bench k8s_memory`

#![allow(missing_docs)]

mod k8s_support;

use logtide_event::{Event, Timestamp};
use logtide_k8s_meta::{Enricher, K8sMetaConfig};
use serde_json::{json, Value};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let pods: usize = std::env::var("LOGTIDE_BENCH_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let config = K8sMetaConfig::from_value(&k8s_support::options(), "add_kubernetes_metadata")
        .expect("valid options");

    let start = live_bytes();
    let values: Vec<Value> = (0..pods).map(k8s_support::pod).collect();
    let as_json = live_bytes() - start;
    drop(values);

    let start = live_bytes();
    let objects = k8s_support::owners_and_namespaces(pods)
        .into_iter()
        .chain((0..pods).map(k8s_support::pod));
    let enricher = Enricher::from_objects(&config, objects).expect("valid objects");
    let cache = live_bytes() - start;

    // The cache answers: the last pod's sidecar is found with its deployment.
    let mut event = Event::new(Timestamp::UNIX_EPOCH);
    let last = pods - 1;
    event
        .insert("log.file.path", json!(k8s_support::log_path(last, 1)))
        .expect("insert");
    let mut batch = vec![event];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    assert!(
        batch[0].contains("kubernetes.deployment.name"),
        "{:?}",
        batch[0]
    );
    assert_eq!(enricher.stats().pods, pods as u64);

    println!(
        "k8s_memory: {pods} pods cached in {:.2} MB ({} bytes per pod); the same pods as JSON values: {:.2} MB",
        mb(cache),
        cache / pods.max(1),
        mb(as_json)
    );
}
