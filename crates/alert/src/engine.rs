//! The rules engine: every rule's state, windows by event time, realert and aggregation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use logtide_event::{Event, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rule::{Destination, Rule, RuleKind, SpikeType};
use crate::template::{AlertValues, MISSING};

/// Nanoseconds since the Unix epoch: event times inside the engine.
pub(crate) type Nanos = i64;

pub(crate) fn nanos(t: Timestamp) -> Nanos {
    t.unix_nanos().clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

pub(crate) fn timestamp(n: Nanos) -> Timestamp {
    let secs = n.div_euclid(1_000_000_000);
    let sub = n.rem_euclid(1_000_000_000) as u32;
    Timestamp::new(secs, sub).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn span(d: Duration) -> Nanos {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Limits and timing of an [`Engine`].
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// How far behind the newest event time an event may be and still count in its
    /// windows (default 30 s). Older events are counted as late
    /// ([`RuleStats::late_events`]) and not added to windows; `any` and `new_term` rules
    /// still match them. `change` rules wait this long before comparing, so that events
    /// arriving out of order are compared in event-time order.
    pub allowed_lateness: Duration,
    /// Query keys kept per rule (default 10,000); beyond, the least recently seen keys
    /// are forgotten and counted ([`RuleStats::evicted_keys`]).
    pub max_query_keys: usize,
    /// Terms kept per `new_term` rule (default 100,000), evicted the same way.
    pub max_terms: usize,
    /// Events waiting per `change` rule for their turn (default 10,000); beyond, the
    /// oldest is compared early and counted ([`RuleStats::reorder_overflows`]).
    pub max_waiting: usize,
    /// Matches held per aggregated alert (default 100); more are counted in the alert,
    /// not kept.
    pub max_aggregated: usize,
    /// Event times ahead of the wall clock by more than this are counted
    /// ([`EngineStats::future_events`]; default 5 minutes). Whatever their time, events
    /// never move the engine's clock past the wall clock, so one event from a node with
    /// a wrong clock does not make every later event late.
    pub max_clock_skew: Duration,
    /// Distinct event times kept per `spike` window and query key (default 10,000);
    /// beyond, the two oldest are counted together at the older time and counted
    /// ([`RuleStats::merged_window_entries`]), so memory does not grow with the rate.
    pub max_window_entries: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            allowed_lateness: Duration::from_secs(30),
            max_query_keys: 10_000,
            max_terms: 100_000,
            max_waiting: 10_000,
            max_aggregated: 100,
            max_clock_skew: Duration::from_secs(300),
            max_window_entries: 10_000,
        }
    }
}

/// An alert: what a rule found, ready to be delivered.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// The rule's name.
    pub rule: Arc<str>,
    /// Where the rule came from.
    pub origin: Arc<str>,
    /// The query key's value, when the rule has one.
    pub query_key: Option<String>,
    /// When it happened (event time): the match, or the first aggregated match.
    pub time: Timestamp,
    /// Matches in this alert (more than one when aggregated).
    pub num_matches: u64,
    /// The title (`alert_subject`, or the rule's name).
    pub subject: String,
    /// The message.
    pub text: String,
    /// The events of the matches (at most [`EngineConfig::max_aggregated`]).
    pub events: Vec<Value>,
    #[serde(skip)]
    pub(crate) destinations: Arc<[Destination]>,
    #[serde(skip)]
    pub(crate) realert: Duration,
}

impl Alert {
    /// Where the alert goes.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// [`Alert::time`] in RFC 3339, without a zero fraction (`2026-01-01T00:00:20Z`).
    pub fn time_text(&self) -> String {
        fmt_time(nanos(self.time))
    }
}

/// Counters of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RuleStats {
    /// Events that passed the rule's filter.
    pub matched_events: u64,
    /// Matching events older than the allowed lateness, left out of windows.
    pub late_events: u64,
    /// Matches found (before realert and aggregation).
    pub matches: u64,
    /// Matches suppressed by `realert`.
    pub suppressed: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Query keys (or terms) forgotten to stay within the limits.
    pub evicted_keys: u64,
    /// `change` events compared early because the waiting room was full.
    pub reorder_overflows: u64,
    /// Event time of the last match, as nanoseconds since the epoch.
    pub last_match: Option<i64>,
    /// `spike` window entries counted together to stay within
    /// [`EngineConfig::max_window_entries`].
    #[serde(default)]
    pub merged_window_entries: u64,
}

/// A match before realert and aggregation.
struct Match {
    key: Option<String>,
    time: Nanos,
    description: String,
    event: Option<Event>,
}

/// Keyed state with a bound: the least recently used keys go first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Keyed<T> {
    map: HashMap<String, (T, u64)>,
    clock: u64,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed {
            map: HashMap::new(),
            clock: 0,
        }
    }
}

