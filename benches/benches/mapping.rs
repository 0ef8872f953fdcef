//! The mapping normalizer per document: a typical relay document (an event after the seed
//! processors: decoded `message-json`, Kubernetes metadata, log position) against a warm
//! mapping, when nothing conflicts and when one field does (one core).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

/// The allocator the logtide binaries ship with, so that the numbers are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use logtide_event::Event;
use logtide_mapping::{IndexMapping, MappingConfig, Normalizer};
use serde_json::{json, Value};

/// A typical document as the relay indexes it: 30 leaves, 4 levels deep.
fn document() -> Value {
    json!({
        "@timestamp": "2024-05-06T07:08:09.123456789Z",
        "stream": "stdout",
        "input": {"type": "container"},
        "container": {"id": "0123456789abcdef0123456789abcdef"},
        "log": {"offset": 123_456, "file": {"path": "/var/log/containers/shop-7d9f-abcde_prod_shop-0123456789abcdef.log"}},
        "kubernetes": {
            "namespace": "prod",
            "pod": {"name": "shop-7d9f-abcde", "uid": "7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"},
            "container": {"name": "shop"},
            "node": {"name": "node-1"},
            "labels": {"app.kubernetes.io/name": "shop", "pod-template-hash": "7d9f"},
        },
        "message-json": {
            "ts": "2024-05-06T07:08:09.123Z", "level": "info", "logger": "com.shop.OrderService",
            "msg": "request completed", "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "http": {"method": "POST", "path": "/api/v1/orders/8123457", "status": 201, "duration_ms": 42.317, "bytes": 1834},
            "user": {"id": 4_821_373, "tenant": "t-17"},
        },
    })
}

fn normalizer(config: Value) -> Normalizer {
    MappingConfig::from_json(&config)
        .and_then(|c| c.build())
        .expect("the bench configuration builds")
}

/// A mapping that has seen the document (as after the first few of a day's index).
fn warm(n: &Normalizer, doc: &Value) -> IndexMapping {
    let mut m = IndexMapping::from_index_template(&n.index_template(&["logtide-*"], 200))
        .expect("template parses");
    let mut first = doc.clone();
    let outcome = n.normalize_value(&mut m, &mut first);
    assert!(
        outcome.unresolved.is_none(),
        "the bench document is indexable"
    );
    m
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mapping");
    let doc = document();

    let coerce = normalizer(json!({"default": "coerce"}));
    let mut m = warm(&coerce, &doc);
    let mut d = doc.clone();
    assert!(!coerce.normalize_value(&mut m, &mut d).is_changed());
    g.bench_function("normalize_value/no_conflict", |b| {
        b.iter(|| black_box(coerce.normalize_value(&mut m, black_box(&mut d))))
    });
    g.bench_function("predict/no_conflict", |b| {
        b.iter(|| black_box(m.predict(black_box(&d))))
    });

    let mut event = Event::from_json(doc.clone()).expect("the bench event is valid");
    let mut em = warm(&coerce, &doc);
    assert!(!coerce.normalize_event(&mut em, &mut event).is_changed());
    g.bench_function("normalize_event/no_conflict", |b| {
        b.iter(|| black_box(coerce.normalize_event(&mut em, black_box(&mut event))))
    });

    let stringify =
        normalizer(json!({"rules": [{"fields": "message-json.*", "policy": "stringify"}]}));
    let mut sm = warm(&stringify, &doc);
    let mut sd = doc.clone();
    let _ = stringify.normalize_value(&mut sm, &mut sd);
    assert!(!stringify.normalize_value(&mut sm, &mut sd).is_changed());
    g.bench_function("normalize_value/stringify_no_change", |b| {
        b.iter(|| black_box(stringify.normalize_value(&mut sm, black_box(&mut sd))))
    });
    g.bench_function("normalize_value/stringify_converting", |b| {
        b.iter_batched(
            || doc.clone(),
            |mut d| black_box(stringify.normalize_value(&mut sm, &mut d)),
            BatchSize::SmallInput,
        )
    });

    let rename = normalizer(json!({"rules": [{"fields": "message-json.*", "policy": "rename"}]}));
    let mut rm = warm(&rename, &doc);
    let mut conflicting = doc.clone();
    conflicting["message-json"]["user"]["id"] = json!("u-4821373");
    let mut first = conflicting.clone();
    let _ = rename.normalize_value(&mut rm, &mut first);
    g.bench_function("normalize_value/one_conflict_renamed", |b| {
        b.iter_batched(
            || conflicting.clone(),
            |mut d| black_box(rename.normalize_value(&mut rm, &mut d)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("clone_document", |b| b.iter(|| black_box(doc.clone())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
