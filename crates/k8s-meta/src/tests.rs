//! Tests of the cache, enrichment and lifetimes over fixed objects, and of the watches
//! against kube's `tower-test` mock of the API server with scripted LIST and WATCH
//! responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logtide_event::{Event, LogEntry, LogFile, Timestamp};
use serde_json::{json, Value};

use crate::settings::Settings;
use crate::shared::Shared;
use crate::store::{Store, Sweep};
use crate::{ClusterStatus, Enricher, K8sMetaConfig, MissReason};

const NODE: &str = "node-a";

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn uid(n: u8) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

/// A pod as the API serves it. `containers`: (name, image, container id or "").
fn pod(name: &str, n: u8, rv: u32, containers: &[(&str, &str, &str)], extra: Value) -> Value {
    let spec: Vec<Value> = containers
        .iter()
        .map(|(c, image, _)| json!({"name": c, "image": image}))
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .filter(|(_, _, id)| !id.is_empty())
        .map(|(c, image, id)| {
            json!({"name": c, "image": image, "imageID": "", "ready": true, "restartCount": 0,
                   "containerID": format!("containerd://{id}")})
        })
        .collect();
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": uid(n),
            "resourceVersion": rv.to_string(),
            "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
            "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"nodeName": NODE, "containers": spec},
        "status": {"containerStatuses": statuses},
    });
    merge(&mut pod, extra);
    pod
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn owned_by(kind: &str, name: &str) -> Value {
    json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "x", "controller": true}
    ]}})
}

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "shop", "uid": "ns-uid-1", "resourceVersion": "1",
        "labels": {"team": "checkout", "kubernetes.io/metadata.name": "shop"},
        "annotations": {"owner": "alice"}}})
}

fn replicaset(name: &str, deployment: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": name, "namespace": "shop", "uid": "rs-1", "resourceVersion": "1",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "uid": "d", "controller": true}]}})
}

fn job(name: &str, cronjob: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "namespace": "shop", "uid": "job-1", "resourceVersion": "1",
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob, "uid": "c", "controller": true}]}})
}

fn config(extra: Value) -> K8sMetaConfig {
    let mut options = json!({"node": NODE, "include_annotations": ["prometheus.io/*"]});
    merge(&mut options, extra);
    K8sMetaConfig::from_value(&options, "add_kubernetes_metadata").unwrap()
}

fn settings(extra: Value) -> Settings {
    config(extra).settings("add_kubernetes_metadata").unwrap()
}

