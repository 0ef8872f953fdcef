//! `scripts/demo`, the README's one command for the whole pipeline, run with this build's
//! binaries: logtide-files (examples/filebeat-seed.yml) into a moto_server Kinesis
//! stream, logtide-relay (examples/relay.yml, examples/rules/) into moto_server's S3 and
//! noida-db, and the alert to a webhook receiver. It prints what arrived where and exits
//! 0 only when every sink holds every event and the alert came.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of `logtide-files` and `logtide-relay`.
fn bin_dir() -> PathBuf {
    super::common::files_bin().parent().unwrap().to_owned()
}

/// The two numbers of a report line `== <sink>…: <a> <what>, <b> events` (or the one of
/// `== <sink>…: <a> <what>`).
fn counts(report: &str, sink: &str) -> Vec<u64> {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("== {sink}")))
        .unwrap_or_else(|| panic!("no {sink} line in:\n{report}"));
    let (_, numbers) = line.rsplit_once(": ").unwrap();
    numbers
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_demo_shows_every_event_in_every_sink_and_the_alert() {
    let _one = crate::one_at_a_time();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo"))
        .env("LOGTIDE_BIN_DIR", bin_dir())
        .env("LOGTIDE_DEMO", work.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}\n{stderr}");

    // The bundled logs hold 11 entries (and one broken line, which is no event).
    let kinesis = counts(&report, "Kinesis");
    assert!(kinesis[0] > 0, "records: {report}");
    assert_eq!(kinesis[1], 11, "{report}");
    let s3 = counts(&report, "S3");
    assert!(s3[0] > 0, "objects: {report}");
    assert_eq!(s3[1], 11, "{report}");
    assert_eq!(counts(&report, "Elasticsearch"), [11], "{report}");
    assert_eq!(counts(&report, "Slack"), [1], "{report}");
    // One document read back from each, and the alert of examples/rules/.
    assert!(
        report.contains("one record read back: partition key "),
        "{report}"
    );
    assert!(
        report.contains(".ndjson.gz (gzip NDJSON), first event:"),
        "{report}"
    );
    assert!(
        report.contains("one document read back: logtide-2026.11.24/"),
        "{report}"
    );
    assert!(
        report.contains(r#""fallback":"panic in payments/checkout-api-7d9f8b6c5-x2x7q""#),
        "{report}"
    );
    assert!(
        stderr.contains("every event arrived in Kinesis, S3 and Elasticsearch (11 of 11)"),
        "{stderr}"
    );
}
