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
timeframe: {seconds: 10}
spike_height: 2
spike_type: both
realert: 0s
alert: [debug]
";

/// One event a second at `from..to` (seconds).
fn per_second(from: i64, to: i64) -> Vec<Event> {
    (from..to).map(|s| ev(s, json!({}))).collect()
}

fn spike_alerts(yaml: &str, events: Vec<Event>) -> Vec<Alert> {
    let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
    feed(&mut engine, events)
}

#[test]
fn spike_compares_sliding_windows() {
    // One a second for 25 s, then 11 at once at 25 s, then one a second again. At the
    // 11th event of 25 s the current window (16..=25 s) holds 9 + 11 = 20 events and the
    // reference window (6..=15 s) 10: 20 >= 2 x 10. Fixed 10 s buckets would compare
    // 16 ([20, 30)) with 10 and see no spike.
    let mut events = per_second(0, 25);
    events.extend((0..11).map(|_| ev(25, json!({}))));
    events.extend(per_second(26, 60));
    let alerts = spike_alerts(SPIKE, events.iter().map(Event::clone_unacked).collect());
    assert_eq!(times(&alerts), vec![(25, None)]);
    assert!(
        alerts[0]
            .text
            .contains("An abnormal number (20) of events occurred around 2026-01-01T00:00:16Z: 10 in the previous 10s"),
        "{}",
        alerts[0].text
    );
    // The windows are cleared after a match and compared again two timeframes on: the
    // steady rate after it is no spike. With ten events at 25 s, 19 is no spike either.
    let mut ten = per_second(0, 25);
    ten.extend((0..10).map(|_| ev(25, json!({}))));
    assert_eq!(times(&spike_alerts(SPIKE, ten)), vec![]);
    // spike_type down does not take the rise, so nothing is cleared, and at 35 s the
    // current window (26..=35 s, 10 events) is half the reference (16..=25 s, 20): a drop.
    let down = SPIKE.replace("spike_type: both", "spike_type: down");
    let events_again = || events.iter().map(Event::clone_unacked).collect::<Vec<_>>();
    assert_eq!(
        times(&spike_alerts(&down, events_again())),
        vec![(35, None)]
    );
    // threshold_cur above both current counts (20 and 10) holds both back.
    let cur = format!("{SPIKE}threshold_cur: 21\n");
    assert_eq!(times(&spike_alerts(&cur, events_again())), vec![]);
}

