//! The sink against moto_server, a real local Kinesis-compatible service.

use crate::common::set_aws_env;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{Decoder, KinesisConfig, Sink};
use logtide_testkit::{KinesisTool, MotoServer};
use serde_json::json;

fn event(container: &str, n: usize, msg: String) -> Event {
    let mut e = Event::new(Timestamp::new(1_700_000_000 + n as i64, 0).unwrap());
    e.insert("message", json!(msg)).unwrap();
    e.insert("container.id", json!(container)).unwrap();
    e.insert("log.offset", json!(n)).unwrap();
    e
}

#[test]
fn events_arrive_in_order_per_container() {
    set_aws_env();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let dir = tempfile::tempdir().unwrap();
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.path().join("dl");
    let mut sink = Sink::connect(&config).unwrap();
    let events: Vec<Event> = (0..3000)
        .map(|i| {
            event(
                ["a", "b", "c"][i % 3],
                i,
                format!("line {i} {}", "x".repeat(i % 700)),
            )
        })
        .collect();
    for batch in events.chunks(512) {
        sink.send(batch).unwrap();
    }
    let mut big = event("a", 3000, "y".repeat(3 << 20));
    big.insert("kind", json!("big")).unwrap();
    sink.send(std::slice::from_ref(&big)).unwrap();
    let stats = sink.stats().clone();
    assert_eq!(stats.events, 3001, "{stats:?}");
    assert_eq!(stats.events_split, 1);

    let records = tool.read_all("logs");
    assert_eq!(records.len() as u64, stats.records);
    let mut decoder = Decoder::default();
    let mut per_key: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let mut got_big = false;
    for r in &records {
        for e in decoder.decode(&r.data, 0).unwrap().events {
            let c = e.get("container.id").unwrap().as_str().unwrap().to_owned();
            assert_eq!(c, r.partition_key);
            if e.get("kind").is_some() {
                assert_eq!(e.get("message"), big.get("message"));
                got_big = true;
            }
            per_key
                .entry(c)
                .or_default()
                .push(e.get("log.offset").unwrap().as_u64().unwrap());
        }
    }
    assert!(got_big);
    let total: usize = per_key.values().map(Vec::len).sum();
    assert_eq!(total, 3001);
    for (k, offsets) in per_key {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "key {k} out of order"
        );
    }
}

