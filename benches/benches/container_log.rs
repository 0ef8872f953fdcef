//! `parse_line` and the reassembler on the standard generated workload (one core).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logtide_benches::Workload;
use logtide_container_log::{parse_line, Format, Reassembler, ReassemblerConfig};

const SIZE: &str = "32M";

fn parse(c: &mut Criterion) {
    for format in ["cri", "docker"] {
        let w = Workload::load(format, SIZE);
        let mut group = c.benchmark_group(format!("parse_line/{format}"));
        group.sample_size(20);
        group.throughput(Throughput::Bytes(w.data.len() as u64));
        group.bench_function("bytes", |b| {
            b.iter(|| {
                let mut ok = 0usize;
                for line in w.iter() {
                    if let Ok(l) = parse_line(black_box(line), Format::Auto) {
                        ok += usize::from(!l.partial);
                    }
                }
                ok
            })
        });
        group.throughput(Throughput::Elements(w.lines.len() as u64));
        group.bench_function("lines", |b| {
            b.iter(|| {
                w.iter()
                    .filter(|line| parse_line(black_box(line), Format::Auto).is_ok())
                    .count()
            })
        });
        group.finish();
    }
}

fn reassemble(c: &mut Criterion) {
    for format in ["cri", "docker"] {
        let w = Workload::load(format, SIZE);
        // Sanity check outside the timing: every generated message comes out exactly once.
        let run = || {
            let mut r = Reassembler::<(), ()>::new(ReassemblerConfig::default());
            let mut entries = 0u64;
            let mut bytes = 0usize;
            for line in w.iter() {
                if let Ok(l) = parse_line(line, Format::Auto) {
                    r.push(&(), &l, (), |e| {
                        entries += 1;
                        bytes += e.message.len();
                    });
                }
            }
            r.flush_all(|_| entries += 1);
            (entries, bytes)
        };
        assert_eq!(
            run().0,
            w.messages,
            "{format}: reassembled entries != generated messages"
        );

        let mut group = c.benchmark_group(format!("parse_and_reassemble/{format}"));
        group.sample_size(20);
        group.throughput(Throughput::Elements(w.lines.len() as u64));
        group.bench_function("lines", |b| b.iter(run));
        group.finish();
    }
}

criterion_group!(benches, parse, reassemble);
criterion_main!(benches);
