//! Acknowledgements from sinks back to the source that produced an event.

use std::fmt;
use std::sync::Arc;

/// What became of an event, reported by whoever held its [`AckToken`] last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckOutcome {
    /// The destination accepted the event; the source may move past it.
    Accepted,
    /// The event was deliberately discarded for `reason` (and counted by the discarder);
    /// the source may move past it.
    Discarded {
        /// A short, stable reason such as `oversize` or `dead_letter`.
        reason: &'static str,
    },
    /// The token was dropped without a decision (a sink shut down or failed): the event is
    /// not done, and the source must not move past it.
    Abandoned,
}

impl AckOutcome {
    /// Whether the source may consider the event done.
    pub fn is_done(self) -> bool {
        !matches!(self, AckOutcome::Abandoned)
    }
}

/// The receiving end of acknowledgements, implemented by sources (the tailer).
///
/// Acknowledgements may arrive out of order and from any thread.
pub trait Acknowledge: Send + Sync + 'static {
    /// Records the outcome of the event the source numbered `id`.
    fn acknowledge(&self, id: u64, outcome: AckOutcome);

    /// Records the same outcome for several events at once (one lock instead of one per
    /// event, for sources that lock).
    fn acknowledge_many(&self, ids: &[u64], outcome: AckOutcome) {
        for &id in ids {
            self.acknowledge(id, outcome);
        }
    }
}

/// Travels with an event so that the sink can report back when it is done with it.
///
/// Consuming the token with [`AckToken::accept`] or [`AckToken::discard`] reports the
/// outcome; dropping it reports [`AckOutcome::Abandoned`], so a lost token can hold a
/// source's offset back but never advance it.
pub struct AckToken {
    target: Arc<dyn Acknowledge>,
    id: u64,
    reported: bool,
}

impl AckToken {
    /// A token that reports event `id` to `target`.
    pub fn new(target: Arc<dyn Acknowledge>, id: u64) -> Self {
        AckToken {
            target,
            id,
            reported: false,
        }
    }

    /// The source's number for the event.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Reports that the destination accepted the event.
    pub fn accept(self) {
        self.report(AckOutcome::Accepted);
    }

    /// Reports that the event was discarded on purpose, for `reason`.
    pub fn discard(self, reason: &'static str) {
        self.report(AckOutcome::Discarded { reason });
    }

    /// Reports that the destination accepted every event of `tokens`, with one call per
    /// run of tokens that go to the same source.
    pub fn accept_all(tokens: impl IntoIterator<Item = AckToken>) {
        let mut ids: Vec<u64> = Vec::new();
        let mut target: Option<Arc<dyn Acknowledge>> = None;
        for mut t in tokens {
            t.reported = true;
            if target
                .as_ref()
                .is_some_and(|cur| !Arc::ptr_eq(cur, &t.target))
            {
                if let Some(cur) = target.take() {
                    cur.acknowledge_many(&ids, AckOutcome::Accepted);
                }
                ids.clear();
            }
            if target.is_none() {
                target = Some(t.target.clone());
            }
            ids.push(t.id);
        }
        if let Some(cur) = target {
            cur.acknowledge_many(&ids, AckOutcome::Accepted);
        }
    }

    fn report(mut self, outcome: AckOutcome) {
        self.reported = true;
        self.target.acknowledge(self.id, outcome);
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.reported {
            self.target.acknowledge(self.id, AckOutcome::Abandoned);
        }
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<(u64, AckOutcome)>>);

    impl Acknowledge for Log {
        fn acknowledge(&self, id: u64, outcome: AckOutcome) {
            self.0.lock().unwrap().push((id, outcome));
        }
    }

    #[test]
    fn accept_all_reports_each_token_once_grouped_by_target() {
        let a = Arc::new(Log::default());
        let b = Arc::new(Log::default());
        let ta: Arc<dyn Acknowledge> = a.clone();
        let tb: Arc<dyn Acknowledge> = b.clone();
        let tokens = vec![
            AckToken::new(ta.clone(), 1),
            AckToken::new(ta.clone(), 2),
            AckToken::new(tb, 10),
            AckToken::new(ta, 3),
        ];
        AckToken::accept_all(tokens);
        let got_a: Vec<u64> =
            a.0.lock()
                .unwrap()
                .iter()
                .map(|(id, o)| {
                    assert_eq!(*o, AckOutcome::Accepted);
                    *id
                })
                .collect();
        assert_eq!(got_a, [1, 2, 3]);
        assert_eq!(*b.0.lock().unwrap(), [(10, AckOutcome::Accepted)]);
    }

    #[test]
    fn each_token_reports_exactly_once() {
        let log = Arc::new(Log::default());
        let target: Arc<dyn Acknowledge> = log.clone();
        let a = AckToken::new(target.clone(), 1);
        let b = AckToken::new(target.clone(), 2);
        let c = AckToken::new(target, 3);
        assert_eq!(c.id(), 3);
        c.discard("oversize");
        drop(b);
        a.accept();
        let got = log.0.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                (3, AckOutcome::Discarded { reason: "oversize" }),
                (2, AckOutcome::Abandoned),
                (1, AckOutcome::Accepted),
            ]
        );
        assert!(got[0].1.is_done() && !got[1].1.is_done() && got[2].1.is_done());
    }
}
