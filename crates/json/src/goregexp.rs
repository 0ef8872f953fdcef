//! What Go's regexp parser (RE2 syntax, Perl flags) refuses and Rust's `regex` accepts.
//!
//! Filebeat compiles `regexp` conditions and `drop_fields` `/patterns/` with Go's
//! `regexp`; a configuration with a pattern Go refuses does not load. Rust's `regex`
//! accepts a few of them, so they are checked here first, with Go's message and the byte
//! position: stacked repetition operators (`a**`, `w++`, `a{2}*`) and repeat counts
//! above 1000 (`a{1001}`, or nested repeats whose product exceeds 1000).

/// A pattern Go's `regexp` refuses: Go's message, the offending text and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoRegexpError {
    /// Go's error code text, e.g. `invalid nested repetition operator`.
    pub(crate) reason: &'static str,
    /// The text Go quotes, e.g. `++`.
    pub(crate) text: String,
    /// Byte offset of `text` in the pattern.
    pub(crate) position: usize,
}

/// [`check`] as this crate's error, naming `path`.
pub(crate) fn validate(pattern: &str, path: &str) -> crate::Result<()> {
    check(pattern).map_err(|e| crate::Error::InvalidGoRegex {
        path: path.to_owned(),
        pattern: pattern.to_owned(),
        reason: e.reason,
        text: e.text,
        position: e.position,
    })
}

/// Checks every pattern of the `regexp` conditions in a (flattened) `when:` condition.
pub(crate) fn validate_condition(condition: &serde_json::Value, path: &str) -> crate::Result<()> {
    use serde_json::Value;
    let Value::Object(map) = condition else {
        return Ok(());
    };
    for (key, v) in map {
        let at = format!("{path}.{key}");
        match (key.as_str(), v) {
            ("regexp", Value::Object(fields)) => {
                for (field, pattern) in fields {
                    if let Value::String(pattern) = pattern {
                        validate(pattern, &format!("{at}.{field}"))?;
                    }
                }
            }
            ("and" | "or", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    validate_condition(item, &format!("{at}[{i}]"))?;
                }
            }
            ("not", v) => validate_condition(v, &at)?,
            _ => {}
        }
    }
    Ok(())
}

