//! The consumer's shard bookkeeping, without I/O: which shards exist and how they
//! descend from each other, which were read to their end, which are being read, and from
//! that which shards to read next and which leases to take.
//!
//! [`Shards`] is fed facts as the consumer learns them: the listing of the stream
//! (ListShards), checkpoints read from the store or written, a shard read to its end
//! (GetRecords returned no next iterator, or the shard is gone), a shard starting or
//! stopping being read here. It answers questions: which of the shards this worker may
//! read are to start now and where ([`Shards::to_start`]), which leases are missing
//! ([`Shards::missing_leases`]) and which may be taken ([`Shards::leasable`]), which
//! shards being read are no longer held ([`Shards::unheld`]). The consumer does the calls
//! to Kinesis and DynamoDB and passes what it holds (the lease table as of its last scan,
//! the leases this worker holds) to the questions that need it.
//!
//! # Lineage
//!
//! After resharding, a closed shard's records continue in its children: a split gives one
//! parent two children, a merge gives two parents (`ParentShardId` and
//! `AdjacentParentShardId`) one child. A child is read only once every parent is done,
//! so that the records of one partition key keep their order. A parent is done when it:
//!
//! - was read to its end here ([`Shards::ended`]), or
//! - has the checkpoint `SHARD_END` (read and acknowledged to its end, here or by another
//!   worker, [`Shards::checkpointed`]), or
//! - is no longer listed: its records are past the stream's retention, nothing is left to
//!   read. Before taking a child's lease, a parent that still has a lease counts as
//!   listed.
//!
//! A child without a checkpoint is read from its oldest record when any of its parents is
//! known (listed, ended or finished); only a shard whose parents are all unknown starts
//! at the configured `start_position`.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::checkpoint::SHARD_END;
use crate::consumer::StartPosition;
use crate::lease::Lease;

/// The checkpoint that reads a shard from its oldest record.
const TRIM_HORIZON: &str = "TRIM_HORIZON";
/// The checkpoint that reads only the records written from now on.
const LATEST: &str = "LATEST";

/// The shards of one stream as one worker knows them, with the read state `Run` the
/// caller keeps for each shard it reads.
#[derive(Debug)]
pub(crate) struct Shards<Run> {
    /// Where a shard without a checkpoint and without known parents starts.
    start: StartPosition,
    /// The last listing: every shard with its parents.
    listed: BTreeMap<String, Vec<String>>,
    /// Shards read to their end here.
    ended: HashSet<String>,
    /// Shards whose checkpoint is `SHARD_END`.
    finished: HashSet<String>,
    /// Shards being read here.
    reading: BTreeMap<String, Run>,
}

/// A shard to start reading, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// The shard.
    pub(crate) shard: String,
    /// Its checkpoint as the store has it, if any.
    pub(crate) checkpoint: Option<String>,
    /// Read after this sequence number; when `None`, see `from_start`.
    pub(crate) after: Option<String>,
    /// Without `after`: from the oldest record (`TRIM_HORIZON`), else only records
    /// written from now on (`LATEST`).
    pub(crate) from_start: bool,
}

/// A lease to create in the lease table for a listed shard that has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NewLease<'a> {
    /// The shard (`leaseKey`).
    pub(crate) shard: &'a str,
    /// Its parents (`parentShardId`).
    pub(crate) parents: &'a [String],
    /// The first checkpoint: `TRIM_HORIZON` for a child of a known shard, else the
    /// configured start position.
    pub(crate) checkpoint: &'static str,
}

impl<Run> Shards<Run> {
    /// Knows nothing yet; shards without a checkpoint and without known parents start at
    /// `start`.
    pub(crate) fn new(start: StartPosition) -> Self {
        Shards {
            start,
            listed: BTreeMap::new(),
            ended: HashSet::new(),
            finished: HashSet::new(),
            reading: BTreeMap::new(),
        }
    }

    /// Replaces the listing by ListShards' answer: every shard with its parents (none,
    /// one, or two after a merge). Shards missing from it are past retention.
    pub(crate) fn set_listing(&mut self, listing: impl IntoIterator<Item = (String, Vec<String>)>) {
        self.listed = listing.into_iter().collect();
    }

    /// A checkpoint of `shard`, read from the store or written: `SHARD_END` makes the
    /// shard finished for good (its children may be read); other values are not kept.
    pub(crate) fn checkpointed(&mut self, shard: &str, checkpoint: &str) {
        if checkpoint == SHARD_END {
            self.finished.insert(shard.to_owned());
        }
    }

