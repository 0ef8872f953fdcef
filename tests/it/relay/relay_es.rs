//! logtide-relay with sinks s3 and elasticsearch: events put into a Kinesis stream on
//! moto_server with logtide's Kinesis sink (what logtide-files uses) are relayed to S3
//! (moto_server) and to Elasticsearch (noida-db) or OpenSearch (osmem-server), every one
//! present in both, and a shard is checkpointed only after both took its records.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::relay_bin;
use crate::support::sigterm;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{KinesisConfig, Sink};
use logtide_testkit::{
    BulkFault, BulkProxy, KinesisTool, MotoServer, S3Tool, SearchKind, SearchServer, SearchTool,
    AWS_ENV,
};
use serde_json::{json, Value};

const INDEX: &str = "relay-2023.11.14";

fn put(moto: &MotoServer, dir: &Path, from: u64, n: u64) {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.join("sink-dl");
    let mut sink = Sink::connect(&config).unwrap();
    let events: Vec<Event> = (from..from + n)
        .map(|i| {
            let mut e = Event::new(Timestamp::new(1_700_000_000 + (i % 3600) as i64, 0).unwrap());
            e.insert("message", json!(format!("line {i:06}"))).unwrap();
            e.insert("container.id", json!(format!("c{}", i % 5)))
                .unwrap();
            e.insert("n", json!(i)).unwrap();
            // Types conflict between containers: a number in some, a string in others.
            let id = if i % 5 == 0 {
                json!(format!("id-{i}"))
            } else {
                json!(i)
            };
            e.insert("message-json.id", id).unwrap();
            e
        })
        .collect();
    for b in events.chunks(200) {
        sink.send(b).unwrap();
    }
}

fn write_config(dir: &Path, moto: &MotoServer, es: &str) -> std::path::PathBuf {
    let path = dir.join("relay.yml");
    std::fs::write(
        &path,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {e}
  checkpoint_interval: 300ms
  shard_sync_interval: 1s
  idle_poll_interval: 200ms
  dead_letter_path: {dl}
  checkpoint:
    path: {cp}
sinks:
  s3:
    bucket: archive
    prefix: logtide
    region: us-east-1
    endpoint: {e}
    max_object_bytes: 256KiB
    max_age: 1s
  elasticsearch:
    hosts: [\"{es}\"]
    index: \"relay-%{{+yyyy.MM.dd}}\"
    dead_letter_index: \"relay-deadletter-%{{+yyyy.MM.dd}}\"
    max_retry_time: 1s
    retry_backoff_min: 50ms
    retry_backoff_max: 300ms
",
            e = moto.endpoint(),
            dl = dir.join("dl").display(),
            cp = dir.join("cp").display(),
        ),
    )
    .unwrap();
    path
}

fn archived(s3: &S3Tool) -> BTreeSet<u64> {
    s3.read_lines("archive", "logtide/")
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(&l.line).unwrap();
            v["n"].as_u64().unwrap()
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn checkpoints(dir: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("cp/logs.checkpoints.json")) else {
        return HashMap::new();
    };
    let v: Value = serde_json::from_str(&text).unwrap();
    v["shards"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn relays_to_s3_and_search(kind: SearchKind) {
    const N: u64 = 2000;
    let moto = MotoServer::start();
    let server = SearchServer::start(kind);
    let kinesis = KinesisTool::new(&moto.endpoint());
    kinesis.create_stream("logs", 2);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let dir = tempfile::tempdir().unwrap();
    put(&moto, dir.path(), 0, N);
    // Elasticsearch refuses everything at first.
    let proxy = BulkProxy::start(&server.endpoint(), |_| BulkFault::Reject(503));
    let config = write_config(dir.path(), &moto, &proxy.endpoint());
    let status = Command::new(relay_bin())
        .args(["setup", "--config"])
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success(), "logtide-relay setup");

    let mut relay = Command::new(relay_bin())
        .args(["run", "--config"])
        .arg(&config)
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "warn")
        .spawn()
        .unwrap();
    wait_until("S3 to hold every event", Duration::from_secs(90), || {
        archived(&s3).len() as u64 == N
    });
    // S3 has everything, Elasticsearch nothing: no checkpoint may pass a record.
    std::thread::sleep(Duration::from_secs(2));
    let tool = SearchTool::new(&server.endpoint());
    assert_eq!(tool.count(INDEX), 0);
    assert!(proxy.log().rejected_requests > 0);
    let early = checkpoints(dir.path());
    assert!(
        early.values().all(|s| s.is_empty()),
        "checkpointed before Elasticsearch took the records: {early:?}"
    );

    // Elasticsearch recovers: everything arrives, then the checkpoints move.
    proxy.set_plan(|_| BulkFault::Pass);
    wait_until(
        "Elasticsearch to hold every event",
        Duration::from_secs(90),
        || tool.count(INDEX) == N,
    );
    let last: HashMap<String, String> =
        kinesis
            .read_all("logs")
            .into_iter()
            .fold(HashMap::new(), |mut m, r| {
                m.insert(r.shard, r.sequence);
                m
            });
    wait_until(
        "checkpoints at the last records",
        Duration::from_secs(30),
        || checkpoints(dir.path()) == last,
    );
    assert!(sigterm(&mut relay).success(), "SIGTERM: exit 0");

    let ids: Vec<String> = tool.all(INDEX).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len() as u64, N);
    // The first document indexed decides the type of `message-json.id`, and the sink's
    // threads make that order vary. A number first: the string ids conflict and are
    // flagged. A string first: the numbers are indexed as strings, which conflicts with
    // nothing.
    let (status, mapping) = tool.request("GET", &format!("/{INDEX}/_mapping"), None);
    assert_eq!(status, 200, "{mapping}");
    let id_type =
        &mapping[INDEX]["mappings"]["properties"]["message-json"]["properties"]["id"]["type"];
    let strings_conflict = match id_type.as_str() {
        Some("long") => true,
        Some("keyword" | "text") => false,
        _ => panic!("message-json.id is mapped as {id_type}: {mapping}"),
    };
    let mut seen = BTreeSet::new();
    for (_, doc) in tool.all(INDEX) {
        let n = doc["n"].as_u64().unwrap();
        assert_eq!(doc["message"], json!(format!("line {n:06}")));
        assert_eq!(
            doc["event"]["mapping_conflicts"].is_array(),
            strings_conflict && n % 5 == 0,
            "message-json.id mapped as {id_type}: {doc}"
        );
        seen.insert(n);
    }
    assert_eq!(seen, (0..N).collect::<BTreeSet<u64>>());
    assert_eq!(archived(&s3), seen);
}

#[test]
fn relays_to_s3_and_elasticsearch() {
    let _one = crate::one_at_a_time();
    relays_to_s3_and_search(SearchKind::NoidaDb);
}

#[test]
fn relays_to_s3_and_opensearch() {
    let _one = crate::one_at_a_time();
    relays_to_s3_and_search(SearchKind::Osmem);
}
