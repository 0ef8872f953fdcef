//! `flatline`: fewer than `threshold` events within `timeframe`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{fmt_time, span, Ctx, Keyed, Match, Nanos, Seen};
use crate::rule::RuleKind;

/// A `flatline` rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params {
    pub(super) threshold: usize,
    pub(super) timeframe: Duration,
    pub(super) forget_keys: bool,
}

impl Params {
    /// The parameters of a `flatline` rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Params> {
        match *kind {
            RuleKind::Flatline {
                threshold,
                timeframe,
                forget_keys,
            } => Some(Params {
                threshold,
                timeframe,
                forget_keys,
            }),
            _ => None,
        }
    }
}

/// A flatline key: the newest `threshold` event times, sorted, and since when it has
/// been watched.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FlatKey {
    recent: VecDeque<Nanos>,
    since: Nanos,
}

impl FlatKey {
    /// When the key falls below `threshold` if nothing more arrives: when its
    /// `threshold`-th newest event leaves the window `tf` (or, with fewer events, a
    /// timeframe after it started being watched).
    fn deadline(&self, threshold: usize, tf: Nanos) -> Nanos {
        if self.recent.len() >= threshold {
            self.recent
                .front()
                .copied()
                .unwrap_or(self.since)
                .saturating_add(tf)
        } else {
            self.since.saturating_add(tf)
        }
    }
}

/// A `flatline` rule: its keys, and when each falls below the threshold.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Flatline {
    keys: Keyed<FlatKey>,
    /// Each key's deadline, soonest first; entries a newer event superseded stay until
    /// they come up, and are then skipped.
    #[serde(skip)]
    deadlines: BinaryHeap<Reverse<(Nanos, String)>>,
}

impl Flatline {
    /// Adds the event's time to its key, which is watched from its first event (the
    /// rule without a query key from the start of the stream). Late events are left
    /// out.
    pub(super) fn on_event(&mut self, p: &Params, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        if seen.late() {
            return;
        }
        let t = seen.time;
        let tf = span(p.timeframe);
        let since = if cx.keyed {
            t
        } else {
            cx.observed_from.unwrap_or(t).min(t)
        };
        let k = seen.state_key();
        let (fk, evicted) = self.keys.entry(k, cx.config.max_query_keys, || FlatKey {
            recent: VecDeque::new(),
            since,
        });
        cx.stats.evicted_keys += evicted;
        let i = fk.recent.partition_point(|x| *x <= t);
        fk.recent.insert(i, t);
        while fk.recent.len() > p.threshold {
            fk.recent.pop_front();
        }
        self.deadlines
            .push(Reverse((fk.deadline(p.threshold, tf), k.to_owned())));
    }

