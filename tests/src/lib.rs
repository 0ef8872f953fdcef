//! The workspace's structural rules, checked over `cargo metadata` and `cargo tree` by
//! `it/layers.rs`.
//!
//! The crate's one test binary, `it` (`it/main.rs`), also holds the end-to-end tests of
//! the binaries against real local services: `it/files/`, `it/metrics/` and `it/relay/`
//! run this build's `logtide-files`, `logtide-metrics` and `logtide-relay`.
//!
//! Every crate has a layer (ARCHITECTURE.md draws the graph):
//!
//! | layer | crates |
//! |---|---|
//! | L0 | `logtide-event`, `logtide-config` |
//! | L1 (pure) | `logtide-container-log`, `logtide-json`, `logtide-mapping`, `logtide-tls` |
//! | L2 (I/O) | `logtide-tail`, `logtide-k8s-meta`, `logtide-aws`, `logtide-kinesis`, `logtide-s3`, `logtide-es`, `logtide-procstat`, `logtide-alert` |
//! | L3 | `logtide-pipeline` |
//! | L4 | `logtide-files`, `logtide-metrics`, `logtide-relay` |
//!
//! A crate's normal and build dependencies point only down the layers. Within L2 the only
//! edges are the AWS crates' to `logtide-aws`. Test support (`logtide-testkit`,
//! `logtide-benches`, this crate) may only be a dev-dependency, never a normal one.

use serde_json::Value;

/// The layer of a workspace crate; `None` for test support, which no crate may depend on
/// for its normal build.
pub fn layer(name: &str) -> Option<u8> {
    Some(match name {
        "logtide-event" | "logtide-config" => 0,
        "logtide-container-log" | "logtide-json" | "logtide-mapping" | "logtide-tls" => 1,
        "logtide-tail" | "logtide-k8s-meta" | "logtide-aws" | "logtide-kinesis" | "logtide-s3"
        | "logtide-es" | "logtide-procstat" | "logtide-alert" => 2,
        "logtide-pipeline" => 3,
        "logtide-files" | "logtide-metrics" | "logtide-relay" => 4,
        _ => return None,
    })
}

/// The edges allowed within one layer.
const SIDEWAYS: &[(&str, &str)] = &[
    ("logtide-kinesis", "logtide-aws"),
    ("logtide-s3", "logtide-aws"),
    ("logtide-es", "logtide-aws"),
];

/// A dependency of one workspace crate on another: `from` needs `to` to build (`dev`
/// for its tests only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The crate that depends.
    pub from: String,
    /// The crate it depends on.
    pub to: String,
    /// Only a dev-dependency.
    pub dev: bool,
}

/// The edges between workspace crates, from `cargo metadata --no-deps` output.
pub fn edges(metadata: &Value) -> Vec<Edge> {
    let members: Vec<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut out = Vec::new();
    for p in metadata["packages"].as_array().into_iter().flatten() {
        let from = p["name"].as_str().unwrap_or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let to = d["name"].as_str().unwrap_or_default();
            if to == from || !members.contains(&to) {
                continue;
            }
            out.push(Edge {
                from: from.to_owned(),
                to: to.to_owned(),
                dev: d["kind"].as_str() == Some("dev"),
            });
        }
    }
    out
}

/// What is wrong with the edges, one line each: an edge up or sideways across layers, a
/// crate without a layer, or test support in a normal build.
pub fn violations(edges: &[Edge]) -> Vec<String> {
    let mut out = Vec::new();
    for e in edges {
        let (from, to) = (layer(&e.from), layer(&e.to));
        match (from, to) {
            // Tests may use anything.
            _ if e.dev => {}
            (None, _) if is_test_support(&e.from) => {}
            (Some(_), None) | (None, None) => out.push(format!(
                "{} depends on {}, which is test support or has no layer",
                e.from, e.to
            )),
            (None, Some(_)) => out.push(format!("{} has no layer", e.from)),
            (Some(f), Some(t)) if t > f => out.push(format!(
                "{} (L{f}) depends on {} (L{t}): an edge up the layers",
                e.from, e.to
            )),
            (Some(f), Some(t))
                if t == f && !SIDEWAYS.contains(&(e.from.as_str(), e.to.as_str())) =>
            {
                out.push(format!(
                    "{} depends on {}, both L{f}: what two crates of a layer share moves down a layer",
                    e.from, e.to
                ))
            }
            _ => {}
        }
    }
    out
}

fn is_test_support(name: &str) -> bool {
    matches!(
        name,
        "logtide-testkit" | "logtide-benches" | "logtide-tests"
    )
}

/// The package names in `cargo tree --prefix none -e normal` output.
pub fn tree_packages(tree: &str) -> Vec<&str> {
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &str, to: &str, dev: bool) -> Edge {
        Edge {
            from: from.into(),
            to: to.into(),
            dev,
        }
    }

    #[test]
    fn every_kind_of_bad_edge_is_named() {
        let cases = [
            (
                edge("logtide-event", "logtide-tail", false),
                "an edge up the layers",
            ),
            (edge("logtide-kinesis", "logtide-s3", false), "both L2"),
            (edge("logtide-json", "logtide-mapping", false), "both L1"),
            (
                edge("logtide-pipeline", "logtide-testkit", false),
                "test support",
            ),
            (edge("logtide-new", "logtide-event", false), "has no layer"),
        ];
        for (e, want) in cases {
            let v = violations(std::slice::from_ref(&e));
            assert_eq!(v.len(), 1, "{e:?}: {v:?}");
            assert!(v[0].contains(want), "{e:?}: {v:?}");
        }
    }

    #[test]
    fn allowed_edges_pass() {
        let ok = [
            edge("logtide-tail", "logtide-container-log", false),
            edge("logtide-es", "logtide-mapping", false),
            edge("logtide-kinesis", "logtide-aws", false),
            edge("logtide-files", "logtide-pipeline", false),
            edge("logtide-event", "logtide-testkit", true),
            edge("logtide-benches", "logtide-json", false),
        ];
        assert_eq!(violations(&ok), Vec::<String>::new());
    }

    #[test]
    fn metadata_edges_keep_the_kind() {
        let md = serde_json::json!({"packages": [
            {"name": "logtide-a", "dependencies": [
                {"name": "logtide-b", "kind": null},
                {"name": "logtide-c", "kind": "dev"},
                {"name": "serde", "kind": null}
            ]},
            {"name": "logtide-b", "dependencies": []},
            {"name": "logtide-c", "dependencies": [{"name": "logtide-c", "kind": null}]}
        ]});
        assert_eq!(
            edges(&md),
            [
                edge("logtide-a", "logtide-b", false),
                edge("logtide-a", "logtide-c", true)
            ]
        );
        assert_eq!(tree_packages("b v1\na v1 (/x)\nb v1 (*)\n"), ["a", "b"]);
    }
}
