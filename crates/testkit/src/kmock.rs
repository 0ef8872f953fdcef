//! kmock, a Kubernetes API emulator (`pip install kmock`), serving fixed objects.

use std::path::Path;
use std::process::Command;

use crate::service::{free_port, Service};

/// kmock serving a set of Kubernetes objects over HTTP on a free loopback port. Objects
/// created, changed or deleted through its API are seen by watches. kmock ignores label
/// and field selectors, wants `metadata.resourceVersion` on every object, and answers a
/// list of namespaces with a 500.
#[derive(Debug)]
pub struct Kmock(Service);

impl Kmock {
    /// Serves the objects of `objects` (a JSON list of objects with apiVersion, kind and
    /// metadata; kinds Pod, Namespace, ReplicaSet, Job, Deployment). Panics, naming how
    /// to install kmock, when it cannot start.
    pub fn start(objects: &Path) -> Kmock {
        let python = std::env::var("LOGTIDE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let install =
            format!("{python} -m pip install 'kmock>=0.8,<0.9' (scripts/test installs it)");
        let probe = Command::new(&python).args(["-c", "import kmock"]).output();
        assert!(
            probe.is_ok_and(|p| p.status.success()),
            "kmock is not installed for {python}; install it: {install}"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kmock_server.py");
        let port = free_port();
        let mut cmd = Command::new(&python);
        cmd.arg(script).arg(objects).arg(port.to_string());
        Kmock(Service::start("kmock", cmd, port, &install))
    }

    /// A kubeconfig that points at this server (no credentials), written to `path`.
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n\
             clusters:\n- name: kmock\n  cluster:\n    server: {}\n\
             contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n\
             users:\n- name: tester\n  user: {{}}\n",
            self.endpoint()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }
}

impl std::ops::Deref for Kmock {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}
