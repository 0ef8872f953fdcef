//! Joining partial chunks into whole entries.

use std::borrow::Cow;
use std::hash::Hash;

use logtide_event::Timestamp;
use rustc_hash::FxHashMap;

use crate::line::{Line, Message, Stream};
use crate::Error;

/// Default bound on one joined entry: 16 MiB, so that an entry a runtime wrote as hundreds
/// of 16 KiB chunks (a 12 MiB stack dump or JSON document) passes whole.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 16 << 20;
/// Default bound on the number of entries being joined at once.
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// Default bound on the bytes held by all entries being joined at once: 64 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;

/// Limits of a [`Reassembler`].
///
/// Memory held for pending entries is bounded twice: by entry (`max_entry_bytes`) and in
/// total (`max_pending_bytes`), so many large entries being written at once cannot add up
/// to `max_pending * max_entry_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReassemblerConfig {
    /// Largest message an entry may hold; bytes past it are cut and the entry is flagged
    /// truncated. Default 16 MiB.
    pub max_entry_bytes: usize,
    /// Largest number of (key, stream) pairs with a pending entry; when a new one would
    /// exceed it, the oldest pending entry is emitted as partial. Default 4096.
    pub max_pending: usize,
    /// Most bytes (messages and docker `attrs`) held by all pending entries together,
    /// across keys and streams; when a chunk takes the total over it, the oldest pending
    /// entries are emitted as partial until it fits again. The entry the chunk belongs to
    /// is among them, chunk included, when it is the oldest (or the only one). Default
    /// 64 MiB. Below `max_entry_bytes`, it is what ends an entry that grows past it. The
    /// allocations holding the bytes may be larger (a buffer grows by doubling).
    pub max_pending_bytes: usize,
}

impl Default for ReassemblerConfig {
    fn default() -> Self {
        ReassemblerConfig {
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
        }
    }
}

/// Counters of what the reassembler did beyond plain joining, for self-monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReassemblerStats {
    /// Entries built from more than one chunk.
    pub joined: u64,
    /// Entries cut at `max_entry_bytes`.
    pub truncated: u64,
    /// Message bytes dropped by truncation (as they appear in the input).
    pub truncated_bytes: u64,
    /// Pending entries emitted early (as partial) because `max_pending` was reached.
    pub evicted: u64,
    /// Pending entries emitted early (as partial) because `max_pending_bytes` was
    /// reached; not counted in `evicted`.
    pub evicted_over_budget: u64,
    /// Pending entries emitted by a flush before their last chunk arrived.
    pub flushed: u64,
}

/// A finished (or flushed) entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a, K, M> {
    /// The key the chunks were pushed under (for a tailer: the container).
    pub key: K,
    /// The stream the chunks were written to.
    pub stream: Stream,
    /// The first chunk's time.
    pub time: Timestamp,
    /// The joined message; borrowed from the line when it is a single unescaped chunk.
    pub message: Cow<'a, [u8]>,
    /// The first chunk's docker `attrs`, raw JSON.
    pub attrs: Option<Cow<'a, [u8]>>,
    /// True when the entry's last chunk never arrived (flushed or evicted).
    pub partial: bool,
    /// True when the message was cut at the size limit.
    pub truncated: bool,
    /// Number of chunks joined.
    pub chunks: u32,
    /// The metadata pushed with the first chunk (for a tailer: where the entry starts).
    pub start: M,
}

/// An entry still waiting for its last chunk, in a form that can be stored and re-imported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingEntry<K, M> {
    /// The key the chunks were pushed under.
    pub key: K,
    /// The stream.
    pub stream: Stream,
    /// The first chunk's time.
    pub time: Timestamp,
    /// The message so far.
    pub message: Vec<u8>,
    /// The first chunk's docker `attrs`.
    pub attrs: Option<Vec<u8>>,
    /// Whether the message was already cut at the limit.
    pub truncated: bool,
    /// Chunks joined so far.
    pub chunks: u32,
    /// The metadata pushed with the first chunk.
    pub start: M,
}

#[derive(Debug)]
struct Pending<M> {
    time: Timestamp,
    message: Vec<u8>,
    attrs: Option<Vec<u8>>,
    truncated: bool,
    chunks: u32,
    /// Arrival order, for eviction and flush order.
    seq: u64,
    start: M,
}

impl<M> Pending<M> {
    /// What the entry counts against `max_pending_bytes`.
    fn bytes(&self) -> usize {
        self.message.len() + self.attrs.as_ref().map_or(0, Vec::len)
    }
}

