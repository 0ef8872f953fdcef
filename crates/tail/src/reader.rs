//! Reading one file in large chunks and cutting it into lines with byte offsets.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// A line found in the buffer: its place in the file and in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineAt {
    /// File offset of the line's first byte.
    pub(crate) start: u64,
    /// File offset just past the line's terminator (or its last byte when cut).
    pub(crate) end: u64,
    /// The line's bytes in the reader's buffer, terminator excluded.
    pub(crate) range: Range<usize>,
    /// The line was longer than the limit and was cut; the rest is skipped.
    pub(crate) cut: bool,
}

/// Reads a file from an offset with positional reads (immune to anyone else's seeks)
/// and hands out complete lines.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) file: File,
    /// Bytes read are `buf[..end]`; the rest of `buf` is initialized space kept for the
    /// next reads, so that a read does not zero its chunk again.
    buf: Vec<u8>,
    /// End of the bytes read into `buf`.
    end: usize,
    /// First byte of `buf` not handed out yet.
    pos: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Inside an over-long line: bytes up to the next newline are dropped.
    skipping: bool,
    /// Bytes dropped while skipping, not yet reported.
    pub(crate) skipped: u64,
}

impl Reader {
    pub(crate) fn new(file: File, offset: u64) -> Self {
        Reader {
            file,
            buf: Vec::new(),
            end: 0,
            pos: 0,
            buf_offset: offset,
            skipping: false,
            skipped: 0,
        }
    }

    /// Lends this reader the large buffer `shared` for a round of reading; its own
    /// unread bytes move into it. `shared` holds the reader's small buffer until
    /// [`Reader::detach`].
    pub(crate) fn attach(&mut self, shared: &mut Vec<u8>) {
        let mut big = std::mem::take(shared);
        let unread = self.end - self.pos;
        if big.len() < unread {
            big.resize(unread, 0);
        }
        big[..unread].copy_from_slice(&self.buf[self.pos..self.end]);
        self.buf_offset += self.pos as u64;
        self.pos = 0;
        self.end = unread;
        *shared = std::mem::replace(&mut self.buf, big);
    }

    /// Gives the large buffer back into `shared`, keeping only the unread bytes (an
    /// unfinished line), so that an idle file holds almost no memory.
    pub(crate) fn detach(&mut self, shared: &mut Vec<u8>) {
        let mut small = std::mem::take(shared);
        small.clear();
        small.extend_from_slice(&self.buf[self.pos..self.end]);
        if small.capacity() > 64 * 1024 && small.len() < 16 * 1024 {
            small.shrink_to(16 * 1024);
        }
        self.buf_offset += self.pos as u64;
        self.pos = 0;
        self.end = small.len();
        *shared = std::mem::replace(&mut self.buf, small);
    }

