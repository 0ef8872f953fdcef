//! logtide-files ships to moto_server through a proxy that for a while throttles, answers
//! 500s, resets connections (before and after moto saw the request) and fails single
//! records of PutRecords requests, and then cuts Kinesis off entirely. Afterwards every
//! entry is in the stream, in order per container; an entry is there twice only when the
//! request carrying it was answered by a reset after moto had stored it; and the agent's
//! memory did not grow with the log data that waited while Kinesis was away.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::kinesis_common::*;
use logtide_testkit::{Fault, FaultProxy, KinesisTool, MotoServer};

/// A mix of every fault, chosen by the request's number.
fn mixed(n: u64) -> Fault {
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    match x % 20 {
        0..=2 => Fault::Throttle,
        3..=4 => Fault::ServerError,
        5..=6 => Fault::Reset,
        7..=8 => Fault::ResetAfterForward,
        9..=12 => Fault::FailRecords(|i| i % 2 == 1),
        _ => Fault::Pass,
    }
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn nothing_lost_under_throttling_errors_resets_and_an_outage() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("logs", 2);
    let proxy = FaultProxy::start(moto.port(), mixed);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let mut containers: Vec<Container> = (0..6)
        .map(|n| Container::new(&dir.path().join("logs"), 100 + n))
        .collect();
    let write = |containers: &mut Vec<Container>, from: usize, to: usize| {
        for i in from..to {
            for (n, c) in containers.iter_mut().enumerate() {
                c.write(message(n as u64, i, 300 + (i * 53 + n * 7) % 400));
            }
        }
    };
    let config = config(dir.path(), &proxy.endpoint(), "logs", "");
    let files: Vec<std::path::PathBuf> = containers.iter().map(|c| c.file.clone()).collect();
    let files: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    write(&mut containers, 0, 100);
    let mut child = start(&config);

    // The faults work on entries written a little at a time, so that they go in many
    // small requests.
    for round in 1..20 {
        std::thread::sleep(Duration::from_millis(200));
        write(&mut containers, round * 100, round * 100 + 100);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_acknowledged(&config, &files) {
        assert!(Instant::now() < deadline, "the first part was not shipped");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            stderr(&mut child)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Outage: every connection is reset. Meanwhile the containers write far more than
    // the agent may hold.
    proxy.set_plan(|_| Fault::Reset);
    let before = proxy.log();
    let rss_before = rss(child.id());
    let size = |files: &[&std::path::Path]| -> u64 {
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum()
    };
    let written_before = size(&files);
    write(&mut containers, 2000, 18_000);
    let waiting = size(&files) - written_before;
    let mut rss_outage = 0;
    let outage_end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < outage_end {
        rss_outage = rss_outage.max(rss(child.id()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let during = proxy.log();
    assert!(
        during.resets > before.resets + 2,
        "the agent kept trying during the outage"
    );
    assert!(
        !all_acknowledged(&config, &files),
        "nothing can be acknowledged during the outage"
    );
    // Memory: the queue between tailers and output holds a few batches; had the tailers
    // gone on reading, the waiting entries would take more than their size in memory.
    let growth = rss_outage.saturating_sub(rss_before);
    assert!(
        growth < waiting / 4,
        "memory grew by {growth} bytes while {waiting} bytes of logs waited"
    );

    // Kinesis is back.
    proxy.set_plan(|_| Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !all_acknowledged(&config, &files) {
        assert!(
            Instant::now() < deadline,
            "not everything was acknowledged after the outage"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            stderr(&mut child)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let log = stderr(&mut child);

    let faults = proxy.log();
    assert!(
        faults.throttled > 0 && faults.server_errors > 0,
        "{faults:?}"
    );
    assert!(faults.resets > 0 && faults.records_failed > 0, "{faults:?}");
    assert!(!faults.unanswered.is_empty(), "{faults:?}");

    let records = tool.read_all("logs");
    let decoded = decode(&records);
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (id, msg, _, r) in &decoded.entries {
        let count = seen.entry((id.as_str(), msg.as_str())).or_default();
        *count += 1;
        if *count > 1 {
            assert!(
                faults.unanswered.contains(&records[*r].data),
                "entry {msg:?} of {id} arrived twice, but its request was answered"
            );
        }
    }
    let got = by_container(&decoded);
    for c in &containers {
        let mut first: Vec<&String> = Vec::new();
        let mut dedup: std::collections::HashSet<&String> = Default::default();
        for m in &got[&c.id] {
            if dedup.insert(m) {
                first.push(m);
            }
        }
        assert_eq!(
            first.len(),
            c.messages.len(),
            "container {}: every entry arrived",
            c.id
        );
        assert!(
            first.iter().zip(&c.messages).all(|(g, w)| *g == w),
            "container {}: entries arrived in the order written",
            c.id
        );
    }
    assert!(
        log.contains("requests_throttled") && log.contains("records_retried"),
        "{log}"
    );
    assert!(
        log.contains("output failed; retrying"),
        "the outage outlasted a write: the batch was handed back and resumed\n{log}"
    );
    assert!(
        !log.contains("left unfinished was given up"),
        "the resumed batch was recognised\n{log}"
    );
    println!(
        "faults: {faults:?}; memory grew by {growth} bytes while {waiting} bytes of logs waited"
    );
}
