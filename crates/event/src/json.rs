//! Writing JSON straight from an event, without an intermediate document.
//!
//! The output is byte for byte what `serde_json` writes for the same values (the same
//! escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00XX` for other control
//! characters, nothing else escaped), but strings are scanned eight bytes at a time.

use std::io::Write;

use serde_json::{Map, Value};

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

/// Appends `s` as a JSON string literal.
///
/// The output room is made once (two bytes per input byte cover every escape but
/// `\u00XX`, which grows it on the rare occasion), then each 8-byte word is copied
/// whole and the write position advances past its ordinary bytes only, so a special
/// byte costs a word copy and two stores instead of two slice appends.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let src = s.as_bytes();
    let plain = plain_prefix(src);
    if plain == src.len() {
        // Nothing to escape (paths, ids, most messages): one copy.
        out.reserve(src.len() + 2);
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    let base = out.len();
    out.resize(base + 2 * src.len() + 2, 0);
    out[base] = b'"';
    out[base + 1..base + 1 + plain].copy_from_slice(&src[..plain]);
    let mut j = base + 1 + plain;
    let mut i = plain;
    while i < src.len() {
        if let (Some(word), Some(dst)) = (src.get(i..i + 8), out.get_mut(j..j + 8)) {
            dst.copy_from_slice(word);
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let mask = special_bytes(u64::from_le_bytes(w));
            if mask == 0 {
                i += 8;
                j += 8;
                continue;
            }
            let k = (mask.trailing_zeros() / 8) as usize;
            i += k;
            j += k;
        }
        let b = src[i];
        i += 1;
        let second = match b {
            b'"' | b'\\' => b,
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                // Four more bytes than the two reserved for this input byte.
                out.resize(out.len() + 4, 0);
                out[j..j + 6].copy_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
                j += 6;
                continue;
            }
            _ => {
                out[j] = b;
                j += 1;
                continue;
            }
        };
        out[j] = b'\\';
        out[j + 1] = second;
        j += 2;
    }
    out[j] = b'"';
    out.truncate(j + 1);
}

/// How many bytes at the start of `src` need no escaping in a JSON string.
fn plain_prefix(src: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = src.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let mask = special_bytes(u64::from_le_bytes(w));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + src[i..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(src.len() - i)
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
        fn control_heavy_strings_match(bytes in proptest::collection::vec(prop_oneof![0u8..0x20, Just(b'"'), Just(b'\\'), 0x20u8..0x7f], 0..64)) {
            let s = String::from_utf8(bytes).unwrap();
            let v = Value::String(s);
            prop_assert_eq!(ours(&v), serde_json::to_string(&v).unwrap());
        }
    }
}
