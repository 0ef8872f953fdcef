//! `spike`: elastalert's sliding windows, re-evaluated at every event: the events of
//! the last `timeframe` (current) against those of the `timeframe` before (reference).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{fmt_time, span, Ctx, Keyed, Match, Nanos, Seen};
use crate::rule::{RuleKind, SpikeType};

/// A `spike` rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params {
    pub(super) spike_height: f64,
    pub(super) spike_type: SpikeType,
    pub(super) timeframe: Duration,
    pub(super) threshold_ref: u64,
    pub(super) threshold_cur: u64,
    pub(super) alert_on_new_data: bool,
}

impl Params {
    /// The parameters of a `spike` rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Params> {
        match *kind {
            RuleKind::Spike {
                spike_height,
                spike_type,
                timeframe,
                threshold_ref,
                threshold_cur,
                alert_on_new_data,
            } => Some(Params {
                spike_height,
                spike_type,
                timeframe,
                threshold_ref,
                threshold_cur,
                alert_on_new_data,
            }),
            _ => None,
        }
    }
}

/// Event counts by time, oldest first, spanning less than a timeframe: elastalert's
/// `EventWindow` with the events of one instant counted together.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CountWindow {
    counts: VecDeque<(Nanos, u64)>,
    total: u64,
}

impl CountWindow {
    /// Adds `count` at `t` and hands every entry that leaves the window (the newest
    /// entry's time minus the oldest's reaches `tf`) to `removed`, oldest first. Keeps at
    /// most `cap` entries by counting the two oldest together; returns how many merged.
    fn append(
        &mut self,
        t: Nanos,
        count: u64,
        tf: Nanos,
        cap: usize,
        mut removed: impl FnMut(Nanos, u64),
    ) -> u64 {
        let i = self.counts.partition_point(|(x, _)| *x <= t);
        match i.checked_sub(1).and_then(|j| self.counts.get_mut(j)) {
            Some((x, n)) if *x == t => *n += count,
            _ => self.counts.insert(i, (t, count)),
        }
        self.total += count;
        let mut merged = 0;
        while self.counts.len() > cap.max(2) {
            let Some((t0, n0)) = self.counts.pop_front() else {
                break;
            };
            if let Some(next) = self.counts.front_mut() {
                *next = (t0, next.1 + n0);
            }
            merged += 1;
        }
        while let (Some((oldest, _)), Some((newest, _))) = (self.counts.front(), self.counts.back())
        {
            if newest - oldest < tf {
                break;
            }
            let Some((x, n)) = self.counts.pop_front() else {
                break;
            };
            self.total -= n;
            removed(x, n);
        }
        merged
    }

    fn clear(&mut self) {
        self.counts.clear();
        self.total = 0;
    }

    /// The time of the oldest entry with events (elastalert's match event: the first
    /// non-placeholder of the current window), else of the newest entry.
    fn first_counted(&self) -> Option<Nanos> {
        self.counts
            .iter()
            .find(|(_, n)| *n > 0)
            .or(self.counts.back())
            .map(|(t, _)| *t)
    }
}

/// One query key of a spike rule: elastalert's reference and current windows, where an
/// entry that leaves the current window enters the reference window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SpikeKey {
    reference: CountWindow,
    current: CountWindow,
    /// The key's first event since it was created or last matched.
    first: Option<Nanos>,
    /// After a match, checks with `alert_on_new_data` wait until this time.
    skip_until: Option<Nanos>,
}

/// A `spike` rule: the windows of each query key, and how far they have moved on.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Spike {
    #[serde(default)]
    windows: Keyed<SpikeKey>,
    /// Whether some key's reference window has been filled once (elastalert's
    /// `ref_window_filled_once`, for the whole rule).
    #[serde(default)]
    filled_once: bool,
    /// The time the windows were last moved on to.
    #[serde(default)]
    moved_to: Option<Nanos>,
    /// The time every key's windows were last moved on to.
    #[serde(default)]
    all_moved_to: Option<Nanos>,
}

