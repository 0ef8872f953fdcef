//! Field name patterns: Elasticsearch's `simple_match` wildcards, and regular expressions
//! for dynamic templates with `match_pattern: regex`.

use regex::Regex;

use crate::{Error, Result};

/// A pattern over field names or dotted paths.
///
/// The wildcard form is the one Elasticsearch uses for `match` and `path_match`: `*`
/// matches any run of characters, dots included, and every other character matches
/// itself. Configuration rules use the same language, so that a rule's pattern can be
/// copied into a generated dynamic template unchanged and both select the same fields.
#[derive(Clone, Debug)]
pub(crate) enum Pattern {
    /// Literal parts separated by `*`; `parts.len() == stars + 1`.
    Wildcard { source: String, parts: Vec<String> },
    /// A regular expression that must match the whole name.
    Regex { source: String, regex: Regex },
}

impl Pattern {
    /// A wildcard pattern (`*` only).
    pub(crate) fn wildcard(source: &str) -> Pattern {
        Pattern::Wildcard {
            source: source.to_owned(),
            parts: source.split('*').map(str::to_owned).collect(),
        }
    }

    /// A regular expression matched against the whole name (as Java's `Pattern.matches`).
    pub(crate) fn regex(source: &str, at: &str) -> Result<Pattern> {
        let regex = Regex::new(&format!("^(?:{source})$"))
            .map_err(|e| Error::mapping(at, format!("bad regular expression {source:?}: {e}")))?;
        Ok(Pattern::Regex {
            source: source.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Pattern::Wildcard { source, .. } | Pattern::Regex { source, .. } => source,
        }
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Regex { regex, .. } => regex.is_match(name),
            Pattern::Wildcard { parts, .. } => wildcard_match(parts, name),
        }
    }
}

fn wildcard_match(parts: &[String], name: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return name.is_empty();
    };
    let Some(mut remaining) = name.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        // No star at all: the whole name must be the literal.
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part.as_str()) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_simple_match() {
        let cases = [
            ("message-json.*", "message-json.id", true),
            ("message-json.*", "message-json.a.b", true),
            ("message-json.*", "message-json", false),
            ("message-json.*", "message-jsonx.a", false),
            ("*", "", true),
            ("*", "anything.at.all", true),
            ("*_str", "id_str", true),
            ("*_str", "_str", true),
            ("*_str", "id_st", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a.x.b.y.c", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
            ("", "x", false),
            ("**", "x", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Pattern::wildcard(pattern).matches(name),
                want,
                "{pattern} ~ {name}"
            );
        }
    }

    #[test]
    fn regexes_match_the_whole_name() {
        let p = Pattern::regex(r"profit_\d+", "t").expect("valid regex");
        assert!(p.matches("profit_12"));
        assert!(!p.matches("xprofit_12"));
        assert!(!p.matches("profit_12x"));
        let err = Pattern::regex("(", "dynamic_templates[0].t.match").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("mapping JSON at dynamic_templates[0].t.match: bad regular expression"));
    }
}
