//! A tailed entry's JSON message kept as its text (`decode_json_fields` into a new
//! top-level field) gives the same event as decoding it into maps: the same JSON value
//! written, the same errors and not-JSON counts, for every message of the
//! `decode_json_fields` conformance file, hand-picked edge cases and generated objects.

use std::sync::Arc;

use logtide_event::{Event, LogEntry, LogFile, Timestamp};
use logtide_json::Processors;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

fn entry(message: &str) -> LogEntry {
    LogEntry {
        message: message.to_owned(),
        stream: "stdout",
        file: LogFile::named(
            Arc::from("/var/log/containers/p_ns_c-0123.log"),
            Some(Arc::from("0123")),
        ),
        offset: 7,
        partial: false,
        truncated: false,
        docker_attrs: None,
        input_type: "container",
    }
}

/// The configurations compared: the seed's chain, and variations of its options.
fn chains() -> Vec<(&'static str, Processors)> {
    let seed_drop =
        json!({"drop_fields": {"when": {"has_fields": ["message-json"]}, "fields": ["message"]}});
    [
        (
            "seed",
            json!([{"decode_json_fields": {"fields": ["message"], "process_array": false, "max_depth": 5, "target": "message-json", "overwrite_keys": true}}, seed_drop.clone()]),
        ),
        (
            "depth 1, error key",
            json!([{"decode_json_fields": {"fields": ["message"], "target": "json", "add_error_key": true}}, seed_drop.clone()]),
        ),
        (
            "process arrays",
            json!([{"decode_json_fields": {"fields": ["message"], "target": "json", "max_depth": 3, "process_array": true}}]),
        ),
        (
            "document id",
            json!([{"decode_json_fields": {"fields": ["message"], "target": "json", "document_id": "id"}}]),
        ),
        (
            "dotted target",
            json!([{"decode_json_fields": {"fields": ["message"], "target": "app.json", "max_depth": 2}}]),
        ),
        (
            "target is the entry's",
            json!([{"decode_json_fields": {"fields": ["message"], "target": "log"}}]),
        ),
        (
            "in place",
            json!([{"decode_json_fields": {"fields": ["message"], "max_depth": 2}}]),
        ),
    ]
    .into_iter()
    .map(|(name, config)| (name, Processors::from_config(&config).unwrap()))
    .collect()
}

/// Runs `chain` over the message as a tailed entry and as the same fields in maps.
/// Returns whether the entry stayed unbuilt, and panics on any difference.
fn compare(name: &str, chain: &Processors, message: &str) -> bool {
    let time = Timestamp::parse_rfc3339(b"2024-05-06T07:08:09.5Z").unwrap();
    let mut lazy = Event::from_log_entry(time, entry(message));
    let mut maps = Event::with_fields(time, entry(message).to_fields());
    let a = chain.run(&mut lazy);
    let b = chain.run(&mut maps);
    let errors = |o: &logtide_json::Outcome| {
        (
            o.errors()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            o.not_json().len(),
        )
    };
    assert_eq!(errors(&a), errors(&b), "{name}: {message:?}");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    lazy.write_json(&mut x);
    maps.write_json(&mut y);
    assert!(
        !x.contains(&b'\n'),
        "{name}: a line break written: {message:?}"
    );
    let Strict(x) = serde_json::from_slice(&x).unwrap();
    let Strict(y) = serde_json::from_slice(&y).unwrap();
    assert_eq!(x, y, "{name}: {message:?}");
    assert_eq!(lazy.fields(), maps.fields(), "{name}: {message:?}");
    lazy.log_entry().is_some()
}

