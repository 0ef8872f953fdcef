//! The record format: a contract between the sink, the relay and any other consumer.
//!
//! # Version 1
//!
//! A logtide record is
//!
//! ```text
//! 0x1E  {header JSON}  0x0A  body
//! ```
//!
//! - The first byte, 0x1E (ASCII record separator), marks a logtide record; JSON and text
//!   written by other producers never start with it, so a consumer tells them apart by
//!   that byte alone.
//! - The header is one JSON object on one line:
//!   - `"v": 1` — the format version (a consumer refuses versions it does not know);
//!   - `"n"` — the number of events in the body (after decompression and rejoining);
//!   - `"comp"` — `"none"`, `"gzip"` (RFC 1952) or `"zstd"` (one RFC 8878 frame): how
//!     the body is compressed;
//!   - `"split"` (only on chunks of an event too large for one record):
//!     `{"id": "<16 hex>", "i": <index from 0>, "count": <chunks>, "len": <body bytes>}`.
//!     The bodies of chunks `0..count` of the same `id`, concatenated in index order, are
//!     the body of a record holding that one event (`len` bytes, compressed as `comp`
//!     says). Chunks may arrive in any order and on any shard.
//! - The body is NDJSON: each event as one JSON object (`@timestamp` first, `@metadata`
//!   last when present) followed by `\n`, compressed as a whole when `comp` says so.
//! - The partition key is not part of the format: producers choose it (logtide uses the
//!   container id by default), consumers need not read it.
//!
//! # JSON records
//!
//! With `output.kinesis.format: json` a record is one event as one JSON object (the same
//! bytes as in a logtide body) followed by `\n`: no marker, no header, no aggregation,
//! no compression. Readers tell the formats apart by the first byte; logtide-relay reads
//! both from one stream, and records of other producers (JSON or text) too.
//!
//! # Offloaded events
//!
//! With `oversize: offload` an event too large for a record is written whole to S3 as one
//! JSON line, and its record (in either format) carries the event's head instead: the
//! first bytes of `message`, `log.flags` with `"offloaded"`, `event.original_ref`
//! (`s3://bucket/key`) and `event.original_bytes` (the whole event's JSON line, in
//! bytes). A reader that knows logtide fetches the object and uses it in place of the head.
//!
//! `"zstd"` joined the values of `"comp"` before any logtide release wrote version 1
//! records, so every version 1 reader knows it.
//!
//! An example record of two events, not compressed:
//!
//! ```text
//! \x1e{"v":1,"n":2,"comp":"none"}
//! {"@timestamp":"2024-06-01T00:36:59.526712987Z","message":"order placed","container":{"id":"3f1c…"}}
//! {"@timestamp":"2024-06-01T00:37:00.000000000Z","message":"GET /healthz 200","container":{"id":"3f1c…"}}
//! ```
//!
//! and the first of three chunks of one large event, gzip-compressed as a whole before it
//! was cut:
//!
//! ```text
//! \x1e{"v":1,"n":1,"comp":"gzip","split":{"id":"9e3779b97f4a7c15","i":0,"count":3,"len":2500000}}
//! <the first bytes of the gzip stream>
//! ```

use std::io::{Read, Write};

use crate::Error;

/// First byte of every logtide record.
pub const MARKER: u8 = 0x1E;
/// The record format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// How a record body is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// zstd (RFC 8878), one frame.
    Zstd,
}

impl Compression {
    /// The configuration's name of the compression.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// How the sink writes events into records (`output.kinesis.format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// This module's versioned format: a header, then one or more events, compressed or
    /// not, large events split into chunks (the default).
    #[default]
    Logtide,
    /// One event per record as one JSON object followed by `\n`, as awsbeats, Fluent Bit
    /// and Vector write: any consumer (Firehose, Lambda, a KCL application) can read it,
    /// and Firehose's concatenation of records stays line-delimited.
    Json,
}

/// zstd level used for record bodies: fast, with most of the gain on log text.
const ZSTD_LEVEL: i32 = 1;

/// Where a chunk belongs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Identifies the event the chunks belong to.
    pub id: String,
    /// This chunk's index, from 0.
    pub i: u32,
    /// How many chunks there are.
    pub count: u32,
    /// Bytes of the whole body.
    pub len: u64,
}

/// The header line of a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// Format version.
    pub v: u32,
    /// Events in the (whole) body.
    pub n: u32,
    /// Compression of the (whole) body.
    pub comp: Compression,
    /// Set on chunks of a split event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

impl Header {
    /// Appends the marker, the header line and its newline.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(MARKER);
        // Plain data: serialization cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }

    /// Bytes [`Header::write`] appends.
    pub fn encoded_len(&self) -> usize {
        let mut buf = Vec::with_capacity(96);
        self.write(&mut buf);
        buf.len()
    }
}

/// A record split into its header and body, or `None` when it is not a logtide record.
pub fn parse_record(data: &[u8]) -> Result<Option<(Header, &[u8])>, Error> {
    if data.first() != Some(&MARKER) {
        return Ok(None);
    }
    let nl =
        memchr_newline(&data[1..]).ok_or_else(|| Error::Record("header line has no end".into()))?;
    let header: Header = serde_json::from_slice(&data[1..1 + nl])
        .map_err(|e| Error::Record(format!("unreadable header: {e}")))?;
    if header.v != FORMAT_VERSION {
        return Err(Error::Record(format!(
            "record format version {} is not known (this build reads version {FORMAT_VERSION})",
            header.v
        )));
    }
    Ok(Some((header, &data[2 + nl..])))
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Compresses a body.
pub fn compress(body: &[u8], comp: Compression) -> Vec<u8> {
    match comp {
        Compression::None => body.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4 + 64),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(body);
            enc.finish().unwrap_or_default()
        }
        // Compressing from memory into memory fails only when out of memory.
        Compression::Zstd => zstd::bulk::compress(body, ZSTD_LEVEL).unwrap_or_default(),
    }
}

