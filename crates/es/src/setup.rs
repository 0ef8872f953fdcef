//! `logtide-relay setup`: the index templates and the lifecycle policy.

use serde_json::{json, Value};

use crate::client::{Client, Distribution, Response, ServerVersion};
use crate::config::EsConfig;
use crate::index::IndexPattern;
use crate::{Error, Result};

/// What became of one setup step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The server stored it.
    Installed,
    /// The server has no API for it (answered 404 or "no handler found"); the rest of
    /// the setup goes on without it.
    Unsupported(String),
    /// Not asked for (`setup.retention: 0s`).
    Skipped,
}

/// One request of the setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupStep {
    /// What it installs.
    pub what: &'static str,
    /// The request, such as `PUT /_index_template/logtide`.
    pub request: String,
    /// What became of it.
    pub outcome: StepOutcome,
}

/// What [`setup`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupReport {
    /// The server.
    pub version: ServerVersion,
    /// The steps, in order.
    pub steps: Vec<SetupStep>,
}

/// The lifecycle policy's name.
fn policy_name(config: &EsConfig) -> String {
    config.setup.template_name.clone()
}

/// `30d` style age for ILM/ISM from a duration (whole hours at least).
fn age(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        format!("{}h", secs.div_ceil(3600).max(1))
    }
}

/// The body of `PUT _index_template/<template_name>`: the normalizer's dynamic templates
/// and settings for the indices of `index`, linked to the ILM policy when there is one.
pub fn index_template(config: &EsConfig, ilm_policy: Option<&str>) -> Result<Value> {
    let normalizer = config
        .mapping
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let pattern = IndexPattern::parse(&config.index).map_err(Error::Config)?;
    let wildcard = pattern.wildcard();
    let mut body = normalizer.index_template(&[wildcard.as_str()], config.setup.priority);
    if let Some(policy) = ilm_policy {
        body["template"]["settings"]["index.lifecycle.name"] = json!(policy);
    }
    body["_meta"] = json!({"managed_by": "logtide"});
    Ok(body)
}

/// The body of the dead-letter index template: fixed fields, nothing mapped
/// dynamically, so a dead letter can never be refused for its types. Its priority is one
/// above the main template's, whose pattern may cover the dead-letter indices too.
pub fn dead_letter_template(config: &EsConfig, ilm_policy: Option<&str>) -> Result<Value> {
    let pattern = IndexPattern::parse(&config.dead_letter_index).map_err(Error::Config)?;
    let mut body = json!({
        "index_patterns": [pattern.wildcard()],
        "priority": config.setup.priority + 1,
        "template": {
            "settings": {},
            "mappings": {
                "dynamic": false,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "error": {"properties": {
                        "type": {"type": "keyword"},
                        "reason": {"type": "text"},
                        "status": {"type": "integer"},
                        "stage": {"type": "keyword"}
                    }},
                    "event": {"properties": {
                        "original": {"type": "text", "index": false},
                        "original_truncated": {"type": "boolean"}
                    }},
                    "target": {"properties": {
                        "index": {"type": "keyword"},
                        "id": {"type": "keyword"}
                    }}
                }
            }
        },
        "_meta": {"managed_by": "logtide"}
    });
    if let Some(policy) = ilm_policy {
        body["template"]["settings"]["index.lifecycle.name"] = json!(policy);
    }
    Ok(body)
}

fn unsupported(r: &Response) -> Option<String> {
    let text = String::from_utf8_lossy(&r.body);
    (r.status == 404 || (r.status == 400 && text.contains("no handler found"))).then(|| {
        format!(
            "{} answered {}: {}",
            r.url,
            r.status,
            crate::client::preview(&r.body)
        )
    })
}

