//! The msgr2 deframer folds segment CRCs in as their bytes arrive. Whatever the split of
//! the stream into reads, the frames and the error must be exactly those of one read of
//! the whole stream: the same frames, the same segment that fails its CRC, the same CRC
//! values in the error, the same truncation at the end. Frames are built here from the
//! `v2::frame` pieces (preamble, epilogue, header2, segment CRC), not by the deframer.

use ceph_msgr::recv::v2::{DeframeError, Deframed, Deframer};
use ceph_msgr::recv::Limits;
use ceph_msgr::v2::frame::{
    segment_crc, Epilogue, FrameError, MsgHeader2, Preamble, Tag, DEFAULT_ALIGNMENT,
    LATE_STATUS_ABORTED, LATE_STATUS_COMPLETE, MESSAGE_ALIGNMENTS,
};
use proptest::prelude::*;

/// What a flipped byte at some offset must be reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Preamble,
    /// A segment's bytes, or its CRC (inline for segment 0, in the epilogue otherwise).
    Segment(usize),
    LateStatus,
    /// An epilogue CRC slot past nseg: not checked.
    Unused,
}

#[derive(Debug, Clone)]
enum Spec {
    Control { tag: Tag, lens: Vec<usize> },
    Message { lens: [usize; 3], aborted: bool },
}

/// One encoded frame, with the piece every byte belongs to.
struct Encoded {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
}

fn fill(frame: usize, seg: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + seg * 7 + frame * 13) as u8)
        .collect()
}

fn header(seq: u64) -> MsgHeader2 {
    MsgHeader2 {
        seq,
        tid: seq,
        ty: 42,
        priority: 63,
        version: 8,
        compat_version: 3,
        flags: 3,
        ..MsgHeader2::default()
    }
}

fn encode(idx: usize, spec: &Spec) -> Encoded {
    let (tag, segs, aligns, late_status) = match spec {
        Spec::Control { tag, lens } => (
            *tag,
            lens.iter()
                .enumerate()
                .map(|(i, &l)| fill(idx, i, l))
                .collect::<Vec<_>>(),
            [DEFAULT_ALIGNMENT; 4],
            LATE_STATUS_COMPLETE,
        ),
        Spec::Message { lens, aborted } => {
            let mut segs = vec![header(idx as u64 + 1).encode().to_vec()];
            segs.extend(lens.iter().enumerate().map(|(i, &l)| fill(idx, i + 1, l)));
            let status = if *aborted {
                LATE_STATUS_ABORTED
            } else {
                LATE_STATUS_COMPLETE
            };
            (Tag::Message, segs, MESSAGE_ALIGNMENTS, status)
        }
    };
    let mut lens = [0u32; 4];
    for (l, s) in lens.iter_mut().zip(&segs) {
        *l = s.len() as u32;
    }
    let p = Preamble::for_segments(tag, lens, aligns);
    let mut e = Encoded {
        bytes: Vec::new(),
        pieces: Vec::new(),
    };
    let put = |e: &mut Encoded, b: &[u8], piece: Piece| {
        e.bytes.extend_from_slice(b);
        e.pieces.extend(std::iter::repeat(piece).take(b.len()));
    };
    put(&mut e, &p.encode(), Piece::Preamble);
    put(&mut e, &segs[0], Piece::Segment(0));
    if !segs[0].is_empty() {
        put(
            &mut e,
            &segment_crc(&segs[0]).to_le_bytes(),
            Piece::Segment(0),
        );
    }
    for (i, s) in segs.iter().enumerate().take(p.nseg()).skip(1) {
        put(&mut e, s, Piece::Segment(i));
    }
    if p.has_epilogue() {
        let mut crcs = [0u32; 3];
        for i in 1..p.nseg() {
            crcs[i - 1] = segment_crc(&segs[i]);
        }
        let b = Epilogue { late_status, crcs }.encode();
        put(&mut e, &b[..1], Piece::LateStatus);
        for slot in 0..3 {
            let piece = if slot + 1 < p.nseg() {
                Piece::Segment(slot + 1)
            } else {
                Piece::Unused
            };
            put(&mut e, &b[1 + slot * 4..5 + slot * 4], piece);
        }
    }
    e
}

type Outcome = (Vec<Deframed>, Option<DeframeError>);

