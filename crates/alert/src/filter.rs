//! elastalert `filter` lists (Elasticsearch query DSL) translated into conditions.
//!
//! The translation produces the JSON form of a [`Condition`](logtide_event::Condition)
//! (`equals`, `regexp`, `range`, `has_fields`, `and`, `or`, `not`), which the rule then
//! builds like any `when:`. Text queries follow Elasticsearch's standard analyzer
//! loosely: the query text is cut into words at anything not a letter or digit, and a
//! word matches a field holding it as a whole word, ignoring case.

use serde_json::{json, Map, Value};

use crate::Error;

/// Where a filter is, for errors.
pub(crate) struct At<'a> {
    pub(crate) origin: &'a str,
    pub(crate) rule: &'a str,
}

impl At<'_> {
    fn unsupported(&self, path: &str, clause: &str) -> Error {
        Error::UnsupportedFilter {
            origin: self.origin.to_owned(),
            rule: self.rule.to_owned(),
            path: path.to_owned(),
            clause: clause.to_owned(),
        }
    }

    fn invalid(&self, path: &str, reason: impl Into<String>) -> Error {
        Error::InvalidFilter {
            origin: self.origin.to_owned(),
            rule: self.rule.to_owned(),
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Translates an elastalert `filter:` (a list of clauses, all of which must match).
pub(crate) fn translate_list(filter: &Value, at: &At<'_>) -> Result<Vec<Value>, Error> {
    let items = match filter {
        Value::Array(items) => items.as_slice(),
        Value::Null => &[],
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, c)| clause(c, &format!("filter[{i}]"), at))
        .collect()
}

/// One clause object (`{term: …}`, `{query: {…}}`, `{bool: …}`, …).
fn clause(value: &Value, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let (name, body) = single(value, path, at)?;
    let here = format!("{path}.{name}");
    match name {
        "query" => clause(body, &here, at),
        "term" => field_values(body, &here, at, |field, v, p| term(field, v, p, at)),
        "terms" => field_values(body, &here, at, |field, v, p| {
            let Value::Array(values) = v else {
                return Err(at.invalid(p, "terms needs a list of values"));
            };
            if values.is_empty() {
                return Err(at.invalid(p, "terms needs at least one value"));
            }
            let list = values
                .iter()
                .map(|v| term(field, v, p, at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "or": list }))
        }),
        "match" | "match_phrase" => field_values(body, &here, at, |field, v, p| {
            let (query, operator) = match v {
                Value::Object(o) => {
                    for key in o.keys() {
                        if !matches!(key.as_str(), "query" | "operator") {
                            return Err(at.invalid(p, format!("option \"{key}\" is not supported")));
                        }
                    }
                    let q = o
                        .get("query")
                        .ok_or_else(|| at.invalid(p, "missing \"query\""))?;
                    let op = o.get("operator").and_then(Value::as_str).unwrap_or("or");
                    (q, op.to_ascii_lowercase())
                }
                v => (v, "or".to_owned()),
            };
            match query {
                Value::String(text) if name == "match_phrase" => phrase(field, text, p, at),
                Value::String(text) => words(field, text, operator == "and", p, at),
                other => term(field, other, p, at),
            }
        }),
        "range" => field_values(body, &here, at, |field, v, p| range(field, v, p, at)),
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| at.invalid(&here, "exists needs {field: name}"))?;
            Ok(json!({ "has_fields": [field] }))
        }
        "bool" => boolean(body, &here, at),
        "query_string" => {
            let (query, default_field, default_and) = match body {
                Value::String(q) => (q.as_str(), None, false),
                Value::Object(o) => {
                    for key in o.keys() {
                        if !matches!(
                            key.as_str(),
                            "query" | "default_field" | "default_operator" | "analyze_wildcard"
                        ) {
                            return Err(
                                at.invalid(&here, format!("option \"{key}\" is not supported"))
                            );
                        }
                    }
                    let q = o
                        .get("query")
                        .and_then(Value::as_str)
                        .ok_or_else(|| at.invalid(&here, "missing \"query\" string"))?;
                    let and = o
                        .get("default_operator")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case("and"));
                    (q, o.get("default_field").and_then(Value::as_str), and)
                }
                _ => return Err(at.invalid(&here, "expected {query: \"…\"}")),
            };
            QueryString::parse(query, default_field, default_and, &here, at)
        }
        other => Err(at.unsupported(&here, other)),
    }
}

