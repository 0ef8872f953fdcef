//! The plain manifests in `deploy/manifests/` (the Helm chart rendered with its default
//! values) against what the binaries read and serve.
//!
//! Every document is read into its Kubernetes API type (and must write back to the same
//! document, so a misspelled field fails); the configurations in the ConfigMaps are loaded
//! with the binaries' own loaders; then the mounts, probes, environment, RBAC rules,
//! Services and security settings are checked against those configurations and against
//! the resources `logtide-k8s-meta` asks the API server for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PodSpec, PodTemplateSpec, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logtide_pipeline::http::{
    HttpConfig, FILES_PORT, HEALTHZ_PATH, METRICS_PATH, METRICS_PORT, READYZ_PATH, RELAY_PORT,
};
use logtide_pipeline::metrics::MetricsConfig;
use logtide_pipeline::{FilesConfig, OutputConfig, RelayConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The value the manifests' `spec.nodeName` stands for while configurations are loaded.
const NODE: &str = "node-a";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every object in `deploy/manifests/`, by kind.
#[derive(Default)]
struct Manifests {
    daemon_sets: Vec<DaemonSet>,
    deployments: Vec<Deployment>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    /// Objects of custom resources (ServiceMonitor) and CRDs, as plain documents.
    custom: Vec<(String, Value)>,
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The first place where `a` and `b` differ, as a path.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}.{k}")),
                (Some(_), None) => Some(format!("{at}.{k}: not a field of the API type")),
                (None, Some(_)) => Some(format!("{at}.{k}: missing from the manifest")),
                (None, None) => None,
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} in the manifest, {b} in the API type")),
    }
}

/// `doc` as an API object; it must serialize back to the same document.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value, origin: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: not a valid object of its kind: {e}"));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(difference) = first_difference(doc, &back, "") {
        panic!("{origin}: {difference}");
    }
    object
}

fn load_manifests() -> Manifests {
    load_manifests_from("deploy/manifests")
}

fn load_manifests_from(rel: &str) -> Manifests {
    let dir = repo().join(rel);
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let mut m = Manifests::default();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let origin = format!("{} document {} ({kind})", file.display(), i + 1);
            match (api_version.as_str(), kind.as_str()) {
                ("apps/v1", "DaemonSet") => m.daemon_sets.push(typed(&doc, &origin)),
                ("apps/v1", "Deployment") => m.deployments.push(typed(&doc, &origin)),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                    m.cluster_roles.push(typed(&doc, &origin))
                }
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    m.cluster_role_bindings.push(typed(&doc, &origin))
                }
                ("v1", "ServiceAccount") => m.service_accounts.push(typed(&doc, &origin)),
                ("v1", "ConfigMap") => m.config_maps.push(typed(&doc, &origin)),
                ("v1", "Service") => m.services.push(typed(&doc, &origin)),
                ("monitoring.coreos.com/v1", "ServiceMonitor")
                | ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                    assert!(
                        doc["metadata"]["name"].is_string() && doc["spec"].is_object(),
                        "{origin}: needs metadata.name and spec"
                    );
                    m.custom.push((kind, doc));
                }
                _ => panic!("{origin}: unexpected kind {api_version}/{kind}"),
            }
        }
    }
    m
}

/// A workload's pod template, named for messages.
struct Workload<'a> {
    name: String,
    replicas: i32,
    template: &'a PodTemplateSpec,
}

impl Manifests {
    fn workloads(&self) -> Vec<Workload<'_>> {
        let ds = self.daemon_sets.iter().map(|d| Workload {
            name: format!("DaemonSet {}", d.metadata.name.as_deref().unwrap()),
            replicas: 1,
            template: &d.spec.as_ref().unwrap().template,
        });
        let deploy = self.deployments.iter().map(|d| {
            let spec = d.spec.as_ref().unwrap();
            Workload {
                name: format!("Deployment {}", d.metadata.name.as_deref().unwrap()),
                replicas: spec.replicas.unwrap_or(1),
                template: &spec.template,
            }
        });
        ds.chain(deploy).collect()
    }

    fn config_map(&self, name: &str) -> &ConfigMap {
        self.config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ConfigMap {name}"))
    }

    /// The container named `name` and its pod.
    fn container(&self, name: &str) -> (&PodSpec, &Container, String) {
        for w in self.workloads() {
            let pod = w.template.spec.as_ref().unwrap();
            if let Some(c) = pod.containers.iter().find(|c| c.name == name) {
                return (pod, c, w.name);
            }
        }
        panic!("no workload runs a container named {name}")
    }
}