/// An event as the tailer makes it, read from `path`.
fn event(path: &str) -> Event {
    let container_id = crate::match_log_path(path)
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

fn link(pod: &str, container: &str, id: &str) -> String {
    format!("/var/log/containers/{pod}_shop_{container}-{id}.log")
}

fn fields(e: &Event) -> Value {
    let mut v = serde_json::to_value(e).unwrap();
    let map = v.as_object_mut().unwrap();
    for k in ["@timestamp", "message", "stream", "log", "input"] {
        map.remove(k);
    }
    v
}

#[test]
fn enrichment_has_filebeat_fields() {
    let objects = vec![
        namespace(),
        replicaset("web-7d4b9", "web"),
        pod(
            "web-7d4b9-x2x",
            1,
            1,
            &[
                ("nginx", "nginx:1.27", &id(1)),
                ("sidecar", "envoy:1", &id(2)),
            ],
            owned_by("ReplicaSet", "web-7d4b9"),
        ),
    ];
    let config =
        config(json!({"add_resource_metadata": {"namespace": {"include_annotations": ["owner"]}}}));
    let enricher = Enricher::from_objects(&config, objects).unwrap();
    assert_eq!(enricher.cluster(), &ClusterStatus::Snapshot);
    let mut batch = vec![
        event(&link("web-7d4b9-x2x", "nginx", &id(1))),
        event(&format!(
            "/var/log/pods/shop_web-7d4b9-x2x_{}/sidecar/0.log",
            uid(1)
        )),
    ];
    let pending = enricher.enrich_batch(&mut batch);
    assert!(pending.is_empty());
    assert_eq!(
        fields(&batch[0]),
        json!({
            "container": {"id": id(1), "runtime": "containerd"},
            "kubernetes": {
                "pod": {"name": "web-7d4b9-x2x", "uid": uid(1)},
                "namespace": "shop",
                "namespace_uid": "ns-uid-1",
                "namespace_labels": {"kubernetes_io/metadata_name": "shop", "team": "checkout"},
                "namespace_annotations": {"owner": "alice"},
                "node": {"name": NODE},
                "labels": {"app_kubernetes_io/name": "web", "tier": "front"},
                "annotations": {"prometheus_io/scrape": "true"},
                "replicaset": {"name": "web-7d4b9"},
                "deployment": {"name": "web"},
                "container": {"name": "nginx", "image": "nginx:1.27"},
            }
        })
    );
    // The pod log layout gives the uid and container name; the id comes from the pod.
    assert_eq!(batch[1].get("container.id"), Some(&json!(id(2))));
    assert_eq!(
        batch[1].get("kubernetes.container.image"),
        Some(&json!("envoy:1"))
    );
    assert_eq!(enricher.stats().enriched, 2);
}

#[test]
fn limits_are_read_from_the_pod_spec() {
    let limited = pod(
        "db-0",
        2,
        1,
        &[("pg", "postgres", &id(2)), ("exporter", "exp", &id(3))],
        json!({"spec": {"containers": [
            {"name": "pg", "image": "postgres", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "exporter", "image": "exp", "resources": {"limits": {"memory": "64Mi"}}}
        ]}}),
    );
    let enricher = Enricher::from_objects(&config(json!({})), vec![limited]).unwrap();
    assert_eq!(
        enricher.pod_limits(),
        [crate::PodResourceLimits {
            uid: uid(2),
            containers: vec![
                ("pg".to_owned(), Some(0.5), Some(1 << 30)),
                ("exporter".to_owned(), None, Some(64 << 20)),
            ],
        }]
    );
}

#[test]
fn metrics_of_a_pod_get_the_fields_its_logs_get() {
    let objects = vec![
        namespace(),
        replicaset("web-7d4b9", "web"),
        pod(
            "web-7d4b9-x2x",
            1,
            1,
            &[("nginx", "nginx:1.27", &id(1))],
            owned_by("ReplicaSet", "web-7d4b9"),
        ),
    ];
    let enricher = Enricher::from_objects(&config(json!({})), objects).unwrap();
    let mut from_log = vec![event(&link("web-7d4b9-x2x", "nginx", &id(1)))];
    assert!(enricher.enrich_batch(&mut from_log).is_empty());
    let metrics = |fields: Value| {
        let mut e = Event::new(Timestamp::UNIX_EPOCH);
        for (k, v) in fields.as_object().unwrap() {
            e.insert(k, v.clone()).unwrap();
        }
        e
    };
    // From the kubelet's Summary API: names.
    let mut container = metrics(json!({"kubernetes.namespace": "shop",
        "kubernetes.pod.name": "web-7d4b9-x2x", "kubernetes.container.name": "nginx"}));
    assert!(enricher.enrich_pod_metrics(&mut container));
    assert_eq!(fields(&container), fields(&from_log[0]));
    let mut pod_event = metrics(json!({"kubernetes.namespace": "shop",
        "kubernetes.pod.name": "web-7d4b9-x2x"}));
    pod_event
        .insert("kubernetes.pod.cpu.usage.nanocores", json!(350))
        .unwrap();
    assert!(enricher.enrich_pod_metrics(&mut pod_event));
    assert_eq!(
        pod_event.get("kubernetes.deployment.name"),
        Some(&json!("web"))
    );
    // The metrics stay beside the metadata.
    assert_eq!(
        pod_event.get("kubernetes.pod.cpu.usage.nanocores"),
        Some(&json!(350))
    );
    assert_eq!(pod_event.get("kubernetes.pod.uid"), Some(&json!(uid(1))));
    assert_eq!(pod_event.get("kubernetes.container"), None);
    // From cgroup files: the pod uid.
    let mut by_uid = metrics(json!({"kubernetes.pod.uid": uid(1)}));
    assert!(enricher.enrich_pod_metrics(&mut by_uid));
    assert_eq!(
        by_uid.get("kubernetes.pod.name"),
        Some(&json!("web-7d4b9-x2x"))
    );
    let mut unknown =
        metrics(json!({"kubernetes.namespace": "shop", "kubernetes.pod.name": "gone"}));
    assert!(!enricher.enrich_pod_metrics(&mut unknown));
    // Limits come from the pod spec: none set here, so the container is unlimited.
    assert_eq!(
        enricher.pod_limits(),
        [crate::PodResourceLimits {
            uid: uid(1),
            containers: vec![("nginx".to_owned(), None, None)],
        }]
    );
    assert_eq!(unknown.get("kubernetes.labels"), None);
    assert_eq!(enricher.stats().misses(MissReason::PodUnknown), 1);
}

#[test]
fn owners_dedot_and_filters_follow_the_options() {
    let objects = vec![
        job("backup-28930", "backup"),
        pod(
            "backup-28930-abc",
            1,
            1,
            &[("run", "busybox", &id(1))],
            owned_by("Job", "backup-28930"),
        ),
        pod(
            "db-0",
            2,
            1,
            &[("pg", "postgres", &id(2))],
            owned_by("StatefulSet", "db"),
        ),
        pod(
            "agent-x",
            3,
            1,
            &[("a", "agent", &id(3))],
            owned_by("DaemonSet", "agent"),
        ),
    ];
    let config = config(json!({
        "labels.dedot": false,
        "exclude_labels": ["tier"],
        "include_annotations": [],
        "add_resource_metadata": {"cronjob": false},
    }));
    let enricher = Enricher::from_objects(&config, objects).unwrap();
    let mut batch = vec![
        event(&link("backup-28930-abc", "run", &id(1))),
        event(&link("db-0", "pg", &id(2))),
        event(&link("agent-x", "a", &id(3))),
    ];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    let k = |i: usize| fields(&batch[i])["kubernetes"].clone();
    assert_eq!(k(0)["job"], json!({"name": "backup-28930"}));
    assert_eq!(k(0).get("cronjob"), None, "cronjob resolution is off");
    assert_eq!(k(0)["labels"], json!({"app.kubernetes.io/name": "web"}));
    assert_eq!(k(0).get("annotations"), None);
    assert_eq!(k(1)["statefulset"], json!({"name": "db"}));
    assert_eq!(k(2)["daemonset"], json!({"name": "agent"}));

    let with_cronjob = Enricher::from_objects(
        &self::config(json!({})),
        vec![
            job("backup-28930", "backup"),
            pod(
                "backup-28930-abc",
                1,
                1,
                &[("run", "busybox", &id(1))],
                owned_by("Job", "backup-28930"),
            ),
        ],
    )
    .unwrap();
    let mut batch = vec![event(&link("backup-28930-abc", "run", &id(1)))];
    assert!(with_cronjob.enrich_batch(&mut batch).is_empty());
    assert_eq!(
        batch[0].get("kubernetes.cronjob.name"),
        Some(&json!("backup"))
    );
}

#[test]
fn misses_are_counted_by_reason_and_keep_the_path_fields() {
    let objects = vec![pod("web-1", 1, 1, &[("nginx", "nginx", &id(1))], json!({}))];
    let enricher = Enricher::from_objects(&config(json!({})), objects).unwrap();
    let mut no_path = Event::new(Timestamp::UNIX_EPOCH);
    no_path.insert("message", json!("x")).unwrap();
    let mut batch = vec![
        no_path,
        event("/var/log/syslog"),
        // A container the pod does not have: pod fields plus the path's container name.
        event(&format!(
            "/var/log/pods/shop_web-1_{}/debugger/0.log",
            uid(1)
        )),
        // An unknown pod: a snapshot does not wait.
        event(&link("gone-1", "app", &id(9))),
        event(&link("web-1", "nginx", &id(1))),
    ];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    let stats = enricher.stats();
    assert_eq!(stats.misses(MissReason::NoPathMatch), 2);
    assert_eq!(stats.misses(MissReason::ContainerNotInPod), 1);
    assert_eq!(stats.misses(MissReason::PodUnknown), 1);
    assert_eq!(stats.enriched, 1);
    assert_eq!(fields(&batch[1]), json!({}));
    assert_eq!(
        batch[2].get("kubernetes.container.name"),
        Some(&json!("debugger"))
    );
    assert_eq!(
        batch[2].get("kubernetes.labels.tier"),
        Some(&json!("front"))
    );
    assert_eq!(
        fields(&batch[3]),
        json!({
            "container": {"id": id(9)},
            "kubernetes": {"pod": {"name": "gone-1"}, "namespace": "shop", "container": {"name": "app"}}
        })
    );
}

#[test]
fn a_condition_selects_events_and_single_events_work() {
    let objects = vec![pod("web-1", 1, 1, &[("nginx", "nginx", &id(1))], json!({}))];
    let enricher = Enricher::from_objects(&config(json!({})), objects).unwrap();
    let mut batch = vec![
        event(&link("web-1", "nginx", &id(1))),
        event(&link("web-1", "nginx", &id(1))),
    ];
    batch[1].insert("skip", json!(true)).unwrap();
    assert!(enricher
        .enrich_batch_where(&mut batch, |e| !e.contains("skip"))
        .is_empty());
    assert!(batch[0].contains("kubernetes.pod.uid"));
    assert!(!batch[1].contains("kubernetes"));
    assert_eq!(enricher.stats().enriched, 1);
    let mut one = event(&link("web-1", "nginx", &id(1)));
    enricher.enrich_event(&mut one);
    assert_eq!(one.get("kubernetes.pod.uid"), Some(&json!(uid(1))));
    assert_eq!(enricher.stats().enriched, 2);
}

#[test]
fn without_a_cluster_events_get_their_path_fields() {
    let config = config(json!({"kube_config": "/nonexistent/kubeconfig"}));
    let enricher = config.build().unwrap();
    let ClusterStatus::NoCluster { reason } = enricher.cluster() else {
        panic!("expected no cluster, got {:?}", enricher.cluster());
    };
    assert!(reason.contains("/nonexistent/kubeconfig"), "{reason}");
    let mut batch = vec![event(&format!(
        "/var/log/pods/shop_web-1_{}/nginx/3.log",
        uid(1)
    ))];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    assert_eq!(
        fields(&batch[0]),
        json!({"kubernetes": {"pod": {"name": "web-1", "uid": uid(1)}, "namespace": "shop", "container": {"name": "nginx"}}})
    );
    assert_eq!(enricher.stats().misses(MissReason::NoCluster), 1);
    assert!(!enricher.wait_until_synced(Duration::from_secs(5)));
}

#[test]
fn matchers_and_indexers_narrow_the_lookups() {
    let objects = vec![pod("web-1", 1, 1, &[("nginx", "nginx", &id(1))], json!({}))];
    let only_pods = self::config(json!({
        "default_matchers.enabled": false,
        "matchers": [{"logs_path": {"logs_path": "/var/log/pods/", "resource_type": "pod"}}],
    }));
    let enricher = Enricher::from_objects(&only_pods, objects.clone()).unwrap();
    let mut batch = vec![
        event(&link("web-1", "nginx", &id(1))),
        event(&format!("/var/log/pods/shop_web-1_{}/nginx/0.log", uid(1))),
    ];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    assert_eq!(
        fields(&batch[0]),
        json!({"container": {"id": id(1)}}),
        "not under the prefix"
    );
    assert_eq!(batch[1].get("kubernetes.pod.name"), Some(&json!("web-1")));
    assert_eq!(
        batch[1].get("kubernetes.container"),
        None,
        "resource_type: pod"
    );
    assert_eq!(batch[1].get("container.id"), None);

    let by_id_only =
        self::config(json!({"default_indexers.enabled": false, "indexers": [{"container": {}}]}));
    let enricher = Enricher::from_objects(&by_id_only, objects).unwrap();
    let mut batch = vec![event(&format!(
        "/var/log/pods/shop_web-1_{}/nginx/0.log",
        uid(1)
    ))];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    assert_eq!(enricher.stats().misses(MissReason::PodUnknown), 1);
}

#[test]
fn lines_wait_for_the_watch_to_learn_their_pod() {
    let settings = Arc::new(settings(json!({"wait_for_metadata": "30s"})));
    let shared = Arc::new(Shared::default());
    let watching = ClusterStatus::Watching {
        url: "https://k8s".into(),
        node: Some(NODE.into()),
    };
    let enricher = Enricher::attached(Arc::clone(&settings), Arc::clone(&shared), watching.clone());
    let mut batch = vec![
        event(&link("web-1", "nginx", &id(1))),
        event("/var/log/syslog"),
        event(&link("web-1", "nginx", &id(1))),
    ];
    assert!(!enricher.ready(&batch[0]));
    assert!(
        enricher.ready(&batch[1]),
        "not a container log: nothing to wait for"
    );
    let pending = enricher.enrich_batch(&mut batch);
    assert_eq!(pending.indices(), [0, 2]);
    assert!(pending.deadline().is_some());
    assert_eq!(
        batch[0].get("kubernetes"),
        None,
        "waiting events are untouched"
    );

    // The watch learns the pod on another thread; the waiting thread wakes and finishes.
    let writer = {
        let (shared, settings) = (Arc::clone(&shared), Arc::clone(&settings));
        std::thread::spawn(move || {
            let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
                "web-1",
                1,
                1,
                &[("nginx", "nginx", &id(1))],
                json!({}),
            ))
            .unwrap();
            shared.update(|s| s.apply_pod(&pod, &settings));
        })
    };
    let mut pending = pending;
    while !pending.is_empty() {
        enricher.wait_for_change(&pending);
        enricher.enrich_pending(&mut batch, &mut pending);
    }
    writer.join().unwrap();
    assert!(enricher.ready(&batch[0]));
    assert_eq!(batch[2].get("kubernetes.pod.uid"), Some(&json!(uid(1))));
    let stats = enricher.stats();
    assert_eq!((stats.enriched, stats.waited, stats.pod_unknown), (2, 2, 0));

    // A pod that never shows up: its lines wait once, for at most the budget.
    let short = Arc::new(self::settings(json!({"wait_for_metadata": "1ms"})));
    let enricher = Enricher::attached(short, Arc::new(Shared::default()), watching);
    let mut batch = vec![event(&link("ghost", "app", &id(7)))];
    enricher.enrich_batch_blocking(&mut batch);
    assert!(enricher.ready(&batch[0]), "its wait has run out");
    assert_eq!(batch[0].get("kubernetes.pod.name"), Some(&json!("ghost")));
    let stats = enricher.stats();
    assert_eq!((stats.waited, stats.pod_unknown), (1, 1));
    // The budget is per pod, not per batch: later lines do not wait again.
    let mut batch = vec![event(&link("ghost", "app", &id(7)))];
    assert!(enricher.enrich_batch(&mut batch).is_empty());
    assert_eq!(enricher.stats().pod_unknown, 2);
}

