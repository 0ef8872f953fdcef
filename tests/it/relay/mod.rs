//! logtide-relay end to end: from Kinesis to S3, Elasticsearch and alerts, with
//! logtide-files in front for the whole pipeline.

use std::path::Path;

#[allow(dead_code, unreachable_pub)]
mod common;
mod demo;
mod files_to_s3;
mod mapping_check;
mod offload;
mod relay_alerts;
mod relay_es;
mod relay_moto;
mod resharding;
mod rules_cli;
mod stuck_sinks;

/// The `logtide-relay` executable of this build.
fn relay_bin() -> &'static Path {
    crate::bin::path("logtide-relay")
}
