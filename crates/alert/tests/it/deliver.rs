//! Delivery against a real HTTP server on loopback: 429 with Retry-After, then 500,
//! then 200, and every alert arrives exactly once; refusals and exhausted retries are
//! counted, and webhook URLs never show in errors.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logtide_alert::{Alert, Deliverer, DeliveryConfig, Engine, EngineConfig, Rule};
use logtide_event::{Event, Timestamp};
use serde_json::{json, Value};

/// A request the server received and the status it answered.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    body: Value,
    status: u16,
    at: Instant,
}

/// An HTTP/1.1 server answering from a script (status, extra header), then 200.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(script: Vec<(u16, Option<&'static str>)>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                std::thread::spawn(move || serve(stream, &log, &script));
            }
        });
        Receiver { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<(u16, Option<&'static str>)>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, header) = script.lock().unwrap().pop_front().unwrap_or((200, None));
        log.lock().unwrap().push(Seen {
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            status,
            at: Instant::now(),
        });
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Other",
        };
        let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
        let answer = format!("HTTP/1.1 {status} {reason}\r\n{extra}content-length: 2\r\n\r\nok");
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn alerts_for(yaml: &str, events: Vec<Value>) -> Vec<Alert> {
    let rule = Rule::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(EngineConfig::default(), [rule]);
    let events: Vec<Event> = events
        .into_iter()
        .map(|v| Event::from_json(v).unwrap())
        .collect();
    let mut out = Vec::new();
    engine.process(&events, Timestamp::now(), &mut out);
    out
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        ..DeliveryConfig::default()
    }
}

fn wait_for(deliverer: &Deliverer, done: impl Fn(&logtide_alert::DeliveryStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&deliverer.stats()) {
        assert!(Instant::now() < deadline, "{:?}", deliverer.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn retry_after_then_server_error_then_success_delivers_each_alert_once() {
    let server = Receiver::start(vec![(429, Some("retry-after: 1")), (500, None)]);
    let yaml = format!(
        "name: errors\ntype: any\nquery_key: pod\nrealert: 0s\nalert_text: 'error on {{pod}}'\nalert: [slack, post]\nslack_webhook_url: {}\nslack_channel_override: '#alerts'\nhttp_post_url: {}\nhttp_post_static_payload: {{team: shop}}\n",
        server.url("/services/T000/B000/XXXX"),
        server.url("/hook"),
    );
    let alerts = alerts_for(
        &yaml,
        vec![
            json!({"pod": "a"}),
            json!({"pod": "b"}),
            json!({"pod": "c"}),
        ],
    );
    assert_eq!(alerts.len(), 3);
    let deliverer = Deliverer::start(config()).unwrap();
    for a in alerts {
        assert!(deliverer.send(a));
    }
    wait_for(&deliverer, |s| s.delivered + s.failed >= 6);
    let stats = deliverer.shutdown(Duration::from_secs(1));
    assert_eq!(
        (stats.queued, stats.delivered, stats.failed),
        (3, 6, 0),
        "{stats:?}"
    );
    assert_eq!(
        (stats.retries, stats.rate_limited, stats.dropped),
        (2, 1, 0)
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 8, "{seen:?}");
    // Retry-After was honoured: the retry came a second after the 429.
    let retry_gap = seen[1].at - seen[0].at;
    assert!(retry_gap >= Duration::from_millis(950), "{retry_gap:?}");
    // Every alert accepted exactly once at each destination.
    for pod in ["a", "b", "c"] {
        let slack: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.status == 200 && s.path.starts_with("/services/"))
            .filter(|s| {
                s.body["attachments"][0]["text"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("error on {pod}"))
            })
            .collect();
        assert_eq!(slack.len(), 1, "slack {pod}: {seen:?}");
        assert_eq!(slack[0].body["channel"], "#alerts");
        let hook: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.status == 200 && s.path == "/hook" && s.body["query_key"] == pod)
            .collect();
        assert_eq!(hook.len(), 1, "hook {pod}: {seen:?}");
        assert_eq!(hook[0].body["team"], "shop");
        assert_eq!(hook[0].body["rule"], "errors");
    }
}

#[test]
fn refusals_and_exhausted_retries_are_counted_without_the_url() {
    let server = Receiver::start(vec![
        (404, None),
        (500, None),
        (500, None),
        (500, None),
        (500, None),
        (500, None),
        (500, None),
        (500, None),
        (500, None),
    ]);
    let yaml = format!(
        "name: errors\ntype: any\nrealert: 1s\nalert: [slack]\nslack_webhook_url: {}\n",
        server.url("/services/T000/B000/SECRET"),
    );
    let alerts = alerts_for(&yaml, vec![json!({"n": 1})]);
    let mut second = alerts[0].clone();
    second.query_key = Some("again".into());
    let deliverer = Deliverer::start(DeliveryConfig {
        min_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    deliverer.send(alerts.into_iter().next().unwrap());
    deliverer.send(second);
    wait_for(&deliverer, |s| s.failed >= 2);
    let errors = deliverer.take_errors();
    let stats = deliverer.shutdown(Duration::from_secs(1));
    assert_eq!((stats.delivered, stats.failed), (0, 2), "{stats:?}");
    // The 404 is given up at once; the 500s are retried for at most the realert
    // window (1 s) with 300 ms between attempts, so at most four attempts.
    let seen = server.seen();
    assert!((2..=5).contains(&seen.len()), "{seen:?}");
    let message = &errors["errors"];
    assert!(
        message.starts_with("slack delivery failed: server error 500"),
        "{message}"
    );
    assert!(!message.contains("SECRET"));
}

#[test]
fn connection_errors_do_not_show_the_url() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "name: down\ntype: any\nrealert: 1s\nalert: [post]\nhttp_post_url: http://127.0.0.1:{port}/hook/TOKEN123\n"
    );
    let alerts = alerts_for(&yaml, vec![json!({})]);
    let deliverer = Deliverer::start(config()).unwrap();
    deliverer.send(alerts.into_iter().next().unwrap());
    wait_for(&deliverer, |s| s.failed >= 1);
    let errors = deliverer.take_errors();
    assert!(!errors["down"].contains("TOKEN123"), "{errors:?}");
    assert!(deliverer.shutdown(Duration::from_secs(1)).retries >= 1);
}
