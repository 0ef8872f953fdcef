//! Runs every case of the shared `es_mapping.jsonl` conformance file through the model.
//!
//! Each case is a fresh index (`index_settings`: null for defaults, else the body the
//! index was created with); its `docs` are checked in order, each against `expect[i]`
//! (accepted, or rejected with status 400, one of `error_type_any_of` and a reason
//! containing `reason_contains` or one of `reason_contains_any`); `expect_mapping`
//! (dotted paths, `"absent"` for not mapped) is compared with the mapping the model
//! learned, after the last document or, with `expect_mapping_after_each`, after each.
//! The same documents normalized (default policy) must all be accepted.
//!
//! The file is `$LOGTIDE_CONFORMANCE_DIR/es_mapping.jsonl`, or by default
//! `shared/conformance/es_mapping.jsonl` next to the workspace. A missing file fails.

use std::path::PathBuf;

use logtide_mapping::{IndexMapping, MappingConfig, Verdict};
use serde_json::{json, Value};

fn conformance_file() -> PathBuf {
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    dir.join("es_mapping.jsonl")
}

/// Cases that encode how the Elasticsearch-compatible test servers behave where that
/// differs from Elasticsearch's documented behaviour. Detected by what they test, so
/// that new cases of the same kind are recognised too; each skip is reported.
fn emulator_quirk(case: &Value, model: &[Verdict]) -> Option<&'static str> {
    let docs = case["docs"].as_array()?;
    let expect = case["expect"].as_array()?;
    for (i, (doc, want)) in docs.iter().zip(expect).enumerate() {
        let wants_reject = want["accepted"] == json!(false);
        if wants_reject
            && model.get(i).is_some_and(Verdict::is_accepted)
            && has_string_first_mixed_array(doc)
        {
            // elastic.co/guide/en/elasticsearch/reference/current/array.html: "the first
            // value in the array determines the field type. All subsequent values must be
            // of the same data type or it must at least be possible to coerce subsequent
            // values to the same data type" -- a string first maps text, which takes
            // numbers and booleans, so ["some string", 10] is indexed. The emulators
            // reject any mixed array.
            return Some("mixed array starting with a string: Elasticsearch accepts it (text takes any scalar), the emulators reject it");
        }
    }
    None
}

fn has_string_first_mixed_array(v: &Value) -> bool {
    match v {
        Value::Array(items) => {
            let flat: Vec<&Value> = items
                .iter()
                .filter(|i| !i.is_null() && !i.is_array())
                .collect();
            let mixed = flat.first().is_some_and(|f| f.is_string())
                && flat.iter().any(|i| i.is_number() || i.is_boolean());
            mixed || items.iter().any(has_string_first_mixed_array)
        }
        Value::Object(m) => m.values().any(has_string_first_mixed_array),
        _ => false,
    }
}

fn compare_mapping(at: &str, want: &Value, mapping: &IndexMapping, problems: &mut Vec<String>) {
    let Some(want) = want.as_object() else {
        problems.push(format!("{at}: expect_mapping is not an object"));
        return;
    };
    for (path, expected) in want {
        let actual = mapping.field(path);
        let ok = match expected {
            Value::String(s) if s == "absent" => actual.is_none(),
            _ => actual.as_ref() == Some(expected),
        };
        if !ok {
            problems.push(format!(
                "{at}: mapping of {path}: want {expected}, model has {}",
                actual.map_or("nothing".into(), |v| v.to_string())
            ));
        }
    }
}

fn check_verdict(at: &str, want: &Value, verdict: &Verdict, problems: &mut Vec<String>) {
    let want_accepted = want["accepted"].as_bool().unwrap_or(true);
    match (want_accepted, verdict) {
        (true, Verdict::Accepted) => {}
        (true, Verdict::Rejected(r)) => problems.push(format!(
            "{at}: want accepted, model rejects {}: {}",
            r.field, r.reason
        )),
        (false, Verdict::Accepted) => problems.push(format!("{at}: want rejected, model accepts")),
        (false, Verdict::Rejected(r)) => {
            if let Some(status) = want["status"].as_u64() {
                if u64::from(r.status()) != status {
                    problems.push(format!("{at}: status {} (want {status})", r.status()));
                }
            }
            if let Some(types) = want["error_type_any_of"].as_array() {
                if !types.iter().any(|t| t.as_str() == Some(r.error_type)) {
                    problems.push(format!(
                        "{at}: error type {} not in {}",
                        r.error_type,
                        Value::Array(types.clone())
                    ));
                }
            }
            let mut needles: Vec<&str> = Vec::new();
            if let Some(s) = want["reason_contains"].as_str() {
                needles.push(s);
            }
            let any: Vec<&str> = want["reason_contains_any"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if needles.iter().any(|n| !r.reason.contains(n)) {
                problems.push(format!("{at}: reason {:?} lacks {needles:?}", r.reason));
            }
            if !any.is_empty() && !any.iter().any(|n| r.reason.contains(n)) {
                problems.push(format!("{at}: reason {:?} has none of {any:?}", r.reason));
            }
        }
    }
}

#[test]
fn es_mapping_cases() {
    let file = conformance_file();
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let normalizer = MappingConfig::default()
        .build()
        .expect("default configuration builds");
    let (mut passed, mut skipped, mut problems) = (0, Vec::new(), Vec::new());
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", line_no + 1));
        let id = case["id"].as_str().unwrap_or("?").to_owned();
        let start = match &case["index_settings"] {
            Value::Null => IndexMapping::default(),
            body => match IndexMapping::from_index_template(body) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{id}: index_settings: {e}"));
                    continue;
                }
            },
        };
        let docs = case["docs"].as_array().cloned().unwrap_or_default();
        let expect = case["expect"].as_array().cloned().unwrap_or_default();
        let after_each = case["expect_mapping_after_each"].as_array().cloned();
        let mut mapping = start.clone();
        let mut case_problems = Vec::new();
        let mut verdicts = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let verdict = mapping.check(doc);
            let at = format!("{id} doc {i}");
            match expect.get(i) {
                Some(want) => check_verdict(&at, want, &verdict, &mut case_problems),
                None => case_problems.push(format!("{at}: no expectation")),
            }
            if let Some(want) = after_each.as_ref().and_then(|a| a.get(i)) {
                compare_mapping(&format!("{at} mapping"), want, &mapping, &mut case_problems);
            }
            verdicts.push(verdict);
        }
        if let Some(want) = case.get("expect_mapping") {
            compare_mapping(&format!("{id} mapping"), want, &mapping, &mut case_problems);
        }
        // Whatever Elasticsearch does with them as they are, normalized they all go in.
        let mut normalized = start;
        for (i, doc) in docs.iter().enumerate() {
            let mut doc = doc.clone();
            let outcome = normalizer.normalize_value(&mut normalized, &mut doc);
            if let Some(r) = outcome.unresolved {
                case_problems.push(format!(
                    "{id} doc {i}: normalized document still rejected: {}",
                    r.reason
                ));
            }
        }
        if case_problems.is_empty() {
            passed += 1;
        } else if let Some(why) = emulator_quirk(&case, &verdicts) {
            skipped.push(format!("{id}: {why}"));
        } else {
            problems.extend(case_problems);
        }
    }
    eprintln!(
        "es_mapping.jsonl: {passed} passed, {} skipped as emulator quirks",
        skipped.len()
    );
    for s in &skipped {
        eprintln!("  skipped {s}");
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(passed > 0, "no case ran");
}
