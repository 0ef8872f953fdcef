//! The DynamoDB lease table; its layout is documented on [`Lease`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;

use crate::checkpoint::SHARD_END;
use crate::Error;

/// A lease as read from the DynamoDB lease table.
///
/// # The lease table
///
/// The layout follows the Kinesis Client Library's, so operators recognise it. One item
/// per shard, hash key `leaseKey` (a string):
///
/// | attribute | type | meaning |
/// |---|---|---|
/// | `leaseKey` | S | the shard id |
/// | `leaseOwner` | S | the worker holding the lease; absent when nobody does |
/// | `leaseCounter` | N | bumped by every renewal, take and checkpoint of the owner |
/// | `checkpoint` | S | last acknowledged sequence number, `TRIM_HORIZON`, `LATEST` or `SHARD_END` |
/// | `checkpointSubSequenceNumber` | N | always 0 (logtide does not use KPL aggregation) |
/// | `ownerSwitchesSinceCheckpoint` | N | takes since the last checkpoint |
/// | `parentShardId` | SS | the shard's parents, when it has any |
///
/// Semantics: the owner renews its leases every third of `lease_duration` by bumping
/// `leaseCounter` on the condition that it still owns the lease at the counter it last
/// saw. A worker considers a lease expired when its counter did not change for
/// `lease_duration` on its own clock, and takes it with a conditional write on the
/// counter it observed (so of two takers one wins). Unowned leases are taken at once.
/// When a worker holds fewer than its share (leases ÷ live workers, rounded up) and
/// nothing is free, it steals one lease per round from the worker holding the most. A
/// checkpoint is written only by the owner (conditional on `leaseOwner`). On shutdown a
/// worker checkpoints, then removes `leaseOwner` from its leases, so others take them
/// without waiting for expiry. A lease whose checkpoint is `SHARD_END` is finished and
/// taken by nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The shard id (`leaseKey`).
    pub key: String,
    /// The worker holding it (`leaseOwner`).
    pub owner: Option<String>,
    /// `leaseCounter`.
    pub counter: u64,
    /// `checkpoint`.
    pub checkpoint: String,
    /// `parentShardId`.
    pub parents: Vec<String>,
}

impl Lease {
    /// Whether the shard was read and acknowledged to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == SHARD_END
    }
}

fn msg<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> String {
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => format!("{e:?}"),
    }
}

fn is_conditional<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The lease table of one worker.
#[derive(Debug)]
pub(crate) struct LeaseTable {
    client: Client,
    table: String,
    worker: String,
    duration: Duration,
    /// Counter last seen per lease and when it was first seen at that value.
    seen: HashMap<String, (u64, Instant)>,
    /// Leases held, with the counter this worker last wrote.
    held: HashMap<String, u64>,
    /// Leases as of the last scan.
    pub(crate) leases: HashMap<String, Lease>,
}

impl LeaseTable {
    pub(crate) fn new(client: Client, table: &str, worker: &str, duration: Duration) -> Self {
        LeaseTable {
            client,
            table: table.to_owned(),
            worker: worker.to_owned(),
            duration,
            seen: HashMap::new(),
            held: HashMap::new(),
            leases: HashMap::new(),
        }
    }

    pub(crate) fn held(&self) -> impl Iterator<Item = &str> {
        self.held.keys().map(String::as_str)
    }

    pub(crate) fn holds(&self, key: &str) -> bool {
        self.held.contains_key(key)
    }