/// A JSON value read by a parser that refuses a key twice in an object (as
/// Elasticsearch does), where `serde_json` keeps the last.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(json!(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(json!(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(json!(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(json!(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(json!(v)))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Strict, A::Error> {
                let mut items = Vec::new();
                while let Some(Strict(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Strict(Value::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Strict, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Strict(v) = map.next_value()?;
                    if out.insert(key.clone(), v).is_some() {
                        return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                    }
                }
                Ok(Strict(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

fn check_all(message: &str) -> bool {
    chains()
        .iter()
        .map(|(name, chain)| compare(name, chain, message))
        .fold(false, |any, unbuilt| any | unbuilt)
}

#[test]
fn edge_cases_decode_the_same_either_way() {
    let cases = [
        r#"{"level":"info","msg":"GET /healthz","status":200,"took":0.25}"#,
        "  {\"z\": 1,\t\"a\": \"\\u00e9\"}\t ",
        r#"{"log":"{\"level\":\"info\"}","n":1}"#,
        r#"{"arr":"[{\"a\":\"b\"}]","s":" {not json} "}"#,
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":1,"b":{"c":2}}}"#,
        r#"{"big":18446744073709551615,"neg":-9223372036854775809,"max":9223372036854775807}"#,
        r#"{"f":1e2,"g":-0,"h":2.50,"i":1E-7}"#,
        "{\"a\":\n1}",
        "{\"a\":1}\r\n",
        r#"{"id":"x","rest":{"id":3}}"#,
        r#"{"@timestamp":"2020-01-01T00:00:00Z","@metadata":{"a":1},"type":"t"}"#,
        r#"[{"a":1}]"#,
        r#""just a string""#,
        "12",
        "null",
        r#"{"a":1"#,
        r#"{"a":1} trailing"#,
        "plain text line",
        "",
        "{}",
        r#"{"deep":{"a":[{"b":[[{"c":"{}"}]]}]}}"#,
    ];
    for message in cases {
        check_all(message);
    }
    let seed = &chains()[0].1;
    assert!(
        compare("seed", seed, cases[0]),
        "a typical JSON line stays unbuilt through the seed chain"
    );
    assert!(compare("seed", seed, "plain text line"));
    assert!(
        !compare("seed", seed, cases[2]),
        "a nested JSON string is decoded into maps"
    );
}

#[test]
fn conformance_messages_decode_the_same_either_way() {
    let dir = match std::env::var_os("LOGTIDE_CONFORMANCE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        }
    };
    let text = std::fs::read_to_string(dir.join("decode_json.jsonl")).unwrap();
    let mut strings = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let Some(input) = case["input"].as_object() else {
            continue;
        };
        for value in input.values() {
            if let Some(s) = value.as_str() {
                check_all(s);
                strings += 1;
            }
        }
    }
    assert!(strings >= 10, "only {strings} messages found");
}

/// JSON text with what makes a difference: repeated keys, integers past `i64`, strings
/// that hold JSON, nesting, escapes and whitespace (line breaks among it).
fn value_text(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "[a-z \\t{}\\[\\]\"\\\\é]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#""{\"k\":1}""#.to_owned()),
        Just(r#"" [1,2] ""#.to_owned()),
        Just(r#""\u0041\ud83d\ude00""#.to_owned()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => object_text(depth - 1),
        1 => proptest::collection::vec(value_text(depth - 1), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
    ]
    .boxed()
}

fn object_text(depth: u32) -> BoxedStrategy<String> {
    let key = prop_oneof![
        "[a-c]",
        Just("a\\u0062".to_owned()),
        Just("@timestamp".to_owned())
    ];
    let space = prop_oneof![Just(""), Just(" "), Just("\t"), Just("\n")];
    proptest::collection::vec((key, value_text(depth), space), 0..6)
        .prop_map(|members| {
            let inner: Vec<String> = members
                .into_iter()
                .map(|(k, v, s)| format!("{s}\"{k}\":{s}{v}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        })
        .boxed()
}

proptest! {
    // Failing cases are kept next to this file, in `as_is.proptest-regressions`.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        ..ProptestConfig::with_failure_persistence(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))
    })]

    #[test]
    fn generated_objects_decode_the_same_either_way(text in object_text(3), pad in "[ \\t]{0,2}") {
        check_all(&format!("{pad}{text}{pad}"));
    }
}
