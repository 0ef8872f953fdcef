//! Docker json-file lines: `{"log":"…","stream":"stdout","time":"…"[,"attrs":{…}]}`.
//!
//! A line must be exactly one valid JSON object (whitespace around it allowed) with
//! string `log`, `stream` and `time`. `attrs` may hold any JSON value and is passed on raw;
//! other keys are validated and ignored. A `log` that ends with a newline is a complete
//! line and the newline is not part of the message; without one it is a partial chunk
//! that the next line of the same stream continues.

use logtide_event::Timestamp;

use crate::json::{unescape, Scanner, StrLit};
use crate::line::{ErrorKind, Format, Line, Message, ParseError, Stream};

/// The keys the parser cares about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Log,
    Stream,
    Time,
    Attrs,
    Other,
}

/// Decodes a short string literal into a fixed buffer; `None` when it does not fit.
fn decode_small<const N: usize>(lit: &StrLit<'_>) -> Option<([u8; N], usize)> {
    let mut buf = [0u8; N];
    let mut len = 0;
    let mut fits = true;
    unescape(lit.body, |chunk| {
        if fits && len + chunk.len() <= N {
            buf[len..len + chunk.len()].copy_from_slice(chunk);
            len += chunk.len();
        } else {
            fits = false;
        }
    });
    fits.then_some((buf, len))
}

fn key_of(lit: &StrLit<'_>) -> Key {
    let classify = |k: &[u8]| match k {
        b"log" => Key::Log,
        b"stream" => Key::Stream,
        b"time" => Key::Time,
        b"attrs" => Key::Attrs,
        _ => Key::Other,
    };
    if lit.first_escape.is_none() {
        return classify(lit.body);
    }
    match decode_small::<8>(lit) {
        Some((buf, len)) => classify(&buf[..len]),
        None => Key::Other,
    }
}

/// Length of a trailing escaped newline (`\n` or `\u000a`) at the end of a string body,
/// or 0. Only an escape whose backslash is not itself escaped counts.
fn trailing_newline_escape(body: &[u8]) -> usize {
    let len = if body.ends_with(br"\n") {
        2
    } else if body.len() >= 6 && body[body.len() - 6..].eq_ignore_ascii_case(br"\u000a") {
        6
    } else {
        return 0;
    };
    let before = &body[..body.len() - len];
    let backslashes = before.iter().rev().take_while(|&&b| b == b'\\').count();
    if backslashes % 2 == 0 {
        len
    } else {
        0
    }
}

pub(crate) fn parse(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let mut s = Scanner::new(line);
    parse_object(&mut s).map_err(|kind| ParseError::new(Format::Docker, kind, s.i))
}