impl Spike {
    /// Counts the event in its key's current window and compares the windows. Late
    /// events are left out.
    pub(super) fn on_event(&mut self, p: &Params, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        if seen.late() {
            return;
        }
        self.handle(p, seen.state_key(), seen.time, 1, cx);
    }

    /// elastalert's `SpikeRule.garbage_collect` at time `t`: a placeholder (no events)
    /// moves the windows on, which may show a drop; keys with no events left in either
    /// window are forgotten. Key `own` (the event's, if the rule took it) always moves;
    /// every key moves when time has gone on by a tenth of the timeframe (at most a
    /// second) since they last did, so the cost per event does not grow with the keys.
    pub(super) fn slide(&mut self, p: &Params, t: Nanos, own: Option<&str>, cx: &mut Ctx<'_>) {
        self.moved_to = Some(self.moved_to.map_or(t, |m| m.max(t)));
        let step = (span(p.timeframe) / 10).clamp(1, 1_000_000_000);
        let keys: Vec<String> = if self.all_moved_to.is_none_or(|m| t - m >= step) {
            self.all_moved_to = Some(t);
            let keyed = cx.keyed;
            self.windows
                .retain(|_, w| !keyed || w.reference.total > 0 || w.current.total > 0);
            self.windows.iter().map(|(k, _)| k.clone()).collect()
        } else {
            own.map(str::to_owned).into_iter().collect()
        };
        for k in keys {
            self.handle(p, &k, t, 0, cx);
        }
    }

    /// On a silent stream the watermark `w` moves on with the wall clock past the newest
    /// event, and the windows move with it.
    pub(super) fn advance(&mut self, p: &Params, w: Nanos, cx: &mut Ctx<'_>) {
        if self.moved_to.is_some_and(|m| w > m) {
            self.slide(p, w, None, cx);
        }
    }

