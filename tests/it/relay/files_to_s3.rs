//! The whole path, with both binaries and their default settings: `logtide-files` tails
//! kubelet-style CRI logs (a 3 MiB and a 12 MiB entry in 16 KiB `P` chunks, larger than a
//! Kinesis record, and a rename rotation in the middle of an entry) into a 2-shard stream
//! of moto_server; `logtide-relay` reads
//! the stream into S3 and Elasticsearch (noida-db). boto3 reads the archive back: every
//! entry once, whole, in order per container; the index holds every entry once, whole.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::common::{append, cri, files_bin, sigterm, start};
use super::relay_bin;
use logtide_testkit::{KinesisTool, MotoServer, NoidaDb, S3Tool, SearchTool};
use serde_json::Value;

#[test]
fn agent_to_stream_to_relay_to_s3() {
    let _one = crate::one_at_a_time();
    let files = files_bin();
    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 2);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let es = NoidaDb::start();
    let search = SearchTool::new(&es.endpoint());
    search.wait_ready();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();

    // Three containers in kubelet's file naming; what each wrote, in order.
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    let names: Vec<(String, PathBuf)> = (0..3)
        .map(|n| {
            let id = format!("{n:064x}");
            let file = logs.join(format!("app-{n}-7d9f8b6c5-x2x7q_default_app-{id}.log"));
            (id, file)
        })
        .collect();
    let mut write = |n: usize, message: String| {
        append(&names[n].1, &cri(&message));
        written.entry(names[n].0.clone()).or_default().push(message);
    };
    for i in 0..400 {
        for n in 0..3 {
            write(
                n,
                format!("c{n} #{i:04} \"quoted\" ünïcödé {}", "x".repeat(i % 97)),
            );
        }
    }
    // Larger than a Kinesis record: split by the agent, joined by the relay. Both pass
    // whole with the default max_entry_bytes (16 MiB).
    write(1, format!("c1 big {}", "y".repeat(3 << 20)));
    write(0, format!("c0 bigger {}", "w".repeat(12 << 20)));

    let files_config = dir.path().join("files.yml");
    fs::write(
        &files_config,
        format!(
            "inputs:
  - type: container
    paths: ['{logs}/*.log']
registry: {{path: {reg}}}
output.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {e}
  dead_letter_path: {dl}
",
            logs = logs.display(),
            reg = dir.path().join("registry").display(),
            e = moto.endpoint(),
            dl = dir.path().join("files-dl").display(),
        ),
    )
    .unwrap();
    let relay_config = dir.path().join("relay.yml");
    fs::write(
        &relay_config,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {e}
  checkpoint_interval: 300ms
  idle_poll_interval: 200ms
  dead_letter_path: {dl}
  checkpoint: {{path: {cp}}}
sinks:
  s3: {{bucket: archive, prefix: logtide, region: us-east-1, endpoint: {e}, max_age: 1s}}
  elasticsearch:
    hosts: [\"{es}\"]
    index: \"files-%{{+yyyy.MM.dd}}\"
    dead_letter_index: \"files-deadletter-%{{+yyyy.MM.dd}}\"
",
            e = moto.endpoint(),
            es = es.endpoint(),
            dl = dir.path().join("relay-dl").display(),
            cp = dir.path().join("cp").display(),
        ),
    )
    .unwrap();
    let (files_log, relay_log) = (dir.path().join("files.log"), dir.path().join("relay.log"));
    let mut agent = start(
        &files,
        &["run", "-c", files_config.to_str().unwrap()],
        &files_log,
    );
    let mut relay = start(
        Path::new(relay_bin()),
        &["run", "--config", relay_config.to_str().unwrap()],
        &relay_log,
    );

    // A rename rotation in the middle of an entry of container 2: its first chunk in the
    // old file, the rest in the new one.
    std::thread::sleep(Duration::from_secs(2));
    let entry = format!("c2 across the rotation {}", "z".repeat(40_000));
    let chunks = cri(&entry);
    let (head, tail) = chunks.split_at(chunks.find('\n').unwrap() + 1);
    append(&names[2].1, head);
    fs::rename(&names[2].1, names[2].1.with_extension("log.1")).unwrap();
    append(&names[2].1, tail);
    written.entry(names[2].0.clone()).or_default().push(entry);

    let want: usize = written.values().map(Vec::len).sum();
    let deadline = Instant::now() + Duration::from_secs(180);
    let got = loop {
        let mut got: HashMap<String, Vec<String>> = HashMap::new();
        for l in s3.read_lines("archive", "logtide/") {
            let v: Value = serde_json::from_str(&l.line).unwrap();
            let id = v["container"]["id"].as_str().unwrap().to_owned();
            got.entry(id)
                .or_default()
                .push(v["message"].as_str().unwrap().to_owned());
        }
        if got.values().map(Vec::len).sum::<usize>() >= want {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want} entries archived\nagent: {}\nrelay: {}",
            got.values().map(Vec::len).sum::<usize>(),
            fs::read_to_string(&files_log).unwrap_or_default(),
            fs::read_to_string(&relay_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // The index: the event time is 2024-06-01 (the CRI timestamps).
    let deadline = Instant::now() + Duration::from_secs(120);
    let indexed = loop {
        let docs = search.all("files-2024.06.01");
        if docs.len() >= want {
            break docs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want} indexed\nrelay: {}",
            docs.len(),
            fs::read_to_string(&relay_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    sigterm(&mut agent, &files_log);
    sigterm(&mut relay, &relay_log);
    let mut in_index: HashMap<String, Vec<String>> = HashMap::new();
    for (_, doc) in &indexed {
        in_index
            .entry(doc["container"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(doc["message"].as_str().unwrap().to_owned());
    }
    for (id, messages) in &written {
        let mut want = messages.clone();
        want.sort();
        let mut got = in_index.remove(id).unwrap_or_default();
        got.sort();
        assert!(
            want == got,
            "container {id}: the index differs from what was written"
        );
    }
    assert_eq!(search.count("files-deadletter-*"), 0);
    for (id, messages) in &written {
        let archived = &got[id];
        assert_eq!(archived.len(), messages.len(), "container {id}");
        for (i, (a, w)) in archived.iter().zip(messages).enumerate() {
            assert!(
                a == w,
                "container {id} entry {i}: {} bytes archived, {} written",
                a.len(),
                w.len()
            );
        }
    }
}