    /// A match, at its deadline, for every key whose deadline the watermark `w` has
    /// reached; the key is then watched afresh from there, or forgotten with
    /// `forget_keys`.
    pub(super) fn advance(&mut self, p: &Params, w: Nanos, cx: &mut Ctx<'_>) {
        let tf = span(p.timeframe);
        let threshold = p.threshold;
        // The rule without a query key watches the whole stream from the start.
        if !cx.keyed && self.keys.get("").is_none() {
            if let Some(since) = cx.observed_from {
                let (fk, _) = self.keys.entry("", 1, || FlatKey {
                    recent: VecDeque::new(),
                    since,
                });
                self.deadlines
                    .push(Reverse((fk.deadline(threshold, tf), String::new())));
            }
        }
        let mut found = Vec::new();
        while let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            if *deadline > w {
                break;
            }
            let Some(Reverse((deadline, k))) = self.deadlines.pop() else {
                break;
            };
            let Some(fk) = self.keys.get_mut(&k) else {
                continue;
            };
            if fk.deadline(threshold, tf) != deadline {
                continue; // superseded by a newer event
            }
            let count = fk.recent.iter().filter(|x| **x > deadline - tf).count();
            found.push(Match {
                key: cx.keyed.then(|| k.clone()),
                time: deadline,
                description: format!(
                    "An abnormally low number of events occurred around {}: {count} in {} (threshold {threshold})",
                    fmt_time(deadline),
                    humantime::format_duration(p.timeframe)
                ),
                event: None,
            });
            if p.forget_keys && cx.keyed {
                self.keys.remove(&k);
            } else {
                fk.since = deadline;
                fk.recent.retain(|x| *x > deadline);
                self.deadlines
                    .push(Reverse((fk.deadline(threshold, tf), k)));
            }
        }
        found.sort_by_key(|m| m.time);
        cx.found.extend(found);
    }

    /// Rebuilds the deadlines, which the state file leaves out.
    pub(super) fn rebuild(&mut self, p: &Params) {
        let tf = span(p.timeframe);
        self.deadlines.clear();
        for (k, fk) in self.keys.iter() {
            self.deadlines
                .push(Reverse((fk.deadline(p.threshold, tf), k.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, key, secs, seen, Harness};

    const ONE_IN_30S: Params = Params {
        threshold: 1,
        timeframe: Duration::from_secs(30),
        forget_keys: false,
    };

    /// Feeds events (seconds, query key) with no watermark.
    fn feed(f: &mut Flatline, p: &Params, h: &mut Harness, events: &[(i64, &str)]) {
        for (s, k) in events {
            let e = event(*s, json!({}));
            let k = h.keyed.then_some(*k);
            let found = h.run(|cx| f.on_event(p, &seen(&e, k, None), cx));
            assert!(found.is_empty(), "events alone never match");
        }
    }

    fn advance(f: &mut Flatline, p: &Params, h: &mut Harness, w: i64) -> Vec<Match> {
        h.run(|cx| f.advance(p, secs(w), cx))
    }

    #[test]
    fn a_silent_key_matches_at_its_deadline_and_again_a_timeframe_later() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        feed(&mut f, &ONE_IN_30S, &mut h, &[(0, "a")]);
        assert!(advance(&mut f, &ONE_IN_30S, &mut h, 29).is_empty());
        let found = advance(&mut f, &ONE_IN_30S, &mut h, 30);
        assert_eq!(at(&found), [(30, key("a"))]);
        assert_eq!(
            found[0].description,
            "An abnormally low number of events occurred around 2026-01-01T00:00:30Z: 0 in 30s (threshold 1)"
        );
        assert!(found[0].event.is_none());
        assert!(advance(&mut f, &ONE_IN_30S, &mut h, 59).is_empty());
        assert_eq!(
            at(&advance(&mut f, &ONE_IN_30S, &mut h, 60)),
            [(60, key("a"))]
        );
    }

    #[test]
    fn a_newer_event_moves_the_deadline() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        feed(&mut f, &ONE_IN_30S, &mut h, &[(0, "a"), (20, "a")]);
        assert!(advance(&mut f, &ONE_IN_30S, &mut h, 49).is_empty());
        assert_eq!(
            at(&advance(&mut f, &ONE_IN_30S, &mut h, 50)),
            [(50, key("a"))]
        );
    }

    #[test]
    fn keys_fall_silent_apart_in_time_order() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        feed(&mut f, &ONE_IN_30S, &mut h, &[(10, "a"), (0, "b")]);
        let found = advance(&mut f, &ONE_IN_30S, &mut h, 45);
        assert_eq!(at(&found), [(30, key("b")), (40, key("a"))]);
    }

    #[test]
    fn the_threshold_counts_the_newest_events() {
        let p = Params {
            threshold: 2,
            ..ONE_IN_30S
        };
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        // 0 and 10 keep it up until 0 leaves the window; 25 keeps it up until 10 does.
        feed(&mut f, &p, &mut h, &[(0, "a"), (10, "a"), (25, "a")]);
        assert!(advance(&mut f, &p, &mut h, 39).is_empty());
        let found = advance(&mut f, &p, &mut h, 40);
        assert_eq!(at(&found), [(40, key("a"))]);
        assert!(found[0].description.contains(": 1 in 30s (threshold 2)"));
    }

    #[test]
    fn forget_keys_matches_a_key_once() {
        let p = Params {
            forget_keys: true,
            ..ONE_IN_30S
        };
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        feed(&mut f, &p, &mut h, &[(0, "a")]);
        assert_eq!(at(&advance(&mut f, &p, &mut h, 30)), [(30, key("a"))]);
        assert!(advance(&mut f, &p, &mut h, 1000).is_empty());
    }

    #[test]
    fn without_a_query_key_the_stream_is_watched_from_the_start() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(false));
        h.observed_from = Some(secs(5));
        assert!(advance(&mut f, &ONE_IN_30S, &mut h, 34).is_empty());
        assert_eq!(at(&advance(&mut f, &ONE_IN_30S, &mut h, 35)), [(35, None)]);

        // A first event after the start does not delay the first deadline.
        let p = Params {
            threshold: 2,
            ..ONE_IN_30S
        };
        let (mut f, mut h) = (Flatline::default(), Harness::new(false));
        feed(&mut f, &p, &mut h, &[(20, "")]);
        assert!(advance(&mut f, &p, &mut h, 29).is_empty());
        let found = advance(&mut f, &p, &mut h, 30);
        assert_eq!(at(&found), [(30, None)]);
        assert!(found[0].description.contains(": 1 in 30s (threshold 2)"));
    }

    #[test]
    fn late_events_are_left_out() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        let e = event(0, json!({}));
        let found = h.run(|cx| f.on_event(&ONE_IN_30S, &seen(&e, Some("a"), Some(10)), cx));
        assert!(found.is_empty());
        assert!(advance(&mut f, &ONE_IN_30S, &mut h, 1000).is_empty());
    }

    #[test]
    fn deadlines_are_rebuilt_after_a_restore() {
        let (mut f, mut h) = (Flatline::default(), Harness::new(true));
        feed(&mut f, &ONE_IN_30S, &mut h, &[(0, "a")]);
        let saved = serde_json::to_string(&f).unwrap();
        let mut restored: Flatline = serde_json::from_str(&saved).unwrap();
        assert!(advance(&mut restored, &ONE_IN_30S, &mut h, 30).is_empty());
        restored.rebuild(&ONE_IN_30S);
        assert_eq!(
            at(&advance(&mut restored, &ONE_IN_30S, &mut h, 30)),
            [(30, key("a"))]
        );
    }
}
