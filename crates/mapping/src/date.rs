//! Date formats as Elasticsearch parses them: the built-in names logs use
//! (`strict_date_optional_time`, `epoch_millis`, …) and custom java-time patterns made of
//! the common letters. A format Elasticsearch knows but this model does not is marked
//! unsupported, and values for it are predicted to be accepted.

/// A date format: alternatives separated by `||`, the first that parses wins.
#[derive(Clone, Debug)]
pub(crate) struct DateFormat {
    source: String,
    alternatives: Vec<Alt>,
}

/// The format of a `date` field with no `format`.
pub(crate) const DEFAULT_DATE_FORMAT: &str = "strict_date_optional_time||epoch_millis";
/// The format of a `date_nanos` field with no `format`.
pub(crate) const DEFAULT_DATE_NANOS_FORMAT: &str = "strict_date_optional_time_nanos||epoch_millis";
/// The default `dynamic_date_formats`, as the date mappings they create spell them.
pub(crate) const DEFAULT_DYNAMIC_DATE_FORMATS: [&str; 2] = [
    DEFAULT_DATE_FORMAT,
    "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis",
];

#[derive(Clone, Debug)]
enum Alt {
    /// `[strict_]date_optional_time[_nanos]` and its stricter relatives.
    Iso {
        strict: bool,
        time: TimePart,
    },
    EpochMillis,
    EpochSecond,
    Pattern(Vec<Tok>),
    /// A format this model cannot evaluate.
    Unsupported,
}

/// What the ISO-like built-in formats require after the date.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TimePart {
    /// `date_optional_time`: the date may stand alone, or be followed by `T` and a time.
    Optional,
    /// `date_time`: `yyyy-MM-dd'T'HH:mm:ss.SSSZ`.
    Full,
    /// `date_time_no_millis`: `yyyy-MM-dd'T'HH:mm:ssZ`.
    NoMillis,
    /// `date`: `yyyy-MM-dd` only.
    None,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num {
        field: Field,
        min: usize,
        max: usize,
    },
    Fraction {
        min: usize,
        max: usize,
    },
    Literal(String),
    /// `Z` (`+HHMM`), `X…`/`x…` (ISO offsets, with or without `Z`), `VV` (zone id).
    Offset {
        colon: Option<bool>,
        allow_z: bool,
        minutes_optional: bool,
    },
    ZoneId,
    OptStart,
    OptEnd,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl DateFormat {
    /// Parses a `format` value (`a||b||c`).
    pub(crate) fn new(source: &str) -> DateFormat {
        DateFormat {
            source: source.to_owned(),
            alternatives: source.split("||").map(|a| alternative(a.trim())).collect(),
        }
    }

    /// The format as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether every alternative is understood by this model.
    #[cfg(test)]
    pub(crate) fn is_supported(&self) -> bool {
        !self
            .alternatives
            .iter()
            .any(|a| matches!(a, Alt::Unsupported))
    }

    /// Whether a string parses with one of the alternatives (an unsupported alternative
    /// counts as parsing it).
    pub(crate) fn parses(&self, s: &str) -> bool {
        self.alternatives.iter().any(|alt| match alt {
            Alt::Iso { strict, time } => iso(s, *strict, *time),
            Alt::EpochMillis | Alt::EpochSecond => epoch(s),
            Alt::Pattern(toks) => pattern(s, toks),
            Alt::Unsupported => true,
        })
    }

    /// Whether a string parses with an alternative this model understands (used for date
    /// detection, where guessing "yes" would invent date fields).
    pub(crate) fn surely_parses(&self, s: &str) -> bool {
        self.alternatives.iter().any(|alt| match alt {
            Alt::Iso { strict, time } => iso(s, *strict, *time),
            Alt::EpochMillis | Alt::EpochSecond => epoch(s),
            Alt::Pattern(toks) => pattern(s, toks),
            Alt::Unsupported => false,
        })
    }
}

