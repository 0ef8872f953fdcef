//! The agent holds events back while a gate says their metadata is not known yet.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use logtide_event::Event;
use logtide_pipeline::{run_files_with, FileObserver, FilesConfig, Gate, RunOptions};
use logtide_tail::FileChange;

/// Lets events through once `open` is set.
struct Switch {
    open: AtomicBool,
}

impl Gate for Switch {
    fn ready(&self, _: &Event) -> bool {
        self.open.load(Ordering::Relaxed)
    }
}

fn config(dir: &Path) -> FilesConfig {
    let text = format!(
        "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\n\
         registry: {{path: {reg}, flush: 100ms}}\n\
         output.file: {{path: {out}, filename: events.ndjson}}\n",
        logs = dir.join("logs").display(),
        reg = dir.join("registry").display(),
        out = dir.join("out").display(),
    );
    FilesConfig::from_yaml(&text, Path::new("test.yml")).expect("valid configuration")
}

fn write_log(dir: &Path, lines: usize) {
    fs::create_dir_all(dir.join("logs")).unwrap();
    let text: String = (0..lines)
        .map(|i| format!("2024-01-01T00:00:00.{i:09}Z stdout F line {i}\n"))
        .collect();
    fs::write(dir.join("logs/app.log"), text).unwrap();
}

fn messages(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join("out/events.ndjson")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["message"].as_str().expect("message").to_owned()
        })
        .collect()
}

fn wait_for(dir: &Path, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let got = messages(dir);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn expected(lines: usize) -> Vec<String> {
    (0..lines).map(|i| format!("line {i}")).collect()
}

#[test]
fn events_wait_for_the_gate_then_go_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50);
    let gate = Arc::new(Switch {
        open: AtomicBool::new(false),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        gate: Some(gate.clone()),
        max_wait: Duration::from_secs(60),
        max_waiting: 1000,
        ..RunOptions::default()
    };
    let cfg = config(dir.path());
    let run = {
        let stop = stop.clone();
        thread::spawn(move || run_files_with(&cfg, stop, options))
    };
    thread::sleep(Duration::from_millis(800));
    assert!(
        messages(dir.path()).is_empty(),
        "nothing ships while the gate is shut"
    );
    gate.open.store(true, Ordering::Relaxed);
    assert_eq!(
        wait_for(dir.path(), 50, Duration::from_secs(10)),
        expected(50)
    );
    stop.store(true, Ordering::Relaxed);
    let summary = run.join().unwrap().expect("clean run");
    assert_eq!(summary.held[0].held, 50);
    assert_eq!(summary.held[0].released_ready, 50);
}

#[test]
fn a_shut_gate_delays_events_by_at_most_max_wait() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20);
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        gate: Some(Arc::new(Switch {
            open: AtomicBool::new(false),
        })),
        max_wait: Duration::from_millis(300),
        max_waiting: 1000,
        ..RunOptions::default()
    };
    let cfg = config(dir.path());
    let run = {
        let stop = stop.clone();
        thread::spawn(move || run_files_with(&cfg, stop, options))
    };
    assert_eq!(
        wait_for(dir.path(), 20, Duration::from_secs(10)),
        expected(20)
    );
    stop.store(true, Ordering::Relaxed);
    let summary = run.join().unwrap().expect("clean run");
    assert_eq!(summary.held[0].released_timeout, 20);
}

#[test]
fn events_still_waiting_at_stop_are_read_again_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10);
    let options = |open: bool| RunOptions {
        gate: Some(Arc::new(Switch {
            open: AtomicBool::new(open),
        }) as Arc<dyn Gate>),
        max_wait: Duration::from_secs(60),
        max_waiting: 1000,
        ..RunOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = config(dir.path());
    let run = {
        let stop = stop.clone();
        let options = options(false);
        thread::spawn(move || run_files_with(&cfg, stop, options))
    };
    thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let summary = run.join().unwrap().expect("clean run");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping does not wait for events that cannot be acknowledged"
    );
    assert_eq!(summary.held[0].held, 10);
    assert!(messages(dir.path()).is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let cfg = config(dir.path());
    let run = {
        let stop = stop.clone();
        let options = options(true);
        thread::spawn(move || run_files_with(&cfg, stop, options))
    };
    assert_eq!(
        wait_for(dir.path(), 10, Duration::from_secs(10)),
        expected(10)
    );
    stop.store(true, Ordering::Relaxed);
    run.join().unwrap().expect("clean run");
}

/// Records the file changes it is told of.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<FileChange>>);

impl FileObserver for Recorder {
    fn file_changed(&self, change: &FileChange) {
        self.0.lock().unwrap().push(change.clone());
    }
}

#[test]
fn the_file_observer_hears_when_a_deleted_file_is_done() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let recorder = Arc::new(Recorder::default());
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        files: Some(recorder.clone()),
        ..RunOptions::default()
    };
    let cfg = config(dir.path());
    let run = {
        let stop = stop.clone();
        thread::spawn(move || run_files_with(&cfg, stop, options))
    };
    assert_eq!(
        wait_for(dir.path(), 5, Duration::from_secs(10)),
        expected(5)
    );
    let path: Arc<str> = Arc::from(dir.path().join("logs/app.log").to_string_lossy().as_ref());
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [FileChange::Started(path.clone())]
    );
    fs::remove_file(dir.path().join("logs/app.log")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while recorder.0.lock().unwrap().len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    run.join().unwrap().expect("clean run");
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            FileChange::Started(path.clone()),
            FileChange::Finished(path)
        ]
    );
}
