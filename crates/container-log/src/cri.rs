//! CRI log lines: `<RFC 3339 time> <stdout|stderr> <tags> <content>`.
//!
//! Fields are separated by exactly one space. Tags are `:`-separated and the first one is
//! `P` (a partial chunk that later lines continue) or `F` (the last or only chunk). The
//! content is everything after the single space that follows the tags, so leading spaces
//! in the content are kept; a line that ends right after the tags has empty content.

use logtide_event::Timestamp;

use crate::line::{ErrorKind, Format, Line, Message, ParseError, Stream};

const STREAM_LEN: usize = 6; // "stdout" and "stderr"

pub(crate) fn parse(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let err = |kind, column| Err(ParseError::new(Format::Cri, kind, column));
    if line.is_empty() {
        return err(ErrorKind::Empty, 0);
    }
    let Some(time_end) = memchr::memchr(b' ', line) else {
        return match Timestamp::parse_rfc3339(line) {
            Ok(_) => err(ErrorKind::MissingField("stream"), line.len()),
            Err(e) => err(ErrorKind::Timestamp(e), 0),
        };
    };
    let time = match Timestamp::parse_rfc3339(&line[..time_end]) {
        Ok(t) => t,
        Err(e) => return err(ErrorKind::Timestamp(e), 0),
    };

    let stream_start = time_end + 1;
    let stream_end = stream_start + STREAM_LEN;
    let stream = match line
        .get(stream_start..stream_end)
        .and_then(Stream::from_bytes)
    {
        Some(s) => s,
        None if stream_start == line.len() => {
            return err(ErrorKind::MissingField("stream"), stream_start)
        }
        None => return err(ErrorKind::InvalidStream, stream_start),
    };
    match line.get(stream_end) {
        Some(b' ') => {}
        None => return err(ErrorKind::MissingField("tags"), stream_end),
        Some(_) => return err(ErrorKind::InvalidStream, stream_start),
    }

    let tags_start = stream_end + 1;
    let rest = &line[tags_start..];
    let tags_len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let tags = &rest[..tags_len];
    let first_tag = memchr::memchr(b':', tags).map_or(tags, |i| &tags[..i]);
    let partial = match first_tag {
        b"P" => true,
        b"F" => false,
        _ if tags.is_empty() && tags_start == line.len() => {
            return err(ErrorKind::MissingField("tags"), tags_start)
        }
        _ => return err(ErrorKind::InvalidTag, tags_start),
    };
    let content = rest.get(tags_len + 1..).unwrap_or_default();

    Ok(Line {
        time,
        stream,
        partial,
        message: Message::plain(content),
        attrs: None,
        format: Format::Cri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2016-10-06T00:17:09.669794202Z";

    #[test]
    fn valid_lines_table() {
        // (line, stream, partial, message)
        let cases: &[(&str, Stream, bool, &str)] = &[
            (
                "2016-10-06T00:17:09.669794202Z stdout F log content 1",
                Stream::Stdout,
                false,
                "log content 1",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stderr P part",
                Stream::Stderr,
                true,
                "part",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F:x:y tagged",
                Stream::Stdout,
                false,
                "tagged",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout P:",
                Stream::Stdout,
                true,
                "",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F ",
                Stream::Stdout,
                false,
                "",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F",
                Stream::Stdout,
                false,
                "",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F  two spaces",
                Stream::Stdout,
                false,
                " two spaces",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F a\tb\rc",
                Stream::Stdout,
                false,
                "a\tb\rc",
            ),
            (
                "2016-10-06T00:17:09Z stdout F msg",
                Stream::Stdout,
                false,
                "msg",
            ),
            (
                "2016-10-06T09:17:09+09:00 stdout F msg",
                Stream::Stdout,
                false,
                "msg",
            ),
            (
                "2016-10-06T00:17:09.669794202Z stdout F {\"json\":1}",
                Stream::Stdout,
                false,
                "{\"json\":1}",
            ),
        ];
        for &(input, stream, partial, message) in cases {
            let l = parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(l.stream, stream, "{input}");
            assert_eq!(l.partial, partial, "{input}");
            assert_eq!(l.message.as_plain(), Some(message.as_bytes()), "{input}");
            assert_eq!(l.format, Format::Cri);
        }
        let text = format!("{T} stdout F x");
        let l = parse(text.as_bytes()).unwrap();
        assert_eq!(l.time.to_string(), T);
    }

    #[test]
    fn invalid_lines_table() {
        // (line, expected message)
        let cases: &[(&str, &str)] = &[
            ("", "invalid CRI line at column 0: empty line"),
            ("garbage", "invalid CRI line at column 0: bad time: not an RFC 3339 timestamp: expected a 4-digit year at column 0"),
            ("2016x", "invalid CRI line at column 0: bad time: not an RFC 3339 timestamp: expected '-' after the year at column 4"),
            (T, "invalid CRI line at column 30: line ends before the stream"),
            ("2016-10-06T00:17:09.669794202Z ", "invalid CRI line at column 31: line ends before the stream"),
            ("2016-10-06T00:17:09.669794202Z stdin F msg", "invalid CRI line at column 31: stream must be stdout or stderr"),
            ("2016-10-06T00:17:09.669794202Z stdoutx F msg", "invalid CRI line at column 31: stream must be stdout or stderr"),
            ("2016-10-06T00:17:09.669794202Z stdout", "invalid CRI line at column 37: line ends before the tags"),
            ("2016-10-06T00:17:09.669794202Z stdout ", "invalid CRI line at column 38: line ends before the tags"),
            ("2016-10-06T00:17:09.669794202Z stdout X msg", "invalid CRI line at column 38: first tag must be P (partial) or F (full)"),
            ("2016-10-06T00:17:09.669794202Z stdout  msg", "invalid CRI line at column 38: first tag must be P (partial) or F (full)"),
            ("2016-10-06T00:17:09.669794202Z stdout FP msg", "invalid CRI line at column 38: first tag must be P (partial) or F (full)"),
            ("2017-09-12T22:32:21.212861448Z stderr    java.io", "invalid CRI line at column 38: first tag must be P (partial) or F (full)"),
            ("2016-10-06 stdout F msg", "invalid CRI line at column 0: bad time: not an RFC 3339 timestamp: expected 'T' between date and time at column 10"),
        ];
        for &(input, want) in cases {
            let e = parse(input.as_bytes()).unwrap_err();
            assert_eq!(e.to_string(), want, "{input:?}");
        }
    }
}
