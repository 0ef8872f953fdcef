//! `decode_json_fields` and the seed processor chain (decode `message` into `message-json`,
//! then drop `message` when that worked) per event, and over the generated workload's
//! message mix (one core). `entry_*` events are made as the tailer makes them (a
//! `LogEntry`, with the Kubernetes fields shared as the enricher shares them), so a JSON
//! message is checked and kept as its text; the others hold maps and are decoded into
//! maps.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

/// The allocator the logtide binaries ship with, so that the numbers are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use logtide_benches::Workload;
use logtide_container_log::{parse_line, Format};
use std::sync::Arc;

use logtide_event::{Event, LogEntry, LogFile, SharedFields, Timestamp};
use logtide_json::Processors;
use serde_json::{json, Value};

/// A typical JSON application log line (297 bytes).
const JSON_LINE: &str = r#"{"ts":"2024-05-06T07:08:09.123Z","level":"info","logger":"com.shop.OrderService","msg":"request completed","request_id":"4bf92f3577b34da6a3ce929d0e0e4736","http":{"method":"POST","path":"/api/v1/orders/8123457","status":201,"duration_ms":42.317,"bytes":1834},"user":{"id":4821373,"tenant":"t-17"}}"#;

/// A typical plain-text line, which the decoder leaves alone.
const TEXT_LINE: &str = "2024-05-06 07:08:09.123  INFO 1 --- [nio-8080-exec-7] c.e.orders.OrderController : order placed for customer id=4821373";

/// An event as the tailer and the Kubernetes enrichment hand it to the processors.
fn event_with(message: &str) -> Event {
    Event::from_json(json!({
        "@timestamp": "2024-05-06T07:08:09.123456789Z",
        "message": message,
        "stream": "stdout",
        "log": {"offset": 123_456, "file": {"path": "/var/log/containers/shop-7d9f-abcde_prod_shop-0123456789abcdef.log"}},
        "kubernetes": {
            "namespace": "prod",
            "pod": {"name": "shop-7d9f-abcde", "uid": "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            "container": {"name": "shop"},
            "node": {"name": "node-1"},
            "labels": {"app": "shop", "app.kubernetes.io/name": "shop", "pod-template-hash": "7d9f"},
        },
    }))
    .expect("the bench event is valid")
}

/// The Kubernetes fields `add_kubernetes_metadata` shares between a container's entries.
fn kubernetes() -> Arc<SharedFields> {
    let fields = json!({"kubernetes": {
        "namespace": "prod",
        "pod": {"name": "shop-7d9f-abcde", "uid": "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"},
        "container": {"name": "shop"},
        "node": {"name": "node-1"},
        "labels": {"app": "shop", "app.kubernetes.io/name": "shop", "pod-template-hash": "7d9f"},
    }});
    Arc::new(SharedFields::new(
        fields.as_object().cloned().expect("an object"),
    ))
}

/// An event as the tailer makes it and the enricher leaves it.
fn entry_with(message: &str, shared: &Arc<SharedFields>) -> Event {
    let entry = LogEntry {
        message: message.to_owned(),
        stream: "stdout",
        file: LogFile::named(
            Arc::from("/var/log/containers/shop-7d9f-abcde_prod_shop-0123456789abcdef.log"),
            Some(Arc::from("0123456789abcdef")),
        ),
        offset: 123_456,
        partial: false,
        truncated: false,
        docker_attrs: None,
        input_type: "container",
    };
    let time = Timestamp::parse_rfc3339(b"2024-05-06T07:08:09.123456789Z").expect("a time");
    let mut event = Event::from_log_entry(time, entry);
    event.merge_shared(shared);
    event
}

fn decode_only() -> Processors {
    Processors::from_config(&json!([
        {"decode_json_fields": {"fields": ["message"], "target": "message-json"}},
    ]))
    .expect("decode_json_fields builds")
}

fn seed_chain() -> Processors {
    Processors::from_config(&json!([
        {"decode_json_fields": {
            "fields": ["message"], "process_array": false, "max_depth": 5,
            "target": "message-json", "overwrite_keys": true,
        }},
        {"drop_fields": {"fields": ["message"], "when": {"has_fields": ["message-json"]}}},
    ]))
    .expect("the seed chain builds")
}

fn per_event(c: &mut Criterion) {
    let decode = decode_only();
    let seed = seed_chain();
    let json_event = event_with(JSON_LINE);
    let text_event = event_with(TEXT_LINE);

    // Sanity checks outside the timing.
    let mut e = json_event.clone_unacked();
    assert!(seed.run(&mut e).errors().is_empty());
    assert!(e.contains("message-json.http.status") && !e.contains("message"));

    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(1));
    group.bench_function("serde_json_value/300B", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(JSON_LINE)).expect("valid JSON"))
    });
    group.bench_function("decode_json_fields/300B", |b| {
        b.iter_batched(
            || json_event.clone_unacked(),
            |mut e| {
                let outcome = decode.run(&mut e);
                (e, outcome)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("seed_chain/json_300B", |b| {
        b.iter_batched(
            || json_event.clone_unacked(),
            |mut e| {
                let outcome = seed.run(&mut e);
                (e, outcome)
            },
            BatchSize::SmallInput,
        )
    });
    let shared = kubernetes();
    let entry_json = entry_with(JSON_LINE, &shared);
    let entry_text = entry_with(TEXT_LINE, &shared);
    let mut e = entry_json.clone_unacked();
    assert!(seed.run(&mut e).errors().is_empty());
    assert!(
        e.log_entry().is_some() && !e.contains("message"),
        "kept as text"
    );
    for (name, event) in [
        ("seed_chain/entry_json_300B", &entry_json),
        ("seed_chain/entry_text", &entry_text),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || event.clone_unacked(),
                |mut e| {
                    let outcome = seed.run(&mut e);
                    (e, outcome)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("seed_chain/text", |b| {
        b.iter_batched(
            || text_event.clone_unacked(),
            |mut e| {
                let outcome = seed.run(&mut e);
                (e, outcome)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn workload(c: &mut Criterion) {
    const EVENTS: usize = 20_000;
    let w = Workload::load("cri", "32M");
    let events: Vec<Event> = w
        .iter()
        .filter_map(|line| parse_line(line, Format::Auto).ok())
        .filter(|line| !line.partial)
        .take(EVENTS)
        .map(|line| event_with(&String::from_utf8_lossy(&line.message.to_bytes())))
        .collect();
    let shared = kubernetes();
    let entries: Vec<Event> = events
        .iter()
        .map(|e| entry_with(e.get_str("message").unwrap_or_default(), &shared))
        .collect();
    let seed = seed_chain();
    let decoded = events
        .iter()
        .filter(|e| {
            let mut e = e.clone_unacked();
            let _ = seed.run(&mut e);
            e.contains("message-json")
        })
        .count();
    eprintln!(
        "workload: {} events, {decoded} decoded as JSON",
        events.len()
    );

    let mut group = c.benchmark_group("json/workload");
    group.sample_size(20);
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, set) in [("seed_chain", &events), ("seed_chain_entries", &entries)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || set.iter().map(Event::clone_unacked).collect::<Vec<_>>(),
                |mut events| {
                    let mut errors = 0usize;
                    for e in &mut events {
                        errors += seed.run(e).errors().len();
                    }
                    (events, errors)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, per_event, workload);
criterion_main!(benches);
