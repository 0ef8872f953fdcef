//! A synthetic cluster for the logtide-k8s-meta benchmarks: pods as the API server serves
//! them, with what real pods carry (labels, annotations, env, volumes, probes, statuses),
//! most of which the cache drops.

use serde_json::{json, Value};

/// Pods per namespace and per ReplicaSet.
const NAMESPACES: usize = 100;
const REPLICAS: usize = 4;

/// The 64-hex-digit container id of container `c` of pod `i`.
pub(crate) fn container_id(i: usize, c: usize) -> String {
    format!("{:016x}{:016x}{:016x}{:016x}", i, c, i ^ 0x5a5a, c + 7)
}

pub(crate) fn uid(i: usize) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", i, i % 65536, i * 7919)
}

/// Replicas of one ReplicaSet share a namespace.
fn namespace_of(i: usize) -> String {
    format!("team-{:03}", (i / REPLICAS) % NAMESPACES)
}

fn app_of(i: usize) -> String {
    format!("service-{:04}", i / REPLICAS)
}

pub(crate) fn pod_name(i: usize) -> String {
    format!("{}-7d4b9c{:04x}-{:05}", app_of(i), i / REPLICAS, i)
}

/// Pod `i` of the synthetic cluster.
pub(crate) fn pod(i: usize) -> Value {
    let app = app_of(i);
    let rs = format!("{app}-7d4b9c{:04x}", i / REPLICAS);
    let containers = [
        (
            app.clone(),
            format!("registry.example.com/{app}:1.{}.0", i % 17),
        ),
        (
            "istio-proxy".to_owned(),
            "docker.io/istio/proxyv2:1.24.2".to_owned(),
        ),
    ];
    let spec_containers: Vec<Value> = containers
        .iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
            })
        })
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .enumerate()
        .map(|(c, (name, image))| {
            json!({"name": name, "image": image, "imageID": format!("{image}@sha256:{}", container_id(i, c)),
                   "ready": true, "restartCount": 0, "started": true,
                   "state": {"running": {"startedAt": "2026-11-20T10:00:00Z"}},
                   "containerID": format!("containerd://{}", container_id(i, c))})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(i),
            "namespace": namespace_of(i),
            "uid": uid(i),
            "resourceVersion": format!("{}", 100_000 + i),
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "generateName": format!("{rs}-"),
            "labels": {
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/instance": format!("{app}-prod"),
                "app.kubernetes.io/version": format!("1.{}.0", i % 17),
                "app.kubernetes.io/part-of": format!("product-{}", i % 20),
                "pod-template-hash": format!("7d4b9c{:04x}", i / REPLICAS),
                "security.istio.io/tlsMode": "istio",
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/restartedAt": "2026-11-20T09:59:00Z",
                "sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[\"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\"],\"imagePullSecrets\":null}",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid(1_000_000 + i / REPLICAS), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": format!("node-{:03}", i % 50),
            "serviceAccountName": "default",
            "containers": spec_containers,
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running",
            "podIP": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
            "hostIP": "192.168.1.10",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-20T10:00:05Z"}],
            "containerStatuses": statuses,
        },
    })
}

/// The namespaces and ReplicaSets the pods refer to.
pub(crate) fn owners_and_namespaces(pods: usize) -> Vec<Value> {
    let mut out: Vec<Value> = (0..NAMESPACES.min(pods))
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": format!("team-{n:03}"), "uid": uid(2_000_000 + n), "resourceVersion": "1",
            "labels": {"kubernetes.io/metadata.name": format!("team-{n:03}"), "istio-injection": "enabled"}}}))
        .collect();
    for r in 0..pods.div_ceil(REPLICAS) {
        let i = r * REPLICAS;
        let app = app_of(i);
        out.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": format!("{app}-7d4b9c{:04x}", r), "namespace": namespace_of(i), "uid": uid(1_000_000 + r), "resourceVersion": "1",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": uid(3_000_000 + r), "controller": true}]}}));
    }
    out
}

/// The kubelet symlink of container `c` of pod `i`, as the tailer reports it.
pub(crate) fn log_path(i: usize, c: usize) -> String {
    let container = if c == 0 {
        app_of(i)
    } else {
        "istio-proxy".to_owned()
    };
    format!(
        "/var/log/containers/{}_{}_{}-{}.log",
        pod_name(i),
        namespace_of(i),
        container,
        container_id(i, c)
    )
}

/// The processor options the benchmarks use (Filebeat's defaults plus one annotation).
pub(crate) fn options() -> Value {
    json!({"scope": "cluster", "include_annotations": ["prometheus.io/scrape"]})
}