/// [`compress`] with one zstd context kept for every body: a context made per body
/// costs its allocation and table setup each time. The bytes are those of
/// [`compress`].
#[derive(Default)]
pub struct BodyCompressor {
    zstd: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>>,
}

impl std::fmt::Debug for BodyCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCompressor").finish_non_exhaustive()
    }
}

impl BodyCompressor {
    /// Compresses a record body.
    pub fn compress(&self, body: &[u8], comp: Compression) -> Vec<u8> {
        if comp != Compression::Zstd {
            return compress(body, comp);
        }
        let mut zstd = self.zstd.borrow_mut();
        if zstd.is_none() {
            *zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        match zstd.as_mut() {
            Some(c) => c.compress(body).unwrap_or_default(),
            None => compress(body, comp),
        }
    }
}

/// Decompresses a body, refusing to grow past `limit` bytes.
pub fn decompress(body: &[u8], comp: Compression, limit: usize) -> Result<Vec<u8>, Error> {
    match comp {
        Compression::None => Ok(body.to_vec()),
        Compression::Gzip => {
            let mut out = Vec::new();
            let mut dec = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(|e| Error::Record(format!("gzip body: {e}")))?;
            if out.len() > limit {
                return Err(Error::Record(format!(
                    "body decompresses to more than {limit} bytes"
                )));
            }
            Ok(out)
        }
        Compression::Zstd => {
            let mut out = Vec::new();
            let dec = zstd::stream::read::Decoder::new(body)
                .map_err(|e| Error::Record(format!("zstd body: {e}")))?;
            dec.take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Error::Record(format!("zstd body: {e}")))?;
            if out.len() > limit {
                return Err(Error::Record(format!(
                    "body decompresses to more than {limit} bytes"
                )));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_foreign_records() {
        let h = Header {
            v: 1,
            n: 2,
            comp: Compression::Gzip,
            split: Some(Split {
                id: "00000000000000ff".into(),
                i: 0,
                count: 3,
                len: 10,
            }),
        };
        let mut rec = Vec::new();
        h.write(&mut rec);
        assert_eq!(rec.len(), h.encoded_len());
        rec.extend_from_slice(b"body");
        assert_eq!(
            String::from_utf8_lossy(&rec[1..]),
            "{\"v\":1,\"n\":2,\"comp\":\"gzip\",\"split\":{\"id\":\"00000000000000ff\",\"i\":0,\"count\":3,\"len\":10}}\nbody"
        );
        let (back, body) = parse_record(&rec).unwrap().unwrap();
        assert_eq!((back, body), (h, &b"body"[..]));
        assert!(parse_record(b"{\"plain\":\"json\"}").unwrap().is_none());
        assert!(parse_record(b"plain text").unwrap().is_none());
        let err = parse_record(b"\x1e{\"v\":2,\"n\":1,\"comp\":\"none\"}\n").unwrap_err();
        assert!(err.to_string().contains("version 2 is not known"), "{err}");
        assert!(parse_record(b"\x1e{\"v\":1").is_err());
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let body = b"{\"message\":\"x\"}\n".repeat(1000);
        let z = compress(&body, Compression::Gzip);
        assert!(z.len() < body.len() / 10);
        assert_eq!(decompress(&z, Compression::Gzip, body.len()).unwrap(), body);
        assert!(decompress(&z, Compression::Gzip, body.len() - 1).is_err());
        assert!(decompress(b"not gzip", Compression::Gzip, 100).is_err());
    }

    #[test]
    fn a_kept_zstd_context_writes_the_bytes_of_a_new_one() {
        let c = BodyCompressor::default();
        let bodies: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                format!("{{\"n\":{i},\"msg\":\"{}\"}}\n", "log line ".repeat(i * 37)).into_bytes()
            })
            .chain([Vec::new(), vec![0u8; 100_000]])
            .collect();
        for body in &bodies {
            for comp in [Compression::Zstd, Compression::Gzip, Compression::None] {
                assert_eq!(c.compress(body, comp), compress(body, comp), "{comp:?}");
            }
        }
    }

    #[test]
    fn zstd_round_trip_and_bomb_limit() {
        let body = b"{\"message\":\"x\"}\n".repeat(1000);
        let z = compress(&body, Compression::Zstd);
        assert!(z.len() < body.len() / 10);
        assert_eq!(decompress(&z, Compression::Zstd, body.len()).unwrap(), body);
        let err = decompress(&z, Compression::Zstd, body.len() - 1).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(decompress(b"not zstd", Compression::Zstd, 100).is_err());
        assert!(decompress(&z[..z.len() / 2], Compression::Zstd, body.len()).is_err());
        let h = Header {
            v: 1,
            n: 1,
            comp: Compression::Zstd,
            split: None,
        };
        let mut rec = Vec::new();
        h.write(&mut rec);
        assert_eq!(&rec[1..], b"{\"v\":1,\"n\":1,\"comp\":\"zstd\"}\n");
    }
}
