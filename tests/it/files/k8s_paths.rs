//! Runs every shared conformance case for Kubernetes log paths through
//! `logtide-files k8s-path`, as `../shared/conformance/README.md` describes.

use std::process::{Command, Output};

use super::bin;
use crate::support::conformance_dir;
use serde_json::Value;

const KEYS: [&str; 6] = [
    "pod",
    "namespace",
    "container",
    "container_id",
    "pod_uid",
    "restart_count",
];

fn k8s_path(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("k8s-path")
        .args(args)
        .output()
        .expect("run logtide-files k8s-path")
}

/// Compares one output with one `expect` (exact values); returns what differs.
fn compare(got: &Value, want: &Value) -> Result<(), String> {
    if want.is_null() {
        return if got.is_null() {
            Ok(())
        } else {
            Err(format!("expected no match, got {got}"))
        };
    }
    let (Some(got_obj), Some(want_obj)) = (got.as_object(), want.as_object()) else {
        return Err(format!("expected {want}, got {got}"));
    };
    // The order of the keys in the raw output is checked by `each_path_gets_its_own_line`.
    if got_obj.len() != KEYS.len() || !KEYS.iter().all(|k| got_obj.contains_key(*k)) {
        return Err(format!("output keys are not exactly {KEYS:?}: {got}"));
    }
    for (key, w) in want_obj {
        let g = got
            .get(key)
            .ok_or_else(|| format!("no key {key:?} in {got}"))?;
        if g != w {
            return Err(format!("{key}: got {g}, expected {w}"));
        }
    }
    Ok(())
}

#[test]
fn k8s_path_cases_pass() {
    let _one = crate::one_at_a_time();
    let file = conformance_dir().join("k8s_paths.jsonl");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let cases: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), n + 1))
        })
        .collect();
    assert!(!cases.is_empty(), "{}: no cases", file.display());

    let paths: Vec<&str> = cases
        .iter()
        .map(|c| c["path"].as_str().expect("case has a string path"))
        .collect();
    let output = k8s_path(&paths);
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<Value> = output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("each output line is JSON"))
        .collect();
    assert_eq!(got.len(), cases.len(), "one output line per path: {got:?}");

    let failures: Vec<String> = cases
        .iter()
        .zip(&got)
        .filter_map(|(case, g)| {
            let want = case.get("expect").expect("case has expect");
            compare(g, want)
                .err()
                .map(|e| format!("{} ({}): {e}", case["id"], case["path"]))
        })
        .collect();
    eprintln!(
        "k8s_paths.jsonl: {} of {} cases passed",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn each_path_gets_its_own_line() {
    let _one = crate::one_at_a_time();
    let id = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
    let link = format!("/var/log/containers/web-0_prod_nginx-{id}.log");
    let output = k8s_path(&["/var/log/messages", &link, ""]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert_eq!(
        stdout,
        format!(
            "null\n{{\"pod\":\"web-0\",\"namespace\":\"prod\",\"container\":\"nginx\",\
             \"container_id\":\"{id}\",\"pod_uid\":null,\"restart_count\":null}}\nnull\n"
        )
    );
}

#[test]
fn no_path_is_a_usage_error() {
    let _one = crate::one_at_a_time();
    let output = k8s_path(&[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
    assert!(!output.stderr.is_empty());
}
