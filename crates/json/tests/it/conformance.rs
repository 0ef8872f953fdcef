//! Runs every case of the shared `decode_json.jsonl` and `processors.jsonl` conformance
//! files through the processors, and checks the seed configuration's two-processor chain.
//!
//! The files are in `$LOGTIDE_CONFORMANCE_DIR`, or by default `shared/conformance/` next
//! to the workspace. A missing file fails.

use std::path::PathBuf;

use logtide_event::{Event, Timestamp};
use logtide_json::{Error, Processors};
use regex::Regex;
use serde_json::{json, Map, Value};

fn conformance_file(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    dir.join(name)
}

/// The cases of one conformance file, with the file's path for messages.
fn cases(name: &str) -> (PathBuf, Vec<Value>) {
    let file = conformance_file(name);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read conformance file {}: {e}", file.display()));
    let cases: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", file.display(), n + 1))
        })
        .collect();
    assert!(!cases.is_empty(), "{} has no cases", file.display());
    (file, cases)
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

/// Compares the event with `expect` as the README says (`@timestamp` only when expected,
/// as an instant; an empty `@metadata` is none) and returns the event as JSON.
fn compare_event(event: &Event, expect: &Value, problems: &mut Vec<String>) -> Map<String, Value> {
    let Value::Object(mut actual) = serde_json::to_value(event).expect("an event serializes")
    else {
        unreachable!("an event serializes to an object");
    };
    let mut expect: Map<String, Value> = expect.as_object().expect("expect is an object").clone();
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
        problems,
    );
    actual
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
    let actual = compare_event(&event, &case["expect"], &mut problems);

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

/// Runs `run` on every case of `name` and fails listing the ids that fail (with what is
/// wrong), skipping only the ids in `differences`.
fn run_file(name: &str, differences: &[(&str, &str)], run: impl Fn(&Value) -> Vec<String>) {
    let (file, cases) = cases(name);
    let mut failures = Vec::new();
    let mut failed_ids = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        if let Some((_, reason)) = differences.iter().find(|(d, _)| *d == id) {
            assert_eq!(
                case.get("disputed"),
                Some(&Value::Bool(true)),
                "{id} is skipped as a deliberate difference but is not marked disputed"
            );
            eprintln!("{id}: skipped, deliberate difference: {reason}");
            continue;
        }
        let problems = run(case);
        if !problems.is_empty() {
            failed_ids.push(id.to_owned());
            failures.push(format!("{id}:\n  {}", problems.join("\n  ")));
        }
    }
    for (id, _) in differences {
        assert!(
            cases.iter().any(|c| c["id"] == *id),
            "deliberate difference {id} names no case of {}",
            file.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases of {} fail: {}\n{}",
        failures.len(),
        cases.len(),
        file.display(),
        failed_ids.join(" "),
        failures.join("\n")
    );
}

#[test]
fn every_decode_json_case_passes() {
    run_file("decode_json.jsonl", &[], run_case);
}

/// Cases of `processors.jsonl` where logtide deliberately differs from Filebeat: each is
/// marked `disputed` in the data and has a row in `docs/compatibility.md`.
const PROCESSOR_DIFFERENCES: &[(&str, &str)] = &[];

/// Runs one case of `processors.jsonl`; returns what is wrong with the result.
fn run_processors_case(case: &Value) -> Vec<String> {
    let chain = Processors::from_config(&case["processors"]);
    if case.get("expect_config_error") == Some(&Value::Bool(true)) {
        return match chain {
            Ok(_) => vec!["configuration accepted, Filebeat refuses it".to_owned()],
            Err(_) => Vec::new(),
        };
    }
    let chain = match chain {
        Ok(chain) => chain,
        Err(e) => return vec![format!("config rejected: {e}")],
    };
    let mut event = match Event::from_json(case["input"].clone()) {
        Ok(event) => event,
        Err(e) => return vec![format!("input rejected: {e}")],
    };
    let outcome = chain.run(&mut event);
    let mut problems = Vec::new();
    match (&case["expect"], outcome.is_dropped()) {
        (Value::Null, true) => {}
        (Value::Null, false) => problems.push("event kept, expected it dropped".to_owned()),
        (_, true) => problems.push("event dropped".to_owned()),
        (expect, false) => {
            compare_event(&event, expect, &mut problems);
        }
    }
    let errors: Vec<String> = outcome.errors().iter().map(ToString::to_string).collect();
    match case.get("expect_error") {
        Some(Value::Bool(true)) if errors.is_empty() => {
            problems.push("expected a processor error, got none".to_owned());
        }
        Some(Value::Bool(false)) if !errors.is_empty() => {
            problems.push(format!("expected no processor error, got {errors:?}"));
        }
        _ => {}
    }
    problems
}