fn alternative(name: &str) -> Alt {
    let iso_alt = |strict, time| Alt::Iso { strict, time };
    match name {
        "strict_date_optional_time" | "strict_date_optional_time_nanos" => {
            iso_alt(true, TimePart::Optional)
        }
        "date_optional_time" | "iso8601" => iso_alt(false, TimePart::Optional),
        "strict_date_time" => iso_alt(true, TimePart::Full),
        "date_time" => iso_alt(false, TimePart::Full),
        "strict_date_time_no_millis" => iso_alt(true, TimePart::NoMillis),
        "date_time_no_millis" => iso_alt(false, TimePart::NoMillis),
        "strict_date" | "strict_year_month_day" => iso_alt(true, TimePart::None),
        "date" | "year_month_day" => iso_alt(false, TimePart::None),
        "epoch_millis" => Alt::EpochMillis,
        "epoch_second" => Alt::EpochSecond,
        "basic_date" | "strict_basic_date" => compile("yyyyMMdd"),
        "strict_date_hour_minute_second" | "date_hour_minute_second" => {
            compile("yyyy-MM-dd'T'HH:mm:ss")
        }
        "strict_date_hour_minute_second_millis" | "date_hour_minute_second_millis" => {
            compile("yyyy-MM-dd'T'HH:mm:ss.SSS")
        }
        "strict_year_month" | "year_month" => compile("yyyy-MM"),
        "strict_year" | "year" => compile("yyyy"),
        _ if name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && name.contains('_') => {
            Alt::Unsupported
        }
        _ => compile(name),
    }
}

/// Compiles a java-time pattern; letters outside the supported set make it unsupported.
fn compile(p: &str) -> Alt {
    let mut toks = Vec::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut lit = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        lit.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                lit.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Alt::Unsupported;
            }
            if lit.is_empty() {
                lit.push('\'');
            }
            toks.push(Tok::Literal(lit));
            i += 1;
            continue;
        }
        if c == '[' {
            toks.push(Tok::OptStart);
            i += 1;
            continue;
        }
        if c == ']' {
            toks.push(Tok::OptEnd);
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            toks.push(Tok::Literal(c.to_string()));
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let num = |field, min, max| Tok::Num { field, min, max };
        let tok = match (c, n) {
            ('y' | 'u', 2) => num(Field::Year, 2, 2),
            ('y' | 'u', 1) => num(Field::Year, 1, 19),
            ('y' | 'u', n) => num(Field::Year, n, 19),
            ('M', 1) => num(Field::Month, 1, 2),
            ('M', 2) => num(Field::Month, 2, 2),
            ('d', 1) => num(Field::Day, 1, 2),
            ('d', 2) => num(Field::Day, 2, 2),
            ('H', 1) => num(Field::Hour, 1, 2),
            ('H', 2) => num(Field::Hour, 2, 2),
            ('m', 1) => num(Field::Minute, 1, 2),
            ('m', 2) => num(Field::Minute, 2, 2),
            ('s', 1) => num(Field::Second, 1, 2),
            ('s', 2) => num(Field::Second, 2, 2),
            ('S', n) if n <= 9 => Tok::Fraction { min: n, max: n },
            ('Z', 1..=3) => Tok::Offset {
                colon: Some(false),
                allow_z: false,
                minutes_optional: false,
            },
            ('Z', 5) | ('X', 5) => Tok::Offset {
                colon: Some(true),
                allow_z: true,
                minutes_optional: false,
            },
            ('X', 1) | ('x', 1) => Tok::Offset {
                colon: Some(false),
                allow_z: c == 'X',
                minutes_optional: true,
            },
            ('X', 2) | ('x', 2) | ('X', 4) | ('x', 4) => Tok::Offset {
                colon: Some(false),
                allow_z: c == 'X',
                minutes_optional: false,
            },
            ('X', 3) | ('x', 3) | ('x', 5) => Tok::Offset {
                colon: Some(true),
                allow_z: c == 'X',
                minutes_optional: false,
            },
            ('V', 2) | ('z', 1..=3) => Tok::ZoneId,
            _ => return Alt::Unsupported,
        };
        toks.push(tok);
    }
    Alt::Pattern(toks)
}

