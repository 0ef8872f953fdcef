//! Counters of what the normalizer did, per field.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::normalize::{Action, Outcome};

/// Changes made to one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FieldStats {
    /// Values converted to the mapped type.
    pub coerced: u64,
    /// Values moved to a sibling field.
    pub renamed: u64,
    /// Values moved under the conflicts field.
    pub quarantined: u64,
    /// Values turned into strings.
    pub stringified: u64,
    /// Values removed (kept in the change record).
    pub dropped: u64,
}

impl FieldStats {
    fn add(&mut self, action: Action) {
        match action {
            Action::Coerce => self.coerced += 1,
            Action::Rename => self.renamed += 1,
            Action::Quarantine => self.quarantined += 1,
            Action::Stringify => self.stringified += 1,
            Action::Drop => self.dropped += 1,
        }
    }

    /// All changes counted here.
    pub fn total(&self) -> u64 {
        self.coerced + self.renamed + self.quarantined + self.stringified + self.dropped
    }
}

/// Counters over many documents. Memory is bounded: at most [`Stats::MAX_FIELDS`] fields
/// are counted by name; changes to further fields are counted in `untracked`.
///
/// The totals add up: `changes == totals.total() == sum of fields[*].total() + untracked`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Documents normalized.
    pub documents: u64,
    /// Documents with at least one change.
    pub documents_changed: u64,
    /// Documents left with a rejection the normalizer cannot resolve.
    pub documents_unresolved: u64,
    /// Documents whose changes could not be recorded in them.
    pub records_not_written: u64,
    /// All changes.
    pub changes: u64,
    /// All changes by action.
    pub totals: FieldStats,
    /// Changes by field (dotted path before the change).
    pub fields: BTreeMap<String, FieldStats>,
    /// Changes to fields beyond the first [`Stats::MAX_FIELDS`].
    pub untracked: u64,
}

impl Stats {
    /// How many distinct fields are counted by name.
    pub const MAX_FIELDS: usize = 10_000;

    /// Counts one document's outcome.
    pub fn record(&mut self, outcome: &Outcome) {
        self.documents += 1;
        if outcome.is_changed() {
            self.documents_changed += 1;
            if !outcome.recorded {
                self.records_not_written += 1;
            }
        }
        if outcome.unresolved.is_some() {
            self.documents_unresolved += 1;
        }
        for change in &outcome.changes {
            self.changes += 1;
            self.totals.add(change.action);
            if let Some(f) = self.fields.get_mut(&change.field) {
                f.add(change.action);
            } else if self.fields.len() < Self::MAX_FIELDS {
                self.fields
                    .entry(change.field.clone())
                    .or_default()
                    .add(change.action);
            } else {
                self.untracked += 1;
            }
        }
    }
}
