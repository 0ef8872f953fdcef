//! `/proc/diskstats`: block device I/O counters and iostat-style rates.

use std::path::Path;

use logtide_event::{Event, Timestamp};

use crate::fields::{counter_delta, put, round4, Common};
use crate::{Error, Result};

/// Bytes per sector in `/proc/diskstats`, whatever the device's real sector size.
const SECTOR: u64 = 512;

/// The counters of one device (Documentation/admin-guide/iostats.rst).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStat {
    /// Device name (`sda`, `nvme0n1p1`).
    pub name: String,
    /// Reads completed.
    pub reads: u64,
    /// Reads merged.
    pub reads_merged: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_ms: u64,
    /// Writes completed.
    pub writes: u64,
    /// Writes merged.
    pub writes_merged: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_ms: u64,
    /// I/Os currently in progress (a gauge).
    pub in_progress: u64,
    /// Milliseconds spent doing I/O.
    pub io_ms: u64,
    /// Weighted milliseconds spent doing I/O.
    pub weighted_io_ms: u64,
}

/// Parses `/proc/diskstats` (`origin` names the file in errors). Every line of a current
/// kernel has at least 14 fields; the 7-field partition lines of Linux 2.6.0–2.6.24 are
/// refused.
pub fn parse_diskstats(text: &str, origin: &Path) -> Result<Vec<DiskStat>> {
    let mut disks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words.len() < 14 {
            return Err(Error::parse(
                origin,
                i + 1,
                format!("expected at least 14 fields, found {}", words.len()),
            ));
        }
        let mut v = [0u64; 11];
        for (slot, word) in v.iter_mut().zip(&words[3..14]) {
            *slot = word.parse().map_err(|_| {
                Error::parse(
                    origin,
                    i + 1,
                    format!("{}: counter {word:?} is not a number", words[2]),
                )
            })?;
        }
        disks.push(DiskStat {
            name: words[2].to_owned(),
            reads: v[0],
            reads_merged: v[1],
            sectors_read: v[2],
            read_ms: v[3],
            writes: v[4],
            writes_merged: v[5],
            sectors_written: v[6],
            write_ms: v[7],
            in_progress: v[8],
            io_ms: v[9],
            weighted_io_ms: v[10],
        });
    }
    Ok(disks)
}

/// The increases of a device's counters over a period; `None` if any counter was reset.
struct DiskDelta {
    reads: u64,
    reads_merged: u64,
    sectors_read: u64,
    read_ms: u64,
    writes: u64,
    writes_merged: u64,
    sectors_written: u64,
    write_ms: u64,
    io_ms: u64,
    weighted_io_ms: u64,
}

fn disk_delta(p: &DiskStat, c: &DiskStat) -> Option<DiskDelta> {
    Some(DiskDelta {
        reads: counter_delta(p.reads, c.reads)?,
        reads_merged: counter_delta(p.reads_merged, c.reads_merged)?,
        sectors_read: counter_delta(p.sectors_read, c.sectors_read)?,
        read_ms: counter_delta(p.read_ms, c.read_ms)?,
        writes: counter_delta(p.writes, c.writes)?,
        writes_merged: counter_delta(p.writes_merged, c.writes_merged)?,
        sectors_written: counter_delta(p.sectors_written, c.sectors_written)?,
        write_ms: counter_delta(p.write_ms, c.write_ms)?,
        io_ms: counter_delta(p.io_ms, c.io_ms)?,
        weighted_io_ms: counter_delta(p.weighted_io_ms, c.weighted_io_ms)?,
    })
}

fn per(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        round4(a as f64 / b as f64)
    }
}

