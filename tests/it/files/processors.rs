//! Processors through `logtide-files process`: every case of the shared
//! `decode_json.jsonl` and `processors.jsonl` conformance files, and the seed's Filebeat
//! configuration.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::bin;
use crate::support::conformance_dir;
use serde_json::{json, Value};

fn process(config: &Path, stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(["process", "-c", config.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Whether `got` matches `want`, where `{"$regex": …}` in `want` matches a string.
fn matches(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::String(g), Value::Object(w)) if w.len() == 1 && w.contains_key("$regex") => {
            let re = w["$regex"].as_str().unwrap_or_default();
            regex_lite_match(re, g)
        }
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len()
                && w.iter().all(|(k, wv)| {
                    g.get(k).is_some_and(|gv| {
                        if k == "@timestamp" {
                            same_instant(gv, wv)
                        } else {
                            matches(gv, wv)
                        }
                    })
                })
        }
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| matches(a, b))
        }
        (Value::Number(g), Value::Number(w)) => g.as_f64() == w.as_f64(),
        _ => got == want,
    }
}

/// Timestamps are compared as instants, not as text.
fn same_instant(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| logtide_event::Timestamp::parse_rfc3339(s.as_bytes()).ok())
    };
    parse(a).is_some() && parse(a) == parse(b)
}

/// The conformance regexes are anchored prefixes and simple patterns: `^literal` with
/// `.*` wildcards and `\"`.
fn regex_lite_match(re: &str, text: &str) -> bool {
    let anchored = re.starts_with('^');
    let body = re.trim_start_matches('^').replace("\\\"", "\"");
    let parts: Vec<&str> = body.split(".*").collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        let part = part.trim_end_matches('$');
        match text[pos..].find(part) {
            Some(at) if i > 0 || !anchored || at == 0 => pos += at + part.len(),
            _ => return false,
        }
    }
    true
}

fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

