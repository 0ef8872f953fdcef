//! The rules engine: routes events and time to every rule, keeps the event-time clock,
//! and applies realert and aggregation to what the rules find.
//!
//! Each rule type keeps its state and logic in a module of its own ([`any`],
//! [`frequency`], [`flatline`], [`spike`], [`change`], [`new_term`]); [`KindState`]
//! holds one of them per rule and hands it the rule's events ([`Seen`]) and the
//! watermark, with a [`Ctx`] for the engine's limits, the rule's counters and the
//! matches found.

mod any;
mod change;
mod flatline;
mod frequency;
mod new_term;
mod spike;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use logtide_event::{Event, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rule::{Destination, Rule, RuleKind};
use crate::template::{AlertValues, MISSING};

use self::any::Any;
use self::change::Change;
use self::flatline::Flatline;
use self::frequency::Frequency;
use self::new_term::NewTerm;
use self::spike::Spike;

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

    /// The keys and their values, in no particular order.
    fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }
}

/// An event a rule took, as its kind sees it.
struct Seen<'a> {
    event: &'a Event,
    /// Its event time.
    time: Nanos,
    /// Its query key's value; `None` when the rule has no query key.
    key: Option<String>,
    /// The watermark when it arrived.
    watermark: Option<Nanos>,
}

impl Seen<'_> {
    /// Whether it is older than the watermark: it stays out of windows.
    fn late(&self) -> bool {
        self.watermark.is_some_and(|w| self.time < w)
    }

    /// The key its rule keeps state under: the query key's value, or `""` without one.
    fn state_key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    /// A match on this event at its time.
    fn matched(&self, description: String) -> Match {
        Match {
            key: self.key.clone(),
            time: self.time,
            description,
            event: Some(self.event.clone_unacked()),
        }
    }
}

/// What a rule's kind works with besides its own state and parameters, and where its
/// matches go.
struct Ctx<'a> {
    config: &'a EngineConfig,
    /// Whether the rule has a query key (without one, its state is under the key `""`
    /// and its matches have no key).
    keyed: bool,
    /// Event time from which the rule has watched the stream.
    observed_from: Option<Nanos>,
    /// The rule's counters: kinds count evictions, overflows and merges.
    stats: &'a mut RuleStats,
    /// Matches found, in the order they go to realert and aggregation.
    found: Vec<Match>,
}

/// The state of one rule, by type: the common interface of the rule kinds. The engine
/// calls [`KindState::on_event`] with each event the rule takes, and moves time on with
/// [`KindState::on_clock`] (every event), [`KindState::advance`] (the watermark) and
/// [`KindState::finish`] (the end of the input).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum KindState {
    Any(Any),
    Frequency(Frequency),
    Flatline(Flatline),
    Spike(Spike),
    Change(Change),
    NewTerm(NewTerm),
}

impl KindState {
    fn new(kind: &RuleKind) -> KindState {
        match kind {
            RuleKind::Any => KindState::Any(Any),
            RuleKind::Frequency { .. } => KindState::Frequency(Frequency::default()),
            RuleKind::Flatline { .. } => KindState::Flatline(Flatline::default()),
            RuleKind::Spike { .. } => KindState::Spike(Spike::default()),
            RuleKind::Change { .. } => KindState::Change(Change::default()),
            RuleKind::NewTerm { .. } => KindState::NewTerm(NewTerm::default()),
        }
    }

    /// Rebuilds what is derived from the saved state (flatline deadlines, the order of
    /// waiting `change` events).
    pub(crate) fn rebuild(&mut self, kind: &RuleKind) {
        match self {
            KindState::Flatline(s) => {
                if let Some(p) = flatline::Params::of(kind) {
                    s.rebuild(&p);
                }
            }
            KindState::Change(s) => s.rebuild(),
            _ => {}
        }
    }

    pub(crate) fn matches_kind(&self, kind: &RuleKind) -> bool {
        matches!(
            (self, kind),
            (KindState::Any(_), RuleKind::Any)
                | (KindState::Frequency(_), RuleKind::Frequency { .. })
                | (KindState::Flatline(_), RuleKind::Flatline { .. })
                | (KindState::Spike(_), RuleKind::Spike { .. })
                | (KindState::Change(_), RuleKind::Change { .. })
                | (KindState::NewTerm(_), RuleKind::NewTerm { .. })
        )
    }