/// Whether `path` is `dir` or below it.
fn is_under(path: &str, dir: &str) -> bool {
    Path::new(path).starts_with(dir)
}

/// A container's view of one of its volume mounts.
struct Mount<'a> {
    path: &'a str,
    read_only: bool,
    /// The host path behind it, for hostPath volumes (with the mount's subPath).
    host_path: Option<String>,
    config_map: Option<&'a str>,
}

fn mounts<'a>(pod: &'a PodSpec, c: &'a Container) -> Vec<Mount<'a>> {
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    c.volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let v = volumes
                .iter()
                .find(|v| v.name == m.name)
                .unwrap_or_else(|| panic!("{}: mount {} names no volume", c.name, m.name));
            let host_path = v.host_path.as_ref().map(|h| {
                let base = Path::new(&h.path);
                match m.sub_path.as_deref() {
                    Some(sub) if !sub.is_empty() => base.join(sub).display().to_string(),
                    _ => h.path.clone(),
                }
            });
            Mount {
                path: &m.mount_path,
                read_only: m.read_only == Some(true),
                host_path,
                config_map: v.config_map.as_ref().map(|c| c.name.as_str()),
            }
        })
        .collect()
}

/// The innermost mount `path` lies in.
fn mount_of<'m, 'a>(mounts: &'m [Mount<'a>], path: &str) -> Option<&'m Mount<'a>> {
    mounts
        .iter()
        .filter(|m| is_under(path, m.path))
        .max_by_key(|m| m.path.len())
}

/// The configuration file a container is started with (`--config PATH` or `-c PATH`) and
/// its text, read from the ConfigMap mounted at its directory.
fn config_text(m: &Manifests, pod: &PodSpec, c: &Container) -> (String, String) {
    let args: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--config" || *a == "-c")
        .unwrap_or_else(|| panic!("{}: started without --config", c.name));
    let path = args[at + 1].clone();
    let mounts = mounts(pod, c);
    let mount =
        mount_of(&mounts, &path).unwrap_or_else(|| panic!("{}: {path} is on no volume", c.name));
    let config_map = mount
        .config_map
        .unwrap_or_else(|| panic!("{}: {path} is not on a ConfigMap volume", c.name));
    let key = Path::new(&path).strip_prefix(mount.path).unwrap();
    let data = m.config_map(config_map).data.as_ref().unwrap();
    let text = data
        .get(key.to_str().unwrap())
        .unwrap_or_else(|| panic!("ConfigMap {config_map} has no key {}", key.display()));
    (path, text.clone())
}

/// The environment a container's configuration is expanded with: its `env` entries, with
/// `spec.nodeName` standing for [`NODE`].
fn container_env(c: &Container) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), None) => v.clone(),
            (None, Some(from)) => {
                let field = from.field_ref.as_ref().unwrap_or_else(|| {
                    panic!(
                        "{}: {} comes from something else than a field",
                        c.name, e.name
                    )
                });
                assert_eq!(field.field_path, "spec.nodeName", "{}: {}", c.name, e.name);
                NODE.to_owned()
            }
            _ => panic!("{}: {} has no value", c.name, e.name),
        };
        env.insert(e.name.clone(), value);
    }
    env
}

/// Configurations are expanded (`${VAR}`) from the process environment: one load at a time.
static ENV: Mutex<()> = Mutex::new(());

/// Runs `load` with exactly the container's environment variables set (others unset).
fn with_env<T>(env: &BTreeMap<String, String>, load: impl FnOnce() -> T) -> T {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let result = load();
    for k in env.keys() {
        std::env::remove_var(k);
    }
    result
}

/// The `http` section of a configuration (a map under `http`, as the chart writes it).
fn http_section(text: &str, origin: &str) -> HttpConfig {
    let doc: Value = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let http = doc
        .get("http")
        .unwrap_or_else(|| panic!("{origin}: no http section"));
    serde_json::from_value(http.clone()).unwrap_or_else(|e| panic!("{origin}: http: {e}"))
}