/// The `diskio` event of one device. With the device's previous sample and the seconds
/// between the two, it also carries iostat's rates (`system.diskio.iostat.*`) and the
/// bytes moved in the period (`host.disk.*.bytes`). Returns whether a counter reset
/// left the rates out.
pub(crate) fn diskio_event(
    common: &Common,
    at: Timestamp,
    cur: &DiskStat,
    prev: Option<(&DiskStat, f64)>,
    out: &mut Vec<Event>,
) -> bool {
    let mut e = common.event(at, "system", "diskio");
    put(&mut e, "system.diskio.name", cur.name.as_str());
    put(&mut e, "system.diskio.read.count", cur.reads);
    put(
        &mut e,
        "system.diskio.read.bytes",
        cur.sectors_read.saturating_mul(SECTOR),
    );
    put(&mut e, "system.diskio.read.time", cur.read_ms);
    put(&mut e, "system.diskio.write.count", cur.writes);
    put(
        &mut e,
        "system.diskio.write.bytes",
        cur.sectors_written.saturating_mul(SECTOR),
    );
    put(&mut e, "system.diskio.write.time", cur.write_ms);
    put(&mut e, "system.diskio.io.time", cur.io_ms);
    put(&mut e, "system.diskio.io.ops", cur.in_progress);
    let mut reset = false;
    if let Some((p, secs)) = prev.filter(|(_, s)| *s > 0.0) {
        match disk_delta(p, cur) {
            None => reset = true,
            Some(d) => {
                let rate = |v: u64| round4(v as f64 / secs);
                let ios = d.reads + d.writes;
                let io = "system.diskio.iostat";
                put(
                    &mut e,
                    &format!("{io}.read.request.merges_per_sec"),
                    rate(d.reads_merged),
                );
                put(
                    &mut e,
                    &format!("{io}.write.request.merges_per_sec"),
                    rate(d.writes_merged),
                );
                put(&mut e, &format!("{io}.read.request.per_sec"), rate(d.reads));
                put(
                    &mut e,
                    &format!("{io}.write.request.per_sec"),
                    rate(d.writes),
                );
                put(
                    &mut e,
                    &format!("{io}.read.per_sec.bytes"),
                    rate(d.sectors_read * SECTOR),
                );
                put(
                    &mut e,
                    &format!("{io}.write.per_sec.bytes"),
                    rate(d.sectors_written * SECTOR),
                );
                put(&mut e, &format!("{io}.read.await"), per(d.read_ms, d.reads));
                put(
                    &mut e,
                    &format!("{io}.write.await"),
                    per(d.write_ms, d.writes),
                );
                put(
                    &mut e,
                    &format!("{io}.await"),
                    per(d.read_ms + d.write_ms, ios),
                );
                put(
                    &mut e,
                    &format!("{io}.request.avg_size"),
                    per(d.sectors_read + d.sectors_written, ios),
                );
                put(
                    &mut e,
                    &format!("{io}.queue.avg_size"),
                    round4(d.weighted_io_ms as f64 / (secs * 1000.0)),
                );
                put(&mut e, &format!("{io}.service_time"), per(d.io_ms, ios));
                put(
                    &mut e,
                    &format!("{io}.busy"),
                    round4((d.io_ms as f64 / (secs * 1000.0) * 100.0).min(100.0)),
                );
                put(&mut e, "host.disk.read.bytes", d.sectors_read * SECTOR);
                put(&mut e, "host.disk.write.bytes", d.sectors_written * SECTOR);
            }
        }
    }
    out.push(e);
    reset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_current_and_refuses_short_lines() {
        let text = " 254       0 vda 1178885 53863 74339898 1651465 1201615 231783 67518072 316009 0 137176 2012415 353396 50 23298072 28362 296156 16578\n   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0\n";
        let d = parse_diskstats(text, Path::new("diskstats")).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "vda");
        assert_eq!(d[0].sectors_written, 67_518_072);
        assert_eq!(d[0].weighted_io_ms, 2_012_415);
        assert_eq!(d[1].name, "loop0");
        let err = parse_diskstats("   8 1 sda1 1 2 3 4\n", Path::new("ds")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ds:1: expected at least 14 fields, found 7"
        );
        let err =
            parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 -1 11\n", Path::new("ds")).unwrap_err();
        assert_eq!(err.to_string(), "ds:1: sda: counter \"-1\" is not a number");
    }
}
