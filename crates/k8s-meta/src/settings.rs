//! The validated options the cache and enrichment run with, built from
//! [`K8sMetaConfig`](crate::K8sMetaConfig).

use std::path::PathBuf;
use std::time::Duration;

use crate::LogPathLayout;

/// A key pattern: exact, or with `*` matching any run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern(String);

impl Pattern {
    pub(crate) fn new(s: &str) -> Pattern {
        Pattern(s.to_owned())
    }

    pub(crate) fn matches(&self, key: &str) -> bool {
        glob(self.0.as_bytes(), key.as_bytes())
    }

    pub(crate) fn any_matches(patterns: &[Pattern], key: &str) -> bool {
        patterns.iter().any(|p| p.matches(key))
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // The classic two-pointer match with one backtrack point: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Which log paths are looked up, and as what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Matcher {
    /// The path must start with this.
    pub(crate) prefix: String,
    /// `pod`: the pod only, no container fields.
    pub(crate) pod_only: bool,
}

/// Which keys a path may be looked up by (Filebeat's indexers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lookups {
    pub(crate) container_id: bool,
    pub(crate) pod_uid: bool,
    pub(crate) pod_name: bool,
}

/// How to reach the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClusterSource {
    /// Kubeconfig (`KUBECONFIG`, `~/.kube/config`), then the in-cluster service account.
    Infer,
    /// The in-cluster service account only.
    InCluster,
    /// The default kubeconfig only.
    DefaultKubeconfig,
    /// This kubeconfig file.
    Kubeconfig(PathBuf),
}

/// The runtime options. See [`K8sMetaConfig`](crate::K8sMetaConfig) for each.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) source: ClusterSource,
    /// `spec.nodeName` to watch pods of; `None` watches all pods (`scope: cluster`).
    pub(crate) node: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) labels_dedot: bool,
    pub(crate) annotations_dedot: bool,
    pub(crate) include_labels: Vec<Pattern>,
    pub(crate) exclude_labels: Vec<Pattern>,
    pub(crate) include_annotations: Vec<Pattern>,
    pub(crate) namespace_meta: bool,
    pub(crate) namespace_include_labels: Vec<Pattern>,
    pub(crate) namespace_exclude_labels: Vec<Pattern>,
    pub(crate) namespace_annotations: Vec<Pattern>,
    pub(crate) resolve_deployment: bool,
    pub(crate) resolve_cronjob: bool,
    /// Configured `logs_path` matchers, tried first.
    pub(crate) matchers: Vec<Matcher>,
    /// Every path [`match_log_path`](crate::match_log_path) recognises matches too.
    pub(crate) default_matcher: bool,
    pub(crate) lookups: Lookups,
    pub(crate) wait_for_metadata: Duration,
    pub(crate) cleanup_timeout: Duration,
    pub(crate) max_deleted_age: Duration,
    pub(crate) max_deleted_pods: usize,
    pub(crate) connect_timeout: Duration,
}

impl Settings {
    /// Whether a pod label is kept (`include_labels`, then `exclude_labels`).
    pub(crate) fn keeps_label(&self, key: &str) -> bool {
        (self.include_labels.is_empty() || Pattern::any_matches(&self.include_labels, key))
            && !Pattern::any_matches(&self.exclude_labels, key)
    }

    /// Whether a namespace label is kept.
    pub(crate) fn keeps_namespace_label(&self, key: &str) -> bool {
        self.namespace_meta
            && (self.namespace_include_labels.is_empty()
                || Pattern::any_matches(&self.namespace_include_labels, key))
            && !Pattern::any_matches(&self.namespace_exclude_labels, key)
    }

    /// The matcher a path falls under: `Some(pod_only)`, or `None` when no matcher takes
    /// it.
    pub(crate) fn matcher_for(&self, path: &str, layout: LogPathLayout) -> Option<bool> {
        let volume = layout == LogPathLayout::PodVolume;
        match self.matchers.iter().find(|m| path.starts_with(&m.prefix)) {
            Some(m) => Some(m.pod_only || volume),
            None => self.default_matcher.then_some(volume),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        let cases = [
            ("a", "a", true),
            ("a", "ab", false),
            ("*", "", true),
            ("*", "anything", true),
            ("prometheus.io/*", "prometheus.io/scrape", true),
            ("prometheus.io/*", "prometheus.iox", false),
            ("*/name", "app.kubernetes.io/name", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a**", "a", true),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(text),
                want,
                "{pattern} ~ {text}"
            );
        }
    }
}
