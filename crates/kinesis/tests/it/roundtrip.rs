//! Property: whatever the events, every record is within the stream's limit, and decoding
//! the records — chunks in any order — gives back every event exactly (split policy), or
//! its head flagged truncated (truncate policy), or it is dead-lettered (dead_letter), or
//! its head points at its whole self in the offload store (offload); in both record
//! formats, and a `json` record is always one event as JSON.

use logtide_event::{Event, Timestamp};
use logtide_kinesis::{
    offloaded_reference, request_batches, Compression, Decoder, OffloadTarget, OversizePolicy,
    PackConfig, Packer, RecordFormat, MAX_REQUEST_BYTES, MAX_REQUEST_RECORDS,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

fn event(msg: String, n: u64) -> Event {
    let mut e = Event::new(Timestamp::new(1_700_000_000 + n as i64, n as u32).unwrap());
    e.insert("message", json!(msg)).unwrap();
    e.insert("log.offset", json!(n)).unwrap();
    e
}

fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{0,200}",
        1 => "[\"\\\\\n\t a-z]{0,200}",
        1 => (1000usize..30_000, any::<char>()).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
        1 => (1000usize..30_000).prop_map(|n| "{\"k\":\"v\"}".repeat(n / 9)),
    ]
}

fn config() -> impl Strategy<Value = PackConfig> {
    (
        prop_oneof![Just(4096usize), Just(8192), Just(65_536)],
        any::<bool>(),
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Zstd)
        ],
        prop_oneof![
            Just(OversizePolicy::Split),
            Just(OversizePolicy::Truncate),
            Just(OversizePolicy::DeadLetter),
            Just(OversizePolicy::Offload)
        ],
        prop_oneof![Just(RecordFormat::Logtide), Just(RecordFormat::Json)],
    )
        .prop_map(
            |(max_record_bytes, aggregate, compression, oversize, format)| {
                let json = format == RecordFormat::Json;
                PackConfig {
                    max_record_bytes,
                    // A json record is one uncompressed event, never a chunk.
                    aggregate: aggregate && !json,
                    compression: if json { Compression::None } else { compression },
                    oversize: if json && oversize == OversizePolicy::Split {
                        OversizePolicy::Truncate
                    } else {
                        oversize
                    },
                    format,
                }
            },
        )
}

proptest! {
    // Failing cases are kept next to this file, in `roundtrip.proptest-regressions`.
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..ProptestConfig::with_failure_persistence(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))
    })]

    #[test]
    fn records_fit_and_decode_back(
        msgs in proptest::collection::vec(message(), 1..25),
        key_of in proptest::collection::vec(0u8..3, 25),
        cfg in config(),
        shuffle_seed in any::<u64>(),
    ) {
        let originals: Vec<Event> = msgs.into_iter().enumerate().map(|(i, m)| event(m, i as u64)).collect();
        let keys: Vec<String> = (0..originals.len()).map(|i| format!("container-{}", key_of[i])).collect();
        let target = OffloadTarget { bucket: "offload".into(), prefix: "p".into() };
        let mut packer = if cfg.oversize == OversizePolicy::Offload {
            Packer::with_offload(cfg, target.clone(), 42).unwrap()
        } else {
            Packer::new(cfg, 42).unwrap()
        };
        let packed = packer.pack(&originals, &keys);
        if cfg.format == RecordFormat::Json {
            for r in &packed.records {
                prop_assert_eq!(r.events.len(), 1);
                prop_assert_eq!(r.data.last(), Some(&b'\n'));
                let v: Value = serde_json::from_slice(&r.data).unwrap();
                prop_assert!(v.is_object());
            }
        }

        for r in &packed.records {
            prop_assert!(r.size() <= cfg.max_record_bytes, "record {} > {}", r.size(), cfg.max_record_bytes);
        }
        for b in request_batches(&packed.records) {
            prop_assert!(b.len() <= MAX_REQUEST_RECORDS);
            prop_assert!(packed.records[b].iter().map(|r| r.size()).sum::<usize>() <= MAX_REQUEST_BYTES);
        }

        // Deliver in a shuffled order (as from several shards), then decode.
        let mut order: Vec<usize> = (0..packed.records.len()).collect();
        let mut s = shuffle_seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut decoder = Decoder::default();
        let mut decoded = Vec::new();
        for i in order {
            let out = decoder.decode(&packed.records[i].data, 0).unwrap();
            prop_assert!(out.incomplete.is_empty());
            for e in out.events {
                // An offloaded head: the whole event is the stored object.
                let whole = match offloaded_reference(&e) {
                    Some(reference) => {
                        let o = packed.offloads.iter().find(|o| target.reference(&o.key) == reference);
                        prop_assert!(o.is_some(), "no object for {}", reference);
                        let v: Value = serde_json::from_slice(&o.unwrap().body).unwrap();
                        Event::from_json(v).unwrap()
                    }
                    None => e,
                };
                decoded.push(whole);
            }
        }
        prop_assert_eq!(decoder.pending_events(), 0);

        let dead: Vec<usize> = packed.dead_letters.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(decoded.len() + dead.len(), originals.len());
        for (i, original) in originals.iter().enumerate() {
            if dead.contains(&i) {
                prop_assert!(matches!(cfg.oversize, OversizePolicy::DeadLetter | OversizePolicy::Offload));
                continue;
            }
            let offset = json!(i as u64);
            let got = decoded.iter().find(|e| e.get("log.offset") == Some(&offset));
            prop_assert!(got.is_some(), "event {} missing", i);
            let got = got.unwrap();
            prop_assert_eq!(got.timestamp(), original.timestamp());
            if packed.truncated.contains(&i) {
                let kept = got.get("message").and_then(Value::as_str).unwrap();
                let full = original.get("message").and_then(Value::as_str).unwrap();
                prop_assert!(full.starts_with(kept));
                prop_assert_eq!(got.get("log.flags"), Some(&json!(["truncated"])));
            } else {
                prop_assert_eq!(got.get("message"), original.get("message"));
            }
        }
    }
}