/// A cursor over the input.
struct Cur<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, min: usize, max: usize) -> Option<u64> {
        let run = self.s[self.at..]
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if run < min {
            return None;
        }
        let mut v: u64 = 0;
        for &b in &self.s[self.at..self.at + run] {
            v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        }
        self.at += run;
        Some(v)
    }
    fn done(&self) -> bool {
        self.at == self.s.len()
    }
}

#[derive(Default)]
struct Parts {
    year: Option<i64>,
    month: Option<u64>,
    day: Option<u64>,
    hour: Option<u64>,
    minute: Option<u64>,
    second: Option<u64>,
}

impl Parts {
    fn valid(&self) -> bool {
        let month_ok = self.month.is_none_or(|m| (1..=12).contains(&m));
        let day_ok = match self.day {
            None => true,
            Some(d) => {
                let max = match (self.month.unwrap_or(1), self.year.unwrap_or(2000)) {
                    (2, y) if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                    (2, _) => 28,
                    (4 | 6 | 9 | 11, _) => 30,
                    _ => 31,
                };
                (1..=max).contains(&d)
            }
        };
        month_ok
            && day_ok
            && self.hour.is_none_or(|h| h < 24)
            && self.minute.is_none_or(|m| m < 60)
            && self.second.is_none_or(|s| s < 60)
    }
}

fn year(c: &mut Cur<'_>, strict: bool) -> Option<i64> {
    let sign = match c.peek() {
        Some(b'+') => {
            c.at += 1;
            1
        }
        Some(b'-') => {
            c.at += 1;
            -1
        }
        _ => 0,
    };
    let start = c.at;
    let v = c.digits(if strict { 4 } else { 1 }, 10)?;
    // A sign is only written on years of more than four digits.
    if sign != 0 && c.at - start <= 4 {
        return None;
    }
    i64::try_from(v).ok().map(|v| if sign < 0 { -v } else { v })
}

/// `date_optional_time` and its relatives.
fn iso(s: &str, strict: bool, time: TimePart) -> bool {
    let mut c = Cur {
        s: s.as_bytes(),
        at: 0,
    };
    let (two_min, two_max) = if strict { (2, 2) } else { (1, 2) };
    let mut p = Parts::default();
    let Some(y) = year(&mut c, strict) else {
        return false;
    };
    p.year = Some(y);
    let full_date = time != TimePart::Optional;
    if c.eat(b'-') {
        let Some(m) = c.digits(two_min, two_max) else {
            return false;
        };
        p.month = Some(m);
        if c.eat(b'-') {
            let Some(d) = c.digits(two_min, two_max) else {
                return false;
            };
            p.day = Some(d);
        }
    }
    if full_date && p.day.is_none() {
        return false;
    }
    match time {
        TimePart::None => {}
        TimePart::Optional => {
            if c.eat(b'T') {
                if let Some(h) = c.digits(two_min, two_max) {
                    p.hour = Some(h);
                    if c.eat(b':') {
                        let Some(m) = c.digits(two_min, two_max) else {
                            return false;
                        };
                        p.minute = Some(m);
                        if c.eat(b':') {
                            let Some(sec) = c.digits(two_min, two_max) else {
                                return false;
                            };
                            p.second = Some(sec);
                            if (c.eat(b'.') || c.eat(b',')) && c.digits(1, 9).is_none() {
                                return false;
                            }
                        }
                    }
                    if !c.done() && !zone(&mut c) {
                        return false;
                    }
                }
            }
        }
        TimePart::Full | TimePart::NoMillis => {
            if !c.eat(b'T') {
                return false;
            }
            let (Some(h), true, Some(m), true, Some(sec)) = (
                c.digits(two_min, two_max),
                c.eat(b':'),
                c.digits(two_min, two_max),
                c.eat(b':'),
                c.digits(two_min, two_max),
            ) else {
                return false;
            };
            (p.hour, p.minute, p.second) = (Some(h), Some(m), Some(sec));
            if time == TimePart::Full && !(c.eat(b'.') && c.digits(1, 9).is_some()) {
                return false;
            }
            if !zone(&mut c) {
                return false;
            }
        }
    }
    c.done() && p.valid()
}

