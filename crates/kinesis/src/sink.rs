//! The PutRecords sink: a blocking front over the AWS SDK for threads that are not async.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use logtide_event::{Event, Timestamp};
use serde_json::Value;

use crate::config::{KinesisConfig, MaxRecordBytes, PartitionKey};
use crate::deadletter::DeadLetters;
use crate::decode::Decoder;
use crate::key::partition_keys;
#[cfg(feature = "offload")]
use crate::objects::Store;
#[cfg(feature = "offload")]
use crate::objects::{retry_wait, OBJECT_ATTEMPT_TIMEOUT};
#[cfg(feature = "offload")]
use crate::offload::OffloadTarget;
use crate::pack::{Offload, Packer, Record, DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT};
use crate::schedule::{Outcome, Rejected, Schedule};
use crate::sdk::runtime_and_sdk_with;
#[cfg(feature = "offload")]
use crate::sdk::sdk_config;
use crate::Error;

/// First wait after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two attempts while Kinesis fails.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Attempts at writing an offloaded event to S3 before it goes to the dead-letter file
/// (about 11 s of waiting in all): a store that is away must not hold every other log.
#[cfg(feature = "offload")]
const OFFLOAD_ATTEMPTS: u32 = 6;

/// Counters of a [`Sink`], for the host's telemetry. Every event handed to the sink ends
/// in exactly one of `events`, `dead_letters_oversize`, `dead_letters_rejected`,
/// `dead_letters_offload` (a truncated, split or offloaded event is also counted in
/// `events`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Events accepted by Kinesis.
    pub events: u64,
    /// Records accepted by Kinesis.
    pub records: u64,
    /// Bytes (data plus partition key) of the accepted records.
    pub bytes: u64,
    /// PutRecords requests sent.
    pub requests: u64,
    /// Records that failed on their own (throttled, internal failure) and were sent again.
    pub records_retried: u64,
    /// Records and requests sent again because Kinesis throttled them (records refused
    /// with `ProvisionedThroughputExceededException` inside a successful call, requests
    /// refused as a whole).
    pub retried_throttled: u64,
    /// Records refused on their own for another passing reason (internal failure) inside
    /// a successful call, and requests cut in halves to find a record refused for its
    /// content, sent again.
    pub retried_refused_record: u64,
    /// Requests sent again after a network failure (connection refused or reset,
    /// unreadable answer).
    pub retried_network: u64,
    /// Requests sent again after an attempt ran past `attempt_timeout` (or the connection
    /// could not be opened in time).
    pub retried_timeout: u64,
    /// Requests sent again after a server error (5xx).
    pub retried_server: u64,
    /// Requests sent again after a refusal that needs an operator (access denied, stream
    /// not found).
    pub retried_denied: u64,
    /// Requests refused as a whole with a throttling error.
    pub requests_throttled: u64,
    /// Requests that failed with a server error (5xx).
    pub requests_server_errors: u64,
    /// Requests that failed in the network: connection, timeout, unreadable response.
    pub requests_network_errors: u64,
    /// Among `requests_network_errors`, attempts that ran past `attempt_timeout`.
    pub requests_timed_out: u64,
    /// Requests refused for a reason that needs an operator (access denied, stream not
    /// found, KMS): retried with backoff until fixed.
    pub requests_denied: u64,
    /// Requests refused for their content; halved to find the refused record.
    pub requests_refused: u64,
    /// Events larger than a record, split into chunks.
    pub events_split: u64,
    /// Events larger than a record, truncated.
    pub events_truncated: u64,
    /// Records accepted ahead of an earlier record of their partition key that failed in
    /// the same request (only without aggregation, where a key's records share requests).
    pub records_reordered: u64,
    /// Events larger than a record, written whole to S3 (their head went to Kinesis).
    pub events_offloaded: u64,
    /// Bytes of the objects written to S3 for offloaded events.
    pub offload_bytes: u64,
    /// S3 writes of offloaded events sent again after a failure that may pass.
    pub offload_retries: u64,
    /// Events written to the dead-letter file because their S3 object could not be
    /// written (`oversize: offload`).
    pub dead_letters_offload: u64,
    /// Events written to the dead-letter file because they were too large for a record
    /// (`oversize: dead_letter`, or `truncate` when even the head does not fit).
    pub dead_letters_oversize: u64,
    /// Events written to the dead-letter file because Kinesis refused their record.
    pub dead_letters_rejected: u64,
    /// Chunks of a split event not sent because another chunk of it was refused (the
    /// event is in the dead-letter file).
    pub chunks_abandoned: u64,
    /// Events whose partition key field was missing (keyed by their source instead).
    pub partition_key_fallbacks: u64,
    /// Time spent waiting between attempts.
    pub backoff: Duration,
}

