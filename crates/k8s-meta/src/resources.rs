//! Watching custom resources whose `spec` a host interprets (such as `LogAlertRule`),
//! with a way to write their `status` back.
//!
//! This crate does not know what a spec means: [`ResourceWatcher`] hands each object's
//! `spec` over as JSON, and takes the status to patch as JSON.

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::settings::ClusterSource;

/// A kind of custom resource: its API group, version, kind and plural name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceKind {
    /// The API group, e.g. `logtide.dev`.
    pub group: String,
    /// The version, e.g. `v1alpha1`.
    pub version: String,
    /// The kind, e.g. `LogAlertRule`.
    pub kind: String,
    /// The plural resource name, e.g. `logalertrules`.
    pub plural: String,
}

impl ResourceKind {
    /// logtide's alert rules: `logalertrules.logtide.dev/v1alpha1`, kind `LogAlertRule`
    /// (the definition is `deploy/crds/logalertrule.yaml`).
    pub fn log_alert_rule() -> ResourceKind {
        ResourceKind {
            group: "logtide.dev".into(),
            version: "v1alpha1".into(),
            kind: "LogAlertRule".into(),
            plural: "logalertrules".into(),
        }
    }

    fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(&self.group, &self.version, &self.kind);
        ApiResource::from_gvk_with_plural(&gvk, &self.plural)
    }
}

/// What to watch and how to reach the cluster.
#[derive(Clone, Debug)]
pub struct ResourceWatchConfig {
    /// The kind of resource.
    pub kind: ResourceKind,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// A kubeconfig file; `None`: kubeconfig (`KUBECONFIG`, `~/.kube/config`) or the
    /// in-cluster service account.
    pub kube_config: Option<PathBuf>,
    /// How long [`ResourceWatcher::start`] waits for a client configuration.
    pub connect_timeout: Duration,
}

/// A resource's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Its namespace (`None` for a cluster-scoped resource).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One resource as the watch reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceObject {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `metadata.generation` (changes with the spec).
    pub generation: Option<i64>,
    /// `spec` (`null` when absent).
    pub spec: Value,
}

/// A change in the watched set.
#[derive(Clone, Debug, PartialEq)]
pub enum ResourceEvent {
    /// The complete set, after the first list and after every relist: replaces what
    /// was known.
    Listed(Vec<ResourceObject>),
    /// A resource was created or changed.
    Applied(ResourceObject),
    /// A resource was deleted.
    Deleted(ObjectKey),
    /// The watch failed; it is retried with backoff.
    Error(String),
}

/// A status to write: a JSON merge patch of the resource's `status`.
type StatusPatch = (ObjectKey, Value);

/// Custom resources watched on a thread of its own (a current-thread tokio runtime
/// running kube's watcher: list, watch, relist after `410 Gone`, backoff on errors).
///
/// Read changes without blocking with [`ResourceWatcher::try_events`]; write status with
/// [`ResourceWatcher::patch_status`] (sent in the background; failures are logged).
/// The service account needs `get`, `list`, `watch` on the resource and `patch` on its
/// `status` subresource.
pub struct ResourceWatcher {
    events: std_mpsc::Receiver<ResourceEvent>,
    status: mpsc::UnboundedSender<StatusPatch>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
}

impl ResourceWatcher {
    /// Connects and starts watching. Errors when there is no usable cluster
    /// configuration within the connect timeout.
    pub fn start(config: ResourceWatchConfig) -> crate::Result<ResourceWatcher> {
        let (events_tx, events) = std_mpsc::channel();
        let (status, status_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<String, String>>();
        let source = match &config.kube_config {
            Some(p) => ClusterSource::Kubeconfig(p.clone()),
            None => ClusterSource::Infer,
        };
        let timeout = config.connect_timeout;
        let thread = std::thread::Builder::new()
            .name("k8s-resources".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start the tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match crate::worker::connect(&source).await {
                        Ok((client, url)) => {
                            if ready_tx.send(Ok(url)).is_err() {
                                return;
                            }
                            client
                        }
                        Err(reason) => {
                            let _ = ready_tx.send(Err(reason));
                            return;
                        }
                    };
                    tokio::select! {
                        () = run(client, config, events_tx, status_rx) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .map_err(|e| crate::Error::Config {
                path: "kubernetes".into(),
                message: format!("cannot start the watch thread: {e}"),
            })?;
        let url = match ready_rx.recv_timeout(timeout) {
            Ok(Ok(url)) => url,
            Ok(Err(reason)) => {
                let _ = thread.join();
                return Err(crate::Error::Config {
                    path: "kubernetes".into(),
                    message: reason,
                });
            }
            Err(_) => {
                let _ = stop.send(());
                return Err(crate::Error::Config {
                    path: "kubernetes".into(),
                    message: format!("no client configuration after {timeout:?}"),
                });
            }
        };
        Ok(ResourceWatcher {
            events,
            status,
            stop: Some(stop),
            thread: Some(thread),
            url,
        })
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The changes reported since the last call, in order.
    pub fn try_events(&self) -> Vec<ResourceEvent> {
        self.events.try_iter().collect()
    }

    /// Merges `status` into the resource's `status` (in the background).
    pub fn patch_status(&self, key: &ObjectKey, status: Value) {
        let _ = self.status.send((key.clone(), status));
    }
}

impl Drop for ResourceWatcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the resource watch thread panicked");
            }
        }
    }
}