    /// Takes an event that passed `rule`'s filter.
    fn on_event(&mut self, rule: &Rule, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        let kind = &rule.kind;
        match self {
            KindState::Any(s) => s.on_event(&rule.name, seen, cx),
            KindState::Frequency(s) => {
                if let Some(p) = frequency::Params::of(kind) {
                    s.on_event(&p, seen, cx);
                }
            }
            KindState::Flatline(s) => {
                if let Some(p) = flatline::Params::of(kind) {
                    s.on_event(&p, seen, cx);
                }
            }
            KindState::Spike(s) => {
                if let Some(p) = spike::Params::of(kind) {
                    s.on_event(&p, seen, cx);
                }
            }
            KindState::Change(s) => {
                if let Some(p) = change::Params::of(kind) {
                    s.on_event(&p, seen, cx);
                }
            }
            KindState::NewTerm(s) => {
                if let Some(p) = new_term::Params::of(kind) {
                    s.on_event(&p, seen, cx);
                }
            }
        }
    }

    /// Whether [`KindState::on_clock`] does anything: only spike windows slide with
    /// the newest event time.
    fn follows_clock(&self) -> bool {
        matches!(self, KindState::Spike(_))
    }

    /// Moves on to the newest event time `t`, on every event, whether the rule took it
    /// or not (`own`: the query key of the event, if the rule took it).
    fn on_clock(&mut self, rule: &Rule, t: Nanos, own: Option<&str>, cx: &mut Ctx<'_>) {
        if let (KindState::Spike(s), Some(p)) = (self, spike::Params::of(&rule.kind)) {
            s.slide(&p, t, own, cx);
        }
    }

    /// Closes what the watermark `w` has passed.
    fn advance(&mut self, rule: &Rule, w: Nanos, cx: &mut Ctx<'_>) {
        let kind = &rule.kind;
        match self {
            KindState::Spike(s) => {
                if let Some(p) = spike::Params::of(kind) {
                    s.advance(&p, w, cx);
                }
            }
            KindState::Flatline(s) => {
                if let Some(p) = flatline::Params::of(kind) {
                    s.advance(&p, w, cx);
                }
            }
            KindState::Change(s) => {
                if let Some(p) = change::Params::of(kind) {
                    s.release(&p, w, cx);
                }
            }
            KindState::Any(_) | KindState::Frequency(_) | KindState::NewTerm(_) => {}
        }
    }