    /// elastalert's `SpikeRule.handle_event`: adds `count` events (0 for the placeholder
    /// that moves time on) at `t` to key `k`'s current window and compares the windows.
    fn handle(&mut self, p: &Params, k: &str, t: Nanos, count: u64, cx: &mut Ctx<'_>) {
        let tf = span(p.timeframe);
        let (w, evicted) = self
            .windows
            .entry(k, cx.config.max_query_keys, SpikeKey::default);
        cx.stats.evicted_keys += evicted;
        let first = *w.first.get_or_insert(t);
        let reference = &mut w.reference;
        let cap = cx.config.max_window_entries;
        let mut merged_ref = 0;
        let merged_cur = w.current.append(t, count, tf, cap, |x, n| {
            merged_ref += reference.append(x, n, tf, cap, |_, _| {});
        });
        cx.stats.merged_window_entries += merged_cur + merged_ref;
        // The reference window is not full until two timeframes after the first event.
        if t - first < tf.saturating_mul(2) {
            if !self.filled_once
                || !p.alert_on_new_data
                || !cx.keyed
                || w.skip_until.is_some_and(|s| t < s)
            {
                return;
            }
        } else {
            self.filled_once = true;
        }
        let (cur, refc) = (w.current.total, w.reference.total);
        if cur < p.threshold_cur || refc < p.threshold_ref {
            return;
        }
        let down = cur as f64 <= refc as f64 / p.spike_height;
        let up = cur as f64 >= refc as f64 * p.spike_height;
        let fire = match p.spike_type {
            SpikeType::Up => up,
            SpikeType::Down => down,
            SpikeType::Both => up || down,
        };
        if !fire {
            return;
        }
        let at = w.current.first_counted().unwrap_or(t);
        // As elastalert's `clear_windows`: the reference starts again, and so does the
        // wait for two timeframes.
        w.reference.clear();
        w.first = None;
        w.skip_until = Some(at.saturating_add(tf.saturating_mul(2)));
        cx.found.push(Match {
            key: cx.keyed.then(|| k.to_owned()),
            time: t,
            description: format!(
                "An abnormal number ({cur}) of events occurred around {}: {refc} in the previous {}",
                fmt_time(at),
                humantime::format_duration(p.timeframe)
            ),
            event: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, key, secs, seen, Harness};

    /// Twice as many or half as many events as in the previous 10 s.
    fn params(spike_type: SpikeType) -> Params {
        Params {
            spike_height: 2.0,
            spike_type,
            timeframe: Duration::from_secs(10),
            threshold_ref: 0,
            threshold_cur: 0,
            alert_on_new_data: false,
        }
    }

    /// Takes an event at `t` seconds under query key `k`, then slides the windows to it,
    /// as the engine does; returns the matches.
    fn take(s: &mut Spike, p: &Params, h: &mut Harness, t: i64, k: Option<&str>) -> Vec<Match> {
        let e = event(t, json!({}));
        let mut found = h.run(|cx| s.on_event(p, &seen(&e, k, None), cx));
        found.extend(h.run(|cx| s.slide(p, secs(t), Some(k.unwrap_or_default()), cx)));
        found
    }

    /// One event a second from `from` to `to` seconds (inclusive) under `k`.
    fn steady(
        s: &mut Spike,
        p: &Params,
        h: &mut Harness,
        from: i64,
        to: i64,
        k: Option<&str>,
    ) -> Vec<Match> {
        (from..=to).flat_map(|t| take(s, p, h, t, k)).collect()
    }

    #[test]
    fn a_rise_to_twice_the_reference_is_no_drop() {
        let p = params(SpikeType::Down);
        let (mut s, mut h) = (Spike::default(), Harness::new(false));
        let mut found = steady(&mut s, &p, &mut h, 0, 20, None);
        for _ in 0..20 {
            found.extend(take(&mut s, &p, &mut h, 21, None));
        }
        assert!(found.is_empty());
    }

    #[test]
    fn a_rise_to_twice_the_reference_matches_once() {
        for spike_type in [SpikeType::Up, SpikeType::Both] {
            rise(spike_type);
        }
    }

    fn rise(spike_type: SpikeType) {
        let p = params(spike_type);
        let (mut s, mut h) = (Spike::default(), Harness::new(false));
        assert!(steady(&mut s, &p, &mut h, 0, 20, None).is_empty());
        // At 21 s the current window holds 12..=20 s and the reference 2..=11 s (10 events):
        // the 11th event at 21 s makes 20.
        for _ in 0..10 {
            assert!(take(&mut s, &p, &mut h, 21, None).is_empty());
        }
        let found = take(&mut s, &p, &mut h, 21, None);
        assert_eq!(at(&found), [(21, None)]);
        assert_eq!(
            found[0].description,
            "An abnormal number (20) of events occurred around 2026-01-01T00:00:12Z: 10 in the previous 10s"
        );
        // The reference starts again, and so does the wait for two timeframes: no second
        // match on the same burst.
        let w = s.windows.get("").expect("the stream's windows");
        assert_eq!((w.reference.total, w.current.total), (0, 20));
        assert!(take(&mut s, &p, &mut h, 21, None).is_empty());
    }

    #[test]
    fn a_drop_on_a_silent_stream_matches_as_the_watermark_moves() {
        for (spike_type, fires) in [
            (SpikeType::Down, true),
            (SpikeType::Both, true),
            (SpikeType::Up, false),
        ] {
            let p = params(spike_type);
            let (mut s, mut h) = (Spike::default(), Harness::new(false));
            assert!(steady(&mut s, &p, &mut h, 0, 29, None).is_empty());
            // At 33 s, 24..=29 s (6 events) are current against 10; at 34 s, 5 of 10.
            assert!(h.run(|cx| s.advance(&p, secs(33), cx)).is_empty());
            let found = h.run(|cx| s.advance(&p, secs(34), cx));
            if !fires {
                assert!(found.is_empty(), "{spike_type:?}");
                continue;
            }
            assert_eq!(at(&found), [(34, None)], "{spike_type:?}");
            assert!(found[0].description.starts_with(
                "An abnormal number (5) of events occurred around 2026-01-01T00:00:25Z: 10"
            ));
        }
    }

    #[test]
    fn the_windows_are_compared_only_two_timeframes_after_the_first_event() {
        let p = params(SpikeType::Up);
        let (mut s, mut h) = (Spike::default(), Harness::new(true));
        let found: Vec<_> = (0..20)
            .flat_map(|i| take(&mut s, &p, &mut h, i / 10, Some("a")))
            .collect();
        assert!(found.is_empty());
    }

    #[test]
    fn the_thresholds_are_minimum_counts() {
        for (threshold_ref, threshold_cur, fires) in
            [(10, 20, true), (11, 0, false), (0, 21, false)]
        {
            let p = Params {
                threshold_ref,
                threshold_cur,
                ..params(SpikeType::Up)
            };
            let (mut s, mut h) = (Spike::default(), Harness::new(false));
            let mut found = steady(&mut s, &p, &mut h, 0, 20, None);
            for _ in 0..11 {
                found.extend(take(&mut s, &p, &mut h, 21, None));
            }
            assert_eq!(
                found.len(),
                usize::from(fires),
                "ref {threshold_ref}, cur {threshold_cur}"
            );
        }
    }

    #[test]
    fn alert_on_new_data_compares_a_new_key_at_once() {
        for alert_on_new_data in [true, false] {
            let p = Params {
                alert_on_new_data,
                ..params(SpikeType::Up)
            };
            let (mut s, mut h) = (Spike::default(), Harness::new(true));
            assert!(steady(&mut s, &p, &mut h, 0, 20, Some("a")).is_empty());
            let found = take(&mut s, &p, &mut h, 21, Some("b"));
            if alert_on_new_data {
                assert_eq!(at(&found), [(21, key("b"))]);
            } else {
                assert!(found.is_empty());
            }
        }
    }

    #[test]
    fn entries_beyond_the_limit_are_merged_and_counted() {
        let p = params(SpikeType::Up);
        let (mut s, mut h) = (Spike::default(), Harness::new(false));
        h.config.max_window_entries = 2;
        steady(&mut s, &p, &mut h, 0, 2, None);
        assert_eq!(h.stats.merged_window_entries, 1);
        let w = s.windows.get("").expect("the stream's windows");
        let counts: Vec<_> = w.current.counts.iter().copied().collect();
        assert_eq!(counts, [(secs(0), 2), (secs(2), 1)]);
        assert_eq!(w.current.total, 3);
    }

    #[test]
    fn keys_with_empty_windows_are_forgotten() {
        let p = params(SpikeType::Up);
        for keyed in [true, false] {
            let (mut s, mut h) = (Spike::default(), Harness::new(keyed));
            let k = keyed.then_some("a");
            take(&mut s, &p, &mut h, 0, k);
            // The event moves to the reference window at 100 s and out of it at 200 s.
            for t in [100, 200] {
                h.run(|cx| s.slide(&p, secs(t), None, cx));
                assert!(s.windows.get(k.unwrap_or_default()).is_some());
            }
            h.run(|cx| s.slide(&p, secs(300), None, cx));
            // The rule without a query key keeps its one window.
            assert_eq!(s.windows.get(k.unwrap_or_default()).is_some(), !keyed);
        }
    }

    #[test]
    fn a_count_window_spans_less_than_a_timeframe() {
        let tf = secs(10) - secs(0);
        let mut w = CountWindow::default();
        let mut removed = Vec::new();
        w.append(secs(0), 0, tf, 100, |t, n| removed.push((t, n)));
        w.append(secs(3), 2, tf, 100, |t, n| removed.push((t, n)));
        w.append(secs(3), 1, tf, 100, |t, n| removed.push((t, n)));
        assert!(removed.is_empty());
        assert_eq!(
            w.first_counted(),
            Some(secs(3)),
            "placeholders are not counted"
        );
        w.append(secs(12), 1, tf, 100, |t, n| removed.push((t, n)));
        assert_eq!(removed, [(secs(0), 0)]);
        assert_eq!(w.total, 4);
        w.append(secs(13), 0, tf, 100, |t, n| removed.push((t, n)));
        assert_eq!(removed, [(secs(0), 0), (secs(3), 3)]);
        assert_eq!(w.total, 1);
    }
}
