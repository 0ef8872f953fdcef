//! The normalizer: each policy on the conflicts it is for, the fallbacks, the records,
//! the generated template, and the `mapping check` report.

use logtide_event::Event;
use logtide_mapping::{Action, Checker, IndexMapping, MappingConfig, Normalizer, Stats};
use serde_json::{json, Value};

fn normalizer(config: Value) -> Normalizer {
    MappingConfig::from_json(&config).unwrap().build().unwrap()
}

fn mapping(mappings: Value) -> IndexMapping {
    IndexMapping::from_mappings(&mappings).unwrap()
}

/// Normalizes `doc` and checks that the result is accepted and normalizing it again
/// changes nothing.
fn normalize(
    n: &Normalizer,
    m: &mut IndexMapping,
    mut doc: Value,
) -> (Value, Vec<(String, Action, Option<String>)>) {
    let before = m.clone();
    let outcome = n.normalize_value(m, &mut doc);
    assert!(outcome.unresolved.is_none(), "unresolved: {outcome:?}");
    assert!(
        m.predict(&doc).is_accepted(),
        "normalized document rejected: {doc}"
    );
    let mut again = doc.clone();
    let second = n.normalize_value(&mut before.clone(), &mut again);
    assert!(
        second.changes.is_empty() && again == doc,
        "not idempotent: {second:?}"
    );
    let changes = outcome
        .changes
        .iter()
        .map(|c| (c.field.clone(), c.action, c.to.clone()))
        .collect();
    (doc, changes)
}

#[test]
fn accepted_documents_are_not_touched() {
    let n = normalizer(json!({}));
    let mut m = IndexMapping::default();
    let doc = json!({"message-json": {"id": 1, "msg": "x"}, "n": [1, 2]});
    let (out, changes) = normalize(&n, &mut m, doc.clone());
    assert_eq!(out, doc);
    assert!(changes.is_empty());
    assert_eq!(m.field("message-json.id"), Some(json!({"type": "long"})));
}

