//! Integration tests of logtide-k8s-meta: the enricher against a Kubernetes API served by
//! kmock, on real log files.

mod kmock;
