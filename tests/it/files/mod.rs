//! logtide-files end to end: the agent's commands, tailing, processors, Kubernetes
//! metadata and its Kinesis output.

use std::path::Path;

mod agent;
mod cli;
mod conformance;
mod crash;
mod k8s_kmock;
mod k8s_paths;
#[allow(dead_code, unreachable_pub)]
mod kinesis_common;
mod kinesis_faults;
mod kinesis_json;
mod kinesis_moto;
mod not_json;
mod processors;
mod quickstart;
mod rotation;
mod seed_chain;
mod self_metrics;
mod stuck_output;
mod workload;

/// The `logtide-files` executable of this build.
fn bin() -> &'static Path {
    crate::bin::path("logtide-files")
}
