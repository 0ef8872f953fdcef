//! The names rotation gives a log file, and their order.
//!
//! A file that is being written has its base name (`0.log`, `<id>-json.log`, `app.log`).
//! Rotation renames it, and the schemes in use add one suffix:
//! - kubelet (containerd, CRI-O): `0.log.<YYYYMMDD-HHMMSS>`, later gzipped to
//!   `0.log.<YYYYMMDD-HHMMSS>.gz` (except the newest rotated file);
//! - dockerd's json-file driver and logrotate without `dateext`: `<name>.1` (newest) …
//!   `<name>.N` (oldest), renamed one up at each rotation, optionally `.gz`;
//! - logrotate with `dateext`: `<name>-YYYYMMDD` (or with `dateformat`, any date made of
//!   digits, `-`, `_`, `.` and `T`), or `<name>.YYYYMMDD`.
//!
//! [`parse`] tells a file's base name and its [`Rank`] in the rotation sequence, so that
//! the files of one sequence are read oldest first, and the current file last.

use std::cmp::Ordering;

/// A file's place in its rotation sequence; orders oldest first, the current file last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rank {
    /// A dated suffix: later dates are newer.
    Dated(String),
    /// A numbered suffix: higher numbers are older.
    Numbered(u32),
    /// The file under its base name: the one being written.
    Current,
}

impl Rank {
    fn class(&self) -> u8 {
        match self {
            Rank::Dated(_) => 0,
            Rank::Numbered(_) => 1,
            Rank::Current => 2,
        }
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Rank::Dated(a), Rank::Dated(b)) => a.cmp(b),
            (Rank::Numbered(a), Rank::Numbered(b)) => b.cmp(a),
            _ => self.class().cmp(&other.class()),
        }
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A file name split into its base name, its rank and whether it is gzipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rotated<'a> {
    /// The name of the file the sequence is written under.
    pub base: &'a str,
    /// Its place in the sequence.
    pub rank: Rank,
    /// A `.gz` rotation: compressed, not read.
    pub gzipped: bool,
}

/// Digits only, at most 4 of them: a rotation number (`.1` … `.9999`).
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A date or timestamp: starts with a digit, holds at least 8 digits, and only digits and
/// `-`, `_`, `.`, `T`, `Z`.
fn date(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && s.bytes().filter(u8::is_ascii_digit).count() >= 8
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'T' | b'Z'))
}

/// The base name, rank and compression of a file name.
pub(crate) fn parse(name: &str) -> Rotated<'_> {
    let (stem, gzipped) = match name.strip_suffix(".gz") {
        Some(s) => (s, true),
        None => (name, false),
    };
    // `<base>.<suffix>`: a number or a date.
    if let Some((base, suffix)) = stem.rsplit_once('.') {
        if base.contains('.') || base.ends_with("log") {
            if let Some(n) = number(suffix) {
                return Rotated {
                    base,
                    rank: Rank::Numbered(n),
                    gzipped,
                };
            }
            if date(suffix) {
                return Rotated {
                    base,
                    rank: Rank::Dated(suffix.to_owned()),
                    gzipped,
                };
            }
        }
    }
    // `<base>.log.<date with dots>` (a dateformat with dots) and `<base>-<date>`.
    for sep in [".log.", ".log-"] {
        if let Some(i) = stem.rfind(sep) {
            let suffix = &stem[i + sep.len()..];
            if date(suffix) {
                return Rotated {
                    base: &stem[..i + 4],
                    rank: Rank::Dated(suffix.to_owned()),
                    gzipped,
                };
            }
        }
    }
    if let Some((base, suffix)) = stem.rsplit_once('-') {
        if base.contains('.') && date(suffix) {
            return Rotated {
                base,
                rank: Rank::Dated(suffix.to_owned()),
                gzipped,
            };
        }
    }
    Rotated {
        base: stem,
        rank: Rank::Current,
        gzipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names_table() {
        let id = "3f1c2e9a7b6d4c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";
        let dated = |s: &str| Rank::Dated(s.to_owned());
        let cases: Vec<(String, &str, Rank, bool)> = vec![
            ("0.log".into(), "0.log", Rank::Current, false),
            (
                "0.log.20261206-181500".into(),
                "0.log",
                dated("20261206-181500"),
                false,
            ),
            (
                "0.log.20261206-181500.gz".into(),
                "0.log",
                dated("20261206-181500"),
                true,
            ),
            (format!("{id}-json.log"), "", Rank::Current, false),
            (format!("{id}-json.log.1"), "", Rank::Numbered(1), false),
            (format!("{id}-json.log.4"), "", Rank::Numbered(4), false),
            ("app.log.2.gz".into(), "app.log", Rank::Numbered(2), true),
            (
                "app.log-20261206".into(),
                "app.log",
                dated("20261206"),
                false,
            ),
            (
                "app.log-20261206.gz".into(),
                "app.log",
                dated("20261206"),
                true,
            ),
            (
                "app.log.2026-12-06".into(),
                "app.log",
                dated("2026-12-06"),
                false,
            ),
            (
                "app.log.20261206.1".into(),
                "app.log.20261206",
                Rank::Numbered(1),
                false,
            ),
            ("syslog".into(), "syslog", Rank::Current, false),
            ("syslog.1".into(), "syslog", Rank::Numbered(1), false),
            ("my.app.log".into(), "my.app.log", Rank::Current, false),
            ("v1.2".into(), "v1.2", Rank::Current, false),
        ];
        for (name, base, rank, gz) in cases {
            let r = parse(&name);
            let want_base = if base.is_empty() {
                format!("{id}-json.log")
            } else {
                base.to_owned()
            };
            assert_eq!(r.base, want_base, "{name}");
            assert_eq!(r.rank, rank, "{name}");
            assert_eq!(r.gzipped, gz, "{name}");
        }
    }

    #[test]
    fn ranks_order_oldest_first() {
        let mut names = vec![
            "0.log",
            "0.log.20261206-181503",
            "0.log.20261206-181459",
            "0.log.20261206-181501",
        ];
        names.sort_by(|a, b| parse(a).rank.cmp(&parse(b).rank));
        assert_eq!(
            names,
            [
                "0.log.20261206-181459",
                "0.log.20261206-181501",
                "0.log.20261206-181503",
                "0.log"
            ]
        );
        let mut names = vec!["a-json.log.1", "a-json.log", "a-json.log.3", "a-json.log.2"];
        names.sort_by(|a, b| parse(a).rank.cmp(&parse(b).rank));
        assert_eq!(
            names,
            ["a-json.log.3", "a-json.log.2", "a-json.log.1", "a-json.log"]
        );
    }
}
