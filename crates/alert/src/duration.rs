//! Durations as elastalert writes them (`{minutes: 5}`) or as text (`5m`, `90s`).

use std::time::Duration;

use serde_json::Value;

/// Reads a duration: a map of `weeks`, `days`, `hours`, `minutes`, `seconds`,
/// `milliseconds` (summed, fractions allowed), a humantime string (`5m`, `1h 30m`), or a
/// number of seconds.
pub(crate) fn parse(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                return Err(
                    "expected at least one of weeks, days, hours, minutes, seconds, milliseconds"
                        .into(),
                );
            }
            let mut secs = 0f64;
            for (unit, v) in map {
                let per = match unit.as_str() {
                    "weeks" => 604_800.0,
                    "days" => 86_400.0,
                    "hours" => 3_600.0,
                    "minutes" => 60.0,
                    "seconds" => 1.0,
                    "milliseconds" => 0.001,
                    other => {
                        return Err(format!(
                            "unknown unit \"{other}\" (weeks, days, hours, minutes, seconds, milliseconds)"
                        ))
                    }
                };
                let n = v
                    .as_f64()
                    .filter(|n| *n >= 0.0 && n.is_finite())
                    .ok_or_else(|| format!("{unit}: expected a non-negative number, not {v}"))?;
                secs += n * per;
            }
            Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
        }
        Value::String(s) => logtide_config::duration::parse(s),
        Value::Number(n) => logtide_config::duration::parse(&n.to_string()),
        other => Err(format!(
            "expected a duration ({{minutes: 5}} or \"5m\"), not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms() {
        assert_eq!(parse(&json!({"minutes": 5})), Ok(Duration::from_secs(300)));
        assert_eq!(
            parse(&json!({"hours": 1, "minutes": 0.5})),
            Ok(Duration::from_secs(3630))
        );
        assert_eq!(parse(&json!("90s")), Ok(Duration::from_secs(90)));
        assert_eq!(parse(&json!(2)), Ok(Duration::from_secs(2)));
        assert!(parse(&json!({"fortnights": 1}))
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse(&json!({"minutes": -1})).is_err());
        assert!(parse(&json!("soon")).is_err());
    }
}