impl<T> Keyed<T> {
    /// The value for `key`, made with `make` when new; returns the number of keys evicted
    /// to make room.
    fn entry(&mut self, key: &str, cap: usize, make: impl FnOnce() -> T) -> (&mut T, u64) {
        self.clock += 1;
        let mut evicted = 0;
        if !self.map.contains_key(key) && self.map.len() >= cap.max(1) {
            // Forget the oldest eighth at once, so eviction costs O(log n) per key.
            let mut ages: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
            let n = (ages.len() / 8).max(1);
            ages.select_nth_unstable(n - 1);
            let cut = ages[n - 1];
            let before = self.map.len();
            self.map.retain(|_, (_, t)| *t > cut);
            evicted = (before - self.map.len()) as u64;
        }
        let clock = self.clock;
        let slot = self
            .map
            .entry(key.to_owned())
            .or_insert_with(|| (make(), clock));
        slot.1 = clock;
        (&mut slot.0, evicted)
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.map.get(key).map(|(v, _)| v)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    fn retain(&mut self, mut f: impl FnMut(&str, &mut T) -> bool) {
        self.map.retain(|k, (v, _)| f(k, v));
    }
}

/// A flatline key: the newest `threshold` event times, sorted, and since when it has
/// been watched.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FlatKey {
    recent: VecDeque<Nanos>,
    since: Nanos,
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

/// The state of one rule, by type.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum KindState {
    Any,
    Frequency {
        keys: Keyed<VecDeque<Nanos>>,
    },
    Flatline {
        keys: Keyed<FlatKey>,
        #[serde(skip)]
        deadlines: BinaryHeap<Reverse<(Nanos, String)>>,
    },
    Spike {
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
    },
    Change {
        last: Keyed<(Nanos, Value)>,
        #[serde(skip)]
        waiting: BinaryHeap<Reverse<(Nanos, u64)>>,
        waiting_events: HashMap<u64, (Nanos, String, Value, Value)>,
        seq: u64,
    },
    NewTerm {
        terms: Keyed<Nanos>,
    },
}

impl KindState {
    fn new(kind: &RuleKind) -> KindState {
        match kind {
            RuleKind::Any => KindState::Any,
            RuleKind::Frequency { .. } => KindState::Frequency {
                keys: Keyed::default(),
            },
            RuleKind::Flatline { .. } => KindState::Flatline {
                keys: Keyed::default(),
                deadlines: BinaryHeap::new(),
            },
            RuleKind::Spike { .. } => KindState::Spike {
                windows: Keyed::default(),
                filled_once: false,
                moved_to: None,
                all_moved_to: None,
            },
            RuleKind::Change { .. } => KindState::Change {
                last: Keyed::default(),
                waiting: BinaryHeap::new(),
                waiting_events: HashMap::new(),
                seq: 0,
            },
            RuleKind::NewTerm { .. } => KindState::NewTerm {
                terms: Keyed::default(),
            },
        }
    }

    /// Rebuilds what is derived from the saved state (flatline deadlines, the order of
    /// waiting `change` events).
    pub(crate) fn rebuild(&mut self, kind: &RuleKind) {
        if let KindState::Change {
            waiting,
            waiting_events,
            ..
        } = self
        {
            waiting.clear();
            for (seq, (t, ..)) in waiting_events.iter() {
                waiting.push(Reverse((*t, *seq)));
            }
        }
        if let (
            KindState::Flatline { keys, deadlines },
            RuleKind::Flatline {
                threshold,
                timeframe,
                ..
            },
        ) = (self, kind)
        {
            deadlines.clear();
            for (k, (fk, _)) in &keys.map {
                deadlines.push(Reverse((
                    flat_deadline(fk, *threshold, span(*timeframe)),
                    k.clone(),
                )));
            }
        }
    }

    pub(crate) fn matches_kind(&self, kind: &RuleKind) -> bool {
        matches!(
            (self, kind),
            (KindState::Any, RuleKind::Any)
                | (KindState::Frequency { .. }, RuleKind::Frequency { .. })
                | (KindState::Flatline { .. }, RuleKind::Flatline { .. })
                | (KindState::Spike { .. }, RuleKind::Spike { .. })
                | (KindState::Change { .. }, RuleKind::Change { .. })
                | (KindState::NewTerm { .. }, RuleKind::NewTerm { .. })
        )
    }
}

/// When a flatline key falls below its threshold if nothing more arrives: when its
/// `threshold`-th newest event leaves the window (or, with fewer events, a timeframe
/// after it started being watched).
fn flat_deadline(k: &FlatKey, threshold: usize, tf: Nanos) -> Nanos {
    if k.recent.len() >= threshold {
        k.recent
            .front()
            .copied()
            .unwrap_or(k.since)
            .saturating_add(tf)
    } else {
        k.since.saturating_add(tf)
    }
}

/// Matches waiting for their aggregation window to end.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Aggregate {
    first: Nanos,
    count: u64,
    query_key: Option<String>,
    texts: Vec<String>,
    events: Vec<Value>,
    first_event: Option<Value>,
}

