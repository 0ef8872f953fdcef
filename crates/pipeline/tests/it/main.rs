//! logtide-pipeline's integration tests: the documented configuration reference against
//! the configuration structs, the deploy manifests' configurations, the metadata gate,
//! and add_kubernetes_metadata against a Kubernetes API stand-in.

mod config_reference;
mod deploy_manifests;
mod gate;
mod k8s;
