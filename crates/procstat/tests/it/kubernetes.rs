//! Pod, container and volume metricsets: a kubelet Summary endpoint served over HTTPS on
//! loopback from a fixture, and the cgroup v2 fallback over a fixture hierarchy.

use std::time::Duration;

use crate::common::{at, closed_url, data, golden, ndjson, FixtureRoot, TestKubelet};
use logtide_procstat::{
    Collector, Error, KubeletOptions, KubernetesCollector, KubernetesMetricset, KubernetesOptions,
    Limits, PodLimits, Source, VerificationMode,
};
use serde_json::json;

fn summary() -> Vec<u8> {
    std::fs::read(data("kubelet/summary.json")).unwrap()
}

/// A host root with this machine's /proc (2 cores, 24 GiB) and the cgroup v2 fixture.
fn host(cgroup_sample: &str) -> FixtureRoot {
    let root = FixtureRoot::new();
    root.link("proc", "node/t1/proc");
    root.link("sys", &format!("cgroup2/{cgroup_sample}/sys"));
    root
}

fn options(url: &str, root: &FixtureRoot, token: Option<std::path::PathBuf>) -> KubernetesOptions {
    let mut kubelet = KubeletOptions::new(url);
    kubelet.token_path = token;
    kubelet.certificate_authorities = vec![data("tls/ca.pem")];
    kubelet.timeout = Duration::from_secs(5);
    KubernetesOptions {
        metricsets: vec![
            KubernetesMetricset::Pod,
            KubernetesMetricset::Container,
            KubernetesMetricset::Volume,
        ],
        kubelet,
        hostfs: root.path().to_owned(),
        host_name: "test-node".into(),
        period: Duration::from_secs(10),
        cgroup_fallback: true,
    }
}

#[test]
fn summary_over_https_with_a_custom_ca_gives_golden_events() {
    let kubelet = TestKubelet::start("200 OK", summary());
    let root = host("t1");
    let token = root.path().join("token");
    std::fs::write(&token, "test-token\n").unwrap();
    let mut c = KubernetesCollector::new(&options(&kubelet.url, &root, Some(token))).unwrap();
    let got = c.collect(at(0)).unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    assert_eq!(c.last_source(), Some(Source::Kubelet));
    let seen = kubelet.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, "GET /stats/summary HTTP/1.1");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer test-token"));
    // 3 pods, 4 containers, 5 volumes.
    let count = |set: &str| {
        got.events
            .iter()
            .filter(|e| e.get("metricset.name") == Some(&json!(set)))
            .count()
    };
    assert_eq!(
        (count("pod"), count("container"), count("volume")),
        (3, 4, 5)
    );
    // The port is chosen at run time.
    let text = ndjson(&got.events).replace(&kubelet.url, "https://test-node:10250");
    golden("kubelet/expected.ndjson", &text);
}

#[test]
fn limits_percentages_follow_metricbeat() {
    let kubelet = TestKubelet::start("200 OK", summary());
    let root = host("t1");
    let mut c = KubernetesCollector::new(&options(&kubelet.url, &root, None)).unwrap();
    // Container limits from outside (a pod metadata cache) for the web pod.
    let mut web = PodLimits {
        cpu_cores: Some(1.0),
        memory_bytes: Some(805_306_368),
        ..PodLimits::default()
    };
    web.containers
        .insert("nginx".into(), (Some(0.5), Some(536_870_912)));
    web.containers.insert("log-shipper".into(), (None, None));
    // Through the Collector trait, as logtide-metrics hands them over before collecting.
    let mut limits = Limits::default();
    limits.insert("a7e3c9d2-41b8-4f6e-9a2d-7c5b1e8f3d60", web);
    Collector::set_limits(&mut c, limits);
    let got = c.collect(at(0)).unwrap();
    let find = |set: &str, key: &str, value: &str| {
        got.events
            .iter()
            .find(|e| {
                e.get("metricset.name") == Some(&json!(set)) && e.get(key) == Some(&json!(value))
            })
            .unwrap()
    };
    let nginx = find("container", "kubernetes.container.name", "nginx");
    // 350123456 nanocores of a 0.5-core limit; of 2 node cores.
    assert_eq!(
        nginx.get("kubernetes.container.cpu.usage.limit.pct"),
        Some(&json!(0.7002))
    );
    assert_eq!(
        nginx.get("kubernetes.container.cpu.usage.node.pct"),
        Some(&json!(0.1751))
    );
    // Unlimited: the percentage of the limit is that of the node.
    let shipper = find("container", "kubernetes.container.name", "log-shipper");
    assert_eq!(
        shipper.get("kubernetes.container.cpu.usage.limit.pct"),
        shipper.get("kubernetes.container.cpu.usage.node.pct")
    );
    // Unknown container limits: no limit percentage at all.
    let coredns = find("container", "kubernetes.container.name", "coredns");
    assert!(coredns
        .get("kubernetes.container.cpu.usage.limit.pct")
        .is_none());
    assert!(coredns
        .get("kubernetes.container.memory.usage.limit.pct")
        .is_none());
    // Pod-level limits from the pod's cgroup: 178257920 bytes of memory, no CPU limit.
    let pod = find("pod", "kubernetes.pod.name", "coredns-5d78c9869d-7xkqp");
    assert_eq!(
        pod.get("kubernetes.pod.memory.usage.limit.pct"),
        Some(&json!(0.1436))
    );
    assert_eq!(
        pod.get("kubernetes.pod.cpu.usage.limit.pct"),
        pod.get("kubernetes.pod.cpu.usage.node.pct")
    );
}