fn object(o: DynamicObject) -> ResourceObject {
    ResourceObject {
        key: ObjectKey {
            namespace: o.metadata.namespace.clone(),
            name: o.metadata.name.clone().unwrap_or_default(),
        },
        generation: o.metadata.generation,
        spec: o.data.get("spec").cloned().unwrap_or(Value::Null),
    }
}

/// Runs the watch and the status writer until dropped.
pub(crate) async fn run(
    client: Client,
    config: ResourceWatchConfig,
    events: std_mpsc::Sender<ResourceEvent>,
    mut status: mpsc::UnboundedReceiver<StatusPatch>,
) {
    let ar = config.kind.api_resource();
    let api: Api<DynamicObject> = match &config.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let watch = async {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing: Vec<ResourceObject> = Vec::new();
        while let Some(event) = stream.next().await {
            let out = match event {
                Ok(Event::Init) => {
                    listing.clear();
                    continue;
                }
                Ok(Event::InitApply(o)) => {
                    listing.push(object(o));
                    continue;
                }
                Ok(Event::InitDone) => ResourceEvent::Listed(std::mem::take(&mut listing)),
                Ok(Event::Apply(o)) => ResourceEvent::Applied(object(o)),
                Ok(Event::Delete(o)) => ResourceEvent::Deleted(object(o).key),
                Err(e) => ResourceEvent::Error(e.to_string()),
            };
            if events.send(out).is_err() {
                return;
            }
        }
    };
    let writer = async {
        while let Some((key, value)) = status.recv().await {
            let api: Api<DynamicObject> = match &key.namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let patch = Patch::Merge(serde_json::json!({ "status": value }));
            if let Err(e) = api
                .patch_status(&key.name, &PatchParams::default(), &patch)
                .await
            {
                tracing::warn!(resource = %key, error = %e, "cannot write the status");
            }
        }
    };
    tokio::join!(watch, writer);
}

#[cfg(test)]
mod tests {
    //! The watch and the status writer against kube's `tower-test` mock of the API
    //! server, with scripted LIST, WATCH and PATCH exchanges.

    use std::pin::Pin;

    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;
    use tower_test::mock::{self, Handle, SendResponse};

    use super::*;

    type Held = (Request<Body>, SendResponse<Response<Body>>);

    struct ApiServer {
        handle: Pin<Box<Handle<Request<Body>, Response<Body>>>>,
        held: Vec<Held>,
    }

    impl ApiServer {
        /// The next request with this method whose URI contains every one of `parts`.
        async fn expect(&mut self, method: Method, parts: &[&str]) -> Held {
            let wanted = |r: &Request<Body>| {
                let uri = r.uri().to_string();
                r.method() == method && parts.iter().all(|p| uri.contains(p))
            };
            if let Some(i) = self.held.iter().position(|(r, _)| wanted(r)) {
                return self.held.remove(i);
            }
            loop {
                let held =
                    tokio::time::timeout(Duration::from_secs(600), self.handle.next_request())
                        .await
                        .unwrap_or_else(|_| panic!("no {method} request for {parts:?}"))
                        .expect("the client is gone");
                if wanted(&held.0) {
                    return held;
                }
                self.held.push(held);
            }
        }
    }