#[test]
fn decode_json_conformance_cases_pass_through_process() {
    let _one = crate::one_at_a_time();
    let path = conformance_dir().join("decode_json.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap_or("?");
        let config = dir.path().join(format!("{id}.yml"));
        std::fs::write(
            &config,
            json!({"processors": [{"decode_json_fields": case["config"]}]}).to_string(),
        )
        .unwrap();
        let out = process(&config, format!("{}\n", case["input"]).as_bytes());
        ran += 1;
        if !out.status.success() {
            failures.push(format!(
                "{id}: exit {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let lines: Vec<&[u8]> = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() != 1 {
            failures.push(format!("{id}: {} output events", lines.len()));
            continue;
        }
        let mut got: Value = serde_json::from_slice(lines[0]).unwrap();
        let want = &case["expect"];
        if want.get("@timestamp").is_none() {
            got.as_object_mut().unwrap().remove("@timestamp");
        }
        if got
            .get("@metadata")
            .is_some_and(|m| m.as_object().is_some_and(|o| o.is_empty()))
        {
            got.as_object_mut().unwrap().remove("@metadata");
        }
        if !matches(&got, want) {
            failures.push(format!("{id}: got {got}\n   want {want}"));
            continue;
        }
        if let Some(types) = case.get("expect_types").and_then(Value::as_object) {
            for (p, ty) in types {
                let v = lookup(&got, p);
                let ok = match ty.as_str() {
                    Some("int") => v.is_some_and(|v| v.is_i64() || v.is_u64()),
                    Some("float") => v.is_some_and(Value::is_f64),
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{id}: {p} is {v:?}, expected {ty}"));
                }
            }
        }
        if let Some(err) = case.get("expect_processor_error").and_then(Value::as_str) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.contains(err) {
                failures.push(format!("{id}: stderr {stderr:?} lacks {err:?}"));
            }
        }
    }
    assert!(ran > 0, "no case ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Cases of `processors.jsonl` where logtide deliberately differs from Filebeat: each is
/// marked `disputed` in the data and has a row in `docs/compatibility.md`.
const PROCESSOR_DIFFERENCES: &[(&str, &str)] = &[];

/// Every case of `processors.jsonl`, as the conformance README says: `{"processors": …}`
/// is the `--config`, `input` one NDJSON event; no output = dropped; `expect_error`
/// true/false = a `line 1: …` error on standard error must / must not appear;
/// `expect_config_error` = a non-zero exit.
#[test]
fn processors_conformance_cases_pass_through_process() {
    let _one = crate::one_at_a_time();
    let path = conformance_dir().join("processors.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut failed_ids = Vec::new();
    let mut ran = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap_or("?");
        if let Some((_, reason)) = PROCESSOR_DIFFERENCES.iter().find(|(d, _)| *d == id) {
            assert_eq!(case["disputed"], true, "{id} is skipped but not disputed");
            eprintln!("{id}: skipped, deliberate difference: {reason}");
            continue;
        }
        let config = dir.path().join(format!("{id}.yml"));
        std::fs::write(
            &config,
            json!({"processors": case["processors"]}).to_string(),
        )
        .unwrap();
        let out = process(&config, format!("{}\n", case["input"]).as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        ran += 1;
        let mut fail = |why: String| {
            failed_ids.push(id.to_owned());
            failures.push(format!("{id}: {why}"));
        };
        if case["expect_config_error"] == true {
            if out.status.success() {
                fail("configuration accepted, Filebeat refuses it".to_owned());
            }
            continue;
        }
        if !out.status.success() {
            fail(format!("exit {:?}: {stderr}", out.status));
            continue;
        }
        let lines: Vec<&[u8]> = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let want = &case["expect"];
        match (want.is_null(), lines.len()) {
            (true, 0) => {}
            (true, n) => fail(format!("expected the event dropped, got {n} events")),
            (false, 1) => {
                let mut got: Value = serde_json::from_slice(lines[0]).unwrap();
                if want.get("@timestamp").is_none() {
                    got.as_object_mut().unwrap().remove("@timestamp");
                }
                if got
                    .get("@metadata")
                    .is_some_and(|m| m.as_object().is_some_and(|o| o.is_empty()))
                {
                    got.as_object_mut().unwrap().remove("@metadata");
                }
                if !matches(&got, want) {
                    fail(format!("got {got}\n   want {want}"));
                }
            }
            (false, n) => fail(format!("{n} output events")),
        }
        let reported = stderr.lines().any(|l| l.starts_with("line 1: "));
        match case.get("expect_error").and_then(Value::as_bool) {
            Some(true) if !reported => fail(format!("no `line 1:` error on stderr: {stderr:?}")),
            Some(false) if reported => fail(format!("unexpected error on stderr: {stderr:?}")),
            _ => {}
        }
    }
    assert!(ran > 0, "no case ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases fail: {}\n{}",
        failures.len(),
        failed_ids.join(" "),
        failures.join("\n")
    );
}

#[test]
fn the_seed_configuration_loads_and_shapes_events() {
    let _one = crate::one_at_a_time();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/filebeat-seed.yml");
    let check = Command::new(bin())
        .args(["test", "config", "-c", seed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Read from a kubelet log link; with no cluster here, add_kubernetes_metadata adds
    // what the path says.
    let id = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
    let path = format!("/var/log/containers/shop-7d9f-abcde_prod_shop-{id}.log");
    let input = json!({
        "@timestamp": "2024-06-01T00:36:59.526712987Z",
        "message": r#"{"ts":"2024-06-01T00:36:59.526Z","level":"info","msg":"order placed","order":{"id":48213,"items":[{"sku":"A-1","qty":2}]},"user":"u-7731"}"#,
        "stream": "stdout",
        "log": {"file": {"path": path}},
    });
    let plain = json!({"@timestamp": "2024-06-01T00:37:00Z", "message": "GET /healthz 200 0.4ms", "stream": "stdout"});
    let out = process(&seed, format!("{input}\n{plain}\n").as_bytes());
    assert!(out.status.success());
    let events: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        events[0],
        json!({
            "@timestamp": "2024-06-01T00:36:59.526712987Z",
            "stream": "stdout",
            "log": {"file": {"path": path}},
            "container": {"id": id},
            "kubernetes": {
                "pod": {"name": "shop-7d9f-abcde"},
                "namespace": "prod",
                "container": {"name": "shop"}
            },
            "message-json": {
                "ts": "2024-06-01T00:36:59.526Z", "level": "info", "msg": "order placed",
                "order": {"id": 48213, "items": [{"sku": "A-1", "qty": 2}]}, "user": "u-7731"
            }
        })
    );
    assert_eq!(
        events[1]["message"], "GET /healthz 200 0.4ms",
        "plain text keeps its message"
    );
    assert!(events[1].get("message-json").is_none());
}

#[test]
fn the_agent_applies_processors_and_acknowledges_dropped_events() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/a.log"),
        "2024-01-01T00:00:00Z stdout F {\"level\":\"debug\",\"x\":1}\n2024-01-01T00:00:01Z stdout F {\"level\":\"info\",\"x\":2}\n",
    )
    .unwrap();
    let config = dir.path().join("c.yml");
    std::fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{}/logs/*.log']\n    processors:\n      - decode_json_fields: {{fields: [message], target: message-json}}\nprocessors:\n  - drop_event: {{when: {{equals: {{message-json.level: debug}}}}}}\n  - drop_fields: {{fields: [message]}}\nregistry: {{path: {}/reg, flush: 100ms}}\noutput.file: {{path: {}/out, filename: e.ndjson}}\n",
            dir.path().display(),
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = dir.path().join("out/e.ndjson");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < 1
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&out).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["message-json"], json!({"level": "info", "x": 2}));
    assert!(events[0].get("message").is_none());
    // The dropped event was acknowledged: the registry is at the end of the file.
    let reg: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("reg/registry.json")).unwrap())
            .unwrap();
    let size = std::fs::metadata(dir.path().join("logs/a.log"))
        .unwrap()
        .len();
    assert_eq!(reg["files"][0]["offset"], size);
}
