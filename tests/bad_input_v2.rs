//! Hostile msgr2 peer input, in both roles, during the handshake and once open: each input
//! breaks exactly one rule (the frames are built with the `src/v2/frame.rs` encoders and
//! their CRCs fixed up), and gives a typed error (`Error::Frame`, `Banner`, `Control`,
//! `UnexpectedFrame`, or `Transport` for a frame cut by the end of the stream) and a clean
//! fault: no panic, the connection drains and stops taking input, and a lossless client
//! still holds its queued message, which goes out on the next transport.

mod common;

use bytes::Bytes;
use ceph_msgr::conn::{Connection, Error, State};
use ceph_msgr::recv::v2::DeframeError;
use ceph_msgr::recv::Limits;
use ceph_msgr::v2::control::{ControlPayload, Hello, ServerIdent, CLIENT_IDENT_FLAG_LOSSY};
use ceph_msgr::v2::frame::{
    encode_control, segment_crc, Banner, Epilogue, FrameError, MsgHeader2, Preamble, Tag,
    DEFAULT_ALIGNMENT, LATE_STATUS_COMPLETE, MAX_SEGMENTS, MESSAGE_ALIGNMENTS,
};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::{Config, EntityType, Event, Message, Protocol};
use common::pair::{client_sock, drain, server_sock, Pair};

/// Message totals these tests use on both sides (so "frame too long" is cheap to announce).
const TOTAL: u32 = 1 << 20;

fn configs() -> (Config, Config) {
    let (mut c, mut s) = Pair::default_configs();
    for cfg in [&mut c, &mut s] {
        cfg.protocol = Protocol::V2;
        cfg.lossy = false;
        cfg.limits.total = TOTAL;
    }
    (c, s)
}

fn fresh_server() -> Connection {
    Connection::server(
        configs().1,
        EntityAddr::new(Some(server_sock()), 1),
        client_sock(),
    )
}

// ---- frames, each breaking one rule -------------------------------------------------

/// A frame from its preamble and segments; the CRCs are right unless changed afterwards.
fn frame(p: Preamble, segs: &[&[u8]], late_status: u8) -> Vec<u8> {
    let mut out = p.encode().to_vec();
    out.extend_from_slice(segs[0]);
    if !segs[0].is_empty() {
        out.extend_from_slice(&segment_crc(segs[0]).to_le_bytes());
    }
    for s in &segs[1..p.nseg()] {
        out.extend_from_slice(s);
    }
    if p.has_epilogue() {
        let mut crcs = [0u32; 3];
        for i in 1..p.nseg() {
            crcs[i - 1] = segment_crc(segs[i]);
        }
        out.extend_from_slice(&Epilogue { late_status, crcs }.encode());
    }
    out
}

/// A well-formed MESSAGE frame (seq 1, front and data), with this late_status.
fn message(late_status: u8) -> Vec<u8> {
    let h = MsgHeader2 {
        seq: 1,
        tid: 1,
        ty: 42,
        priority: 127,
        version: 1,
        compat_version: 1,
        ..MsgHeader2::default()
    }
    .encode();
    let (front, data) = (b"front bytes".as_slice(), b"data".as_slice());
    let p = Preamble::for_segments(
        Tag::Message,
        [41, front.len() as u32, 0, data.len() as u32],
        MESSAGE_ALIGNMENTS,
    );
    frame(p, &[&h, front, &[], data], late_status)
}

/// Offset of the epilogue of [`message`]'s frame.
fn message_epilogue() -> usize {
    message(LATE_STATUS_COMPLETE).len() - 13
}

/// A preamble announcing these lengths, its CRC right (nothing follows).
fn preamble(tag: Tag, lens: [u32; MAX_SEGMENTS]) -> Vec<u8> {
    let aligns = if tag == Tag::Message {
        MESSAGE_ALIGNMENTS
    } else {
        [DEFAULT_ALIGNMENT; 4]
    };
    Preamble::for_segments(tag, lens, aligns).encode().to_vec()
}

