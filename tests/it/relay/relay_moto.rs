//! logtide-relay end to end against one moto_server (Kinesis, S3, DynamoDB): events put
//! with logtide's Kinesis sink (oversize ones split), relayed to S3, read back with boto3.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::relay_bin;
use crate::support::sigterm;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{KinesisConfig, Sink};
use logtide_testkit::{Fault, FaultProxy, KinesisTool, MotoServer, S3Tool, AWS_ENV};
use serde_json::json;

fn set_aws_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in AWS_ENV {
            std::env::set_var(k, v);
        }
    });
}

fn put(moto: &MotoServer, dir: &Path, from: u64, n: u64, big_every: u64) {
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.join("sink-dl");
    let mut sink = Sink::connect(&config).unwrap();
    let events: Vec<Event> = (from..from + n)
        .map(|i| {
            let mut e = Event::new(Timestamp::new(1_700_000_000 + i as i64, 0).unwrap());
            let size = if big_every > 0 && i % big_every == 0 {
                3 << 20
            } else {
                40
            };
            e.insert("message", json!(format!("{i:08} {}", "m".repeat(size))))
                .unwrap();
            e.insert("container.id", json!(format!("c{}", i % 7)))
                .unwrap();
            e.insert("n", json!(i)).unwrap();
            e
        })
        .collect();
    for b in events.chunks(200) {
        sink.send(b).unwrap();
    }
}

fn relay(config: &Path) -> Child {
    Command::new(relay_bin())
        .args(["run", "--config"])
        .arg(config)
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "info")
        .spawn()
        .unwrap()
}

fn write_config(dir: &Path, moto: &MotoServer, name: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(name);
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
{extra}
sinks:
  s3:
    bucket: archive
    prefix: logtide
    region: us-east-1
    endpoint: {e}
    max_object_bytes: 256KiB
    max_age: 1s
",
            e = moto.endpoint(),
            dl = dir.join("dl").display(),
        ),
    )
    .unwrap();
    path
}

/// Every `n` in the archive, with the keys holding each.
fn archived(s3: &S3Tool) -> HashMap<u64, Vec<String>> {
    let mut out: HashMap<u64, Vec<String>> = HashMap::new();
    for l in s3.read_lines("archive", "logtide/") {
        let v: serde_json::Value = serde_json::from_str(&l.line).unwrap();
        let n = v["n"].as_u64().unwrap();
        let msg = v["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{n:08} ")), "{n}: content changed");
        out.entry(n).or_default().push(l.key);
    }
    out
}

