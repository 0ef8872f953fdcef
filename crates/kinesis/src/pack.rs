//! Packing events into Kinesis records and records into PutRecords requests, within the
//! service's limits: every record's data plus partition key within the stream's maximum
//! record size, at most 500 records and 5 MiB per request.

use std::ops::Range;

use logtide_event::Event;
use serde_json::Value;

use crate::format::{BodyCompressor, Compression, Header, RecordFormat, Split, FORMAT_VERSION};
use crate::offload::{head_event, object_key, OffloadTarget};
use crate::Error;

/// Kinesis' default maximum record size (data plus partition key).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// The largest maximum record size a stream can be configured with.
pub const MAX_RECORD_BYTES_LIMIT: usize = 10 << 20;
/// Records per PutRecords request.
pub const MAX_REQUEST_RECORDS: usize = 500;
/// Bytes (data plus partition keys) per PutRecords request.
pub const MAX_REQUEST_BYTES: usize = 5 << 20;
/// Room kept for a header; real headers are well under it.
const HEADER_ROOM: usize = 160;

/// What happens to an event too large for one record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OversizePolicy {
    /// Cut into chunks that the decoder joins again (the default).
    #[default]
    Split,
    /// Keep the head of `message`, mark `log.flags: ["truncated"]`.
    Truncate,
    /// Hand the event to the dead-letter file with the reason.
    DeadLetter,
    /// Write the whole event to S3 and ship its head with a reference to it
    /// (`event.original_ref`), flagged `log.flags: ["offloaded"]`.
    Offload,
}

/// How events become records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackConfig {
    /// Maximum record size of the stream: data plus partition key.
    pub max_record_bytes: usize,
    /// Put several events of the same partition key in one record.
    pub aggregate: bool,
    /// Compression of record bodies.
    pub compression: Compression,
    /// Oversize events.
    pub oversize: OversizePolicy,
    /// How events are written into records.
    pub format: RecordFormat,
}

impl Default for PackConfig {
    fn default() -> Self {
        PackConfig {
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            aggregate: true,
            compression: Compression::None,
            oversize: OversizePolicy::Split,
            format: RecordFormat::Logtide,
        }
    }
}

