//! logtide-relay with `alerts:` end to end: events put into a moto_server Kinesis
//! stream, rules evaluated in the relay, alerts POSTed to a webhook on loopback; after a
//! restart the saved silences hold.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::relay_bin;
use crate::support::sigterm;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{KinesisConfig, Sink};
use logtide_testkit::{KinesisTool, MotoServer, AWS_ENV};
use serde_json::{json, Value};

/// A webhook receiver: each request's JSON body, answered 200.
fn receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    } else if line.is_empty() {
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                        length = 0;
                    }
                }
            });
        }
    });
    (url, rx)
}

fn put(moto: &MotoServer, dir: &Path, events: &[(&str, &str)]) {
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.join("sink-dl");
    let mut sink = Sink::connect(&config).unwrap();
    let batch: Vec<Event> = events
        .iter()
        .map(|(pod, level)| {
            let mut e = Event::new(Timestamp::now());
            e.insert("kubernetes.pod.name", json!(pod)).unwrap();
            e.insert("level", json!(level)).unwrap();
            e.insert("message", json!(format!("{level} from {pod}")))
                .unwrap();
            e
        })
        .collect();
    sink.send(&batch).unwrap();
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

/// The pods of the alerts received: `n` of them within a minute, and any that follow
/// within three seconds more.
fn alerts(rx: &mpsc::Receiver<Value>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(body) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        assert_eq!(body["rule"], "error burst", "{body}");
        out.push(body["query_key"].as_str().unwrap().to_owned());
        if out.len() == n {
            deadline = Instant::now() + Duration::from_secs(3);
        }
    }
    out.sort();
    out
}

#[test]
fn the_relay_alerts_once_and_remembers_across_a_restart() {
    let _one = crate::one_at_a_time();
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 1);
    let (url, received) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("errors.yaml"),
        format!(
            "name: error burst\ntype: frequency\nnum_events: 3\ntimeframe: {{minutes: 1}}\n\
             query_key: kubernetes.pod.name\nrealert: {{minutes: 30}}\n\
             filter: [{{term: {{level: error}}}}]\nalert: [post]\nhttp_post_url: {url}\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("relay.yml");
    std::fs::write(
        &config,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {e}
  checkpoint_interval: 300ms
  idle_poll_interval: 200ms
  dead_letter_path: {d}/dl
  checkpoint: {{path: {d}/cp}}
sinks:
  file: {{path: {d}/out, filename: events.ndjson}}
alerts:
  rules_dir: {d}/rules
  state_file: {d}/alerts.state
  state_interval: 1s
",
            e = moto.endpoint(),
            d = dir.path().display(),
        ),
    )
    .unwrap();

    put(
        &moto,
        dir.path(),
        &[
            ("a", "error"),
            ("b", "error"),
            ("a", "error"),
            ("c", "info"),
            ("a", "error"),
            ("b", "error"),
            ("c", "info"),
            ("c", "info"),
        ],
    );
    let mut r = relay(&config);
    assert_eq!(alerts(&received, 1), ["a"]);
    let status = sigterm(&mut r);
    assert!(status.success(), "relay exit: {status}");
    assert!(dir.path().join("alerts.state").exists());

    // After a restart: a's burst again is silenced (realert restored), d's is new.
    put(
        &moto,
        dir.path(),
        &[
            ("a", "error"),
            ("a", "error"),
            ("a", "error"),
            ("d", "error"),
            ("d", "error"),
            ("d", "error"),
        ],
    );
    let mut r = relay(&config);
    assert_eq!(alerts(&received, 1), ["d"]);
    let status = sigterm(&mut r);
    assert!(status.success(), "relay exit: {status}");
}
