//! Shared by the end-to-end tests of logtide-relay that run logtide-files too: finding
//! (or building) the agent, writing kubelet-style CRI logs, and running either binary.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use logtide_testkit::AWS_ENV;

/// `logtide-files`, built beside `logtide-relay` (`crate::bin::path` builds both).
pub fn files_bin() -> PathBuf {
    crate::bin::path("logtide-files").to_path_buf()
}

/// An entry as kubelet writes it: `P` chunks of 16 KiB, then `F`.
pub fn cri(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    loop {
        let mut cut = rest.len().min(16 * 1024);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let tag = if cut == rest.len() { "F" } else { "P" };
        out.push_str(&format!(
            "2024-06-01T00:36:59.526712987Z stdout {tag} {}\n",
            &rest[..cut]
        ));
        if cut == rest.len() {
            return out;
        }
        rest = &rest[cut..];
    }
}

/// Appends `text` to the file at `path`, creating it.
pub fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// Starts a binary with fake AWS credentials, its log in `log`.
pub fn start(bin: &Path, args: &[&str], log: &Path) -> Child {
    Command::new(bin)
        .args(args)
        .envs(AWS_ENV)
        .env("LOGTIDE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Stops a binary with SIGTERM; it must exit 0.
pub fn sigterm(child: &mut Child, log: &Path) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{status}: {}",
        fs::read_to_string(log).unwrap_or_default()
    );
}
