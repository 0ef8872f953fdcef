//! logtide-files' self-metrics, scraped over HTTP from a real run into moto_server: while
//! Kinesis throttles every request the agent is not ready and says why, a file deleted
//! before it was read is given up on and its lost bytes are counted against its path, and
//! once Kinesis answers again the counters add up: events read = shipped + every discard
//! reason (a processor's drop_event and an oversize entry dead-lettered); the unparsable
//! line is counted as such, and so is a copytruncate. `logtide-files status` shows the
//! loss, in text and JSON.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use crate::support::scrape;
use logtide_pipeline::http::{get, READYZ_PATH};
use logtide_testkit::{free_port, Fault, FaultProxy, KinesisTool, MotoServer, AWS_ENV};
use serde_json::Value;

fn cri(msg: &str) -> String {
    format!("2024-05-01T10:00:00.000000001Z stdout F {msg}\n")
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> u64 {
    m.get(key).copied().unwrap_or(0.0) as u64
}

/// The agent, and where its log goes.
struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

fn wait_for(what: &str, agent: &mut Agent, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = agent.child.try_wait() {
            panic!(
                "logtide-files exited early ({status}) while waiting for {what}:\n{}",
                fs::read_to_string(&agent.log).unwrap_or_default()
            );
        }
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}:\n{}",
        fs::read_to_string(&agent.log).unwrap_or_default()
    );
}

