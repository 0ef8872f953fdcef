//! A quick scan that vouches for the plain JSON objects most log lines are.
//!
//! [`sure_as_is`] walks the bytes once, without the machinery of a deserializer, and
//! answers `true` only for text that `raw::writable_as_is` would accept: it refuses
//! (answers `false`, "not sure") everything unusual, and the full check then decides.
//! What it leaves to that check: escaped keys, `\u` escapes of surrogates, control
//! characters, integers of 19 digits or more, exponents of 3 digits or more, nesting
//! deeper than [`MAX_DEPTH`], objects of more than [`MAX_KEYS`] keys, line breaks, and
//! top-level strings that might hold JSON when strings are decoded.

use std::cell::Cell;

use logtide_event::json::{next_special, special_and_quote_masks};

/// Nesting deeper than this is left to the full check (whose limit is 128).
const MAX_DEPTH: usize = 64;
/// Objects with more keys are left to the full check (repeated keys are found by
/// comparing each key with those before it).
const MAX_KEYS: usize = 32;

/// `true` when `text` (already trimmed of spaces and tabs, starting with `{`) is
/// certainly a JSON object that can be written as it is (see `raw::writable_as_is`);
/// `false` when not, or not sure.
pub(crate) fn sure_as_is(text: &[u8], decodes_strings: bool) -> bool {
    thread_local! {
        /// The keys' room, kept between scans on the thread.
        static KEYS: Cell<Vec<KeySeen>> = const { Cell::new(Vec::new()) };
    }
    let mut keys = KEYS.take();
    keys.clear();
    let mut s = Scan {
        b: text,
        i: 0,
        decodes_strings,
        keys,
    };
    let sure = s.object(0, true).is_some() && s.i == text.len();
    KEYS.set(s.keys);
    sure
}

