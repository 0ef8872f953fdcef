//! What the `status` commands read from a running process: its `/metrics` endpoint,
//! summarized as what was read, shipped, discarded and lost, by reason; and the parts of
//! their output that every binary shares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use serde_json::{json, Map, Value};

#[cfg(feature = "relay")]
pub use logtide_kinesis::Lease;

use crate::http::{self, HttpConfig, METRICS_PATH, READYZ_PATH};
use crate::telemetry::{parse_samples, Sample};

/// The families a summary lists, with their heading and the label that splits them.
const TOTALS: [(&str, &str, &str); 6] = [
    ("events", "logtide_events_total", "stage"),
    (
        "discarded_events",
        "logtide_discarded_events_total",
        "reason",
    ),
    ("modified_events", "logtide_modified_events_total", "reason"),
    ("discarded_lines", "logtide_discarded_lines_total", "reason"),
    ("lost_bytes", "logtide_lost_bytes_total", "reason"),
    ("lost_files", "logtide_lost_files_total", "reason"),
];

/// The relay's saved checkpoints, per shard (with their owners when leases are shared
/// through DynamoDB), read without taking part.
#[cfg(feature = "relay")]
pub fn relay_checkpoints(config: &crate::RelayConfig) -> Result<Vec<Lease>, crate::Error> {
    logtide_kinesis::read_checkpoints(&config.source.kinesis).map_err(|source| {
        crate::Error::Kinesis {
            context: "source.kinesis checkpoints",
            source,
        }
    })
}

/// The metrics of a running process.
#[derive(Clone, Debug)]
pub struct Scraped {
    /// Where they came from (host:port).
    pub address: String,
    /// The samples.
    pub samples: Vec<Sample>,
    /// `/readyz`'s answer: ready or not, and its lines.
    pub ready: (bool, String),
}

/// The address to connect to for an endpoint configured as `config`: a wildcard listen
/// address is reached on loopback.
pub fn connect_address(config: &HttpConfig, default_port: u16) -> String {
    let host = match config.host.as_deref() {
        None | Some("0.0.0.0") => "127.0.0.1",
        Some("::") | Some("[::]") => "[::1]",
        Some(h) => h,
    };
    HttpConfig {
        host: Some(host.to_owned()),
        ..config.clone()
    }
    .address(default_port)
}

impl Scraped {
    /// Scrapes the endpoint that `config` describes; the error says why it could not
    /// (not enabled, nothing listening).
    pub fn fetch(config: &HttpConfig, default_port: u16) -> Result<Scraped, String> {
        let address = connect_address(config, default_port);
        if !config.enabled {
            return Err(format!(
                "the http endpoint is not enabled (http.enabled: true); not asking {address}"
            ));
        }
        let (status, text) = http::get(&address, METRICS_PATH)
            .map_err(|e| format!("{address}: {e} (is the process running?)"))?;
        if status != 200 {
            return Err(format!("{address}{METRICS_PATH}: HTTP {status}"));
        }
        let ready = match http::get(&address, READYZ_PATH) {
            Ok((status, body)) => (status == 200, body),
            Err(e) => (false, format!("{READYZ_PATH}: {e}\n")),
        };
        Ok(Scraped {
            address,
            samples: parse_samples(&text),
            ready,
        })
    }

