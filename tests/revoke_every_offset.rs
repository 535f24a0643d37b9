//! Exhaustive: revoke a message after every possible number of written bytes, for several
//! message shapes and both footer layouts, and check the exact bytes.

mod common;

use bytes::Bytes;
use ceph_msgr::wire::feature::MSG_AUTH;
use ceph_msgr::{EntityName, Message, Messenger, Revoked};
use common::oracle::{self, Ev};
use common::v1parse;

struct Shape {
    name: &'static str,
    front: usize,
    middle: usize,
    /// Data chunk sizes (the data section is their concatenation).
    data: &'static [usize],
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "header only",
        front: 0,
        middle: 0,
        data: &[],
    },
    Shape {
        name: "front only",
        front: 37,
        middle: 0,
        data: &[],
    },
    Shape {
        name: "data only",
        front: 0,
        middle: 0,
        data: &[5, 0, 40],
    },
    Shape {
        name: "front+middle+data",
        front: 11,
        middle: 7,
        data: &[13, 9],
    },
];

const FEATURES: [(&str, u64); 2] = [("new footer", MSG_AUTH), ("old footer", 0)];

fn pattern(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(31) | 1)
        .collect()
}

fn message(shape: &Shape) -> Message {
    let mut m = Message::new(42)
        .with_tid(9)
        .with_front(pattern(1, shape.front))
        .with_middle(pattern(2, shape.middle));
    for (i, &n) in shape.data.iter().enumerate() {
        m = m.with_data_chunk(pattern(3 + i as u8, n));
    }
    m
}

fn marker() -> Message {
    Message::new(7)
        .with_tid(1234)
        .with_front(Bytes::from_static(b"after"))
}

/// Writes exactly `n` bytes (or everything with `None`) into `out`.
fn write(m: &mut Messenger, mut n: Option<usize>, out: &mut Vec<u8>) {
    loop {
        let t = m.poll_transmit();
        let mut s = [std::io::IoSlice::new(&[]); 8];
        let k = t.fill(&mut s);
        let mut took = 0;
        for sl in &s[..k] {
            let room = n.map_or(usize::MAX, |n| n - took);
            let c = sl.len().min(room);
            out.extend_from_slice(&sl[..c]);
            took += c;
        }
        if took == 0 {
            return;
        }
        m.advance(took).unwrap();
        if let Some(left) = n.as_mut() {
            *left -= took;
        }
    }
}

/// The full, unrevoked wire form of a shape (seq 1).
fn full_frame(shape: &Shape, features: u64) -> Vec<u8> {
    let mut m = Messenger::new(EntityName::client(4242), features);
    let _ = m.queue(message(shape)).unwrap();
    let mut out = Vec::new();
    write(&mut m, None, &mut out);
    out
}

#[test]
fn revoke_at_every_offset() {
    let mut checked = 0;
    for shape in SHAPES {
        for (fname, features) in FEATURES {
            let full = full_frame(shape, features);
            let footer = if features & MSG_AUTH != 0 { 21 } else { 13 };
            let payload = shape.front + shape.middle + shape.data.iter().sum::<usize>();
            let len = 54 + payload + footer;
            assert_eq!(full.len(), len, "{} / {fname}", shape.name);
            for k in 0..=len {
                let ctx = format!(
                    "{} / {fname} / revoked after {k} of {len} bytes",
                    shape.name
                );
                let mut m = Messenger::new(EntityName::client(4242), features);
                let a = m.queue(message(shape)).unwrap();
                let _ = m.queue(marker()).unwrap();
                let mut out = Vec::new();
                write(&mut m, Some(k), &mut out);
                assert_eq!(out.len(), k, "{ctx}");
                let outcome = m.revoke(a);
                write(&mut m, None, &mut out);
                let msgs = v1parse::parse_stream(&out, footer == 21)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                match k {
                    0 => {
                        // Nothing written: removed, zero bytes, no seq consumed.
                        assert_eq!(outcome, Revoked::Removed { seq: None }, "{ctx}");
                        assert_eq!(msgs.len(), 1, "{ctx}");
                        assert_eq!((msgs[0].seq, msgs[0].tid), (1, 1234), "{ctx}");
                    }
                    k if k == len => {
                        assert_eq!(outcome, Revoked::Dropped { seq: 1 }, "{ctx}");
                        assert_eq!(&out[..len], &full[..], "{ctx}");
                        assert!(msgs[0].complete, "{ctx}");
                        assert_eq!((msgs[1].seq, msgs[1].tid), (2, 1234), "{ctx}");
                    }
                    k => {
                        let kept = k.max(54);
                        assert_eq!(
                            outcome,
                            Revoked::Aborted {
                                seq: 1,
                                head_left: (54 - k.min(54)) as u64,
                                zeros: (len - kept) as u64
                            },
                            "{ctx}"
                        );
                        // Written bytes and the whole head are the real ones...
                        assert_eq!(&out[..kept], &full[..kept], "{ctx}");
                        // ...everything after is zero, to the exact end of the frame.
                        assert!(out[kept..len].iter().all(|&b| b == 0), "{ctx}");
                        assert!(!msgs[0].complete, "{ctx}: COMPLETE must be clear");
                        // The next message follows at the exact boundary, seq not rewound.
                        assert_eq!(msgs.len(), 2, "{ctx}");
                        assert_eq!((msgs[1].seq, msgs[1].tid), (2, 1234), "{ctx}");
                        assert_eq!(&msgs[1].front, b"after", "{ctx}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} offsets checked");
}

/// The same sweep through the independent oracle: our bytes equal its bytes at every
/// offset, including a reset right after the revoke (owed zeros are forgotten).
#[test]
fn every_offset_matches_oracle_with_and_without_reset() {
    for &(front, middle, data) in &[(0u32, 0u32, 0u32), (20, 0, 0), (0, 0, 30), (9, 4, 17)] {
        for features in [
            oracle::DEFAULT_FEATURES,
            oracle::DEFAULT_FEATURES & !MSG_AUTH,
        ] {
            let len = 54
                + u64::from(front + middle + data)
                + if features & MSG_AUTH != 0 { 21 } else { 13 };
            for k in 0..=len {
                for reset_after in [None, Some(0u64), Some(3)] {
                    let mut evs = vec![
                        Ev::Features(features),
                        Ev::Queue {
                            id: 1,
                            ty: 5,
                            tid: 1,
                            prio: 127,
                            version: 1,
                            compat: 1,
                            front,
                            middle,
                            data,
                        },
                        Ev::Queue {
                            id: 2,
                            ty: 5,
                            tid: 2,
                            prio: 127,
                            version: 1,
                            compat: 1,
                            front: 3,
                            middle: 0,
                            data: 0,
                        },
                        Ev::Write(Some(k)),
                        Ev::Revoke(1),
                    ];
                    if let Some(j) = reset_after {
                        evs.extend([Ev::Write(Some(j)), Ev::Reset]);
                    }
                    evs.push(Ev::Write(None));
                    let expected = oracle::run(&evs);
                    let script = oracle::render_script(&evs);
                    let got = ceph_msgr::replay::run(&ceph_msgr::replay::parse(&script).unwrap());
                    assert_eq!(got.connections, expected, "{script}");
                    if reset_after.is_some() {
                        // The new connection starts at a frame boundary: no leftover zeros.
                        let c1 = &got.connections[1];
                        let msgs = v1parse::parse_stream(c1, features & MSG_AUTH != 0).unwrap();
                        assert!(msgs.iter().all(|m| m.complete), "{script}");
                    }
                }
            }
        }
    }
}