fn wait_for(s3: &S3Tool, want: u64, timeout: Duration) -> HashMap<u64, Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = archived(s3);
        if (0..want).all(|n| got.contains_key(&n)) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want} archived",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn relays_to_s3_exactly_once_and_restarts_from_checkpoints() {
    let _one = crate::one_at_a_time();
    set_aws_env();
    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 2);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let dir = tempfile::tempdir().unwrap();
    put(&moto, dir.path(), 0, 3000, 1000);
    let cp = format!("    path: {}", dir.path().join("cp").display());
    let config = write_config(dir.path(), &moto, "relay.yml", &cp);
    let port = logtide_testkit::free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("http.enabled: true\nhttp.port: {port}\n"));
    std::fs::write(&config, text).unwrap();

    let status = Command::new(relay_bin())
        .args(["test", "config", "--config"])
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());

    let mut r = relay(&config);
    let got = wait_for(&s3, 3000, Duration::from_secs(90));
    for (n, keys) in &got {
        assert_eq!(keys.len(), 1, "{n} archived {} times: {keys:?}", keys.len());
    }
    // The relay's own view: both shards read to their tip, every event read shipped.
    let status = |json: bool| {
        let mut cmd = Command::new(relay_bin());
        cmd.args(["status", "--config"]).arg(&config);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.envs(AWS_ENV).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let doc = loop {
        let doc: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
        let totals = &doc["process"]["totals"]["events"];
        let caught_up = doc["shards"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["millis_behind_latest"] == 0));
        if caught_up && totals["read"] == 3000 && totals["shipped"] == 3000 {
            break doc;
        }
        assert!(Instant::now() < deadline, "{doc:#}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(doc["process"]["totals"]["ready"], true, "{doc:#}");
    let text = status(false);
    assert!(text.contains("events: read 3000, shipped 3000"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("shardId-000000000001") && l.contains(" 0 ")),
        "{text}"
    );
    assert!(sigterm(&mut r).success(), "SIGTERM: exit 0");
    let checkpoints = std::fs::read_to_string(dir.path().join("cp/logs.checkpoints.json")).unwrap();
    assert!(
        checkpoints.contains("shardId-000000000000"),
        "{checkpoints}"
    );

    // More events; the relay is killed with SIGKILL while an S3 upload is in flight (a
    // proxy in front of S3 holds every upload, for longer than this test), then restarted
    // with S3 answering.
    put(&moto, dir.path(), 3000, 3000, 1000);
    let proxy = FaultProxy::start(moto.port(), |_| {
        Fault::StallWrites(Duration::from_secs(3600))
    });
    let text = std::fs::read_to_string(&config).unwrap();
    // The S3 endpoint is the last one in the file.
    let at = text.rfind(&moto.endpoint()).unwrap();
    let stalled = dir.path().join("relay-stalled-s3.yml");
    std::fs::write(
        &stalled,
        format!(
            "{}{}{}",
            &text[..at],
            proxy.endpoint(),
            &text[at + moto.endpoint().len()..]
        ),
    )
    .unwrap();
    let mut r = relay(&stalled);
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.log().stalled == 0 {
        assert!(Instant::now() < deadline, "no upload began");
        std::thread::sleep(Duration::from_millis(50));
    }
    r.kill().unwrap();
    r.wait().unwrap();
    let mut r = relay(&config);
    let got = wait_for(&s3, 6000, Duration::from_secs(90));
    assert!(sigterm(&mut r).success());
    // Nothing before the first stop is archived twice; what the killed relay was uploading
    // is archived once, by the restarted one.
    for n in 0..6000 {
        assert_eq!(got[&n].len(), 1, "{n}: {:?}", got[&n]);
    }
    let keys: HashSet<&String> = got.values().flatten().collect();
    assert!(keys.iter().all(|k| k.ends_with(".ndjson.gz")));
}

#[test]
fn two_relays_share_leases_and_one_takes_over_after_sigkill() {
    let _one = crate::one_at_a_time();
    set_aws_env();
    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 4);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let dir = tempfile::tempdir().unwrap();
    put(&moto, dir.path(), 0, 2000, 0);
    let lease = |w: &str| {
        format!("    dynamodb: {{table: logtide-leases, lease_duration: 3s, worker_id: {w}}}")
    };
    let a_cfg = write_config(dir.path(), &moto, "a.yml", &lease("a"));
    let b_cfg = write_config(dir.path(), &moto, "b.yml", &lease("b"));
    let mut a = relay(&a_cfg);
    let mut b = relay(&b_cfg);
    wait_for(&s3, 2000, Duration::from_secs(90));
    // Both hold leases.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owners: HashSet<String> = s3
            .scan_table("logtide-leases")
            .iter()
            .filter_map(|i| i["leaseOwner"]["S"].as_str().map(str::to_owned))
            .collect();
        if owners.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "owners {owners:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    a.kill().unwrap();
    a.wait().unwrap();
    put(&moto, dir.path(), 2000, 2000, 0);
    wait_for(&s3, 4000, Duration::from_secs(90));
    let items = s3.scan_table("logtide-leases");
    assert_eq!(items.len(), 4);
    assert!(
        items.iter().all(|i| i["leaseOwner"]["S"] == "b"),
        "b holds every lease: {items:?}"
    );
    assert!(sigterm(&mut b).success());
    // A graceful stop releases the leases.
    let items = s3.scan_table("logtide-leases");
    assert!(
        items.iter().all(|i| i.get("leaseOwner").is_none()),
        "{items:?}"
    );
}