fn parse_object<'a>(s: &mut Scanner<'a>) -> Result<Line<'a>, ErrorKind> {
    if s.s.is_empty() {
        return Err(ErrorKind::Empty);
    }
    let mut log: Option<StrLit<'a>> = None;
    let mut stream: Option<Stream> = None;
    let mut time: Option<Timestamp> = None;
    let mut attrs: Option<&'a [u8]> = None;

    s.ws();
    s.expect(b'{', "'{' at the start of a docker line")?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            if s.peek() != Some(b'"') {
                return Err(ErrorKind::Json("a string key"));
            }
            let key = key_of(&s.string()?);
            s.ws();
            s.expect(b':', "':' after a key")?;
            s.ws();
            match key {
                Key::Log => {
                    if log.is_some() {
                        return Err(ErrorKind::DuplicateKey("log"));
                    }
                    if s.peek() != Some(b'"') {
                        return Err(ErrorKind::NotAString("log"));
                    }
                    log = Some(s.string()?);
                }
                Key::Stream => {
                    if stream.is_some() {
                        return Err(ErrorKind::DuplicateKey("stream"));
                    }
                    if s.peek() != Some(b'"') {
                        return Err(ErrorKind::NotAString("stream"));
                    }
                    let start = s.i;
                    let lit = s.string()?;
                    let value = match lit.first_escape {
                        None => Stream::from_bytes(lit.body),
                        Some(_) => {
                            decode_small::<8>(&lit).and_then(|(b, n)| Stream::from_bytes(&b[..n]))
                        }
                    };
                    match value {
                        Some(v) => stream = Some(v),
                        None => {
                            s.i = start;
                            return Err(ErrorKind::InvalidDockerStream);
                        }
                    }
                }
                Key::Time => {
                    if time.is_some() {
                        return Err(ErrorKind::DuplicateKey("time"));
                    }
                    if s.peek() != Some(b'"') {
                        return Err(ErrorKind::NotAString("time"));
                    }
                    let start = s.i;
                    let lit = s.string()?;
                    let parsed = match lit.first_escape {
                        None => Timestamp::parse_rfc3339(lit.body),
                        Some(_) => match decode_small::<64>(&lit) {
                            Some((b, n)) => Timestamp::parse_rfc3339(&b[..n]),
                            None => Timestamp::parse_rfc3339(lit.body),
                        },
                    };
                    match parsed {
                        Ok(t) => time = Some(t),
                        Err(e) => {
                            s.i = start + 1;
                            return Err(ErrorKind::Timestamp(e));
                        }
                    }
                }
                Key::Attrs => {
                    if attrs.is_some() {
                        return Err(ErrorKind::DuplicateKey("attrs"));
                    }
                    let start = s.i;
                    s.skip_value()?;
                    let raw = &s.s[start..s.i];
                    attrs = (raw != b"null").then_some(raw);
                }
                Key::Other => s.skip_value()?,
            }
            s.ws();
            match s.peek() {
                Some(b',') => {
                    s.i += 1;
                    s.ws();
                }
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return Err(ErrorKind::Json("',' or '}' in an object")),
            }
        }
    }
    s.ws();
    if s.i != s.s.len() {
        return Err(ErrorKind::Json("the end of the line after the JSON object"));
    }

    let log = log.ok_or(ErrorKind::MissingKey("log"))?;
    let stream = stream.ok_or(ErrorKind::MissingKey("stream"))?;
    let time = time.ok_or(ErrorKind::MissingKey("time"))?;

    let newline = trailing_newline_escape(log.body);
    let body = &log.body[..log.body.len() - newline];
    let escaped = log.first_escape.is_some_and(|at| at < body.len());
    Ok(Line {
        time,
        stream,
        partial: newline == 0,
        message: Message::json(body, escaped),
        attrs,
        format: Format::Docker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Line<'_> {
        parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn valid_lines_table() {
        /// (line, stream, partial, message, attrs)
        type Case<'a> = (&'a str, Stream, bool, &'a [u8], Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (
                r#"{"log":"hello\n","stream":"stdout","time":"2017-11-09T13:27:36.277747246Z"}"#,
                Stream::Stdout,
                false,
                b"hello",
                None,
            ),
            (
                r#"{"log":"chunk","stream":"stderr","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stderr,
                true,
                b"chunk",
                None,
            ),
            (
                r#"{"log":"","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                true,
                b"",
                None,
            ),
            (
                r#"{"log":"\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"",
                None,
            ),
            (
                r#"{"log":"a\r\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"a\r",
                None,
            ),
            (
                r#"{"log":"a\\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                true,
                b"a\\n",
                None,
            ),
            (
                r#"{"log":"a\\\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"a\\",
                None,
            ),
            (
                r#"{"log":"x\u000A","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"x",
                None,
            ),
            (
                r#"{"log":"q\"uote\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"q\"uote",
                None,
            ),
            (
                r#" { "log" : "sp\n" , "stream" : "stdout" , "time" : "2017-11-09T13:27:36Z" } "#,
                Stream::Stdout,
                false,
                b"sp",
                None,
            ),
            (
                r#"{"time":"2017-11-09T13:27:36Z","stream":"stdout","log":"reordered\n"}"#,
                Stream::Stdout,
                false,
                b"reordered",
                None,
            ),
            (
                r#"{"log":"a\n","attrs":{"k":"v","n":1},"stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"a",
                Some(r#"{"k":"v","n":1}"#),
            ),
            (
                r#"{"log":"a\n","attrs":null,"stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"a",
                None,
            ),
            (
                r#"{"log":"a\n","extra":[1,{"b":null}],"stream":"stdout","time":"2017-11-09T13:27:36Z"}"#,
                Stream::Stdout,
                false,
                b"a",
                None,
            ),
            (
                r#"{"\u006cog":"esc key\n","stream":"std\u006fut","time":"2017-11-09T13:27:36\u005a"}"#,
                Stream::Stdout,
                false,
                b"esc key",
                None,
            ),
            (
                r#"{"log":"\u00e9t\u00e9\n","stream":"stdout","time":"2021-02-01T16:45:03.01231z"}"#,
                Stream::Stdout,
                false,
                "été".as_bytes(),
                None,
            ),
        ];
        for &(input, stream, partial, message, attrs) in cases {
            let l = ok(input);
            assert_eq!(l.stream, stream, "{input}");
            assert_eq!(l.partial, partial, "{input}");
            assert_eq!(&l.message.to_bytes()[..], message, "{input}");
            assert_eq!(l.attrs, attrs.map(str::as_bytes), "{input}");
            assert_eq!(l.format, Format::Docker);
        }
    }

    #[test]
    fn plain_messages_are_borrowed() {
        let l =
            ok(r#"{"log":"no escapes here\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#);
        assert_eq!(l.message.as_plain(), Some(&b"no escapes here"[..]));
        let l = ok(r#"{"log":"tab\there\n","stream":"stdout","time":"2017-11-09T13:27:36Z"}"#);
        assert_eq!(l.message.as_plain(), None);
    }

    #[test]
    fn invalid_lines_table() {
        let t = r#""time":"2017-11-09T13:27:36Z""#;
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty line"),
            (
                "hello world".into(),
                "invalid JSON: expected '{' at the start of a docker line",
            ),
            (
                "{this is not JSON".into(),
                "invalid JSON: expected a string key",
            ),
            (
                format!(r#"{{"log":"x\n","stream":"stdout",{t}}}garbage"#),
                "invalid JSON: expected the end of the line after the JSON object",
            ),
            (
                format!(r#"{{"log":"x","stream":"stdout",{t}"#),
                "invalid JSON: expected ',' or '}' in an object",
            ),
            (
                format!("{{\"log\":\"cc\n\",\"stream\":\"stdout\",{t}}}"),
                "invalid JSON: expected no raw control character in a string",
            ),
            (
                format!(r#"{{"log":1,"stream":"stdout",{t}}}"#),
                "\"log\" must be a string",
            ),
            (
                format!(r#"{{"stream":"stdout",{t}}}"#),
                "missing \"log\" key",
            ),
            (
                r#"{"log":"x","stream":"stdout"}"#.into(),
                "missing \"time\" key",
            ),
            (format!(r#"{{"log":"x",{t}}}"#), "missing \"stream\" key"),
            (
                format!(r#"{{"log":"x","log":"y","stream":"stdout",{t}}}"#),
                "duplicate \"log\" key",
            ),
            (
                format!(r#"{{"log":"x","stream":"stdin",{t}}}"#),
                "\"stream\" must be stdout or stderr",
            ),
            (
                r#"{"log":"x","stream":"stdout","time":"yesterday"}"#.into(),
                "bad time: not an RFC 3339 timestamp: expected a 4-digit year at column 0",
            ),
            (
                format!(r#"{{"log":"\x","stream":"stdout",{t}}}"#),
                "invalid JSON: expected a valid escape after '\\'",
            ),
            (
                format!(r#"{{"log":"x","stream":"stdout","attrs":{{"a":}},{t}}}"#),
                "invalid JSON: expected a JSON value",
            ),
            (
                format!(
                    r#"{{"log":"x","stream":"stdout","deep":{}{}, {t}}}"#,
                    "[".repeat(300),
                    "]".repeat(300)
                ),
                "JSON nested too deeply",
            ),
        ];
        for (input, want) in cases {
            let e = parse(input.as_bytes()).unwrap_err();
            assert_eq!(e.kind.to_string(), want, "{input}");
            assert!(e.column <= input.len());
        }
        let e =
            parse(br#"{"log":"x","stream":"stdin","time":"2017-11-09T13:27:36Z"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid docker json-file line at column 20: \"stream\" must be stdout or stderr"
        );
    }
}
