//! Regression tests for the three bugs fixed by "libceph: fix ceph_msg_revoke()"
//! (`shared/ref/libceph-fix-ceph_msg_revoke.patch`). Each test fails on a sender that has
//! the bug; `scripts/seeded-bugs.sh` plants each bug in a copy of the crate and checks that
//! its test goes red.

mod common;

use bytes::Bytes;
use ceph_msgr::wire::feature::MSG_AUTH;
use ceph_msgr::{EntityName, Message, Messenger, Revoked};
use common::v1parse;

fn messenger() -> Messenger {
    Messenger::new(EntityName::client(4242), MSG_AUTH)
}

fn write(m: &mut Messenger, mut n: usize, out: &mut Vec<u8>) {
    while n > 0 {
        let t = m.poll_transmit();
        let mut s = [std::io::IoSlice::new(&[]); 16];
        let k = t.fill(&mut s);
        let mut took = 0;
        for sl in &s[..k] {
            let c = sl.len().min(n - took);
            out.extend_from_slice(&sl[..c]);
            took += c;
        }
        if took == 0 {
            return;
        }
        m.advance(took).unwrap();
        n -= took;
    }
}

fn data_message(len: usize) -> Message {
    Message::new(42)
        .with_tid(1)
        .with_front(Bytes::from_static(b"osd op"))
        .with_data_chunk(Bytes::from(vec![0xAB; len / 2]))
        .with_data_chunk(Bytes::from(vec![0xCD; len - len / 2]))
}

fn reply_message() -> Message {
    Message::new(43)
        .with_tid(2)
        .with_front(Bytes::from_static(b"the next request"))
}

/// Bug 1: only kvecs (front/middle/footer) counted towards the skip; a revoke during the
/// data phase left the peer expecting data_len bytes, and it swallowed the next message
/// as data. Here the next message must arrive intact, right after the exact frame end.
#[test]
fn bug1_revoke_during_data_keeps_framing() {
    let mut m = messenger();
    let a = m.queue(data_message(100_000)).unwrap();
    let mut out = Vec::new();
    write(&mut m, 54 + 6 + 30_000, &mut out); // well inside the data section
    let r = m.revoke(a);
    assert_eq!(
        r,
        Revoked::Aborted {
            seq: 1,
            head_left: 0,
            zeros: 70_000 + 21
        }
    );
    let _ = m.queue(reply_message()).unwrap();
    write(&mut m, usize::MAX, &mut out);
    let frame = 54 + 6 + 100_000 + 21;
    assert_eq!(out.len(), frame + 54 + 16 + 21);
    let msgs = v1parse::parse_stream(&out, true).expect("stream must stay framed");
    assert_eq!(msgs.len(), 2);
    assert!(!msgs[0].complete);
    assert_eq!(msgs[1].tid, 2);
    assert_eq!(&msgs[1].front, b"the next request");
    assert!(msgs[1].complete);
}

/// Bug 2: zeroing the pending kvec bytes wholesale zeroed the tag or the rest of the
/// header when the revoke came early, so the peer saw tag 0 or a bad header CRC. Every
/// revoke inside tag+header must still deliver a valid tag and header.
#[test]
fn bug2_revoke_inside_tag_or_header_sends_them_intact() {
    for k in 1..54 {
        let mut m = messenger();
        let a = m.queue(data_message(64)).unwrap();
        let mut out = Vec::new();
        write(&mut m, k, &mut out);
        let r = m.revoke(a);
        assert_eq!(
            r,
            Revoked::Aborted {
                seq: 1,
                head_left: (54 - k) as u64,
                zeros: 6 + 64 + 21
            },
            "after {k} bytes"
        );
        let _ = m.queue(reply_message()).unwrap();
        write(&mut m, usize::MAX, &mut out);
        assert_eq!(out[0], 7, "tag");
        let msgs = v1parse::parse_stream(&out, true)
            .unwrap_or_else(|e| panic!("revoked after {k} header bytes: {e}"));
        assert_eq!(msgs[0].seq, 1);
        assert_eq!(msgs[0].tid, 1, "header must carry the original fields");
        assert_eq!(msgs[1].seq, 2);
    }
}

/// Bug 3: the pending skip was not cleared on a connection reset, so the next connection
/// started with stale zeros instead of a tag. After a reset the new stream must begin at
/// a frame boundary with the requeued/next message.
#[test]
fn bug3_reset_forgets_owed_zeros() {
    let mut m = messenger();
    let a = m.queue(data_message(50_000)).unwrap();
    let _ = m.queue(reply_message()).unwrap();
    let mut out = Vec::new();
    write(&mut m, 1000, &mut out);
    assert!(matches!(m.revoke(a), Revoked::Aborted { .. }));
    write(&mut m, 100, &mut out); // some of the zeros, not all
    m.reset();
    let mut next = Vec::new();
    write(&mut m, usize::MAX, &mut next);
    assert_eq!(
        next.first(),
        Some(&7),
        "new connection must start with a tag"
    );
    let msgs = v1parse::parse_stream(&next, true).expect("new connection parses");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].tid, 2);
    assert_eq!(msgs[0].seq, 2, "seq is never rewound");
    assert!(msgs[0].complete);
}
