//! logtide-files ships CRI logs, among them a 3 MiB and a 12 MiB entry, into a 2-shard
//! stream of moto_server; boto3 reads every record back, and every entry is there exactly
//! once, as written, in order per container.

use std::collections::HashSet;
use std::time::Duration;

use super::kinesis_common::*;
use logtide_testkit::{KinesisTool, MotoServer};

#[test]
fn every_entry_arrives_exactly_as_written() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let dir = tempfile::tempdir().unwrap();
    fs_logs(dir.path());
    let mut containers: Vec<Container> = (0..6)
        .map(|n| Container::new(&dir.path().join("logs"), n))
        .collect();
    for i in 0..1500 {
        for (n, c) in containers.iter_mut().enumerate() {
            let len = 40 + (i * 37 + n * 101) % 900;
            c.write(message(n as u64, i, len));
            if i == 700 && n == 1 {
                c.write(message(1, 100_000, 3 << 20));
            }
            if i == 900 && n == 2 {
                c.write(message(2, 200_000, 12 << 20));
            }
        }
    }
    let config = config(dir.path(), &moto.endpoint(), "logs", "");
    let files: Vec<&std::path::Path> = containers.iter().map(|c| c.file.as_path()).collect();
    let log = run_until_acknowledged(&config, &files, Duration::from_secs(240));

    let records = tool.read_all("logs");
    for r in &records {
        assert!(
            r.data.len() + r.partition_key.len() <= 1 << 20,
            "a record of {} bytes",
            r.data.len() + r.partition_key.len()
        );
    }
    let shards: HashSet<&str> = records.iter().map(|r| r.shard.as_str()).collect();
    assert_eq!(shards.len(), 2, "both shards are used");
    let decoded = decode(&records);
    assert!(
        decoded.chunks >= 3 + 12,
        "the large entries came in chunks ({} chunks)",
        decoded.chunks
    );
    let got = by_container(&decoded);
    assert_eq!(got.len(), containers.len());
    for c in &containers {
        let messages = &got[&c.id];
        assert_eq!(
            messages.len(),
            c.messages.len(),
            "container {}: {} entries arrived, {} written",
            c.id,
            messages.len(),
            c.messages.len()
        );
        for (i, (g, w)) in messages.iter().zip(&c.messages).enumerate() {
            assert!(
                g == w,
                "container {} entry {i}: got {} bytes {:?}…, wrote {} bytes {:?}…",
                c.id,
                g.len(),
                &g[..g.len().min(60)],
                w.len(),
                &w[..w.len().min(60)]
            );
        }
    }
    assert!(
        log.contains("kinesis counters"),
        "the agent reports its Kinesis counters:\n{log}"
    );
}

fn fs_logs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
}
