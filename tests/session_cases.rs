//! Scripted session cases: every connect-reply tag on both roles, keepalives, lossy and
//! lossless faults, and hostile input (each gives a typed error, no panic, and the queued
//! messages survive).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Authorizer, Config, Connection, Error, Event, OnAborted, State, Verdict};
use ceph_msgr::recv::RecvError;
use ceph_msgr::wire::handshake::{
    features, ConnectMsg, ConnectReply, EntityAddr, ServerHello, CLIENT_HELLO_LEN, CONNECT_LEN,
};
use ceph_msgr::wire::{
    ceph_crc32c, tag, DecodeError, EntityName, EntityType, Footer, FooterKind, MsgHeader,
};
use ceph_msgr::Message;
use common::pair::{client_sock, drain, server_sock, Pair};

fn msg(tid: u64, front: &'static [u8]) -> Message {
    Message::new(42)
        .with_tid(tid)
        .with_front(Bytes::from_static(front))
}

fn server_hello() -> Vec<u8> {
    ServerHello {
        addr: EntityAddr::new(Some(server_sock()), 0),
        peer_addr_for_me: EntityAddr::new(Some(client_sock()), 0),
    }
    .encode()
    .to_vec()
}

fn reply(t: u8) -> ConnectReply {
    ConnectReply {
        tag: t,
        features: features::KERNEL_LIKE,
        global_seq: 9,
        connect_seq: 1,
        protocol_version: 24,
        authorizer_len: 0,
        flags: 0,
    }
}

/// A client with its hello sent and the server's hello received: the connect is out.
fn client_at_connect(cfg: Config) -> (Connection, Instant, Vec<u8>) {
    let now = Instant::now();
    let mut c = Connection::client(cfg, server_sock(), EntityType::Osd);
    let _ = c.poll_event();
    c.transport_connected(now);
    assert_eq!(drain(&mut c).len(), CLIENT_HELLO_LEN);
    c.handle_input(now, &server_hello());
    let out = drain(&mut c);
    (c, now, out)
}

/// A client opened with READY against a scripted server.
fn open_client(cfg: Config) -> (Connection, Instant) {
    let (mut c, now, _) = client_at_connect(cfg);
    c.handle_input(now, &reply(tag::READY).encode());
    assert_eq!(c.state(), State::Open);
    let _ = drain(&mut c);
    while c.poll_event().is_some() {}
    (c, now)
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn closed_error(evs: &[Event]) -> Option<&Error> {
    evs.iter().find_map(|e| match e {
        Event::Closed { error, .. } => error.as_ref(),
        _ => None,
    })
}

fn fault_error(evs: &[Event]) -> Option<&Error> {
    evs.iter().find_map(|e| match e {
        Event::Fault { error } => Some(error),
        Event::Closed { error, .. } => error.as_ref(),
        _ => None,
    })
}

/// An encoded message frame (seq, front), with a 21-byte footer.
fn frame(seq: u64, front: &[u8], complete: bool) -> Vec<u8> {
    let h = MsgHeader {
        seq,
        tid: seq,
        ty: 42,
        priority: 127,
        version: 1,
        front_len: front.len() as u32,
        middle_len: 0,
        data_len: 0,
        data_off: 0,
        src: EntityName {
            ty: EntityType::Osd,
            num: 0,
        },
        compat_version: 1,
    };
    let mut v = vec![tag::MSG];
    v.extend_from_slice(&h.encode());
    v.extend_from_slice(front);
    let f = Footer {
        front_crc: ceph_crc32c(0, front),
        flags: u8::from(complete),
        ..Footer::default()
    };
    let mut b = [0u8; 21];
    let n = f.encode(FooterKind::New, &mut b);
    if complete {
        v.extend_from_slice(&b[..n]);
    } else {
        v.extend_from_slice(&[0u8; 21]);
    }
    v
}

// ----- both roles, end to end ------------------------------------------------------------

#[test]
fn open_exchange_and_ack_both_ways() {
    let (c, s) = Pair::default_configs();
    let mut p = Pair::new(c, s);
    p.pump();
    assert_eq!(p.client.state(), State::Open);
    assert_eq!(p.server.state(), State::Open);
    for i in 1..=3 {
        p.client.send(msg(i, b"to server")).unwrap();
    }
    p.server.send(msg(7, b"to client")).unwrap();
    p.pump();
    let got: Vec<u64> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.header.seq),
            _ => None,
        })
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::Message(m) if &m.front[..] == b"to client")));
    // ACKs flowed back: nothing left to resend on either side.
    assert!(p.client.messenger().is_empty());
    assert!(p.server.messenger().is_empty());
    assert!(p.client_events.iter().any(|e| matches!(e, Event::Acked(3))));
    let opened = p.client_events.iter().find_map(|e| match e {
        Event::Opened {
            reply_tag,
            features,
            ..
        } => Some((*reply_tag, *features)),
        _ => None,
    });
    assert_eq!(opened, Some((tag::SEQ, features::KERNEL_LIKE)));
}

