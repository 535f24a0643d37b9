//! Every wait on a peer ends: a peer that accepts and never speaks, one that stops in the
//! middle of the handshake, and one that goes silent once open, each end as
//! `Error::Timeout` from injected time, for both protocols and both policies.

use std::time::{Duration, Instant};

use ceph_msgr::conn::{Error, TimeoutKind};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::{Config, Connection, EntityName, EntityType, Event, Protocol};

fn drain_writes(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let t = c.poll_transmit();
        if t.is_empty() {
            return out;
        }
        let n = t.len() as usize;
        t.copy_to(&mut out);
        c.advance(n).unwrap();
    }
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn timed_out(evs: &[Event], kind: TimeoutKind) -> bool {
    evs.iter().any(|e| {
        matches!(e, Event::Closed { error: Some(Error::Timeout(k)), .. }
            | Event::Fault { error: Error::Timeout(k) } if *k == kind)
    })
}

fn client(protocol: Protocol, lossy: bool) -> Connection {
    let mut cfg = Config::client(EntityName::client(7));
    cfg.protocol = protocol;
    cfg.lossy = lossy;
    cfg.handshake_timeout = Some(Duration::from_secs(5));
    Connection::client(cfg, "127.0.0.1:3300".parse().unwrap(), EntityType::Mon)
}

#[test]
fn a_peer_that_never_speaks_times_out_the_handshake() {
    for protocol in [Protocol::V1, Protocol::V2] {
        for lossy in [true, false] {
            let t0 = Instant::now();
            let mut c = client(protocol, lossy);
            assert!(matches!(events(&mut c)[..], [Event::OpenTransport]));
            c.transport_connected(t0);
            let _ = drain_writes(&mut c);
            let deadline = c.poll_timeout().expect("a handshake deadline");
            assert_eq!(
                deadline,
                t0 + Duration::from_secs(5),
                "{protocol} lossy={lossy}"
            );
            c.handle_timeout(t0 + Duration::from_secs(4));
            assert!(events(&mut c).is_empty(), "not yet");
            c.handle_timeout(deadline);
            let evs = events(&mut c);
            assert!(
                timed_out(&evs, TimeoutKind::Handshake),
                "{protocol} lossy={lossy}: {evs:?}"
            );
            if lossy {
                assert_eq!(c.state(), ceph_msgr::conn::State::Closed);
            } else {
                // A lossless client backs off and tries again, with a fresh deadline.
                assert_eq!(c.state(), ceph_msgr::conn::State::Backoff);
                let t1 = c.poll_timeout().unwrap();
                c.handle_timeout(t1);
                assert!(matches!(events(&mut c)[..], [Event::OpenTransport]));
                c.transport_connected(t1);
                assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(5)));
            }
        }
    }
}

#[test]
fn a_peer_that_stops_mid_handshake_times_out() {
    let t0 = Instant::now();
    let mut c = client(Protocol::V1, true);
    c.transport_connected(t0);
    let _ = drain_writes(&mut c);
    // Half of a v1 server banner, then nothing.
    c.handle_input(t0 + Duration::from_secs(1), b"ceph v027\x00\x00");
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(timed_out(&events(&mut c), TimeoutKind::Handshake));
}

#[test]
fn a_server_whose_client_never_speaks_times_out() {
    let t0 = Instant::now();
    let mut cfg = Config::server(EntityName {
        ty: EntityType::Mon,
        num: 0,
    });
    cfg.handshake_timeout = Some(Duration::from_secs(3));
    let me = EntityAddr::new(Some("127.0.0.1:6789".parse().unwrap()), 0);
    let mut s = Connection::server(cfg, me, "127.0.0.1:50000".parse().unwrap());
    assert_eq!(s.poll_timeout(), None, "no instant seen yet");
    s.handle_timeout(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    s.handle_timeout(t0 + Duration::from_secs(3));
    assert!(timed_out(&events(&mut s), TimeoutKind::Handshake));
}

#[test]
fn no_timeout_when_disabled() {
    let t0 = Instant::now();
    let mut cfg = Config::client(EntityName::client(7));
    cfg.handshake_timeout = None;
    let mut c = Connection::client(cfg, "127.0.0.1:6789".parse().unwrap(), EntityType::Mon);
    c.transport_connected(t0);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(t0 + Duration::from_secs(86_400));
    assert!(events(&mut c)
        .iter()
        .all(|e| !matches!(e, Event::Closed { .. } | Event::Fault { .. })));
}

mod common;

/// An open v1 pair over the in-memory pump, with the given client tweaks.
fn open_pair(tweak: impl FnOnce(&mut Config)) -> common::pair::Pair {
    let (mut c, s) = common::pair::Pair::default_configs();
    tweak(&mut c);
    let mut p = common::pair::Pair::new(c, s);
    p.pump();
    assert_eq!(p.client.state(), ceph_msgr::conn::State::Open);
    p
}

#[test]
fn a_peer_that_goes_silent_once_open_times_out() {
    let mut p = open_pair(|c| {
        c.peer_timeout = Some(Duration::from_secs(10));
        c.keepalive_interval = Some(Duration::from_secs(3));
    });
    let t0 = p.now;
    // A healthy peer answers keepalives: the deadline keeps moving.
    for i in 1..=5u64 {
        p.now = t0 + Duration::from_secs(3 * i);
        p.client.handle_timeout(p.now);
        p.pump();
        assert_eq!(p.client.state(), ceph_msgr::conn::State::Open, "round {i}");
    }
    // Now the server stops answering: the client gives up 10 s after it last heard.
    let heard = p.now;
    loop {
        let at = p
            .client
            .poll_timeout()
            .expect("keepalive or silence deadline");
        p.client.handle_timeout(at);
        let _ = common::pair::drain(&mut p.client); // sent into the void
        if p.client.state() != ceph_msgr::conn::State::Open {
            assert_eq!(at, heard + Duration::from_secs(10));
            break;
        }
    }
    assert!(timed_out(&events(&mut p.client), TimeoutKind::PeerSilent));
}

#[test]
fn flow_control_refuses_past_the_limit_until_acks_come() {
    use ceph_msgr::{Message, QueueError};
    let mut p = open_pair(|c| c.max_queued_bytes = Some(10_000));
    let msg = || Message::new(42).with_data_chunk(bytes::Bytes::from(vec![1u8; 4000]));
    p.client.send(msg()).unwrap();
    p.client.send(msg()).unwrap();
    assert_eq!(p.client.send_room(), 2000);
    assert_eq!(
        p.client.send(msg()),
        Err(QueueError::Full {
            held: 8000,
            limit: 10_000
        })
    );
    // Once the server acknowledged them, there is room again.
    p.pump();
    assert_eq!(p.client.messenger().held_bytes(), 0);
    assert_eq!(p.client.send_room(), u64::MAX);
    // A message larger than the limit still goes when nothing else is held.
    let big = Message::new(42).with_data_chunk(bytes::Bytes::from(vec![1u8; 50_000]));
    assert!(p.client.send(big).is_ok());
    assert!(matches!(p.client.send(msg()), Err(QueueError::Full { .. })));
}