/// Joins partial chunks (CRI `P`, docker `log` without trailing newline) into entries,
/// separately per key and stream.
///
/// The key is what separates independent writers: a tailer uses the container, so that
/// an entry split across a log rotation is still joined. Each pushed chunk carries
/// metadata `M`; an entry reports the metadata of its first chunk (for a tailer: the
/// offset where the entry starts, which is where reading must resume after a restart).
///
/// ```
/// use logtide_container_log::{parse_line, Format, Reassembler, ReassemblerConfig};
///
/// let mut r = Reassembler::<&str, u64>::new(ReassemblerConfig::default());
/// let mut out = Vec::new();
/// let lines: [&[u8]; 3] = [
///     b"2016-10-06T00:17:09.669794202Z stdout P Hello, ",
///     b"2016-10-06T00:17:09.669794203Z stderr F oops",
///     b"2016-10-06T00:17:10.113242941Z stdout F world",
/// ];
/// let mut offset = 0;
/// for line in lines {
///     let parsed = parse_line(line, Format::Auto)?;
///     r.push(&"container-a", &parsed, offset, |e| out.push((e.start, e.message.into_owned())));
///     offset += line.len() as u64 + 1;
/// }
/// assert_eq!(out, [(48, b"oops".to_vec()), (0, b"Hello, world".to_vec())]);
/// # Ok::<(), logtide_container_log::ParseError>(())
/// ```
#[derive(Debug)]
pub struct Reassembler<K, M> {
    config: ReassemblerConfig,
    /// Keyed by caller-chosen keys (never by log content), so a fast hash is safe.
    pending: FxHashMap<(K, Stream), Pending<M>>,
    /// Sum of [`Pending::bytes`] over `pending`, kept up to date by every change.
    pending_bytes: usize,
    next_seq: u64,
    stats: ReassemblerStats,
}

/// Appends `message` to `buf`, keeping `buf` within `max` bytes. Returns whether anything
/// was cut; counts the bytes dropped. Once an entry has been cut (`already_cut`), every
/// later chunk is dropped, so the message stays a prefix of what was written.
fn append_bounded(
    buf: &mut Vec<u8>,
    already_cut: bool,
    message: &Message<'_>,
    max: usize,
    dropped: &mut u64,
) -> bool {
    if already_cut || buf.len() >= max {
        *dropped += message.raw().len() as u64;
        return already_cut || !message.is_empty();
    }
    message.write_to(buf);
    if buf.len() <= max {
        return false;
    }
    let cut = utf8_cut(buf, max);
    *dropped += (buf.len() - cut) as u64;
    buf.truncate(cut);
    true
}