/// One binary's container, its pod, and its configuration with the `http` section.
struct Binary<'a> {
    pod: &'a PodSpec,
    container: &'a Container,
    workload: String,
    env: BTreeMap<String, String>,
    /// The configuration file's text.
    text: String,
    path: String,
    http: HttpConfig,
}

fn binary<'a>(m: &'a Manifests, name: &str) -> Binary<'a> {
    let (pod, container, workload) = m.container(name);
    let (path, text) = config_text(m, pod, container);
    let http = http_section(&text, &path);
    Binary {
        pod,
        container,
        workload,
        env: container_env(container),
        text,
        path,
        http,
    }
}

/// The container port a probe or Service port names (by number or by name).
fn resolve_port(c: &Container, port: &IntOrString) -> i32 {
    let ports = c.ports.as_deref().unwrap_or_default();
    match port {
        IntOrString::Int(n) => {
            assert!(
                ports.iter().any(|p| p.container_port == *n),
                "{}: port {n} is not a container port",
                c.name
            );
            *n
        }
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{}: no container port named {name}", c.name))
                .container_port
        }
    }
}

/// The probes and the port of a binary are the ones its `http` section makes it serve.
fn check_http(b: &Binary<'_>, default_port: u16) {
    let c = b.container;
    assert!(b.http.enabled, "{}: http.enabled must be true", b.path);
    assert_eq!(
        b.http.host.as_deref(),
        Some("0.0.0.0"),
        "{}: the kubelet probes the pod's address, so http.host must be 0.0.0.0",
        b.path
    );
    let port = i32::from(b.http.port.unwrap_or(default_port));
    assert_eq!(b.http.address(default_port), format!("0.0.0.0:{port}"));
    assert_eq!(port, i32::from(default_port), "{}: http.port", b.path);
    for (kind, probe, path) in [
        ("liveness", &c.liveness_probe, HEALTHZ_PATH),
        ("readiness", &c.readiness_probe, READYZ_PATH),
    ] {
        let probe = probe
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no {kind} probe", c.name));
        let get = probe
            .http_get
            .as_ref()
            .unwrap_or_else(|| panic!("{}: the {kind} probe is not an HTTP GET", c.name));
        assert_eq!(
            get.path.as_deref(),
            Some(path),
            "{}: {kind} probe path",
            c.name
        );
        assert_eq!(
            resolve_port(c, &get.port),
            port,
            "{}: the {kind} probe's port is not http.port of {}",
            c.name,
            b.path
        );
    }
}

/// A writable host directory (it outlives the pod) holds `path`.
fn assert_on_host(b: &Binary<'_>, path: &Path, what: &str) {
    let path = path.to_str().unwrap();
    let mounts = mounts(b.pod, b.container);
    let m = mount_of(&mounts, path)
        .unwrap_or_else(|| panic!("{}: {what} {path} is on no volume", b.container.name));
    assert!(
        !m.read_only,
        "{}: {what} {path} is read-only",
        b.container.name
    );
    assert!(
        m.host_path.is_some(),
        "{}: {what} {path} must be on a hostPath volume to survive the pod",
        b.container.name
    );
}

/// A writable volume (of any kind) holds `path`.
fn assert_writable(b: &Binary<'_>, path: &Path, what: &str) {
    let path = path.to_str().unwrap();
    let mounts = mounts(b.pod, b.container);
    let m = mount_of(&mounts, path)
        .unwrap_or_else(|| panic!("{}: {what} {path} is on no volume", b.container.name));
    assert!(
        !m.read_only,
        "{}: {what} {path} is read-only",
        b.container.name
    );
}

/// A read-only mount of the host's `host` at `path`.
fn assert_host_mount(b: &Binary<'_>, path: &str, host: &str) {
    let mounts = mounts(b.pod, b.container);
    let m = mounts
        .iter()
        .find(|m| m.path == path)
        .unwrap_or_else(|| panic!("{}: nothing mounted at {path}", b.container.name));
    assert_eq!(
        m.host_path.as_deref(),
        Some(host),
        "{}: {path}",
        b.container.name
    );
    assert!(
        m.read_only,
        "{}: {path} must be read-only",
        b.container.name
    );
}