/// The processor enriches one event at a time and remembers the last path's result;
/// every change of the store is seen by the next event.
#[test]
fn one_event_at_a_time_sees_every_change() {
    let settings = Arc::new(settings(json!({"wait_for_metadata": "1ms"})));
    let shared = Arc::new(Shared::default());
    let watching = ClusterStatus::Watching {
        url: "https://k8s".into(),
        node: Some(NODE.into()),
    };
    let enricher = Enricher::attached(Arc::clone(&settings), Arc::clone(&shared), watching);
    let path = link("web-1", "nginx", &id(1));
    let enrich = || {
        let mut e = event(&path);
        enricher.enrich_event(&mut e);
        e
    };
    let unknown = enrich();
    assert_eq!(unknown.get("kubernetes.pod.name"), Some(&json!("web-1")));
    assert_eq!(unknown.get("kubernetes.pod.uid"), None);
    assert_eq!(enrich().get("kubernetes.pod.uid"), None, "remembered");
    let apply = |labels: Value| {
        let pod = k8s_pod(pod(
            "web-1",
            1,
            2,
            &[("nginx", "nginx", &id(1))],
            json!({"metadata": {"labels": labels}}),
        ));
        shared.update(|s| s.apply_pod(&pod, &settings));
    };
    apply(json!({"app": "v1"}));
    let known = enrich();
    assert_eq!(known.get("kubernetes.pod.uid"), Some(&json!(uid(1))));
    assert_eq!(known.get("kubernetes.labels.app"), Some(&json!("v1")));
    assert!(known.log_entry().is_some(), "shared, not copied into maps");
    apply(json!({"app": "v2"}));
    assert_eq!(enrich().get("kubernetes.labels.app"), Some(&json!("v2")));
    let other = {
        let mut e = event(&link("web-2", "nginx", &id(2)));
        enricher.enrich_event(&mut e);
        e
    };
    assert_eq!(other.get("kubernetes.pod.name"), Some(&json!("web-2")));
    assert_eq!(enrich().get("kubernetes.labels.app"), Some(&json!("v2")));
    let stats = enricher.stats();
    assert_eq!((stats.enriched, stats.pod_unknown), (3, 3));
}

