//! The README's quickstart, `scripts/quickstart`, run with this build's binary: the seed's
//! processors on the bundled logs, an entry of several chunks rejoined, and an entry split
//! across a rotation (kubelet's, done by the script while the agent runs) shipped as one
//! event.

use std::path::Path;
use std::process::Command;

use super::bin;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The `processors:` block of a configuration file, as written.
fn processors_block(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let start = text.find("\nprocessors:\n").expect("a processors block") + 1;
    text[start..]
        .lines()
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_quickstart_runs_the_seed_processors() {
    let _one = crate::one_at_a_time();
    assert_eq!(
        processors_block("examples/quickstart.yml"),
        processors_block("examples/filebeat-seed.yml"),
        "the quickstart's processors are the seed's"
    );
}

#[test]
fn the_quickstart_ships_every_entry_whole_across_a_rotation() {
    let _one = crate::one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(bin()).parent().unwrap();
    let out = Command::new(repo().join("scripts/quickstart"))
        .env("LOGTIDE_BIN_DIR", bin_dir)
        .env("LOGTIDE_QUICKSTART", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("rotating ") && stderr.contains("/0.log to 0.log.20261124-091510"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(tmp.path().join("events.ndjson")).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 6 entries of the CRI file (one line there is broken), 5 of the docker file, 6 of
    // the rotated container.
    assert_eq!(events.len(), 17, "{text}");
    assert!(
        stdout.starts_with("== 17 events (of 17 entries)"),
        "{stdout}"
    );

    for e in &events {
        let k8s = &e["kubernetes"];
        assert!(
            k8s["pod"]["name"].is_string() && k8s["namespace"].is_string(),
            "the path's Kubernetes fields: {e}"
        );
        assert!(
            e["log"].get("flags").is_none(),
            "nothing partial or cut: {e}"
        );
        // The seed's drop_fields: the text goes once it is decoded.
        assert_ne!(
            e.get("message-json").is_some(),
            e.get("message").is_some(),
            "{e}"
        );
    }
    let decoded = events.iter().filter(|e| e.get("message-json").is_some());
    assert_eq!(decoded.count(), 7);

    // Three CRI chunks on stderr, one event.
    let panic = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("panic:"))
        })
        .unwrap();
    let message = panic["message"].as_str().unwrap();
    assert!(
        message.ends_with("/src/checkout/http.go:142 +0x1f5"),
        "{message}"
    );
    assert!(message.contains("goroutine 417 [running]"), "{message}");

    // Begun in the rotated file, finished in the new 0.log: one event, whose JSON only
    // decodes whole.
    let export = events
        .iter()
        .find(|e| e["message-json"]["msg"] == "nightly export finished")
        .expect("the entry split across the rotation");
    assert_eq!(
        export["message-json"]["files"],
        serde_json::json!([
            "orders-2026-11-23.csv.gz",
            "returns-2026-11-23.csv.gz",
            "refunds-2026-11-23.csv.gz"
        ])
    );
    assert_eq!(
        export["kubernetes"]["pod"]["name"],
        "orders-worker-6b7c9d5f4-k4m2p"
    );
    assert!(
        stdout.contains("an entry split across the rotation of"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"msg\":\"nightly export finished\""),
        "{stdout}"
    );
}