#[test]
fn keepalive2_round_trip_reports_rtt_and_interval_timer_fires() {
    let (mut c, s) = Pair::default_configs();
    c.keepalive_interval = Some(Duration::from_secs(1));
    let mut p = Pair::new(c, s);
    p.pump();
    let t0 = p.now;
    assert_eq!(p.client.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    p.client.handle_timeout(t0 + Duration::from_secs(1));
    let ka = drain(&mut p.client);
    assert_eq!(ka[0], tag::KEEPALIVE2);
    p.server.handle_input(t0, &ka);
    let ack = drain(&mut p.server);
    assert_eq!(ack[0], tag::KEEPALIVE2_ACK);
    assert_eq!(&ack[1..9], &ka[1..9], "the stamp is echoed");
    p.client
        .handle_input(t0 + Duration::from_millis(1005), &ack);
    let evs = events(&mut p.client);
    assert!(
        evs.iter().any(
            |e| matches!(e, Event::KeepaliveAck { rtt: Some(d) } if *d == Duration::from_millis(5))
        ),
        "{evs:?}"
    );
}

#[test]
fn lossy_fault_hands_queued_messages_back() {
    let (c, s) = Pair::default_configs();
    let mut p = Pair::new(c, s);
    p.pump();
    let ids: Vec<_> = (1..=3)
        .map(|i| p.client.send(msg(i, b"x")).unwrap())
        .collect();
    p.client.transport_failed(p.now, "reset by peer");
    let evs = events(&mut p.client);
    let unsent = evs
        .iter()
        .find_map(|e| match e {
            Event::Closed { unsent, error } => {
                assert!(matches!(error, Some(Error::Transport(_))));
                Some(unsent.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            }
            _ => None,
        })
        .expect("closed");
    assert_eq!(unsent, ids);
    assert_eq!(p.client.state(), State::Closed);
    assert!(p.client.send(msg(9, b"late")).is_err());
}

#[test]
fn lossless_client_of_lossy_server_reconnects_and_resends_with_fresh_seqs() {
    let (mut c, mut s) = Pair::default_configs();
    c.lossy = false;
    s.lossy = true;
    let scfg = s.clone();
    let mut p = Pair::new(c, s);
    p.pump();
    p.client.send(msg(1, b"one")).unwrap();
    p.client.send(msg(2, b"two")).unwrap();
    // The messages reach the wire but the server dies before acking.
    let lost = drain(&mut p.client);
    assert!(!lost.is_empty());
    p.client.transport_failed(p.now, "server went away");
    assert_eq!(p.client.state(), State::Backoff);
    assert_eq!(p.client.messenger().len(), 2, "nothing queued is lost");
    let wake = p.client.poll_timeout().expect("backoff timer");
    p.client.handle_timeout(wake);
    assert!(matches!(
        events(&mut p.client).last(),
        Some(Event::OpenTransport)
    ));
    p.client.transport_connected(wake);
    p.server = Connection::server(scfg, EntityAddr::new(Some(server_sock()), 1), client_sock());
    p.server_events.clear();
    p.pump();
    let got: Vec<(u64, Bytes)> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.header.seq, m.front.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, Bytes::from_static(b"one")),
            (2, Bytes::from_static(b"two"))
        ]
    );
    assert!(p.client.messenger().is_empty());
}

