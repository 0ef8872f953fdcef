//! The consumer against moto_server: checkpoints that follow acknowledgements,
//! resharding in order, and DynamoDB leases shared by two consumers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::set_aws_env;
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{
    read_checkpoints, Consumer, ConsumerConfig, DynamoDbConfig, FileCheckpoints, KinesisConfig,
    Sink, SHARD_END,
};
use logtide_testkit::{KinesisMock, KinesisTool, MotoServer};
use serde_json::json;

fn event(container: &str, n: u64, msg: String) -> Event {
    let mut e = Event::new(Timestamp::new(1_700_000_000 + n as i64, 0).unwrap());
    e.insert("message", json!(msg)).unwrap();
    e.insert("container.id", json!(container)).unwrap();
    e.insert("log.offset", json!(n)).unwrap();
    e
}

fn sink(moto: &MotoServer, dir: &std::path::Path) -> Sink {
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.join("sink-dl");
    Sink::connect(&config).unwrap()
}

fn consumer_config(moto: &logtide_testkit::Service, dir: &std::path::Path) -> ConsumerConfig {
    let mut c = ConsumerConfig::new("logs");
    c.endpoint = Some(moto.endpoint());
    c.region = Some("us-east-1".into());
    c.checkpoint.path = dir.join("checkpoints");
    c.dead_letter_path = dir.join("dl");
    c.checkpoint_interval = Duration::from_millis(300);
    c.shard_sync_interval = Duration::from_millis(500);
    c.idle_poll_interval = Duration::from_millis(200);
    c
}

/// (container, offset) of an event.
fn id(e: &Event) -> (String, u64) {
    (
        e.get("container.id").unwrap().as_str().unwrap().to_owned(),
        e.get("log.offset").unwrap().as_u64().unwrap(),
    )
}

/// Polls until `until` holds or `timeout`; `on` sees every event (and decides its ack).
fn drive<S>(
    c: &mut Consumer,
    timeout: Duration,
    state: &mut S,
    mut on: impl FnMut(&mut S, &mut Event, &str),
    until: impl Fn(&S) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !until(state) {
        assert!(Instant::now() < deadline, "timed out; {:?}", c.stats());
        for mut b in c.poll(Duration::from_millis(100)).unwrap() {
            for e in &mut b.events {
                on(state, e, &b.shard_id);
            }
        }
    }
}

