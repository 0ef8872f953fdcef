//! Each rule type on generated event streams with known answers, in order, out of
//! order and late; realert, aggregation, limits, and the state across a restart.

use std::sync::Arc;
use std::time::Duration;

use logtide_alert::{Alert, Engine, EngineConfig, Rule};
use logtide_event::{Event, Timestamp};
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600;

fn at(secs: i64) -> Timestamp {
    Timestamp::new(BASE + secs, 0).unwrap()
}

fn ev(secs: i64, fields: Value) -> Event {
    let mut e = Event::from_json(fields).unwrap();
    e.set_timestamp(at(secs));
    e
}

fn rule(yaml: &str) -> Rule {
    Rule::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// Feeds events one at a time with the wall clock at the newest event time seen.
fn feed(engine: &mut Engine, events: Vec<Event>) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut now = at(0);
    for e in events {
        now = now.max(e.timestamp());
        engine.process(std::slice::from_ref(&e), now, &mut out);
    }
    out
}

fn times(alerts: &[Alert]) -> Vec<(i64, Option<String>)> {
    alerts
        .iter()
        .map(|a| (a.time.unix_secs() - BASE, a.query_key.clone()))
        .collect()
}

fn key(k: &str) -> Option<String> {
    Some(k.to_owned())
}

#[test]
fn any_with_realert_per_query_key() {
    let r = rule(
        "name: errors\ntype: any\nquery_key: pod\nrealert: {minutes: 1}\nfilter: [{term: {level: error}}]\nalert: debug\n",
    );
    let mut engine = Engine::new(EngineConfig::default(), [r]);
    let events = vec![
        ev(0, json!({"level": "error", "pod": "a"})),
        ev(1, json!({"level": "info", "pod": "a"})),
        ev(2, json!({"level": "error", "pod": "b"})),
        ev(30, json!({"level": "error", "pod": "a"})), // suppressed
        ev(61, json!({"level": "error", "pod": "a"})),
    ];
    let alerts = feed(&mut engine, events);
    assert_eq!(
        times(&alerts),
        vec![(0, key("a")), (2, key("b")), (61, key("a"))]
    );
    let stats = &engine.stats().rules["errors"];
    assert_eq!(
        (stats.matched_events, stats.suppressed, stats.alerts),
        (4, 1, 3)
    );
}

const FREQUENCY: &str = "
name: bursts
type: frequency
num_events: 3
timeframe: {seconds: 60}
query_key: pod
realert: {minutes: 0}
when: {equals: {level: error}}
alert: [debug]
";

#[test]
fn frequency_in_order_out_of_order_and_late() {
    let mut engine = Engine::new(EngineConfig::default(), [rule(FREQUENCY)]);
    let e = |t, pod: &str| ev(t, json!({"level": "error", "pod": pod}));
    let events = vec![
        e(0, "a"),
        e(5, "b"),
        e(10, "a"),
        e(20, "a"), // a: 0, 10, 20 -> fires at 20
        e(70, "b"),
        // c arrives out of order, within the allowed lateness (30 s behind 70).
        e(60, "c"),
        e(45, "c"),
        e(50, "c"), // c: 45, 50, 60 -> fires at 60
        e(100, "a"),
        e(110, "a"),
        e(200, "a"), // a: 100, 110 then 200: no window holds three
        e(140, "b"), // late (watermark 170): counted, not in a window
        e(215, "b"),
        e(220, "b"), // b: 215, 220 and the late 140 does not count
    ];
    let alerts = feed(&mut engine, events);
    assert_eq!(times(&alerts), vec![(20, key("a")), (60, key("c"))]);
    assert_eq!(engine.stats().rules["bursts"].late_events, 1);
    assert!(
        alerts[0].text.contains(
            "At least 3 events occurred between 2026-01-01T00:00:00Z and 2026-01-01T00:00:20Z"
        ),
        "{}",
        alerts[0].text
    );
}

