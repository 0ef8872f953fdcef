//! Runs the shared conformance cases for CRI and docker json-file lines through
//! `logtide-files parse`, as `../shared/conformance/README.md` describes.

use std::io::Write;
use std::process::{Command, Stdio};

use super::bin;
use crate::support::conformance_dir;
use logtide_event::Timestamp;
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex input"))
        .collect()
}

/// Why a case is not run, per the conformance README, or `None` to run it.
fn skip_reason(case: &Value, lines: &[Vec<u8>], with_terminator: bool) -> Option<&'static str> {
    if case["config"]["cri_flags"] == Value::Bool(false) {
        return Some("legacy tag-less CRI");
    }
    let inner_lf = lines.iter().any(|l| {
        let body = if with_terminator {
            l.strip_suffix(b"\n").unwrap_or(l)
        } else {
            l
        };
        body.contains(&b'\n')
    });
    inner_lf.then_some("raw LF inside one input element")
}

fn instant(v: &Value) -> Timestamp {
    let s = v.as_str().expect("time is a string");
    Timestamp::parse_rfc3339(s.as_bytes()).expect("time parses")
}

/// Compares one output object with one expected object; returns what differs.
fn compare(got: &Value, want: &Value) -> Result<(), String> {
    if want.get("error").is_some() {
        let Some(msg) = got.get("error").and_then(Value::as_str) else {
            return Err(format!("expected an error, got {got}"));
        };
        if msg.is_empty() {
            return Err("error message is empty".into());
        }
        if let Some(index) = want.get("input_index").and_then(Value::as_u64) {
            if got["line"].as_u64() != Some(index + 1) {
                return Err(format!(
                    "error on line {}, expected line {}",
                    got["line"],
                    index + 1
                ));
            }
        }
        return Ok(());
    }
    if got.get("error").is_some() {
        return Err(format!("unexpected error {got}"));
    }
    if instant(&got["time"]) != instant(&want["time"]) {
        return Err(format!("time {} != {}", got["time"], want["time"]));
    }
    let got_time = got["time"].as_str().unwrap_or_default();
    if got_time.len() != 30 || !got_time.ends_with('Z') {
        return Err(format!(
            "time {got_time} is not UTC with 9 fractional digits"
        ));
    }
    if got["stream"] != want["stream"] {
        return Err(format!("stream {} != {}", got["stream"], want["stream"]));
    }
    let want_message = match (want.get("message"), want.get("message_hex")) {
        (Some(m), _) => m.clone(),
        (None, Some(h)) => Value::String(
            String::from_utf8_lossy(&hex(h.as_str().unwrap_or_default())).into_owned(),
        ),
        (None, None) => return Err("case has no message".into()),
    };
    if got["message"] != want_message {
        return Err(format!("message {} != {}", got["message"], want_message));
    }
    let want_partial = want
        .get("partial")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if got["partial"].as_bool() != Some(want_partial) {
        return Err(format!("partial {} != {want_partial}", got["partial"]));
    }
    if got.get("attrs") != want.get("attrs") {
        return Err(format!(
            "attrs {:?} != {:?}",
            got.get("attrs"),
            want.get("attrs")
        ));
    }
    for flag in ["flushed_at_eof", "truncated"] {
        let w = want.get(flag).and_then(Value::as_bool).unwrap_or(false);
        let g = got.get(flag).and_then(Value::as_bool).unwrap_or(false);
        if w != g {
            return Err(format!("{flag} {g} != {w}"));
        }
    }
    Ok(())
}

/// Runs one case; returns `Ok(false)` when it is skipped.
fn run_case(case: &Value) -> Result<bool, String> {
    let with_terminator = case["input_lines_include_terminator"]
        .as_bool()
        .unwrap_or(false);
    let lines: Vec<Vec<u8>> = match (case.get("input_lines"), case.get("input_lines_hex")) {
        (Some(Value::Array(ls)), _) => ls
            .iter()
            .map(|l| l.as_str().unwrap_or_default().as_bytes().to_vec())
            .collect(),
        (_, Some(Value::Array(ls))) => ls
            .iter()
            .map(|l| hex(l.as_str().unwrap_or_default()))
            .collect(),
        _ => return Err("case has no input".into()),
    };
    if skip_reason(case, &lines, with_terminator).is_some() {
        return Ok(false);
    }
    let mut stdin = Vec::new();
    for l in &lines {
        stdin.extend_from_slice(l);
        if !with_terminator {
            stdin.push(b'\n');
        }
    }
    let config = &case["config"];
    let mut cmd = Command::new(bin());
    cmd.arg("parse")
        .arg("--format")
        .arg(config["format"].as_str().unwrap_or("auto"))
        .arg("--stream")
        .arg(config["stream"].as_str().unwrap_or("all"));
    if config["mode"] == "reassemble" {
        cmd.arg("--reassemble");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut child_stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || child_stdin.write_all(&stdin));
    let output = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
    writer
        .join()
        .map_err(|_| "writer panicked")?
        .map_err(|e| format!("write: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let got: Vec<Value> = output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| format!("output is not JSON: {e}")))
        .collect::<Result<_, _>>()?;
    let want = case["expect"].as_array().ok_or("case has no expect")?;
    if got.len() != want.len() {
        return Err(format!(
            "{} outputs, expected {}: {got:?}",
            got.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        compare(g, w).map_err(|e| format!("output {i}: {e}"))?;
    }
    Ok(true)
}

fn run_file(name: &str) {
    let path = conformance_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
        let id = case["id"].as_str().unwrap_or("?").to_owned();
        match run_case(&case) {
            Ok(true) => ran += 1,
            Ok(false) => skipped += 1,
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    eprintln!("{name}: {ran} cases passed, {skipped} skipped as the README directs");
    assert!(
        failures.is_empty(),
        "{name}: {} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 0, "{name}: no case ran");
}

#[test]
fn cri_cases_pass() {
    let _one = crate::one_at_a_time();
    run_file("cri.jsonl");
}

#[test]
fn docker_cases_pass() {
    let _one = crate::one_at_a_time();
    run_file("docker.jsonl");
}
