//! `/proc/loadavg`: load averages.

use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{put, round4, Common};
use crate::{Error, Result};

/// The 1, 5 and 15 minute load averages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadAvg {
    /// Last minute.
    pub one: f64,
    /// Last 5 minutes.
    pub five: f64,
    /// Last 15 minutes.
    pub fifteen: f64,
}

/// Parses `/proc/loadavg` (`origin` names the file in errors).
pub fn parse_loadavg(text: &str, origin: &Path) -> Result<LoadAvg> {
    let mut words = text.split_ascii_whitespace();
    let mut next = |what: &str| -> Result<f64> {
        let word = words
            .next()
            .ok_or_else(|| Error::parse(origin, 1, format!("missing the {what} load average")))?;
        word.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                Error::parse(
                    origin,
                    1,
                    format!("{what} load average {word:?} is not a number"),
                )
            })
    };
    Ok(LoadAvg {
        one: next("1-minute")?,
        five: next("5-minute")?,
        fifteen: next("15-minute")?,
    })
}

/// The `load` event: averages, and averages per core.
pub(crate) fn load_event(common: &Common, at: Timestamp, load: &LoadAvg, cores: usize) -> Event {
    let mut e = common.event(at, "system", "load");
    let c = cores.max(1) as f64;
    for (key, v) in [("1", load.one), ("5", load.five), ("15", load.fifteen)] {
        put(&mut e, &format!("system.load.{key}"), v);
        put(&mut e, &format!("system.load.norm.{key}"), round4(v / c));
    }
    put(&mut e, "system.load.cores", cores);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let l = parse_loadavg("1.92 1.84 1.87 5/141 30861\n", Path::new("loadavg")).unwrap();
        assert_eq!(
            l,
            LoadAvg {
                one: 1.92,
                five: 1.84,
                fifteen: 1.87
            }
        );
        let err = parse_loadavg("1.0 x 2\n", Path::new("loadavg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "loadavg:1: 5-minute load average \"x\" is not a number"
        );
        let err = parse_loadavg("", Path::new("loadavg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "loadavg:1: missing the 1-minute load average"
        );
    }
}