/// Entries of one file share its `LogFile`, as the tailer's do: the memo knows them by
/// it. Runs of two files alternate, one event at a time and in batches, with a second
/// enricher of other options run on the same thread in between: each event gets its own
/// file's pod, and each enricher its own options.
#[test]
fn files_alternating_and_enrichers_sharing_a_thread_get_their_own_fields() {
    let objects = || {
        vec![
            namespace(),
            pod("web-1", 1, 1, &[("nginx", "nginx", &id(1))], json!({})),
            pod(
                "api-2",
                2,
                1,
                &[("app", "api", &id(2))],
                json!({"metadata": {"labels": {"app.kubernetes.io/name": "api"}}}),
            ),
        ]
    };
    let with_labels = Enricher::from_objects(&config(json!({})), objects()).unwrap();
    let without =
        Enricher::from_objects(&config(json!({"exclude_labels": ["*"]})), objects()).unwrap();
    let files = [link("web-1", "nginx", &id(1)), link("api-2", "app", &id(2))]
        .map(|path| LogFile::named(Arc::from(path.as_str()), None));
    let entry = |n: usize| {
        let mut e = event(&files[n].path);
        let Some(entry) = e.log_entry() else {
            unreachable!("an entry")
        };
        let mut entry = entry.clone();
        entry.file = Arc::clone(&files[n]);
        e = Event::from_log_entry(Timestamp::UNIX_EPOCH, entry);
        e
    };
    let order = [0, 0, 1, 0, 1, 1, 0];
    let mut batch: Vec<Event> = order.iter().map(|&n| entry(n)).collect();
    assert!(with_labels.enrich_batch(&mut batch).is_empty());
    let mut singles: Vec<Event> = order.iter().map(|&n| entry(n)).collect();
    let mut plain: Vec<Event> = order.iter().map(|&n| entry(n)).collect();
    for (single, plain) in singles.iter_mut().zip(&mut plain) {
        with_labels.enrich_event(single);
        without.enrich_event(plain);
    }
    for (i, &n) in order.iter().enumerate() {
        let (name, app) = [("web-1", "web"), ("api-2", "api")][n];
        for e in [&batch[i], &singles[i]] {
            assert_eq!(
                e.get("kubernetes.pod.name"),
                Some(&json!(name)),
                "event {i}"
            );
            assert_eq!(
                e.get("kubernetes.labels.app_kubernetes_io/name"),
                Some(&json!(app))
            );
        }
        assert_eq!(
            plain[i].get("kubernetes.pod.name"),
            Some(&json!(name)),
            "event {i}"
        );
        assert_eq!(plain[i].get("kubernetes.labels.tier"), None, "event {i}");
    }
    assert_eq!(with_labels.stats().enriched, 14);
    assert_eq!(without.stats().enriched, 7);
}

