//! Exhaustive, msgr2.1: revoke a message after every possible number of written bytes, for
//! each frame shape, with and without a reset after the revoke. At every offset the library
//! (`replay --protocol v2`) must equal the independent model byte for byte, the stream must
//! parse strictly, the spec's revoke case must be visible in the bytes, and the next message
//! must arrive intact.

mod common;

use ceph_msgr::replay::{self, Protocol};
use common::oracle::MsgSpec;
use common::v2oracle::{self, Ev};
use common::v2parse::{self, Frame};

/// (name, front, middle, data)
const SHAPES: &[(&str, u32, u32, u32)] = &[
    ("header only", 0, 0, 0),
    ("front only", 37, 0, 0),
    ("front+data, empty middle", 11, 0, 13),
    ("all four segments", 11, 7, 13),
    ("data only, empty front and middle", 0, 0, 40),
    ("middle only", 0, 5, 0),
    ("front+middle", 6, 4, 0),
];

const ID: u64 = 1;
const MARKER: u64 = 2;

fn queue(id: u64, front: u32, middle: u32, data: u32) -> Ev {
    Ev::Queue {
        id,
        ty: 42,
        tid: 1000 + id,
        prio: 127,
        version: 1,
        compat: 1,
        front,
        middle,
        data,
    }
}

fn spec(front: u32, middle: u32, data: u32) -> MsgSpec {
    MsgSpec {
        id: ID,
        ty: 42,
        tid: 1000 + ID,
        prio: 127,
        version: 1,
        compat: 1,
        front,
        middle,
        data,
    }
}

/// The marker queued after the revoked message: front 5, data 3.
fn check_marker(f: &Frame, seq: u64, ctx: &str) {
    assert_eq!(
        (f.seq, f.tid, f.ty),
        (seq, 1000 + MARKER, 42),
        "{ctx}: marker header"
    );
    assert!(!f.aborted, "{ctx}: marker aborted");
    assert_eq!(
        f.front,
        v2oracle::section_bytes(MARKER, 0, 5),
        "{ctx}: marker front"
    );
    assert!(f.middle.is_empty(), "{ctx}");
    assert_eq!(
        f.data,
        v2oracle::section_bytes(MARKER, 2, 3),
        "{ctx}: marker data"
    );
}

fn library(evs: &[Ev]) -> Vec<Vec<u8>> {
    let text = v2oracle::render_script(evs);
    replay::run_protocol(&replay::parse(&text).unwrap(), Protocol::V2).connections
}

#[test]
fn revoke_at_every_offset_v2() {
    let mut checked = 0;
    for &(name, front, middle, data) in SHAPES {
        let s = spec(front, middle, data);
        let full = v2oracle::encode_frame(&s, 1);
        let len = full.len();
        let nseg = v2oracle::nseg(&s);
        let epi = v2oracle::epilogue_offset(&s);
        assert_eq!(
            len,
            77 + (front + middle + data) as usize + if nseg > 1 { 13 } else { 0 }
        );
        for k in 0..=len {
            // None: no reset; Some(j): write j more bytes after the revoke, then reset.
            for reset_after in [None, Some(0u64), Some(3)] {
                let ctx =
                    format!("{name} / revoked after {k} of {len} bytes / reset {reset_after:?}");
                let mut evs = vec![
                    queue(ID, front, middle, data),
                    queue(MARKER, 5, 0, 3),
                    Ev::Write(Some(k as u64)),
                    Ev::Revoke(ID),
                ];
                if let Some(j) = reset_after {
                    evs.extend([Ev::Write(Some(j)), Ev::Reset]);
                }
                evs.push(Ev::Write(None));
                let expected = v2oracle::run(&evs);
                let got = library(&evs);
                assert_eq!(got.len(), expected.len(), "{ctx}");
                for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                    if g != e {
                        let at = g
                            .iter()
                            .zip(e)
                            .position(|(a, b)| a != b)
                            .unwrap_or(g.len().min(e.len()));
                        panic!(
                            "{ctx}: conn {i} differs at byte {at} (library {} bytes, oracle {}): \
                             library {:02x?} oracle {:02x?}",
                            g.len(),
                            e.len(),
                            &g[at..g.len().min(at + 16)],
                            &e[at..e.len().min(at + 16)]
                        );
                    }
                }
                match reset_after {
                    None => {
                        let c = &got[0];
                        let fr = v2parse::parse_stream(c).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        if k == 0 {
                            // Case 1: removed, no bytes, no seq consumed.
                            assert_eq!(fr.len(), 1, "{ctx}");
                            check_marker(&fr[0], 1, &ctx);
                            continue;
                        }
                        assert_eq!(fr.len(), 2, "{ctx}");
                        assert_eq!((fr[0].offset, fr[0].len, fr[0].seq), (0, len, 1), "{ctx}");
                        check_marker(&fr[1], 2, &ctx);
                        if k == len || nseg == 1 || k > epi {
                            // Cases 4 and 3: the frame is the real one, unchanged.
                            assert_eq!(&c[..len], &full[..], "{ctx}");
                            assert!(!fr[0].aborted, "{ctx}");
                        } else {
                            // Case 2: head and written bytes real, rest of segments zero,
                            // epilogue ABORTED (its crcs were checked by the parser).
                            let kept = k.max(77);
                            assert_eq!(&c[..kept], &full[..kept], "{ctx}");
                            assert!(c[kept..epi].iter().all(|&b| b == 0), "{ctx}");
                            assert!(fr[0].aborted, "{ctx}");
                        }
                    }
                    Some(j) => {
                        // Connection 0 is cut somewhere; connection 1 starts at a frame
                        // boundary with the marker, and message 1 is never resent.
                        let cut =
                            v2parse::parse_cut(&got[0]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        // Owed on conn 0 after the revoke: the rest of the frame (zeros or the
                        // real bytes), then the 98-byte marker.
                        let owed = if k == 0 { 0 } else { len - k };
                        assert_eq!(
                            got[0].len(),
                            k + (j as usize).min(owed + 98),
                            "{ctx}: conn 0 length"
                        );
                        assert_eq!(
                            cut.frames.len() + usize::from(cut.tail > 0),
                            usize::from(!got[0].is_empty())
                                + usize::from(k > 0 && k + j as usize > len),
                            "{ctx}"
                        );
                        let c1 =
                            v2parse::parse_stream(&got[1]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert_eq!(c1.len(), 1, "{ctx}: only the marker on conn 1");
                        let marker_seq = if k == 0 { 1 } else { 2 };
                        check_marker(&c1[0], marker_seq, &ctx);
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1500, "only {checked} offsets checked");
}
