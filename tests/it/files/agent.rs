//! `logtide-files` as a process: configuration checks, running until SIGTERM, the
//! registry subcommands and switching from Filebeat.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run logtide-files")
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        Setup { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\n    scan_frequency: 200ms\nregistry:\n  path: {reg}\n  flush: 100ms\noutput.file:\n  path: {out}\n  filename: events.ndjson\n{extra}",
            logs = self.p("logs").display(),
            reg = self.p("registry").display(),
            out = self.p("out").display(),
        );
        let path = self.p("logtide-files.yml");
        fs::write(&path, text).unwrap();
        path
    }

    fn append(&self, name: &str, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.p("logs").join(name))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn start(&self, config: &Path) -> Child {
        Command::new(bin())
            .args(["run", "-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn events(&self) -> Vec<Value> {
        let Ok(text) = fs::read_to_string(self.p("out/events.ndjson")) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| serde_json::from_str(l).expect("whole JSON lines only"))
            .collect()
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ev = self.events();
            if ev.len() >= n || Instant::now() > deadline {
                return ev;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "logtide-files did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cri(tag: &str, msg: &str) -> String {
    format!("2024-01-01T00:00:00.000000001Z stdout {tag} {msg}\n")
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn test_config_accepts_good_files_and_names_bad_keys() {
    let _one = crate::one_at_a_time();
    let s = Setup::new();
    let good = s.config("");
    let out = run(&["test", "config", "-c", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Config OK");

    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yml");
    assert_eq!(
        run(&["test", "config", "-c", quickstart.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    let filebeat = s.p("filebeat.yml");
    fs::write(&filebeat, "filebeat.inputs:\n- type: container\n  paths:\n    - /var/log/containers/*.log\nfilebeat.registry.path: /tmp/r\noutput.console:\n  pretty: false\n").unwrap();
    assert_eq!(
        run(&["test", "config", "-c", filebeat.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    let bad = s.p("bad.yml");
    fs::write(
        &bad,
        "inputs:\n  - type: container\n    exclude_file: ['x']\noutput.console: {}\n",
    )
    .unwrap();
    let out = run(&["test", "config", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("inputs[0].exclude_file: unknown field `exclude_file`"),
        "{err}"
    );
    assert!(err.contains("bad.yml"), "{err}");

    // Kinesis records in JSON: what would not be one JSON event per record is refused,
    // with the reason.
    for (kinesis, want) in [
        ("format: json, aggregate: true", "output.kinesis.aggregate: true is refused with format: json: each json record holds one event"),
        ("format: json, compression: zstd", "output.kinesis.compression: zstd is refused with format: json: a compressed record is not JSON"),
        ("format: json, oversize: split", "output.kinesis.oversize: split is refused with format: json"),
        ("oversize: offload", "output.kinesis.offload: oversize: offload needs the bucket"),
    ] {
        let bad = s.p("kinesis.yml");
        fs::write(
            &bad,
            format!("inputs:\n  - type: container\noutput.kinesis: {{stream_name: logs, region: us-east-1, {kinesis}}}\n"),
        )
        .unwrap();
        let out = run(&["test", "config", "-c", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{kinesis}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{kinesis}: {err}");
    }
    let good = s.p("kinesis.yml");
    fs::write(
        &good,
        "inputs:\n  - type: container\noutput.kinesis: {stream_name: logs, region: us-east-1, format: json, oversize: offload, offload: {bucket: logs-offload}}\n",
    )
    .unwrap();
    let out = run(&["test", "config", "-c", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn runs_until_sigterm_then_saves_and_resumes() {
    let _one = crate::one_at_a_time();
    let s = Setup::new();
    let cfg = s.config("");
    s.append("a.log", &cri("F", "one"));
    s.append("a.log", &cri("P", "two-"));
    s.append("a.log", &cri("F", "joined"));
    let mut child = s.start(&cfg);
    assert_eq!(messages(&s.wait_for(2)), ["one", "two-joined"]);
    s.append("a.log", &cri("F", "three"));
    assert_eq!(s.wait_for(3).len(), 3);
    assert!(terminate(&mut child).success(), "exit 0 on SIGTERM");

    let out = run(&["registry", "show", "-c", cfg.to_str().unwrap(), "--json"]);
    let entry: Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let size = fs::metadata(s.p("logs/a.log")).unwrap().len();
    assert_eq!(entry["offset"], size, "everything acknowledged is saved");
    assert_eq!(
        entry.get("behind"),
        None,
        "registry show prints the entry as saved"
    );
    let out = run(&["status", "-c", cfg.to_str().unwrap(), "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["files"][0]["saved_offset"], size);
    assert_eq!(status["files"][0]["behind"], 0, "status: nothing behind");

    // Restart: nothing is read twice; new lines come through.
    s.append("a.log", &cri("F", "four"));
    let mut child = s.start(&cfg);
    let ev = s.wait_for(4);
    assert!(terminate(&mut child).success());
    assert_eq!(messages(&ev), ["one", "two-joined", "three", "four"]);
    let e = &ev[1];
    assert_eq!(e["log"]["offset"], cri("F", "one").len());
    assert!(e["log"]["file"]["path"]
        .as_str()
        .unwrap()
        .ends_with("a.log"));
}

#[test]
fn switching_from_filebeat_reads_nothing_twice() {
    let _one = crate::one_at_a_time();
    let s = Setup::new();
    let cfg = s.config("");
    let l1 = cri("F", "shipped by filebeat");
    let l2 = cri("F", "not yet shipped");
    s.append("a.log", &l1);
    s.append("a.log", &l2);
    let meta = fs::metadata(s.p("logs/a.log")).unwrap();
    let fb = s.p("filebeat-registry");
    fs::write(
        &fb,
        format!(
            r#"[{{"source":"{}","offset":{},"timestamp":"2024-05-01T10:00:00Z","ttl":-1,"type":"container","FileStateOS":{{"inode":{},"device":{}}}}}]"#,
            s.p("logs/a.log").display(),
            l1.len(),
            meta.ino(),
            meta.dev()
        ),
    )
    .unwrap();
    let out = run(&[
        "registry",
        "import-filebeat",
        fb.to_str().unwrap(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1 of 1"));
    let table = run(&["registry", "show", "-c", cfg.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains(&l1.len().to_string()),
        "shows the saved offset"
    );
    let out = run(&["status", "-c", cfg.to_str().unwrap(), "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["files"][0]["behind"],
        l2.len(),
        "status: the bytes behind"
    );

    let mut child = s.start(&cfg);
    let ev = s.wait_for(1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(terminate(&mut child).success());
    assert_eq!(messages(&s.events()), ["not yet shipped"]);
    assert_eq!(ev.len(), 1);
}

#[test]
fn a_missing_config_fails_clearly() {
    let _one = crate::one_at_a_time();
    let s = Setup::new();
    let out = run(&["run", "-c", s.p("nope.yml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.yml: cannot read"));
}

#[test]
fn logs_are_json_lines_when_asked() {
    let _one = crate::one_at_a_time();
    let s = Setup::new();
    let cfg = s.config("");
    s.append("a.log", &cri("F", "one"));
    let mut child = Command::new(bin())
        .args(["run", "-c", cfg.to_str().unwrap()])
        .env("LOGTIDE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(s.wait_for(1).len(), 1);
    assert!(terminate(&mut child).success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{err}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "input started" && l["fields"]["input"] == 0),
        "{err}"
    );
}
