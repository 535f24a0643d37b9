//! Property tests: the Messenger against the independent reference model
//! (`tests/common/oracle.rs`) and the strict stream parser (`tests/common/v1parse.rs`).
//!
//! Case counts default to 10,000 for the script property; set `PROPTEST_CASES` to change.

mod common;

use std::io::IoSlice;

use bytes::Bytes;
use ceph_msgr::wire::{EntityName, EntityType, FooterKind, MsgHeader};
use ceph_msgr::{replay, Message, Messenger, MsgId};
use common::oracle::{self, Ev};
use common::{gen, v1parse};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn features_of(evs: &[Ev]) -> u64 {
    evs.iter()
        .rev()
        .find_map(|e| match e {
            Ev::Features(f) => Some(*f),
            _ => None,
        })
        .unwrap_or(oracle::DEFAULT_FEATURES)
}

/// Length of the longest prefix of `bytes` made of whole frames; whatever follows must be
/// the beginning of one more frame (a connection may end mid-frame).
fn whole_frames(bytes: &[u8], footer: usize) -> usize {
    let mut pos = 0;
    while bytes.len() - pos >= 54 {
        assert_eq!(bytes[pos], 7, "tag at offset {pos}");
        let h = MsgHeader::decode(&bytes[pos + 1..]).expect("header at a frame boundary");
        let len = 54 + h.payload_len() as usize + footer;
        if pos + len > bytes.len() {
            break;
        }
        pos += len;
    }
    if pos < bytes.len() {
        assert_eq!(bytes[pos], 7, "a cut frame must start with its tag");
    }
    pos
}

/// Every connection: whole frames parse strictly; seqs never go backwards across
/// connections except for resent messages, which keep theirs.
fn check_framing(conns: &[Vec<u8>], features: u64) {
    let new_footer = FooterKind::for_features(features) == FooterKind::New;
    let footer = FooterKind::for_features(features).encoded_len();
    for (i, c) in conns.iter().enumerate() {
        let end = whole_frames(c, footer);
        if let Err(e) = v1parse::parse_stream(&c[..end], new_footer) {
            panic!("connection {i} does not parse: {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000)))]

    /// `replay` (script text → parser → Messenger) produces exactly the oracle's bytes, and
    /// those bytes are a correctly framed v1 stream.
    #[test]
    fn replay_matches_oracle(evs in gen::script(60)) {
        let text = oracle::render_script(&evs);
        let expected = oracle::run(&evs);
        let parsed = replay::parse(&text).expect("rendered scripts parse");
        let got = replay::run(&parsed);
        prop_assert_eq!(got.connections.len(), expected.len());
        for (i, (g, e)) in got.connections.iter().zip(&expected).enumerate() {
            if g != e {
                let at = g.iter().zip(e).position(|(a, b)| a != b).unwrap_or(g.len().min(e.len()));
                prop_assert!(false, "connection {} differs at byte {} (got {} bytes, oracle {})\n{}",
                    i, at, g.len(), e.len(), text);
            }
        }
        check_framing(&got.connections, features_of(&evs));
    }
}

/// Drives the Messenger API directly: data split into random chunks, and `fill` given only
/// a few slices at a time, so frames are cut at every kind of slice boundary.
fn run_api(evs: &[Ev], chunk_cuts: &[usize], slots: usize) -> Vec<Vec<u8>> {
    let mut m = Messenger::new(EntityName::client(4242), oracle::DEFAULT_FEATURES);
    let mut ids: Vec<(u64, MsgId)> = Vec::new();
    let mut conns = vec![Vec::new()];
    let mut cut = chunk_cuts.iter().cycle();
    for ev in evs {
        match *ev {
            Ev::Features(f) => m.set_peer_features(f),
            Ev::Entity { ty, num } => {
                m.set_src(EntityName {
                    ty: EntityType::from_u8(ty).unwrap(),
                    num,
                });
            }
            Ev::Queue {
                id,
                ty,
                tid,
                prio,
                version,
                compat,
                front,
                middle,
                data,
            } => {
                let d = oracle::section_bytes(id, 2, data);
                let mut msg = Message::new(ty)
                    .with_tid(tid)
                    .with_priority(prio)
                    .with_version(version, compat)
                    .with_front(Bytes::from(oracle::section_bytes(id, 0, front)))
                    .with_middle(Bytes::from(oracle::section_bytes(id, 1, middle)));
                // Split data into chunks, empty chunks included.
                let d = Bytes::from(d);
                let mut at = 0;
                while at < d.len() {
                    let n = (*cut.next().unwrap()).min(d.len() - at);
                    msg = msg.with_data_chunk(d.slice(at..at + n));
                    at += n;
                }
                msg = msg.with_data_chunk(Bytes::new());
                ids.push((id, m.queue(msg).unwrap()));
            }
            Ev::Write(limit) => {
                let mut left = limit.unwrap_or(u64::MAX);
                while left > 0 {
                    let t = m.poll_transmit();
                    let mut out = vec![IoSlice::new(&[]); slots];
                    let k = t.fill(&mut out);
                    if k == 0 {
                        assert!(t.is_empty(), "fill gave nothing while bytes were offered");
                        break;
                    }
                    let mut took = 0u64;
                    for s in &out[..k] {
                        let n = (s.len() as u64).min(left - took) as usize;
                        conns.last_mut().unwrap().extend_from_slice(&s[..n]);
                        took += n as u64;
                    }
                    m.advance(took as usize).unwrap();
                    left -= took;
                }
            }
            Ev::Revoke(id) => {
                if let Some((_, mid)) = ids.iter().find(|(i, _)| *i == id) {
                    let _ = m.revoke(*mid);
                }
            }
            Ev::Ack(s) => m.on_ack(s),
            Ev::Reset => {
                m.reset();
                conns.push(Vec::new());
            }
        }
    }
    conns
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000) / 4))]

    #[test]
    fn api_matches_oracle_with_chunks_and_few_slices(
        evs in gen::script(40),
        cuts in prop::collection::vec(0usize..3000, 1..8),
        slots in 1usize..6,
    ) {
        let expected = oracle::run(&evs);
        let got = run_api(&evs, &cuts, slots);
        prop_assert!(got == expected, "api bytes differ from the oracle\n{}", oracle::render_script(&evs));
    }
}
