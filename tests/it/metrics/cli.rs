//! The logtide-metrics binary: `--once` on this machine, a run to a file stopped by
//! SIGTERM, and configuration errors.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logtide_pipeline::http::{get, METRICS_PATH, READYZ_PATH};
use logtide_pipeline::telemetry::parse_samples;
use serde_json::Value;

fn bin() -> Command {
    Command::new(super::bin())
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("metrics.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn names(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["metricset"]["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn once_prints_every_metricset_of_this_machine() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "period: 10s\nhostfs: /\noutput.console: {}\n");
    let started = Instant::now();
    let out = bin()
        .arg("--once")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two samples one second apart for the rates.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let names = names(&out.stdout);
    for want in [
        "cpu",
        "core",
        "load",
        "memory",
        "filesystem",
        "diskio",
        "network",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "no {want} event in {names:?}"
        );
    }
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["event"]["module"], "system");
    assert!(first["host"]["name"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
}

#[test]
fn once_reports_an_unreachable_kubelet_and_prints_the_rest() {
    let _one = crate::one_at_a_time();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "metricsets: [memory, load]\nkubernetes:\n  kubelet: https://127.0.0.1:{port}\n  ssl.verification_mode: none\n  timeout: 2s\noutput.console: {{}}\n"
        ),
    );
    let out = bin().arg("--once").arg("-c").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "logtide-metrics: kubernetes: kubelet https://127.0.0.1:{port}/stats/summary: "
        )),
        "{stderr}"
    );
    assert_eq!(names(&out.stdout), ["memory", "load"]);
}

#[test]
fn a_bad_configuration_names_the_key() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "metricsets: [cpu, disk]\noutput.console: {}\n");
    let out = bin().arg("--once").arg("-c").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics.yml: metricsets[1]: unknown variant `disk`"),
        "{stderr}"
    );
}

#[test]
fn runs_on_aligned_ticks_to_a_file_and_stops_on_sigterm() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = write_config(
        dir.path(),
        &format!(
            "metricsets: [cpu, memory, network]\nperiod: 1s\noutput.file:\n  path: {}\n  filename: metrics.ndjson\nhttp.enabled: true\nhttp.port: {port}\n",
            out_dir.display()
        ),
    );
    let mut child = bin()
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let file = out_dir.join("metrics.ndjson");
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if names(text.as_bytes())
            .iter()
            .filter(|n| *n == "memory")
            .count()
            >= 2
        {
            break lines;
        }
        assert!(Instant::now() < deadline, "no events in time: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The self-metrics agree with the file: what was shipped was written, and every
    // event collected was shipped, is on its way, or was a rate's priming sample.
    let address = format!("127.0.0.1:{port}");
    let count = || std::fs::read_to_string(&file).unwrap().lines().count() as f64;
    let before = count();
    let (status, text) = get(&address, METRICS_PATH).unwrap();
    let after = count();
    assert_eq!(status, 200);
    let samples = parse_samples(&text);
    let value = |name: &str, label: &str| {
        samples
            .iter()
            .filter(|s| s.name == name && s.labels.values().any(|v| v == label))
            .map(|s| s.value)
            .sum::<f64>()
    };
    let shipped = value("logtide_events_total", "shipped");
    assert!(
        before <= shipped && shipped <= after,
        "{before} {shipped} {after}"
    );
    let priming = value("logtide_discarded_events_total", "priming_sample");
    assert!(priming > 0.0, "{text}");
    assert!(
        value("logtide_events_total", "read") >= shipped + priming,
        "{text}"
    );
    assert_eq!(get(&address, READYZ_PATH).unwrap().0, 200);
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let waited = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(waited.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("metricset counters"), "{stderr}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let ts = v["@timestamp"].as_str().unwrap();
        // Ticks fall on whole seconds: collection starts soon after one (a loaded
        // machine may delay it a little).
        let frac: f64 = format!("0.{}", &ts[20..29]).parse().unwrap();
        assert!(frac < 0.7, "{ts} is not near a tick");
        assert_eq!(v["metricset"]["period"], 1000);
    }
}
