//! `logtide-files k8s-path`: shows the Kubernetes metadata logtide reads from log file
//! paths, one JSON object per path.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use logtide_k8s_meta::match_log_path;

/// Print what each path says about its container, one line per path, in order:
/// {"pod","namespace","container","container_id","pod_uid","restart_count"} with null
/// where the path's layout does not say, or null when the path is in no known layout
/// (kubelet's /var/log/containers and /var/log/pods, docker's /var/lib/docker/containers,
/// pod volumes under /var/lib/kubelet/pods). Only the path is read, never the file.
/// Exits 0 whether or not the paths match.
#[derive(Debug, clap::Args)]
pub(crate) struct K8sPathArgs {
    /// Log file paths to match (an empty one prints null).
    #[arg(required = true, value_name = "PATH", value_parser = clap::value_parser!(OsString))]
    paths: Vec<OsString>,
}

pub(crate) fn run(args: &K8sPathArgs) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(io::stdout().lock());
    for path in &args.paths {
        serde_json::to_writer(&mut out, &match_log_path(path)).context("cannot write JSON")?;
        out.write_all(b"\n").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