/// Installs, on the cluster of `config`: the lifecycle policy (ILM on Elasticsearch,
/// ISM on OpenSearch: indices are deleted after `setup.retention`), the index template
/// of the normalizer's policies, and the dead-letter index template. Installing again
/// replaces them.
pub fn setup(config: &EsConfig) -> Result<SetupReport> {
    config.validate()?;
    let client = Client::new(config)?;
    let version = client.version()?;
    let mut steps = Vec::new();
    let name = policy_name(config);
    let main = IndexPattern::parse(&config.index).map_err(Error::Config)?;
    let dead = IndexPattern::parse(&config.dead_letter_index).map_err(Error::Config)?;
    let mut ilm = None;
    if config.setup.retention.is_zero() {
        steps.push(SetupStep {
            what: "lifecycle policy",
            request: String::new(),
            outcome: StepOutcome::Skipped,
        });
    } else {
        let min_age = age(config.setup.retention);
        let step = match version.distribution {
            Distribution::Elasticsearch => {
                let path = format!("/_ilm/policy/{name}");
                let body = json!({"policy": {
                    "_meta": {"managed_by": "logtide"},
                    "phases": {
                        "hot": {"min_age": "0ms", "actions": {}},
                        "delete": {"min_age": min_age, "actions": {"delete": {}}}
                    }
                }});
                let outcome = put(&client, &path, &body)?;
                if outcome == StepOutcome::Installed {
                    ilm = Some(name.clone());
                }
                SetupStep {
                    what: "ILM policy",
                    request: format!("PUT {path}"),
                    outcome,
                }
            }
            Distribution::OpenSearch => {
                let path = format!("/_plugins/_ism/policies/{name}");
                let body = json!({"policy": {
                    "description": format!("logtide: delete indices after {min_age}"),
                    "default_state": "hot",
                    "states": [
                        {"name": "hot", "actions": [], "transitions": [
                            {"state_name": "delete", "conditions": {"min_index_age": min_age}}
                        ]},
                        {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
                    ],
                    "ism_template": [{
                        "index_patterns": [main.wildcard(), dead.wildcard()],
                        "priority": config.setup.priority
                    }]
                }});
                SetupStep {
                    what: "ISM policy",
                    request: format!("PUT {path}"),
                    outcome: put_ism(&client, &path, &body)?,
                }
            }
        };
        if let StepOutcome::Unsupported(why) = &step.outcome {
            tracing::warn!(request = %step.request, %why, "the server has no lifecycle API; indices will not be deleted by a policy");
        }
        steps.push(step);
    }
    let template = config.setup.template_name.clone();
    for (what, path, body) in [
        (
            "index template",
            format!("/_index_template/{template}"),
            index_template(config, ilm.as_deref())?,
        ),
        (
            "dead-letter index template",
            format!("/_index_template/{template}-deadletter"),
            dead_letter_template(config, ilm.as_deref())?,
        ),
    ] {
        let r = client.request(
            "PUT",
            &path,
            Some((
                &serde_json::to_vec(&body).unwrap_or_default(),
                "application/json",
            )),
        )?;
        if !r.is_success() {
            return Err(r.status_error("PUT"));
        }
        steps.push(SetupStep {
            what,
            request: format!("PUT {path}"),
            outcome: StepOutcome::Installed,
        });
    }
    Ok(SetupReport { version, steps })
}

fn put(client: &Client, path: &str, body: &Value) -> Result<StepOutcome> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let r = client.request("PUT", path, Some((&bytes, "application/json")))?;
    if r.is_success() {
        return Ok(StepOutcome::Installed);
    }
    unsupported(&r)
        .map(StepOutcome::Unsupported)
        .ok_or_else(|| r.status_error("PUT"))
}

/// ISM refuses to overwrite a policy without its sequence number: read it, then update.
fn put_ism(client: &Client, path: &str, body: &Value) -> Result<StepOutcome> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let r = client.request("PUT", path, Some((&bytes, "application/json")))?;
    if r.is_success() {
        return Ok(StepOutcome::Installed);
    }
    if let Some(why) = unsupported(&r) {
        return Ok(StepOutcome::Unsupported(why));
    }
    if r.status != 409 {
        return Err(r.status_error("PUT"));
    }
    let current = client.request("GET", path, None)?;
    if !current.is_success() {
        return Err(current.status_error("GET"));
    }
    let v = current.json()?;
    let (Some(seq), Some(term)) = (v["_seq_no"].as_u64(), v["_primary_term"].as_u64()) else {
        return Err(Error::Response {
            url: current.url.clone(),
            message: "no _seq_no/_primary_term in the policy".into(),
        });
    };
    let update = format!("{path}?if_seq_no={seq}&if_primary_term={term}");
    let r = client.request("PUT", &update, Some((&bytes, "application/json")))?;
    if r.is_success() {
        Ok(StepOutcome::Installed)
    } else {
        Err(r.status_error("PUT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ages_are_whole_days_or_hours() {
        assert_eq!(age(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(age(Duration::from_secs(5400)), "2h");
        assert_eq!(age(Duration::from_secs(1)), "1h");
    }

    #[test]
    fn templates_cover_the_index_patterns() {
        let mut config = EsConfig::new(["http://127.0.0.1:9200"]);
        config.index = "logs-%Y.%m.%d".into();
        config.mapping = logtide_mapping::MappingConfig::from_json(&json!({
            "rules": [{"fields": "message-json.*", "policy": "stringify"}]
        }))
        .unwrap();
        let t = index_template(&config, Some("logtide")).unwrap();
        assert_eq!(t["index_patterns"], json!(["logs-*"]));
        assert_eq!(t["priority"], json!(200));
        assert_eq!(
            t["template"]["settings"]["index.lifecycle.name"],
            json!("logtide")
        );
        let templates = t["template"]["mappings"]["dynamic_templates"].to_string();
        assert!(templates.contains("message-json.*"), "{templates}");
        let d = dead_letter_template(&config, None).unwrap();
        assert_eq!(d["index_patterns"], json!(["logtide-deadletter-*"]));
        assert_eq!(d["priority"], json!(201));
        assert_eq!(d["template"]["mappings"]["dynamic"], json!(false));
    }
}