/// `Z`, an offset `±HH[[:]mm]`, or a region id such as `Europe/Paris` or `UTC`.
fn zone(c: &mut Cur<'_>) -> bool {
    if c.eat(b'Z') {
        return true;
    }
    if matches!(c.peek(), Some(b'+' | b'-')) {
        return offset(c, None, false, true);
    }
    let start = c.at;
    while c
        .peek()
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
    {
        c.at += 1;
    }
    c.at > start && c.s[start].is_ascii_alphabetic()
}

fn offset(c: &mut Cur<'_>, colon: Option<bool>, allow_z: bool, minutes_optional: bool) -> bool {
    if allow_z && c.eat(b'Z') {
        return true;
    }
    if !(c.eat(b'+') || c.eat(b'-')) {
        return false;
    }
    let Some(h) = c.digits(2, 2) else {
        return false;
    };
    let has_colon = c.eat(b':');
    if (has_colon || !minutes_optional) && colon.is_some_and(|want| want != has_colon) {
        return false;
    }
    match c.digits(2, 2) {
        Some(m) => h <= 18 && m < 60,
        None => !has_colon && (minutes_optional || colon.is_none()) && h <= 18,
    }
}

/// `epoch_millis` / `epoch_second`: an optional `-`, digits, an optional fraction.
fn epoch(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !int.is_empty()
        && int.len() <= 19
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 6
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(body.contains('.') && frac.is_empty())
}

fn pattern(s: &str, toks: &[Tok]) -> bool {
    let mut p = Parts::default();
    let mut c = Cur {
        s: s.as_bytes(),
        at: 0,
    };
    run(&mut c, toks, &mut p) && c.done() && p.valid()
}

/// Runs tokens; an optional section that fails is skipped from where it started.
fn run(c: &mut Cur<'_>, toks: &[Tok], p: &mut Parts) -> bool {
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::OptStart => {
                let end = section_end(toks, i);
                let save = c.at;
                if !run(c, &toks[i + 1..end], p) {
                    c.at = save;
                }
                i = end + 1;
                continue;
            }
            Tok::OptEnd => {}
            Tok::Literal(l) => {
                if !c.s[c.at..].starts_with(l.as_bytes()) {
                    return false;
                }
                c.at += l.len();
            }
            Tok::Num { field, min, max } => {
                // Adjacent value parsing: leave room for fixed-width numbers that follow.
                let reserved: usize = toks[i + 1..]
                    .iter()
                    .map_while(|t| match t {
                        Tok::Num { min, max, .. } if min == max => Some(*min),
                        Tok::Fraction { min, max } if min == max => Some(*min),
                        _ => None,
                    })
                    .sum();
                let run_len = c.s[c.at..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let take = (*max).min(run_len.saturating_sub(reserved)).max(*min);
                let Some(v) = c.digits(*min, take) else {
                    return false;
                };
                match field {
                    Field::Year => {
                        p.year =
                            i64::try_from(if *max == 2 && *min == 2 { 2000 + v } else { v }).ok()
                    }
                    Field::Month => p.month = Some(v),
                    Field::Day => p.day = Some(v),
                    Field::Hour => p.hour = Some(v),
                    Field::Minute => p.minute = Some(v),
                    Field::Second => p.second = Some(v),
                }
            }
            Tok::Fraction { min, max } => {
                if c.digits(*min, *max).is_none() {
                    return false;
                }
            }
            Tok::Offset {
                colon,
                allow_z,
                minutes_optional,
            } => {
                if !offset(c, *colon, *allow_z, *minutes_optional) {
                    return false;
                }
            }
            Tok::ZoneId => {
                if !zone(c) {
                    return false;
                }
            }
        }
        i += 1;
    }
    true
}