    /// Ends a finite input: what waits for the watermark is decided now.
    fn finish(&mut self, rule: &Rule, cx: &mut Ctx<'_>) {
        if let (KindState::Change(s), Some(p)) = (self, change::Params::of(&rule.kind)) {
            s.release(&p, Nanos::MAX, cx);
        }
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
                slot.on_clock(clock, matched.then_some(event), &self.config, out);
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
            slot.run(&config, out, |state, rule, cx| state.finish(rule, cx));
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
    /// Runs `step` on the rule's kind, then realert and aggregation on the matches it
    /// found.
    fn run(
        &mut self,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
        step: impl FnOnce(&mut KindState, &Rule, &mut Ctx<'_>),
    ) {
        let rule = Arc::clone(&self.rule);
        let mut cx = Ctx {
            config,
            keyed: !rule.query_key.is_empty(),
            observed_from: self.observed_from,
            stats: &mut self.stats,
            found: Vec::new(),
        };
        step(&mut self.state, &rule, &mut cx);
        let found = cx.found;
        for m in found {
            self.emit(m, config, out);
        }
    }

    /// Takes an event that passed the rule's filter.
    fn on_event(
        &mut self,
        event: &Event,
        t: Nanos,
        watermark: Option<Nanos>,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
    ) {
        self.stats.matched_events += 1;
        let seen = Seen {
            event,
            time: t,
            key: query_key(&self.rule, event),
            watermark,
        };
        if seen.late() {
            self.stats.late_events += 1;
        }
        self.run(config, out, |state, rule, cx| {
            state.on_event(rule, &seen, cx)
        });
    }

    /// Moves on to the newest event time `t`, on every event; `taken` is the event when
    /// the rule took it.
    fn on_clock(
        &mut self,
        t: Nanos,
        taken: Option<&Event>,
        config: &EngineConfig,
        out: &mut Vec<Alert>,
    ) {
        if !self.state.follows_clock() {
            return;
        }
        let own = taken.map(|e| query_key(&self.rule, e).unwrap_or_default());
        self.run(config, out, |state, rule, cx| {
            state.on_clock(rule, t, own.as_deref(), cx);
        });
    }

    /// Closes what the watermark `w` has passed.
    fn advance(&mut self, w: Nanos, config: &EngineConfig, out: &mut Vec<Alert>) {
        self.run(config, out, |state, rule, cx| state.advance(rule, w, cx));
        self.flush_aggregates(w, out);
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

#[cfg(test)]
mod testing {
    //! What the rule kinds' unit tests share: events at known times and a context.

    use super::*;

    /// 2026-01-01T00:00:00Z, in seconds since the epoch.
    const BASE: i64 = 1_767_225_600;

    /// `s` seconds after 2026-01-01T00:00:00Z.
    pub(super) fn secs(s: i64) -> Nanos {
        (BASE + s) * 1_000_000_000
    }

    /// An event with `fields` at `s` seconds.
    pub(super) fn event(s: i64, fields: Value) -> Event {
        let mut e = Event::from_json(fields).expect("an object");
        e.set_timestamp(timestamp(secs(s)));
        e
    }

    /// `event` as a rule takes it: under query key `key`, with the watermark at
    /// `watermark` seconds.
    pub(super) fn seen<'a>(
        event: &'a Event,
        key: Option<&str>,
        watermark: Option<i64>,
    ) -> Seen<'a> {
        Seen {
            event,
            time: nanos(event.timestamp()),
            key: key.map(str::to_owned),
            watermark: watermark.map(secs),
        }
    }

    /// The matches' times (in seconds) and keys.
    pub(super) fn at(found: &[Match]) -> Vec<(i64, Option<String>)> {
        found
            .iter()
            .map(|m| ((m.time - secs(0)) / 1_000_000_000, m.key.clone()))
            .collect()
    }

    /// `Some(k)`, for a match's key.
    pub(super) fn key(k: &str) -> Option<String> {
        Some(k.to_owned())
    }

    /// What the engine gives a rule's kind: its limits, the rule's counters, whether it
    /// has a query key and since when it has watched the stream.
    pub(super) struct Harness {
        pub(super) config: EngineConfig,
        pub(super) stats: RuleStats,
        pub(super) keyed: bool,
        pub(super) observed_from: Option<Nanos>,
    }

    impl Harness {
        /// A rule with (`keyed`) or without a query key, watching from 0 s, under the
        /// default limits.
        pub(super) fn new(keyed: bool) -> Harness {
            Harness {
                config: EngineConfig::default(),
                stats: RuleStats::default(),
                keyed,
                observed_from: Some(secs(0)),
            }
        }

        /// Runs `step` with a context; returns the matches it found.
        pub(super) fn run(&mut self, step: impl FnOnce(&mut Ctx<'_>)) -> Vec<Match> {
            let mut cx = Ctx {
                config: &self.config,
                keyed: self.keyed,
                observed_from: self.observed_from,
                stats: &mut self.stats,
                found: Vec::new(),
            };
            step(&mut cx);
            cx.found
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::SpikeType;

    /// A new rule's state of every kind, as the state file holds it.
    #[test]
    fn each_kind_saves_its_state_under_its_type() {
        let tf = Duration::from_secs(60);
        let cases = [
            (RuleKind::Any, r#"{"type":"any"}"#),
            (
                RuleKind::Frequency {
                    num_events: 3,
                    timeframe: tf,
                },
                r#"{"type":"frequency","keys":{"map":{},"clock":0}}"#,
            ),
            (
                RuleKind::Flatline {
                    threshold: 1,
                    timeframe: tf,
                    forget_keys: false,
                },
                r#"{"type":"flatline","keys":{"map":{},"clock":0}}"#,
            ),
            (
                RuleKind::Spike {
                    spike_height: 2.0,
                    spike_type: SpikeType::Both,
                    timeframe: tf,
                    threshold_ref: 0,
                    threshold_cur: 0,
                    alert_on_new_data: false,
                },
                r#"{"type":"spike","windows":{"map":{},"clock":0},"filled_once":false,"moved_to":null,"all_moved_to":null}"#,
            ),
            (
                RuleKind::Change {
                    compare_key: vec!["status".into()],
                    ignore_null: false,
                    timeframe: None,
                },
                r#"{"type":"change","last":{"map":{},"clock":0},"waiting_events":{},"seq":0}"#,
            ),
            (
                RuleKind::NewTerm {
                    fields: vec![vec!["ns".into()]],
                    terms_window_size: tf,
                    learning_period: tf,
                    alert_on_missing_field: false,
                },
                r#"{"type":"new_term","terms":{"map":{},"clock":0}}"#,
            ),
        ];
        for (kind, saved) in &cases {
            let state = KindState::new(kind);
            assert!(state.matches_kind(kind));
            assert_eq!(serde_json::to_string(&state).unwrap(), *saved);
            let restored: KindState = serde_json::from_str(saved).unwrap();
            assert!(restored.matches_kind(kind), "{saved}");
            for (other, _) in cases.iter().filter(|(k, _)| k != kind) {
                assert!(!state.matches_kind(other));
            }
        }
    }

    /// Spike windows saved before they were kept are restored empty.
    #[test]
    fn spike_state_fields_have_defaults() {
        let restored: KindState = serde_json::from_str(r#"{"type":"spike"}"#).unwrap();
        let KindState::Spike(s) = restored else {
            panic!("not a spike state: {restored:?}");
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"windows":{"map":{},"clock":0},"filled_once":false,"moved_to":null,"all_moved_to":null}"#
        );
    }
}
