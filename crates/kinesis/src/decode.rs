//! Turning records back into events: de-aggregation, decompression, rejoining of split
//! events, and records written by other producers.

use std::collections::HashMap;

use logtide_event::Event;
use serde_json::Value;

use crate::format::{decompress, parse_record, Compression, Header};
use crate::Error;

/// Limits of a [`Decoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest body accepted after decompression or rejoining.
    pub max_body_bytes: usize,
    /// Bytes of chunks held while waiting for the rest of their event; past it the oldest
    /// incomplete event is given up (and reported).
    pub max_pending_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_body_bytes: 64 << 20,
            max_pending_bytes: 256 << 20,
        }
    }
}

/// A split event whose chunks did not all arrive: for the dead-letter file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    /// The split id.
    pub id: String,
    /// Chunks received.
    pub received: u32,
    /// Chunks expected.
    pub count: u32,
    /// Why it was given up.
    pub reason: &'static str,
}

#[derive(Debug)]
struct Pending {
    comp: Compression,
    count: u32,
    len: u64,
    chunks: Vec<Option<Vec<u8>>>,
    received: u32,
    bytes: usize,
    since_ms: u64,
    order: u64,
}

/// What a record was, by its first bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A logtide record (the 0x1E marker and a header).
    #[default]
    Logtide,
    /// A JSON object: a `format: json` record of logtide's, or another producer's.
    Json,
    /// Anything else, handed on as `message`.
    Text,
}

impl RecordKind {
    /// The kind's name in counters: `logtide`, `json`, `text`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Logtide => "logtide",
            RecordKind::Json => "json",
            RecordKind::Text => "text",
        }
    }
}

/// What a record decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// What the record was.
    pub kind: RecordKind,
    /// Complete events, in record order.
    pub events: Vec<Event>,
    /// Split events given up to stay within `max_pending_bytes`.
    pub incomplete: Vec<Incomplete>,
}

/// Decodes records; keeps chunks of split events until their event is complete.
#[derive(Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
    pending: HashMap<String, Pending>,
    pending_bytes: usize,
    order: u64,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            ..Decoder::default()
        }
    }

    /// Bytes held for incomplete split events.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Split events still waiting for chunks.
    pub fn pending_events(&self) -> usize {
        self.pending.len()
    }

    /// Decodes one record's data. `now_ms` is the caller's clock (for [`Decoder::expire`]).
    /// Data that is not a logtide record becomes one event: a JSON object as it is (with
    /// `@timestamp`/`@metadata` taken out), anything else as `message`.
    pub fn decode(&mut self, data: &[u8], now_ms: u64) -> Result<Decoded, Error> {
        let mut out = Decoded::default();
        let Some((header, body)) = parse_record(data)? else {
            let (kind, event) = foreign(data);
            out.kind = kind;
            out.events.push(event);
            return Ok(out);
        };
        match header.split.clone() {
            None => {
                let body = decompress(body, header.comp, self.config.max_body_bytes)?;
                parse_body(&body, header.n, &mut out.events)?;
            }
            Some(split) => {
                if split.count == 0
                    || split.i >= split.count
                    || split.len > self.config.max_body_bytes as u64
                {
                    return Err(Error::Record(format!(
                        "chunk {} of {} of event {} (len {}) is out of range",
                        split.i, split.count, split.id, split.len
                    )));
                }
                self.order += 1;
                let order = self.order;
                let p = self
                    .pending
                    .entry(split.id.clone())
                    .or_insert_with(|| Pending {
                        comp: header.comp,
                        count: split.count,
                        len: split.len,
                        chunks: vec![None; split.count as usize],
                        received: 0,
                        bytes: 0,
                        since_ms: now_ms,
                        order,
                    });
                if p.count != split.count || p.len != split.len {
                    return Err(Error::Record(format!(
                        "chunk {} of event {} disagrees on count or length",
                        split.i, split.id
                    )));
                }
                let slot = &mut p.chunks[split.i as usize];
                if slot.is_none() {
                    // A repeated chunk (redelivery) is ignored.
                    *slot = Some(body.to_vec());
                    p.received += 1;
                    p.bytes += body.len();
                    self.pending_bytes += body.len();
                }
                if p.received == p.count {
                    if let Some(p) = self.pending.remove(&split.id) {
                        self.pending_bytes -= p.bytes;
                        let whole: Vec<u8> = p.chunks.into_iter().flatten().flatten().collect();
                        if whole.len() as u64 != p.len {
                            return Err(Error::Record(format!(
                                "event {} rejoined to {} bytes, expected {}",
                                split.id,
                                whole.len(),
                                p.len
                            )));
                        }
                        let body = decompress(&whole, p.comp, self.config.max_body_bytes)?;
                        parse_body(&body, header.n, &mut out.events)?;
                    }
                }
                while self.pending_bytes > self.config.max_pending_bytes {
                    match self.evict_oldest("pending chunk memory limit") {
                        Some(i) => out.incomplete.push(i),
                        None => break,
                    }
                }
            }
        }
        Ok(out)
    }

    fn evict_oldest(&mut self, reason: &'static str) -> Option<Incomplete> {
        let id = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.order)
            .map(|(id, _)| id.clone())?;
        self.give_up(id, reason)
    }

    /// Forgets the chunks of one split event and says so.
    fn give_up(&mut self, id: String, reason: &'static str) -> Option<Incomplete> {
        let p = self.pending.remove(&id)?;
        self.pending_bytes -= p.bytes;
        Some(Incomplete {
            id,
            received: p.received,
            count: p.count,
            reason,
        })
    }

    /// Gives up split events that waited longer than `timeout_ms` for their chunks.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<Incomplete> {
        let old: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.since_ms) >= timeout_ms)
            .map(|(id, _)| id.clone())
            .collect();
        old.into_iter()
            .filter_map(|id| self.give_up(id, "chunks did not arrive in time"))
            .collect()
    }
}

