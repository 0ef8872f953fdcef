//! `/proc/stat`: CPU time per state, for the whole host and per core.

use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{put, round4, Common};
use crate::{Error, Result};

/// Time spent in each state since boot, in clock ticks (USER_HZ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Normal processes in user mode (guest time included, as the kernel counts it).
    pub user: u64,
    /// Niced processes in user mode.
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle while waiting for I/O.
    pub iowait: u64,
    /// Servicing hardware interrupts.
    pub irq: u64,
    /// Servicing software interrupts.
    pub softirq: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

impl CpuTimes {
    /// All states added up (guest time is already part of `user` and `nice`).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    fn states(&self) -> [(&'static str, u64); 8] {
        [
            ("user", self.user),
            ("system", self.system),
            ("nice", self.nice),
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("softirq", self.softirq),
            ("steal", self.steal),
        ]
    }
}

/// The CPU lines of `/proc/stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStat {
    /// The `cpu` line: all cores together.
    pub total: CpuTimes,
    /// The `cpuN` lines, in file order: (N, times).
    pub cores: Vec<(u32, CpuTimes)>,
}

/// Parses the `cpu` and `cpuN` lines of `/proc/stat` (`origin` names the file in errors).
pub fn parse_stat(text: &str, origin: &Path) -> Result<CpuStat> {
    let mut stat = CpuStat::default();
    let mut seen_total = false;
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let (label, values) = rest.split_once(' ').unwrap_or((rest, ""));
        let times = parse_times(values).map_err(|m| Error::parse(origin, i + 1, m))?;
        if label.is_empty() {
            stat.total = times;
            seen_total = true;
        } else {
            let id = label
                .parse::<u32>()
                .map_err(|_| Error::parse(origin, i + 1, format!("bad cpu label cpu{label}")))?;
            stat.cores.push((id, times));
        }
    }
    if !seen_total {
        return Err(Error::parse(origin, 0, "no cpu line"));
    }
    Ok(stat)
}

fn parse_times(values: &str) -> Result<CpuTimes, String> {
    let mut v = [0u64; 8];
    let mut n = 0;
    for (slot, word) in v.iter_mut().zip(values.split_ascii_whitespace()) {
        *slot = word
            .parse()
            .map_err(|_| format!("cpu time {word:?} is not a number"))?;
        n += 1;
    }
    // user nice system idle are there since Linux 2.4; later fields may be absent.
    if n < 4 {
        return Err(format!("expected at least 4 cpu times, found {n}"));
    }
    Ok(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
    })
}

