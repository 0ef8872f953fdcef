//! The tailer on real files: reading, rotation, truncation, restarts, upgrades and bad
//! input. Time is passed in explicitly, so nothing here sleeps.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logtide_event::Event;
use logtide_tail::{registry::REGISTRY_FILE, Registry, RegistryConfig, TailConfig, Tailer};
use serde_json::{json, Value};

struct Env {
    dir: tempfile::TempDir,
    t: Instant,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        Env {
            dir,
            t: Instant::now(),
        }
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn config(&self) -> (TailConfig, RegistryConfig) {
        let tail = TailConfig {
            paths: vec![format!("{}/*.log", self.logs().display())],
            read_buffer_bytes: 4096,
            ..TailConfig::default()
        };
        let reg = RegistryConfig {
            path: self.dir.path().join("registry"),
            flush: Duration::ZERO,
            ..RegistryConfig::default()
        };
        (tail, reg)
    }

    fn tailer(&self) -> Tailer {
        let (t, r) = self.config();
        Tailer::open(t, r).unwrap()
    }

    fn append(&self, name: &str, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs().join(name))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Advances the fake clock and polls until nothing more comes for a while (1.5 s of
    /// fake time); acknowledges if asked.
    fn drain(&mut self, tailer: &mut Tailer, ack: bool) -> Vec<Event> {
        let mut all = Vec::new();
        let mut idle = 0;
        while idle < 15 {
            self.t += Duration::from_millis(100);
            let mut batch = Vec::new();
            tailer.scan(self.t);
            tailer.poll(self.t, &mut batch, 10_000);
            let empty = batch.is_empty();
            for mut e in batch {
                if ack {
                    if let Some(tok) = e.take_ack() {
                        tok.accept();
                    }
                }
                all.push(e);
            }
            tailer.commit(self.t, true).unwrap();
            idle = if empty { idle + 1 } else { 0 };
        }
        all
    }
}

fn messages(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn cri(stream: &str, tag: &str, msg: &str) -> String {
    format!("2024-01-01T00:00:00.000000001Z {stream} {tag} {msg}\n")
}

#[test]
fn reads_lines_with_filebeat_fields() {
    let mut env = Env::new();
    let id = "3f1c2e9a7b6d4c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";
    let name = format!("web_shop_app-{id}.log");
    env.append(&name, &cri("stdout", "F", "hello"));
    env.append(
        &name,
        "{\"log\":\"from docker\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-01T00:00:01Z\"}\n",
    );
    let mut t = env.tailer();
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["hello", "from docker"]);
    let first = &events[0];
    let path = env.logs().join(&name).display().to_string();
    assert_eq!(first.get("stream"), Some(&json!("stdout")));
    assert_eq!(first.get("log.file.path"), Some(&json!(path)));
    assert_eq!(first.get("log.offset"), Some(&json!(0)));
    assert_eq!(first.get("container.id"), Some(&json!(id)));
    assert_eq!(first.get("input.type"), Some(&json!("container")));
    assert_eq!(
        events[1].get("log.offset"),
        Some(&json!(cri("stdout", "F", "hello").len()))
    );
    assert_eq!(
        first.timestamp().to_string(),
        "2024-01-01T00:00:00.000000001Z"
    );
    let src = first.source().unwrap();
    assert_eq!(
        (src.start, src.end),
        (0, cri("stdout", "F", "hello").len() as u64)
    );
}

#[test]
fn offsets_are_saved_only_behind_acknowledged_entries() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    env.append("a.log", &cri("stdout", "F", "two"));
    let mut t = env.tailer();
    let mut events = env.drain(&mut t, false);
    assert_eq!(events.len(), 2);
    let reg = |env: &Env| Registry::load(&env.dir.path().join("registry")).unwrap().0;
    assert_eq!(
        reg(&env).entries().next().unwrap().offset,
        0,
        "nothing acknowledged yet"
    );
    // Acknowledge out of order: the second first. The offset must not move past "one".
    events[1].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    assert_eq!(reg(&env).entries().next().unwrap().offset, 0);
    events[0].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    let line = cri("stdout", "F", "one").len() as u64;
    assert_eq!(reg(&env).entries().next().unwrap().offset, 2 * line);
    // A dropped token holds the offset back.
    env.append("a.log", &cri("stdout", "F", "three"));
    let lost = env.drain(&mut t, false);
    drop(lost);
    t.commit(env.t, true).unwrap();
    assert_eq!(reg(&env).entries().next().unwrap().offset, 2 * line);
    assert_eq!(t.stats().acks_abandoned, 1);
}

#[test]
fn progress_tells_what_is_read_shipped_and_waiting() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    env.append("a.log", &cri("stdout", "F", "two"));
    let line = cri("stdout", "F", "one").len() as u64;
    let mut t = env.tailer();
    let read_at = env.t;
    let mut events = env.drain(&mut t, false);
    let p = t.progress();
    assert_eq!(p.len(), 1);
    let a = &p[0];
    assert!(a.path.ends_with("/logs/a.log"), "{}", a.path);
    assert_eq!((a.size, a.read, a.shipped), (Some(2 * line), 2 * line, 0));
    assert_eq!(a.behind(), 2 * line);
    let oldest = a.oldest_unshipped.expect("two events wait");
    assert!(oldest > read_at && oldest <= env.t);

    events[0].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    let a = &t.progress()[0];
    assert_eq!((a.shipped, a.behind()), (line, line));
    assert!(a.oldest_unshipped.is_some());

    // Written but not read yet counts as behind too.
    let third = cri("stdout", "F", "three");
    env.append("a.log", &third);
    events[1].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    let a = &t.progress()[0];
    let size = 2 * line + third.len() as u64;
    assert_eq!(
        (a.read, a.shipped, a.size),
        (2 * line, 2 * line, Some(size))
    );
    assert_eq!((a.behind(), a.oldest_unshipped), (third.len() as u64, None));
}

