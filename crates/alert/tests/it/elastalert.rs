//! elastalert rule files as they are: the supported filter clauses load and behave
//! like the Elasticsearch queries; unsupported ones are refused, naming the file, the
//! rule and the clause.

use std::path::{Path, PathBuf};

use logtide_alert::{load_rules, Destination, Engine, EngineConfig, Rule};
use logtide_event::{Event, Timestamp};
use serde_json::json;

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir)
}

/// The migrated rules, with the Slack URL file (outside the rules directory) in place.
fn migrated() -> (tempfile::TempDir, Vec<std::sync::Arc<Rule>>) {
    std::env::set_var("LOGTIDE_TEST_HOOK_TOKEN", "t0ken");
    let rules_dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("slack-url");
    std::fs::write(
        &url_file,
        "https://hooks.slack.com/services/T1/B1/FROMFILE\n",
    )
    .unwrap();
    for entry in std::fs::read_dir(data("elastalert")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("SLACK_FILE", url_file.to_str().unwrap());
        std::fs::write(rules_dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    // Hidden files (an editor's) are not rules.
    std::fs::write(rules_dir.path().join(".checkout_errors.yaml.swp"), "\0").unwrap();
    let (rules, errors) = load_rules(rules_dir.path()).unwrap();
    assert!(
        errors.is_empty(),
        "{:?}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    (rules_dir, rules)
}

#[test]
fn elastalert_rules_load_as_they_are() {
    let (_tmp, rules) = migrated();
    let mut names: Vec<(&str, &str)> = rules.iter().map(|r| (r.name(), r.type_name())).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("Checkout 5xx burst", "frequency"),
            ("New namespace logging errors", "new_term"),
            ("Payment worker heartbeat", "flatline"),
            ("Rollout status changed", "change"),
            ("Slow requests spike", "spike"),
        ]
    );
    // Secrets are never printed.
    let all = format!("{rules:?}");
    assert!(
        !all.contains("XXXXXXXX") && !all.contains("FROMFILE") && !all.contains("t0ken"),
        "{all}"
    );
    let spike = rules
        .iter()
        .find(|r| r.name() == "Slow requests spike")
        .unwrap();
    assert!(matches!(spike.destinations(), [Destination::Slack(_)]));
}

fn event(fields: serde_json::Value) -> Event {
    Event::from_json(fields).unwrap()
}

#[test]
fn migrated_filters_select_what_elasticsearch_would() {
    let (_tmp, rules) = migrated();
    let rule = |name: &str| rules.iter().find(|r| r.name() == name).unwrap();
    let checkout = rule("Checkout 5xx burst");
    let hit = json!({"kubernetes": {"labels": {"app": "checkout"}, "pod": {"name": "checkout-1"}},
                     "message-json": {"status": 503, "path": "/api/pay"}});
    assert!(checkout.matches(&event(hit.clone())));
    let mut health = hit.clone();
    health["message-json"]["path"] = json!("/healthz");
    assert!(!checkout.matches(&event(health)));
    let mut ok = hit.clone();
    ok["message-json"]["status"] = json!(200);
    assert!(!checkout.matches(&event(ok)));

    let heartbeat = rule("Payment worker heartbeat");
    let beat = json!({"kubernetes": {"namespace": "payments", "container": {"name": "worker-batch"}},
                      "message": "Heartbeat: alive", "stream": "stdout"});
    assert!(heartbeat.matches(&event(beat.clone())));
    let mut err = beat.clone();
    err["stream"] = json!("stderr");
    assert!(!heartbeat.matches(&event(err)));

    let terms = rule("New namespace logging errors");
    assert!(terms.matches(&event(
        json!({"message": "dial tcp: Connection  refused", "kubernetes": {"namespace": "x"}})
    )));
    assert!(!terms.matches(&event(
        json!({"message": "refused connection", "kubernetes": {"namespace": "x"}})
    )));

    let spike = rule("Slow requests spike");
    assert!(spike.matches(&event(
        json!({"level": "warn", "message-json": {"duration_ms": 1500}})
    )));
    assert!(!spike.matches(&event(
        json!({"level": "info", "message-json": {"duration_ms": 1500}})
    )));
    assert!(!spike.matches(&event(
        json!({"level": "warn", "message-json": {"duration_ms": 15}})
    )));
}

#[test]
fn migrated_frequency_rule_fires_with_its_templates() {
    let (_tmp, rules) = migrated();
    let mut engine = Engine::new(EngineConfig::default(), rules);
    let events: Vec<Event> = (0..5)
        .map(|i| {
            let mut e = event(
                json!({"kubernetes": {"labels": {"app": "checkout"}, "pod": {"name": "checkout-1"}},
                                     "message-json": {"status": 502, "path": "/api/pay"}}),
            );
            e.set_timestamp(Timestamp::new(1_767_225_600 + i * 10, 0).unwrap());
            e
        })
        .collect();
    let mut alerts = Vec::new();
    engine.process(&events, Timestamp::now(), &mut alerts);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].subject, "Checkout 5xx on checkout-1");
    assert_eq!(
        alerts[0].text,
        "checkout-1 answered 502 1 times within 2 minutes."
    );
}

