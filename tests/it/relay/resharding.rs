//! logtide-relay across resharding: a shard is split, then the stream is scaled to four
//! shards, while records flow. Kinesis is kinesis-mock (moto's SplitShard keeps writing to
//! the parent and never closes it for readers, so it cannot show a hand-over); S3 is
//! moto_server. Every event reaches S3 once, and the relay's file sink, written in the
//! order the relay handles events, holds each container's events in the order they were
//! put.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::relay_bin;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{KinesisConfig, Sink};
use logtide_testkit::{KinesisMock, KinesisTool, MotoServer, S3Tool, AWS_ENV};
use serde_json::{json, Value};

const CONTAINERS: u64 = 8;
const ROUNDS: u64 = 12;
const PER_ROUND: u64 = 100;

#[test]
fn order_per_container_holds_across_split_and_scaling() {
    let _one = crate::one_at_a_time();
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let kinesis = KinesisMock::start(&[("logs", 1)]);
    let tool = KinesisTool::new(&kinesis.endpoint());
    tool.wait_active("logs");
    let moto = MotoServer::start();
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.yml");
    std::fs::write(
        &config,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {k}
  checkpoint_interval: 300ms
  shard_sync_interval: 1s
  idle_poll_interval: 200ms
  dead_letter_path: {dl}
  checkpoint: {{path: {cp}}}
sinks:
  s3: {{bucket: archive, prefix: logtide, region: us-east-1, endpoint: {m}, max_age: 1s}}
  file: {{path: {out}, filename: events.ndjson}}
",
            k = kinesis.endpoint(),
            m = moto.endpoint(),
            dl = dir.path().join("dl").display(),
            cp = dir.path().join("cp").display(),
            out = dir.path().join("out").display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("relay.log");
    let mut relay = Command::new(relay_bin())
        .args(["run", "--config"])
        .arg(&config)
        .envs(AWS_ENV)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // The producer: events numbered per container, resharding between rounds.
    let mut sink_config = KinesisConfig::new("logs");
    sink_config.endpoint = Some(kinesis.endpoint());
    sink_config.region = Some("us-east-1".into());
    sink_config.dead_letter_path = dir.path().join("sink-dl");
    let mut sink = Sink::connect(&sink_config).unwrap();
    let mut n = 0;
    for round in 0..ROUNDS {
        if round == 4 {
            tool.split_shard("logs");
        }
        if round == 8 {
            tool.update_shard_count("logs", 4);
        }
        let batch: Vec<Event> = (0..PER_ROUND)
            .map(|_| {
                n += 1;
                let mut e = Event::new(Timestamp::new(1_700_000_000, 0).unwrap());
                e.insert("container.id", json!(format!("c{}", n % CONTAINERS)))
                    .unwrap();
                e.insert("n", json!(n)).unwrap();
                e.insert("message", json!(format!("event {n}"))).unwrap();
                e
            })
            .collect();
        sink.send(&batch).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let total = n;

    let deadline = Instant::now() + Duration::from_secs(120);
    let archived = loop {
        let mut archived: HashMap<u64, usize> = HashMap::new();
        for l in s3.read_lines("archive", "logtide/") {
            let v: Value = serde_json::from_str(&l.line).unwrap();
            *archived.entry(v["n"].as_u64().unwrap()).or_default() += 1;
        }
        if archived.len() as u64 == total {
            break archived;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} archived: {}",
            archived.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .unwrap();
    assert!(relay.wait().unwrap().success());
    assert!(
        archived.values().all(|&c| c == 1),
        "an event archived twice without a restart"
    );

    let text = std::fs::read_to_string(dir.path().join("out/events.ndjson")).unwrap();
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        order
            .entry(v["container"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["n"].as_u64().unwrap());
    }
    assert_eq!(order.len() as u64, CONTAINERS);
    for (c, ns) in &order {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "{c}: out of order {ns:?}"
        );
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("reading shard") && log_text.matches("reading shard").count() >= 3,
        "the children were read: {log_text}"
    );
}
