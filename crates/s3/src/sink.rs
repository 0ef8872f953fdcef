//! Uploads of finished objects: PutObject or multipart, retried with backoff.

use std::collections::VecDeque;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use backon::{BackoffBuilder, ExponentialBuilder};
use logtide_event::{AckToken, Event};

use crate::archive::{Archive, Object};
use crate::config::S3Config;
use crate::{CallError, Error};

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Attempts per upload in one call; the object is kept for the next call after that.
const ATTEMPTS: u32 = 6;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters of an [`S3Sink`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Stats {
    /// Objects stored.
    pub objects: u64,
    /// Events in stored objects (acknowledged).
    pub events: u64,
    /// Compressed bytes stored.
    pub bytes: u64,
    /// Objects stored with a multipart upload.
    pub multipart: u64,
    /// Failed attempts (retried).
    pub retries: u64,
    /// Among `retries`, attempts throttled (503 SlowDown, 429).
    pub retried_throttled: u64,
    /// Among `retries`, attempts answered with another server error (5xx).
    pub retried_server: u64,
    /// Among `retries`, attempts that failed in the network (refused, reset, unreadable
    /// answer).
    pub retried_network: u64,
    /// Among `retries`, attempts that ran past the attempt timeout (or could not connect
    /// in time).
    pub retried_timeout: u64,
    /// Among `retries`, attempts refused for a reason that needs an operator (access
    /// denied, no such bucket).
    pub retried_denied: u64,
}

impl S3Stats {
    /// The attempts sent again, by reason (the `reason` label of
    /// `logtide_output_retries_total`).
    pub fn retries_by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("throttled", self.retried_throttled),
            ("network", self.retried_network),
            ("timeout", self.retried_timeout),
            ("server", self.retried_server),
            ("denied", self.retried_denied),
        ]
    }
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Throttled,
    Server,
    Network,
    Timeout,
    Denied,
}

/// A failed call: why, and the error.
type Failed = (Failure, CallError);

fn classify<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Failure {
    match e {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Network,
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code() {
                Some(
                    "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded",
                ) => Failure::Throttled,
                _ if status == 429 => Failure::Throttled,
                _ if status >= 500 => Failure::Server,
                _ => Failure::Denied,
            }
        }
        _ => Failure::Denied,
    }
}

/// Why an SDK error happened, and the error.
fn failed<E>(call: impl Into<String>, e: SdkError<E>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let why = classify(&e);
    let error = CallError {
        call: call.into(),
        message: msg(&e),
        source: Some(Box::new(e)),
    };
    (why, error)
}

