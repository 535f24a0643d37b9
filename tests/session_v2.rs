//! msgr2.1 crc-mode sessions, both roles, through the in-memory pump: the handshake,
//! messages both ways with acks, keepalives, revoke mid-frame (the peer drops the aborted
//! frame and the session stays up), one listener serving v1 and v2, and bad input.

mod common;

use bytes::Bytes;
use ceph_msgr::conn::{Error, State};
use ceph_msgr::{Config, Event, Message, Protocol, Revoked};
use common::pair::{drain, Pair};

fn v2_pair(client_proto: Protocol) -> Pair {
    let (mut c, mut s) = Pair::default_configs();
    c.protocol = client_proto;
    s.protocol = Protocol::V2; // accept both
    let mut p = Pair::new(c, s);
    p.pump();
    p
}

fn messages(evs: &[Event]) -> Vec<(u64, Vec<u8>)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.header.seq, [&m.front[..], &m.data[..]].concat())),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_opens_both_sides_and_messages_flow_both_ways() {
    let mut p = v2_pair(Protocol::V2);
    assert_eq!(p.client.state(), State::Open, "{:?}", p.client_events);
    assert_eq!(p.server.state(), State::Open, "{:?}", p.server_events);
    assert_eq!(p.client.protocol(), Protocol::V2);
    assert_eq!(p.server.protocol(), Protocol::V2);
    assert_ne!(p.client.global_id(), 0, "the server assigned a global id");
    for i in 0..5u8 {
        p.client
            .send(Message::new(42).with_front(Bytes::from(vec![i; 100 + usize::from(i)])))
            .unwrap();
        p.server
            .send(Message::new(43).with_data_chunk(Bytes::from(vec![i; 5000])))
            .unwrap();
    }
    p.pump();
    let got = messages(&p.server_events);
    assert_eq!(got.len(), 5);
    for (i, (seq, body)) in got.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(body, &vec![i as u8; 100 + i]);
    }
    assert_eq!(messages(&p.client_events).len(), 5);
    // Acks flowed: both sides released everything.
    assert_eq!(p.client.messenger().len(), 0);
    assert_eq!(p.server.messenger().len(), 0);
    // The source of a received message is the peer's type and gid.
    let src = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => Some(m.header.src),
            _ => None,
        })
        .unwrap();
    assert_eq!(src.ty, ceph_msgr::EntityType::Client);
}

#[test]
fn keepalive_round_trip() {
    let mut p = v2_pair(Protocol::V2);
    p.client.send_keepalive(p.now);
    p.pump();
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::KeepaliveAck { rtt: Some(_) })));
}

#[test]
fn one_listener_serves_v1_clients_too() {
    let mut p = v2_pair(Protocol::V1);
    assert_eq!(p.server.state(), State::Open, "{:?}", p.server_events);
    assert_eq!(p.server.protocol(), Protocol::V1);
    p.client
        .send(Message::new(42).with_front(Bytes::from_static(b"over v1")))
        .unwrap();
    p.pump();
    assert_eq!(messages(&p.server_events), [(1, b"over v1".to_vec())]);
}

#[test]
fn a_message_revoked_mid_frame_is_dropped_and_the_session_stays_up() {
    let mut p = v2_pair(Protocol::V2);
    let big = p
        .client
        .send(Message::new(42).with_data_chunk(Bytes::from(vec![9u8; 10_000])))
        .unwrap();
    // Write 500 bytes of it, then revoke.
    let t = p.client.poll_transmit();
    let mut out = Vec::new();
    t.copy_to(&mut out);
    out.truncate(500);
    p.client.advance(500).unwrap();
    let r = p.client.revoke(big);
    assert!(matches!(r, Revoked::Aborted { seq: 1, .. }), "{r:?}");
    p.server.handle_input(p.now, &out);
    p.client
        .send(Message::new(42).with_front(Bytes::from_static(b"next")))
        .unwrap();
    p.pump();
    assert!(p
        .server_events
        .iter()
        .any(|e| matches!(e, Event::AbortedMessage(h) if h.seq == 1)));
    assert_eq!(messages(&p.server_events), [(2, b"next".to_vec())]);
    assert_eq!(p.server.state(), State::Open);
    assert_eq!(p.server.stats().aborted_in, 1);
    assert_eq!(p.server.stats().faults, 0);
    assert_eq!(p.client.stats().faults, 0);
}

