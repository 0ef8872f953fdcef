//! The Elasticsearch sink into the emulators (noida-db for the Elasticsearch API,
//! osmem-server for OpenSearch): documents per CPU-second of logtide — the benchmark
//! process's CPU time (every thread: normalization, bulk bodies, gzip, HTTP, parsing the
//! answers), not the emulator's and not wall time.
//!
//! Each iteration writes one batch of 1000 typical relay events (decoded `message-json`,
//! Kubernetes metadata, log position) with the default configuration (bulk 1000
//! documents, 2 requests in flight, gzip) after `setup` installed the templates; the
//! events are copied outside the timing. `conflicts`: one document in five has
//! `message-json.user.id` as a string where the index maps a number (quarantined by the
//! default policy). `no_gzip`: the same as `typical` with `compression: false`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtide_es::{EsConfig, EsSink};
use logtide_event::Event;
use logtide_testkit::{SearchKind, SearchServer};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1000;
const BATCHES: usize = 10;

fn event(n: usize, conflicts: bool) -> Event {
    // The first document maps the field as a number; every fifth after it conflicts.
    let user_id = if conflicts && n % 5 == 1 {
        json!(format!("u-{n}"))
    } else {
        json!(4_821_373 + n)
    };
    Event::from_json(json!({
        "@timestamp": format!("2024-05-06T07:{:02}:{:02}.{:09}Z", (n / 60) % 60, n % 60, n),
        "stream": "stdout",
        "input": {"type": "container"},
        "container": {"id": "0123456789abcdef0123456789abcdef"},
        "log": {"offset": 123_456 + n * 300, "file": {"path": "/var/log/containers/shop-7d9f-abcde_prod_shop-0123456789abcdef.log"}},
        "kubernetes": {
            "namespace": "prod",
            "pod": {"name": "shop-7d9f-abcde", "uid": "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            "container": {"name": "shop"},
            "node": {"name": "node-1"},
            "labels": {"app.kubernetes.io/name": "shop", "pod-template-hash": "7d9f"},
        },
        "message-json": {
            "ts": "2024-05-06T07:08:09.123Z", "level": "info", "logger": "com.shop.OrderService",
            "msg": format!("request {n} completed"), "request_id": format!("{n:032x}"),
            "http": {"method": "POST", "path": format!("/api/v1/orders/{n}"), "status": 201, "duration_ms": 42.317, "bytes": 1834},
            "user": {"id": user_id, "tenant": "t-17"},
        },
    }))
    .expect("the bench event is valid")
}

/// CPU time of this process so far (all threads).
fn process_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn bench_into(c: &mut Criterion, kind: SearchKind, name: &str, conflicts: bool, gzip: bool) {
    let server = SearchServer::start(kind);
    let mut config = EsConfig::new([server.endpoint()]);
    config.compression = gzip;
    logtide_es::setup(&config).expect("setup");
    let mut sink = EsSink::connect(&config).expect("the sink connects");
    let batches: Vec<Vec<Event>> = (0..BATCHES)
        .map(|b| {
            (0..BATCH)
                .map(|i| event(b * BATCH + i, conflicts))
                .collect()
        })
        .collect();
    // The indices exist and their mappings are known before the timing starts.
    for b in &batches {
        sink.write(b.iter().map(Event::clone_unacked).collect())
            .expect("warm-up write");
    }
    let mut g = c.benchmark_group("es");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut cpu = Duration::ZERO;
            for i in 0..iters as usize {
                let events: Vec<Event> = batches[i % BATCHES]
                    .iter()
                    .map(Event::clone_unacked)
                    .collect();
                let start = process_cpu_time();
                sink.write(events).expect("bulk write");
                cpu += process_cpu_time() - start;
            }
            cpu
        })
    });
    g.finish();
    let stats = sink.stats();
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.documents, stats.indexed + stats.dead_lettered);
    eprintln!("{name}: {stats:?}");
}

fn bench(c: &mut Criterion) {
    bench_into(c, SearchKind::NoidaDb, "noida_db/typical", false, true);
    bench_into(c, SearchKind::NoidaDb, "noida_db/conflicts", true, true);
    bench_into(c, SearchKind::NoidaDb, "noida_db/no_gzip", false, false);
    bench_into(c, SearchKind::Osmem, "osmem/typical", false, true);
}

criterion_group!(benches, bench);
criterion_main!(benches);