// ----- client: every reply tag --------------------------------------------------------------

#[test]
fn client_reply_tags() {
    let cfg = || Config::client(EntityName::client(1));

    // FEATURES: fatal, names the missing bits.
    let (mut c, now, _) = client_at_connect(cfg());
    let mut r = reply(tag::FEATURES);
    r.features = features::KERNEL_LIKE | (1 << 62);
    c.handle_input(now, &r.encode());
    assert_eq!(
        closed_error(&events(&mut c)),
        Some(&Error::MissingFeatures { missing: 1 << 62 })
    );

    // BADPROTOVER: fatal.
    let (mut c, now, _) = client_at_connect(cfg());
    let mut r = reply(tag::BADPROTOVER);
    r.protocol_version = 99;
    c.handle_input(now, &r.encode());
    assert_eq!(
        closed_error(&events(&mut c)),
        Some(&Error::BadProtocolVersion {
            ours: 24,
            theirs: 99
        })
    );

    // BADAUTHORIZER: one retry, then fatal.
    let (mut c, now, _) = client_at_connect(cfg());
    c.handle_input(now, &reply(tag::BADAUTHORIZER).encode());
    assert_eq!(drain(&mut c).len(), CONNECT_LEN + 22, "connect sent again");
    c.handle_input(now, &reply(tag::BADAUTHORIZER).encode());
    assert_eq!(closed_error(&events(&mut c)), Some(&Error::AuthFailed));

    // RETRY_SESSION: adopt the server's connect_seq.
    let (mut c, now, first) = client_at_connect(cfg());
    assert_eq!(ConnectMsg::decode(&first).unwrap().connect_seq, 0);
    let mut r = reply(tag::RETRY_SESSION);
    r.connect_seq = 5;
    c.handle_input(now, &r.encode());
    assert_eq!(ConnectMsg::decode(&drain(&mut c)).unwrap().connect_seq, 5);

    // RETRY_GLOBAL: a global_seq above the server's.
    let (mut c, now, _) = client_at_connect(cfg());
    let mut r = reply(tag::RETRY_GLOBAL);
    r.global_seq = 100;
    c.handle_input(now, &r.encode());
    assert_eq!(ConnectMsg::decode(&drain(&mut c)).unwrap().global_seq, 101);

    // RESETSESSION: messages handed back, seqs start over, connect_seq 0.
    let (mut c, now, _) = client_at_connect(cfg());
    let id = c.send(msg(1, b"queued")).unwrap();
    c.handle_input(now, &reply(tag::RESETSESSION).encode());
    let evs = events(&mut c);
    let unsent = evs.iter().find_map(|e| match e {
        Event::SessionReset { unsent } => Some(unsent.len()),
        _ => None,
    });
    assert_eq!(unsent, Some(1));
    assert_eq!(c.revoke(id), ceph_msgr::Revoked::Unknown);
    assert_eq!(ConnectMsg::decode(&drain(&mut c)).unwrap().connect_seq, 0);

    // WAIT: a client cannot get it.
    let (mut c, now, _) = client_at_connect(cfg());
    c.handle_input(now, &reply(tag::WAIT).encode());
    assert_eq!(closed_error(&events(&mut c)), Some(&Error::UnexpectedWait));

    // A tag that cannot open a reply.
    let (mut c, now, _) = client_at_connect(cfg());
    let mut b = reply(tag::READY).encode();
    b[0] = 99;
    c.handle_input(now, &b);
    assert_eq!(
        closed_error(&events(&mut c)),
        Some(&Error::Handshake(DecodeError::UnknownTag(99)))
    );

    // READY: open, no seq exchange.
    let (mut c, now, _) = client_at_connect(cfg());
    c.handle_input(now, &reply(tag::READY).encode());
    assert_eq!(c.state(), State::Open);
    assert!(drain(&mut c).is_empty());
}

