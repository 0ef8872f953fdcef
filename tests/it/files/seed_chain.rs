//! The seed's processors (`add_kubernetes_metadata`, `decode_json_fields` into
//! `message-json`, `drop_fields` of `message`) through the binary on kubelet's layout,
//! with the defaults: a JSON message that writes as the value decoding gives is copied as
//! the application wrote it, and the events are, as JSON values, the events the same
//! chain gives when a later processor makes every event build its maps (the path where
//! everything is decoded and written by key).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use serde_json::Value;

const POD: &str = "checkout-7d9f-abcde";
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Messages of one container, each one entry; `P` chunks are marked by a `|P|` split.
const MESSAGES: &[&str] = &[
    r#"{"ts":"2024-05-01T10:00:00Z","level":"info","msg":"order placed","http":{"status":201,"took":0.25},"tags":["a","b"]}"#,
    "GET /healthz 200 0.4ms",
    r#"  {"z":1,	"a":"\u00e9 \"q\"","n":-0,"f":1e2,"g":2.50}	"#,
    r#"{"log":"{\"level\":\"debug\"}","n":1}"#,
    r#"{"a":1,"a":2,"b":{"c":3,"c":4}}"#,
    r#"{"big":18446744073709551615,"small":-9223372036854775809}"#,
    r#"{"s":" [1, 2] ","t":"[not json"}"#,
    r#"[{"an":"array"}]"#,
    r#"{"truncated":"#,
    r#"{"split":"across|P| chunks","n":|P|7}"#,
    "W1124 09:15:03.000012       1 reflector.go:535] watch ended",
];

/// Writes the container's log where kubelet does and links it from `containers/`.
fn layout(dir: &Path) -> std::path::PathBuf {
    let pod_dir = dir.join(format!(
        "pods/shop_{POD}_7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b/app"
    ));
    fs::create_dir_all(&pod_dir).unwrap();
    let mut text = String::new();
    for (i, message) in MESSAGES.iter().enumerate() {
        let time = format!("2024-05-01T10:00:{i:02}.000000001Z");
        let chunks: Vec<&str> = message.split("|P|").collect();
        for (j, chunk) in chunks.iter().enumerate() {
            let tag = if j + 1 < chunks.len() { "P" } else { "F" };
            text.push_str(&format!("{time} stdout {tag} {chunk}\n"));
        }
    }
    fs::write(pod_dir.join("0.log"), text).unwrap();
    let links = dir.join("containers");
    fs::create_dir_all(&links).unwrap();
    symlink(
        pod_dir.join("0.log"),
        links.join(format!("{POD}_shop_app-{ID}.log")),
    )
    .unwrap();
    links
}

/// Runs the agent with the seed's processors, then `extra`, until every entry is
/// written; returns the output lines.
fn run(dir: &Path, links: &Path, extra: &str) -> Vec<String> {
    fs::create_dir_all(dir).unwrap();
    let config = dir.join("files.yml");
    fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{links}/*.log']\n\
             registry.path: {dir}/registry\n\
             processors:\n\
             \x20 - add_kubernetes_metadata: {{in_cluster: true}}\n\
             \x20 - decode_json_fields: {{fields: [message], process_array: false, max_depth: 5, target: message-json, overwrite_keys: true}}\n\
             \x20 - drop_fields: {{when: {{has_fields: [message-json]}}, fields: [message]}}\n\
             {extra}\
             output.file: {{path: {dir}/out, filename: events.ndjson}}\n",
            links = links.display(),
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
    let out = dir.join("out/events.ndjson");
    let deadline = Instant::now() + Duration::from_secs(30);
    let lines = loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "exited early ({status}): {}",
                fs::read_to_string(&log).unwrap()
            );
        }
        let text = fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= MESSAGES.len() {
            break text.lines().map(str::to_owned).collect::<Vec<_>>();
        }
        assert!(
            Instant::now() < deadline,
            "not every entry written: {text}\n{}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    lines
}

#[test]
fn json_messages_are_copied_and_equal_to_decoding_them() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let links = layout(dir.path());
    let copied_dir = dir.path().join("copied");
    let built_dir = dir.path().join("built");
    let copied = run(&copied_dir, &links, "");
    // A processor after the chain that changes the fields makes every event build its
    // maps: its message is decoded and written by key.
    let built = run(
        &built_dir,
        &links,
        "  - add_fields: {target: '', fields: {built: true}}\n",
    );
    assert_eq!(copied.len(), MESSAGES.len());
    assert_eq!(built.len(), MESSAGES.len());

    // The first message is written as the application wrote it (its keys unsorted)...
    let first = MESSAGES[0];
    assert!(
        copied[0].contains(&format!(r#""message-json":{first},"stream":"stdout""#)),
        "{}",
        copied[0]
    );
    // ...spaces and tabs around one trimmed, escapes and numbers as they were.
    assert!(copied[2].contains(MESSAGES[2].trim()), "{}", copied[2]);
    // Repeated keys are decoded (the last wins), not copied.
    assert!(
        copied[4].contains(r#""message-json":{"a":2,"b":{"c":4}}"#),
        "{}",
        copied[4]
    );

    for (i, (a, b)) in copied.iter().zip(&built).enumerate() {
        let a: Value = serde_json::from_str(a).unwrap();
        let mut b: Value = serde_json::from_str(b).unwrap();
        assert_eq!(
            b.as_object_mut().unwrap().remove("built"),
            Some(Value::Bool(true))
        );
        assert_eq!(a, b, "entry {i}: {}", MESSAGES[i]);
        assert_eq!(a["kubernetes"]["pod"]["name"], POD, "entry {i}");
        assert_eq!(a["container"]["id"], ID, "entry {i}");
        let decoded = a.get("message-json").is_some();
        assert_eq!(decoded, a.get("message").is_none(), "entry {i}");
    }
    let decoded: Vec<bool> = copied
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap()
                .get("message-json")
                .is_some()
        })
        .collect();
    assert_eq!(
        decoded,
        [true, false, true, true, true, true, true, false, false, true, false],
        "which entries were decoded"
    );
    // The entry joined from three chunks decoded whole.
    let split: Value = serde_json::from_str(&copied[9]).unwrap();
    assert_eq!(
        split["message-json"],
        serde_json::json!({"split": "across chunks", "n": 7})
    );
}
