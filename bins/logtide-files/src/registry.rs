//! `logtide-files registry`: show the saved read positions, import Filebeat's.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use logtide_pipeline::FilesConfig;
use logtide_tail::filebeat::read_filebeat_registry;
use logtide_tail::{FileId, RangeHash, Registry, FINGERPRINT_BYTES};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RegistryCommand {
    /// Print the registry as saved: per file, where a restart resumes reading, the
    /// file's identity and when its entry was written. What is shipped, behind or lost
    /// (from the registry, the files and the running agent) is `logtide-files status`.
    Show {
        #[command(flatten)]
        at: RegistryAt,
        /// Print each entry as saved, one JSON object per file, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Convert a Filebeat registry (6.x `data/registry` file, or the 7.x+
    /// `data/registry` directory) so that switching from Filebeat re-reads nothing.
    ImportFilebeat {
        /// The Filebeat registry file or directory.
        source: PathBuf,
        #[command(flatten)]
        at: RegistryAt,
        /// Replace positions logtide already has for the same files.
        #[arg(long)]
        force: bool,
    },
}

/// Where the registry is: the configuration's `registry.path`, or a directory.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistryAt {
    /// Configuration file whose `registry.path` to use.
    #[arg(short = 'c', long = "config", default_value = "logtide-files.yml")]
    config: PathBuf,
    /// Registry directory (instead of the configuration's).
    #[arg(long)]
    path: Option<PathBuf>,
}

impl RegistryAt {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.path {
            Some(p) => Ok(p.clone()),
            None => Ok(FilesConfig::load(&self.config)?.registry_config(0).path),
        }
    }
}

pub(crate) fn run(cmd: RegistryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RegistryCommand::Show { at, json } => show(&at.dir()?, json),
        RegistryCommand::ImportFilebeat { source, at, force } => import(&source, &at.dir()?, force),
    }
}

fn show(dir: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let (registry, report) = Registry::load(dir)?;
    if let Some(aside) = report.moved_aside {
        eprintln!(
            "registry was unreadable and was moved to {}",
            aside.display()
        );
    }
    let mut out = std::io::stdout().lock();
    if registry.is_empty() && !json {
        writeln!(out, "registry {} is empty", dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        writeln!(
            out,
            "{:>12}  {:<24} {:<30} path",
            "offset", "file", "updated"
        )?;
    }
    for e in registry.entries() {
        if json {
            writeln!(out, "{}", serde_json::to_value(e)?)?;
        } else {
            let state = if e.removed.is_some() {
                " (removed)"
            } else {
                ""
            };
            writeln!(
                out,
                "{:>12}  {:<24} {:<30} {}{state}",
                e.offset,
                e.id().to_string(),
                e.updated.to_string(),
                e.path.display(),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    source: &std::path::Path,
    dir: &std::path::Path,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let states = read_filebeat_registry(source)?;
    let (mut registry, _) = Registry::load(dir)?;
    let (mut imported, mut known, mut missing) = (0, 0, 0);
    for s in &states {
        let mut entry = s.to_entry();
        if registry.get(entry.id()).is_some() && !force {
            known += 1;
            continue;
        }
        // Take the fingerprint now, when the file is still the one Filebeat read, so that
        // a later reuse of its inode is recognised.
        match File::open(&s.source) {
            Ok(f) if FileId::of_file(&f).is_ok_and(|id| id == entry.id()) => {
                let mut head = vec![0u8; FINGERPRINT_BYTES];
                let n = std::os::unix::fs::FileExt::read_at(&f, &mut head, 0).unwrap_or(0);
                entry.fingerprint = Some(RangeHash::of(&head[..n]));
            }
            _ => missing += 1,
        }
        registry.insert(entry);
        imported += 1;
    }
    registry
        .save(dir)
        .with_context(|| format!("cannot save the registry in {}", dir.display()))?;
    println!(
        "imported {imported} of {} Filebeat file states into {} ({known} already known{}, {missing} not found at their path)",
        states.len(),
        dir.display(),
        if force { "" } else { ", kept" },
    );
    Ok(ExitCode::SUCCESS)
}
