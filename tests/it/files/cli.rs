//! Behaviour of `logtide-files parse` that the conformance cases do not cover: exit
//! codes, files, limits and the JSON view of non-UTF-8 bytes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::bin;
use serde_json::{json, Value};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logtide-files");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn objects(out: &Output) -> Vec<Value> {
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("each output line is JSON"))
        .collect()
}

fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("logtide-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write temp file");
    path
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let _one = crate::one_at_a_time();
    for args in [
        &["parse", "--format", "xml"][..],
        &["parse", "--stream", "stdin"],
        &["parse", "--max-entry-bytes", "0"],
        &["frobnicate"],
    ] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
    }
}

#[test]
fn bad_lines_are_reported_and_exit_is_0() {
    let _one = crate::one_at_a_time();
    let input = b"2016-10-06T00:17:09.669794202Z stdout F ok\n\
                  2016-10-06T00:17:09.669794202Z stdin F msg\n\
                  {\"log\":1}\n";
    let out = run(&["parse"], input);
    assert_eq!(out.status.code(), Some(0));
    let got = objects(&out);
    assert_eq!(got[0]["message"], "ok");
    assert_eq!(
        got[1],
        json!({"error": "invalid CRI line at column 31: stream must be stdout or stderr", "line": 2})
    );
    assert_eq!(got[2]["line"], 3);
    assert_eq!(
        got[2]["error"],
        "invalid docker json-file line at column 7: \"log\" must be a string"
    );
}

#[test]
fn non_utf8_bytes_become_replacement_characters() {
    let _one = crate::one_at_a_time();
    let out = run(
        &["parse"],
        b"2016-10-06T00:17:09.669794202Z stdout F caf\xff e\n",
    );
    assert_eq!(objects(&out)[0]["message"], "caf\u{fffd} e");
}

#[test]
fn files_are_joined_separately_and_errors_name_the_file() {
    let _one = crate::one_at_a_time();
    let a = temp_file(
        "a.log",
        b"2024-01-01T00:00:00Z stdout P a1\n2024-01-01T00:00:01Z stdout F a2\nbad\n",
    );
    let b = temp_file(
        "b.log",
        b"2024-01-01T00:00:02Z stdout F b1\n2024-01-01T00:00:03Z stderr P dangling",
    );
    let out = run(
        &[
            "parse",
            "--reassemble",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    let got = objects(&out);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0]["message"], "a1a2");
    assert_eq!(got[1]["line"], 3);
    assert_eq!(got[1]["file"], a.to_str().unwrap());
    assert_eq!(got[2]["message"], "b1");
    assert_eq!(
        got[3],
        json!({"time": "2024-01-01T00:00:03.000000000Z", "stream": "stderr", "partial": true,
               "message": "dangling", "flushed_at_eof": true})
    );
}

#[test]
fn a_missing_file_fails_but_the_others_are_read() {
    let _one = crate::one_at_a_time();
    let good = temp_file("good.log", b"2024-01-01T00:00:00Z stdout F fine\n");
    let out = run(
        &["parse", "/nonexistent/x.log", good.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/x.log"));
    assert_eq!(objects(&out)[0]["message"], "fine");
}

#[test]
fn max_entry_bytes_cuts_and_flags() {
    let _one = crate::one_at_a_time();
    let input = b"2024-01-01T00:00:00Z stdout P 0123\n2024-01-01T00:00:00Z stdout F 4567\n";
    let out = run(&["parse", "--reassemble", "--max-entry-bytes", "6"], input);
    let got = objects(&out);
    assert_eq!(got[0]["message"], "012345");
    assert_eq!(got[0]["truncated"], true);
    assert_eq!(got[0]["partial"], false);
}

#[test]
fn stream_filter_applies_with_and_without_joining() {
    let _one = crate::one_at_a_time();
    let input = b"2024-01-01T00:00:00Z stdout F out\n2024-01-01T00:00:00Z stderr P e1\n2024-01-01T00:00:01Z stderr F e2\n";
    let got = objects(&run(&["parse", "--stream", "stderr"], input));
    assert_eq!(
        got.iter().map(|o| o["message"].clone()).collect::<Vec<_>>(),
        [json!("e1"), json!("e2")]
    );
    let got = objects(&run(
        &["parse", "--stream", "stderr", "--reassemble"],
        input,
    ));
    assert_eq!(
        got.iter().map(|o| o["message"].clone()).collect::<Vec<_>>(),
        [json!("e1e2")]
    );
    let got = objects(&run(
        &["parse", "--stream", "stdout", "--reassemble"],
        input,
    ));
    assert_eq!(
        got.iter().map(|o| o["message"].clone()).collect::<Vec<_>>(),
        [json!("out")]
    );
}

#[test]
fn forced_format_applies_to_every_line() {
    let _one = crate::one_at_a_time();
    let docker = br#"{"log":"x\n","stream":"stdout","time":"2016-10-05T00:00:30Z"}"#;
    let got = objects(&run(&["parse", "--format", "cri"], docker));
    assert!(got[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid CRI line"));
    let got = objects(&run(
        &["parse", "--format", "docker"],
        b"2024-01-01T00:00:00Z stdout F x",
    ));
    assert!(got[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid docker json-file line"));
}

#[test]
fn the_bundled_examples_parse_cleanly() {
    let _one = crate::one_at_a_time();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/logs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/logs exists")
        .map(|e| e.expect("dir entry").path().display().to_string())
        .filter(|p| p.ends_with(".log"))
        .collect();
    files.sort();
    let mut args = vec!["parse", "--reassemble"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, b"");
    assert_eq!(out.status.code(), Some(0));
    let got = objects(&out);
    let errors: Vec<_> = got.iter().filter(|o| o.get("error").is_some()).collect();
    // The examples hold exactly one deliberately broken line, to show the error output.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(got
        .iter()
        .any(|o| o["message"].as_str().is_some_and(|m| m.len() > 16384)));
}