fn keepalive2() -> Vec<u8> {
    encode_control(Tag::Keepalive2, &[1, 0, 0, 0, 2, 0, 0, 0])
}

fn server_ident() -> Vec<u8> {
    ServerIdent {
        addrs: Vec::new(),
        gid: 0,
        global_seq: 1,
        supported_features: u64::MAX,
        required_features: 0,
        flags: CLIENT_IDENT_FLAG_LOSSY,
        server_cookie: 0,
    }
    .encode_frame()
}

fn hello(ty: EntityType) -> Vec<u8> {
    Hello {
        entity_type: ty.to_u8(),
        peer_addr: ceph_msgr::v2::control::Addr {
            kind: ceph_msgr::v2::control::AddrKind::Msgr2,
            nonce: 0,
            addr: Some(client_sock()),
        },
    }
    .encode_frame()
}

type Want = fn(&Error) -> bool;

/// One hostile input: its bytes, whether the transport then reports EOF, the error it
/// must give.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    eof: bool,
    want: Want,
}

fn case(name: &'static str, bytes: Vec<u8>, want: Want) -> Case {
    Case {
        name,
        bytes,
        eof: false,
        want,
    }
}

/// Frame-level faults: the same in every state, both roles.
fn framing_cases() -> Vec<Case> {
    let limits = Limits::default();
    let mut bad_crc = keepalive2();
    bad_crc[28] ^= 1; // the preamble's own CRC
    let nseg0 = Preamble {
        tag: Tag::Keepalive2 as u8,
        nseg: 0,
        segments: [(0, 0); MAX_SEGMENTS],
    }
    .encode()
    .to_vec();
    let nseg5 = Preamble {
        tag: Tag::Keepalive2 as u8,
        nseg: 5,
        segments: [(8, 8), (0, 0), (0, 0), (0, 0)],
    }
    .encode()
    .to_vec();
    let mut unknown = Preamble {
        tag: 99,
        nseg: 1,
        segments: [(8, 8), (0, 0), (0, 0), (0, 0)],
    }
    .encode()
    .to_vec();
    unknown.extend_from_slice(&[0; 8]);
    unknown.extend_from_slice(&segment_crc(&[0; 8]).to_le_bytes());
    let mut seg0_crc = keepalive2();
    let n = seg0_crc.len();
    seg0_crc[n - 1] ^= 0x80;
    let mut seg1_crc = message(LATE_STATUS_COMPLETE);
    seg1_crc[message_epilogue() + 1] ^= 1; // epilogue's crc of segment 1 (front)
    let mut seg3_crc = message(LATE_STATUS_COMPLETE);
    let e = message_epilogue();
    seg3_crc[e - 1] ^= 1; // the last data byte: segment 3's CRC no longer matches
    let mut truncated = message(LATE_STATUS_COMPLETE);
    truncated.truncate(60);
    vec![
        case("bad preamble crc", bad_crc, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::PreambleCrc { .. }))
            )
        }),
        case("nseg 0", nseg0, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::BadSegmentCount(0)))
            )
        }),
        case("nseg 5", nseg5, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::BadSegmentCount(5)))
            )
        }),
        case(
            "control segment past Limits::control",
            preamble(Tag::Keepalive2, [limits.control + 1, 0, 0, 0]),
            |e| {
                matches!(
                    e,
                    Error::Frame(DeframeError::SegmentTooLong {
                        tag: Tag::Keepalive2,
                        segment: 0,
                        ..
                    })
                )
            },
        ),
        case(
            "front past Limits::front",
            preamble(Tag::Message, [41, limits.front + 1, 0, 0]),
            |e| {
                matches!(
                    e,
                    Error::Frame(DeframeError::SegmentTooLong {
                        tag: Tag::Message,
                        segment: 1,
                        ..
                    })
                )
            },
        ),
        case(
            "data past Limits::data",
            preamble(Tag::Message, [41, 0, 0, limits.data + 1]),
            |e| {
                matches!(
                    e,
                    Error::Frame(DeframeError::SegmentTooLong {
                        tag: Tag::Message,
                        segment: 3,
                        ..
                    })
                )
            },
        ),
        case(
            "sections past Limits::total",
            preamble(Tag::Message, [41, TOTAL / 2, 0, TOTAL / 2 + 1]),
            |e| {
                matches!(
                    e,
                    Error::Frame(DeframeError::FrameTooLong {
                        tag: Tag::Message,
                        ..
                    })
                )
            },
        ),
        case(
            "MESSAGE segment 0 not 41 bytes",
            preamble(Tag::Message, [40, 0, 0, 0]),
            |e| matches!(e, Error::Frame(DeframeError::MessageHeaderLen(40))),
        ),
        case("unknown tag", unknown, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::UnknownTag(99)))
            )
        }),
        case("segment 0 crc mismatch", seg0_crc, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::SegmentCrc {
                    segment: 0,
                    ..
                }))
            )
        }),
        case("segment 1 crc mismatch", seg1_crc, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::SegmentCrc {
                    segment: 1,
                    ..
                }))
            )
        }),
        case("segment 3 crc mismatch", seg3_crc, |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::SegmentCrc {
                    segment: 3,
                    ..
                }))
            )
        }),
        case("unknown late_status", message(0x05), |e| {
            matches!(
                e,
                Error::Frame(DeframeError::Frame(FrameError::BadLateStatus(0x05)))
            )
        }),
        case(
            "control payload too short",
            encode_control(Tag::Keepalive2, &[1, 2, 3]),
            |e| matches!(e, Error::Control(_)),
        ),
        Case {
            name: "truncated frame then EOF",
            bytes: truncated,
            eof: true,
            want: |e| matches!(e, Error::Transport(_)),
        },
    ]
}

