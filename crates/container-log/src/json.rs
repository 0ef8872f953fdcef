//! A validating JSON scanner that finds values without building them, and the decoder for
//! JSON string escapes. Used for docker json-file lines, which hold one small object whose
//! `log` string is the bulk of the line.

use crate::line::ErrorKind;

/// Maximum nesting of arrays and objects followed inside a docker line.
const MAX_DEPTH: u32 = 128;

use logtide_event::json::special_bytes as special_mask;

/// A position in a line being scanned.
pub(crate) struct Scanner<'a> {
    pub(crate) s: &'a [u8],
    pub(crate) i: usize,
}

/// The body of a string literal (between its quotes) and where it starts.
pub(crate) struct StrLit<'a> {
    pub(crate) body: &'a [u8],
    /// Offset of the first backslash within `body`, if any.
    pub(crate) first_escape: Option<usize>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Scanner { s, i: 0 }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    pub(crate) fn expect(&mut self, b: u8, what: &'static str) -> Result<(), ErrorKind> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(ErrorKind::Json(what))
        }
    }

    /// Scans a string literal starting at the opening quote.
    pub(crate) fn string(&mut self) -> Result<StrLit<'a>, ErrorKind> {
        self.expect(b'"', "a string")?;
        let start = self.i;
        let mut first_escape = None;
        loop {
            // Skip ordinary bytes eight at a time, then jump to the first special one.
            while let Some(chunk) = self.s.get(self.i..self.i + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let mask = special_mask(u64::from_le_bytes(word));
                if mask != 0 {
                    self.i += (mask.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            let Some(b) = self.peek() else {
                return Err(ErrorKind::Json("a closing quote"));
            };
            match b {
                b'"' => {
                    let body = &self.s[start..self.i];
                    self.i += 1;
                    return Ok(StrLit { body, first_escape });
                }
                b'\\' => {
                    first_escape.get_or_insert(self.i - start);
                    self.escape()?;
                }
                0..=0x1f => return Err(ErrorKind::Json("no raw control character in a string")),
                _ => self.i += 1,
            }
        }
    }

    /// Validates one escape sequence starting at the backslash.
    fn escape(&mut self) -> Result<(), ErrorKind> {
        match self.s.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(())
            }
            Some(b'u') => {
                let hex = self.s.get(self.i + 2..self.i + 6);
                if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    self.i += 6;
                    Ok(())
                } else {
                    Err(ErrorKind::Json("four hex digits after \\u"))
                }
            }
            _ => Err(ErrorKind::Json("a valid escape after '\\'")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), ErrorKind> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(ErrorKind::Json("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(ErrorKind::Json("a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(ErrorKind::Json("a digit in the exponent"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ErrorKind> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(ErrorKind::Json("a JSON value"))
        }
    }

    /// Scans one object key and the colon after it.
    fn key(&mut self) -> Result<(), ErrorKind> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(ErrorKind::Json("a string key"));
        }
        self.string()?;
        self.ws();
        self.expect(b':', "':' after a key")
    }

    /// Scans and validates any JSON value, without recursion.
    pub(crate) fn skip_value(&mut self) -> Result<(), ErrorKind> {
        // Bit d of `objects` tells whether nesting level d+1 is an object (else an array).
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            self.ws();
            let mut opened = false;
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        if depth == MAX_DEPTH {
                            return Err(ErrorKind::TooDeep);
                        }
                        if open == b'{' {
                            objects |= 1 << depth;
                            self.key()?;
                        } else {
                            objects &= !(1 << depth);
                        }
                        depth += 1;
                        opened = true;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(ErrorKind::Json("a JSON value")),
            }
            if opened {
                continue;
            }
            // A value is complete: close containers until one expects another element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let in_object = objects & (1 << (depth - 1)) != 0;
                match (self.peek(), in_object) {
                    (Some(b','), true) => {
                        self.i += 1;
                        self.key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.i += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.i += 1;
                        depth -= 1;
                    }
                    (_, true) => return Err(ErrorKind::Json("',' or '}' in an object")),
                    (_, false) => return Err(ErrorKind::Json("',' or ']' in an array")),
                }
            }
        }
    }
}

fn hex4(h: &[u8]) -> u32 {
    h.iter().fold(0, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        acc * 16 + u32::from(d)
    })
}

