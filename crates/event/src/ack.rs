//! Acknowledgements from sinks back to the source that produced an event.

use std::fmt;
use std::sync::{Arc, Mutex};

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
/// source's offset back but never advance it. An event that goes to several sinks
/// carries one part of its token to each ([`AckToken::split`]).
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
        let mut tokens: Vec<AckToken> = tokens.into_iter().collect();
        AckToken::accept_all_in_place(&mut tokens);
    }

    /// [`accept_all`](AckToken::accept_all) for tokens that stay where they are, marked
    /// reported: dropping them later reports nothing. A sink that hands its events back
    /// to the thread that made them lets that thread drop the tokens, so the reference
    /// count of their source is only ever changed by one thread (counted by one core's
    /// cache instead of moving between two for every event).
    pub fn accept_all_in_place<'a>(tokens: impl IntoIterator<Item = &'a mut AckToken>) {
        let mut ids: Vec<u64> = Vec::new();
        let mut target: Option<&Arc<dyn Acknowledge>> = None;
        for t in tokens {
            if t.reported {
                continue;
            }
            t.reported = true;
            if let Some(cur) = target.filter(|cur| !Arc::ptr_eq(cur, &t.target)) {
                cur.acknowledge_many(&ids, AckOutcome::Accepted);
                ids.clear();
                target = None;
            }
            target.get_or_insert(&t.target);
            ids.push(t.id);
        }
        if let Some(cur) = target {
            cur.acknowledge_many(&ids, AckOutcome::Accepted);
        }
    }

    /// Splits the token into `N` parts, one for each destination that must take the
    /// event. The event is reported once every part has been, with the worst of their
    /// outcomes: [`Abandoned`](AckOutcome::Abandoned) if any part was abandoned
    /// (dropped), otherwise [`Discarded`](AckOutcome::Discarded) if any part was
    /// discarded (with the reason of the last part discarded), otherwise
    /// [`Accepted`](AckOutcome::Accepted).
    ///
    /// Each part has the event's [`id`](AckToken::id). Splitting into no parts drops the
    /// token, which reports the event abandoned.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use logtide_event::{AckOutcome, AckToken, Acknowledge};
    /// # #[derive(Default)]
    /// # struct Source(Mutex<Vec<(u64, AckOutcome)>>);
    /// # impl Acknowledge for Source {
    /// #     fn acknowledge(&self, id: u64, outcome: AckOutcome) {
    /// #         self.0.lock().unwrap().push((id, outcome));
    /// #     }
    /// # }
    /// let source = Arc::new(Source::default());
    /// let [archive, search] = AckToken::new(source.clone(), 7).split();
    /// archive.accept();
    /// assert!(source.0.lock().unwrap().is_empty(), "the search sink has not reported");
    /// search.discard("dead_letter");
    /// let reported = source.0.lock().unwrap().clone();
    /// assert_eq!(reported, [(7, AckOutcome::Discarded { reason: "dead_letter" })]);
    /// ```
    pub fn split<const N: usize>(self) -> [AckToken; N] {
        let id = self.id;
        let joint: Arc<dyn Acknowledge> = Arc::new(Joint {
            state: Mutex::new(JointState {
                token: Some(self),
                remaining: N,
                outcome: AckOutcome::Accepted,
            }),
        });
        std::array::from_fn(|_| AckToken::new(joint.clone(), id))
    }

    fn report(mut self, outcome: AckOutcome) {
        self.reported = true;
        self.target.acknowledge(self.id, outcome);
    }
}

/// The target of the parts of a split token (see [`AckToken::split`]).
struct Joint {
    state: Mutex<JointState>,
}

struct JointState {
    /// The token split, until every part has reported.
    token: Option<AckToken>,
    /// Parts that have not reported yet.
    remaining: usize,
    /// The worst outcome reported so far.
    outcome: AckOutcome,
}

