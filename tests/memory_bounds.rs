//! A peer cannot make a connection hold more than the configured limits: lengths over a
//! limit are refused when the header arrives, before anything is buffered for the body,
//! and a peer that announces the largest allowed record and trickles it in makes the
//! buffer grow with what actually arrived — at most twice the bytes received (the
//! buffer doubles when it grows) — never by the announced size at once.

use ceph_msgr::recv::{Limits, Receiver, RecvError};
use ceph_msgr::wire::{tag, EntityName, FooterKind, MsgHeader};

fn header(front: u32, middle: u32, data: u32) -> Vec<u8> {
    let h = MsgHeader {
        seq: 1,
        tid: 1,
        ty: 42,
        priority: 127,
        version: 1,
        front_len: front,
        middle_len: middle,
        data_len: data,
        data_off: 0,
        src: EntityName::client(9),
        compat_version: 1,
    };
    let mut v = vec![tag::MSG];
    v.extend_from_slice(&h.encode());
    v
}

#[test]
fn lengths_over_the_limits_are_refused_at_the_header() {
    let limits = Limits::default();
    for (f, m, d, section) in [
        (u32::MAX, 0, 0, "front"),
        (0, (16 << 20) + 1, 0, "middle"),
        (0, 0, (64 << 20) + 1, "data"),
    ] {
        let mut rx = Receiver::new(FooterKind::New, limits);
        rx.push(&header(f, m, d));
        match rx.next_record() {
            Err(RecvError::TooLong { section: s, .. }) => assert_eq!(s, section),
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert!(
            rx.capacity() < 4096,
            "nothing reserved for a refused record"
        );
    }
}

#[test]
fn trickled_maximal_record_grows_with_what_arrived() {
    let limits = Limits {
        front: 16 << 20,
        middle: 16 << 20,
        data: 64 << 20,
    };
    let mut rx = Receiver::new(FooterKind::New, limits);
    rx.push(&header(limits.front, limits.middle, limits.data));
    assert!(rx.next_record().unwrap().is_none());
    let mut fed = 54usize;
    let chunk = vec![0u8; 64 * 1024];
    // Feed 8 MiB of the announced ~96 MiB, a chunk at a time.
    for _ in 0..128 {
        rx.push(&chunk);
        fed += chunk.len();
        assert!(rx.next_record().unwrap().is_none());
        assert!(
            rx.capacity() <= 2 * fed + 4096,
            "capacity {} after {fed} bytes",
            rx.capacity()
        );
    }
    assert_eq!(rx.buffered(), fed);
    assert!(
        (rx.capacity() as u64) < limits.max_record() / 4,
        "capacity {} follows the input, not the announced size",
        rx.capacity()
    );
}

#[test]
fn one_byte_at_a_time_stays_bounded() {
    let limits = Limits {
        front: 1 << 20,
        middle: 0,
        data: 0,
    };
    let mut rx = Receiver::new(FooterKind::Old, limits);
    rx.push(&header(1 << 20, 0, 0));
    for _ in 0..100_000 {
        rx.push(&[7]);
        assert!(rx.next_record().unwrap().is_none());
    }
    let fed = 54 + 100_000;
    assert!(rx.capacity() <= 2 * fed + 4096, "{}", rx.capacity());
}
