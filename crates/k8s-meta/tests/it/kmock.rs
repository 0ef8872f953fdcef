//! The enricher against a Kubernetes API served over HTTP by kmock (`pip install kmock`),
//! reached through a kubeconfig: list, watch, owner lookups, a pod created while its
//! lines wait, a deletion, and events built from real log files.
//!
//! kmock ignores selectors (the node's field selector is sent, every pod comes back) and
//! cannot serve `/api/v1/namespaces` (its path parser takes `namespaces` for a namespace
//! segment), so namespace metadata is off here; the `tower-test` tests cover namespaces.
//!
//! This test fails when kmock is missing: `scripts/test` installs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use logtide_event::{Event, LogEntry, LogFile, Timestamp};
use logtide_k8s_meta::{build_enricher, ClusterStatus, Enricher};
use logtide_testkit::Kmock;
use serde_json::{json, Value};

const NODE: &str = "node-a";

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn uid(n: u8) -> String {
    format!("{n:08x}-1111-4000-8000-000000000000")
}

fn pod(name: &str, n: u8, container: &str, image: &str, owner: Option<(&str, &str)>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": uid(n), "resourceVersion": format!("{n}0"),
            "labels": {"app.kubernetes.io/name": name, "tier": "front"},
            "annotations": {"prometheus.io/port": "9090", "other": "x"},
        },
        "spec": {"nodeName": NODE, "containers": [{"name": container, "image": image}]},
        "status": {"containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": true,
            "restartCount": 0, "containerID": format!("containerd://{}", id(n))}]},
    });
    if let Some((kind, owner)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "o", "controller": true}]);
    }
    pod
}

fn owner(api_version: &str, kind: &str, name: &str, parent_kind: &str, parent: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {
        "name": name, "namespace": "shop", "uid": format!("{name}-uid"), "resourceVersion": "5",
        "ownerReferences": [{"apiVersion": api_version, "kind": parent_kind, "name": parent, "uid": "p", "controller": true}]}})
}

/// Writes a log file where kubelet would, below `root`, and returns its path.
fn log_file(root: &Path, relative: &str) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create log directory");
    let mut f = std::fs::File::create(&path).expect("create log file");
    writeln!(
        f,
        "2026-11-25T00:00:00.000000000Z stdout F GET /healthz 200"
    )
    .expect("write log");
    path
}

/// An event as the tailer makes it from that file.
fn event(path: &Path) -> Event {
    let path = path.to_str().expect("utf-8 path");
    let container_id = logtide_k8s_meta::match_log_path(path)
        .and_then(|i| i.container_id)
        .map(Arc::from);
    Event::from_log_entry(
        Timestamp::UNIX_EPOCH,
        LogEntry {
            message: "GET /healthz 200".into(),
            stream: "stdout",
            file: LogFile::named(Arc::from(path), container_id),
            offset: 0,
            partial: false,
            truncated: false,
            docker_attrs: None,
            input_type: "container",
        },
    )
}

fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n\
         clusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{port}\n\
         contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n    namespace: shop\n\
         users:\n- name: tester\n  user: {{}}\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A client of our own, to change the served objects as a controller would.
fn with_client<T>(kubeconfig: &Path, f: impl AsyncFnOnce(Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let file = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
        f(Client::try_from(config).expect("client")).await
    })
}

