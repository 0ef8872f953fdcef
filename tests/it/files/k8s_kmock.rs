//! `logtide-files` with `add_kubernetes_metadata` against a Kubernetes API served over
//! HTTP by kmock (started here on a free loopback port): real files are tailed and their
//! events carry the served pods' metadata; lines of a pod the API does not have yet wait
//! for it instead of shipping bare.
//!
//! Needs Python with kmock (`pip install kmock`; `scripts/test` installs it). kmock ignores
//! selectors and wants `metadata.resourceVersion` on every object.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;
use logtide_testkit::Kmock;
use serde_json::{json, Value};

const NODE: &str = "node-a";

fn python() -> String {
    std::env::var("LOGTIDE_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn pod(name: &str, n: u8) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": format!("{n:08x}-1111-4000-8000-000000000000"),
            "resourceVersion": format!("{n}0"), "labels": {"app.kubernetes.io/name": name},
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": format!("shop/{name}:1.0")}]},
        "status": {"containerStatuses": [{"name": "app", "image": format!("shop/{name}:1.0"),
            "imageID": "", "ready": true, "restartCount": 0,
            "containerID": format!("containerd://{}", id(n))}]},
    })
}

/// Creates an object through the API, as a controller would.
fn create_pod(port: u16, pod: &Value) {
    let script = "import sys, urllib.request\n\
        req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST',\n\
            headers={'Content-Type': 'application/json'})\n\
        urllib.request.urlopen(req, timeout=10).read()\n";
    let url = format!("http://127.0.0.1:{port}/api/v1/namespaces/shop/pods");
    let out = Command::new(python())
        .args(["-c", script, &url, &pod.to_string()])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "create pod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_log(logs: &Path, name: &str, n: u8, lines: &[&str]) -> PathBuf {
    let path = logs.join(format!("{name}_shop_app-{}.log", id(n)));
    let text: String = lines
        .iter()
        .map(|l| format!("2026-11-25T00:00:00.000000000Z stdout F {l}\n"))
        .collect();
    fs::write(&path, text).unwrap();
    path
}

fn events(out: &Path) -> Vec<Value> {
    fs::read_to_string(out.join("events.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn of_pod<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["log"]["file"]["path"]
                .as_str()
                .is_some_and(|p| p.contains(&format!("/{name}_shop_")))
        })
        .collect()
}

fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tails_real_files_and_enriches_them_from_served_pods() {
    let _one = crate::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects.json");
    // kmock answers a list of namespaces with a 500 (a quirk of the emulator), so
    // namespace metadata is off here; the crate's scripted-API tests cover it.
    fs::write(&objects, json!([pod("web-0", 1)]).to_string()).unwrap();
    let kmock = Kmock::start(&objects);
    let port = kmock.port();
    let kubeconfig = dir.path().join("kubeconfig");
    kmock.write_kubeconfig(&kubeconfig);

    let logs = dir.path().join("var/log/containers");
    fs::create_dir_all(&logs).unwrap();
    write_log(&logs, "web-0", 1, &["GET / 200", "GET /cart 200"]);
    // A pod the API does not have yet: its lines wait for it.
    write_log(&logs, "late-0", 2, &["starting", "ready"]);

    let out = dir.path().join("out");
    let config = dir.path().join("logtide-files.yml");
    fs::write(
        &config,
        format!(
            "inputs:\n  - type: container\n    paths: ['{logs}/*.log']\n\
             registry: {{path: {reg}, flush: 100ms}}\n\
             processors:\n\
             \x20 - add_kubernetes_metadata:\n\
             \x20     kube_config: {kubeconfig}\n\
             \x20     node: {NODE}\n\
             \x20     wait_for_metadata: 60s\n\
             \x20     add_resource_metadata.namespace.enabled: false\n\
             output.file: {{path: {out}, filename: events.ndjson}}\n",
            logs = logs.display(),
            reg = dir.path().join("registry").display(),
            kubeconfig = kubeconfig.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let mut agent = Killed(
        Command::new(bin())
            .args(["run", "-c", config.to_str().unwrap()])
            .env("LOGTIDE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start logtide-files"),
    );

    wait_until("web-0's lines", Duration::from_secs(30), || {
        of_pod(&events(&out), "web-0").len() == 2
    });
    let all = events(&out);
    for e in of_pod(&all, "web-0") {
        let k = &e["kubernetes"];
        assert_eq!(k["pod"]["name"], json!("web-0"), "{e}");
        assert_eq!(k["namespace"], json!("shop"));
        assert_eq!(k["node"]["name"], json!(NODE));
        assert_eq!(k["labels"]["app_kubernetes_io/name"], json!("web-0"));
        assert_eq!(k["container"]["image"], json!("shop/web-0:1.0"));
        assert_eq!(e["container"]["runtime"], json!("containerd"));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        of_pod(&events(&out), "late-0").is_empty(),
        "lines of an unknown pod wait for it"
    );

    create_pod(port, &pod("late-0", 2));
    wait_until("late-0's lines", Duration::from_secs(30), || {
        of_pod(&events(&out), "late-0").len() == 2
    });
    let all = events(&out);
    let late: Vec<&str> = of_pod(&all, "late-0")
        .iter()
        .map(|e| {
            assert_eq!(
                e["kubernetes"]["labels"]["app_kubernetes_io/name"],
                json!("late-0")
            );
            assert_eq!(
                e["kubernetes"]["container"]["image"],
                json!("shop/late-0:1.0")
            );
            e["message"].as_str().unwrap()
        })
        .collect();
    assert_eq!(late, ["starting", "ready"], "in order, once each");

    let status = Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = agent.0.wait().unwrap();
    assert!(exit.success(), "exit 0 on SIGTERM: {exit:?}");
}
