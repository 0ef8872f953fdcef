//! Parses arbitrary bytes as a CRI line and checks what a successful parse may return.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use logtide_container_log::{parse_line, Format};

/// Whether the bytes of `part` lie within the memory of `whole`. An empty slice holds no
/// bytes and passes wherever it points.
fn is_subslice(whole: &[u8], part: &[u8]) -> bool {
    if part.is_empty() {
        return true;
    }
    let whole = whole.as_ptr_range();
    let part = part.as_ptr_range();
    whole.start <= part.start && part.end <= whole.end
}

fuzz_target!(|data: &[u8]| {
    match parse_line(data, Format::Cri) {
        Ok(line) => {
            assert_eq!(line.format, Format::Cri);
            assert!(line.attrs.is_none(), "CRI lines carry no attrs");
            let raw = line.message.raw();
            assert!(is_subslice(data, raw), "message must borrow from the input");
            // CRI content is never escaped: the decoded message is the raw one.
            assert_eq!(line.message.as_plain(), Some(raw));
            let bytes = line.message.to_bytes();
            assert_eq!(&bytes[..], raw);
            assert!(bytes.len() <= data.len());
            let mut written = Vec::new();
            line.message.write_to(&mut written);
            assert_eq!(written, raw);
            // The content is the tail of the line (less one trailing newline).
            let line_end = data.strip_suffix(b"\n").unwrap_or(data);
            assert!(line_end.ends_with(raw));
            let _ = format!("{line:?}");
        }
        Err(e) => {
            assert_eq!(e.format, Format::Cri);
            assert!(
                e.column <= data.len(),
                "column {} past the end of a {}-byte line",
                e.column,
                data.len()
            );
            let mut rendered = Vec::new();
            write!(rendered, "{e}").expect("rendering into a Vec cannot fail");
            assert!(!rendered.is_empty());
        }
    }
});