impl SinkStats {
    /// The records and requests sent again, by reason (the `reason` label of
    /// `logtide_output_retries_total`).
    pub fn retries_by_reason(&self) -> [(&'static str, u64); 6] {
        [
            ("throttled", self.retried_throttled),
            ("refused_record", self.retried_refused_record),
            ("network", self.retried_network),
            ("timeout", self.retried_timeout),
            ("server", self.retried_server),
            ("denied", self.retried_denied),
        ]
    }
}

/// One batch of events packed into records, on its way to Kinesis. It holds what is not
/// yet accepted: after a [`Sink::put`] error, putting it again continues where it stopped.
#[derive(Debug)]
pub struct Batch {
    records: Vec<Record>,
    schedule: Schedule,
}

impl Batch {
    /// Whether every record was accepted or dead-lettered.
    pub fn is_done(&self) -> bool {
        self.schedule.is_done() && !self.schedule.has_rejected()
    }

    /// Records not yet accepted (nor given up).
    pub fn unsent_records(&self) -> usize {
        self.schedule.unsent()
    }

    /// The batch's records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }
}

/// Why a request failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Throttled,
    Server,
    Network,
    /// An attempt that ran past its timeout (or could not connect in time).
    Timeout,
    Denied,
    Refused,
}

/// Ships events to one Kinesis stream with PutRecords.
///
/// The sink owns a small single-threaded tokio runtime, so its methods block and can be
/// called from plain threads. [`Sink::send`] returns once Kinesis accepted every event or
/// the event was dead-lettered (counted, with its reason); while Kinesis fails it keeps
/// retrying with capped exponential backoff and jitter, so the caller's bounded queue
/// fills and stops the producers. Memory: one batch's records at a time.
pub struct Sink {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_kinesis::Client,
    stream: String,
    rule: PartitionKey,
    packer: Packer,
    #[cfg(feature = "offload")]
    offload: Option<(Store, OffloadTarget)>,
    dead: DeadLetters,
    stats: SinkStats,
    random: std::collections::hash_map::RandomState,
    batches: u64,
    jitter_seed: u64,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("stream", &self.stream)
            .field("packer", &self.packer)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Validates `config`, sets up the AWS client (credentials from the default chain) and
    /// the dead-letter directory, and reads the stream's record limit when
    /// `max_record_bytes` is `auto`. Does not otherwise contact AWS.
    pub fn connect(config: &KinesisConfig) -> Result<Sink, Error> {
        config.validate()?;
        let (rt, sdk) = runtime_and_sdk_with(
            config.region.as_deref(),
            config.endpoint.as_deref(),
            config.attempt_timeout,
        )?;
        let client = aws_sdk_kinesis::Client::new(&sdk);
        let max_record_bytes = match config.max_record_bytes {
            MaxRecordBytes::Bytes(n) => n,
            MaxRecordBytes::FromStream => {
                rt.block_on(stream_record_limit(&client, &config.stream_name))?
            }
        };
        let dead = DeadLetters::open(&config.dead_letter_path)?;
        let random = std::collections::hash_map::RandomState::new();
        let seed = random.hash_one((std::process::id(), Timestamp::now().to_string()));
        let pack = config.pack_config(max_record_bytes);
        #[cfg(feature = "offload")]
        let (packer, offload) = match (&config.offload, config.oversize()) {
            (Some(o), crate::pack::OversizePolicy::Offload) => {
                let region = o.region.as_deref().or(config.region.as_deref());
                let sdk = rt.block_on(sdk_config(
                    region,
                    o.endpoint.as_deref(),
                    OBJECT_ATTEMPT_TIMEOUT,
                ))?;
                let store = Store::new(&sdk, OBJECT_ATTEMPT_TIMEOUT)?;
                (
                    Packer::with_offload(pack, o.target(), seed)?,
                    Some((store, o.target())),
                )
            }
            _ => (Packer::new(pack, seed)?, None),
        };
        // Without S3 calls, `validate` refused `oversize: offload`.
        #[cfg(not(feature = "offload"))]
        let packer = Packer::new(pack, seed)?;
        tracing::info!(
            stream = %config.stream_name,
            max_record_bytes,
            "kinesis sink ready"
        );
        Ok(Sink {
            rt,
            client,
            stream: config.stream_name.clone(),
            rule: config.partition_key.clone(),
            packer,
            #[cfg(feature = "offload")]
            offload,
            dead,
            stats: SinkStats::default(),
            jitter_seed: seed,
            random,
            batches: 0,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// The record limit in force (data plus partition key).
    pub fn max_record_bytes(&self) -> usize {
        self.packer.config().max_record_bytes
    }

    /// Ships `events`, in order per partition key: returns once each was accepted by
    /// Kinesis or dead-lettered. Retries for as long as Kinesis fails; an error means the
    /// dead-letter file could not be written, and nothing was sent.
    pub fn send(&mut self, events: &[Event]) -> Result<(), Error> {
        let mut batch = self.prepare(events)?;
        loop {
            match self.put(&mut batch, None) {
                Ok(()) => return Ok(()),
                // Dead letters of refused records: the batch keeps them; try again.
                Err(e) => {
                    tracing::error!(error = %e, "kinesis sink: retrying");
                    self.sleep(BACKOFF_MAX);
                }
            }
        }
    }

    /// Packs `events` into records. Events too large for a record are split, truncated or
    /// written to the dead-letter file now, as the `oversize` policy says; an error (the
    /// dead-letter file cannot be written) leaves nothing half done but the dead letters
    /// already written.
    pub fn prepare(&mut self, events: &[Event]) -> Result<Batch, Error> {
        self.batches += 1;
        let random = match self.rule {
            PartitionKey::Random => format!("{:016x}", self.random.hash_one(self.batches)),
            _ => String::new(),
        };
        let keys = partition_keys(
            &self.rule,
            events,
            &random,
            &mut self.stats.partition_key_fallbacks,
        );
        let packed = self.packer.pack(events, &keys);
        for &(i, reason) in &packed.dead_letters {
            self.dead.event(&events[i], reason)?;
            self.stats.dead_letters_oversize += 1;
            tracing::warn!(
                reason,
                bytes_limit = self.max_record_bytes(),
                "event too large for a kinesis record: dead-lettered"
            );
        }
        self.stats.events_split += packed.split.len() as u64;
        self.stats.events_truncated += packed.truncated.len() as u64;
        let mut records = packed.records;
        let mut failed = Vec::new();
        for o in &packed.offloads {
            if let Err(message) = self.upload(o) {
                let reason = format!("offload failed: {message}");
                self.dead.event(&events[o.event], &reason)?;
                self.stats.dead_letters_offload += 1;
                tracing::error!(%reason, "an oversize event could not be written to S3: dead-lettered");
                failed.push(o.record);
            }
        }
        if !failed.is_empty() {
            let mut index = 0;
            records.retain(|_| {
                index += 1;
                !failed.contains(&(index - 1))
            });
        }
        // One event per record: a container's records share requests (see Schedule).
        let schedule = Schedule::with_pipelining(&records, !self.packer.config().aggregate);
        Ok(Batch { records, schedule })
    }

    /// Writes one offloaded event to S3, trying again on failures that may pass.
    #[cfg(feature = "offload")]
    fn upload(&mut self, o: &Offload) -> Result<(), String> {
        let Some((store, target)) = &self.offload else {
            return Err("no offload bucket is configured".into());
        };
        let mut attempt = 0;
        loop {
            let put = store.put(&target.bucket, &o.key, o.body.clone());
            match self.rt.block_on(put) {
                Ok(()) => {
                    self.stats.events_offloaded += 1;
                    self.stats.offload_bytes += o.body.len() as u64;
                    return Ok(());
                }
                Err(f) if f.transient && attempt + 1 < OFFLOAD_ATTEMPTS => {
                    attempt += 1;
                    self.stats.offload_retries += 1;
                    tracing::warn!(error = %f.message, attempt, "offload to s3 failed; retrying");
                    self.rt.block_on(tokio::time::sleep(retry_wait(attempt)));
                }
                Err(f) => return Err(f.message),
            }
        }
    }

    /// Without S3 calls there is nothing to offload to (`validate` refuses the policy).
    #[cfg(not(feature = "offload"))]
    fn upload(&mut self, _: &Offload) -> Result<(), String> {
        Err("this build makes no S3 calls (logtide-kinesis feature `offload`)".into())
    }

    /// Sends what `batch` holds that Kinesis has not accepted yet, retrying failures, until
    /// everything is accepted or dead-lettered (`Ok`), or `deadline` passes (an error; the
    /// batch keeps its state, put it again to go on).
    pub fn put(&mut self, batch: &mut Batch, deadline: Option<Instant>) -> Result<(), Error> {
        let mut backoff = self.backoff();
        let mut attempts = 0u64;
        let mut last_error = String::new();
        loop {
            self.dead_letter_rejected(batch)?;
            if batch.schedule.is_done() {
                return Ok(());
            }
            let req = batch.schedule.next_request(&batch.records);
            if req.is_empty() {
                // The schedule is not done but has nothing to send: a bug, reported
                // instead of looping; the batch keeps its records.
                return Err(Error::Unavailable {
                    unsent: batch.schedule.unsent(),
                    attempts,
                    last_error: "no record can be sent though the batch is not done".into(),
                });
            }
            attempts += 1;
            self.stats.requests += 1;
            let result = self.rt.block_on(put_records(
                &self.client,
                &self.stream,
                &batch.records,
                &req,
            ));
            let retry = match result {
                Ok((outcomes, throttled)) => {
                    let mut retried = 0u64;
                    for (&r, o) in req.iter().zip(&outcomes) {
                        match o {
                            Outcome::Accepted => {
                                self.stats.records += 1;
                                self.stats.bytes += batch.records[r].size() as u64;
                            }
                            Outcome::Retry => retried += 1,
                            Outcome::Reject(_) => {}
                        }
                    }
                    self.stats.records_retried += retried;
                    self.stats.retried_throttled += throttled;
                    self.stats.retried_refused_record += retried.saturating_sub(throttled);
                    let reordered = batch.schedule.reordered();
                    self.stats.events += batch.schedule.apply(&req, outcomes);
                    self.stats.records_reordered += batch.schedule.reordered() - reordered;
                    if retried > 0 {
                        last_error = format!("{retried} of {} records throttled", req.len());
                        tracing::debug!(
                            retried,
                            records = req.len(),
                            "kinesis: records failed; retrying them"
                        );
                        true
                    } else {
                        backoff = self.backoff();
                        false
                    }
                }
                Err((failure, message)) => {
                    // Every failed request is sent again: as it was, or cut in halves.
                    let s = &mut self.stats;
                    match failure {
                        Failure::Throttled => {
                            s.requests_throttled += 1;
                            s.retried_throttled += 1;
                        }
                        Failure::Server => {
                            s.requests_server_errors += 1;
                            s.retried_server += 1;
                        }
                        Failure::Network => {
                            s.requests_network_errors += 1;
                            s.retried_network += 1;
                        }
                        Failure::Timeout => {
                            s.requests_network_errors += 1;
                            s.requests_timed_out += 1;
                            s.retried_timeout += 1;
                        }
                        Failure::Denied => {
                            s.requests_denied += 1;
                            s.retried_denied += 1;
                        }
                        Failure::Refused => {
                            s.requests_refused += 1;
                            s.retried_refused_record += 1;
                        }
                    }
                    if failure == Failure::Denied {
                        tracing::error!(error = %message, "kinesis refused the request; retrying until this is fixed");
                    } else {
                        tracing::warn!(error = %message, records = req.len(), "kinesis request failed; retrying");
                    }
                    let refused = (failure == Failure::Refused).then(|| message.clone());
                    batch.schedule.request_failed(&req, refused);
                    last_error = message;
                    failure != Failure::Refused
                }
            };
            if retry {
                let wait = backoff.next().unwrap_or(BACKOFF_MAX);
                if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                    return Err(Error::Unavailable {
                        unsent: batch.schedule.unsent(),
                        attempts,
                        last_error,
                    });
                }
                self.stats.backoff += wait;
                self.sleep(wait);
            }
        }
    }

    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(BACKOFF_MIN)
            .with_max_delay(BACKOFF_MAX)
            .with_factor(2.0)
            .with_jitter()
            .with_jitter_seed(self.jitter_seed ^ self.stats.requests)
            .without_max_times()
            .build()
    }

    fn sleep(&self, d: Duration) {
        // On the runtime, so that its connections are looked after meanwhile.
        self.rt.block_on(async { tokio::time::sleep(d).await });
    }

    /// Writes the events of refused records to the dead-letter file.
    fn dead_letter_rejected(&mut self, batch: &mut Batch) -> Result<(), Error> {
        let mut rejected = batch.schedule.take_rejected();
        while let Some(Rejected { records, reason }) = rejected.first().cloned() {
            let events = events_of(&batch.records[records.clone()]);
            let reason = format!("rejected: {reason}");
            for e in &events {
                if let Err(err) = self.dead.event(e, &reason) {
                    batch.schedule.restore_rejected(rejected);
                    return Err(err);
                }
            }
            tracing::warn!(%reason, events = events.len(), "kinesis refused a record: its events are dead-lettered");
            self.stats.dead_letters_rejected += events.len() as u64;
            self.stats.chunks_abandoned +=
                batch.schedule.dropped(records.clone()).saturating_sub(1) as u64;
            rejected.remove(0);
        }
        Ok(())
    }
}

/// The events a record (or the chunks of one split event) carries, decoded from the
/// record data itself. Data that does not decode (it was built here, so it should) is
/// kept as the message of an event, so that nothing is lost.
fn events_of(records: &[Record]) -> Vec<Event> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for r in records {
        match decoder.decode(&r.data, 0) {
            Ok(d) => out.extend(d.events),
            Err(e) => {
                let mut ev = Event::new(Timestamp::now());
                let _ = ev.insert(
                    "message",
                    Value::String(String::from_utf8_lossy(&r.data).into_owned()),
                );
                let _ = ev.insert("error.message", Value::String(e.to_string()));
                out.push(ev);
            }
        }
    }
    out
}