/// Frames out of their state, during the handshake (after HELLO).
fn handshake_state_cases() -> Vec<Case> {
    vec![
        case(
            "MESSAGE during the handshake",
            message(LATE_STATUS_COMPLETE),
            |e| matches!(e, Error::UnexpectedFrame(Tag::Message)),
        ),
        case("KEEPALIVE2 during the handshake", keepalive2(), |e| {
            matches!(e, Error::UnexpectedFrame(Tag::Keepalive2))
        }),
        case(
            "ACK during the handshake",
            encode_control(Tag::Ack, &7u64.to_le_bytes()),
            |e| matches!(e, Error::UnexpectedFrame(Tag::Ack)),
        ),
    ]
}

// ---- driving ----------------------------------------------------------------------

/// The fault `c` reported (exactly one), after feeding it `bytes` (and EOF).
fn inject(p: &mut Pair, client: bool, c: &Case) -> Error {
    let now = p.now;
    let conn = if client { &mut p.client } else { &mut p.server };
    conn.handle_input(now, &c.bytes);
    if c.eof {
        assert!(
            matches!(conn.state(), State::Open | State::Handshake),
            "{}: a cut frame is no fault before EOF ({:?})",
            c.name,
            conn.state()
        );
        conn.transport_failed(now, "eof");
    }
    let _ = drain(conn);
    // The transport is gone: more input is ignored, not parsed.
    conn.handle_input(now, &keepalive2());
    let _ = drain(conn);
    p.collect();
    let evs = if client {
        &p.client_events
    } else {
        &p.server_events
    };
    let errors: Vec<&Error> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Fault { error } => Some(error),
            Event::Closed { error, .. } => error.as_ref(),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{}: one fault, got {evs:?}", c.name);
    let e = errors[0].clone();
    assert!((c.want)(&e), "{}: unexpected error {e:?} ({e})", c.name);
    e
}