#[test]
fn spike_down_after_a_gap_and_threshold_ref() {
    // One a second for 30 s, silence, then an event at 45 s: its current window holds 1,
    // the reference window (20..=29 s) 10, and 1 <= 10 / 2.
    let mut events = per_second(0, 30);
    events.push(ev(45, json!({})));
    let copy = || events.iter().map(Event::clone_unacked).collect::<Vec<_>>();
    assert_eq!(times(&spike_alerts(SPIKE, copy())), vec![(45, None)]);
    let up = SPIKE.replace("spike_type: both", "spike_type: up");
    assert_eq!(times(&spike_alerts(&up, copy())), vec![]);
    // threshold_ref: a reference window with fewer events is not compared.
    let r10 = format!("{SPIKE}threshold_ref: 10\n");
    assert_eq!(times(&spike_alerts(&r10, copy())), vec![(45, None)]);
    let r11 = format!("{SPIKE}threshold_ref: 11\n");
    assert_eq!(times(&spike_alerts(&r11, copy())), vec![]);
    // Nothing is compared before the reference window could fill (two timeframes).
    let mut early = per_second(0, 15);
    early.push(ev(19, json!({})));
    assert_eq!(times(&spike_alerts(SPIKE, early)), vec![]);
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

#[test]
fn frequency_window_excludes_an_event_exactly_timeframe_old() {
    let yaml =
        "name: f\ntype: frequency\nnum_events: 3\ntimeframe: 60s\nrealert: 0s\nalert: [debug]\n";
    let count = |secs: &[i64]| {
        let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
        let mut out = feed(
            &mut engine,
            secs.iter().map(|s| ev(*s, json!({}))).collect(),
        );
        engine.finish(&mut out);
        times(&out)
    };
    // As elastalert's EventWindow: the event at 0 has left the window when one at 60
    // arrives (60 - 0 is not less than the 60 s timeframe).
    assert_eq!(count(&[0, 30, 60]), vec![]);
    assert_eq!(count(&[0, 30, 59]), vec![(59, None)]);
    assert_eq!(count(&[0, 30, 60, 61]), vec![(61, None)]);
}

#[test]
fn new_term_falls_back_to_query_key_and_alerts_on_missing_fields() {
    let run = |yaml: &str, events: Vec<Event>| {
        let mut engine = Engine::new(EngineConfig::default(), [rule(yaml)]);
        times(&feed(&mut engine, events))
    };
    // Without `fields`, elastalert takes the terms from `query_key`.
    let by_host = "name: hosts\ntype: new_term\nquery_key: host\nrealert: 0s\nalert: [debug]\n";
    let hosts = ["web1", "web2", "web1", "web3"];
    let events = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| ev(i as i64, json!({"host": h})))
        .collect();
    assert_eq!(
        run(by_host, events),
        vec![(0, key("web1")), (1, key("web2")), (3, key("web3"))]
    );
    // alert_on_missing_field: a missing field, or one elastalert takes for missing (an
    // empty string, 0, false, null), is a match of its own; without it, no match.
    let events = || {
        vec![
            ev(0, json!({"a": "x"})),
            ev(1, json!({})),
            ev(2, json!({"a": ""})),
            ev(3, json!({"a": 0})),
            ev(4, json!({"a": "x"})),
            ev(5, json!({"a": "y"})),
        ]
    };
    let plain = "name: t\ntype: new_term\nfields: [a]\nrealert: 0s\nalert: [debug]\n";
    assert_eq!(run(plain, events()), vec![(0, None), (5, None)]);
    let missing = format!("{plain}alert_on_missing_field: true\n");
    assert_eq!(
        run(&missing, events()),
        vec![(0, None), (1, None), (2, None), (3, None), (5, None)]
    );
    // Neither fields nor query_key: refused, naming both.
    let err =
        Rule::from_yaml("name: t\ntype: new_term\nalert: [debug]\n", "test.yaml").unwrap_err();
    assert!(err.to_string().contains("fields"), "{err}");
    assert!(err.to_string().contains("query_key"), "{err}");
}

#[test]
fn spike_sees_a_drop_on_a_silent_stream() {
    // One a second for 30 s, then nothing: once the watermark moves on with the wall
    // clock, the windows move with it and the empty current window is a drop.
    let mut engine = Engine::new(EngineConfig::default(), [rule(SPIKE)]);
    let mut out = feed(&mut engine, per_second(0, 30));
    assert!(out.is_empty());
    engine.tick(at(200), &mut out);
    assert_eq!(out.len(), 1, "{:?}", times(&out));
    assert!(
        out[0].text.contains("An abnormal number (0) of events"),
        "{}",
        out[0].text
    );
}

#[test]
fn spike_windows_are_bounded() {
    // 2,000 distinct instants within one timeframe, at most 100 kept per window: the
    // oldest are counted together, no event is lost from the counts.
    let config = EngineConfig {
        max_window_entries: 100,
        ..EngineConfig::default()
    };
    let r = rule(SPIKE);
    let name = r.name().to_owned();
    let mut engine = Engine::new(config, [r]);
    let events: Vec<Event> = (0..2000)
        .map(|i| {
            let mut e = Event::from_json(json!({})).unwrap();
            let nanos = u32::try_from(i % 1000).unwrap() * 1_000_000;
            e.set_timestamp(Timestamp::new(BASE + i / 1000, nanos).unwrap());
            e
        })
        .collect();
    let out = feed(&mut engine, events);
    assert!(out.is_empty());
    let stats = engine.stats();
    assert_eq!(stats.rules[&name].merged_window_entries, 1900);
}

#[test]
fn spike_windows_per_query_key() {
    // Host a steady at one a second; host b the same with 11 more at 25 s: only b spikes.
    let yaml = format!("{SPIKE}query_key: host\n");
    let mut events = Vec::new();
    for s in 0..60 {
        events.push(ev(s, json!({"host": "a"})));
        events.push(ev(s, json!({"host": "b"})));
        if s == 25 {
            events.extend((0..10).map(|_| ev(25, json!({"host": "b"}))));
        }
    }
    assert_eq!(times(&spike_alerts(&yaml, events)), vec![(25, key("b"))]);
}
