//! `logtide-relay rules test RULE.yml < events.ndjson` on an elastalert rule file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::relay_bin;

fn run(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(relay_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn rule_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/alert/tests/data/elastalert/checkout_errors.yaml")
        .display()
        .to_string()
}

/// Six 503s from checkout-1 within a minute, interleaved with other traffic, then five
/// more an hour later (after the 15-minute realert).
fn events() -> String {
    let mut lines = Vec::new();
    let mut push = |secs: u32, pod: &str, app: &str, status: u32| {
        let minute = secs / 60;
        let sec = secs % 60;
        lines.push(format!(
            r#"{{"@timestamp":"2026-01-01T{:02}:{:02}:{sec:02}Z","kubernetes":{{"labels":{{"app":"{app}"}},"pod":{{"name":"{pod}"}}}},"message-json":{{"status":{status},"path":"/api/pay"}}}}"#,
            minute / 60,
            minute % 60,
        ));
    };
    for i in 0..6 {
        push(i * 10, "checkout-1", "checkout", 503);
        push(i * 10 + 1, "checkout-2", "checkout", 200);
        push(i * 10 + 2, "cart-1", "cart", 503);
    }
    for i in 0..5 {
        push(3600 + i * 5, "checkout-1", "checkout", 500);
    }
    lines.join("\n") + "\n"
}

#[test]
fn rules_test_prints_the_alerts_that_would_fire() {
    let _one = crate::one_at_a_time();
    let rule = rule_file();
    let (ok, stdout, stderr) = run(&["rules", "test", &rule], &events());
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "2026-01-01T00:00:40Z Checkout 5xx burst [checkout-1]: Checkout 5xx on checkout-1 (to: slack)\n    checkout-1 answered 503 1 times within 2 minutes.\n\
         2026-01-01T01:00:20Z Checkout 5xx burst [checkout-1]: Checkout 5xx on checkout-1 (to: slack)\n    checkout-1 answered 500 1 times within 2 minutes.\n"
    );
    assert!(
        stderr.ends_with("1 rules, 23 events (0 not events), 2 alerts\n"),
        "{stderr}"
    );

    let (ok, stdout, _) = run(&["rules", "test", "--json", &rule], &events());
    assert!(ok);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["rule"], "Checkout 5xx burst");
    assert_eq!(first["query_key"], "checkout-1");
    assert_eq!(first["events"][0]["message-json"]["status"], 503);
}

/// With the alerts and the summary on one terminal (`2>&1`), the summary stands on its
/// own line after a blank one, never run together with the last alert's text.
#[test]
fn rules_test_sets_its_summary_apart_from_the_alerts() {
    let _one = crate::one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    std::fs::write(&input, events()).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" rules test "$1" < "$2" 2>&1"#)
        .args([
            relay_bin().to_str().unwrap(),
            &rule_file(),
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let both = String::from_utf8(out.stdout).unwrap();
    assert!(
        both.ends_with(
            "    checkout-1 answered 500 1 times within 2 minutes.\n\nsummary: 1 rules, 23 events (0 not events), 2 alerts\n"
        ),
        "{both}"
    );
}

#[test]
fn rules_test_names_a_refused_rule() {
    let _one = crate::one_at_a_time();
    let rule = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/alert/tests/data/refused/wildcard.yaml");
    let (ok, _, stderr) = run(&["rules", "test", rule.to_str().unwrap()], "");
    assert!(!ok);
    assert!(
        stderr.contains("wildcard.yaml: rule \"Wildcard search\": filter[1].query.wildcard: unsupported filter clause \"wildcard\""),
        "{stderr}"
    );
}

/// Cases of `alert_rules.jsonl` where logtide deliberately differs from elastalert: each
/// is marked `disputed` in the data and has a row in `docs/compatibility.md`.
const ALERT_DIFFERENCES: &[(&str, &str)] = &[];

/// Every case of the shared `alert_rules.jsonl`, as its README says: the rule is written
/// to RULE.yml (JSON is YAML), the events go to `rules test --json` on standard input,
/// and the alerts printed are counted and their query keys compared as a multiset.
#[test]
fn rules_test_gives_elastalerts_alerts_for_every_conformance_case() {
    let _one = crate::one_at_a_time();
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    };
    let file = dir.join("alert_rules.jsonl");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read conformance file {}: {e}", file.display()));
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = 0;
    let mut failed = Vec::new();
    let mut problems = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap_or("?").to_owned();
        cases += 1;
        if let Some((_, reason)) = ALERT_DIFFERENCES.iter().find(|(d, _)| *d == id) {
            assert_eq!(case["disputed"], true, "{id} is skipped but not disputed");
            eprintln!("{id}: skipped, deliberate difference: {reason}");
            continue;
        }
        let rule = tmp.path().join(format!("{id}.yml"));
        std::fs::write(&rule, case["rule"].to_string()).unwrap();
        let events: String = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{e}\n"))
            .collect();
        let (ok, stdout, stderr) = run(
            &["rules", "test", "--json", rule.to_str().unwrap()],
            &events,
        );
        if !ok {
            failed.push(id.clone());
            problems.push(format!("{id}: rules test failed: {stderr}"));
            continue;
        }
        let alerts: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{id}: {l}: {e}")))
            .collect();
        let want = case["expect_alerts"].as_u64().unwrap();
        let mut wrong = Vec::new();
        if alerts.len() as u64 != want {
            wrong.push(format!("expected {want} alerts, got {}", alerts.len()));
        }
        if let Some(keys) = case["expect_query_keys"].as_array() {
            let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let mut got: Vec<String> = alerts.iter().map(|a| a["query_key"].to_string()).collect();
            want.sort();
            got.sort();
            if want != got {
                wrong.push(format!("expected query keys {want:?}, got {got:?}"));
            }
        }
        if !wrong.is_empty() {
            failed.push(id.clone());
            problems.push(format!("{id}: {}", wrong.join("; ")));
        }
    }
    assert!(cases > 0, "{} has no cases", file.display());
    assert!(
        failed.is_empty(),
        "{} of {cases} cases fail: {}\n{}",
        failed.len(),
        failed.join(" "),
        problems.join("\n")
    );
}
