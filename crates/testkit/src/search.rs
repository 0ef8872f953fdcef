//! Elasticsearch- and OpenSearch-compatible servers for tests, a client to read them
//! back, and a proxy that throttles bulk items.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{lock, read_message, Message};
use crate::service::{free_port, Service};

const INSTALL: &str = "pip install noida-db osmem-server (scripts/test installs it)";

/// Asks Python where a pip package keeps its server binary. The binary is started
/// directly (not through pip's wrapper script) so that dropping the service kills it.
fn bundled_binary(env: &str, script: &str, name: &str) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    let python = std::env::var("LOGTIDE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).args(["-c", script]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Ok(o) => panic!(
            "{name} is not installed ({python} could not find it: {}); this test needs it; install it: {INSTALL}, or set {env}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run {python} to find {name}: {e}; install it: {INSTALL}, or set {env}"
        ),
    }
}

/// Which kind of server a [`SearchServer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchKind {
    /// noida-db's Elasticsearch 8 API.
    NoidaDb,
    /// osmem-server, an OpenSearch 3 API.
    Osmem,
}

/// A search server on a free 127.0.0.1 port; killed when dropped.
#[derive(Debug)]
pub struct SearchServer {
    kind: SearchKind,
    service: Service,
}

impl SearchServer {
    /// Starts the server of `kind`. Panics, naming the install command, when it cannot.
    pub fn start(kind: SearchKind) -> SearchServer {
        match kind {
            SearchKind::NoidaDb => NoidaDb::start().0,
            SearchKind::Osmem => OsmemServer::start().0,
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> SearchKind {
        self.kind
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.service.endpoint()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.service.port()
    }

    /// The server's last log lines.
    pub fn log_tail(&self) -> String {
        self.service.log_tail()
    }
}

/// `noida-db start --only elasticsearch` (`pip install noida-db`): the Elasticsearch 8
/// API. `LOGTIDE_NOIDA_DB` names the binary.
#[derive(Debug)]
pub struct NoidaDb(SearchServer);

impl NoidaDb {
    /// Starts noida-db with a fresh data directory. Panics when it cannot.
    pub fn start() -> NoidaDb {
        let exe = bundled_binary(
            "LOGTIDE_NOIDA_DB",
            "import importlib.resources as r; print(r.files('noida_db').joinpath('noida-db'))",
            "noida-db",
        );
        let port = free_port();
        let mut cmd = Command::new(exe);
        // The data directory is relative: inside the service's own temporary directory.
        cmd.args(["start", "--host", "127.0.0.1", "--only", "elasticsearch"])
            .arg("--elasticsearch-port")
            .arg(port.to_string())
            .args(["--data-dir", "noida-data"]);
        let service = Service::start("noida-db", cmd, port, INSTALL);
        let server = SearchServer {
            kind: SearchKind::NoidaDb,
            service,
        };
        SearchTool::new(&server.endpoint()).wait_ready();
        NoidaDb(server)
    }
}

impl std::ops::Deref for NoidaDb {
    type Target = SearchServer;
    fn deref(&self) -> &SearchServer {
        &self.0
    }
}

/// `osmem-server` (`pip install osmem-server`): an in-memory OpenSearch API.
/// `LOGTIDE_OSMEM_SERVER` names the binary.
#[derive(Debug)]
pub struct OsmemServer(SearchServer);

impl OsmemServer {
    /// Starts osmem-server. Panics when it cannot.
    pub fn start() -> OsmemServer {
        let exe = bundled_binary(
            "LOGTIDE_OSMEM_SERVER",
            "import osmem_server; print(osmem_server.resolve_binary())",
            "osmem-server",
        );
        let port = free_port();
        let mut cmd = Command::new(exe);
        cmd.arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--no-stdin-watch")
            .arg("--no-ja")
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        let service = Service::start("osmem-server", cmd, port, INSTALL);
        let server = SearchServer {
            kind: SearchKind::Osmem,
            service,
        };
        SearchTool::new(&server.endpoint()).wait_ready();
        OsmemServer(server)
    }
}

impl std::ops::Deref for OsmemServer {
    type Target = SearchServer;
    fn deref(&self) -> &SearchServer {
        &self.0
    }
}

/// A plain HTTP client for reading a search server back in tests (not logtide's).
#[derive(Clone, Debug)]
pub struct SearchTool {
    base: String,
    agent: ureq::Agent,
}

impl SearchTool {
    /// A client of the server at `endpoint`.
    pub fn new(endpoint: &str) -> SearchTool {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        SearchTool {
            base: endpoint.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    /// Sends a request; returns the status and the JSON body (`null` when empty or not
    /// JSON).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json");
        let result = match body {
            Some(b) => self.agent.run(
                req.body(serde_json::to_vec(b).expect("JSON"))
                    .expect("request"),
            ),
            None => self.agent.run(req.body(()).expect("request")),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {url}: reading the answer: {e}"));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Waits until `GET /` answers.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{}/", self.base);
            if let Ok(r) = self.agent.get(&url).call() {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not answer within 30 s"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes everything indexed so far searchable.
    pub fn refresh(&self, index: &str) {
        let (status, body) = self.request("POST", &format!("/{index}/_refresh"), None);
        assert!(
            status < 300 || status == 404,
            "refresh of {index}: {status} {body}"
        );
    }

    /// `_count` of `index` after a refresh (0 for a missing index).
    pub fn count(&self, index: &str) -> u64 {
        self.refresh(index);
        let (status, body) = self.request("GET", &format!("/{index}/_count"), None);
        if status == 404 {
            return 0;
        }
        assert_eq!(status, 200, "count of {index}: {body}");
        body["count"].as_u64().expect("count")
    }

    /// The `_source` of a document, if it exists.
    pub fn get(&self, index: &str, id: &str) -> Option<Value> {
        let (status, body) = self.request("GET", &format!("/{index}/_doc/{id}"), None);
        (status == 200 && body["found"] == json!(true)).then(|| body["_source"].clone())
    }

    /// The documents of `index` (up to 10 000, the default result window) as (`_id`,
    /// `_source`), after a refresh.
    pub fn all(&self, index: &str) -> Vec<(String, Value)> {
        self.refresh(index);
        let (status, body) = self.request(
            "POST",
            &format!("/{index}/_search"),
            Some(&json!({"size": 10000, "query": {"match_all": {}}})),
        );
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "search of {index}: {body}");
        hits(&body)
    }

    /// Searches `index` with an `ids` query for `ids` (at most 10 000) and returns the
    /// documents found, by id.
    pub fn search_ids(&self, index: &str, ids: &[String]) -> BTreeMap<String, Value> {
        self.refresh(index);
        let (status, body) = self.request(
            "POST",
            &format!("/{index}/_search"),
            Some(&json!({"size": ids.len(), "query": {"ids": {"values": ids}}})),
        );
        if status == 404 {
            return BTreeMap::new();
        }
        assert_eq!(status, 200, "search of {index}: {body}");
        hits(&body).into_iter().collect()
    }

    /// Looks `ids` up in `index` by `_id` (`_mget`, 1000 at a time) and returns the
    /// documents found, by id.
    pub fn get_many(&self, index: &str, ids: &[String]) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(1000) {
            let (status, body) = self.request(
                "POST",
                &format!("/{index}/_mget"),
                Some(&json!({ "ids": chunk })),
            );
            if status == 404 {
                return out;
            }
            assert_eq!(status, 200, "_mget of {index}: {body}");
            for d in body["docs"].as_array().into_iter().flatten() {
                if d["found"] == json!(true) {
                    out.insert(
                        d["_id"].as_str().unwrap_or_default().to_owned(),
                        d["_source"].clone(),
                    );
                }
            }
        }
        out
    }
}

fn hits(body: &Value) -> Vec<(String, Value)> {
    body["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    (
                        h["_id"].as_str().unwrap_or_default().to_owned(),
                        h["_source"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a [`BulkProxy`] did.
#[derive(Clone, Debug, Default)]
pub struct BulkProxyLog {
    /// Requests seen.
    pub requests: u64,
    /// `_bulk` requests seen.
    pub bulk_requests: u64,
    /// Bulk items answered 429 without reaching the server.
    pub throttled_items: u64,
    /// Whole requests answered 429 or 503 without reaching the server.
    pub rejected_requests: u64,
    /// Requests whose body was gzip-compressed.
    pub gzipped: u64,
    /// `Authorization` headers seen, in order.
    pub authorizations: Vec<String>,
}

/// What the proxy does with a `_bulk` request.
#[derive(Clone, Copy, Debug)]
pub enum BulkFault {
    /// Pass it on.
    Pass,
    /// Answer 429 or 503 (the status given) for the whole request.
    Reject(u16),
    /// Answer 429 for the items whose position in the request the function picks, and
    /// pass the others on.
    ThrottleItems(fn(usize) -> bool),
}

type BulkPlan = Box<dyn FnMut(u64) -> BulkFault + Send>;

struct ProxyShared {
    upstream: String,
    plan: Mutex<BulkPlan>,
    log: Mutex<BulkProxyLog>,
    stop: AtomicBool,
    agent: ureq::Agent,
}

/// An HTTP proxy on loopback in front of a search server: `_bulk` requests are handled
/// as the plan says (numbered from 0), everything else passes.
pub struct BulkProxy {
    port: u16,
    shared: Arc<ProxyShared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BulkProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkProxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl BulkProxy {
    /// A proxy on a free port in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: impl FnMut(u64) -> BulkFault + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            plan: Mutex::new(Box::new(plan)),
            log: Mutex::new(BulkProxyLog::default()),
            stop: AtomicBool::new(false),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent(),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        BulkProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the plan (request numbers go on counting).
    pub fn set_plan(&self, plan: impl FnMut(u64) -> BulkFault + Send + 'static) {
        *lock(&self.shared.plan) = Box::new(plan);
    }

    /// What the proxy did so far.
    pub fn log(&self) -> BulkProxyLog {
        lock(&self.shared.log).clone()
    }
}

impl Drop for BulkProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn respond(w: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Passes a request on; returns status and body.
fn pass(
    s: &ProxyShared,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let url = format!("{}{path}", s.upstream);
    let mut b = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    let result = if body.is_empty() && (method == "GET" || method == "HEAD" || method == "DELETE") {
        s.agent.run(b.body(()).expect("request"))
    } else {
        s.agent.run(b.body(body).expect("request"))
    };
    match result {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let bytes = r
                .body_mut()
                .with_config()
                .limit(256 << 20)
                .read_to_vec()
                .unwrap_or_default();
            (status, bytes)
        }
        Err(e) => (502, format!("{{\"error\":\"proxy: {e}\"}}").into_bytes()),
    }
}

fn serve(conn: TcpStream, s: &ProxyShared) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    while let Some(mut req) =
        read_message(&mut r, || w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"))?
    {
        let gzipped = req
            .header("content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        if gzipped {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&req.body[..]).read_to_end(&mut plain)?;
            req.body = plain;
        }
        let is_bulk = req
            .path()
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/_bulk"));
        let fault = {
            let mut log = lock(&s.log);
            log.requests += 1;
            log.gzipped += u64::from(gzipped);
            if let Some(a) = req.header("authorization") {
                log.authorizations.push(a.to_owned());
            }
            if is_bulk {
                let n = log.bulk_requests;
                log.bulk_requests += 1;
                drop(log);
                (lock(&s.plan))(n)
            } else {
                BulkFault::Pass
            }
        };
        let ct = req.header("content-type").map(str::to_owned);
        let (status, body) = match fault {
            BulkFault::Pass => {
                let body = std::mem::take(&mut req.body);
                pass(s, req.method(), req.path(), ct.as_deref(), body)
            }
            BulkFault::Reject(status) => {
                lock(&s.log).rejected_requests += 1;
                let body = json!({"error": {"type": "es_rejected_execution_exception", "reason": "rejected by the test proxy"}, "status": status});
                (status, body.to_string().into_bytes())
            }
            BulkFault::ThrottleItems(pick) => throttle_items(s, &req, ct.as_deref(), pick),
        };
        respond(&mut w, status, &body)?;
    }
    Ok(())
}

/// Answers the picked items 429 and passes the others on, merging the answers in order.
fn throttle_items(
    s: &ProxyShared,
    req: &Message,
    ct: Option<&str>,
    pick: fn(usize) -> bool,
) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(&req.body);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let items: Vec<(&str, &str)> = lines
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().unwrap_or("{}")))
        .collect();
    let mut forward = String::new();
    let mut throttled = Vec::new();
    for (i, (action, doc)) in items.iter().enumerate() {
        if pick(i) {
            throttled.push(true);
        } else {
            throttled.push(false);
            forward.push_str(action);
            forward.push('\n');
            forward.push_str(doc);
            forward.push('\n');
        }
    }
    let mut passed: Vec<Value> = Vec::new();
    if !forward.is_empty() {
        let (status, body) = pass(s, "POST", req.path(), ct, forward.into_bytes());
        if status != 200 {
            return (status, body);
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        passed = v["items"].as_array().cloned().unwrap_or_default();
    }
    let mut passed = passed.into_iter();
    let mut out = Vec::new();
    let mut n = 0;
    for ((action, _), t) in items.iter().zip(throttled) {
        if t {
            n += 1;
            let a: Value = serde_json::from_str(action).unwrap_or(Value::Null);
            let (op, meta) = a
                .as_object()
                .and_then(|m| m.iter().next())
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap_or(("index".into(), Value::Null));
            out.push(json!({op: {
                "_index": meta["_index"], "_id": meta["_id"], "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "rejected by the test proxy"}
            }}));
        } else {
            out.push(passed.next().unwrap_or(Value::Null));
        }
    }
    lock(&s.log).throttled_items += n;
    let body = json!({"took": 1, "errors": true, "items": out});
    (200, body.to_string().into_bytes())
}