/// Decodes the body of a string literal that [`Scanner::string`] validated, handing the
/// decoded bytes to `emit` in chunks. A lone UTF-16 surrogate becomes U+FFFD.
pub(crate) fn unescape(body: &[u8], mut emit: impl FnMut(&[u8])) {
    let mut i = 0;
    while i < body.len() {
        let Some(off) = memchr::memchr(b'\\', &body[i..]) else {
            emit(&body[i..]);
            return;
        };
        if off > 0 {
            emit(&body[i..i + off]);
        }
        i += off;
        let simple = match body.get(i + 1) {
            Some(b'n') => Some(b'\n'),
            Some(b't') => Some(b'\t'),
            Some(b'r') => Some(b'\r'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(&c @ (b'"' | b'\\' | b'/')) => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            emit(&[c]);
            i += 2;
            continue;
        }
        // `\uXXXX`, possibly the first half of a surrogate pair.
        let Some(hex) = body.get(i + 2..i + 6) else {
            return; // unreachable for validated input; stop rather than misdecode
        };
        let unit = hex4(hex);
        i += 6;
        let code = match unit {
            0xD800..=0xDBFF => {
                let low = body
                    .get(i..i + 6)
                    .filter(|s| s.starts_with(b"\\u"))
                    .map(|s| hex4(&s[2..]))
                    .filter(|l| (0xDC00..=0xDFFF).contains(l));
                match low {
                    Some(low) => {
                        i += 6;
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    None => 0xFFFD,
                }
            }
            0xDC00..=0xDFFF => 0xFFFD,
            _ => unit,
        };
        let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut buf = [0u8; 4];
        emit(ch.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Vec<u8> {
        let quoted = format!("\"{body}\"");
        assert!(
            Scanner::new(quoted.as_bytes()).string().is_ok(),
            "{body} must be valid"
        );
        let mut out = Vec::new();
        unescape(body.as_bytes(), |c| out.extend_from_slice(c));
        out
    }

    #[test]
    fn unescape_table() {
        let cases: &[(&str, &[u8])] = &[
            ("plain", b"plain"),
            (r#"a\nb\tc\r\"\\\/"#, b"a\nb\tc\r\"\\/"),
            (r"\b\f", b"\x08\x0c"),
            (r"\u0041\u00e9\u20AC", "Aé€".as_bytes()),
            (r"\ud83d\ude00", "😀".as_bytes()),
            (r"\ud83d", "\u{fffd}".as_bytes()),
            (r"\ude00x", "\u{fffd}x".as_bytes()),
            (r"\ud83d\u0041", "\u{fffd}A".as_bytes()),
            (r"\u001b[31mred", b"\x1b[31mred"),
        ];
        for &(body, want) in cases {
            assert_eq!(decode(body), want, "{body}");
        }
    }

    #[test]
    fn string_scan_finds_the_end_and_first_escape() {
        let line = br#""0123456789abcdef\n" tail"#;
        let mut s = Scanner::new(line);
        let lit = s.string().unwrap();
        assert_eq!(lit.body, br"0123456789abcdef\n");
        assert_eq!(lit.first_escape, Some(16));
        assert_eq!(&line[s.i..], b" tail");
    }

    #[test]
    fn skip_value_table() {
        let valid = [
            "0",
            "-1.5e+10",
            "1E5",
            "true",
            "null",
            "\"s\"",
            "[]",
            "{}",
            "[1,[2,[3]],{\"a\":[]}]",
            "{\"a\": {\"b\": [true, false, null]}, \"c\" : \"d\"}",
            " [ 1 , 2 ] ",
        ];
        for v in valid {
            let mut s = Scanner::new(v.as_bytes());
            assert_eq!(s.skip_value(), Ok(()), "{v}");
            s.ws();
            assert_eq!(s.i, v.len(), "{v}");
        }
        let invalid = [
            "",
            "01x",
            "-",
            "1.",
            "1e",
            "tru",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "{1:2}",
            "\"\\x\"",
            "\"\\u12\"",
            "[",
            "{\"a\":1]",
            "\"abc",
        ];
        for v in invalid {
            let mut s = Scanner::new(v.as_bytes());
            let ok = s.skip_value().is_ok() && {
                s.ws();
                s.i == v.len()
            };
            assert!(!ok, "{v} must be rejected");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            Scanner::new(deep.as_bytes()).skip_value(),
            Err(ErrorKind::TooDeep)
        );
        let ok_deep = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(Scanner::new(ok_deep.as_bytes()).skip_value(), Ok(()));
    }

    #[test]
    fn special_byte_detection_finds_the_first_one() {
        let is_special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for b in 0u8..=255 {
            for pos in 0..8 {
                for background in [b'a', 0x80, 0xff, b' '] {
                    let mut word = [background; 8];
                    word[pos] = b;
                    let mask = special_mask(u64::from_le_bytes(word));
                    let first = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
                    let want = word.iter().position(|&x| is_special(x));
                    assert_eq!(first, want, "byte {b} at {pos} in {background}");
                }
                // Two special bytes: the lower one is reported.
                let mut word = [b'a'; 8];
                word[pos] = b'"';
                if pos < 7 {
                    word[7] = 0;
                }
                let mask = special_mask(u64::from_le_bytes(word));
                assert_eq!((mask.trailing_zeros() / 8) as usize, pos);
            }
        }
    }
}
