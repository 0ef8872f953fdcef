//! Saving and restoring the engine's state across restarts.
//!
//! The state file is JSON with a `version` (1): the event-time clock, and per rule (by
//! name) the fingerprint of its state-shaping keys, its windows, terms, waiting events,
//! realert silences, pending aggregations and counters. A rule restored under a changed
//! fingerprint starts afresh, keeping only its silences. Files are written to a temporary
//! name and renamed, so a crash leaves the previous state.

use std::collections::BTreeMap;
use std::path::Path;

use logtide_event::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::{nanos, Aggregate, Clock, Engine, Keyed, KindState, Nanos, RuleStats};
use crate::{Error, Result};

/// The state file format version this crate writes.
pub const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    clock: Clock,
    watermark: Option<Nanos>,
    rules: BTreeMap<String, SavedRule>,
}

#[derive(Serialize, Deserialize)]
struct SavedRule {
    fingerprint: u64,
    observed_from: Option<Nanos>,
    state: KindState,
    silenced: Keyed<Nanos>,
    aggregates: BTreeMap<String, Aggregate>,
    stats: RuleStats,
}

/// The part of the state file that says its version.
#[derive(Deserialize)]
struct Version {
    version: u32,
}

impl Engine {
    /// The engine's state as JSON (see the module documentation of the format).
    pub fn state_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct SavedRef<'a> {
            version: u32,
            clock: Clock,
            watermark: Option<Nanos>,
            rules: BTreeMap<&'a str, SavedRuleRef<'a>>,
        }
        #[derive(Serialize)]
        struct SavedRuleRef<'a> {
            fingerprint: u64,
            observed_from: Option<Nanos>,
            state: &'a KindState,
            silenced: &'a Keyed<Nanos>,
            aggregates: &'a BTreeMap<String, Aggregate>,
            stats: &'a RuleStats,
        }
        let saved = SavedRef {
            version: STATE_VERSION,
            clock: self.clock,
            watermark: self.watermark,
            rules: self
                .slots
                .iter()
                .map(|s| {
                    (
                        &*s.rule.name,
                        SavedRuleRef {
                            fingerprint: s.rule.fingerprint,
                            observed_from: s.observed_from,
                            state: &s.state,
                            silenced: &s.silenced,
                            aggregates: &s.aggregates,
                            stats: &s.stats,
                        },
                    )
                })
                .collect(),
        };
        serde_json::to_vec(&saved).unwrap_or_default()
    }

    /// Writes the state to `path` (through a temporary file and a rename).
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.state_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Restores the state saved in `path`, if the file exists; `now` is the wall clock.
    /// Returns whether a state was restored. Rules are matched by name; see the module
    /// documentation for what a changed rule keeps.
    ///
    /// Idle time is counted from `now`, not from when the state was saved: the relay
    /// reads again what arrived while it was down, so those events are not late, and a
    /// flatline is still found (once the stream has been silent for its timeframe).
    pub fn restore_state(&mut self, path: &Path, now: Timestamp) -> Result<bool> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        self.restore_json(&bytes, now)
            .map_err(|message| Error::State {
                path: path.to_owned(),
                message,
            })?;
        Ok(true)
    }

    /// [`Engine::restore_state`] from the JSON bytes themselves.
    pub fn restore_json(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> std::result::Result<(), String> {
        let v: Version =
            serde_json::from_slice(bytes).map_err(|e| format!("not a state file: {e}"))?;
        if v.version != STATE_VERSION {
            return Err(format!(
                "version {} is not one this build reads ({STATE_VERSION})",
                v.version
            ));
        }
        let mut saved: Saved =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid state: {e}"))?;
        self.clock = saved.clock;
        self.clock.moved_at = nanos(now);
        self.watermark = saved.watermark;
        for slot in &mut self.slots {
            let Some(mut r) = saved.rules.remove(&*slot.rule.name) else {
                continue;
            };
            slot.silenced = r.silenced;
            if r.fingerprint == slot.rule.fingerprint && r.state.matches_kind(&slot.rule.kind) {
                r.state.rebuild(&slot.rule.kind);
                slot.state = r.state;
                slot.aggregates = r.aggregates;
                slot.stats = r.stats;
                slot.observed_from = r.observed_from;
            } else {
                slot.observed_from = saved.clock.max_event;
            }
        }
        Ok(())
    }
}