/// An authorizer that records the challenge it was given.
struct Challenged(std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl Authorizer for Challenged {
    fn build(&mut self, _: EntityType, challenge: Option<&[u8]>) -> (u32, Bytes) {
        *self.0.lock().unwrap() = challenge.map(<[u8]>::to_vec);
        (2, Bytes::from_static(b"ticket"))
    }
    fn verify_reply(&mut self, _: &[u8]) -> bool {
        true
    }
    fn verify(&mut self, _: EntityType, _: u32, a: &[u8]) -> Verdict {
        if a == b"ticket" {
            Verdict::Reject
        } else {
            Verdict::Accept(Bytes::new())
        }
    }
}

#[test]
fn challenge_authorizer_reaches_the_hook() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let now = Instant::now();
    let mut c = Connection::client(
        Config::client(EntityName::client(1)),
        server_sock(),
        EntityType::Osd,
    )
    .with_authorizer(Box::new(Challenged(seen.clone())));
    let _ = c.poll_event();
    c.transport_connected(now);
    let _ = drain(&mut c);
    c.handle_input(now, &server_hello());
    let first = drain(&mut c);
    assert_eq!(&first[CONNECT_LEN..], b"ticket");
    let mut r = reply(tag::CHALLENGE_AUTHORIZER);
    r.authorizer_len = 5;
    let mut b = r.encode().to_vec();
    b.extend_from_slice(b"nonce");
    c.handle_input(now, &b);
    assert_eq!(seen.lock().unwrap().as_deref(), Some(&b"nonce"[..]));
    assert_eq!(drain(&mut c).len(), CONNECT_LEN + 6, "connect sent again");
}

// ----- server: replies ------------------------------------------------------------------------

fn server_reply_to(cfg: Config, connect: ConnectMsg, authorizer: &[u8]) -> (Connection, Vec<u8>) {
    let now = Instant::now();
    let mut s = Connection::server(cfg, EntityAddr::new(Some(server_sock()), 1), client_sock());
    let _ = drain(&mut s);
    let mut input = ceph_msgr::wire::handshake::ClientHello {
        addr: EntityAddr::new(Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))), 5),
    }
    .encode()
    .to_vec();
    input.extend_from_slice(&connect.encode());
    input.extend_from_slice(authorizer);
    s.handle_input(now, &input);
    let out = drain(&mut s);
    (s, out)
}

/// The first `ConnectRefused` event, if any.
fn refusal(c: &mut Connection) -> Option<(u8, String)> {
    events(c).into_iter().find_map(|e| match e {
        Event::ConnectRefused { reply_tag, reason } => Some((reply_tag, reason)),
        _ => None,
    })
}

fn connect() -> ConnectMsg {
    ConnectMsg {
        features: features::KERNEL_LIKE,
        host_type: 8,
        global_seq: 1,
        connect_seq: 0,
        protocol_version: 24,
        authorizer_protocol: 0,
        authorizer_len: 0,
        flags: 0,
    }
}