fn k8s_pod(v: Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(v).unwrap()
}

#[test]
fn deleted_pods_stay_until_their_files_are_drained() {
    let settings = settings(json!({"cleanup_timeout": "60s", "max_deleted_age": "1h"}));
    let mut store = Store::default();
    let t0 = Instant::now();
    let web = k8s_pod(pod("web-1", 1, 1, &[("nginx", "nginx", &id(1))], json!({})));
    let api = k8s_pod(pod("api-1", 2, 1, &[("api", "api", &id(2))], json!({})));
    store.apply_pod(&web, &settings);
    store.apply_pod(&api, &settings);
    let web_path = link("web-1", "nginx", &id(1));
    assert!(store.file_opened(&web_path));
    assert!(
        store.file_opened(&web_path),
        "a second open of one path counts once"
    );
    assert!(!store.file_opened("/var/log/syslog"));
    store.delete_pod(&web, &settings, t0);
    store.delete_pod(&api, &settings, t0);
    assert_eq!(store.deleted_count(), 2);

    // api-1 has no open file: it goes after cleanup_timeout. web-1 stays while its file
    // is open, however long that takes (within max_deleted_age).
    let later = t0 + Duration::from_secs(600);
    assert_eq!(
        store.sweep(later, &settings),
        Sweep {
            drained: 1,
            ..Sweep::default()
        }
    );
    assert!(store.pod_by_container(&id(1)).is_some());
    assert!(store.pod_by_container(&id(2)).is_none());

    store.file_closed(&web_path, later);
    assert_eq!(
        store.sweep(later + Duration::from_secs(59), &settings),
        Sweep::default()
    );
    assert_eq!(
        store.sweep(later + Duration::from_secs(60), &settings),
        Sweep {
            drained: 1,
            ..Sweep::default()
        }
    );
    assert_eq!(
        (
            store.pod_count(),
            store.deleted_count(),
            store.open_file_count()
        ),
        (0, 0, 0)
    );
}

#[test]
fn deleted_pods_are_bounded_by_age_and_count() {
    let settings = settings(json!({"max_deleted_age": "10m", "max_deleted_pods": 2}));
    let mut store = Store::default();
    let t0 = Instant::now();
    for n in 1..=4u8 {
        let p = k8s_pod(pod(
            &format!("p{n}"),
            n,
            1,
            &[("c", "i", &id(n))],
            json!({}),
        ));
        store.apply_pod(&p, &settings);
        assert!(store.file_opened(&link(&format!("p{n}"), "c", &id(n))));
        store.delete_pod(&p, &settings, t0 + Duration::from_secs(u64::from(n)));
    }
    // Four deleted pods with open files, two allowed: the two deleted first go.
    let report = store.sweep(t0 + Duration::from_secs(5), &settings);
    assert_eq!(
        report,
        Sweep {
            over_cap: 2,
            ..Sweep::default()
        }
    );
    assert!(store.pod(&uid(1)).is_none() && store.pod(&uid(3)).is_some());
    // Files still open, but too old.
    let report = store.sweep(t0 + Duration::from_secs(600 + 4), &settings);
    assert_eq!(
        report,
        Sweep {
            expired: 2,
            ..Sweep::default()
        }
    );
    assert_eq!(store.pod_count(), 0);
}