#[test]
fn every_processors_case_passes() {
    run_file(
        "processors.jsonl",
        PROCESSOR_DIFFERENCES,
        run_processors_case,
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
    // (input message, expected fields other than the base ones, whether it is not JSON)
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            r#"{"level":"info","msg":"GET /","status":200,"took":1.5,"@timestamp":"2020-01-01T00:00:00Z"}"#,
            json!({"message-json": {"level": "info", "msg": "GET /", "status": 200, "took": 1.5, "@timestamp": "2020-01-01T00:00:00Z"}}),
            false,
        ),
        (
            r#"{"log":"{\"inner\":{\"deep\":\"[1,2]\"}}","list":"[1]"}"#,
            json!({"message-json": {"log": {"inner": {"deep": "[1,2]"}}, "list": "[1]"}}),
            false,
        ),
        (
            "2024-05-06 07:08:09 INFO plain text",
            json!({"message": "2024-05-06 07:08:09 INFO plain text"}),
            true,
        ),
        (
            "11:38:04,323 |-INFO testing",
            json!({"message": "11:38:04,323 |-INFO testing"}),
            true,
        ),
        ("[1,2,3]", json!({"message": "[1,2,3]"}), true),
        (
            "\"just a string\"",
            json!({"message-json": "just a string"}),
            false,
        ),
    ];
    for (message, want_fields, not_json) in cases {
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

        // Plain text is the common case, not an error: it is counted apart, and the
        // event gets no `error` field (the seed has no `add_error_key`).
        assert!(
            outcome.errors().is_empty(),
            "{message}: {:?}",
            outcome.errors()
        );
        let want_not_json: &[usize] = if not_json { &[0] } else { &[] };
        assert_eq!(outcome.not_json(), want_not_json, "{message}");
    }
}

