//! The self-monitoring HTTP endpoint of the three binaries, with Filebeat's keys:
//!
//! ```yaml
//! http.enabled: true
//! http.host: 127.0.0.1   # 0.0.0.0 in a pod, for the kubelet's probes and Prometheus
//! http.port: 5066        # 5066 logtide-files, 5067 logtide-metrics, 5068 logtide-relay
//! http.stalled_after: 15s # an output with work waiting and no progress this long is not ready
//! ```
//!
//! - `GET /metrics`: [`Telemetry`] in the OpenMetrics text format, which Prometheus reads;
//! - `GET /healthz`: 200 while the process runs (a liveness probe);
//! - `GET /readyz`: 200 when every source is connected and no output is stalled, else
//!   503; the body names each component and why it is not ready (a readiness probe). An
//!   output is stalled when it has had entries waiting and nothing acknowledged for
//!   `http.stalled_after`: the line names it, how long, and the age of its oldest entry.
//!
//! The server runs on its own thread with a one-thread runtime, so a slow scrape never
//! holds up the pipeline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::telemetry::Telemetry;
use crate::Error;

/// The metrics path.
pub const METRICS_PATH: &str = "/metrics";
/// The liveness path.
pub const HEALTHZ_PATH: &str = "/healthz";
/// The readiness path.
pub const READYZ_PATH: &str = "/readyz";
/// logtide-files' default port.
pub const FILES_PORT: u16 = 5066;
/// logtide-metrics' default port.
pub const METRICS_PORT: u16 = 5067;
/// logtide-relay's default port.
pub const RELAY_PORT: u16 = 5068;

/// `http`: where the endpoint listens. Off unless `enabled`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the endpoint.
    #[serde(default)]
    pub enabled: bool,
    /// The address to listen on (default `127.0.0.1`).
    #[serde(default)]
    pub host: Option<String>,
    /// The port (default: the binary's, see [`FILES_PORT`] and the others; 0 picks a
    /// free port).
    #[serde(default)]
    pub port: Option<u16>,
    /// How long an output with work waiting may go without progress before `/readyz`
    /// answers 503 and `logtide_ready` is 0 (default 15s,
    /// [`crate::telemetry::DEFAULT_STALLED_AFTER`]); logtide-files' output and
    /// logtide-relay's S3 and Elasticsearch sinks.
    #[serde(default, with = "logtide_config::duration::option")]
    pub stalled_after: Option<std::time::Duration>,
}

impl HttpConfig {
    /// `stalled_after`, or its default.
    pub fn stalled_after(&self) -> std::time::Duration {
        self.stalled_after
            .unwrap_or(crate::telemetry::DEFAULT_STALLED_AFTER)
    }

    /// The address to listen on, with `default_port` when no port is set.
    pub fn address(&self, default_port: u16) -> String {
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        let port = self.port.unwrap_or(default_port);
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

/// A running endpoint; it stops when the process exits.
#[derive(Debug)]
pub struct HttpServer {
    address: SocketAddr,
}

impl HttpServer {
    /// Starts serving `telemetry` when `config.enabled`; `None` otherwise.
    pub fn start_if_enabled(
        config: &HttpConfig,
        default_port: u16,
        telemetry: Arc<Telemetry>,
    ) -> Result<Option<Self>, Error> {
        if !config.enabled {
            return Ok(None);
        }
        Self::start(&config.address(default_port), telemetry).map(Some)
    }

    /// Binds `address` (host:port) and serves `telemetry` from a thread of its own.
    pub fn start(address: &str, telemetry: Arc<Telemetry>) -> Result<Self, Error> {
        let bad = |what: &str, e: std::io::Error| {
            Error::Process(format!("http endpoint {address}: {what}: {e}"))
        };
        let listener = std::net::TcpListener::bind(address).map_err(|e| bad("cannot bind", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| bad("cannot set up the socket", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| bad("cannot read the bound address", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| bad("cannot start the runtime", e))?;
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || runtime.block_on(serve(listener, telemetry)))
            .map_err(|e| bad("cannot start the thread", e))?;
        tracing::info!(address = %local, "http endpoint: /metrics, /healthz, /readyz");
        Ok(HttpServer { address: local })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

async fn serve(listener: std::net::TcpListener, telemetry: Arc<Telemetry>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "http endpoint: cannot listen");
            return;
        }
    };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "http endpoint: accept failed");
                continue;
            }
        };
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let telemetry = telemetry.clone();
                async move { Ok::<_, Infallible>(respond(&req, &telemetry)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "http endpoint: connection ended with an error");
            }
        });
    }
}

fn respond(req: &Request<Incoming>, telemetry: &Telemetry) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET is served\n".into(),
        );
    }
    match req.uri().path() {
        METRICS_PATH => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            telemetry.encode(),
        ),
        HEALTHZ_PATH => text(StatusCode::OK, PLAIN, "ok\n".into()),
        READYZ_PATH => {
            let (ready, body) = telemetry.readiness();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, PLAIN, body)
        }
        other => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            format!("{other}: not found; served: {METRICS_PATH} {HEALTHZ_PATH} {READYZ_PATH}\n"),
        ),
    }
}

/// Fetches `path` from an endpoint at `address` (host:port) over HTTP/1.1: the status
/// code and the body. Used by the `status` commands.
pub fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status code"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_metrics_health_and_readiness() {
        let telemetry = Arc::new(Telemetry::new());
        telemetry.add_events("read", 42);
        let server = HttpServer::start("127.0.0.1:0", telemetry.clone()).unwrap();
        let addr = server.address().to_string();

        let (status, body) = get(&addr, METRICS_PATH).unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("logtide_events_total{stage=\"read\"} 42"),
            "{body}"
        );
        assert_eq!(get(&addr, HEALTHZ_PATH).unwrap(), (200, "ok\n".into()));

        telemetry.set_ready("output", Err("kinesis: stream logs not found".into()));
        let (status, body) = get(&addr, READYZ_PATH).unwrap();
        assert_eq!(status, 503);
        assert_eq!(body, "output: not ready: kinesis: stream logs not found\n");
        telemetry.set_ready("output", Ok(()));
        assert_eq!(
            get(&addr, READYZ_PATH).unwrap(),
            (200, "output: ok\n".into())
        );

        let (status, body) = get(&addr, "/nope").unwrap();
        assert_eq!(status, 404);
        assert!(body.contains("/metrics"), "{body}");
    }

    #[test]
    fn address_defaults_and_errors() {
        let c = HttpConfig::default();
        assert_eq!(c.address(FILES_PORT), "127.0.0.1:5066");
        let c = HttpConfig {
            enabled: true,
            host: Some("::".into()),
            port: Some(9000),
            ..HttpConfig::default()
        };
        assert_eq!(c.stalled_after(), std::time::Duration::from_secs(15));
        assert_eq!(c.address(RELAY_PORT), "[::]:9000");
        let set: HttpConfig = serde_json::from_str(r#"{"stalled_after": "40s"}"#).unwrap();
        assert_eq!(set.stalled_after(), std::time::Duration::from_secs(40));
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = HttpServer::start(
            &taken.local_addr().unwrap().to_string(),
            Arc::new(Telemetry::new()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot bind"), "{err}");
    }
}
