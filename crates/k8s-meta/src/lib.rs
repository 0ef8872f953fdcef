//! Kubernetes metadata for container logs.
//!
//! A log shipper on a Kubernetes node reads the files kubelet and the container runtime
//! write, and each event should say which pod, namespace and container it came from. This
//! crate is where that metadata comes from. Today it holds the log path matcher; the pod
//! metadata cache (a watch on the API server) and the enrichment of events from it come
//! later.
//!
//! - [`match_log_path`] reads a log file's path, with no file system access, and returns
//!   a [`LogPathInfo`]: pod, namespace, container, container id, pod uid and restart
//!   count, each where the path's layout carries it, and the [`LogPathLayout`] matched.
//!   It returns `None` for a path in no known layout. The layouts are summarised below;
//!   [`match_log_path`] documents them and the matching policy in full.
//!
//! | path (any prefix before the layout directory) | gives |
//! |---|---|
//! | `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` | pod, namespace, container, container id |
//! | `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log[.<YYYYMMDD-HHMMSS>]` | pod, namespace, container, pod uid, restart count |
//! | `/var/lib/docker/containers/<id>/<id>-json.log[.<k>]` | container id |
//! | `/var/lib/kubelet/pods/<uid>/volumes/<plugin>/<volume>/…/<file>` | pod uid |
//!
//! Names are validated as Kubernetes validates them, container ids must be 64 lowercase
//! hex digits, and compressed rotated files (`.gz`) do not match.
//!
//! # Example
//!
//! ```
//! use logtide_k8s_meta::{match_log_path, LogPathLayout};
//!
//! let id = "0069869de9adf97f574c62029aeba65d1ecd85a2a112e87fbc28afe4dec2b843";
//! let path = format!("/var/log/containers/web-0_prod_nginx-{id}.log");
//! let info = match_log_path(&path).expect("a kubelet symlink");
//! assert_eq!(info.layout, LogPathLayout::ContainerLink);
//! assert_eq!(info.pod.as_deref(), Some("web-0"));
//! assert_eq!(info.container_id.as_deref(), Some(id));
//!
//! let uid = "005f3b90-4b9d-12f8-acf0-31020a840133";
//! let info = match_log_path(format!("/var/log/pods/prod_web-0_{uid}/nginx/2.log")).unwrap();
//! assert_eq!(
//!     serde_json::to_string(&info).unwrap(),
//!     format!(
//!         r#"{{"pod":"web-0","namespace":"prod","container":"nginx","container_id":null,"pod_uid":"{uid}","restart_count":"2"}}"#
//!     )
//! );
//!
//! // Not a container log, or a malformed one: no match.
//! assert!(match_log_path("/var/log/messages").is_none());
//! assert!(match_log_path("/var/lib/docker/containers/01234567/89abcdef-json.log").is_none());
//! ```

mod path;

pub use crate::path::{match_log_path, LogPathInfo, LogPathLayout};
