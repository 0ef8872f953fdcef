//! Conditions (`when:`): the type lives in `logtide-event`; this module reports its
//! configuration errors as this crate's.

pub use logtide_event::Condition;
use serde_json::Value;

use crate::{Error, Result};

/// Builds the condition at `path` (field maps flattened into dotted keys, as Filebeat
/// does), with errors as [`Error::InvalidConfig`], [`Error::InvalidRegex`] and, for
/// patterns Go's regexp refuses, [`Error::InvalidGoRegex`].
pub(crate) fn condition_at(config: &Value, path: &str) -> Result<Condition> {
    let config = crate::dotted::flatten_condition(config);
    let condition = Condition::from_config_at(&config, path).map_err(|e| match e {
        logtide_event::Error::Condition { path, reason } => Error::InvalidConfig { path, reason },
        logtide_event::Error::ConditionRegex { path, error } => Error::InvalidRegex { path, error },
        other => Error::Event(other),
    })?;
    crate::goregexp::validate_condition(&config, path)?;
    Ok(condition)
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
        // Go's regexp (Filebeat's) refuses a nested repetition that Rust's accepts.
        let err = condition_at(
            &json!({"or": [{"has_fields": ["a"]}, {"not": {"regexp": {"m": "x(w++)"}}}]}),
            "p.when",
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidGoRegex { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "p.when.or[1].not.regexp.m: invalid regular expression: error parsing regexp: \
             invalid nested repetition operator: `++` (at byte 3 of \"x(w++)\")"
        );
    }
}