#[test]
fn a_header_only_message_past_its_first_byte_completes() {
    let mut p = v2_pair(Protocol::V2);
    let id = p.client.send(Message::new(5)).unwrap();
    let t = p.client.poll_transmit();
    let mut out = Vec::new();
    t.copy_to(&mut out);
    p.client.advance(10).unwrap();
    assert_eq!(
        p.client.revoke(id),
        Revoked::Completing { seq: 1, left: 67 }
    );
    p.server.handle_input(p.now, &out[..10]);
    p.pump();
    assert_eq!(messages(&p.server_events), [(1, Vec::new())]);
}

#[test]
fn a_corrupted_byte_faults_with_a_typed_error_and_keeps_lossless_messages() {
    let (mut c, mut s) = Pair::default_configs();
    c.protocol = Protocol::V2;
    c.lossy = false;
    s.protocol = Protocol::V2;
    s.lossy = false;
    let mut p = Pair::new(c, s);
    p.pump();
    assert_eq!(p.client.state(), State::Open);
    p.client
        .send(Message::new(42).with_front(Bytes::from(vec![3u8; 64])))
        .unwrap();
    let mut bytes = drain(&mut p.client);
    bytes[40] ^= 0xFF; // inside header2: its CRC no longer matches
    p.server.handle_input(p.now, &bytes);
    p.collect();
    assert!(
        p.server_events.iter().any(|e| matches!(
            e,
            Event::Fault {
                error: Error::Frame(_)
            } | Event::Closed {
                error: Some(Error::Frame(_)),
                ..
            }
        )),
        "{:?}",
        p.server_events
    );
    // The client still holds its unacknowledged message for the next transport.
    assert_eq!(p.client.messenger().len(), 1);
}

#[test]
fn a_v1_server_is_refused_by_a_v2_client_with_a_typed_error() {
    let (mut c, s) = Pair::default_configs();
    c.protocol = Protocol::V2;
    let mut p = Pair::new(c, s); // the server speaks v1 only
    p.pump();
    assert!(
        p.client_events.iter().any(|e| matches!(
            e,
            Event::Closed {
                error: Some(Error::Banner(_)),
                ..
            } | Event::Fault {
                error: Error::Banner(_)
            }
        )),
        "{:?}",
        p.client_events
    );
}

#[test]
fn config_default_protocol_is_v1() {
    assert_eq!(
        Config::client(ceph_msgr::EntityName::client(1)).protocol,
        Protocol::V1
    );
}

#[test]
fn skip_incoming_discards_the_rest_of_a_message_without_buffering_it() {
    let mut p = v2_pair(Protocol::V2);
    p.client
        .send(Message::new(42).with_data_chunk(Bytes::from(vec![7u8; 1 << 20])))
        .unwrap();
    p.client
        .send(Message::new(42).with_front(Bytes::from_static(b"after")))
        .unwrap();
    let bytes = drain(&mut p.client);
    // The head of the big frame arrives: the receiver sees it and skips the message.
    p.server.handle_input(p.now, &bytes[..200]);
    let h = p
        .server
        .incoming_message()
        .expect("a message head is buffered");
    assert_eq!(h.seq, 1);
    assert_eq!(p.server.skip_incoming(p.now), Some(1));
    // The rest streams in small pieces; the receiver never holds much of it.
    let mut peak = 0;
    for chunk in bytes[200..].chunks(16 << 10) {
        p.server.handle_input(p.now, chunk);
        peak = peak.max(p.server.receive_capacity());
    }
    p.collect();
    assert!(peak <= 256 << 10, "peak receive capacity {peak}");
    assert_eq!(messages(&p.server_events), [(2, b"after".to_vec())]);
    assert_eq!(p.server.stats().skipped_in, 1);
    assert_eq!(p.server.in_seq(), 2);
    assert_eq!(p.server.state(), State::Open);
    // Both are acknowledged: the client releases them.
    p.pump();
    assert_eq!(p.client.messenger().len(), 0);
}