#[test]
fn a_request_refused_as_a_whole_is_halved_down_to_the_refused_record() {
    set_aws_env();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("limits", 1);
    let dir = tempfile::tempdir().unwrap();
    // moto refuses a whole request holding a record over 1 MiB; the sink believes 2 MiB.
    let mut config = KinesisConfig::new("limits");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.path().join("dl");
    config.max_record_bytes = logtide_kinesis::MaxRecordBytes::Bytes(2 << 20);
    let mut sink = Sink::connect(&config).unwrap();
    let events: Vec<Event> = (0..40)
        .map(|i| {
            let len = if i == 17 { 1_500_000 } else { 50 };
            event(&format!("k{i}"), i, "m".repeat(len))
        })
        .collect();
    sink.send(&events).unwrap();
    let stats = sink.stats().clone();
    assert_eq!(stats.events, 39, "{stats:?}");
    assert_eq!(stats.dead_letters_rejected, 1, "{stats:?}");
    assert!(stats.requests_refused >= 2, "halved: {stats:?}");
    let mut decoder = Decoder::default();
    let offsets: std::collections::BTreeSet<u64> = tool
        .read_all("limits")
        .iter()
        .flat_map(|r| decoder.decode(&r.data, 0).unwrap().events)
        .map(|e| e.get("log.offset").unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(offsets.len(), 39);
    assert!(!offsets.contains(&17));
    let dl = std::fs::read_dir(dir.path().join("dl"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(dl).unwrap();
    assert!(
        text.contains("\"reason\":\"rejected: ValidationException"),
        "{}",
        &text[..200]
    );
}

/// `oversize: offload` with the objects' two failures: a bucket that cannot be written
/// (the event goes to the dead-letter file with the reason, counted, and the rest of the
/// batch ships), and a head whose object is missing when the consumer reads it (handed on
/// as the head with `error.message`, counted, never stopping the shard).
#[test]
fn offload_failures_are_dead_lettered_or_reported() {
    use logtide_kinesis::{Consumer, ConsumerConfig, OversizePolicy, RecordFormat};
    set_aws_env();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 1);
    let s3 = logtide_testkit::S3Tool::new(&moto.endpoint());
    s3.create_bucket("offload");
    let dir = tempfile::tempdir().unwrap();
    let sink_config = |bucket: &str| {
        let mut c = KinesisConfig::new("logs");
        c.endpoint = Some(moto.endpoint());
        c.region = Some("us-east-1".into());
        c.dead_letter_path = dir.path().join("dl");
        c.format = RecordFormat::Json;
        c.oversize = Some(OversizePolicy::Offload);
        c.offload = Some(
            serde_json::from_value(json!({"bucket": bucket, "endpoint": moto.endpoint()})).unwrap(),
        );
        c
    };
    let batch = |n: usize| {
        vec![
            event("a", n, "before".into()),
            event("a", n + 1, format!("big {}", "b".repeat(2 << 20))),
            event("a", n + 2, "after".into()),
        ]
    };

    let mut sink = Sink::connect(&sink_config("no-such-bucket")).unwrap();
    sink.send(&batch(0)).unwrap();
    let stats = sink.stats().clone();
    assert_eq!(
        (
            stats.events,
            stats.dead_letters_offload,
            stats.events_offloaded
        ),
        (2, 1, 0),
        "{stats:?}"
    );
    let dead: String = std::fs::read_dir(dir.path().join("dl"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert!(
        dead.contains("offload failed: PutObject s3://no-such-bucket/"),
        "{dead:.300}"
    );
    assert!(dead.contains("NoSuchBucket"), "{dead:.300}");
    assert!(dead.contains(&"b".repeat(1000)), "the whole event is kept");

    let mut sink = Sink::connect(&sink_config("offload")).unwrap();
    sink.send(&batch(10)).unwrap();
    assert_eq!(sink.stats().events_offloaded, 1);
    // A head whose object is not there.
    tool.put(
        "logs",
        "a",
        br#"{"@timestamp":"2024-06-01T00:00:00Z","message":"head","log":{"flags":["offloaded"]},"event":{"original_ref":"s3://offload/big/gone.json"}}"#,
    );

    let mut config = ConsumerConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.checkpoint.path = dir.path().join("cp");
    config.dead_letter_path = dir.path().join("consumer-dl");
    config.offload.endpoint = Some(moto.endpoint());
    let mut consumer = Consumer::connect(&config).unwrap();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while events.len() < 6 && std::time::Instant::now() < deadline {
        for b in consumer
            .poll(std::time::Duration::from_millis(200))
            .unwrap()
        {
            events.extend(b.events);
        }
    }
    let messages: Vec<String> = events
        .iter()
        .map(|e| {
            e.get_str("message")
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect()
        })
        .collect();
    assert_eq!(
        messages,
        ["before", "after", "before", "big bbbbbbbb", "after", "head"],
        "the first batch without its dead-lettered event, the second with the whole event"
    );
    assert_eq!(
        events[3].get_str("message").map(str::len),
        Some("big ".len() + (2 << 20))
    );
    assert!(events[5].get_str("error.message").is_some_and(
        |m| m.contains("offloaded event not restored from s3://offload/big/gone.json")
    ));
    let stats = consumer.stats();
    assert_eq!(
        (stats.events_restored, stats.offloaded_not_restored),
        (1, 1)
    );
    assert_eq!((stats.records_json, stats.records_logtide), (6, 0));
    for e in &mut events {
        if let Some(t) = e.take_ack() {
            t.accept();
        }
    }
    consumer.stop_fetching();
    consumer.shutdown().unwrap();
}
