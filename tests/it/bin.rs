//! The workspace's executables, built fresh for the tests that run them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The executable `name` (`logtide-files`, `logtide-metrics`, `logtide-relay`) of this
/// build, up to date with the sources.
///
/// Cargo sets `CARGO_BIN_EXE_<name>` only for the tests of the package that owns the
/// binary, so this crate finds the executables itself:
///
/// 1. Once per test process, it runs `cargo build --workspace --bins --tests --quiet` in
///    the workspace root, with this process's environment (`CARGO_TARGET_DIR` and the
///    rest), so the binaries are fresh. `--workspace --bins --tests` resolves features as
///    the `cargo test --workspace` that runs these tests does (dev-dependencies active):
///    after that run nothing is relinked, and the executables have the workspace's
///    features. Cargo's errors go to standard error; a failed build panics with the
///    command and its exit status. (A nested `cargo build` inside a running `cargo test`
///    does not deadlock.)
/// 2. The executable is `<target>/<profile>/<name>`: this test binary is
///    `<target>/<profile>/deps/it-<hash>`. It panics, naming the path, if the executable
///    is not there after the build. For a profile directory other than `debug` (`cargo
///    test --release`, or `--profile <p>`) the build gets that profile too.
pub(crate) fn path(name: &str) -> &'static Path {
    static PROFILE_DIR: OnceLock<PathBuf> = OnceLock::new();
    static FOUND: Mutex<Vec<(String, &'static Path)>> = Mutex::new(Vec::new());
    let dir = PROFILE_DIR.get_or_init(build);
    let mut found = FOUND.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, exe)) = found.iter().find(|(n, _)| n == name) {
        return exe;
    }
    let exe = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.is_file(),
        "{} does not exist after `cargo build --workspace --bins --tests`: is `{name}` a binary of the workspace?",
        exe.display()
    );
    let exe: &'static Path = Box::leak(exe.into_boxed_path());
    found.push((name.to_owned(), exe));
    exe
}

/// Builds the workspace's binaries and returns the profile directory they are in.
fn build() -> PathBuf {
    let current = std::env::current_exe().expect("the path of the test binary");
    let deps = current
        .parent()
        .expect("the test binary is in <profile>/deps");
    let dir = deps
        .parent()
        .expect("the test binary is in <target>/<profile>/deps")
        .to_owned();
    let mut args = vec!["build", "--workspace", "--bins", "--tests", "--quiet"];
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    match profile {
        "debug" => {}
        "release" => args.push("--release"),
        other => args.extend(["--profile", other]),
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let status = Command::new(&cargo)
        .args(&args)
        .current_dir(root)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {} {args:?} in {root}: {e}", cargo.display()));
    assert!(
        status.success(),
        "{} {args:?} in {root} failed ({status}): the binaries the tests run cannot be built; cargo's error is above",
        cargo.display()
    );
    dir
}