#[test]
fn frequency_is_the_same_in_any_arrival_order_within_the_lateness() {
    // Ten bursts of four events each, 100 s apart, arriving shuffled within 20 s.
    let mut events = Vec::new();
    for burst in 0..10i64 {
        for i in 0..4i64 {
            events.push(ev(
                burst * 100 + i * 5,
                json!({"level": "error", "pod": "p"}),
            ));
        }
    }
    let mut shuffled = events.iter().map(|e| e.clone_unacked()).collect::<Vec<_>>();
    // A fixed permutation: swap neighbours inside each burst.
    for chunk in shuffled.chunks_mut(4) {
        chunk.swap(0, 3);
        chunk.swap(1, 2);
    }
    for stream in [events, shuffled] {
        let mut engine = Engine::new(EngineConfig::default(), [rule(FREQUENCY)]);
        let alerts = times(&feed(&mut engine, stream));
        // One alert per burst, at the newest of the three events that completed it
        // (10 in order; 15 when 15, 10 and 5 arrive first).
        assert_eq!(alerts.len(), 10, "{alerts:?}");
        for (b, (t, k)) in alerts.iter().enumerate() {
            let start = b as i64 * 100;
            assert!((start + 10..=start + 15).contains(t), "{alerts:?}");
            assert_eq!(k.as_deref(), Some("p"));
        }
        assert_eq!(engine.stats().rules["bursts"].late_events, 0);
    }
}

#[test]
fn flatline_on_a_stream_and_on_silence() {
    let yaml = "name: quiet\ntype: flatline\nthreshold: 2\ntimeframe: {seconds: 60}\nrealert: 0s\nalert: [debug]\n";
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    // Every 10 s from 0 to 100, nothing until 300, then every 10 s again.
    let mut events: Vec<Event> = (0..=10).map(|i| ev(i * 10, json!({}))).collect();
    events.extend((30..=40).map(|i| ev(i * 10, json!({}))));
    let alerts = feed(&mut engine, events);
    // The second newest event (90) leaves the window at 150; then one alert per minute
    // of silence while the watermark (the event at 300 less 30 s) passes.
    assert_eq!(times(&alerts), vec![(150, None), (210, None), (270, None)]);
    assert!(
        alerts[0]
            .text
            .contains("An abnormally low number of events"),
        "{}",
        alerts[0].text
    );

    // Silence after 400: the wall clock moves the watermark on.
    let mut out = Vec::new();
    engine.tick(at(450), &mut out);
    assert!(out.is_empty(), "{:?}", times(&out));
    engine.tick(at(500), &mut out);
    assert_eq!(times(&out), vec![(450, None)]);
}

#[test]
fn flatline_per_query_key() {
    let yaml = "name: quiet pods\ntype: flatline\nthreshold: 1\ntimeframe: {seconds: 60}\nquery_key: pod\nrealert: {minutes: 10}\nalert: [debug]\n";
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    let mut events = Vec::new();
    for i in 0..30 {
        events.push(ev(i * 10, json!({"pod": "a"})));
        if i < 5 {
            events.push(ev(i * 10 + 1, json!({"pod": "b"})));
        }
    }
    let alerts = feed(&mut engine, events);
    // b's last event is at 41: alone in the window until 101.
    assert_eq!(times(&alerts), vec![(101, key("b"))]);
}

const SPIKE: &str = "
name: surge
type: spike
timeframe: {seconds: 60}
spike_height: 3
spike_type: both
threshold_cur: 5
realert: 0s
alert: [debug]
";

#[test]
fn spike_up_and_down() {
    // Windows of 60 s: 5, 5, 20, 6, then 6 to close the fourth.
    let counts = [5, 5, 20, 6, 6];
    let mut events = Vec::new();
    for (w, n) in counts.iter().enumerate() {
        for i in 0..*n {
            events.push(ev(w as i64 * 60 + (i as i64 * 59) / *n as i64, json!({})));
        }
    }
    // The same events with neighbours swapped (out of order within 30 s).
    let mut shuffled: Vec<Event> = events.iter().map(|e| e.clone_unacked()).collect();
    for pair in shuffled.chunks_mut(2) {
        pair.swap(0, 1);
    }
    for stream in [events, shuffled] {
        let mut engine = Engine::new(EngineConfig::default(), [rule(SPIKE)]);
        let alerts = feed(&mut engine, stream);
        // Up: 20 >= 3 x 5 in the window ending at 180; down: 6 <= 20 / 3 ending at 240.
        assert_eq!(times(&alerts), vec![(180, None), (240, None)]);
        assert!(
            alerts[0].text.contains("An abnormal number (20) of events"),
            "{}",
            alerts[0].text
        );
    }
    // Up only: the drop is no alert.
    let up = SPIKE.replace("spike_type: both", "spike_type: up");
    let mut engine = Engine::new(EngineConfig::default(), [rule(&up)]);
    let mut events = Vec::new();
    for (w, n) in counts.iter().enumerate() {
        for i in 0..*n {
            events.push(ev(w as i64 * 60 + i as i64, json!({})));
        }
    }
    assert_eq!(times(&feed(&mut engine, events)), vec![(180, None)]);
}

