//! The pure core: events batched per shard into gzip NDJSON objects, named by template.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use logtide_event::{AckToken, Event, Timestamp};

use crate::config::S3Config;
use crate::Error;

/// A finished object: its key, gzip body, and the tokens of the events it holds.
#[derive(Debug)]
pub struct Object {
    /// The object key.
    pub key: String,
    /// gzip-compressed NDJSON.
    pub body: Vec<u8>,
    /// Events in the object.
    pub events: u64,
    /// The events' acknowledgement tokens, accepted once the object is stored.
    pub tokens: Vec<AckToken>,
}

#[derive(Debug)]
struct Open {
    key: String,
    gz: GzEncoder<Vec<u8>>,
    events: u64,
    tokens: Vec<AckToken>,
    since: Instant,
}

/// Batches events per shard into gzip NDJSON objects, cut at `max_object_bytes`
/// (compressed) or `max_age`. Memory: at most one open object per shard.
#[derive(Debug)]
pub struct Archive {
    prefix: String,
    template: String,
    max_bytes: u64,
    max_age: Duration,
    open: BTreeMap<String, Open>,
    line: Vec<u8>,
}

impl Archive {
    /// An archive for `config` (validated here).
    pub fn new(config: &S3Config) -> Result<Archive, Error> {
        config.validate()?;
        Ok(Archive {
            prefix: config.prefix.trim_end_matches('/').to_owned(),
            template: config.key_template.clone(),
            max_bytes: config.max_object_bytes,
            max_age: config.max_age,
            open: BTreeMap::new(),
            line: Vec::with_capacity(4096),
        })
    }

    /// The key of an object of `shard` starting at record `sequence` with its first
    /// event at `time`.
    pub fn key(&self, shard: &str, sequence: &str, time: Timestamp) -> String {
        let mut t = Vec::with_capacity(32);
        time.write_rfc3339(&mut t);
        let t = String::from_utf8_lossy(&t);
        let part = |r: std::ops::Range<usize>| t.get(r).unwrap_or("00").to_owned();
        self.template
            .replace("{prefix}", &self.prefix)
            .replace("{shard}", shard)
            .replace("{sequence}", sequence)
            .replace("%Y", &part(0..4))
            .replace("%m", &part(5..7))
            .replace("%d", &part(8..10))
            .replace("%H", &part(11..13))
            .replace("%M", &part(14..16))
    }

    /// Adds the events of one batch of `shard` whose first record is `first_sequence`;
    /// the tokens are taken out of the events. Returns objects that reached their size.
    pub fn add(&mut self, shard: &str, first_sequence: &str, events: Vec<Event>) -> Vec<Object> {
        let mut done = Vec::new();
        for mut e in events {
            if !self.open.contains_key(shard) {
                let key = self.key(shard, first_sequence, e.timestamp());
                self.open.insert(
                    shard.to_owned(),
                    Open {
                        key,
                        gz: GzEncoder::new(Vec::with_capacity(64 << 10), Compression::fast()),
                        events: 0,
                        tokens: Vec::new(),
                        since: Instant::now(),
                    },
                );
            }
            self.line.clear();
            e.write_json(&mut self.line);
            self.line.push(b'\n');
            let Some(o) = self.open.get_mut(shard) else {
                continue;
            };
            // Writing to a Vec cannot fail.
            let _ = o.gz.write_all(&self.line);
            o.events += 1;
            if let Some(t) = e.take_ack() {
                o.tokens.push(t);
            }
            if o.gz.get_ref().len() as u64 >= self.max_bytes {
                if let Some(o) = self.open.remove(shard) {
                    done.push(finish(o));
                }
            }
        }
        // The next object of this shard starts at a later record: key it by the next
        // batch's first sequence (set when it opens).
        done
    }

    /// Objects open longer than `max_age`.
    pub fn take_due(&mut self) -> Vec<Object> {
        let now = Instant::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| now.duration_since(o.since) >= self.max_age)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| self.open.remove(&k).map(finish))
            .collect()
    }

    /// Every open object.
    pub fn take_all(&mut self) -> Vec<Object> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(finish)
            .collect()
    }

    /// When the oldest open object becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.open.values().map(|o| o.since + self.max_age).min()
    }
}

fn finish(o: Open) -> Object {
    let body = o.gz.finish().unwrap_or_default();
    Object {
        key: o.key,
        body,
        events: o.events,
        tokens: o.tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Read;

    fn ev(n: i64) -> Event {
        let mut e = Event::new(Timestamp::new(1_700_000_000 + n, 0).unwrap());
        // Hardly compressible text, so that objects fill up.
        let mut x = n as u64 + 1;
        let noise: String = (0..24)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:08x}", x as u32)
            })
            .collect();
        e.insert("message", json!(format!("line {n} {noise}")))
            .unwrap();
        e
    }

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn cuts_by_size_and_keeps_every_event_once() {
        let mut c = S3Config::new("bucket");
        c.max_object_bytes = 8192;
        let mut a = Archive::new(&c).unwrap();
        let mut objects = a.add("shard-1", "100", (0..500).map(ev).collect());
        objects.extend(a.add("shard-1", "200", (500..600).map(ev).collect()));
        objects.extend(a.take_all());
        assert!(objects.len() > 2);
        assert_eq!(
            objects[0].key,
            "logtide/2023/11/14/22/shard-1-100.ndjson.gz"
        );
        let lines: Vec<String> = objects
            .iter()
            .flat_map(|o| {
                gunzip(&o.body)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(lines.len(), 600);
        for (i, l) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("line {i} ")));
        }
        assert_eq!(objects.iter().map(|o| o.events).sum::<u64>(), 600);
    }

    #[test]
    fn template_and_age() {
        let mut c = S3Config::new("bucket");
        c.key_template = "{prefix}/%Y-%m-%d/%H%M/{shard}/{sequence}.gz".into();
        c.prefix = "p/".into();
        c.max_age = Duration::from_millis(1);
        let mut a = Archive::new(&c).unwrap();
        assert!(a.add("s", "7", vec![ev(0)]).is_empty());
        std::thread::sleep(Duration::from_millis(5));
        let due = a.take_due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].key, "p/2023-11-14/2213/s/7.gz");
        assert!(a.next_due().is_none());
    }
}