/// A lossless client whose one message is still held after the fault: it goes out on
/// the next transport, to a fresh server, and arrives whole.
fn check_resent(mut p: Pair, name: &str) {
    assert_eq!(p.client.state(), State::Backoff, "{name}");
    assert_eq!(p.client.messenger().len(), 1, "{name}: the message is held");
    let later = p.client.poll_timeout().expect("backoff deadline");
    p.now = later;
    p.client.handle_timeout(later);
    assert!(
        matches!(p.client.poll_event(), Some(Event::OpenTransport)),
        "{name}"
    );
    p.client.transport_connected(later);
    p.server = fresh_server();
    p.server_events.clear();
    p.pump();
    assert_eq!(
        p.client.state(),
        State::Open,
        "{name}: {:?}",
        p.client_events
    );
    let got: Vec<&[u8]> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(&m.front[..]),
            _ => None,
        })
        .collect();
    assert_eq!(got, [b"held".as_slice()], "{name}: {:?}", p.server_events);
    assert_eq!(
        p.client.messenger().len(),
        0,
        "{name}: acked on the new transport"
    );
}

fn held() -> Message {
    Message::new(42).with_front(Bytes::from_static(b"held"))
}

/// An open pair; the client has written its message, which the server never got.
fn open_pair() -> Pair {
    let (c, s) = configs();
    let mut p = Pair::new(c, s);
    p.pump();
    assert_eq!(p.client.state(), State::Open);
    assert_eq!(p.server.state(), State::Open);
    p.client.send(held()).unwrap();
    assert!(!drain(&mut p.client).is_empty()); // lost in flight
    p.client_events.clear();
    p.server_events.clear();
    p
}

/// A pair whose client has a message queued and sent its banner; the server's bytes
/// (banner, HELLO) are to be fed by hand.
fn handshaking_client() -> Pair {
    let (c, s) = configs();
    let mut p = Pair::new(c, s);
    p.client.send(held()).unwrap();
    assert!(drain(&mut p.client).starts_with(b"ceph v2\n"));
    p.collect();
    p
}

fn server_prelude() -> Vec<u8> {
    let mut b = Banner::OURS.encode().to_vec();
    b.extend(hello(EntityType::Osd));
    b
}

fn client_prelude() -> Vec<u8> {
    let mut b = Banner::OURS.encode().to_vec();
    b.extend(hello(EntityType::Client));
    b
}

fn server_faulted_cleanly(p: &mut Pair, name: &str) {
    assert!(
        matches!(p.server.state(), State::Standby | State::Closed),
        "{name}: {:?}",
        p.server.state()
    );
    assert!(
        drain(&mut p.server).is_empty(),
        "{name}: nothing more to write"
    );
}

// ---- the tests --------------------------------------------------------------------

#[test]
fn client_open_faults_typed_and_keeps_its_message() {
    let mut cases = framing_cases();
    cases.push(case("SERVER_IDENT once open", server_ident(), |e| {
        matches!(e, Error::UnexpectedFrame(Tag::ServerIdent))
    }));
    cases.push(case("HELLO once open", hello(EntityType::Osd), |e| {
        matches!(e, Error::UnexpectedFrame(Tag::Hello))
    }));
    for c in &cases {
        let mut p = open_pair();
        inject(&mut p, true, c);
        check_resent(p, c.name);
    }
}

#[test]
fn client_handshake_faults_typed_and_keeps_its_message() {
    let mut cases = framing_cases();
    cases.extend(handshake_state_cases());
    for c in &cases {
        let mut p = handshaking_client();
        let mut bytes = server_prelude();
        bytes.extend_from_slice(&c.bytes);
        let c = Case {
            bytes,
            want: c.want,
            eof: c.eof,
            name: c.name,
        };
        inject(&mut p, true, &c);
        check_resent(p, c.name);
    }
}

