//! logtide-metrics into a Kinesis stream of moto_server, the same output as
//! logtide-files': boto3 reads the records back and they decode into Metricbeat-named
//! events of every configured metricset.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use logtide_kinesis::Decoder;
use logtide_testkit::{KinesisTool, MotoServer, AWS_ENV};
use serde_json::Value;

/// Starts logtide-metrics with fake AWS credentials, its log in `log`.
fn start(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    Command::new(bin())
        .arg("-c")
        .arg(config)
        .envs(AWS_ENV)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn metrics_arrive_in_the_stream() {
    let _one = crate::one_at_a_time();
    let moto = MotoServer::start();
    let tool = KinesisTool::new(&moto.endpoint());
    tool.create_stream("metrics", 1);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("metrics.yml");
    std::fs::write(
        &config,
        format!(
            "metricsets: [cpu, memory, load]
period: 1s
output.kinesis:
  stream_name: metrics
  region: us-east-1
  endpoint: {}
  dead_letter_path: {}
",
            moto.endpoint(),
            dir.path().join("dl").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("metrics.log");
    let mut child = start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let mut decoder = Decoder::default();
        let events: Vec<_> = tool
            .read_all("metrics")
            .iter()
            .flat_map(|r| decoder.decode(&r.data, 0).unwrap().events)
            .collect();
        let names: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e.get("metricset.name").and_then(Value::as_str))
            .collect();
        if ["cpu", "memory", "load"].iter().all(|n| names.contains(n)) {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "metricsets seen: {names:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let memory = events
        .iter()
        .find(|e| e.get("metricset.name") == Some(&Value::from("memory")))
        .unwrap();
    let total = memory
        .get("system.memory.total")
        .and_then(Value::as_u64)
        .unwrap();
    let used = memory
        .get("system.memory.used.bytes")
        .and_then(Value::as_u64)
        .unwrap();
    assert!(used <= total && total > 0, "{used} of {total}");
    assert_eq!(memory.get("event.module"), Some(&Value::from("system")));
    assert!(memory.get("host.name").and_then(Value::as_str).is_some());
}

/// Readiness from progress, as logtide-files': while Kinesis accepts connections and never
/// answers (a blackhole in front of moto_server), `/readyz` turns 503 and names the
/// output within 20 s (`http.stalled_after` 15 s by default, `attempt_timeout` 10 s);
/// once Kinesis answers again it is 200.
#[test]
fn not_ready_while_kinesis_takes_nothing() {
    let _one = crate::one_at_a_time();
    use logtide_pipeline::http::{get, READYZ_PATH};
    use logtide_testkit::{free_port, Fault, FaultProxy};

    let moto = MotoServer::start();
    KinesisTool::new(&moto.endpoint()).create_stream("metrics", 1);
    let proxy = FaultProxy::start(moto.port(), |_| Fault::Pass);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("metrics.yml");
    std::fs::write(
        &config,
        format!(
            "metricsets: [cpu, memory]
period: 1s
http: {{enabled: true, port: {port}}}
output.kinesis:
  stream_name: metrics
  region: us-east-1
  endpoint: {}
  dead_letter_path: {}
",
            proxy.endpoint(),
            dir.path().join("dl").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("metrics.log");
    let mut child = start(&config, &log);
    let address = format!("127.0.0.1:{port}");
    let readyz = || get(&address, READYZ_PATH).unwrap_or((0, String::new()));
    let wait = |what: &str, timeout: Duration, ok: &dyn Fn((u16, String)) -> bool| {
        let deadline = Instant::now() + timeout;
        loop {
            let r = readyz();
            if ok(r.clone()) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: last /readyz {r:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait("ready at first", Duration::from_secs(30), &|r| r.0 == 200);
    let blackhole = Instant::now();
    proxy.set_plan(|_| Fault::Blackhole);
    let unready = wait(
        "not ready during the blackhole",
        Duration::from_secs(25),
        &|r| r.0 == 503 && r.1.contains("kinesis") && r.1.contains("no progress"),
    );
    assert!(
        unready - blackhole <= Duration::from_secs(20),
        "503 came {:?} after the blackhole began",
        unready - blackhole
    );
    proxy.set_plan(|_| Fault::Pass);
    proxy.reset_held();
    wait("ready again", Duration::from_secs(30), &|r| r.0 == 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
