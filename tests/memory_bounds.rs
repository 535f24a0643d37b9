//! A peer cannot make a connection hold more than the configured limits: lengths over a
//! limit are refused when the header arrives, before anything is buffered for the body;
//! a record up to `Limits::eager_reserve` is reserved whole when its header arrives (one
//! allocation, no copies as it trickles in); and a peer that announces a larger record
//! and trickles it in makes the buffer grow with what actually arrived — at most twice the
//! bytes received (the buffer doubles when it grows) — never by the announced size.

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
    let limits = Limits::default();
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
        eager_reserve: 0,
        ..Limits::default()
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

#[test]
fn records_up_to_the_eager_limit_are_reserved_once() {
    let limits = Limits::default();
    let mut rx = Receiver::new(FooterKind::New, limits);
    let total = 54 + (4 << 20) + 21;
    rx.push(&header(0, 0, 4 << 20));
    assert!(rx.next_record().unwrap().is_none());
    let cap = rx.capacity();
    assert!(cap >= total, "reserved {cap} for a {total}-byte record");
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..63 {
        rx.push(&chunk);
        assert!(rx.next_record().unwrap().is_none());
        assert_eq!(
            rx.capacity(),
            cap,
            "no reallocation while the record arrives"
        );
    }
}
