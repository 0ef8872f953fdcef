//! The shared deterministic workload generator's logs, read back through
//! `logtide-files parse`: every line parses, and reassembly yields exactly the number of
//! messages the generator wrote (its manifest), in both formats.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::bin;
use serde_json::Value;

fn generate(format: &str) -> (PathBuf, Value) {
    let out =
        std::env::temp_dir().join(format!("logtide-workload-{}-{format}", std::process::id()));
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen_cri.py");
    let status = Command::new("python3")
        .arg(&gen)
        .args([
            "--out",
            out.to_str().expect("utf-8 temp path"),
            "--size",
            "4M",
            "--files",
            "3",
        ])
        .args(["--format", format, "--seed", "7"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", gen.display()));
    assert!(status.success(), "gen_cri.py failed");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).expect("manifest");
    (
        out,
        serde_json::from_str(&manifest).expect("manifest is JSON"),
    )
}

fn check(format: &str) {
    let (dir, manifest) = generate(format);
    for (name, expect) in manifest["files"].as_object().expect("files") {
        let path = dir.join(name);
        for (args, want) in [
            (&["parse"][..], expect["lines"].as_u64()),
            (&["parse", "--reassemble"], expect["messages"].as_u64()),
        ] {
            let out = Command::new(bin())
                .args(args)
                .arg(&path)
                .output()
                .expect("run logtide-files");
            assert!(out.status.success());
            let mut count = 0u64;
            for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line).expect("JSON output");
                assert!(v.get("error").is_none(), "{name}: {v}");
                if args.contains(&"--reassemble") {
                    assert_eq!(v["partial"], false, "{name}: every entry is finished");
                }
                count += 1;
            }
            assert_eq!(Some(count), want, "{format} {name} {args:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn generated_cri_logs_come_back_whole() {
    let _one = crate::one_at_a_time();
    check("cri");
}

#[test]
fn generated_docker_logs_come_back_whole() {
    let _one = crate::one_at_a_time();
    check("docker");
}