/// The one `name: body` pair of a clause object.
fn single<'v>(value: &'v Value, path: &str, at: &At<'_>) -> Result<(&'v str, &'v Value), Error> {
    let Value::Object(map) = value else {
        return Err(at.invalid(path, "expected a query clause object"));
    };
    let mut it = map.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(at.invalid(
            path,
            format!(
                "a clause object has exactly one key, found {}",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// `{field: value, …}` bodies (`term`, `range`, …): each pair translated, all required.
fn field_values(
    body: &Value,
    path: &str,
    at: &At<'_>,
    f: impl Fn(&str, &Value, &str) -> Result<Value, Error>,
) -> Result<Value, Error> {
    let Value::Object(map) = body else {
        return Err(at.invalid(path, "expected {field: value}"));
    };
    if map.is_empty() {
        return Err(at.invalid(path, "expected at least one field"));
    }
    let list = map
        .iter()
        .map(|(field, v)| f(field, v, &format!("{path}.{field}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(and(list))
}

fn and(mut list: Vec<Value>) -> Value {
    if list.len() == 1 {
        list.pop().unwrap_or(Value::Null)
    } else {
        json!({ "and": list })
    }
}

fn or(mut list: Vec<Value>) -> Value {
    if list.len() == 1 {
        list.pop().unwrap_or(Value::Null)
    } else {
        json!({ "or": list })
    }
}

/// An exact value (`term`): strings, integers and booleans compare equal; other numbers
/// as a one-point range.
fn term(field: &str, value: &Value, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let value = match value {
        Value::Object(o) if o.contains_key("value") => &o["value"],
        v => v,
    };
    let mut one = Map::new();
    match value {
        Value::String(_) | Value::Bool(_) => {
            one.insert(field.to_owned(), value.clone());
            Ok(json!({ "equals": one }))
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            one.insert(field.to_owned(), value.clone());
            Ok(json!({ "equals": one }))
        }
        Value::Number(n) => {
            one.insert(format!("{field}.gte"), json!(n));
            one.insert(format!("{field}.lte"), json!(n));
            Ok(json!({ "range": one }))
        }
        other => Err(at.invalid(
            path,
            format!(
                "cannot compare with a JSON {}",
                logtide_event::path::json_type(other)
            ),
        )),
    }
}

/// The words of a text query: runs of letters and digits.
fn tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

fn regexp(field: &str, re: String) -> Value {
    let mut one = Map::new();
    one.insert(field.to_owned(), Value::String(re));
    json!({ "regexp": one })
}

/// `match`: any (or, with `operator: and`, every) word of `text` in the field.
fn words(field: &str, text: &str, all: bool, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let words = tokens(text);
    if words.is_empty() {
        return Err(at.invalid(path, format!("no words to match in {text:?}")));
    }
    let list = words
        .iter()
        .map(|w| regexp(field, format!(r"(?i)\b{}\b", regex::escape(w))))
        .collect();
    Ok(if all { and(list) } else { or(list) })
}

/// `match_phrase`: the words of `text`, in order, separated only by non-word characters.
fn phrase(field: &str, text: &str, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let words = tokens(text);
    if words.is_empty() {
        return Err(at.invalid(path, format!("no words to match in {text:?}")));
    }
    let body: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
    Ok(regexp(
        field,
        format!(r"(?i)\b{}\b", body.join(r"[^\p{L}\p{N}]+")),
    ))
}

/// `range: {field: {gte: 1, lt: 5}}`, numbers only.
fn range(field: &str, body: &Value, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let Value::Object(ops) = body else {
        return Err(at.invalid(path, "expected {gte|gt|lte|lt: number}"));
    };
    let mut bounds = Map::new();
    for (op, v) in ops {
        let op_path = format!("{path}.{op}");
        let op = match op.as_str() {
            "gt" | "gte" | "lt" | "lte" => op.as_str(),
            "from" => "gte",
            "to" => "lte",
            "format" | "time_zone" | "boost" => {
                return Err(at.invalid(
                    &op_path,
                    "date ranges are not supported: use a condition on the event time",
                ))
            }
            other => return Err(at.invalid(&op_path, format!("unknown range option \"{other}\""))),
        };
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Err(at.invalid(
                &op_path,
                format!(
                    "only numeric bounds are supported, not {v} (date math such as now-1h is not)"
                ),
            ));
        };
        bounds.insert(format!("{field}.{op}"), json!(n));
    }
    if bounds.is_empty() {
        return Err(at.invalid(path, "expected at least one bound"));
    }
    Ok(json!({ "range": bounds }))
}

/// `bool`: `must` and `filter` all, `must_not` none, `should` at least one.
fn boolean(body: &Value, path: &str, at: &At<'_>) -> Result<Value, Error> {
    let Value::Object(map) = body else {
        return Err(at.invalid(
            path,
            "expected {must: …, should: …, must_not: …, filter: …}",
        ));
    };
    let mut all = Vec::new();
    let mut should = Vec::new();
    let mut min_should = 1;
    for (key, v) in map {
        let here = format!("{path}.{key}");
        let list = || -> Result<Vec<Value>, Error> {
            let items = match v {
                Value::Array(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            items
                .iter()
                .enumerate()
                .map(|(i, c)| clause(c, &format!("{here}[{i}]"), at))
                .collect()
        };
        match key.as_str() {
            "must" | "filter" => all.extend(list()?),
            "must_not" => {
                for c in list()? {
                    all.push(json!({ "not": c }));
                }
            }
            "should" => should = list()?,
            "minimum_should_match" => {
                min_should = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .filter(|n| *n <= 1)
                .ok_or_else(|| at.invalid(&here, "only 0 or 1 is supported"))?;
            }
            "boost" => {}
            other => return Err(at.unsupported(&here, other)),
        }
    }
    if !should.is_empty() && min_should == 1 {
        all.push(or(should));
    }
    if all.is_empty() {
        return Err(at.invalid(path, "an empty bool query matches everything; remove it"));
    }
    Ok(and(all))
}

/// A simple Lucene query string: `field:value` terms joined by `AND`, `OR`, `NOT` (and
/// `&&`, `||`, `!`), parentheses, quoted phrases, `field:*`, wildcards `*`/`?`, and
/// ranges `field:[a TO b]`, `field:>=n`.
struct QueryString<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    default_field: Option<&'a str>,
    default_and: bool,
    path: &'a str,
    at: &'a At<'a>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    And,
    Or,
    Not,
    Open,
    Close,
    Term {
        field: Option<String>,
        value: String,
        quoted: bool,
    },
}

impl<'a> QueryString<'a> {
    fn parse(
        query: &str,
        default_field: Option<&'a str>,
        default_and: bool,
        path: &'a str,
        at: &'a At<'a>,
    ) -> Result<Value, Error> {
        let tokens = lex(query).map_err(|e| at.invalid(path, format!("query {query:?}: {e}")))?;
        if tokens.is_empty() {
            return Err(at.invalid(path, "empty query"));
        }
        let mut p = QueryString {
            tokens,
            pos: 0,
            default_field,
            default_and,
            path,
            at,
        };
        let out = p.or_expr()?;
        if p.pos != p.tokens.len() {
            return Err(at.invalid(
                path,
                format!("query {query:?}: unexpected {:?}", p.tokens[p.pos]),
            ));
        }
        Ok(out)
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn or_expr(&mut self) -> Result<Value, Error> {
        let mut list = vec![self.and_expr()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            list.push(self.and_expr()?);
        }
        Ok(or(list))
    }

    fn and_expr(&mut self) -> Result<Value, Error> {
        let mut list = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    list.push(self.unary()?);
                }
                Some(Tok::Not | Tok::Open | Tok::Term { .. }) => {
                    // Juxtaposition: Lucene's default operator.
                    let next = self.unary()?;
                    if self.default_and || next.get("not").is_some() {
                        list.push(next);
                    } else {
                        let left = and(std::mem::take(&mut list));
                        list.push(or(vec![left, next]));
                    }
                }
                _ => return Ok(and(list)),
            }
        }
    }

    fn unary(&mut self) -> Result<Value, Error> {
        match self.tokens.get(self.pos).cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(json!({ "not": self.unary()? }))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let inner = self.or_expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(self.at.invalid(self.path, "unbalanced parentheses"));
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::Term {
                field,
                value,
                quoted,
            }) => {
                self.pos += 1;
                let Some(field) = field.as_deref().or(self.default_field) else {
                    return Err(self.at.invalid(
                        self.path,
                        format!(
                            "{value:?} has no field: write field:{value} (or set default_field)"
                        ),
                    ));
                };
                self.term(field, &value, quoted)
            }
            Some(t) => Err(self.at.invalid(self.path, format!("unexpected {t:?}"))),
            None => Err(self.at.invalid(self.path, "the query ends too early")),
        }
    }

    fn term(&self, field: &str, value: &str, quoted: bool) -> Result<Value, Error> {
        let (path, at) = (self.path, self.at);
        if quoted {
            return phrase(field, value, path, at);
        }
        if value == "*" {
            return Ok(json!({ "has_fields": [field] }));
        }
        if let Some(range) = lucene_range(field, value) {
            return range.map_err(|e| at.invalid(path, e));
        }
        if value.contains(['*', '?']) {
            let mut re = String::from("(?i)^");
            for c in value.chars() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            return Ok(regexp(field, re));
        }
        let text = words(field, value, true, path, at)?;
        if let Ok(n) = value.parse::<i64>() {
            let mut one = Map::new();
            one.insert(field.to_owned(), json!(n));
            return Ok(json!({ "or": [{ "equals": one }, text] }));
        }
        if value == "true" || value == "false" {
            let mut one = Map::new();
            one.insert(field.to_owned(), json!(value == "true"));
            return Ok(json!({ "or": [{ "equals": one }, text] }));
        }
        Ok(text)
    }
}

/// `[a TO b]`, `{a TO b}`, `>=n`, `>n`, `<=n`, `<n`.
fn lucene_range(field: &str, value: &str) -> Option<Result<Value, String>> {
    let num = |s: &str| -> Result<Option<f64>, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(None);
        }
        s.parse::<f64>()
            .map(Some)
            .map_err(|_| format!("range bound {s:?} is not a number"))
    };
    let mut bounds = Map::new();
    let mut put = |op: &str, n: Option<f64>| {
        if let Some(n) = n {
            bounds.insert(format!("{field}.{op}"), json!(n));
        }
    };
    if let Some(rest) = value.strip_prefix(">=") {
        put("gte", num(rest).ok()?);
    } else if let Some(rest) = value.strip_prefix("<=") {
        put("lte", num(rest).ok()?);
    } else if let Some(rest) = value.strip_prefix('>') {
        put("gt", num(rest).ok()?);
    } else if let Some(rest) = value.strip_prefix('<') {
        put("lt", num(rest).ok()?);
    } else if (value.starts_with('[') || value.starts_with('{'))
        && (value.ends_with(']') || value.ends_with('}'))
    {
        let inner = &value[1..value.len() - 1];
        let Some((lo, hi)) = inner.split_once(" TO ") else {
            return Some(Err(format!("range {value:?} needs \"a TO b\"")));
        };
        let (lo, hi) = match (num(lo), num(hi)) {
            (Ok(lo), Ok(hi)) => (lo, hi),
            (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
        };
        put(if value.starts_with('[') { "gte" } else { "gt" }, lo);
        put(if value.ends_with(']') { "lte" } else { "lt" }, hi);
    } else {
        return None;
    }
    if bounds.is_empty() {
        return Some(Ok(json!({ "has_fields": [field] })));
    }
    Some(Ok(json!({ "range": bounds })))
}

/// Cuts a query string into tokens.
fn lex(query: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = query.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(Tok::Open);
                i += 1;
                continue;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
                continue;
            }
            '!' => {
                out.push(Tok::Not);
                i += 1;
                continue;
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                out.push(Tok::And);
                i += 2;
                continue;
            }
            '|' if chars.get(i + 1) == Some(&'|') => {
                out.push(Tok::Or);
                i += 2;
                continue;
            }
            _ => {}
        }
        // A word: up to whitespace or a parenthesis, with quoted and bracketed parts kept.
        let mut word = String::new();
        let mut quoted = false;
        let mut field: Option<String> = None;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() || c == ')' || (c == '(' && word.is_empty() && field.is_none()) {
                break;
            }
            if c == '\\' && i + 1 < chars.len() {
                word.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == ':' && field.is_none() && !quoted {
                field = Some(std::mem::take(&mut word));
                i += 1;
                continue;
            }
            if c == '"' && word.is_empty() {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or("unclosed quote")?;
                word = chars[i + 1..i + 1 + end].iter().collect();
                quoted = true;
                i += end + 2;
                continue;
            }
            if (c == '[' || c == '{') && word.is_empty() {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ']' || c == '}')
                    .ok_or("unclosed range")?;
                word = chars[i..=i + close].iter().collect();
                i += close + 1;
                continue;
            }
            if c == '(' {
                return Err(format!(
                    "groups after a field ({}:(…)) are not supported",
                    field.unwrap_or_default()
                ));
            }
            word.push(c);
            i += 1;
        }
        let tok = match (field.is_none() && !quoted, word.as_str()) {
            (true, "AND") => Tok::And,
            (true, "OR") => Tok::Or,
            (true, "NOT") => Tok::Not,
            _ => {
                if word.is_empty() {
                    return Err(format!("{}: missing value", field.unwrap_or_default()));
                }
                if let Some(stripped) = word
                    .strip_prefix('-')
                    .filter(|_| field.is_none() && !quoted)
                {
                    out.push(Tok::Not);
                    Tok::Term {
                        field: None,
                        value: stripped.to_owned(),
                        quoted,
                    }
                } else {
                    Tok::Term {
                        field,
                        value: word,
                        quoted,
                    }
                }
            }
        };
        out.push(tok);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logtide_event::{Condition, Event};

    fn check(filter: Value, event: Value) -> bool {
        let at = At {
            origin: "r.yml",
            rule: "r",
        };
        let list = translate_list(&filter, &at).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let e = Event::from_json(event).unwrap();
        list.iter().all(|c| {
            Condition::from_config(c)
                .unwrap_or_else(|err| panic!("{c}: {err}"))
                .check(&e)
        })
    }

    #[test]
    fn clauses() {
        let e = json!({"level": "error", "code": 503, "ratio": 0.5, "ok": true,
                       "message": "GET /api/orders failed: Connection refused",
                       "kubernetes": {"namespace": "shop"}});
        let cases = [
            (json!([{"term": {"level": "error"}}]), true),
            (json!([{"term": {"level": {"value": "warn"}}}]), false),
            (json!([{"term": {"code": 503}}]), true),
            (json!([{"term": {"ratio": 0.5}}]), true),
            (json!([{"terms": {"code": [500, 502, 503]}}]), true),
            (json!([{"terms": {"level": ["warn", "info"]}}]), false),
            (json!([{"match": {"message": "connection timeout"}}]), true),
            (
                json!([{"match": {"message": {"query": "connection timeout", "operator": "and"}}}]),
                false,
            ),
            (
                json!([{"match_phrase": {"message": "connection refused"}}]),
                true,
            ),
            (
                json!([{"match_phrase": {"message": "refused connection"}}]),
                false,
            ),
            (json!([{"range": {"code": {"gte": 500, "lt": 600}}}]), true),
            (json!([{"exists": {"field": "kubernetes.namespace"}}]), true),
            (json!([{"exists": {"field": "nope"}}]), false),
            (
                json!([{"query": {"bool": {"must": [{"term": {"level": "error"}}],
                                        "must_not": [{"term": {"kubernetes.namespace": "kube-system"}}],
                                        "should": [{"term": {"code": 500}}, {"term": {"code": 503}}]}}}]),
                true,
            ),
            (
                json!([{"bool": {"filter": {"term": {"level": "error"}}, "must_not": {"term": {"code": 503}}}}]),
                false,
            ),
            (
                json!([{"query": {"query_string": {"query": "level:error AND NOT kubernetes.namespace:kube-system"}}}]),
                true,
            ),
            (
                json!([{"query_string": {"query": "level:warn OR code:503"}}]),
                true,
            ),
            (
                json!([{"query_string": {"query": "(level:warn OR level:info) AND code:503"}}]),
                false,
            ),
            (
                json!([{"query_string": {"query": "message:\"connection refused\" && code:[500 TO 599]"}}]),
                true,
            ),
            (
                json!([{"query_string": {"query": "message:GET* AND ok:true AND code:>=500"}}]),
                true,
            ),
            (
                json!([{"query_string": {"query": "refused", "default_field": "message"}}]),
                true,
            ),
            (
                json!([{"query_string": {"query": "kubernetes.namespace:* -level:info"}}]),
                true,
            ),
        ];
        for (filter, want) in cases {
            assert_eq!(check(filter.clone(), e.clone()), want, "{filter}");
        }
    }

    #[test]
    fn refused_clauses_are_named() {
        let at = At {
            origin: "rules/x.yaml",
            rule: "x",
        };
        let cases = [
            (
                json!([{"wildcard": {"message": "err*"}}]),
                r#"rules/x.yaml: rule "x": filter[0].wildcard: unsupported filter clause "wildcard""#,
            ),
            (
                json!([{"term": {"a": 1}}, {"query": {"bool": {"must": [{"regexp": {"a": "b"}}]}}}]),
                r#"rules/x.yaml: rule "x": filter[1].query.bool.must[0].regexp: unsupported filter clause "regexp""#,
            ),
            (
                json!([{"range": {"@timestamp": {"gte": "now-1h"}}}]),
                "filter[0].range.@timestamp.gte: only numeric bounds",
            ),
            (
                json!([{"query_string": {"query": "error"}}]),
                r#"filter[0].query_string: "error" has no field"#,
            ),
            (
                json!([{"query": {"query_string": {"query": "a:(b OR c)"}}}]),
                "groups after a field",
            ),
        ];
        for (filter, want) in cases {
            let err = translate_list(&filter, &at).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }
}
