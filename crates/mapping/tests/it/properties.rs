//! Properties of the normalizer over random documents, mappings and policies:
//! a normalized document is always accepted by the model (no document is lost),
//! normalizing is idempotent, and the counters add up.

use logtide_mapping::{Action, IndexMapping, MappingConfig, Normalizer, Policy, Stats};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &[
    "a",
    "b",
    "id",
    "n",
    "a.b",
    "x.y.z",
    "labels",
    "app",
    "app.kubernetes.io/name",
    "msg",
    "event",
    "_conflicts",
    "a..b",
    " ",
];
const STRINGS: &[&str] = &[
    "x",
    "12",
    "5.0",
    "true",
    "false",
    "",
    "abc",
    "2015-01-01",
    "2015/09/02",
    "1e39",
    "::1",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        prop_oneof![Just(1.5f64), Just(-0.25), Just(1.0e39), Just(3.0)].prop_map(|f| json!(f)),
        proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(KEYS), inner, 0..4).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(proptest::sample::select(KEYS), value(), 0..5).prop_map(|m| {
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Coerce),
        Just(Policy::Rename),
        Just(Policy::Quarantine),
        Just(Policy::Stringify)
    ]
}

fn normalizer(default: Policy, rule: Option<Policy>) -> Normalizer {
    let rules = match rule {
        Some(p) => json!([{"fields": "a.*", "policy": p.as_str()}]),
        None => json!([]),
    };
    MappingConfig::from_json(&json!({"default": default.as_str(), "rules": rules}))
        .unwrap()
        .build()
        .unwrap()
}

/// The index a document meets: empty, made from the template, or strict; then whatever
/// earlier documents Elasticsearch accepted as they were.
fn start(kind: u8, n: &Normalizer, history: &[Value]) -> IndexMapping {
    let mut m = match kind {
        0 => IndexMapping::default(),
        1 => IndexMapping::from_index_template(&n.index_template(&["t"], 1)).unwrap(),
        _ => {
            let t = n.index_template(&["t"], 1);
            let mut body = t["template"]["mappings"].clone();
            body["dynamic"] = json!("strict");
            body["properties"]["a"] = json!({"properties": {"b": {"type": "long"}}});
            body["properties"]["id"] = json!({"type": "keyword"});
            IndexMapping::from_mappings(&body).unwrap()
        }
    };
    for doc in history {
        let _ = m.check(doc);
    }
    m
}

proptest! {
    // Failing cases are kept next to this file, in `properties.proptest-regressions`.
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::with_failure_persistence(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))
    })]

    #[test]
    fn normalized_documents_are_accepted_and_stable(
        default in policy(),
        rule in proptest::option::of(policy()),
        kind in 0u8..3,
        history in proptest::collection::vec(document(), 0..4),
        docs in proptest::collection::vec(document(), 1..4),
    ) {
        let n = normalizer(default, rule);
        let mut m = start(kind, &n, &history);
        let mut stats = Stats::default();
        let mut changes = 0u64;
        for original in docs {
            let before = m.clone();
            let mut doc = original.clone();
            let outcome = n.normalize_value(&mut m, &mut doc);
            stats.record(&outcome);
            changes += outcome.changes.len() as u64;
            prop_assert!(outcome.unresolved.is_none(), "unresolved {:?} for {}", outcome.unresolved, original);
            prop_assert!(before.clone().predict(&doc).is_accepted(), "rejected after normalizing: {} -> {}", original, doc);
            prop_assert!(m.clone().predict(&doc).is_accepted(), "the learned mapping rejects it: {}", doc);
            if outcome.changes.is_empty() {
                prop_assert_eq!(&doc, &original);
            }
            for c in &outcome.changes {
                prop_assert_eq!(c.value.is_some(), c.action == Action::Drop);
                prop_assert_eq!(c.to.is_some(), matches!(c.action, Action::Rename | Action::Quarantine));
            }
            // Idempotent, against the mapping it met and the one it left.
            for mut mapping in [before, m.clone()] {
                let mut again = doc.clone();
                let second = n.normalize_value(&mut mapping, &mut again);
                prop_assert!(second.changes.is_empty(), "second pass changed {:?} in {}", second.changes, doc);
                prop_assert_eq!(&again, &doc);
            }
        }
        prop_assert_eq!(stats.changes, changes);
        prop_assert_eq!(stats.totals.total(), stats.changes);
        prop_assert_eq!(stats.fields.values().map(|f| f.total()).sum::<u64>() + stats.untracked, stats.changes);
    }

    #[test]
    fn the_model_never_panics_and_rejections_leave_no_trace(doc in value(), history in proptest::collection::vec(document(), 0..3)) {
        let mut m = start(0, &normalizer(Policy::Coerce, None), &history);
        let before = m.field_count();
        let rendered = m.to_json();
        if !m.check(&doc).is_accepted() {
            prop_assert_eq!(m.field_count(), before);
            prop_assert_eq!(m.to_json(), rendered);
        }
    }
}
