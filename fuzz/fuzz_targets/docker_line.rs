//! Parses arbitrary bytes as a docker json-file line, checks what a successful parse may
//! return, and compares accepted lines with what serde_json makes of them.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use logtide_container_log::{parse_line, Format, Line};
use serde::Deserialize;
use serde_json::Value;

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

/// The value of four hex digits.
fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let digits = digits?;
    if digits.len() != 4 {
        return None;
    }
    digits.iter().try_fold(0, |acc, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(acc * 16 + d)
    })
}

/// Whether `text` holds a `\u` escape of a UTF-16 surrogate that is not part of a
/// high-low pair. Every backslash is taken as the start of an escape, which is right for
/// input the docker parser accepted (backslashes occur only inside strings there).
fn has_lone_surrogate_escape(text: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = text
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        i += off;
        if text.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex4(text.get(i + 2..i + 6)) else {
            i += 2;
            continue;
        };
        i += 6;
        match unit {
            0xD800..=0xDBFF => {
                let low = if text.get(i..i + 2) == Some(b"\\u") {
                    hex4(text.get(i + 2..i + 6))
                } else {
                    None
                };
                match low {
                    Some(0xDC00..=0xDFFF) => i += 6,
                    _ => return true,
                }
            }
            0xDC00..=0xDFFF => return true,
            _ => {}
        }
    }
    false
}

/// Parses one complete JSON document with serde_json, without its nesting limit.
fn serde_parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Checks that serde_json reads an accepted line the same way.
fn cross_check(data: &[u8], line: &Line<'_>) {
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    // Leniencies of the parser under test: message bytes that are not UTF-8 are passed
    // through, and a lone surrogate escape decodes to U+FFFD; serde_json rejects both.
    if std::str::from_utf8(text).is_err() || has_lone_surrogate_escape(text) {
        return;
    }
    let value = match serde_parse(text) {
        Ok(value) => value,
        // serde_json turns every number into an f64 or integer and rejects those that
        // overflow an f64; JSON itself has no such limit.
        Err(e) if e.to_string().starts_with("number out of range") => return,
        Err(e) => panic!("parser accepted a line that serde_json rejects: {e}"),
    };
    let Value::Object(object) = &value else {
        panic!("parser accepted a line that is not a JSON object: {value}");
    };

    let Some(Value::String(log)) = object.get("log") else {
        panic!("parser accepted a line without a string \"log\": {value}");
    };
    let mut message = line.message.to_bytes().into_owned();
    if !line.partial {
        message.push(b'\n');
    }
    assert_eq!(
        message,
        log.as_bytes(),
        "decoded message differs from serde_json's \"log\""
    );
    assert_eq!(line.partial, !log.ends_with('\n'));

    assert_eq!(
        object.get("stream").and_then(Value::as_str),
        Some(line.stream.as_str())
    );
    assert!(matches!(object.get("time"), Some(Value::String(_))));

    match (line.attrs, object.get("attrs")) {
        (Some(raw), Some(attrs)) => {
            let parsed = serde_parse(raw).expect("attrs must be one JSON value");
            assert_eq!(&parsed, attrs, "attrs differ from serde_json's");
        }
        (None, None | Some(Value::Null)) => {}
        (ours, theirs) => panic!("attrs {ours:?} but serde_json finds {theirs:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let line = match parse_line(data, Format::Docker) {
        Ok(line) => line,
        Err(e) => {
            assert_eq!(e.format, Format::Docker);
            assert!(
                e.column <= data.len(),
                "column {} past the end of a {}-byte line",
                e.column,
                data.len()
            );
            let mut rendered = Vec::new();
            write!(rendered, "{e}").expect("rendering into a Vec cannot fail");
            assert!(!rendered.is_empty());
            return;
        }
    };
    assert_eq!(line.format, Format::Docker);

    let raw = line.message.raw();
    assert!(is_subslice(data, raw), "message must borrow from the input");
    let decoded = line.message.to_bytes();
    assert!(
        decoded.len() <= raw.len(),
        "decoding grew the message from {} to {} bytes",
        raw.len(),
        decoded.len()
    );
    let mut written = Vec::new();
    line.message.write_to(&mut written);
    assert_eq!(written, &decoded[..]);
    if let Some(plain) = line.message.as_plain() {
        assert!(
            !plain.contains(&b'\\'),
            "an unescaped message has no escapes"
        );
        assert_eq!(plain, &decoded[..]);
    }

    if let Some(attrs) = line.attrs {
        assert!(is_subslice(data, attrs), "attrs must borrow from the input");
        assert!(!attrs.is_empty());
        assert_ne!(attrs, b"null");
    }
    let _ = format!("{line:?}");

    cross_check(data, &line);
});
