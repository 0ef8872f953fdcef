//! Which records go into the next PutRecords request, and what a response means for them.
//!
//! Pure bookkeeping, no I/O: the sink asks for a request, sends it, and reports back.
//!
//! Order per partition key. Kinesis keeps the order of the records of one PutRecords
//! request on a shard, but a record may fail while a later one of the same key succeeds.
//! So records are grouped into *units* that may be accepted in any order among themselves
//! (one record, or all the chunks of one split event: the decoder rejoins chunks in any
//! order), and each partition key has at most one unit in flight: the next unit of a key
//! is sent only once every record of the one before was accepted (or dead-lettered). A
//! later record of a key is thus never accepted before an earlier one. With aggregation
//! (the default) a key's events of one batch are usually one record, so this costs
//! nothing.
//!
//! Without aggregation (`format: json`, one event per record) a key has as many records
//! as events, and one unit per request would mean one request per event of a container.
//! Such a schedule is *pipelined*: a key's units go into one request in order, as many as
//! fit. Kinesis stores them in that order; only when one fails (throttled) and a later one
//! of its key in the same request is accepted does the later one land first. That is
//! counted ([`Schedule::reordered`]); the failed record is sent again in the next request,
//! ahead of the key's remaining units.
//!
//! Failures. A failed record is sent again in a later request (only it, not its request).
//! A request refused as a whole for its content (`ValidationException`) is halved until
//! the refused record is alone, and that record's unit is then rejected: it goes to the
//! dead-letter file and no longer holds back its key.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use crate::pack::{Record, MAX_REQUEST_BYTES, MAX_REQUEST_RECORDS};

/// What happened to one record of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted by Kinesis.
    Accepted,
    /// Failed for a passing reason (throttling, internal failure): send again.
    Retry,
    /// Refused for good; the reason goes to the dead-letter file.
    Reject(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    InFlight,
    Accepted,
    Dropped,
}

#[derive(Debug)]
struct Unit {
    records: Range<usize>,
    /// Events the unit carries.
    events: usize,
    key: usize,
    /// Records not yet accepted.
    left: usize,
}

/// A unit given up, for the dead-letter file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// The unit's records.
    pub(crate) records: Range<usize>,
    /// Why.
    pub(crate) reason: String,
}

/// The state of one batch's records.
#[derive(Debug)]
pub(crate) struct Schedule {
    state: Vec<State>,
    unit_of: Vec<usize>,
    units: Vec<Unit>,
    /// Per partition key, its units not yet done, in order; the front one may be in flight.
    queues: Vec<VecDeque<usize>>,
    /// Most records in the next request (halved while isolating a refused record).
    cap: usize,
    open_units: usize,
    /// Units given up and not yet taken by [`Schedule::take_rejected`].
    rejected: Vec<Rejected>,
    /// Several units of a key per request (see the module documentation).
    pipelined: bool,
    /// Records accepted ahead of an earlier record of their key that failed.
    reordered: u64,
}

impl Schedule {
    /// Bookkeeping for `records`, in the packer's order, one unit per key in flight.
    /// Consecutive records carrying the same single event are the chunks of one split
    /// event: one unit.
    #[cfg(test)]
    pub(crate) fn new(records: &[Record]) -> Self {
        Self::with_pipelining(records, false)
    }

