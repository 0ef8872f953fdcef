//! Nanosecond timestamps: RFC 3339 parsing without allocation and UTC formatting.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: u32 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A point in time with nanosecond precision, as seconds and nanoseconds since the Unix epoch.
///
/// Every instant of the years 0000 to 9999 is representable, which covers every timestamp
/// RFC 3339 can express. The ordering is chronological.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Why a timestamp could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The text does not have the `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` shape.
    #[error("not an RFC 3339 timestamp: expected {expected} at column {column}")]
    Syntax {
        /// What the parser expected to see.
        expected: &'static str,
        /// Zero-based column in the timestamp text.
        column: usize,
    },
    /// A component is out of its range (month 13, day 31 in April, hour 24, …).
    #[error("RFC 3339 timestamp has an out-of-range {0}")]
    Range(&'static str),
}

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// Builds a timestamp from seconds and nanoseconds since the Unix epoch.
    ///
    /// Returns `None` when `nanos` is one second or more.
    pub const fn new(secs: i64, nanos: u32) -> Option<Self> {
        if nanos >= NANOS_PER_SEC {
            None
        } else {
            Some(Timestamp { secs, nanos })
        }
    }

    /// The current time of the system clock.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(before) => {
                let d = before.duration();
                let (secs, nanos) = (d.as_secs() as i64, d.subsec_nanos());
                if nanos == 0 {
                    Timestamp {
                        secs: -secs,
                        nanos: 0,
                    }
                } else {
                    Timestamp {
                        secs: -secs - 1,
                        nanos: NANOS_PER_SEC - nanos,
                    }
                }
            }
        }
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub const fn unix_secs(self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub const fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i128 {
        self.secs as i128 * NANOS_PER_SEC as i128 + self.nanos as i128
    }

    /// Parses an RFC 3339 timestamp such as `2016-10-06T00:17:09.669794202Z` or
    /// `2021-02-01T16:45:03.01231+09:00`.
    ///
    /// Accepted, as RFC 3339 allows: lowercase `t` and `z`, any number of fractional
    /// digits (digits past the ninth are truncated), no fraction at all, a numeric offset,
    /// and a leap second (`:60`, counted as the first second of the next minute).
    /// Nothing is allocated.
    pub fn parse_rfc3339(text: &[u8]) -> Result<Self, TimestampError> {
        thread_local! {
            /// The date and time (the first 19 bytes) of the last timestamp parsed on this
            /// thread in the shape container runtimes write (`…:SS.nnnnnnnnnZ`), and its
            /// seconds: log lines come in bursts within one second, so most reuse them.
            static SECOND: std::cell::Cell<Option<([u8; 19], i64)>> = const {
                std::cell::Cell::new(None)
            };
        }
        let runtime_shape = text.len() == 30 && text[19] == b'.' && text[29] == b'Z';
        if runtime_shape {
            if let Some((date_time, secs)) = SECOND.get() {
                if text[..19] == date_time {
                    if let Some(nanos) = nine_digits(&text[20..29]) {
                        return Ok(Timestamp { secs, nanos });
                    }
                }
            }
        }
        let parsed = Self::parse_rfc3339_fields(text)?;
        if runtime_shape {
            let mut date_time = [0u8; 19];
            date_time.copy_from_slice(&text[..19]);
            SECOND.set(Some((date_time, parsed.secs)));
        }
        Ok(parsed)
    }

    fn parse_rfc3339_fields(text: &[u8]) -> Result<Self, TimestampError> {
        let mut p = Cursor { s: text, i: 0 };
        let year = p.digits(4, "a 4-digit year")?;
        p.byte(b'-', "'-' after the year")?;
        let month = p.digits(2, "a 2-digit month")?;
        p.byte(b'-', "'-' after the month")?;
        let day = p.digits(2, "a 2-digit day")?;
        match p.peek() {
            Some(b'T' | b't') => p.i += 1,
            _ => return Err(p.syntax("'T' between date and time")),
        }
        let hour = p.digits(2, "a 2-digit hour")?;
        p.byte(b':', "':' after the hour")?;
        let minute = p.digits(2, "2-digit minutes")?;
        p.byte(b':', "':' after the minutes")?;
        let second = p.digits(2, "2-digit seconds")?;
        let mut nanos = 0u32;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let start = p.i;
            let mut scale = NANOS_PER_SEC;
            while let Some(d @ b'0'..=b'9') = p.peek() {
                if scale > 1 {
                    scale /= 10;
                    nanos += u32::from(d - b'0') * scale;
                }
                p.i += 1;
            }
            if p.i == start {
                return Err(p.syntax("a digit after '.'"));
            }
        }
        let offset_secs: i64 = match p.peek() {
            Some(b'Z' | b'z') => {
                p.i += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2, "2-digit offset hours")?;
                p.byte(b':', "':' in the offset")?;
                let om = p.digits(2, "2-digit offset minutes")?;
                if oh > 23 || om > 59 {
                    return Err(TimestampError::Range("offset"));
                }
                let off = i64::from(oh * 3600 + om * 60);
                if sign == b'+' {
                    off
                } else {
                    -off
                }
            }
            _ => return Err(p.syntax("'Z' or a numeric offset")),
        };
        if p.i != text.len() {
            return Err(p.syntax("the end of the timestamp"));
        }
        if !(1..=12).contains(&month) {
            return Err(TimestampError::Range("month"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(TimestampError::Range("day"));
        }
        if hour > 23 {
            return Err(TimestampError::Range("hour"));
        }
        if minute > 59 {
            return Err(TimestampError::Range("minute"));
        }
        if second > 60 {
            return Err(TimestampError::Range("second"));
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs =
            days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
        Ok(Timestamp { secs, nanos })
    }

    /// Writes the timestamp as RFC 3339 in UTC with exactly nine fractional digits,
    /// e.g. `2016-10-06T00:17:09.669794202Z` (30 bytes for years 0000–9999).
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        thread_local! {
            /// The date and time of the second last written on this thread: events come
            /// in bursts within one second, so most reuse it.
            static SECOND: std::cell::Cell<(i64, [u8; 19])> = const {
                std::cell::Cell::new((i64::MIN, [0; 19]))
            };
        }
        let mut buf = [0u8; 30];
        let (secs, date_time) = SECOND.get();
        if secs == self.secs {
            buf[..19].copy_from_slice(&date_time);
        } else {
            let days = self.secs.div_euclid(SECS_PER_DAY);
            let rem = self.secs.rem_euclid(SECS_PER_DAY) as u32;
            let (year, month, day) = civil_from_days(days);
            let year = year.clamp(0, 9999) as u32;
            put(&mut buf[0..4], year);
            buf[4] = b'-';
            put(&mut buf[5..7], month);
            buf[7] = b'-';
            put(&mut buf[8..10], day);
            buf[10] = b'T';
            put(&mut buf[11..13], rem / 3600);
            buf[13] = b':';
            put(&mut buf[14..16], rem / 60 % 60);
            buf[16] = b':';
            put(&mut buf[17..19], rem % 60);
            let mut date_time = [0u8; 19];
            date_time.copy_from_slice(&buf[..19]);
            SECOND.set((self.secs, date_time));
        }
        buf[19] = b'.';
        put(&mut buf[20..29], self.nanos);
        buf[29] = b'Z';
        out.extend_from_slice(&buf);
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(30);
        self.write_rfc3339(&mut buf);
        // Only ASCII digits and separators are written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Writes `value` as zero-padded decimal filling `out`.
fn put(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn syntax(&self, expected: &'static str) -> TimestampError {
        TimestampError::Syntax {
            expected,
            column: self.i,
        }
    }

    fn byte(&mut self, b: u8, expected: &'static str) -> Result<(), TimestampError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.syntax(expected))
        }
    }

    fn digits(&mut self, n: usize, expected: &'static str) -> Result<u32, TimestampError> {
        let Some(chunk) = self.s.get(self.i..self.i + n) else {
            return Err(self.syntax(expected));
        };
        let mut v = 0u32;
        for &b in chunk {
            if !b.is_ascii_digit() {
                return Err(self.syntax(expected));
            }
            v = v * 10 + u32::from(b - b'0');
        }
        self.i += n;
        Ok(v)
    }
}

/// The value of nine ASCII digits, or `None` when a byte is not a digit: the first eight
/// as one word (checked and combined pairwise in three multiplications), then the ninth.
fn nine_digits(text: &[u8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (&last, head) = text.split_last()?;
    let word = u64::from_le_bytes(head.try_into().ok()?);
    // Every byte 0x30..=0x3f, and none of them past 0x39 once 6 is added.
    let all_digits = word & (ONES * 0xf0) == ONES * 0x30
        && word.wrapping_add(ONES * 6) & (ONES * 0xf0) == ONES * 0x30;
    if !all_digits || !last.is_ascii_digit() {
        return None;
    }
    // The first digit is the lowest byte: each step joins neighbours, the lower one the
    // more significant.
    let d = word - ONES * 0x30;
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_ffff_0000_ffff;
    let d = (d.wrapping_mul(10_000) + (d >> 32)) & 0xffff_ffff;
    Some(d as u32 * 10 + u32::from(last - b'0'))
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_and_formats_table() {
        let cases = [
            (
                "2016-10-06T00:17:09.669794202Z",
                "2016-10-06T00:17:09.669794202Z",
            ),
            (
                "2016-10-20T18:39:20.57606443Z",
                "2016-10-20T18:39:20.576064430Z",
            ),
            ("2016-10-06T00:17:09Z", "2016-10-06T00:17:09.000000000Z"),
            (
                "2021-02-01T16:45:03.01231z",
                "2021-02-01T16:45:03.012310000Z",
            ),
            ("2021-02-01t16:45:03Z", "2021-02-01T16:45:03.000000000Z"),
            (
                "2018-05-16T06:28:41.2195434Z",
                "2018-05-16T06:28:41.219543400Z",
            ),
            (
                "2021-01-01T09:00:00+09:00",
                "2021-01-01T00:00:00.000000000Z",
            ),
            (
                "2020-12-31T19:30:00.5-04:30",
                "2021-01-01T00:00:00.500000000Z",
            ),
            (
                "2016-10-06T00:17:09.1234567891234Z",
                "2016-10-06T00:17:09.123456789Z",
            ),
            (
                "1969-12-31T23:59:59.999999999Z",
                "1969-12-31T23:59:59.999999999Z",
            ),
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000000Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000000000Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000000000Z"),
            (
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59.999999999Z",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ts(input).to_string(), want, "input {input}");
        }
        assert_eq!(ts("1970-01-01T00:00:01.5Z").unix_nanos(), 1_500_000_000);
    }

    #[test]
    fn rejects_table() {
        let cases = [
            "",
            "2016-10-06",
            "2016-10-06T00:17:09",
            "2016-10-06T00:17:09.Z",
            "2016-10-06 00:17:09Z",
            "2016-13-06T00:17:09Z",
            "2023-02-29T00:17:09Z",
            "2016-04-31T00:17:09Z",
            "2016-10-06T24:00:00Z",
            "2016-10-06T00:60:00Z",
            "2016-10-06T00:00:61Z",
            "2016-10-06T00:17:09+0900",
            "2016-10-06T00:17:09Zjunk",
            "16-10-06T00:17:09Z",
            "2016-1a-06T00:17:09Z",
        ];
        for input in cases {
            assert!(
                Timestamp::parse_rfc3339(input.as_bytes()).is_err(),
                "{input}"
            );
        }
        let err = Timestamp::parse_rfc3339(b"2016-10-06X00").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not an RFC 3339 timestamp: expected 'T' between date and time at column 10"
        );
    }

    #[test]
    fn now_is_after_2020() {
        assert!(Timestamp::now() > ts("2020-01-01T00:00:00Z"));
    }

    #[test]
    fn serde_round_trip() {
        let t = ts("2016-10-06T00:17:09.669794202Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2016-10-06T00:17:09.669794202Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(secs in -62_167_219_200i64..253_402_300_800, nanos in 0u32..1_000_000_000) {
            let t = Timestamp::new(secs, nanos).unwrap();
            let mut buf = Vec::new();
            t.write_rfc3339(&mut buf);
            prop_assert_eq!(buf.len(), 30);
            prop_assert_eq!(Timestamp::parse_rfc3339(&buf).unwrap(), t);
        }

        /// Seconds that repeat, written in turn: the remembered date and time of the last
        /// second is used only for that second.
        #[test]
        fn repeated_seconds_round_trip(steps in proptest::collection::vec((0usize..3, 0u32..1_000_000_000), 1..50)) {
            let seconds = [1_700_000_000i64, 1_700_000_001, 86_399];
            for (which, nanos) in steps {
                let t = Timestamp::new(seconds[which], nanos).unwrap();
                let mut buf = Vec::new();
                t.write_rfc3339(&mut buf);
                prop_assert_eq!(Timestamp::parse_rfc3339(&buf).unwrap(), t);
            }
        }

        /// Texts of one second with one byte changed anywhere, parsed in turn: the
        /// remembered second gives what the full parse gives, errors included.
        #[test]
        fn remembered_second_agrees_with_full_parse(edits in proptest::collection::vec((0usize..30, any::<u8>(), any::<bool>()), 1..40)) {
            let base = b"2024-05-01T10:00:00.123456789Z";
            for (at, byte, change) in edits {
                let mut text = *base;
                if change {
                    text[at] = byte;
                }
                let full = Timestamp::parse_rfc3339_fields(&text);
                let fast = Timestamp::parse_rfc3339(&text);
                prop_assert_eq!(fast.ok(), full.ok(), "{}", String::from_utf8_lossy(&text));
            }
        }

        #[test]
        fn nine_digits_reads_what_a_byte_loop_reads(bytes in proptest::collection::vec(prop_oneof![b'0'..=b'9', b'0'..=b'9', b'0'..=b'9', any::<u8>()], 9)) {
            let looped = bytes.iter().try_fold(0u32, |v, &b| {
                b.is_ascii_digit().then(|| v * 10 + u32::from(b - b'0'))
            });
            prop_assert_eq!(nine_digits(&bytes), looped);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Timestamp::parse_rfc3339(&bytes);
        }
    }
}