#[test]
fn the_oldest_unshipped_entry_is_dated_by_its_line_and_survives_a_restart() {
    let mut env = Env::new();
    env.append("a.log", "2024-01-01T00:00:10.5Z stdout F ten\n");
    env.append("a.log", "2024-01-01T00:00:20Z stdout F twenty\n");
    let mut t = env.tailer();
    let mut events = env.drain(&mut t, false);
    let ten = logtide_event::Timestamp::parse_rfc3339(b"2024-01-01T00:00:10.5Z").unwrap();
    let twenty = logtide_event::Timestamp::parse_rfc3339(b"2024-01-01T00:00:20Z").unwrap();
    assert_eq!(t.progress()[0].oldest_written, Some(ten));
    events[0].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    assert_eq!(t.progress()[0].oldest_written, Some(twenty));
    // Stopped before "twenty" was acknowledged: read again, it is as old as it was.
    drop(events);
    drop(t);
    let mut t = env.tailer();
    let _again = env.drain(&mut t, false);
    assert_eq!(t.progress()[0].oldest_written, Some(twenty));
}

#[test]
fn restart_resumes_after_acknowledged_data_only() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    let mut t = env.tailer();
    assert_eq!(messages(&env.drain(&mut t, true)), ["one"]);
    env.append("a.log", &cri("stdout", "F", "two"));
    let unacked = env.drain(&mut t, false);
    assert_eq!(messages(&unacked), ["two"]);
    drop(t); // crash: "two" was never acknowledged
    let mut t = env.tailer();
    assert_eq!(messages(&env.drain(&mut t, true)), ["two"]);
    drop(t);
    let mut t = env.tailer();
    assert!(
        env.drain(&mut t, true).is_empty(),
        "everything acknowledged: nothing re-read"
    );
}

#[test]
fn an_entry_split_by_a_rename_rotation_is_one_entry() {
    let mut env = Env::new();
    env.append("0.log", &cri("stdout", "F", "before"));
    env.append("0.log", &cri("stdout", "P", "first half, "));
    let mut t = env.tailer();
    assert_eq!(messages(&env.drain(&mut t, true)), ["before"]);
    // Rotate like kubelet: rename, new file, the final chunk lands in the new file.
    fs::rename(
        env.logs().join("0.log"),
        env.logs().join("0.log.20240101-000000"),
    )
    .unwrap();
    env.append("0.log", &cri("stdout", "F", "second half"));
    env.append("0.log", &cri("stdout", "F", "after"));
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["first half, second half", "after"]);
    assert!(t.stats().files_drained >= 1);
}

#[test]
fn a_restart_in_the_middle_of_a_rotation_rebuilds_the_entry() {
    let mut env = Env::new();
    env.append("0.log", &cri("stdout", "P", "first half, "));
    let mut t = env.tailer();
    assert!(env.drain(&mut t, true).is_empty(), "the entry is pending");
    fs::rename(
        env.logs().join("0.log"),
        env.logs().join("0.log.20240101-000000"),
    )
    .unwrap();
    env.append("0.log", &cri("stdout", "F", "second half"));
    t.scan(env.t);
    t.commit(env.t, true).unwrap();
    drop(t); // crash before the new file was read
    let mut t = env.tailer();
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["first half, second half"]);
}

#[test]
fn copytruncate_starts_again_from_zero_and_counts() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    env.append("a.log", &cri("stdout", "F", "two"));
    let mut t = env.tailer();
    assert_eq!(messages(&env.drain(&mut t, true)), ["one", "two"]);
    fs::write(env.logs().join("a.log"), b"").unwrap();
    env.append("a.log", &cri("stdout", "F", "3"));
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["3"]);
    assert_eq!(t.stats().truncations, 1);
}

#[test]
fn interleaved_streams_resume_without_broken_entries() {
    // stdout entry spans lines 0..2; a stderr entry in between stays unacknowledged, so
    // the saved offset lands inside the (acknowledged) stdout entry.
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "P", "out-1 "));
    env.append("a.log", &cri("stderr", "F", "err"));
    env.append("a.log", &cri("stdout", "F", "out-2"));
    let mut t = env.tailer();
    let mut events = env.drain(&mut t, false);
    assert_eq!(messages(&events), ["err", "out-1 out-2"]);
    events[1].take_ack().unwrap().accept();
    t.commit(env.t, true).unwrap();
    drop(events);
    drop(t);
    let mut t = env.tailer();
    let events = env.drain(&mut t, true);
    assert_eq!(
        messages(&events),
        ["err"],
        "the stdout tail is not re-sent as an entry of its own"
    );
    assert_eq!(t.stats().resume_skipped_chunks, 1);
}

fn write_registry(env: &Env, text: &str) {
    let dir = env.dir.path().join("registry");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(REGISTRY_FILE), text).unwrap();
}

fn id_of(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn an_old_registry_pointing_inside_an_entry_resumes_at_the_next_boundary() {
    let mut env = Env::new();
    let l1 = cri("stdout", "F", "done before upgrade");
    let l2 = cri("stdout", "P", "partial ");
    let l3 = cri("stdout", "F", "continued");
    let l4 = cri("stdout", "F", "new entry");
    env.append("a.log", &format!("{l1}{l2}{l3}{l4}"));
    let (dev, ino) = id_of(&env.logs().join("a.log"));
    // Version 1, offset in the middle of the P line.
    let mid = l1.len() + 10;
    write_registry(
        &env,
        &format!(
            r#"{{"version":1,"files":[{{"path":"{}","dev":{dev},"ino":{ino},"offset":{mid}}}]}}"#,
            env.logs().join("a.log").display()
        ),
    );
    let mut t = env.tailer();
    let events = env.drain(&mut t, true);
    assert_eq!(
        messages(&events),
        ["new entry"],
        "no garbage, no broken entry, the file is not stopped"
    );
    assert_eq!(t.stats().resume_realigned, 1);
    assert_eq!(t.stats().parse_errors, 0);
    // The registry is now version 2 with a check hash.
    let (reg, _) = Registry::load(&env.dir.path().join("registry")).unwrap();
    let e = reg.entries().next().unwrap();
    assert!(e.prefix.is_some() && e.fingerprint.is_some());
    assert_eq!(e.offset as usize, l1.len() + l2.len() + l3.len() + l4.len());
}

#[test]
fn a_v2_registry_whose_bytes_changed_reads_the_file_again() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    let mut t = env.tailer();
    env.drain(&mut t, true);
    drop(t);
    // Same inode, same first bytes... different content before the offset.
    let path = env.logs().join("a.log");
    let text = fs::read_to_string(&path).unwrap().replace("one", "ONE");
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    let mut t = env.tailer();
    // The fingerprint covers the first bytes: the file counts as reused or changed.
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["ONE"]);
    assert_eq!(t.stats().inode_reused + t.stats().resume_hash_mismatch, 1);
}

