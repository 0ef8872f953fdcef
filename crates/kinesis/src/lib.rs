//! Kinesis for logtide: the PutRecords sink, the record format, packing events within the
//! service's limits, oversize handling, and decoding records back into events.
//!
//! - [`Sink`] ships events to one stream (`output.kinesis`, configured by
//!   [`KinesisConfig`]): a blocking front over the AWS SDK for the agent's plain threads.
//!   [`Sink::send`] returns once every event was accepted by Kinesis or dead-lettered with
//!   its reason; it retries only the records that failed, with capped exponential backoff
//!   and jitter, for as long as Kinesis fails (so the caller's bounded queue stops the
//!   producers), and keeps the order of each partition key across retries: a key's next
//!   record is sent only once the one before it was accepted. [`Sink::prepare`] and
//!   [`Sink::put`] split the same work for callers that want a deadline: a [`Batch`] left
//!   unfinished by an error holds what Kinesis has not accepted yet, and putting it again
//!   goes on from there. [`SinkStats`] counts everything accepted, retried and discarded.
//!   Credentials come from the AWS default chain (environment, profile, web identity,
//!   IMDS); TLS is rustls with ring.
//!
//! The record format is a contract between the sink, the relay and any other consumer;
//! it is versioned and documented in [`format`](mod@format). In short: a record is the byte 0x1E, a
//! one-line JSON header (`{"v":1,"n":3,"comp":"gzip"}`), then NDJSON events, compressed as
//! a whole when the header says so. An event larger than the stream's record limit is cut
//! into chunks whose headers carry the event's id, the chunk's index and the chunk count;
//! the [`Decoder`] joins them again, whatever the order and shard they arrive on.
//!
//! - [`Packer`] turns a batch of events into records: aggregated per partition key,
//!   every record's data plus key within `max_record_bytes` (1 MiB by default, up to
//!   10 MiB), oversize events split, truncated or dead-lettered by [`OversizePolicy`],
//!   never sent as they are. [`request_batches`] groups records into PutRecords requests
//!   (at most 500 records and 5 MiB).
//! - [`Decoder`] turns records into events: de-aggregation, decompression (bounded),
//!   rejoining of chunks with bounded memory and a timeout, and records written by other
//!   producers (a JSON object or text becomes one event).
//! - [`DeadLetters`] keeps what cannot be shipped, with the reason.
//! - [`Consumer`] reads a stream: shard discovery, checkpoints in a local file
//!   ([`FileCheckpoints`]) or a DynamoDB lease table shared by several instances,
//!   GetRecords within the per-shard limits, resharding in order, decoding.
//!
//! # The record-consumer contract
//!
//! - [`Consumer::poll`] hands out [`ShardBatch`]es: the events of one GetRecords call on
//!   one shard, in record order. Every event carries an [`AckToken`](logtide_event::AckToken);
//!   acknowledgements may come back in any order and from any thread.
//! - A shard's checkpoint is the sequence number of the last record such that it and every
//!   record before it on the shard are done: all their events accepted or discarded (a
//!   dropped token holds the checkpoint back). Chunks of a split event are done when the
//!   rejoined event is, whichever shards they came from; a split event whose chunks do not
//!   all arrive within `chunk_timeout` is dead-lettered with the reason and its chunks are
//!   done. An undecodable record is dead-lettered with the reason; records of other
//!   producers (JSON or text) become one event each.
//! - Reading resumes `AFTER_SEQUENCE_NUMBER` the checkpoint, else at `start_position`.
//!   Delivery is at least once: what was read but not checkpointed is read again after a
//!   restart or a lease changing hands.
//! - A child shard is read only after its parents were read to their end (GetRecords
//!   returned no next iterator) here, or checkpointed `SHARD_END` by anyone, so events of
//!   one partition key keep their order across splits and merges.
//! - Per shard: at most 5 GetRecords calls a second and 2 MB a second (a large batch is
//!   followed by a proportionally longer pause); throttling and failures back off
//!   exponentially (200 ms to 5 s); an expired iterator is acquired again after the last
//!   record read.
//! - [`Consumer::stop_fetching`], then the sinks flush, then [`Consumer::shutdown`]:
//!   final checkpoints, and leases released for others to take at once.
//!
//! The lease table layout (the Kinesis Client Library's) and its semantics are described
//! on [`Lease`]: `leaseKey`, `leaseOwner`, `leaseCounter`, `checkpoint`,
//! `checkpointSubSequenceNumber`, `ownerSwitchesSinceCheckpoint`, `parentShardId`.
//!
//! # Examples
//!
//! Shipping events (credentials from the environment, a local endpoint):
//!
//! ```no_run
//! use logtide_event::{Event, Timestamp};
//! use logtide_kinesis::{KinesisConfig, Sink};
//! use serde_json::json;
//!
//! let mut config = KinesisConfig::new("logs");
//! config.region = Some("ap-northeast-1".into());
//! config.endpoint = Some("http://127.0.0.1:5000".into());
//! config.dead_letter_path = "/tmp/logtide-dead-letter".into();
//! let mut sink = Sink::connect(&config)?;
//! let mut event = Event::new(Timestamp::now());
//! event.insert("message", json!("hello"))?;
//! event.insert("container.id", json!("3f1c2e9a7b6d"))?;
//! sink.send(&[event])?;
//! assert_eq!(sink.stats().events, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Packing and decoding, without a service:
//!
//! ```
//! use logtide_event::{Event, Timestamp};
//! use logtide_kinesis::{Decoder, OversizePolicy, PackConfig, Packer};
//! use serde_json::json;
//!
//! let mut big = Event::new(Timestamp::UNIX_EPOCH);
//! big.insert("message", json!("x".repeat(3 << 20)))?;
//! let mut small = Event::new(Timestamp::UNIX_EPOCH);
//! small.insert("message", json!("hello"))?;
//! let events = [small, big];
//! let keys = ["container-a", "container-a"];
//!
//! let mut packer = Packer::new(PackConfig { oversize: OversizePolicy::Split, ..PackConfig::default() }, 7)?;
//! let packed = packer.pack(&events, &keys);
//! assert!(packed.records.iter().all(|r| r.size() <= 1 << 20));
//!
//! let mut decoder = Decoder::default();
//! let mut out = Vec::new();
//! for r in packed.records.iter().rev() {
//!     out.extend(decoder.decode(&r.data, 0)?.events);
//! }
//! assert_eq!(out.len(), 2);
//! assert!(out.iter().any(|e| e.get("message") == Some(&json!("x".repeat(3 << 20)))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "consumer")]
mod checkpoint;
mod config;
#[cfg(feature = "consumer")]
mod consumer;
mod deadletter;
mod decode;
pub mod format;
#[cfg(feature = "sink")]
mod key;
#[cfg(feature = "consumer")]
mod lease;
#[cfg(feature = "offload")]
mod objects;
mod offload;
mod pack;
#[cfg(feature = "sink")]
mod schedule;
#[cfg(any(feature = "sink", feature = "consumer"))]
mod sdk;
#[cfg(feature = "consumer")]
mod shards;
#[cfg(feature = "sink")]
mod sink;

