//! Oversize entries offloaded instead of cut, and a stream of mixed records. Both binaries,
//! defaults except the settings under test: `logtide-files` ships kubelet-style logs with
//! `format: json, oversize: offload` (one entry of 12 MiB, twelve times the record limit)
//! into moto_server; a second agent ships other logs in logtide's format into the same
//! stream, and boto3 adds a JSON record and a text record of another producer.
//! - boto3 reads every record: each is one JSON event under the record limit; the large
//!   entry's record is its head (flagged `offloaded`, with the reference), and the S3
//!   object holds the whole event.
//! - `logtide-relay` (S3 archive + Elasticsearch on noida-db) restores the whole event
//!   before its sinks: both receive every entry whole; it counts the records by kind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{append, cri, files_bin, sigterm, start};
use super::relay_bin;
use logtide_pipeline::http::{get, METRICS_PATH};
use logtide_pipeline::telemetry::parse_samples;
use logtide_testkit::{free_port, KinesisTool, MotoServer, NoidaDb, S3Tool, SearchTool};
use serde_json::Value;

fn wait_until(what: &str, timeout: Duration, logs: &[&Path], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            let logs: Vec<String> = logs
                .iter()
                .map(|l| fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!("{what}: not within {timeout:?}\n{}", logs.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An agent configuration for `logs`, with `kinesis` appended under `output.kinesis`.
fn agent_config(dir: &Path, name: &str, logs: &Path, moto: &str, kinesis: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yml"));
    fs::write(
        &path,
        format!(
            "inputs:
  - type: container
    paths: ['{logs}/*.log']
registry: {{path: {reg}}}
output.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {moto}
  dead_letter_path: {dl}
{kinesis}",
            logs = logs.display(),
            reg = dir.join(format!("{name}-registry")).display(),
            dl = dir.join(format!("{name}-dl")).display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn offloaded_entries_arrive_whole_and_every_record_kind_is_read() {
    let _one = crate::one_at_a_time();
    let files = files_bin();
    let moto = MotoServer::start();
    let kinesis = KinesisTool::new(&moto.endpoint());
    kinesis.create_stream("logs", 2);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    s3.create_bucket("offload");
    let es = NoidaDb::start();
    let search = SearchTool::new(&es.endpoint());
    search.wait_ready();
    let dir = tempfile::tempdir().unwrap();

    // What each container wrote: json-format containers 0 and 1, logtide-format container 2.
    let mut written: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let containers: Vec<(String, PathBuf)> = (0..3)
        .map(|n| {
            let logs = dir
                .path()
                .join(if n < 2 { "json-logs" } else { "logtide-logs" });
            fs::create_dir_all(&logs).unwrap();
            let id = format!("{:064x}", 0xabc0 + n);
            let file = logs.join(format!("app-{n}-7d9f8b6c5-x2x7q_default_app-{id}.log"));
            (id, file)
        })
        .collect();
    let mut write = |n: usize, message: String| {
        append(&containers[n].1, &cri(&message));
        written
            .entry(containers[n].0.clone())
            .or_default()
            .push(message);
    };
    for i in 0..150 {
        for n in 0..3 {
            write(
                n,
                format!("c{n} #{i:04} \"quoted\" ünïcödé {}", "x".repeat(i % 89)),
            );
        }
        if i == 70 {
            write(0, format!("c0 huge {}", "h".repeat(12 << 20)));
        }
    }
    let want: usize = written.values().map(Vec::len).sum();

    let json_agent = agent_config(
        dir.path(),
        "json-agent",
        &dir.path().join("json-logs"),
        &moto.endpoint(),
        &format!(
            "  format: json\n  oversize: offload\n  offload: {{bucket: offload, prefix: big, endpoint: {}}}\n",
            moto.endpoint()
        ),
    );
    let logtide_agent = agent_config(
        dir.path(),
        "logtide-agent",
        &dir.path().join("logtide-logs"),
        &moto.endpoint(),
        "",
    );
    let (json_log, logtide_log) = (dir.path().join("json.log"), dir.path().join("logtide.log"));
    let mut a = start(
        &files,
        &["run", "-c", json_agent.to_str().unwrap()],
        &json_log,
    );
    let mut b = start(
        &files,
        &["run", "-c", logtide_agent.to_str().unwrap()],
        &logtide_log,
    );
    // Another producer's records: a JSON object and a line of text.
    kinesis.put(
        "logs",
        "other",
        br#"{"@timestamp":"2024-06-01T00:00:00Z","message":"from another producer"}"#,
    );
    kinesis.put("logs", "other", b"plain text from a shell script\n");

    // Every entry is in the stream: containers 0 and 1 one record each.
    let logs = [json_log.as_path(), logtide_log.as_path()];
    let json_entries = written[&containers[0].0].len() + written[&containers[1].0].len();
    let mut records = Vec::new();
    wait_until(
        "the json agent's records",
        Duration::from_secs(120),
        &logs,
        || {
            records = kinesis.read_all("logs");
            records
                .iter()
                .filter(|r| r.data.starts_with(b"{\"@timestamp\":\"2024-06-01T00:36"))
                .count()
                >= json_entries
        },
    );
    let mut heads = 0;
    for r in records.iter().filter(|r| r.data.first() == Some(&b'{')) {
        assert!(r.data.len() + r.partition_key.len() <= 1 << 20);
        let v: Value = serde_json::from_slice(&r.data).expect("each json record is JSON");
        if let Some(reference) = v["event"]["original_ref"].as_str() {
            heads += 1;
            assert_eq!(v["log"]["flags"], serde_json::json!(["offloaded"]));
            let message = v["message"].as_str().unwrap();
            assert!(message.starts_with("c0 huge hhh") && message.len() <= 8192);
            let key = reference.strip_prefix("s3://offload/").unwrap();
            assert!(key.starts_with("big/2024/06/01/"), "{key}");
            let objects = s3.objects("offload", "big/");
            assert_eq!(objects.len(), 1);
            assert_eq!(objects[0].0, key);
            let whole: Value = serde_json::from_str(&objects[0].1).unwrap();
            assert_eq!(
                whole["message"].as_str().map(str::len),
                Some("c0 huge ".len() + (12 << 20)),
                "the object holds the whole event"
            );
            assert_eq!(
                v["event"]["original_bytes"].as_u64(),
                Some(objects[0].1.len() as u64)
            );
            assert_eq!(whole["log"]["offset"], v["log"]["offset"]);
        }
    }
    assert_eq!(heads, 1, "the large entry's record is its head");

    let port = free_port();
    let relay_config = dir.path().join("relay.yml");
    fs::write(
        &relay_config,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {e}
  dead_letter_path: {dl}
  checkpoint: {{path: {cp}}}
  offload: {{endpoint: {e}}}
sinks:
  s3: {{bucket: archive, prefix: logtide, region: us-east-1, endpoint: {e}, max_age: 1s}}
  elasticsearch:
    hosts: [\"{es}\"]
    index: \"logs-%{{+yyyy.MM.dd}}\"
http: {{enabled: true, port: {port}}}
",
            e = moto.endpoint(),
            es = es.endpoint(),
            dl = dir.path().join("relay-dl").display(),
            cp = dir.path().join("cp").display(),
        ),
    )
    .unwrap();
    let relay_log = dir.path().join("relay.log");
    let mut relay = start(
        Path::new(relay_bin()),
        &["run", "--config", relay_config.to_str().unwrap()],
        &relay_log,
    );
    let logs = [
        json_log.as_path(),
        logtide_log.as_path(),
        relay_log.as_path(),
    ];
    let mut archived: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut others = Vec::new();
    wait_until(
        "every entry in the archive",
        Duration::from_secs(180),
        &logs,
        || {
            archived.clear();
            others.clear();
            for l in s3.read_lines("archive", "logtide/") {
                let v: Value = serde_json::from_str(&l.line).unwrap();
                let message = v["message"].as_str().unwrap_or_default().to_owned();
                match v["container"]["id"].as_str() {
                    Some(id) => archived.entry(id.to_owned()).or_default().push(message),
                    None => others.push(message),
                }
            }
            archived.values().map(Vec::len).sum::<usize>() >= want && others.len() >= 2
        },
    );
    for (id, messages) in &written {
        let got = &archived[id];
        assert_eq!(got.len(), messages.len(), "container {id}");
        for (g, w) in got.iter().zip(messages) {
            assert!(
                g == w,
                "container {id}: {} bytes archived, {} written",
                g.len(),
                w.len()
            );
        }
    }
    others.sort();
    assert_eq!(
        others,
        ["from another producer", "plain text from a shell script"],
        "other producers' records pass as they are, text as message"
    );
    let mut indexed = Vec::new();
    wait_until(
        "every entry indexed",
        Duration::from_secs(120),
        &logs,
        || {
            indexed = search.all("logs-2024.06.01");
            // Every entry, and the other producer's JSON record of the same day.
            indexed.len() > want
        },
    );
    let huge = indexed
        .iter()
        .filter_map(|(_, d)| d["message"].as_str())
        .find(|m| m.starts_with("c0 huge"))
        .expect("the large entry is indexed");
    assert_eq!(huge.len(), "c0 huge ".len() + (12 << 20), "indexed whole");
    assert!(indexed
        .iter()
        .all(|(_, d)| d["event"]["original_ref"].is_null()));

    let (status, text) = get(&format!("127.0.0.1:{port}"), METRICS_PATH).unwrap();
    assert_eq!(status, 200);
    let samples: BTreeMap<String, f64> = parse_samples(&text)
        .into_iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (format!("{}{{{}}}", s.name, labels.join(",")), s.value)
        })
        .collect();
    let value = |k: &str| samples.get(k).copied().unwrap_or(0.0) as usize;
    assert_eq!(
        value("logtide_source_records_total{format=json,source=kinesis}"),
        json_entries + 1,
        "{text}"
    );
    assert_eq!(
        value("logtide_source_records_total{format=text,source=kinesis}"),
        1
    );
    assert!(value("logtide_source_records_total{format=logtide,source=kinesis}") >= 1);
    assert_eq!(
        value("logtide_modified_events_total{reason=offload_restored}"),
        1
    );

    sigterm(&mut relay, &relay_log);
    sigterm(&mut a, &json_log);
    sigterm(&mut b, &logtide_log);
}

#[test]
fn help_names_every_sink() {
    let _one = crate::one_at_a_time();
    let out = Command::new(relay_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sink in [
        "S3",
        "Elasticsearch",
        "OpenSearch",
        "files",
        "console",
        "alerts",
    ] {
        assert!(help.contains(sink), "--help does not name {sink}:\n{help}");
    }
}
