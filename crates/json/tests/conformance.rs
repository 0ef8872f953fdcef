//! Runs every case of the shared `decode_json.jsonl` conformance file through
//! `decode_json_fields`, and checks the seed configuration's two-processor chain.
//!
//! The file is `$LOGTIDE_CONFORMANCE_DIR/decode_json.jsonl`, or by default
//! `shared/conformance/decode_json.jsonl` next to the workspace. A missing file fails.

use std::path::PathBuf;

use logtide_event::{Event, Timestamp};
use logtide_json::{Error, Processors};
use regex::Regex;
use serde_json::{json, Map, Value};

fn conformance_file() -> PathBuf {
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    dir.join("decode_json.jsonl")
}

/// Compares `actual` with `expect`, where `{"$regex": "..."}` in `expect` matches a string.
fn compare(at: &str, expect: &Value, actual: &Value, problems: &mut Vec<String>) {
    match (expect, actual) {
        (Value::Object(e), _) if e.len() == 1 && e.contains_key("$regex") => {
            let pattern = e["$regex"].as_str().expect("$regex holds a string");
            let re = Regex::new(pattern).expect("$regex compiles");
            match actual {
                Value::String(s) if re.is_match(s) => {}
                _ => problems.push(format!("{at}: {actual} does not match /{pattern}/")),
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match a.get(k) {
                    Some(av) => compare(&format!("{at}.{k}"), v, av, problems),
                    None => problems.push(format!("{at}.{k}: missing, expected {v}")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                problems.push(format!("{at}.{k}: unexpected {}", a[k]));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(&format!("{at}[{i}]"), ev, av, problems);
            }
        }
        _ => {
            if expect != actual {
                problems.push(format!("{at}: expected {expect}, got {actual}"));
            }
        }
    }
}

fn instant(v: &Value) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(v.as_str()?.as_bytes()).ok()
}

/// Runs one case; returns what is wrong with the result.
fn run_case(case: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let config = json!([{ "decode_json_fields": case["config"].clone() }]);
    let chain = match Processors::from_config(&config) {
        Ok(chain) => chain,
        Err(e) => return vec![format!("config rejected: {e}")],
    };
    let mut event = match Event::from_json(case["input"].clone()) {
        Ok(event) => event,
        Err(e) => return vec![format!("input rejected: {e}")],
    };
    let outcome = chain.run(&mut event);
    if outcome.is_dropped() {
        problems.push("event dropped".to_owned());
    }

    let Value::Object(mut actual) = serde_json::to_value(&event).expect("an event serializes")
    else {
        unreachable!("an event serializes to an object");
    };
    let mut expect: Map<String, Value> = case["expect"]
        .as_object()
        .expect("expect is an object")
        .clone();

    // `@timestamp` counts only when expected, and as an instant.
    let actual_time = actual.remove("@timestamp");
    if let Some(want) = expect.remove("@timestamp") {
        let got = actual_time.as_ref().and_then(instant);
        if got.is_none() || got != instant(&want) {
            problems.push(format!("@timestamp: expected {want}, got {actual_time:?}"));
        }
    }
    // An empty `@metadata` is the same as none.
    for map in [&mut actual, &mut expect] {
        if map
            .get("@metadata")
            .is_some_and(|m| m.as_object().is_some_and(Map::is_empty))
        {
            map.remove("@metadata");
        }
    }
    compare(
        "",
        &Value::Object(expect),
        &Value::Object(actual.clone()),
        &mut problems,
    );

    if let Some(types) = case.get("expect_types").and_then(Value::as_object) {
        for (path, want) in types {
            let got = logtide_event::path::get(&actual, path).and_then(Value::as_number);
            let ok = match (want.as_str(), got) {
                (Some("int"), Some(n)) => n.is_i64() || n.is_u64(),
                (Some("float"), Some(n)) => n.is_f64(),
                _ => false,
            };
            if !ok {
                problems.push(format!("{path}: expected type {want}, got {got:?}"));
            }
        }
    }

    if let Some(want) = case.get("expect_processor_error").and_then(Value::as_str) {
        let errors: Vec<String> = outcome
            .errors()
            .iter()
            .map(|e| e.error().to_string())
            .collect();
        if !errors.iter().any(|e| e.contains(want)) {
            problems.push(format!("expected processor error {want:?}, got {errors:?}"));
        }
    }
    problems
}

#[test]
fn every_decode_json_case_passes() {
    let file = conformance_file();
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read conformance file {}: {e}", file.display()));
    let mut cases = 0;
    let mut failures = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", file.display(), n + 1));
        let id = case["id"].as_str().unwrap_or("?").to_owned();
        cases += 1;
        let problems = run_case(&case);
        if !problems.is_empty() {
            failures.push(format!("{id}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(cases > 0, "{} has no cases", file.display());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The seed configuration: decode `message` into `message-json`, then drop `message` when
/// that worked.
fn seed_chain() -> Processors {
    Processors::from_config(&json!([
        {"decode_json_fields": {
            "fields": ["message"], "process_array": false, "max_depth": 5,
            "target": "message-json", "overwrite_keys": true,
        }},
        {"drop_fields": {"fields": ["message"], "when": {"has_fields": ["message-json"]}}},
    ]))
    .expect("the seed chain builds")
}

#[test]
fn seed_chain_decodes_json_and_drops_the_text() {
    let chain = seed_chain();
    let base = json!({
        "@timestamp": "2024-05-06T07:08:09.123456789Z",
        "stream": "stdout",
        "kubernetes": {"pod": {"name": "shop-1"}, "namespace": "prod"},
    });
    // (input message, expected fields other than the base ones, expected error substrings)
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            r#"{"level":"info","msg":"GET /","status":200,"took":1.5,"@timestamp":"2020-01-01T00:00:00Z"}"#,
            json!({"message-json": {"level": "info", "msg": "GET /", "status": 200, "took": 1.5, "@timestamp": "2020-01-01T00:00:00Z"}}),
            vec![],
        ),
        (
            r#"{"log":"{\"inner\":{\"deep\":\"[1,2]\"}}","list":"[1]"}"#,
            json!({"message-json": {"log": {"inner": {"deep": "[1,2]"}}, "list": "[1]"}}),
            vec![],
        ),
        (
            "2024-05-06 07:08:09 INFO plain text",
            json!({"message": "2024-05-06 07:08:09 INFO plain text"}),
            vec![r#"parsing field "message" as JSON: "#],
        ),
        (
            "11:38:04,323 |-INFO testing",
            json!({"message": "11:38:04,323 |-INFO testing"}),
            vec!["multiple json elements found"],
        ),
        (
            "[1,2,3]",
            json!({"message": "[1,2,3]"}),
            vec!["processing skipped"],
        ),
        (
            "\"just a string\"",
            json!({"message-json": "just a string"}),
            vec![],
        ),
    ];
    for (message, want_fields, want_errors) in cases {
        let mut input = base.clone();
        input["message"] = json!(message);
        let mut event = Event::from_json(input).unwrap();
        let outcome = chain.run(&mut event);
        assert!(!outcome.is_dropped(), "{message}");

        let mut want = base.clone();
        for (k, v) in want_fields.as_object().unwrap() {
            want[k] = v.clone();
        }
        let mut got = serde_json::to_value(&event).unwrap();
        // The event timestamp is the input's: the decoded `@timestamp` stays in message-json.
        got["@timestamp"] = json!(instant(&got["@timestamp"]).map(|t| t.unix_nanos().to_string()));
        want["@timestamp"] =
            json!(instant(&want["@timestamp"]).map(|t| t.unix_nanos().to_string()));
        assert_eq!(got, want, "{message}");

        let errors: Vec<String> = outcome.errors().iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), want_errors.len(), "{message}: {errors:?}");
        for (got, want) in errors.iter().zip(&want_errors) {
            assert!(
                got.starts_with("processors[0].decode_json_fields: "),
                "{got}"
            );
            assert!(got.contains(want), "{message}: {got} lacks {want}");
        }
        for e in outcome.errors() {
            assert!(matches!(e.error(), Error::InvalidJson { field, .. } if field == "message"));
        }
    }
}
