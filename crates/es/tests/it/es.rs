//! The sink against real servers: noida-db (the Elasticsearch 8 API) and osmem-server (the
//! OpenSearch API), each started on a free loopback port; every test runs against both.
//!
//! Known emulator deviations, and the tests that rely on them:
//! - Both reject a mixed array that starts with a string (`["some string", 10]`), which
//!   Elasticsearch indexes (text takes any scalar): `still_refused_documents_are_dead_lettered`
//!   uses it as a document the model accepts and the server refuses.
//! - osmem-server accepts a dotted key through a mapped leaf (`app` and
//!   `app.kubernetes.io/name`); the normalizer resolves it anyway, so the counts hold.
//! - noida-db ignores `index.mapping.total_fields.limit`; no test here relies on it.
//! - Neither has the ILM/ISM API: `setup_installs_templates` expects that step to be
//!   reported unsupported, and the templates installed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use logtide_es::{Distribution, EsConfig, EsSink, StepOutcome};
use logtide_event::{AckOutcome, AckToken, Acknowledge, Event};
use logtide_testkit::{BulkFault, BulkProxy, SearchKind, SearchServer, SearchTool};
use serde_json::{json, Value};

/// Records every acknowledgement.
#[derive(Default)]
struct Acks(Mutex<HashMap<u64, AckOutcome>>);

impl Acknowledge for Acks {
    fn acknowledge(&self, id: u64, outcome: AckOutcome) {
        let previous = self.0.lock().unwrap().insert(id, outcome);
        assert!(previous.is_none(), "event {id} acknowledged twice");
    }
}

impl Acks {
    fn outcomes(&self) -> HashMap<u64, AckOutcome> {
        self.0.lock().unwrap().clone()
    }
}

fn event(acks: &Arc<Acks>, n: u64, doc: Value) -> Event {
    let mut doc = doc;
    doc["@timestamp"] = json!("2024-05-01T07:08:09Z");
    let mut e = Event::from_json(doc).unwrap();
    e.metadata_mut()
        .insert("_id".into(), json!(format!("doc-{n}")));
    let target: Arc<dyn Acknowledge> = acks.clone();
    e.set_ack(AckToken::new(target, n));
    e
}

fn config(endpoint: &str) -> EsConfig {
    let mut c = EsConfig::new([endpoint]);
    c.index = "logs-%{+yyyy.MM.dd}".into();
    c.dead_letter_index = "deadletter-%{+yyyy.MM.dd}".into();
    c.retry_backoff_min = std::time::Duration::from_millis(20);
    c.retry_backoff_max = std::time::Duration::from_millis(200);
    c
}

const INDEX: &str = "logs-2024.05.01";
const DEAD: &str = "deadletter-2024.05.01";

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn noida_db() {
                let server =
                    logtide_testkit::SearchServer::start(logtide_testkit::SearchKind::NoidaDb);
                super::$name(&server);
            }
            #[test]
            fn osmem() {
                let server =
                    logtide_testkit::SearchServer::start(logtide_testkit::SearchKind::Osmem);
                super::$name(&server);
            }
        }
    };
}

both!(conflicting_types_are_normalized_and_searchable);
fn conflicting_types_are_normalized_and_searchable(server: &SearchServer) {
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&server.endpoint())).unwrap();
    let want = match server.kind() {
        SearchKind::NoidaDb => Distribution::Elasticsearch,
        SearchKind::Osmem => Distribution::OpenSearch,
    };
    assert_eq!(sink.version().distribution, want);
    sink.write(vec![
        event(&acks, 1, json!({"message-json": {"id": 17}})),
        event(&acks, 2, json!({"message-json": {"id": "a-17"}})),
    ])
    .unwrap();
    let tool = SearchTool::new(&server.endpoint());
    assert_eq!(tool.count(INDEX), 2);
    let first = tool.get(INDEX, "doc-1").expect("doc-1 indexed");
    assert_eq!(first["message-json"]["id"], json!(17));
    let second = tool.get(INDEX, "doc-2").expect("doc-2 indexed");
    let record = &second["event"]["mapping_conflicts"][0];
    assert_eq!(record["field"], json!("message-json.id"), "{second}");
    assert_eq!(record["action"], json!("quarantine"), "{second}");
    // The value is kept, as JSON text, under the conflicts object.
    assert_eq!(
        second["_conflicts"]["message-json.id"],
        json!("\"a-17\""),
        "{second}"
    );
    let stats = sink.stats();
    assert_eq!(
        (stats.documents, stats.indexed, stats.normalized),
        (2, 2, 1)
    );
    assert_eq!(stats.normalizer.fields["message-json.id"].quarantined, 1);
    let outcomes = acks.outcomes();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.values().all(|o| *o == AckOutcome::Accepted));
}