/// The stream's record limit from DescribeStreamSummary.
async fn stream_record_limit(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<usize, Error> {
    let out = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| Error::Setup {
            message: format!(
                "max_record_bytes: auto needs DescribeStreamSummary of stream {stream}: {}",
                describe_sdk_error(&e)
            ),
            source: Some(Box::new(e)),
        })?;
    let kib = out
        .stream_description_summary()
        .and_then(|s| s.max_record_size_in_kib());
    Ok(match kib {
        Some(k) if k > 0 => (k as usize * 1024).min(MAX_RECORD_BYTES_LIMIT),
        _ => DEFAULT_MAX_RECORD_BYTES,
    })
}

/// One PutRecords call: the outcome of each record and how many of them were throttled,
/// or why the request failed as a whole.
async fn put_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[Record],
    req: &[usize],
) -> Result<(Vec<Outcome>, u64), (Failure, String)> {
    let mut entries = Vec::with_capacity(req.len());
    for &r in req {
        let entry = PutRecordsRequestEntry::builder()
            .data(Blob::new(records[r].data.clone()))
            .partition_key(records[r].partition_key.clone())
            .build()
            .map_err(|e| (Failure::Refused, format!("record {r}: {e}")))?;
        entries.push(entry);
    }
    let out = client
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .map_err(|e| (classify(&e), describe_sdk_error(&e)))?;
    let results = out.records();
    if results.len() != req.len() {
        return Err((
            Failure::Server,
            format!(
                "response holds {} results for {} records",
                results.len(),
                req.len()
            ),
        ));
    }
    let throttled = results
        .iter()
        .filter(|r| r.error_code().is_some_and(throttled_record_error))
        .count() as u64;
    let outcomes = results
        .iter()
        .map(|r| match r.error_code() {
            None => Outcome::Accepted,
            Some(code) if transient_record_error(code) => Outcome::Retry,
            Some(code) => Outcome::Reject(format!(
                "{code}: {}",
                r.error_message().unwrap_or("no message")
            )),
        })
        .collect();
    Ok((outcomes, throttled))
}