/// One rule and its state.
pub(crate) struct Slot {
    pub(crate) rule: Arc<Rule>,
    pub(crate) state: KindState,
    /// Realert: last alert time per query key.
    pub(crate) silenced: Keyed<Nanos>,
    pub(crate) aggregates: BTreeMap<String, Aggregate>,
    pub(crate) stats: RuleStats,
    /// Event time from which this rule has watched the stream.
    pub(crate) observed_from: Option<Nanos>,
}

/// The engine's event-time clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Clock {
    /// The newest event time seen.
    pub(crate) max_event: Option<Nanos>,
    /// The wall time at which `max_event` last moved.
    pub(crate) moved_at: Nanos,
}

impl Clock {
    /// The watermark: events older than this are late. It follows the newest event time,
    /// less the allowed lateness; while no newer event arrives it moves on with the wall
    /// clock, so time-driven rules (flatline, spike, aggregation) fire on a silent stream.
    fn watermark(&self, now: Nanos, lateness: Nanos) -> Option<Nanos> {
        let max = self.max_event?;
        let idle = now.saturating_sub(self.moved_at).max(0);
        Some(max.saturating_add(idle).saturating_sub(lateness))
    }
}

/// Counters of the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Events evaluated.
    pub events: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Events stamped more than [`EngineConfig::max_clock_skew`] after the wall clock.
    pub future_events: u64,
    /// Per rule, by name.
    pub rules: BTreeMap<String, RuleStats>,
}

/// The rules engine: evaluates every rule on each event and produces [`Alert`]s.
///
/// Synchronous and pure: the caller passes the wall clock (`now`), so tests drive time.
/// Feed events with [`Engine::process`], move time with [`Engine::tick`] when no events
/// arrive, and at the end of a finite input call [`Engine::finish`].
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) slots: Vec<Slot>,
    pub(crate) clock: Clock,
    pub(crate) watermark: Option<Nanos>,
    pub(crate) events: u64,
    pub(crate) alerts: u64,
    pub(crate) future_events: u64,
}

impl Engine {
    /// An engine over `rules` (disabled rules are kept but not evaluated).
    pub fn new<R: Into<Arc<Rule>>>(
        config: EngineConfig,
        rules: impl IntoIterator<Item = R>,
    ) -> Engine {
        let mut engine = Engine {
            config,
            slots: Vec::new(),
            clock: Clock::default(),
            watermark: None,
            events: 0,
            alerts: 0,
            future_events: 0,
        };
        engine.set_rules(rules);
        engine
    }

    /// Replaces the rules. A rule whose name and state-shaping keys (type, windows,
    /// thresholds, keys, filter) are unchanged keeps its state; realert silences are kept
    /// by name whatever changed, so editing a rule does not resend its alerts.
    pub fn set_rules<R: Into<Arc<Rule>>>(&mut self, rules: impl IntoIterator<Item = R>) {
        let mut old: HashMap<Arc<str>, Slot> = self
            .slots
            .drain(..)
            .map(|s| (Arc::clone(&s.rule.name), s))
            .collect();
        for rule in rules {
            let rule: Arc<Rule> = rule.into();
            let slot = match old.remove(&rule.name) {
                Some(prev)
                    if prev.rule.fingerprint == rule.fingerprint
                        && prev.state.matches_kind(&rule.kind) =>
                {
                    Slot { rule, ..prev }
                }
                Some(prev) => Slot {
                    state: KindState::new(&rule.kind),
                    silenced: prev.silenced,
                    aggregates: BTreeMap::new(),
                    stats: RuleStats::default(),
                    observed_from: self.clock.max_event,
                    rule,
                },
                None => Slot {
                    state: KindState::new(&rule.kind),
                    silenced: Keyed::default(),
                    aggregates: BTreeMap::new(),
                    stats: RuleStats::default(),
                    observed_from: self.clock.max_event,
                    rule,
                },
            };
            self.slots.push(slot);
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.slots.iter().map(|s| &*s.rule)
    }

    /// Evaluates a batch of events; `now` is the wall clock. Alerts are appended to `out`.
    pub fn process(&mut self, events: &[Event], now: Timestamp, out: &mut Vec<Alert>) {
        let now = nanos(now);
        let lateness = span(self.config.allowed_lateness);
        let horizon = now.saturating_add(span(self.config.max_clock_skew));
        for event in events {
            self.events += 1;
            let t = nanos(event.timestamp());
            if t > horizon {
                self.future_events += 1;
            }
            let t_clock = t.min(now);
            if self.clock.max_event.is_none_or(|m| t_clock > m) {
                self.clock.max_event = Some(t_clock);
                self.clock.moved_at = now;
            }
            for slot in &mut self.slots {
                if slot.observed_from.is_none() {
                    slot.observed_from = Some(t);
                }
            }
            self.advance_to(self.clock.watermark(now, lateness), out);
            let watermark = self.watermark;
            let clock = self.clock.max_event.unwrap_or(t_clock);
            for slot in &mut self.slots {
                if !slot.rule.enabled {
                    continue;
                }
                let before = out.len();
                let matched = slot.rule.matches(event);
                if matched {
                    slot.on_event(event, t, watermark, &self.config, out);
                }
                // Spike windows slide with time, also on events the rule does not take.
                if matches!(slot.rule.kind, RuleKind::Spike { .. }) {
                    let own = matched.then(|| query_key(&slot.rule, event).unwrap_or_default());
                    slot.spike_gc(clock, own.as_deref(), &self.config, out);
                }
                self.alerts += (out.len() - before) as u64;
            }
        }
    }

    /// Moves time on with the wall clock `now` (call it regularly, also when no events
    /// arrive): flatline, spike and aggregation windows close, `change` events are
    /// compared.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        let lateness = span(self.config.allowed_lateness);
        let w = self.clock.watermark(nanos(now), lateness);
        self.advance_to(w, out);
    }