/// Feeds `stream` cut at `cuts` (sorted offsets), reading in place, taking frames after
/// every read, until the end (then `finish`) or the first error.
fn deframe(stream: &[u8], cuts: &[usize]) -> Outcome {
    deframe_with(stream, cuts, Limits::default())
}

fn deframe_with(stream: &[u8], cuts: &[usize], limits: Limits) -> Outcome {
    let mut buf = limits.buffer();
    let mut d = Deframer::new(limits);
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        let cut = cut.clamp(at, stream.len());
        buf.read_buffer(cut - at)
            .extend_from_slice(&stream[at..cut]);
        at = cut;
        loop {
            match d.next_frame(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, d.finish(&buf).err())
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..64, 64usize..3000]
}

fn spec() -> impl Strategy<Value = Spec> {
    let control = (
        prop::sample::select(vec![
            Tag::Hello,
            Tag::AuthRequest,
            Tag::AuthSignature,
            Tag::ClientIdent,
            Tag::Wait,
            Tag::Keepalive2,
            Tag::Ack,
        ]),
        prop::collection::vec(len(), 1..=4),
    )
        .prop_map(|(tag, lens)| Spec::Control { tag, lens });
    let message = ([len(), len(), len()], prop::bool::weighted(0.2))
        // A header-only message has one segment, hence no epilogue to abort it with.
        .prop_map(|(lens, aborted)| Spec::Message {
            lens,
            aborted: aborted && lens.iter().any(|&l| l > 0),
        });
    prop_oneof![control, message]
}