#[test]
fn restarted_containers_keep_their_old_ids_and_names_go_to_the_newest_pod() {
    let settings = settings(json!({}));
    let mut store = Store::default();
    store.apply_pod(
        &k8s_pod(pod("db-0", 1, 1, &[("pg", "postgres", &id(1))], json!({}))),
        &settings,
    );
    store.apply_pod(
        &k8s_pod(pod("db-0", 1, 2, &[("pg", "postgres", &id(2))], json!({}))),
        &settings,
    );
    let (old, index) = store.pod_by_container(&id(1)).unwrap();
    assert_eq!((&*old.uid, index), (uid(1).as_str(), 0));
    assert_eq!(
        store
            .pod_by_container(&id(2))
            .map(|(p, _)| p.containers[0].id.clone()),
        Some(Some(Arc::from(id(2))))
    );

    // The StatefulSet's pod is replaced: the name goes to the new pod, the old one is
    // still found by its uid and container ids.
    let old_pod = k8s_pod(pod("db-0", 1, 3, &[("pg", "postgres", &id(2))], json!({})));
    store.delete_pod(&old_pod, &settings, Instant::now());
    store.apply_pod(
        &k8s_pod(pod("db-0", 5, 4, &[("pg", "postgres", &id(5))], json!({}))),
        &settings,
    );
    assert_eq!(
        store.pod_by_name("shop/db-0").map(|p| &*p.uid),
        Some(uid(5).as_str())
    );
    assert!(store.pod(&uid(1)).is_some_and(|p| p.deleted_at.is_some()));
    assert_eq!(
        store.pod_by_container(&id(1)).map(|(p, _)| &*p.uid),
        Some(uid(1).as_str())
    );
}

#[test]
fn strings_of_changed_pods_are_freed() {
    let settings = settings(json!({}));
    let mut store = Store::default();
    for version in 0..3000u32 {
        let p = pod(
            "web-1",
            1,
            version,
            &[("nginx", &format!("nginx:{version}"), &id(1))],
            json!({}),
        );
        store.apply_pod(&k8s_pod(p), &settings);
        store.sweep(Instant::now(), &settings);
    }
    // One image left of 3000, plus the pod's other strings.
    assert!(store.interned() < 2 * 1024 + 20, "{}", store.interned());
}

#[test]
fn relists_mark_unlisted_pods_deleted() {
    let settings = settings(json!({}));
    let mut store = Store::default();
    store.start_relist();
    store.apply_pod(&k8s_pod(pod("a", 1, 1, &[], json!({}))), &settings);
    store.apply_pod(&k8s_pod(pod("b", 2, 1, &[], json!({}))), &settings);
    assert!(!store.pods_synced());
    store.finish_relist(Instant::now());
    assert!(store.pods_synced());
    store.start_relist();
    store.apply_pod(&k8s_pod(pod("b", 2, 2, &[], json!({}))), &settings);
    store.finish_relist(Instant::now());
    assert!(store.pod(&uid(1)).is_some_and(|p| p.deleted_at.is_some()));
    assert!(store.pod(&uid(2)).is_some_and(|p| p.deleted_at.is_none()));
    assert_eq!(store.deleted_count(), 1);
}

#[test]
fn from_objects_rejects_bad_objects() {
    let cases = [
        (
            json!({"kind": "Service", "metadata": {}}),
            "object 0: kind \"Service\" is not one of Pod, Namespace, ReplicaSet, Job",
        ),
        (
            json!({"kind": "Pod", "metadata": {"name": "x"}}),
            "object 0: a pod needs metadata.uid, .name and .namespace",
        ),
        (
            json!({"kind": "Pod", "metadata": {"name": 5}}),
            "object 0: invalid type: integer `5`",
        ),
    ];
    for (object, want) in cases {
        let err = Enricher::from_objects(&config(json!({})), [object])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(want), "{err}");
    }
}

/// The watches against kube's `tower-test` mock service, with scripted responses.
mod mock {
    use std::pin::Pin;

    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use kube::Client;
    use tower_test::mock::{self, Handle, SendResponse};

    use super::*;

    type Held = (Request<Body>, SendResponse<Response<Body>>);

    /// The API server side: takes requests in order, keeping aside those a test is not
    /// asking for yet (the watches and the owner lookups run concurrently).
    struct ApiServer {
        handle: Pin<Box<Handle<Request<Body>, Response<Body>>>>,
        held: Vec<Held>,
    }

    impl ApiServer {
        /// The next request whose path and query contain every one of `parts`.
        async fn expect(&mut self, parts: &[&str]) -> Held {
            let wanted = |r: &Request<Body>| {
                let uri = r.uri().to_string();
                parts.iter().all(|p| uri.contains(p))
            };
            if let Some(i) = self.held.iter().position(|(r, _)| wanted(r)) {
                return self.held.remove(i);
            }
            loop {
                let held =
                    tokio::time::timeout(Duration::from_secs(600), self.handle.next_request())
                        .await
                        .unwrap_or_else(|_| {
                            panic!("no request for {parts:?}; held: {:?}", self.uris())
                        })
                        .expect("the client is gone");
                if wanted(&held.0) {
                    return held;
                }
                self.held.push(held);
            }
        }