#[test]
fn server_reply_tags() {
    let osd = || {
        Config::server(EntityName {
            ty: EntityType::Osd,
            num: 0,
        })
    };
    // Wrong protocol version.
    let (mut s, out) = server_reply_to(
        osd(),
        ConnectMsg {
            protocol_version: 15,
            ..connect()
        },
        &[],
    );
    assert_eq!(out[0], tag::BADPROTOVER);
    assert_eq!(
        refusal(&mut s),
        Some((
            tag::BADPROTOVER,
            "client speaks protocol 15; connections to osd use 24".to_owned()
        ))
    );
    // Missing required features: the reply carries them.
    let mut cfg = osd();
    cfg.required_features = 1 << 62;
    let (mut s, out) = server_reply_to(cfg, connect(), &[]);
    let r = ConnectReply::decode(&out).unwrap();
    assert_eq!(r.tag, tag::FEATURES);
    assert_ne!(r.features & (1 << 62), 0);
    assert_eq!(
        refusal(&mut s),
        Some((
            tag::FEATURES,
            "missing required features 0x4000000000000000".to_owned()
        ))
    );
    // Authorizer rejected.
    let hook = Box::new(Challenged(Default::default()));
    let now = Instant::now();
    let mut s = Connection::server(
        osd(),
        EntityAddr::new(Some(server_sock()), 1),
        client_sock(),
    )
    .with_authorizer(hook);
    let _ = drain(&mut s);
    let mut input = ceph_msgr::wire::handshake::ClientHello {
        addr: EntityAddr::new(None, 5),
    }
    .encode()
    .to_vec();
    input.extend_from_slice(
        &ConnectMsg {
            authorizer_len: 6,
            authorizer_protocol: 2,
            ..connect()
        }
        .encode(),
    );
    input.extend_from_slice(b"ticket");
    s.handle_input(now, &input);
    assert_eq!(drain(&mut s)[0], tag::BADAUTHORIZER);
    assert_eq!(
        refusal(&mut s),
        Some((
            tag::BADAUTHORIZER,
            "authorizer rejected (protocol 2, 6 bytes)".to_owned()
        ))
    );
    // A lossless server without a session for a peer that claims one: RESETSESSION.
    let mut cfg = osd();
    cfg.lossy = false;
    let (_, out) = server_reply_to(
        cfg,
        ConnectMsg {
            connect_seq: 3,
            ..connect()
        },
        &[],
    );
    assert_eq!(out[0], tag::RESETSESSION);
    // A lossy server keeps no session across transports: the same answer (Ceph's
    // "accept we reset" has no lossy exception).
    let (_, out) = server_reply_to(
        osd(),
        ConnectMsg {
            connect_seq: 1,
            ..connect()
        },
        &[],
    );
    assert_eq!(out[0], tag::RESETSESSION);
    // A new session with RECONNECT_SEQ: SEQ + 8 bytes, LOSSY flag as configured.
    let (s, out) = server_reply_to(osd(), connect(), &[]);
    let r = ConnectReply::decode(&out).unwrap();
    assert_eq!((r.tag, r.connect_seq, r.flags), (tag::SEQ, 1, 1));
    assert_eq!(out.len(), 26 + 8);
    assert_eq!(s.state(), State::Handshake);
    // Without RECONNECT_SEQ: READY and open at once.
    let (s, out) = server_reply_to(
        osd(),
        ConnectMsg {
            features: features::KERNEL_LIKE & !features::RECONNECT_SEQ,
            ..connect()
        },
        &[],
    );
    assert_eq!(out[0], tag::READY);
    assert_eq!(s.state(), State::Open);
    // An unknown peer type is a typed error.
    let (mut s, _) = server_reply_to(
        osd(),
        ConnectMsg {
            host_type: 3,
            ..connect()
        },
        &[],
    );
    assert_eq!(closed_error(&events(&mut s)), Some(&Error::BadPeerType(3)));
}

// ----- hostile input ------------------------------------------------------------------------------

