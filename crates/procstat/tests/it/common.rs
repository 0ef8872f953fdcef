//! Helpers shared by the integration tests: fixture host roots and golden files.

#![allow(unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use logtide_event::{Event, Timestamp};
use logtide_procstat::SampleTime;

/// `tests/data/<rel>`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A host root made of symbolic links to fixture directories, switchable between
/// samples.
pub struct FixtureRoot {
    pub dir: tempfile::TempDir,
}

impl FixtureRoot {
    pub fn new() -> Self {
        FixtureRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Points `<root>/<name>` (`proc`, `sys`) at `tests/data/<target>`.
    pub fn link(&self, name: &str, target: &str) {
        let link = self.dir.path().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(data(target), link).unwrap();
    }
}

/// Sample `n` of a test: 2024-05-01T10:00:00Z plus `n` seconds, monotonic `n` seconds.
pub fn at(n: u64) -> SampleTime {
    let wall = Timestamp::parse_rfc3339(b"2024-05-01T10:00:00Z").unwrap();
    let wall = Timestamp::new(wall.unix_secs() + n as i64, 0).unwrap();
    SampleTime::new(wall, Duration::from_secs(n))
}

/// The events as NDJSON.
pub fn ndjson(events: &[Event]) -> String {
    let mut out = Vec::new();
    for e in events {
        e.write_json(&mut out);
        out.push(b'\n');
    }
    String::from_utf8(out).unwrap()
}

/// Compares `actual` with the golden file `tests/data/<rel>`; with `UPDATE_GOLDEN=1` in
/// the environment, writes it instead.
pub fn golden(rel: &str, actual: &str) {
    let path = data(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != actual {
        for (i, (w, a)) in want.lines().zip(actual.lines()).enumerate() {
            assert_eq!(w, a, "{}: line {} differs", path.display(), i + 1);
        }
        assert_eq!(
            want.lines().count(),
            actual.lines().count(),
            "{}: line count differs",
            path.display()
        );
    }
}

/// What a test kubelet saw of one request.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub request_line: String,
    pub authorization: Option<String>,
}

/// A kubelet stand-in on loopback: an HTTPS server (rustls, the `tls/kubelet.pem`
/// certificate signed by `tls/ca.pem`) answering every request with `status` and `body`.
/// It stops by itself after 30 seconds.
pub struct TestKubelet {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl TestKubelet {
    pub fn start(status: &'static str, body: Vec<u8>) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};

        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(data("tls/kubelet.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(data("tls/kubelet.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                let (tcp, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = loop {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => {
                            request.extend_from_slice(&buf[..n]);
                            if request.windows(4).any(|w| w == b"\r\n\r\n") {
                                break true;
                            }
                        }
                    }
                };
                if !complete {
                    // The client refused the certificate, or went away.
                    continue;
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let mut lines = text.lines();
                let request_line = lines.next().unwrap_or_default().to_owned();
                let authorization = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.trim().to_owned());
                log.lock().unwrap().push(Seen {
                    request_line,
                    authorization,
                });
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(&body);
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        TestKubelet { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A loopback URL where nothing listens.
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("https://127.0.0.1:{port}")
}