fn kinesis_dead_letter(output: &OutputConfig) -> Option<&Path> {
    match output {
        OutputConfig::Kinesis(k) => Some(&k.dead_letter_path),
        _ => None,
    }
}

#[test]
fn every_manifest_is_a_valid_api_object() {
    let m = load_manifests();
    assert_eq!(m.daemon_sets.len(), 1, "one DaemonSet");
    assert_eq!(m.deployments.len(), 1, "one Deployment");
    assert!(!m.config_maps.is_empty() && !m.services.is_empty());
    for w in m.workloads() {
        let pod = w.template.spec.as_ref().unwrap();
        for c in &pod.containers {
            // Every mount names a volume (mounts() panics otherwise), and every ConfigMap
            // volume is one of the manifests.
            for mount in mounts(pod, c) {
                if let Some(name) = mount.config_map {
                    m.config_map(name);
                }
            }
        }
        let account = pod.service_account_name.as_deref().unwrap_or("default");
        assert!(
            m.service_accounts
                .iter()
                .any(|a| a.metadata.name.as_deref() == Some(account)),
            "{}: no ServiceAccount {account}",
            w.name
        );
    }
}

#[test]
fn logtide_files_reads_the_host_logs_and_keeps_its_registry_on_the_host() {
    let m = load_manifests();
    let b = binary(&m, "logtide-files");
    let config = with_env(&b.env, || {
        FilesConfig::from_yaml(&b.text, Path::new(&b.path))
            .unwrap_or_else(|e| panic!("{}: {e}", b.path))
    });
    assert_eq!(config.http, b.http);
    check_http(&b, FILES_PORT);
    assert!(b.workload.starts_with("DaemonSet"), "{}", b.workload);
    // The logs, their link targets on docker nodes, and each input's files.
    assert_host_mount(&b, "/var/log", "/var/log");
    assert_host_mount(
        &b,
        "/var/lib/docker/containers",
        "/var/lib/docker/containers",
    );
    let mounts = mounts(b.pod, b.container);
    for (i, input) in config.inputs.iter().enumerate() {
        for glob in &input.paths {
            let fixed: String = glob.chars().take_while(|c| !"*?[{".contains(*c)).collect();
            let m = mount_of(&mounts, &fixed)
                .unwrap_or_else(|| panic!("inputs[{i}].paths: {glob} is on no volume"));
            assert!(
                m.host_path.is_some(),
                "inputs[{i}].paths: {glob} is not on the host"
            );
        }
    }
    for i in 0..config.inputs.len() {
        assert_on_host(&b, &config.registry_config(i).path, "the registry");
    }
    if let Some(dead_letters) = kinesis_dead_letter(&config.output) {
        assert_on_host(&b, dead_letters, "the dead-letter directory");
    }
    // add_kubernetes_metadata watches the pods of the node NODE_NAME names.
    assert_eq!(b.env.get("NODE_NAME").map(String::as_str), Some(NODE));
}

#[test]
fn logtide_metrics_reads_the_host_through_hostfs() {
    let m = load_manifests();
    let b = binary(&m, "logtide-metrics");
    let config = with_env(&b.env, || {
        MetricsConfig::from_yaml(&b.text, Path::new(&b.path))
            .unwrap_or_else(|e| panic!("{}: {e}", b.path))
    });
    assert_eq!(config.http, b.http);
    check_http(&b, METRICS_PORT);
    assert!(b.workload.starts_with("DaemonSet"), "{}", b.workload);
    assert_eq!(config.hostfs, Path::new("/hostfs"));
    assert_host_mount(&b, "/hostfs", "/");
    let kubernetes = config
        .kubernetes
        .as_ref()
        .expect("kubernetes metricsets on");
    assert_eq!(kubernetes.kubelet, format!("https://{NODE}:10250"));
    assert_eq!(b.env.get("NODE_NAME").map(String::as_str), Some(NODE));
    if let Some(dead_letters) = kinesis_dead_letter(&config.output) {
        assert_on_host(&b, dead_letters, "the dead-letter directory");
    }
}