    fn respond(send: SendResponse<Response<Body>>, body: Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        send.send_response(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from(bytes))
                .unwrap(),
        );
    }

    fn rule(name: &str, rv: &str, generation: i64, spec: Value) -> Value {
        json!({"apiVersion": "logtide.dev/v1alpha1", "kind": "LogAlertRule",
               "metadata": {"name": name, "namespace": "monitoring", "resourceVersion": rv,
                            "generation": generation, "uid": format!("uid-{name}")},
               "spec": spec})
    }

    /// A watch response: one JSON event per line.
    fn watch(events: Vec<(&str, Value)>) -> String {
        events
            .into_iter()
            .map(|(t, o)| json!({"type": t, "object": o}).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn respond_lines(send: SendResponse<Response<Body>>, text: String) {
        send.send_response(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from(text.into_bytes()))
                .unwrap(),
        );
    }

    async fn next(rx: &std_mpsc::Receiver<ResourceEvent>) -> ResourceEvent {
        for _ in 0..10_000 {
            if let Ok(e) = rx.try_recv() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no resource event");
    }

    #[tokio::test(start_paused = true)]
    async fn list_watch_and_status() {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let (events_tx, events) = std_mpsc::channel();
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        let config = ResourceWatchConfig {
            kind: ResourceKind::log_alert_rule(),
            namespace: Some("monitoring".into()),
            kube_config: None,
            connect_timeout: Duration::from_secs(1),
        };
        tokio::spawn(run(client, config, events_tx, status_rx));
        let mut api = ApiServer {
            handle: Box::pin(handle),
            held: Vec::new(),
        };
        let base = "/apis/logtide.dev/v1alpha1/namespaces/monitoring/logalertrules";

        let (req, send) = api.expect(Method::GET, &[&format!("{base}?")]).await;
        assert!(!req.uri().to_string().contains("watch=true"));
        let errors = rule(
            "errors",
            "5",
            1,
            json!({"type": "any", "filter": [{"term": {"level": "error"}}]}),
        );
        respond(
            send,
            json!({"apiVersion": "logtide.dev/v1alpha1", "kind": "LogAlertRuleList",
                   "metadata": {"resourceVersion": "10"}, "items": [errors]}),
        );
        let listed = next(&events).await;
        let ResourceEvent::Listed(items) = listed else {
            panic!("{listed:?}")
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key.to_string(), "monitoring/errors");
        assert_eq!(items[0].spec["type"], "any");
        assert_eq!(items[0].generation, Some(1));

        // Created, changed and deleted while watching.
        let (_, send) = api
            .expect(
                Method::GET,
                &[&format!("{base}?"), "watch=true", "resourceVersion=10"],
            )
            .await;
        let quiet = rule(
            "quiet",
            "11",
            1,
            json!({"type": "flatline", "threshold": 1, "timeframe": "5m"}),
        );
        let errors2 = rule("errors", "12", 2, json!({"type": "any", "realert": "5m"}));
        respond_lines(
            send,
            watch(vec![
                ("ADDED", quiet.clone()),
                ("MODIFIED", errors2),
                ("DELETED", quiet),
            ]),
        );
        let e = next(&events).await;
        assert!(
            matches!(&e, ResourceEvent::Applied(o) if o.key.name == "quiet" && o.spec["type"] == "flatline"),
            "{e:?}"
        );
        let e = next(&events).await;
        assert!(
            matches!(&e, ResourceEvent::Applied(o) if o.key.name == "errors" && o.generation == Some(2) && o.spec["realert"] == "5m"),
            "{e:?}"
        );
        let e = next(&events).await;
        assert_eq!(
            e,
            ResourceEvent::Deleted(ObjectKey {
                namespace: Some("monitoring".into()),
                name: "quiet".into()
            })
        );

        // The status is merged into the status subresource.
        let key = ObjectKey {
            namespace: Some("monitoring".into()),
            name: "errors".into(),
        };
        status_tx
            .send((
                key,
                json!({"lastMatch": "2026-01-01T00:00:00Z", "lastError": null}),
            ))
            .unwrap();
        let (req, send) = api
            .expect(Method::PATCH, &[&format!("{base}/errors/status")])
            .await;
        assert_eq!(
            req.headers().get("content-type").unwrap(),
            "application/merge-patch+json"
        );
        let body: Value =
            serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"status": {"lastMatch": "2026-01-01T00:00:00Z", "lastError": null}})
        );
        respond(send, rule("errors", "13", 2, json!({})));
    }
}
