//! The relay's hot path: decoding Kinesis records back into events and encoding them
//! into gzip NDJSON S3 objects (target: ≥ 200k events per CPU-second).
//!
//! Records are packed outside the timing the way the sink writes them (aggregated per
//! container, 1 MiB records, no compression), from the generated CRI workload. The time is
//! the measuring thread's CPU time (scheduler accounting), not wall time.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtide_benches::Workload;
use logtide_container_log::{parse_line, Format};
use logtide_event::Event;
use logtide_kinesis::{Decoder, PackConfig, Packer};
use logtide_s3::{Archive, S3Config};
use serde_json::{json, Value};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZE: &str = "32M";

fn records() -> (usize, Vec<Vec<u8>>) {
    let w = Workload::load("cri", SIZE);
    let events: Vec<Event> = w
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let l = parse_line(line, Format::Auto).ok()?;
            let id = format!("{:064x}", i / 5000);
            let mut e = Event::new(l.time);
            e.insert(
                "message",
                Value::String(String::from_utf8_lossy(l.message.raw()).into_owned()),
            )
            .ok()?;
            e.insert("stream", json!("stdout")).ok()?;
            e.insert("log.offset", json!(i * 200)).ok()?;
            e.insert("container.id", json!(id)).ok()?;
            Some(e)
        })
        .collect();
    let mut packer = Packer::new(PackConfig::default(), 1).expect("valid configuration");
    let mut out = Vec::new();
    for batch in events.chunks(512) {
        let keys: Vec<&str> = batch
            .iter()
            .map(|e| e.get("container.id").and_then(Value::as_str).unwrap_or("-"))
            .collect();
        out.extend(
            packer
                .pack(batch, &keys)
                .records
                .into_iter()
                .map(|r| r.data),
        );
    }
    (events.len(), out)
}

fn decode_and_archive(c: &mut Criterion) {
    let (n, records) = records();
    let mut config = S3Config::new("bench-bucket");
    config.max_object_bytes = 64 << 20;
    // Outside the timing: every event comes out, once.
    {
        let mut decoder = Decoder::default();
        let mut archive = Archive::new(&config).expect("valid configuration");
        let mut events = 0;
        for (i, r) in records.iter().enumerate() {
            let d = decoder.decode(r, 0).expect("decodable");
            events += d.events.len();
            let _ = archive.add("shardId-000000000000", &i.to_string(), d.events);
        }
        let objects = archive.take_all();
        let gz: usize = objects.iter().map(|o| o.body.len()).sum();
        assert_eq!(events, n);
        eprintln!(
            "relay_decode_s3: {n} events in {} records -> {} objects, {gz} bytes gzip",
            records.len(),
            objects.len()
        );
    }
    let mut group = c.benchmark_group("relay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("decode_gzip_ndjson", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu_time();
            for _ in 0..iters {
                let mut decoder = Decoder::default();
                let mut archive = Archive::new(&config).expect("valid configuration");
                let mut objects = Vec::new();
                for (i, r) in records.iter().enumerate() {
                    let d = decoder.decode(black_box(r), 0).expect("decodable");
                    objects.extend(archive.add("shardId-000000000000", &i.to_string(), d.events));
                }
                objects.extend(archive.take_all());
                black_box(objects);
            }
            thread_cpu_time() - start
        })
    });
    group.finish();
}

/// CPU time of the calling thread so far, from the scheduler's accounting.
fn thread_cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    Duration::from_nanos(
        text.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("schedstat starts with nanoseconds on the CPU"),
    )
}

criterion_group!(benches, decode_and_archive);
criterion_main!(benches);