fn section_end(toks: &[Tok], start: usize) -> usize {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(start) {
        match t {
            Tok::OptStart => depth += 1,
            Tok::OptEnd => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_date_optional_time() {
        let f = DateFormat::new(DEFAULT_DATE_FORMAT);
        let yes = [
            "2017-01-01",
            "2017",
            "2017-01",
            "2017-01-01T",
            "2017-01-01T10",
            "2017-01-01T10:20",
            "2017-01-01T10:20:30",
            "2017-01-01T10:20:30.123456789Z",
            "2017-01-01T10:20:30,5+01:00",
            "2017-01-01T10:20:30+0100",
            "2017-01-01T10:20:30+01",
            "2017-01-01T10:20Europe/Paris",
            "2016-02-29",
            "1420070400001",
            "-5",
            "+10000-01-01",
        ];
        for s in yes {
            assert!(f.parses(s), "{s:?} should parse");
        }
        let no = [
            "My name",
            "2017-1-01",
            "2017-01-01 10:20:30",
            "2017-02-30",
            "2017-13-01",
            "2017-01-01T24:00",
            "2017-01-01Z",
            "17-01-01",
            "2017-01-01T10:20:30.",
            "2015/09/02",
            "2017-01-01T10:20:30.1234567890Z",
            "+2017-01-01",
            "2017-01-01T10:2",
            "",
        ];
        for s in no {
            assert!(!f.parses(s), "{s:?} should not parse");
        }
    }

    #[test]
    fn second_default_dynamic_format() {
        let f = DateFormat::new(DEFAULT_DYNAMIC_DATE_FORMATS[1]);
        assert!(f.is_supported());
        for s in ["2015/09/02", "2015/09/02 10:11:12", "12345"] {
            assert!(f.parses(s), "{s:?}");
        }
        for s in ["2015/9/02", "2015/09/02 10:11", "2015-09-02", "2015/02/30"] {
            assert!(!f.parses(s), "{s:?}");
        }
    }

    #[test]
    fn custom_patterns() {
        let cases = [
            ("yyyy-MM-dd HH:mm:ss", "2014-09-11 10:10:10", true),
            ("yyyy-MM-dd HH:mm:ss", "2014-09-11T10:10:10", false),
            ("yyyyMMdd", "20140911", true),
            ("yyyyMMdd", "2014091", false),
            ("dd/MM/yyyy", "02/09/2015", true),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2015-09-02T10:00:00.123+02:00",
                true,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2015-09-02T10:00:00.123Z",
                true,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                "2015-09-02T10:00:00.123+0200",
                true,
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                "2015-09-02T10:00:00.12+0200",
                false,
            ),
            ("yyyy-MM-dd[ HH:mm]", "2015-09-02", true),
            ("yyyy-MM-dd[ HH:mm]", "2015-09-02 10:00", true),
            ("yyyy-MM-dd[ HH:mm]", "2015-09-02 10", false),
        ];
        for (format, s, want) in cases {
            let f = DateFormat::new(format);
            assert!(f.is_supported(), "{format}");
            assert_eq!(f.parses(s), want, "{format} {s:?}");
        }
        let unknown = DateFormat::new("EEE, dd MMM yyyy");
        assert!(!unknown.is_supported());
        assert!(unknown.parses("anything"));
        assert!(!unknown.surely_parses("anything"));
        assert!(!DateFormat::new("week_date").is_supported());
    }
}