#[test]
fn change_in_event_time_order() {
    let yaml = "name: flips\ntype: change\ncompare_key: status\nignore_null: true\nquery_key: pod\nrealert: 0s\nalert: [debug]\n";
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    let events = vec![
        ev(0, json!({"pod": "a", "status": "ok"})),
        ev(5, json!({"pod": "b", "status": "ok"})),
        // 20 arrives before 10: still compared in event-time order.
        ev(20, json!({"pod": "a", "status": "fail"})),
        ev(10, json!({"pod": "a", "status": "ok"})),
        ev(25, json!({"pod": "a"})), // no status: ignored
        ev(30, json!({"pod": "a", "status": "ok"})),
        ev(35, json!({"pod": "b", "status": "ok"})),
    ];
    let mut alerts = feed(&mut engine, events);
    assert!(alerts.is_empty(), "compared only once the watermark passes");
    engine.finish(&mut alerts);
    assert_eq!(times(&alerts), vec![(20, key("a")), (30, key("a"))]);
    assert!(
        alerts[0].text.starts_with("status changed from ok to fail"),
        "{}",
        alerts[0].text
    );
}

#[test]
fn new_term_with_learning_period() {
    let yaml = "name: new namespaces\ntype: new_term\nfields: [kubernetes.namespace]\nlearning_period: 60s\nrealert: 0s\nalert: [debug]\n";
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    let ns = |t, n: &str| ev(t, json!({"kubernetes": {"namespace": n}}));
    let events = vec![
        ns(0, "shop"),
        ns(30, "auth"),
        ns(70, "shop"),
        ns(80, "billing"),
        ns(90, "billing"),
        ns(100, "auth"),
    ];
    let alerts = feed(&mut engine, events);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].time, at(80));
    assert!(
        alerts[0]
            .text
            .starts_with("New term in kubernetes.namespace: billing"),
        "{}",
        alerts[0].text
    );
}

#[test]
fn aggregation_sends_one_message() {
    let yaml = "
name: grouped
type: any
realert: 0s
aggregation: {minutes: 1}
summary_table_fields: [pod]
alert_text: 'error on {pod}'
alert_text_type: alert_text_only
alert: [debug]
";
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    let mut events: Vec<Event> = (0..5)
        .map(|i| ev(i, json!({"pod": if i % 2 == 0 {"a"} else {"b"}})))
        .collect();
    events.push(ev(100, json!({"pod": "c"})));
    let alerts = feed(&mut engine, events);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].num_matches, 5);
    assert_eq!(alerts[0].events.len(), 5);
    assert!(
        alerts[0]
            .text
            .starts_with("pod | count\na | 3\nb | 2\n\nerror on a\n----"),
        "{}",
        alerts[0].text
    );
    let mut rest = Vec::new();
    engine.finish(&mut rest);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].text, "pod | count\nc | 1\n\nerror on c");
}

#[test]
fn query_keys_are_bounded() {
    let config = EngineConfig {
        max_query_keys: 16,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, [rule(FREQUENCY)]);
    let events: Vec<Event> = (0..1000)
        .map(|i| ev(i / 10, json!({"level": "error", "pod": format!("p{i}")})))
        .collect();
    let alerts = feed(&mut engine, events);
    assert!(alerts.is_empty());
    let stats = &engine.stats().rules["bursts"];
    assert!(stats.evicted_keys >= 1000 - 16, "{stats:?}");
    // The state holds at most the bound.
    let state: Value = serde_json::from_slice(&engine.state_json()).unwrap();
    let keys = state["rules"]["bursts"]["state"]["keys"]["map"]
        .as_object()
        .unwrap()
        .len();
    assert!(keys <= 16, "{keys} keys kept");
}

