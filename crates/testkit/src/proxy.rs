//! A fault-injecting HTTP proxy on loopback, in front of a Kinesis-compatible service.
//!
//! Each request the client sends is handled as the plan says: passed on, answered with a
//! throttling error or a 500 without reaching the service, cut by a connection reset
//! (before or after the service saw it), or — for PutRecords — passed on without some of
//! its records, which are answered as throttled in the response, as Kinesis does on a
//! partial failure — or held unanswered (a blackhole) until the test resets it.

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::http::{lock, read_message, Message};

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Pass it on and return the answer.
    Pass,
    /// Answer 400 `ProvisionedThroughputExceededException` without passing it on.
    Throttle,
    /// Answer 500 `InternalFailure` without passing it on.
    ServerError,
    /// Reset the connection without passing it on.
    Reset,
    /// Pass it on, then reset the connection instead of answering: the service has the
    /// records, the client does not know.
    ResetAfterForward,
    /// For PutRecords: pass on only the records whose position `keep` says, answer the
    /// others as throttled. Other requests pass.
    FailRecords(fn(usize) -> bool),
    /// Hold a request that writes (PUT or POST, such as an S3 upload) this long before
    /// passing it on; other requests pass at once.
    StallWrites(Duration),
    /// Read the request and never answer: the connection stays open, silent, until
    /// [`FaultProxy::reset_held`] resets it (or the proxy is dropped).
    Blackhole,
}

/// What the proxy did, for the test to check against.
#[derive(Clone, Default)]
pub struct ProxyLog {
    /// Requests seen.
    pub requests: u64,
    /// Requests answered with a throttling error.
    pub throttled: u64,
    /// Requests answered with a 500.
    pub server_errors: u64,
    /// Connections reset (before or after passing the request on).
    pub resets: u64,
    /// PutRecords records answered as throttled without reaching the service.
    pub records_failed: u64,
    /// Writing requests held back by [`Fault::StallWrites`] (counted when the hold starts).
    pub stalled: u64,
    /// Requests never answered ([`Fault::Blackhole`]).
    pub blackholed: u64,
    /// Data of the records the service received but whose answer was cut: the only
    /// records that may legitimately arrive twice.
    pub unanswered: HashSet<Vec<u8>>,
}

impl std::fmt::Debug for ProxyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyLog")
            .field("requests", &self.requests)
            .field("throttled", &self.throttled)
            .field("server_errors", &self.server_errors)
            .field("resets", &self.resets)
            .field("records_failed", &self.records_failed)
            .field("stalled", &self.stalled)
            .field("blackholed", &self.blackholed)
            .field("unanswered_records", &self.unanswered.len())
            .finish()
    }
}

type Plan = Box<dyn FnMut(u64) -> Fault + Send>;

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<Plan>,
    log: Mutex<ProxyLog>,
    counter: AtomicU64,
    stop: AtomicBool,
    /// Connections of blackholed requests, open and silent.
    held: Mutex<Vec<TcpStream>>,
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// A proxy on a free 127.0.0.1 port in front of 127.0.0.1:`upstream_port`; `plan`
    /// gets the number of each request (from 0) and says what to do with it.
    pub fn start(upstream_port: u16, plan: impl FnMut(u64) -> Fault + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            plan: Mutex::new(Box::new(plan)),
            log: Mutex::new(ProxyLog::default()),
            counter: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || serve(conn, &s));
            }
        });
        FaultProxy {
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
    pub fn set_plan(&self, plan: impl FnMut(u64) -> Fault + Send + 'static) {
        *lock(&self.shared.plan) = Box::new(plan);
    }

    /// What the proxy did so far.
    pub fn log(&self) -> ProxyLog {
        lock(&self.shared.log).clone()
    }

    /// Resets the connections held by [`Fault::Blackhole`] (the client sees a connection
    /// reset, as when a network path comes back); returns how many.
    pub fn reset_held(&self) -> usize {
        let held = std::mem::take(&mut *lock(&self.shared.held));
        for conn in &held {
            reset(conn);
        }
        held.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset_held();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Sends `req` to the service on a fresh connection and returns its answer.
fn forward(upstream: SocketAddr, req: &Message) -> std::io::Result<Message> {
    let conn = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut w = conn.try_clone()?;
    req.write(&mut w, &[("Connection", "close".into())])?;
    let mut r = BufReader::new(conn);
    read_message(&mut r, || Ok(()))?
        .ok_or_else(|| std::io::Error::other("the service closed without answering"))
}

fn error_response(status: &str, kind: &str, message: &str) -> Message {
    Message {
        start: format!("HTTP/1.1 {status}"),
        headers: vec![
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("x-amzn-ErrorType".into(), kind.into()),
            ("x-amzn-RequestId".into(), "logtide-fault-proxy".into()),
        ],
        body: json!({"__type": kind, "message": message})
            .to_string()
            .into_bytes(),
    }
}

fn reset(conn: &TcpStream) {
    let _ = socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO));
    let _ = conn.shutdown(Shutdown::Both);
}