impl PackConfig {
    /// Checks the limits, and that a `json` record stays one event as JSON.
    pub fn validate(&self) -> Result<(), Error> {
        if !(4096..=MAX_RECORD_BYTES_LIMIT).contains(&self.max_record_bytes) {
            return Err(Error::Config(format!(
                "max_record_bytes: {} is outside 4096..={MAX_RECORD_BYTES_LIMIT}",
                self.max_record_bytes
            )));
        }
        if self.format == RecordFormat::Json {
            if self.aggregate {
                return Err(Error::Config(
                    "aggregate: true is refused with format: json: each json record holds one event, so that any consumer can parse it (set aggregate: false or leave it out)".into(),
                ));
            }
            if self.compression != Compression::None {
                return Err(Error::Config(format!(
                    "compression: {} is refused with format: json: a compressed record is not JSON to a consumer that does not know logtide's header (leave compression out, or use format: logtide)",
                    self.compression.name()
                )));
            }
            if self.oversize == OversizePolicy::Split {
                return Err(Error::Config(
                    "oversize: split is refused with format: json: the chunks of a split event are not JSON and only logtide-relay joins them (use offload, truncate or dead_letter, or format: logtide)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One Kinesis record, and which events (indices into the packed slice) it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The partition key.
    pub partition_key: String,
    /// The record data.
    pub data: Vec<u8>,
    /// Indices of the events in this record (one, for a chunk of a split event).
    pub events: Vec<usize>,
}

impl Record {
    /// What the record counts against Kinesis' limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The result of packing a batch of events.
#[derive(Debug, Default)]
pub struct Packed {
    /// Records, in event order per partition key.
    pub records: Vec<Record>,
    /// Events that go to the dead-letter file instead, with the reason.
    pub dead_letters: Vec<(usize, &'static str)>,
    /// Events cut to fit (they are in `records`).
    pub truncated: Vec<usize>,
    /// Events split into several records.
    pub split: Vec<usize>,
    /// Events written whole to S3, with their head in a record of their own.
    pub offloads: Vec<Offload>,
}

/// An event to write whole to S3 (`oversize: offload`); the record at `record` carries
/// its head and the reference to the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offload {
    /// The event's index in the packed slice.
    pub event: usize,
    /// Index of the record holding the head, in [`Packed::records`].
    pub record: usize,
    /// The object's key in [`OffloadTarget::bucket`].
    pub key: String,
    /// The object: the whole event as one JSON line.
    pub body: Vec<u8>,
}

/// Turns events into records; see the [crate documentation](crate) for the format.
#[derive(Debug)]
pub struct Packer {
    config: PackConfig,
    offload: Option<OffloadTarget>,
    seed: u64,
    splits: u64,
    scratch: Vec<u8>,
    compressor: BodyCompressor,
    /// The body buffer of the last record closed, for the next one: a body grown from
    /// small to its cap by doubling copies as many bytes again as it ends up holding.
    spare: Vec<u8>,
}

/// The bytes of a record being filled.
struct Open {
    key: String,
    body: Vec<u8>,
    events: Vec<usize>,
}

impl Packer {
    /// A packer; `seed` makes the ids of split events unique across packers (use e.g. the
    /// start time and process id).
    pub fn new(config: PackConfig, seed: u64) -> Result<Self, Error> {
        config.validate()?;
        if config.oversize == OversizePolicy::Offload {
            return Err(Error::Config(
                "oversize: offload needs an offload target (bucket and prefix)".into(),
            ));
        }
        Ok(Packer {
            config,
            offload: None,
            seed,
            splits: 0,
            scratch: Vec::new(),
            compressor: BodyCompressor::default(),
            spare: Vec::new(),
        })
    }

    /// A packer that writes oversize events to `target` (`oversize: offload`).
    pub fn with_offload(
        mut config: PackConfig,
        target: OffloadTarget,
        seed: u64,
    ) -> Result<Self, Error> {
        let oversize = std::mem::replace(&mut config.oversize, OversizePolicy::Truncate);
        let mut packer = Packer::new(config, seed)?;
        packer.config.oversize = oversize;
        packer.offload = Some(target);
        Ok(packer)
    }

    /// The configuration.
    pub fn config(&self) -> &PackConfig {
        &self.config
    }

    /// Room for a body in a record with this partition key.
    fn capacity(&self, key: &str) -> usize {
        let overhead = match self.config.compression {
            Compression::None => 0,
            // gzip's framing, plus its worst case on incompressible input.
            Compression::Gzip => 64 + self.config.max_record_bytes / 1000,
            // zstd's frame header and block headers, plus its worst case (ZSTD_compressBound).
            Compression::Zstd => 64 + self.config.max_record_bytes / 128,
        };
        let header = match self.config.format {
            RecordFormat::Logtide => HEADER_ROOM,
            RecordFormat::Json => 0,
        };
        self.config
            .max_record_bytes
            .saturating_sub(key.len() + header + overhead)
    }

    /// Packs `events` (with `keys[i]` the partition key of event `i`). Record order follows
    /// event order within each partition key. Events are not changed: a truncated event is
    /// a truncated copy in its record.
    ///
    /// # Panics
    ///
    /// When `keys` is shorter than `events` (a caller's bug, not bad input).
    pub fn pack<K: AsRef<str>>(&mut self, events: &[Event], keys: &[K]) -> Packed {
        assert!(keys.len() >= events.len(), "one partition key per event");
        let mut out = Packed::default();
        let mut open: Option<Open> = None;
        let mut line = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if let Some(ahead) = events.get(i + Event::PREFETCH_DISTANCE) {
                ahead.prefetch();
            }
            let key = keys[i].as_ref();
            let cap = self.capacity(key);
            // Each event is written straight into the record it most likely goes to: the
            // open one when it is for the same key, else a new one.
            let joins = open
                .as_ref()
                .is_some_and(|o| self.config.aggregate && o.key == key);
            if !joins {
                if let Some(o) = open.take() {
                    self.close(o, &mut out);
                }
            }
            let o = open.get_or_insert_with(|| self.open(key, cap));
            let start = o.body.len();
            event.write_json(&mut o.body);
            o.body.push(b'\n');
            if o.body.len() <= cap || (start == 0 && self.fits_compressed(&o.body, key)) {
                o.events.push(i);
                continue;
            }
            // It does not fit: take it out again.
            line.clear();
            line.extend_from_slice(&o.body[start..]);
            o.body.truncate(start);
            if start > 0 {
                if let Some(o) = open.take() {
                    self.close(o, &mut out);
                }
            } else if let Some(o) = open.take() {
                self.keep(o.body);
            }
            if line.len() > cap && !self.fits_compressed(&line, key) {
                self.oversize(i, event, key, &mut line, &mut out);
                continue;
            }
            let mut o = self.open(key, cap);
            o.body.extend_from_slice(&line);
            o.events.push(i);
            open = Some(o);
        }
        if let Some(o) = open.take() {
            self.close(o, &mut out);
        }
        out
    }

    /// A new record for `key`; its buffer is the last record's, or starts large enough
    /// for a typical aggregate.
    fn open(&mut self, key: &str, cap: usize) -> Open {
        let initial = if self.config.aggregate {
            32 << 10
        } else {
            1024
        };
        let mut body = std::mem::take(&mut self.spare);
        body.clear();
        body.reserve(initial.min(cap));
        Open {
            key: key.to_owned(),
            body,
            events: Vec::new(),
        }
    }

    /// Keeps a closed record's body buffer for the next record, unless one event too
    /// large for any record grew it past twice the record limit.
    fn keep(&mut self, body: Vec<u8>) {
        if body.capacity() <= 2 * self.config.max_record_bytes {
            self.spare = body;
        }
    }

    /// Whether one event's line fits in one record once compressed.
    fn fits_compressed(&self, line: &[u8], key: &str) -> bool {
        self.config.compression != Compression::None
            && self
                .compressor
                .compress(line, self.config.compression)
                .len()
                + key.len()
                + HEADER_ROOM
                <= self.config.max_record_bytes
    }

    fn close(&mut self, o: Open, out: &mut Packed) {
        out.records.push(self.record(o.key, &o.body, o.events));
        self.keep(o.body);
    }

    /// A whole (not split) record holding `body`, the NDJSON lines of `events`.
    fn record(&self, partition_key: String, body: &[u8], events: Vec<usize>) -> Record {
        if self.config.format == RecordFormat::Json {
            // One event as JSON, with its newline: what any consumer reads.
            return Record {
                partition_key,
                data: body.to_vec(),
                events,
            };
        }
        let header = Header {
            v: FORMAT_VERSION,
            n: events.len() as u32,
            comp: self.config.compression,
            split: None,
        };
        let mut data = Vec::with_capacity(body.len() + 64);
        header.write(&mut data);
        match self.config.compression {
            Compression::None => data.extend_from_slice(body),
            comp => data.extend_from_slice(&self.compressor.compress(body, comp)),
        }
        Record {
            partition_key,
            data,
            events,
        }
    }

    fn oversize(
        &mut self,
        i: usize,
        event: &Event,
        key: &str,
        line: &mut Vec<u8>,
        out: &mut Packed,
    ) {
        match self.config.oversize {
            OversizePolicy::DeadLetter => out.dead_letters.push((i, "oversize")),
            OversizePolicy::Truncate => {
                let mut copy = event.clone_unacked();
                if truncate_to_fit(&mut copy, self.capacity(key), line) {
                    out.truncated.push(i);
                    out.records.push(self.record(key.to_owned(), line, vec![i]));
                } else {
                    out.dead_letters.push((i, "oversize_cannot_truncate"));
                }
            }
            OversizePolicy::Split => {
                self.split(i, key, line, out);
                out.split.push(i);
            }
            OversizePolicy::Offload => {
                let Some(target) = &self.offload else {
                    out.dead_letters.push((i, "oversize"));
                    return;
                };
                let object = object_key(target, event, &mut self.scratch);
                let reference = target.reference(&object);
                let mut head = Vec::new();
                if head_event(event, &reference, line.len(), self.capacity(key), &mut head) {
                    out.offloads.push(Offload {
                        event: i,
                        record: out.records.len(),
                        key: object,
                        body: std::mem::take(line),
                    });
                    out.records
                        .push(self.record(key.to_owned(), &head, vec![i]));
                } else {
                    out.dead_letters.push((i, "oversize_cannot_offload"));
                }
            }
        }
    }

    fn split(&mut self, i: usize, key: &str, line: &[u8], out: &mut Packed) {
        self.splits += 1;
        let id = format!(
            "{:016x}",
            self.seed ^ self.splits.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        let body = self.compressor.compress(line, self.config.compression);
        let room = self
            .config
            .max_record_bytes
            .saturating_sub(key.len() + HEADER_ROOM)
            .max(1);
        let count = body.len().div_ceil(room).max(1);
        for (index, chunk) in body.chunks(room).enumerate() {
            let header = Header {
                v: FORMAT_VERSION,
                n: 1,
                comp: self.config.compression,
                split: Some(Split {
                    id: id.clone(),
                    i: index as u32,
                    count: count as u32,
                    len: body.len() as u64,
                }),
            };
            let mut data = Vec::with_capacity(chunk.len() + 128);
            header.write(&mut data);
            data.extend_from_slice(chunk);
            out.records.push(Record {
                partition_key: key.to_owned(),
                data,
                events: vec![i],
            });
        }
    }
}

/// Cuts `message` so that the event's line fits in `cap` bytes and flags the event
/// truncated; `line` is rewritten. Returns false when even an empty message is too big.
fn truncate_to_fit(event: &mut Event, cap: usize, line: &mut Vec<u8>) -> bool {
    add_flag(event, "truncated");
    fit_message(event, cap, line)
}

/// Adds `flag` to the event's `log.flags` (or a top-level `log_flags` when `log` is not
/// an object).
pub(crate) fn add_flag(event: &mut Event, flag: &str) {
    let flag = Value::String(flag.into());
    match event.get_mut("log.flags") {
        Some(Value::Array(flags)) if !flags.contains(&flag) => flags.push(flag),
        Some(Value::Array(_)) => {}
        _ => {
            // `log` may be missing or a non-object: then the flag goes at the top level.
            if event
                .insert("log.flags", Value::Array(vec![flag.clone()]))
                .is_err()
            {
                let _ = event.insert("log_flags", Value::Array(vec![flag]));
            }
        }
    }
}

/// Writes the event's line into `line`, cutting `message` until it fits in `cap` bytes.
/// Returns false when it does not fit even with an empty (or without a) message.
pub(crate) fn fit_message(event: &mut Event, cap: usize, line: &mut Vec<u8>) -> bool {
    for _ in 0..8 {
        line.clear();
        event.write_json(line);
        line.push(b'\n');
        if line.len() <= cap {
            return true;
        }
        let over = line.len() - cap;
        let Some(Value::String(message)) = event.get_mut("message") else {
            return false;
        };
        if message.is_empty() {
            return false;
        }
        // Escapes can make the written form longer than the string; the next round cuts
        // again by what is still over.
        let mut keep = message.len().saturating_sub(over + 16);
        while !message.is_char_boundary(keep) {
            keep -= 1;
        }
        message.truncate(keep);
    }
    false
}

/// Splits records into PutRecords requests of at most 500 records and 5 MiB.
pub fn request_batches(records: &[Record]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        let size = r.size();
        if i > start && (i - start == MAX_REQUEST_RECORDS || bytes + size > MAX_REQUEST_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::Timestamp;
    use serde_json::json;

    fn ev(msg: &str) -> Event {
        let mut e = Event::new(Timestamp::UNIX_EPOCH);
        e.insert("message", json!(msg)).unwrap();
        e
    }

    fn cfg(max: usize, oversize: OversizePolicy) -> PackConfig {
        PackConfig {
            max_record_bytes: max,
            aggregate: true,
            compression: Compression::None,
            oversize,
            format: RecordFormat::Logtide,
        }
    }

    #[test]
    fn aggregates_per_key_within_the_limit() {
        let mut p = Packer::new(cfg(4096, OversizePolicy::Split), 1).unwrap();
        let events: Vec<Event> = (0..50)
            .map(|i| ev(&format!("message number {i} {}", "x".repeat(100))))
            .collect();
        let keys: Vec<String> = (0..50)
            .map(|i| if i < 25 { "a".into() } else { "b".into() })
            .collect();
        let packed = p.pack(&events, &keys);
        assert!(packed.records.len() >= 2);
        let mut seen: Vec<usize> = Vec::new();
        for r in &packed.records {
            assert!(r.size() <= 4096, "record of {} bytes", r.size());
            assert!(r.events.iter().all(|&i| keys[i] == r.partition_key));
            seen.extend(&r.events);
        }
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    /// A packer keeps its last body buffer for the next record: batches packed one after
    /// another by one packer (runs of keys, records filled to the limit, an oversize
    /// event that grows the buffer past what is kept) give what fresh packers give.
    #[test]
    fn a_kept_body_buffer_changes_no_record() {
        let batches: Vec<(Vec<Event>, Vec<String>)> = (0..4)
            .map(|b| {
                let events = (0..60)
                    .map(|i| match (b, i) {
                        (1, 30) => ev(&"z".repeat(20_000)),
                        _ => ev(&format!("batch {b} event {i} {}", "x".repeat(i * 7))),
                    })
                    .collect();
                let keys = (0..60).map(|i| format!("key-{}", (i / 7) % 3)).collect();
                (events, keys)
            })
            .collect();
        for comp in [Compression::None, Compression::Zstd] {
            let config = PackConfig {
                compression: comp,
                ..cfg(4096, OversizePolicy::Truncate)
            };
            let mut reused = Packer::new(config, 1).unwrap();
            for (events, keys) in &batches {
                let want = Packer::new(config, 1).unwrap().pack(events, keys);
                let got = reused.pack(events, keys);
                assert_eq!(got.truncated, want.truncated, "{comp:?}");
                let records = |p: &Packed| -> Vec<(String, Vec<u8>, Vec<usize>)> {
                    p.records
                        .iter()
                        .map(|r| (r.partition_key.clone(), r.data.clone(), r.events.clone()))
                        .collect()
                };
                assert_eq!(records(&got), records(&want), "{comp:?}");
            }
        }
    }

    #[test]
    fn oversize_policies() {
        let big = "y".repeat(20_000);
        let keys = vec!["k".to_owned()];

        let mut p = Packer::new(cfg(4096, OversizePolicy::DeadLetter), 1).unwrap();
        let packed = p.pack(&[ev(&big)], &keys);
        assert_eq!(packed.dead_letters, [(0, "oversize")]);
        assert!(packed.records.is_empty());

        let mut p = Packer::new(cfg(4096, OversizePolicy::Truncate), 1).unwrap();
        let events = [ev(&big)];
        let packed = p.pack(&events, &keys);
        assert_eq!(packed.truncated, [0]);
        assert_eq!(packed.records.len(), 1);
        assert!(packed.records[0].size() <= 4096);
        assert_eq!(
            events[0].get("message"),
            Some(&json!(big)),
            "the caller's event is left as it was"
        );
        let sent = crate::Decoder::default()
            .decode(&packed.records[0].data, 0)
            .unwrap()
            .events;
        assert_eq!(sent[0].get("log.flags"), Some(&json!(["truncated"])));
        let kept = sent[0].get("message").and_then(Value::as_str).unwrap();
        assert!(big.starts_with(kept) && kept.len() > 3000);

        let mut p = Packer::new(cfg(4096, OversizePolicy::Split), 1).unwrap();
        let packed = p.pack(&[ev(&big)], &keys);
        assert_eq!(packed.split, [0]);
        assert!(packed.records.len() >= 5);
        assert!(packed
            .records
            .iter()
            .all(|r| r.size() <= 4096 && r.events == [0]));
    }

    #[test]
    fn an_event_that_only_fits_compressed_is_not_split() {
        for comp in [Compression::Gzip, Compression::Zstd] {
            let mut c = cfg(4096, OversizePolicy::Split);
            c.compression = comp;
            let mut p = Packer::new(c, 1).unwrap();
            let packed = p.pack(&[ev(&"z".repeat(50_000))], &["k"]);
            assert_eq!(packed.records.len(), 1, "{comp:?}");
            assert!(packed.split.is_empty());
            assert!(packed.records[0].size() <= 4096);
        }
    }

    #[test]
    fn json_records_hold_one_event_as_json() {
        let mut c = cfg(4096, OversizePolicy::Truncate);
        c.format = RecordFormat::Json;
        c.aggregate = false;
        let mut p = Packer::new(c, 1).unwrap();
        let events: Vec<Event> = (0..3).map(|i| ev(&format!("line {i}"))).collect();
        let big = [ev(&"q".repeat(10_000))];
        let packed = p.pack(&events, &["k", "k", "k"]);
        assert_eq!(packed.records.len(), 3);
        for (r, e) in packed.records.iter().zip(&events) {
            let mut want = Vec::new();
            e.write_json(&mut want);
            want.push(b'\n');
            assert_eq!(r.data, want);
        }
        let packed = p.pack(&big, &["k"]);
        assert_eq!(packed.truncated, [0]);
        let v: Value = serde_json::from_slice(&packed.records[0].data).unwrap();
        assert_eq!(v["log"]["flags"], json!(["truncated"]));
        assert!(packed.records[0].size() <= 4096);

        c.aggregate = true;
        assert!(Packer::new(c, 1).is_err());
    }

    #[test]
    fn offloaded_events_leave_their_head_in_the_record() {
        let target = OffloadTarget {
            bucket: "logs-offload".into(),
            prefix: "big".into(),
        };
        for format in [RecordFormat::Logtide, RecordFormat::Json] {
            let mut c = cfg(8192, OversizePolicy::Offload);
            c.format = format;
            c.aggregate = format == RecordFormat::Logtide;
            assert!(Packer::new(c, 1).is_err(), "offload needs a target");
            let mut p = Packer::with_offload(c, target.clone(), 1).unwrap();
            let events = [ev("small"), ev(&"w".repeat(100_000)), ev("after")];
            let packed = p.pack(&events, &["k", "k", "k"]);
            assert_eq!(packed.offloads.len(), 1, "{format:?}");
            let o = &packed.offloads[0];
            assert_eq!(o.event, 1);
            let mut whole = Vec::new();
            events[1].write_json(&mut whole);
            whole.push(b'\n');
            assert_eq!(o.body, whole, "the object is the whole event's line");
            assert!(o.key.starts_with("big/1970/01/01/"), "{}", o.key);
            let record = &packed.records[o.record];
            assert_eq!(record.events, [1]);
            assert!(record.size() <= 8192);
            let heads = crate::Decoder::default().decode(&record.data, 0).unwrap();
            let reference = format!("s3://logs-offload/{}", o.key);
            assert_eq!(
                crate::offloaded_reference(&heads.events[0]),
                Some(reference.as_str())
            );
            let seen: Vec<usize> = packed
                .records
                .iter()
                .flat_map(|r| r.events.clone())
                .collect();
            assert_eq!(
                seen,
                [0, 1, 2],
                "{format:?}: every event in a record, in order"
            );
        }
    }

    #[test]
    fn request_batches_respect_count_and_bytes() {
        let rec = |n: usize| Record {
            partition_key: "k".into(),
            data: vec![0; n],
            events: vec![],
        };
        let small: Vec<Record> = (0..1201).map(|_| rec(10)).collect();
        assert_eq!(request_batches(&small), [0..500, 500..1000, 1000..1201]);
        let big: Vec<Record> = (0..12).map(|_| rec(1 << 20)).collect();
        let batches = request_batches(&big);
        assert!(batches
            .iter()
            .all(|b| big[b.clone()].iter().map(Record::size).sum::<usize>() <= MAX_REQUEST_BYTES));
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 12);
        assert!(request_batches(&[]).is_empty());
    }

    #[test]
    fn limits_are_validated() {
        assert!(Packer::new(cfg(100, OversizePolicy::Split), 0).is_err());
        assert!(Packer::new(cfg(MAX_RECORD_BYTES_LIMIT + 1, OversizePolicy::Split), 0).is_err());
        assert!(Packer::new(cfg(MAX_RECORD_BYTES_LIMIT, OversizePolicy::Split), 0).is_ok());
    }
}