fn parse_body(body: &[u8], n: u32, out: &mut Vec<Event>) -> Result<(), Error> {
    let before = out.len();
    for (i, line) in body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| Error::Record(format!("event {i} of the body is not JSON: {e}")))?;
        out.push(
            Event::from_json(value)
                .map_err(|e| Error::Record(format!("event {i} of the body: {e}")))?,
        );
    }
    let got = out.len() - before;
    if got != n as usize {
        out.truncate(before);
        return Err(Error::Record(format!(
            "body holds {got} events, header says {n}"
        )));
    }
    Ok(())
}

/// An event from a record that has no logtide header: a JSON object (one event of
/// `format: json`, or another producer's) or text.
fn foreign(data: &[u8]) -> (RecordKind, Event) {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) {
        let event = match Event::from_json(Value::Object(map.clone())) {
            Ok(e) => e,
            // `@timestamp` or `@metadata` unreadable: they stay fields.
            Err(_) => Event::with_fields(logtide_event::Timestamp::now(), map),
        };
        return (RecordKind::Json, event);
    }
    let mut e = Event::new(logtide_event::Timestamp::now());
    let text = String::from_utf8_lossy(data);
    let _ = e.insert(
        "message",
        Value::String(text.trim_end_matches('\n').to_owned()),
    );
    (RecordKind::Text, e)
}

/// Header of a record, for callers that route records before decoding them.
pub fn peek_header(data: &[u8]) -> Result<Option<Header>, Error> {
    Ok(parse_record(data)?.map(|(h, _)| h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn foreign_records_become_events() {
        let mut d = Decoder::default();
        let out = d
            .decode(
                br#"{"@timestamp":"2024-01-01T00:00:00Z","level":"info"}"#,
                0,
            )
            .unwrap();
        assert_eq!(out.kind, RecordKind::Json);
        assert_eq!(out.events[0].get("level"), Some(&json!("info")));
        assert_eq!(
            out.events[0].timestamp().to_string(),
            "2024-01-01T00:00:00.000000000Z"
        );
        let out = d.decode(b"plain text line\n", 0).unwrap();
        assert_eq!(out.kind, RecordKind::Text);
        assert_eq!(
            out.events[0].get("message"),
            Some(&json!("plain text line"))
        );
        let out = d.decode(br#"{"@timestamp": 5}"#, 0).unwrap();
        assert_eq!(
            out.events[0].get("@timestamp"),
            Some(&json!(5)),
            "kept as a field"
        );
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        let mut d = Decoder::default();
        let err = d
            .decode(b"\x1e{\"v\":1,\"n\":2,\"comp\":\"none\"}\n{\"a\":1}\n", 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("body holds 1 events, header says 2"),
            "{err}"
        );
        let err = d.decode(b"\x1e{\"v\":1,\"n\":1,\"comp\":\"none\",\"split\":{\"id\":\"x\",\"i\":3,\"count\":2,\"len\":5}}\nab", 0).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn incomplete_splits_expire_and_memory_is_bounded() {
        let chunk = |id: &str, i: u32| {
            let mut r = format!("\x1e{{\"v\":1,\"n\":1,\"comp\":\"none\",\"split\":{{\"id\":\"{id}\",\"i\":{i},\"count\":2,\"len\":2000}}}}\n").into_bytes();
            r.extend(vec![b'a'; 1000]);
            r
        };
        let mut d = Decoder::new(DecoderConfig {
            max_body_bytes: 1 << 20,
            max_pending_bytes: 2500,
        });
        assert!(d.decode(&chunk("a", 0), 0).unwrap().events.is_empty());
        assert!(d.decode(&chunk("b", 0), 5).unwrap().incomplete.is_empty());
        let out = d.decode(&chunk("c", 1), 10).unwrap();
        assert_eq!(
            out.incomplete.len(),
            1,
            "oldest given up to stay within memory"
        );
        assert_eq!(out.incomplete[0].id, "a");
        assert_eq!(d.pending_bytes(), 2000);
        let expired = d.expire(1000, 100);
        assert_eq!(expired.len(), 2);
        assert_eq!(d.pending_events(), 0);
    }
}