both!(the_model_learns_from_rejections);
fn the_model_learns_from_rejections(server: &SearchServer) {
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&server.endpoint())).unwrap();
    sink.write(vec![event(&acks, 1, json!({"n": 1}))]).unwrap();
    // Another writer maps a field the sink has not seen yet.
    let tool = SearchTool::new(&server.endpoint());
    let (status, body) = tool.request(
        "PUT",
        &format!("/{INDEX}/_mapping"),
        Some(&json!({"properties": {"code": {"type": "long"}}})),
    );
    assert_eq!(status, 200, "{body}");
    sink.write(vec![event(&acks, 2, json!({"code": "E-42"}))])
        .unwrap();
    let stats = sink.stats().clone();
    assert_eq!(stats.mapping_retries, 1, "{stats:?}");
    assert!(stats.mapping_refreshes >= 1, "{stats:?}");
    assert_eq!((stats.indexed, stats.dead_lettered), (2, 0), "{stats:?}");
    let doc = tool.get(INDEX, "doc-2").expect("doc-2 indexed");
    assert_eq!(
        doc["event"]["mapping_conflicts"][0]["field"],
        json!("code"),
        "{doc}"
    );
    assert_eq!(acks.outcomes()[&2], AckOutcome::Accepted);
}

both!(unresolvable_documents_are_dead_lettered);
fn unresolvable_documents_are_dead_lettered(server: &SearchServer) {
    let tool = SearchTool::new(&server.endpoint());
    // An index whose @timestamp cannot take an event time: no change to the fields helps.
    let (status, body) = tool.request(
        "PUT",
        &format!("/{INDEX}"),
        Some(&json!({"mappings": {"properties": {"@timestamp": {"type": "boolean"}}}})),
    );
    assert_eq!(status, 200, "{body}");
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&server.endpoint())).unwrap();
    sink.write(vec![event(&acks, 1, json!({"message": "hello"}))])
        .unwrap();
    assert_eq!(sink.stats().dead_lettered, 1);
    assert_eq!(sink.stats().indexed, 0);
    assert_eq!(tool.count(INDEX), 0);
    let letter = tool.get(DEAD, "doc-1").expect("dead letter stored");
    let original: Value =
        serde_json::from_str(letter["event"]["original"].as_str().unwrap()).unwrap();
    assert_eq!(original["message"], json!("hello"));
    assert_eq!(letter["target"]["index"], json!(INDEX));
    assert!(
        letter["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("@timestamp"),
        "{letter}"
    );
    assert_eq!(
        acks.outcomes()[&1],
        AckOutcome::Discarded {
            reason: logtide_es::DEAD_LETTER_REASON
        }
    );
}

both!(still_refused_documents_are_dead_lettered);
/// Relies on an emulator deviation: both servers refuse `["some string", 10]`, which
/// Elasticsearch indexes and the model therefore accepts. The sink reads the mapping
/// again, finds nothing to change, sends it once more, and dead-letters it when it is
/// refused again.
fn still_refused_documents_are_dead_lettered(server: &SearchServer) {
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&server.endpoint())).unwrap();
    // Alone: once `tags` is mapped text, the servers take the array too.
    sink.write(vec![event(&acks, 1, json!({"tags": ["some string", 10]}))])
        .unwrap();
    sink.write(vec![event(&acks, 2, json!({"tags": ["fine"]}))])
        .unwrap();
    let stats = sink.stats().clone();
    assert_eq!((stats.indexed, stats.dead_lettered), (1, 1), "{stats:?}");
    assert_eq!(stats.mapping_retries, 1, "{stats:?}");
    let tool = SearchTool::new(&server.endpoint());
    assert!(tool.get(INDEX, "doc-2").is_some());
    let letter = tool.get(DEAD, "doc-1").expect("dead letter stored");
    let original: Value =
        serde_json::from_str(letter["event"]["original"].as_str().unwrap()).unwrap();
    assert_eq!(original["tags"], json!(["some string", 10]));
    assert_eq!(letter["error"]["stage"], json!("index"));
    assert_eq!(letter["error"]["status"], json!(400));
}