fn check_frame(got: &Deframed, idx: usize, spec: &Spec) -> Result<(), TestCaseError> {
    match (got, spec) {
        (Deframed::Frame(f), Spec::Control { tag, lens }) => {
            prop_assert_eq!(f.tag, *tag);
            let nseg = lens.iter().rposition(|&l| l > 0).map_or(1, |i| i + 1);
            prop_assert_eq!(f.segments().len(), nseg);
            for (i, s) in f.segments().iter().enumerate() {
                prop_assert_eq!(&s[..], &fill(idx, i, lens[i])[..]);
            }
        }
        (Deframed::Message(m), Spec::Message { lens, aborted }) => {
            prop_assert!(!aborted);
            prop_assert_eq!(m.header, header(idx as u64 + 1));
            for (i, s) in [&m.front, &m.middle, &m.data].into_iter().enumerate() {
                prop_assert_eq!(&s[..], &fill(idx, i + 1, lens[i])[..]);
            }
        }
        (Deframed::Aborted(a), Spec::Message { aborted, .. }) => {
            prop_assert!(*aborted);
            prop_assert_eq!(a.tag, Tag::Message);
            prop_assert_eq!(a.header, Some(header(idx as u64 + 1)));
        }
        (got, spec) => prop_assert!(false, "frame {idx}: {got:?} for {spec:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_what_one_read_gives(
        specs in prop::collection::vec(spec(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        corrupt in prop::option::of(any::<prop::sample::Index>()),
        end in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let frames: Vec<Encoded> = specs.iter().enumerate().map(|(i, s)| encode(i, s)).collect();
        let mut s: Vec<u8> = frames.iter().flat_map(|e| e.bytes.iter().copied()).collect();
        // Which frame and piece every byte belongs to.
        let owner: Vec<(usize, Piece)> = frames
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.pieces.iter().map(move |&p| (i, p)))
            .collect();
        let starts: Vec<usize> = frames
            .iter()
            .scan(0, |at, e| {
                let s = *at;
                *at += e.bytes.len();
                Some(s)
            })
            .collect();
        let flipped = corrupt.map(|i| {
            let i = i.index(s.len());
            s[i] ^= 0x5a;
            i
        });
        if let Some(e) = end {
            s.truncate(e.index(s.len() + 1));
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = deframe(&s, &[]);
        prop_assert_eq!(&deframe(&s, &cuts), &whole);
        prop_assert_eq!(&deframe(&s, &(1..s.len()).collect::<Vec<_>>()), &whole);

        match (flipped, end) {
            (None, None) => {
                prop_assert_eq!(&whole.1, &None);
                prop_assert_eq!(whole.0.len(), specs.len());
                for (i, (got, spec)) in whole.0.iter().zip(&specs).enumerate() {
                    check_frame(got, i, spec)?;
                }
            }
            (Some(at), None) => {
                let (frame, piece) = owner[at];
                let err = &whole.1;
                match piece {
                    Piece::Unused => {
                        prop_assert_eq!(err, &None);
                        prop_assert_eq!(whole.0.len(), specs.len());
                    }
                    Piece::Preamble => {
                        prop_assert_eq!(whole.0.len(), frame);
                        prop_assert!(
                            matches!(err, Some(DeframeError::Frame(FrameError::PreambleCrc { .. }))),
                            "{:?}", err
                        );
                    }
                    Piece::Segment(want) => {
                        prop_assert_eq!(whole.0.len(), frame);
                        let named = match err {
                            Some(DeframeError::Frame(FrameError::SegmentCrc { segment, got, want })) => {
                                prop_assert_ne!(got, want);
                                Some(*segment)
                            }
                            _ => None,
                        };
                        prop_assert_eq!(named, Some(want), "{:?}", err);
                    }
                    Piece::LateStatus => {
                        prop_assert_eq!(whole.0.len(), frame);
                        prop_assert!(
                            matches!(err, Some(DeframeError::Frame(FrameError::BadLateStatus(_)))),
                            "{:?}", err
                        );
                    }
                }
            }
            (None, Some(_)) => {
                // Frames wholly before the end come out; a partial one is a truncation.
                let ends: Vec<usize> = frames
                    .iter()
                    .zip(&starts)
                    .map(|(e, &at)| at + e.bytes.len())
                    .collect();
                let n = ends.iter().filter(|&&end| end <= s.len()).count();
                prop_assert_eq!(whole.0.len(), n);
                let at_boundary = s.len() == if n == 0 { 0 } else { ends[n - 1] };
                if at_boundary {
                    prop_assert_eq!(&whole.1, &None);
                } else {
                    let truncated = matches!(
                        whole.1,
                        Some(DeframeError::Frame(FrameError::Truncated { have, .. }))
                            if have == s.len() - starts[n]
                    );
                    prop_assert!(truncated, "{:?}", whole.1);
                }
            }
            (Some(_), Some(_)) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Several flipped bytes and tight limits (so some frames are too long): no panic,
    /// and any split still gives what one read gives.
    #[test]
    fn damaged_streams_and_tight_limits_split_the_same(
        specs in prop::collection::vec(spec(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..4),
        tight in any::<bool>(),
    ) {
        let mut s: Vec<u8> = specs
            .iter()
            .enumerate()
            .flat_map(|(i, sp)| encode(i, sp).bytes)
            .collect();
        for (at, x) in flips {
            let i = at.index(s.len());
            s[i] ^= x;
        }
        let limits = if tight {
            Limits { front: 1000, middle: 100, data: 2000, total: 2500, control: 1500, eager_reserve: 64, }
        } else {
            Limits::default()
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = deframe_with(&s, &[], limits);
        prop_assert_eq!(&deframe_with(&s, &cuts, limits), &whole);
        prop_assert_eq!(&deframe_with(&s, &(1..s.len()).collect::<Vec<_>>(), limits), &whole);
    }

    /// Arbitrary bytes: no panic, the same outcome however they are split.
    #[test]
    fn arbitrary_bytes_split_the_same(
        s in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = deframe(&s, &[]);
        prop_assert_eq!(&deframe(&s, &cuts), &whole);
        prop_assert!(whole.0.is_empty() || s.len() >= 32);
    }
}

/// A flipped byte in each segment of a large MESSAGE is caught as that segment's CRC
/// error, whether the frame arrived in one read, one byte at a time, or in pieces.
#[test]
fn a_bad_byte_names_its_segment_whatever_the_reads() {
    let spec = Spec::Message {
        lens: [300, 200, 70_000],
        aborted: false,
    };
    let clean = encode(0, &spec);
    // Preamble 32, header2 41 + crc 4: front starts at 77.
    for (segment, offset) in [(0, 40usize), (1, 77), (2, 377), (3, 577), (3, 70_576)] {
        let mut s = clean.bytes.clone();
        s[offset] ^= 1;
        assert_eq!(clean.pieces[offset], Piece::Segment(segment));
        for cuts in [
            vec![],
            (1..s.len()).collect::<Vec<_>>(),
            vec![60, 400, 4096, 8000, 65_536],
        ] {
            match deframe(&s, &cuts) {
                (
                    frames,
                    Some(DeframeError::Frame(FrameError::SegmentCrc { segment: got, .. })),
                ) if frames.is_empty() => {
                    assert_eq!(got, segment);
                }
                other => panic!("segment {segment}: {other:?}"),
            }
        }
    }
}
