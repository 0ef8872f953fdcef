//! logtide-metrics end to end: its command line and its Kinesis output.

use std::path::Path;

mod cli;
mod kinesis;

/// The `logtide-metrics` executable of this build.
fn bin() -> &'static Path {
    crate::bin::path("logtide-metrics")
}