/// With `add_error_key: true`, text that is not JSON is an error, carried by the event
/// (`error.message`, `error.data`, `error.field`) as Filebeat does, and not counted as
/// `not_json`.
#[test]
fn not_json_is_an_error_only_with_add_error_key() {
    let chain = Processors::from_config(&json!([
        {"decode_json_fields": {
            "fields": ["message"], "max_depth": 5, "target": "message-json",
            "overwrite_keys": true, "add_error_key": true,
        }},
    ]))
    .unwrap();
    let mut stats = chain.stats();
    for (message, error) in [
        (
            "2024-05-06 07:08:09 INFO plain text",
            Some("parsing input as JSON: "),
        ),
        (
            "11:38:04,323 |-INFO testing",
            Some("parsing input as JSON: multiple json elements found"),
        ),
        (r#"{"level":"info"}"#, None),
    ] {
        let mut event = Event::from_json(json!({"message": message})).unwrap();
        let outcome = chain.run(&mut event);
        stats.record(&outcome);
        assert!(outcome.not_json().is_empty(), "{message}");
        match error {
            Some(want) => {
                assert_eq!(outcome.errors().len(), 1, "{message}");
                let e = &outcome.errors()[0];
                assert!(
                    matches!(e.error(), Error::InvalidJson { field, .. } if field == "message")
                );
                assert!(
                    e.to_string()
                        .starts_with("processors[0].decode_json_fields: "),
                    "{e}"
                );
                let got = event.get("error.message").and_then(Value::as_str).unwrap();
                assert!(got.starts_with(want), "{message}: {got}");
                assert_eq!(event.get("error.data"), Some(&json!(message)));
                assert_eq!(event.get("error.field"), Some(&json!("message")));
            }
            None => {
                assert!(outcome.errors().is_empty(), "{message}");
                assert_eq!(event.get("error"), None);
            }
        }
    }
    assert_eq!(stats.errors(), [2]);
    assert_eq!(stats.not_json(), [0]);

    let seed = seed_chain();
    let mut stats = seed.stats();
    for message in ["plain", r#"{"a":1}"#, "[1,2]", "also plain"] {
        let mut event = Event::from_json(json!({"message": message})).unwrap();
        stats.record(&seed.run(&mut event));
    }
    assert_eq!(
        (stats.errors(), stats.not_json()),
        (&[0, 0][..], &[3, 0][..])
    );
}

/// Filebeat's loader reads dotted keys as paths anywhere in a processor list, so these
/// spellings configure the same processors as the nested ones.
#[test]
fn dotted_keys_in_processor_lists_are_paths() {
    let cases = [
        (
            json!([{"add_labels.labels": {"a": {"b": "test"}}}]),
            json!({}),
            Some(json!({"labels": {"a.b": "test"}})),
        ),
        (
            json!([{"add_fields.target": "my", "add_fields.fields.field": "test"}]),
            json!({}),
            Some(json!({"my": {"field": "test"}})),
        ),
        (
            json!([{"drop_event.when.equals.type": "process"}]),
            json!({"type": "process"}),
            None,
        ),
        (
            json!([{"drop_event": {"when.range.proc.cpu.total_p.gt": 0.5}}]),
            json!({"proc": {"cpu": {"total_p": 0.08}}}),
            Some(json!({"proc": {"cpu": {"total_p": 0.08}}})),
        ),
        (
            json!([{"drop_event.when": {"equals": {"proc": {"name": "secd"}}}}]),
            json!({"proc": {"name": "secd"}}),
            None,
        ),
    ];
    for (config, input, want) in cases {
        let chain =
            Processors::from_config(&config).unwrap_or_else(|e| panic!("{config} rejected: {e}"));
        let mut event = Event::from_json(input).unwrap();
        let outcome = chain.run(&mut event);
        assert!(
            outcome.errors().is_empty(),
            "{config}: {:?}",
            outcome.errors()
        );
        match want {
            None => assert!(outcome.is_dropped(), "{config}: not dropped"),
            Some(want) => {
                let mut problems = Vec::new();
                compare_event(&event, &want, &mut problems);
                assert!(problems.is_empty(), "{config}: {problems:?}");
            }
        }
    }
}

/// `rename` and `copy_fields` put Filebeat's own texts in `error.message`.
#[test]
fn error_messages_are_filebeats() {
    let cases = [
        (
            json!([{"rename": {"fields": [{"from": "a", "to": "b"}], "fail_on_error": true}}]),
            json!({"a": 1, "b": 2}),
            "failed to rename fields in processor: target field b already exists, drop or rename this field first",
        ),
        (
            json!([{"rename": {"fields": [{"from": "x", "to": "y"}]}}]),
            json!({"a": 1}),
            "failed to rename fields in processor: could not fetch value for key: x, Error: key not found",
        ),
        (
            json!([{"copy_fields": {"fields": [{"from": "a", "to": "b"}], "fail_on_error": true}}]),
            json!({"a": 1, "b": 2}),
            "failed to copy fields in copy_fields processor: target field b already exists, drop or rename this field first",
        ),
        (
            json!([{"copy_fields": {"fields": [{"from": "a", "to": "s.x"}], "fail_on_error": true}}]),
            json!({"a": 1, "s": "str"}),
            "failed to copy fields in copy_fields processor: could not copy value to s.x: 1, \
             cannot set field s.x: s is a string, not an object",
        ),
        (
            json!([{"rename": {"fields": [{"from": "a", "to": "s.x"}]}}]),
            json!({"a": {"k": [1, "v"]}, "s": "str"}),
            "failed to rename fields in processor: could not put value: s.x: map[k:[1 v]], \
             cannot set field s.x: s is a string, not an object",
        ),
    ];
    for (config, input, want) in cases {
        let chain = Processors::from_config(&config).unwrap();
        let mut event = Event::from_json(input).unwrap();
        let outcome = chain.run(&mut event);
        assert_eq!(outcome.errors().len(), 1, "{config}");
        assert_eq!(event.get("error.message"), Some(&json!(want)), "{config}");
    }
}

/// A pattern Go's regexp refuses makes the configuration fail, as in Filebeat, with the
/// position of the offending text.
#[test]
fn patterns_go_refuses_are_configuration_errors() {
    let cases = [
        (
            json!([{"drop_event": {"when": {"regexp": {"message": "w++"}}}}]),
            "processors[0].drop_event.when.regexp.message: invalid regular expression: \
             error parsing regexp: invalid nested repetition operator: `++` (at byte 1 of \"w++\")",
        ),
        (
            json!([{"drop_fields": {"fields": ["a", "/x{2}*/"]}}]),
            "processors[0].drop_fields.fields[1]: invalid regular expression: \
             error parsing regexp: invalid nested repetition operator: `{2}*` (at byte 1 of \"x{2}*\")",
        ),
        (
            json!([{"drop_event.when.regexp.message": "a{1001}"}]),
            "processors[0].drop_event.when.regexp.message: invalid regular expression: \
             error parsing regexp: invalid repeat count: `{1001}` (at byte 1 of \"a{1001}\")",
        ),
    ];
    for (config, want) in cases {
        match Processors::from_config(&config) {
            Ok(_) => panic!("{config}: accepted, Go's regexp refuses it"),
            Err(e) => assert_eq!(e.to_string(), want),
        }
    }
}