/// Checks `pattern` for what Go refuses and Rust accepts; other syntax errors are left to
/// the Rust compiler, which refuses them too.
pub(crate) fn check(pattern: &str) -> Result<(), GoRegexpError> {
    let b = pattern.as_bytes();
    let mut i = 0;
    // Where the repetition operator that ends the previous atom starts, if the previous
    // token was one.
    let mut last_repeat: Option<usize> = None;
    // Per open group, the largest repeat-count product inside it, so that `(a{30}){40}`
    // counts 1200 copies of `a` (Go allows at most 1000).
    let mut stack: Vec<u64> = vec![1];
    let mut group_max: Vec<u64> = vec![1];
    let mut last_atom_weight: u64 = 1;
    while i < b.len() {
        let c = b[i];
        if let Some((len, max)) = repeat_op(b, i) {
            // A non-greedy `?` belongs to the operator.
            let mut end = i + len;
            if end < b.len() && b[end] == b'?' {
                end += 1;
            }
            if let Some(start) = last_repeat {
                return Err(GoRegexpError {
                    reason: "invalid nested repetition operator",
                    text: pattern[start..end].to_owned(),
                    position: start,
                });
            }
            let product = match max {
                Some(max) => {
                    let product = last_atom_weight.saturating_mul(max);
                    if max > 1000 || product > 1000 {
                        return Err(GoRegexpError {
                            reason: "invalid repeat count",
                            text: pattern[i..i + len].to_owned(),
                            position: i,
                        });
                    }
                    product
                }
                // `*`, `+` and `?` are no counted repeats but keep the counts inside.
                None => last_atom_weight,
            };
            if let Some(top) = group_max.last_mut() {
                *top = (*top).max(product);
            }
            last_repeat = Some(i);
            i = end;
            continue;
        }
        last_repeat = None;
        match c {
            b'\\' => {
                i = skip_escape(b, i);
                last_atom_weight = 1;
            }
            b'[' => {
                i = skip_class(b, i);
                last_atom_weight = 1;
            }
            b'(' => {
                stack.push(1);
                group_max.push(1);
                i += 1;
                if i < b.len() && b[i] == b'?' {
                    // Flags or a name: up to `)` or `:` / `>` (not a repetition).
                    while i < b.len() && !matches!(b[i], b')' | b':' | b'>') {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b')' {
                        // A flag group `(?i)` is no group.
                        stack.pop();
                        group_max.pop();
                    }
                    i += 1;
                }
                last_atom_weight = 1;
            }
            b')' => {
                stack.pop();
                last_atom_weight = group_max.pop().unwrap_or(1);
                if stack.is_empty() {
                    stack.push(1);
                    group_max.push(1);
                }
                i += 1;
            }
            _ => {
                i += pattern[i..].chars().next().map_or(1, char::len_utf8);
                last_atom_weight = 1;
            }
        }
    }
    Ok(())
}

/// A repetition operator at `i`: its length and, for `{n,m}`, the largest count. A `{`
/// that is not a well-formed repeat is a literal, as in Go.
fn repeat_op(b: &[u8], i: usize) -> Option<(usize, Option<u64>)> {
    match b[i] {
        b'*' | b'+' | b'?' => Some((1, None)),
        b'{' => {
            let close = b[i..].iter().position(|&c| c == b'}')? + i;
            let inner = std::str::from_utf8(&b[i + 1..close]).ok()?;
            let (lo, hi) = match inner.split_once(',') {
                Some((lo, hi)) => (lo, Some(hi)),
                None => (inner, None),
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            if !digits(lo) || hi.is_some_and(|h| !h.is_empty() && !digits(h)) {
                return None;
            }
            let lo: u64 = lo.parse().unwrap_or(u64::MAX);
            let max = match hi {
                None => lo,
                Some("") => lo,
                Some(h) => h.parse().unwrap_or(u64::MAX),
            };
            Some((close + 1 - i, Some(max.max(lo))))
        }
        _ => None,
    }
}

/// Skips an escape at `i` (`\x`, `\x{...}`, `\p{...}`, `\Q...\E`).
fn skip_escape(b: &[u8], i: usize) -> usize {
    let Some(&next) = b.get(i + 1) else {
        return b.len();
    };
    match next {
        b'Q' => {
            let rest = &b[i + 2..];
            match rest.windows(2).position(|w| w == b"\\E") {
                Some(p) => i + 2 + p + 2,
                None => b.len(),
            }
        }
        b'x' | b'p' | b'P' if b.get(i + 2) == Some(&b'{') => b[i..]
            .iter()
            .position(|&c| c == b'}')
            .map_or(b.len(), |p| i + p + 1),
        b'p' | b'P' | b'x' => (i + 3).min(b.len()),
        _ => {
            i + 1
                + std::str::from_utf8(&b[i + 1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8)
        }
    }
}

/// Skips a character class starting at `i`.
fn skip_class(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if b.get(j) == Some(&b'^') {
        j += 1;
    }
    if b.get(j) == Some(&b']') {
        j += 1;
    }
    while j < b.len() {
        match b[j] {
            b'\\' => j = skip_escape(b, j),
            b'[' if b.get(j + 1) == Some(&b':') => {
                j = b[j + 2..]
                    .windows(2)
                    .position(|w| w == b":]")
                    .map_or(j + 1, |p| j + 2 + p + 2);
            }
            b']' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_go_refuses_with_text_and_position() {
        let cases = [
            ("w++", "invalid nested repetition operator", "++", 1),
            ("a**", "invalid nested repetition operator", "**", 1),
            ("ab*?+", "invalid nested repetition operator", "*?+", 2),
            ("(x){2}*", "invalid nested repetition operator", "{2}*", 3),
            ("x{2}{3}", "invalid nested repetition operator", "{2}{3}", 1),
            ("a{1001}", "invalid repeat count", "{1001}", 1),
            ("(a{30}){40}", "invalid repeat count", "{40}", 7),
            ("((a{30})*){40}", "invalid repeat count", "{40}", 10),
        ];
        for (pattern, reason, text, position) in cases {
            let want = GoRegexpError {
                reason,
                text: text.to_owned(),
                position,
            };
            assert_eq!(check(pattern), Err(want), "{pattern}");
        }
    }

    #[test]
    fn accepts_what_go_accepts() {
        for pattern in [
            "apache2/error.*",
            "a*?b+?c??",
            "(?i)x*",
            "(?:ab)+",
            "(?P<n>a)*",
            r"\Q**\E+",
            r"[*+]+",
            r"[]*]+",
            r"[[:alpha:]]*",
            r"\*+",
            "a{2,5}b{3,}",
            "a{,5}",
            "x{1000}",
            r"\x{41}+",
            "é+",
            "^field_1\\.(.*)\\.subfield_2_1$",
        ] {
            assert_eq!(check(pattern), Ok(()), "{pattern}");
        }
    }
}