/// The largest length `<= max` that does not split a UTF-8 sequence of `buf`
/// (bytes that are not UTF-8 are cut at `max`).
fn utf8_cut(buf: &[u8], max: usize) -> usize {
    if max >= buf.len() {
        return buf.len();
    }
    let mut cut = max;
    // Step back over at most three continuation bytes to the start of the sequence.
    while cut > 0 && max - cut < 3 && (buf[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let seq_len = match buf[cut] {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return max, // not UTF-8 here: cut where asked
    };
    if cut + seq_len > max {
        cut
    } else {
        max
    }
}

impl<K: Eq + Hash + Clone, M> Reassembler<K, M> {
    /// A reassembler with the given limits (limits of at least 1 are used).
    pub fn new(config: ReassemblerConfig) -> Self {
        Reassembler {
            config: ReassemblerConfig {
                max_entry_bytes: config.max_entry_bytes.max(1),
                max_pending: config.max_pending.max(1),
                max_pending_bytes: config.max_pending_bytes.max(1),
            },
            pending: FxHashMap::default(),
            pending_bytes: 0,
            next_seq: 0,
            stats: ReassemblerStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ReassemblerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReassemblerStats {
        &self.stats
    }

    /// Number of entries waiting for more chunks.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes (messages and docker `attrs`) held by pending entries, as counted against
    /// `max_pending_bytes`; never more than it after a [`Reassembler::push`].
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Adds a pending entry, counting its bytes.
    fn insert(&mut self, key: (K, Stream), p: Pending<M>) {
        self.pending_bytes += p.bytes();
        self.pending.insert(key, p);
    }

    /// Removes a pending entry, uncounting its bytes.
    fn remove(&mut self, key: &(K, Stream)) -> Option<Pending<M>> {
        let p = self.pending.remove(key)?;
        self.pending_bytes -= p.bytes();
        Some(p)
    }

    /// The metadata of the first chunk of every pending entry (for a tailer: the offsets
    /// it must not save past).
    pub fn pending_starts(&self) -> impl Iterator<Item = (&K, Stream, &M)> + '_ {
        self.pending.iter().map(|((k, s), p)| (k, *s, &p.start))
    }

    /// Adds one parsed line under `key`. Emits the finished entry when the line completes
    /// one; a chunk that does not complete one may emit older pending entries evicted, as
    /// partial, to stay within `max_pending` and `max_pending_bytes` (its own entry too,
    /// this chunk included, when that is the oldest one left).
    pub fn push<'a>(
        &mut self,
        key: &K,
        line: &Line<'a>,
        meta: M,
        mut emit: impl FnMut(Entry<'a, K, M>),
    ) {
        let max = self.config.max_entry_bytes;
        let map_key = (key.clone(), line.stream);
        if !line.partial {
            match self.remove(&map_key) {
                Some(mut p) => {
                    p.truncated = append_bounded(
                        &mut p.message,
                        p.truncated,
                        &line.message,
                        max,
                        &mut self.stats.truncated_bytes,
                    );
                    p.chunks += 1;
                    self.stats.joined += 1;
                    emit(self.finish(map_key, p, false));
                }
                None => emit(self.single(map_key, line, meta)),
            }
            return;
        }
        if let Some(p) = self.pending.get_mut(&map_key) {
            let before = p.message.len();
            p.truncated = append_bounded(
                &mut p.message,
                p.truncated,
                &line.message,
                max,
                &mut self.stats.truncated_bytes,
            );
            p.chunks += 1;
            // A cut may shorten the message (back to a UTF-8 boundary): uncount, then count.
            self.pending_bytes -= before;
            self.pending_bytes += p.message.len();
            self.shed_over_budget(&mut emit);
            return;
        }
        if self.pending.len() >= self.config.max_pending {
            self.evict_oldest(false, &mut emit);
        }
        let mut message = Vec::with_capacity(line.message.raw().len().min(max) * 2);
        let truncated = append_bounded(
            &mut message,
            false,
            &line.message,
            max,
            &mut self.stats.truncated_bytes,
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(
            map_key,
            Pending {
                time: line.time,
                message,
                attrs: line.attrs.map(<[u8]>::to_vec),
                truncated,
                chunks: 1,
                seq,
                start: meta,
            },
        );
        self.shed_over_budget(&mut emit);
    }

    /// A complete single-chunk entry, borrowed where possible.
    fn single<'a>(
        &mut self,
        (key, stream): (K, Stream),
        line: &Line<'a>,
        meta: M,
    ) -> Entry<'a, K, M> {
        let max = self.config.max_entry_bytes;
        let mut message = line.message.to_bytes();
        let mut truncated = false;
        if message.len() > max {
            let cut = utf8_cut(&message, max);
            self.stats.truncated_bytes += (message.len() - cut) as u64;
            truncated = true;
            match &mut message {
                Cow::Borrowed(b) => *b = &b[..cut],
                Cow::Owned(v) => v.truncate(cut),
            }
        }
        if truncated {
            self.stats.truncated += 1;
        }
        Entry {
            key,
            stream,
            time: line.time,
            message,
            attrs: line.attrs.map(Cow::Borrowed),
            partial: false,
            truncated,
            chunks: 1,
            start: meta,
        }
    }

    fn finish<'a>(
        &mut self,
        (key, stream): (K, Stream),
        p: Pending<M>,
        partial: bool,
    ) -> Entry<'a, K, M> {
        if p.truncated {
            self.stats.truncated += 1;
        }
        Entry {
            key,
            stream,
            time: p.time,
            message: Cow::Owned(p.message),
            attrs: p.attrs.map(Cow::Owned),
            partial,
            truncated: p.truncated,
            chunks: p.chunks,
            start: p.start,
        }
    }

    /// Emits the pending entry whose first chunk came first, as partial; returns whether
    /// there was one. A scan of the pending entries, but only when a limit is reached.
    fn evict_oldest<'a>(
        &mut self,
        over_budget: bool,
        emit: &mut impl FnMut(Entry<'a, K, M>),
    ) -> bool {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.seq)
            .map(|(k, _)| k.clone());
        let Some(k) = oldest else {
            return false;
        };
        let Some(p) = self.remove(&k) else {
            return false;
        };
        if over_budget {
            self.stats.evicted_over_budget += 1;
        } else {
            self.stats.evicted += 1;
        }
        emit(self.finish(k, p, true));
        true
    }

    /// Evicts the oldest pending entries until their bytes are within `max_pending_bytes`.
    /// Holds after every push: the bytes were within it before the chunk came, and the
    /// chunk's own entry is emitted, chunk included, once it is the oldest one left.
    fn shed_over_budget<'a>(&mut self, emit: &mut impl FnMut(Entry<'a, K, M>)) {
        while self.pending_bytes > self.config.max_pending_bytes {
            if !self.evict_oldest(true, emit) {
                break;
            }
        }
    }

    /// Emits the pending entry of one key and stream, if any, as partial.
    pub fn flush(
        &mut self,
        key: &K,
        stream: Stream,
        mut emit: impl FnMut(Entry<'static, K, M>),
    ) -> bool {
        let map_key = (key.clone(), stream);
        match self.remove(&map_key) {
            Some(p) => {
                self.stats.flushed += 1;
                emit(self.finish(map_key, p, true));
                true
            }
            None => false,
        }
    }

    /// Emits, as partial and in arrival order, every pending entry that `select` picks.
    fn flush_where(
        &mut self,
        mut select: impl FnMut(&K, &Pending<M>) -> bool,
        mut emit: impl FnMut(Entry<'static, K, M>),
    ) {
        let mut keys: Vec<(u64, (K, Stream))> = self
            .pending
            .iter()
            .filter(|((k, _), p)| select(k, p))
            .map(|(k, p)| (p.seq, k.clone()))
            .collect();
        keys.sort_unstable_by_key(|(seq, _)| *seq);
        for (_, k) in keys {
            if let Some(p) = self.remove(&k) {
                self.stats.flushed += 1;
                emit(self.finish(k, p, true));
            }
        }
    }

    /// Emits every pending entry as partial, in the order their first chunks arrived
    /// (at end of input, or at shutdown of a source that will not continue).
    pub fn flush_all(&mut self, emit: impl FnMut(Entry<'static, K, M>)) {
        self.flush_where(|_, _| true, emit);
    }

    /// Emits, as partial, every pending entry whose first chunk is older than `cutoff`
    /// (a runtime that stopped mid-line never writes the final chunk).
    pub fn flush_older_than(&mut self, cutoff: Timestamp, emit: impl FnMut(Entry<'static, K, M>)) {
        self.flush_where(|_, p| p.time < cutoff, emit);
    }

    /// Emits, as partial, every pending entry of `key` (both streams).
    pub fn flush_key(&mut self, key: &K, emit: impl FnMut(Entry<'static, K, M>)) {
        self.flush_where(|k, _| k == key, emit);
    }

    /// The pending entries, oldest first, for storing or handing to another reassembler.
    pub fn export(&self) -> Vec<PendingEntry<K, M>>
    where
        M: Clone,
    {
        let mut out: Vec<(u64, PendingEntry<K, M>)> = self
            .pending
            .iter()
            .map(|((key, stream), p)| {
                (
                    p.seq,
                    PendingEntry {
                        key: key.clone(),
                        stream: *stream,
                        time: p.time,
                        message: p.message.clone(),
                        attrs: p.attrs.clone(),
                        truncated: p.truncated,
                        chunks: p.chunks,
                        start: p.start.clone(),
                    },
                )
            })
            .collect();
        out.sort_unstable_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, e)| e).collect()
    }

    /// Takes over pending entries from [`Reassembler::export`]; later chunks of the same key
    /// and stream continue them. Messages over the limit are cut and flagged. Fails, and
    /// imports nothing, when a key and stream already has a pending entry or the entries
    /// would exceed `max_pending` or `max_pending_bytes`.
    pub fn import(&mut self, entries: Vec<PendingEntry<K, M>>) -> Result<(), Error> {
        if self.pending.len() + entries.len() > self.config.max_pending {
            return Err(Error::ImportTooMany {
                count: entries.len(),
                limit: self.config.max_pending - self.pending.len().min(self.config.max_pending),
            });
        }
        for (i, e) in entries.iter().enumerate() {
            let dup_in_batch = entries[..i]
                .iter()
                .any(|o| o.key == e.key && o.stream == e.stream);
            if dup_in_batch || self.pending.contains_key(&(e.key.clone(), e.stream)) {
                return Err(Error::ImportConflict { stream: e.stream });
            }
        }
        let max = self.config.max_entry_bytes;
        let bytes: usize = entries
            .iter()
            .map(|e| e.message.len().min(max) + e.attrs.as_ref().map_or(0, Vec::len))
            .sum();
        let budget = self.config.max_pending_bytes;
        if self.pending_bytes + bytes > budget {
            return Err(Error::ImportTooLarge {
                bytes,
                limit: budget - self.pending_bytes.min(budget),
            });
        }
        for e in entries {
            let mut message = e.message;
            let mut truncated = e.truncated;
            if message.len() > max {
                let cut = utf8_cut(&message, max);
                self.stats.truncated_bytes += (message.len() - cut) as u64;
                message.truncate(cut);
                truncated = true;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.insert(
                (e.key, e.stream),
                Pending {
                    time: e.time,
                    message,
                    attrs: e.attrs,
                    truncated,
                    chunks: e.chunks,
                    seq,
                    start: e.start,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Format};

    type R = Reassembler<u32, u64>;

    fn cfg(max_entry_bytes: usize, max_pending: usize) -> ReassemblerConfig {
        ReassemblerConfig {
            max_entry_bytes,
            max_pending,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
        }
    }

    /// The bytes of the pending entries, summed the slow way.
    fn summed(r: &R) -> usize {
        r.pending.values().map(Pending::bytes).sum()
    }

    /// Pushes CRI/docker lines (key, line) and collects (key, stream, message, partial, truncated, start).
    /// After every push, checks the running byte count and the budget.
    fn run(r: &mut R, lines: &[(u32, &str)]) -> Vec<(u32, Stream, String, bool, bool, u64)> {
        let mut out = Vec::new();
        for (i, (key, text)) in lines.iter().enumerate() {
            let line = parse_line(text.as_bytes(), Format::Auto).unwrap();
            r.push(key, &line, i as u64, |e| {
                out.push((
                    e.key,
                    e.stream,
                    String::from_utf8_lossy(&e.message).into_owned(),
                    e.partial,
                    e.truncated,
                    e.start,
                ))
            });
            assert_eq!(r.pending_bytes(), summed(r), "after line {i}");
            assert!(
                r.pending_bytes() <= r.config().max_pending_bytes,
                "after line {i}"
            );
        }
        out
    }

    #[test]
    fn joins_per_key_and_stream() {
        let mut r = R::new(ReassemblerConfig::default());
        let out = run(
            &mut r,
            &[
                (1, "2024-01-01T00:00:00Z stdout P a1"),
                (1, "2024-01-01T00:00:01Z stderr P b1"),
                (2, "2024-01-01T00:00:02Z stdout P c1"),
                (1, "2024-01-01T00:00:03Z stdout F a2"),
                (2, "2024-01-01T00:00:04Z stdout F c2"),
                (1, "2024-01-01T00:00:05Z stderr F b2"),
                (1, "2024-01-01T00:00:06Z stdout F whole"),
            ],
        );
        assert_eq!(
            out,
            [
                (1, Stream::Stdout, "a1a2".into(), false, false, 0),
                (2, Stream::Stdout, "c1c2".into(), false, false, 2),
                (1, Stream::Stderr, "b1b2".into(), false, false, 1),
                (1, Stream::Stdout, "whole".into(), false, false, 6),
            ]
        );
        assert_eq!(r.stats().joined, 3);
        assert_eq!(r.pending_len(), 0);
    }

    #[test]
    fn keeps_first_time_and_attrs() {
        let mut r = R::new(ReassemblerConfig::default());
        let a = parse_line(
            br#"{"log":"x","attrs":{"k":1},"stream":"stdout","time":"2024-01-01T00:00:00Z"}"#,
            Format::Auto,
        )
        .unwrap();
        let b = parse_line(
            br#"{"log":"y\n","attrs":{"k":2},"stream":"stdout","time":"2024-01-01T00:00:09Z"}"#,
            Format::Auto,
        )
        .unwrap();
        let mut got = None;
        r.push(&0, &a, 10, |_| unreachable!("nothing finished yet"));
        r.push(&0, &b, 20, |e| {
            got = Some((
                e.time,
                e.message.into_owned(),
                e.attrs.map(Cow::into_owned),
                e.start,
                e.chunks,
            ))
        });
        assert_eq!(
            got,
            Some((a.time, b"xy".to_vec(), Some(br#"{"k":1}"#.to_vec()), 10, 2))
        );
    }

    #[test]
    fn truncates_at_limit_and_keeps_joining() {
        let mut r = R::new(cfg(5, 16));
        let out = run(
            &mut r,
            &[
                (0, "2024-01-01T00:00:00Z stdout P abc"),
                (0, "2024-01-01T00:00:00Z stdout P def"),
                (0, "2024-01-01T00:00:00Z stdout P ghi"),
                (0, "2024-01-01T00:00:00Z stdout F jkl"),
                (0, "2024-01-01T00:00:00Z stdout F 0123456789"),
                (0, "2024-01-01T00:00:00Z stdout F 01234"),
            ],
        );
        assert_eq!(
            out,
            [
                (0, Stream::Stdout, "abcde".into(), false, true, 0),
                (0, Stream::Stdout, "01234".into(), false, true, 4),
                (0, Stream::Stdout, "01234".into(), false, false, 5),
            ]
        );
        assert_eq!(r.stats().truncated, 2);
        assert_eq!(r.stats().truncated_bytes, 1 + 3 + 3 + 5);
    }

    #[test]
    fn truncation_does_not_split_utf8() {
        let mut r = R::new(cfg(4, 16));
        let out = run(&mut r, &[(0, "2024-01-01T00:00:00Z stdout F ab€")]);
        assert_eq!(out[0].2, "ab");
        assert!(out[0].4);
        assert_eq!(utf8_cut(b"abc\xff\xfe", 4), 4);
        assert_eq!(utf8_cut("a€".as_bytes(), 4), 4);
        assert_eq!(utf8_cut("a€".as_bytes(), 3), 1);
        assert_eq!(utf8_cut("😀😀".as_bytes(), 6), 4);
    }

    #[test]
    fn nothing_is_appended_after_a_cut_even_with_room_left() {
        // The cut lands before "€" (2 bytes of room stay unused); "x" must not fill them.
        let mut r = R::new(cfg(4, 16));
        let out = run(
            &mut r,
            &[
                (0, "2024-01-01T00:00:00Z stdout P ab€"),
                (0, "2024-01-01T00:00:00Z stdout F x"),
            ],
        );
        assert_eq!(out, [(0, Stream::Stdout, "ab".into(), false, true, 0)]);
        assert_eq!(r.stats().truncated_bytes, 3 + 1);
    }

    #[test]
    fn evicts_oldest_when_full_and_flushes_in_arrival_order() {
        let mut r = R::new(cfg(1024, 2));
        let out = run(
            &mut r,
            &[
                (1, "2024-01-01T00:00:00Z stdout P one"),
                (2, "2024-01-01T00:00:01Z stdout P two"),
                (3, "2024-01-01T00:00:02Z stdout P three"),
            ],
        );
        assert_eq!(out, [(1, Stream::Stdout, "one".into(), true, false, 0)]);
        assert_eq!(r.stats().evicted, 1);
        assert_eq!(r.pending_bytes(), 8);
        let mut starts: Vec<_> = r.pending_starts().map(|(k, _, m)| (*k, *m)).collect();
        starts.sort_unstable();
        assert_eq!(starts, [(2, 1), (3, 2)]);

        let mut flushed = Vec::new();
        r.flush_older_than(
            Timestamp::parse_rfc3339(b"2024-01-01T00:00:02Z").unwrap(),
            |e| flushed.push(e.key),
        );
        assert_eq!(flushed, [2]);
        r.flush_all(|e| flushed.push(e.key));
        assert_eq!(flushed, [2, 3]);
        assert_eq!(r.stats().flushed, 2);
        assert!(!r.flush(&3, Stream::Stdout, |_| unreachable!("nothing pending")));
    }

    #[test]
    fn invalid_line_in_between_does_not_disturb_pending() {
        let mut r = R::new(ReassemblerConfig::default());
        let mut out = Vec::new();
        for text in [
            "2024-01-01T00:00:00Z stdout P a",
            "garbage",
            "2024-01-01T00:00:01Z stdout F b",
        ] {
            if let Ok(line) = parse_line(text.as_bytes(), Format::Cri) {
                r.push(&0, &line, 0, |e| out.push(e.message.into_owned()));
            }
        }
        assert_eq!(out, [b"ab".to_vec()]);
    }

    #[test]
    fn export_import_continues_an_entry_elsewhere() {
        let mut a = R::new(ReassemblerConfig::default());
        assert!(run(
            &mut a,
            &[
                (7, "2024-01-01T00:00:00Z stdout P first "),
                (8, "2024-01-01T00:00:01Z stderr P other")
            ]
        )
        .is_empty());
        let exported = a.export();
        assert_eq!(exported.len(), 2);
        assert_eq!(exported[0].key, 7);
        let json = serde_json::to_string(&exported).unwrap();
        let back: Vec<PendingEntry<u32, u64>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, exported);

        let mut b = R::new(ReassemblerConfig::default());
        b.import(back.clone()).unwrap();
        assert!(matches!(
            b.import(back),
            Err(Error::ImportConflict {
                stream: Stream::Stdout
            })
        ));
        let out = run(&mut b, &[(7, "2024-01-01T00:00:05Z stdout F second")]);
        assert_eq!(
            out,
            [(7, Stream::Stdout, "first second".into(), false, false, 0)]
        );

        let mut small = R::new(cfg(4, 1));
        assert!(matches!(
            small.import(a.export()),
            Err(Error::ImportTooMany { count: 2, limit: 1 })
        ));
        small
            .import(a.export().into_iter().take(1).collect())
            .unwrap();
        let mut flushed = Vec::new();
        small.flush_key(&7, |e| {
            flushed.push((e.message.into_owned(), e.truncated, e.partial))
        });
        assert_eq!(flushed, [(b"firs".to_vec(), true, true)]);
    }

    #[test]
    fn a_12_mib_entry_in_16_kib_chunks_passes_whole_by_default() {
        // containerd writes a long line as 16 KiB `P` chunks and a last `F` chunk.
        let chunk = format!("2024-01-01T00:00:00Z stdout P {}", "x".repeat(16 << 10));
        let chunk = parse_line(chunk.as_bytes(), Format::Cri).unwrap();
        let last = parse_line(b"2024-01-01T00:00:01Z stdout F end", Format::Cri).unwrap();
        let n = (12 << 20) / (16 << 10);
        let mut r = R::new(ReassemblerConfig::default());
        let mut out = Vec::new();
        for i in 0..n {
            r.push(&0, &chunk, i, |e| out.push((e.message.len(), e.partial)));
        }
        assert!(
            out.is_empty(),
            "nothing emitted before the last chunk: {out:?}"
        );
        assert_eq!(r.pending_bytes(), 12 << 20);
        r.push(&0, &last, n, |e| {
            out.push((e.message.len(), e.partial));
            assert!(!e.truncated);
            assert_eq!((e.chunks, e.start), (n as u32 + 1, 0));
        });
        assert_eq!(out, [((12 << 20) + 3, false)]);
        assert_eq!(
            r.stats(),
            &ReassemblerStats {
                joined: 1,
                ..ReassemblerStats::default()
            }
        );
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn the_oldest_entries_go_first_to_stay_within_the_byte_budget() {
        /// Emitted: (key, stream, message, partial, truncated, start).
        type Out = (u32, Stream, &'static str, bool, bool, u64);
        /// (what, max_entry_bytes, max_pending, max_pending_bytes, lines (key, line),
        /// emitted, (evicted, evicted_over_budget), pending bytes at the end).
        type Case = (
            &'static str,
            usize,
            usize,
            usize,
            &'static [(u32, &'static str)],
            &'static [Out],
            (u64, u64),
            usize,
        );
        const OUT: Stream = Stream::Stdout;
        const ERR: Stream = Stream::Stderr;
        let cases: &[Case] = &[
            (
                "a chunk of a younger entry evicts the oldest one",
                1024,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P aaaa"),
                    (2, "2024-01-01T00:00:01Z stdout P bb"),
                    (2, "2024-01-01T00:00:02Z stdout P cccc"),
                ],
                &[(1, OUT, "aaaa", true, false, 0)],
                (0, 1),
                6,
            ),
            (
                "the oldest entry, when extended, goes itself with its chunk",
                1024,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P aaaa"),
                    (2, "2024-01-01T00:00:01Z stdout P bb"),
                    (1, "2024-01-01T00:00:02Z stdout P ccc"),
                    (1, "2024-01-01T00:00:03Z stdout F end"),
                ],
                &[
                    (1, OUT, "aaaaccc", true, false, 0),
                    (1, OUT, "end", false, false, 3),
                ],
                (0, 1),
                2,
            ),
            (
                "a new entry evicts as many as it takes, oldest first",
                1024,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P aaa"),
                    (2, "2024-01-01T00:00:01Z stdout P bbb"),
                    (3, "2024-01-01T00:00:02Z stdout P cccccc"),
                ],
                &[
                    (1, OUT, "aaa", true, false, 0),
                    (2, OUT, "bbb", true, false, 1),
                ],
                (0, 2),
                6,
            ),
            (
                "a chunk over the budget on its own is emitted at once",
                1024,
                16,
                4,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P abcdefg"),
                    (1, "2024-01-01T00:00:01Z stdout F h"),
                ],
                &[
                    (1, OUT, "abcdefg", true, false, 0),
                    (1, OUT, "h", false, false, 1),
                ],
                (0, 1),
                0,
            ),
            (
                "exactly the budget fits, and a last chunk never evicts",
                1024,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P aaaa"),
                    (2, "2024-01-01T00:00:01Z stdout P bbbb"),
                    (1, "2024-01-01T00:00:02Z stdout F cccccccccccc"),
                ],
                &[(1, OUT, "aaaacccccccccccc", false, false, 0)],
                (0, 0),
                4,
            ),
            (
                "both streams of a key count against the one budget",
                1024,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P aaaaa"),
                    (1, "2024-01-01T00:00:01Z stderr P bbbb"),
                ],
                &[(1, OUT, "aaaaa", true, false, 0)],
                (0, 1),
                4,
            ),
            (
                "bytes cut at max_entry_bytes are not held, so not counted",
                5,
                16,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P abcdefgh"),
                    (2, "2024-01-01T00:00:01Z stderr P xyz"),
                    (2, "2024-01-01T00:00:02Z stderr P w"),
                ],
                &[(1, OUT, "abcde", true, true, 0)],
                (0, 1),
                4,
            ),
            (
                "docker attrs count too",
                1024,
                16,
                8,
                &[
                    (
                        1,
                        r#"{"log":"ab","attrs":{"k":1},"stream":"stderr","time":"2024-01-01T00:00:00Z"}"#,
                    ),
                    (2, "2024-01-01T00:00:01Z stderr P 12345678"),
                ],
                &[(1, ERR, "ab", true, false, 0)],
                (0, 1),
                8,
            ),
            (
                "max_pending evictions are counted apart",
                1024,
                1,
                8,
                &[
                    (1, "2024-01-01T00:00:00Z stdout P a"),
                    (2, "2024-01-01T00:00:01Z stdout P bbbbbbbb"),
                    (2, "2024-01-01T00:00:02Z stdout P c"),
                ],
                &[
                    (1, OUT, "a", true, false, 0),
                    (2, OUT, "bbbbbbbbc", true, false, 1),
                ],
                (1, 1),
                0,
            ),
        ];
        for &(what, max_entry_bytes, max_pending, max_pending_bytes, lines, want, counts, left) in
            cases
        {
            let mut r = R::new(ReassemblerConfig {
                max_entry_bytes,
                max_pending,
                max_pending_bytes,
            });
            let got = run(&mut r, lines);
            let want: Vec<_> = want
                .iter()
                .map(|&(k, s, m, p, t, start)| (k, s, m.to_owned(), p, t, start))
                .collect();
            assert_eq!(got, want, "{what}");
            let s = r.stats();
            assert_eq!((s.evicted, s.evicted_over_budget), counts, "{what}");
            assert_eq!(r.pending_bytes(), left, "{what}");
        }
    }

    #[test]
    fn many_large_entries_at_once_stay_within_the_budget_and_lose_nothing() {
        const BUDGET: usize = 40 << 10;
        let mut r = R::new(ReassemblerConfig {
            max_entry_bytes: 1 << 20,
            max_pending_bytes: BUDGET,
            ..ReassemblerConfig::default()
        });
        let (mut pushed, mut emitted, mut partial) = (0, 0, 0);
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..4000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let (key, stream) = (
                (rng % 8) as u32,
                ["stdout", "stderr"][(rng >> 3) as usize % 2],
            );
            let tag = if (rng >> 4).is_multiple_of(16) {
                "F"
            } else {
                "P"
            };
            let text = "y".repeat((rng >> 8) as usize % (8 << 10));
            let line = format!("2024-01-01T00:00:00Z {stream} {tag} {text}");
            let line = parse_line(line.as_bytes(), Format::Cri).unwrap();
            pushed += text.len();
            r.push(&key, &line, i, |e| {
                emitted += e.message.len();
                partial += u64::from(e.partial);
            });
            assert!(r.pending_bytes() <= BUDGET, "after line {i}");
            assert_eq!(r.pending_bytes(), summed(&r), "after line {i}");
        }
        assert!(r.stats().evicted_over_budget > 0, "the budget was reached");
        assert_eq!(r.stats().evicted, 0);
        assert_eq!(partial, r.stats().evicted_over_budget);
        r.flush_all(|e| emitted += e.message.len());
        assert_eq!(emitted, pushed, "every byte pushed came out once");
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn import_respects_the_byte_budget() {
        let mut a = R::new(ReassemblerConfig::default());
        run(
            &mut a,
            &[
                (7, "2024-01-01T00:00:00Z stdout P first "),
                (8, "2024-01-01T00:00:01Z stderr P other"),
            ],
        );
        assert_eq!(a.pending_bytes(), 11);
        let tight = ReassemblerConfig {
            max_pending_bytes: 10,
            ..ReassemblerConfig::default()
        };
        let mut b = R::new(tight);
        assert!(matches!(
            b.import(a.export()),
            Err(Error::ImportTooLarge {
                bytes: 11,
                limit: 10
            })
        ));
        assert_eq!(b.pending_len(), 0, "nothing imported");
        b.import(a.export().into_iter().take(1).collect()).unwrap();
        assert_eq!(b.pending_bytes(), 6);
        assert!(matches!(
            b.import(a.export().into_iter().skip(1).collect()),
            Err(Error::ImportTooLarge { bytes: 5, limit: 4 })
        ));
        let mut c = R::new(ReassemblerConfig {
            max_pending_bytes: 11,
            ..tight
        });
        c.import(a.export()).unwrap();
        assert_eq!((c.pending_bytes(), summed(&c)), (11, 11));
    }
}
