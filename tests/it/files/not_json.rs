//! Plain-text lines under the seed's `decode_json_fields` are not processor errors: a run
//! over JSON and text lines counts no error in `logtide_processor_errors_total` but each
//! text line in `logtide_processor_not_json_total`, and the text lines stay as they were. With `add_error_key: true` each text line is an error,
//! counted there and carried by its event in `error.message`, as Filebeat does.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use logtide_pipeline::http::{get, METRICS_PATH};
use logtide_pipeline::telemetry::parse_samples;
use logtide_testkit::free_port;
use serde_json::Value;

/// Three JSON lines and three plain-text lines of one container.
const LINES: &[&str] = &[
    r#"{"level":"info","msg":"order placed","order_id":1}"#,
    "GET /healthz 200 0.4ms",
    r#"{"level":"warn","msg":"retrying","attempt":2}"#,
    "W1124 09:15:03.000012       1 reflector.go:535] watch ended",
    "11:38:04,323 |-INFO testing",
    r#"{"level":"info","msg":"order shipped","order_id":1}"#,
];

/// One counter of `/metrics`, 0 when absent.
fn counter(address: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    let (status, text) = get(address, METRICS_PATH).unwrap();
    assert_eq!(status, 200);
    parse_samples(&text)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value as u64)
        .sum()
}

/// Runs the agent over LINES with the given decode_json_fields options until every
/// event is shipped; returns the processor errors and the fields left as not JSON
/// counted, and the events written.
fn run(dir: &Path, decode_options: &str) -> (u64, u64, Vec<Value>) {
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let text: String = LINES
        .iter()
        .map(|l| format!("2024-05-01T10:00:00.000000001Z stdout F {l}\n"))
        .collect();
    fs::write(logs.join("app.log"), text).unwrap();
    let port = free_port();
    let config = dir.join("files.yml");
    fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: [{logs}/*.log]\n\
             registry.path: {dir}/registry\n\
             processors:\n  - decode_json_fields: {{fields: [message], max_depth: 5, target: message-json, overwrite_keys: true{decode_options}}}\n  \
             - drop_fields: {{fields: [message], when: {{has_fields: [message-json]}}}}\n\
             output.file: {{path: {dir}/out, filename: events.ndjson}}\n\
             http: {{enabled: true, host: 127.0.0.1, port: {port}}}\n",
            logs = logs.display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let log = dir.join("agent.log");
    let mut child: Child = Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "exited early ({status}): {}",
                fs::read_to_string(&log).unwrap()
            );
        }
        let shipped = get(&address, METRICS_PATH)
            .ok()
            .map(|_| counter(&address, "logtide_events_total", &[("stage", "shipped")]));
        if shipped == Some(LINES.len() as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event shipped: {}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let errors = counter(&address, "logtide_processor_errors_total", &[]);
    let not_json = counter(&address, "logtide_processor_not_json_total", &[]);
    let processed = counter(&address, "logtide_events_total", &[("stage", "processed")]);
    assert_eq!(processed, LINES.len() as u64);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let events = fs::read_to_string(dir.join("out/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (errors, not_json, events)
}

#[test]
fn text_lines_are_not_processor_errors() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (errors, not_json, events) = run(dir.path(), "");
    assert_eq!(errors, 0, "plain text is not an error");
    assert_eq!(not_json, 3, "it is counted as not JSON");
    assert_eq!(events.len(), LINES.len());
    let text: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        text,
        [
            "GET /healthz 200 0.4ms",
            "W1124 09:15:03.000012       1 reflector.go:535] watch ended",
            "11:38:04,323 |-INFO testing"
        ]
    );
    assert!(events.iter().all(|e| e.get("error").is_none()));
    let decoded = events.iter().filter(|e| e.get("message-json").is_some());
    assert_eq!(decoded.count(), 3);
}

#[test]
fn with_add_error_key_text_lines_are_errors_carried_by_their_events() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (errors, not_json, events) = run(dir.path(), ", add_error_key: true");
    assert_eq!(errors, 3);
    assert_eq!(not_json, 0, "with add_error_key they are errors instead");
    let with_error: Vec<&Value> = events.iter().filter(|e| e.get("error").is_some()).collect();
    assert_eq!(with_error.len(), 3);
    for e in with_error {
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("parsing input as JSON: "), "{e}");
        assert_eq!(e["error"]["data"], e["message"], "{e}");
    }
}
