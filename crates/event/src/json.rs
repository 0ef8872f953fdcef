//! Writing JSON straight from an event, without an intermediate document.
//!
//! The output is byte for byte what `serde_json` writes for the same values (the same
//! escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00XX` for other control
//! characters, nothing else escaped), but strings are scanned sixteen bytes at a time.

use std::io::Write;

use serde_json::{Map, Value};
use wide::u8x16;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks (with the byte's high bit) the bytes of an 8-byte little-endian word that are
/// special inside a JSON string: below 0x20, `"` or `\`. Borrows only travel towards
/// higher bytes, so the lowest mark is always exact; marks above it may be spurious.
/// Used to skip ordinary bytes eight at a time when scanning or writing strings.
#[inline]
pub fn special_bytes(v: u64) -> u64 {
    let control = v.wrapping_sub(ONES * 0x20) & !v;
    let q = v ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = v ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGHS
}

/// Bit `i` set when byte `i` of `block` is special inside a JSON string: below 0x20,
/// `"` or `\\`. Sixteen bytes in one step (SSE2 on x86_64).
#[inline]
pub fn special_mask(block: [u8; 16]) -> u32 {
    special_and_quote_masks(block).0
}

/// [`special_mask`] of `block`, and the mask of its quotes alone (a scanner tells a
/// string's closing quote from the other special bytes without reading the byte again).
#[inline]
pub fn special_and_quote_masks(block: [u8; 16]) -> (u32, u32) {
    let v = u8x16::new(block);
    let quote = v.cmp_eq(u8x16::splat(b'"'));
    let backslash = v.cmp_eq(u8x16::splat(b'\\'));
    let control = v.min(u8x16::splat(0x1f)).cmp_eq(v);
    // The masks have 16 bits: the sign of an i32 is never set.
    (
        (quote | backslash | control).move_mask() as u32,
        quote.move_mask() as u32,
    )
}

/// The 16 bytes of `src` from `at`, and the mask of which of them are real: a block
/// past the end is padded (the padding's bits are cleared from any mask made of it).
#[inline]
fn block_at(src: &[u8], at: usize) -> ([u8; 16], u32) {
    match src.get(at..at + 16) {
        Some(b) => {
            let mut block = [0u8; 16];
            block.copy_from_slice(b);
            (block, 0xffff)
        }
        None => {
            let rest = &src[at.min(src.len())..];
            let mut block = [b'a'; 16];
            block[..rest.len()].copy_from_slice(rest);
            (block, (1u32 << rest.len()) - 1)
        }
    }
}

/// The position of the first byte at or after `from` that is special inside a JSON
/// string (see [`special_mask`]), or `src.len()` when there is none.
#[inline]
pub fn next_special(src: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < src.len() {
        let (block, real) = block_at(src, i);
        let mask = special_mask(block) & real;
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    src.len()
}

/// Appends `s` as a JSON string literal.
///
/// Sixteen bytes are checked at a time; a block with special bytes is written from its
/// one mask, run by run, without checking any byte again.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    /// Escaped text gathers on the stack and is appended to `out` when it passes this.
    const ROOM: usize = 512;
    let src = s.as_bytes();
    let plain = next_special(src, 0);
    if plain == src.len() {
        // Nothing to escape (paths, ids, most messages): one copy.
        out.reserve(src.len() + 2);
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    // Most escaped text grows by less than an eighth (a JSON message: its quotes).
    out.reserve(src.len() + src.len() / 8 + 2);
    out.push(b'"');
    out.extend_from_slice(&src[..plain]);
    // Each block is escaped into `staged` with fixed-size copies (a run is copied 16
    // bytes wide and the cursor advanced by its length): a block adds at most 16 escapes
    // of 6 bytes, and the last copy needs 16 bytes of room.
    let mut staged = [0u8; ROOM + 16 * 6 + 16];
    let mut w = 0;
    let mut i = plain;
    while i < src.len() {
        let (block, real) = block_at(src, i);
        let mask = special_mask(block) & real;
        let len = real.count_ones() as usize;
        // Runs are read from the text itself while 32 bytes are left: read from a copy
        // of the block at another offset than it was written, each run would wait for
        // the copy's store. The last blocks are read from a padded copy.
        match src.get(i..i + 32) {
            Some(ahead) => w = escape_block(&mut staged, w, ahead, mask, len),
            None => {
                let mut window = [0u8; 32];
                window[..16].copy_from_slice(&block);
                w = escape_block(&mut staged, w, &window, mask, len);
            }
        }
        if w > ROOM {
            out.extend_from_slice(&staged[..w]);
            w = 0;
        }
        i += 16;
    }
    out.extend_from_slice(&staged[..w]);
    out.push(b'"');
}

/// Escapes the first `len` bytes of `runs` (32 readable bytes: the block and what
/// follows it), whose special bytes are `mask`, into `staged` from `w`; returns the new
/// end. Runs are copied 16 bytes wide and the cursor advanced by their length, so
/// `staged` needs 6 bytes per escape and 16 bytes of room after the last.
#[inline(always)]
fn escape_block(staged: &mut [u8], mut w: usize, runs: &[u8], mut mask: u32, len: usize) -> usize {
    let mut done = 0;
    while mask != 0 {
        let k = mask.trailing_zeros() as usize;
        staged[w..w + 16].copy_from_slice(&runs[done..done + 16]);
        w += k - done;
        let special = runs[k];
        if special >= 0x20 {
            // A quote or a backslash (most escapes): a backslash before it, and the byte
            // itself starts the next run.
            staged[w] = b'\\';
            w += 1;
            done = k;
        } else {
            let (escape, n) = escape_control(special);
            staged[w..w + 6].copy_from_slice(&escape);
            w += n;
            done = k + 1;
        }
        mask &= mask - 1;
    }
    staged[w..w + 16].copy_from_slice(&runs[done..done + 16]);
    w + len - done
}

/// The escape of a control character (below 0x20), and its length: the short forms
/// `serde_json` writes, `\u00XX` for the rest.
#[inline]
fn escape_control(b: u8) -> ([u8; 6], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let second = match b {
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => {
            let unicode = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ];
            return (unicode, 6);
        }
    };
    ([b'\\', second, 0, 0, 0, 0], 2)
}

/// Appends a JSON value.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Writing into a Vec cannot fail; numbers format as serde_json formats them.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

/// Appends a JSON object.
pub fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ours(v: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_bytes_as_serde_json_table() {
        let cases = [
            json!(null),
            json!({"a": [1, -2, 3.5, 1e300, true, false, null], "b": {"c": "d"}}),
            json!("quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c} nul \u{0} esc \u{1b} del \u{7f}"),
            json!("unicode é € 😀 and a long plain run of ascii text without anything special"),
            json!(12345678901234567890u64),
            json!(-0.0),
            json!({}),
            json!([]),
            json!(""),
        ];
        for v in cases {
            assert_eq!(ours(&v), serde_json::to_string(&v).unwrap(), "{v:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_matches_serde_json(s in any::<String>()) {
            let v = Value::String(s);
            prop_assert_eq!(ours(&v), serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn next_special_finds_the_first_special_byte(
            bytes in proptest::collection::vec(prop_oneof![0u8..0x20, Just(b'"'), Just(b'\\'), 0x20u8..=0xff, 0x20u8..=0xff, 0x20u8..=0xff], 0..80),
            from in 0usize..80,
        ) {
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .map_or(bytes.len(), |p| from + p);
            prop_assert_eq!(next_special(&bytes, from), expected);
        }

        #[test]
        fn control_heavy_strings_match(bytes in proptest::collection::vec(prop_oneof![0u8..0x20, Just(b'"'), Just(b'\\'), 0x20u8..0x7f], 0..64)) {
            let s = String::from_utf8(bytes).unwrap();
            let v = Value::String(s);
            prop_assert_eq!(ours(&v), serde_json::to_string(&v).unwrap());
        }

        /// Long texts, escaped past the writer's stack room several times over.
        #[test]
        fn long_escaped_strings_match(bytes in proptest::collection::vec(prop_oneof![0u8..0x20, Just(b'"'), Just(b'\\'), 0x20u8..0x7f, 0x20u8..0x7f], 400..3000)) {
            let s = String::from_utf8(bytes).unwrap();
            let v = Value::String(s);
            prop_assert_eq!(ours(&v), serde_json::to_string(&v).unwrap());
        }
    }
}
