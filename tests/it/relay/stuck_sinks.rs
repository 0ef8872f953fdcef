//! What an operator sees while one of the relay's sinks is unreachable. Events go into a
//! Kinesis stream on moto_server all along; the relay writes them to S3 (moto_server) and
//! to Elasticsearch (noida-db), each behind a proxy. First S3, then Elasticsearch, accepts
//! connections and never answers for about 25 s, then resets them for a few seconds,
//! then passes; the relay is SIGKILLed and started again in the middle of the S3 outage.
//! - `/readyz` turns 503 within 20 s of the outage's start and names the sink, and
//!   `logtide-relay status` says the same;
//! - `logtide_output_retries_total` counts the requests sent again, per sink;
//! - the age of the sink's oldest unacknowledged entry, from the entries, goes on growing
//!   across the restart;
//! - at every scrape `read` ≥ `shipped` + discarded, and once everything is stored they
//!   are equal and every component is ready again;
//! - every event is in S3 and in Elasticsearch.
//!
//! The configuration is the default but for the endpoints, the index name, and S3's
//! `max_age` (2s instead of 60s, so that objects are uploaded within the test's time).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::relay_bin;
use crate::support::{get_or_0, scrape};
use logtide_event::{Event, Timestamp};
use logtide_kinesis::{KinesisConfig, Sink};
use logtide_pipeline::http::{get, READYZ_PATH};
use logtide_testkit::{
    free_port, Fault, FaultProxy, KinesisTool, MotoServer, S3Tool, SearchKind, SearchServer,
    SearchTool, AWS_ENV,
};
use serde_json::{json, Value};

const INDEX: &str = "relay-stuck";