    /// Like [`Schedule::new`]; `pipelined` sends several units of a key per request.
    pub(crate) fn with_pipelining(records: &[Record], pipelined: bool) -> Self {
        let mut key_ids: HashMap<&str, usize> = HashMap::new();
        let mut units: Vec<Unit> = Vec::new();
        let mut unit_of = Vec::with_capacity(records.len());
        let mut queues: Vec<VecDeque<usize>> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let same_event = i > 0
                && r.events.len() == 1
                && records[i - 1].events == r.events
                && records[i - 1].partition_key == r.partition_key;
            if same_event {
                if let Some(u) = units.last_mut() {
                    u.records.end = i + 1;
                    u.left += 1;
                }
            } else {
                let next = key_ids.len();
                let key = *key_ids.entry(r.partition_key.as_str()).or_insert(next);
                if key == queues.len() {
                    queues.push(VecDeque::new());
                }
                queues[key].push_back(units.len());
                units.push(Unit {
                    records: i..i + 1,
                    events: r.events.len(),
                    key,
                    left: 1,
                });
            }
            unit_of.push(units.len() - 1);
        }
        Schedule {
            state: vec![State::Pending; records.len()],
            unit_of,
            open_units: units.len(),
            units,
            queues,
            cap: MAX_REQUEST_RECORDS,
            rejected: Vec::new(),
            pipelined,
            reordered: 0,
        }
    }

    /// Whether every record was accepted or given up.
    pub(crate) fn is_done(&self) -> bool {
        self.open_units == 0
    }

    /// Records neither accepted nor given up.
    pub(crate) fn unsent(&self) -> usize {
        self.state
            .iter()
            .filter(|s| matches!(s, State::Pending | State::InFlight))
            .count()
    }

    /// Records accepted ahead of an earlier record of their key (pipelined only).
    pub(crate) fn reordered(&self) -> u64 {
        self.reordered
    }

    /// The records of the next request (indices into the batch's records), within 500
    /// records and 5 MiB: per partition key its first unit, or, pipelined, its units in
    /// order while they fit. A single record larger than the request limit is sent
    /// alone. Empty only when the schedule is done.
    pub(crate) fn next_request(&mut self, records: &[Record]) -> Vec<usize> {
        let mut req = Vec::new();
        let mut bytes = 0;
        // Round by round, each key's next unit (pipelined; else only its first): a busy
        // container does not fill a request alone, and the request spreads over shards.
        let rounds = if self.pipelined { usize::MAX } else { 1 };
        let mut closed = vec![false; self.queues.len()];
        'rounds: for round in 0..rounds {
            let mut any = false;
            for (k, q) in self.queues.iter().enumerate() {
                if closed[k] {
                    continue;
                }
                let Some(&u) = q.get(round) else {
                    closed[k] = true;
                    continue;
                };
                any = true;
                for r in self.units[u].records.clone() {
                    if self.state[r] != State::Pending {
                        continue;
                    }
                    if req.len() == self.cap {
                        break 'rounds;
                    }
                    let size = records[r].size();
                    if !req.is_empty() && bytes + size > MAX_REQUEST_BYTES {
                        // Smaller records of other keys may still fit; none of this
                        // key's later units may go before this one.
                        closed[k] = true;
                        break;
                    }
                    bytes += size;
                    req.push(r);
                }
            }
            if !any {
                break;
            }
        }
        for &r in &req {
            self.state[r] = State::InFlight;
        }
        req
    }

    /// Applies the per-record results of a request that Kinesis answered; returns how many
    /// events became fully accepted (a split event once all its chunks are).
    pub(crate) fn apply(&mut self, req: &[usize], outcomes: Vec<Outcome>) -> u64 {
        let mut events = 0;
        // Keys with a record that failed earlier in this request.
        let mut failed_keys: Vec<usize> = Vec::new();
        for (&r, outcome) in req.iter().zip(outcomes) {
            if self.state[r] != State::InFlight {
                continue;
            }
            let key = self.units[self.unit_of[r]].key;
            match outcome {
                Outcome::Accepted => {
                    if failed_keys.contains(&key) {
                        self.reordered += 1;
                    }
                    self.state[r] = State::Accepted;
                    let u = self.unit_of[r];
                    self.units[u].left -= 1;
                    if self.units[u].left == 0 {
                        events += self.units[u].events as u64;
                        self.finish(u);
                    }
                }
                Outcome::Retry => {
                    self.state[r] = State::Pending;
                    if !failed_keys.contains(&key) {
                        failed_keys.push(key);
                    }
                }
                Outcome::Reject(reason) => self.reject(self.unit_of[r], reason),
            }
        }
        events
    }

    /// Puts a request that failed as a whole back. `refused` carries the reason when
    /// Kinesis refused the request for its content: then the request is halved until the
    /// refused record is alone, and that record's unit is rejected.
    pub(crate) fn request_failed(&mut self, req: &[usize], refused: Option<String>) {
        match refused {
            Some(reason) if req.len() == 1 => {
                self.reject(self.unit_of[req[0]], reason);
                self.cap = MAX_REQUEST_RECORDS;
            }
            Some(_) => {
                self.cap = (req.len() / 2).max(1);
                self.put_back(req);
            }
            None => self.put_back(req),
        }
    }

    fn put_back(&mut self, req: &[usize]) {
        for &r in req {
            if self.state[r] == State::InFlight {
                self.state[r] = State::Pending;
            }
        }
    }

    fn reject(&mut self, u: usize, reason: String) {
        let records = self.units[u].records.clone();
        for r in records.clone() {
            if self.state[r] != State::Accepted {
                self.state[r] = State::Dropped;
            }
        }
        self.rejected.push(Rejected { records, reason });
        self.finish(u);
    }

    fn finish(&mut self, u: usize) {
        let q = &mut self.queues[self.units[u].key];
        debug_assert!(
            self.pipelined || q.front() == Some(&u),
            "only a key's front unit is in flight"
        );
        if let Some(pos) = q.iter().position(|&x| x == u) {
            q.remove(pos);
            self.open_units -= 1;
        }
    }

    /// Units given up since the last call.
    pub(crate) fn take_rejected(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejected)
    }

    /// Gives rejected units back (their dead letters could not be written yet).
    pub(crate) fn restore_rejected(&mut self, mut rejected: Vec<Rejected>) {
        rejected.append(&mut self.rejected);
        self.rejected = rejected;
    }

    /// Whether rejected units wait for their dead letters.
    pub(crate) fn has_rejected(&self) -> bool {
        !self.rejected.is_empty()
    }

    /// Records of `records` that were dropped (not sent) though they were not the ones
    /// refused: the other chunks of a rejected split event.
    pub(crate) fn dropped(&self, records: Range<usize>) -> usize {
        records.filter(|&r| self.state[r] == State::Dropped).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, event: usize, size: usize) -> Record {
        Record {
            partition_key: key.into(),
            data: vec![b'x'; size],
            events: vec![event],
        }
    }

    /// Drives a schedule against a fake service that answers each record with
    /// `answer(record, attempt)`, recording the order in which records were accepted.
    fn drive(records: &[Record], mut answer: impl FnMut(usize, usize) -> Outcome) -> Vec<usize> {
        let mut s = Schedule::new(records);
        let mut attempts = vec![0; records.len()];
        let mut accepted = Vec::new();
        for _ in 0..10_000 {
            if s.is_done() {
                return accepted;
            }
            let req = s.next_request(records);
            assert!(!req.is_empty());
            let mut keys_in_req: Vec<&str> = req
                .iter()
                .map(|&r| records[r].partition_key.as_str())
                .collect();
            keys_in_req.dedup();
            let outcomes: Vec<Outcome> = req
                .iter()
                .map(|&r| {
                    attempts[r] += 1;
                    answer(r, attempts[r])
                })
                .collect();
            for (&r, o) in req.iter().zip(&outcomes) {
                if *o == Outcome::Accepted {
                    accepted.push(r);
                }
            }
            s.apply(&req, outcomes);
        }
        panic!("schedule did not finish");
    }

    /// Per key, the accepted records' events never go backwards.
    fn assert_ordered(records: &[Record], accepted: &[usize]) {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for &r in accepted {
            let k = records[r].partition_key.as_str();
            let e = records[r].events[0];
            if let Some(&prev) = last.get(k) {
                assert!(e >= prev, "key {k}: event {e} accepted after event {prev}");
            }
            last.insert(k, e);
        }
    }

    #[test]
    fn one_unit_per_key_in_flight_and_chunks_share_a_unit() {
        let records = vec![
            rec("a", 0, 10),
            rec("b", 1, 10),
            rec("a", 2, 10),
            rec("a", 3, 10), // chunks of event 3
            rec("a", 3, 10),
            rec("a", 3, 10),
            rec("b", 4, 10),
        ];
        let mut s = Schedule::new(&records);
        assert_eq!(s.next_request(&records), [0, 1]);
        assert_eq!(s.apply(&[0, 1], vec![Outcome::Accepted, Outcome::Retry]), 1);
        assert_eq!(s.next_request(&records), [2, 1]);
        s.apply(&[2, 1], vec![Outcome::Accepted, Outcome::Accepted]);
        assert_eq!(s.next_request(&records), [3, 4, 5, 6]);
        let events = s.apply(
            &[3, 4, 5, 6],
            vec![
                Outcome::Accepted,
                Outcome::Retry,
                Outcome::Accepted,
                Outcome::Accepted,
            ],
        );
        assert_eq!(events, 1, "event 4; not yet event 3, a chunk of it failed");
        assert!(!s.is_done());
        assert_eq!(s.unsent(), 1);
        assert_eq!(s.next_request(&records), [4]);
        assert_eq!(s.apply(&[4], vec![Outcome::Accepted]), 1);
        assert!(s.is_done());
    }

    #[test]
    fn retries_keep_order_per_key() {
        let keys = ["a", "b", "c"];
        let records: Vec<Record> = (0..300).map(|i| rec(keys[i % 3], i, 100)).collect();
        // Every record fails its first two attempts when its index is a multiple of 7,
        // and every third attempt of anything is throttled.
        let accepted = drive(&records, |r, attempt| {
            if (r % 7 == 0 && attempt <= 2) || (r + attempt) % 3 == 0 {
                Outcome::Retry
            } else {
                Outcome::Accepted
            }
        });
        assert_eq!(accepted.len(), 300);
        assert_ordered(&records, &accepted);
    }

    #[test]
    fn requests_stay_within_limits() {
        let records: Vec<Record> = (0..1200)
            .map(|i| rec(&format!("k{i}"), i, if i % 100 == 0 { 900_000 } else { 50 }))
            .collect();
        let mut s = Schedule::new(&records);
        let mut seen = 0;
        while !s.is_done() {
            let req = s.next_request(&records);
            assert!(req.len() <= MAX_REQUEST_RECORDS);
            let bytes: usize = req.iter().map(|&r| records[r].size()).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
            seen += req.len();
            let n = req.len();
            s.apply(&req, vec![Outcome::Accepted; n]);
        }
        assert_eq!(seen, 1200);
        let huge = vec![rec("k", 0, MAX_REQUEST_BYTES + 10), rec("k2", 1, 10)];
        let mut s = Schedule::new(&huge);
        assert_eq!(s.next_request(&huge), [0], "a record over 5 MiB goes alone");
    }

    #[test]
    fn a_rejected_record_does_not_block_its_key() {
        let records = vec![
            rec("a", 0, 10),
            rec("a", 1, 10),
            rec("a", 1, 10),
            rec("a", 2, 10),
        ];
        let mut s = Schedule::new(&records);
        assert_eq!(s.next_request(&records), [0]);
        s.apply(
            &[0],
            vec![Outcome::Reject("InvalidArgumentException: too big".into())],
        );
        assert_eq!(s.next_request(&records), [1, 2]);
        s.apply(
            &[1, 2],
            vec![
                Outcome::Retry,
                Outcome::Reject("KMSDisabledException: x".into()),
            ],
        );
        let rejected = s.take_rejected();
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0].records, 0..1);
        assert_eq!(rejected[1].records, 1..3);
        assert_eq!(s.dropped(1..3), 2, "the other chunk is not sent either");
        assert_eq!(s.next_request(&records), [3]);
        s.apply(&[3], vec![Outcome::Accepted]);
        assert!(s.is_done());
    }

    #[test]
    fn a_refused_request_is_halved_until_the_culprit_is_alone() {
        let records: Vec<Record> = (0..40).map(|i| rec(&format!("k{i}"), i, 10)).collect();
        let bad = 27;
        let mut s = Schedule::new(&records);
        let mut requests = 0;
        let mut accepted = 0;
        while !s.is_done() {
            requests += 1;
            assert!(requests < 100);
            let req = s.next_request(&records);
            if req.contains(&bad) {
                s.request_failed(&req, Some("ValidationException: record too big".into()));
            } else {
                accepted += req.len();
                let n = req.len();
                s.apply(&req, vec![Outcome::Accepted; n]);
            }
        }
        assert_eq!(accepted, 39);
        let rejected = s.take_rejected();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].records, bad..bad + 1);
        assert!(rejected[0].reason.contains("record too big"));
    }

    #[test]
    fn pipelined_keys_fill_requests_in_order_and_count_what_a_failure_reorders() {
        let records: Vec<Record> = (0..1000).map(|i| rec(["a", "b"][i % 2], i, 100)).collect();
        let mut s = Schedule::with_pipelining(&records, true);
        let req = s.next_request(&records);
        assert_eq!(req.len(), MAX_REQUEST_RECORDS, "a request is filled");
        let mut of_a: Vec<usize> = req.iter().copied().filter(|r| r % 2 == 0).collect();
        assert_eq!(of_a.len(), 250, "both keys share it");
        of_a.sort_unstable();
        assert_eq!(
            of_a,
            (0..500).step_by(2).collect::<Vec<_>>(),
            "a key's first records, in order"
        );
        // The third record of key a fails; the records of a after it in the request are
        // accepted ahead of it.
        let outcomes: Vec<Outcome> = req
            .iter()
            .map(|&r| {
                if r == 4 {
                    Outcome::Retry
                } else {
                    Outcome::Accepted
                }
            })
            .collect();
        s.apply(&req, outcomes);
        assert_eq!(s.reordered(), 247);
        let next = s.next_request(&records);
        assert_eq!(
            next.first(),
            Some(&4),
            "the failed record leads its key's next turn"
        );
        let n = next.len();
        s.apply(&next, vec![Outcome::Accepted; n]);
        let last = s.next_request(&records);
        assert_eq!(last.len(), 1);
        s.apply(&last, vec![Outcome::Accepted]);
        assert!(s.is_done());
        assert_eq!(s.reordered(), 247, "nothing more");

        // Without failures nothing is reordered, whatever the retries of other keys.
        let accepted = {
            let mut s = Schedule::with_pipelining(&records, true);
            let mut accepted = Vec::new();
            while !s.is_done() {
                let req = s.next_request(&records);
                let outcomes: Vec<Outcome> = req.iter().map(|_| Outcome::Accepted).collect();
                accepted.extend(&req);
                s.apply(&req, outcomes);
            }
            assert_eq!(s.reordered(), 0);
            accepted
        };
        assert_ordered(&records, &accepted);
    }

    #[test]
    fn a_failed_request_is_sent_again_whole() {
        let records = vec![rec("a", 0, 10), rec("b", 1, 10)];
        let mut s = Schedule::new(&records);
        let req = s.next_request(&records);
        s.request_failed(&req, None);
        assert_eq!(s.unsent(), 2);
        assert_eq!(s.next_request(&records), req);
        assert!(s.take_rejected().is_empty());
    }
}
