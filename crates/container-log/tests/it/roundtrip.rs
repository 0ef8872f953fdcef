//! Property: messages split into chunks the way runtimes split them, written as CRI or
//! docker lines and interleaved across containers and streams, come back out of
//! `parse_line` + `Reassembler` exactly as written, in the order they were finished.

use std::collections::{HashMap, VecDeque};

use logtide_container_log::{parse_line, Format, Reassembler, ReassemblerConfig, Stream};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// One message: which container and stream wrote it, and its chunks.
#[derive(Clone, Debug)]
struct Msg {
    key: u8,
    stream: Stream,
    docker: bool,
    chunks: Vec<String>,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        // Chunks: any text without a newline (runtimes split on newlines first).
        proptest::collection::vec("[^\n]{0,40}", 1..5),
    )
        .prop_map(|(key, err, docker, chunks)| Msg {
            key,
            stream: if err { Stream::Stderr } else { Stream::Stdout },
            docker,
            chunks,
        })
}

/// Renders chunk `i` of `m` as one line.
fn render(m: &Msg, i: usize, time: &str) -> Vec<u8> {
    let last = i + 1 == m.chunks.len();
    let chunk = &m.chunks[i];
    if m.docker {
        let log = if last {
            format!("{chunk}\n")
        } else {
            chunk.clone()
        };
        let log = serde_json::to_string(&log).expect("string serializes");
        format!(r#"{{"log":{log},"stream":"{}","time":"{time}"}}"#, m.stream).into_bytes()
    } else {
        let tag = if last { "F" } else { "P" };
        format!("{time} {} {tag} {chunk}", m.stream).into_bytes()
    }
}

/// Interleaves the messages' lines: `schedule` picks which (key, stream) lane writes next;
/// within a lane, messages are written one after the other. Returns the lines and the
/// messages in the order their last chunk is written.
/// A line as written by container `key`.
type KeyedLine = (u8, Vec<u8>);
/// A finished message: container, stream, text.
type Finished = (u8, Stream, String);
/// The chunks a (container, stream) lane still has to write: (message, chunk index).
type Lane = ((u8, Stream), VecDeque<(Msg, usize)>);

fn interleave(msgs: &[Msg], schedule: &[u8]) -> (Vec<KeyedLine>, Vec<Finished>) {
    let mut lanes: Vec<Lane> = Vec::new();
    for m in msgs {
        let lane_key = (m.key, m.stream);
        let idx = match lanes.iter().position(|(k, _)| *k == lane_key) {
            Some(i) => i,
            None => {
                lanes.push((lane_key, VecDeque::new()));
                lanes.len() - 1
            }
        };
        for i in 0..m.chunks.len() {
            lanes[idx].1.push_back((m.clone(), i));
        }
    }
    let mut lines = Vec::new();
    let mut finished = Vec::new();
    let mut step = 0usize;
    let mut n = 0u64;
    loop {
        let live: Vec<usize> = (0..lanes.len())
            .filter(|&i| !lanes[i].1.is_empty())
            .collect();
        if live.is_empty() {
            break;
        }
        let pick = live[usize::from(schedule.get(step).copied().unwrap_or(0)) % live.len()];
        step += 1;
        let Some((m, i)) = lanes[pick].1.pop_front() else {
            break;
        };
        n += 1;
        let time = format!(
            "2024-01-01T00:{:02}:{:02}.{:09}Z",
            n / 3600 % 60,
            n / 60 % 60,
            n
        );
        lines.push((m.key, render(&m, i, &time)));
        if i + 1 == m.chunks.len() {
            finished.push((m.key, m.stream, m.chunks.concat()));
        }
    }
    (lines, finished)
}

fn reassemble(
    lines: &[(u8, Vec<u8>)],
    config: ReassemblerConfig,
) -> Vec<(u8, Stream, String, bool)> {
    let mut r = Reassembler::<u8, ()>::new(config);
    let mut out = Vec::new();
    for (key, line) in lines {
        let parsed = parse_line(line, Format::Auto).expect("generated lines are valid");
        r.push(key, &parsed, (), |e| {
            let text = String::from_utf8(e.message.into_owned()).expect("UTF-8 in, UTF-8 out");
            out.push((e.key, e.stream, text, e.truncated));
        });
    }
    assert_eq!(r.pending_len(), 0, "every message was finished");
    out
}

proptest! {
    // Failing cases are kept next to this file, in `roundtrip.proptest-regressions`.
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::with_failure_persistence(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))
    })]

    #[test]
    fn every_message_comes_back_whole(
        msgs in proptest::collection::vec(msg(), 1..30),
        schedule in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let (lines, finished) = interleave(&msgs, &schedule);
        let got = reassemble(&lines, ReassemblerConfig::default());
        let want: Vec<_> = finished.into_iter().map(|(k, s, m)| (k, s, m, false)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_size_limit_cuts_on_char_boundaries_and_flags(
        msgs in proptest::collection::vec(msg(), 1..20),
        schedule in proptest::collection::vec(any::<u8>(), 0..100),
        max in 1usize..64,
    ) {
        let (lines, finished) = interleave(&msgs, &schedule);
        let config = ReassemblerConfig { max_entry_bytes: max, ..ReassemblerConfig::default() };
        let got = reassemble(&lines, config);
        prop_assert_eq!(got.len(), finished.len());
        for ((gk, gs, gm, truncated), (wk, ws, wm)) in got.iter().zip(&finished) {
            prop_assert_eq!((gk, gs), (wk, ws));
            prop_assert!(gm.len() <= max);
            prop_assert!(wm.starts_with(gm.as_str()));
            prop_assert_eq!(*truncated, wm.len() > max);
            if *truncated {
                // Cut at the last char boundary at or before the limit.
                let boundary = (0..=max).rev().find(|&i| wm.is_char_boundary(i)).unwrap_or(0);
                prop_assert_eq!(gm.len(), boundary);
            }
        }
    }

    #[test]
    fn parse_line_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for format in [Format::Auto, Format::Cri, Format::Docker] {
            if let Err(e) = parse_line(&bytes, format) {
                prop_assert!(e.column <= bytes.len());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn lanes_are_independent_of_each_other() {
    // A fixed interleaving that mixes formats, keys and streams in one lane each.
    let msgs = vec![
        Msg {
            key: 1,
            stream: Stream::Stdout,
            docker: false,
            chunks: vec!["a1".into(), "a2".into()],
        },
        Msg {
            key: 1,
            stream: Stream::Stderr,
            docker: true,
            chunks: vec!["b1".into(), "b2".into()],
        },
        Msg {
            key: 2,
            stream: Stream::Stdout,
            docker: true,
            chunks: vec!["c".into()],
        },
    ];
    let (lines, finished) = interleave(&msgs, &[0, 1, 2, 0, 0]);
    let mut by_lane: HashMap<(u8, Stream), Vec<String>> = HashMap::new();
    for (k, s, m, _) in reassemble(&lines, ReassemblerConfig::default()) {
        by_lane.entry((k, s)).or_default().push(m);
    }
    assert_eq!(by_lane[&(1, Stream::Stdout)], ["a1a2"]);
    assert_eq!(by_lane[&(1, Stream::Stderr)], ["b1b2"]);
    assert_eq!(by_lane[&(2, Stream::Stdout)], ["c"]);
    assert_eq!(finished.len(), 3);
}
