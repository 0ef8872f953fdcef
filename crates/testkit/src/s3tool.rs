//! S3 and DynamoDB chores with boto3 (`scripts/s3_tool.py`).

use std::path::Path;
use std::process::Command;

/// One NDJSON line of an object read back from S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLine {
    /// The object's key.
    pub key: String,
    /// The object's (compressed) size.
    pub size: u64,
    /// The line, without its newline.
    pub line: String,
}

/// Runs `scripts/s3_tool.py` against one endpoint (`LOGTIDE_PYTHON` names the
/// interpreter; default `python3`, with boto3 installed).
#[derive(Clone, Debug)]
pub struct S3Tool {
    endpoint: String,
    /// An access key (id, secret) instead of the fake one of [`crate::AWS_ENV`].
    key: Option<(String, String)>,
}

impl S3Tool {
    /// A tool for the service at `endpoint`.
    pub fn new(endpoint: &str) -> S3Tool {
        S3Tool {
            endpoint: endpoint.to_owned(),
            key: None,
        }
    }

    /// The same tool signing with another access key (id, secret).
    pub fn with_key(&self, key: (&str, &str)) -> S3Tool {
        S3Tool {
            endpoint: self.endpoint.clone(),
            key: Some((key.0.to_owned(), key.1.to_owned())),
        }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let python = std::env::var("LOGTIDE_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3_tool.py");
        let out = Command::new(&python)
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .envs(crate::AWS_ENV)
            .envs(self.key.iter().flat_map(|(id, secret)| {
                [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)]
            }))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; install Python 3 with boto3"));
        assert!(
            out.status.success(),
            "s3_tool.py {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Creates an IAM user allowed everything and returns an access key of it (access key
    /// id, secret): three IAM calls, for a [`MotoServer::start_checking_signatures`] that
    /// lets the first calls through unsigned.
    ///
    /// [`MotoServer::start_checking_signatures`]: crate::MotoServer::start_checking_signatures
    pub fn create_iam_user(&self, user: &str) -> (String, String) {
        let out = self.run(&["iam-user", user]);
        let key: serde_json::Value = serde_json::from_slice(&out).expect("iam-user prints JSON");
        let field = |k: &str| key[k].as_str().expect("an access key field").to_owned();
        (field("access_key_id"), field("secret_access_key"))
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.run(&["create-bucket", bucket]);
    }

    /// Every line of every gzip NDJSON object under `prefix`.
    pub fn read_lines(&self, bucket: &str, prefix: &str) -> Vec<ObjectLine> {
        self.run(&["read", bucket, prefix])
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("s3_tool.py printed a bad line: {e}"));
                ObjectLine {
                    key: v["key"].as_str().unwrap_or_default().to_owned(),
                    size: v["size"].as_u64().unwrap_or_default(),
                    line: v["line"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    /// Every object under `prefix` as it is stored (not gunzipped): its key and body.
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        self.run(&["objects", bucket, prefix])
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("s3_tool.py printed a bad line: {e}"));
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("key"), s("body"))
            })
            .collect()
    }

    /// Every item of a DynamoDB table, as DynamoDB JSON.
    pub fn scan_table(&self, table: &str) -> Vec<serde_json::Value> {
        self.run(&["leases", table])
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}