#[test]
fn checkpoints_follow_acknowledgements_and_splits_rejoin() {
    set_aws_env();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&moto, dir.path());
    let mut all: HashSet<(String, u64)> = HashSet::new();
    let events: Vec<Event> = (0..2000)
        .map(|i| event(["a", "b", "c"][i as usize % 3], i, format!("line {i}")))
        .collect();
    for b in events.chunks(500) {
        s.send(b).unwrap();
    }
    s.send(&[event("a", 2000, "z".repeat(3 << 20))]).unwrap();
    for e in &events {
        all.insert(id(e));
    }
    all.insert(("a".into(), 2000));

    // First run: acknowledges only offsets below 1000; the others' tokens are dropped.
    let config = consumer_config(&moto, dir.path());
    let mut c = Consumer::connect(&config).unwrap();
    let mut st = (HashSet::new(), HashMap::<String, u64>::new());
    drive(
        &mut c,
        Duration::from_secs(60),
        &mut st,
        |(seen, last_per_container), e, _| {
            let (k, n) = id(e);
            if let Some(prev) = last_per_container.insert(k.clone(), n) {
                assert!(prev < n, "{k}: {n} after {prev}");
            }
            if n == 2000 {
                assert_eq!(e.get("message"), Some(&json!("z".repeat(3 << 20))));
            }
            let t = e.take_ack().unwrap();
            if n < 1000 {
                t.accept();
            } else {
                drop(t);
            }
            assert!(seen.insert((k, n)), "duplicate in one run");
        },
        |(seen, _)| seen.len() == all.len(),
    );
    c.commit().unwrap();
    // Every shard was read to its tip.
    let mut lag = c.lag();
    lag.sort();
    assert_eq!(
        lag,
        [
            ("shardId-000000000000".to_owned(), 0),
            ("shardId-000000000001".to_owned(), 0)
        ]
    );
    let stats = c.shutdown().unwrap();
    assert!(stats.acks_abandoned > 0, "{stats:?}");
    assert_eq!(stats.dead_letters_incomplete, 0);
    let cps = FileCheckpoints::open(&dir.path().join("checkpoints"), "logs").unwrap();
    assert_eq!(cps.all().len(), 2, "{:?}", cps.all());

    // Second run: everything not acknowledged comes again; now all is acknowledged.
    let mut c = Consumer::connect(&config).unwrap();
    let mut again = HashSet::new();
    let want: HashSet<_> = all.iter().filter(|(_, n)| *n >= 1000).cloned().collect();
    drive(
        &mut c,
        Duration::from_secs(60),
        &mut again,
        |again, e, _| {
            again.insert(id(e));
            e.take_ack().unwrap().accept();
        },
        |again| want.is_subset(again),
    );
    // Let the last batches in, then checkpoint.
    let quiet = Instant::now() + Duration::from_secs(1);
    drive(
        &mut c,
        Duration::from_secs(5),
        &mut (),
        |_, e, _| e.take_ack().unwrap().accept(),
        |_| Instant::now() > quiet,
    );
    c.commit().unwrap();
    c.shutdown().unwrap();

    // Third run: nothing left.
    let mut c = Consumer::connect(&config).unwrap();
    let mut extra = 0;
    let until = Instant::now() + Duration::from_secs(2);
    drive(
        &mut c,
        Duration::from_secs(10),
        &mut extra,
        |extra, e, _| {
            *extra += 1;
            e.take_ack().unwrap().accept();
        },
        |_| Instant::now() > until,
    );
    assert_eq!(
        extra, 0,
        "records read again after every one was checkpointed"
    );
}

/// Against kinesis-mock: moto's SplitShard moves the parent's records into the children
/// (with new sequence numbers) and never closes the parent for readers, so it cannot show
/// reading in order across a split; kinesis-mock closes shards as Kinesis does.
#[test]
fn children_start_after_their_parents_end() {
    set_aws_env();
    let moto = KinesisMock::start(&[("logs", 1)]);
    let tool = KinesisTool::new(&moto.endpoint());
    tool.wait_active("logs");
    let dir = tempfile::tempdir().unwrap();
    let containers = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let producer = {
        let endpoint = moto.endpoint();
        let dir = dir.path().to_owned();
        let tool = KinesisTool::new(&endpoint);
        std::thread::spawn(move || {
            let mut config = KinesisConfig::new("logs");
            config.endpoint = Some(endpoint);
            config.region = Some("us-east-1".into());
            config.dead_letter_path = dir.join("sink-dl");
            let mut s = Sink::connect(&config).unwrap();
            let mut n = 0u64;
            for round in 0..12 {
                if round == 4 {
                    tool.split_shard("logs");
                }
                if round == 8 {
                    tool.update_shard_count("logs", 4);
                }
                let batch: Vec<Event> = (0..100)
                    .map(|_| {
                        n += 1;
                        event(containers[n as usize % 8], n, format!("line {n}"))
                    })
                    .collect();
                s.send(&batch).unwrap();
                std::thread::sleep(Duration::from_millis(150));
            }
            n
        })
    };
    let config = consumer_config(&moto, dir.path());
    let mut c = Consumer::connect(&config).unwrap();
    let mut st = (
        BTreeMap::<String, Vec<u64>>::new(),
        HashSet::<String>::new(),
        0u64,
    );
    drive(
        &mut c,
        Duration::from_secs(90),
        &mut st,
        |(order, shards, total), e, shard| {
            let (k, n) = id(e);
            order.entry(k).or_default().push(n);
            shards.insert(shard.to_owned());
            *total += 1;
            e.take_ack().unwrap().accept();
        },
        |(_, _, total)| producer.is_finished() && *total >= 1200,
    );
    let (order, shards, total) = st;
    let sent = producer.join().unwrap();
    assert_eq!(total, sent, "{:?}", c.stats());
    for (k, ns) in &order {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "{k}: out of order {ns:?}"
        );
    }
    assert!(shards.len() >= 3, "read from {shards:?}");
    c.commit().unwrap();
    let stats = c.shutdown().unwrap();
    assert!(stats.shards_ended >= 1, "{stats:?}");
    let cps = FileCheckpoints::open(&dir.path().join("checkpoints"), "logs").unwrap();
    assert!(
        cps.all().values().any(|v| v == SHARD_END),
        "{:?}",
        cps.all()
    );
}