both!(throttled_items_are_retried_without_duplicates);
fn throttled_items_are_retried_without_duplicates(server: &SearchServer) {
    let proxy = BulkProxy::start(&server.endpoint(), |n| match n {
        0 => BulkFault::Reject(503),
        1 => BulkFault::Reject(429),
        2..=6 => BulkFault::ThrottleItems(|i| i % 3 == 0),
        _ => BulkFault::Pass,
    });
    let acks = Arc::new(Acks::default());
    let mut c = config(&proxy.endpoint());
    c.bulk_max_docs = 50;
    c.concurrency = 2;
    let mut sink = EsSink::connect(&c).unwrap();
    let events: Vec<Event> = (0..300)
        .map(|n| event(&acks, n, json!({"n": n, "message": format!("line {n}")})))
        .collect();
    sink.write(events).unwrap();
    let log = proxy.log();
    assert_eq!(log.rejected_requests, 2, "{log:?}");
    assert!(log.throttled_items > 0, "{log:?}");
    assert!(log.gzipped > 0, "bulk bodies are gzipped: {log:?}");
    let stats = sink.stats().clone();
    assert_eq!(stats.retried, log.throttled_items, "{stats:?}");
    assert!(stats.request_retries >= 2, "{stats:?}");
    assert_eq!(
        (stats.indexed, stats.dead_lettered, stats.failed),
        (300, 0, 0)
    );
    assert_eq!(sink.pending(), 0);
    let tool = SearchTool::new(&server.endpoint());
    assert_eq!(tool.count(INDEX), 300);
    let ids: BTreeSet<String> = tool.all(INDEX).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 300);
    let outcomes = acks.outcomes();
    assert_eq!(outcomes.len(), 300);
    assert!(outcomes.values().all(|o| *o == AckOutcome::Accepted));
}

both!(redelivery_overwrites);
fn redelivery_overwrites(server: &SearchServer) {
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&server.endpoint())).unwrap();
    // No @metadata._id: the id comes from the event's content.
    let make = || -> Vec<Event> {
        (0..100)
            .map(|n| {
                Event::from_json(json!({"@timestamp": "2024-05-01T07:08:09Z", "n": n})).unwrap()
            })
            .collect()
    };
    sink.write(make()).unwrap();
    sink.write(make()).unwrap();
    let mut again = EsSink::connect(&config(&server.endpoint())).unwrap();
    again.write(make()).unwrap();
    assert_eq!(sink.stats().indexed + again.stats().indexed, 300);
    assert_eq!(SearchTool::new(&server.endpoint()).count(INDEX), 100);
    drop(acks);
}

both!(credentials_are_sent);
fn credentials_are_sent(server: &SearchServer) {
    let proxy = BulkProxy::start(&server.endpoint(), |_| BulkFault::Pass);
    let acks = Arc::new(Acks::default());
    let mut c = config(&proxy.endpoint());
    c.username = Some("logtide".into());
    c.password = Some("s3cret".into());
    let mut sink = EsSink::connect(&c).unwrap();
    sink.write(vec![event(&acks, 1, json!({"a": 1}))]).unwrap();
    let mut c = config(&proxy.endpoint());
    c.api_key = Some("key-id:key-secret".into());
    let mut sink = EsSink::connect(&c).unwrap();
    sink.write(vec![event(&acks, 2, json!({"a": 2}))]).unwrap();
    let log = proxy.log();
    assert!(log
        .authorizations
        .contains(&"Basic bG9ndGlkZTpzM2NyZXQ=".to_owned()));
    assert!(log
        .authorizations
        .contains(&"ApiKey a2V5LWlkOmtleS1zZWNyZXQ=".to_owned()));
    assert_eq!(
        log.authorizations.len() as u64,
        log.requests,
        "every request carries credentials: {log:?}"
    );
}

both!(setup_installs_templates);
/// Relies on an emulator deviation for one step: neither server has the ILM/ISM API, so
/// that step is reported unsupported (Elasticsearch and OpenSearch install it).
fn setup_installs_templates(server: &SearchServer) {
    let mut c = config(&server.endpoint());
    c.mapping = logtide_es::MappingConfig::from_json(&json!({
        "rules": [{"fields": "message-json.*", "policy": "stringify"}]
    }))
    .unwrap();
    let report = logtide_es::setup(&c).unwrap();
    let outcomes: Vec<(&str, &StepOutcome)> =
        report.steps.iter().map(|s| (s.what, &s.outcome)).collect();
    assert!(
        matches!(outcomes[0].1, StepOutcome::Unsupported(_)),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], ("index template", &StepOutcome::Installed));
    assert_eq!(
        outcomes[2],
        ("dead-letter index template", &StepOutcome::Installed)
    );
    let tool = SearchTool::new(&server.endpoint());
    let (status, body) = tool.request("GET", "/_index_template/logtide", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["index_templates"][0]["index_template"]["index_patterns"],
        json!(["logs-*"])
    );
    // Installing again replaces them.
    logtide_es::setup(&c).unwrap();

    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&c).unwrap();
    sink.write(vec![
        event(&acks, 1, json!({"message-json": {"id": 17}})),
        event(&acks, 2, json!({"message-json": {"id": "a-17"}})),
    ])
    .unwrap();
    assert_eq!(sink.stats().indexed, 2);
    let (status, mapping) = tool.request("GET", &format!("/{INDEX}/_mapping"), None);
    assert_eq!(status, 200, "{mapping}");
    assert_eq!(
        mapping[INDEX]["mappings"]["properties"]["message-json"]["properties"]["id"]["type"],
        json!("keyword"),
        "{mapping}"
    );
    let doc = tool.get(INDEX, "doc-1").unwrap();
    assert_eq!(doc["message-json"]["id"], json!("17"));
}