#[test]
fn bad_input_is_counted_and_other_files_keep_flowing() {
    let mut env = Env::new();
    // Binary garbage between good lines.
    env.append("garbage.log", &cri("stdout", "F", "good 1"));
    let mut g = OpenOptions::new()
        .append(true)
        .open(env.logs().join("garbage.log"))
        .unwrap();
    g.write_all(b"\x00\xff\xfe garbage \x01\x02\n\x7f\x80\n")
        .unwrap();
    drop(g);
    env.append("garbage.log", &cri("stdout", "F", "good 2"));
    // A dangling symlink matching the glob.
    std::os::unix::fs::symlink(env.logs().join("nowhere"), env.logs().join("dangling.log"))
        .unwrap();
    // A directory matching the glob.
    fs::create_dir(env.logs().join("dir.log")).unwrap();
    // A 100 MiB line followed by a good one.
    let mut big = OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.logs().join("big.log"))
        .unwrap();
    big.write_all(b"2024-01-01T00:00:00Z stdout F ").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        big.write_all(&chunk).unwrap();
    }
    big.write_all(b"\n").unwrap();
    big.write_all(cri("stdout", "F", "after the big one").as_bytes())
        .unwrap();
    drop(big);
    env.append("ok.log", &cri("stdout", "F", "other file"));

    let (mut tc, rc) = env.config();
    tc.max_line_bytes = 64 * 1024;
    tc.read_buffer_bytes = 256 * 1024;
    let mut t = Tailer::open(tc, rc).unwrap();
    let events = env.drain(&mut t, true);
    let msgs = messages(&events);
    for want in ["good 1", "good 2", "after the big one", "other file"] {
        assert!(
            msgs.iter().any(|m| m == want),
            "{want} missing from {msgs:?}"
        );
    }
    let big_event = events
        .iter()
        .find(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("xxx"))
        })
        .unwrap();
    assert_eq!(big_event.get("log.flags"), Some(&json!(["truncated"])));
    let s = t.stats();
    assert_eq!(s.parse_errors, 2);
    assert_eq!(s.lines_too_long, 1);
    assert!(s.bytes_skipped_too_long >= (100 << 20) - 64 * 1024);
    assert!(s.scan_errors >= 1, "the dangling symlink is counted");
}

#[test]
fn deleted_files_are_drained() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    let mut t = env.tailer();
    assert_eq!(messages(&env.drain(&mut t, true)), ["one"]);
    env.append("a.log", &cri("stdout", "F", "written just before deletion"));
    fs::remove_file(env.logs().join("a.log")).unwrap();
    let events = env.drain(&mut t, true);
    assert_eq!(messages(&events), ["written just before deletion"]);
    assert_eq!(t.stats().files_drained, 1);
    assert_eq!(t.stats().tracked_files, 0, "the finished file is forgotten");
}

#[test]
fn file_changes_say_when_a_path_starts_and_is_done() {
    use logtide_tail::FileChange;
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "one"));
    env.append("b.log", &cri("stdout", "F", "two"));
    let mut t = env.tailer();
    env.drain(&mut t, true);
    let logs = env.logs();
    let path = |name: &str| -> std::sync::Arc<str> {
        std::sync::Arc::from(logs.join(name).to_string_lossy().as_ref())
    };
    let mut started = t.take_file_changes();
    started.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        started,
        [
            FileChange::Started(path("a.log")),
            FileChange::Started(path("b.log"))
        ]
    );
    assert!(t.take_file_changes().is_empty(), "changes are taken once");

    // Written before deletion, not yet acknowledged: the path is not done yet.
    env.append("a.log", &cri("stdout", "F", "last words"));
    fs::remove_file(env.logs().join("a.log")).unwrap();
    let pending = env.drain(&mut t, false);
    assert_eq!(messages(&pending), ["last words"]);
    assert!(
        t.take_file_changes().is_empty(),
        "unacknowledged lines keep the file"
    );
    for mut e in pending {
        e.take_ack().unwrap().accept();
    }
    env.drain(&mut t, true);
    assert_eq!(t.take_file_changes(), [FileChange::Finished(path("a.log"))]);

    // A new file at the same path starts it again.
    env.append("a.log", &cri("stdout", "F", "again"));
    env.drain(&mut t, true);
    assert_eq!(t.take_file_changes(), [FileChange::Started(path("a.log"))]);
}

#[test]
fn harvester_limit_bounds_open_files() {
    let mut env = Env::new();
    for i in 0..20 {
        env.append(
            &format!("f{i:02}.log"),
            &cri("stdout", "F", &format!("m{i}")),
        );
    }
    let (mut tc, rc) = env.config();
    tc.harvester_limit = 4;
    let mut t = Tailer::open(tc, rc).unwrap();
    let mut all = Vec::new();
    for _ in 0..40 {
        all.extend(env.drain(&mut t, true));
        assert!(t.stats().open_files <= 4);
    }
    let mut msgs = messages(&all);
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 20, "every file is read eventually: {msgs:?}");
}