        fn uris(&self) -> Vec<String> {
            self.held.iter().map(|(r, _)| r.uri().to_string()).collect()
        }
    }

    fn respond(send: SendResponse<Response<Body>>, status: StatusCode, body: Vec<u8>) {
        let response = Response::builder()
            .status(status)
            .body(Body::from(body))
            .unwrap();
        send.send_response(response);
    }

    fn list(rv: &str, items: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items}))
            .unwrap()
    }

    /// A watch response body: one JSON event per line.
    fn watch(events: Vec<(&str, Value)>) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, object) in events {
            serde_json::to_writer(&mut out, &json!({"type": kind, "object": object})).unwrap();
            out.push(b'\n');
        }
        out
    }

    fn bookmark(rv: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"resourceVersion": rv}})
    }

    fn gone() -> Value {
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
               "message": "too old resource version: 5 (40)", "reason": "Expired", "code": 410})
    }

    /// Polls (on the paused clock) until the store satisfies `check`.
    async fn until(shared: &Shared, what: &str, check: impl Fn(&Store) -> bool) {
        for _ in 0..10_000 {
            if check(&shared.read()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn start(extra: Value) -> (ApiServer, Arc<Settings>, Arc<Shared>, Enricher) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let settings = Arc::new(self::settings(extra));
        let shared = Arc::new(Shared::default());
        tokio::spawn(crate::worker::run(
            client,
            Arc::clone(&settings),
            Arc::clone(&shared),
        ));
        let enricher = Enricher::attached(
            Arc::clone(&settings),
            Arc::clone(&shared),
            ClusterStatus::Watching {
                url: "http://mock".into(),
                node: Some(NODE.into()),
            },
        );
        let api = ApiServer {
            handle: Box::pin(handle),
            held: Vec::new(),
        };
        (api, settings, shared, enricher)
    }

    fn enrich_one(enricher: &Enricher, path: &str) -> Event {
        let mut batch = vec![event(path)];
        assert!(
            enricher.enrich_batch(&mut batch).is_empty(),
            "{path} should not wait"
        );
        batch.pop().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn list_watch_bookmark_delete_and_relist_after_410() {
        let (mut api, _settings, shared, enricher) = start(json!({
            "add_resource_metadata.namespace.enabled": false,
            "wait_for_metadata": 0,
        }));

        // LIST of this node's pods.
        let (req, send) = api
            .expect(&["/api/v1/pods?", "fieldSelector=spec.nodeName%3Dnode-a"])
            .await;
        assert!(!req.uri().to_string().contains("watch=true"));
        let web = pod(
            "web-7d4b9-x2x",
            1,
            5,
            &[("nginx", "nginx:1.27", &id(1))],
            owned_by("ReplicaSet", "web-7d4b9"),
        );
        respond(send, StatusCode::OK, list("10", vec![web.clone()]));
        until(&shared, "the first list", |s| {
            s.pods_synced() && s.pod_count() == 1
        })
        .await;

        // The ReplicaSet is read once, for its Deployment.
        let (_, send) = api
            .expect(&["/apis/apps/v1/namespaces/shop/replicasets/web-7d4b9"])
            .await;
        respond(
            send,
            StatusCode::OK,
            serde_json::to_vec(&replicaset("web-7d4b9", "web")).unwrap(),
        );
        until(&shared, "the deployment", |s| {
            s.pod(&uid(1)).is_some_and(|p| p.owner.is_some())
                && s.owner_of(&(
                    crate::store::OwnerKind::ReplicaSet,
                    Arc::from("shop"),
                    Arc::from("web-7d4b9"),
                ))
                .is_some()
        })
        .await;
        let e = enrich_one(&enricher, &link("web-7d4b9-x2x", "nginx", &id(1)));
        assert_eq!(e.get("kubernetes.deployment.name"), Some(&json!("web")));
        assert_eq!(
            e.get("kubernetes.container.image"),
            Some(&json!("nginx:1.27"))
        );

        // WATCH from the list's version: a label change, a new pod (whose container id
        // arrives later), a deletion and a bookmark.
        let (_, send) = api
            .expect(&[
                "/api/v1/pods?",
                "watch=true",
                "resourceVersion=10",
                "allowWatchBookmarks=true",
            ])
            .await;
        let mut relabeled = web.clone();
        merge(
            &mut relabeled,
            json!({"metadata": {"resourceVersion": "11", "labels": {"tier": "back"}}}),
        );
        let api_pod = pod(
            "api-0",
            2,
            12,
            &[("api", "api:2", "")],
            owned_by("StatefulSet", "api"),
        );
        let mut deleted = relabeled.clone();
        merge(&mut deleted, json!({"metadata": {"resourceVersion": "13"}}));
        respond(
            send,
            StatusCode::OK,
            watch(vec![
                ("MODIFIED", relabeled),
                ("ADDED", api_pod.clone()),
                ("DELETED", deleted),
                ("BOOKMARK", bookmark("20")),
            ]),
        );
        until(&shared, "the watch events", |s| {
            s.deleted_count() == 1 && s.pod_count() == 2
        })
        .await;

        // The deleted pod's lines still get its metadata, with the new label.
        let e = enrich_one(&enricher, &link("web-7d4b9-x2x", "nginx", &id(1)));
        assert_eq!(e.get("kubernetes.labels.tier"), Some(&json!("back")));
        assert_eq!(e.get("kubernetes.pod.uid"), Some(&json!(uid(1))));
        // The new pod has no container id yet: its lines are found by namespace, name
        // and container name.
        let e = enrich_one(&enricher, &link("api-0", "api", &id(2)));
        assert_eq!(e.get("kubernetes.statefulset.name"), Some(&json!("api")));
        assert_eq!(e.get("container.id"), Some(&json!(id(2))));
        assert_eq!(e.get("container.runtime"), None);

        // The next WATCH resumes from the bookmark, and the server says 410 Gone.
        let (_, send) = api
            .expect(&["/api/v1/pods?", "watch=true", "resourceVersion=20"])
            .await;
        respond(send, StatusCode::OK, watch(vec![("ERROR", gone())]));

        // A new LIST (after the backoff): api-0 now with its container id, and a pod
        // that was added while the watch was down; web's deletion is already known.
        let (req, send) = api
            .expect(&["/api/v1/pods?", "fieldSelector=spec.nodeName%3Dnode-a"])
            .await;
        assert!(
            !req.uri().to_string().contains("watch=true"),
            "a relist, not a watch: {}",
            req.uri()
        );
        let mut api_started = api_pod.clone();
        merge(
            &mut api_started,
            json!({"metadata": {"resourceVersion": "41"}, "status": {"containerStatuses": [
                {"name": "api", "image": "api:2", "imageID": "", "ready": true, "restartCount": 0, "containerID": format!("cri-o://{}", id(2))}
            ]}}),
        );
        let job_pod = pod("report-1", 3, 42, &[("run", "report:1", &id(3))], json!({}));
        respond(send, StatusCode::OK, list("42", vec![api_started, job_pod]));
        until(&shared, "the relist", |s| {
            s.pod_count() == 3 && s.pod(&uid(3)).is_some()
        })
        .await;
        let _watch = api
            .expect(&["/api/v1/pods?", "watch=true", "resourceVersion=42"])
            .await;

        let e = enrich_one(&enricher, &link("api-0", "api", &id(2)));
        assert_eq!(e.get("container.runtime"), Some(&json!("cri-o")));
        let e = enrich_one(&enricher, &link("report-1", "run", &id(3)));
        assert_eq!(
            e.get("kubernetes.container.image"),
            Some(&json!("report:1"))
        );

        let stats = enricher.stats();
        assert_eq!((stats.relists, stats.watch_errors), (1, 1));
        assert_eq!((stats.pods, stats.deleted_pods), (3, 1));
        assert_eq!((stats.owner_lookups, stats.owner_lookup_errors), (1, 0));
        assert!(stats.synced);
        assert_eq!(stats.enriched, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn namespaces_are_watched_and_owner_lookups_retry() {
        let (mut api, _settings, shared, enricher) = start(json!({"wait_for_metadata": 0}));
        let (_, send) = api.expect(&["/api/v1/namespaces?"]).await;
        respond(send, StatusCode::OK, list("3", vec![namespace()]));
        let (_, send) = api.expect(&["/api/v1/pods?"]).await;
        let batch_pod = pod(
            "backup-1-x",
            1,
            5,
            &[("run", "busybox", &id(1))],
            owned_by("Job", "backup-1"),
        );
        respond(send, StatusCode::OK, list("10", vec![batch_pod]));
        until(&shared, "pods and namespaces", |s| {
            s.pods_synced() && s.namespace("shop").is_some()
        })
        .await;

        // The Job lookup fails once (RBAC not there yet), then succeeds on the retry.
        let (_, send) = api
            .expect(&["/apis/batch/v1/namespaces/shop/jobs/backup-1"])
            .await;
        respond(
            send,
            StatusCode::FORBIDDEN,
            serde_json::to_vec(
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "jobs.batch is forbidden", "reason": "Forbidden", "code": 403}),
            )
            .unwrap(),
        );
        let (_, send) = api
            .expect(&["/apis/batch/v1/namespaces/shop/jobs/backup-1"])
            .await;
        respond(
            send,
            StatusCode::OK,
            serde_json::to_vec(&job("backup-1", "backup")).unwrap(),
        );
        until(&shared, "the cronjob", |s| {
            s.owner_of(&(
                crate::store::OwnerKind::Job,
                Arc::from("shop"),
                Arc::from("backup-1"),
            ))
            .is_some()
        })
        .await;

        let e = enrich_one(&enricher, &link("backup-1-x", "run", &id(1)));
        assert_eq!(e.get("kubernetes.cronjob.name"), Some(&json!("backup")));
        assert_eq!(e.get("kubernetes.job.name"), Some(&json!("backup-1")));
        assert_eq!(
            e.get("kubernetes.namespace_labels.team"),
            Some(&json!("checkout"))
        );
        assert_eq!(e.get("kubernetes.namespace_uid"), Some(&json!("ns-uid-1")));

        // A namespace relabeled through the watch.
        let (_, send) = api.expect(&["/api/v1/namespaces?", "watch=true"]).await;
        let mut ns = namespace();
        merge(
            &mut ns,
            json!({"metadata": {"resourceVersion": "4", "labels": {"team": "payments"}}}),
        );
        respond(send, StatusCode::OK, watch(vec![("MODIFIED", ns)]));
        until(&shared, "the namespace change", |s| {
            s.namespace("shop")
                .is_some_and(|n| n.labels.iter().any(|(_, v)| &**v == "payments"))
        })
        .await;
        let stats = enricher.stats();
        assert_eq!((stats.owner_lookups, stats.owner_lookup_errors), (2, 1));
    }
}
