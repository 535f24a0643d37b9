//! Our client handshake driven byte by byte against the recorded bytes of a real ceph-mon
//! 16.2.15 (`tests/data/v1-auth.server.bin`), and our server handshake fed the recorded
//! bytes of real clients (`*.client.bin`).

mod common;

use common::pair::drain;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use ceph_msgr::conn::{Config, Connection, Event, State};
use ceph_msgr::wire::handshake::{
    features, ClientHello, ConnectMsg, EntityAddr, CLIENT_HELLO_LEN, CONNECT_LEN,
};
use ceph_msgr::wire::{tag, EntityName, EntityType, MsgHeader};

fn mon_sock() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 6789))
}

#[test]
fn client_handshake_against_recorded_mon_bytes_one_byte_at_a_time() {
    for name in ["v1-auth", "v1-final"] {
        let server = std::fs::read(format!("tests/data/{name}.server.bin")).unwrap();
        let now = Instant::now();
        let mut cfg = Config::client(EntityName::client(0));
        cfg.nonce = 0x2176;
        let mut c = Connection::client(cfg, mon_sock(), EntityType::Mon);
        assert!(matches!(c.poll_event(), Some(Event::OpenTransport)));
        c.transport_connected(now);
        // Banner + our address go out at once.
        let hello = drain(&mut c);
        assert_eq!(hello.len(), CLIENT_HELLO_LEN);
        let h = ClientHello::decode(&hello).unwrap();
        assert_eq!(h.addr.nonce, 0x2176);

        let mut out = Vec::new();
        let mut events = Vec::new();
        for (i, b) in server.iter().enumerate() {
            c.handle_input(now, std::slice::from_ref(b));
            out.extend(drain(&mut c));
            while let Some(e) = c.poll_event() {
                events.push((i, e));
            }
        }
        // The connect went out after the mon's 281-byte hello.
        let connect = ConnectMsg::decode(&out).unwrap();
        assert_eq!(connect.features, features::KERNEL_LIKE);
        assert_eq!(connect.host_type, 8);
        assert_eq!(connect.protocol_version, 15);
        assert_eq!((connect.connect_seq, connect.global_seq), (0, 1));
        assert_eq!(connect.authorizer_len, 0);
        // Then our in_seq (SEQ exchange), then an ACK for the mon's two messages.
        assert_eq!(&out[CONNECT_LEN..CONNECT_LEN + 8], &[0u8; 8]);
        let rest = &out[CONNECT_LEN + 8..];
        assert_eq!(rest[0], tag::ACK, "{rest:?}");
        assert_eq!(c.state(), State::Open);
        assert_eq!(c.my_addr().addr.unwrap().ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(c.peer_addr().addr, Some(mon_sock()));

        let opened = events.iter().find_map(|(i, e)| match e {
            Event::Opened {
                features,
                reply_tag,
                lossy,
                ..
            } => Some((*i, *features, *reply_tag, *lossy)),
            _ => None,
        });
        let (at, feats, reply_tag, lossy) = opened.expect("session opened");
        assert_eq!(
            at,
            281 + 26 + 8 - 1,
            "opens on the last byte of the mon's in_seq"
        );
        assert_eq!(reply_tag, tag::SEQ);
        assert!(lossy, "the mon runs client sessions lossy");
        assert_eq!(feats, features::KERNEL_LIKE & 0x3f01_cfbd_fffd_ffff);
        let msgs: Vec<&MsgHeader> = events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message(m) => Some(&m.header),
                _ => None,
            })
            .collect();
        assert_eq!(msgs.len(), 2, "{name}");
        assert_eq!((msgs[0].seq, msgs[0].ty), (1, 18), "MAuthReply");
        assert_eq!((msgs[1].seq, msgs[1].ty), (2, 4), "MonMap");
        assert_eq!(msgs[0].src.ty, EntityType::Mon);
        assert_eq!(c.in_seq(), 2);
    }
}

#[test]
fn server_handshake_accepts_recorded_real_clients() {
    // A kernel-like client and librados talking to a mon; librados talking to an OSD.
    for (name, me) in [
        ("v1-auth", EntityType::Mon),
        ("rados-v1-mon", EntityType::Mon),
        ("rados-v1-osd-write", EntityType::Osd),
        ("rados-v1-osd-read", EntityType::Osd),
    ] {
        let client = std::fs::read(format!("tests/data/{name}.client.bin")).unwrap();
        let now = Instant::now();
        let cfg = Config::server(EntityName { ty: me, num: 0 });
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 45814));
        let mut s = Connection::server(cfg, EntityAddr::new(Some(mon_sock()), 0), peer);
        let banner = drain(&mut s);
        assert_eq!(banner.len(), 281);
        let mut out = Vec::new();
        let mut msgs = Vec::new();
        for b in &client {
            s.handle_input(now, std::slice::from_ref(b));
            out.extend(drain(&mut s));
            while let Some(e) = s.poll_event() {
                match e {
                    Event::Message(m) => msgs.push(m.header.ty),
                    Event::Opened { .. } | Event::Acked(_) | Event::KeepaliveAck { .. } => {}
                    Event::Closed { .. } => {} // the recording ends with RST/FIN or CLOSE
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        }
        assert_eq!(out[0], tag::SEQ, "{name}: reply tag");
        assert!(!msgs.is_empty(), "{name}: no message delivered");
        let first = if me == EntityType::Mon { 17 } else { 42 };
        assert_eq!(msgs[0], first, "{name}: first message type");
    }
}

#[test]
fn client_reports_a_msgr2_banner_without_waiting_for_a_full_hello() {
    // A msgr2-only port sends "ceph v2\n", a 2-byte length and 16 feature bytes, then
    // waits for our banner: 26 bytes must be enough to tell.
    let now = Instant::now();
    let mut c = Connection::client(
        Config::client(EntityName::client(0)),
        mon_sock(),
        EntityType::Mon,
    );
    assert!(matches!(c.poll_event(), Some(Event::OpenTransport)));
    c.transport_connected(now);
    drain(&mut c);
    let mut v2 = b"ceph v2\n\x10\x00".to_vec();
    v2.extend_from_slice(&[0u8; 16]);
    c.handle_input(now, &v2);
    match c.poll_event() {
        Some(Event::Closed {
            error: Some(ceph_msgr::conn::Error::Handshake(e)),
            ..
        }) => assert_eq!(e, ceph_msgr::wire::DecodeError::Msgr2Banner),
        other => panic!("{other:?}"),
    }
}