/// The data of a PutRecords entry (base64 in the request).
fn record_data(rec: &Value) -> Vec<u8> {
    use base64::Engine;
    let text = rec["Data"].as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let req = match read_message(&mut r, || w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")) {
            Ok(Some(req)) => req,
            _ => return,
        };
        let n = s.counter.fetch_add(1, Ordering::SeqCst);
        let fault = (lock(&s.plan))(n);
        lock(&s.log).requests += 1;
        let is_put_records = req
            .header("x-amz-target")
            .is_some_and(|t| t.ends_with(".PutRecords"));
        let answer = match fault {
            Fault::Pass => forward(s.upstream, &req),
            Fault::StallWrites(d) => {
                if req.start.starts_with("PUT ") || req.start.starts_with("POST ") {
                    lock(&s.log).stalled += 1;
                    thread::sleep(d);
                }
                forward(s.upstream, &req)
            }
            Fault::Throttle => {
                lock(&s.log).throttled += 1;
                Ok(error_response(
                    "400 Bad Request",
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for stream (injected by the test proxy)",
                ))
            }
            Fault::ServerError => {
                lock(&s.log).server_errors += 1;
                Ok(error_response(
                    "500 Internal Server Error",
                    "InternalFailure",
                    "injected by the test proxy",
                ))
            }
            Fault::Reset => {
                lock(&s.log).resets += 1;
                reset(r.get_ref());
                return;
            }
            Fault::Blackhole => {
                lock(&s.log).blackholed += 1;
                if let Ok(conn) = r.get_ref().try_clone() {
                    lock(&s.held).push(conn);
                }
                return;
            }
            Fault::ResetAfterForward => {
                let sent = forward(s.upstream, &req);
                let mut log = lock(&s.log);
                log.resets += 1;
                if sent.is_ok() && is_put_records {
                    if let Ok(body) = serde_json::from_slice::<Value>(&req.body) {
                        for rec in body["Records"].as_array().into_iter().flatten() {
                            log.unanswered.insert(record_data(rec));
                        }
                    }
                }
                drop(log);
                reset(r.get_ref());
                return;
            }
            Fault::FailRecords(keep) if is_put_records => fail_records(s, &req, keep),
            Fault::FailRecords(_) => forward(s.upstream, &req),
        };
        match answer {
            Ok(a) => {
                if a.write(&mut w, &[]).is_err() {
                    return;
                }
            }
            Err(_) => {
                reset(r.get_ref());
                return;
            }
        }
    }
}

/// Passes on the records `keep` selects and answers the others as throttled.
fn fail_records(s: &Shared, req: &Message, keep: fn(usize) -> bool) -> std::io::Result<Message> {
    let mut body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| std::io::Error::other(format!("PutRecords body is not JSON: {e}")))?;
    let records = body["Records"].as_array().cloned().unwrap_or_default();
    let kept: Vec<Value> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, r)| r.clone())
        .collect();
    let mut upstream_results: Vec<Value> = Vec::new();
    if !kept.is_empty() {
        body["Records"] = Value::Array(kept.clone());
        let fwd = Message {
            start: req.start.clone(),
            headers: req.headers.clone(),
            body: body.to_string().into_bytes(),
        };
        let answer = forward(s.upstream, &fwd)?;
        if !answer.start.contains(" 200") {
            return Ok(answer);
        }
        let v: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| std::io::Error::other(format!("PutRecords answer is not JSON: {e}")))?;
        upstream_results = v["Records"].as_array().cloned().unwrap_or_default();
    }
    let mut upstream = upstream_results.into_iter();
    let mut failed = 0u64;
    let results: Vec<Value> = (0..records.len())
        .map(|i| {
            if keep(i) {
                upstream.next().unwrap_or(json!({"ErrorCode": "InternalFailure", "ErrorMessage": "missing result"}))
            } else {
                failed += 1;
                json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard (injected by the test proxy)"})
            }
        })
        .collect();
    let failed_total = results
        .iter()
        .filter(|r| r.get("ErrorCode").is_some())
        .count();
    lock(&s.log).records_failed += failed;
    Ok(Message {
        start: "HTTP/1.1 200 OK".into(),
        headers: vec![
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("x-amzn-RequestId".into(), "logtide-fault-proxy".into()),
        ],
        body: json!({"FailedRecordCount": failed_total, "Records": results})
            .to_string()
            .into_bytes(),
    })
}
