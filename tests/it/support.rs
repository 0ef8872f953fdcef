//! Helpers more than one end-to-end test uses: stopping a binary, reading its metrics,
//! finding the shared conformance data.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use logtide_pipeline::http::{get, METRICS_PATH};
use logtide_pipeline::telemetry::parse_samples;

/// Sends SIGTERM to `child` and waits (at most 60 s) for it to exit.
pub(crate) fn sigterm(child: &mut Child) -> ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not stop on SIGTERM",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The samples of the `/metrics` endpoint at `address`, keyed `name{label=value,...}`;
/// `None` while nothing answers there.
pub(crate) fn scrape(address: &str) -> Option<BTreeMap<String, f64>> {
    let (status, text) = get(address, METRICS_PATH).ok()?;
    assert_eq!(status, 200);
    Some(
        parse_samples(&text)
            .into_iter()
            .map(|s| {
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (format!("{}{{{}}}", s.name, labels.join(",")), s.value)
            })
            .collect(),
    )
}

/// A sample of [`scrape`], 0 when absent (a counter not yet touched).
pub(crate) fn get_or_0(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// `../shared/conformance` beside the checkout, or `LOGTIDE_CONFORMANCE_DIR`.
pub(crate) fn conformance_dir() -> PathBuf {
    std::env::var_os("LOGTIDE_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        })
}
