//! `/proc/<pid>/net/dev`: network interface counters.

use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{counter_delta, put, round4, Common};
use crate::{Error, Result};

/// The counters of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub in_bytes: u64,
    /// Packets received.
    pub in_packets: u64,
    /// Receive errors.
    pub in_errors: u64,
    /// Received packets dropped.
    pub in_dropped: u64,
    /// Bytes sent.
    pub out_bytes: u64,
    /// Packets sent.
    pub out_packets: u64,
    /// Send errors.
    pub out_errors: u64,
    /// Outgoing packets dropped.
    pub out_dropped: u64,
}

impl NetDev {
    fn counters(&self) -> [(&'static str, &'static str, u64); 8] {
        [
            ("in", "bytes", self.in_bytes),
            ("in", "packets", self.in_packets),
            ("in", "errors", self.in_errors),
            ("in", "dropped", self.in_dropped),
            ("out", "bytes", self.out_bytes),
            ("out", "packets", self.out_packets),
            ("out", "errors", self.out_errors),
            ("out", "dropped", self.out_dropped),
        ]
    }
}

/// Parses `net/dev` (`origin` names the file in errors): two header lines, then one line
/// per interface with 8 receive and 8 transmit counters.
pub fn parse_netdev(text: &str, origin: &Path) -> Result<Vec<NetDev>> {
    let mut devs = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| Error::parse(origin, i + 1, "no ':' after the interface name"))?;
        let name = name.trim();
        let mut v = [0u64; 16];
        let mut n = 0;
        for (slot, word) in v.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = word.parse().map_err(|_| {
                Error::parse(
                    origin,
                    i + 1,
                    format!("{name}: counter {word:?} is not a number"),
                )
            })?;
            n += 1;
        }
        if n < 16 {
            return Err(Error::parse(
                origin,
                i + 1,
                format!("{name}: expected 16 counters, found {n}"),
            ));
        }
        devs.push(NetDev {
            name: name.to_owned(),
            in_bytes: v[0],
            in_packets: v[1],
            in_errors: v[2],
            in_dropped: v[3],
            out_bytes: v[8],
            out_packets: v[9],
            out_errors: v[10],
            out_dropped: v[11],
        });
    }
    Ok(devs)
}

/// The `network` event of one interface. With the interface's previous sample and the
/// seconds between the two, it also carries the increase over the period (Metricbeat's
/// `host.network.{ingress,egress}.{bytes,packets}`) and per-second rates
/// (`system.network.{in,out}.per_sec.*`). Returns whether a counter reset left those out.
pub(crate) fn network_event(
    common: &Common,
    at: Timestamp,
    cur: &NetDev,
    prev: Option<(&NetDev, f64)>,
    out: &mut Vec<Event>,
) -> bool {
    let mut e = common.event(at, "system", "network");
    put(&mut e, "system.network.name", cur.name.as_str());
    for (dir, what, v) in cur.counters() {
        put(&mut e, &format!("system.network.{dir}.{what}"), v);
    }
    let mut reset = false;
    if let Some((p, secs)) = prev.filter(|(_, s)| *s > 0.0) {
        let deltas: Option<Vec<u64>> = p
            .counters()
            .iter()
            .zip(cur.counters())
            .map(|((_, _, a), (_, _, b))| counter_delta(*a, b))
            .collect();
        match deltas {
            None => reset = true,
            Some(d) => {
                for ((dir, what, _), delta) in cur.counters().iter().zip(&d) {
                    put(
                        &mut e,
                        &format!("system.network.{dir}.per_sec.{what}"),
                        round4(*delta as f64 / secs),
                    );
                }
                put(&mut e, "host.network.ingress.bytes", d[0]);
                put(&mut e, "host.network.ingress.packets", d[1]);
                put(&mut e, "host.network.egress.bytes", d[4]);
                put(&mut e, "host.network.egress.packets", d[5]);
            }
        }
    }
    out.push(e);
    reset
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    #[test]
    fn parses_and_names_bad_lines() {
        let text = format!("{HEADER}  eth0: 335372927   21590    0    0    0     0          0         0  1469013   14987    0    0    0     0       0          0\n");
        let d = parse_netdev(&text, Path::new("dev")).unwrap();
        assert_eq!(d[0].name, "eth0");
        assert_eq!(d[0].in_bytes, 335_372_927);
        assert_eq!(d[0].out_packets, 14_987);
        let err = parse_netdev(&format!("{HEADER}eth0 1 2\n"), Path::new("dev")).unwrap_err();
        assert_eq!(err.to_string(), "dev:3: no ':' after the interface name");
        let err = parse_netdev(&format!("{HEADER}eth0: 1 2\n"), Path::new("dev")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dev:3: eth0: expected 16 counters, found 2"
        );
    }
}