#[test]
fn logtide_relay_replicas_share_shards_through_dynamodb() {
    let m = load_manifests();
    let b = binary(&m, "logtide-relay");
    let config = with_env(&b.env, || {
        RelayConfig::from_yaml(&b.text, Path::new(&b.path))
            .unwrap_or_else(|e| panic!("{}: {e}", b.path))
    });
    assert_eq!(config.http, b.http);
    check_http(&b, RELAY_PORT);
    let w = m
        .workloads()
        .into_iter()
        .find(|w| w.name == b.workload)
        .unwrap();
    assert!(w.name.starts_with("Deployment"), "{}", w.name);
    let kinesis = &config.source.kinesis;
    if w.replicas > 1 {
        assert!(
            kinesis.checkpoint.dynamodb.is_some(),
            "{} replicas need checkpoint.dynamodb to share the shards",
            w.replicas
        );
    }
    assert_writable(&b, &kinesis.dead_letter_path, "the dead-letter directory");
    assert!(config.sinks.s3.is_some(), "the relay archives to S3");
}

#[test]
fn containers_have_a_read_only_root_and_no_capabilities() {
    let m = load_manifests();
    for w in m.workloads() {
        let pod = w.template.spec.as_ref().unwrap();
        assert_ne!(pod.host_network, Some(true), "{}: hostNetwork", w.name);
        assert_ne!(pod.host_pid, Some(true), "{}: hostPID", w.name);
        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let at = format!("{} container {}", w.name, c.name);
            let s = c
                .security_context
                .as_ref()
                .unwrap_or_else(|| panic!("{at}: no securityContext"));
            assert_eq!(s.read_only_root_filesystem, Some(true), "{at}");
            assert_eq!(s.allow_privilege_escalation, Some(false), "{at}");
            assert_ne!(s.privileged, Some(true), "{at}");
            let caps = s.capabilities.as_ref().unwrap_or_else(|| panic!("{at}"));
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]), "{at}");
            assert!(caps.add.as_deref().unwrap_or_default().is_empty(), "{at}");
            // Host mounts other than the state directory are read-only.
            for mount in mounts(pod, c) {
                if mount.host_path.is_some() && !mount.read_only {
                    assert!(
                        mount.path == "/var/lib/logtide",
                        "{at}: {} is a writable host mount",
                        mount.path
                    );
                }
            }
            let r = c
                .resources
                .as_ref()
                .unwrap_or_else(|| panic!("{at}: no resources"));
            for (what, list) in [("requests", &r.requests), ("limits", &r.limits)] {
                let list = list.as_ref().unwrap_or_else(|| panic!("{at}: no {what}"));
                assert!(list.contains_key("memory"), "{at}: no memory {what}");
                assert!(list.contains_key("cpu"), "{at}: no cpu {what}");
            }
        }
    }
    // The relay reads no host path: it runs as a non-root user.
    let (pod, relay, _) = m.container("logtide-relay");
    let s = relay.security_context.as_ref().unwrap();
    assert_eq!(s.run_as_non_root, Some(true));
    assert!(s.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(pod.automount_service_account_token, Some(false));
}

#[test]
fn the_agent_runs_on_every_node() {
    let m = load_manifests();
    let ds = &m.daemon_sets[0];
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let tolerates_all =
        pod.tolerations.iter().flatten().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()
        });
    assert!(tolerates_all, "the DaemonSet must tolerate every taint");
}