/// The S3 archive sink: an [`Archive`] and its uploads. Like logtide's other sinks it
/// owns a small single-threaded tokio runtime, so its methods block. Events are
/// acknowledged only after their object was stored; a failed upload keeps the object
/// (and its tokens) for the next call.
pub struct S3Sink {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    bucket: String,
    part_bytes: usize,
    archive: Archive,
    pending: VecDeque<Object>,
    stats: S3Stats,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Sink")
            .field("bucket", &self.bucket)
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn msg<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> String {
    match e.as_service_error() {
        Some(s) if s.code().is_some() => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        _ => {
            let mut m = format!("{e:?}");
            m.truncate(1500);
            m
        }
    }
}

impl S3Sink {
    /// Validates `config` and sets up the client (credentials from the default chain; path
    /// style addressing with an `endpoint`). Does not contact S3.
    pub fn connect(config: &S3Config) -> Result<S3Sink, Error> {
        let archive = Archive::new(config)?;
        let (rt, sdk) = logtide_aws::connect(&logtide_aws::Options {
            region: config.region.as_deref(),
            endpoint: config.endpoint.as_deref(),
            // Retried here, with the object kept between calls.
            own_retries: Some(logtide_aws::Timeouts {
                connect: CONNECT_TIMEOUT,
                attempt: config.attempt_timeout,
            }),
        })?;
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.endpoint.is_some())
            .build();
        Ok(S3Sink {
            rt,
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket: config.bucket.clone(),
            part_bytes: config.multipart_part_bytes as usize,
            archive,
            pending: VecDeque::new(),
            stats: S3Stats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &S3Stats {
        &self.stats
    }

    /// Adds a batch of `shard` whose first record is `first_sequence`, and uploads the
    /// objects that reached their size.
    pub fn write(
        &mut self,
        shard: &str,
        first_sequence: &str,
        events: Vec<Event>,
    ) -> Result<(), Error> {
        let done = self.archive.add(shard, first_sequence, events);
        self.pending.extend(done);
        self.upload_pending()
    }

    /// Uploads objects that reached `max_age` (and any left by a failed upload).
    pub fn tick(&mut self) -> Result<(), Error> {
        let due = self.archive.take_due();
        self.pending.extend(due);
        self.upload_pending()
    }

    /// Uploads every open object.
    pub fn flush(&mut self) -> Result<(), Error> {
        let all = self.archive.take_all();
        self.pending.extend(all);
        self.upload_pending()
    }

    /// Objects closed (full or due) and not yet stored: an upload is under way or failed
    /// and is tried again at the next call.
    pub fn unstored_objects(&self) -> usize {
        self.pending.len()
    }

    /// When the next object becomes due for [`S3Sink::tick`].
    pub fn next_due(&self) -> Option<std::time::Instant> {
        self.archive.next_due()
    }

    fn upload_pending(&mut self) -> Result<(), Error> {
        while let Some(o) = self.pending.front() {
            let (key, body) = (o.key.clone(), o.body.clone());
            self.upload(&key, body)?;
            if let Some(o) = self.pending.pop_front() {
                self.stats.objects += 1;
                self.stats.events += o.events;
                self.stats.bytes += o.body.len() as u64;
                tracing::debug!(key = %o.key, events = o.events, bytes = o.body.len(), "object stored");
                AckToken::accept_all(o.tokens);
            }
        }
        Ok(())
    }

    fn upload(&mut self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(BACKOFF_MIN)
            .with_max_delay(BACKOFF_MAX)
            .with_jitter()
            .without_max_times()
            .build();
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            let res = if body.len() > self.part_bytes {
                self.rt.block_on(multipart(
                    &self.client,
                    &self.bucket,
                    key,
                    &body,
                    self.part_bytes,
                ))
            } else {
                self.rt
                    .block_on(put(&self.client, &self.bucket, key, body.clone()))
            };
            match res {
                Ok(()) => {
                    if body.len() > self.part_bytes {
                        self.stats.multipart += 1;
                    }
                    return Ok(());
                }
                Err((why, e)) => {
                    tracing::warn!(%key, attempt, error = %e, "s3 upload failed");
                    last_error = Some(e);
                    let s = &mut self.stats;
                    s.retries += 1;
                    match why {
                        Failure::Throttled => s.retried_throttled += 1,
                        Failure::Server => s.retried_server += 1,
                        Failure::Network => s.retried_network += 1,
                        Failure::Timeout => s.retried_timeout += 1,
                        Failure::Denied => s.retried_denied += 1,
                    }
                    if attempt < ATTEMPTS {
                        let wait = backoff.next().unwrap_or(BACKOFF_MAX);
                        self.rt.block_on(async { tokio::time::sleep(wait).await });
                    }
                }
            }
        }
        Err(Error::Upload {
            key: key.to_owned(),
            attempts: ATTEMPTS,
            last_error: last_error.expect("at least one attempt was made"),
        })
    }
}

async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), Failed> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/gzip")
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("PutObject", e))
}

async fn multipart(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    part_bytes: usize,
) -> Result<(), Failed> {
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/gzip")
        .send()
        .await
        .map_err(|e| failed("CreateMultipartUpload", e))?;
    let id = created
        .upload_id()
        .ok_or((
            Failure::Server,
            CallError {
                call: "CreateMultipartUpload".into(),
                message: "no upload id in the answer".into(),
                source: None,
            },
        ))?
        .to_owned();
    let res = async {
        let mut parts = Vec::new();
        for (i, chunk) in body.chunks(part_bytes).enumerate() {
            let n = i as i32 + 1;
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| failed(format!("UploadPart {n}"), e))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    // The SDK sends a checksum with each part; completing repeats it.
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                    .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
                    .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
                    .part_number(n)
                    .build(),
            );
        }
        let nparts = parts.len();
        let done = client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = done {
            // The upload may be complete even though its answer was lost or could not be
            // read (some S3-compatible stores answer with another XML root): an object of
            // this key with exactly this length and part count is this upload.
            let head = client.head_object().bucket(bucket).key(key).send().await;
            let suffix = format!("-{nparts}");
            let stored = head.as_ref().is_ok_and(|h| {
                h.content_length() == Some(body.len() as i64)
                    && h.e_tag()
                        .is_some_and(|t| t.trim_matches('"').ends_with(&suffix))
            });
            if !stored {
                return Err(failed("CompleteMultipartUpload", e));
            }
            tracing::debug!(%key, "multipart upload completed (checked with HeadObject)");
        }
        Ok::<(), Failed>(())
    }
    .await;
    if res.is_err() {
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await;
    }
    res
}