#[test]
fn coerce_converts_without_loss_or_quarantines() {
    let n = normalizer(json!({"default": "coerce"}));
    let mut m = mapping(json!({"properties": {
        "strict_n": {"type": "long", "coerce": false},
        "flag": {"type": "boolean"},
        "n": {"type": "long"},
        "msg": {"type": "keyword"}
    }}));
    let (out, changes) = normalize(
        &n,
        &mut m,
        json!({"strict_n": "12", "flag": "true", "msg": {"a": 1}, "n": "abc"}),
    );
    assert_eq!(out["strict_n"], json!(12));
    assert_eq!(out["msg"], json!("{\"a\":1}"));
    assert!(out.get("n").is_none());
    assert_eq!(out["_conflicts"]["n"], json!("\"abc\""));
    assert_eq!(out["event"]["mapping_quarantined"], json!(true));
    assert_eq!(
        changes,
        vec![
            ("msg".into(), Action::Coerce, None),
            ("n".into(), Action::Quarantine, Some("_conflicts.n".into())),
            ("strict_n".into(), Action::Coerce, None),
        ]
    );
    let records = out["event"]["mapping_conflicts"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["field"], json!("n"));
    assert_eq!(records[1]["action"], json!("quarantine"));
    assert!(records[1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("failed to parse field [n] of type [long]"));
    // "flag": "true" is accepted by a boolean field as it is: not a conflict.
    assert_eq!(out["flag"], json!("true"));
    // A mixed array that the document itself mapped becomes strings.
    let (out, changes) = normalize(&n, &mut m, json!({"mixed": [10, "ten", true]}));
    assert_eq!(out["mixed"], json!(["10", "ten", "true"]));
    assert_eq!(changes[0].1, Action::Coerce);
    assert_eq!(m.field("mixed").unwrap()["type"], json!("text"));
}

#[test]
fn rename_moves_to_a_sibling_named_by_type() {
    let n = normalizer(
        json!({"default": "quarantine", "rules": [{"fields": ["message-json.*", "kubernetes.labels.*"], "policy": "rename"}]}),
    );
    let mut m = mapping(json!({"properties": {
        "message-json": {"properties": {"id": {"type": "long"}, "err": {"type": "text"}, "user": {"properties": {"name": {"type": "keyword"}}}}},
        "kubernetes": {"properties": {"labels": {"properties": {"app": {"type": "keyword"}}}}}
    }}));
    let (out, changes) = normalize(
        &n,
        &mut m,
        json!({
            "message-json": {"id": "a-1", "err": {"code": 5}, "user": "bob"},
            "kubernetes": {"labels": {"app.kubernetes.io/name": "shop"}}
        }),
    );
    assert_eq!(
        out["message-json"],
        json!({"id_str": "a-1", "err_obj": {"code": 5}, "user_str": "bob"})
    );
    assert_eq!(
        out["kubernetes"]["labels"],
        json!({"app_obj.kubernetes.io/name": "shop"})
    );
    let targets: Vec<_> = changes.iter().map(|c| c.2.clone().unwrap()).collect();
    assert_eq!(
        targets,
        [
            "kubernetes.labels.app_obj.kubernetes.io/name",
            "message-json.err_obj",
            "message-json.id_str",
            "message-json.user_str"
        ]
    );
    assert!(changes.iter().all(|c| c.1 == Action::Rename));
    // The renamed field is mapped now; a later clash of the renamed field is quarantined.
    assert_eq!(
        m.field("message-json.id_str").unwrap()["type"],
        json!("text")
    );
    let (out, changes) = normalize(
        &n,
        &mut m,
        json!({"message-json": {"id": "b", "id_str": "taken"}}),
    );
    assert_eq!(
        changes,
        vec![(
            "message-json.id".into(),
            Action::Quarantine,
            Some("_conflicts.message-json.id".into())
        )]
    );
    assert_eq!(out["_conflicts"]["message-json.id"], json!("\"b\""));
}

#[test]
fn quarantine_collects_values_of_one_path() {
    let n = normalizer(json!({"default": "quarantine"}));
    let mut m = mapping(json!({"properties": {"list": {"properties": {"id": {"type": "long"}}}}}));
    let (out, changes) = normalize(
        &n,
        &mut m,
        json!({"list": [{"id": "x"}, {"id": 2}, {"id": "y"}]}),
    );
    assert_eq!(out["list"], json!([{}, {"id": 2}, {}]));
    assert_eq!(out["_conflicts"]["list.id"], json!("[\"x\",\"y\"]"));
    assert_eq!(changes.len(), 2);
}

#[test]
fn stringify_turns_leaves_into_strings() {
    let n = normalizer(json!({"rules": [{"fields": "message-json.*", "policy": "stringify"}]}));
    let template = n.index_template(&["logtide-*"], 200);
    let mut m = IndexMapping::from_index_template(&template).unwrap();
    let (out, changes) = normalize(
        &n,
        &mut m,
        json!({"message-json": {"n": 1, "f": 1.5, "b": true, "d": "2015-01-01", "list": [1, "a"], "o": {"deep": 2}}, "other": 5}),
    );
    assert_eq!(
        out["message-json"],
        json!({"n": "1", "f": "1.5", "b": "true", "d": "2015-01-01", "list": ["1", "a"], "o": {"deep": "2"}})
    );
    assert_eq!(out["other"], json!(5));
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert!(changes.iter().all(|c| c.1 == Action::Stringify));
    for path in [
        "message-json.n",
        "message-json.d",
        "message-json.list",
        "message-json.o.deep",
    ] {
        assert_eq!(
            m.field(path),
            Some(json!({"type": "keyword", "ignore_above": 1024})),
            "{path}"
        );
    }
    // An object where a keyword is mapped becomes its JSON text.
    let (out, changes) = normalize(&n, &mut m, json!({"message-json": {"n": {"x": 1}}}));
    assert_eq!(out["message-json"]["n"], json!("{\"x\":\"1\"}"));
    assert_eq!(changes.last().unwrap().1, Action::Stringify);
}

#[test]
fn fallbacks_when_quarantine_is_impossible() {
    // `_conflicts` already mapped as a keyword: quarantined values cannot go there, so
    // they are dropped and kept in the record.
    let n = normalizer(json!({"default": "quarantine"}));
    let mut m =
        mapping(json!({"properties": {"_conflicts": {"type": "keyword"}, "n": {"type": "long"}}}));
    let (out, changes) = normalize(&n, &mut m, json!({"n": "abc"}));
    assert!(out.get("n").is_none() && out.get("_conflicts").is_none());
    assert_eq!(changes, vec![("n".into(), Action::Drop, None)]);
    assert_eq!(
        out["event"]["mapping_conflicts"][0]["value"],
        json!("\"abc\"")
    );
    // Strict mapping without the template: neither the field nor its quarantine may be
    // added, nor the record; the change is still counted.
    let mut m = mapping(json!({"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}));
    let mut doc = json!({"a": "x", "b": 1});
    let outcome = n.normalize_value(&mut m, &mut doc);
    assert_eq!(doc, json!({"a": "x"}));
    assert!(!outcome.recorded && !outcome.is_lossless());
    let mut stats = Stats::default();
    stats.record(&outcome);
    assert_eq!((stats.records_not_written, stats.totals.dropped), (1, 1));
    // With the generated template, the conflicts object takes anything, even under strict.
    let template = n.index_template(&["x"], 1);
    let mut body = template["template"]["mappings"].clone();
    body["dynamic"] = json!("strict");
    body["properties"]["a"] = json!({"type": "keyword"});
    let mut m = IndexMapping::from_mappings(&body).unwrap();
    let (out, _) = normalize(&n, &mut m, json!({"a": "x", "b": 1}));
    assert_eq!(out["_conflicts"]["b"], json!("1"));
    assert_eq!(out["event"]["mapping_quarantined"], json!(true));
}

#[test]
fn total_fields_limit_quarantines_what_does_not_fit() {
    let n = normalizer(json!({"default": "coerce"}));
    let template = n.index_template(&["x"], 1);
    let mut m = IndexMapping::from_index_template(&template).unwrap();
    let base = m.field_count() as u64;
    m.set_settings(logtide_mapping::IndexSettings {
        total_fields_limit: base + 3,
        ..Default::default()
    });
    let (out, changes) = normalize(&n, &mut m, json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}));
    assert_eq!(out["a"], json!(1));
    assert_eq!(out["c"], json!(3));
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(out["_conflicts"]["d"], json!("4"));
    assert_eq!(out["_conflicts"]["e"], json!("5"));
}

#[test]
fn events_keep_their_timestamp() {
    let n = normalizer(json!({"default": "rename"}));
    let mut m =
        mapping(json!({"properties": {"@timestamp": {"type": "date"}, "level": {"type": "long"}}}));
    let mut event = Event::from_json(
        json!({"@timestamp": "2024-01-02T03:04:05Z", "level": "info", "@metadata": {"_id": "x"}}),
    )
    .unwrap();
    let outcome = n.normalize_event(&mut m, &mut event);
    assert!(outcome.unresolved.is_none() && outcome.recorded);
    assert_eq!(event.get("level_str"), Some(&json!("info")));
    assert_eq!(event.get("@metadata._id"), Some(&json!("x")));
    // An index that mapped @timestamp as a number: nothing in the fields can fix that.
    let mut m = mapping(json!({"properties": {"@timestamp": {"type": "long"}}}));
    let mut event =
        Event::from_json(json!({"@timestamp": "2024-01-02T03:04:05Z", "a": 1})).unwrap();
    let outcome = n.normalize_event(&mut m, &mut event);
    assert_eq!(
        outcome.unresolved.map(|r| r.field),
        Some("@timestamp".to_owned())
    );
    assert_eq!(event.get("a"), Some(&json!(1)));
}

#[test]
fn the_index_template_goes_with_the_policies() {
    let n = normalizer(
        json!({"default": "rename", "total_fields_limit": 2000, "rules": [{"fields": "message-json.*", "policy": "stringify"}]}),
    );
    let t = n.index_template(&["logtide-*"], 200);
    assert_eq!(t["index_patterns"], json!(["logtide-*"]));
    assert_eq!(t["priority"], json!(200));
    assert_eq!(
        t["template"]["settings"]["index"]["mapping"]["total_fields"]["limit"],
        json!(2000)
    );
    let props = &t["template"]["mappings"]["properties"];
    assert_eq!(
        props["_conflicts"],
        json!({"type": "object", "enabled": false})
    );
    assert_eq!(
        props["event"]["properties"]["mapping_quarantined"],
        json!({"type": "boolean"})
    );
    assert_eq!(
        props["event"]["properties"]["mapping_conflicts"]["properties"]["action"],
        json!({"type": "keyword"})
    );
    let names: Vec<String> = t["template"]["mappings"]["dynamic_templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_object().unwrap().keys().next().unwrap().clone())
        .collect();
    assert!(
        names.contains(&"logtide_stringify_0_0_date".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"logtide_rename_1_0_num_long".to_owned()),
        "{names:?}"
    );
    // The template is what a new index starts with: the rename targets get fixed types.
    let mut m = IndexMapping::from_index_template(&t).unwrap();
    assert_eq!(m.settings().total_fields_limit, 2000);
    assert!(m.check(&json!({"id": 1})).is_accepted());
    let (out, _) = normalize(&n, &mut m, json!({"id": "x"}));
    assert_eq!(out["id_str"], json!("x"));
    assert_eq!(
        m.field("id_str"),
        Some(json!({"type": "keyword", "ignore_above": 1024}))
    );
    let (_, changes) = normalize(&n, &mut m, json!({"id": "2015-01-01"}));
    assert_eq!(changes[0].2.as_deref(), Some("id_str"));
}

#[test]
fn check_reports_as_is_and_normalized() {
    let n = normalizer(json!({"rules": [{"fields": "message-json.*", "policy": "rename"}]}));
    let mut checker = Checker::new(n, IndexMapping::default());
    let docs = [
        json!({"message-json": {"id": 1}}),
        json!({"message-json": {"id": "x"}}),
        json!({"message-json": {"id": 2}}),
    ];
    let reports: Vec<Value> = docs
        .iter()
        .map(|d| serde_json::to_value(checker.check(d)).unwrap())
        .collect();
    assert_eq!(
        reports[0],
        json!({"doc": 1, "accepted": true, "field": null, "reason": null, "error_type": null, "status": null, "changes": [], "normalized_accepted": true})
    );
    assert_eq!(reports[1]["accepted"], json!(false));
    assert_eq!(reports[1]["field"], json!("message-json.id"));
    assert_eq!(reports[1]["status"], json!(400));
    assert_eq!(
        reports[1]["error_type"],
        json!("document_parsing_exception")
    );
    assert_eq!(reports[1]["changes"][0]["action"], json!("rename"));
    assert_eq!(reports[1]["changes"][0]["to"], json!("message-json.id_str"));
    assert_eq!(reports[2]["accepted"], json!(true));
    assert_eq!(
        checker
            .normalized_mapping()
            .field("message-json.id_str")
            .unwrap()["type"],
        json!("text")
    );
    assert_eq!(checker.as_is_mapping().field("message-json.id_str"), None);
}