/// The number of documents of the conflict workload: `LOGTIDE_ES_WORKLOAD_DOCS`, default
/// 50 000.
fn workload_docs() -> u64 {
    std::env::var("LOGTIDE_ES_WORKLOAD_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// Service `s`'s value for field `f` of document `n`: each service has its own type per
/// field (number, string, object, mixed array starting with a number, boolean), so
/// fields conflict between services.
fn workload_value(s: u64, f: u64, n: u64) -> Value {
    match (s + f) % 5 {
        0 => json!(n),
        1 => json!(format!("v-{n}")),
        2 => json!({"v": n}),
        3 => json!([n, format!("x{n}")]),
        _ => json!(n.is_multiple_of(2)),
    }
}

both!(twenty_services_lose_nothing);
/// 20 services send documents whose `message-json.*` fields conflict in type on 200
/// fields (number/string, object/scalar, mixed arrays, Kubernetes labels `app` and
/// `app.kubernetes.io/name` as dotted keys): every document is indexed or dead-lettered,
/// the counts add up exactly, and every one is found by its `_id`.
fn twenty_services_lose_nothing(server: &SearchServer) {
    let total = workload_docs();
    let mut c = config(&server.endpoint());
    c.bulk_max_docs = 2000;
    c.concurrency = 2;
    logtide_es::setup(&c).unwrap();
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&c).unwrap();
    let mut ids = Vec::with_capacity(total as usize);
    let mut batch = Vec::new();
    for n in 0..total {
        let s = n % 20;
        let mut fields = serde_json::Map::new();
        for k in 0..8 {
            let f = (n * 7 + k * 29) % 200;
            fields.insert(format!("f{f}"), workload_value(s, f, n));
        }
        let labels = if s.is_multiple_of(2) {
            json!({"app": format!("svc-{s}")})
        } else {
            json!({"app.kubernetes.io/name": format!("svc-{s}")})
        };
        batch.push(event(
            &acks,
            n,
            json!({"service": format!("svc-{s}"), "message-json": fields,
                   "kubernetes": {"labels": labels}}),
        ));
        ids.push(format!("doc-{n}"));
        if batch.len() == 5000 {
            sink.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    sink.write(batch).unwrap();
    let stats = sink.stats().clone();
    assert_eq!(stats.documents, total);
    assert_eq!(
        stats.indexed + stats.dead_lettered,
        total,
        "every document indexed or dead-lettered: {stats:?}"
    );
    assert_eq!(stats.failed, 0);
    assert!(
        stats.normalized > 0 && stats.normalizer.changes > 0,
        "{stats:?}"
    );
    let tool = SearchTool::new(&server.endpoint());
    assert_eq!(tool.count(INDEX), stats.indexed);
    assert_eq!(tool.count(DEAD), stats.dead_lettered);
    let mut found = tool.get_many(INDEX, &ids);
    let letters = tool.get_many(DEAD, &ids);
    assert_eq!(found.len() as u64, stats.indexed);
    assert_eq!(letters.len() as u64, stats.dead_lettered);
    found.extend(letters);
    let missing: Vec<&String> = ids.iter().filter(|id| !found.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} documents not found: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // A search by `_id` finds them too (a sample: noida-db answers an ids query slowly).
    let sample: Vec<String> = ids
        .iter()
        .step_by(ids.len().div_ceil(200))
        .cloned()
        .collect();
    let mut searched = tool.search_ids(INDEX, &sample);
    searched.extend(tool.search_ids(DEAD, &sample));
    assert_eq!(searched.len(), sample.len());
    let outcomes = acks.outcomes();
    assert_eq!(outcomes.len() as u64, total);
    assert!(outcomes.values().all(|o| o.is_done()));
    eprintln!(
        "{:?}: {total} documents, {} indexed ({} normalized, {} changes), {} dead-lettered, {} mapping retries",
        server.kind(),
        stats.indexed,
        stats.normalized,
        stats.normalizer.changes,
        stats.dead_lettered,
        stats.mapping_retries
    );
}

both!(an_outage_keeps_documents_queued);
fn an_outage_keeps_documents_queued(server: &SearchServer) {
    let proxy = BulkProxy::start(&server.endpoint(), |_| BulkFault::Reject(503));
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&config(&proxy.endpoint())).unwrap();
    let events: Vec<Event> = (0..50).map(|n| event(&acks, n, json!({"n": n}))).collect();
    let err = sink
        .write_within(events, std::time::Duration::from_millis(300))
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("50 documents not yet indexed"),
        "{err}"
    );
    assert_eq!(sink.pending(), 50);
    assert!(
        acks.outcomes().is_empty(),
        "nothing acknowledged during the outage"
    );
    proxy.set_plan(|_| BulkFault::Pass);
    sink.flush().unwrap();
    assert_eq!(sink.pending(), 0);
    let stats = sink.stats();
    assert_eq!((stats.documents, stats.indexed), (50, 50));
    assert!(stats.request_retries >= 1);
    assert_eq!(SearchTool::new(&server.endpoint()).count(INDEX), 50);
    assert_eq!(acks.outcomes().len(), 50);
}

both!(the_total_fields_limit_is_respected);
/// Elasticsearch refuses a document that would map more fields than
/// `index.mapping.total_fields.limit`; noida-db ignores the limit (an emulator deviation),
/// so the check is that the sink never sends such a document: what the index maps stays
/// within the limit on both servers. With the template of `setup`, the fields beyond the
/// limit are quarantined (the conflicts object maps nothing); without it, there is no room
/// to keep them in the document, and the original goes to the dead-letter index whole.
fn the_total_fields_limit_is_respected(server: &SearchServer) {
    let tool = SearchTool::new(&server.endpoint());
    let c = config(&server.endpoint());
    let fields: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("k{i:02}"), json!(i))).collect();
    fn count(v: &Value) -> usize {
        v["properties"].as_object().map_or(0, |p| {
            p.values()
                .map(|f| 1 + count(f) + f["fields"].as_object().map_or(0, |m| m.len()))
                .sum()
        })
    }
    let create = |limit: u64| {
        let (status, body) = tool.request(
            "PUT",
            &format!("/{INDEX}"),
            Some(&json!({"settings": {"index.mapping.total_fields.limit": limit}})),
        );
        assert_eq!(status, 200, "{body}");
    };

    // Without the template: nowhere to keep 40 fields, so a dead letter.
    create(20);
    let acks = Arc::new(Acks::default());
    let mut sink = EsSink::connect(&c).unwrap();
    sink.write(vec![event(&acks, 1, json!({"wide": fields}))])
        .unwrap();
    let stats = sink.stats().clone();
    assert_eq!((stats.indexed, stats.dead_lettered), (0, 1), "{stats:?}");
    let letter = tool.get(DEAD, "doc-1").expect("dead letter stored");
    assert_eq!(
        letter["error"]["type"],
        json!("logtide_lossy_normalization")
    );
    let original: Value =
        serde_json::from_str(letter["event"]["original"].as_str().unwrap()).unwrap();
    assert_eq!(original["wide"], json!(fields));

    // With the template: indexed, the fields beyond the limit quarantined.
    let (status, body) = tool.request("DELETE", &format!("/{INDEX}"), None);
    assert_eq!(status, 200, "{body}");
    logtide_es::setup(&c).unwrap();
    create(40);
    let mut sink = EsSink::connect(&c).unwrap();
    sink.write(vec![event(&acks, 2, json!({"wide": fields}))])
        .unwrap();
    let stats = sink.stats().clone();
    assert_eq!((stats.indexed, stats.normalized), (1, 1), "{stats:?}");
    let doc = tool.get(INDEX, "doc-2").expect("indexed");
    let kept = doc["wide"].as_object().map_or(0, |m| m.len());
    let quarantined = doc["_conflicts"].as_object().map_or(0, |m| m.len());
    assert_eq!(kept + quarantined, 40, "{doc}");
    assert!(quarantined > 0, "{doc}");
    assert!(doc["event"]["mapping_conflicts"].is_array(), "{doc}");
    let (_, mapping) = tool.request("GET", &format!("/{INDEX}/_mapping"), None);
    let mapped = count(&mapping[INDEX]["mappings"]);
    assert!(mapped <= 40, "{mapped} fields mapped: {mapping}");
}