fn wait_for(enricher: &Enricher, what: &str, check: impl Fn(&Enricher) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check(enricher) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            enricher.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn enriches_real_log_paths_from_a_served_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = vec![
        pod(
            "web-5d8f7-abcde",
            1,
            "nginx",
            "nginx:1.27",
            Some(("ReplicaSet", "web-5d8f7")),
        ),
        pod(
            "backup-29001-xyz",
            2,
            "run",
            "busybox:1",
            Some(("Job", "backup-29001")),
        ),
        pod("db-0", 3, "pg", "postgres:17", Some(("StatefulSet", "db"))),
        owner("apps/v1", "ReplicaSet", "web-5d8f7", "Deployment", "web"),
        owner("batch/v1", "Job", "backup-29001", "CronJob", "backup"),
    ];
    let objects_file = dir.path().join("objects.json");
    std::fs::write(&objects_file, serde_json::to_vec(&objects).expect("json"))
        .expect("write objects");
    let server = Kmock::start(&objects_file);
    let kubeconfig = kubeconfig(dir.path(), server.port());

    let options = json!({
        "kube_config": kubeconfig,
        "node": NODE,
        "include_annotations": ["prometheus.io/*"],
        "add_resource_metadata.namespace.enabled": false,
        "wait_for_metadata": "30s",
    });
    let enricher =
        build_enricher(&options, "processors[0].add_kubernetes_metadata").expect("build");
    match enricher.cluster() {
        ClusterStatus::Watching { url, node } => {
            assert!(url.contains(&server.port().to_string()), "{url}");
            assert_eq!(node.as_deref(), Some(NODE));
        }
        other => panic!("expected a watch on kmock, got {other:?}"),
    }
    assert!(
        enricher.wait_until_synced(Duration::from_secs(60)),
        "{:?}",
        enricher.stats()
    );
    wait_for(&enricher, "the owner lookups", |e| {
        e.stats().owner_lookups == 2
    });

    let logs = dir.path().join("var/log");
    let web = log_file(
        &logs,
        &format!("containers/web-5d8f7-abcde_shop_nginx-{}.log", id(1)),
    );
    let backup = log_file(
        &logs,
        &format!("pods/shop_backup-29001-xyz_{}/run/0.log", uid(2)),
    );
    let db = log_file(
        &logs,
        &format!("pods/shop_db-0_{}/pg/1.log.20261125-000000", uid(3)),
    );
    let mut batch = vec![event(&web), event(&backup), event(&db)];
    enricher.enrich_batch_blocking(&mut batch);

    let k8s = |e: &Event| e.get("kubernetes").cloned().unwrap_or(Value::Null);
    assert_eq!(
        k8s(&batch[0]),
        json!({
            "pod": {"name": "web-5d8f7-abcde", "uid": uid(1)},
            "namespace": "shop",
            "node": {"name": NODE},
            "labels": {"app_kubernetes_io/name": "web-5d8f7-abcde", "tier": "front"},
            "annotations": {"prometheus_io/port": "9090"},
            "replicaset": {"name": "web-5d8f7"},
            "deployment": {"name": "web"},
            "container": {"name": "nginx", "image": "nginx:1.27"},
        })
    );
    assert_eq!(
        batch[0].get("container"),
        Some(&json!({"id": id(1), "runtime": "containerd"}))
    );
    assert_eq!(
        batch[1].get("kubernetes.cronjob.name"),
        Some(&json!("backup"))
    );
    assert_eq!(batch[1].get("container.id"), Some(&json!(id(2))));
    assert_eq!(
        batch[2].get("kubernetes.statefulset.name"),
        Some(&json!("db"))
    );
    assert_eq!(
        batch[2].get("kubernetes.container.image"),
        Some(&json!("postgres:17"))
    );

    // Lines of a pod the API server has not told us about wait; the pod is created, the
    // watch delivers it, and the waiting batch finishes with its metadata.
    let late = log_file(&logs, &format!("containers/late-1_shop_app-{}.log", id(4)));
    let mut late_batch = vec![event(&late)];
    let pending = enricher.enrich_batch(&mut late_batch);
    assert_eq!(pending.indices(), [0]);
    let late_pod: Pod =
        serde_json::from_value(pod("late-1", 4, "app", "app:3", None)).expect("pod");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut pending = pending;
            while !pending.is_empty() {
                enricher.wait_for_change(&pending);
                enricher.enrich_pending(&mut late_batch, &mut pending);
            }
        });
        with_client(&kubeconfig, async |client| {
            Api::<Pod>::namespaced(client, "shop")
                .create(&PostParams::default(), &late_pod)
                .await
                .expect("create pod")
        });
        waiter.join().expect("waiter");
    });
    assert_eq!(
        late_batch[0].get("kubernetes.pod.uid"),
        Some(&json!(uid(4)))
    );
    assert_eq!(
        late_batch[0].get("kubernetes.container.image"),
        Some(&json!("app:3"))
    );

    // A deleted pod whose file is still read keeps its metadata.
    enricher.file_opened(&db);
    with_client(&kubeconfig, async |client| {
        Api::<Pod>::namespaced(client, "shop")
            .delete("db-0", &DeleteParams::default())
            .await
            .expect("delete pod")
    });
    wait_for(&enricher, "the deletion", |e| e.stats().deleted_pods == 1);
    let mut batch = vec![event(&db)];
    enricher.enrich_batch_blocking(&mut batch);
    assert_eq!(batch[0].get("kubernetes.pod.name"), Some(&json!("db-0")));

    let stats = enricher.stats();
    assert_eq!(stats.enriched, 5, "{stats:?}");
    assert_eq!(
        (stats.pod_unknown, stats.no_cluster, stats.no_path_match),
        (0, 0, 0)
    );
    assert_eq!(stats.waited, 1);
    assert_eq!(stats.open_files, 1);
    drop(enricher);
    drop(server);
}
