//! `logtide-files status`: per file, what is shipped, what is behind and what was lost
//! and why, from the registry, the files and the running process's metrics endpoint.
//! `registry show` prints the registry alone, as saved.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use logtide_pipeline::cli::StatusArgs;
use logtide_pipeline::http::FILES_PORT;
use logtide_pipeline::status::{process_json, write_process_line, write_totals, Scraped};
use logtide_pipeline::FilesConfig;
use logtide_tail::{FileId, Registry};
use serde_json::{json, Value};

use crate::Files;

/// One file, from the registry and the endpoint.
#[derive(Default)]
struct FileRow {
    /// Where a restart reads from (the registry's offset).
    saved: Option<u64>,
    size: Option<u64>,
    /// Gone from its path (deleted or rotated away).
    gone: bool,
    /// Live: bytes behind and the age of the oldest unshipped entry.
    behind: Option<u64>,
    oldest_unshipped: Option<f64>,
    /// Bytes lost, by reason.
    lost: BTreeMap<String, u64>,
}

pub(crate) fn run(args: &StatusArgs<Files>) -> anyhow::Result<ExitCode> {
    let config = FilesConfig::load(&args.config)?;
    let mut files: BTreeMap<String, FileRow> = BTreeMap::new();
    let mut registries = Vec::new();
    for i in 0..config.inputs.len() {
        let dir = config.registry_config(i).path;
        let registry = match Registry::load(&dir) {
            Ok((r, _)) => r,
            Err(e) => {
                registries.push(json!({"path": dir, "error": e.to_string()}));
                continue;
            }
        };
        registries.push(json!({"path": dir, "files": registry.len()}));
        for e in registry.entries() {
            let size = std::fs::metadata(&e.path)
                .ok()
                .filter(|m| FileId::of(m) == e.id())
                .map(|m| m.len());
            let row = files.entry(e.path.display().to_string()).or_default();
            row.saved = Some(e.offset);
            row.size = size;
            row.gone = e.removed.is_some() || size.is_none();
        }
    }
    let scraped = Scraped::fetch(&config.http, FILES_PORT);
    if let Ok(s) = &scraped {
        for sample in s.family("logtide_file_bytes_behind") {
            if let Some(path) = sample.labels.get("path") {
                files.entry(real(path)).or_default().behind = Some(sample.value as u64);
            }
        }
        for sample in s.family("logtide_file_oldest_unshipped_seconds") {
            if let Some(path) = sample.labels.get("path") {
                files.entry(real(path)).or_default().oldest_unshipped = Some(sample.value);
            }
        }
        for sample in s.family("logtide_file_lost_bytes_total") {
            if let (Some(path), Some(reason)) =
                (sample.labels.get("path"), sample.labels.get("reason"))
            {
                *files
                    .entry(real(path))
                    .or_default()
                    .lost
                    .entry(reason.clone())
                    .or_default() += sample.value as u64;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<Value> = files
            .iter()
            .map(|(path, r)| {
                json!({
                    "path": path, "saved_offset": r.saved, "size": r.size, "gone": r.gone,
                    "behind": r.behind.or_else(|| Some(r.size?.saturating_sub(r.saved?))),
                    "oldest_unshipped_seconds": r.oldest_unshipped, "lost_bytes": r.lost,
                })
            })
            .collect();
        let process = process_json(&scraped);
        let doc = json!({"registries": registries, "files": rows, "process": process});
        writeln!(out, "{doc}")?;
        return Ok(ExitCode::SUCCESS);
    }
    write_process_line(&mut out, "logtide-files", &scraped)?;
    for r in &registries {
        match (&r["error"], &r["files"]) {
            (Value::String(e), _) => writeln!(out, "registry {}: {e}", r["path"])?,
            (_, n) => writeln!(out, "registry {}: {n} files", r["path"])?,
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>12} {:>12} {:>12} {:>10}  {:<40} path",
        "shipped", "size", "behind", "oldest", "lost"
    )?;
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for (path, r) in &files {
        let behind = r.behind.or_else(|| Some(r.size?.saturating_sub(r.saved?)));
        let lost: Vec<String> = r
            .lost
            .iter()
            .map(|(k, v)| format!("{v} bytes {k}"))
            .collect();
        writeln!(
            out,
            "{:>12} {:>12} {:>12} {:>10}  {:<40} {path}{}",
            dash(r.saved.map(|v| v.to_string())),
            dash(r.size.map(|v| v.to_string())),
            dash(behind.map(|v| v.to_string())),
            dash(r.oldest_unshipped.map(|v| format!("{v:.1}s"))),
            if lost.is_empty() {
                "-".into()
            } else {
                lost.join(", ")
            },
            if r.gone { " (gone)" } else { "" },
        )?;
    }
    write_totals(&mut out, &scraped)?;
    Ok(ExitCode::SUCCESS)
}

/// The registry names files by their real path, the endpoint by the path as found (the
/// symlink under /var/log/containers): resolve it when it still exists, so that both
/// land on one row.
fn real(path: &str) -> String {
    std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}