    /// The values of family `name` by the value of `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == name) {
            if let Some(v) = s.labels.get(label) {
                *out.entry(v.clone()).or_default() += s.value;
            }
        }
        out
    }

    /// The retries per output and reason: `{"kinesis": {"timeout": 2.0}}`.
    pub fn retries(&self) -> BTreeMap<String, BTreeMap<String, f64>> {
        let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for s in self.family("logtide_output_retries_total") {
            if let (Some(o), Some(r)) = (s.labels.get("output"), s.labels.get("reason")) {
                *out.entry(o.clone())
                    .or_default()
                    .entry(r.clone())
                    .or_default() += s.value;
            }
        }
        out
    }

    /// Per output: the age of its oldest unacknowledged entry and how long it has gone
    /// without progress with work waiting, in seconds.
    pub fn outputs(&self) -> BTreeMap<String, (f64, f64)> {
        let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for s in self.family("logtide_output_oldest_unacked_seconds") {
            if let Some(o) = s.labels.get("output") {
                out.entry(o.clone()).or_default().0 = s.value;
            }
        }
        for s in self.family("logtide_output_stalled_seconds") {
            if let Some(o) = s.labels.get("output") {
                out.entry(o.clone()).or_default().1 = s.value;
            }
        }
        out
    }

    /// The samples of family `name`.
    pub fn family<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The totals as JSON: `{"events": {"read": n, …}, "discarded_events": {…}, …}`.
    pub fn totals_json(&self) -> Value {
        let mut out = Map::new();
        for (key, name, label) in TOTALS {
            let m: Map<String, Value> = self
                .by_label(name, label)
                .into_iter()
                .map(|(k, v)| (k, json!(v as u64)))
                .collect();
            out.insert(key.into(), Value::Object(m));
        }
        let retries: Map<String, Value> = self
            .retries()
            .into_iter()
            .map(|(o, by)| {
                let by: Map<String, Value> =
                    by.into_iter().map(|(r, n)| (r, json!(n as u64))).collect();
                (o, Value::Object(by))
            })
            .collect();
        out.insert("retries".into(), Value::Object(retries));
        let outputs: Map<String, Value> = self
            .outputs()
            .into_iter()
            .map(|(o, (oldest, stalled))| {
                let v = json!({"oldest_unacked_seconds": oldest, "stalled_seconds": stalled});
                (o, v)
            })
            .collect();
        out.insert("outputs".into(), Value::Object(outputs));
        out.insert("ready".into(), json!(self.ready.0));
        Value::Object(out)
    }

    /// The totals as text, a line per family that has values.
    pub fn totals_text(&self) -> String {
        let mut out = String::new();
        for (key, name, label) in TOTALS {
            let values = self.by_label(name, label);
            if values.is_empty() {
                continue;
            }
            let parts: Vec<String> = values
                .iter()
                .map(|(k, v)| format!("{k} {}", *v as u64))
                .collect();
            let _ = writeln!(out, "{}: {}", key.replace('_', " "), parts.join(", "));
        }
        let retries: Vec<String> = self
            .retries()
            .iter()
            .flat_map(|(o, by)| {
                by.iter()
                    .map(move |(r, n)| format!("{o} {r} {}", *n as u64))
            })
            .collect();
        if !retries.is_empty() {
            let _ = writeln!(out, "retries: {}", retries.join(", "));
        }
        for (o, (oldest, stalled)) in self.outputs() {
            let _ = write!(out, "{o}: oldest unacknowledged entry {oldest:.0}s old");
            if stalled >= 1.0 {
                let _ = write!(out, ", no progress for {stalled:.0}s");
            }
            out.push('\n');
        }
        let (ready, lines) = &self.ready;
        if *ready {
            out.push_str("ready: yes\n");
        } else {
            let _ = writeln!(out, "ready: no");
            for l in lines.lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        out
    }
}

/// `status --json`'s `process` object: the address and totals of the running process,
/// or why it could not be asked.
pub fn process_json(scraped: &Result<Scraped, String>) -> Value {
    match scraped {
        Ok(s) => json!({"address": s.address, "running": true, "totals": s.totals_json()}),
        Err(e) => json!({"running": false, "error": e}),
    }
}

/// `status`'s first line: `{name} at {address}: running`, or `{name}: not reachable:
/// {why}`.
pub fn write_process_line(
    out: &mut impl io::Write,
    name: &str,
    scraped: &Result<Scraped, String>,
) -> io::Result<()> {
    match scraped {
        Ok(s) => writeln!(out, "{name} at {}: running", s.address),
        Err(e) => writeln!(out, "{name}: not reachable: {e}"),
    }
}