/// Feeds `bad` to an open lossless client holding two queued messages; the fault must be
/// `expect`, and both messages must still be held.
fn hostile(bad: &[u8], tweak: impl Fn(&mut Config), expect: impl Fn(&Error) -> bool) {
    let mut cfg = Config::client(EntityName::client(1));
    cfg.lossy = false;
    tweak(&mut cfg);
    let (mut c, now) = open_client(cfg);
    c.send(msg(1, b"keep me")).unwrap();
    c.send(msg(2, b"and me")).unwrap();
    let _ = drain(&mut c); // written, not acknowledged
    for chunk in bad.chunks(3) {
        c.handle_input(now, chunk);
    }
    let evs = events(&mut c);
    let err = fault_error(&evs).unwrap_or_else(|| panic!("no fault for {bad:?}: {evs:?}"));
    assert!(expect(err), "unexpected error {err:?}");
    assert_eq!(c.state(), State::Backoff);
    assert_eq!(c.messenger().len(), 2, "queued messages survive the fault");
}

#[test]
fn hostile_input_gives_typed_errors_and_keeps_messages() {
    let none = |_: &mut Config| {};
    // Unknown tag in the open stream.
    hostile(&[200], none, |e| {
        matches!(
            e,
            Error::Recv(RecvError::Decode(DecodeError::UnknownTag(200)))
        )
    });
    // Bad header CRC.
    let mut f = frame(1, b"abc", true);
    f[5] ^= 0xff;
    hostile(&f, none, |e| {
        matches!(
            e,
            Error::Recv(RecvError::Decode(DecodeError::HeaderCrc { .. }))
        )
    });
    // Bad front CRC on a complete message.
    let mut f = frame(1, b"abc", true);
    f[54] ^= 1;
    hostile(&f, none, |e| {
        matches!(
            e,
            Error::Recv(RecvError::BadCrc {
                section: "front",
                ..
            })
        )
    });
    // Front over the limit (refused at the header, before any allocation).
    let big = frame(1, &vec![7u8; 2048], true);
    hostile(
        &big[..60],
        |c| c.limits.front = 1024,
        |e| {
            matches!(
                e,
                Error::Recv(RecvError::TooLong {
                    section: "front",
                    len: 2048,
                    limit: 1024
                })
            )
        },
    );
    // Aborted message under the Fault policy.
    hostile(
        &frame(1, b"abc", false),
        |c| c.on_aborted = OnAborted::Fault,
        |e| matches!(e, Error::AbortedMessage { seq: 1 }),
    );
    // A seq gap under strict checking.
    hostile(
        &frame(5, b"abc", true),
        |c| c.strict_seq = true,
        |e| {
            matches!(
                e,
                Error::SeqGap {
                    got: 5,
                    expected: 1
                }
            )
        },
    );
    // Truncated frame, then the transport ends.
    let mut cfg = Config::client(EntityName::client(1));
    cfg.lossy = false;
    let (mut c, now) = open_client(cfg);
    c.send(msg(1, b"keep")).unwrap();
    c.handle_input(now, &frame(1, b"abcdef", true)[..40]);
    assert!(
        events(&mut c).is_empty(),
        "a partial frame is just buffered"
    );
    c.transport_failed(now, "eof");
    assert!(matches!(
        fault_error(&events(&mut c)),
        Some(Error::Transport(_))
    ));
    assert_eq!(c.messenger().len(), 1);
}

#[test]
fn garbage_and_msgr2_banners_are_typed_errors() {
    for (bytes, want) in [
        (b"ceph v2\n\x10\x00".to_vec(), "msgr2"),
        (b"HTTP/1.1 400 Bad Request\r\n".to_vec(), "bad"),
    ] {
        let mut cfg = Config::client(EntityName::client(1));
        cfg.lossy = false;
        let now = Instant::now();
        let mut c = Connection::client(cfg, server_sock(), EntityType::Osd);
        let _ = c.poll_event();
        c.transport_connected(now);
        c.send(msg(1, b"survivor")).unwrap();
        let mut input = bytes.clone();
        input.resize(300, b'x');
        c.handle_input(now, &input);
        let evs = events(&mut c);
        let e = fault_error(&evs).expect("fault");
        match want {
            "msgr2" => assert_eq!(e, &Error::Handshake(DecodeError::Msgr2Banner)),
            _ => assert!(
                matches!(e, Error::Handshake(DecodeError::BadBanner(_))),
                "{e:?}"
            ),
        }
        assert_eq!(c.messenger().len(), 1);
    }
}