#[test]
fn v2_client_refuses_bad_banners_and_keeps_its_message() {
    let mut v1 = ceph_msgr::wire::handshake::BANNER.to_vec();
    v1.extend_from_slice(&[0; 136]); // the rest of a v1 server hello
    let mut short_len = Banner::OURS.encode();
    short_len[8] = 15;
    let demanding = Banner {
        supported: u64::MAX,
        required: 1 << 40,
    }
    .encode();
    let no_rev1 = Banner {
        supported: 0,
        required: 0,
    }
    .encode();
    let cases = [
        case("v1 banner to a v2 client", v1, |e| {
            matches!(e, Error::Banner(FrameError::BadBanner))
        }),
        case(
            "not a banner",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            |e| matches!(e, Error::Banner(FrameError::BadBanner)),
        ),
        case("banner payload length 15", short_len.to_vec(), |e| {
            matches!(e, Error::Banner(FrameError::BadBannerLength(15)))
        }),
        case(
            "banner requiring unknown features",
            demanding.to_vec(),
            |e| matches!(e, Error::Banner(FrameError::MissingFeatures { .. })),
        ),
        case("banner without msgr2.1", no_rev1.to_vec(), |e| {
            matches!(e, Error::Banner(FrameError::NoRevision1))
        }),
    ];
    for c in &cases {
        let mut p = handshaking_client();
        inject(&mut p, true, c);
        check_resent(p, c.name);
    }
}

#[test]
fn v1_banner_is_refused_byte_by_byte_too() {
    // Judged on its first bytes: a v1 server's full hello never has to arrive.
    let mut p = handshaking_client();
    for &b in b"ceph v0" {
        p.client.handle_input(p.now, &[b]);
    }
    p.collect();
    assert!(
        p.client_events.iter().any(|e| matches!(
            e,
            Event::Fault {
                error: Error::Banner(FrameError::BadBanner)
            }
        )),
        "{:?}",
        p.client_events
    );
    check_resent(p, "v1 banner byte by byte");
}

#[test]
fn server_open_faults_typed() {
    let mut cases = framing_cases();
    cases.push(case("HELLO once open", hello(EntityType::Client), |e| {
        matches!(e, Error::UnexpectedFrame(Tag::Hello))
    }));
    cases.push(case("SERVER_IDENT to a server", server_ident(), |e| {
        matches!(e, Error::UnexpectedFrame(Tag::ServerIdent))
    }));
    for c in &cases {
        let mut p = open_pair();
        inject(&mut p, false, c);
        server_faulted_cleanly(&mut p, c.name);
        // The client is untouched and still holds its message.
        assert_eq!(p.client.state(), State::Open, "{}", c.name);
        assert_eq!(p.client.messenger().len(), 1, "{}", c.name);
    }
}

#[test]
fn server_handshake_faults_typed() {
    let mut cases = framing_cases();
    cases.extend(handshake_state_cases());
    cases.push(case(
        "garbage instead of a banner",
        b"ceph v9\n and more".to_vec(),
        |e| matches!(e, Error::Banner(FrameError::BadBanner)),
    ));
    for c in &cases {
        let (ccfg, _) = configs();
        let mut p = Pair::new(ccfg, configs().1);
        let mut bytes = if c.name.starts_with("garbage") {
            Vec::new()
        } else {
            client_prelude()
        };
        bytes.extend_from_slice(&c.bytes);
        let c = Case {
            bytes,
            want: c.want,
            eof: c.eof,
            name: c.name,
        };
        p.server = fresh_server();
        inject(&mut p, false, &c);
        server_faulted_cleanly(&mut p, c.name);
    }
}

/// Every framing case also faults the same way fed one byte at a time (the checks run
/// as the bytes arrive, not only on whole frames).
#[test]
fn framing_faults_do_not_depend_on_how_the_bytes_arrive() {
    for c in &framing_cases() {
        let mut whole = open_pair();
        let a = inject(&mut whole, true, c);
        let mut p = open_pair();
        for b in &c.bytes {
            p.client.handle_input(p.now, std::slice::from_ref(b));
        }
        let c1 = Case {
            bytes: Vec::new(),
            want: c.want,
            eof: c.eof,
            name: c.name,
        };
        let b = inject(&mut p, true, &c1);
        assert_eq!(a, b, "{}", c.name);
        check_resent(p, c.name);
    }
}