/// `status`'s last lines when the process answered: a blank line, then its totals
/// ([`Scraped::totals_text`]).
pub fn write_totals(out: &mut impl io::Write, scraped: &Result<Scraped, String>) -> io::Result<()> {
    if let Ok(s) = scraped {
        writeln!(out)?;
        write!(out, "{}", s.totals_text())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpServer;
    use crate::telemetry::Telemetry;
    use std::sync::Arc;

    #[test]
    fn totals_of_a_running_endpoint() {
        let t = Arc::new(Telemetry::new());
        t.add_events("read", 10);
        t.add_events("shipped", 7);
        t.add_discarded_events("processor_drop", 3);
        t.add_file_lost_bytes("/l/a.log", "deleted_before_read", 120);
        t.set_ready("output", Err("kinesis: throttled".into()));
        t.add_retries("kinesis", "timeout", 2);
        t.add_retries("kinesis", "network", 1);
        let now = logtide_event::Timestamp::now();
        let written =
            logtide_event::Timestamp::new(now.unix_secs() - 3600, now.subsec_nanos()).unwrap();
        t.output_busy("kinesis", 10, Some(written));
        let server = HttpServer::start("127.0.0.1:0", t).unwrap();
        let config = HttpConfig {
            enabled: true,
            host: Some("0.0.0.0".into()),
            port: Some(server.address().port()),
            ..HttpConfig::default()
        };
        let s = Scraped::fetch(&config, 1).unwrap();
        assert_eq!(
            s.totals_text(),
            "events: read 10, shipped 7\ndiscarded events: processor_drop 3\n\
             lost bytes: deleted_before_read 120\nlost files: deleted_before_read 1\n\
             retries: kinesis network 1, kinesis timeout 2\n\
             kinesis: oldest unacknowledged entry 3600s old\n\
             ready: no\n  output: not ready: kinesis: throttled\n"
        );
        let mut totals = s.totals_json();
        let age = totals["outputs"]["kinesis"]["oldest_unacked_seconds"]
            .as_f64()
            .unwrap();
        assert!((3600.0..3700.0).contains(&age), "{age}");
        totals["outputs"]["kinesis"]["oldest_unacked_seconds"] = json!(3600);
        totals["outputs"]["kinesis"]["stalled_seconds"] = json!(0);
        assert_eq!(
            totals,
            json!({"events": {"read": 10, "shipped": 7}, "discarded_events": {"processor_drop": 3},
                   "modified_events": {}, "discarded_lines": {},
                   "lost_bytes": {"deleted_before_read": 120},
                   "lost_files": {"deleted_before_read": 1},
                   "retries": {"kinesis": {"network": 1, "timeout": 2}},
                   "outputs": {"kinesis": {"oldest_unacked_seconds": 3600, "stalled_seconds": 0}},
                   "ready": false})
        );
    }

    #[test]
    fn the_process_lines_of_status() {
        let absent: Result<Scraped, String> = Err("127.0.0.1:5066: refused".into());
        let mut out = Vec::new();
        write_process_line(&mut out, "logtide-x", &absent).unwrap();
        write_totals(&mut out, &absent).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "logtide-x: not reachable: 127.0.0.1:5066: refused\n"
        );
        assert_eq!(
            process_json(&absent),
            json!({"running": false, "error": "127.0.0.1:5066: refused"})
        );

        let running = Ok(Scraped {
            address: "127.0.0.1:5066".into(),
            samples: parse_samples("logtide_events_total{stage=\"read\"} 3\n"),
            ready: (true, String::new()),
        });
        let mut out = Vec::new();
        write_process_line(&mut out, "logtide-x", &running).unwrap();
        write_totals(&mut out, &running).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "logtide-x at 127.0.0.1:5066: running\n\nevents: read 3\nready: yes\n"
        );
        let totals = running.as_ref().unwrap().totals_json();
        assert_eq!(
            process_json(&running),
            json!({"address": "127.0.0.1:5066", "running": true, "totals": totals})
        );
    }

    #[test]
    fn an_endpoint_that_is_off_or_absent_says_so() {
        let off = HttpConfig::default();
        let err = Scraped::fetch(&off, 5066).unwrap_err();
        assert!(err.contains("http.enabled: true"), "{err}");
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let absent = HttpConfig {
            enabled: true,
            host: None,
            port: Some(port),
            ..HttpConfig::default()
        };
        let err = Scraped::fetch(&absent, 5066).unwrap_err();
        assert!(err.contains("is the process running?"), "{err}");
    }
}
