//! `change`: the `compare_key` value differs from the previous event's of the same query
//! key (within `timeframe`, if set), compared in event-time order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use logtide_event::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{show, span, Ctx, Keyed, Match, Nanos, Seen};
use crate::rule::RuleKind;

/// A `change` rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params<'a> {
    pub(super) compare_key: &'a [String],
    pub(super) ignore_null: bool,
    pub(super) timeframe: Option<Duration>,
}

impl Params<'_> {
    /// The parameters of a `change` rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Params<'_>> {
        match kind {
            RuleKind::Change {
                compare_key,
                ignore_null,
                timeframe,
            } => Some(Params {
                compare_key,
                ignore_null: *ignore_null,
                timeframe: *timeframe,
            }),
            _ => None,
        }
    }
}

/// A `change` rule: each query key's last value, and the events waiting for the
/// watermark so that they are compared in event-time order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Change {
    /// Per query key, the time and value of the last event compared.
    last: Keyed<(Nanos, Value)>,
    /// The waiting events' times and sequence numbers, oldest first.
    #[serde(skip)]
    waiting: BinaryHeap<Reverse<(Nanos, u64)>>,
    /// The waiting events by sequence number: time, query key, value and the event.
    #[serde(deserialize_with = "by_sequence")]
    waiting_events: HashMap<u64, Waiting>,
    /// The last sequence number given.
    seq: u64,
}

/// A waiting event: its time, query key, compared value and the event.
type Waiting = (Nanos, String, Value, Value);

/// Reads the waiting events back. The state file holds their sequence numbers as JSON
/// object keys, that is as text; read through [`super::KindState`]'s tag they stay text,
/// so they are parsed here.
fn by_sequence<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HashMap<u64, Waiting>, D::Error> {
    let text: HashMap<String, Waiting> = HashMap::deserialize(d)?;
    text.into_iter()
        .map(|(seq, e)| {
            seq.parse::<u64>().map(|seq| (seq, e)).map_err(|_| {
                serde::de::Error::custom(format!("waiting event {seq:?}: not a sequence number"))
            })
        })
        .collect()
}

impl Change {
    /// Puts the event in the waiting room (an event lacking a compared field is
    /// skipped with `ignore_null`). When the room is full, the oldest waiting event is
    /// compared now and counted ([`super::RuleStats::reorder_overflows`]). Late events
    /// are left out.
    pub(super) fn on_event(&mut self, p: &Params<'_>, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        if seen.late() {
            return;
        }
        let values: Vec<Value> = p
            .compare_key
            .iter()
            .map(|f| seen.event.get(f).cloned().unwrap_or(Value::Null))
            .collect();
        if p.ignore_null && values.iter().any(Value::is_null) {
            return;
        }
        let value = if values.len() == 1 {
            values.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        let t = seen.time;
        self.seq += 1;
        self.waiting.push(Reverse((t, self.seq)));
        let json = serde_json::to_value(seen.event).unwrap_or(Value::Null);
        self.waiting_events
            .insert(self.seq, (t, seen.state_key().to_owned(), value, json));
        if self.waiting.len() > cx.config.max_waiting {
            if let Some(Reverse((oldest, _))) = self.waiting.peek().copied() {
                cx.stats.reorder_overflows += 1;
                self.release(p, oldest, cx);
            }
        }
    }

    /// Compares the waiting events up to `w`, in event-time order: a match when an
    /// event's value differs from its key's last one.
    pub(super) fn release(&mut self, p: &Params<'_>, w: Nanos, cx: &mut Ctx<'_>) {
        while let Some(Reverse((t, seq))) = self.waiting.peek().copied() {
            if t > w {
                break;
            }
            self.waiting.pop();
            let Some((_, k, value, event)) = self.waiting_events.remove(&seq) else {
                continue;
            };
            let (prev, evicted) = self
                .last
                .entry(&k, cx.config.max_query_keys, || (Nanos::MIN, Value::Null));
            cx.stats.evicted_keys += evicted;
            let changed = prev.0 != Nanos::MIN
                && prev.1 != value
                && p.timeframe
                    .is_none_or(|tf| t.saturating_sub(prev.0) <= span(tf));
            if changed {
                cx.found.push(Match {
                    key: cx.keyed.then(|| k.clone()),
                    time: t,
                    description: format!(
                        "{} changed from {} to {}",
                        p.compare_key.join(", "),
                        show(&prev.1),
                        show(&value)
                    ),
                    event: Event::from_json(event).ok(),
                });
            }
            *prev = (t, value);
        }
    }

