//! `output.kinesis.format: json`, read as a consumer that does not know logtide reads it:
//! 2,000 entries (text, JSON text, a multi-chunk entry) shipped with the defaults plus
//! `format: json` into a 2-shard stream of moto_server, read back with boto3 from every
//! shard. Each record is exactly one JSON event and a newline, keyed by its container, and
//! the records are, line for line, what `output.file` writes for the same logs.

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use super::kinesis_common::*;
use logtide_testkit::{KinesisTool, MotoServer};
use serde_json::Value;

#[test]
fn json_records_hold_one_event_each_as_output_file_writes_it() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("logs")).unwrap();
    let mut containers: Vec<Container> = (0..4)
        .map(|n| Container::new(&dir.path().join("logs"), 40 + n))
        .collect();
    for i in 0..500 {
        for (n, c) in containers.iter_mut().enumerate() {
            if i == 251 && n == 3 {
                // Three CRI chunks: joined into one event, one record.
                c.write(message(n as u64, i, 40_000));
            } else if i % 5 == 0 {
                c.write(format!(
                    r#"{{"level":"info","n":{i},"container":{n},"text":"a \"quoted\" word"}}"#
                ));
            } else {
                c.write(message(n as u64, i, 40 + (i * 31 + n * 7) % 1200));
            }
        }
    }
    let files: Vec<&std::path::Path> = containers.iter().map(|c| c.file.as_path()).collect();
    let config = config(dir.path(), &moto.endpoint(), "logs", "  format: json\n");
    run_until_acknowledged(&config, &files, Duration::from_secs(180));

    let records = tool.read_all("logs");
    assert_eq!(records.len(), 2000, "one record per entry");
    let shards: HashSet<&str> = records.iter().map(|r| r.shard.as_str()).collect();
    assert_eq!(shards.len(), 2, "both shards are used");
    let mut lines = Vec::new();
    for r in &records {
        let text = std::str::from_utf8(&r.data).expect("a record is UTF-8 text");
        let line = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("a record ends with a newline: {text:.80}"));
        assert!(!line.contains('\n'), "one line per record: {text:.80}");
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a record is one JSON value ({e}): {text:.80}"));
        assert!(v.is_object(), "{text:.80}");
        assert_eq!(
            v["container"]["id"].as_str(),
            Some(r.partition_key.as_str()),
            "the partition key is the container id"
        );
        lines.push(line.to_owned());
    }

    // The same logs through output.file, from the start (a registry of its own).
    let out = dir.path().join("out");
    let file_config = dir.path().join("to-file.yml");
    fs::write(
        &file_config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\nregistry:\n  path: {reg}\noutput.file:\n  path: {out}\n  filename: events\n",
            logs = dir.path().join("logs").display(),
            reg = dir.path().join("registry-file").display(),
            out = out.display(),
        ),
    )
    .unwrap();
    run_until_acknowledged(&file_config, &files, Duration::from_secs(120));
    let mut written: Vec<String> = Vec::new();
    for entry in fs::read_dir(&out).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        written.extend(text.lines().map(str::to_owned));
    }
    assert_eq!(written.len(), 2000);
    lines.sort();
    written.sort();
    for (i, (k, f)) in lines.iter().zip(&written).enumerate() {
        assert!(
            k == f,
            "line {i} differs:\n kinesis: {k:.200}\n    file: {f:.200}"
        );
    }
    let joined = lines
        .iter()
        .filter(|l| l.contains(&format!("c3 #{:06}", 251)))
        .count();
    assert_eq!(joined, 1, "the multi-chunk entry is one record");
    assert!(
        lines.iter().any(|l| l.len() > 40_000),
        "and it is whole in that record"
    );
}
