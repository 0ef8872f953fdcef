//! What an operator sees while Kinesis is unreachable. logtide-files ships about 800
//! entries a second to moto_server through a proxy that, for 25 s, accepts connections
//! and never answers (a blackhole), then resets every connection for 5 s, then passes;
//! the agent is SIGKILLed and started again in the middle of the blackhole. With the
//! default configuration (the endpoint on, to be scraped):
//! - `/readyz` turns 503 within 20 s of the blackhole's start and names Kinesis, and
//!   `logtide-files status` says the same;
//! - `logtide_output_retries_total` counts the timed-out attempts, then the resets;
//! - the age of the oldest unshipped entry, taken from the entries, goes on growing
//!   across the restart;
//! - at every scrape, `read` ≥ `shipped` + discarded (the rest is in flight), and once
//!   everything is acknowledged they are equal; readiness is back to 200;
//! - not one entry is lost.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bin;
use super::kinesis_common::{all_acknowledged, container_id};
use crate::support::{get_or_0, scrape};
use logtide_pipeline::http::{get, READYZ_PATH};
use logtide_testkit::{free_port, Fault, FaultProxy, KinesisTool, MotoServer, AWS_ENV};
use serde_json::Value;

const CONTAINERS: u64 = 4;

/// The sum of the samples of family `name`.
fn sum(m: &BTreeMap<String, f64>, name: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

/// The largest sample of family `name`.
fn max(m: &BTreeMap<String, f64>, name: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
}

/// read, shipped and every discard, checked to agree: what is read and not yet shipped
/// or discarded is in flight, never negative.
fn check_identity(m: &BTreeMap<String, f64>) -> (f64, f64, f64) {
    let read = get_or_0(m, "logtide_events_total{stage=read}");
    let shipped = get_or_0(m, "logtide_events_total{stage=shipped}");
    let discarded = sum(m, "logtide_discarded_events_total");
    assert!(
        read >= shipped + discarded,
        "a scrape found read {read} < shipped {shipped} + discarded {discarded}"
    );
    (read, shipped, discarded)
}

fn start(config: &Path, log: &Path) -> Child {
    Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn readyz(address: &str) -> Option<(u16, String)> {
    get(address, READYZ_PATH).ok()
}

/// Writes `rate` entries a second, spread over the containers, each line stamped with
/// the time it is written, until `stop`; returns every message written.
fn writer(logs: PathBuf, rate: u64, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut files: Vec<fs::File> = (0..CONTAINERS)
        .map(|n| {
            let id = container_id(200 + n);
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join(format!("app-{n}-7d9f8b6c5-x2x7q_default_app-{id}.log")))
                .unwrap()
        })
        .collect();
    let mut written = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = started.elapsed().as_millis() as u64 * rate / 1000;
        while n < due {
            let c = (n % CONTAINERS) as usize;
            let message = format!("c{c} entry {n:07} {}", "payload ".repeat(10));
            let now = logtide_event::Timestamp::now();
            writeln!(files[c], "{now} stdout F {message}").unwrap();
            written.push(message);
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    written
}

/// Polls until `done` returns `Some`, scraping (and checking the counters) between polls.
fn poll<T>(
    what: &str,
    timeout: Duration,
    address: &str,
    child: &mut Child,
    log: &Path,
    mut done: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "logtide-files exited ({status}) while waiting for {what}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Some(m) = scrape(address) {
            check_identity(&m);
        }
        if let Some(t) = done() {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readiness_retries_and_ages_tell_the_truth_while_kinesis_is_away() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let proxy = FaultProxy::start(moto.port(), |_| Fault::Pass);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("logtide-files.yml");
    fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\nregistry:\n  path: {reg}\noutput.kinesis:\n  stream_name: logs\n  region: us-east-1\n  endpoint: {endpoint}\n  dead_letter_path: {dl}\nhttp.enabled: true\nhttp.port: {port}\n",
            logs = logs.display(),
            reg = dir.path().join("registry").display(),
            endpoint = proxy.endpoint(),
            dl = dir.path().join("dead-letter").display(),
        ),
    )
    .unwrap();
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writing = {
        let (logs, stop) = (logs.clone(), stop_writing.clone());
        std::thread::spawn(move || writer(logs, 800, stop))
    };
    let log1 = dir.path().join("agent-1.log");
    let mut child = start(&config, &log1);

    // Shipping: ready, and entries go out.
    poll(
        "shipping",
        Duration::from_secs(30),
        &address,
        &mut child,
        &log1,
        || {
            let m = scrape(&address)?;
            let shipped = get_or_0(&m, "logtide_events_total{stage=shipped}");
            let ready = readyz(&address)?.0 == 200;
            (shipped > 2000.0 && ready).then_some(())
        },
    );

    // Blackhole: connections are accepted and never answered.
    proxy.set_plan(|_| Fault::Blackhole);
    let blackhole = Instant::now();
    let body = poll(
        "503",
        Duration::from_secs(25),
        &address,
        &mut child,
        &log1,
        || readyz(&address).filter(|(s, _)| *s == 503).map(|(_, b)| b),
    );
    let flipped = blackhole.elapsed();
    assert!(
        flipped <= Duration::from_secs(20),
        "not ready only after {flipped:?}"
    );
    assert!(
        body.contains("output: not ready: kinesis: no progress for")
            && body.contains("entries waiting, the oldest written"),
        "{body}"
    );
    let status = Command::new(bin())
        .args(["status", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("ready: no") && status.contains("kinesis: no progress for"),
        "{status}"
    );
    // The attempt that was never answered timed out (10 s) and was sent again.
    let m = poll(
        "a timeout retry",
        Duration::from_secs(10),
        &address,
        &mut child,
        &log1,
        || {
            scrape(&address).filter(|m| {
                get_or_0(
                    m,
                    "logtide_output_retries_total{output=kinesis,reason=timeout}",
                ) >= 1.0
            })
        },
    );
    let age_before = max(&m, "logtide_file_oldest_unshipped_seconds");
    let unacked_before = get_or_0(&m, "logtide_output_oldest_unacked_seconds{output=kinesis}");
    assert!(
        age_before >= 10.0 && unacked_before >= 10.0,
        "the oldest entries waited since the blackhole began: {age_before} {unacked_before}"
    );

    // Killed and started again, Kinesis still away.
    child.kill().unwrap();
    child.wait().unwrap();
    let log2 = dir.path().join("agent-2.log");
    let mut child = start(&config, &log2);
    let (age_after, unacked_after) = poll(
        "the ages after the restart",
        Duration::from_secs(15),
        &address,
        &mut child,
        &log2,
        || {
            let m = scrape(&address)?;
            let age = max(&m, "logtide_file_oldest_unshipped_seconds");
            let unacked = get_or_0(&m, "logtide_output_oldest_unacked_seconds{output=kinesis}");
            (age > 0.0 && unacked > 0.0).then_some((age, unacked))
        },
    );
    assert!(
        age_after > age_before && unacked_after > unacked_before,
        "the oldest entry's age starts again at the restart: \
         file {age_before} -> {age_after}, output {unacked_before} -> {unacked_after}"
    );
    let remaining = Duration::from_secs(25).saturating_sub(blackhole.elapsed());
    std::thread::sleep(remaining);

    // The network comes back as resets, then as it was.
    proxy.set_plan(|_| Fault::Reset);
    proxy.reset_held();
    let resets = Instant::now();
    poll(
        "a network retry",
        Duration::from_secs(15),
        &address,
        &mut child,
        &log2,
        || {
            scrape(&address).filter(|m| {
                get_or_0(
                    m,
                    "logtide_output_retries_total{output=kinesis,reason=network}",
                ) >= 1.0
            })
        },
    );
    std::thread::sleep(Duration::from_secs(5).saturating_sub(resets.elapsed()));
    let m = scrape(&address).unwrap();
    let age_stuck = max(&m, "logtide_file_oldest_unshipped_seconds");
    assert!(age_stuck > age_after, "{age_stuck} {age_after}");
    proxy.set_plan(|_| Fault::Pass);
    std::thread::sleep(Duration::from_secs(2));
    stop_writing.store(true, Ordering::Relaxed);
    let written = writing.join().unwrap();

    // Catch-up: scraped all along; then everything is acknowledged, ready, and the
    // counters are equal.
    let files: Vec<PathBuf> = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut scrapes = 0;
    let mut catching_up = 0;
    poll(
        "the catch-up",
        Duration::from_secs(60),
        &address,
        &mut child,
        &log2,
        || {
            let m = scrape(&address)?;
            scrapes += 1;
            let (read, shipped, discarded) = check_identity(&m);
            if read > shipped + discarded {
                catching_up += 1;
            }
            all_acknowledged(&config, &files).then_some(())
        },
    );
    let m = poll(
        "ready and settled",
        Duration::from_secs(20),
        &address,
        &mut child,
        &log2,
        || {
            let m = scrape(&address)?;
            let (read, shipped, discarded) = check_identity(&m);
            let ready = readyz(&address)? == (200, "inputs: ok\noutput: ok\n".to_owned());
            // The files' gauges are published every second: one scrape may still show
            // the last entry acknowledged as waiting.
            let files_settled = max(&m, "logtide_file_oldest_unshipped_seconds") == 0.0;
            (ready && read == shipped + discarded && files_settled).then_some(m)
        },
    );
    assert_eq!(
        get_or_0(&m, "logtide_output_oldest_unacked_seconds{output=kinesis}"),
        0.0
    );
    assert_eq!(
        get_or_0(&m, "logtide_output_stalled_seconds{output=kinesis}"),
        0.0
    );
    assert_eq!(max(&m, "logtide_file_oldest_unshipped_seconds"), 0.0);
    assert_eq!(get_or_0(&m, "logtide_ready{}"), 1.0);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    // Not one entry lost.
    let mut decoder = logtide_kinesis::Decoder::default();
    let mut got = HashSet::new();
    for r in tool.read_all("logs") {
        for e in decoder.decode(&r.data, 0).unwrap().events {
            got.insert(e.get("message").and_then(Value::as_str).unwrap().to_owned());
        }
    }
    let missing = written.iter().filter(|m| !got.contains(*m)).count();
    assert_eq!(missing, 0, "{missing} of {} entries lost", written.len());
    let faults = proxy.log();
    assert!(faults.blackholed > 0 && faults.resets > 0, "{faults:?}");
    println!(
        "{} entries, 0 lost; 503 {flipped:?} after the blackhole began; oldest entry \
         {age_before:.1}s before the kill, {age_after:.1}s after, {age_stuck:.1}s at the end \
         of the outage; {scrapes} scrapes in the catch-up, {catching_up} with entries in \
         flight; {faults:?}",
        written.len()
    );
}