/// Share of time in each state between two samples, as Metricbeat computes it: the
/// increase of a state divided by the increase of all states, times `cores` (so the
/// non-normalized values of a host reach `cores`, the normalized ones 1). `total` is
/// everything but idle and iowait.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuShares {
    /// (state name, share) for user, system, nice, idle, iowait, irq, softirq, steal.
    pub states: [(&'static str, f64); 8],
    /// Non-idle share.
    pub total: f64,
}

/// The shares between `prev` and `cur`, or `None` when no time passed or the counters
/// went back (a reboot between samples).
pub fn cpu_shares(prev: &CpuTimes, cur: &CpuTimes, cores: f64) -> Option<CpuShares> {
    if cur.total() < prev.total() {
        return None;
    }
    // Per-core iowait may go backwards (the kernel estimates it); such a state counts 0.
    let prev_states = prev.states();
    let mut deltas = [0u64; 8];
    for (d, ((_, p), (_, c))) in deltas.iter_mut().zip(prev_states.iter().zip(cur.states())) {
        *d = c.saturating_sub(*p);
    }
    let span: u64 = deltas.iter().sum();
    if span == 0 {
        return None;
    }
    let mut states = cur.states().map(|(name, _)| (name, 0.0));
    for ((_, share), d) in states.iter_mut().zip(deltas) {
        *share = round4(d as f64 / span as f64 * cores);
    }
    let (idle, iowait) = (states[3].1, states[4].1);
    let total = round4((cores - idle - iowait).max(0.0));
    Some(CpuShares { states, total })
}

/// The `cpu` event (all cores) and one `core` event per core, from two samples.
pub(crate) fn cpu_events(
    common: &Common,
    at: Timestamp,
    prev: &CpuStat,
    cur: &CpuStat,
    out: &mut Vec<Event>,
) {
    let cores = cur.cores.len().max(1) as f64;
    if let (Some(pct), Some(norm)) = (
        cpu_shares(&prev.total, &cur.total, cores),
        cpu_shares(&prev.total, &cur.total, 1.0),
    ) {
        let mut e = common.event(at, "system", "cpu");
        put(&mut e, "system.cpu.cores", cur.cores.len());
        for ((name, p), (_, n)) in pct.states.iter().zip(norm.states) {
            put(&mut e, &format!("system.cpu.{name}.pct"), *p);
            put(&mut e, &format!("system.cpu.{name}.norm.pct"), n);
        }
        put(&mut e, "system.cpu.total.pct", pct.total);
        put(&mut e, "system.cpu.total.norm.pct", norm.total);
        put(&mut e, "host.cpu.usage", norm.total);
        out.push(e);
    }
    for (id, times) in &cur.cores {
        let Some((_, before)) = prev.cores.iter().find(|(p, _)| p == id) else {
            continue;
        };
        let Some(pct) = cpu_shares(before, times, 1.0) else {
            continue;
        };
        let mut e = common.event(at, "system", "core");
        put(&mut e, "system.core.id", *id);
        for (name, p) in pct.states {
            put(&mut e, &format!("system.core.{name}.pct"), p);
        }
        put(&mut e, "system.core.total.pct", pct.total);
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(v: [u64; 8]) -> CpuTimes {
        CpuTimes {
            user: v[0],
            nice: v[1],
            system: v[2],
            idle: v[3],
            iowait: v[4],
            irq: v[5],
            softirq: v[6],
            steal: v[7],
        }
    }

    #[test]
    fn parses_cpu_lines_and_skips_others() {
        let text = "cpu  10 1 5 100 4 0 2 3 0 0\ncpu0 5 1 2 50 2 0 1 1 0 0\ncpu1 5 0 3 50 2 0 1 2 0 0\nintr 1 2 3\nctxt 5\n";
        let stat = parse_stat(text, Path::new("stat")).unwrap();
        assert_eq!(stat.total, times([10, 1, 5, 100, 4, 0, 2, 3]));
        assert_eq!(stat.cores.len(), 2);
        assert_eq!(stat.cores[1], (1, times([5, 0, 3, 50, 2, 0, 1, 2])));
        // Linux 2.4: four fields only.
        let old = parse_stat("cpu 1 2 3 4\n", Path::new("stat")).unwrap();
        assert_eq!(old.total, times([1, 2, 3, 4, 0, 0, 0, 0]));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let cases = [
            ("cpu 1 2 x 4\n", "stat:1: cpu time \"x\" is not a number"),
            ("cpu 1 2 3 4\ncpuX 1 2 3 4\n", "stat:2: bad cpu label cpuX"),
            (
                "cpu 1 2\n",
                "stat:1: expected at least 4 cpu times, found 2",
            ),
            ("intr 1\n", "stat:0: no cpu line"),
        ];
        for (text, want) in cases {
            let err = parse_stat(text, Path::new("stat")).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn shares_follow_metricbeat() {
        let prev = times([100, 0, 50, 800, 50, 0, 0, 0]);
        let cur = times([160, 0, 70, 940, 70, 0, 10, 0]);
        // deltas: user 60, system 20, idle 140, iowait 20, softirq 10 → 250 in all.
        let s = cpu_shares(&prev, &cur, 2.0).unwrap();
        assert_eq!(s.states[0], ("user", 0.48));
        assert_eq!(s.states[1], ("system", 0.16));
        assert_eq!(s.states[3], ("idle", 1.12));
        assert_eq!(s.states[4], ("iowait", 0.16));
        assert_eq!(s.states[6], ("softirq", 0.08));
        assert_eq!(s.total, 0.72);
        let n = cpu_shares(&prev, &cur, 1.0).unwrap();
        assert_eq!(n.total, 0.36);
        // No time passed, or a reboot: nothing.
        assert!(cpu_shares(&cur, &cur, 2.0).is_none());
        assert!(cpu_shares(&cur, &prev, 2.0).is_none());
        // An iowait that went backwards counts as 0, not as a huge number.
        let back = times([160, 0, 70, 960, 60, 0, 10, 0]);
        let s = cpu_shares(&cur, &back, 1.0).unwrap();
        assert_eq!(s.states[3], ("idle", 1.0));
        assert_eq!(s.states[4], ("iowait", 0.0));
        assert_eq!(s.total, 0.0);
    }
}
