//! Writing events as JSON (the output's hot path): a typical container log event whose
//! message is itself JSON, so the string escaper meets many quotes; and the same event
//! after the seed chain, once as the tailer's entry (Kubernetes fields shared, the
//! decoded message kept as its text) and once as maps.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;

use logtide_event::{DecodedKey, Event, LogEntry, LogFile, SharedFields, Timestamp};
use serde_json::json;

const MESSAGE: &str = r#"{"ts":"2024-06-01T00:36:59.526Z","level":"info","msg":"cart snapshot","cart_id":"3a8c4140542a14e2a293432b","items":[{"sku":"SKU-85080322","qty":18,"price":81.06,"tags":"replica refresh session"},{"sku":"SKU-02631411","qty":9,"price":83.25}],"user":{"id":"u-7731","tier":"gold"}}"#;

const PATH: &str = "/var/log/containers/checkout-api-1ca3b1799d-b6lkk_default_app-1212d7144744cadd17152589b951045df4b1338296b70f4fd5782c506e9f872e.log";

fn event() -> Event {
    let message = MESSAGE;
    Event::from_json(json!({
        "@timestamp": "2024-06-01T00:36:59.526712987Z",
        "message": message,
        "stream": "stdout",
        "log": {"file": {"path": "/var/log/containers/checkout-api-1ca3b1799d-b6lkk_default_app-1212d7144744cadd17152589b951045df4b1338296b70f4fd5782c506e9f872e.log"}, "offset": 123456},
        "container": {"id": "1212d7144744cadd17152589b951045df4b1338296b70f4fd5782c506e9f872e"},
        "input": {"type": "container"}
    }))
    .expect("a valid event")
}

/// The event after the seed chain, as an entry: Kubernetes fields shared, `message-json`
/// the message's text, `message` dropped.
fn seed_entry() -> Event {
    let entry = LogEntry {
        message: MESSAGE.to_owned(),
        stream: "stdout",
        file: LogFile::named(
            Arc::from(PATH),
            Some(Arc::from(
                "1212d7144744cadd17152589b951045df4b1338296b70f4fd5782c506e9f872e",
            )),
        ),
        offset: 123_456,
        partial: false,
        truncated: false,
        docker_attrs: None,
        input_type: "container",
    };
    let time = Timestamp::parse_rfc3339(b"2024-06-01T00:36:59.526712987Z").expect("a time");
    let mut e = Event::from_log_entry(time, entry);
    let shared = json!({"kubernetes": {
        "namespace": "default",
        "pod": {"name": "checkout-api-1ca3b1799d-b6lkk", "uid": "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"},
        "container": {"name": "app"},
        "node": {"name": "node-1"},
        "labels": {"app": "checkout-api", "pod-template-hash": "1ca3b1799d"},
    }});
    e.merge_shared(&Arc::new(SharedFields::new(
        shared.as_object().cloned().expect("an object"),
    )));
    assert!(e.set_message_decoded(DecodedKey::new("message-json").expect("a new top-level key")));
    assert!(e.delete("message"));
    e
}

fn write_json(c: &mut Criterion) {
    let e = event();
    let mut buf = Vec::with_capacity(4096);
    e.write_json(&mut buf);
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function("write_json", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&e).write_json(&mut buf);
            buf.len()
        })
    });
    group.bench_function("serde_json_to_writer", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&e)).expect("serializes");
            buf.len()
        })
    });
    let entry = seed_entry();
    let maps = Event::with_fields(entry.timestamp(), entry.fields().clone());
    let entry = seed_entry();
    for (name, e) in [
        ("write_json/seed_entry", &entry),
        ("write_json/seed_maps", &maps),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                black_box(e).write_json(&mut buf);
                buf.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, write_json);
criterion_main!(benches);
