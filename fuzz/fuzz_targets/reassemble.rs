//! Drives a `Reassembler` with lines, flushes and export/import hand-overs taken from the
//! input, and checks its size limits and that it never outputs more bytes than it was fed.
//!
//! Input layout:
//! - bytes 0 and 1 (little-endian u16): `max_entry_bytes` = 1 + value % 4096;
//! - byte 2: `max_pending` = 1 + value % 8 (bits 0-2) and `max_pending_bytes` =
//!   1 + 512 * (value >> 3) (bits 3-7: 1 to 15873 bytes);
//! - the rest, split on `\n`: records of one control byte followed by one log line
//!   (parsed with `Format::Auto`; lines that do not parse are skipped). Control bits
//!   0-1 pick the key (0..4), bit 2 asks for `flush_all` after the line, and bit 3 for
//!   handing the pending entries over to a fresh reassembler through export/import.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logtide_container_log::{parse_line, Entry, Format, Reassembler, ReassemblerConfig};

const KEY_MASK: u8 = 0b0011;
const FLUSH_ALL: u8 = 0b0100;
const HAND_OVER: u8 = 0b1000;

/// Running totals of what was fed in and what came out.
struct Totals {
    max_entry_bytes: usize,
    /// Bytes of all lines pushed so far.
    pushed: usize,
    /// Message and attrs bytes of all entries emitted so far.
    emitted: usize,
}

impl Totals {
    /// Checks one emitted entry and counts its bytes.
    fn entry(&mut self, entry: &Entry<'_, u8, usize>, pushed_lines: usize) {
        assert!(
            entry.message.len() <= self.max_entry_bytes,
            "entry of {} bytes over the limit of {}",
            entry.message.len(),
            self.max_entry_bytes
        );
        assert!(entry.chunks >= 1);
        assert!(entry.key <= KEY_MASK);
        assert!(entry.start < pushed_lines, "start must name a pushed line");
        self.emitted += entry.message.len() + entry.attrs.as_ref().map_or(0, |a| a.len());
    }
}

/// Checks the limits on what a reassembler holds, given what was fed in and emitted.
fn check_pending(r: &Reassembler<u8, usize>, config: &ReassemblerConfig, totals: &Totals) {
    assert!(
        r.pending_len() <= config.max_pending,
        "{} pending entries, limit {}",
        r.pending_len(),
        config.max_pending
    );
    assert!(
        r.pending_bytes() <= config.max_pending_bytes,
        "{} pending bytes, budget {}",
        r.pending_bytes(),
        config.max_pending_bytes
    );
    // Messages are bounded by the entry limit; attrs are copies of disjoint parts of the
    // pushed lines, so they are bounded by the bytes pushed.
    assert!(r.pending_bytes() <= config.max_pending * config.max_entry_bytes + totals.pushed);
    // Every byte held or emitted is a (decoded, never longer) copy of a distinct input
    // byte: each line's message goes to exactly one entry, its attrs at most once.
    assert!(
        totals.emitted + r.pending_bytes() <= totals.pushed,
        "{} bytes emitted and {} pending from {} bytes pushed",
        totals.emitted,
        r.pending_bytes(),
        totals.pushed
    );
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, records @ ..] = data else {
        return;
    };
    let config = ReassemblerConfig {
        max_entry_bytes: 1 + usize::from(u16::from_le_bytes([*a, *b])) % 4096,
        max_pending: 1 + usize::from(*c) % 8,
        max_pending_bytes: 1 + 512 * usize::from(*c >> 3),
    };
    let mut r = Reassembler::<u8, usize>::new(config);
    assert_eq!(r.config(), &config);
    let mut totals = Totals {
        max_entry_bytes: config.max_entry_bytes,
        pushed: 0,
        emitted: 0,
    };
    let mut pushed_lines = 0;

    for record in records.split(|&b| b == b'\n') {
        let Some((&control, text)) = record.split_first() else {
            continue;
        };
        let key = control & KEY_MASK;
        if let Ok(line) = parse_line(text, Format::Auto) {
            let meta = pushed_lines;
            pushed_lines += 1;
            totals.pushed += text.len();
            let mut emitted = Vec::new();
            let before = *r.stats();
            r.push(&key, &line, meta, |entry| {
                totals.entry(&entry, pushed_lines);
                emitted.push((entry.key, entry.stream, entry.partial, entry.start));
            });
            if line.partial {
                // A chunk finishes nothing; it may only evict pending entries, as partial:
                // one for `max_pending`, the rest for `max_pending_bytes`.
                let s = r.stats();
                let evicted = (s.evicted - before.evicted)
                    + (s.evicted_over_budget - before.evicted_over_budget);
                assert_eq!(emitted.len() as u64, evicted, "a chunk emitted {emitted:?}");
                assert!(
                    s.evicted - before.evicted <= 1,
                    "a chunk emitted {emitted:?}"
                );
                assert!(emitted.iter().all(|&(_, _, partial, _)| partial));
            } else {
                // A last chunk emits exactly its own entry, complete.
                assert_eq!(emitted.len(), 1, "a last chunk emitted {emitted:?}");
                let (k, stream, partial, start) = emitted[0];
                assert_eq!((k, stream, partial), (key, line.stream, false));
                assert!(start <= meta);
            }
            check_pending(&r, &config, &totals);
        }

        if control & FLUSH_ALL != 0 {
            r.flush_all(|entry| {
                assert!(entry.partial, "flushed entries are partial");
                totals.entry(&entry, pushed_lines);
            });
            assert_eq!(r.pending_len(), 0);
            assert_eq!(r.pending_bytes(), 0);
        }
        if control & HAND_OVER != 0 {
            let exported = r.export();
            assert_eq!(exported.len(), r.pending_len());
            let bytes = r.pending_bytes();
            let mut fresh = Reassembler::new(config);
            fresh
                .import(exported)
                .expect("a fresh reassembler with the same limits takes any export");
            assert_eq!(fresh.pending_len(), r.pending_len());
            assert_eq!(fresh.pending_bytes(), bytes);
            r = fresh;
        }
        check_pending(&r, &config, &totals);
    }

    r.flush_all(|entry| {
        assert!(entry.partial, "flushed entries are partial");
        totals.entry(&entry, pushed_lines);
    });
    assert_eq!(r.pending_len(), 0);
    check_pending(&r, &config, &totals);
});