    /// Ends a finite input: every waiting `change` event is compared and every pending
    /// aggregation is sent (windows still open are not closed, so no flatline fires).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let config = self.config.clone();
        for slot in &mut self.slots {
            let before = out.len();
            slot.release_waiting(Nanos::MAX, &config, out);
            slot.flush_aggregates(Nanos::MAX, out);
            self.alerts += (out.len() - before) as u64;
        }
    }

    fn advance_to(&mut self, w: Option<Nanos>, out: &mut Vec<Alert>) {
        let Some(w) = w else { return };
        if self.watermark.is_some_and(|old| w <= old) {
            return;
        }
        self.watermark = Some(w);
        let config = self.config.clone();
        for slot in &mut self.slots {
            if slot.rule.enabled {
                let before = out.len();
                slot.advance(w, &config, out);
                self.alerts += (out.len() - before) as u64;
            }
        }
    }

    /// The engine's counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            events: self.events,
            alerts: self.alerts,
            future_events: self.future_events,
            rules: self
                .slots
                .iter()
                .map(|s| (s.rule.name.to_string(), s.stats.clone()))
                .collect(),
        }
    }
}

/// The query key's value in `event`: the fields' values joined with `, `, or `None` when
/// the rule has no query key.
fn query_key(rule: &Rule, event: &Event) -> Option<String> {
    if rule.query_key.is_empty() {
        return None;
    }
    let parts: Vec<String> = rule
        .query_key
        .iter()
        .map(|f| match event.get(f) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => MISSING.to_owned(),
        })
        .collect();
    Some(parts.join(", "))
}

/// RFC 3339 with the fraction's trailing zeros (and a zero fraction) left out.
fn fmt_time(n: Nanos) -> String {
    let text = timestamp(n).to_string();
    match text.split_once('.') {
        Some((secs, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{digits}Z")
            }
        }
        None => text,
    }
}