/// The API resources `logtide-k8s-meta` asks for, from the `Api<T>` types in its source:
/// (API group, resource).
fn k8s_meta_resources() -> BTreeSet<(&'static str, &'static str)> {
    let known: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("Pod", ("", "pods")),
        ("Namespace", ("", "namespaces")),
        ("Node", ("", "nodes")),
        ("ReplicaSet", ("apps", "replicasets")),
        ("Deployment", ("apps", "deployments")),
        ("StatefulSet", ("apps", "statefulsets")),
        ("DaemonSet", ("apps", "daemonsets")),
        ("Job", ("batch", "jobs")),
        ("CronJob", ("batch", "cronjobs")),
    ]);
    let dir = repo().join("crates/k8s-meta/src");
    let mut found = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in ["Api<", "Api::<"] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // One-letter names are type parameters (`Api<K>`).
                if name.len() <= 1 {
                    continue;
                }
                // Custom resources whose kind is given at run time: the relay's
                // LogAlertRule watch, granted by deploy/crds/logalertrule.yaml.
                if name == "DynamicObject" {
                    continue;
                }
                let resource = known.get(name.as_str()).unwrap_or_else(|| {
                    panic!(
                        "{}: logtide-k8s-meta uses Api<{name}>: add it to this table and to \
                         the chart's ClusterRole",
                        file.display()
                    )
                });
                found.insert(*resource);
            }
        }
    }
    assert!(
        found.contains(&("", "pods")),
        "no Api<Pod> found in {}",
        dir.display()
    );
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_cluster_role_grants_reads_only_and_covers_what_the_agent_asks_for() {
    let m = load_manifests();
    assert_eq!(m.cluster_roles.len(), 1, "one ClusterRole");
    let role = &m.cluster_roles[0];
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs");
        assert!(rule.resource_names.is_none(), "rules cover whole resources");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted
                        .entry((group.clone(), resource.clone()))
                        .or_default()
                        .insert(verb.clone());
                }
            }
        }
    }
    let read = BTreeSet::from(["get".to_owned(), "list".to_owned(), "watch".to_owned()]);
    let allowed: BTreeSet<(&str, &str)> = BTreeSet::from([
        ("", "pods"),
        ("", "namespaces"),
        ("", "nodes"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
    ]);
    for ((group, resource), verbs) in &granted {
        if (group.as_str(), resource.as_str()) == ("", "nodes/stats") {
            assert_eq!(verbs, &BTreeSet::from(["get".to_owned()]), "nodes/stats");
            continue;
        }
        assert!(
            allowed.contains(&(group.as_str(), resource.as_str())),
            "the ClusterRole grants {group}/{resource}, which logtide does not read"
        );
        assert!(
            verbs.is_subset(&read),
            "{group}/{resource}: {verbs:?} (only get, list, watch)"
        );
    }
    for (group, resource) in k8s_meta_resources().into_iter().chain(allowed) {
        let verbs = granted
            .get(&(group.to_owned(), resource.to_owned()))
            .unwrap_or_else(|| panic!("the ClusterRole does not cover {group}/{resource}"));
        assert_eq!(verbs, &read, "{group}/{resource}");
    }
    // The kubelet's Summary API (logtide-metrics' kubernetes metricsets).
    assert!(granted.contains_key(&(String::new(), "nodes/stats".to_owned())));

    // Bound to the service account of the DaemonSet, and to nothing else.
    let ds = &m.daemon_sets[0];
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let account = pod.service_account_name.as_deref().unwrap();
    let namespace = ds.metadata.namespace.as_deref().unwrap();
    assert_eq!(m.cluster_role_bindings.len(), 1, "one ClusterRoleBinding");
    let binding = &m.cluster_role_bindings[0];
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, account);
    assert_eq!(subjects[0].namespace.as_deref(), Some(namespace));
}

#[test]
fn service_accounts_carry_their_iam_role() {
    let m = load_manifests();
    for w in m.workloads() {
        let pod = w.template.spec.as_ref().unwrap();
        let name = pod.service_account_name.as_deref().unwrap();
        let account = m
            .service_accounts
            .iter()
            .find(|a| a.metadata.name.as_deref() == Some(name))
            .unwrap();
        let arn = account
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IRSA_ANNOTATION))
            .unwrap_or_else(|| panic!("ServiceAccount {name}: no {IRSA_ANNOTATION}"));
        assert!(arn.starts_with("arn:aws:iam::"), "{name}: {arn}");
    }
}

