//! Integration tests of logtide-procstat: node metricsets over fixture `/proc` files and
//! over this machine's own, and pod, container and volume metricsets from a kubelet served
//! over HTTPS on loopback and from a cgroup v2 fixture.

mod common;
mod kubernetes;
mod live;
mod node;
