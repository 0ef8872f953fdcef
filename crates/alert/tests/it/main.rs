//! Integration tests of logtide-alert: each rule type on event streams with known
//! answers, elastalert rule files as they are, the shared conformance cases, a rules
//! directory reloaded on change, and delivery to a real HTTP server.

mod conformance;
mod deliver;
mod dir;
mod elastalert;
mod engine;
