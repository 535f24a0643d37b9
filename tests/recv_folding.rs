//! The receiver folds a message's payload CRCs in as its bytes arrive (while they are in
//! cache) instead of over the whole payload at the end. Whatever the split of the stream
//! into reads, the records and errors must be exactly those of one read of the whole
//! stream: the same messages, the same section that fails its CRC, the same CRC values in
//! the error. Frames come from the test oracle's own encoder, not the crate's.

mod common;

use common::oracle::{encode_message, MsgSpec, FEATURE_MSG_AUTH};
use proptest::prelude::*;

use ceph_msgr::recv::{Limits, Receiver, Record, RecvError};
use ceph_msgr::wire::FooterKind;

/// Feeds `stream` cut at `cuts` (sorted offsets), taking records after every read, until
/// the end or the first error.
fn parse(stream: &[u8], cuts: &[usize], footer: FooterKind) -> (Vec<Record>, Option<RecvError>) {
    let mut rx = Receiver::new(footer, Limits::default());
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        let cut = cut.clamp(at, stream.len());
        rx.push(&stream[at..cut]);
        at = cut;
        loop {
            match rx.next_record() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn spec(id: u64, front: u32, middle: u32, data: u32) -> MsgSpec {
    MsgSpec {
        id,
        ty: 0x7f00,
        tid: id,
        prio: 127,
        version: 1,
        compat: 1,
        front,
        middle,
        data,
    }
}

/// The messages back to back; returns the stream and where each message starts.
fn stream(sizes: &[(u32, u32, u32)], features: u64) -> (Vec<u8>, Vec<usize>) {
    let mut s = Vec::new();
    let mut starts = Vec::new();
    for (i, &(f, m, d)) in sizes.iter().enumerate() {
        starts.push(s.len());
        s.extend(encode_message(
            &spec(i as u64 + 1, f, m, d),
            i as u64 + 1,
            features,
            8,
            9,
        ));
    }
    (s, starts)
}

fn section() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..64, 64u32..5000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_what_one_read_gives(
        sizes in prop::collection::vec((section(), section(), section()), 1..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        corrupt in prop::option::of(any::<prop::sample::Index>()),
        new_footer in any::<bool>(),
    ) {
        let (features, footer) = if new_footer {
            (FEATURE_MSG_AUTH, FooterKind::New)
        } else {
            (0, FooterKind::Old)
        };
        let (mut s, _) = stream(&sizes, features);
        if let Some(i) = corrupt {
            let i = i.index(s.len());
            s[i] ^= 0x5a;
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = parse(&s, &[], footer);
        let split = parse(&s, &cuts, footer);
        prop_assert_eq!(&split, &whole);
        let bytes = parse(&s, &(1..s.len()).collect::<Vec<_>>(), footer);
        prop_assert_eq!(&bytes, &whole);
        if corrupt.is_none() {
            prop_assert!(whole.1.is_none());
            prop_assert_eq!(whole.0.len(), sizes.len());
        }
    }
}

/// A flipped byte in each section is caught as that section's CRC error, with the CRC
/// the footer carried and the CRC of the bytes received, whether the payload arrived in
/// one read or one byte at a time.
#[test]
fn a_bad_byte_names_its_section_whatever_the_reads() {
    let (clean, starts) = stream(&[(300, 200, 9000), (10, 0, 70_000)], FEATURE_MSG_AUTH);
    for (name, offset) in [
        ("front", 0usize),
        ("middle", 300),
        ("data", 500),
        ("data", 9499),
    ] {
        let mut s = clean.clone();
        s[starts[0] + 54 + offset] ^= 1;
        for cuts in [
            vec![],
            (1..s.len()).collect::<Vec<_>>(),
            vec![60, 400, 4096, 8000],
        ] {
            let (records, err) = parse(&s, &cuts, FooterKind::New);
            assert!(records.is_empty());
            match err {
                Some(RecvError::BadCrc {
                    section,
                    carried,
                    computed,
                }) => {
                    assert_eq!(section, name);
                    assert_ne!(carried, computed);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    // The second message follows a good first one: its data CRC is folded from scratch.
    let mut s = clean.clone();
    s[starts[1] + 54 + 10 + 65_000] ^= 1;
    let (records, err) = parse(&s, &[starts[1] + 100, starts[1] + 40_000], FooterKind::New);
    assert_eq!(records.len(), 1);
    assert!(
        matches!(
            err,
            Some(RecvError::BadCrc {
                section: "data",
                ..
            })
        ),
        "{err:?}"
    );
}

/// Progress folded for one message never carries over to the next, even one with the
/// same section lengths arriving in the same pattern of reads.
#[test]
fn same_shaped_messages_in_pieces_all_check() {
    let (s, starts) = stream(&[(100, 0, 20_000); 3], FEATURE_MSG_AUTH);
    // Each read ends a message and brings the next one further than the first had come.
    for cuts in [
        vec![starts[0] + 5_000, starts[1] + 10_000, starts[2] + 15_000],
        starts
            .iter()
            .flat_map(|&at| [at + 60, at + 5_000, at + 15_000])
            .collect(),
    ] {
        let (records, err) = parse(&s, &cuts, FooterKind::New);
        assert_eq!(err, None);
        assert_eq!(records.len(), 3);
    }
}
