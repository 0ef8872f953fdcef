//! The workspace's tests in one binary: the binaries end to end against real local
//! services (`files`, `metrics`, `relay`: each runs this build's executable, see `bin`),
//! and the checks over the whole workspace (`layers`).

mod bin;
mod files;
mod layers;
mod metrics;
mod relay;
mod support;

/// The binaries' end-to-end tests run one at a time, each holding this for its whole run:
/// many of them time what the agent reports (readiness, ages of unacknowledged events,
/// rotation storms at a fixed rate), and two heavy ones side by side on a small machine
/// make those timings lie. The workspace checks (`layers`) run beside them.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
