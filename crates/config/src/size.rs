//! Byte sizes in configuration: `64MiB`, `512 KiB`, `10MB` or a number of bytes.

use serde::{de, Deserialize, Deserializer};

/// A size in bytes, read from `64MiB`, `512 KiB`, `1048576`, `10MB` or `1GB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `64MiB`, `512 KiB`, `1048576`, `10MB`, `1GB`; `None` for anything else or
    /// a size beyond `u64`.
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().ok()?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return None,
        };
        n.checked_mul(mult).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).ok_or_else(|| {
                de::Error::custom(format!("{s:?} is not a size such as 64MiB or 1048576"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let cases = [
            ("64MiB", Some(64 << 20)),
            ("512 KiB", Some(512 << 10)),
            ("1048576", Some(1_048_576)),
            ("10MB", Some(10_000_000)),
            ("1GB", Some(1_000_000_000)),
            ("3GiB", Some(3 << 30)),
            ("7B", Some(7)),
            ("1TB", None),
            ("MiB", None),
            ("-1", None),
            ("99999999999999999999GiB", None),
        ];
        for (text, want) in cases {
            assert_eq!(ByteSize::parse(text).map(|b| b.0), want, "{text}");
        }
        let read: ByteSize = serde_json::from_str("\"2KiB\"").unwrap();
        assert_eq!(read, ByteSize(2048));
        let err = serde_json::from_str::<ByteSize>("\"lots\"").unwrap_err();
        assert!(err.to_string().contains("64MiB"), "{err}");
    }
}