#[cfg(feature = "consumer")]
pub use checkpoint::{FileCheckpoints, CHECKPOINT_FORMAT_VERSION, SHARD_END};
pub use config::{KinesisConfig, MaxRecordBytes, PartitionKey, MIN_RECORD_BYTES};
#[cfg(feature = "consumer")]
pub use consumer::{
    read_checkpoints, CheckpointConfig, Consumer, ConsumerConfig, ConsumerStats, DynamoDbConfig,
    ShardBatch, StartPosition,
};
pub use deadletter::DeadLetters;
pub use decode::{peek_header, Decoded, Decoder, DecoderConfig, Incomplete, RecordKind};
pub use format::{Compression, RecordFormat, FORMAT_VERSION};
#[cfg(feature = "consumer")]
pub use lease::Lease;
pub use offload::{
    object_key, offloaded_reference, parse_reference, OffloadConfig, OffloadTarget, RestoreConfig,
    HEAD_MESSAGE_BYTES, OFFLOADED_FLAG, ORIGINAL_BYTES, ORIGINAL_REF,
};
pub use pack::{
    request_batches, Offload, OversizePolicy, PackConfig, Packed, Packer, Record,
    DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT, MAX_REQUEST_BYTES, MAX_REQUEST_RECORDS,
};
#[cfg(feature = "sink")]
pub use sink::{Batch, Sink, SinkStats};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range; names the key.
    #[error("invalid kinesis configuration: {0}")]
    Config(String),
    /// A record could not be decoded; says what is wrong.
    #[error("undecodable record: {0}")]
    Record(String),
    /// The dead-letter file could not be written. Retryable: nothing was lost, the
    /// events wait in the sink's batch.
    #[error("dead letters: {message}")]
    DeadLetter {
        /// What failed, naming the file.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The AWS client could not be set up (no region, no runtime).
    #[cfg(any(feature = "sink", feature = "consumer"))]
    #[error(transparent)]
    Aws(#[from] logtide_aws::Error),
    /// The stream's limits could not be read.
    #[error("kinesis setup: {message}")]
    Setup {
        /// What failed.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The checkpoint file could not be read or written; names the file.
    #[error("checkpoint: {message}")]
    Checkpoint {
        /// What failed, naming the file.
        message: String,
        /// The cause, when it is another error (I/O, JSON).
        #[source]
        source: Option<BoxError>,
    },
    /// The DynamoDB lease table refused or failed a call. Retryable.
    #[error("lease table: {message}")]
    Lease {
        /// The call and what the service said.
        message: String,
        /// The SDK's error, when the call failed (none when an answer was unusable).
        #[source]
        source: Option<BoxError>,
    },
    /// A Kinesis read call (ListShards, GetShardIterator, GetRecords) failed. Retryable.
    #[error("kinesis: {message}")]
    Kinesis {
        /// The call and what the service said.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },
    /// Kinesis did not accept every record before the caller's deadline. Retryable: the
    /// batch keeps the records not yet accepted; putting it again goes on from there.
    #[error("kinesis unavailable: {unsent} records not yet accepted after {attempts} attempts; last error: {last_error}")]
    Unavailable {
        /// Records not yet accepted.
        unsent: usize,
        /// Requests sent in this call.
        attempts: u64,
        /// What the last failure said.
        last_error: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (the sink keeps what is not yet sent).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::DeadLetter { .. }
                | Error::Unavailable { .. }
                | Error::Lease { .. }
                | Error::Kinesis { .. }
        )
    }
}

/// An error that caused one of this crate's errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
