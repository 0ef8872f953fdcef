//! Crash test: a writer appends CRI lines (entries of one to four chunks, both streams,
//! three containers) and rotates the files every ~2 s like kubelet, while `logtide-files`
//! is killed with SIGKILL at random moments and started again, 20 times. At the end every
//! entry is in the output exactly as written (never corrupted, never split), and an
//! entry is there more than once only if it was not yet acknowledged in the registry on
//! disk at one of the kills.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bin;
use logtide_testkit::Rng;
use serde_json::Value;

const CONTAINERS: usize = 3;
const KILLS: usize = 20;

/// Where an entry's first chunk was written: (inode, offset).
type Origin = (u64, u64);

#[derive(Default)]
struct Written {
    entries: HashMap<String, Origin>,
}

fn writer(dir: PathBuf, stop: Arc<AtomicBool>, written: Arc<Mutex<Written>>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut files: Vec<File> = (0..CONTAINERS).map(|c| open(&dir, c)).collect();
    let mut rotations = [0u32; CONTAINERS];
    let mut last_rotation = [Instant::now(); CONTAINERS];
    // Per (container, stream): the open entry's text, chunks left and origin.
    let mut open_entries: HashMap<(usize, usize), (String, u32, Origin)> = HashMap::new();
    let mut id = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..20 {
            let c = rng.below(CONTAINERS as u64) as usize;
            let s = rng.below(2) as usize;
            let f = &mut files[c];
            let offset = f.metadata().unwrap().len();
            let ino = f.metadata().unwrap().ino();
            let (text, left, origin) = open_entries.remove(&(c, s)).unwrap_or_else(|| {
                id += 1;
                (String::new(), rng.below(4) as u32, (ino, offset))
            });
            let chunk: String = format!("[{id}:{}]", "x".repeat(rng.below(120) as usize));
            let tag = if left == 0 { "F" } else { "P" };
            let stream = if s == 0 { "stdout" } else { "stderr" };
            let line = format!("2024-01-01T00:00:00.000000001Z {stream} {tag} {chunk}\n");
            f.write_all(line.as_bytes()).unwrap();
            let text = text + &chunk;
            if left == 0 {
                written.lock().unwrap().entries.insert(text, origin);
            } else {
                open_entries.insert((c, s), (text, left - 1, origin));
            }
        }
        for c in 0..CONTAINERS {
            if last_rotation[c].elapsed() >= Duration::from_millis(1700 + 200 * c as u64) {
                // kubelet: rename, keep a few rotated files, delete the oldest.
                rotations[c] += 1;
                let from = dir.join(format!("c{c}.log"));
                fs::rename(&from, dir.join(format!("c{c}.log.{}", rotations[c]))).unwrap();
                if rotations[c] > 4 {
                    let _ = fs::remove_file(dir.join(format!("c{c}.log.{}", rotations[c] - 4)));
                }
                files[c] = open(&dir, c);
                last_rotation[c] = Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Finish every open entry so that all written entries are complete.
    for ((c, s), (text, _, origin)) in open_entries {
        let stream = if s == 0 { "stdout" } else { "stderr" };
        let line = format!("2024-01-01T00:00:00.000000001Z {stream} F [end]\n");
        files[c].write_all(line.as_bytes()).unwrap();
        written
            .lock()
            .unwrap()
            .entries
            .insert(text + "[end]", origin);
    }
}

fn open(dir: &Path, c: usize) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("c{c}.log")))
        .unwrap()
}

fn start(config: &Path) -> Child {
    Command::new(bin())
        .args(["run", "-c", config.to_str().unwrap()])
        .env("LOGTIDE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Saved offsets by inode, from the registry on disk, of the files in `logs` the registry
/// entries describe: an entry whose fingerprint does not match the file that has its inode
/// now belongs to a deleted file whose inode was reused, and says nothing of the new one.
fn registry_offsets(dir: &Path, logs: &Path) -> HashMap<u64, u64> {
    let Ok(text) = fs::read(dir.join("registry.json")) else {
        return HashMap::new();
    };
    let doc: Value = serde_json::from_slice(&text).expect("the registry on disk is always whole");
    let by_ino: HashMap<u64, PathBuf> = fs::read_dir(logs)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            Some((fs::metadata(&p).ok()?.ino(), p))
        })
        .collect();
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let ino = f["ino"].as_u64().unwrap();
            let fp = &f["fingerprint"];
            let len = fp["len"].as_u64()? as usize;
            let bytes = fs::read(by_ino.get(&ino)?).ok()?;
            let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes.get(..len)?));
            (fp["hash"].as_str()? == hash).then(|| (ino, f["offset"].as_u64().unwrap()))
        })
        .collect()
}

fn output_messages(out: &Path) -> Vec<String> {
    let mut msgs = Vec::new();
    let Ok(dir) = fs::read_dir(out) else {
        return msgs;
    };
    for e in dir {
        let text = fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("corrupted output line {line:?}: {e}"));
            msgs.push(v["message"].as_str().unwrap().to_owned());
        }
    }
    msgs
}

#[test]
fn sigkill_twenty_times_while_rotating_loses_and_breaks_nothing() {
    let _one = crate::one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let reg = tmp.path().join("registry");
    let out = tmp.path().join("out");
    let config = tmp.path().join("c.yml");
    fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{}/*.log']\nregistry: {{path: {}}}\noutput.file: {{path: {}, filename: events.ndjson, rotate_every_kb: 1048576}}\n",
            logs.display(),
            reg.display(),
            out.display()
        ),
    )
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(Written::default()));
    let w = {
        let (logs, stop, written) = (logs.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || writer(logs, stop, written))
    };

    let mut rng = Rng(42);
    let mut snapshots: Vec<HashMap<u64, u64>> = Vec::new();
    for _ in 0..KILLS {
        let mut child = start(&config);
        std::thread::sleep(Duration::from_millis(900 + rng.below(1600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        snapshots.push(registry_offsets(&reg, &logs));
    }
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();

    // Last run: read everything, then stop cleanly.
    let total = written.lock().unwrap().entries.len();
    let mut child = start(&config);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = output_messages(&out);
        let distinct: std::collections::HashSet<&String> = got.iter().collect();
        if distinct.len() >= total || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let written = written.lock().unwrap();
    let mut count: HashMap<&str, u32> = HashMap::new();
    for m in output_messages(&out).iter() {
        let Some((k, _)) = written.entries.get_key_value(m.as_str()) else {
            panic!("output holds something never written as one entry: {m:?}");
        };
        *count.entry(k.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = written
        .entries
        .keys()
        .filter(|k| !count.contains_key(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {total} entries missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let mut dups = 0;
    for (m, n) in &count {
        if *n > 1 {
            dups += 1;
            let (ino, offset) = written.entries[*m];
            let unacknowledged_at_some_kill = snapshots
                .iter()
                .any(|s| s.get(&ino).is_none_or(|&saved| saved <= offset));
            assert!(
                unacknowledged_at_some_kill,
                "{m:?} duplicated although the registry had it acknowledged at every kill"
            );
        }
    }
    eprintln!("{total} entries, {dups} duplicated after kills, {KILLS} kills");
    assert!(total > 1000, "the writer wrote {total} entries");
}