#[test]
fn stale_partials_are_flushed_as_partial() {
    let mut env = Env::new();
    env.append("a.log", &cri("stderr", "P", "no final chunk will come"));
    let (mut tc, rc) = env.config();
    tc.flush_partial_after = Duration::from_secs(1);
    let mut t = Tailer::open(tc, rc).unwrap();
    let mut events = env.drain(&mut t, true);
    for _ in 0..20 {
        env.t += Duration::from_millis(200);
        let mut b = Vec::new();
        t.poll(env.t, &mut b, 100);
        events.extend(b);
    }
    assert_eq!(messages(&events), ["no final chunk will come"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
}

#[test]
fn files_over_the_harvester_limit_get_a_slot_without_waiting_for_a_full_scan_interval() {
    let env = Env::new();
    for i in 0..20 {
        env.append(
            &format!("f{i:02}.log"),
            &cri("stdout", "F", &format!("m{i}")),
        );
    }
    let (mut tc, rc) = env.config();
    tc.harvester_limit = 4;
    tc.scan_frequency = Duration::from_secs(3600);
    let mut t = Tailer::open(tc, rc).unwrap();
    let mut now = env.t;
    let mut got = Vec::new();
    for _ in 0..100 {
        now += Duration::from_millis(250);
        let mut batch = Vec::new();
        t.poll(now, &mut batch, 1000);
        for mut e in batch {
            e.take_ack().unwrap().accept();
            got.push(e);
        }
        t.commit(now, false).unwrap();
        assert!(t.stats().open_files <= 4);
    }
    let mut msgs = messages(&got);
    msgs.sort();
    assert_eq!(msgs.len(), 20, "{msgs:?}");
}

#[test]
fn source_identity_is_stable_as_a_young_file_grows_and_across_restarts() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "first"));
    let mut t = env.tailer();
    let first = env.drain(&mut t, true);
    env.append("a.log", &cri("stdout", "F", &"x".repeat(3000)));
    let second = env.drain(&mut t, false);
    drop(second);
    drop(t);
    let mut t = env.tailer();
    let again = env.drain(&mut t, true);
    let id = |e: &Event| e.source().unwrap().id.clone();
    assert_eq!(
        id(&first[0]),
        id(&again[0]),
        "the file grew past 1 KiB and logtide restarted"
    );
    assert!(id(&first[0]).contains(':'));
    // A different file at the same path is a different source.
    fs::remove_file(env.logs().join("a.log")).unwrap();
    env.append("a.log", &cri("stdout", "F", "another file"));
    let other = env.drain(&mut t, true);
    assert_ne!(id(&other[0]), id(&first[0]));
}

#[test]
fn a_deleted_file_not_drained_in_time_is_given_up_and_counted() {
    let mut env = Env::new();
    env.append("a.log", &cri("stdout", "F", "read"));
    let (mut tc, rc) = env.config();
    tc.close_removed_after = Duration::from_secs(2);
    let mut t = Tailer::open(tc, rc).unwrap();
    assert_eq!(messages(&env.drain(&mut t, true)), ["read"]);
    // Written and deleted, then the reader is kept away from it (the output is stuck, say)
    // for longer than close_removed_after: the bytes are given up, and counted.
    env.append("a.log", &cri("stdout", "F", "never read"));
    fs::remove_file(env.logs().join("a.log")).unwrap();
    t.scan(env.t);
    env.t += Duration::from_secs(3);
    t.commit(env.t, true).unwrap();
    let s = t.stats();
    assert_eq!(s.removed_gave_up, 1);
    assert_eq!(
        s.bytes_lost_removed,
        cri("stdout", "F", "never read").len() as u64
    );
    let losses = t.take_losses();
    assert_eq!(losses.len(), 1);
    assert!(losses[0].path.ends_with("/logs/a.log"));
    assert_eq!(
        (losses[0].bytes, losses[0].reason),
        (s.bytes_lost_removed, "deleted_before_read")
    );
    assert!(t.take_losses().is_empty(), "taken once");
    assert!(env.drain(&mut t, true).is_empty());
}

#[test]
fn gzipped_rotated_files_are_not_read() {
    let mut env = Env::new();
    env.append("0.log", &cri("stdout", "F", "plain"));
    fs::write(
        env.logs().join("0.log.20240101-000000.gz"),
        b"\x1f\x8b\x08\x00binary",
    )
    .unwrap();
    let (mut tc, rc) = env.config();
    tc.paths = vec![format!("{}/*.log*", env.logs().display())];
    let mut t = Tailer::open(tc, rc).unwrap();
    assert_eq!(messages(&env.drain(&mut t, true)), ["plain"]);
    assert_eq!(t.stats().parse_errors, 0);
    assert_eq!(t.stats().files_opened, 1);
}

/// Kubelet's layout: `containers/<pod>_<ns>_<container>-<id>.log` links to
/// `pods/<ns>_<pod>_<uid>/<container>/0.log`, which is rotated by renaming it to
/// `0.log.<YYYYMMDD-HHMMSS>` and creating a new `0.log`; the link never changes.
struct Kubelet {
    root: tempfile::TempDir,
    t: Instant,
    rotations: u32,
}

const CID: &str = "3f1c2e9a7b6d4c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";

