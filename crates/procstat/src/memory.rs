//! `/proc/meminfo`: memory and swap.

use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{put, ratio, Common};
use crate::{Error, Result};

/// The `/proc/meminfo` values the memory metricset uses, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meminfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemFree`.
    pub free: u64,
    /// `MemAvailable` (Linux 3.14+).
    pub available: Option<u64>,
    /// `Buffers`.
    pub buffers: u64,
    /// `Cached`.
    pub cached: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

impl Meminfo {
    /// Memory available to start new work without swapping: `MemAvailable`, or free plus
    /// buffers and page cache on kernels that do not report it.
    pub fn actual_free(&self) -> u64 {
        self.available
            .unwrap_or(self.free + self.buffers + self.cached)
            .min(self.total)
    }
}

/// Parses `/proc/meminfo` (`origin` names the file in errors). `MemTotal` and `MemFree`
/// are required; lines the metricset does not use are not looked at.
pub fn parse_meminfo(text: &str, origin: &Path) -> Result<Meminfo> {
    let mut m = Meminfo::default();
    let (mut total, mut free) = (false, false);
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => {
                total = true;
                &mut m.total
            }
            "MemFree" => {
                free = true;
                &mut m.free
            }
            "MemAvailable" => m.available.insert(0),
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let mut words = rest.split_ascii_whitespace();
        let value = words
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .ok_or_else(|| Error::parse(origin, i + 1, format!("{key}: value is not a number")))?;
        *slot = match words.next() {
            Some("kB") => value.saturating_mul(1024),
            None => value,
            Some(unit) => {
                return Err(Error::parse(
                    origin,
                    i + 1,
                    format!("{key}: unknown unit {unit:?}"),
                ))
            }
        };
    }
    if !total || !free {
        return Err(Error::parse(origin, 0, "MemTotal or MemFree is missing"));
    }
    Ok(m)
}

/// The `memory` event.
pub(crate) fn memory_event(common: &Common, at: Timestamp, m: &Meminfo) -> Event {
    let mut e = common.event(at, "system", "memory");
    let total = m.total as f64;
    let used = m.total.saturating_sub(m.free);
    let actual_free = m.actual_free();
    let actual_used = m.total - actual_free;
    put(&mut e, "system.memory.total", m.total);
    put(&mut e, "system.memory.free", m.free);
    put(&mut e, "system.memory.cached", m.cached);
    put(&mut e, "system.memory.used.bytes", used);
    put(&mut e, "system.memory.used.pct", ratio(used as f64, total));
    put(&mut e, "system.memory.actual.free", actual_free);
    put(&mut e, "system.memory.actual.used.bytes", actual_used);
    put(
        &mut e,
        "system.memory.actual.used.pct",
        ratio(actual_used as f64, total),
    );
    let swap_used = m.swap_total.saturating_sub(m.swap_free);
    put(&mut e, "system.memory.swap.total", m.swap_total);
    put(&mut e, "system.memory.swap.free", m.swap_free);
    put(&mut e, "system.memory.swap.used.bytes", swap_used);
    put(
        &mut e,
        "system.memory.swap.used.pct",
        ratio(swap_used as f64, m.swap_total as f64),
    );
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_falls_back_without_memavailable() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n";
        let m = parse_meminfo(text, Path::new("meminfo")).unwrap();
        assert_eq!(m.total, 1_024_000);
        assert_eq!(m.available, None);
        assert_eq!(m.actual_free(), 350 * 1024);
        let with = parse_meminfo(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n",
            Path::new("meminfo"),
        )
        .unwrap();
        assert_eq!(with.actual_free(), 600 * 1024);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: lots kB\n", Path::new("m")).unwrap_err();
        assert_eq!(err.to_string(), "m:2: MemFree: value is not a number");
        let err = parse_meminfo("MemTotal: 1000 MB\nMemFree: 1 kB\n", Path::new("m")).unwrap_err();
        assert_eq!(err.to_string(), "m:1: MemTotal: unknown unit \"MB\"");
        let err = parse_meminfo("MemTotal: 1000 kB\n", Path::new("m")).unwrap_err();
        assert_eq!(err.to_string(), "m:0: MemTotal or MemFree is missing");
    }
}
