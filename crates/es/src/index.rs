//! Index names from the event time, and document ids.

use logtide_event::{Event, Timestamp};

/// One part of an index pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Year4,
    Year2,
    Month,
    Day,
    Hour,
}

/// An index name pattern such as `logtide-%{+yyyy.MM.dd}` or `logs-%Y.%m.%d`, formatted
/// with an event's UTC time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPattern {
    parts: Vec<Part>,
}

/// Characters Elasticsearch refuses in index names.
const BAD_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

impl IndexPattern {
    /// Parses a pattern; the error says what is wrong.
    pub fn parse(pattern: &str) -> Result<IndexPattern, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            if let Some(inner) = rest.strip_prefix("%{+") {
                let end = inner
                    .find('}')
                    .ok_or_else(|| format!("{pattern:?}: `%{{+` without a closing `}}`"))?;
                flush(&mut text, &mut parts);
                parse_joda(&inner[..end], pattern, &mut parts)?;
                rest = &inner[end + 1..];
            } else if c == '%' {
                let part = match rest[1..].chars().next() {
                    Some('Y') => Part::Year4,
                    Some('y') => Part::Year2,
                    Some('m') => Part::Month,
                    Some('d') => Part::Day,
                    Some('H') => Part::Hour,
                    Some('%') => {
                        text.push('%');
                        rest = &rest[2..];
                        continue;
                    }
                    other => {
                        return Err(format!(
                            "{pattern:?}: unknown conversion `%{}`; use %Y %y %m %d %H or %{{+yyyy.MM.dd}}",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                };
                flush(&mut text, &mut parts);
                parts.push(part);
                rest = &rest[2..];
            } else {
                if c.is_ascii_uppercase() || BAD_CHARS.contains(&c) {
                    return Err(format!(
                        "{pattern:?}: index names cannot contain {c:?} (lowercase only, none of \\ / * ? \" < > | , # : or space)"
                    ));
                }
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        flush(&mut text, &mut parts);
        match parts.first() {
            None => return Err("the index pattern is empty".into()),
            Some(Part::Text(t)) if t.starts_with(['-', '_', '+', '.']) => {
                return Err(format!(
                    "{pattern:?}: an index name cannot start with '-', '_', '+' or '.'"
                ))
            }
            _ => {}
        }
        Ok(IndexPattern { parts })
    }

    /// The index name for an event at `ts` (UTC).
    pub fn format(&self, ts: Timestamp) -> String {
        let mut rfc = Vec::with_capacity(32);
        ts.write_rfc3339(&mut rfc);
        // `YYYY-MM-DDTHH:…`; years beyond 9999 are not produced by Timestamp.
        let field = |from: usize, to: usize| std::str::from_utf8(&rfc[from..to]).unwrap_or("00");
        let mut out = String::with_capacity(40);
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Year4 => out.push_str(field(0, 4)),
                Part::Year2 => out.push_str(field(2, 4)),
                Part::Month => out.push_str(field(5, 7)),
                Part::Day => out.push_str(field(8, 10)),
                Part::Hour => out.push_str(field(11, 13)),
            }
        }
        out
    }

    /// The pattern an index template uses to match every name this pattern makes: the
    /// literal text up to the first date part, then `*`.
    pub fn wildcard(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                _ => {
                    out.push('*');
                    return out;
                }
            }
        }
        out
    }
}

fn flush(text: &mut String, parts: &mut Vec<Part>) {
    if !text.is_empty() {
        parts.push(Part::Text(std::mem::take(text)));
    }
}