impl Kubelet {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let k = Kubelet {
            root,
            t: Instant::now(),
            rotations: 0,
        };
        fs::create_dir_all(k.pod_dir()).unwrap();
        fs::create_dir_all(k.root.path().join("containers")).unwrap();
        std::os::unix::fs::symlink(k.pod_dir().join("0.log"), k.link()).unwrap();
        k
    }

    fn pod_dir(&self) -> PathBuf {
        self.root.path().join("pods/shop_web-1_u1/app")
    }

    fn link(&self) -> PathBuf {
        self.root
            .path()
            .join(format!("containers/web-1_shop_app-{CID}.log"))
    }

    /// The defaults, but for the paths.
    fn config(&self) -> (TailConfig, RegistryConfig) {
        let tail = TailConfig {
            paths: vec![format!("{}/containers/*.log", self.root.path().display())],
            ..TailConfig::default()
        };
        let reg = RegistryConfig {
            path: self.root.path().join("registry"),
            ..RegistryConfig::default()
        };
        (tail, reg)
    }

    fn tailer(&self) -> Tailer {
        let (t, r) = self.config();
        Tailer::open(t, r).unwrap()
    }

    fn append(&self, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.pod_dir().join("0.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Renames `0.log` away; the next append creates a new one.
    fn rotate(&mut self) -> PathBuf {
        self.rotations += 1;
        let to = self
            .pod_dir()
            .join(format!("0.log.20261206-1815{:02}", self.rotations));
        fs::rename(self.pod_dir().join("0.log"), &to).unwrap();
        to
    }

    fn poll(&mut self, t: &mut Tailer, steps: u32) -> Vec<Event> {
        poll_as_the_agent(t, &mut self.t, steps)
    }

    /// An entry's first chunk (`a `), read, then a rotation, and its second chunk (`b `)
    /// in the next file, not read yet.
    fn entry_across_a_rotation(&mut self) -> Tailer {
        self.append(&cri("stdout", "P", "a "));
        let mut t = self.tailer();
        assert!(self.poll(&mut t, 2).is_empty(), "pending");
        self.rotate();
        self.append(&cri("stdout", "P", "b "));
        t
    }
}

/// Polls as the agent does, without explicit scans (the scan interval is 10 s; each step
/// is 100 ms), and acknowledges everything.
fn poll_as_the_agent(t: &mut Tailer, now: &mut Instant, steps: u32) -> Vec<Event> {
    let mut all = Vec::new();
    for _ in 0..steps {
        *now += Duration::from_millis(100);
        let mut batch = Vec::new();
        t.poll(*now, &mut batch, 10_000);
        for mut e in batch {
            if let Some(tok) = e.take_ack() {
                tok.accept();
            }
            all.push(e);
        }
        t.commit(*now, false).unwrap();
    }
    all
}

/// dockerd's json-file layout, with the defaults but for the paths.
struct Docker {
    root: tempfile::TempDir,
    t: Instant,
}

impl Docker {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("containers").join(CID)).unwrap();
        Docker {
            root,
            t: Instant::now(),
        }
    }

    fn log(&self) -> PathBuf {
        self.root
            .path()
            .join(format!("containers/{CID}/{CID}-json.log"))
    }

    fn tailer(&self) -> Tailer {
        let tail = TailConfig {
            paths: vec![format!(
                "{}/containers/*/*-json.log",
                self.root.path().display()
            )],
            ..TailConfig::default()
        };
        let reg = RegistryConfig {
            path: self.root.path().join("registry"),
            ..RegistryConfig::default()
        };
        Tailer::open(tail, reg).unwrap()
    }

    /// Appends a piece of an entry to stdout: `msg` without a final newline is a 16 KiB
    /// piece.
    fn append(&self, msg: &str) {
        self.append_to("stdout", msg);
    }

    fn append_to(&self, stream: &str, msg: &str) {
        let line = json!({"log": msg, "stream": stream, "time": "2024-01-01T00:00:00.000000001Z"});
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }

    /// The path of rotated file `n` (`0` for the current one).
    fn rotated(&self, n: u32) -> PathBuf {
        match n {
            0 => self.log(),
            n => PathBuf::from(format!("{}.{n}", self.log().display())),
        }
    }

    /// Renames `.N` (and `.N.gz`) to `.N+1` and the current file to `.1`, and creates the
    /// next file, as dockerd does.
    fn rotate(&self) {
        for n in (1..5).rev() {
            for gz in ["", ".gz"] {
                let from = format!("{}{gz}", self.rotated(n).display());
                if Path::new(&from).exists() {
                    fs::rename(&from, format!("{}{gz}", self.rotated(n + 1).display())).unwrap();
                }
            }
        }
        fs::rename(self.log(), self.rotated(1)).unwrap();
        fs::File::create(self.log()).unwrap();
    }

    fn poll(&mut self, t: &mut Tailer, steps: u32) -> Vec<Event> {
        poll_as_the_agent(t, &mut self.t, steps)
    }
}

fn field<'e>(e: &'e Event, path: &str) -> &'e str {
    e.get(path).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn kubelet_rotations_faster_than_the_scan_interval_lose_and_split_nothing() {
    let mut k = Kubelet::new();
    k.append(&cri("stdout", "F", "one"));
    let mut t = k.tailer();
    assert_eq!(messages(&k.poll(&mut t, 2)), ["one"]);
    // Three rotations within one second, two of them in the middle of an entry.
    k.append(&cri("stdout", "P", "two-a "));
    k.rotate();
    k.append(&cri("stdout", "P", "two-b "));
    k.append(&cri("stderr", "F", "three"));
    k.rotate();
    k.append(&cri("stdout", "F", "two-c"));
    k.rotate();
    k.append(&cri("stdout", "F", "four"));
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["three", "two-a two-b two-c", "four"]);
    for e in &events {
        assert_eq!(field(e, "container.id"), CID);
        assert_eq!(field(e, "log.file.path"), k.link().to_str().unwrap());
        assert!(e.get("log.flags").is_none(), "{:?}", e.get("log.flags"));
    }
    let s = t.stats();
    assert!(s.rotations_followed >= 1, "{s:?}");
    assert_eq!(s.files_opened, 4, "every file of the sequence, once: {s:?}");
    assert_eq!((s.files_lost, s.partial_flushed, s.scans), (0, 0, 1));
}

