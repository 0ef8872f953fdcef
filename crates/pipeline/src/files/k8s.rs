//! `add_kubernetes_metadata` in a processor list: the Kubernetes enricher of
//! `logtide-k8s-meta`, run by the processor chain at its place in the list, with the
//! input holding back lines whose pod the cache does not know yet and telling the
//! enricher which log files it reads (so a deleted pod's metadata lives as long as its
//! files are being read).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use logtide_event::Event;
use logtide_json::{Extension, Extensions};
use logtide_k8s_meta::{EnrichStats, Enricher, K8sMetaConfig};
use logtide_tail::FileChange;
use serde_json::Value;

use super::hold::Gate;
use super::run::FileObserver;

/// The processor name Filebeat uses.
pub(crate) const ADD_KUBERNETES_METADATA: &str = "add_kubernetes_metadata";

/// The processor's options, checked; errors name the key.
fn options(options: &Value, path: &str) -> logtide_json::Result<K8sMetaConfig> {
    K8sMetaConfig::from_value(options, path).map_err(|e| config_error(e, path))
}

fn config_error(e: logtide_k8s_meta::Error, path: &str) -> logtide_json::Error {
    match e {
        logtide_k8s_meta::Error::Config { path, message } => logtide_json::Error::InvalidConfig {
            path,
            reason: message,
        },
        other => logtide_json::Error::InvalidConfig {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Checks `add_kubernetes_metadata` options without connecting to anything (for
/// `logtide-files test config`).
pub(crate) struct CheckOnly;

/// What [`CheckOnly`] builds: options that were checked, never run.
#[derive(Debug)]
struct Checked;

impl Extension for Checked {
    fn run(&self, _: &mut Event) -> Result<(), String> {
        Err("add_kubernetes_metadata was only checked, not started".to_owned())
    }
}

impl Extensions for CheckOnly {
    fn names(&self) -> &[&'static str] {
        &[ADD_KUBERNETES_METADATA]
    }

    fn build(
        &self,
        _: &'static str,
        options: &Value,
        path: &str,
    ) -> logtide_json::Result<Arc<dyn Extension>> {
        self::options(options, path)?;
        Ok(Arc::new(Checked))
    }
}

/// Starts an enricher (its watch thread) for each `add_kubernetes_metadata` in the lists
/// it builds, and keeps them for the gate and the file observer.
#[derive(Default)]
pub(crate) struct Started {
    enrichers: Mutex<Vec<Arc<Enricher>>>,
}

/// The processor: enriches an event that the gate has let through.
#[derive(Debug)]
struct AddKubernetesMetadata(Arc<Enricher>);

impl Extension for AddKubernetesMetadata {
    fn run(&self, event: &mut Event) -> Result<(), String> {
        // Misses are counted by reason in the enricher's stats, not reported per event.
        self.0.enrich_event(event);
        Ok(())
    }
}

impl Extensions for Started {
    fn names(&self) -> &[&'static str] {
        &[ADD_KUBERNETES_METADATA]
    }

    fn build(
        &self,
        _: &'static str,
        options: &Value,
        path: &str,
    ) -> logtide_json::Result<Arc<dyn Extension>> {
        let config = self::options(options, path)?;
        let enricher = Arc::new(config.build().map_err(|e| config_error(e, path))?);
        tracing::info!(at = path, cluster = ?enricher.cluster(), "add_kubernetes_metadata started");
        self.enrichers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(enricher.clone());
        Ok(Arc::new(AddKubernetesMetadata(enricher)))
    }
}

impl Started {
    /// The enrichers started so far; empty when no list had `add_kubernetes_metadata`.
    pub(crate) fn enrichers(&self) -> Vec<Arc<Enricher>> {
        self.enrichers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The enrichers of a run, as the inputs' gate and file observer.
pub(crate) struct Kubernetes {
    pub(crate) enrichers: Vec<Arc<Enricher>>,
}

impl Kubernetes {
    /// The counters of every enricher, for logging.
    pub(crate) fn stats(&self) -> Vec<EnrichStats> {
        self.enrichers.iter().map(|e| e.stats()).collect()
    }
}

impl Gate for Kubernetes {
    fn ready(&self, event: &Event) -> bool {
        self.enrichers.iter().all(|e| e.ready(event))
    }
}

impl FileObserver for Kubernetes {
    fn file_changed(&self, change: &FileChange) {
        for e in &self.enrichers {
            match change {
                FileChange::Started(path) => e.file_opened(Path::new(&**path)),
                FileChange::Finished(path) => e.file_closed(Path::new(&**path)),
            }
        }
    }
}