    /// File offset of the next byte not handed out (where an unfinished line starts).
    pub(crate) fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// Bytes buffered but not yet handed out.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Reads up to `chunk` more bytes; returns how many (0 at end of file).
    pub(crate) fn fill(&mut self, chunk: usize) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        let old = self.end;
        // Only space never used before is zeroed.
        if self.buf.len() < old + chunk {
            self.buf.resize(old + chunk, 0);
        }
        let read = loop {
            match self.file.read_at(
                &mut self.buf[old..old + chunk],
                self.buf_offset + old as u64,
            ) {
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.end = old + *read.as_ref().unwrap_or(&0);
        read
    }

    /// The next complete line, or `None` when more bytes are needed. A line longer than
    /// `max_line` is handed out cut to `max_line` bytes and the rest of it is skipped.
    pub(crate) fn next_line(&mut self, max_line: usize) -> Option<LineAt> {
        loop {
            let rest = &self.buf[self.pos..self.end];
            match memchr::memchr(b'\n', rest) {
                Some(nl) if self.skipping => {
                    self.skipped += nl as u64 + 1;
                    self.pos += nl + 1;
                    self.skipping = false;
                }
                Some(nl) if nl <= max_line => {
                    let start = self.pos;
                    self.pos += nl + 1;
                    return Some(LineAt {
                        start: self.buf_offset + start as u64,
                        end: self.buf_offset + self.pos as u64,
                        range: start..start + nl,
                        cut: false,
                    });
                }
                None if self.skipping => {
                    self.skipped += rest.len() as u64;
                    self.pos = self.end;
                    return None;
                }
                None if rest.len() <= max_line => return None,
                // Longer than the limit, with or without its newline in the buffer.
                _ => {
                    let start = self.pos;
                    self.pos += max_line;
                    self.skipping = true;
                    return Some(LineAt {
                        start: self.buf_offset + start as u64,
                        end: self.buf_offset + self.pos as u64,
                        range: start..start + max_line,
                        cut: true,
                    });
                }
            }
        }
    }

    /// Hands out the unterminated rest of the buffer as a last line (for a file that will
    /// not grow again).
    pub(crate) fn take_rest(&mut self) -> Option<LineAt> {
        if self.buffered() == 0 || self.skipping {
            self.skipped += self.buffered() as u64;
            self.pos = self.end;
            return None;
        }
        let start = self.pos;
        self.pos = self.end;
        Some(LineAt {
            start: self.buf_offset + start as u64,
            end: self.buf_offset + self.pos as u64,
            range: start..self.pos,
            cut: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(content: &[u8]) -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let r = Reader::new(File::open(&path).unwrap(), 0);
        (dir, r)
    }

    fn lines(r: &mut Reader, chunk: usize, max: usize) -> Vec<(u64, u64, String, bool)> {
        let mut out = Vec::new();
        loop {
            while let Some(l) = r.next_line(max) {
                out.push((
                    l.start,
                    l.end,
                    String::from_utf8_lossy(r.bytes(l.range.clone())).into_owned(),
                    l.cut,
                ));
            }
            if r.fill(chunk).unwrap() == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn splits_lines_across_small_reads_with_offsets() {
        let (_d, mut r) = reader(b"one\ntwo\n\nthree\nunterminated");
        let got = lines(&mut r, 3, 100);
        assert_eq!(
            got,
            [
                (0, 4, "one".into(), false),
                (4, 8, "two".into(), false),
                (8, 9, "".into(), false),
                (9, 15, "three".into(), false),
            ]
        );
        assert_eq!(r.offset(), 15);
        let rest = r.take_rest().unwrap();
        assert_eq!((rest.start, rest.end), (15, 27));
    }

    #[test]
    fn over_long_lines_are_cut_and_the_rest_skipped() {
        let (_d, mut r) = reader(b"0123456789abcdef\nok\n0123456789\n");
        let got = lines(&mut r, 4, 6);
        assert_eq!(
            got,
            [
                (0, 6, "012345".into(), true),
                (17, 20, "ok".into(), false),
                (20, 26, "012345".into(), true),
            ]
        );
        assert_eq!(r.skipped, (17 - 6) + (31 - 26));
        assert_eq!(r.offset(), 31);
    }

    #[test]
    fn a_lent_buffer_keeps_the_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one\ntw").unwrap();
        let mut r = Reader::new(File::open(&path).unwrap(), 0);
        let mut shared = Vec::with_capacity(1 << 16);
        r.attach(&mut shared);
        assert_eq!(lines(&mut r, 1 << 16, 100), [(0, 4, "one".into(), false)]);
        r.detach(&mut shared);
        assert!(shared.capacity() >= 1 << 16, "the large buffer is back");
        assert_eq!(r.buffered(), 2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"o\n").unwrap();
        r.attach(&mut shared);
        assert_eq!(lines(&mut r, 64, 100), [(4, 8, "two".into(), false)]);
    }

    #[test]
    fn starts_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"skip\nread\n").unwrap();
        let mut r = Reader::new(File::open(&path).unwrap(), 5);
        assert_eq!(lines(&mut r, 64, 64), [(5, 10, "read".into(), false)]);
    }
}
