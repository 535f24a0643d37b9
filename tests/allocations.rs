//! The hot path allocates nothing per message beyond the message itself: a steady stream
//! of messages from a client to a server `Connection` (sent, written, read in place,
//! parsed, CRC-checked, delivered, acknowledged, trimmed) is counted with an allocator
//! that counts calls on this thread. Messages are built before counting starts; the
//! stream is moved through two reused buffers, so the harness allocates nothing either.
//!
//! What may remain is amortized growth (queues that double, the receive buffer when a
//! delivered message still holds the old block): a small fraction of an allocation per
//! message, which the bound below allows for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::IoSlice;

#[path = "common/pair.rs"]
mod pair;

use bytes::Bytes;
use ceph_msgr::conn::Event;
use ceph_msgr::{Connection, Message};
use pair::Pair;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts calls on
// the current thread (a const-initialized thread-local `Cell`, which never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Moves everything `from` offers into `to`, through `wire` (reused), reading in place.
fn transfer(p: &mut Pair, to_server: bool, wire: &mut Vec<u8>) {
    let (from, to) = if to_server {
        (&mut p.client, &mut p.server)
    } else {
        (&mut p.server, &mut p.client)
    };
    loop {
        wire.clear();
        let mut s = [IoSlice::new(&[]); 64];
        let k = from.poll_transmit().fill(&mut s);
        for x in &s[..k] {
            wire.extend_from_slice(x);
        }
        if wire.is_empty() {
            return;
        }
        from.advance(wire.len()).expect("advance");
        to.read_with(p.now, wire.len(), |buf| buf.extend_from_slice(wire));
    }
}

/// Drains events; returns how many messages were delivered. Their data is kept in `held`
/// if given (a consumer still using it), else dropped at once.
fn deliveries(c: &mut Connection, mut held: Option<&mut Vec<Bytes>>) -> usize {
    let mut n = 0;
    while let Some(e) = c.poll_event() {
        match e {
            Event::Message(m) => {
                assert_eq!(m.data.len(), 4096);
                if let Some(h) = held.as_deref_mut() {
                    h.push(m.data);
                }
                n += 1;
            }
            Event::Acked(_) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    n
}

#[test]
fn a_steady_stream_allocates_nothing_per_message_beyond_the_message() {
    steady_stream(ceph_msgr::Protocol::V1);
}

#[test]
fn a_steady_msgr2_stream_allocates_nothing_per_message_beyond_the_message() {
    steady_stream(ceph_msgr::Protocol::V2);
}

/// The allocation counter is global: one measurement at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn steady_stream(protocol: ceph_msgr::Protocol) {
    let _one_at_a_time = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The counter counts (so a zero below means something).
    let a0 = allocs();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert_eq!(allocs(), a0 + 1);
    drop(v);
    let (mut c, mut s) = Pair::default_configs();
    c.protocol = protocol;
    s.protocol = protocol;
    let mut p = Pair::new(c, s);
    p.pump();
    assert_eq!(p.server.protocol(), protocol);
    p.client_events.clear();
    p.server_events.clear();
    let payload = Bytes::from(vec![7u8; 4096]);
    let mut wire = Vec::with_capacity(1 << 20);
    // Data of the previous round's messages, when the consumer holds on to it.
    let mut held: Vec<Bytes> = Vec::with_capacity(64);
    let mut round = |p: &mut Pair, msgs: Vec<Message>, hold: bool| -> (usize, u64) {
        let before = allocs();
        let n = msgs.len();
        for m in msgs {
            p.client.send(m).expect("send");
        }
        transfer(p, true, &mut wire);
        held.clear();
        let got = deliveries(&mut p.server, hold.then_some(&mut held));
        transfer(p, false, &mut wire);
        let _ = deliveries(&mut p.client, None);
        assert_eq!(got, n);
        assert!(
            p.client.messenger().is_empty(),
            "every message acknowledged"
        );
        (got, allocs() - before)
    };
    let batch = |tid0: u64, n: u64| -> Vec<Message> {
        (0..n)
            .map(|i| {
                Message::new(42)
                    .with_tid(tid0 + i)
                    .with_data_chunk(payload.clone())
            })
            .collect()
    };
    // Warm-up: queues and buffers reach their working size.
    for r in 0..20 {
        let msgs = batch(r * 16, 16);
        round(&mut p, msgs, false);
    }
    let mut measure = |p: &mut Pair, rounds: std::ops::Range<u64>, hold: bool| {
        let (mut delivered, mut counted) = (0, 0);
        for r in rounds {
            let msgs = batch(r * 16, 16);
            let (n, a) = round(p, msgs, hold);
            delivered += n;
            counted += a;
        }
        let per_message = counted as f64 / delivered as f64;
        eprintln!(
            "{protocol}: {delivered} messages of 4 KiB, 16 per round, {}: {counted} allocations, {per_message:.3} per message",
            if hold { "each round's data held until the next" } else { "dropped on delivery" }
        );
        per_message
    };
    // Messages dropped as they are delivered: the receive buffer is reclaimed in place.
    let dropped = measure(&mut p, 20..1020, false);
    assert!(dropped < 0.01, "{dropped:.3} allocations per message");
    // A consumer that holds a round of messages keeps the block they were read into, so
    // the receive buffer takes a new one: two allocations per round (the block, and the
    // shared header `bytes` gives it when the first message is split off), never one per
    // message.
    let held = measure(&mut p, 1020..2020, true);
    assert!(held <= 3.0 / 16.0, "{held:.3} allocations per message");
}
