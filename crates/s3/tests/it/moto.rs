//! The S3 sink against moto_server: objects read back with boto3, multipart uploads,
//! acknowledgements only after the upload.

use std::sync::{Arc, Mutex};

use logtide_event::{AckOutcome, AckToken, Acknowledge, Event, Timestamp};
use logtide_s3::{S3Config, S3Sink};
use logtide_testkit::{MotoServer, S3Tool, AWS_ENV};
use serde_json::json;

#[derive(Default)]
struct Log(Mutex<Vec<(u64, AckOutcome)>>);

impl Acknowledge for Log {
    fn acknowledge(&self, id: u64, outcome: AckOutcome) {
        self.0.lock().unwrap().push((id, outcome));
    }
}

fn events(log: &Arc<Log>, from: u64, n: u64, noise: usize) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let mut x = i + 1;
            let text: String = (0..noise)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{:08x}", x as u32)
                })
                .collect();
            let mut e = Event::new(Timestamp::new(1_700_000_000, 0).unwrap());
            e.insert("message", json!(text)).unwrap();
            e.insert("n", json!(i)).unwrap();
            e.set_ack(AckToken::new(log.clone(), i));
            e
        })
        .collect()
}

#[test]
fn objects_round_trip_and_acks_follow_uploads() {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let moto = MotoServer::start();
    let tool = S3Tool::new(&moto.endpoint());
    tool.create_bucket("archive");
    let mut config = S3Config::new("archive");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    config.max_object_bytes = 64 << 20;
    config.multipart_part_bytes = 5 << 20;
    let mut sink = S3Sink::connect(&config).unwrap();
    let log = Arc::new(Log::default());

    sink.write("shardId-1", "100", events(&log, 0, 1000, 4))
        .unwrap();
    assert!(
        log.0.lock().unwrap().is_empty(),
        "acknowledged before upload"
    );
    // About 13 MiB of hardly compressible text: a multipart upload.
    sink.write("shardId-2", "200", events(&log, 1000, 2000, 800))
        .unwrap();
    sink.flush().unwrap();
    let acks = log.0.lock().unwrap().clone();
    assert_eq!(acks.len(), 3000);
    assert!(acks.iter().all(|(_, o)| *o == AckOutcome::Accepted));
    assert_eq!(sink.stats().multipart, 1, "{:?}", sink.stats());
    assert_eq!(sink.stats().objects, 2);

    let lines = tool.read_lines("archive", "logtide/");
    let mut keys: Vec<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    keys.dedup();
    assert_eq!(
        keys,
        [
            "logtide/2023/11/14/22/shardId-1-100.ndjson.gz",
            "logtide/2023/11/14/22/shardId-2-200.ndjson.gz"
        ]
    );
    let mut ns: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(&l.line).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..3000).collect::<Vec<_>>());
}

#[test]
fn a_failed_upload_keeps_the_events_unacknowledged() {
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    let moto = MotoServer::start();
    let tool = S3Tool::new(&moto.endpoint());
    let mut config = S3Config::new("later");
    config.endpoint = Some(moto.endpoint());
    config.region = Some("us-east-1".into());
    let mut sink = S3Sink::connect(&config).unwrap();
    let log = Arc::new(Log::default());
    sink.write("s", "1", events(&log, 0, 10, 1)).unwrap();
    // The bucket does not exist yet: the upload fails, nothing is acknowledged.
    let err = sink.flush().unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(log.0.lock().unwrap().is_empty());
    tool.create_bucket("later");
    sink.tick().unwrap();
    assert_eq!(log.0.lock().unwrap().len(), 10);
    assert_eq!(tool.read_lines("later", "").len(), 10);
}
