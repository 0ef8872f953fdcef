//! The workspace as it is: its crate graph keeps the layers, and each binary links only
//! what it runs.

use std::process::Command;

use logtide_tests::{edges, tree_packages, violations, Edge};

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

fn workspace_edges() -> Vec<Edge> {
    let text = cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]);
    edges(&serde_json::from_str(&text).expect("cargo metadata prints JSON"))
}

#[test]
fn the_crate_graph_keeps_the_layers() {
    let edges = workspace_edges();
    assert!(
        edges.len() > 20,
        "the metadata holds the workspace's edges: {edges:?}"
    );
    assert_eq!(violations(&edges), Vec::<String>::new());
}

#[test]
fn an_edge_added_up_the_layers_is_refused() {
    // The workspace's own graph with one upward edge added (event, L0, on pipeline, L3)
    // and one sideways (tail on kinesis, both L2): the check names both.
    let mut edges = workspace_edges();
    edges.push(Edge {
        from: "logtide-event".into(),
        to: "logtide-pipeline".into(),
        dev: false,
    });
    edges.push(Edge {
        from: "logtide-tail".into(),
        to: "logtide-kinesis".into(),
        dev: false,
    });
    let v = violations(&edges);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("logtide-event (L0) depends on logtide-pipeline (L3)"));
    assert!(v[1].contains("logtide-tail depends on logtide-kinesis, both L2"));
}

/// The packages a binary links (normal dependencies, its own features only).
fn linked(package: &str) -> Vec<String> {
    let tree = cargo(&[
        "tree",
        "-p",
        package,
        "-e",
        "normal",
        "--prefix",
        "none",
        "--offline",
    ]);
    tree_packages(&tree)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn assert_links_none(package: &str, forbidden: &[&str]) {
    let linked = linked(package);
    assert!(linked.iter().any(|p| p == package), "{linked:?}");
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|f| linked.iter().any(|p| p == **f))
        .collect();
    assert!(found.is_empty(), "{package} links {found:?}");
}

#[test]
fn logtide_files_links_no_relay_or_metrics_code() {
    // `oversize: offload` writes its objects with signed requests, not the S3 SDK.
    assert_links_none(
        "logtide-files",
        &[
            "aws-sdk-s3",
            "aws-sdk-dynamodb",
            "logtide-es",
            "logtide-alert",
            "logtide-procstat",
            "logtide-s3",
            "logtide-mapping",
        ],
    );
}

#[test]
fn logtide_metrics_links_no_tailer_or_relay_code() {
    assert_links_none(
        "logtide-metrics",
        &[
            "logtide-tail",
            "logtide-es",
            "logtide-alert",
            "logtide-s3",
            "aws-sdk-dynamodb",
            "aws-sdk-s3",
            "logtide-json",
        ],
    );
}
