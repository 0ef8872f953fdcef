//! Building metric events: the fields every event carries, rounding, counters.

use logtide_event::{Event, Timestamp};
use serde_json::{Map, Value};

/// When a sample was taken: the wall-clock time (the event's `@timestamp`) and a monotonic
/// reading (for rates, so that a clock step never makes a bogus rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleTime {
    /// Wall-clock time of the sample.
    pub wall: Timestamp,
    /// Monotonic time of the sample, from any fixed origin.
    pub mono: std::time::Duration,
}

impl SampleTime {
    /// A sample time from explicit values (tests, replays).
    pub fn new(wall: Timestamp, mono: std::time::Duration) -> Self {
        SampleTime { wall, mono }
    }
}

/// What every event of a collector shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Common {
    pub host_name: String,
    pub period_ms: u64,
}

impl Common {
    /// An event with `event.module`, `event.dataset`, `metricset.name`, `metricset.period`,
    /// `service.type` and `host.name` set.
    pub(crate) fn event(&self, at: Timestamp, module: &str, metricset: &str) -> Event {
        let mut e = Event::new(at);
        put(&mut e, "event.module", module);
        put(&mut e, "event.dataset", format!("{module}.{metricset}"));
        put(&mut e, "metricset.name", metricset);
        put(&mut e, "metricset.period", self.period_ms);
        put(&mut e, "service.type", module);
        put(&mut e, "host.name", self.host_name.as_str());
        e
    }
}

/// Sets a field at a dotted path of this crate's own (no key of it contains a dot).
pub(crate) fn put(event: &mut Event, path: &str, value: impl Into<Value>) {
    set(event.fields_mut(), path, value);
}

/// The object at a dotted path below `map`, created where missing (a non-object value in
/// the way is replaced; this crate never builds such a path). Existing levels are found
/// without allocating.
pub(crate) fn obj<'m>(map: &'m mut Map<String, Value>, path: &str) -> &'m mut Map<String, Value> {
    let mut cur = map;
    for seg in path.split('.') {
        if !cur.get(seg).is_some_and(Value::is_object) {
            cur.insert(seg.to_owned(), Value::Object(Map::new()));
        }
        cur = match cur.get_mut(seg) {
            Some(Value::Object(next)) => next,
            _ => unreachable!("an object was put at {seg} just above"),
        };
    }
    cur
}

/// Sets a dotted path below `map`.
pub(crate) fn set(map: &mut Map<String, Value>, path: &str, value: impl Into<Value>) {
    match path.rsplit_once('.') {
        Some((parent, key)) => obj(map, parent).insert(key.to_owned(), value.into()),
        None => map.insert(path.to_owned(), value.into()),
    };
}

/// Rounds to four decimals, as Metricbeat does for its percentages.
pub(crate) fn round4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// `part / whole` rounded to four decimals, 0 when `whole` is 0.
pub(crate) fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        round4(part / whole)
    } else {
        0.0
    }
}

/// How much a cumulative counter grew between two samples.
///
/// A counter that went down either wrapped around or was reset (device re-created, driver
/// reloaded, reboot). It is taken as a 32-bit wrap only when that is the plausible
/// reading: the previous value fits in 32 bits and sat in the top quarter of that range,
/// the new one in the bottom quarter. Anything else is a reset, and gives `None`: no rate
/// for this period rather than a bogus one.
pub(crate) fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    const WRAP: u64 = 1 << 32;
    if cur >= prev {
        Some(cur - prev)
    } else if (WRAP / 4 * 3..WRAP).contains(&prev) && cur < WRAP / 4 {
        Some(WRAP - prev + cur)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_deltas_table() {
        let cases = [
            (10, 25, Some(15)),
            (7, 7, Some(0)),
            // A 32-bit counter wrapping: 2^32 - 10 → 5 is 15 more.
            ((1u64 << 32) - 10, 5, Some(15)),
            // A reset: nothing plausible to report.
            (1_000_000, 10, None),
            // A 64-bit counter going down is never a 32-bit wrap.
            (1u64 << 40, 5, None),
            // Low in the 32-bit range: a reset, not a wrap.
            (100_000, 99_999, None),
        ];
        for (prev, cur, want) in cases {
            assert_eq!(counter_delta(prev, cur), want, "{prev} -> {cur}");
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(round4(0.123_456), 0.1235);
        assert_eq!(round4(f64::NAN), 0.0);
        assert_eq!(ratio(1.0, 3.0), 0.3333);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