#[test]
fn restart_keeps_silences_terms_and_flatlines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.state");
    let yamls = [
        "name: bursts\ntype: frequency\nnum_events: 2\ntimeframe: 60s\nrealert: {minutes: 10}\nalert: [debug]\n",
        "name: terms\ntype: new_term\nfields: [ns]\nrealert: 0s\nalert: [debug]\n",
        "name: quiet\ntype: flatline\nthreshold: 1\ntimeframe: 60s\nrealert: 0s\nalert: [debug]\n",
    ];
    let rules = || yamls.iter().map(|y| rule(y)).collect::<Vec<_>>();
    let events = || vec![ev(0, json!({"ns": "shop"})), ev(10, json!({"ns": "auth"}))];

    let mut first = Engine::new(EngineConfig::default(), rules());
    let alerts = feed(&mut first, events());
    let names: Vec<&str> = alerts.iter().map(|a| &*a.rule).collect();
    assert_eq!(names, ["terms", "bursts", "terms"]);
    first.save_state(&path).unwrap();

    // The same events again (re-read after a crash): no alert storm.
    let mut second = Engine::new(EngineConfig::default(), rules());
    assert!(second.restore_state(&path, at(20)).unwrap());
    let again = feed(&mut second, events());
    assert!(
        again.is_empty(),
        "{:?}",
        again.iter().map(|a| &a.rule).collect::<Vec<_>>()
    );
    // The flatline window that began before the restart still fires: the last event
    // was at 10, so it is due at 70 and found once the watermark passes it.
    let mut out = Vec::new();
    second.tick(at(20 + 89), &mut out);
    assert!(out.is_empty());
    second.tick(at(20 + 91), &mut out);
    assert_eq!(times(&out), vec![(70, None)]);
    assert_eq!(&*out[0].rule, "quiet");

    // A rule whose window changed starts afresh but keeps its silences.
    let changed = yamls[0].replace("num_events: 2", "num_events: 3");
    let mut third = Engine::new(EngineConfig::default(), [rule(&changed)]);
    third.restore_state(&path, at(20)).unwrap();
    let events = vec![ev(30, json!({})), ev(31, json!({})), ev(32, json!({}))];
    assert!(
        feed(&mut third, events).is_empty(),
        "silenced until 10 minutes after 10"
    );
}

#[test]
fn state_file_version_1_golden() {
    // tests/data/state-v1.json was written by this format's first version after the
    // events of restart_keeps_silences_terms_and_flatlines.
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/state-v1.json"
    ))
    .unwrap();
    let mut engine = Engine::new(
        EngineConfig::default(),
        [rule(
            "name: terms\ntype: new_term\nfields: [ns]\nrealert: 0s\nalert: [debug]\n",
        )],
    );
    engine.restore_json(&text, at(20)).unwrap();
    let alerts = feed(
        &mut engine,
        vec![
            ev(30, json!({"ns": "shop"})),
            ev(31, json!({"ns": "billing"})),
        ],
    );
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].text.contains("billing"));
    let err = engine
        .restore_json(br#"{"version": 9}"#, at(0))
        .unwrap_err();
    assert_eq!(err, "version 9 is not one this build reads (1)");
}

#[test]
fn reloading_an_unchanged_rule_keeps_its_window() {
    let mut engine = Engine::new(EngineConfig::default(), [rule(FREQUENCY)]);
    let e = |t| ev(t, json!({"level": "error", "pod": "a"}));
    assert!(feed(&mut engine, vec![e(0), e(1)]).is_empty());
    // Same rule, new alert text: the window is kept.
    let edited = format!("{FREQUENCY}alert_text: edited\n");
    engine.set_rules([Arc::new(rule(&edited))]);
    let alerts = feed(&mut engine, vec![e(2)]);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].text.starts_with("edited"));
    let _ = Duration::ZERO;
}

#[test]
fn a_wrong_clock_in_the_future_does_not_make_later_events_late() {
    let mut engine = Engine::new(EngineConfig::default(), [rule(FREQUENCY)]);
    let mut out = Vec::new();
    let e = |t, pod: &str| ev(t, json!({"level": "error", "pod": pod}));
    // One event a day ahead, then a normal burst, all with the wall clock at 100.
    engine.process(&[e(86_400, "skewed")], at(100), &mut out);
    engine.process(&[e(100, "a"), e(101, "a"), e(102, "a")], at(102), &mut out);
    assert_eq!(times(&out), vec![(102, key("a"))]);
    let stats = engine.stats();
    assert_eq!(stats.future_events, 1);
    assert_eq!(stats.rules["bursts"].late_events, 0);
}

#[test]
fn pending_aggregations_are_bounded() {
    let yaml = "name: grouped\ntype: any\nrealert: 0s\naggregation: 1h\naggregation_key: pod\nalert: [debug]\n";
    let config = EngineConfig {
        max_query_keys: 3,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, [rule(yaml)]);
    let events: Vec<Event> = (0..5)
        .map(|i| ev(i, json!({"pod": format!("p{i}")})))
        .collect();
    let alerts = feed(&mut engine, events);
    // p0 and p1 are sent early to keep three aggregations pending.
    let sent: Vec<String> = alerts
        .iter()
        .map(|a| a.events[0]["pod"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["p0", "p1"]);
    assert_eq!(engine.stats().rules["grouped"].evicted_keys, 2);
    let mut rest = Vec::new();
    engine.finish(&mut rest);
    assert_eq!(rest.len(), 3);
}
