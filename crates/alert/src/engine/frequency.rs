//! `frequency`: at least `num_events` events less than `timeframe` apart.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{fmt_time, span, Ctx, Keyed, Match, Nanos, Seen};
use crate::rule::RuleKind;

/// A `frequency` rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params {
    pub(super) num_events: usize,
    pub(super) timeframe: Duration,
}

impl Params {
    /// The parameters of a `frequency` rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Params> {
        match *kind {
            RuleKind::Frequency {
                num_events,
                timeframe,
            } => Some(Params {
                num_events,
                timeframe,
            }),
            _ => None,
        }
    }
}

/// A `frequency` rule: per query key, the times of its recent events, sorted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Frequency {
    keys: Keyed<VecDeque<Nanos>>,
}

impl Frequency {
    /// Adds the event's time to its key's; a match, at the newest of them, when
    /// `num_events` of them fit in a window, after which they start again. Late events
    /// are left out.
    pub(super) fn on_event(&mut self, p: &Params, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        if seen.late() {
            return;
        }
        let t = seen.time;
        let tf = span(p.timeframe);
        let (times, evicted) =
            self.keys
                .entry(seen.state_key(), cx.config.max_query_keys, VecDeque::new);
        cx.stats.evicted_keys += evicted;
        let i = times.partition_point(|x| *x <= t);
        times.insert(i, t);
        // Times that can no longer share a window with a non-late event.
        if let Some(w) = seen.watermark {
            while times.front().is_some_and(|x| *x < w.saturating_sub(tf)) {
                times.pop_front();
            }
        }
        let n = p.num_events;
        let lo = i.saturating_sub(n - 1);
        let mut fired = None;
        for j in lo..=i {
            // As elastalert's EventWindow: an event exactly `timeframe` older than the
            // newest has left the window.
            if j + n - 1 < times.len() && times[j + n - 1] - times[j] < tf {
                fired = Some((times[j], times[j + n - 1]));
                break;
            }
        }
        if let Some((first, last)) = fired {
            times.retain(|x| *x > last);
            cx.found.push(Match {
                key: seen.key.clone(),
                time: last,
                description: format!(
                    "At least {n} events occurred between {} and {}",
                    fmt_time(first),
                    fmt_time(last)
                ),
                event: Some(seen.event.clone_unacked()),
            });
        }
        // A bound whatever the input: at most twice the window's worth per key.
        let cap = (2 * n).max(64);
        while times.len() > cap {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, key, seen, Harness};

    const THREE_IN_A_MINUTE: Params = Params {
        num_events: 3,
        timeframe: Duration::from_secs(60),
    };

    /// Feeds events (seconds, query key) with no watermark; returns the matches.
    fn feed(f: &mut Frequency, p: &Params, h: &mut Harness, events: &[(i64, &str)]) -> Vec<Match> {
        let mut found = Vec::new();
        for (s, k) in events {
            let e = event(*s, json!({"pod": k}));
            found.extend(h.run(|cx| f.on_event(p, &seen(&e, Some(k), None), cx)));
        }
        found
    }

    #[test]
    fn fires_on_the_nth_event_within_the_timeframe_then_starts_again() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(true));
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(0, "a"), (10, "a")]);
        assert!(found.is_empty());
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(20, "a")]);
        assert_eq!(at(&found), [(20, key("a"))]);
        assert_eq!(
            found[0].description,
            "At least 3 events occurred between 2026-01-01T00:00:00Z and 2026-01-01T00:00:20Z"
        );
        // The events that fired are forgotten: two more are not enough.
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(21, "a"), (22, "a")]);
        assert!(found.is_empty());
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(23, "a")]);
        assert_eq!(at(&found), [(23, key("a"))]);
    }

    #[test]
    fn an_event_exactly_a_timeframe_old_has_left_the_window() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(false));
        let found = feed(
            &mut f,
            &THREE_IN_A_MINUTE,
            &mut h,
            &[(0, ""), (30, ""), (60, "")],
        );
        assert!(found.is_empty());
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(61, "")]);
        assert_eq!(found.len(), 1);
        assert!(found[0]
            .description
            .contains("between 2026-01-01T00:00:30Z and 2026-01-01T00:01:01Z"));
    }

    #[test]
    fn out_of_order_events_count_by_event_time() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(true));
        let found = feed(
            &mut f,
            &THREE_IN_A_MINUTE,
            &mut h,
            &[(40, "a"), (100, "a"), (70, "a")],
        );
        assert!(found.is_empty(), "40 and 100 are a timeframe apart");
        let found = feed(&mut f, &THREE_IN_A_MINUTE, &mut h, &[(60, "a")]);
        // 40, 60, 70: the match is at the newest of them, not at the last to arrive.
        assert_eq!(at(&found), [(70, key("a"))]);
        assert!(found[0]
            .description
            .ends_with("between 2026-01-01T00:00:40Z and 2026-01-01T00:01:10Z"));
    }

    #[test]
    fn query_keys_count_apart() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(true));
        let found = feed(
            &mut f,
            &THREE_IN_A_MINUTE,
            &mut h,
            &[(0, "a"), (1, "b"), (2, "a"), (3, "b"), (4, "a")],
        );
        assert_eq!(at(&found), [(4, key("a"))]);
    }

    #[test]
    fn late_events_are_left_out() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(true));
        let mut found = Vec::new();
        // With the watermark at 90 s, 85 and 86 are late (though within a timeframe).
        for s in [85, 86, 100, 101] {
            let e = event(s, json!({}));
            found.extend(
                h.run(|cx| f.on_event(&THREE_IN_A_MINUTE, &seen(&e, Some("a"), Some(90)), cx)),
            );
        }
        assert!(found.is_empty());
        let e = event(102, json!({}));
        let found = h.run(|cx| f.on_event(&THREE_IN_A_MINUTE, &seen(&e, Some("a"), Some(90)), cx));
        assert_eq!(at(&found), [(102, key("a"))]);
    }

    #[test]
    fn keys_beyond_the_limit_are_evicted_and_counted() {
        let (mut f, mut h) = (Frequency::default(), Harness::new(true));
        h.config.max_query_keys = 1;
        let found = feed(
            &mut f,
            &THREE_IN_A_MINUTE,
            &mut h,
            &[(0, "a"), (1, "a"), (2, "b"), (3, "a")],
        );
        // "b" pushed "a" out, so "a" has one event, not three.
        assert!(found.is_empty());
        assert_eq!(h.stats.evicted_keys, 2);
    }
}
