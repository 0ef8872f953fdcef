//! `add_kubernetes_metadata` in a processor list of the agent, with no cluster to ask:
//! events get what their paths say, and the misses are counted.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use logtide_k8s_meta::MissReason;
use logtide_pipeline::{run_files, FilesConfig};
use serde_json::{json, Value};

const ID: &str = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";

fn events(dir: &Path) -> Vec<Value> {
    fs::read_to_string(dir.join("out/events.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn without_a_cluster_events_get_their_paths_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("var/log/containers");
    fs::create_dir_all(&logs).unwrap();
    let file = logs.join(format!("web-0_prod_nginx-{ID}.log"));
    fs::write(
        &file,
        "2024-01-01T00:00:00.000000001Z stdout F {\"level\":\"info\"}\n\
         2024-01-01T00:00:00.000000002Z stderr F plain\n",
    )
    .unwrap();
    let text = format!(
        "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\n\
         registry: {{path: {reg}, flush: 100ms}}\n\
         processors:\n\
         \x20 - add_kubernetes_metadata: {{kube_config: {missing}}}\n\
         \x20 - decode_json_fields: {{fields: [message], target: message-json}}\n\
         output.file: {{path: {out}, filename: events.ndjson}}\n",
        logs = logs.display(),
        reg = dir.path().join("registry").display(),
        missing = dir.path().join("no-such-kubeconfig").display(),
        out = dir.path().join("out").display(),
    );
    let config = FilesConfig::from_yaml(&text, Path::new("test.yml")).expect("valid config");
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let stop = stop.clone();
        thread::spawn(move || run_files(&config, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while events(dir.path()).len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let summary = run.join().unwrap().expect("clean run");

    let got = events(dir.path());
    assert_eq!(got.len(), 2, "{got:?}");
    for e in &got {
        assert_eq!(e["kubernetes"]["pod"]["name"], json!("web-0"));
        assert_eq!(e["kubernetes"]["namespace"], json!("prod"));
        assert_eq!(e["kubernetes"]["container"]["name"], json!("nginx"));
        assert_eq!(e["container"]["id"], json!(ID));
    }
    assert_eq!(got[0]["message-json"], json!({"level": "info"}));
    assert_eq!(summary.kubernetes.len(), 1);
    assert_eq!(summary.kubernetes[0].misses(MissReason::NoCluster), 2);
    assert_eq!(summary.held[0].held, 0, "with no cluster nothing waits");
}

#[test]
fn add_kubernetes_metadata_options_are_checked_with_the_configuration() {
    let text = "inputs:\n  - type: container\n    paths: ['/x/*.log']\n\
                processors:\n  - add_kubernetes_metadata: {lables: {}}\n\
                output.console: {}\n";
    let err = FilesConfig::from_yaml(text, Path::new("test.yml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("processors[0].add_kubernetes_metadata.lables: unknown field `lables`"),
        "{err}"
    );
}