impl Slot {
    fn on_event(
        &mut self,
        event: &Event,
        t: Nanos,
        watermark: Option<Nanos>,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
    ) {
        self.stats.matched_events += 1;
        let late = watermark.is_some_and(|w| t < w);
        if late {
            self.stats.late_events += 1;
        }
        let key = query_key(&self.rule, event);
        let k = key.clone().unwrap_or_default();
        let rule = Arc::clone(&self.rule);
        let mut found: Vec<Match> = Vec::new();
        match (&mut self.state, &rule.kind) {
            (KindState::Any, RuleKind::Any) => found.push(Match {
                key,
                time: t,
                description: format!("{} matched an event", rule.name),
                event: Some(event.clone_unacked()),
            }),
            (
                KindState::Frequency { keys },
                RuleKind::Frequency {
                    num_events,
                    timeframe,
                },
            ) => {
                if late {
                    return;
                }
                let tf = span(*timeframe);
                let (times, evicted) = keys.entry(&k, config.max_query_keys, VecDeque::new);
                self.stats.evicted_keys += evicted;
                let i = times.partition_point(|x| *x <= t);
                times.insert(i, t);
                // Times that can no longer share a window with a non-late event.
                if let Some(w) = watermark {
                    while times.front().is_some_and(|x| *x < w.saturating_sub(tf)) {
                        times.pop_front();
                    }
                }
                let n = *num_events;
                let lo = i.saturating_sub(n - 1);
                let mut fired = None;
                for j in lo..=i {
                    // As elastalert's EventWindow: an event exactly `timeframe` older
                    // than the newest has left the window.
                    if j + n - 1 < times.len() && times[j + n - 1] - times[j] < tf {
                        fired = Some((times[j], times[j + n - 1]));
                        break;
                    }
                }
                if let Some((first, last)) = fired {
                    times.retain(|x| *x > last);
                    found.push(Match {
                        key,
                        time: last,
                        description: format!(
                            "At least {n} events occurred between {} and {}",
                            fmt_time(first),
                            fmt_time(last)
                        ),
                        event: Some(event.clone_unacked()),
                    });
                }
                // A bound whatever the input: at most twice the window's worth per key.
                let cap = (2 * n).max(64);
                while times.len() > cap {
                    times.pop_front();
                }
            }
            (
                KindState::Flatline { keys, deadlines },
                RuleKind::Flatline {
                    threshold,
                    timeframe,
                    ..
                },
            ) => {
                if late {
                    return;
                }
                let tf = span(*timeframe);
                // A key is watched from its first event; the rule without a query key
                // from the start of the stream.
                let since = if rule.query_key.is_empty() {
                    self.observed_from.unwrap_or(t).min(t)
                } else {
                    t
                };
                let (fk, evicted) = keys.entry(&k, config.max_query_keys, || FlatKey {
                    recent: VecDeque::new(),
                    since,
                });
                self.stats.evicted_keys += evicted;
                let i = fk.recent.partition_point(|x| *x <= t);
                fk.recent.insert(i, t);
                while fk.recent.len() > *threshold {
                    fk.recent.pop_front();
                }
                deadlines.push(Reverse((flat_deadline(fk, *threshold, tf), k)));
            }
            (KindState::Spike { .. }, RuleKind::Spike { .. }) => {
                if late {
                    return;
                }
                self.spike_event(&k, t, 1, config, out);
                return;
            }
            (
                KindState::Change {
                    waiting,
                    waiting_events,
                    seq,
                    ..
                },
                RuleKind::Change {
                    compare_key,
                    ignore_null,
                    ..
                },
            ) => {
                if late {
                    return;
                }
                let values: Vec<Value> = compare_key
                    .iter()
                    .map(|f| event.get(f).cloned().unwrap_or(Value::Null))
                    .collect();
                if *ignore_null && values.iter().any(Value::is_null) {
                    return;
                }
                let value = if values.len() == 1 {
                    values.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(values)
                };
                *seq += 1;
                waiting.push(Reverse((t, *seq)));
                let json = serde_json::to_value(event).unwrap_or(Value::Null);
                waiting_events.insert(*seq, (t, k, value, json));
                if waiting.len() > config.max_waiting {
                    if let Some(Reverse((oldest, _))) = waiting.peek().copied() {
                        self.stats.reorder_overflows += 1;
                        self.release_waiting(oldest, config, out);
                    }
                }
            }
            (
                KindState::NewTerm { terms },
                RuleKind::NewTerm {
                    fields,
                    terms_window_size,
                    learning_period,
                    alert_on_missing_field,
                },
            ) => {
                let learning_until = self
                    .observed_from
                    .unwrap_or(t)
                    .saturating_add(span(*learning_period));
                let window = span(*terms_window_size);
                for spec in fields {
                    let found_terms = terms_of(event, spec);
                    if found_terms.is_empty() {
                        // As elastalert: a missing (or empty) field is no term, and a
                        // match of its own with `alert_on_missing_field`.
                        if *alert_on_missing_field && t >= learning_until {
                            found.push(Match {
                                key: key.clone(),
                                time: t,
                                description: format!("Missing field {}", spec.join(", ")),
                                event: Some(event.clone_unacked()),
                            });
                        }
                        continue;
                    }
                    for term in found_terms {
                        let id = format!("{}\u{1f}{term}", spec.join(","));
                        let (last, evicted) = terms.entry(&id, config.max_terms, || Nanos::MIN);
                        self.stats.evicted_keys += evicted;
                        let new = *last == Nanos::MIN || t.saturating_sub(*last) > window;
                        if *last == Nanos::MIN || t > *last {
                            *last = t;
                        }
                        if new && t >= learning_until {
                            found.push(Match {
                                key: key.clone(),
                                time: t,
                                description: format!("New term in {}: {term}", spec.join(", ")),
                                event: Some(event.clone_unacked()),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        for m in found {
            self.emit(m, config, out);
        }
    }

    /// elastalert's `SpikeRule.handle_event`: adds `count` events (0 for the placeholder
    /// that moves time on) at `t` to key `k`'s current window and compares the windows.
    fn spike_event(
        &mut self,
        k: &str,
        t: Nanos,
        count: u64,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
    ) {
        let rule = Arc::clone(&self.rule);
        let (
            KindState::Spike {
                windows,
                filled_once,
                ..
            },
            RuleKind::Spike {
                spike_height,
                spike_type,
                timeframe,
                threshold_ref,
                threshold_cur,
                alert_on_new_data,
            },
        ) = (&mut self.state, &rule.kind)
        else {
            return;
        };
        let tf = span(*timeframe);
        let (w, evicted) = windows.entry(k, config.max_query_keys, SpikeKey::default);
        self.stats.evicted_keys += evicted;
        let first = *w.first.get_or_insert(t);
        let reference = &mut w.reference;
        let cap = config.max_window_entries;
        let mut merged_ref = 0;
        let merged_cur = w.current.append(t, count, tf, cap, |x, n| {
            merged_ref += reference.append(x, n, tf, cap, |_, _| {});
        });
        self.stats.merged_window_entries += merged_cur + merged_ref;
        // The reference window is not full until two timeframes after the first event.
        if t - first < tf.saturating_mul(2) {
            if !*filled_once
                || !*alert_on_new_data
                || rule.query_key.is_empty()
                || w.skip_until.is_some_and(|s| t < s)
            {
                return;
            }
        } else {
            *filled_once = true;
        }
        let (cur, refc) = (w.current.total, w.reference.total);
        if cur < *threshold_cur || refc < *threshold_ref {
            return;
        }
        let down = cur as f64 <= refc as f64 / spike_height;
        let up = cur as f64 >= refc as f64 * spike_height;
        let fire = match spike_type {
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
        let m = Match {
            key: (!rule.query_key.is_empty()).then(|| k.to_owned()),
            time: t,
            description: format!(
                "An abnormal number ({cur}) of events occurred around {}: {refc} in the previous {}",
                fmt_time(at),
                humantime::format_duration(*timeframe)
            ),
            event: None,
        };
        self.emit(m, config, out);
    }

    /// elastalert's `SpikeRule.garbage_collect` at time `t`: a placeholder (no events)
    /// moves the windows on, which may show a drop; keys with no events left in either
    /// window are forgotten. Key `own` (the event's, if the rule took it) always moves;
    /// every key moves when time has gone on by a tenth of the timeframe (at most a
    /// second) since they last did, so the cost per event does not grow with the keys.
    fn spike_gc(
        &mut self,
        t: Nanos,
        own: Option<&str>,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
    ) {
        let (
            KindState::Spike {
                windows,
                moved_to,
                all_moved_to,
                ..
            },
            RuleKind::Spike { timeframe, .. },
        ) = (&mut self.state, &self.rule.kind)
        else {
            return;
        };
        *moved_to = Some(moved_to.map_or(t, |m| m.max(t)));
        let step = (span(*timeframe) / 10).clamp(1, 1_000_000_000);
        let keys: Vec<String> = if all_moved_to.is_none_or(|m| t - m >= step) {
            *all_moved_to = Some(t);
            let has_key = !self.rule.query_key.is_empty();
            windows.retain(|_, w| !has_key || w.reference.total > 0 || w.current.total > 0);
            windows.map.keys().cloned().collect()
        } else {
            own.map(str::to_owned).into_iter().collect()
        };
        for k in keys {
            self.spike_event(&k, t, 0, config, out);
        }
    }

    /// Closes what the watermark `w` has passed.
    fn advance(&mut self, w: Nanos, config: &EngineConfig, out: &mut Vec<Alert>) {
        // On a silent stream the watermark moves on with the wall clock past the newest
        // event, and the spike windows move with it (elastalert's garbage_collect).
        if let KindState::Spike {
            moved_to: Some(m), ..
        } = self.state
        {
            if w > m {
                self.spike_gc(w, None, config, out);
            }
        }
        let rule = Arc::clone(&self.rule);
        let mut found = Vec::new();
        if let (
            KindState::Flatline { keys, deadlines },
            RuleKind::Flatline {
                threshold,
                timeframe,
                forget_keys,
            },
        ) = (&mut self.state, &rule.kind)
        {
            let tf = span(*timeframe);
            // The rule without a query key watches the whole stream from the start.
            if rule.query_key.is_empty() && keys.get("").is_none() {
                if let Some(since) = self.observed_from {
                    let (fk, _) = keys.entry("", 1, || FlatKey {
                        recent: VecDeque::new(),
                        since,
                    });
                    deadlines.push(Reverse((flat_deadline(fk, *threshold, tf), String::new())));
                }
            }
            while let Some(Reverse((deadline, _))) = deadlines.peek() {
                if *deadline > w {
                    break;
                }
                let Some(Reverse((deadline, k))) = deadlines.pop() else {
                    break;
                };
                let Some(fk) = keys.get_mut(&k) else { continue };
                if flat_deadline(fk, *threshold, tf) != deadline {
                    continue; // superseded by a newer event
                }
                let count = fk.recent.iter().filter(|x| **x > deadline - tf).count();
                found.push(Match {
                        key: (!rule.query_key.is_empty()).then(|| k.clone()),
                        time: deadline,
                        description: format!(
                            "An abnormally low number of events occurred around {}: {count} in {} (threshold {threshold})",
                            fmt_time(deadline),
                            humantime::format_duration(*timeframe)
                        ),
                        event: None,
                    });
                if *forget_keys && !rule.query_key.is_empty() {
                    keys.remove(&k);
                } else {
                    fk.since = deadline;
                    fk.recent.retain(|x| *x > deadline);
                    deadlines.push(Reverse((flat_deadline(fk, *threshold, tf), k)));
                }
            }
        }
        found.sort_by_key(|m| m.time);
        for m in found {
            self.emit(m, config, out);
        }
        self.release_waiting(w, config, out);
        self.flush_aggregates(w, out);
    }

    /// Compares the waiting `change` events up to `w`, in event-time order.
    fn release_waiting(&mut self, w: Nanos, config: &EngineConfig, out: &mut Vec<Alert>) {
        let rule = Arc::clone(&self.rule);
        let (
            KindState::Change {
                last,
                waiting,
                waiting_events,
                ..
            },
            RuleKind::Change {
                compare_key,
                timeframe,
                ..
            },
        ) = (&mut self.state, &rule.kind)
        else {
            return;
        };
        let mut found = Vec::new();
        while let Some(Reverse((t, seq))) = waiting.peek().copied() {
            if t > w {
                break;
            }
            waiting.pop();
            let Some((_, k, value, event)) = waiting_events.remove(&seq) else {
                continue;
            };
            let (prev, evicted) =
                last.entry(&k, config.max_query_keys, || (Nanos::MIN, Value::Null));
            self.stats.evicted_keys += evicted;
            let changed = prev.0 != Nanos::MIN
                && prev.1 != value
                && timeframe.is_none_or(|tf| t.saturating_sub(prev.0) <= span(tf));
            if changed {
                found.push(Match {
                    key: (!rule.query_key.is_empty()).then(|| k.clone()),
                    time: t,
                    description: format!(
                        "{} changed from {} to {}",
                        compare_key.join(", "),
                        show(&prev.1),
                        show(&value)
                    ),
                    event: Event::from_json(event).ok(),
                });
            }
            *prev = (t, value);
        }
        for m in found {
            self.emit(m, config, out);
        }
    }

    /// Applies realert, then aggregation; produces the alert when not aggregated.
    fn emit(&mut self, m: Match, config: &EngineConfig, out: &mut Vec<Alert>) {
        self.stats.matches += 1;
        self.stats.last_match = Some(self.stats.last_match.map_or(m.time, |l| l.max(m.time)));
        let rule = Arc::clone(&self.rule);
        let k = m.key.clone().unwrap_or_default();
        let realert = span(rule.realert);
        if realert > 0 {
            let (last, evicted) = self
                .silenced
                .entry(&k, config.max_query_keys, || Nanos::MIN);
            self.stats.evicted_keys += evicted;
            if *last != Nanos::MIN && (m.time - *last).abs() < realert {
                self.stats.suppressed += 1;
                return;
            }
            *last = m.time;
        }
        let text = render(&rule, &m, 1);
        let event_json = m.event.as_ref().and_then(|e| serde_json::to_value(e).ok());
        match rule.aggregation {
            None => {
                self.stats.alerts += 1;
                out.push(Alert {
                    rule: Arc::clone(&rule.name),
                    origin: Arc::clone(&rule.origin),
                    query_key: m.key.clone(),
                    time: timestamp(m.time),
                    num_matches: 1,
                    subject: subject(&rule, &m, 1),
                    text,
                    events: event_json.into_iter().collect(),
                    destinations: Arc::clone(&rule.destinations),
                    realert: rule.realert,
                });
            }
            Some(_) => {
                let agg_key = match (&rule.aggregation_key, &m.event) {
                    (Some(f), Some(e)) => e.get(f).map(|v| match v {
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    }),
                    _ => None,
                }
                .unwrap_or_default();
                if !self.aggregates.contains_key(&agg_key)
                    && self.aggregates.len() >= config.max_query_keys
                {
                    // At the bound: the oldest aggregation is sent now rather than kept.
                    let oldest = self
                        .aggregates
                        .iter()
                        .min_by_key(|(_, a)| a.first)
                        .map(|(k, _)| k.clone());
                    self.stats.evicted_keys += 1;
                    self.send_aggregates(oldest.into_iter().collect(), out);
                }
                let agg = self.aggregates.entry(agg_key).or_insert_with(|| Aggregate {
                    first: m.time,
                    query_key: m.key.clone(),
                    ..Aggregate::default()
                });
                agg.count += 1;
                agg.first = agg.first.min(m.time);
                if agg.texts.len() < config.max_aggregated {
                    agg.texts.push(text);
                    if let Some(e) = event_json {
                        if agg.first_event.is_none() {
                            agg.first_event = Some(e.clone());
                        }
                        agg.events.push(e);
                    }
                }
            }
        }
    }

    /// Sends the aggregations whose window ended by `w`.
    fn flush_aggregates(&mut self, w: Nanos, out: &mut Vec<Alert>) {
        let Some(window) = self.rule.aggregation else {
            return;
        };
        if self.aggregates.is_empty() {
            return;
        }
        let ready: Vec<String> = self
            .aggregates
            .iter()
            .filter(|(_, a)| a.first.saturating_add(span(window)) <= w)
            .map(|(k, _)| k.clone())
            .collect();
        self.send_aggregates(ready, out);
    }

    /// Sends the aggregations of `keys` as one alert each.
    fn send_aggregates(&mut self, keys: Vec<String>, out: &mut Vec<Alert>) {
        let rule = Arc::clone(&self.rule);
        for k in keys {
            let Some(agg) = self.aggregates.remove(&k) else {
                continue;
            };
            let first_event = agg
                .first_event
                .as_ref()
                .and_then(|v| Event::from_json(v.clone()).ok());
            let m = Match {
                key: agg.query_key.clone(),
                time: agg.first,
                description: String::new(),
                event: first_event,
            };
            let mut text = String::new();
            if !rule.summary_table_fields.is_empty() {
                text.push_str(&summary_table(&rule.summary_table_fields, &agg.events));
                text.push('\n');
            }
            text.push_str(
                &agg.texts
                    .join("\n----------------------------------------\n"),
            );
            let shown = agg.texts.len() as u64;
            if agg.count > shown {
                text.push_str(&format!("\n… and {} more matches", agg.count - shown));
            }
            self.stats.alerts += 1;
            out.push(Alert {
                rule: Arc::clone(&rule.name),
                origin: Arc::clone(&rule.origin),
                query_key: agg.query_key,
                time: timestamp(agg.first),
                num_matches: agg.count,
                subject: subject(&rule, &m, agg.count),
                text,
                events: agg.events,
                destinations: Arc::clone(&rule.destinations),
                realert: rule.realert,
            });
        }
    }
}

/// Whether elastalert (Python) takes a field's value for missing: `None`, `false`, `0`,
/// an empty string, list or object.
fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The terms of `spec` (one field, or several combined) in an event; arrays give one
/// term per element. None when a field is missing or, as for elastalert, falsy.
fn terms_of(event: &Event, spec: &[String]) -> Vec<String> {
    let one = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items.iter().map(show).collect(),
            v => vec![show(v)],
        }
    };
    let mut out: Vec<String> = vec![String::new()];
    for (i, f) in spec.iter().enumerate() {
        let Some(v) = event.get(f).filter(|v| !is_falsy(v)) else {
            return Vec::new();
        };
        let values = one(v);
        out = out
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    if i == 0 {
                        v.clone()
                    } else {
                        format!("{prefix}, {v}")
                    }
                })
            })
            .collect();
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        v => v.to_string(),
    }
}

fn values<'a>(rule: &'a Rule, m: &'a Match, n: u64) -> AlertValues<'a> {
    AlertValues {
        rule: &rule.name,
        num_matches: n,
        query_key: m.key.as_deref(),
        timestamp: fmt_time(m.time),
    }
}

fn subject(rule: &Rule, m: &Match, n: u64) -> String {
    match &rule.subject {
        Some(t) => t.render(&values(rule, m, n), m.event.as_ref()),
        None => match &m.key {
            Some(k) => format!("{} ({k})", rule.name),
            None => rule.name.to_string(),
        },
    }
}

/// One match's text: `alert_text`, then (unless `alert_text_only`) what happened and the
/// event's fields.
fn render(rule: &Rule, m: &Match, n: u64) -> String {
    let mut s = match &rule.text {
        Some(t) => t.render(&values(rule, m, n), m.event.as_ref()),
        None => String::new(),
    };
    if rule.text_only && rule.text.is_some() {
        return s;
    }
    if !s.is_empty() {
        s.push_str("\n\n");
    }
    s.push_str(&m.description);
    if let Some(k) = &m.key {
        s.push_str(&format!("\n{}: {k}", rule.query_key.join(", ")));
    }
    if let Some(e) = &m.event {
        s.push('\n');
        let fields = serde_json::to_value(e).unwrap_or(Value::Null);
        if let Value::Object(map) = fields {
            for (k, v) in &map {
                if !rule.include.is_empty()
                    && !rule
                        .include
                        .iter()
                        .any(|i| i == k || k.starts_with(&format!("{i}.")))
                {
                    continue;
                }
                let line = format!("\n{k}: {}", show(v));
                if s.len() + line.len() > 4096 {
                    s.push_str("\n…");
                    break;
                }
                s.push_str(&line);
            }
            if !rule.include.is_empty() {
                // Included dotted paths that are not top-level keys.
                for i in rule.include.iter().filter(|i| i.contains('.')) {
                    if let Some(v) = e.get(i) {
                        s.push_str(&format!("\n{i}: {}", show(v)));
                    }
                }
            }
        }
    }
    s
}

/// elastalert's aggregation summary: how often each combination of the fields occurred.
fn summary_table(fields: &[String], events: &[Value]) -> String {
    let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for v in events {
        let Ok(e) = Event::from_json(v.clone()) else {
            continue;
        };
        let row = fields
            .iter()
            .map(|f| e.get(f).map_or_else(|| MISSING.to_owned(), show))
            .collect();
        *counts.entry(row).or_default() += 1;
    }
    let mut s = format!("{} | count\n", fields.join(" | "));
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (row, n) in rows {
        s.push_str(&format!("{} | {n}\n", row.join(" | ")));
    }
    s
}
