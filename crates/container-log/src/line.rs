//! One parsed container log line, and the dispatch between the two formats.

use std::borrow::Cow;
use std::fmt;

use logtide_event::{Timestamp, TimestampError};

use crate::{cri, docker, json};

/// The output stream a line was written to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Stream> {
        match b {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decide per line: a line whose first byte is `{` is docker json-file, anything else CRI.
    #[default]
    Auto,
    /// CRI (containerd, CRI-O): `<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <content>`.
    Cri,
    /// Docker json-file: `{"log":"…","stream":"…","time":"…"[,"attrs":{…}]}`.
    Docker,
}

impl Format {
    /// `"auto"`, `"cri"` or `"docker"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Cri => "cri",
            Format::Docker => "docker",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message as it sits in the input line: plain bytes (CRI) or the body of a JSON string
/// (docker) that still has its escapes.
///
/// Nothing is decoded until asked for, so parsing a line never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> Message<'a> {
    /// A message that is exactly these bytes.
    pub fn plain(bytes: &'a [u8]) -> Self {
        Message {
            raw: bytes,
            escaped: false,
        }
    }

    /// A message given as the body of a valid JSON string literal (between the quotes).
    pub(crate) fn json(body: &'a [u8], escaped: bool) -> Self {
        Message { raw: body, escaped }
    }

    /// The bytes as they appear in the line (with JSON escapes for docker lines).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message bytes when no decoding is needed.
    pub fn as_plain(&self) -> Option<&'a [u8]> {
        (!self.escaped).then_some(self.raw)
    }

    /// Whether the message holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Appends the message bytes, decoding JSON escapes, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if self.escaped {
            json::unescape(self.raw, |chunk| out.extend_from_slice(chunk));
        } else {
            out.extend_from_slice(self.raw);
        }
    }

    /// The message bytes: borrowed when the line holds them as they are, decoded otherwise.
    pub fn to_bytes(&self) -> Cow<'a, [u8]> {
        if self.escaped {
            let mut out = Vec::with_capacity(self.raw.len());
            self.write_to(&mut out);
            Cow::Owned(out)
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// One container log line, borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The time the runtime recorded for the line.
    pub time: Timestamp,
    /// The stream the line was written to.
    pub stream: Stream,
    /// Whether this is a chunk of a longer entry that later lines continue
    /// (CRI `P`; docker `log` without a trailing newline).
    pub partial: bool,
    /// The content, without the line terminator (and for docker, without the `log`
    /// string's trailing newline).
    pub message: Message<'a>,
    /// Docker's `attrs` object as raw, valid JSON (labels and env added by the daemon).
    pub attrs: Option<&'a [u8]>,
    /// The format the line was parsed as ([`Format::Cri`] or [`Format::Docker`]).
    pub format: Format,
}

/// Parses one log line. A single trailing `\n` is ignored.
///
/// With [`Format::Auto`] a line starting with `{` is parsed as docker json-file and any
/// other line as CRI. The result borrows from `line`; nothing is allocated.
///
/// ```
/// use logtide_container_log::{parse_line, Format, Stream};
///
/// let line = parse_line(b"2016-10-06T00:17:09.669794202Z stderr P part one", Format::Auto)?;
/// assert_eq!((line.stream, line.partial), (Stream::Stderr, true));
/// assert_eq!(line.message.as_plain(), Some(&b"part one"[..]));
///
/// let line = parse_line(br#"{"log":"hi\n","stream":"stdout","time":"2016-10-06T00:17:09Z"}"#, Format::Auto)?;
/// assert_eq!((line.partial, &line.message.to_bytes()[..]), (false, &b"hi"[..]));
/// # Ok::<(), logtide_container_log::ParseError>(())
/// ```
pub fn parse_line(line: &[u8], format: Format) -> Result<Line<'_>, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match format {
        Format::Cri => cri::parse(line),
        Format::Docker => docker::parse(line),
        Format::Auto if line.first() == Some(&b'{') => docker::parse(line),
        Format::Auto => cri::parse(line),
    }
}

/// What is wrong with a line that could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line is empty.
    Empty,
    /// The timestamp is not RFC 3339.
    Timestamp(TimestampError),
    /// A CRI field is missing (the line ends before it).
    MissingField(&'static str),
    /// The CRI stream is neither `stdout` nor `stderr`.
    InvalidStream,
    /// The first CRI tag is neither `P` nor `F`.
    InvalidTag,
    /// A docker line is not valid JSON; says what was expected.
    Json(&'static str),
    /// A docker line lacks a required key.
    MissingKey(&'static str),
    /// A docker line has a required key twice.
    DuplicateKey(&'static str),
    /// A docker key has a value of the wrong type.
    NotAString(&'static str),
    /// The docker `stream` value is neither `stdout` nor `stderr`.
    InvalidDockerStream,
    /// JSON nesting deeper than this parser follows.
    TooDeep,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Empty => f.write_str("empty line"),
            ErrorKind::Timestamp(e) => write!(f, "bad time: {e}"),
            ErrorKind::MissingField(what) => write!(f, "line ends before the {what}"),
            ErrorKind::InvalidStream => f.write_str("stream must be stdout or stderr"),
            ErrorKind::InvalidTag => f.write_str("first tag must be P (partial) or F (full)"),
            ErrorKind::Json(expected) => write!(f, "invalid JSON: expected {expected}"),
            ErrorKind::MissingKey(key) => write!(f, "missing \"{key}\" key"),
            ErrorKind::DuplicateKey(key) => write!(f, "duplicate \"{key}\" key"),
            ErrorKind::NotAString(key) => write!(f, "\"{key}\" must be a string"),
            ErrorKind::InvalidDockerStream => f.write_str("\"stream\" must be stdout or stderr"),
            ErrorKind::TooDeep => f.write_str("JSON nested too deeply"),
        }
    }
}

/// A line that could not be parsed: the format tried, what is wrong, and the zero-based
/// byte column where the problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {format_name} line at column {column}: {kind}", format_name = self.format_name())]
pub struct ParseError {
    /// The format the line was parsed as.
    pub format: Format,
    /// What is wrong.
    pub kind: ErrorKind,
    /// Zero-based byte column in the line.
    pub column: usize,
}

impl ParseError {
    pub(crate) fn new(format: Format, kind: ErrorKind, column: usize) -> Self {
        ParseError {
            format,
            kind,
            column,
        }
    }

    fn format_name(&self) -> &'static str {
        match self.format {
            Format::Cri => "CRI",
            Format::Docker => "docker json-file",
            Format::Auto => "container log",
        }
    }
}