#[test]
fn aborted_messages_are_dropped_by_default_and_duplicates_discarded() {
    let (mut c, now) = open_client(Config::client(EntityName::client(1)));
    let mut input = frame(1, b"aborted", false);
    input.extend(frame(2, b"kept", true));
    input.extend(frame(2, b"duplicate", true));
    input.extend(frame(4, b"after a gap", true));
    c.handle_input(now, &input);
    let evs = events(&mut c);
    let fronts: Vec<&[u8]> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(&m.front[..]),
            _ => None,
        })
        .collect();
    assert_eq!(fronts, [&b"kept"[..], b"after a gap"]);
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::AbortedMessage(h) if h.seq == 1)));
    assert_eq!(c.in_seq(), 4);
    assert_eq!(c.stats().dups_in, 1);
    assert_eq!(c.stats().gaps_in, 1);
    // Both anomalies are reported, the gap just before the message it let through.
    let anomalies: Vec<(u64, u64, bool)> = evs
        .iter()
        .filter_map(|e| match e {
            Event::OutOfSequence {
                seq,
                expected,
                duplicate,
            } => Some((*seq, *expected, *duplicate)),
            _ => None,
        })
        .collect();
    assert_eq!(anomalies, [(2, 3, true), (4, 3, false)]);
    let gap_at = evs
        .iter()
        .position(|e| matches!(e, Event::OutOfSequence { seq: 4, .. }))
        .unwrap();
    assert!(matches!(&evs[gap_at + 1], Event::Message(m) if m.header.seq == 4));
    // One cumulative ACK for everything, including the aborted seq.
    let out = drain(&mut c);
    assert_eq!(out, [&[tag::ACK][..], &4u64.to_le_bytes()].concat());
}

/// `read_with` parses where the bytes landed: a message's data is a slice of the very
/// buffer the read appended to (no copy), even when it arrives in several reads.
#[test]
fn read_with_hands_out_slices_of_the_read_buffer() {
    let (c, s) = Pair::default_configs();
    let mut p = Pair::new(c, s);
    p.pump();
    assert_eq!(p.server.state(), State::Open);
    let data = Bytes::from((0..300_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    p.client
        .send(Message::new(42).with_tid(1).with_data_chunk(data.clone()))
        .expect("queue");
    let wire = drain(&mut p.client);
    // Three reads: the header alone, then two halves of the rest.
    let mut ranges = Vec::new();
    for part in [&wire[..60], &wire[60..150_000], &wire[150_000..]] {
        let n = p.server.read_with(p.now, 1024, |buf| {
            buf.extend_from_slice(part);
            ranges.push((
                buf.as_ptr() as usize,
                buf.as_ptr() as usize + buf.capacity(),
            ));
            part.len()
        });
        assert_eq!(n, part.len());
    }
    let got = std::iter::from_fn(|| p.server.poll_event())
        .find_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .expect("the message arrived");
    assert_eq!(got.data, data);
    let at = got.data.as_ptr() as usize;
    let (lo, hi) = *ranges.last().expect("reads");
    assert!(
        lo <= at && at + got.data.len() <= hi,
        "the data is a slice of the last read's buffer"
    );
    // The header announced 300 KB: the second and third reads went into one block.
    assert_eq!(ranges[1], ranges[2]);
}

/// `read_with` and `handle_input` are the same to the protocol: the same stream in the
/// same pieces gives the same events either way.
#[test]
fn read_with_matches_handle_input() {
    let run = |via_read: bool| {
        let (c, s) = Pair::default_configs();
        let mut p = Pair::new(c, s);
        p.pump();
        for tid in 1..=20u64 {
            p.client
                .send(
                    Message::new(42)
                        .with_tid(tid)
                        .with_front(Bytes::from(vec![tid as u8; tid as usize * 37])),
                )
                .expect("queue");
        }
        let wire = drain(&mut p.client);
        for piece in wire.chunks(113) {
            if via_read {
                p.server
                    .read_with(p.now, 0, |buf| buf.extend_from_slice(piece));
            } else {
                p.server.handle_input(p.now, piece);
            }
        }
        let events: Vec<String> = std::iter::from_fn(|| p.server.poll_event())
            .map(|e| format!("{e:?}"))
            .collect();
        (events, drain(&mut p.server))
    };
    let (a, acks_a) = run(false);
    let (b, acks_b) = run(true);
    assert_eq!(a.len(), 20);
    assert_eq!(a, b);
    assert_eq!(acks_a, acks_b);
}

/// A reader that removes buffered bytes breaks framing: a clean transport fault (this
/// lossy session closes), no panic, the sender's messages kept. A reader that appends
/// nothing changes nothing.
#[test]
fn read_with_that_removes_bytes_faults_the_transport() {
    let (c, s) = Pair::default_configs();
    let mut p = Pair::new(c, s);
    p.pump();
    p.client.send(msg(1, b"kept")).expect("queue");
    let wire = drain(&mut p.client);
    p.server.handle_input(p.now, &wire[..10]);
    assert_eq!(p.server.read_with(p.now, 64, |_| 0), 0);
    // An absurd room is capped, not an allocation failure.
    assert!(p
        .server
        .read_with(p.now, usize::MAX, |buf| buf.capacity() > 0));
    assert_eq!(p.server.state(), State::Open);
    p.server.read_with(p.now, 64, |buf| buf.truncate(3));
    let events: Vec<Event> = std::iter::from_fn(|| p.server.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Fault { error: Error::Transport(why) }
            | Event::Closed { error: Some(Error::Transport(why)), .. }
                if why.contains("removed 7")
        )),
        "{events:?}"
    );
    assert_ne!(p.server.state(), State::Open);
    // The client still holds its message for the next transport.
    assert_eq!(p.client.messenger().len(), 1);
}