impl Acknowledge for Joint {
    fn acknowledge(&self, _id: u64, outcome: AckOutcome) {
        let done = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.outcome = match (state.outcome, outcome) {
                (AckOutcome::Abandoned, _) | (_, AckOutcome::Abandoned) => AckOutcome::Abandoned,
                (_, discarded @ AckOutcome::Discarded { .. }) => discarded,
                (worst, AckOutcome::Accepted) => worst,
            };
            state.remaining = state.remaining.saturating_sub(1);
            if state.remaining == 0 {
                state.token.take().map(|token| (token, state.outcome))
            } else {
                None
            }
        };
        // Outside the lock: the source has locks of its own.
        if let Some((token, outcome)) = done {
            token.report(outcome);
        }
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
    fn tokens_accepted_in_place_report_once_and_nothing_when_dropped() {
        let a = Arc::new(Log::default());
        let b = Arc::new(Log::default());
        let ta: Arc<dyn Acknowledge> = a.clone();
        let tb: Arc<dyn Acknowledge> = b.clone();
        let mut tokens = vec![
            AckToken::new(ta.clone(), 1),
            AckToken::new(tb, 10),
            AckToken::new(ta, 2),
        ];
        AckToken::accept_all_in_place(&mut tokens);
        // A second call finds them reported.
        AckToken::accept_all_in_place(&mut tokens);
        drop(tokens);
        let accepted = |ids: &[u64]| {
            ids.iter()
                .map(|&id| (id, AckOutcome::Accepted))
                .collect::<Vec<_>>()
        };
        assert_eq!(*a.0.lock().unwrap(), accepted(&[1, 2]));
        assert_eq!(*b.0.lock().unwrap(), accepted(&[10]));
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

    /// What a sink does with its part of a split token.
    #[derive(Clone, Copy, Debug)]
    enum Do {
        Accept,
        Discard(&'static str),
        Drop,
    }

    fn act(token: AckToken, what: Do) {
        match what {
            Do::Accept => token.accept(),
            Do::Discard(reason) => token.discard(reason),
            Do::Drop => drop(token),
        }
    }

    fn recorder() -> (Arc<Log>, Arc<dyn Acknowledge>) {
        let log = Arc::new(Log::default());
        let target: Arc<dyn Acknowledge> = log.clone();
        (log, target)
    }

    #[test]
    fn a_split_token_reports_the_worst_outcome_once_every_part_did() {
        let discarded = |reason| AckOutcome::Discarded { reason };
        for (first, second, want) in [
            (Do::Accept, Do::Accept, AckOutcome::Accepted),
            (Do::Accept, Do::Discard("b"), discarded("b")),
            (Do::Accept, Do::Drop, AckOutcome::Abandoned),
            (Do::Discard("a"), Do::Accept, discarded("a")),
            (Do::Discard("a"), Do::Discard("b"), discarded("b")),
            (Do::Discard("a"), Do::Drop, AckOutcome::Abandoned),
            (Do::Drop, Do::Accept, AckOutcome::Abandoned),
            (Do::Drop, Do::Discard("b"), AckOutcome::Abandoned),
            (Do::Drop, Do::Drop, AckOutcome::Abandoned),
        ] {
            // Which part reports first does not matter.
            for first_part in [0, 1] {
                let (log, target) = recorder();
                let [p0, p1] = AckToken::new(target, 42).split();
                assert_eq!((p0.id(), p1.id()), (42, 42));
                let (a, b) = if first_part == 0 { (p0, p1) } else { (p1, p0) };
                act(a, first);
                let case = format!("{first:?} then {second:?} (part {first_part} first)");
                assert!(
                    log.0.lock().unwrap().is_empty(),
                    "{case}: one part is not enough"
                );
                act(b, second);
                assert_eq!(*log.0.lock().unwrap(), [(42, want)], "{case}");
            }
        }
    }

    #[test]
    fn a_token_split_in_three_waits_for_the_third() {
        let (log, target) = recorder();
        let [a, b, c] = AckToken::new(target, 1).split();
        a.accept();
        b.discard("oversize");
        assert!(log.0.lock().unwrap().is_empty());
        c.accept();
        assert_eq!(
            *log.0.lock().unwrap(),
            [(1, AckOutcome::Discarded { reason: "oversize" })]
        );
    }

    #[test]
    fn parts_dropped_unreported_abandon_the_event() {
        let (log, target) = recorder();
        let parts: [AckToken; 3] = AckToken::new(target.clone(), 5).split();
        drop(parts);
        let [none]: [AckToken; 1] = AckToken::new(target.clone(), 6).split();
        drop(none);
        let []: [AckToken; 0] = AckToken::new(target.clone(), 7).split();
        let [only] = AckToken::new(target, 8).split();
        only.accept();
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                (5, AckOutcome::Abandoned),
                (6, AckOutcome::Abandoned),
                (7, AckOutcome::Abandoned),
                (8, AckOutcome::Accepted),
            ]
        );
    }
}