#[test]
fn verification_none_accepts_the_certificate_without_a_ca() {
    let kubelet = TestKubelet::start("200 OK", summary());
    let root = host("t1");
    let mut opts = options(&kubelet.url, &root, None);
    opts.kubelet.certificate_authorities.clear();
    opts.kubelet.verification_mode = VerificationMode::None;
    opts.cgroup_fallback = false;
    let got = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(0))
        .unwrap();
    assert_eq!(got.events.len(), 12);
    assert_eq!(kubelet.seen()[0].authorization, None);
}

#[test]
fn full_verification_refuses_an_unknown_issuer() {
    let kubelet = TestKubelet::start("200 OK", summary());
    let root = host("t1");
    let mut opts = options(&kubelet.url, &root, None);
    opts.kubelet.certificate_authorities = vec![data("tls/other-ca.pem")];
    opts.cgroup_fallback = false;
    let err = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(0))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("kubelet {}/stats/summary: ", kubelet.url)),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(kubelet.seen().is_empty(), "no request was sent");
}

#[test]
fn http_and_json_errors_are_named() {
    let kubelet = TestKubelet::start("401 Unauthorized", b"Unauthorized".to_vec());
    let root = host("t1");
    let mut opts = options(&kubelet.url, &root, None);
    opts.cgroup_fallback = false;
    let err = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "kubelet {}/stats/summary: HTTP 401 Unauthorized: Unauthorized",
            kubelet.url
        )
    );

    let kubelet = TestKubelet::start("200 OK", b"{\"node\": {}, \"pods\": [{]}".to_vec());
    let opts = KubernetesOptions {
        cgroup_fallback: false,
        ..options(&kubelet.url, &root, None)
    };
    let err = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Summary {
                line: 1,
                column: 24,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_options_fail_at_start() {
    let root = host("t1");
    let mut opts = options("ftp://node:10250", &root, None);
    let err = KubernetesCollector::new(&opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kubernetes.kubelet: \"ftp://node:10250\" is not an http:// or https:// URL"
    );
    opts = options("https://node:10250", &root, None);
    opts.kubelet.certificate_authorities = vec![data("tls/generate.sh")];
    let err = KubernetesCollector::new(&opts).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("generate.sh: no PEM certificate in it"),
        "{err}"
    );
}

#[test]
fn unreachable_kubelet_falls_back_to_cgroup_v2_golden() {
    let url = closed_url();
    let root = FixtureRoot::new();
    root.link("proc", "node/t1/proc");
    let mut c = KubernetesCollector::new(&options(&url, &root, None)).unwrap();
    let mut events = Vec::new();
    for (n, sample) in ["cgroup2/t0/sys", "cgroup2/t1/sys"].iter().enumerate() {
        root.link("sys", sample);
        let got = c.collect(at(n as u64)).unwrap();
        assert_eq!(c.last_source(), Some(Source::Cgroup));
        assert_eq!(got.problems.len(), 1, "{:?}", got.problems);
        assert!(
            matches!(&got.problems[0], Error::Kubelet { url: u, .. } if *u == format!("{url}/stats/summary"))
        );
        assert_eq!(got.counter_resets, 0);
        events.extend(got.events);
    }
    // 3 pods and 7 containers (sandboxes included) per sample.
    assert_eq!(events.len(), 20);
    let coredns = events
        .iter()
        .rfind(|e| {
            e.get("kubernetes.container.id")
                == Some(&json!(
                    "3b9f2c7e1a4d5f6b8c0e9d2a7f1b3c5e4d6a8b0c2e4f6a8b1d3c5e7f9a0b2c4d"
                ))
        })
        .unwrap();
    // 40000 µs of CPU in 1 s.
    assert_eq!(
        coredns.get("kubernetes.container.cpu.usage.nanocores"),
        Some(&json!(40_000_000))
    );
    golden("cgroup2/expected.ndjson", &ndjson(&events));

    // Without the fallback, the kubelet's error is the collection's.
    let mut opts = options(&url, &root, None);
    opts.cgroup_fallback = false;
    let err = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(2))
        .unwrap_err();
    assert!(matches!(err, Error::Kubelet { .. }), "{err}");
}

#[test]
fn no_kubelet_and_no_cgroup_v2_is_one_clear_error() {
    let url = closed_url();
    let root = FixtureRoot::new();
    root.link("proc", "node/t1/proc");
    let err = KubernetesCollector::new(&options(&url, &root, None))
        .unwrap()
        .collect(at(0))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("; cgroup v2 fallback: no cgroup v2 hierarchy at "),
        "{text}"
    );
}

/// A plain-HTTP kubelet URL answered with a redirect to HTTPS: the redirect is reported
/// as the status it is, not followed (the plain-HTTP client has no TLS settings).
#[test]
fn a_redirect_is_reported_not_followed() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf);
        tcp.write_all(
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://127.0.0.1:1/stats/summary\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    });
    let root = host("t1");
    let opts = KubernetesOptions {
        cgroup_fallback: false,
        ..options(&url, &root, None)
    };
    let err = KubernetesCollector::new(&opts)
        .unwrap()
        .collect(at(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("kubelet {url}/stats/summary: HTTP 301 Moved Permanently: ")
    );
    server.join().unwrap();
}
