//! `new_term`: a value of `fields` not seen within `terms_window_size`.

use std::time::Duration;

use logtide_event::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{show, span, Ctx, Keyed, Nanos, Seen};
use crate::rule::RuleKind;

/// A `new_term` rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Params<'a> {
    /// The term specs: one field, or several whose values are combined.
    pub(super) fields: &'a [Vec<String>],
    pub(super) terms_window_size: Duration,
    pub(super) learning_period: Duration,
    pub(super) alert_on_missing_field: bool,
}

impl Params<'_> {
    /// The parameters of a `new_term` rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Params<'_>> {
        match kind {
            RuleKind::NewTerm {
                fields,
                terms_window_size,
                learning_period,
                alert_on_missing_field,
            } => Some(Params {
                fields,
                terms_window_size: *terms_window_size,
                learning_period: *learning_period,
                alert_on_missing_field: *alert_on_missing_field,
            }),
            _ => None,
        }
    }
}

/// A `new_term` rule: when each term (by spec) was last seen.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct NewTerm {
    terms: Keyed<Nanos>,
}

impl NewTerm {
    /// A match per term of the event not seen within the window, once the learning
    /// period (from when the rule started watching) is over; terms seen during it are
    /// only learnt. Late events count too.
    pub(super) fn on_event(&mut self, p: &Params<'_>, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        let t = seen.time;
        let learning_until = cx
            .observed_from
            .unwrap_or(t)
            .saturating_add(span(p.learning_period));
        let window = span(p.terms_window_size);
        for spec in p.fields {
            let found_terms = terms_of(seen.event, spec);
            if found_terms.is_empty() {
                // As elastalert: a missing (or empty) field is no term, and a match of
                // its own with `alert_on_missing_field`.
                if p.alert_on_missing_field && t >= learning_until {
                    cx.found
                        .push(seen.matched(format!("Missing field {}", spec.join(", "))));
                }
                continue;
            }
            for term in found_terms {
                let id = format!("{}\u{1f}{term}", spec.join(","));
                let (last, evicted) = self.terms.entry(&id, cx.config.max_terms, || Nanos::MIN);
                cx.stats.evicted_keys += evicted;
                let new = *last == Nanos::MIN || t.saturating_sub(*last) > window;
                if *last == Nanos::MIN || t > *last {
                    *last = t;
                }
                if new && t >= learning_until {
                    cx.found
                        .push(seen.matched(format!("New term in {}: {term}", spec.join(", "))));
                }
            }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, seen, Harness};
    use crate::engine::Match;

    fn ns() -> Vec<Vec<String>> {
        vec![vec!["ns".to_owned()]]
    }

    fn params(fields: &[Vec<String>]) -> Params<'_> {
        Params {
            fields,
            terms_window_size: Duration::from_secs(100),
            learning_period: Duration::ZERO,
            alert_on_missing_field: false,
        }
    }

    /// Takes events (seconds, fields) with no query key and no watermark.
    fn feed(
        n: &mut NewTerm,
        p: &Params<'_>,
        h: &mut Harness,
        events: &[(i64, Value)],
    ) -> Vec<Match> {
        let mut found = Vec::new();
        for (s, fields) in events {
            let e = event(*s, fields.clone());
            found.extend(h.run(|cx| n.on_event(p, &seen(&e, None, None), cx)));
        }
        found
    }

