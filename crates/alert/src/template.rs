//! Alert text templates: `{field.path}` and elastalert's positional `{0}` placeholders.

use logtide_event::Event;
use serde_json::Value;

/// What a placeholder whose field is missing becomes (as in elastalert).
pub(crate) const MISSING: &str = "<MISSING VALUE>";

/// A parsed template.
///
/// `{name}` is replaced by, in order: the alert's own values (`rule`, `num_matches`,
/// `query_key`, `timestamp`), then the event field `name` (dotted paths such as
/// `kubernetes.pod.name`). `{0}`, `{1}`, … are the fields listed in `alert_text_args`
/// (elastalert's form). `{{` and `}}` are literal braces. A missing field is
/// `<MISSING VALUE>`; a string field is inserted as is, other values as JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Field(String),
}

/// The values of an alert that templates can name besides event fields.
pub(crate) struct AlertValues<'a> {
    pub(crate) rule: &'a str,
    pub(crate) num_matches: u64,
    pub(crate) query_key: Option<&'a str>,
    pub(crate) timestamp: String,
}

impl Template {
    /// Parses `text`; `args` are the `alert_text_args` fields that `{0}`, `{1}`, … name.
    pub(crate) fn parse(text: &str, args: &[String]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, c)| *c == '{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, c)| *c == '}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed '{{' at byte {i}"));
                    };
                    let name = rest[..end].trim();
                    // Format specs (`{0:>5}`) are not interpreted; the name is before ':'.
                    let name = name.split_once(':').map_or(name, |(n, _)| n).trim();
                    if name.is_empty() {
                        return Err(format!("empty placeholder at byte {i}"));
                    }
                    let field = match name.parse::<usize>() {
                        Ok(n) => args.get(n).cloned().ok_or_else(|| {
                            format!(
                                "{{{n}}} needs alert_text_args with at least {} fields",
                                n + 1
                            )
                        })?,
                        Err(_) => name.to_owned(),
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(field));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => return Err(format!("unmatched '}}' at byte {i} (write '}}}}')")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// The text for an alert whose (first) event is `event`.
    pub(crate) fn render(&self, values: &AlertValues<'_>, event: Option<&Event>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(name) => match name.as_str() {
                    "rule" | "name" => out.push_str(values.rule),
                    "num_matches" => out.push_str(&values.num_matches.to_string()),
                    "query_key" => out.push_str(values.query_key.unwrap_or(MISSING)),
                    "timestamp" | "@timestamp" => out.push_str(&values.timestamp),
                    field => match event.and_then(|e| e.get(field)) {
                        Some(Value::String(s)) => out.push_str(s),
                        Some(v) => out.push_str(&v.to_string()),
                        None => out.push_str(MISSING),
                    },
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders() {
        let e = Event::from_json(json!({"kubernetes": {"pod": {"name": "web-0"}}, "code": 503}))
            .unwrap();
        let v = AlertValues {
            rule: "errors",
            num_matches: 3,
            query_key: Some("web-0"),
            timestamp: "2026-01-01T00:00:00Z".into(),
        };
        let t = Template::parse(
            "{rule}: {num_matches} on {kubernetes.pod.name} ({0}) {{x}} {nope}",
            &["code".into()],
        )
        .unwrap();
        assert_eq!(
            t.render(&v, Some(&e)),
            "errors: 3 on web-0 (503) {x} <MISSING VALUE>"
        );
        assert_eq!(
            Template::parse("{1}", &["a".into()]).unwrap_err(),
            "{1} needs alert_text_args with at least 2 fields"
        );
        assert!(Template::parse("{open", &[]).is_err());
        assert!(Template::parse("close}", &[]).is_err());
    }
}
