//! Container log lines in, entries out.
//!
//! Kubernetes nodes write container output in one of two formats: CRI
//! (`<time> <stdout|stderr> <P|F> <content>`, containerd and CRI-O) and docker json-file
//! (`{"log":"…","stream":"…","time":"…"}`). Both split long output into partial chunks
//! (16 KiB by default) that a reader must join again. This crate does both steps, with no
//! I/O and no runtime, so it can be embedded, fuzzed and benchmarked on its own:
//!
//! - [`parse_line`] turns one line into a [`Line`] that borrows from the input (nothing is
//!   allocated), or a [`ParseError`] that says what is wrong and at which column.
//! - [`Reassembler`] joins chunks into [`Entry`]s per key (for a tailer: the container)
//!   and stream, with its pending state exportable so that it outlives any one file. Its
//!   memory is bounded three ways ([`ReassemblerConfig`]): entry size
//!   ([`DEFAULT_MAX_ENTRY_BYTES`], 16 MiB, so large entries pass whole), the number of
//!   pending entries ([`DEFAULT_MAX_PENDING`], 4096) and the bytes all pending entries
//!   hold together ([`DEFAULT_MAX_PENDING_BYTES`], 64 MiB). Past an entry's size the rest
//!   is cut and the entry flagged truncated; past either pending bound the oldest pending
//!   entry is emitted flagged partial and counted ([`ReassemblerStats`]); nothing is
//!   dropped silently.
//!
//! # Parsing policy
//!
//! Where the shippers in use today disagree, this crate takes one documented position:
//!
//! - CRI fields are separated by exactly one space; the content is everything after the
//!   space that follows the tags, so its leading spaces are kept. The first `:`-separated
//!   tag must be `P` or `F` (tag-less legacy lines are invalid); the stream must be
//!   `stdout` or `stderr`.
//! - A docker line must be exactly one JSON object with string `log`, `stream` and `time`;
//!   trailing bytes, raw control characters in strings and duplicate keys make it invalid.
//!   `attrs` may hold any JSON value. A `log` ending in a newline is a complete line and
//!   exactly one newline is removed; any other `log` (including an empty one) is a chunk
//!   that the next line of the same stream continues.
//! - Message bytes are passed through unchanged, even when they are not UTF-8.
//! - Timestamps are RFC 3339 with any number of fractional digits, lowercase `t`/`z` and
//!   numeric offsets; they are kept with nanosecond precision.
//! - A joined entry keeps its first chunk's time; an invalid line in between is reported
//!   by the caller and does not disturb the entry being joined.
//!
//! # Example
//!
//! ```
//! use logtide_container_log::{parse_line, Format, Reassembler, ReassemblerConfig};
//!
//! let input = "2016-10-06T00:17:09.669794202Z stdout P Hello, \n\
//!              not a log line\n\
//!              2016-10-06T00:17:10.113242941Z stdout F world\n";
//! let mut joiner = Reassembler::<(), usize>::new(ReassemblerConfig::default());
//! let mut entries = Vec::new();
//! let mut errors = Vec::new();
//! for (n, line) in input.lines().enumerate() {
//!     match parse_line(line.as_bytes(), Format::Auto) {
//!         Ok(parsed) => joiner.push(&(), &parsed, n + 1, |e| {
//!             entries.push(String::from_utf8_lossy(&e.message).into_owned())
//!         }),
//!         Err(e) => errors.push(format!("line {}: {e}", n + 1)),
//!     }
//! }
//! assert_eq!(entries, ["Hello, world"]);
//! assert_eq!(errors[0], "line 2: invalid CRI line at column 0: bad time: \
//!     not an RFC 3339 timestamp: expected a 4-digit year at column 0");
//! ```

mod cri;
mod docker;
mod json;
mod line;
mod reassemble;

pub use line::{parse_line, ErrorKind, Format, Line, Message, ParseError, Stream};
pub use reassemble::{
    Entry, PendingEntry, Reassembler, ReassemblerConfig, ReassemblerStats, DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_BYTES,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line could not be parsed; says where it is in its input.
    #[error("line {line} (byte offset {offset}): {error}")]
    InvalidLine {
        /// 1-based line number in the input.
        line: u64,
        /// Byte offset of the line's first byte in the input.
        offset: u64,
        /// What is wrong with it.
        error: ParseError,
    },
    /// An imported pending entry collides with one already being joined.
    #[error("cannot import a pending {stream} entry: one is already being joined for that key")]
    ImportConflict {
        /// The stream of the colliding entry.
        stream: Stream,
    },
    /// Importing would exceed the pending-entry limit.
    #[error("cannot import {count} pending entries: room for only {limit}")]
    ImportTooMany {
        /// Entries offered.
        count: usize,
        /// Room left under `max_pending`.
        limit: usize,
    },
    /// Importing would exceed the budget of bytes held by pending entries.
    #[error("cannot import {bytes} bytes of pending entries: room for only {limit}")]
    ImportTooLarge {
        /// Bytes offered (messages, cut at `max_entry_bytes`, and attrs).
        bytes: usize,
        /// Room left under `max_pending_bytes`.
        limit: usize,
    },
}

impl Error {
    /// Places a parse error in its input.
    pub fn at(error: ParseError, line: u64, offset: u64) -> Self {
        Error::InvalidLine {
            line,
            offset,
            error,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