#[test]
fn services_and_service_monitors_reach_the_metrics_ports() {
    let m = load_manifests();
    let workloads = m.workloads();
    let mut port_names = BTreeSet::new();
    for s in &m.services {
        let name = s.metadata.name.as_deref().unwrap();
        let spec = s.spec.as_ref().unwrap();
        let selector = spec.selector.as_ref().unwrap();
        let w = workloads
            .iter()
            .find(|w| {
                let labels = w
                    .template
                    .metadata
                    .as_ref()
                    .unwrap()
                    .labels
                    .as_ref()
                    .unwrap();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .unwrap_or_else(|| panic!("Service {name} selects no workload's pods"));
        let pod = w.template.spec.as_ref().unwrap();
        for p in spec.ports.iter().flatten() {
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            let serving = pod
                .containers
                .iter()
                .find(|c| {
                    c.ports.iter().flatten().any(|cp| match &target {
                        IntOrString::Int(n) => cp.container_port == *n,
                        IntOrString::String(n) => cp.name.as_deref() == Some(n),
                    })
                })
                .unwrap_or_else(|| panic!("Service {name}: no container serves {target:?}"));
            assert_eq!(resolve_port(serving, &target), p.port, "Service {name}");
            port_names.insert(p.name.clone().unwrap());
        }
    }
    for (kind, doc) in &m.custom {
        if kind != "ServiceMonitor" {
            continue;
        }
        let endpoints = doc["spec"]["endpoints"].as_array().expect("endpoints");
        assert!(!endpoints.is_empty());
        for e in endpoints {
            let port = e["port"].as_str().expect("endpoints[].port: a port name");
            assert!(
                port_names.contains(port),
                "ServiceMonitor: no Service port {port}"
            );
            assert_eq!(e["path"], METRICS_PATH);
        }
    }
}

/// The metrics table of docs/operations.md names every metric the binaries register, with
/// its exposition name (`_total` for counters), and no other.
#[test]
fn the_operations_guide_lists_every_metric() {
    let code = std::fs::read_to_string(repo().join("crates/pipeline/src/telemetry.rs")).unwrap();
    let registered: BTreeSet<String> = code
        .match_indices(".register(")
        .map(|(at, _)| {
            let rest = &code[at..];
            let start = rest.find('"').unwrap() + 1;
            let end = start + rest[start..].find('"').unwrap();
            rest[start..end].to_owned()
        })
        .collect();
    assert!(registered.contains("logtide_ready"), "{registered:?}");
    let guide = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let mut documented = BTreeSet::new();
    for line in guide.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `name` | type | labels | what |
        if cells.len() != 6 || !cells[1].starts_with("`logtide_") {
            continue;
        }
        let name = cells[1].trim_matches('`');
        let base = match cells[2] {
            "counter" => name
                .strip_suffix("_total")
                .unwrap_or_else(|| panic!("docs/operations.md: counter {name} without _total")),
            "gauge" | "histogram" => name,
            other => panic!("docs/operations.md: {name}: unknown type {other}"),
        };
        documented.insert(base.to_owned());
    }
    assert_eq!(
        documented, registered,
        "docs/operations.md's metric table against crates/pipeline/src/telemetry.rs"
    );
}

#[test]
fn with_alerts_the_relay_watches_log_alert_rules_and_may_patch_their_status() {
    let m = load_manifests_from("deploy/variants");
    let b = binary(&m, "logtide-relay");
    let config = with_env(&b.env, || {
        RelayConfig::from_yaml(&b.text, Path::new(&b.path))
            .unwrap_or_else(|e| panic!("{}: {e}", b.path))
    });
    let alerts = config.alerts.expect("alerts configured");
    let rules = alerts.kubernetes.expect("LogAlertRule resources watched");
    assert_eq!(rules.namespace.as_deref(), Some("monitoring"));
    assert!(alerts
        .state_file
        .is_some_and(|p| p.starts_with("/var/lib/logtide")));
    let relay = m
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("logtide-relay"))
        .unwrap();
    let pod = relay.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(
        pod.automount_service_account_token,
        Some(true),
        "the watch needs a token"
    );
    let role = m
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("logtide-relay-alert-rules"))
        .expect("a ClusterRole for the rules");
    let grants: Vec<(String, Vec<String>)> = role
        .rules
        .iter()
        .flatten()
        .flat_map(|r| {
            assert_eq!(
                r.api_groups.as_deref(),
                Some(&["logtide.dev".to_owned()][..])
            );
            r.resources
                .iter()
                .flatten()
                .map(|res| (res.clone(), r.verbs.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        grants,
        [
            (
                "logalertrules".to_owned(),
                vec!["get".into(), "list".into(), "watch".into()]
            ),
            (
                "logalertrules/status".to_owned(),
                vec!["get".into(), "patch".into()]
            ),
        ]
    );
    let binding = m
        .cluster_role_bindings
        .iter()
        .find(|r| r.role_ref.name == "logtide-relay-alert-rules")
        .expect("bound");
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        Some(subject.name.as_str()),
        pod.service_account_name.as_deref()
    );
}
