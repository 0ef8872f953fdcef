//! Rule files in a directory, reloaded when they change.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::{RecursiveMode, Watcher};

use crate::rule::Rule;
use crate::{Error, Result};

/// Loads every rule file (`*.yaml`, `*.yml`, in subdirectories too, hidden files
/// skipped) under `dir`, in path order. Returns the rules and, separately, the files
/// that could not be used with their errors (including a second rule of the same name).
pub fn load_rules(dir: &Path) -> Result<(Vec<Arc<Rule>>, Vec<Error>)> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for f in files {
        match Rule::load(&f) {
            Ok(rule) => match names.get(rule.name()) {
                Some(first) => errors.push(Error::DuplicateRule {
                    origin: rule.origin().to_owned(),
                    rule: rule.name().to_owned(),
                    first: first.clone(),
                }),
                None => {
                    names.insert(rule.name().to_owned(), rule.origin().to_owned());
                    rules.push(Arc::new(rule));
                }
            },
            Err(e) => errors.push(e),
        }
    }
    Ok((rules, errors))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        // Follows symbolic links, as a mounted ConfigMap's files are links.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// A directory of rule files, watched for changes.
///
/// [`RuleDir::reload_if_changed`] reads the files again after a change was reported
/// (inotify). A file that fails to load keeps the rule it had before, so a bad edit
/// never removes a working rule; its error is reported until it is fixed.
pub struct RuleDir {
    dir: PathBuf,
    rules: BTreeMap<String, Arc<Rule>>,
    errors: Vec<Error>,
    changed: Arc<AtomicBool>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl RuleDir {
    /// Loads the directory and starts watching it. Errors only when the directory
    /// cannot be read; bad rule files are in [`RuleDir::errors`].
    pub fn open(dir: &Path) -> Result<RuleDir> {
        let changed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&changed);
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            flag.store(true, Ordering::Relaxed);
        })
        .and_then(|mut w| w.watch(dir, RecursiveMode::Recursive).map(|()| w));
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the rules directory; changes are not picked up");
                None
            }
        };
        let mut out = RuleDir {
            dir: dir.to_owned(),
            rules: BTreeMap::new(),
            errors: Vec::new(),
            changed,
            _watcher: watcher,
        };
        out.reload()?;
        Ok(out)
    }

    /// The rules loaded.
    pub fn rules(&self) -> Vec<Arc<Rule>> {
        self.rules.values().cloned().collect()
    }

    /// The files that could not be used at the last load.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// Reloads when a change was reported since the last load; returns whether it did.
    pub fn reload_if_changed(&mut self) -> Result<bool> {
        if !self.changed.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Reads the directory again. Rules of files that fail keep their previous version.
    pub fn reload(&mut self) -> Result<()> {
        let (rules, errors) = load_rules(&self.dir)?;
        let mut next: BTreeMap<String, Arc<Rule>> = BTreeMap::new();
        for r in rules {
            next.insert(r.name().to_owned(), r);
        }
        // A file that failed: keep what it defined before, unless its rule now comes
        // from another file.
        for e in &errors {
            let failed = match e {
                Error::Rule { origin, .. }
                | Error::Yaml { origin, .. }
                | Error::UnsupportedFilter { origin, .. }
                | Error::InvalidFilter { origin, .. }
                | Error::DuplicateRule { origin, .. } => origin.clone(),
                Error::Io { path, .. } => path.display().to_string(),
                _ => continue,
            };
            for (name, old) in &self.rules {
                if old.origin() == failed && !next.contains_key(name) {
                    next.insert(name.clone(), Arc::clone(old));
                }
            }
        }
        for e in &errors {
            tracing::error!(error = %e, "rule file not loaded");
        }
        self.rules = next;
        self.errors = errors;
        Ok(())
    }
}
