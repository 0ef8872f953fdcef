//! Launching local services on free loopback ports.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Whether something accepts connections on 127.0.0.1:`port` within `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A child process serving on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `command` (which must serve on 127.0.0.1:`port`) and waits for the port.
    /// Panics with `install` (how to install the service) when it cannot start.
    pub fn start(name: &'static str, mut command: Command, port: u16, install: &str) -> Service {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("service log file");
        let err = out.try_clone().expect("service log file");
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start {name} ({command:?}): {e}\n{name} is needed by this test; install it: {install}")
        });
        let mut service = Service {
            name,
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before listening on port {port}; install it: {install}\n{}",
                    service.log_tail()
                );
            }
            if wait_for_port(port, Duration::from_millis(250)) {
                return service;
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} did not listen on port {port} within 60 s\n{}",
                    service.log_tail()
                );
            }
        }
    }

    /// The port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines the service printed, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("--- {} log ---\n{}", self.name, lines[from..].join("\n"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server -H 127.0.0.1 -p PORT`, an AWS mock (`pip install 'moto[server]'`).
#[derive(Debug)]
pub struct MotoServer(Service);

impl MotoServer {
    /// Starts moto_server (`LOGTIDE_MOTO_SERVER` names the executable; default
    /// `moto_server` on the PATH). Panics when it cannot.
    pub fn start() -> MotoServer {
        MotoServer::start_with(None)
    }

    /// Starts moto_server with its IAM checks on: after the first `unsigned_calls` calls,
    /// every request must be signed (SigV4, checked) with an access key of an IAM user
    /// allowed the action (see [`S3Tool::create_iam_user`]).
    ///
    /// [`S3Tool::create_iam_user`]: crate::S3Tool::create_iam_user
    pub fn start_checking_signatures(unsigned_calls: u32) -> MotoServer {
        MotoServer::start_with(Some(unsigned_calls))
    }

    fn start_with(unsigned_calls: Option<u32>) -> MotoServer {
        let exe = std::env::var("LOGTIDE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let mut cmd = Command::new(exe);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(n) = unsigned_calls {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        MotoServer(Service::start(
            "moto_server",
            cmd,
            port,
            "pip install 'moto[server]' (scripts/test installs it)",
        ))
    }
}

impl std::ops::Deref for MotoServer {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}

/// Where the test services installed with npm live: `LOGTIDE_TEST_SERVICES`, default
/// `$HOME/.cache/logtide-test-services`.
pub fn test_services_dir() -> PathBuf {
    std::env::var_os("LOGTIDE_TEST_SERVICES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/logtide-test-services")
        })
}

/// kinesis-mock (`npm install kinesis-local`) on its plain HTTP port.
#[derive(Debug)]
pub struct KinesisMock(Service);

impl KinesisMock {
    /// Starts kinesis-mock with `streams` (name, shard count) created, and waits until
    /// they are active. Panics when it cannot.
    pub fn start(streams: &[(&str, u32)]) -> KinesisMock {
        let pkg = test_services_dir().join("node_modules/kinesis-local");
        let install = format!(
            "npm install --prefix {} kinesis-local (scripts/test installs it; LOGTIDE_TEST_SERVICES names the directory)",
            test_services_dir().display()
        );
        let main = pkg.join("main.js");
        assert!(
            main.is_file(),
            "kinesis-mock is not installed: {} is missing; install it: {install}",
            main.display()
        );
        let port = free_port();
        let tls_port = free_port();
        let init: Vec<String> = streams.iter().map(|(n, s)| format!("{n}:{s}")).collect();
        let mut cmd = Command::new(std::env::var("LOGTIDE_NODE").unwrap_or_else(|_| "node".into()));
        cmd.arg(&main)
            .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
            .env("KINESIS_MOCK_CERT_PATH", pkg.join("server.json"))
            .env("INITIALIZE_STREAMS", init.join(","))
            .env("CREATE_STREAM_DURATION", "0ms")
            .env("UPDATE_MAX_RECORD_SIZE_DURATION", "0ms")
            .env("AWS_REGION", "us-east-1")
            .env("LOG_LEVEL", "WARN");
        let mock = KinesisMock(Service::start("kinesis-mock", cmd, port, &install));
        let tool = crate::KinesisTool::new(&mock.endpoint());
        for (name, _) in streams {
            tool.wait_active(name);
        }
        mock
    }
}

impl std::ops::Deref for KinesisMock {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}
