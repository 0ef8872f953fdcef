//! Conditions (`when:`): the type lives in `logtide-event`; this module reports its
//! configuration errors as this crate's.

pub use logtide_event::Condition;
use serde_json::Value;

use crate::{Error, Result};

/// Builds the condition at `path`, with errors as [`Error::InvalidConfig`] and
/// [`Error::InvalidRegex`].
pub(crate) fn condition_at(config: &Value, path: &str) -> Result<Condition> {
    Condition::from_config_at(config, path).map_err(|e| match e {
        logtide_event::Error::Condition { path, reason } => Error::InvalidConfig { path, reason },
        logtide_event::Error::ConditionRegex { path, error } => Error::InvalidRegex { path, error },
        other => Error::Event(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_are_this_crates() {
        let err = condition_at(&json!({"equals": {"a": null}}), "p.when").unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "p.when.equals.a: equals compares strings, integers and booleans, not a JSON null"
        );
        let err = condition_at(&json!({"regexp": {"a": "("}}), "p.when").unwrap_err();
        assert!(matches!(err, Error::InvalidRegex { .. }), "{err:?}");
        assert!(condition_at(&json!({"has_fields": ["a"]}), "p.when").is_ok());
    }
}
