//! The shard consumer: discovery, leases or local checkpoints, GetRecords within the
//! per-shard limits, resharding in order, decoding, and checkpoints that follow
//! acknowledgements.

use logtide_config::duration;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ShardIteratorType;
use logtide_event::{AckOutcome, AckToken, Acknowledge, Event, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use crate::checkpoint::{FileCheckpoints, SHARD_END};
use crate::deadletter::DeadLetters;
use crate::decode::{peek_header, Decoder, Incomplete, RecordKind};
use crate::lease::{Lease, LeaseTable};
use crate::objects::{retry_wait, FETCH_ATTEMPTS, FETCH_ATTEMPT_TIMEOUT};
use crate::offload::{offloaded_reference, parse_reference, RestoreConfig};
use crate::sdk::{runtime_and_sdk, sdk_config};
use crate::shards::Shards;
use crate::Error;

/// Per-shard read limit: calls per second.
const CALLS_PER_SECOND: u32 = 5;
/// Per-shard read limit: bytes per second.
const BYTES_PER_SECOND: u64 = 2 << 20;
/// First wait after a throttled or failed call.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where reading starts on a shard without a checkpoint (`start_position`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record kept (the default).
    #[default]
    TrimHorizon,
    /// Only records written after the consumer started.
    Latest,
}

/// `checkpoint:` where checkpoints are kept.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory of the local checkpoint file (used without `dynamodb`); default
    /// `/var/lib/logtide/relay`.
    #[serde(default = "default_checkpoint_path")]
    pub path: PathBuf,
    /// A DynamoDB lease table shared by several instances; default: none (local file).
    #[serde(default)]
    pub dynamodb: Option<DynamoDbConfig>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            path: default_checkpoint_path(),
            dynamodb: None,
        }
    }
}

fn default_checkpoint_path() -> PathBuf {
    PathBuf::from("/var/lib/logtide/relay")
}

/// `checkpoint.dynamodb`: the lease table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbConfig {
    /// Table name (created with on-demand billing when missing).
    pub table: String,
    /// A lease not renewed for this long may be taken by another instance; default `10s`.
    #[serde(
        default = "default_lease_duration",
        deserialize_with = "duration::deserialize"
    )]
    pub lease_duration: Duration,
    /// This instance's name in `leaseOwner`; default: host name and process id.
    #[serde(default)]
    pub worker_id: Option<String>,
}

fn default_lease_duration() -> Duration {
    Duration::from_secs(10)
}

/// The configuration of the Kinesis consumer (`source.kinesis`). Credentials come from
/// the AWS default chain.
///
/// ```yaml
/// source.kinesis:
///   stream_name: logs
///   region: ap-northeast-1
///   endpoint: http://127.0.0.1:5000     # optional
///   start_position: trim_horizon        # trim_horizon | latest
///   checkpoint:
///     path: /var/lib/logtide/relay      # or dynamodb: {table: logtide-leases, lease_duration: 10s}
///   checkpoint_interval: 5s
///   shard_sync_interval: 10s
///   idle_poll_interval: 1s
///   chunk_timeout: 60s
///   max_unacked_records: 100000
///   dead_letter_path: /var/lib/logtide/dead-letter
///   offload: {restore: true}            # region, endpoint: of the offload buckets
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// The stream's name (required).
    pub stream_name: String,
    /// AWS region; default: the AWS default chain's.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's (used for Kinesis and DynamoDB); default none.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where a shard without a checkpoint starts; default `trim_horizon`. Shards created
    /// by resharding always start at their oldest record.
    #[serde(default)]
    pub start_position: StartPosition,
    /// Where checkpoints are kept; default: a local file in `/var/lib/logtide/relay`.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// How often acknowledged positions are written; default `5s`.
    #[serde(
        default = "default_checkpoint_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub checkpoint_interval: Duration,
    /// How often shards are listed (and leases taken); default `10s`.
    #[serde(
        default = "default_shard_sync_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub shard_sync_interval: Duration,
    /// Wait after a GetRecords call that returned nothing; default `1s` (at least 200 ms).
    #[serde(
        default = "default_idle_poll_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub idle_poll_interval: Duration,
    /// How long chunks of a split event wait for the rest before the event is
    /// dead-lettered; default `60s`.
    #[serde(
        default = "default_chunk_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub chunk_timeout: Duration,
    /// Records read but not yet acknowledged, per shard, before reading that shard
    /// pauses; default 100000.
    #[serde(default = "default_max_unacked")]
    pub max_unacked_records: usize,
    /// Directory of the dead-letter files; default `/var/lib/logtide/dead-letter`.
    #[serde(default = "default_dead_letter_path")]
    pub dead_letter_path: PathBuf,
    /// How events offloaded to S3 by the sink (`oversize: offload`) are read back; by
    /// default each is fetched and handed on whole (see [`RestoreConfig`]).
    #[serde(default)]
    pub offload: RestoreConfig,
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_shard_sync_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_chunk_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_unacked() -> usize {
    100_000
}
fn default_dead_letter_path() -> PathBuf {
    PathBuf::from("/var/lib/logtide/dead-letter")
}

