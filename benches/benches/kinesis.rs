//! The Kinesis sink's hot path: partition keys, encoding and packing of container log
//! events into records (target: ≥ 1M events per second per core), and the sink's own CPU
//! time per event when it ships to moto_server (moto's time is not counted).
//!
//! Both measure CPU time (the scheduler's per-thread accounting), not wall time, so that
//! a busy machine slows the run but not the result: criterion's "time" is CPU time.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtide_benches::Workload;
use logtide_container_log::{parse_line, Format};
use logtide_event::{Event, LogEntry, LogFile};
use logtide_kinesis::{Compression, KinesisConfig, PackConfig, Packer, Sink};
use logtide_testkit::{KinesisTool, MotoServer, AWS_ENV};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZE: &str = "32M";
/// Events per batch, as the agent hands them to its output.
const BATCH: usize = 512;

/// Events as the tailer makes them from the generated CRI logs, one container per 5,000
/// lines.
/// Events as the tailer makes them: a `LogEntry` each (fields built only on demand).
fn events() -> Vec<Event> {
    let w = Workload::load("cri", SIZE);
    w.iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let l = parse_line(line, Format::Auto).ok()?;
            let id: Arc<str> = Arc::from(format!("{:064x}", i / 5000));
            let entry = LogEntry {
                message: String::from_utf8_lossy(l.message.raw()).into_owned(),
                stream: "stdout",
                file: LogFile::named(
                    Arc::from(format!("/var/log/containers/app_default_app-{id}.log")),
                    Some(id),
                ),
                offset: (i * 200) as u64,
                partial: false,
                truncated: false,
                docker_attrs: None,
                input_type: "container",
            };
            Some(Event::from_log_entry(l.time, entry))
        })
        .collect()
}

fn keys(batch: &[Event]) -> Vec<&str> {
    batch
        .iter()
        .map(|e| e.get_str("container.id").unwrap_or("-"))
        .collect()
}

fn pack(c: &mut Criterion) {
    let events = events();
    let bytes: usize = events
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            e.write_json(&mut b);
            b.len() + 1
        })
        .sum();
    let mut group = c.benchmark_group("kinesis_pack");
    group.sample_size(20);
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, compression) in [
        ("none", Compression::None),
        ("zstd", Compression::Zstd),
        ("gzip", Compression::Gzip),
    ] {
        let mut packer = Packer::new(
            PackConfig {
                compression,
                ..PackConfig::default()
            },
            1,
        )
        .expect("valid configuration");
        // Outside the timing: what goes in comes out, within the limits.
        let mut records = 0;
        let mut data = 0;
        for batch in events.chunks(BATCH) {
            let packed = packer.pack(batch, &keys(batch));
            assert!(packed.records.iter().all(|r| r.size() <= 1 << 20));
            records += packed.records.len();
            data += packed.records.iter().map(|r| r.data.len()).sum::<usize>();
        }
        eprintln!(
            "kinesis_pack/{name}: {} events ({bytes} bytes of JSON) -> {records} records, {data} bytes",
            events.len()
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                for _ in 0..iters {
                    let mut n = 0;
                    for batch in events.chunks(BATCH) {
                        let keys = keys(black_box(batch));
                        n += packer.pack(batch, &keys).records.len();
                    }
                    black_box(n);
                }
                thread_cpu_time() - start
            })
        });
    }
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

/// CPU time of this process so far (every thread), from the scheduler's accounting.
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task entry").path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The sink's CPU per batch shipped to moto_server: criterion's "time" here is the CPU
/// time of this process (partition keys, packing, signing, HTTP), not wall time.
fn sink_cpu(c: &mut Criterion) {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let events = events();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("bench", 4);
    let dir = std::env::temp_dir().join(format!("logtide-bench-dl-{}", std::process::id()));
    let mut config = KinesisConfig::new("bench");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir;
    let mut sink = Sink::connect(&config).expect("sink");
    let mut group = c.benchmark_group("kinesis_sink_cpu");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut batches = events.chunks(BATCH).cycle();
    group.bench_function("send_512_to_moto", |b| {
        b.iter_custom(|iters| {
            let start = cpu_time();
            for _ in 0..iters {
                let batch = batches.next().unwrap_or_default();
                sink.send(black_box(batch)).expect("sent");
            }
            cpu_time() - start
        })
    });
    group.finish();
    eprintln!("kinesis_sink_cpu: {:?}", sink.stats());
}

criterion_group!(benches, pack, sink_cpu);
criterion_main!(benches);