#[test]
fn leases_balance_and_fail_over() {
    set_aws_env();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 4);
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(&moto, dir.path());
    let events: Vec<Event> = (0..2000)
        .map(|i| event(&format!("c{}", i % 16), i, format!("line {i}")))
        .collect();
    s.send(&events[..1000]).unwrap();
    let lease = |worker: &str| {
        let mut c = consumer_config(&moto, dir.path());
        c.checkpoint.dynamodb = Some(DynamoDbConfig {
            table: "logtide-leases".into(),
            lease_duration: Duration::from_secs(3),
            worker_id: Some(worker.into()),
        });
        c
    };
    let mut got: HashSet<u64> = HashSet::new();
    let mut a = Consumer::connect(&lease("a")).unwrap();
    drive(
        &mut a,
        Duration::from_secs(20),
        &mut got,
        |got, e, _| {
            got.insert(id(e).1);
            e.take_ack().unwrap().accept();
        },
        |got| got.len() >= 500,
    );
    assert_eq!(a.shards().len(), 4, "a alone holds every shard");

    // A second worker steals its share.
    let mut b = Consumer::connect(&lease("b")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.shards().len() == 2 && b.shards().len() == 2) {
        assert!(
            Instant::now() < deadline,
            "a {:?} b {:?}",
            a.shards(),
            b.shards()
        );
        for c in [&mut a, &mut b] {
            for mut batch in c.poll(Duration::from_millis(50)).unwrap() {
                for e in &mut batch.events {
                    got.insert(id(e).1);
                    e.take_ack().unwrap().accept();
                }
            }
        }
    }
    // Each lease `a` lost is counted once, whether it found out renewing it or when a
    // checkpoint of its last records failed.
    a.commit().unwrap();
    assert_eq!(a.stats().leases_lost, 2, "{:?}", a.stats());
    // `a` dies without a word (no release), holding unacknowledged events.
    for mut batch in a.poll(Duration::from_millis(50)).unwrap() {
        for e in &mut batch.events {
            std::mem::forget(e.take_ack());
        }
    }
    drop(a);
    s.send(&events[1000..]).unwrap();
    drive(
        &mut b,
        Duration::from_secs(40),
        &mut got,
        |got, e, _| {
            got.insert(id(e).1);
            e.take_ack().unwrap().accept();
        },
        |got| got.len() == 2000,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.shards().len() < 4 {
        assert!(Instant::now() < deadline, "b holds {:?}", b.shards());
        b.poll(Duration::from_millis(100)).unwrap();
    }
    b.commit().unwrap();
    // The lease table as an onlooker reads it: four shards, all b's, checkpointed.
    let leases = read_checkpoints(&lease("status")).unwrap();
    assert_eq!(leases.len(), 4, "{leases:?}");
    for l in &leases {
        assert_eq!(l.owner.as_deref(), Some("b"), "{l:?}");
        assert!(l.checkpoint.chars().all(|c| c.is_ascii_digit()), "{l:?}");
    }
    let stats = b.shutdown().unwrap();
    assert_eq!(got.len(), 2000, "{stats:?}");
    let released = read_checkpoints(&lease("status")).unwrap();
    assert!(released.iter().all(|l| l.owner.is_none()), "{released:?}");
}