/// Bytes read on a connection that takes no input (closed) are dropped, like
/// `handle_input` drops them.
#[test]
fn read_with_on_a_closed_connection_drops_the_bytes() {
    let (mut c, now) = open_client(Config::client(EntityName::client(1)));
    c.close();
    let _ = drain(&mut c);
    while c.poll_event().is_some() {}
    let n = c.read_with(now, 16, |buf| {
        buf.extend_from_slice(&[tag::ACK, 1, 0, 0, 0, 0, 0, 0, 0]);
        9
    });
    assert_eq!(n, 9);
    assert!(c.poll_event().is_none());
    assert_eq!(c.stats().bytes_in, 0);
}

/// A peer that acknowledges seqs we never sent acknowledges what we did send, no more:
/// messages numbered later are still resent after a fault until really acknowledged.
#[test]
fn ack_beyond_what_was_sent_does_not_cover_later_messages() {
    let (mut c, s) = Pair::default_configs();
    c.lossy = false;
    let mut p = Pair::new(c, s);
    p.pump();
    p.client.send(msg(1, b"one")).unwrap();
    let _ = drain(&mut p.client);
    let mut bogus = vec![tag::ACK];
    bogus.extend_from_slice(&1000u64.to_le_bytes());
    p.client.handle_input(p.now, &bogus);
    let evs = events(&mut p.client);
    assert!(evs.iter().any(|e| matches!(e, Event::Acked(1))), "{evs:?}");
    assert_eq!(p.client.messenger().acked(), 1);
    // Two more go out, then the transport fails before the server saw them.
    p.client.send(msg(2, b"two")).unwrap();
    p.client.send(msg(3, b"three")).unwrap();
    let _ = drain(&mut p.client);
    p.client.transport_failed(p.now, "gone");
    assert_eq!(
        p.client.messenger().len(),
        2,
        "seqs 2 and 3 are kept for resending"
    );
}