    /// Creates the table (on-demand billing) when missing and waits until it is active.
    pub(crate) async fn ensure_table(&self) -> Result<(), Error> {
        let exists = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => {
                return Err(Error::Lease {
                    message: format!("describe table {}: {}", self.table, msg(&e)),
                    source: Some(Box::new(e)),
                })
            }
        };
        if !exists {
            let build = |e: aws_sdk_dynamodb::error::BuildError| Error::Lease {
                message: e.to_string(),
                source: Some(Box::new(e)),
            };
            let res = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("leaseKey")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(build)?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("leaseKey")
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(build)?,
                )
                .send()
                .await;
            if let Err(e) = res {
                // Another worker may have created it meanwhile.
                if !e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception())
                {
                    return Err(Error::Lease {
                        message: format!("create table {}: {}", self.table, msg(&e)),
                        source: Some(Box::new(e)),
                    });
                }
            }
        }
        for _ in 0..120 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| Error::Lease {
                    message: format!("describe table {}: {}", self.table, msg(&e)),
                    source: Some(Box::new(e)),
                })?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::Lease {
            message: format!("table {} did not become active in 60 s", self.table),
            source: None,
        })
    }

    /// Reads every lease (consistent scan).
    pub(crate) async fn scan(&mut self) -> Result<(), Error> {
        let mut leases = HashMap::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::Lease {
                    message: format!("scan {}: {}", self.table, msg(&e)),
                    source: Some(Box::new(e)),
                })?;
            for item in out.items() {
                if let Some(l) = parse_lease(item) {
                    leases.insert(l.key.clone(), l);
                } else {
                    tracing::warn!(table = %self.table, ?item, "lease item without leaseKey, leaseCounter or checkpoint ignored");
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        let now = Instant::now();
        for l in leases.values() {
            match self.seen.get(&l.key) {
                Some((c, _)) if *c == l.counter => {}
                _ => {
                    self.seen.insert(l.key.clone(), (l.counter, now));
                }
            }
        }
        self.seen.retain(|k, _| leases.contains_key(k));
        self.leases = leases;
        Ok(())
    }

    /// Creates the lease of a shard unless it exists.
    pub(crate) async fn create(
        &mut self,
        key: &str,
        parents: &[String],
        checkpoint: &str,
    ) -> Result<(), Error> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("leaseKey", s(key))
            .item("leaseCounter", n(0))
            .item("checkpoint", s(checkpoint))
            .item("checkpointSubSequenceNumber", n(0))
            .item("ownerSwitchesSinceCheckpoint", n(0))
            .condition_expression("attribute_not_exists(leaseKey)");
        if !parents.is_empty() {
            req = req.item("parentShardId", AttributeValue::Ss(parents.to_vec()));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(Error::Lease {
                message: format!("create lease {key}: {}", msg(&e)),
                source: Some(Box::new(e)),
            }),
        }
    }

    /// Bumps the counter of every held lease; returns the leases lost (someone else took
    /// them).
    pub(crate) async fn renew(&mut self) -> Result<Vec<String>, Error> {
        let mut lost = Vec::new();
        let keys: Vec<String> = self.held.keys().cloned().collect();
        for key in keys {
            let c = self.held[&key];
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("leaseKey", s(&key))
                .update_expression("SET leaseCounter = :next")
                .condition_expression("leaseOwner = :me AND leaseCounter = :c")
                .expression_attribute_values(":next", n(c + 1))
                .expression_attribute_values(":me", s(&self.worker))
                .expression_attribute_values(":c", n(c))
                .send()
                .await;
            match res {
                Ok(_) => {
                    self.held.insert(key, c + 1);
                }
                Err(e) if is_conditional(&e) => {
                    tracing::warn!(shard = %key, "lease lost to another worker");
                    self.held.remove(&key);
                    lost.push(key);
                }
                Err(e) => {
                    return Err(Error::Lease {
                        message: format!("renew lease {key}: {}", msg(&e)),
                        source: Some(Box::new(e)),
                    })
                }
            }
        }
        Ok(lost)
    }

    /// Takes free or expired leases among `eligible` up to this worker's share, else
    /// steals one from the busiest worker. Call after [`LeaseTable::scan`]. Returns the
    /// leases taken with their checkpoints.
    pub(crate) async fn acquire(
        &mut self,
        eligible: &HashSet<String>,
    ) -> Result<Vec<(String, String)>, Error> {
        let now = Instant::now();
        let active: Vec<&Lease> = self.leases.values().filter(|l| !l.is_finished()).collect();
        let expired = |l: &Lease| {
            l.owner.is_none()
                || self.seen.get(&l.key).is_some_and(|(c, t)| {
                    *c == l.counter && now.duration_since(*t) >= self.duration
                })
        };
        let mut per_owner: HashMap<&str, usize> = HashMap::new();
        for l in &active {
            if let Some(o) = &l.owner {
                if !expired(l) && o != &self.worker {
                    *per_owner.entry(o.as_str()).or_default() += 1;
                }
            }
        }
        let workers = per_owner.len() + 1;
        let target = active.len().div_ceil(workers);
        let mut mine = self.held.len();
        let mut want: Vec<Lease> = Vec::new();
        for l in &active {
            if mine + want.len() >= target {
                break;
            }
            if eligible.contains(&l.key) && !self.held.contains_key(&l.key) && expired(l) {
                want.push((*l).clone());
            }
        }
        if mine + want.len() < target {
            // Steal one from the busiest worker when it holds more than its share.
            if let Some((victim, count)) = per_owner.iter().max_by_key(|(_, c)| **c) {
                if *count > target {
                    if let Some(l) = active
                        .iter()
                        .find(|l| l.owner.as_deref() == Some(*victim) && eligible.contains(&l.key))
                    {
                        tracing::info!(shard = %l.key, from = %victim, "stealing a lease for balance");
                        want.push((*l).clone());
                    }
                }
            }
        }
        let mut taken = Vec::new();
        for l in want {
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("leaseKey", s(&l.key))
                .update_expression(
                    "SET leaseOwner = :me, leaseCounter = :next ADD ownerSwitchesSinceCheckpoint :one",
                )
                .condition_expression("leaseCounter = :c")
                .expression_attribute_values(":me", s(&self.worker))
                .expression_attribute_values(":next", n(l.counter + 1))
                .expression_attribute_values(":c", n(l.counter))
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            match res {
                Ok(_) => {
                    tracing::info!(shard = %l.key, worker = %self.worker, checkpoint = %l.checkpoint, "lease taken");
                    self.held.insert(l.key.clone(), l.counter + 1);
                    mine += 1;
                    taken.push((l.key, l.checkpoint));
                }
                Err(e) if is_conditional(&e) => {}
                Err(e) => {
                    return Err(Error::Lease {
                        message: format!("take lease {}: {}", l.key, msg(&e)),
                        source: Some(Box::new(e)),
                    })
                }
            }
        }
        let _ = mine;
        Ok(taken)
    }

    /// Writes a held lease's checkpoint. `Ok(false)`: the lease was lost meanwhile.
    pub(crate) async fn checkpoint(&mut self, key: &str, checkpoint: &str) -> Result<bool, Error> {
        let Some(&c) = self.held.get(key) else {
            return Ok(false);
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(key))
            .update_expression(
                "SET checkpoint = :cp, checkpointSubSequenceNumber = :zero, ownerSwitchesSinceCheckpoint = :zero, leaseCounter = :next",
            )
            .condition_expression("leaseOwner = :me AND leaseCounter = :c")
            .expression_attribute_values(":cp", s(checkpoint))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":next", n(c + 1))
            .expression_attribute_values(":me", s(&self.worker))
            .expression_attribute_values(":c", n(c))
            .send()
            .await;
        match res {
            Ok(_) => {
                self.held.insert(key.to_owned(), c + 1);
                Ok(true)
            }
            Err(e) if is_conditional(&e) => {
                self.held.remove(key);
                Ok(false)
            }
            Err(e) => Err(Error::Lease {
                message: format!("checkpoint lease {key}: {}", msg(&e)),
                source: Some(Box::new(e)),
            }),
        }
    }

    /// Gives a held lease up (graceful hand-off): removes `leaseOwner`.
    pub(crate) async fn release(&mut self, key: &str) -> Result<(), Error> {
        let Some(c) = self.held.remove(key) else {
            return Ok(());
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(key))
            .update_expression("REMOVE leaseOwner SET leaseCounter = :next")
            .condition_expression("leaseOwner = :me AND leaseCounter = :c")
            .expression_attribute_values(":next", n(c + 1))
            .expression_attribute_values(":me", s(&self.worker))
            .expression_attribute_values(":c", n(c))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(Error::Lease {
                message: format!("release lease {key}: {}", msg(&e)),
                source: Some(Box::new(e)),
            }),
        }
    }
}

fn parse_lease(item: &HashMap<String, AttributeValue>) -> Option<Lease> {
    let key = item.get("leaseKey")?.as_s().ok()?.clone();
    let counter = item.get("leaseCounter")?.as_n().ok()?.parse().ok()?;
    let checkpoint = item.get("checkpoint")?.as_s().ok()?.clone();
    let owner = item.get("leaseOwner").and_then(|v| v.as_s().ok()).cloned();
    let parents = item
        .get("parentShardId")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    Some(Lease {
        key,
        owner,
        counter,
        checkpoint,
        parents,
    })
}