impl ConsumerConfig {
    /// A configuration for `stream_name` with every other option at its default.
    pub fn new(stream_name: impl Into<String>) -> Self {
        ConsumerConfig {
            stream_name: stream_name.into(),
            region: None,
            endpoint: None,
            start_position: StartPosition::default(),
            checkpoint: CheckpointConfig::default(),
            checkpoint_interval: default_checkpoint_interval(),
            shard_sync_interval: default_shard_sync_interval(),
            idle_poll_interval: default_idle_poll_interval(),
            chunk_timeout: default_chunk_timeout(),
            max_unacked_records: default_max_unacked(),
            dead_letter_path: default_dead_letter_path(),
            offload: RestoreConfig::default(),
        }
    }

    /// Checks every option without contacting AWS; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        let mut k = crate::KinesisConfig::new(self.stream_name.clone());
        k.region.clone_from(&self.region);
        k.endpoint.clone_from(&self.endpoint);
        k.validate()?;
        if let Some(d) = &self.checkpoint.dynamodb {
            if d.table.len() < 3 || d.table.len() > 255 {
                return Err(Error::Config(format!(
                    "checkpoint.dynamodb.table: {:?} is not a table name (3 to 255 characters)",
                    d.table
                )));
            }
            if d.lease_duration < Duration::from_secs(1) {
                return Err(Error::Config(
                    "checkpoint.dynamodb.lease_duration: must be at least 1s".into(),
                ));
            }
        } else if self.checkpoint.path.as_os_str().is_empty() {
            return Err(Error::Config("checkpoint.path: must not be empty".into()));
        }
        if self.max_unacked_records == 0 {
            return Err(Error::Config(
                "max_unacked_records: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Counters of a [`Consumer`]. Every record read ends in exactly one of: events handed
/// on (`events`, one record may hold many), a chunk rejoined into an event, or a dead
/// letter (`dead_letters_undecodable`, `dead_letters_incomplete`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Records read.
    pub records: u64,
    /// Bytes of records read.
    pub bytes: u64,
    /// Events handed to the caller.
    pub events: u64,
    /// GetRecords calls.
    pub get_records_calls: u64,
    /// Calls refused with ProvisionedThroughputExceeded (backed off).
    pub throttled: u64,
    /// Shard iterators that expired and were acquired again.
    pub iterators_expired: u64,
    /// Other failed calls (network, server), backed off and retried.
    pub errors: u64,
    /// Records that were not decodable, dead-lettered with the reason.
    pub dead_letters_undecodable: u64,
    /// Split events whose chunks did not all arrive, dead-lettered with the reason.
    pub dead_letters_incomplete: u64,
    /// Acknowledgements that came back abandoned (the checkpoint stays before them).
    pub acks_abandoned: u64,
    /// Closed shards read to their end.
    pub shards_ended: u64,
    /// Checkpoints written (per shard).
    pub checkpoints: u64,
    /// Leases lost to another worker.
    pub leases_lost: u64,
    /// Records in logtide's format.
    pub records_logtide: u64,
    /// Records holding one JSON object (logtide's `format: json`, or another producer's).
    pub records_json: u64,
    /// Records that were neither (handed on as `message`).
    pub records_text: u64,
    /// Offloaded events fetched from S3 and handed on whole.
    pub events_restored: u64,
    /// Offloaded events whose S3 object could not be read: handed on as their head, with
    /// `error.message` saying why (the reference stays, to fetch the object later).
    pub offloaded_not_restored: u64,
}

/// Events read from one shard in one call, in record order. Every event carries an
/// [`AckToken`]; the shard's checkpoint passes a record only once every event of it was
/// accepted or discarded.
#[derive(Debug)]
pub struct ShardBatch {
    /// The shard the records came from.
    pub shard_id: String,
    /// Sequence number of the first record of the batch.
    pub first_sequence: String,
    /// The decoded events.
    pub events: Vec<Event>,
}

type RecRef = (u64, u64);

#[derive(Debug, Default)]
struct Lane {
    shard: String,
    base: u64,
    recs: VecDeque<(String, u32)>,
    ended: bool,
}

impl Lane {
    /// Appends a record; returns its index.
    fn push(&mut self, seq: String, outstanding: u32) -> u64 {
        let idx = self.base + self.recs.len() as u64;
        self.recs.push_back((seq, outstanding));
        idx
    }
}

/// Records read and not yet checkpointed, and the events they went into. Shared with
/// the sinks' threads through [`Acknowledge`].
#[derive(Debug, Default)]
struct Book {
    lanes: HashMap<u64, Lane>,
    units: HashMap<u64, Vec<RecRef>>,
    next_unit: u64,
    abandoned: u64,
}

impl Book {
    fn release(&mut self, refs: &[RecRef]) {
        for (lane, idx) in refs {
            if let Some(l) = self.lanes.get_mut(lane) {
                if let Some(r) = idx
                    .checked_sub(l.base)
                    .and_then(|i| l.recs.get_mut(i as usize))
                {
                    r.1 = r.1.saturating_sub(1);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Acks(Mutex<Book>);

impl Acks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Acknowledge for Acks {
    fn acknowledge(&self, id: u64, outcome: AckOutcome) {
        self.acknowledge_many(&[id], outcome);
    }

    fn acknowledge_many(&self, ids: &[u64], outcome: AckOutcome) {
        let mut b = self.lock();
        for id in ids {
            if let Some(refs) = b.units.remove(id) {
                if outcome.is_done() {
                    b.release(&refs);
                } else {
                    b.abandoned += 1;
                }
            }
        }
    }
}

#[derive(Debug)]
struct ShardRun {
    lane: u64,
    iterator: Option<String>,
    /// Where to (re)start: the last record read, else the checkpoint.
    after: Option<String>,
    from_start: bool,
    next_fetch: Instant,
    failures: u32,
    /// How far the last GetRecords call was behind the shard's tip.
    millis_behind: Option<u64>,
}

enum Store {
    File(FileCheckpoints),
    Leases(Box<LeaseTable>),
}

/// Reads a stream's shards and hands their events on; see the crate documentation for
/// the record-consumer contract.
///
/// Like [`Sink`](crate::Sink), it owns a small single-threaded tokio runtime: its
/// methods block. GetRecords calls to several shards run concurrently.
pub struct Consumer {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_kinesis::Client,
    config: ConsumerConfig,
    store: Store,
    /// The shards, their lineage, and the read state of those read here.
    shards: Shards<ShardRun>,
    acks: Arc<Acks>,
    decoder: Decoder,
    /// Chunk records of split events not yet complete, by split id.
    chunks: HashMap<String, Vec<RecRef>>,
    dead: DeadLetters,
    /// S3, for offloaded events; set up at the first one.
    objects: Option<crate::objects::Store>,
    stats: ConsumerStats,
    next_lane: u64,
    next_sync: Instant,
    next_checkpoint: Instant,
    next_renew: Instant,
    started: Instant,
    stopping: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.config.stream_name)
            .field(
                "running",
                &self.shards.reading().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn sdk_msg<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> String {
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => format!("{e:?}"),
    }
}

/// Reads the saved checkpoints of `config`'s stream without taking part: from the local
/// file store, or every lease of the DynamoDB table (with its owner), sorted by shard.
/// For `logtide-relay status`.
pub fn read_checkpoints(config: &ConsumerConfig) -> Result<Vec<Lease>, Error> {
    config.validate()?;
    match &config.checkpoint.dynamodb {
        None => {
            let store = FileCheckpoints::open(&config.checkpoint.path, &config.stream_name)?;
            Ok(store
                .all()
                .iter()
                .map(|(shard, cp)| Lease {
                    key: shard.clone(),
                    owner: None,
                    counter: 0,
                    checkpoint: cp.clone(),
                    parents: Vec::new(),
                })
                .collect())
        }
        Some(d) => {
            let (rt, sdk) = runtime_and_sdk(config.region.as_deref(), config.endpoint.as_deref())?;
            let mut table = LeaseTable::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                &d.table,
                "logtide-relay-status",
                d.lease_duration,
            );
            rt.block_on(table.scan())?;
            let mut leases: Vec<Lease> = table.leases.into_values().collect();
            leases.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(leases)
        }
    }
}

impl Consumer {
    /// Validates `config`, sets up the AWS clients and the checkpoint store (creating the
    /// lease table when missing), and lists the stream's shards.
    pub fn connect(config: &ConsumerConfig) -> Result<Consumer, Error> {
        config.validate()?;
        let (rt, sdk) = runtime_and_sdk(config.region.as_deref(), config.endpoint.as_deref())?;
        let client = aws_sdk_kinesis::Client::new(&sdk);
        let store = match &config.checkpoint.dynamodb {
            None => Store::File(FileCheckpoints::open(
                &config.checkpoint.path,
                &config.stream_name,
            )?),
            Some(d) => {
                let worker = d.worker_id.clone().unwrap_or_else(default_worker_id);
                let table = LeaseTable::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    &d.table,
                    &worker,
                    d.lease_duration,
                );
                rt.block_on(table.ensure_table())?;
                tracing::info!(table = %d.table, %worker, "lease table ready");
                Store::Leases(Box::new(table))
            }
        };
        let dead = DeadLetters::open(&config.dead_letter_path)?;
        let now = Instant::now();
        let mut c = Consumer {
            rt,
            client,
            config: config.clone(),
            store,
            shards: Shards::new(config.start_position),
            acks: Arc::default(),
            decoder: Decoder::default(),
            chunks: HashMap::new(),
            dead,
            objects: None,
            stats: ConsumerStats::default(),
            next_lane: 0,
            next_sync: now,
            next_checkpoint: now + config.checkpoint_interval,
            next_renew: now,
            started: now,
            stopping: false,
        };
        c.sync()?;
        Ok(c)
    }

    /// Replaces an offloaded event's head by the whole event from S3. When the object
    /// cannot be read (after a few tries for failures that may pass), the head goes on
    /// with `error.message`, counted, so that one missing object never stops a shard.
    fn restore(&mut self, event: &mut Event) {
        let Some(reference) = offloaded_reference(event).map(str::to_owned) else {
            return;
        };
        match self.fetch(&reference) {
            Ok(whole) => {
                *event = whole;
                self.stats.events_restored += 1;
            }
            Err(message) => {
                tracing::warn!(%reference, error = %message, "an offloaded event could not be restored; its head goes on");
                let _ = event.insert(
                    "error.message",
                    Value::String(format!(
                        "offloaded event not restored from {reference}: {message}"
                    )),
                );
                self.stats.offloaded_not_restored += 1;
            }
        }
    }

    /// Reads and parses the whole event at `reference`.
    fn fetch(&mut self, reference: &str) -> Result<Event, String> {
        let (bucket, key) = parse_reference(reference).ok_or("not an s3://bucket/key reference")?;
        if self.objects.is_none() {
            let o = &self.config.offload;
            let region = o.region.as_deref().or(self.config.region.as_deref());
            let sdk = self
                .rt
                .block_on(sdk_config(
                    region,
                    o.endpoint.as_deref(),
                    FETCH_ATTEMPT_TIMEOUT,
                ))
                .map_err(|e| e.to_string())?;
            let store = crate::objects::Store::new(&sdk, FETCH_ATTEMPT_TIMEOUT)
                .map_err(|e| e.to_string())?;
            self.objects = Some(store);
        }
        let Some(objects) = &self.objects else {
            return Err("no S3 client".into());
        };
        let limit = crate::decode::DecoderConfig::default().max_body_bytes;
        let mut attempt = 0;
        let body = loop {
            match self.rt.block_on(objects.get(bucket, key, limit)) {
                Ok(body) => break body,
                Err(f) if f.transient && attempt + 1 < FETCH_ATTEMPTS => {
                    attempt += 1;
                    self.rt.block_on(tokio::time::sleep(retry_wait(attempt)));
                }
                Err(f) => return Err(f.message),
            }
        };
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("the object is not one JSON event: {e}"))?;
        Event::from_json(value).map_err(|e| format!("the object is not an event: {e}"))
    }

    /// The counters.
    pub fn stats(&self) -> ConsumerStats {
        let mut s = self.stats.clone();
        s.acks_abandoned = self.acks.lock().abandoned;
        s
    }

    /// How far the reading of each shard being read is behind the shard's tip
    /// (`MillisBehindLatest` of its last GetRecords call), for shards read at least once.
    pub fn lag(&self) -> Vec<(String, u64)> {
        self.shards
            .reading()
            .filter_map(|(id, r)| Some((id.to_owned(), r.millis_behind?)))
            .collect()
    }

    /// Shards being read now.
    pub fn shards(&self) -> Vec<String> {
        self.shards.reading().map(|(id, _)| id.to_owned()).collect()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Lists shards, creates missing leases, renews, takes and steals leases, and starts
    /// reading shards whose parents are done.
    fn sync(&mut self) -> Result<(), Error> {
        let listing = self
            .rt
            .block_on(list_shards(&self.client, &self.config.stream_name))?;
        self.shards.set_listing(listing);
        let starts = match &mut self.store {
            Store::File(f) => {
                for (id, cp) in f.all() {
                    self.shards.checkpointed(id, cp);
                }
                // Every listed shard is this worker's to read.
                self.shards
                    .to_start(self.shards.listed().map(|id| (id, f.get(id))))
            }
            Store::Leases(t) => {
                let t = t.as_mut();
                self.rt.block_on(t.scan())?;
                for l in self.shards.missing_leases(&t.leases) {
                    self.rt
                        .block_on(t.create(l.shard, l.parents, l.checkpoint))?;
                }
                self.rt.block_on(t.scan())?;
                for l in t.leases.values() {
                    self.shards.checkpointed(&l.key, &l.checkpoint);
                }
                let lost = self.rt.block_on(t.renew())?;
                for id in lost {
                    self.stats.leases_lost += 1;
                    // Its records still waiting for sinks will not be checkpointed here:
                    // another worker goes on from the lease's checkpoint (and the loss is
                    // not counted again when their checkpoint would fail).
                    if let Some(r) = self.shards.stop_reading(&id) {
                        self.acks.lock().lanes.remove(&r.lane);
                    }
                }
                if !self.stopping {
                    let leasable = self.shards.leasable(&t.leases);
                    self.rt.block_on(t.acquire(&leasable))?;
                }
                // The leases held are this worker's to read.
                self.shards.to_start(
                    t.held()
                        .map(|id| (id, t.leases.get(id).map(|l| l.checkpoint.as_str()))),
                )
            }
        };
        if !self.stopping {
            for start in starts {
                self.next_lane += 1;
                let lane = self.next_lane;
                self.acks.lock().lanes.insert(
                    lane,
                    Lane {
                        shard: start.shard.clone(),
                        ..Lane::default()
                    },
                );
                tracing::info!(shard = %start.shard, checkpoint = ?start.checkpoint, "reading shard");
                self.shards.start_reading(
                    start.shard,
                    ShardRun {
                        lane,
                        iterator: None,
                        after: start.after,
                        from_start: start.from_start,
                        next_fetch: Instant::now(),
                        failures: 0,
                        millis_behind: None,
                    },
                );
            }
        }
        // Shards no longer held (lost leases) stop.
        if let Store::Leases(t) = &self.store {
            for k in self.shards.unheld(|k| t.holds(k)) {
                if let Some(r) = self.shards.stop_reading(&k) {
                    self.acks.lock().lanes.remove(&r.lane);
                }
            }
        }
        self.next_sync = Instant::now() + self.config.shard_sync_interval;
        self.next_renew = Instant::now() + self.renew_interval();
        Ok(())
    }

    fn renew_interval(&self) -> Duration {
        match &self.config.checkpoint.dynamodb {
            Some(d) => (d.lease_duration / 3).min(self.config.shard_sync_interval),
            None => self.config.shard_sync_interval,
        }
    }

    /// Reads from every shard that is due (at most 5 calls per second and 2 MB per
    /// second per shard, less while throttled), waiting up to `max_wait` when none is.
    /// Also lists shards, renews leases and writes checkpoints when their intervals are
    /// up, and dead-letters split events whose chunks timed out.
    pub fn poll(&mut self, max_wait: Duration) -> Result<Vec<ShardBatch>, Error> {
        let now = Instant::now();
        if now >= self.next_sync || now >= self.next_renew {
            if let Err(e) = self.sync() {
                tracing::warn!(error = %e, "shard sync failed; retrying later");
                self.stats.errors += 1;
                self.next_sync = now + BACKOFF_MAX;
                self.next_renew = now + BACKOFF_MIN;
            }
        }
        if now >= self.next_checkpoint {
            self.commit()?;
        }
        let expired = self
            .decoder
            .expire(self.now_ms(), self.config.chunk_timeout.as_millis() as u64);
        self.dead_letter_incomplete(expired)?;

        let unacked: HashMap<u64, usize> = {
            let b = self.acks.lock();
            b.lanes.iter().map(|(k, l)| (*k, l.recs.len())).collect()
        };
        let due: Vec<String> = self
            .shards
            .reading()
            .filter(|(_, r)| r.next_fetch <= now)
            .filter(|(_, r)| {
                unacked.get(&r.lane).copied().unwrap_or(0) < self.config.max_unacked_records
            })
            .map(|(k, _)| k.to_owned())
            .collect();
        if due.is_empty() || self.stopping {
            let next = self
                .shards
                .reading()
                .map(|(_, r)| r.next_fetch)
                .min()
                .unwrap_or(now + max_wait)
                .min(self.next_sync)
                .min(self.next_checkpoint)
                .min(now + max_wait);
            let wait = if self.stopping {
                max_wait
            } else {
                next.saturating_duration_since(now)
            };
            let wait = wait.max(Duration::from_millis(10)).min(max_wait);
            self.rt.block_on(async { tokio::time::sleep(wait).await });
            return Ok(Vec::new());
        }
        // Acquire iterators, then read every due shard concurrently.
        let mut set = tokio::task::JoinSet::new();
        for id in &due {
            let Some(r) = self.shards.run(id) else {
                continue;
            };
            let client = self.client.clone();
            let stream = self.config.stream_name.clone();
            let (iter, after, from_start) = (r.iterator.clone(), r.after.clone(), r.from_start);
            let id = id.clone();
            set.spawn_on(
                async move {
                    let res = fetch(&client, &stream, &id, iter, after, from_start).await;
                    (id, res)
                },
                self.rt.handle(),
            );
        }
        let results = self.rt.block_on(async {
            let mut v = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok(r) = r {
                    v.push(r);
                }
            }
            v
        });
        let mut out = Vec::new();
        for (id, res) in results {
            match res {
                Ok(f) => {
                    if let Some(b) = self.take_fetch(&id, f)? {
                        out.push(b);
                    }
                }
                Err(FetchError::Throttled) => {
                    self.stats.throttled += 1;
                    self.back_off(&id);
                }
                Err(FetchError::Expired) => {
                    self.stats.iterators_expired += 1;
                    if let Some(r) = self.shards.run_mut(&id) {
                        r.iterator = None;
                    }
                }
                Err(FetchError::Gone) => {
                    tracing::info!(shard = %id, "shard no longer exists; treated as ended");
                    self.mark_ended(&id);
                }
                Err(FetchError::Other(m)) => {
                    tracing::warn!(shard = %id, error = %m, "GetRecords failed; backing off");
                    self.stats.errors += 1;
                    self.back_off(&id);
                }
            }
        }
        Ok(out)
    }

    fn back_off(&mut self, id: &str) {
        if let Some(r) = self.shards.run_mut(id) {
            r.failures = (r.failures + 1).min(8);
            let wait = (BACKOFF_MIN * 2u32.pow(r.failures - 1)).min(BACKOFF_MAX);
            r.next_fetch = Instant::now() + wait;
        }
    }

    fn mark_ended(&mut self, id: &str) {
        if let Some(r) = self.shards.run_mut(id) {
            if let Some(l) = self.acks.lock().lanes.get_mut(&r.lane) {
                l.ended = true;
            }
            r.iterator = None;
            r.next_fetch = Instant::now() + Duration::from_secs(3600 * 24 * 365);
        }
        if self.shards.ended(id) {
            self.stats.shards_ended += 1;
            // Children may start now.
            self.next_sync = Instant::now();
        }
    }

    fn take_fetch(&mut self, id: &str, f: Fetched) -> Result<Option<ShardBatch>, Error> {
        let now_ms = self.now_ms();
        let Some(r) = self.shards.run_mut(id) else {
            return Ok(None);
        };
        r.failures = 0;
        r.millis_behind = f.millis_behind.or(r.millis_behind);
        self.stats.get_records_calls += 1;
        let bytes: u64 = f.records.iter().map(|(_, d)| d.len() as u64).sum();
        self.stats.records += f.records.len() as u64;
        self.stats.bytes += bytes;
        // 5 calls/s, and 2 MB/s: a large batch buys a longer pause.
        let pace = Duration::from_secs(1) / CALLS_PER_SECOND;
        let by_bytes = Duration::from_millis(bytes * 1000 / BYTES_PER_SECOND);
        let idle = if f.records.is_empty() {
            self.config.idle_poll_interval
        } else {
            Duration::ZERO
        };
        r.next_fetch = Instant::now() + pace.max(by_bytes).max(idle);
        if let Some(last) = f.records.last() {
            r.after = Some(last.0.clone());
        }
        r.iterator = f.next.clone();
        let lane = r.lane;
        let first_sequence = f.records.first().map(|r| r.0.clone());
        let mut events: Vec<Event> = Vec::new();
        for (seq, data) in f.records {
            let chunk_id = match peek_header(&data) {
                Ok(Some(h)) => h.split.map(|s| s.id),
                _ => None,
            };
            match self.decoder.decode(&data, now_ms) {
                Ok(mut d) => {
                    match d.kind {
                        RecordKind::Logtide => self.stats.records_logtide += 1,
                        RecordKind::Json => self.stats.records_json += 1,
                        RecordKind::Text => self.stats.records_text += 1,
                    }
                    if self.config.offload.restore {
                        for e in &mut d.events {
                            self.restore(e);
                        }
                    }
                    let mut b = self.acks.lock();
                    let Some(l) = b.lanes.get_mut(&lane) else {
                        continue;
                    };
                    let n = d.events.len();
                    let rec = match &chunk_id {
                        // A chunk is held until its event is done.
                        Some(_) => l.push(seq, 1),
                        None => l.push(seq, n as u32),
                    };
                    let rec = (lane, rec);
                    let refs_of_event: Vec<RecRef> = match &chunk_id {
                        Some(sid) => {
                            let mut refs = self.chunks.remove(sid).unwrap_or_default();
                            refs.push(rec);
                            if n == 0 {
                                self.chunks.insert(sid.clone(), refs);
                                Vec::new()
                            } else {
                                refs
                            }
                        }
                        None => vec![rec],
                    };
                    for mut e in d.events {
                        b.next_unit += 1;
                        let unit = b.next_unit;
                        b.units.insert(unit, refs_of_event.clone());
                        e.set_ack(AckToken::new(self.acks.clone(), unit));
                        events.push(e);
                    }
                    drop(b);
                    self.dead_letter_incomplete(d.incomplete)?;
                }
                Err(err) => {
                    let mut e = Event::new(Timestamp::now());
                    let _ = e.insert(
                        "message",
                        Value::String(String::from_utf8_lossy(&data).into_owned()),
                    );
                    let _ = e.insert("kinesis.shard_id", Value::String(id.to_owned()));
                    let _ = e.insert("kinesis.sequence_number", Value::String(seq.clone()));
                    // On failure the record stays unacknowledged: never checkpointed past.
                    let rec = {
                        let mut b = self.acks.lock();
                        b.lanes.get_mut(&lane).map(|l| l.push(seq, 1))
                    };
                    self.dead.event(&e, &format!("undecodable: {err}"))?;
                    self.stats.dead_letters_undecodable += 1;
                    tracing::warn!(shard = %id, error = %err, "undecodable record dead-lettered");
                    if let Some(rec) = rec {
                        self.acks.lock().release(&[(lane, rec)]);
                    }
                }
            }
        }
        self.stats.events += events.len() as u64;
        if f.next.is_none() {
            tracing::info!(shard = %id, "shard closed and read to its end");
            self.mark_ended(id);
        }
        Ok(first_sequence.map(|first_sequence| ShardBatch {
            shard_id: id.to_owned(),
            first_sequence,
            events,
        }))
    }

    fn dead_letter_incomplete(&mut self, list: Vec<Incomplete>) -> Result<(), Error> {
        for i in list {
            self.dead.incomplete(&i)?;
            self.stats.dead_letters_incomplete += 1;
            tracing::warn!(split_id = %i.id, received = i.received, count = i.count, reason = i.reason, "split event dead-lettered");
            if let Some(refs) = self.chunks.remove(&i.id) {
                self.acks.lock().release(&refs);
            }
        }
        Ok(())
    }

    /// Writes, for every shard, the checkpoint after the last record whose events were
    /// all acknowledged (and every record before it); `SHARD_END` for a closed shard
    /// acknowledged to its end.
    pub fn commit(&mut self) -> Result<(), Error> {
        self.next_checkpoint = Instant::now() + self.config.checkpoint_interval;
        let mut updates: Vec<(u64, String, String)> = Vec::new();
        {
            let mut b = self.acks.lock();
            for (lane_id, l) in b.lanes.iter_mut() {
                let mut last = None;
                while l.recs.front().is_some_and(|r| r.1 == 0) {
                    if let Some((seq, _)) = l.recs.pop_front() {
                        last = Some(seq);
                        l.base += 1;
                    }
                }
                if l.ended && l.recs.is_empty() {
                    updates.push((*lane_id, l.shard.clone(), SHARD_END.to_owned()));
                } else if let Some(seq) = last {
                    updates.push((*lane_id, l.shard.clone(), seq));
                }
            }
        }
        let mut finished = Vec::new();
        match &mut self.store {
            Store::File(f) => {
                for (lane, shard, cp) in &updates {
                    f.set(shard, cp);
                    if cp == SHARD_END {
                        finished.push((*lane, shard.clone()));
                    }
                }
                f.flush()?;
            }
            Store::Leases(t) => {
                for (lane, shard, cp) in &updates {
                    let ok = self.rt.block_on(t.checkpoint(shard, cp))?;
                    if !ok {
                        self.stats.leases_lost += 1;
                        tracing::warn!(%shard, "lease lost before checkpoint; another worker goes on from its checkpoint");
                        finished.push((*lane, shard.clone()));
                        continue;
                    }
                    if cp == SHARD_END {
                        finished.push((*lane, shard.clone()));
                    }
                }
            }
        }
        self.stats.checkpoints += updates.len() as u64;
        for (lane, shard) in finished {
            self.acks.lock().lanes.remove(&lane);
            self.shards.stop_reading(&shard);
            if updates.iter().any(|u| u.1 == shard && u.2 == SHARD_END) {
                self.shards.checkpointed(&shard, SHARD_END);
                if let Store::Leases(t) = &mut self.store {
                    // A finished lease needs no owner.
                    self.rt.block_on(t.release(&shard))?;
                }
            }
        }
        Ok(())
    }

    /// Stops reading: [`Consumer::poll`] returns nothing from now on. Call before the
    /// sinks' final flush.
    pub fn stop_fetching(&mut self) {
        self.stopping = true;
    }

    /// Writes the final checkpoints and releases the leases (graceful hand-off). Events
    /// not yet acknowledged are read again by whoever reads the shard next.
    pub fn shutdown(mut self) -> Result<ConsumerStats, Error> {
        self.stopping = true;
        self.commit()?;
        if let Store::Leases(t) = &mut self.store {
            let held: Vec<String> = t.held().map(str::to_owned).collect();
            for k in held {
                self.rt.block_on(t.release(&k))?;
            }
        }
        Ok(self.stats())
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "logtide".into());
    format!("{host}-{}", std::process::id())
}

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let req = client.list_shards();
        let req = match &token {
            Some(t) => req.next_token(t),
            None => req.stream_name(stream),
        };
        let res = req.send().await.map_err(|e| Error::Kinesis {
            message: format!("ListShards on {stream}: {}", sdk_msg(&e)),
            source: Some(Box::new(e)),
        })?;
        for s in res.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            out.insert(s.shard_id().to_owned(), parents);
        }
        match res.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Fetched {
    records: Vec<(String, Vec<u8>)>,
    next: Option<String>,
    millis_behind: Option<u64>,
}

#[derive(Debug)]
enum FetchError {
    Throttled,
    Expired,
    Gone,
    Other(String),
}

async fn fetch(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
    iterator: Option<String>,
    after: Option<String>,
    from_start: bool,
) -> Result<Fetched, FetchError> {
    let iterator = match iterator {
        Some(i) => i,
        None => {
            let req = client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard);
            let req = match &after {
                Some(seq) => req
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(seq),
                None if from_start => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                None => req.shard_iterator_type(ShardIteratorType::Latest),
            };
            match req.send().await {
                Ok(o) => match o.shard_iterator() {
                    Some(i) => i.to_owned(),
                    None => return Err(FetchError::Gone),
                },
                Err(e) => {
                    return Err(match e.as_service_error() {
                        Some(s) if s.is_provisioned_throughput_exceeded_exception() => {
                            FetchError::Throttled
                        }
                        Some(s) if s.is_resource_not_found_exception() => FetchError::Gone,
                        _ => FetchError::Other(format!("GetShardIterator: {}", sdk_msg(&e))),
                    })
                }
            }
        }
    };
    match client
        .get_records()
        .shard_iterator(iterator)
        .limit(10_000)
        .send()
        .await
    {
        Ok(o) => Ok(Fetched {
            records: o
                .records()
                .iter()
                .map(|r| (r.sequence_number().to_owned(), r.data().as_ref().to_vec()))
                .collect(),
            next: o.next_shard_iterator().map(str::to_owned),
            millis_behind: o.millis_behind_latest().and_then(|m| u64::try_from(m).ok()),
        }),
        Err(e) => Err(match e.as_service_error() {
            Some(s) if s.is_provisioned_throughput_exceeded_exception() => FetchError::Throttled,
            Some(s) if s.is_expired_iterator_exception() => FetchError::Expired,
            Some(s) if s.is_resource_not_found_exception() => FetchError::Gone,
            _ => FetchError::Other(format!("GetRecords: {}", sdk_msg(&e))),
        }),
    }
}