    /// Rebuilds the order of the waiting events, which the state file leaves out.
    pub(super) fn rebuild(&mut self) {
        self.waiting.clear();
        for (seq, (t, ..)) in self.waiting_events.iter() {
            self.waiting.push(Reverse((*t, *seq)));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, key, seen, Harness};

    fn status() -> Vec<String> {
        vec!["status".to_owned()]
    }

    /// Takes events (seconds, query key, fields) with no watermark; returns the matches.
    fn feed(
        c: &mut Change,
        p: &Params<'_>,
        h: &mut Harness,
        events: &[(i64, &str, Value)],
    ) -> Vec<Match> {
        let mut found = Vec::new();
        for (s, k, fields) in events {
            let e = event(*s, fields.clone());
            found.extend(h.run(|cx| c.on_event(p, &seen(&e, Some(k), None), cx)));
        }
        found
    }

    fn release(c: &mut Change, p: &Params<'_>, h: &mut Harness, w: Nanos) -> Vec<Match> {
        h.run(|cx| c.release(p, w, cx))
    }

    #[test]
    fn events_are_compared_in_event_time_order_when_released() {
        let keys = status();
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: None,
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        let found = feed(
            &mut c,
            &p,
            &mut h,
            &[
                (5, "a", json!({"status": "down"})),
                (0, "a", json!({"status": "up"})),
                (8, "a", json!({"status": "down"})),
                (1, "b", json!({"status": "down"})),
            ],
        );
        assert!(found.is_empty(), "nothing is compared before its time");
        assert!(release(&mut c, &p, &mut h, crate::engine::testing::secs(4)).is_empty());
        let found = release(&mut c, &p, &mut h, Nanos::MAX);
        assert_eq!(at(&found), [(5, key("a"))]);
        assert_eq!(found[0].description, "status changed from up to down");
        let e = found[0].event.as_ref().expect("the event is kept");
        assert_eq!(e.get("status"), Some(&json!("down")));
    }

    #[test]
    fn a_missing_value_is_null_unless_ignored() {
        let keys = status();
        for ignore_null in [false, true] {
            let p = Params {
                compare_key: &keys,
                ignore_null,
                timeframe: None,
            };
            let (mut c, mut h) = (Change::default(), Harness::new(true));
            feed(
                &mut c,
                &p,
                &mut h,
                &[
                    (0, "a", json!({"status": "up"})),
                    (1, "a", json!({})),
                    (2, "a", json!({"status": "up"})),
                ],
            );
            let found = release(&mut c, &p, &mut h, Nanos::MAX);
            if ignore_null {
                assert!(found.is_empty());
            } else {
                assert_eq!(at(&found), [(1, key("a")), (2, key("a"))]);
                assert_eq!(found[0].description, "status changed from up to null");
            }
        }
    }

    #[test]
    fn with_a_timeframe_only_a_recent_value_is_compared() {
        let keys = status();
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: Some(Duration::from_secs(10)),
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        feed(
            &mut c,
            &p,
            &mut h,
            &[
                (0, "a", json!({"status": "up"})),
                (11, "a", json!({"status": "down"})),
                (21, "a", json!({"status": "up"})),
            ],
        );
        let found = release(&mut c, &p, &mut h, Nanos::MAX);
        assert_eq!(at(&found), [(21, key("a"))]);
    }

    #[test]
    fn several_compare_keys_are_compared_together() {
        let keys = vec!["status".to_owned(), "code".to_owned()];
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: None,
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        feed(
            &mut c,
            &p,
            &mut h,
            &[
                (0, "a", json!({"status": "up", "code": 1})),
                (1, "a", json!({"status": "up", "code": 2})),
            ],
        );
        let found = release(&mut c, &p, &mut h, Nanos::MAX);
        assert_eq!(
            found[0].description,
            r#"status, code changed from ["up",1] to ["up",2]"#
        );
    }

    #[test]
    fn a_full_waiting_room_compares_the_oldest_early() {
        let keys = status();
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: None,
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        h.config.max_waiting = 1;
        let found = feed(
            &mut c,
            &p,
            &mut h,
            &[
                (0, "a", json!({"status": "up"})),
                (1, "a", json!({"status": "down"})),
                (2, "a", json!({"status": "down"})),
            ],
        );
        assert_eq!(at(&found), [(1, key("a"))]);
        assert_eq!(h.stats.reorder_overflows, 2);
    }

    #[test]
    fn late_events_are_left_out() {
        let keys = status();
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: None,
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        for (s, value) in [(20, "up"), (5, "down")] {
            let e = event(s, json!({"status": value}));
            h.run(|cx| c.on_event(&p, &seen(&e, Some("a"), Some(10)), cx));
        }
        assert!(release(&mut c, &p, &mut h, Nanos::MAX).is_empty());
    }

    #[test]
    fn the_waiting_order_is_rebuilt_after_a_restore() {
        let keys = status();
        let p = Params {
            compare_key: &keys,
            ignore_null: false,
            timeframe: None,
        };
        let (mut c, mut h) = (Change::default(), Harness::new(true));
        feed(
            &mut c,
            &p,
            &mut h,
            &[
                (0, "a", json!({"status": "up"})),
                (1, "a", json!({"status": "down"})),
            ],
        );
        let saved = serde_json::to_string(&c).unwrap();
        // Through the state file's tagged enum too, as the engine restores it.
        let tagged = serde_json::to_string(&super::super::KindState::Change(
            serde_json::from_str(&saved).unwrap(),
        ))
        .unwrap();
        match serde_json::from_str(&tagged).unwrap() {
            super::super::KindState::Change(mut c) => {
                c.rebuild();
                assert_eq!(
                    at(&release(&mut c, &p, &mut Harness::new(true), Nanos::MAX)),
                    [(1, key("a"))]
                );
            }
            other => panic!("{other:?}"),
        }
        let mut restored: Change = serde_json::from_str(&saved).unwrap();
        assert!(release(&mut restored, &p, &mut h, Nanos::MAX).is_empty());
        let mut restored: Change = serde_json::from_str(&saved).unwrap();
        restored.rebuild();
        assert_eq!(
            at(&release(&mut restored, &p, &mut h, Nanos::MAX)),
            [(1, key("a"))]
        );
    }
}