    /// `shard` was read to its end here (GetRecords returned no next iterator, or the
    /// shard is gone): its children may be read. Returns whether this is news.
    pub(crate) fn ended(&mut self, shard: &str) -> bool {
        self.ended.insert(shard.to_owned())
    }

    /// `shard` is being read here, with the caller's read state `run`.
    pub(crate) fn start_reading(&mut self, shard: String, run: Run) {
        self.reading.insert(shard, run);
    }

    /// `shard` is no longer read here (its lease was lost, or it is finished); returns
    /// its read state.
    pub(crate) fn stop_reading(&mut self, shard: &str) -> Option<Run> {
        self.reading.remove(shard)
    }

    /// The shards being read here with their read states, by shard id.
    pub(crate) fn reading(&self) -> impl Iterator<Item = (&str, &Run)> {
        self.reading.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// The read state of `shard`, when it is being read here.
    pub(crate) fn run(&self, shard: &str) -> Option<&Run> {
        self.reading.get(shard)
    }

    /// The read state of `shard`, when it is being read here.
    pub(crate) fn run_mut(&mut self, shard: &str) -> Option<&mut Run> {
        self.reading.get_mut(shard)
    }

    /// The listed shards, by shard id.
    pub(crate) fn listed(&self) -> impl Iterator<Item = &str> {
        self.listed.keys().map(String::as_str)
    }

    /// Of `candidates`, the shards this worker may read with their checkpoints (every
    /// listed shard with a local checkpoint file; the leases it holds with a lease
    /// table), those to start reading now, by shard id (Kinesis numbers shards in the
    /// order they are created, so parents come before their children): not read here
    /// already, not finished (checkpoint `SHARD_END`), every parent done.
    pub(crate) fn to_start<'a>(
        &self,
        candidates: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Vec<Start> {
        let mut out: Vec<Start> = candidates
            .into_iter()
            .filter(|(id, _)| !self.reading.contains_key(*id))
            .filter_map(|(id, checkpoint)| {
                let parents = self.listed.get(id).map(Vec::as_slice).unwrap_or_default();
                if !parents
                    .iter()
                    .all(|p| self.done(p) || !self.listed.contains_key(p))
                {
                    return None;
                }
                let (after, from_start) = match checkpoint {
                    Some(SHARD_END) => return None,
                    Some(TRIM_HORIZON) => (None, true),
                    Some(LATEST) => (None, false),
                    Some(seq) => (Some(seq.to_owned()), false),
                    None => (
                        None,
                        self.start == StartPosition::TrimHorizon
                            || parents
                                .iter()
                                .any(|p| self.done(p) || self.listed.contains_key(p)),
                    ),
                };
                Some(Start {
                    shard: id.to_owned(),
                    checkpoint: checkpoint.map(str::to_owned),
                    after,
                    from_start,
                })
            })
            .collect();
        out.sort_by(|a, b| a.shard.cmp(&b.shard));
        out
    }

    /// The listed shards without a lease in `leases` (the table as of its last scan),
    /// by shard id, with the lease to create for each.
    pub(crate) fn missing_leases(&self, leases: &HashMap<String, Lease>) -> Vec<NewLease<'_>> {
        let start = match self.start {
            StartPosition::TrimHorizon => TRIM_HORIZON,
            StartPosition::Latest => LATEST,
        };
        self.listed
            .iter()
            .filter(|(id, _)| !leases.contains_key(*id))
            .map(|(id, parents)| {
                let known_parent = parents
                    .iter()
                    .any(|p| self.listed.contains_key(p) || leases.contains_key(p));
                NewLease {
                    shard: id,
                    parents,
                    checkpoint: if known_parent { TRIM_HORIZON } else { start },
                }
            })
            .collect()
    }

    /// The leases of `leases` (the table as of its last scan) this worker may take: not
    /// finished, and every parent named by the lease done, or neither listed nor leased.
    /// Whether one is free, expired or worth stealing is the lease table's decision.
    pub(crate) fn leasable(&self, leases: &HashMap<String, Lease>) -> HashSet<String> {
        leases
            .values()
            .filter(|l| !l.is_finished())
            .filter(|l| {
                l.parents.iter().all(|p| {
                    self.done(p) || !(self.listed.contains_key(p) || leases.contains_key(p))
                })
            })
            .map(|l| l.key.clone())
            .collect()
    }

