//! Test support for logtide: real local services started by the test harness.
//!
//! - [`MotoServer`]: `moto_server` (`pip install 'moto[server]'`), an AWS mock that
//!   enforces Kinesis' request limits.
//! - [`KinesisMock`]: kinesis-mock (`npm install kinesis-local`), which answers per-record
//!   failures and supports UpdateMaxRecordSize.
//! - [`FaultProxy`]: an HTTP proxy on loopback in front of either, answering throttling
//!   errors, 500s and connection resets, or failing some records of a PutRecords request,
//!   as its plan says.
//! - [`Kmock`]: kmock (`pip install kmock`), a Kubernetes API emulator serving fixed
//!   objects, for the Kubernetes metadata tests.
//! - [`S3Tool`]: buckets and objects (gunzipped NDJSON lines) and DynamoDB tables read
//!   back with boto3.
//! - [`NoidaDb`] (`pip install noida-db`, the Elasticsearch 8 API) and [`OsmemServer`]
//!   (`pip install osmem-server`, the OpenSearch API), both as a [`SearchServer`];
//!   [`SearchTool`] reads them back over plain HTTP; [`BulkProxy`] answers some `_bulk`
//!   items (or whole requests) as throttled.
//! - [`KinesisTool`]: stream chores (create, read back every record) done with boto3, a
//!   real client, so that tests do not check logtide with logtide.
//!
//! Every service listens on a free 127.0.0.1 port and is killed when dropped. A missing
//! service is a test failure with the command that installs it, never a silent pass.
//! Where kinesis-mock was installed is read from `LOGTIDE_TEST_SERVICES` (the directory
//! holding `node_modules`; default `$HOME/.cache/logtide-test-services`).
//!
//! ```no_run
//! use logtide_testkit::{KinesisTool, MotoServer};
//!
//! let moto = MotoServer::start();
//! let tool = KinesisTool::new(&moto.endpoint());
//! tool.create_stream("logs", 2);
//! let records = tool.read_all("logs");
//! assert!(records.is_empty());
//! ```

mod http;
mod kmock;
mod proxy;
mod rng;
mod s3tool;
mod search;
mod service;
mod tool;

pub use kmock::Kmock;
pub use proxy::{Fault, FaultProxy, ProxyLog};
pub use rng::Rng;
pub use s3tool::{ObjectLine, S3Tool};
pub use search::{
    BulkFault, BulkProxy, BulkProxyLog, NoidaDb, OsmemServer, SearchKind, SearchServer, SearchTool,
};
pub use service::{free_port, test_services_dir, wait_for_port, KinesisMock, MotoServer, Service};
pub use tool::{KinesisTool, StreamRecord};

/// Fake credentials and region for a process that talks to a local service.
pub const AWS_ENV: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];