/// A key of an object being scanned: its tag (see [`key_tag`]) and where it is.
type KeySeen = (u64, usize, usize);

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    decodes_strings: bool,
    /// The keys of the objects open at the cursor, the innermost last.
    keys: Vec<KeySeen>,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips spaces and tabs (a line break makes the text unfit to copy into a line).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.i += 1)
    }

    /// A value: scalars here, inline in their object or array (most values are), and
    /// nested objects and arrays through [`Scan::nested`].
    #[inline(always)]
    fn member(&mut self, depth: usize, top_member: bool) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' => self.nested(depth),
            b'"' => self.string_value(top_member),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    #[inline(always)]
    fn string_value(&mut self, top_member: bool) -> Option<()> {
        let (start, end, escaped) = self.string()?;
        if top_member && self.decodes_strings && might_hold_json(&self.b[start..end], escaped) {
            return None;
        }
        Some(())
    }

    /// A nested object or array (not inlined: it recurses).
    fn nested(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, false),
            _ => self.array(depth + 1),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn object(&mut self, depth: usize, top: bool) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        // The keys so far, each with a tag of its length and first bytes, compared before
        // the keys themselves (most keys differ there).
        let base = self.keys.len();
        loop {
            if self.keys.len() - base == MAX_KEYS {
                return None;
            }
            let (start, end, escaped) = self.string()?;
            let key = &self.b[start..end];
            let tag = key_tag(self.b, start, end);
            let b = self.b;
            if escaped
                || self.keys[base..]
                    .iter()
                    .any(|&(t, s, e)| t == tag && &b[s..e] == key)
            {
                return None;
            }
            self.keys.push((tag, start, end));
            self.ws();
            self.eat(b':')?;
            self.ws();
            self.member(depth, top)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    self.keys.truncate(base);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.member(depth, false)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string at the cursor: the range of its content and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        // Most strings are short and plain: their closing quote is the first special
        // byte of the 16 after the opening one.
        if let (Some(b'"'), Some(block)) = (self.peek(), self.b.get(self.i + 1..self.i + 17)) {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(block);
            let (mask, quotes) = special_and_quote_masks(bytes);
            // The lowest special byte, if it is a quote.
            let closing = mask & mask.wrapping_neg() & quotes;
            if closing != 0 {
                let at = closing.trailing_zeros() as usize;
                let start = self.i + 1;
                self.i = start + at + 1;
                return Some((start, start + at, false));
            }
        }
        self.string_slow()
    }

    /// [`Scan::string`] for any string.
    #[inline(never)]
    fn string_slow(&mut self) -> Option<(usize, usize, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Sixteen bytes at a time up to the first that is special in a string: a
            // quote, a backslash or a control character (left to the full check).
            self.i = next_special(self.b, self.i);
            match self.peek()? {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// An escape at the cursor (`\` included). `\u` escapes of surrogates are left to
    /// the full check, which pairs them.
    fn escape(&mut self) -> Option<()> {
        match *self.b.get(self.i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Some(())
            }
            b'u' => {
                let hex = self.b.get(self.i + 2..self.i + 6)?;
                let text = std::str::from_utf8(hex).ok()?;
                let unit = u16::from_str_radix(text, 16).ok()?;
                if !hex.iter().all(u8::is_ascii_hexdigit) || (0xD800..=0xDFFF).contains(&unit) {
                    return None;
                }
                self.i += 6;
                Some(())
            }
            _ => None,
        }
    }

    /// A number: JSON's grammar, with integers short enough for `i64` and exponents
    /// short enough for a float.
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        let digits = self.digits();
        if digits == 0 || digits > 18 || (digits > 1 && self.b[self.i - digits] == b'0') {
            return None;
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !(1..=2).contains(&self.digits()) {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }
}

/// Whether a top-level string's raw content might decode to text that looks like a JSON
/// object or array (`decode::is_structured`): its first and last characters, past
/// whitespace, could be brackets. An escape might stand for whitespace or a bracket, so
/// it counts as "might".
fn might_hold_json(raw: &[u8], escaped: bool) -> bool {
    // Inside a JSON string, the only whitespace that is not escaped is a space or a
    // character past ASCII; most strings start with neither.
    match raw.iter().find(|&&b| b != b' ') {
        None => return false,
        Some(b'{' | b'[' | b'\\') => {}
        Some(&b) if b < 0x80 => return false,
        Some(_) => {}
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return true;
    };
    let first = text.chars().find(|c| !c.is_whitespace());
    let last = text.chars().rev().find(|c| !c.is_whitespace());
    let opens = matches!(first, Some('{' | '[' | '\\'));
    let closes = matches!(last, Some('}' | ']')) || escaped;
    opens && closes
}

/// The length of the key at `start..end` of `text` and up to its first seven bytes in
/// one word: equal keys have equal tags, and most different keys different ones. The
/// bytes are read as one word when the text has eight from `start` (a key is followed
/// at least by its closing quote, a colon and a value, so nearly always).
fn key_tag(text: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    let head = match text.get(start..start + 8) {
        Some(word) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            u64::from_le_bytes(w)
        }
        None => {
            let mut w = [0u8; 8];
            let rest = &text[start..];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    };
    let kept = len.min(7) * 8;
    ((len as u64) << 56) | (head & ((1u64 << kept) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tags_are_length_and_first_bytes_wherever_the_key_is() {
        let text = br#"{"level":"x","a":1,"message_id":2,"z"}"#;
        let expect = |key: &[u8]| {
            key.iter()
                .take(7)
                .enumerate()
                .fold((key.len() as u64) << 56, |t, (i, &b)| {
                    t | u64::from(b) << (8 * i)
                })
        };
        for key in [&b"level"[..], b"a", b"message_id", b"z"] {
            let needle = [&b"\""[..], key, b"\""].concat();
            let at = text
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
                + 1;
            assert_eq!(key_tag(text, at, at + key.len()), expect(key), "{key:?}");
        }
        // Near the end of the text, fewer than eight bytes are left to read.
        assert_eq!(key_tag(b"ab", 0, 2), expect(b"ab"));
        // Only the key's own bytes count, not the quote and text after it.
        assert_eq!(key_tag(b"\"abc\":1", 1, 4), key_tag(b"\"abc\":2", 1, 4));
        assert_ne!(key_tag(b"\"abc\":1", 1, 4), key_tag(b"\"abcd\":1", 1, 5));
    }

    #[test]
    fn vouches_for_plain_objects_only() {
        let cases = [
            (
                r#"{"a":1,"b":"x","c":{"d":[1,2.5,null,true,false,-0.5e-7]}}"#,
                true,
                true,
            ),
            ("{ \"a\" :\t1 , \"b\" : [ ] , \"c\" : { } }", true, true),
            (r#"{"a":"é \"q\" \\ \/ \n \u00e9"}"#, true, true),
            (r#"{"a":"{\"b\":1}"}"#, true, false),
            (r#"{"a":"{\"b\":1}"}"#, false, true),
            (r#"{"a":" text with [brackets] "}"#, true, true),
            ("{\"a\":\"\u{a0}[1]\u{3000}\"}", true, false),
            ("{\"a\":\"\u{a0}x[1]\"}", true, true),
            (r#"{"a":"[1]"}"#, true, false),
            (r#"{"a":"\t[1]"}"#, true, false),
            (r#"{"a":"\ud83d\ude00"}"#, true, false),
            (r#"{"a":1,"a":2}"#, true, false),
            (
                r#"{"a":{"b":1,"c":{"b":2}},"b":3,"c":[{"b":4,"c":5}]}"#,
                true,
                true,
            ),
            (r#"{"a":{"b":1},"a":2}"#, true, false),
            (r#"{"x":{"b":1,"c":{},"b":2}}"#, true, false),
            (r#"{"\u0061":1}"#, true, false),
            (r#"{"n":123456789012345678}"#, true, true),
            (r#"{"n":1234567890123456789}"#, true, false),
            (r#"{"n":1e300}"#, true, false),
            (r#"{"n":1e30}"#, true, true),
            (r#"{"n":01}"#, true, false),
            (r#"{"n":1.}"#, true, false),
            (r#"{"n":-}"#, true, false),
            (r#"{"n":+1}"#, true, false),
            (r#"{"a":tru}"#, true, false),
            (r#"{"a":1,}"#, true, false),
            (r#"{"a":1} "#, true, false),
            ("{\"a\":\n1}", true, false),
            ("{\"a\":\"\u{1}\"}", true, false),
            (r#"{"a":1"#, true, false),
        ];
        for (text, decodes_strings, want) in cases {
            assert_eq!(sure_as_is(text.as_bytes(), decodes_strings), want, "{text}");
        }
    }
}
