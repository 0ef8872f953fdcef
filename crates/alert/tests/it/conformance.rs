//! Runs every case of the shared `alert_rules.jsonl` conformance file (elastalert's rule
//! types on the events of elastalert's own tests) through the engine, fed as
//! `logtide-relay rules test` feeds it: the events in input order, then the end of input.
//!
//! The file is `$LOGTIDE_CONFORMANCE_DIR/alert_rules.jsonl`, or by default
//! `shared/conformance/alert_rules.jsonl` next to the workspace. A missing file fails.

use std::path::PathBuf;

use logtide_alert::{Engine, EngineConfig, Rule};
use logtide_event::{Event, Timestamp};
use serde_json::Value;

fn conformance_file() -> PathBuf {
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    dir.join("alert_rules.jsonl")
}

/// Cases where logtide deliberately differs from elastalert: each is marked `disputed` in
/// the data and has a row in `docs/compatibility.md`.
const DIFFERENCES: &[(&str, &str)] = &[];

/// Runs one case; returns what is wrong with the result.
fn run_case(case: &Value) -> Vec<String> {
    let rule = match Rule::from_value(&case["rule"], "RULE.yml", None) {
        Ok(rule) => rule,
        Err(e) => return vec![format!("rule rejected: {e}")],
    };
    let mut events = Vec::new();
    let mut now = Timestamp::UNIX_EPOCH;
    for (i, e) in case["events"]
        .as_array()
        .expect("events")
        .iter()
        .enumerate()
    {
        match Event::from_json(e.clone()) {
            Ok(e) => {
                now = now.max(e.timestamp());
                events.push(e);
            }
            Err(err) => return vec![format!("event {i} rejected: {err}")],
        }
    }
    let mut engine = Engine::new(EngineConfig::default(), [rule]);
    let mut alerts = Vec::new();
    engine.process(&events, now, &mut alerts);
    engine.finish(&mut alerts);

    let mut problems = Vec::new();
    let want = case["expect_alerts"].as_u64().expect("expect_alerts");
    if alerts.len() as u64 != want {
        let times: Vec<String> = alerts.iter().map(|a| a.time_text()).collect();
        problems.push(format!(
            "expected {want} alerts, got {} at {times:?}",
            alerts.len()
        ));
    }
    if let Some(keys) = case.get("expect_query_keys").and_then(Value::as_array) {
        let mut want: Vec<Option<String>> =
            keys.iter().map(|k| k.as_str().map(str::to_owned)).collect();
        let mut got: Vec<Option<String>> = alerts.iter().map(|a| a.query_key.clone()).collect();
        want.sort();
        got.sort();
        if want != got {
            problems.push(format!("expected query keys {want:?}, got {got:?}"));
        }
    }
    problems
}

#[test]
fn every_alert_rules_case_passes() {
    let file = conformance_file();
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read conformance file {}: {e}", file.display()));
    let cases: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", file.display(), n + 1))
        })
        .collect();
    assert!(!cases.is_empty(), "{} has no cases", file.display());
    let mut failures = Vec::new();
    let mut failed_ids = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        if let Some((_, reason)) = DIFFERENCES.iter().find(|(d, _)| *d == id) {
            assert_eq!(
                case.get("disputed"),
                Some(&Value::Bool(true)),
                "{id} is skipped as a deliberate difference but is not marked disputed"
            );
            eprintln!("{id}: skipped, deliberate difference: {reason}");
            continue;
        }
        let problems = run_case(case);
        if !problems.is_empty() {
            failed_ids.push(id.to_owned());
            failures.push(format!("{id}:\n  {}", problems.join("\n  ")));
        }
    }
    for (id, _) in DIFFERENCES {
        assert!(
            cases.iter().any(|c| c["id"] == *id),
            "deliberate difference {id} names no case"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail: {}\n{}",
        failures.len(),
        cases.len(),
        failed_ids.join(" "),
        failures.join("\n")
    );
}