fn parse_joda(spec: &str, pattern: &str, parts: &mut Vec<Part>) -> Result<(), String> {
    let mut rest = spec;
    let mut text = String::new();
    while !rest.is_empty() {
        let (part, len) = if rest.starts_with("yyyy") {
            (Part::Year4, 4)
        } else if rest.starts_with("yy") {
            (Part::Year2, 2)
        } else if rest.starts_with("MM") {
            (Part::Month, 2)
        } else if rest.starts_with("dd") {
            (Part::Day, 2)
        } else if rest.starts_with("HH") {
            (Part::Hour, 2)
        } else {
            let c = rest.chars().next().unwrap_or('.');
            if c.is_ascii_alphabetic() || BAD_CHARS.contains(&c) {
                return Err(format!(
                    "{pattern:?}: unsupported date letter {c:?}; use yyyy, yy, MM, dd, HH and separators"
                ));
            }
            text.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        flush(&mut text, parts);
        parts.push(part);
        rest = &rest[len..];
    }
    flush(&mut text, parts);
    Ok(())
}

/// The document `_id` of an event, the same every time the event is delivered:
///
/// 1. `@metadata._id` when it is a non-empty string (`decode_json_fields`'
///    `document_id`);
/// 2. else, for an event that knows its source, a hash of the source identity and the
///    entry's start offset;
/// 3. else a hash of the event's JSON (time, fields and metadata), which is what a
///    redelivery repeats byte for byte.
///
/// Hashes are 128-bit xxh3, written as 32 hex digits.
pub fn document_id(event: &Event, scratch: &mut Vec<u8>) -> String {
    if let Some(id) = event
        .metadata()
        .get("_id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        return id.to_owned();
    }
    let hash = event.identity_hash(scratch);
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::Source;
    use serde_json::json;
    use std::sync::Arc;

    fn ts() -> Timestamp {
        Timestamp::parse_rfc3339(b"2024-05-01T07:08:09.5Z").unwrap()
    }

    #[test]
    fn patterns_format_the_event_time() {
        for (pattern, want, wildcard) in [
            ("logtide-%{+yyyy.MM.dd}", "logtide-2024.05.01", "logtide-*"),
            ("logs-%Y.%m.%d", "logs-2024.05.01", "logs-*"),
            ("logs-%{+yy.MM.dd.HH}", "logs-24.05.01.07", "logs-*"),
            ("fixed", "fixed", "fixed"),
            ("a%%b-%H", "a%b-07", "a%b-*"),
        ] {
            let p = IndexPattern::parse(pattern).unwrap();
            assert_eq!(p.format(ts()), want, "{pattern}");
            assert_eq!(p.wildcard(), wildcard, "{pattern}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, want) in [
            ("Logs-%Y", "cannot contain 'L'"),
            ("logs-%{+yyyy.MM.dd", "without a closing"),
            ("logs-%{+yyyy.MMM}", "unsupported date letter 'M'"),
            ("logs-%q", "unknown conversion `%q`"),
            ("_logs", "cannot start with"),
            ("", "empty"),
            ("a b", "cannot contain ' '"),
        ] {
            let err = IndexPattern::parse(pattern).unwrap_err();
            assert!(err.contains(want), "{pattern:?}: {err}");
        }
    }

    #[test]
    fn ids_are_stable_and_prefer_metadata() {
        let mut scratch = Vec::new();
        let mut e = Event::from_json(json!({"@timestamp": "2024-05-01T07:08:09Z", "message": "x"}))
            .unwrap();
        let by_content = document_id(&e, &mut scratch);
        assert_eq!(by_content.len(), 32);
        assert_eq!(by_content, document_id(&e.clone_unacked(), &mut scratch));
        let mut other = e.clone_unacked();
        other.insert("message", json!("y")).unwrap();
        assert_ne!(by_content, document_id(&other, &mut scratch));

        e.set_source(Source {
            id: Arc::from("dev-1-ino-2"),
            start: 100,
            end: 120,
        });
        let by_source = document_id(&e, &mut scratch);
        e.insert("message", json!("changed")).unwrap();
        assert_eq!(by_source, document_id(&e, &mut scratch));
        assert_ne!(by_source, by_content);

        e.metadata_mut().insert("_id".into(), json!("order-17"));
        assert_eq!(document_id(&e, &mut scratch), "order-17");
    }
}