    #[test]
    fn a_term_matches_when_first_seen() {
        let fields = ns();
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[
                (0, json!({"ns": "shop"})),
                (5, json!({"ns": "shop"})),
                (6, json!({"ns": "auth"})),
            ],
        );
        assert_eq!(at(&found), [(0, None), (6, None)]);
        assert_eq!(found[1].description, "New term in ns: auth");
    }

    #[test]
    fn a_term_not_seen_within_the_window_is_new_again() {
        let fields = ns();
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        let shop = json!({"ns": "shop"});
        // 100 s after 50 is still within the window; 251 is not.
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[
                (0, shop.clone()),
                (50, shop.clone()),
                (150, shop.clone()),
                (251, shop.clone()),
            ],
        );
        assert_eq!(at(&found), [(0, None), (251, None)]);
    }

    #[test]
    fn an_older_sighting_does_not_move_the_last_seen_time_back() {
        let fields = ns();
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        let shop = json!({"ns": "shop"});
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[(100, shop.clone()), (10, shop.clone()), (150, shop.clone())],
        );
        assert_eq!(at(&found), [(100, None)]);
    }

    #[test]
    fn terms_are_only_learnt_during_the_learning_period() {
        let fields = ns();
        let p = Params {
            learning_period: Duration::from_secs(60),
            alert_on_missing_field: true,
            ..params(&fields)
        };
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[
                (10, json!({"ns": "shop"})),
                (20, json!({})),
                (70, json!({"ns": "shop"})),
                (70, json!({"ns": "pay"})),
            ],
        );
        assert_eq!(at(&found), [(70, None)]);
        assert_eq!(found[0].description, "New term in ns: pay");
    }

    #[test]
    fn a_missing_or_falsy_field_is_a_match_of_its_own_when_asked() {
        let fields = ns();
        for alert_on_missing_field in [true, false] {
            let p = Params {
                alert_on_missing_field,
                ..params(&fields)
            };
            let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
            let found = feed(
                &mut n,
                &p,
                &mut h,
                &[
                    (0, json!({})),
                    (1, json!({"ns": ""})),
                    (2, json!({"ns": 0})),
                    (3, json!({"ns": false})),
                ],
            );
            if alert_on_missing_field {
                assert_eq!(found.len(), 4);
                assert!(found.iter().all(|m| m.description == "Missing field ns"));
            } else {
                assert!(found.is_empty());
            }
        }
    }

    #[test]
    fn combined_fields_and_arrays_give_one_term_each() {
        let fields = vec![vec!["ns".to_owned(), "pod".to_owned()]];
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[(0, json!({"ns": "shop", "pod": ["a", "b"]}))],
        );
        let texts: Vec<_> = found.iter().map(|m| m.description.as_str()).collect();
        assert_eq!(
            texts,
            [
                "New term in ns, pod: shop, a",
                "New term in ns, pod: shop, b"
            ]
        );
    }

    #[test]
    fn late_events_count_too() {
        let fields = ns();
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(true));
        let e = event(0, json!({"ns": "shop", "pod": "a"}));
        let found = h.run(|cx| n.on_event(&p, &seen(&e, Some("a"), Some(60)), cx));
        assert_eq!(at(&found), [(0, Some("a".to_owned()))]);
    }

    #[test]
    fn terms_beyond_the_limit_are_evicted_and_counted() {
        let fields = ns();
        let p = params(&fields);
        let (mut n, mut h) = (NewTerm::default(), Harness::new(false));
        h.config.max_terms = 1;
        let found = feed(
            &mut n,
            &p,
            &mut h,
            &[
                (0, json!({"ns": "shop"})),
                (1, json!({"ns": "auth"})),
                (2, json!({"ns": "shop"})),
            ],
        );
        assert_eq!(found.len(), 3, "shop was forgotten, so it is new again");
        assert_eq!(h.stats.evicted_keys, 2);
    }

    #[test]
    fn terms_of_an_event() {
        let spec = |fields: &[&str]| fields.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        let cases: &[(Value, &[&str], &[&str])] = &[
            (json!({"ns": "shop"}), &["ns"], &["shop"]),
            (json!({"ns": 3}), &["ns"], &["3"]),
            (json!({"ns": ["a", "b"]}), &["ns"], &["a", "b"]),
            (
                json!({"ns": "shop", "pod": "a"}),
                &["ns", "pod"],
                &["shop, a"],
            ),
            (
                json!({"ns": ["x", "y"], "pod": ["a", "b"]}),
                &["ns", "pod"],
                &["x, a", "x, b", "y, a", "y, b"],
            ),
            (json!({"ns": "shop"}), &["ns", "pod"], &[]),
            (json!({"ns": {}}), &["ns"], &[]),
            (json!({"k": {"ns": "deep"}}), &["k.ns"], &["deep"]),
        ];
        for (fields, spec_fields, want) in cases {
            let e = event(0, fields.clone());
            assert_eq!(
                terms_of(&e, &spec(spec_fields)),
                *want,
                "{fields} {spec_fields:?}"
            );
        }
    }
}
