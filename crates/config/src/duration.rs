//! Durations in configuration: text such as `10s`, `250ms`, `1h30m` or `1h 30m`, or a
//! non-negative number of seconds (`30`, `0.5`). The same rule for every option of every
//! binary.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct Options {
//!     #[serde(with = "logtide_config::duration")]
//!     flush: std::time::Duration,
//!     #[serde(default, with = "logtide_config::duration::option")]
//!     timeout: Option<std::time::Duration>,
//! }
//! let o: Options = serde_json::from_str(r#"{"flush": "1m30s", "timeout": 0.25}"#).unwrap();
//! assert_eq!(o.flush.as_secs(), 90);
//! assert_eq!(o.timeout.unwrap().as_millis(), 250);
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// How a duration may be written, for error messages.
const FORMS: &str = "use e.g. 10s, 5m, 1h or a number of seconds";

/// Parses duration text (`10s`, `1m30s`, `250ms`) or a number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return from_secs(secs).ok_or_else(|| format!("invalid duration {text:?} ({FORMS})"));
    }
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {text:?}: {e} ({FORMS})"))
}

fn from_secs(secs: f64) -> Option<Duration> {
    (secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Secs(u64),
    Fraction(f64),
    Text(String),
}

/// Deserializes a duration (text or a number of seconds).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Fraction(s) => from_secs(s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s} ({FORMS})"))),
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
    }
}

/// Serializes as text (`1m 30s`), which [`deserialize`] reads back.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// Optional durations (`#[serde(default, with = "logtide_config::duration::option")]`).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Deserializes an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }

    /// Serializes an optional duration.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

/// Durations that must be above zero (`#[serde(with = "logtide_config::duration::positive")]`).
pub mod positive {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Deserializes a duration and refuses zero.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let t = super::deserialize(d)?;
        if t.is_zero() {
            return Err(serde::de::Error::custom("must be above zero"));
        }
        Ok(t)
    }

    /// Serializes as text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(d, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, serde::Serialize)]
    struct W(#[serde(with = "super")] Duration);

    fn read(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<W>(json)
            .map(|w| w.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_form() {
        let cases = [
            ("\"10s\"", 10_000),
            ("\" 1m30s \"", 90_000),
            ("\"1h 30m\"", 5_400_000),
            ("\"250ms\"", 250),
            ("30", 30_000),
            ("0.5", 500),
            ("\"45\"", 45_000),
            ("\"1.5\"", 1_500),
            ("0", 0),
        ];
        for (json, ms) in cases {
            assert_eq!(read(json), Ok(Duration::from_millis(ms)), "{json}");
        }
    }

    #[test]
    fn refusals_say_how_to_write_one() {
        for json in ["\"soon\"", "-1", "-0.5", "\"-3\"", "true", "\"1e400\""] {
            let err = read(json).unwrap_err();
            assert!(
                err.contains("duration") || err.contains("did not match"),
                "{json}: {err}"
            );
        }
        assert!(read("\"soon\"").unwrap_err().contains(FORMS));
    }

    #[test]
    fn written_text_reads_back() {
        for ms in [0, 1, 999, 1_000, 90_000, 5_400_123] {
            let d = Duration::from_millis(ms);
            let text = serde_json::to_string(&W(d)).unwrap();
            assert_eq!(read(&text), Ok(d), "{text}");
        }
    }

    #[test]
    fn positive_refuses_zero() {
        #[derive(Debug, Deserialize)]
        struct P(
            #[serde(with = "super::positive")]
            #[allow(dead_code)]
            Duration,
        );
        assert!(serde_json::from_str::<P>("\"0s\"")
            .unwrap_err()
            .to_string()
            .contains("above zero"));
        assert!(serde_json::from_str::<P>("\"1s\"").is_ok());
    }
}
