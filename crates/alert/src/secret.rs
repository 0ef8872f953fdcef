//! Secrets (webhook URLs, header values) that never reach a log line.

use std::fmt;

/// A secret string: `Debug` and `Display` print `<redacted>`. Read it with
/// [`Secret::expose`] only where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret, and of a URL secret's path and query
    /// (where webhook tokens live), replaced by `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.0.as_str(), REDACTED);
        if let Some(rest) = self.0.split_once("://").map(|(_, r)| r) {
            if let Some(i) = rest.find(['/', '?']) {
                let tail = &rest[i..];
                if tail.len() > 1 {
                    out = out.replace(tail, REDACTED);
                }
            }
        }
        out
    }
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("https://hooks.slack.com/services/T000/B000/XXXX");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(
            s.redact("post https://hooks.slack.com/services/T000/B000/XXXX failed"),
            "post <redacted> failed"
        );
        assert_eq!(
            s.redact("connect hooks.slack.com/services/T000/B000/XXXX: refused"),
            "connect hooks.slack.com<redacted>: refused"
        );
    }
}