#[test]
fn rotations_while_stopped_are_read_after_a_restart_with_the_same_identity() {
    let mut k = Kubelet::new();
    k.append(&cri("stdout", "F", "one"));
    k.append(&cri("stdout", "P", "two-a "));
    let mut t = k.tailer();
    let first = k.poll(&mut t, 2);
    assert_eq!(messages(&first), ["one"]);
    t.commit(k.t, true).unwrap();
    drop(t);
    // While logtide is stopped: two rotations.
    k.append(&cri("stdout", "P", "two-b "));
    k.rotate();
    k.append(&cri("stdout", "F", "two-c"));
    k.append(&cri("stdout", "F", "three"));
    k.rotate();
    k.append(&cri("stdout", "F", "four"));
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["two-a two-b two-c", "three", "four"]);
    for e in &events {
        assert_eq!(field(e, "container.id"), CID);
        assert_eq!(field(e, "log.file.path"), k.link().to_str().unwrap());
    }
    // A crash before anything is acknowledged reads the same entries again, with the same
    // identity (source and offset) although they are now read through rotated names.
    let sources: Vec<_> = events.iter().map(|e| e.source()).collect();
    drop(t);
    fs::remove_dir_all(k.root.path().join("registry")).unwrap();
    let mut t = k.tailer();
    t.scan(k.t);
    let mut again = Vec::new();
    for _ in 0..5 {
        k.t += Duration::from_millis(100);
        t.poll(k.t, &mut again, 10_000);
    }
    // Without a registry only the current file is read (as Filebeat does on a first
    // start); its entry has the same identity as before.
    assert_eq!(messages(&again), ["four"]);
    assert_eq!(again[0].source(), sources[2]);
}

#[test]
fn a_rotated_file_gone_before_it_was_read_splits_no_entry_into_another() {
    let mut k = Kubelet::new();
    k.append(&cri("stdout", "P", "head "));
    let mut t = k.tailer();
    assert!(k.poll(&mut t, 2).is_empty(), "pending");
    t.commit(k.t, true).unwrap();
    drop(t);
    // While stopped: the file holding the entry's tail is rotated and compressed (its
    // plain copy removed) before logtide could read it.
    let first = k.rotate();
    k.append(&cri("stdout", "F", "tail"));
    k.append(&cri("stdout", "P", "lost-a "));
    let second = k.rotate();
    let content = fs::read(&second).unwrap();
    let gz = compress(&second);
    k.append(&cri("stdout", "F", "next"));
    assert!(first.exists());
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    // The head is emitted alone and flagged partial; the next file's entry is whole.
    assert_eq!(messages(&events), ["head ", "next"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
    assert!(events[1].get("log.flags").is_none());
    let s = t.stats();
    assert_eq!((s.files_lost, s.partial_gap), (1, 1), "{s:?}");
    let losses = t.take_losses();
    assert_eq!(losses.len(), 1);
    assert_eq!(&*losses[0].path, gz.to_str().unwrap());
    // Counted in bytes of the file that was compressed.
    assert_eq!(
        (losses[0].bytes, losses[0].reason),
        (content.len() as u64, "gzipped_before_read")
    );
}

/// Compresses `path` to `path.gz` with real gzip and removes it, as kubelet and dockerd do.
fn compress(path: &Path) -> PathBuf {
    let gz = gzip_copy(path);
    fs::remove_file(path).unwrap();
    gz
}

/// Writes `path.gz`, `path` compressed with real gzip.
fn gzip_copy(path: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let content = fs::read(path).unwrap();
    let mut z = flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), Default::default());
    z.write_all(&content).unwrap();
    z.finish().unwrap();
    gz
}

