//! Enriching a 512-event batch (64 container files, 8 lines each in a row, as the tailer
//! hands them over) from a cache of 10,000 pods. With mimalloc, the allocator the
//! logtide binaries ship with.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

mod k8s_support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logtide_event::{Event, LogEntry, LogFile, Timestamp};
use logtide_k8s_meta::{Enricher, K8sMetaConfig};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PODS: usize = 10_000;
const BATCH: usize = 512;

fn batch() -> Vec<Event> {
    (0..BATCH)
        .map(|n| {
            let file = n / 8;
            let pod = file * 151 % PODS;
            let path = k8s_support::log_path(pod, file % 2);
            Event::from_log_entry(
                Timestamp::UNIX_EPOCH,
                LogEntry {
                    message: "GET /api/v1/cart 200 12ms".into(),
                    stream: "stdout",
                    file: LogFile::named(
                        Arc::from(path),
                        Some(Arc::from(k8s_support::container_id(pod, file % 2))),
                    ),
                    offset: n as u64 * 100,
                    partial: false,
                    truncated: false,
                    docker_attrs: None,
                    input_type: "container",
                },
            )
        })
        .collect()
}

fn enrich(c: &mut Criterion) {
    let config = K8sMetaConfig::from_value(&k8s_support::options(), "add_kubernetes_metadata")
        .expect("valid options");
    let objects = k8s_support::owners_and_namespaces(PODS)
        .into_iter()
        .chain((0..PODS).map(k8s_support::pod));
    let enricher = Enricher::from_objects(&config, objects).expect("valid objects");
    let mut check = batch();
    assert!(enricher.enrich_batch(&mut check).is_empty());
    assert!(check
        .iter()
        .all(|e| e.contains("kubernetes.deployment.name")));

    let mut group = c.benchmark_group("k8s_meta");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("enrich_batch_512", |b| {
        b.iter_batched_ref(
            batch,
            |events| black_box(enricher.enrich_batch(events)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, enrich);
criterion_main!(benches);