    /// The shards being read here that `holds` says this worker no longer holds a lease
    /// for: to stop reading.
    pub(crate) fn unheld(&self, holds: impl Fn(&str) -> bool) -> Vec<String> {
        self.reading.keys().filter(|k| !holds(k)).cloned().collect()
    }

    /// Whether `shard` was read to its end here or has the checkpoint `SHARD_END`.
    fn done(&self, shard: &str) -> bool {
        self.finished.contains(shard) || self.ended.contains(shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&str; 0] = [];
    const SEQ: &str = "49590338271490256608559692538361571095921575989136588898";

    /// A listing: each shard with its parents.
    fn listing(shards: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        shards
            .iter()
            .map(|(id, parents)| {
                let parents = parents.iter().map(|p| (*p).to_owned()).collect();
                ((*id).to_owned(), parents)
            })
            .collect()
    }

    fn shards(start: StartPosition, list: &[(&str, &[&str])]) -> Shards<()> {
        let mut s = Shards::new(start);
        s.set_listing(listing(list));
        s
    }

    /// What a worker with a local checkpoint file starts: every listed shard is its to
    /// read, with the checkpoints of `checkpoints`.
    fn file_starts(s: &Shards<()>, checkpoints: &[(&str, &str)]) -> Vec<Start> {
        let cp = |id: &str| checkpoints.iter().find(|c| c.0 == id).map(|c| c.1);
        s.to_start(s.listed().map(|id| (id, cp(id))))
    }

    /// What a worker with a lease table starts: the leases it holds, with their
    /// checkpoints in the table.
    fn lease_starts(s: &Shards<()>, held: &[&str], leases: &HashMap<String, Lease>) -> Vec<Start> {
        s.to_start(
            held.iter()
                .map(|id| (*id, leases.get(*id).map(|l| l.checkpoint.as_str()))),
        )
    }

    fn ids(starts: &[Start]) -> Vec<&str> {
        starts.iter().map(|s| s.shard.as_str()).collect()
    }

    /// Starts reading what is to start, as the consumer does.
    fn start_all(s: &mut Shards<()>, starts: Vec<Start>) {
        for st in starts {
            s.start_reading(st.shard, ());
        }
    }

    fn lease(key: &str, owner: Option<&str>, checkpoint: &str, parents: &[&str]) -> Lease {
        Lease {
            key: key.to_owned(),
            owner: owner.map(str::to_owned),
            counter: 1,
            checkpoint: checkpoint.to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn table(leases: &[Lease]) -> HashMap<String, Lease> {
        leases.iter().map(|l| (l.key.clone(), l.clone())).collect()
    }

    fn leasable(s: &Shards<()>, leases: &HashMap<String, Lease>) -> Vec<String> {
        let mut v: Vec<String> = s.leasable(leases).into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn after_a_split_both_children_wait_for_the_parent_then_read_from_their_oldest_record() {
        let mut s = shards(
            StartPosition::Latest,
            &[
                ("shard-0", &[]),
                ("shard-1", &["shard-0"]),
                ("shard-2", &["shard-0"]),
            ],
        );
        let first = file_starts(&s, &[]);
        assert_eq!(
            first,
            [Start {
                shard: "shard-0".into(),
                checkpoint: None,
                after: None,
                from_start: false,
            }],
            "only the parent, at start_position (latest)"
        );
        start_all(&mut s, first);
        assert_eq!(ids(&file_starts(&s, &[])), NONE, "the parent is being read");

        assert!(s.ended("shard-0"));
        assert!(!s.ended("shard-0"), "ended once");
        let children = file_starts(&s, &[]);
        assert_eq!(ids(&children), ["shard-1", "shard-2"]);
        assert!(
            children.iter().all(|c| c.after.is_none() && c.from_start),
            "children of a known shard read from their oldest record: {children:?}"
        );
    }

    #[test]
    fn a_merged_child_waits_for_both_parents() {
        let mut s = shards(
            StartPosition::TrimHorizon,
            &[
                ("shard-0", &[]),
                ("shard-1", &[]),
                ("shard-2", &["shard-0", "shard-1"]),
            ],
        );
        let first = file_starts(&s, &[]);
        assert_eq!(ids(&first), ["shard-0", "shard-1"]);
        start_all(&mut s, first);

        assert!(s.ended("shard-0"));
        assert_eq!(ids(&file_starts(&s, &[])), NONE, "shard-1 is not done");
        // The other parent finished by another worker (or before a restart) counts too.
        s.checkpointed("shard-1", SEQ);
        assert_eq!(
            ids(&file_starts(&s, &[])),
            NONE,
            "a sequence number is not the end"
        );
        s.checkpointed("shard-1", SHARD_END);
        assert_eq!(ids(&file_starts(&s, &[])), ["shard-2"]);
    }

    #[test]
    fn a_shard_end_checkpoint_is_never_read_again_and_frees_the_children() {
        let cps = [("shard-0", SHARD_END)];
        let mut s = shards(
            StartPosition::Latest,
            &[("shard-0", &[]), ("shard-1", &["shard-0"])],
        );
        // The consumer records the store's checkpoints before asking.
        for (id, cp) in cps {
            s.checkpointed(id, cp);
        }
        let starts = file_starts(&s, &cps);
        assert_eq!(ids(&starts), ["shard-1"], "the finished parent is not read");
        assert!(starts[0].from_start, "{starts:?}");

        // A held lease at SHARD_END is not read either, whatever else is known.
        let t = Shards::<()>::new(StartPosition::Latest);
        assert_eq!(t.to_start([("shard-9", Some(SHARD_END))]), []);
    }

    #[test]
    fn shards_past_retention_no_longer_hold_their_children_back() {
        let mut s = shards(
            StartPosition::Latest,
            &[("shard-0", &[]), ("shard-1", &["shard-0"])],
        );
        let first = file_starts(&s, &[]);
        assert_eq!(ids(&first), ["shard-0"]);
        start_all(&mut s, first);
        assert_eq!(ids(&file_starts(&s, &[])), NONE, "waits for shard-0");

        // shard-0 expired: its records are gone, nothing is left to wait for.
        s.set_listing(listing(&[("shard-1", &["shard-0"])]));
        let starts = file_starts(&s, &[]);
        assert_eq!(ids(&starts), ["shard-1"]);
        assert!(
            !starts[0].from_start,
            "parents all unknown: start_position (latest) applies: {starts:?}"
        );

        // A parent known to be finished, though no longer listed, still makes it a child.
        s.checkpointed("shard-0", SHARD_END);
        assert!(file_starts(&s, &[])[0].from_start);

        // With a lease table: the lease of such a shard may be taken, and it is created
        // at start_position.
        let s = shards(StartPosition::Latest, &[("shard-1", &["shard-0"])]);
        let leases = table(&[lease("shard-1", None, LATEST, &["shard-0"])]);
        assert_eq!(leasable(&s, &leases), ["shard-1"]);
        assert_eq!(
            s.missing_leases(&HashMap::new()),
            [NewLease {
                shard: "shard-1",
                parents: &["shard-0".to_owned()],
                checkpoint: LATEST,
            }]
        );
    }

    #[test]
    fn reading_resumes_from_the_checkpoint() {
        let s = shards(
            StartPosition::Latest,
            &[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[]), ("e", &[])],
        );
        let cps = [
            ("a", SEQ),
            ("b", TRIM_HORIZON),
            ("c", LATEST),
            ("d", SHARD_END),
        ];
        let at: Vec<_> = file_starts(&s, &cps)
            .into_iter()
            .map(|s| (s.shard, s.checkpoint, s.after, s.from_start))
            .collect();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            at,
            [
                ("a".into(), some(SEQ), some(SEQ), false),
                ("b".into(), some(TRIM_HORIZON), None, true),
                ("c".into(), some(LATEST), None, false),
                ("e".into(), None, None, false),
            ]
        );
        // Held leases come in any order; shards start by id.
        assert_eq!(ids(&s.to_start([("e", None), ("a", None)])), ["a", "e"]);

        let s = shards(StartPosition::TrimHorizon, &[("e", &[])]);
        assert!(
            file_starts(&s, &[])[0].from_start,
            "start_position trim_horizon"
        );
    }

    #[test]
    fn missing_leases_of_children_start_at_their_oldest_record() {
        let s = shards(
            StartPosition::Latest,
            &[
                ("shard-0", &[]),
                ("shard-1", &["shard-0"]),
                ("shard-2", &["shard-0"]),
                ("shard-4", &["shard-3"]),
            ],
        );
        let leases = table(&[
            lease("shard-0", Some("other"), LATEST, &[]),
            // No longer listed, known by its lease.
            lease("shard-3", None, SHARD_END, &[]),
        ]);
        let missing: Vec<_> = s
            .missing_leases(&leases)
            .iter()
            .map(|l| (l.shard, l.parents.to_vec(), l.checkpoint))
            .collect();
        assert_eq!(
            missing,
            [
                ("shard-1", vec!["shard-0".to_owned()], TRIM_HORIZON),
                ("shard-2", vec!["shard-0".to_owned()], TRIM_HORIZON),
                ("shard-4", vec!["shard-3".to_owned()], TRIM_HORIZON),
            ]
        );
        let fresh = shards(StartPosition::Latest, &[("shard-0", &[])]);
        assert_eq!(fresh.missing_leases(&HashMap::new())[0].checkpoint, LATEST);
    }

    #[test]
    fn only_leases_whose_parents_are_done_may_be_taken() {
        let mut s = shards(
            StartPosition::Latest,
            &[
                ("shard-0", &[]),
                ("shard-1", &["shard-0"]),
                ("shard-2", &["shard-0"]),
            ],
        );
        let mut leases = table(&[
            lease("shard-0", Some("other"), SEQ, &[]),
            lease("shard-1", None, TRIM_HORIZON, &["shard-0"]),
            lease("shard-2", None, TRIM_HORIZON, &["shard-0"]),
        ]);
        assert_eq!(
            leasable(&s, &leases),
            ["shard-0"],
            "the children wait for their parent, whoever holds it"
        );
        // Ended here (not yet checkpointed) is enough.
        s.ended("shard-0");
        assert_eq!(leasable(&s, &leases), ["shard-0", "shard-1", "shard-2"]);

        // Finished by whoever held it: the children may be taken, the parent not.
        let mut s = shards(
            StartPosition::Latest,
            &[
                ("shard-0", &[]),
                ("shard-1", &["shard-0"]),
                ("shard-2", &["shard-0"]),
            ],
        );
        leases.insert("shard-0".into(), lease("shard-0", None, SHARD_END, &[]));
        for l in leases.values() {
            s.checkpointed(&l.key, &l.checkpoint);
        }
        assert_eq!(leasable(&s, &leases), ["shard-1", "shard-2"]);

        // A parent only leased (no longer listed, not finished) or only listed (its lease
        // not created yet) holds its children back.
        let s = shards(
            StartPosition::Latest,
            &[("shard-5", &[]), ("shard-7", &["shard-5", "shard-6"])],
        );
        let leases = table(&[
            lease("shard-6", Some("other"), SEQ, &[]),
            lease("shard-7", None, TRIM_HORIZON, &["shard-5", "shard-6"]),
            lease("shard-8", None, TRIM_HORIZON, &["shard-6"]),
            lease("shard-9", None, TRIM_HORIZON, &["shard-5"]),
        ]);
        assert_eq!(leasable(&s, &leases), ["shard-6"]);
    }

    #[test]
    fn only_held_leases_are_read() {
        let mut s = shards(StartPosition::Latest, &[("shard-0", &[]), ("shard-1", &[])]);
        let leases = table(&[
            lease("shard-0", Some("me"), SEQ, &[]),
            lease("shard-1", Some("other"), TRIM_HORIZON, &[]),
        ]);
        let starts = lease_starts(&s, &["shard-0"], &leases);
        assert_eq!(ids(&starts), ["shard-0"], "shard-1 is another worker's");
        assert_eq!(starts[0].after.as_deref(), Some(SEQ));
        start_all(&mut s, starts);
        assert_eq!(s.unheld(|k| k == "shard-0"), NONE);
        assert_eq!(
            ids(&lease_starts(&s, &["shard-0"], &leases)),
            NONE,
            "read already"
        );

        // The lease goes to another worker: stop reading; taken back: read again.
        assert_eq!(s.unheld(|_| false), ["shard-0"]);
        assert!(s.stop_reading("shard-0").is_some());
        assert_eq!(ids(&lease_starts(&s, &["shard-0"], &leases)), ["shard-0"]);
    }

    #[test]
    fn read_states_follow_start_and_stop() {
        let mut s: Shards<u32> = Shards::new(StartPosition::TrimHorizon);
        s.set_listing(listing(&[("b", &[]), ("a", &[])]));
        for st in s.to_start(s.listed().map(|id| (id, None))) {
            s.start_reading(st.shard, 0);
        }
        if let Some(r) = s.run_mut("b") {
            *r = 7;
        }
        assert_eq!(s.run("b"), Some(&7));
        assert_eq!(s.reading().collect::<Vec<_>>(), [("a", &0), ("b", &7)]);
        assert_eq!(s.stop_reading("b"), Some(7));
        assert_eq!(s.stop_reading("b"), None);
        assert_eq!(s.run("b"), None);
        assert_eq!(s.reading().count(), 1);
    }
}