#[test]
fn unsupported_clauses_are_refused_by_name() {
    let (rules, errors) = load_rules(&data("refused")).unwrap();
    assert!(rules.is_empty());
    let mut messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.sort();
    let dir = data("refused");
    let d = dir.display();
    assert_eq!(
        messages,
        [
            format!(
                r#"{d}/date_range.yaml: rule "Recent only": filter[0].range.@timestamp.gte: only numeric bounds are supported, not "now-1h" (date math such as now-1h is not)"#
            ),
            format!(
                r#"{d}/email.yaml: alert[0]: alerter "email" is not supported (slack, post, debug)"#
            ),
            format!(
                r#"{d}/nested_regexp.yaml: rule "Nested regexp": filter[0].bool.should[0].regexp: unsupported filter clause "regexp" (supported: term, terms, match, match_phrase, range, exists, bool, query_string)"#
            ),
            format!(
                r#"{d}/wildcard.yaml: rule "Wildcard search": filter[1].query.wildcard: unsupported filter clause "wildcard" (supported: term, terms, match, match_phrase, range, exists, bool, query_string)"#
            ),
        ]
    );
}

#[test]
fn rule_errors_name_the_key() {
    let cases = [
        ("name: a\ntype: frequency\ntimeframe: 1m\nalert: debug\n", "r.yaml: num_events: missing required key"),
        ("name: a\ntype: any\nalert: debug\nrealret: 1m\n", "r.yaml: realret: unknown key"),
        ("name: a\ntype: sometimes\n", r#"r.yaml: type: "sometimes" is not a rule type"#),
        ("name: a\ntype: any\nwhen: {equals: {a: 1.5}}\n", "r.yaml: when.equals.a: equals compares strings, integers and booleans, not 1.5"),
        ("name: a\ntype: any\nrealert: {fortnights: 2}\n", "r.yaml: realert: unknown unit"),
        ("name: a\ntype: any\ntimeframe: 5m\n", "r.yaml: timeframe: unknown key"),
        ("name: a\ntype: any\nalert: slack\n", "r.yaml: slack_webhook_url: the slack alerter needs"),
        ("name: a\ntype: any\nalert: slack\nslack_webhook_url: ${LOGTIDE_TEST_UNSET_VARIABLE}\n", "r.yaml: slack_webhook_url: environment variable LOGTIDE_TEST_UNSET_VARIABLE is not set"),
        ("name: a\ntype: change\ncompare_key: s\n", "r.yaml: query_key: a change rule needs a query_key"),
        ("name: a\ntype: any\nalert_text: '{1}'\nalert_text_args: [x]\n", "r.yaml: alert_text: {1} needs alert_text_args with at least 2 fields"),
        ("- not a map\n", "r.yaml: (rule): expected a map of rule keys, found a JSON array"),
    ];
    for (yaml, want) in cases {
        let err = Rule::from_yaml(yaml, "r.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{err:?} does not start with {want:?}"
        );
    }
}