/// Puts about `rate` events a second into the stream, stamped with the time they are
/// made, until `stop`; returns how many.
fn producer(
    moto_endpoint: String,
    dir: std::path::PathBuf,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let mut config = KinesisConfig::new("logs");
    config.endpoint = Some(moto_endpoint);
    config.region = Some("us-east-1".into());
    config.dead_letter_path = dir.join("producer-dl");
    let mut sink = Sink::connect(&config).unwrap();
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = started.elapsed().as_millis() as u64 * rate / 1000;
        let events: Vec<Event> = (n..due)
            .map(|i| {
                let mut e = Event::new(Timestamp::now());
                e.insert("message", json!(format!("line {i:06}"))).unwrap();
                e.insert("container.id", json!(format!("c{}", i % 4)))
                    .unwrap();
                e.insert("n", json!(i)).unwrap();
                e
            })
            .collect();
        if !events.is_empty() {
            sink.send(&events).unwrap();
            n = due;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    n
}

/// read ≥ shipped + discarded at every scrape; returns the three.
fn check_identity(m: &BTreeMap<String, f64>) -> (f64, f64, f64) {
    let read = get_or_0(m, "logtide_events_total{stage=read}");
    let shipped = get_or_0(m, "logtide_events_total{stage=shipped}");
    let discarded: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("logtide_discarded_events_total{"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        read >= shipped + discarded,
        "a scrape found read {read} < shipped {shipped} + discarded {discarded}"
    );
    (read, shipped, discarded)
}

struct Relay {
    child: Child,
    log: std::path::PathBuf,
    address: String,
}

impl Relay {
    fn start(config: &Path, log: std::path::PathBuf, address: &str) -> Relay {
        let child = Command::new(relay_bin())
            .args(["run", "--config"])
            .arg(config)
            .envs(AWS_ENV)
            .env("LOGTIDE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Relay {
            child,
            log,
            address: address.to_owned(),
        }
    }

    /// Polls until `done` returns `Some`, scraping and checking the counters between polls.
    fn poll<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "logtide-relay exited ({status}) while waiting for {what}:\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Some(m) = scrape(&self.address) {
                check_identity(&m);
            }
            if let Some(t) = done(&self.address) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: /readyz {:?}, /metrics {:?}\n{}",
                get(&self.address, READYZ_PATH).ok(),
                scrape(&self.address),
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn ready_all(address: &str) -> Option<()> {
    let (status, body) = get(address, READYZ_PATH).ok()?;
    (status == 200 && body == "elasticsearch: ok\ns3: ok\nsource: ok\n").then_some(())
}

/// Waits for `/readyz` to answer 503 naming `sink`; returns the body and how long it
/// took from `since`.
fn wait_not_ready(relay: &mut Relay, sink: &str, since: Instant) -> (String, Duration) {
    let line = format!("{sink}: not ready: {sink}: no progress for");
    let body = relay.poll(&format!("{sink} not ready"), Duration::from_secs(25), |a| {
        get(a, READYZ_PATH)
            .ok()
            .filter(|(s, b)| *s == 503 && b.contains(&line))
            .map(|(_, b)| b)
    });
    (body, since.elapsed())
}

fn status_text(config: &Path) -> String {
    let out = Command::new(relay_bin())
        .args(["status", "--config"])
        .arg(config)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oldest(address: &str, sink: &str) -> Option<f64> {
    let m = scrape(address)?;
    Some(get_or_0(
        &m,
        &format!("logtide_output_oldest_unacked_seconds{{output={sink}}}"),
    ))
}

fn retries(address: &str, sink: &str, reason: &str) -> f64 {
    scrape(address).map_or(0.0, |m| {
        get_or_0(
            &m,
            &format!("logtide_output_retries_total{{output={sink},reason={reason}}}"),
        )
    })
}

#[test]
fn readiness_retries_and_ages_tell_the_truth_while_a_sink_is_away() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let search = SearchServer::start(SearchKind::NoidaDb);
    KinesisTool::new(&moto.endpoint()).create_stream("logs", 2);
    let s3 = S3Tool::new(&moto.endpoint());
    s3.create_bucket("archive");
    let s3_proxy = FaultProxy::start(moto.port(), |_| Fault::Pass);
    let es_proxy = FaultProxy::start(search.port(), |_| Fault::Pass);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("relay.yml");
    fs::write(
        &config,
        format!(
            "source.kinesis:
  stream_name: logs
  region: us-east-1
  endpoint: {moto}
  dead_letter_path: {dl}
  checkpoint:
    path: {cp}
sinks:
  s3:
    bucket: archive
    region: us-east-1
    endpoint: {s3}
    max_age: 2s
  elasticsearch:
    hosts: [\"{es}\"]
    index: {INDEX}
http.enabled: true
http.port: {port}
",
            moto = moto.endpoint(),
            s3 = s3_proxy.endpoint(),
            es = es_proxy.endpoint(),
            dl = dir.path().join("dl").display(),
            cp = dir.path().join("cp").display(),
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producing = {
        let (endpoint, dir, stop) = (moto.endpoint(), dir.path().to_owned(), stop.clone());
        std::thread::spawn(move || producer(endpoint, dir, 200, stop))
    };
    let mut relay = Relay::start(&config, dir.path().join("relay-1.log"), &address);
    relay.poll("ready, with objects stored", Duration::from_secs(40), |a| {
        ready_all(a)?;
        let m = scrape(a)?;
        (get_or_0(&m, "logtide_events_total{stage=shipped}") > 500.0).then_some(())
    });

    // S3 never answers.
    s3_proxy.set_plan(|_| Fault::Blackhole);
    let outage = Instant::now();
    let (body, s3_flip) = wait_not_ready(&mut relay, "s3", outage);
    assert!(s3_flip <= Duration::from_secs(20), "{s3_flip:?}\n{body}");
    assert!(
        body.contains("entries waiting, the oldest written"),
        "{body}"
    );
    let status = status_text(&config);
    assert!(
        status.contains("ready: no") && status.contains("s3: no progress for"),
        "{status}"
    );
    let s3_age_before = oldest(&address, "s3").unwrap();
    assert!(s3_age_before >= 10.0, "{s3_age_before}");

    // Killed and started again while S3 is still away.
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let mut relay = Relay::start(&config, dir.path().join("relay-2.log"), &address);
    let s3_age_after = relay.poll("the age after the restart", Duration::from_secs(20), |a| {
        oldest(a, "s3").filter(|&age| age > s3_age_before)
    });
    std::thread::sleep(Duration::from_secs(25).saturating_sub(outage.elapsed()));
    s3_proxy.set_plan(|_| Fault::Reset);
    s3_proxy.reset_held();
    relay.poll("an s3 retry", Duration::from_secs(20), |a| {
        (retries(a, "s3", "network") >= 1.0).then_some(())
    });
    s3_proxy.set_plan(|_| Fault::Pass);
    relay.poll(
        "ready after the s3 outage",
        Duration::from_secs(40),
        ready_all,
    );

    // Elasticsearch never answers.
    es_proxy.set_plan(|_| Fault::Blackhole);
    let outage = Instant::now();
    let (body, es_flip) = wait_not_ready(&mut relay, "elasticsearch", outage);
    assert!(es_flip <= Duration::from_secs(20), "{es_flip:?}\n{body}");
    let status = status_text(&config);
    assert!(
        status.contains("ready: no") && status.contains("elasticsearch: no progress for"),
        "{status}"
    );
    let es_age = oldest(&address, "elasticsearch").unwrap();
    assert!(es_age >= 10.0, "{es_age}");
    std::thread::sleep(Duration::from_secs(22).saturating_sub(outage.elapsed()));
    es_proxy.set_plan(|_| Fault::Reset);
    es_proxy.reset_held();
    relay.poll("an elasticsearch retry", Duration::from_secs(20), |a| {
        (retries(a, "elasticsearch", "network") >= 1.0).then_some(())
    });
    es_proxy.set_plan(|_| Fault::Pass);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let produced = producing.join().unwrap();

    // Everything stored in both; ready; the counters equal.
    let tool = SearchTool::new(&search.endpoint());
    relay.poll("every event indexed", Duration::from_secs(60), |_| {
        (tool.count(INDEX) == produced).then_some(())
    });
    let m = relay.poll("ready and settled", Duration::from_secs(30), |a| {
        ready_all(a)?;
        let m = scrape(a)?;
        let (read, shipped, discarded) = check_identity(&m);
        (read == shipped + discarded && read > 0.0).then_some(m)
    });
    for sink in ["s3", "elasticsearch"] {
        assert_eq!(
            get_or_0(
                &m,
                &format!("logtide_output_stalled_seconds{{output={sink}}}")
            ),
            0.0
        );
    }
    assert_eq!(
        get_or_0(
            &m,
            "logtide_output_oldest_unacked_seconds{output=elasticsearch}"
        ),
        0.0
    );
    Command::new("kill")
        .args(["-TERM", &relay.child.id().to_string()])
        .status()
        .unwrap();
    assert!(relay.child.wait().unwrap().success());
    let archived: BTreeSet<u64> = s3
        .read_lines("archive", "")
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(&l.line).unwrap();
            v["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(archived, (0..produced).collect::<BTreeSet<u64>>());
    let faults = (s3_proxy.log(), es_proxy.log());
    assert!(
        faults.0.blackholed > 0 && faults.1.blackholed > 0,
        "{faults:?}"
    );
    println!(
        "{produced} events, all in S3 and Elasticsearch; 503 {s3_flip:?} after S3 went away, \
         {es_flip:?} after Elasticsearch did; oldest S3 entry {s3_age_before:.1}s before the \
         kill, {s3_age_after:.1}s after; oldest Elasticsearch entry {es_age:.1}s; {faults:?}"
    );
}
