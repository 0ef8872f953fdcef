//! A rules directory reloaded on change: new, edited, broken and deleted files.

use std::time::{Duration, Instant};

use logtide_alert::RuleDir;

fn names(dir: &RuleDir) -> Vec<String> {
    let mut n: Vec<String> = dir.rules().iter().map(|r| r.name().to_owned()).collect();
    n.sort();
    n
}

/// Waits for the watch to report a change and reloads.
fn reload(dir: &mut RuleDir) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.reload_if_changed().unwrap() {
        assert!(Instant::now() < deadline, "no change reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Several events may come from one write; take them all.
    std::thread::sleep(Duration::from_millis(100));
    dir.reload_if_changed().unwrap();
}

#[test]
fn edits_are_picked_up_and_bad_edits_keep_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(tmp.path().join(name), text).unwrap();
    write("a.yaml", "name: a\ntype: any\nalert: debug\n");
    std::fs::create_dir(tmp.path().join("team")).unwrap();
    write("team/b.yml", "name: b\ntype: any\nalert: debug\n");
    write("notes.txt", "not a rule");
    let mut dir = RuleDir::open(tmp.path()).unwrap();
    assert_eq!(names(&dir), ["a", "b"]);
    assert!(dir.errors().is_empty());

    write(
        "c.yaml",
        "name: c\ntype: frequency\nnum_events: 2\ntimeframe: 1m\nalert: debug\n",
    );
    reload(&mut dir);
    assert_eq!(names(&dir), ["a", "b", "c"]);

    // A broken edit: c stays as it was, and the error names the file.
    write("c.yaml", "name: c\ntype: frequency\nnum_events: many\n");
    reload(&mut dir);
    assert_eq!(names(&dir), ["a", "b", "c"]);
    let c = dir.rules().into_iter().find(|r| r.name() == "c").unwrap();
    assert_eq!(c.type_name(), "frequency");
    let errors: Vec<String> = dir.errors().iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].ends_with("c.yaml: num_events: expected a number, found \"many\""),
        "{errors:?}"
    );

    // A second rule named a is refused; the first stays.
    write("z.yaml", "name: a\ntype: any\nalert: debug\n");
    reload(&mut dir);
    let errors: Vec<String> = dir.errors().iter().map(ToString::to_string).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("z.yaml: rule \"a\" is already defined in")),
        "{errors:?}"
    );
    assert_eq!(
        dir.rules()
            .iter()
            .find(|r| r.name() == "a")
            .unwrap()
            .origin(),
        tmp.path().join("a.yaml").display().to_string()
    );

    std::fs::remove_file(tmp.path().join("team/b.yml")).unwrap();
    std::fs::remove_file(tmp.path().join("z.yaml")).unwrap();
    reload(&mut dir);
    assert_eq!(names(&dir), ["a", "c"]);
}