#[test]
fn a_file_grown_after_its_last_save_then_compressed_while_stopped_is_counted_whole() {
    let mut k = Kubelet::new();
    let head = cri("stdout", "P", "head ");
    k.append(&head);
    let mut t = k.tailer();
    assert!(k.poll(&mut t, 2).is_empty(), "pending");
    t.commit(k.t, true).unwrap();
    drop(t);
    // While stopped: the file grows past the size the registry saved, then is rotated and
    // compressed before logtide could read it again.
    let grown = cri("stdout", "P", "middle ");
    k.append(&grown);
    let rotated = k.rotate();
    let gz = compress(&rotated);
    k.append(&cri("stdout", "F", "tail"));
    k.append(&cri("stdout", "F", "next"));
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    // The entry lost its head and middle: its tail is shipped flagged partial, never
    // joined with anything else.
    assert_eq!(messages(&events), ["tail", "next"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
    assert!(events[1].get("log.flags").is_none());
    // Lost: what the registry saw unshipped when it was written, and what the file grew by
    // after that, each once.
    let mut losses: Vec<(String, u64, &str)> = t
        .take_losses()
        .into_iter()
        .map(|l| (l.path.to_string(), l.bytes, l.reason))
        .collect();
    losses.sort();
    let mut want = vec![
        (
            // Where the registry saw it.
            rotated.with_file_name("0.log").display().to_string(),
            head.len() as u64,
            "gone_while_stopped",
        ),
        (
            gz.display().to_string(),
            grown.len() as u64,
            "gzipped_before_read",
        ),
    ];
    want.sort();
    assert_eq!(losses, want);
}

#[test]
fn a_file_lost_after_the_newest_is_counted_once_and_cuts_before_the_next_file() {
    let mut k = Kubelet::new();
    let mut t = k.entry_across_a_rotation();
    assert!(k.poll(&mut t, 2).is_empty(), "pending");
    k.rotate();
    // Written, rotated and compressed between two looks; no file after it yet.
    let lost = cri("stdout", "P", "c ");
    k.append(&lost);
    let gz = compress(&k.rotate());
    assert!(
        k.poll(&mut t, 5).is_empty(),
        "the entry may go on in a file not yet written"
    );
    // The sequence is looked at again when the next file comes: the loss is not counted
    // again, and the gap still cuts the entry before that file.
    k.append(&cri("stdout", "F", "next"));
    // As the agent does when its directory watch reports the new file.
    t.scan(k.t);
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["a b ", "next"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
    let losses: Vec<(String, u64, &str)> = t
        .take_losses()
        .into_iter()
        .map(|l| (l.path.to_string(), l.bytes, l.reason))
        .collect();
    assert_eq!(
        losses,
        [(
            gz.display().to_string(),
            lost.len() as u64,
            "gzipped_before_read"
        )]
    );
    assert_eq!(t.stats().files_lost, 1);
}

#[test]
fn docker_numbered_rotations_are_read_in_order() {
    let mut d = Docker::new();
    d.append("one\n");
    let mut t = d.tailer();
    assert_eq!(messages(&d.poll(&mut t, 5)), ["one"]);
    // 16 KiB pieces of one entry across three rotations.
    let piece = "x".repeat(16 * 1024);
    d.append(&piece);
    d.rotate();
    d.append(&piece);
    d.rotate();
    d.append("end\n");
    d.append("two\n");
    d.rotate();
    d.append("three\n");
    let events = d.poll(&mut t, 5);
    assert_eq!(
        messages(&events),
        [format!("{piece}{piece}end"), "two".into(), "three".into()]
    );
    assert!(events.iter().all(|e| field(e, "container.id") == CID));
}

#[test]
fn the_rest_of_an_entry_whose_head_was_lost_is_shipped_flagged_partial() {
    let mut k = Kubelet::new();
    k.append(&cri("stdout", "F", "one"));
    k.append(&cri("stdout", "P", "head "));
    let mut t = k.tailer();
    assert_eq!(messages(&k.poll(&mut t, 2)), ["one"]);
    t.commit(k.t, true).unwrap();
    drop(t);
    // While stopped: the file holding the head is rotated and compressed away; the entry's
    // last chunk is in the next file.
    let first = k.rotate();
    k.append(&cri("stdout", "F", "tail"));
    k.append(&cri("stdout", "F", "next"));
    k.rotate();
    fs::write(
        format!("{}.gz", first.display()),
        b"\x1f\x8b\x08\x00compressed",
    )
    .unwrap();
    fs::remove_file(&first).unwrap();
    k.append(&cri("stdout", "F", "later"));
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["tail", "next", "later"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
    assert!(events[1].get("log.flags").is_none());
    assert!(events[2].get("log.flags").is_none());
    let losses = t.take_losses();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(
        (losses[0].reason, losses[0].bytes),
        (
            "gone_while_stopped",
            cri("stdout", "P", "head ").len() as u64
        )
    );
    assert_eq!(t.stats().partial_gap, 1);
}

#[test]
fn a_rotated_file_done_with_is_saved_before_the_flush_interval() {
    let mut k = Kubelet::new();
    k.append(&cri("stdout", "F", "one"));
    let mut t = k.tailer();
    assert_eq!(messages(&k.poll(&mut t, 2)), ["one"]);
    let rotated = k.rotate();
    k.append(&cri("stdout", "F", "two"));
    // registry.flush is 1 s by default; a rotated file read to its end and acknowledged is
    // saved as done within 200 ms, so that a restart does not look for it after kubelet
    // compressed it.
    assert_eq!(messages(&k.poll(&mut t, 4)), ["two"]);
    let (reg, _) = Registry::load(&k.root.path().join("registry")).unwrap();
    let e = reg
        .entries()
        .find(|e| e.path == rotated)
        .unwrap_or_else(|| panic!("not saved: {:?}", reg.entries().collect::<Vec<_>>()));
    assert!(e.removed.is_some(), "{e:?}");
}

#[test]
fn the_registry_is_worked_out_when_it_is_written_and_is_then_current() {
    let mut env = Env::new();
    let (tail, mut reg_config) = env.config();
    reg_config.flush = Duration::from_secs(1);
    let mut t = Tailer::open(tail, reg_config).unwrap();
    let reg = |env: &Env| Registry::load(&env.dir.path().join("registry")).unwrap().0;
    let offset = |env: &Env| reg(env).entries().next().map(|e| e.offset);
    let line = cri("stdout", "F", "one").len() as u64;
    let read = |env: &mut Env, t: &mut Tailer, text: &str| {
        env.append("a.log", &cri("stdout", "F", text));
        env.t += Duration::from_millis(10);
        t.scan(env.t);
        let mut batch = Vec::new();
        t.poll(env.t, &mut batch, 100);
        for mut e in batch {
            e.take_ack().unwrap().accept();
        }
        t.commit(env.t, false).unwrap();
    };
    // The first commit writes at once; the next, 10 ms later, is not due.
    read(&mut env, &mut t, "one");
    assert_eq!(offset(&env), Some(line));
    read(&mut env, &mut t, "two");
    assert_eq!(
        offset(&env),
        Some(line),
        "written before the flush interval"
    );
    // Once due, what is written is where reading is now, not where it was when skipped.
    read(&mut env, &mut t, "six");
    env.t += Duration::from_secs(1);
    t.commit(env.t, false).unwrap();
    assert_eq!(offset(&env), Some(3 * line));
    // Forced (at shutdown), before the interval.
    read(&mut env, &mut t, "ten");
    assert_eq!(offset(&env), Some(3 * line));
    t.commit(env.t, true).unwrap();
    assert_eq!(offset(&env), Some(4 * line));
}

#[test]
fn docker_an_older_file_compressed_after_the_next_ones_last_write_is_not_lost() {
    let mut d = Docker::new();
    d.append("one\n");
    let mut t = d.tailer();
    assert_eq!(messages(&d.poll(&mut t, 5)), ["one"]);
    d.rotate();
    d.append("head ");
    assert!(d.poll(&mut t, 5).is_empty(), "pending");
    t.commit(d.t, true).unwrap();
    drop(t);
    // While stopped, the file read first is compressed: after the current file's last
    // write, so its compressed copy is newer than that file. At the start the registry
    // forgets it (finished, and deleted).
    compress(&d.rotated(1));
    let mut t = d.tailer();
    assert!(d.poll(&mut t, 5).is_empty(), "pending");
    d.rotate();
    d.append("tail\n");
    d.append("two\n");
    let events = d.poll(&mut t, 5);
    assert_eq!(messages(&events), ["head tail", "two"]);
    assert!(events.iter().all(|e| e.get("log.flags").is_none()));
    assert_eq!(t.take_losses().len(), 0);
    assert_eq!((t.stats().files_lost, t.stats().partial_gap), (0, 0));
}

#[test]
fn docker_a_file_read_whose_inode_a_new_file_took_while_stopped_is_not_lost() {
    let mut d = Docker::new();
    d.append("head ");
    let mut t = d.tailer();
    assert!(d.poll(&mut t, 5).is_empty(), "pending");
    d.rotate();
    // The next file, read to its end and acknowledged, while the entry before it waits.
    d.append_to("stderr", "err\n");
    assert_eq!(messages(&d.poll(&mut t, 5)), ["err"]);
    t.commit(d.t, true).unwrap();
    drop(t);
    // While stopped: it is rotated and compressed, and a later file gets its inode (done
    // here by writing the same inode again, as the file system may hand it out).
    d.rotate();
    d.append("tail\n");
    gzip_copy(&d.rotated(1));
    let freed = d.root.path().join("freed");
    fs::rename(d.rotated(1), &freed).unwrap();
    d.rotate();
    fs::write(&freed, "").unwrap();
    fs::rename(&freed, d.log()).unwrap();
    d.append("two\n");
    let mut t = d.tailer();
    let events = d.poll(&mut t, 5);
    assert_eq!(messages(&events), ["head tail", "two"]);
    assert!(events.iter().all(|e| e.get("log.flags").is_none()));
    assert_eq!(t.take_losses().len(), 0);
    let s = t.stats();
    assert_eq!((s.files_lost, s.partial_gap, s.inode_reused), (0, 0, 1));
}

#[test]
fn a_gap_kept_for_a_held_file_outlives_its_entry_taken_by_a_new_file() {
    let mut k = Kubelet::new();
    let mut t = k.entry_across_a_rotation();
    // The next file is rotated and compressed before it is read: a gap.
    let lost = compress(&k.rotate());
    k.append(&cri("stderr", "F", "x"));
    // The entry cut by the gap stays on its way to the output (its file is held); the
    // file after the gap is read, acknowledged, rotated away and deleted.
    let mut in_flight = Vec::new();
    let mut shipped = Vec::new();
    for _ in 0..5 {
        k.t += Duration::from_millis(100);
        let mut batch = Vec::new();
        t.poll(k.t, &mut batch, 10_000);
        for mut e in batch {
            let token = e.take_ack().unwrap();
            if e.get("message") == Some(&json!("a ")) {
                in_flight.push(token);
            } else {
                token.accept();
            }
            shipped.push(e);
        }
        t.commit(k.t, false).unwrap();
    }
    assert_eq!(messages(&shipped), ["a ", "x"]);
    fs::remove_file(&lost).unwrap();
    let after_gap = k.rotate();
    assert!(k.poll(&mut t, 100).is_empty());
    // A new file gets the inode of the file after the gap (done here by writing the same
    // inode again, as the file system may hand it out), and logtide crashes once it is
    // saved.
    fs::write(&after_gap, "").unwrap();
    fs::rename(&after_gap, k.pod_dir().join("0.log")).unwrap();
    k.append(&cri("stdout", "F", "y"));
    t.scan(k.t);
    assert_eq!(messages(&k.poll(&mut t, 5)), ["y"]);
    t.commit(k.t, true).unwrap();
    drop(t);
    drop(in_flight);
    k.append(&cri("stdout", "F", "c"));
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    // The entry read again is cut where the gap was, not joined with what came after it.
    assert_eq!(messages(&events), ["a ", "c"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
}

#[test]
fn a_gap_at_the_end_of_a_sequence_outlives_a_second_crash() {
    let mut k = Kubelet::new();
    let mut t = k.entry_across_a_rotation();
    let lost = cri("stdout", "P", "b ");
    assert!(k.poll(&mut t, 5).is_empty(), "pending");
    t.commit(k.t, true).unwrap();
    drop(t);
    // While stopped, the newest file is rotated and compressed; no file after it yet.
    compress(&k.rotate());
    let mut t = k.tailer();
    assert!(k.poll(&mut t, 2).is_empty(), "pending, and may go on");
    t.commit(k.t, true).unwrap();
    let losses: Vec<(u64, &str)> = t
        .take_losses()
        .iter()
        .map(|l| (l.bytes, l.reason))
        .collect();
    assert_eq!(losses, [(lost.len() as u64, "gone_while_stopped")]);
    // A crash before the container's next file: the start after it cuts the entry read
    // again where the file was lost, flags its rest, and does not count the loss again.
    drop(t);
    k.append(&cri("stdout", "F", "c"));
    let mut t = k.tailer();
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["a ", "c"]);
    assert_eq!(events[0].get("log.flags"), Some(&json!(["partial"])));
    assert_eq!(events[1].get("log.flags"), Some(&json!(["partial"])));
    assert_eq!(t.take_losses().len(), 0);
}

#[test]
fn an_empty_file_compressed_before_it_was_read_loses_and_cuts_nothing() {
    let mut k = Kubelet::new();
    let mut t = k.entry_across_a_rotation();
    assert!(k.poll(&mut t, 5).is_empty(), "pending");
    k.rotate();
    // The next file is created, stays empty, and is rotated and compressed unread.
    k.append("");
    compress(&k.rotate());
    k.append(&cri("stdout", "F", "c"));
    t.scan(k.t);
    let events = k.poll(&mut t, 5);
    assert_eq!(messages(&events), ["a b c"]);
    assert!(events[0].get("log.flags").is_none());
    assert_eq!(t.take_losses().len(), 0);
    assert_eq!((t.stats().files_lost, t.stats().partial_gap), (0, 0));
}

#[test]
fn a_finished_files_compressed_copy_is_known_after_every_file_it_knew_is_gone() {
    let mut d = Docker::new();
    d.append("one\n");
    let mut t = d.tailer();
    assert_eq!(messages(&d.poll(&mut t, 5)), ["one"]);
    d.rotate();
    compress(&d.rotated(1));
    // The registry forgets finished files deleted from disk every 30 s.
    d.t += Duration::from_secs(31);
    assert!(d.poll(&mut t, 5).is_empty());
    // The container's current file goes too, then logtide crashes.
    fs::remove_file(d.log()).unwrap();
    assert!(d.poll(&mut t, 5).is_empty());
    drop(t);
    let mut t = d.tailer();
    assert!(d.poll(&mut t, 5).is_empty());
    assert_eq!(t.take_losses().len(), 0);
    assert_eq!(t.stats().files_lost, 0);
}
