//! The sink against kinesis-mock: a stream whose record limit was raised with
//! UpdateMaxRecordSize (read with `max_record_bytes: auto`), and records refused one by
//! one (per-record errors in a successful PutRecords answer) going to the dead-letter file
//! without holding back the events after them.

use crate::common::set_aws_env;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{Decoder, KinesisConfig, MaxRecordBytes, Sink};
use logtide_testkit::{KinesisMock, KinesisTool};
use serde_json::{json, Value};

fn event(n: usize, msg: String) -> Event {
    let mut e = Event::new(Timestamp::new(1_700_000_000 + n as i64, 0).unwrap());
    e.insert("message", json!(msg)).unwrap();
    e.insert("container.id", json!("c1")).unwrap();
    e.insert("n", json!(n)).unwrap();
    e
}

fn config(endpoint: &str, stream: &str, dir: &std::path::Path) -> KinesisConfig {
    let mut c = KinesisConfig::new(stream);
    c.endpoint = Some(endpoint.to_owned());
    c.region = Some("us-east-1".into());
    c.dead_letter_path = dir.join("dl");
    c
}

fn decode_all(tool: &KinesisTool, stream: &str) -> Vec<Event> {
    let mut d = Decoder::default();
    tool.read_all(stream)
        .iter()
        .flat_map(|r| d.decode(&r.data, 0).unwrap().events)
        .collect()
}

#[test]
fn a_raised_record_limit_is_read_from_the_stream() {
    set_aws_env();
    let mock = KinesisMock::start(&[("big", 1)]);
    let tool = KinesisTool::new(&mock.endpoint());
    assert_eq!(tool.set_max_record_size("big", 2048), Some(2048));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&mock.endpoint(), "big", dir.path());
    c.max_record_bytes = MaxRecordBytes::FromStream;
    let mut sink = Sink::connect(&c).unwrap();
    assert_eq!(sink.max_record_bytes(), 2 << 20);
    let large = "l".repeat(1_500_000);
    sink.send(&[event(0, "small".into()), event(1, large.clone())])
        .unwrap();
    let stats = sink.stats();
    assert_eq!(stats.events, 2);
    assert_eq!(
        stats.events_split, 0,
        "1.5 MB fits one record of this stream"
    );
    assert_eq!(stats.dead_letters_rejected, 0);
    let events = decode_all(&tool, "big");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].get("message"), Some(&json!(large)));
}

#[test]
fn refused_records_are_dead_lettered_and_hold_nothing_back() {
    set_aws_env();
    let mock = KinesisMock::start(&[("small", 2)]);
    let tool = KinesisTool::new(&mock.endpoint());
    let dir = tempfile::tempdir().unwrap();
    // The sink believes records may be 2 MiB; the stream takes 1 MiB, and refuses larger
    // records one by one.
    let mut c = config(&mock.endpoint(), "small", dir.path());
    c.max_record_bytes = MaxRecordBytes::Bytes(2 << 20);
    c.aggregate = Some(false);
    let mut sink = Sink::connect(&c).unwrap();
    let events: Vec<Event> = (0..20)
        .map(|n| {
            let len = if n == 5 || n == 12 { 1_500_000 } else { 100 };
            event(n, format!("{n} {}", "r".repeat(len)))
        })
        .collect();
    sink.send(&events).unwrap();
    let stats = sink.stats().clone();
    assert_eq!(stats.events, 18, "{stats:?}");
    assert_eq!(stats.dead_letters_rejected, 2, "{stats:?}");
    assert_eq!(
        stats.requests_refused, 0,
        "refused record by record: {stats:?}"
    );

    let got = decode_all(&tool, "small");
    let ns: Vec<u64> = got
        .iter()
        .map(|e| e.get("n").unwrap().as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (0..20).filter(|n| *n != 5 && *n != 12).collect();
    assert_eq!(ns, want, "the rest arrived, in order");

    let file = std::fs::read_dir(dir.path().join("dl"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lines: Vec<Value> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, n) in lines.iter().zip([5, 12]) {
        let reason = line["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("rejected: InvalidArgumentException"),
            "{reason}"
        );
        assert_eq!(line["event"]["n"], n);
        assert_eq!(
            line["event"]["message"],
            events[n].get("message").cloned().unwrap()
        );
    }
}
