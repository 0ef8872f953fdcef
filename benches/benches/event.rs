//! Writing events as JSON (the output's hot path): a typical container log event whose
//! message is itself JSON, so the string escaper meets many quotes.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtide_event::Event;
use serde_json::json;

fn event() -> Event {
    let message = r#"{"ts":"2024-06-01T00:36:59.526Z","level":"info","msg":"cart snapshot","cart_id":"3a8c4140542a14e2a293432b","items":[{"sku":"SKU-85080322","qty":18,"price":81.06,"tags":"replica refresh session"},{"sku":"SKU-02631411","qty":9,"price":83.25}],"user":{"id":"u-7731","tier":"gold"}}"#;
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
    group.finish();
}

criterion_group!(benches, write_json);
criterion_main!(benches);