/// Per-record error codes that say the shard (or KMS) is over its limits.
fn throttled_record_error(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException" | "KMSThrottlingException" | "ThrottlingException"
    )
}

/// Per-record error codes that pass: Kinesis documents the first two for PutRecords.
fn transient_record_error(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "InternalFailure"
            | "InternalFailureException"
            | "ServiceUnavailable"
            | "KMSThrottlingException"
            | "ThrottlingException"
    )
}

fn classify(e: &SdkError<PutRecordsError, HttpResponse>) -> Failure {
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            match code {
                "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "KMSThrottlingException"
                | "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded" => Failure::Throttled,
                "ValidationException" | "InvalidArgumentException" | "SerializationException" => {
                    Failure::Refused
                }
                "InternalFailure" | "InternalFailureException" | "ServiceUnavailable" => {
                    Failure::Server
                }
                _ if se.raw().status().as_u16() >= 500 => Failure::Server,
                _ if se.raw().status().as_u16() == 429 => Failure::Throttled,
                _ => Failure::Denied,
            }
        }
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Network,
        _ => Failure::Denied,
    }
}

/// An SDK error with its code and message, and the causes below it.
fn describe_sdk_error<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = e {
        return format!(
            "{}: {}",
            se.err().code().unwrap_or("unknown error"),
            se.err().message().unwrap_or("no message")
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
