//! AWS SigV4 signing with credentials from the AWS default chain (here its environment
//! variables), seen by a proxy in front of noida-db. It sets the process environment
//! (`AWS_ENV`'s fake credentials) for the whole test binary: no other test here reads the
//! AWS variables (the sink reads them only with `aws_sigv4` set).

use std::sync::Arc;

use logtide_es::{EsConfig, EsSink, SigV4Config};
use logtide_event::{AckOutcome, AckToken, Acknowledge, Event};
use logtide_testkit::{BulkFault, BulkProxy, NoidaDb, SearchTool, AWS_ENV};
use serde_json::json;

struct Count(std::sync::Mutex<u64>);

impl Acknowledge for Count {
    fn acknowledge(&self, _id: u64, outcome: AckOutcome) {
        assert_eq!(outcome, AckOutcome::Accepted);
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn every_request_is_signed() {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let server = NoidaDb::start();
    let proxy = BulkProxy::start(&server.endpoint(), |_| BulkFault::Pass);
    let mut config = EsConfig::new([proxy.endpoint()]);
    config.aws_sigv4 = Some(SigV4Config {
        region: Some("ap-northeast-1".into()),
        service: "es".into(),
    });
    let mut sink = EsSink::connect(&config).unwrap();
    let count = Arc::new(Count(std::sync::Mutex::new(0)));
    let target: Arc<dyn Acknowledge> = count.clone();
    let events: Vec<Event> = (0..20)
        .map(|n| {
            let mut e = Event::from_json(json!({
                "@timestamp": "2024-05-01T07:08:09Z", "n": n, "message": "x".repeat(200)
            }))
            .unwrap();
            e.set_ack(AckToken::new(target.clone(), n));
            e
        })
        .collect();
    sink.write(events).unwrap();
    assert_eq!(*count.0.lock().unwrap(), 20);
    assert_eq!(
        SearchTool::new(&server.endpoint()).count("logtide-2024.05.01"),
        20
    );
    let log = proxy.log();
    assert!(log.gzipped > 0, "the signed bulk body was gzipped: {log:?}");
    assert_eq!(log.authorizations.len() as u64, log.requests, "{log:?}");
    for a in &log.authorizations {
        assert!(
            a.starts_with("AWS4-HMAC-SHA256 Credential=testing/")
                && a.contains("/ap-northeast-1/es/aws4_request")
                && a.contains("SignedHeaders=")
                && a.contains("host;"),
            "{a}"
        );
    }
}
