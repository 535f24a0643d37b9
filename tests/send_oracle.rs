//! Property tests: the Messenger against the independent reference model
//! (`tests/common/oracle.rs`) and the strict stream parser (`tests/common/v1parse.rs`).
//!
//! Case counts default to 10,000 for the script property; set `PROPTEST_CASES` to change.

mod common;

use ceph_msgr::replay;
use ceph_msgr::wire::{FooterKind, MsgHeader};
use common::drive::run_api;
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
