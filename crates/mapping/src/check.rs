//! `mapping check`: for each document, would Elasticsearch accept it as it is, and what
//! would the normalizer change.

use serde::Serialize;
use serde_json::Value;

use crate::normalize::{Change, Normalizer};
use crate::IndexMapping;

/// The report for one document.
///
/// Serialized as one JSON object per document:
/// `{"doc": 1, "accepted": false, "field": "id", "reason": "…", "error_type": "…",
/// "status": 400, "changes": [{"field": "id", "action": "coerce", …}],
/// "normalized_accepted": true}`. `field`, `reason`, `error_type` and `status` are `null`
/// for an accepted document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The document's number, counting from 1 (its line in NDJSON input).
    pub doc: usize,
    /// Whether Elasticsearch with dynamic mapping would index it as it is.
    pub accepted: bool,
    /// The field it would be rejected for.
    pub field: Option<String>,
    /// Elasticsearch's reason, as the model predicts it.
    pub reason: Option<String>,
    /// Elasticsearch's error type.
    pub error_type: Option<&'static str>,
    /// The HTTP status of the bulk item.
    pub status: Option<u16>,
    /// What the normalizer changes (on the stream of normalized documents).
    pub changes: Vec<Change>,
    /// Whether the normalized document is accepted (false only for rejections no change
    /// can resolve, such as a document that is not an object).
    pub normalized_accepted: bool,
}

/// Checks a stream of documents against two copies of an index mapping: one that sees the
/// documents as they are (and learns only from those Elasticsearch would accept), and one
/// that sees them normalized (and learns from every normalized document), as the sink
/// would index them.
#[derive(Clone, Debug)]
pub struct Checker {
    normalizer: Normalizer,
    as_is: IndexMapping,
    normalized: IndexMapping,
    count: usize,
}

impl Checker {
    /// A checker starting from `mapping` (use [`IndexMapping::default`] for a new index,
    /// or the mapping of the index template).
    pub fn new(normalizer: Normalizer, mapping: IndexMapping) -> Checker {
        Checker {
            normalizer,
            normalized: mapping.clone(),
            as_is: mapping,
            count: 0,
        }
    }

    /// Checks the next document.
    pub fn check(&mut self, doc: &Value) -> CheckReport {
        self.count += 1;
        let verdict = self.as_is.check(doc);
        let rejection = verdict.rejection();
        let mut copy = doc.clone();
        let outcome = self
            .normalizer
            .normalize_value(&mut self.normalized, &mut copy);
        CheckReport {
            doc: self.count,
            accepted: rejection.is_none(),
            field: rejection.map(|r| r.field.clone()),
            reason: rejection.map(|r| r.reason.clone()),
            error_type: rejection.map(|r| r.error_type),
            status: rejection.map(|r| r.status()),
            normalized_accepted: outcome.unresolved.is_none(),
            changes: outcome.changes,
        }
    }

    /// The mapping as Elasticsearch would have it after the documents as they are.
    pub fn as_is_mapping(&self) -> &IndexMapping {
        &self.as_is
    }

    /// The mapping after the normalized documents.
    pub fn normalized_mapping(&self) -> &IndexMapping {
        &self.normalized
    }
}