fn status(config: &Path, json: bool) -> String {
    let mut cmd = Command::new(bin());
    cmd.args(["status", "-c", config.to_str().unwrap()]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn counters_add_up_and_losses_are_named() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 1);
    let proxy = FaultProxy::start(moto.port(), |_| Fault::Throttle);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();

    let mut a = String::new();
    for i in 0..300 {
        a.push_str(&cri(&format!("line {i}")));
    }
    a.push_str("this is not a CRI line\n");
    for i in 0..20 {
        a.push_str(&cri(&format!("DROPME {i}")));
    }
    a.push_str(&cri(&"x".repeat(3 << 19)));
    fs::write(logs.join("a.log"), &a).unwrap();
    let mut big = String::new();
    for i in 0..100_000 {
        big.push_str(&cri(&format!("big {i:06} {}", "y".repeat(40))));
    }
    fs::write(logs.join("big.log"), &big).unwrap();

    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("logtide-files.yml");
    fs::write(
        &config,
        format!(
            "inputs:
  - type: container
    paths: ['{logs}/*.log']
    scan_frequency: 200ms
    close_removed_after: 1s
registry: {{path: {reg}, flush: 100ms}}
processors:
  - drop_event:
      when:
        contains: {{message: DROPME}}
output.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {endpoint}
  oversize: dead_letter
  dead_letter_path: {dl}
http.enabled: true
http.port: {port}
",
            logs = logs.display(),
            reg = dir.path().join("registry").display(),
            endpoint = proxy.endpoint(),
            dl = dir.path().join("dead-letter").display(),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let child = Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut agent = Agent {
        child,
        log: log_path.clone(),
    };

    // Kinesis throttles everything: not ready, and /readyz says why.
    wait_for(
        "not ready",
        &mut agent,
        Duration::from_secs(60),
        || matches!(get(&address, READYZ_PATH), Ok((503, body)) if body.contains("output: not ready: kinesis")),
    );
    // The agent is stuck behind the output; big.log goes away half read.
    fs::remove_file(logs.join("big.log")).unwrap();
    let key_lost = "logtide_lost_bytes_total{reason=deleted_before_read}";
    wait_for("the loss", &mut agent, Duration::from_secs(30), || {
        value(
            &scrape(&address).expect("the agent's /metrics answers"),
            key_lost,
        ) > 0
    });
    let m = scrape(&address).expect("the agent's /metrics answers");
    let lost = value(&m, key_lost);
    assert!(lost > 0 && lost < big.len() as u64, "{lost}");
    let big_path = logs.join("big.log").display().to_string();
    assert_eq!(
        value(
            &m,
            &format!("logtide_file_lost_bytes_total{{path={big_path},reason=deleted_before_read}}")
        ),
        lost
    );
    assert!(
        value(
            &m,
            "logtide_output_errors_total{kind=throttled,output=kinesis}"
        ) > 0
    );
    let text = status(&config, false);
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!("{big_path} (gone)")) || l.ends_with(&big_path))
        .unwrap_or_else(|| panic!("no line for big.log:\n{text}"));
    assert!(
        line.contains(&format!("{lost} bytes deleted_before_read")),
        "{line}"
    );
    assert!(text.contains("ready: no"), "{text}");

    // Kinesis answers again: everything left is shipped and the counters add up.
    proxy.set_plan(|_| Fault::Pass);
    let mut last = BTreeMap::new();
    let a_behind = format!(
        "logtide_file_bytes_behind{{path={}}}",
        logs.join("a.log").display()
    );
    wait_for(
        "every event to be accounted for",
        &mut agent,
        Duration::from_secs(120),
        || {
            let m = scrape(&address).expect("the agent's /metrics answers");
            let read = value(&m, "logtide_events_total{stage=read}");
            let settled = value(&m, "logtide_events_total{stage=shipped}")
                + value(&m, "logtide_discarded_events_total{reason=processor_drop}")
                + value(
                    &m,
                    "logtide_discarded_events_total{reason=oversize_dead_letter}",
                );
            let done = value(&m, "logtide_ready{}") == 1
                && read > 322
                && read == settled
                && m.get(&a_behind) == Some(&0.0);
            last = m;
            done
        },
    );
    let m = last;
    let read = value(&m, "logtide_events_total{stage=read}");
    // a.log: 300 lines, 20 dropped, 1 oversize; big.log: whatever was read before it went.
    assert_eq!(
        value(&m, "logtide_discarded_events_total{reason=processor_drop}"),
        20
    );
    assert_eq!(
        value(
            &m,
            "logtide_discarded_events_total{reason=oversize_dead_letter}"
        ),
        1
    );
    assert_eq!(
        value(&m, "logtide_discarded_lines_total{reason=parse_error}"),
        1
    );
    assert_eq!(
        value(&m, "logtide_events_total{stage=processed}"),
        read - 20
    );
    let discards: u64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("logtide_discarded_events_total"))
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(
        read,
        value(&m, "logtide_events_total{stage=shipped}") + discards,
        "{m:#?}"
    );
    assert!(value(&m, "logtide_bytes_total{stage=read}") >= a.len() as u64);
    assert!(value(&m, "logtide_bytes_total{stage=shipped}") > 0);
    assert!(value(&m, "logtide_output_latency_seconds_count{output=kinesis}") > 0);
    assert_eq!(
        value(&m, "logtide_files_open{}"),
        1,
        "a.log; big.log was given up"
    );

    let doc: Value = serde_json::from_str(&status(&config, true)).unwrap();
    let files = doc["files"].as_array().unwrap();
    let big_row = files
        .iter()
        .find(|f| f["path"] == big_path.as_str())
        .unwrap();
    assert_eq!(big_row["lost_bytes"]["deleted_before_read"], lost);
    let a_row = files
        .iter()
        .find(|f| f["path"] == logs.join("a.log").display().to_string().as_str())
        .unwrap();
    assert_eq!(a_row["behind"], 0, "{a_row}");
    assert_eq!(doc["process"]["totals"]["events"]["read"], read);
    assert_eq!(doc["process"]["totals"]["ready"], true);

    // copytruncate: a.log is cut to nothing and written again; the truncation is counted
    // and the new lines are shipped.
    fs::write(logs.join("a.log"), cri("after the truncation")).unwrap();
    wait_for(
        "the truncation",
        &mut agent,
        Duration::from_secs(30),
        || {
            let m = scrape(&address).expect("the agent's /metrics answers");
            value(&m, "logtide_file_truncations_total{}") == 1
                && value(&m, "logtide_events_total{stage=shipped}")
                    == value(&m, "logtide_events_total{stage=read}") - 21
                && value(&m, "logtide_events_total{stage=read}") == read + 1
        },
    );

    Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    let exit = agent.child.wait().unwrap();
    assert!(
        exit.success(),
        "{exit}\n{}",
        fs::read_to_string(&log_path).unwrap()
    );
}
